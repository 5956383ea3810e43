//! The warehouse: one object store and one prefix that hold everything Kura keeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use deltalake::DeltaTable;
use deltalake::table::builder::DeltaTableBuilder;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::read_only::{ReadOnly, ReadOnlyGuard};
use crate::tables::TableVersionSpec;
use crate::{Error, Result, WarehouseLocation};

/// Shared in-memory stores, by `memory://` name, so two opens in one process see the same data.
fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// An opened warehouse location.
///
/// Cloning is cheap: all clones share the same object store clients.
#[derive(Clone, Debug)]
pub struct Warehouse {
    location: WarehouseLocation,
    /// Store rooted at the file-system root, the bucket or the in-memory root.
    root_store: Arc<dyn ObjectStore>,
    /// URL of the warehouse prefix (`file:///abs/dir/`, `s3://bucket/prefix/`, `memory:///name/`).
    base_url: Url,
    /// The same store scoped to the warehouse prefix.
    store: Arc<dyn ObjectStore>,
    /// Latest loaded snapshot of each table, brought up to date on every open.
    tables: Arc<TableCache>,
    /// The read-only flag's keeper; `root_store` writes through it.
    guard: Arc<ReadOnlyGuard>,
}

/// Keeps the last loaded state of each table so that opening a table at its latest version
/// replays only the commits made since, instead of the whole log.
///
/// Correctness does not depend on the cache: every open lists the table's log and applies any
/// newer commits (from this process or any other) before the snapshot is used.
#[derive(Debug, Default)]
struct TableCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<DeltaTable>>>>>,
}

impl TableCache {
    fn slot(&self, relative: &str) -> Arc<tokio::sync::Mutex<Option<DeltaTable>>> {
        self.slots
            .lock()
            .expect("table cache poisoned")
            .entry(relative.to_string())
            .or_default()
            .clone()
    }

    fn forget(&self, relative: &str) {
        self.slots.lock().expect("table cache poisoned").remove(relative);
    }
}

impl Warehouse {
    /// Opens (and for local folders creates) the warehouse at `location`.
    ///
    /// S3 is configured from the standard AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, ...).
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_location(WarehouseLocation::parse(location)?).await
    }

    /// Opens an already parsed location.
    pub async fn open_location(location: WarehouseLocation) -> Result<Self> {
        let (root_store, base_url, prefix): (Arc<dyn ObjectStore>, Url, Path) = match &location {
            WarehouseLocation::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                let dir = dir.canonicalize()?;
                let url = Url::from_directory_path(&dir).map_err(|_| Error::InvalidLocation {
                    location: dir.display().to_string(),
                    reason: "not an absolute path".into(),
                })?;
                let prefix = Path::from_url_path(url.path()).map_err(object_store::Error::from)?;
                (Arc::new(LocalFileSystem::new()), url, prefix)
            }
            WarehouseLocation::S3 { bucket, prefix } => {
                deltalake::aws::register_handlers(None);
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    // SECURITY/DURABILITY: commits are created with `If-None-Match: *`, so a
                    // concurrent writer can never silently replace another's commit file.
                    .with_conditional_put(S3ConditionalPut::ETagMatch);
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
                }
                if let Ok(allow) = std::env::var("AWS_ALLOW_HTTP") {
                    builder = builder.with_allow_http(allow.eq_ignore_ascii_case("true") || allow == "1");
                }
                let store = builder.build()?;
                let url_text = if prefix.is_empty() {
                    format!("s3://{bucket}/")
                } else {
                    format!("s3://{bucket}/{prefix}/")
                };
                let url = Url::parse(&url_text).map_err(|e| Error::InvalidLocation {
                    location: url_text.clone(),
                    reason: e.to_string(),
                })?;
                (Arc::new(store), url, Path::from(prefix.as_str()))
            }
            WarehouseLocation::Memory(name) => {
                let store = memory_stores()
                    .lock()
                    .expect("memory store registry poisoned")
                    .entry(String::new())
                    .or_insert_with(|| Arc::new(InMemory::new()))
                    .clone();
                let url = Url::parse(&format!("memory:///{name}/")).map_err(|e| Error::InvalidLocation {
                    location: name.clone(),
                    reason: e.to_string(),
                })?;
                (store, url, Path::from(name.as_str()))
            }
        };
        // Every write, whoever makes it, passes the read-only check (see `read_only`).
        let guard = Arc::new(ReadOnlyGuard::new(root_store, &prefix, location.to_url_string()));
        let root_store: Arc<dyn ObjectStore> = guard.clone();
        let store: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(root_store.clone(), prefix));
        Ok(Self { location, root_store, base_url, store, tables: Arc::default(), guard })
    }

    /// The parsed location.
    pub fn location(&self) -> &WarehouseLocation {
        &self.location
    }

    /// The warehouse URL as a user would type it.
    pub fn url(&self) -> String {
        self.location.to_url_string()
    }

    /// The read-only flag, if `kura migrate --cutover` moved this warehouse elsewhere (read from
    /// storage now).
    pub async fn read_only(&self) -> Result<Option<ReadOnly>> {
        Ok(self.guard.read_flag().await?)
    }

    /// Sets (`Some`) or lifts (`None`) the read-only flag. While it is set every write to this
    /// warehouse, from any process, fails with [`crate::ReadOnlyError`].
    pub async fn set_read_only(&self, flag: Option<&ReadOnly>) -> Result<()> {
        Ok(self.guard.set_flag(flag).await?)
    }

    /// The object store scoped to the warehouse prefix: `Path::from("_kura/catalog")` is
    /// `<prefix>/_kura/catalog`.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// URL of an object or folder below the warehouse prefix.
    pub fn url_of(&self, relative: &str) -> Result<Url> {
        self.base_url.join(relative.trim_start_matches('/')).map_err(|e| Error::InvalidLocation {
            location: relative.to_string(),
            reason: e.to_string(),
        })
    }

    fn table_builder(&self, relative: &str) -> Result<DeltaTableBuilder> {
        let url = self.url_of(&format!("{}/", relative.trim_end_matches('/')))?;
        Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(self.root_store.clone(), url))
    }

    /// A handle on the Delta table at `relative` (e.g. `tables/<uuid>`), not yet loaded.
    pub fn table_handle(&self, relative: &str) -> Result<DeltaTable> {
        Ok(self.table_builder(relative)?.build()?)
    }

    /// Loads the Delta table at `relative`, at its latest version or the one asked for.
    pub async fn open_table(&self, relative: &str, version: &TableVersionSpec) -> Result<DeltaTable> {
        if matches!(version, TableVersionSpec::Latest) {
            return self.open_latest(relative).await;
        }
        let mut table = self.table_handle(relative)?;
        match version {
            TableVersionSpec::Latest => unreachable!("handled above"),
            TableVersionSpec::Version(v) => {
                let latest = table.get_latest_version().await?;
                if *v > latest {
                    return Err(Error::VersionNotFound(format!("version {v} does not exist (latest is {latest})")));
                }
                table.load_version(*v).await?
            }
            TableVersionSpec::Timestamp(ts) => {
                table.load_with_datetime(*ts).await?;
                let loaded = table.version().unwrap_or(0);
                let committed = table.snapshot()?.version_timestamp(loaded);
                if committed.is_some_and(|ms| ms > ts.timestamp_millis()) {
                    return Err(Error::VersionNotFound(format!("no version at or before {ts}")));
                }
            }
        }
        Ok(table)
    }

    /// The latest version of a table: the cached snapshot brought forward by the commits made
    /// since it was loaded (one log listing when nothing changed), or a full load the first time.
    async fn open_latest(&self, relative: &str) -> Result<DeltaTable> {
        let slot = self.tables.slot(relative);
        let mut cached = slot.lock().await;
        if let Some(table) = cached.as_mut() {
            // Commits are numbered without gaps and never replaced, so when the commit after the
            // cached version does not exist the cached state is the latest: one `stat` (or HEAD)
            // instead of a log listing and a snapshot rebuild on every statement.
            if let Some(loaded) = table.version() {
                let next = Path::from(format!("{}/_delta_log/{:020}.json", relative.trim_matches('/'), loaded + 1));
                if let Err(object_store::Error::NotFound { .. }) = self.store.head(&next).await {
                    return Ok(table.clone());
                }
            }
            match table.update_incremental(None).await {
                Ok(()) => return Ok(table.clone()),
                Err(e) => {
                    // Start again from a full load; a table that is really gone fails there.
                    tracing::debug!(table = relative, error = %e, "cached table state could not be updated");
                    *cached = None;
                }
            }
        }
        let mut table = self.table_handle(relative)?;
        table.load().await?;
        *cached = Some(table.clone());
        Ok(table)
    }

    /// Removes every object below `relative` (used after a table is dropped from the catalog).
    pub async fn delete_prefix(&self, relative: &str) -> Result<usize> {
        self.tables.forget(relative);
        use futures::StreamExt;
        let prefix = Path::from(relative.trim_matches('/'));
        let mut listing = self.store.list(Some(&prefix));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return Err(e.into()),
            }
        }
        // Object stores have no folders, but a file system keeps the empty ones.
        if let WarehouseLocation::Local(dir) = &self.location {
            let folder = dir.join(relative.trim_matches('/'));
            if folder.starts_with(dir) && folder != *dir && folder.exists() {
                std::fs::remove_dir_all(&folder)?;
            }
        }
        Ok(removed)
    }
}
