//! The catalog log: full-state commits written with create-if-absent puts.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{CatalogState, Error, Result};

const LOG_DIR: &str = "_kura/catalog/_log";
const LATEST_HINT: &str = "_kura/catalog/_latest";
/// How often a writer re-applies its change after losing a race before giving up.
const MAX_ATTEMPTS: usize = 32;

/// One catalog version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Version number; 0 is the empty catalog every warehouse starts with.
    pub version: u64,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
    /// Who committed it.
    pub actor: String,
    /// What the change was, for history (`CREATE TABLE claims.medical`).
    pub operation: String,
    /// The whole catalog state.
    pub state: CatalogState,
}

/// A handle on a warehouse's catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    current: RwLock<Arc<Snapshot>>,
    /// On a local folder, the log's directory: the per-statement "anything new?" probe is then
    /// one `stat` on this thread instead of a trip through the object store's thread pool.
    local_log_dir: Option<std::path::PathBuf>,
}

fn commit_path(version: u64) -> Path {
    Path::from(format!("{LOG_DIR}/{version:020}.json"))
}

fn parse_version(path: &Path) -> Option<u64> {
    path.filename()?.strip_suffix(".json")?.parse().ok()
}

impl Catalog {
    /// Opens the catalog of a warehouse, creating version 0 if the warehouse is new.
    pub async fn open(warehouse: &kura_storage::Warehouse) -> Result<Self> {
        let mut catalog = Self::open_store(warehouse.store()).await?;
        if let kura_storage::WarehouseLocation::Local(dir) = warehouse.location() {
            catalog.local_log_dir = dir.canonicalize().ok().map(|d| d.join(LOG_DIR));
        }
        Ok(catalog)
    }

    /// Opens the catalog kept in `store` (already scoped to the warehouse prefix).
    pub async fn open_store(store: Arc<dyn ObjectStore>) -> Result<Self> {
        let genesis = Snapshot {
            version: 0,
            committed_at: Utc::now(),
            actor: "kura".into(),
            operation: "initialise warehouse".into(),
            state: CatalogState::default(),
        };
        let catalog = Self { store, current: RwLock::new(Arc::new(genesis.clone())), local_log_dir: None };
        let latest = catalog.find_latest(None).await?;
        match latest {
            Some(v) => {
                let snap = catalog.read_version(v).await?;
                *catalog.current.write().expect("catalog lock poisoned") = Arc::new(snap);
            }
            None => {
                // Racing initialisers: whoever loses simply reads the winner's version 0.
                match catalog.put_new(&genesis).await {
                    Ok(()) | Err(Error::ObjectStore(object_store::Error::AlreadyExists { .. })) => {}
                    Err(e) => return Err(e),
                }
                let snap = catalog.read_version(0).await?;
                *catalog.current.write().expect("catalog lock poisoned") = Arc::new(snap);
            }
        }
        Ok(catalog)
    }

    /// The snapshot this handle last saw, without touching storage.
    pub fn cached(&self) -> Arc<Snapshot> {
        self.current.read().expect("catalog lock poisoned").clone()
    }

    /// The newest snapshot: checks storage for versions committed by other processes.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>> {
        let cached = self.cached();
        // Versions are written one after another, so if the next one does not exist there is
        // nothing newer: one HEAD (one stat on a local folder) instead of a listing.
        if let Some(dir) = &self.local_log_dir {
            let next = dir.join(format!("{:020}.json", cached.version + 1));
            match std::fs::metadata(&next) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cached),
                _ => {}
            }
        }
        match self.store.head(&commit_path(cached.version + 1)).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(cached),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        match self.find_latest(Some(cached.version)).await? {
            Some(v) if v > cached.version => {
                let snap = Arc::new(self.read_version(v).await?);
                let mut guard = self.current.write().expect("catalog lock poisoned");
                if guard.version < snap.version {
                    *guard = snap.clone();
                }
                Ok(guard.clone())
            }
            _ => Ok(cached),
        }
    }

    /// Reads an older (or the current) version, for history and audits.
    pub async fn snapshot_at(&self, version: u64) -> Result<Snapshot> {
        self.read_version(version).await
    }

    /// Applies `change` to the newest state and commits the result as the next version.
    ///
    /// If another process commits first, the change is applied again to that newer state, so its
    /// checks (does the table already exist?) see the other writer's work.
    ///
    /// A change to the audit trail's schema ([`crate::AUDIT_SCHEMA`]) is refused: only
    /// [`Catalog::commit_system`] makes those.
    pub async fn commit<F>(&self, actor: &str, operation: &str, change: F) -> Result<Arc<Snapshot>>
    where
        F: Fn(&mut CatalogState) -> Result<()>,
    {
        self.commit_checked(actor, operation, change, false).await
    }

    /// [`Catalog::commit`] for Kura's own changes, which may create the audit trail's schema
    /// and tables.
    pub async fn commit_system<F>(&self, actor: &str, operation: &str, change: F) -> Result<Arc<Snapshot>>
    where
        F: Fn(&mut CatalogState) -> Result<()>,
    {
        self.commit_checked(actor, operation, change, true).await
    }

    async fn commit_checked<F>(&self, actor: &str, operation: &str, change: F, system: bool) -> Result<Arc<Snapshot>>
    where
        F: Fn(&mut CatalogState) -> Result<()>,
    {
        let mut base = self.refresh().await?;
        for attempt in 0..MAX_ATTEMPTS {
            let mut state = base.state.clone();
            change(&mut state)?;
            if !system && state.schemas.get(crate::AUDIT_SCHEMA) != base.state.schemas.get(crate::AUDIT_SCHEMA) {
                return Err(Error::Reserved(format!(
                    "permission denied: schema \"{}\" holds Kura's audit trail and only Kura changes it",
                    crate::AUDIT_SCHEMA
                )));
            }
            if state == base.state {
                // Nothing changed (e.g. CREATE SCHEMA IF NOT EXISTS on an existing schema):
                // no new version, so history only records real changes.
                return Ok(base);
            }
            let next = Snapshot {
                version: base.version + 1,
                committed_at: Utc::now(),
                actor: actor.into(),
                operation: operation.into(),
                state,
            };
            match self.put_new(&next).await {
                Ok(()) => {
                    let next = Arc::new(next);
                    {
                        let mut guard = self.current.write().expect("catalog lock poisoned");
                        if guard.version < next.version {
                            *guard = next.clone();
                        }
                    }
                    self.write_hint(next.version).await;
                    tracing::debug!(version = next.version, operation, "catalog commit");
                    return Ok(next);
                }
                Err(Error::ObjectStore(object_store::Error::AlreadyExists { .. })) => {
                    tracing::debug!(attempt, version = next.version, "catalog commit lost a race; retrying");
                    // Small, growing pause so that two writers in lock-step drift apart.
                    let pause = 5 * (attempt as u64 + 1) + (std::process::id() as u64 % 7);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    base = self.refresh().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict { attempts: MAX_ATTEMPTS })
    }

    async fn put_new(&self, snapshot: &Snapshot) -> Result<()> {
        let body = serde_json::to_vec_pretty(snapshot).map_err(|e| Error::Invalid(e.to_string()))?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        self.store.put_opts(&commit_path(snapshot.version), PutPayload::from(Bytes::from(body)), opts).await?;
        Ok(())
    }

    /// Best effort: the hint only shortens the listing at start-up; a stale or missing hint is
    /// harmless because the log is always listed from it onwards.
    async fn write_hint(&self, version: u64) {
        let body = PutPayload::from(Bytes::from(version.to_string()));
        if let Err(e) = self.store.put(&Path::from(LATEST_HINT), body).await {
            tracing::warn!(error = %e, "could not update the catalog's latest-version hint");
        }
    }

    async fn read_hint(&self) -> Option<u64> {
        let bytes = self.store.get(&Path::from(LATEST_HINT)).await.ok()?.bytes().await.ok()?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    /// The highest committed version at or after `from` (or after the hint, or from the start).
    async fn find_latest(&self, from: Option<u64>) -> Result<Option<u64>> {
        let start = match from {
            Some(v) => Some(v),
            None => self.read_hint().await,
        };
        let prefix = Path::from(LOG_DIR);
        let listed: Vec<_> = match start {
            Some(v) if v > 0 => {
                // List strictly after the version before `start`, so `start` itself is included.
                let offset = commit_path(v - 1);
                self.store.list_with_offset(Some(&prefix), &offset).try_collect().await?
            }
            _ => self.store.list(Some(&prefix)).try_collect().await?,
        };
        let latest = listed.iter().filter_map(|m| parse_version(&m.location)).max();
        match (latest, start) {
            // The hint pointed past anything listed (e.g. a wiped log): list everything.
            (None, Some(v)) if v > 0 && from.is_none() => {
                let all: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
                Ok(all.iter().filter_map(|m| parse_version(&m.location)).max())
            }
            (latest, _) => Ok(latest),
        }
    }

    async fn read_version(&self, version: u64) -> Result<Snapshot> {
        let path = commit_path(version);
        let bytes = self.store.get(&path).await?.bytes().await?;
        let snap: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: path.to_string(), reason: e.to_string() })?;
        if snap.version != version {
            return Err(Error::Corrupt {
                path: path.to_string(),
                reason: format!("file claims version {}", snap.version),
            });
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SchemaEntry, TableEntry};
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn concurrent_writers_both_land() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = Arc::new(Catalog::open_store(store.clone()).await.unwrap());
        let b = Arc::new(Catalog::open_store(store.clone()).await.unwrap());
        a.commit("t", "schema", |s| s.create_schema(SchemaEntry::new("s"), false)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let cat = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                cat.commit("t", "table", move |s| s.create_table("s", TableEntry::new(format!("t{i}"), vec![])))
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let fresh = Catalog::open_store(store).await.unwrap();
        let snap = fresh.cached();
        assert_eq!(snap.version, 21);
        assert_eq!(snap.state.schema("s").unwrap().tables.len(), 20);
    }

    #[tokio::test]
    async fn racing_creates_of_one_name_give_one_clear_error() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = Catalog::open_store(store.clone()).await.unwrap();
        let b = Catalog::open_store(store.clone()).await.unwrap();
        let (ra, rb) = tokio::join!(
            a.commit("a", "s", |s| s.create_schema(SchemaEntry::new("x"), false)),
            b.commit("b", "s", |s| s.create_schema(SchemaEntry::new("x"), false)),
        );
        let errors: Vec<_> = [ra.err(), rb.err()].into_iter().flatten().collect();
        assert_eq!(errors.len(), 1, "exactly one writer must fail");
        assert_eq!(errors[0].to_string(), "schema \"x\" already exists");
    }

    #[tokio::test]
    async fn unchanged_state_writes_no_version() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let cat = Catalog::open_store(store).await.unwrap();
        cat.commit("t", "s", |s| s.create_schema(SchemaEntry::new("s"), true)).await.unwrap();
        let again = cat.commit("t", "s", |s| s.create_schema(SchemaEntry::new("s"), true)).await.unwrap();
        assert_eq!(again.version, 1);
    }

    #[tokio::test]
    async fn corrupt_commit_fails_closed_and_history_is_readable() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let cat = Catalog::open_store(store.clone()).await.unwrap();
        cat.commit("t", "one", |s| s.create_schema(SchemaEntry::new("one"), false)).await.unwrap();
        cat.commit("t", "two", |s| s.create_schema(SchemaEntry::new("two"), false)).await.unwrap();
        assert!(cat.snapshot_at(1).await.unwrap().state.schemas.contains_key("one"));
        assert!(!cat.snapshot_at(1).await.unwrap().state.schemas.contains_key("two"));
        store.put(&commit_path(3), PutPayload::from_static(b"{not json")).await.unwrap();
        let err = Catalog::open_store(store).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }
}
