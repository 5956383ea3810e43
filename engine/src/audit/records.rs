//! The audit schema's other tables: loads (`ingestions`), provisions (`provisions`,
//! `provision_persons`) and erasures (`erasures`), each appended in one Delta commit by the
//! operation it records, and the checksums those records carry.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use kura_catalog::{AUDIT_SCHEMA, Catalog, SchemaEntry, TableEntry};
use kura_storage::{TableVersionSpec, Warehouse};
use parking_lot::Mutex;

use super::{AUDIT_TABLE, Col, columns, table_schema};
use crate::{Error, Result};

/// The audit schema's tables: the chain of statements, and the records of loads, provisions and
/// erasures.
fn system_tables() -> [(&'static str, SchemaRef); 5] {
    [
        (AUDIT_TABLE, table_schema()),
        (INGESTIONS_TABLE, ingestions_schema()),
        (PROVISIONS_TABLE, provisions_schema()),
        (PROVISION_PERSONS_TABLE, provision_persons_schema()),
        (ERASURES_TABLE, erasures_schema()),
    ]
}

/// The table of erasures, in schema [`AUDIT_SCHEMA`].
pub const ERASURES_TABLE: &str = "erasures";

fn erasures_schema() -> SchemaRef {
    columns(&[
        ("at", Col::Time, false),
        ("user_name", Col::Text, false),
        ("erased", Col::Text, false),
        ("tables", Col::List, true),
        ("rows", Col::Int, false),
        ("retain_hours", Col::Int, false),
        ("files_deleted", Col::Int, false),
    ])
}

/// Records an erasure: what, where (`table: rows`), and what the vacuum deleted.
pub(crate) async fn record_erasure(
    session: &crate::Session,
    what: &str,
    tables: &std::collections::BTreeMap<String, u64>,
    rows: u64,
    retain_hours: u64,
    files: u64,
) -> Result<()> {
    if session.engine.auditor.is_none() {
        return Ok(());
    }
    let tables: Vec<String> = tables.iter().map(|(t, n)| format!("{t}: {n}")).collect();
    append_system_rows(
        session.engine(),
        ERASURES_TABLE,
        vec![now(), text(session.user()), text(what), list(&tables), int(rows), int(retain_hours), int(files)],
    )
    .await
}

/// The table of provisions, in schema [`AUDIT_SCHEMA`].
pub const PROVISIONS_TABLE: &str = "provisions";
/// The research IDs each provision touched, in schema [`AUDIT_SCHEMA`].
pub const PROVISION_PERSONS_TABLE: &str = "provision_persons";

fn provisions_schema() -> SchemaRef {
    columns(&[
        ("provision_id", Col::Text, false),
        ("at", Col::Time, false),
        ("user_name", Col::Text, false),
        ("approval_id", Col::Text, false),
        ("recipient", Col::Text, false),
        ("kind", Col::Text, false),
        ("destination", Col::Text, false),
        ("files", Col::List, true),
        ("checksums", Col::List, true),
        ("rows", Col::Int, false),
        ("persons", Col::Int, false),
        ("manifest_sha256", Col::Text, false),
    ])
}

fn provision_persons_schema() -> SchemaRef {
    columns(&[
        ("provision_id", Col::Text, false),
        ("research_id", Col::Int, false),
    ])
}

/// A provision, for its record.
#[derive(Debug, Clone)]
pub(crate) struct Provision {
    pub(crate) id: String,
    pub(crate) approval: String,
    pub(crate) recipient: String,
    pub(crate) kind: String,
    pub(crate) destination: String,
    pub(crate) files: Vec<String>,
    pub(crate) checksums: Vec<String>,
    pub(crate) rows: u64,
    pub(crate) manifest_sha256: String,
}

/// Records a provision and the research IDs it touched.
pub(crate) async fn record_provision(session: &crate::Session, p: Provision, ids: &std::collections::BTreeSet<i64>) -> Result<()> {
    // The persons first: a provision on record always has its persons.
    let n = ids.len();
    append_system_rows(
        session.engine(),
        PROVISION_PERSONS_TABLE,
        vec![
            Arc::new(datafusion::arrow::array::StringArray::from(vec![p.id.clone(); n])),
            Arc::new(datafusion::arrow::array::Int64Array::from(ids.iter().copied().collect::<Vec<_>>())),
        ],
    )
    .await?;
    append_system_rows(
        session.engine(),
        PROVISIONS_TABLE,
        vec![
            text(&p.id),
            now(),
            text(session.user()),
            text(&p.approval),
            text(&p.recipient),
            text(&p.kind),
            text(&p.destination),
            list(&p.files),
            list(&p.checksums),
            int(p.rows),
            int(n as u64),
            text(&p.manifest_sha256),
        ],
    )
    .await
}

/// The manifest checksum recorded for provision `id`.
pub(crate) async fn provision_manifest_sha(engine: &crate::Engine, id: &str) -> Result<Option<String>> {
    let snapshot = engine.catalog().refresh().await?;
    let Ok(entry) = snapshot.state.table(AUDIT_SCHEMA, PROVISIONS_TABLE) else { return Ok(None) };
    let table = engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let found = super::verify::query_strings(
        &table,
        &format!("SELECT manifest_sha256 FROM audit WHERE provision_id = {}", crate::names::sql_literal(id)),
    )
    .await?;
    Ok(found.into_iter().next())
}

/// Creates the audit schema's tables that do not exist yet; returns the statements table's
/// location.
pub(super) async fn ensure_table(warehouse: &Warehouse, catalog: &Catalog) -> Result<String> {
    let mut snapshot = catalog.refresh().await?;
    for (name, schema) in system_tables() {
        if snapshot.state.table(AUDIT_SCHEMA, name).is_ok() {
            continue;
        }
        let mut entry = TableEntry::new(name, vec![]);
        entry.owner = String::new();
        warehouse.create_table(&entry.location, name, &schema, &[]).await?;
        snapshot = catalog
            .commit_system("kura", &format!("CREATE {AUDIT_SCHEMA}.{name}"), |s| {
                s.create_schema(SchemaEntry::new(AUDIT_SCHEMA), true)?;
                if s.table(AUDIT_SCHEMA, name).is_err() {
                    s.create_table(AUDIT_SCHEMA, entry.clone())?;
                }
                Ok(())
            })
            .await?;
    }
    // Another process may have created them first; its tables are the ones.
    Ok(snapshot.state.table(AUDIT_SCHEMA, AUDIT_TABLE).map_err(Error::catalog)?.location.clone())
}

/// The table of load records, in schema [`AUDIT_SCHEMA`].
pub const INGESTIONS_TABLE: &str = "ingestions";

fn ingestions_schema() -> SchemaRef {
    columns(&[
        ("at", Col::Time, false),
        ("user_name", Col::Text, false),
        ("session_id", Col::Text, false),
        ("target_table", Col::Text, false),
        ("source", Col::Text, false),
        ("format", Col::Text, false),
        ("files", Col::List, true),
        ("checksums", Col::List, true),
        ("bytes", Col::Int, true),
        ("rows", Col::Int, false),
        ("rejected", Col::Int, false),
        ("version_before", Col::Int, true),
        ("version_after", Col::Int, true),
    ])
}

/// One load (COPY FROM a file or STDIN): where it came from and what it made.
#[derive(Debug, Clone)]
pub(crate) struct Ingestion {
    pub(crate) table: String,
    /// The path as given, or `STDIN`.
    pub(crate) source: String,
    pub(crate) format: String,
    pub(crate) files: Vec<String>,
    /// `sha256:<hex>` of each file's bytes (of the client's data for STDIN).
    pub(crate) checksums: Vec<String>,
    pub(crate) bytes: Option<u64>,
    pub(crate) rows: u64,
    pub(crate) rejected: u64,
    pub(crate) version_before: Option<u64>,
    pub(crate) version_after: Option<u64>,
}

/// Appends a load's record to `audit.ingestions` (when the engine audits).
pub(crate) async fn record_ingestion(session: &crate::Session, ing: Ingestion) -> Result<()> {
    if session.engine.auditor.is_none() {
        return Ok(());
    }
    let columns: Vec<ArrayRef> = vec![
        now(),
        text(session.user()),
        text(session.id()),
        text(&ing.table),
        text(&ing.source),
        text(&ing.format),
        list(&ing.files),
        list(&ing.checksums),
        maybe_int(ing.bytes),
        int(ing.rows),
        int(ing.rejected),
        maybe_int(ing.version_before),
        maybe_int(ing.version_after),
    ];
    append_system_rows(session.engine(), INGESTIONS_TABLE, columns).await
}

/// One-row columns of a record: now, a text, a count (or none), a list of texts.
fn now() -> ArrayRef {
    Arc::new(datafusion::arrow::array::TimestampMicrosecondArray::from(vec![chrono::Utc::now().timestamp_micros()]))
}

fn text(v: &str) -> ArrayRef {
    Arc::new(datafusion::arrow::array::StringArray::from(vec![v]))
}

fn int(v: u64) -> ArrayRef {
    maybe_int(Some(v))
}

fn maybe_int(v: Option<u64>) -> ArrayRef {
    Arc::new(datafusion::arrow::array::Int64Array::from(vec![v.map(|v| v as i64)]))
}

fn list(v: &[String]) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for x in v {
        b.values().append_value(x);
    }
    b.append(true);
    Arc::new(b.finish())
}

/// Appends rows (columns in the table's order) to a table of the audit schema, cast to its
/// stored types, in one commit.
async fn append_system_rows(engine: &crate::Engine, name: &str, columns: Vec<ArrayRef>) -> Result<()> {
    let snapshot = engine.catalog().refresh().await?;
    let entry = snapshot.state.table(AUDIT_SCHEMA, name).map_err(Error::catalog)?;
    let table = engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let target = table.snapshot()?.snapshot().arrow_schema();
    let columns = columns
        .iter()
        .zip(target.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("{AUDIT_SCHEMA}.{name}: {e}")))?;
    let batch = RecordBatch::try_new(target, columns).map_err(|e| Error::Invalid(format!("{AUDIT_SCHEMA}.{name}: {e}")))?;
    let table = table.write(vec![batch]).with_save_mode(deltalake::protocol::SaveMode::Append).await?;
    if let Err(e) = kura_storage::checkpoint_if_due(&table).await {
        tracing::warn!(error = %e, table = name, "audit: checkpoint failed");
    }
    Ok(())
}

/// SHA-256 of everything read through it (a load's checksum, computed as it reads).
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) digest: Arc<Mutex<ring::digest::Context>>,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> (Self, Arc<Mutex<ring::digest::Context>>) {
        let digest = Arc::new(Mutex::new(ring::digest::Context::new(&ring::digest::SHA256)));
        (Self { inner, digest: digest.clone() }, digest)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.lock().update(&buf[..n]);
        Ok(n)
    }
}

/// `sha256:<hex>` of what a [`HashingReader`] read.
pub(crate) fn digest_hex(digest: &Mutex<ring::digest::Context>) -> String {
    let d = digest.lock().clone().finish();
    format!("sha256:{}", super::hex(d.as_ref()))
}

/// `sha256:<hex>` of a whole file.
pub(crate) fn file_digest(path: &Path) -> std::io::Result<String> {
    let (mut reader, digest) = HashingReader::new(std::fs::File::open(path)?);
    std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(digest_hex(&digest))
}
