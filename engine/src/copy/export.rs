//! `COPY table|(query) TO 'file'` as CSV (UTF-8 or Shift_JIS) or Parquet.

use std::io::Write;
use std::path::PathBuf;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::TableReference;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;

use super::options::{CopyFormat, CopyOptions, FileEncoding};
use crate::names::{CATALOG_NAME, qualified};
use crate::parser::CopySource;
use crate::session::Session;
use crate::{Error, Result};

/// The plan of what `COPY ... TO` writes, checked against the user's privileges.
pub(crate) async fn source_plan(session: &Session, source: CopySource) -> Result<datafusion::logical_expr::LogicalPlan> {
    let plan = match source {
        CopySource::Query(q) => session.plan(Statement::Query(q)).await?,
        CopySource::Table { name, columns } => {
            let qn = qualified(&name)?;
            let df = session
                .ctx
                .table(TableReference::full(CATALOG_NAME, qn.schema.as_str(), qn.name.as_str()))
                .await
                .map_err(Error::from_datafusion)?;
            let df = if columns.is_empty() {
                df
            } else {
                let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
                df.select_columns(&cols).map_err(Error::from_datafusion)?
            };
            df.into_unoptimized_plan()
        }
    };
    session.police_plan(plan)
}

pub(crate) async fn copy_to(session: &Session, source: CopySource, path: &str, options: &CopyOptions) -> Result<u64> {
    let plan = source_plan(session, source).await?;
    let stream = session.stream_plan(plan).await?;
    write_stream(session, stream, path, options).await
}

/// Writes `stream` to the file `path` (resolved against the session's base directory) in the
/// format of `options`, through a temporary file renamed into place when complete.
pub(crate) async fn write_stream(
    session: &Session,
    mut stream: datafusion::execution::SendableRecordBatchStream,
    path: &str,
    options: &CopyOptions,
) -> Result<u64> {
    let full = session.resolve_path(path);
    let tmp = temp_path(&full);
    let file_err = |e: std::io::Error| Error::File { path: path.to_string(), source: e };
    let file = std::fs::File::create(&tmp).map_err(file_err)?;
    let schema = stream.schema();
    let result: Result<u64> = async {
        let mut rows = 0u64;
        match options.format {
            CopyFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")))
                    .build();
                let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| Error::Invalid(format!("cannot write Parquet: {e}")))?;
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(Error::from_datafusion)?;
                    rows += batch.num_rows() as u64;
                    writer.write(&batch).map_err(|e| Error::Invalid(format!("cannot write Parquet: {e}")))?;
                }
                writer.close().map_err(|e| Error::Invalid(format!("cannot write Parquet: {e}")))?;
            }
            CopyFormat::Receipt => return Err(Error::Invalid("COPY FORMAT receipt only loads (COPY ... FROM)".into())),
            CopyFormat::Csv | CopyFormat::Text => {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut text = String::with_capacity(1 << 16);
                if options.header {
                    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                    write_row(&mut text, names.iter().map(|s| Some(s.as_str())), options);
                }
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(Error::from_datafusion)?;
                    rows += batch.num_rows() as u64;
                    format_batch(&batch, options, &mut text)?;
                    emit(&mut out, &text, options.encoding).map_err(file_err)?;
                    text.clear();
                }
                emit(&mut out, &text, options.encoding).map_err(file_err)?;
                out.flush().map_err(file_err)?;
            }
        }
        Ok(rows)
    }
    .await;
    match result {
        Ok(rows) => {
            std::fs::rename(&tmp, &full).map_err(file_err)?;
            Ok(rows)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn temp_path(full: &std::path::Path) -> PathBuf {
    let mut name = full.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".kura-partial-{}", std::process::id()));
    full.with_file_name(name)
}

fn emit(out: &mut impl Write, text: &str, encoding: FileEncoding) -> std::io::Result<()> {
    out.write_all(&encode(text, encoding)?)
}

/// Text in the export's encoding.
pub(crate) fn encode(text: &str, encoding: FileEncoding) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
    match encoding {
        FileEncoding::Utf8 => Ok(std::borrow::Cow::Borrowed(text.as_bytes())),
        FileEncoding::ShiftJis => {
            let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
            if unmappable {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a value has characters that Shift_JIS cannot represent; export as UTF-8",
                ));
            }
            Ok(bytes)
        }
    }
}

/// The header line, if the options ask for one.
pub(crate) fn header_line(schema: &datafusion::arrow::datatypes::Schema, options: &CopyOptions) -> Option<String> {
    options.header.then(|| {
        let mut text = String::new();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        write_row(&mut text, names.iter().map(|s| Some(s.as_str())), options);
        text
    })
}

pub(crate) fn format_batch(batch: &RecordBatch, options: &CopyOptions, text: &mut String) -> Result<()> {
    format_rows(batch, options, |row| text.push_str(row))
}

/// Formats each row of `batch` (with its line end) and hands it to `each`.
pub(crate) fn format_rows(batch: &RecordBatch, options: &CopyOptions, mut each: impl FnMut(&str)) -> Result<()> {
    let fmt = FormatOptions::default().with_null("\u{0}");
    let formatters: Vec<ArrayFormatter<'_>> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &fmt))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::from_datafusion(e.into()))?;
    let mut cells: Vec<String> = vec![String::new(); formatters.len()];
    let mut line = String::new();
    for row in 0..batch.num_rows() {
        for (i, f) in formatters.iter().enumerate() {
            cells[i].clear();
            if batch.column(i).is_valid(row) {
                use std::fmt::Write as _;
                let _ = write!(cells[i], "{}", f.value(row));
            }
        }
        let nulls: Vec<bool> = (0..formatters.len()).map(|i| batch.column(i).is_null(row)).collect();
        line.clear();
        write_row(&mut line, cells.iter().zip(nulls).map(|(c, n)| (!n).then_some(c.as_str())), options);
        each(&line);
    }
    Ok(())
}

fn write_row<'a>(text: &mut String, cells: impl Iterator<Item = Option<&'a str>>, options: &CopyOptions) {
    let delim = options.delimiter as char;
    let quote = options.quote as char;
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            text.push(delim);
        }
        match cell {
            None => text.push_str(&options.null),
            Some(v) if options.format == CopyFormat::Text => {
                for ch in v.chars() {
                    match ch {
                        c if c == delim && c != '\t' => {
                            text.push('\\');
                            text.push(c);
                        }
                        '\\' => text.push_str("\\\\"),
                        '\t' => text.push_str("\\t"),
                        '\n' => text.push_str("\\n"),
                        '\r' => text.push_str("\\r"),
                        c => text.push(c),
                    }
                }
            }
            Some(v) => {
                let needs_quotes = v.is_empty()
                    || v == options.null
                    || v.contains(delim)
                    || v.contains(quote)
                    || v.contains('\n')
                    || v.contains('\r');
                if needs_quotes {
                    text.push(quote);
                    for ch in v.chars() {
                        if ch == quote {
                            text.push(quote);
                        }
                        text.push(ch);
                    }
                    text.push(quote);
                } else {
                    text.push_str(v);
                }
            }
        }
    }
    text.push('\n');
}
