//! Loading claims files (レセプト電算, the electronic receipt format):
//! `COPY schema FROM 'dir' WITH (FORMAT receipt [, ON_ERROR 'abort' | 'skip'] [, ENCODING ..])`
//! and `kura import receipts DIR`.
//!
//! The files under `dir` (`*.UKE`, `*.CSV`, any depth; or one named file) are parsed into the
//! normalised tables of [`layout`] in schema `schema`, created on first use: `claims` (headers,
//! with every identity column), `insurers` (HO/KO), `diagnoses` (SY), `procedures` (SI), `drugs`
//! (IY), `materials` (TO), `receipt_files` (one row per file section: facility, billing month,
//! receipts, points, SHA-256) and `receipt_rejects`.
//!
//! Guarantees:
//! - Everything is parsed and checked before anything is written. With `ON_ERROR 'abort'` (the
//!   default) one malformed record fails the load, naming file, line, record type and field,
//!   and nothing is loaded. With `'skip'` the receipts holding malformed records (and files
//!   with a malformed IR or GO record) are left out and listed in `receipt_rejects` (file, line,
//!   record type, error: never the record, which holds names and card numbers); the rest load.
//! - Memory stays bounded: parsed rows are spilled to Arrow IPC files in a private temporary
//!   directory, then streamed into the tables.
//! - Each table's commit carries the batch's ID (SHA-256 of the files' names and contents) as a
//!   Delta application transaction, and `receipt_files` is committed last. A load killed between
//!   commits is completed by running it again on the same files (tables that have the batch are
//!   not written twice); a batch already loaded whole is refused.

mod layout;
mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::sql::sqlparser::ast::ObjectName;
use deltalake::kernel::transaction::CommitProperties;
use kura_storage::TableVersionSpec;

use crate::copy::{CopyOptions, FileEncoding, OnError};
use crate::error::FilePosition;
use crate::names::QualifiedName;
use crate::session::Session;
use crate::{Error, Result};
use layout::{TABLES, t};
use parse::{Reject, Val};

/// Rows per spilled batch.
const BATCH_ROWS: usize = 8192;

/// Tables in commit order: details, headers, rejects, and the file list last (a batch is whole
/// when `receipt_files` has it).
const COMMIT_ORDER: [usize; t::COUNT] =
    [t::INSURERS, t::DIAGNOSES, t::PROCEDURES, t::DRUGS, t::MATERIALS, t::CLAIMS, t::REJECTS, t::FILES];

/// A file to read: its path, and its name as reported (relative to the named directory).
struct Input {
    path: PathBuf,
    display: String,
}

/// `COPY schema FROM 'path' WITH (FORMAT receipt ...)`. Returns the number of receipts loaded.
pub(crate) async fn copy_from(
    session: &Session,
    target: &ObjectName,
    path: &str,
    options: &CopyOptions,
) -> Result<u64> {
    let schema = match crate::names::parts(target)?.as_slice() {
        [s] => s.clone(),
        _ => {
            return Err(Error::Invalid(format!(
                "COPY ... WITH (FORMAT receipt) loads into a schema (its tables are made for it): name a schema, not \"{target}\""
            )));
        }
    };
    session.snapshot().state.schema(&schema).map_err(Error::catalog)?;
    let root = session.resolve_path(path);
    let inputs = list_files(&root, path)?;
    let tables: Vec<QualifiedName> =
        TABLES.iter().map(|d| QualifiedName { schema: schema.clone(), name: d.name.to_string() }).collect();
    check_tables(session, &tables, false).await?;

    let shift_jis = options.encoding == FileEncoding::ShiftJis;
    let progress = session.progress.clone();
    let label = format!("COPY {schema} (receipts)");
    let parsed = tokio::task::spawn_blocking(move || {
        parse_all(inputs, shift_jis, |done, total| {
            if let Some(p) = &progress {
                p.update(&label, done, Some(total));
            }
        })
    })
    .await
    .map_err(|e| Error::Invalid(format!("claims parser failed: {e}")))??;
    if let Some(p) = &session.progress {
        p.finish(&format!("COPY {schema} (receipts)"));
    }
    if options.on_error == OnError::Abort {
        if let Some(first) = parsed.rejects.first() {
            return Err(abandoned(first, parsed.rejects.len(), &schema));
        }
    }
    let mut parsed = parsed;
    parsed.spill_meta_rows()?;
    check_tables(session, &tables, true).await?;

    let app_id = format!("kura-receipts-{}", parsed.batch_id);
    let files_entry = crate::dml::target_entry(session, &tables[t::FILES]).await?;
    let files_table = session.engine.warehouse().open_table(&files_entry.location, &TableVersionSpec::Latest).await?;
    if has_batch(&files_table, &app_id).await? {
        return Err(Error::Invalid(format!(
            "these claims files were loaded before (batch {}); nothing was loaded again",
            &parsed.batch_id[..16]
        )));
    }
    let checksums: Vec<String> = parsed.files.iter().map(|(_, sha)| sha.clone()).collect();
    let names: Vec<String> = parsed.files.iter().map(|(n, _)| n.clone()).collect();
    for &ti in &COMMIT_ORDER {
        let Some(spill) = parsed.spill.take(ti) else {
            continue;
        };
        let qn = &tables[ti];
        let entry = crate::dml::target_entry(session, qn).await?;
        let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
        if has_batch(&table, &app_id).await? {
            tracing::info!(table = %qn, batch = %parsed.batch_id, "claims batch already in this table (an earlier load was interrupted); not written again");
            continue;
        }
        let version_before = table.version();
        let provider = StreamingTable::try_new(spill.schema.clone(), vec![Arc::new(spill.clone())])
            .map_err(Error::from_datafusion)?;
        let plan =
            LogicalPlanBuilder::scan("__kura_receipts", provider_as_source(Arc::new(provider)), None)?.build()?;
        let commit =
            CommitProperties::default().with_application_transaction(deltalake::kernel::Transaction::new(&app_id, 1));
        let written = table
            .write(Vec::<RecordBatch>::new())
            .with_input_plan(plan)
            .with_session_state(Arc::new(session.ctx.state()))
            .with_save_mode(deltalake::protocol::SaveMode::Append)
            .with_commit_properties(commit)
            .await?;
        crate::dml::after_write(&written).await;
        let ingestion = crate::audit::Ingestion {
            table: qn.to_string(),
            source: path.to_string(),
            format: "receipt".into(),
            files: names.clone(),
            checksums: checksums.clone(),
            bytes: Some(parsed.bytes),
            rows: spill.rows as u64,
            rejected: if ti == t::CLAIMS { parsed.rejected_receipts } else { 0 },
            version_before,
            version_after: written.version().map(|v| v as u64),
        };
        crate::audit::record_ingestion(session, ingestion).await?;
    }
    tracing::info!(
        schema = %schema,
        files = parsed.files.len(),
        receipts = parsed.receipts,
        rejected = parsed.rejects.len(),
        skipped_records = parsed.skipped_records,
        "claims files loaded"
    );
    Ok(parsed.receipts)
}

async fn has_batch(table: &deltalake::DeltaTable, app_id: &str) -> Result<bool> {
    Ok(table.snapshot()?.transaction_version(table.log_store().as_ref(), app_id).await?.is_some())
}

fn abandoned(first: &Reject, count: usize, schema: &str) -> Error {
    let ty = first.record_type.as_deref().map(|t| format!("{t} record: ")).unwrap_or_default();
    let more = if count > 1 { format!(" ({} problems in all)", count) } else { String::new() };
    Error::BadInput {
        message: format!(
            "{ty}{}; nothing was loaded{more}. ON_ERROR 'skip' loads the sound receipts and lists the others in {schema}.receipt_rejects",
            first.error
        ),
        position: FilePosition { file: first.file.clone(), line: first.line, column: None },
    }
}

/// Refuses tables that exist with other columns; with `create`, creates those that do not exist.
async fn check_tables(session: &Session, tables: &[QualifiedName], create: bool) -> Result<()> {
    for (def, qn) in TABLES.iter().zip(tables) {
        let want = def.schema();
        if !crate::ddl::relation_exists(session, qn)? {
            if create {
                crate::ddl::create_table_from_schema(session, qn, &want, &[]).await?;
            }
            continue;
        }
        let have = crate::ddl::table_schema(session, qn).await?;
        let same = have.fields().len() == want.fields().len()
            && have
                .fields()
                .iter()
                .zip(want.fields())
                .all(|(a, b)| a.name() == b.name() && same_type(a.data_type(), b.data_type()));
        if !same {
            return Err(Error::Invalid(format!(
                "table \"{qn}\" exists with other columns than a claims load writes; load into another schema"
            )));
        }
    }
    Ok(())
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    a == b
        || matches!(
            (a, b),
            (DataType::Utf8View | DataType::LargeUtf8, DataType::Utf8)
                | (DataType::Timestamp(..), DataType::Timestamp(..))
        )
}

/// The claims files under `root` (or `root` itself), in path order.
fn list_files(root: &Path, display: &str) -> Result<Vec<Input>> {
    let meta = std::fs::metadata(root).map_err(|e| Error::File { path: display.to_string(), source: e })?;
    if meta.is_file() {
        return Ok(vec![Input { path: root.to_path_buf(), display: display.to_string() }]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::File { path: display.to_string(), source: e })?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::File { path: display.to_string(), source: e })?;
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.to_ascii_lowercase().ends_with(".uke") || name.to_ascii_lowercase().ends_with(".csv") {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().to_string();
                out.push(Input { path: p, display: rel });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("no claims files (*.UKE, *.CSV) under '{display}'")));
    }
    out.sort_by(|a, b| a.display.cmp(&b.display));
    Ok(out)
}

/// One table's spilled rows, read back as a stream.
#[derive(Clone, Debug)]
struct Spill {
    path: PathBuf,
    schema: SchemaRef,
    rows: usize,
}

impl PartitionStream for Spill {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let batches: Box<dyn Iterator<Item = datafusion::error::Result<RecordBatch>> + Send> =
            match std::fs::File::open(&self.path).map_err(datafusion::error::DataFusionError::from).and_then(|f| {
                FileReader::try_new(std::io::BufReader::new(f), None).map_err(datafusion::error::DataFusionError::from)
            }) {
                Ok(reader) => Box::new(reader.map(|b| b.map_err(datafusion::error::DataFusionError::from))),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::iter(batches)))
    }
}

/// Per-table writers of spilled rows, in a private temporary directory.
struct Spills {
    dir: tempfile::TempDir,
    writers: Vec<Option<(FileWriter<std::io::BufWriter<std::fs::File>>, usize)>>,
    pending: Vec<Vec<Vec<Val>>>,
    done: Vec<Option<Spill>>,
}

impl Spills {
    fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kura-receipts-")
            .tempdir()
            .map_err(|e| Error::Invalid(format!("cannot create a temporary directory for the load: {e}")))?;
        Ok(Spills {
            dir,
            writers: (0..t::COUNT).map(|_| None).collect(),
            pending: (0..t::COUNT).map(|_| Vec::new()).collect(),
            done: (0..t::COUNT).map(|_| None).collect(),
        })
    }

    fn push(&mut self, table: usize, rows: Vec<Vec<Val>>) -> Result<()> {
        self.pending[table].extend(rows);
        if self.pending[table].len() >= BATCH_ROWS {
            self.flush(table)?;
        }
        Ok(())
    }

    fn flush(&mut self, table: usize) -> Result<()> {
        if self.pending[table].is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending[table]);
        let schema = TABLES[table].schema();
        let batch = to_batch(&schema, &rows)?;
        let spill_err =
            |e: datafusion::arrow::error::ArrowError| Error::Invalid(format!("cannot spill parsed claims: {e}"));
        if self.writers[table].is_none() {
            let path = self.dir.path().join(TABLES[table].name);
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::File { path: path.display().to_string(), source: e })?;
            self.writers[table] =
                Some((FileWriter::try_new(std::io::BufWriter::new(file), &schema).map_err(spill_err)?, 0));
        }
        let (w, n) = self.writers[table].as_mut().expect("writer opened above");
        w.write(&batch).map_err(spill_err)?;
        *n += rows.len();
        Ok(())
    }

    /// Closes every writer; afterwards [`Spills::take`] hands out the files.
    fn close(&mut self) -> Result<()> {
        for table in 0..t::COUNT {
            self.flush(table)?;
            if let Some((mut w, rows)) = self.writers[table].take() {
                w.finish().map_err(|e| Error::Invalid(format!("cannot spill parsed claims: {e}")))?;
                self.done[table] = Some(Spill {
                    path: self.dir.path().join(TABLES[table].name),
                    schema: TABLES[table].schema(),
                    rows,
                });
            }
        }
        Ok(())
    }

    fn take(&mut self, table: usize) -> Option<Spill> {
        self.done[table].take()
    }
}

/// Everything the parse produced.
struct Parsed {
    spill: Spills,
    /// (name, SHA-256 hex) per file.
    files: Vec<(String, String)>,
    sections: Vec<(String, String, parse::Section)>,
    rejects: Vec<Reject>,
    batch_id: String,
    bytes: u64,
    receipts: u64,
    rejected_receipts: u64,
    skipped_records: u64,
}

impl Parsed {
    /// Adds the `receipt_files` and `receipt_rejects` rows and closes the spill.
    fn spill_meta_rows(&mut self) -> Result<()> {
        let now = Val::I64(chrono::Utc::now().timestamp_micros());
        let id = Val::Str(self.batch_id.clone());
        let files = self
            .sections
            .iter()
            .map(|(file, sha, s)| {
                vec![
                    id.clone(),
                    Val::Str(file.clone()),
                    Val::Str(sha.clone()),
                    Val::Str(s.claim_kind.to_string()),
                    s.payer.map_or(Val::Null, |p| Val::Str(p.to_string())),
                    Val::Str(s.facility_code.clone()),
                    s.facility_name.clone().map_or(Val::Null, Val::Str),
                    Val::Date(s.billing_month),
                    Val::I64(s.receipts),
                    Val::I64(s.points),
                    now.clone(),
                ]
            })
            .collect();
        self.spill.push(t::FILES, files)?;
        let rejects = self
            .rejects
            .iter()
            .map(|r| {
                vec![
                    id.clone(),
                    Val::Str(r.file.clone()),
                    Val::I64(r.line as i64),
                    r.record_type.clone().map_or(Val::Null, Val::Str),
                    r.receipt_line.map_or(Val::Null, |l| Val::I64(l as i64)),
                    r.field.clone().map_or(Val::Null, Val::Str),
                    Val::Str(r.error.clone()),
                    now.clone(),
                ]
            })
            .collect();
        self.spill.push(t::REJECTS, rejects)?;
        self.spill.close()
    }
}

fn parse_all(inputs: Vec<Input>, shift_jis: bool, progress: impl Fn(u64, u64)) -> Result<Parsed> {
    let total: u64 = inputs.iter().filter_map(|i| std::fs::metadata(&i.path).ok()).map(|m| m.len()).sum();
    let mut spill = Spills::new()?;
    let mut parsed_files = Vec::with_capacity(inputs.len());
    let mut sections = Vec::new();
    let mut rejects = Vec::new();
    let (mut bytes, mut receipts, mut skipped_records) = (0u64, 0u64, 0u64);
    let mut batch = ring::digest::Context::new(&ring::digest::SHA256);
    for input in inputs {
        let data = std::fs::read(&input.path).map_err(|e| Error::File { path: input.display.clone(), source: e })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &data);
        let sha = crate::audit::hex(digest.as_ref());
        batch.update(input.display.as_bytes());
        batch.update(&[0]);
        batch.update(digest.as_ref());
        let mut result = parse::parse_file(&input.display, &data, digest.as_ref(), shift_jis);
        bytes += data.len() as u64;
        receipts += result.receipts;
        skipped_records += result.skipped_records;
        rejects.append(&mut result.rejects);
        for s in result.sections {
            sections.push((input.display.clone(), sha.clone(), s));
        }
        for (table, rows) in result.rows.into_iter().enumerate() {
            spill.push(table, rows)?;
        }
        parsed_files.push((input.display, sha));
        progress(bytes, total);
    }
    let rejected_receipts =
        rejects.iter().filter_map(|r| r.receipt_line.map(|l| (r.file.clone(), l))).collect::<BTreeMap<_, _>>().len()
            as u64;
    Ok(Parsed {
        spill,
        files: parsed_files,
        sections,
        rejects,
        batch_id: crate::audit::hex(batch.finish().as_ref()),
        bytes,
        receipts,
        rejected_receipts,
        skipped_records,
    })
}

/// Builds a batch of `schema` from rows of values (types as the layout declares them).
fn to_batch(schema: &SchemaRef, rows: &[Vec<Val>]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let cell = |r: &Vec<Val>| r.get(i).cloned().unwrap_or(Val::Null);
        let array: ArrayRef = match field.data_type() {
            DataType::Utf8 => {
                let mut b = StringBuilder::with_capacity(n, n * 8);
                for r in rows {
                    match cell(r) {
                        Val::Str(s) => b.append_value(s),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(int(&cell(r))));
                Arc::new(b.finish())
            }
            DataType::Int32 => {
                let mut b = Int32Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(int(&cell(r)).map(|v| v as i32)));
                Arc::new(b.finish())
            }
            DataType::Int16 => {
                let mut b = Int16Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(int(&cell(r)).map(|v| v as i16)));
                Arc::new(b.finish())
            }
            DataType::Float64 => {
                let mut b = Float64Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(if let Val::F64(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(if let Val::Date(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(if let Val::Bool(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            DataType::Timestamp(_, tz) => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                rows.iter().for_each(|r| b.append_option(int(&cell(r))));
                Arc::new(b.finish().with_timezone_opt(tz.clone()))
            }
            other => {
                return Err(Error::Invalid(format!("claims layout: unexpected type {other}")));
            }
        };
        columns.push(array);
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Invalid(format!("claims rows do not fit their table: {e}")))
}

fn int(v: &Val) -> Option<i64> {
    if let Val::I64(v) = v { Some(*v) } else { None }
}
