//! Errors of an import. They name tables, columns and types, never values.

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an import (or one table of it) stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The DSN could not be parsed.
    #[error("invalid PostgreSQL DSN: {0}")]
    Dsn(String),
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {server}: {reason}")]
    Connect {
        /// `host:port/db`, without credentials.
        server: String,
        /// The server's or the network's answer.
        reason: String,
    },
    /// The PostgreSQL schema does not exist or has no tables.
    #[error("PostgreSQL schema \"{schema}\" {reason}")]
    Schema {
        /// The schema.
        schema: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A requested table does not exist in PostgreSQL.
    #[error("table \"{schema}\".\"{table}\" does not exist in PostgreSQL (nothing was imported)")]
    NoSuchTable {
        /// PostgreSQL schema.
        schema: String,
        /// Table.
        table: String,
    },
    /// A column's type has no Kura equivalent. Found before any data moves.
    #[error("table {table} column \"{column}\" has type {pg_type}, which Kura cannot import (nothing was imported; leave the table out with --tables, or import a view that casts the column)")]
    UnmappableType {
        /// `schema.table` in PostgreSQL.
        table: String,
        /// The column.
        column: String,
        /// PostgreSQL's name of its type.
        pg_type: String,
    },
    /// The Kura table exists already and was not made by an earlier import of the same source.
    #[error("Kura table {table} already exists and was not imported from {source_table}; drop it or import into another schema with --into (nothing was imported)")]
    TargetExists {
        /// `schema.table` in Kura.
        table: String,
        /// The PostgreSQL table.
        source_table: String,
    },
    /// PostgreSQL failed a query on a table.
    #[error("PostgreSQL, reading {table}: {reason}")]
    Postgres {
        /// `schema.table` in PostgreSQL.
        table: String,
        /// The server's message.
        reason: String,
    },
    /// A value could not be converted (out of range, an infinite date, a multi-dimensional array).
    #[error("table {table} column \"{column}\": {reason}")]
    Value {
        /// `schema.table` in PostgreSQL.
        table: String,
        /// The column.
        column: String,
        /// What is wrong, without the value.
        reason: String,
    },
    /// The binary COPY stream was not what PostgreSQL documents.
    #[error("table {table}: malformed binary COPY data ({reason})")]
    Protocol {
        /// `schema.table` in PostgreSQL.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// The engine refused or failed the load.
    #[error(transparent)]
    Engine(#[from] kura_engine::Error),
    /// Reading the imported table back for its checksum failed.
    #[error("verifying Kura table {table}: {reason}")]
    Verify {
        /// `schema.table` in Kura.
        table: String,
        /// Why.
        reason: String,
    },
    /// The warehouse's catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] kura_catalog::Error),
    /// The resume journal could not be read or written.
    #[error("import journal {path}: {reason}")]
    Journal {
        /// Object below the warehouse.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn postgres(table: &str) -> impl FnOnce(tokio_postgres::Error) -> Self + '_ {
        move |e| Self::Postgres { table: table.to_string(), reason: pg_message(&e) }
    }
}

/// The server's message for a database error (with its SQLSTATE), else the client's.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    }
}
