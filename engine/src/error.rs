//! Engine errors. Expected errors (bad SQL, unknown objects, bad input files) are kept apart from
//! bugs so that the wire layer can map each to a SQLSTATE in one exhaustive match.

use datafusion::error::DataFusionError;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in an input file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePosition {
    /// File name as given in the statement.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Column name, when the problem is in one field.
    pub column: Option<String>,
}

impl std::fmt::Display for FilePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, line {}", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        Ok(())
    }
}

/// What can go wrong while running a statement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text could not be parsed.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// What the parser expected or found.
        message: String,
        /// 1-based line of the offending token (0 when unknown).
        line: u64,
        /// 1-based column of the offending token (0 when unknown).
        column: u64,
    },
    /// A schema, table, view or column does not exist.
    #[error("{0}")]
    UndefinedObject(String),
    /// A schema, table or view already exists.
    #[error("{0}")]
    DuplicateObject(String),
    /// A value does not fit its column (type, NOT NULL, encoding) while loading or writing.
    #[error("{message} ({position})")]
    BadInput {
        /// What is wrong, naming the column but never echoing the value.
        message: String,
        /// Where.
        position: FilePosition,
    },
    /// A NOT NULL column received a NULL outside of a file load.
    #[error("null value in column \"{column}\" of table \"{table}\" violates not-null constraint")]
    NotNullViolation {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// The statement is valid SQL but Kura does not support it (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The statement is invalid for a reason stated in the message.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("could not access file \"{path}\": {source}")]
    File {
        /// Path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The catalog refused or failed a change.
    #[error(transparent)]
    Catalog(#[from] kura_catalog::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] kura_storage::Error),
    /// Query planning or execution failed.
    #[error("{}", clean_datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
    /// delta-rs failed during a table operation.
    #[error("table operation failed: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
}

impl Error {
    /// Recovers a Kura error that travelled through DataFusion as `External`.
    pub fn from_datafusion(err: DataFusionError) -> Self {
        if let DataFusionError::External(inner) = err.find_root() {
            if let Some(kura) = inner.downcast_ref::<Error>() {
                return kura.clone_shallow();
            }
        }
        match err {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(kura) => *kura,
                Err(inner) => Error::DataFusion(DataFusionError::External(inner)),
            },
            other => Error::DataFusion(other),
        }
    }

    /// A copy of errors that carry plain data; others become their message.
    fn clone_shallow(&self) -> Self {
        match self {
            Error::BadInput { message, position } => {
                Error::BadInput { message: message.clone(), position: position.clone() }
            }
            Error::NotNullViolation { table, column } => {
                Error::NotNullViolation { table: table.clone(), column: column.clone() }
            }
            Error::Syntax { message, line, column } => {
                Error::Syntax { message: message.clone(), line: *line, column: *column }
            }
            Error::UndefinedObject(m) => Error::UndefinedObject(m.clone()),
            Error::DuplicateObject(m) => Error::DuplicateObject(m.clone()),
            Error::Unsupported(m) => Error::Unsupported(m.clone()),
            other => Error::Invalid(other.to_string()),
        }
    }

    /// Turns a catalog error into the engine's vocabulary.
    pub(crate) fn catalog(err: kura_catalog::Error) -> Self {
        use kura_catalog::Error as C;
        match err {
            C::NotFound { .. } => Error::UndefinedObject(err.to_string()),
            C::AlreadyExists { .. } => Error::DuplicateObject(err.to_string()),
            other => Error::Catalog(other),
        }
    }
}

/// DataFusion prefixes messages with its internal layer names ("Error during planning: ");
/// users want the sentence.
fn clean_datafusion_message(err: &DataFusionError) -> String {
    let root = err.find_root();
    let text = root.to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Invalid argument error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    text
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}
