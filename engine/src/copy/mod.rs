//! `COPY`: loading CSV and Parquet files into tables, and writing tables or queries to files.
//!
//! Guarantees:
//! - A load is one Delta commit. A bad row (wrong field count, a value that does not fit its
//!   column, a NULL in a NOT NULL column, bytes invalid in the declared encoding) stops the load
//!   with an error naming file, line and column, and the table is unchanged. With
//!   `REJECTS_TABLE 'name'` bad rows go to that table instead and the good rows load.
//! - Error messages name the column and the problem, never the offending value.
//! - `COPY ... TO` writes to a temporary file and renames it into place when complete, so a
//!   failed export never leaves a partial file under the requested name.

mod client;
mod csv_in;
mod export;
mod options;

use datafusion::sql::sqlparser::ast::ObjectName;

pub use client::{CopyIn, CopyOut};
pub(crate) use csv_in::OnceStream;
pub(crate) use export::{source_plan, write_stream};
pub(crate) use options::{CopyFormat, CopyOptions, FileEncoding, OnError};

use crate::parser::{CopyEndpoint, CopySource, CopyStatement};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

pub(crate) async fn execute(session: &Session, stmt: CopyStatement) -> Result<StatementOutput> {
    let options = CopyOptions::parse(&stmt.options, stmt.to)?;
    let path = match &stmt.endpoint {
        CopyEndpoint::File(p) => {
            // SECURITY: files are the server's, not the client's; as in PostgreSQL only
            // superusers may read or write them. Others use COPY ... STDIN/STDOUT (psql's \copy).
            session.require_superuser("COPY to or from a file on the server; use psql's \\copy")?;
            p.clone()
        }
        CopyEndpoint::Client if options.format == CopyFormat::Receipt => {
            return Err(Error::Unsupported(
                "COPY ... WITH (FORMAT receipt) reads a directory of claims files on the server, not STDIN".into(),
            ));
        }
        CopyEndpoint::Client => {
            return Ok(if stmt.to {
                StatementOutput::CopyOut(client::copy_out(session, stmt.source, options).await?)
            } else {
                StatementOutput::CopyIn(client::copy_in(session, stmt.source, options).await?)
            });
        }
    };
    if stmt.to {
        let rows = export::copy_to(session, stmt.source, &path, &options).await?;
        return Ok(StatementOutput::counted("COPY", rows));
    }
    let CopySource::Table { name, columns } = stmt.source else {
        return Err(Error::Invalid("COPY FROM needs a table".into()));
    };
    if options.format == CopyFormat::Receipt {
        if !columns.is_empty() {
            return Err(Error::Invalid("COPY ... WITH (FORMAT receipt) takes no column list: it fills its own tables".into()));
        }
        let receipts = crate::receipts::copy_from(session, &name, &path, &options).await?;
        return Ok(StatementOutput::counted("COPY", receipts));
    }
    let rows = copy_from_file(session, &name, &columns, &path, &options).await?;
    Ok(StatementOutput::counted("COPY", rows))
}

async fn copy_from_file(
    session: &Session,
    name: &ObjectName,
    columns: &[String],
    path: &str,
    options: &CopyOptions,
) -> Result<u64> {
    let full = session.resolve_path(path);
    match options.format {
        CopyFormat::Parquet => csv_in::load_parquet(session, name, columns, path, &full).await,
        CopyFormat::Receipt => unreachable!("claims files are loaded by crate::receipts"),
        CopyFormat::Csv | CopyFormat::Text => {
            let file = std::fs::File::open(&full).map_err(|e| Error::File { path: path.to_string(), source: e })?;
            let total = file.metadata().map(|m| m.len()).ok();
            csv_in::load_csv(session, name, columns, path, Box::new(file), total, options).await
        }
    }
}
