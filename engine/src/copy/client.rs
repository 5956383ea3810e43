//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT`: the same formats as files, with the data
//! travelling over the client connection (psql's `\copy`).
//!
//! A load from the client is one Delta commit made only after the client said the data is
//! complete: a client that fails the copy or vanishes midway leaves the table unchanged.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use kura_catalog::Privilege;
use kura_storage::TableVersionSpec;

use super::export::{encode, format_rows, header_line, source_plan};
use super::options::{CopyFormat, CopyOptions};
use crate::names::qualified;
use crate::parser::CopySource;
use crate::session::Session;
use crate::{Error, Result};

/// A running `COPY ... FROM STDIN`: feed it the client's data, then finish it.
pub struct CopyIn {
    columns: usize,
    sender: Option<tokio::sync::mpsc::Sender<Bytes>>,
    complete: Arc<AtomicBool>,
    load: Option<tokio::task::JoinHandle<Result<u64>>>,
    /// The COPY statement's audit record, journaled when the load ends (or is abandoned).
    audit: Option<crate::audit::StatementAudit>,
}

impl std::fmt::Debug for CopyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyIn").field("columns", &self.columns).finish_non_exhaustive()
    }
}

impl CopyIn {
    /// How many columns each row has.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Passes on a chunk of the client's data. After a bad row has stopped the load, further data
    /// is discarded; the error comes from [`CopyIn::finish`].
    pub async fn send(&mut self, data: Bytes) {
        if let Some(tx) = &self.sender {
            if tx.send(data).await.is_err() {
                self.sender = None;
            }
        }
    }

    pub(crate) fn set_audit(&mut self, audit: crate::audit::StatementAudit) {
        self.audit = Some(audit);
    }

    /// The client sent all its data: load and commit it. Returns the number of rows.
    pub async fn finish(mut self) -> Result<u64> {
        self.complete.store(true, Ordering::SeqCst);
        self.sender = None;
        let load = self.load.take().expect("finished once");
        let result = load.await.map_err(|e| Error::Invalid(format!("COPY FROM STDIN failed: {e}"))).and_then(|r| r);
        if let Some(mut audit) = self.audit.take() {
            match &result {
                Ok(n) => audit.finish(Ok(Some(*n)))?,
                Err(e) => {
                    let _ = audit.finish(Err(e));
                }
            }
        }
        result
    }
}

impl Drop for CopyIn {
    fn drop(&mut self) {
        // Not finished: the client failed the copy or went away. The reader sees the end of the
        // data without the completion mark and fails the load, so nothing is committed.
        self.sender = None;
    }
}

/// Reads the client's chunks in the loader's blocking thread.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    complete: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None if self.complete.load(Ordering::SeqCst) => return Ok(0),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the client ended COPY FROM STDIN without completing it; nothing was loaded",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

pub(crate) async fn copy_in(session: &Session, source: CopySource, options: CopyOptions) -> Result<CopyIn> {
    let CopySource::Table { name, columns } = source else {
        return Err(Error::Invalid("COPY FROM needs a table".into()));
    };
    if options.format == CopyFormat::Parquet {
        return Err(Error::Unsupported("FORMAT parquet from STDIN; give a file path".into()));
    }
    let qn = qualified(&name)?;
    let entry = crate::dml::target_entry(session, &qn).await?;
    session.require_relation(Privilege::Insert, &qn.schema, &qn.name)?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let width = if columns.is_empty() { table.snapshot()?.schema().fields().count() } else { columns.len() };
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let complete = Arc::new(AtomicBool::new(false));
    let reader = ChannelReader { receiver, current: Bytes::new(), complete: complete.clone() };
    let session = session.fork();
    // The load runs in its own task, outside this statement's search path: name the table fully.
    let name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![
        datafusion::sql::sqlparser::ast::Ident::with_quote('"', qn.schema.clone()),
        datafusion::sql::sqlparser::ast::Ident::with_quote('"', qn.name.clone()),
    ]);
    let load = tokio::spawn(async move {
        super::csv_in::load_csv(&session, &name, &columns, "STDIN", Box::new(reader), None, &options).await
    });
    Ok(CopyIn { columns: width, sender: Some(sender), complete, load: Some(load), audit: None })
}

/// What `COPY ... TO STDOUT` sends: one chunk per row (the header first, if asked for).
pub struct CopyOut {
    /// Columns per row.
    pub columns: usize,
    /// The rows, encoded.
    pub rows: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for CopyOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOut").field("columns", &self.columns).finish_non_exhaustive()
    }
}

pub(crate) async fn copy_out(session: &Session, source: CopySource, options: CopyOptions) -> Result<CopyOut> {
    if options.format == CopyFormat::Parquet {
        return Err(Error::Unsupported("FORMAT parquet to STDOUT; give a file path".into()));
    }
    let plan = source_plan(session, source).await?;
    let stream = session.stream_plan(plan).await?;
    let schema = stream.schema();
    let header = header_line(&schema, &options)
        .map(|h| encode(&h, options.encoding).map(|b| Bytes::from(b.into_owned())).map_err(encoding_error));
    let encoding = options.encoding;
    let rows = stream.flat_map(move |batch| {
        let chunks: Vec<Result<Bytes>> = match batch {
            Err(e) => vec![Err(Error::from_datafusion(e))],
            Ok(batch) => {
                let mut out = Vec::with_capacity(batch.num_rows());
                let formatted = format_rows(&batch, &options, |line| {
                    out.push(encode(line, encoding).map(|b| Bytes::from(b.into_owned())).map_err(encoding_error))
                });
                if let Err(e) = formatted {
                    out.push(Err(e));
                }
                out
            }
        };
        futures::stream::iter(chunks)
    });
    let rows = futures::stream::iter(header).chain(rows).boxed();
    Ok(CopyOut { columns: schema.fields().len(), rows })
}

fn encoding_error(e: std::io::Error) -> Error {
    Error::Invalid(e.to_string())
}
