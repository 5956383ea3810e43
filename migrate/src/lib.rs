//! `kura migrate`: copies a whole warehouse (every table with its Delta log, the catalog, pseudonym
//! keys, differencing histories, audit records, linkage state: everything under the prefix)
//! from one location to another (local folder, S3-compatible store), resumably and verified.
//!
//! This crate owns the copy, its order, its resume journal (`_kura_migrate/` at the destination),
//! its verification and its report. It must not interpret table data beyond reading it back for
//! verification, must never delete anything at the source, and at the destination deletes only
//! objects its own journal says it copied there (and that have since left the source). It reads
//! tables with plain DataFusion, never through the engine's policies. Its guarantees:
//! - Order: data files, then each table's Delta log in version order, then Kura's own state, then
//!   the catalog ([`plan::Phase`]): a half-migrated destination never names a missing file.
//! - Resume: an object is journaled only after its checksum was verified at the destination; a
//!   rerun after any failure or SIGKILL skips journaled objects whose source is unchanged.
//! - Verification: every object's MD5 against the destination's, then every table's row count and
//!   content hash read on both sides at the same version ([`verify`]).
//! - Cutover: the source is flagged read-only (`kura-storage` refuses every write to it), the last
//!   changes are copied, and everything is verified.
//!
//! ```no_run
//! # async fn demo() -> kura_migrate::Result<()> {
//! let options = kura_migrate::MigrateOptions::new("./kura-data", "s3://bucket/kura");
//! let report = kura_migrate::migrate(&options).await?;
//! println!("{}", report.to_text());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
pub mod journal;
pub mod plan;
mod report;
pub mod transfer;
pub mod verify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kura_storage::{ReadOnly, Warehouse, WarehouseLocation};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

pub use error::{Error, Result};
pub use report::{Report, Tally};

use journal::{Entry, Journal, JournalWriter, SourceIdentity};
use plan::{GENESIS, MIGRATE_DIR, Phase, Plan, SourceObject};
use transfer::{Throttle, TransferConfig};

/// What to migrate and how.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Source warehouse URL.
    pub from: String,
    /// Destination URL.
    pub to: String,
    /// Objects in flight at once.
    pub jobs: usize,
    /// Bandwidth cap in bytes per second, across all transfers.
    pub bandwidth: Option<u64>,
    /// Only list what would be copied and removed.
    pub dry_run: bool,
    /// Make the source read-only, copy the last changes, verify.
    pub cutover: bool,
    /// Part sizes and multipart threshold.
    pub transfer: TransferConfig,
    /// Draw a progress bar on stderr (if it is a terminal).
    pub progress: bool,
    /// How long a location may take to answer the first request.
    pub timeout: Duration,
}

impl MigrateOptions {
    /// Defaults: 16 parallel transfers, no cap, 16 MiB parts above 32 MiB, 30 s to answer.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            jobs: 16,
            bandwidth: None,
            dry_run: false,
            cutover: false,
            transfer: TransferConfig::default(),
            progress: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Whether two locations overlap (one inside the other), which would make a copy copy itself.
fn overlaps(a: &WarehouseLocation, b: &WarehouseLocation) -> bool {
    fn inside(a: &str, b: &str) -> bool {
        let (a, b) = (a.trim_matches('/'), b.trim_matches('/'));
        a == b || a.is_empty() || b.is_empty() || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
    }
    match (a, b) {
        (WarehouseLocation::Local(x), WarehouseLocation::Local(y)) => x.starts_with(y) || y.starts_with(x),
        (WarehouseLocation::S3 { bucket: b1, prefix: p1 }, WarehouseLocation::S3 { bucket: b2, prefix: p2 }) => {
            b1 == b2 && inside(p1, p2)
        }
        (WarehouseLocation::Memory(x), WarehouseLocation::Memory(y)) => inside(x, y),
        _ => false,
    }
}

async fn within<T>(
    location: &str,
    timeout: Duration,
    work: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<object_store::Result<T>> {
    tokio::time::timeout(timeout, work).await.map_err(|_| Error::Unreachable {
        location: location.to_string(),
        seconds: timeout.as_secs(),
        reason: "timed out".into(),
    })
}

/// Opens the source and checks that it holds a warehouse; returns it and its genesis MD5.
async fn open_source(options: &MigrateOptions) -> Result<(Warehouse, String)> {
    let location = WarehouseLocation::parse(&options.from)?;
    if let WarehouseLocation::Local(dir) = &location {
        // Opening a local warehouse creates its folder; a migration must not.
        if !dir.is_dir() {
            return Err(Error::NotAWarehouse { location: options.from.clone() });
        }
    }
    let source = Warehouse::open_location(location).await?;
    let store = source.store();
    let genesis = match within(&options.from, options.timeout, store.get(&Path::from(GENESIS))).await? {
        Ok(got) => got.bytes().await.map_err(Error::store(&options.from))?,
        Err(object_store::Error::NotFound { .. }) => return Err(Error::NotAWarehouse { location: options.from.clone() }),
        Err(e) => {
            return Err(Error::Unreachable { location: options.from.clone(), seconds: options.timeout.as_secs(), reason: e.to_string() });
        }
    };
    Ok((source, hex::encode(<md5::Md5 as md5::Digest>::digest(&genesis))))
}

/// The destination, its listing (path -> size), or `None` for a local folder that does not exist
/// yet in a dry run (nothing is created then).
async fn open_destination(options: &MigrateOptions) -> Result<Option<(Warehouse, HashMap<String, u64>)>> {
    let location = WarehouseLocation::parse(&options.to)?;
    if let WarehouseLocation::Local(dir) = &location {
        if options.dry_run && !dir.exists() {
            return Ok(None);
        }
        if dir.exists() && !dir.is_dir() {
            return Err(Error::DestinationInUse { location: options.to.clone(), reason: "is a file".into() });
        }
    }
    let destination = Warehouse::open_location(location).await?;
    let store = destination.store();
    let listed: Vec<object_store::ObjectMeta> = match within(&options.to, options.timeout, store.list(None).try_collect()).await? {
        Ok(l) => l,
        Err(e) => {
            return Err(Error::Unreachable { location: options.to.clone(), seconds: options.timeout.as_secs(), reason: e.to_string() });
        }
    };
    Ok(Some((destination, listed.into_iter().map(|m| (m.location.to_string(), m.size)).collect())))
}

/// Refuses a destination that holds anything but this warehouse (or an earlier run's copy of it).
async fn check_destination(
    options: &MigrateOptions,
    destination: &Warehouse,
    listing: &HashMap<String, u64>,
    genesis_md5: &str,
) -> Result<()> {
    let store = destination.store();
    let in_use = |reason: &str| Error::DestinationInUse { location: options.to.clone(), reason: reason.into() };
    match store.get(&journal::identity_path()).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(Error::store(&options.to))?;
            let identity: SourceIdentity = serde_json::from_slice(&bytes).map_err(|e| Error::Journal {
                path: journal::identity_path().to_string(),
                reason: e.to_string(),
            })?;
            if identity.genesis_md5 != genesis_md5 {
                return Err(in_use(&format!("receives another warehouse (migrated from {})", identity.source)));
            }
            return Ok(());
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::store(&options.to)(e)),
    }
    if listing.contains_key(GENESIS) {
        let there = transfer::md5_of(&store, &Path::from(GENESIS), &options.to).await?;
        if there != genesis_md5 {
            return Err(in_use("holds a different Kura warehouse"));
        }
        return Ok(());
    }
    if !listing.is_empty() {
        return Err(in_use(&format!("is not empty ({} objects) and holds no Kura warehouse", listing.len())));
    }
    Ok(())
}

/// Shared state of one run's transfers.
struct Run {
    source: Arc<dyn ObjectStore>,
    destination: Arc<dyn ObjectStore>,
    from: String,
    to: String,
    transfer: TransferConfig,
    throttle: Option<Throttle>,
    jobs: usize,
    bar: ProgressBar,
    journal: JournalWriter,
    report: Mutex<Report>,
    files_done: std::sync::atomic::AtomicU64,
    files_total: std::sync::atomic::AtomicU64,
}

impl Run {
    async fn copy_one(&self, object: &SourceObject) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let this_attempt = std::sync::atomic::AtomicU64::new(0);
            let on_bytes = |n: u64| {
                this_attempt.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                self.bar.inc(n);
            };
            match transfer::copy_object(
                &self.source,
                &self.destination,
                object,
                &self.transfer,
                self.throttle.as_ref(),
                &on_bytes,
                (&self.from, &self.to),
            )
            .await
            {
                Ok(sent) => {
                    // A source object rewritten while it was read keeps a tag that cannot match
                    // the next listing's, so the next run copies it again.
                    let tag = if sent.bytes == object.size { object.tag.clone() } else { "changed-while-copied".into() };
                    self.journal.record(Entry::new(&object.path, sent.bytes, &tag, &sent.md5));
                    {
                        let mut report = self.report.lock().expect("report lock");
                        report.copied.add(sent.bytes);
                        if sent.etag_checked {
                            report.verified_by_etag += 1;
                        } else {
                            report.verified_by_reading += 1;
                        }
                    }
                    let done = self.files_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let total = self.files_total.load(std::sync::atomic::Ordering::Relaxed);
                    self.bar.set_message(format!("{done}/{total} files"));
                    return Ok(());
                }
                Err(e) if attempt < 3 => {
                    tracing::warn!(path = %object.path, error = %e, attempt, "copy failed; retrying");
                    // Do not count the failed attempt's bytes twice.
                    let counted = this_attempt.load(std::sync::atomic::Ordering::Relaxed);
                    self.bar.set_position(self.bar.position().saturating_sub(counted));
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one phase; returns the failures (after which later phases must not start).
    async fn phase(&self, phase: Phase, objects: Vec<SourceObject>) -> Vec<String> {
        if objects.is_empty() {
            return Vec::new();
        }
        tracing::info!(?phase, objects = objects.len(), "copying");
        let failures: Vec<String> = if phase == Phase::DeltaLog {
            // One chain per table, in version order: a commit is copied only after the previous.
            let mut chains: Vec<Vec<SourceObject>> = Vec::new();
            for object in objects {
                match chains.last_mut() {
                    Some(chain) if plan::table_of(&chain[0].path) == plan::table_of(&object.path) => chain.push(object),
                    _ => chains.push(vec![object]),
                }
            }
            futures::stream::iter(chains)
                .map(|chain| async move {
                    for object in &chain {
                        if let Err(e) = self.copy_one(object).await {
                            return Some(e.to_string());
                        }
                    }
                    None
                })
                .buffer_unordered(self.jobs)
                .filter_map(|f| async move { f })
                .collect()
                .await
        } else {
            futures::stream::iter(objects)
                .map(|object| async move { self.copy_one(&object).await.err().map(|e| e.to_string()) })
                .buffer_unordered(self.jobs)
                .filter_map(|f| async move { f })
                .collect()
                .await
        };
        failures
    }

    /// Removes what an earlier run copied and the source no longer has.
    async fn remove(&self, paths: &[String], journal: &HashMap<String, Entry>) -> Result<()> {
        for path in paths {
            match self.destination.delete(&Path::from(path.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::store(&self.to)(e)),
            }
            let size = journal.get(path).map_or(0, |e| e.size);
            self.report.lock().expect("report lock").removed.add(size);
            self.journal.record(Entry { removed: true, ..Entry::new(path, size, "", "") });
        }
        Ok(())
    }
}

async fn list_source(source: &Arc<dyn ObjectStore>, from: &str) -> Result<Vec<SourceObject>> {
    let listed: Vec<object_store::ObjectMeta> = source.list(None).try_collect().await.map_err(Error::store(from))?;
    Ok(listed.iter().map(SourceObject::from_meta).filter(|o| plan::is_migrated(&o.path)).collect())
}

fn progress_bar(enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {msg:>16} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Copies the warehouse at `options.from` to `options.to` and verifies the copy.
///
/// Returns the report; `report.ok` is false when a table's verification failed (the copy is then
/// left as it is, and the source untouched unless it was a cutover).
pub async fn migrate(options: &MigrateOptions) -> Result<Report> {
    let started = Instant::now();
    let from_location = WarehouseLocation::parse(&options.from)?;
    let to_location = WarehouseLocation::parse(&options.to)?;
    if overlaps(&from_location, &to_location) {
        return Err(Error::Overlap { from: options.from.clone(), to: options.to.clone() });
    }
    let (source, genesis_md5) = open_source(options).await?;
    let from = source.url();
    let to = to_location.to_url_string();
    let mut cutover = options.cutover;
    if let Some(flag) = source.read_only().await? {
        if flag.moved_to != to {
            return Err(Error::MovedElsewhere { from, moved_to: flag.moved_to });
        }
        // A cutover to this destination was interrupted: finish it.
        cutover = true;
    }
    let mut report = Report {
        source: from.clone(),
        destination: to.clone(),
        started_at: Some(chrono::Utc::now()),
        dry_run: options.dry_run,
        cutover,
        ..Default::default()
    };
    let opened = open_destination(options).await?;
    let (destination, listing) = match opened {
        Some((d, l)) => (Some(d), l),
        None => (None, HashMap::new()),
    };
    if let Some(d) = &destination {
        check_destination(options, d, &listing, &genesis_md5).await?;
    }
    let source_store = source.store();
    let journal = match &destination {
        Some(d) => Journal::load(&d.store(), &to).await?,
        None => Journal::default(),
    };

    if options.dry_run {
        let objects = list_source(&source_store, &from).await?;
        for o in &objects {
            report.listed.add(o.size);
        }
        let plan = Plan::new(objects, &journal.entries, &listing);
        for o in &plan.skipped {
            report.skipped.add(o.size);
        }
        report.would_copy = plan.copy.values().flatten().map(|o| (o.path.clone(), o.size)).collect();
        report.would_remove = plan.remove;
        report.seconds = started.elapsed().as_secs_f64();
        report.ok = true;
        return Ok(report);
    }
    let destination = destination.expect("opened unless dry run");
    let dest_store = destination.store();
    if !listing.contains_key(&journal::identity_path().to_string()) {
        let identity = SourceIdentity { source: from.clone(), genesis_md5: genesis_md5.clone() };
        journal::put_json(&dest_store, &to, &journal::identity_path(), &identity).await?;
    }

    // The source's side of verification overlaps the copy (it needs only the source).
    let precompute = {
        let source = source.clone();
        tokio::spawn(async move { verify::digest_source_tables(&source).await })
    };

    let seq = journal.next_seq();
    let known = journal.entries.clone();
    let run = Run {
        source: source_store.clone(),
        destination: dest_store.clone(),
        from: from.clone(),
        to: to.clone(),
        transfer: options.transfer.clone(),
        throttle: options.bandwidth.map(Throttle::new),
        jobs: options.jobs.max(1),
        bar: progress_bar(options.progress),
        journal: JournalWriter::start(dest_store.clone(), to.clone(), journal.entries, seq),
        report: Mutex::new(Report::default()),
        files_done: Default::default(),
        files_total: Default::default(),
    };
    let copy_started = Instant::now();
    let mut listing = listing;
    let mut known = known;
    let outcome: Result<()> = async {
        loop {
            let objects = list_source(&source_store, &from).await?;
            let plan = Plan::new(objects, &known, &listing);
            let (n, bytes) = plan.to_copy();
            tracing::info!(objects = n, bytes, skipped = plan.skipped.len(), "pass planned");
            {
                let mut r = run.report.lock().expect("report lock");
                r.passes += 1;
                // Skipped counts what earlier runs had done; a cutover's second pass skips what
                // its first pass copied.
                if r.passes == 1 {
                    for o in &plan.skipped {
                        r.skipped.add(o.size);
                    }
                }
                r.listed = Tally::default();
                for o in plan.skipped.iter().chain(plan.copy.values().flatten()) {
                    r.listed.add(o.size);
                }
            }
            run.files_total.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            run.bar.set_length(run.bar.length().unwrap_or(0) + bytes);
            let mut copy = plan.copy;
            for phase in Phase::ALL {
                let failures = run.phase(phase, copy.remove(&phase).unwrap_or_default()).await;
                if let Some(first) = failures.first() {
                    return Err(Error::Incomplete { failed: failures.len(), first: first.clone() });
                }
            }
            run.remove(&plan.remove, &known).await?;
            let second_pass_due = cutover && run.report.lock().expect("report lock").passes == 1;
            if !second_pass_due {
                return Ok(());
            }
            // Cutover: refuse writes at the source, let every process see the flag, then copy
            // what landed meanwhile.
            let flag = ReadOnly { moved_to: to.clone(), since: chrono::Utc::now() };
            if source.read_only().await?.is_none() {
                source.set_read_only(Some(&flag)).await?;
            }
            tracing::info!(moved_to = %to, "source is read-only; copying the last changes");
            tokio::time::sleep(kura_storage::SETTLE).await;
            listing = dest_store
                .list(None)
                .map_ok(|m| (m.location.to_string(), m.size))
                .try_collect()
                .await
                .map_err(Error::store(&to))?;
            // The journal as written so far (the writer holds the newest entries).
            known = Journal::load(&dest_store, &to).await?.entries;
        }
    }
    .await;
    run.bar.finish_and_clear();
    let Run { journal, report: run_report, .. } = run;
    // Whatever happened, keep what was verified.
    let (entries, next_seq) = journal.finish().await?;
    outcome?;
    Journal::compact(&dest_store, &to, &entries, next_seq).await?;
    let run_report = run_report.into_inner().expect("report lock");
    report.copy_seconds = copy_started.elapsed().as_secs_f64();
    report.listed = run_report.listed;
    report.copied = run_report.copied;
    report.skipped = run_report.skipped;
    report.removed = run_report.removed;
    report.verified_by_etag = run_report.verified_by_etag;
    report.verified_by_reading = run_report.verified_by_reading;
    report.passes = run_report.passes;

    let verify_started = Instant::now();
    let precomputed = match precompute.await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "source digests made during the copy failed; reading the source again");
            HashMap::new()
        }
        Err(e) => return Err(Error::Verify { what: "the source".into(), reason: e.to_string() }),
    };
    report.tables = verify::verify_tables(&source, &destination, &precomputed, 2).await?;
    report.verify_seconds = verify_started.elapsed().as_secs_f64();
    report.catalog_version = Some(kura_catalog::Catalog::open(&destination).await.map_err(|e| Error::Verify {
        what: "the copied catalog".into(),
        reason: e.to_string(),
    })?.cached().version);
    report.ok = report.tables.iter().all(|t| t.matches);
    report.seconds = started.elapsed().as_secs_f64();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    journal::put_json(&dest_store, &to, &Path::from(format!("{MIGRATE_DIR}/reports/{stamp}.json")), &report).await?;
    dest_store
        .put(&Path::from(format!("{MIGRATE_DIR}/reports/{stamp}.txt")), report.to_text().into_bytes().into())
        .await
        .map_err(Error::store(&to))?;
    Ok(report)
}

/// Lifts the read-only flag of a warehouse that `--cutover` moved (to roll a migration back).
/// Returns where the flag said it had gone, if it was set.
pub async fn reopen(from: &str) -> Result<Option<String>> {
    let options = MigrateOptions::new(from, from);
    let (source, _) = open_source(&options).await?;
    let flag = source.read_only().await?;
    source.set_read_only(None).await?;
    Ok(flag.map(|f| f.moved_to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_locations_are_refused() {
        let p = |s: &str| WarehouseLocation::parse(s).unwrap();
        assert!(overlaps(&p("/tmp/a"), &p("/tmp/a/b")));
        assert!(overlaps(&p("s3://bkt/wh"), &p("s3://bkt/wh/copy")));
        assert!(overlaps(&p("s3://bkt"), &p("s3://bkt/x")));
        assert!(!overlaps(&p("s3://bkt/wh"), &p("s3://bkt/wh2")));
        assert!(!overlaps(&p("/tmp/a"), &p("s3://bkt/tmp/a")));
    }
}
