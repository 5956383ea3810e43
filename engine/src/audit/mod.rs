//! The audit trail: one record per statement (who, from where, what, which objects and policies,
//! how many rows, how long, how it ended), kept in the warehouse's Delta table `audit.statements`,
//! hash-chained so that a changed, removed or reordered record is evident.
//!
//! How a record travels, and what that guarantees:
//! 1. When a statement ends (its last row streamed, its command done, its error raised), its
//!    record is appended to this process's journal, a local file, before the client is told the
//!    statement completed. A record in the journal survives a crash of the process (kill -9,
//!    panic, OOM): the write is in the operating system's hands. With
//!    [`AuditOptions::sync_each`] it is also fsynced before the acknowledgement, which covers a
//!    crash of the machine; without it, each flush fsyncs, so a power loss can lose at most the
//!    records of the last flush interval.
//! 2. A background task flushes the journal's records to `audit.statements` in batches (every
//!    [`AuditOptions::flush_interval`] or [`FLUSH_RECORDS`] records), in one Delta commit each,
//!    chaining them: record `n` carries `seq = n`, the hash of record `n-1` and its own hash
//!    (SHA-256 over the previous hash and the record's fields). Commits never retry blindly:
//!    if another process appended first, the chain is re-read and the batch re-chained, so the
//!    table holds one chain whatever the number of writers.
//! 3. A journal segment is deleted once its records are committed. A process that starts finds
//!    segments no live process holds (each holds a lock on its own) and flushes their records,
//!    skipping those already committed.
//!
//! The audit schema is Kura's own: the catalog refuses changes to it and the engine refuses
//! writes to its tables, from any session; auditors and operators read it.

mod records;
pub(crate) mod redact;
mod verify;

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::physical_plan::{RecordBatchStream, SendableRecordBatchStream};
use futures::Stream;
use kura_catalog::{AUDIT_SCHEMA, Catalog};
use kura_storage::{TableVersionSpec, Warehouse};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::parser::{CopyEndpoint, CopySource, ParsedStatement, StatementKind};
use datafusion::sql::sqlparser::ast::Statement;
use crate::{Error, Result};

pub use records::{ERASURES_TABLE, INGESTIONS_TABLE, PROVISION_PERSONS_TABLE, PROVISIONS_TABLE};
pub(crate) use records::{
    HashingReader, Ingestion, Provision, digest_hex, file_digest, provision_manifest_sha, record_erasure, record_ingestion,
    record_provision,
};
pub use verify::{AuditReport, verify};

/// The audit trail's table, in schema [`AUDIT_SCHEMA`].
pub const AUDIT_TABLE: &str = "statements";
/// A flush starts early once this many records wait.
pub const FLUSH_RECORDS: usize = 2_000;
/// The previous hash of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether and how statements are audited.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Record every statement of every session (embedded and logged-in).
    pub enabled: bool,
    /// Where this process keeps its journal. `None`: `<warehouse>/_kura/audit/journal` for a
    /// local warehouse, else a folder under the user's state directory named after the
    /// warehouse URL.
    pub journal_dir: Option<PathBuf>,
    /// fsync each record before the statement is acknowledged (survives a machine crash, costs
    /// one disk flush per statement).
    pub sync_each: bool,
    /// How often waiting records are flushed to the audit table.
    pub flush_interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self { enabled: false, journal_dir: None, sync_each: false, flush_interval: Duration::from_secs(1) }
    }
}

impl AuditOptions {
    /// Auditing on, with the default journal and flush interval.
    pub fn on() -> Self {
        Self { enabled: true, ..Self::default() }
    }
}

/// One statement's record, as journaled and as hashed (field order is part of the hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) at_us: i64,
    pub(crate) duration_us: i64,
    pub(crate) user: String,
    pub(crate) roles: Vec<String>,
    pub(crate) client: String,
    pub(crate) session: String,
    pub(crate) kind: String,
    pub(crate) statement: String,
    pub(crate) read: Vec<String>,
    pub(crate) written: Vec<String>,
    pub(crate) policies: Vec<String>,
    pub(crate) rows: Option<i64>,
    pub(crate) outcome: String,
    pub(crate) sqlstate: Option<String>,
    pub(crate) error: Option<String>,
}

/// `hash(prev, seq, record)`: hex SHA-256 over the previous hash and the record's fields.
pub(crate) fn chain_hash(prev: &str, seq: i64, record: &Record) -> String {
    let body = serde_json::to_vec(&(seq, record)).expect("a record serialises");
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(b"\n");
    ctx.update(&body);
    hex(ctx.finish().as_ref())
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The columns of `audit.statements`.
pub(crate) fn table_schema() -> SchemaRef {
    columns(&[
        ("seq", Col::Int, false),
        ("record_id", Col::Text, false),
        ("at", Col::Time, false),
        ("duration_us", Col::Int, false),
        ("user_name", Col::Text, false),
        ("roles", Col::List, true),
        ("client", Col::Text, false),
        ("session_id", Col::Text, false),
        ("kind", Col::Text, false),
        ("statement", Col::Text, false),
        ("objects_read", Col::List, true),
        ("objects_written", Col::List, true),
        ("policies", Col::List, true),
        ("rows", Col::Int, true),
        ("outcome", Col::Text, false),
        ("sqlstate", Col::Text, true),
        ("error", Col::Text, true),
        ("prev_hash", Col::Text, false),
        ("hash", Col::Text, false),
    ])
}

/// Column types of the audit schema's tables.
#[derive(Clone, Copy)]
enum Col {
    Text,
    Int,
    Time,
    List,
}

/// A table's columns: (name, type, nullable).
fn columns(cols: &[(&str, Col, bool)]) -> SchemaRef {
    let field = |(name, col, nullable): &(&str, Col, bool)| {
        let t = match col {
            Col::Text => DataType::Utf8,
            Col::Int => DataType::Int64,
            Col::Time => DataType::Timestamp(TimeUnit::Microsecond, None),
            Col::List => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        };
        Field::new(*name, t, *nullable)
    };
    Arc::new(Schema::new(cols.iter().map(field).collect::<Vec<_>>()))
}

/// The chain's newest record as this process last saw it.
#[derive(Debug, Clone)]
struct Tail {
    /// Delta version of the audit table it was read at.
    version: Option<u64>,
    seq: i64,
    hash: String,
}

/// This process's journal: the segment being written and those sealed but not yet committed.
struct Journal {
    dir: PathBuf,
    segment: u64,
    file: File,
    path: PathBuf,
    /// Records written since the last seal, in order.
    waiting: Vec<Record>,
    /// Segments whose records are all in `waiting` or in a flush under way: deleted, and their
    /// locks released, once those are committed. Recovered segments of dead processes too.
    sealed: Vec<(PathBuf, File)>,
}

/// The audit trail of one engine: journal, batches and the chain.
pub(crate) struct Auditor {
    warehouse: Warehouse,
    location: String,
    options: AuditOptions,
    journal: Mutex<Journal>,
    /// Identifies this process's records (`<id>-<n>`) and journal segments (`<id>-<k>.jsonl`).
    journal_id: String,
    next_record: AtomicU64,
    wake: tokio::sync::Notify,
    flushing: tokio::sync::Mutex<Option<Tail>>,
    /// Lower-case identity column names, per catalog version (for redaction).
    identity: Mutex<(u64, Arc<HashSet<String>>)>,
}

impl Drop for Auditor {
    fn drop(&mut self) {
        // An empty segment holds nothing to recover; anything else stays for the next start.
        let j = self.journal.get_mut();
        if j.waiting.is_empty() && j.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&j.path);
        }
    }
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Auditor {
    /// Creates the audit table if the warehouse has none, opens this process's journal, takes
    /// over the journals of processes that died, and starts the flusher.
    pub(crate) async fn start(warehouse: &Warehouse, catalog: &Catalog, options: AuditOptions) -> Result<Arc<Self>> {
        let location = records::ensure_table(warehouse, catalog).await?;
        let dir = match &options.journal_dir {
            Some(d) => d.clone(),
            None => default_journal_dir(warehouse),
        };
        std::fs::create_dir_all(&dir).map_err(|e| journal_error(&dir, e))?;
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let (path, file) = open_segment(&dir, &id, 0)?;
        let mut sealed = recover_segments(&dir, &id);
        let mut waiting = Vec::new();
        sealed.retain(|(p, _)| {
            let records = read_segment(p);
            if records.is_empty() {
                let _ = std::fs::remove_file(p);
                return false;
            }
            waiting.extend(records);
            true
        });
        let recovered = waiting.len();
        let auditor = Arc::new(Self {
            warehouse: warehouse.clone(),
            location,
            options,
            journal: Mutex::new(Journal { dir, segment: 0, file, path, waiting, sealed }),
            journal_id: id,
            next_record: AtomicU64::new(1),
            wake: tokio::sync::Notify::new(),
            flushing: tokio::sync::Mutex::new(None),
            identity: Mutex::new((u64::MAX, Arc::new(HashSet::new()))),
        });
        if recovered > 0 {
            tracing::info!(records = recovered, "audit: flushing records journaled by a process that stopped");
            auditor.flush().await?;
        }
        let weak = Arc::downgrade(&auditor);
        let interval = auditor.options.flush_interval;
        tokio::spawn(async move {
            loop {
                let Some(a) = weak.upgrade() else { return };
                tokio::select! {
                    _ = a.wake.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = a.flush().await {
                    tracing::warn!(error = %e, "audit: flush failed; records stay in the journal and are retried");
                }
            }
        });
        Ok(auditor)
    }

    /// Journals `record`: when this returns Ok, the record survives a crash of the process.
    pub(crate) fn write(&self, mut record: Record) -> Result<()> {
        record.id = format!("{}-{}", self.journal_id, self.next_record.fetch_add(1, Ordering::Relaxed));
        let mut line = serde_json::to_vec(&record).map_err(|e| Error::Invalid(format!("audit record: {e}")))?;
        line.push(b'\n');
        let many = {
            let mut j = self.journal.lock();
            j.file.write_all(&line).map_err(|e| journal_error(&j.path, e))?;
            if self.options.sync_each {
                j.file.sync_data().map_err(|e| journal_error(&j.path, e))?;
            }
            j.waiting.push(record);
            j.waiting.len() >= FLUSH_RECORDS
        };
        if many {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Commits every journaled record to the audit table (one Delta commit).
    pub(crate) async fn flush(&self) -> Result<()> {
        let mut tail = self.flushing.lock().await;
        if self.journal.lock().waiting.is_empty() {
            return Ok(());
        }
        if self.warehouse.read_only().await?.is_some() {
            // Moved elsewhere (kura migrate --cutover): the records wait in the journal, and are
            // flushed if the warehouse is reopened.
            tracing::debug!("audit: the warehouse is read-only; records stay in the journal");
            return Ok(());
        }
        let (records, sealed) = {
            let mut j = self.journal.lock();
            if j.waiting.is_empty() {
                return Ok(());
            }
            // Seal the segment: its records are exactly those taken now.
            j.file.sync_data().map_err(|e| journal_error(&j.path, e))?;
            let next = j.segment + 1;
            let (path, file) = open_segment(&j.dir, &self.journal_id, next)?;
            let old_path = std::mem::replace(&mut j.path, path);
            let old_file = std::mem::replace(&mut j.file, file);
            j.segment = next;
            j.sealed.push((old_path, old_file));
            (std::mem::take(&mut j.waiting), j.sealed.len())
        };
        match self.commit(&mut tail, &records).await {
            Ok(()) => {
                let done: Vec<(PathBuf, File)> = self.journal.lock().sealed.drain(..sealed).collect();
                for (p, _) in done {
                    if let Err(e) = std::fs::remove_file(&p) {
                        tracing::warn!(path = %p.display(), error = %e, "audit: could not remove a committed journal segment");
                    }
                }
                Ok(())
            }
            Err(e) => {
                // Back in front of newer records; their segments stay until a commit succeeds.
                let mut j = self.journal.lock();
                let newer = std::mem::take(&mut j.waiting);
                j.waiting = records;
                j.waiting.extend(newer);
                *tail = None;
                Err(e)
            }
        }
    }

    /// Appends `records` to the chain in one commit, re-reading the chain's end if another
    /// process appended since this one last looked.
    async fn commit(&self, tail: &mut Option<Tail>, records: &[Record]) -> Result<()> {
        let mut records: Vec<Record> = records.to_vec();
        for attempt in 0..32 {
            let table = self.warehouse.open_table(&self.location, &TableVersionSpec::Latest).await?;
            let version = table.version();
            let current = match tail.as_ref() {
                Some(t) if t.version == version => t.clone(),
                _ => read_tail(&table).await?,
            };
            if attempt == 0 {
                records = self.without_committed(&table, records).await?;
                if records.is_empty() {
                    *tail = Some(current);
                    return Ok(());
                }
            }
            let (batch, last) = chained_batch(&table, &current, &records)?;
            let written = table
                .write(vec![batch])
                .with_save_mode(deltalake::protocol::SaveMode::Append)
                .with_commit_properties(deltalake::kernel::transaction::CommitProperties::default().with_max_retries(0))
                .await;
            match written {
                Ok(t) => {
                    *tail = Some(Tail { version: t.version(), seq: last.0, hash: last.1 });
                    if let Err(e) = kura_storage::checkpoint_if_due(&t).await {
                        tracing::warn!(error = %e, "audit: checkpoint failed");
                    }
                    tracing::debug!(records = records.len(), seq = current.seq + records.len() as i64, "audit: flushed");
                    return Ok(());
                }
                Err(deltalake::DeltaTableError::Transaction { .. }) | Err(deltalake::DeltaTableError::VersionAlreadyExists(_)) => {
                    tracing::debug!(attempt, "audit: another process appended to the chain; re-chaining");
                    *tail = None;
                    tokio::time::sleep(Duration::from_millis(5 * (attempt + 1) + u64::from(std::process::id() % 7))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Invalid("audit: could not append to the audit trail: other writers kept winning".into()))
    }

    /// Drops records already in the table (a recovered segment whose commit landed before its
    /// process died).
    async fn without_committed(&self, table: &deltalake::DeltaTable, records: Vec<Record>) -> Result<Vec<Record>> {
        let own = &self.journal_id;
        let foreign: HashSet<&str> =
            records.iter().filter_map(|r| r.id.split('-').next()).filter(|j| *j != own.as_str()).collect();
        if foreign.is_empty() {
            return Ok(records);
        }
        let list = foreign.iter().map(|j| crate::names::sql_literal(j)).collect::<Vec<_>>().join(", ");
        let present = verify::query_strings(
            table,
            &format!("SELECT record_id FROM audit WHERE split_part(record_id, '-', 1) IN ({list})"),
        )
        .await?;
        let present: HashSet<String> = present.into_iter().collect();
        Ok(records.into_iter().filter(|r| !present.contains(&r.id)).collect())
    }

    /// Lower-case names of identity columns: the linkage's and every source's own.
    pub(crate) fn identity_columns(&self, snapshot: &kura_catalog::Snapshot) -> Arc<HashSet<String>> {
        let mut cached = self.identity.lock();
        if cached.0 != snapshot.version {
            let mut names: HashSet<String> = crate::linkage::IDENTITY_COLUMNS.iter().map(|(n, _)| n.to_string()).collect();
            names.insert("source_key".into());
            for source in snapshot.state.linkage_sources.values() {
                names.extend(source.identity.iter().map(|c| c.column.to_lowercase()));
            }
            *cached = (snapshot.version, Arc::new(names));
        }
        cached.1.clone()
    }
}

/// Refuses any change to a table of the audit trail, whoever asks (the catalog refuses changes
/// to its definitions; this covers its data and columns).
pub(crate) fn refuse_write(qn: &crate::names::QualifiedName) -> Result<()> {
    if qn.schema == AUDIT_SCHEMA {
        return Err(Error::PermissionDenied(format!("permission denied: {qn} is Kura's audit trail, written by Kura only")));
    }
    Ok(())
}

fn journal_error(path: &Path, e: std::io::Error) -> Error {
    Error::Invalid(format!("audit journal {}: {e}; the statement is not acknowledged", path.display()))
}

fn default_journal_dir(warehouse: &Warehouse) -> PathBuf {
    if let kura_storage::WarehouseLocation::Local(dir) = warehouse.location() {
        return dir.join(kura_storage::AUDIT_JOURNAL_DIR);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir);
    let digest = ring::digest::digest(&ring::digest::SHA256, warehouse.url().as_bytes());
    let name = hex(&digest.as_ref()[..8]);
    state.join("kura").join("audit-journal").join(name)
}

fn open_segment(dir: &Path, id: &str, segment: u64) -> Result<(PathBuf, File)> {
    let path = dir.join(format!("{id}-{segment}.jsonl"));
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| journal_error(&path, e))?;
    file.try_lock().map_err(|e| Error::Invalid(format!("audit journal {}: cannot lock: {e}", path.display())))?;
    Ok((path, file))
}

/// Segments left by processes that stopped (no live process holds their lock), locked by us.
fn recover_segments(dir: &Path, own: &str) -> Vec<(PathBuf, File)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut found: Vec<(PathBuf, File)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(own)))
        .filter_map(|p| {
            let f = std::fs::OpenOptions::new().read(true).append(true).open(&p).ok()?;
            f.try_lock().ok()?;
            Some((p, f))
        })
        .collect();
    // Oldest segment of each process first, so records keep their order.
    found.sort_by_key(|(p, _)| {
        let name = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let (id, n) = name.rsplit_once('-').unwrap_or((&name, "0"));
        (id.to_string(), n.parse::<u64>().unwrap_or(0))
    });
    found
}

/// The records of a segment; a torn last line (a write cut short by the crash, so never
/// acknowledged) is skipped.
fn read_segment(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}


async fn read_tail(table: &deltalake::DeltaTable) -> Result<Tail> {
    let rows = verify::query_strings(table, "SELECT concat(seq, ' ', hash) FROM audit ORDER BY seq DESC LIMIT 1").await?;
    let (seq, hash) = match rows.first().and_then(|r| r.split_once(' ')) {
        Some((s, h)) => (s.parse().map_err(|_| Error::Invalid("audit: unreadable sequence number".into()))?, h.to_string()),
        None => (0, GENESIS.to_string()),
    };
    Ok(Tail { version: table.version(), seq, hash })
}

/// The batch for `records` following `tail`, in the table's own column types, and the new tail.
fn chained_batch(table: &deltalake::DeltaTable, tail: &Tail, records: &[Record]) -> Result<(RecordBatch, (i64, String))> {
    let n = records.len();
    let mut seq = Int64Builder::with_capacity(n);
    let mut at = TimestampMicrosecondBuilder::with_capacity(n);
    let mut duration = Int64Builder::with_capacity(n);
    let mut rows = Int64Builder::with_capacity(n);
    let mut text: Vec<StringBuilder> = (0..11).map(|_| StringBuilder::new()).collect();
    let mut lists: Vec<ListBuilder<StringBuilder>> = (0..4).map(|_| ListBuilder::new(StringBuilder::new())).collect();
    let (mut prev, mut s) = (tail.hash.clone(), tail.seq);
    for r in records {
        s += 1;
        let hash = chain_hash(&prev, s, r);
        seq.append_value(s);
        at.append_value(r.at_us);
        duration.append_value(r.duration_us);
        rows.append_option(r.rows);
        let strings = [
            Some(r.id.as_str()),
            Some(r.user.as_str()),
            Some(r.client.as_str()),
            Some(r.session.as_str()),
            Some(r.kind.as_str()),
            Some(r.statement.as_str()),
            Some(r.outcome.as_str()),
            r.sqlstate.as_deref(),
            r.error.as_deref(),
            Some(prev.as_str()),
            Some(hash.as_str()),
        ];
        for (b, v) in text.iter_mut().zip(strings) {
            b.append_option(v);
        }
        for (b, v) in lists.iter_mut().zip([&r.roles, &r.read, &r.written, &r.policies]) {
            for x in v {
                b.values().append_value(x);
            }
            b.append(true);
        }
        prev = hash;
    }
    let mut t: Vec<ArrayRef> = text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    let mut l: Vec<ArrayRef> = lists.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    let [id, user, client, session, kind, statement, outcome, sqlstate, error, prev_hash, hash] =
        std::array::from_fn(|i| std::mem::replace(&mut t[i], Arc::new(datafusion::arrow::array::NullArray::new(0))));
    let [roles, read, written, policies] =
        std::array::from_fn(|i| std::mem::replace(&mut l[i], Arc::new(datafusion::arrow::array::NullArray::new(0))));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        id,
        Arc::new(at.finish()),
        Arc::new(duration.finish()),
        user,
        roles,
        client,
        session,
        kind,
        statement,
        read,
        written,
        policies,
        Arc::new(rows.finish()),
        outcome,
        sqlstate,
        error,
        prev_hash,
        hash,
    ];
    let target = table.snapshot()?.snapshot().arrow_schema();
    let columns = columns
        .iter()
        .zip(target.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("audit: {e}")))?;
    let batch = RecordBatch::try_new(target, columns).map_err(|e| Error::Invalid(format!("audit: {e}")))?;
    Ok((batch, (s, prev)))
}

/// What a statement touched, gathered while it runs (shared with the sessions it forks).
#[derive(Debug, Default)]
pub(crate) struct Note {
    pub(crate) read: Vec<String>,
    pub(crate) policies: Vec<String>,
}

/// Notes the relations a plan reads and the policies applied to them.
pub(crate) fn note_plan(note: &Mutex<Note>, plan: &datafusion::logical_expr::LogicalPlan) {
    let mut n = note.lock();
    crate::policy::for_each_scan(plan, &mut |scan, provider| {
        let name = scan.table_name.to_string();
        let name = name.strip_prefix(&format!("{}.", crate::names::CATALOG_NAME)).unwrap_or(&name).to_string();
        if !n.read.contains(&name) {
            n.read.push(name.clone());
        }
        if let Some(p) = provider.downcast_ref::<crate::policy::table::PolicedTable>() {
            for a in &p.applied {
                let label = a.label();
                if !n.policies.contains(&label) {
                    n.policies.push(label);
                }
            }
        }
    });
}

/// A statement being audited: its record is journaled when it ends, however it ends (dropped
/// unfinished: a cancel, a timeout or a client that went away).
pub(crate) struct StatementAudit {
    auditor: Arc<Auditor>,
    record: Option<Record>,
    started: Instant,
    note: Arc<Mutex<Note>>,
}

impl std::fmt::Debug for StatementAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementAudit").finish_non_exhaustive()
    }
}

/// Who runs a statement, for its record.
pub(crate) struct Actor<'a> {
    pub(crate) user: &'a str,
    pub(crate) client: &'a str,
    pub(crate) session: &'a str,
    pub(crate) snapshot: &'a kura_catalog::Snapshot,
}

impl StatementAudit {
    pub(crate) fn start(auditor: Arc<Auditor>, actor: Actor<'_>, stmt: &ParsedStatement, note: Arc<Mutex<Note>>) -> Self {
        Self::begin(auditor, actor, &stmt.text, written_objects(stmt), note)
    }

    fn begin(auditor: Arc<Auditor>, actor: Actor<'_>, text: &str, written: Vec<String>, note: Arc<Mutex<Note>>) -> Self {
        *note.lock() = Note::default();
        let identity = auditor.identity_columns(actor.snapshot);
        let record = Record {
            id: String::new(),
            at_us: chrono::Utc::now().timestamp_micros(),
            duration_us: 0,
            user: actor.user.to_string(),
            roles: actor.snapshot.state.effective_roles(actor.user).into_iter().filter(|r| r != actor.user).collect(),
            client: actor.client.to_string(),
            session: actor.session.to_string(),
            kind: statement_kind(text),
            statement: redact::redact(text, &identity),
            read: vec![],
            written,
            policies: vec![],
            rows: None,
            outcome: String::new(),
            sqlstate: None,
            error: None,
        };
        Self { auditor, record: Some(record), started: Instant::now(), note }
    }

    /// A record for a statement the server answered itself (SET, SHOW, BEGIN...).
    pub(crate) fn local(auditor: Arc<Auditor>, actor: Actor<'_>, text: &str, outcome: std::result::Result<(), String>) -> Result<()> {
        let note = Arc::new(Mutex::new(Note::default()));
        let mut audit = Self::begin(auditor, actor, text, vec![], note);
        match outcome {
            Ok(()) => audit.finish(Ok(None)),
            Err(message) => audit.finish(Err(&Error::Invalid(message))),
        }
    }

    /// Journals the record: `Ok(rows)` for a statement that completed, or its error. An error
    /// journaling it is returned: the statement must then not be acknowledged.
    pub(crate) fn finish(&mut self, result: std::result::Result<Option<u64>, &Error>) -> Result<()> {
        let Some(mut record) = self.record.take() else { return Ok(()) };
        record.duration_us = self.started.elapsed().as_micros() as i64;
        {
            let note = self.note.lock();
            record.read = note.read.clone();
            record.policies = note.policies.clone();
        }
        match result {
            Ok(rows) => {
                record.outcome = "ok".into();
                record.rows = rows.map(|r| r as i64);
            }
            Err(e) => {
                record.outcome = if e.sqlstate() == "57014" { "cancelled" } else { "error" }.into();
                record.sqlstate = Some(e.sqlstate().to_string());
                record.error = Some(redact::redact_error(&e.to_string()));
            }
        }
        self.auditor.write(record)
    }
}

impl Drop for StatementAudit {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration_us = self.started.elapsed().as_micros() as i64;
            record.outcome = "cancelled".into();
            record.sqlstate = Some("57014".into());
            record.error = Some("the statement was stopped before it completed (cancel, timeout or disconnect)".into());
            let note = self.note.lock();
            record.read = note.read.clone();
            record.policies = note.policies.clone();
            drop(note);
            if let Err(e) = self.auditor.write(record) {
                tracing::error!(error = %e, "audit: could not journal a stopped statement");
            }
        }
    }
}

/// `SELECT`, `INSERT`, `CREATE TABLE`, `OPT OUT`...: the statement's leading keywords.
fn statement_kind(text: &str) -> String {
    let mut words = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty() && !w.starts_with("--"))
        .map(|w| w.to_ascii_uppercase());
    let first = words.next().unwrap_or_default();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "SHOW" | "OPT" | "REFRESH" | "GRANT" | "REVOKE" | "EXPLAIN" => {
            let mut second = words.next().unwrap_or_default();
            if matches!(second.as_str(), "OR" | "IF" | "UNIQUE") {
                second = words.find(|w| !matches!(w.as_str(), "REPLACE" | "NOT" | "EXISTS" | "OR")).unwrap_or_default();
            }
            if first == "GRANT" || first == "REVOKE" { first } else { format!("{first} {second}") }
        }
        "WITH" => "SELECT".into(),
        _ => first,
    }
}

/// The objects a statement writes, from its text (reads are noted as it is planned).
fn written_objects(stmt: &ParsedStatement) -> Vec<String> {
    let name = |n: &datafusion::sql::sqlparser::ast::ObjectName| {
        crate::names::qualified(n).map(|q| q.to_string()).unwrap_or_else(|_| n.to_string())
    };
    match &stmt.kind {
        StatementKind::Sql(sql) => match sql.as_ref() {
            Statement::Insert(i) => vec![i.table.to_string()].into_iter().map(|t| qualify_text(&t)).collect(),
            Statement::Update(u) => vec![qualify_text(&u.table.relation.to_string())],
            Statement::Delete(d) => {
                let from = match &d.from {
                    datafusion::sql::sqlparser::ast::FromTable::WithFromKeyword(f)
                    | datafusion::sql::sqlparser::ast::FromTable::WithoutKeyword(f) => f,
                };
                from.iter().map(|t| qualify_text(&t.relation.to_string())).collect()
            }
            Statement::Truncate(t) => t.table_names.iter().map(|t| name(&t.name)).collect(),
            Statement::CreateTable(c) => vec![name(&c.name)],
            Statement::CreateView(v) => vec![name(&v.name)],
            Statement::Drop { names, .. } => names.iter().map(name).collect(),
            Statement::AlterTable(a) => vec![name(&a.name)],
            Statement::CreateSchema { schema_name, .. } => vec![schema_name.to_string()],
            _ => vec![],
        },
        StatementKind::Copy(c) => match (&c.source, c.to, &c.endpoint) {
            // FORMAT receipt names a schema: its claims tables are written.
            (CopySource::Table { name: n, .. }, false, _)
                if c.options.iter().any(|(k, v)| k == "format" && v.eq_ignore_ascii_case("receipt")) =>
            {
                vec![format!("{}.*", crate::names::schema_name(n).unwrap_or_else(|_| n.to_string()))]
            }
            (CopySource::Table { name: n, .. }, false, _) => vec![name(n)],
            (_, true, CopyEndpoint::File(path)) => vec![format!("file:{path}")],
            _ => vec![],
        },
        StatementKind::Extract(e) => vec![name(&e.name)],
        StatementKind::Linkage(l) => match l.as_ref() {
            crate::linkage::LinkageStatement::Link { .. } => vec!["linkage.research_ids".into()],
            crate::linkage::LinkageStatement::OptOut { .. } => vec!["linkage.optouts".into()],
            crate::linkage::LinkageStatement::CreateLinked(c) => vec![name(&c.name)],
            crate::linkage::LinkageStatement::RefreshLinked(n) => vec![name(n)],
            _ => vec![],
        },
        StatementKind::Access(_) | StatementKind::Policy(_) => vec!["catalog".into()],
        StatementKind::ExplainPrivacy(_) => vec![],
        StatementKind::Provide(p) => vec![format!("file:{}", p.into)],
        StatementKind::Optimize(o) => vec![name(&o.table)],
        StatementKind::Erase(e) => match e.as_ref() {
            crate::erase::EraseStatement::Rows { table, .. } => vec![name(table)],
            _ => vec!["warehouse".into()],
        },
    }
}

/// `t` or `s.t` (as printed by sqlparser) qualified with the current schema.
fn qualify_text(t: &str) -> String {
    let t = t.split_whitespace().next().unwrap_or(t);
    if t.contains('.') { t.to_string() } else { format!("{}.{t}", crate::names::current_schema()) }
}

/// A row stream whose statement's record is journaled when the last row has been produced
/// (before the caller can acknowledge it), or when the stream is dropped unfinished.
pub(crate) struct AuditedStream {
    inner: SendableRecordBatchStream,
    audit: Option<StatementAudit>,
    rows: u64,
}

impl AuditedStream {
    pub(crate) fn wrap(inner: SendableRecordBatchStream, audit: StatementAudit) -> SendableRecordBatchStream {
        Box::pin(Self { inner, audit: Some(audit), rows: 0 })
    }
}

impl Stream for AuditedStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.rows += b.num_rows() as u64;
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(mut a) = this.audit.take() {
                    let err = Error::from_datafusion(datafusion::error::DataFusionError::Execution(e.to_string()));
                    let _ = a.finish(Err(&err));
                }
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => match this.audit.take().map(|mut a| a.finish(Ok(Some(this.rows)))) {
                Some(Err(e)) => Poll::Ready(Some(Err(datafusion::error::DataFusionError::External(Box::new(e))))),
                _ => Poll::Ready(None),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl RecordBatchStream for AuditedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// [`AuditedStream`] for the encoded rows of `COPY ... TO STDOUT` (rows: chunks sent).
pub(crate) fn audit_chunks(
    inner: futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
    audit: StatementAudit,
) -> futures::stream::BoxStream<'static, Result<bytes::Bytes>> {
    use futures::StreamExt;
    let state = (inner, Some(audit), 0u64);
    Box::pin(futures::stream::unfold(state, |(mut inner, mut audit, n)| async move {
        match inner.next().await {
            Some(Ok(chunk)) => Some((Ok(chunk), (inner, audit, n + 1))),
            Some(Err(e)) => {
                if let Some(mut a) = audit.take() {
                    let _ = a.finish(Err(&e));
                }
                Some((Err(e), (inner, None, n)))
            }
            None => match audit.take().map(|mut a| a.finish(Ok(Some(n)))) {
                Some(Err(e)) => Some((Err(e), (inner, None, n))),
                _ => None,
            },
        }
    })
    // Callers may poll again after the end (pgwire chains the first rows with the rest).
    .fuse())
}
