//! `kura import postgres`: copies tables from a live PostgreSQL server into Kura, with types
//! mapped, several tables at once, streaming, resumable per table and verified.
//!
//! This crate owns the reading side (PostgreSQL's catalog, binary COPY, the type map), the resume
//! journal (`_kura/import/` in the warehouse), both sides' checksums and the report. It must not
//! write tables itself: every load goes through the engine ([`kura_engine::Session::create_table_from_stream`])
//! as a normal Kura load (one Delta commit, the session's privileges, a row in `audit.ingestions`).
//! Its guarantees:
//! - Before any data moves, every column of every requested table is mapped ([`types`]); an
//!   unmappable type, a missing table or a Kura table already in the way stops the import and
//!   nothing is created.
//! - Memory is bounded: a table streams through batches of [`ImportOptions::batch_rows`] rows,
//!   at most two waiting per table.
//! - A table appears in Kura only once all its rows are committed; a rerun after a failure or
//!   SIGKILL skips verified tables, verifies tables whose load had committed, and loads again
//!   those that never appeared ([`journal`]).
//! - Verification: the row count and an order-independent checksum (the sum of PostgreSQL's own
//!   64-bit hashes of each row's values) are computed by PostgreSQL (in the same snapshot as the
//!   copy) and by Kura (reading the committed table back, [`pghash`]) and must agree ([`checksum`]).
//!
//! ```no_run
//! # async fn demo(session: &kura_engine::Session) -> kura_pgimport::Result<()> {
//! let options = kura_pgimport::ImportOptions::new("postgres://kura@dwh.example.jp/warehouse");
//! let report = kura_pgimport::import(session, &options).await?;
//! println!("{}", report.to_text());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod checksum;
pub mod decode;
mod error;
pub mod journal;
pub mod pghash;
mod report;
pub mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kura_engine::datafusion::arrow::array::RecordBatch;
use kura_engine::datafusion::error::DataFusionError;
use kura_engine::datafusion::physical_plan::SendableRecordBatchStream;
use kura_engine::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use kura_engine::{Engine, LoadRecord, Session};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

pub use error::{Error, Result};
pub use report::{Report, Status, TableReport};

use checksum::Checksum;
use decode::Decoder;
use journal::{Entry, State};
use types::{PgAttribute, SourceTable};

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `postgres://user[:password]@host[:port]/db` or `host=... dbname=...`. Without a password
    /// in it, `PGPASSWORD` is used if set.
    pub dsn: String,
    /// PostgreSQL schema to read.
    pub schema: String,
    /// Tables to import (all ordinary and partitioned tables of the schema if empty); views are
    /// accepted when named.
    pub tables: Vec<String>,
    /// Kura schema to create the tables in (the PostgreSQL schema's name if `None`).
    pub into: Option<String>,
    /// Tables imported at once.
    pub jobs: usize,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Draw progress bars on stderr (if it is a terminal).
    pub progress: bool,
}

impl ImportOptions {
    /// Defaults: schema `public`, every table, 4 at once, batches of 65,536 rows.
    pub fn new(dsn: impl Into<String>) -> Self {
        Self {
            dsn: dsn.into(),
            schema: "public".into(),
            tables: vec![],
            into: None,
            jobs: 4,
            batch_rows: 65_536,
            progress: true,
        }
    }
}

/// The server's parsed configuration and how to name it without credentials.
#[derive(Clone)]
struct Server {
    config: Config,
    display: String,
}

impl Server {
    fn parse(dsn: &str) -> Result<Self> {
        let mut config: Config = dsn.parse().map_err(|e: tokio_postgres::Error| Error::Dsn(e.to_string()))?;
        if config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        if config.get_user().is_none() {
            if let Ok(u) = std::env::var("PGUSER").or_else(|_| std::env::var("USER")) {
                config.user(u);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres").to_string();
        Ok(Self { config, display: format!("postgres://{host}:{port}/{db}") })
    }

    async fn connect(&self) -> Result<Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| Error::Connect { server: self.display.clone(), reason: error::pg_message(&e) })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }
}

/// One table's plan, fixed before any data moves.
struct TablePlan {
    source: SourceTable,
    target_schema: String,
    target: String,
    /// `postgres://host:port/db schema.table`.
    source_id: String,
    /// The Kura table exists already (made by an earlier run of this import).
    exists: bool,
    journal: Option<Entry>,
}

/// Imports the tables `options` names into the warehouse of `session` (whose user must be a
/// superuser: the verification reads tables as stored). Fails before moving data on bad input;
/// once tables load, a failing table is reported and the others go on.
pub async fn import(session: &Session, options: &ImportOptions) -> Result<Report> {
    let started = Instant::now();
    let server = Server::parse(&options.dsn)?;
    let client = server.connect().await?;
    check_version(&client, &server).await?;
    let target_schema = options.into.clone().unwrap_or_else(|| options.schema.clone());
    let sources = read_tables(&client, &options.schema, &options.tables).await?;
    drop(client);
    let snapshot = session.engine().catalog().refresh().await?;
    let schema_exists = snapshot.state.schemas.contains_key(&target_schema);
    let mut plans = Vec::with_capacity(sources.len());
    for source in sources {
        let source_id = format!("{} {}", server.display, source.display());
        let exists = snapshot.state.schema(&target_schema).is_ok_and(|s| {
            s.tables.contains_key(&source.name) || s.views.contains_key(&source.name)
        });
        let journal = journal::read(session, &target_schema, &source.name).await?;
        if exists && journal.as_ref().is_none_or(|j| j.source != source_id) {
            return Err(Error::TargetExists { table: format!("{target_schema}.{}", source.name), source_table: source_id });
        }
        plans.push(TablePlan { target: source.name.clone(), target_schema: target_schema.clone(), source_id, exists, journal, source });
    }
    if !schema_exists {
        let quoted = types::quote_ident(&target_schema);
        session.execute_all(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}")).await?;
    }
    let bars = MultiProgress::with_draw_target(if options.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let engine = session.engine().clone();
    let user = session.user().to_string();
    let batch_rows = options.batch_rows.max(1);
    let mut tables: Vec<TableReport> = futures::stream::iter(plans)
        .map(|plan| {
            let (engine, user, server, bars) = (engine.clone(), user.clone(), server.clone(), bars.clone());
            tokio::spawn(async move { import_table(&engine, &user, &server, plan, batch_rows, &bars).await })
        })
        .buffer_unordered(options.jobs.max(1))
        .map(|joined| joined.unwrap_or_else(|e| panic!("an import task panicked: {e}")))
        .collect()
        .await;
    tables.sort_by(|a, b| a.target.cmp(&b.target));
    let ok = tables.iter().all(|t| t.verified);
    Ok(Report {
        source: server.display,
        target_schema,
        rows: tables.iter().map(|t| t.rows).sum(),
        seconds: started.elapsed().as_secs_f64(),
        ok,
        tables,
    })
}

/// A PostgreSQL table as the import maps it (columns and types), e.g. to recompute Kura's side
/// of its checksum with [`checksum::kura_side`].
pub async fn describe(dsn: &str, schema: &str, table: &str) -> Result<SourceTable> {
    let server = Server::parse(dsn)?;
    let client = server.connect().await?;
    let mut found = read_tables(&client, schema, &[table.to_string()]).await?;
    Ok(found.remove(0))
}

/// The oldest PostgreSQL whose built-in hash functions the verification uses (`hashint8extended`
/// and the other `*_extended` functions came with PostgreSQL 11).
const OLDEST_VERSION: i32 = 110_000;

async fn check_version(client: &Client, server: &Server) -> Result<()> {
    let row = client.query_one("SELECT current_setting('server_version_num')::int4, version()", &[]).await;
    let (number, text): (i32, String) =
        row.map(|r| (r.get(0), r.get(1))).map_err(|e| Error::Connect { server: server.display.clone(), reason: error::pg_message(&e) })?;
    if number < OLDEST_VERSION {
        return Err(Error::Connect {
            server: server.display.clone(),
            reason: format!("{text} is older than PostgreSQL 11, whose hash functions the import's verification needs (nothing was imported)"),
        });
    }
    Ok(())
}

/// The tables to import with their mapped columns; fails on a missing table or an unmappable type.
async fn read_tables(client: &Client, schema: &str, wanted: &[String]) -> Result<Vec<SourceTable>> {
    let found = client
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .map_err(Error::postgres(schema))?;
    if found.is_empty() {
        return Err(Error::Schema { schema: schema.into(), reason: "does not exist in PostgreSQL".into() });
    }
    // Named tables may be views; unnamed means every table (partitions come with their parent).
    let rows = client
        .query(
            "SELECT c.relname::text, greatest(c.reltuples, 0)::int8, c.relkind IN ('r', 'p') AND NOT c.relispartition
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            &[&schema],
        )
        .await
        .map_err(Error::postgres(schema))?;
    let all: HashMap<String, (i64, bool)> = rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
    let names: Vec<String> = if wanted.is_empty() {
        let mut v: Vec<String> = all.iter().filter(|(_, (_, table))| *table).map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    } else {
        for t in wanted {
            if !all.contains_key(t) {
                return Err(Error::NoSuchTable { schema: schema.into(), table: t.clone() });
            }
        }
        wanted.to_vec()
    };
    if names.is_empty() {
        return Err(Error::Schema { schema: schema.into(), reason: "has no tables".into() });
    }
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text,
                    (CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END)::int8,
                    t.typcategory = 'A' AND t.typelem <> 0, a.atttypmod, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
             WHERE n.nspname = $1 AND c.relname::text = ANY($2::text[]) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY c.relname, a.attnum",
            &[&schema, &names],
        )
        .await
        .map_err(Error::postgres(schema))?;
    let mut columns: BTreeMap<String, Vec<types::Column>> = names.iter().map(|n| (n.clone(), vec![])).collect();
    for r in rows {
        let table: String = r.get(0);
        let attribute = PgAttribute {
            name: r.get(1),
            type_oid: r.get::<_, i64>(2) as u32,
            array: r.get(3),
            typmod: r.get(4),
            pg_type: r.get(5),
        };
        let column = types::map_attribute(&attribute).ok_or_else(|| Error::UnmappableType {
            table: format!("{schema}.{table}"),
            column: attribute.name.clone(),
            pg_type: attribute.pg_type.clone(),
        })?;
        columns.entry(table).or_default().push(column);
    }
    Ok(names
        .into_iter()
        .map(|name| SourceTable {
            schema: schema.into(),
            estimated_rows: all.get(&name).map_or(0, |(n, _)| *n as u64),
            columns: columns.remove(&name).unwrap_or_default(),
            name,
        })
        .collect())
}

/// Imports (or resumes, or skips) one table; never fails, the report says how it went.
async fn import_table(engine: &Arc<Engine>, user: &str, server: &Server, plan: TablePlan, batch_rows: usize, bars: &MultiProgress) -> TableReport {
    let started = Instant::now();
    let session = engine.session(user);
    let mut report = TableReport {
        source: plan.source.display(),
        target: format!("{}.{}", plan.target_schema, plan.target),
        status: Status::Failed,
        rows: 0,
        source_rows: 0,
        seconds: 0.0,
        rows_per_second: 0.0,
        verified: false,
        source_checksum: String::new(),
        checksum: String::new(),
        bytes: 0,
        error: None,
    };
    let outcome = if plan.exists && plan.journal.as_ref().is_some_and(|j| j.state == State::Verified) {
        let j = plan.journal.as_ref().expect("checked");
        report.rows = j.rows;
        report.source_rows = j.rows;
        report.checksum = j.checksum.clone();
        report.source_checksum = j.checksum.clone();
        report.verified = true;
        report.status = Status::Skipped;
        Ok(())
    } else {
        run_table(&session, server, &plan, batch_rows, bars, &mut report).await
    };
    if let Err(e) = outcome {
        report.status = Status::Failed;
        report.verified = false;
        report.error = Some(e.to_string());
    }
    report.seconds = started.elapsed().as_secs_f64();
    if report.status != Status::Skipped && report.seconds > 0.0 {
        report.rows_per_second = report.rows as f64 / report.seconds;
    }
    report
}

async fn run_table(session: &Session, server: &Server, plan: &TablePlan, batch_rows: usize, bars: &MultiProgress, report: &mut TableReport) -> Result<()> {
    let table = plan.source.display();
    let checker = server.connect().await?;
    let source_sum = if plan.exists {
        // An earlier run committed the load and died before verifying: verify now.
        report.status = Status::Resumed;
        source_checksum(&checker, &plan.source).await?
    } else {
        let entry = Entry { source: plan.source_id.clone(), state: State::Loading, rows: 0, checksum: String::new(), at: now() };
        journal::write(session, &plan.target_schema, &plan.target, &entry).await?;
        let reader = server.connect().await?;
        // One snapshot for the copy and the checksum, so a live table is verified as copied.
        reader
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(Error::postgres(&table))?;
        let snapshot: String = reader
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(Error::postgres(&table))?
            .get(0);
        checker
            .batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot}'"))
            .await
            .map_err(Error::postgres(&table))?;
        let source = plan.source.clone();
        let sum_task = tokio::spawn(async move { source_checksum(&checker, &source).await });
        let bar = bars.add(ProgressBar::new(plan.source.estimated_rows.max(1)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:30} [{bar:30}] {human_pos}/~{human_len} rows {per_sec} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(report.target.clone());
        let loaded = load(session, &reader, plan, batch_rows, &bar).await;
        bar.finish_and_clear();
        let (rows, bytes) = loaded?;
        reader.batch_execute("COMMIT").await.map_err(Error::postgres(&table))?;
        report.rows = rows;
        report.bytes = bytes;
        report.status = Status::Imported;
        sum_task.await.map_err(|e| Error::Postgres { table: table.clone(), reason: e.to_string() })??
    };
    let kura_sum = checksum::kura_side(session, &plan.target_schema, &plan.target, &plan.source).await?;
    report.rows = kura_sum.rows;
    report.source_rows = source_sum.rows;
    report.source_checksum = source_sum.sum.clone();
    report.checksum = kura_sum.sum.clone();
    report.verified = source_sum == kura_sum;
    if !report.verified {
        report.status = Status::Mismatch;
        return Ok(());
    }
    session
        .record_load(LoadRecord {
            schema: plan.target_schema.clone(),
            table: plan.target.clone(),
            source: plan.source_id.clone(),
            format: "postgres-binary".into(),
            checksums: vec![format!("pghash:{}", kura_sum.sum)],
            bytes: (report.bytes > 0).then_some(report.bytes),
            rows: kura_sum.rows,
        })
        .await?;
    let entry = Entry { source: plan.source_id.clone(), state: State::Verified, rows: kura_sum.rows, checksum: kura_sum.sum, at: now() };
    journal::write(session, &plan.target_schema, &plan.target, &entry).await
}

/// Streams the table with binary COPY through the decoder into a new Kura table. Returns the
/// rows written and the bytes received.
async fn load(session: &Session, reader: &Client, plan: &TablePlan, batch_rows: usize, bar: &ProgressBar) -> Result<(u64, u64)> {
    let table = plan.source.display();
    let copy = reader.copy_out(&plan.source.copy_sql()).await.map_err(Error::postgres(&table))?;
    let schema = plan.source.arrow_schema();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<RecordBatch, DataFusionError>>(2);
    let mut decoder = Decoder::new(&plan.source, batch_rows);
    let bar = bar.clone();
    // SECURITY (integrity): the writer commits when its input ends, so the input must end only
    // after the last row. Any other end (an error, a panic) becomes an error in the stream.
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = complete.clone();
    let reader_task = tokio::spawn(async move {
        let mut copy = std::pin::pin!(copy);
        let stopped = || Error::Protocol { table: table.clone(), reason: "the load stopped".into() };
        let mut pending: Vec<RecordBatch> = Vec::new();
        let result = async {
            while let Some(chunk) = copy.next().await {
                let chunk = chunk.map_err(Error::postgres(&table))?;
                decoder.feed(&chunk, &mut |b| {
                    pending.push(b);
                    Ok(())
                })?;
                for b in pending.drain(..) {
                    bar.inc(b.num_rows() as u64);
                    tx.send(Ok(b)).await.map_err(|_| stopped())?;
                }
            }
            let bytes = decoder.bytes;
            if let Some(b) = decoder.finish()? {
                bar.inc(b.num_rows() as u64);
                tx.send(Ok(b)).await.map_err(|_| stopped())?;
            }
            Ok::<u64, Error>(bytes)
        }
        .await;
        match &result {
            Ok(_) => done.store(true, std::sync::atomic::Ordering::SeqCst),
            Err(e) => {
                let _ = tx.send(Err(DataFusionError::Execution(format!("the import stopped: {e}")))).await;
            }
        }
        result
    });
    let table = plan.source.display();
    let stream = futures::stream::unfold((rx, false), move |(mut rx, ended)| {
        let complete = complete.clone();
        let table = table.clone();
        async move {
            if ended {
                return None;
            }
            match rx.recv().await {
                Some(item) => Some((item, (rx, false))),
                None if complete.load(std::sync::atomic::Ordering::SeqCst) => None,
                None => Some((Err(DataFusionError::Execution(format!("reading {table} stopped before its end"))), (rx, true))),
            }
        }
    });
    let input: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream));
    let loaded = session.create_table_from_stream(&plan.target_schema, &plan.target, schema, input).await;
    let read = reader_task.await.map_err(|e| Error::Protocol { table: plan.source.display(), reason: e.to_string() })?;
    // The reader's error explains a failed load better than the writer's "input ended".
    match (read, loaded) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(bytes), Ok(rows)) => Ok((rows, bytes)),
    }
}

/// Rows and checksum of a table in PostgreSQL.
async fn source_checksum(client: &Client, table: &SourceTable) -> Result<Checksum> {
    let row = client.query_one(&table.checksum_sql(), &[]).await.map_err(Error::postgres(&table.display()))?;
    Ok(Checksum { rows: row.get::<_, i64>(0) as u64, sum: row.get(1) })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}
