//! Loading CSV (and PostgreSQL text format) and Parquet files into a table.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, StringBuilder, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{SendableRecordBatchStream, collect};
use datafusion::prelude::ParquetReadOptions;
use datafusion::sql::sqlparser::ast::ObjectName;
use encoding_rs_io::DecodeReaderBytesBuilder;
use kura_storage::TableVersionSpec;

use super::options::{CopyFormat, CopyOptions, FileEncoding};
use crate::error::FilePosition;
use crate::names::qualified;
use crate::session::Session;
use crate::{Error, Result};

/// Rows per Arrow batch while loading.
const BATCH_ROWS: usize = 65_536;

/// A row that could not be loaded, kept when the load has a rejects table.
#[derive(Debug, Clone)]
pub(crate) struct Reject {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
    pub record: String,
}

/// Reads a stream once: the one partition of the load's input plan.
pub(crate) struct OnceStream {
    schema: SchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl OnceStream {
    pub(crate) fn new(stream: SendableRecordBatchStream) -> Self {
        Self { schema: stream.schema(), stream: std::sync::Mutex::new(Some(stream)) }
    }
}

impl std::fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnceStream")
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().expect("poisoned").take() {
            Some(s) => s,
            None => {
                let err = DataFusionError::Execution("a COPY input can be read only once".into());
                Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(async { Err(err) })))
            }
        }
    }
}

/// Counts bytes read from the raw file, for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Everything the blocking reader needs.
struct CsvJob {
    display: String,
    target: SchemaRef,
    /// For each file field, the index of the target column it fills.
    file_columns: Vec<usize>,
    options: CopyOptions,
    keep_rejects: bool,
    table: String,
}

pub(crate) async fn load_csv(
    session: &Session,
    name: &ObjectName,
    columns: &[String],
    display: &str,
    reader: Box<dyn Read + Send>,
    total_bytes: Option<u64>,
    options: &CopyOptions,
) -> Result<u64> {
    let qn = qualified(name)?;
    let entry = crate::dml::target_entry(session, &qn).await?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let provider = table.table_provider().await?;
    let target = provider.schema();
    let file_columns = map_columns(&target, columns, &qn.to_string())?;
    let job = CsvJob {
        display: display.to_string(),
        target: target.clone(),
        file_columns,
        options: options.clone(),
        keep_rejects: options.rejects_table.is_some(),
        table: qn.to_string(),
    };

    let bytes_read = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
    let version_before = table.version();
    let (reader, digest) = crate::audit::HashingReader::new(reader);
    let counting = CountingReader { inner: reader, count: bytes_read.clone() };
    let progress = session.progress.clone();
    let label = format!("COPY {qn}");
    let reader_task = tokio::task::spawn_blocking(move || {
        read_csv(job, counting, tx, |done| {
            if let Some(p) = &progress {
                p.update(&label, done, total_bytes);
            }
        })
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let input: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(target.clone(), stream));
    let partition = Arc::new(OnceStream::new(input));
    let exec = StreamingTableExec::try_new(target.clone(), vec![partition], None, vec![], false, None)
        .map_err(Error::from_datafusion)?;
    let state = session.ctx.state();
    let sink = provider
        .insert_into(&state, Arc::new(exec), InsertOp::Append)
        .await
        .map_err(Error::from_datafusion)?;
    let result = collect(sink, session.ctx.task_ctx()).await;
    let rejects = reader_task.await.map_err(|e| Error::Invalid(format!("COPY reader failed: {e}")))?;
    if let Some(p) = &session.progress {
        p.finish(&format!("COPY {qn}"));
    }
    let batches = result.map_err(Error::from_datafusion)?;
    crate::dml::after_write(&table).await;
    let rejects = rejects?;
    let rows = batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>().map(|a| a.value(0)))
        .unwrap_or(0);
    if let Some(rejects_table) = &options.rejects_table {
        if !rejects.is_empty() {
            write_rejects(session, rejects_table, &qn.to_string(), display, &rejects).await?;
        }
        tracing::info!(table = %qn, loaded = rows, rejected = rejects.len(), "COPY finished with rejects");
    }
    let ingestion = crate::audit::Ingestion {
        table: qn.to_string(),
        source: display.to_string(),
        format: format!("{:?}", options.format).to_lowercase(),
        files: file_names(display),
        checksums: vec![crate::audit::digest_hex(&digest)],
        bytes: Some(bytes_read.load(Ordering::Relaxed)),
        rows,
        rejected: rejects.len() as u64,
        version_before,
        version_after: latest_version(session, &entry.location).await,
    };
    crate::audit::record_ingestion(session, ingestion).await?;
    Ok(rows)
}

/// The file a load read (none for the client's data).
fn file_names(display: &str) -> Vec<String> {
    if display == "STDIN" { vec![] } else { vec![display.to_string()] }
}

/// The table's newest version (the one a load just committed, unless another writer followed).
async fn latest_version(session: &Session, location: &str) -> Option<u64> {
    session.engine.warehouse().open_table(location, &TableVersionSpec::Latest).await.ok().and_then(|t| t.version())
}

/// Maps the COPY column list onto target column indices; unlisted columns must accept NULL.
fn map_columns(target: &Schema, columns: &[String], table: &str) -> Result<Vec<usize>> {
    if columns.is_empty() {
        return Ok((0..target.fields().len()).collect());
    }
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let idx = target
            .index_of(c)
            .map_err(|_| Error::UndefinedObject(format!("column \"{c}\" of relation \"{table}\" does not exist")))?;
        if out.contains(&idx) {
            return Err(Error::Invalid(format!("column \"{c}\" specified more than once")));
        }
        out.push(idx);
    }
    for (i, f) in target.fields().iter().enumerate() {
        if !out.contains(&i) && !f.is_nullable() {
            return Err(Error::NotNullViolation { table: table.into(), column: f.name().clone() });
        }
    }
    Ok(out)
}

fn bad(job: &CsvJob, line: u64, column: Option<usize>, message: String) -> Error {
    Error::BadInput {
        message,
        position: FilePosition {
            file: job.display.clone(),
            line,
            column: column.map(|c| job.target.field(job.file_columns[c]).name().clone()),
        },
    }
}

/// The blocking half of a load: decode, split, convert, and send batches. Returns the rejects.
fn read_csv<R: Read>(
    job: CsvJob,
    reader: CountingReader<R>,
    tx: tokio::sync::mpsc::Sender<Result<RecordBatch, DataFusionError>>,
    progress: impl Fn(u64),
) -> Result<Vec<Reject>> {
    let counter = reader.count.clone();
    let encoding = match job.options.encoding {
        FileEncoding::Utf8 => encoding_rs::UTF_8,
        FileEncoding::ShiftJis => encoding_rs::SHIFT_JIS,
    };
    let decoded = DecodeReaderBytesBuilder::new().encoding(Some(encoding)).strip_bom(true).build(reader);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(job.options.delimiter)
        .quoting(job.options.format == CopyFormat::Csv)
        .quote(job.options.quote)
        .escape(job.options.escape)
        .double_quote(job.options.escape.is_none())
        .buffer_capacity(1 << 20)
        .from_reader(decoded);
    let send_err = |e: Error| {
        let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
    };
    let mut rejects = Vec::new();
    let mut batch = BatchBuilder::new(job.file_columns.len());
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    let text_format = job.options.format == CopyFormat::Text;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let err = bad(&job, line, None, format!("malformed CSV: {}", csv_error_kind(&e)));
                send_err(err);
                return Ok(rejects);
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if first {
            first = false;
            if job.options.header {
                if job.options.header_match {
                    if let Some(e) = header_mismatch(&job, &record, line) {
                        send_err(e);
                        return Ok(rejects);
                    }
                }
                continue;
            }
        }
        // A row problem found while splitting: (column index if any, message).
        let problem = if record.len() != job.file_columns.len() {
            Some((None, format!("expected {} fields, found {}", job.file_columns.len(), record.len())))
        } else {
            record.iter().enumerate().find_map(|(i, f)| {
                let s = std::str::from_utf8(f).ok()?;
                s.contains('\u{FFFD}').then(|| (Some(i), format!("invalid byte sequence for encoding {}", encoding.name())))
            })
        };
        if let Some((column, message)) = problem {
            if job.keep_rejects {
                rejects.push(Reject {
                    line,
                    column: column.map(|c| job.target.field(job.file_columns[c]).name().clone()),
                    message,
                    record: String::from_utf8_lossy(record.as_slice()).into_owned(),
                });
                continue;
            }
            send_err(bad(&job, line, column, message));
            return Ok(rejects);
        }
        batch.push(&record, line, &job.options.null, text_format);
        if batch.rows() >= BATCH_ROWS {
            match batch.finish(&job, &mut rejects) {
                Ok(b) => {
                    if tx.blocking_send(Ok(b)).is_err() {
                        return Ok(rejects); // the writer stopped; its error is reported there
                    }
                }
                Err(e) => {
                    send_err(e);
                    return Ok(rejects);
                }
            }
            progress(counter.load(Ordering::Relaxed));
        }
    }
    if batch.rows() > 0 {
        match batch.finish(&job, &mut rejects) {
            Ok(b) => {
                let _ = tx.blocking_send(Ok(b));
            }
            Err(e) => send_err(e),
        }
    }
    progress(counter.load(Ordering::Relaxed));
    Ok(rejects)
}

/// `HEADER MATCH`: the first record must name the loaded columns, in order.
fn header_mismatch(job: &CsvJob, record: &csv::ByteRecord, line: u64) -> Option<Error> {
    if record.len() != job.file_columns.len() {
        return Some(bad(job, line, None, format!("header has {} fields, expected {}", record.len(), job.file_columns.len())));
    }
    for (i, field) in record.iter().enumerate() {
        let expected = job.target.field(job.file_columns[i]).name();
        let got = std::str::from_utf8(field).unwrap_or("").trim();
        if got != expected {
            return Some(bad(job, line, Some(i), format!("header names \"{got}\" where \"{expected}\" is expected")));
        }
    }
    None
}

fn csv_error_kind(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".into(),
        _ => "unterminated quote or invalid field".into(),
    }
}

/// Collects fields column by column as strings; conversion happens per batch with Arrow's casts.
struct BatchBuilder {
    columns: Vec<StringBuilder>,
    lines: Vec<u64>,
}

impl BatchBuilder {
    fn new(n: usize) -> Self {
        Self { columns: (0..n).map(|_| StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8)).collect(), lines: vec![] }
    }

    fn rows(&self) -> usize {
        self.lines.len()
    }

    fn push(&mut self, record: &csv::ByteRecord, line: u64, null: &str, text_format: bool) {
        for (builder, field) in self.columns.iter_mut().zip(record.iter()) {
            // Already valid UTF-8: the decoder produced it.
            let s = std::str::from_utf8(field).unwrap_or("");
            if s == null {
                builder.append_null();
            } else if text_format && s.contains('\\') {
                builder.append_value(unescape_text(s));
            } else {
                builder.append_value(s);
            }
        }
        self.lines.push(line);
    }

    /// Converts the collected strings to the target types. Bad cells either fail the load or,
    /// with a rejects table, drop their row into `rejects`.
    fn finish(&mut self, job: &CsvJob, rejects: &mut Vec<Reject>) -> Result<RecordBatch> {
        let n = self.rows();
        let strings: Vec<StringArray> = self.columns.iter_mut().map(|b| b.finish()).collect();
        let lines = std::mem::take(&mut self.lines);
        let mut keep = vec![true; n];
        let mut arrays: Vec<ArrayRef> =
            job.target.fields().iter().map(|f| new_null_array(f.data_type(), n)).collect();
        let options = CastOptions { safe: true, format_options: FormatOptions::default() };
        for (file_idx, input) in strings.iter().enumerate() {
            let target_idx = job.file_columns[file_idx];
            let field = job.target.field(target_idx);
            let converted: ArrayRef = if matches!(field.data_type(), DataType::Utf8) {
                Arc::new(input.clone())
            } else {
                let trimmed: StringArray = if matches!(field.data_type(), DataType::Date32) {
                    input.iter().map(|v| v.map(normalize_date)).collect()
                } else {
                    input.iter().map(|v| v.map(str::trim)).collect()
                };
                cast_with_options(&trimmed, field.data_type(), &options).map_err(DataFusionError::from)?
            };
            for row in 0..n {
                let problem = if input.is_valid(row) && converted.is_null(row) {
                    Some(format!("invalid input for column of type {}", sql_type_name(field.data_type())))
                } else if converted.is_null(row) && !field.is_nullable() {
                    Some("null value violates not-null constraint".to_string())
                } else {
                    None
                };
                if let Some(message) = problem {
                    if !job.keep_rejects {
                        return Err(bad(job, lines[row], Some(file_idx), message));
                    }
                    if keep[row] {
                        keep[row] = false;
                        rejects.push(Reject {
                            line: lines[row],
                            column: Some(field.name().clone()),
                            message,
                            record: record_text(&strings, row, job.options.delimiter),
                        });
                    }
                }
            }
            arrays[target_idx] = converted;
        }
        // Columns absent from the file stay NULL; map_columns checked they accept it.
        let build_err = |e: datafusion::arrow::error::ArrowError| {
            Error::Invalid(format!("could not build rows for table \"{}\": {e}", job.table))
        };
        if keep.iter().all(|k| *k) {
            return RecordBatch::try_new(job.target.clone(), arrays).map_err(build_err);
        }
        // Rejected rows may hold NULLs in NOT NULL columns: filter under a relaxed schema first.
        let relaxed = Arc::new(Schema::new(
            job.target.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
        ));
        let all = RecordBatch::try_new(relaxed, arrays).map_err(build_err)?;
        let kept = filter_record_batch(&all, &BooleanArray::from(keep)).map_err(build_err)?;
        RecordBatch::try_new(job.target.clone(), kept.columns().to_vec()).map_err(build_err)
    }
}

/// Municipal systems write dates as `2024/04/01` or `20240401` as often as ISO; accept those.
fn normalize_date(value: &str) -> std::borrow::Cow<'_, str> {
    let v = value.trim();
    let b = v.as_bytes();
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        return format!("{}-{}-{}", &v[0..4], &v[4..6], &v[6..8]).into();
    }
    if b.len() >= 8 && b.len() <= 10 && b[4] == b'/' && v.chars().all(|c| c.is_ascii_digit() || c == '/') {
        let parts: Vec<&str> = v.split('/').collect();
        if let [y, m, d] = parts[..] {
            return format!("{y}-{m:0>2}-{d:0>2}").into();
        }
    }
    v.into()
}

fn record_text(columns: &[StringArray], row: usize, delimiter: u8) -> String {
    let sep = (delimiter as char).to_string();
    columns.iter().map(|c| if c.is_null(row) { "" } else { c.value(row) }).collect::<Vec<_>>().join(&sep)
}

/// PostgreSQL text-format escapes.
fn unescape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The SQL name of a column type, for messages.
pub(crate) fn sql_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "text".into(),
        DataType::Binary => "bytea".into(),
        other => other.to_string(),
    }
}

/// Appends the rejected rows to `rejects_table`, creating it on first use.
async fn write_rejects(session: &Session, rejects_table: &str, table: &str, file: &str, rejects: &[Reject]) -> Result<()> {
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
    let name = crate::parser::parse_object_name(rejects_table)?;
    let qn = qualified(&name)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("loaded_at", DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, true),
    ]));
    let exists = session.engine.catalog().cached().state.table(&qn.schema, &qn.name).is_ok();
    if !exists {
        crate::ddl::create_table_from_schema(session, &qn, &schema, &[]).await?;
    }
    let now = chrono::Utc::now().timestamp_micros();
    let n = rejects.len();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![table; n])),
            Arc::new(StringArray::from(vec![file; n])),
            Arc::new(Int64Array::from(rejects.iter().map(|r| r.line as i64).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rejects.iter().map(|r| r.column.clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rejects.iter().map(|r| r.message.clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rejects.iter().map(|r| Some(r.record.clone())).collect::<Vec<_>>())),
        ],
    )
    .map_err(|e| Error::from_datafusion(e.into()))?;
    crate::dml::append_batches(session, &qn, vec![batch]).await?;
    Ok(())
}

/// `COPY t FROM 'file.parquet' WITH (FORMAT parquet)`: columns are matched by name.
pub(crate) async fn load_parquet(
    session: &Session,
    name: &ObjectName,
    columns: &[String],
    display: &str,
    full: &Path,
) -> Result<u64> {
    let qn = qualified(name)?;
    let entry = crate::dml::target_entry(session, &qn).await?;
    if !full.exists() {
        return Err(Error::File {
            path: display.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let target = table.table_provider().await?.schema();
    let wanted = map_columns(&target, columns, &qn.to_string())?;
    let path = full.to_string_lossy().to_string();
    let df = session
        .ctx
        .read_parquet(path, ParquetReadOptions::default())
        .await
        .map_err(Error::from_datafusion)?;
    let source = df.schema().clone();
    let mut exprs = Vec::with_capacity(target.fields().len());
    for (i, field) in target.fields().iter().enumerate() {
        let found = wanted.contains(&i).then(|| {
            source
                .fields()
                .iter()
                .find(|f| f.name() == field.name())
                .or_else(|| source.fields().iter().find(|f| f.name().eq_ignore_ascii_case(field.name())))
        });
        let expr = match found.flatten() {
            Some(f) => cast(col(datafusion::common::Column::new_unqualified(f.name())), field.data_type().clone()),
            None if field.is_nullable() => cast(lit(datafusion::scalar::ScalarValue::Null), field.data_type().clone()),
            None => {
                return Err(Error::BadInput {
                    message: format!("the file has no column \"{}\", which is NOT NULL", field.name()),
                    position: FilePosition { file: display.to_string(), line: 0, column: Some(field.name().clone()) },
                });
            }
        };
        exprs.push(expr.alias(field.name()));
    }
    let plan = LogicalPlanBuilder::from(df.into_unoptimized_plan()).project(exprs)?.build()?;
    let version_before = table.version();
    let rows = crate::dml::insert_into_table(session, table, &qn.to_string(), plan).await?;
    if session.engine.audits() {
        let file = full.to_path_buf();
        let checksum = tokio::task::spawn_blocking(move || crate::audit::file_digest(&file))
            .await
            .map_err(|e| Error::Invalid(format!("checksum of {display}: {e}")))?
            .map_err(|e| Error::File { path: display.to_string(), source: e })?;
        let ingestion = crate::audit::Ingestion {
            table: qn.to_string(),
            source: display.to_string(),
            format: "parquet".into(),
            files: file_names(display),
            checksums: vec![checksum],
            bytes: std::fs::metadata(full).ok().map(|m| m.len()),
            rows,
            rejected: 0,
            version_before,
            version_after: latest_version(session, &entry.location).await,
        };
        crate::audit::record_ingestion(session, ingestion).await?;
    }
    Ok(rows)
}
