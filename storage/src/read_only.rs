//! A warehouse that has been moved elsewhere (`kura migrate --cutover`) is read-only.
//!
//! The flag is one object, `<prefix>/_kura/read_only.json`, naming where the warehouse went. It is
//! enforced below everything that writes: [`ReadOnlyGuard`] wraps the warehouse's object store, so
//! a catalog commit, a Delta commit or data file, a pseudonym key, a differencing-history batch or
//! an audit record are all refused the same way, whichever code path writes them (fail closed: a
//! new kind of write needs no new check). Reads are untouched.
//!
//! Each process re-reads the flag at most every [`FLAG_CACHE`]; a writer that started before the
//! flag was set is refused at its next object write, so its Delta commit (always the last write)
//! cannot land later than [`FLAG_CACHE`] after the flag. `kura migrate --cutover` waits
//! [`SETTLE`] after setting it before copying the last changes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use serde::{Deserialize, Serialize};

/// Where the flag lives, relative to the warehouse prefix.
pub const READ_ONLY_FLAG: &str = "_kura/read_only.json";
/// How long a process trusts what it last read of the flag.
pub const FLAG_CACHE: Duration = Duration::from_millis(1000);
/// How long to wait after setting the flag before every process is sure to have seen it.
pub const SETTLE: Duration = Duration::from_millis(2500);

/// The content of the flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnly {
    /// The warehouse's new location, as `kura serve --data` takes it.
    pub moved_to: String,
    /// When the flag was set.
    pub since: DateTime<Utc>,
}

/// The error every refused write carries (inside `object_store::Error::Generic`).
#[derive(Debug, thiserror::Error)]
#[error(
    "warehouse {warehouse} is read-only: it was moved to {} on {} (kura migrate --cutover); \
     write to the new location (kura serve --data {})",
    .flag.moved_to, .flag.since.format("%Y-%m-%d %H:%M:%S UTC"), .flag.moved_to
)]
pub struct ReadOnlyError {
    /// The refused warehouse's URL.
    pub warehouse: String,
    /// Its flag.
    pub flag: ReadOnly,
}

#[derive(Debug)]
struct Cached {
    read_at: Instant,
    flag: Option<ReadOnly>,
}

/// Wraps a store and refuses every write while the warehouse's read-only flag is set.
#[derive(Debug)]
pub(crate) struct ReadOnlyGuard {
    inner: Arc<dyn ObjectStore>,
    /// The flag's path in `inner`'s coordinates.
    flag_path: Path,
    warehouse: String,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Display for ReadOnlyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadOnlyGuard({})", self.inner)
    }
}

impl ReadOnlyGuard {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, prefix: &Path, warehouse: String) -> Self {
        let flag_path = prefix.parts().chain(Path::from(READ_ONLY_FLAG).parts()).collect();
        Self { inner, flag_path, warehouse, cached: Mutex::new(None) }
    }

    /// Reads the flag from storage (ignoring the cache) and remembers it.
    pub(crate) async fn read_flag(&self) -> object_store::Result<Option<ReadOnly>> {
        let flag = match self.inner.get(&self.flag_path).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                // An unreadable flag still means read-only: fail closed.
                Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| ReadOnly {
                    moved_to: "(unreadable read-only flag)".into(),
                    since: Utc::now(),
                }))
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        *self.cached.lock().expect("read-only cache poisoned") = Some(Cached { read_at: Instant::now(), flag: flag.clone() });
        Ok(flag)
    }

    pub(crate) async fn set_flag(&self, flag: Option<&ReadOnly>) -> object_store::Result<()> {
        match flag {
            Some(flag) => {
                let body = serde_json::to_vec_pretty(flag).expect("flag serialises");
                self.inner.put(&self.flag_path, PutPayload::from(Bytes::from(body))).await?;
            }
            None => match self.inner.delete(&self.flag_path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
        }
        *self.cached.lock().expect("read-only cache poisoned") = Some(Cached { read_at: Instant::now(), flag: flag.cloned() });
        Ok(())
    }

    /// Refuses the write if the flag is set (read again when the cached answer is older than
    /// [`FLAG_CACHE`]).
    async fn check(&self) -> object_store::Result<()> {
        let cached = {
            let guard = self.cached.lock().expect("read-only cache poisoned");
            guard.as_ref().filter(|c| c.read_at.elapsed() < FLAG_CACHE).map(|c| c.flag.clone())
        };
        let flag = match cached {
            Some(flag) => flag,
            None => self.read_flag().await?,
        };
        match flag {
            None => Ok(()),
            Some(flag) => Err(object_store::Error::Generic {
                store: "Kura",
                source: Box::new(ReadOnlyError { warehouse: self.warehouse.clone(), flag }),
            }),
        }
    }
}

#[async_trait]
impl ObjectStore for ReadOnlyGuard {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        self.check().await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check().await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[std::ops::Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // The check is async and the stream is not: check first, then hand the stream over.
        let inner = self.inner.clone();
        let checked = self.checked_once();
        let mut locations = Some(locations);
        futures::stream::once(checked)
            .flat_map(move |outcome| match (outcome, locations.take()) {
                (Ok(()), Some(locations)) => inner.delete_stream(locations),
                (Err(e), _) => futures::stream::once(async move { Err(e) }).boxed(),
                (Ok(()), None) => futures::stream::empty().boxed(),
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.check().await?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.check().await?;
        self.inner.rename_opts(from, to, options).await
    }
}

impl ReadOnlyGuard {
    /// A `'static` future doing [`Self::check`], for the stream above.
    fn checked_once(&self) -> impl std::future::Future<Output = object_store::Result<()>> + Send + 'static {
        let probe = Self {
            inner: self.inner.clone(),
            flag_path: self.flag_path.clone(),
            warehouse: self.warehouse.clone(),
            cached: Mutex::new(None),
        };
        async move { probe.check().await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn flag_refuses_writes_and_lifting_it_allows_them() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let guard = ReadOnlyGuard::new(inner.clone(), &Path::from("wh"), "memory://wh".into());
        guard.put(&Path::from("wh/a"), PutPayload::from_static(b"1")).await.unwrap();
        let flag = ReadOnly { moved_to: "s3://new/wh".into(), since: Utc::now() };
        guard.set_flag(Some(&flag)).await.unwrap();
        let err = guard.put(&Path::from("wh/b"), PutPayload::from_static(b"2")).await.unwrap_err();
        assert!(err.to_string().contains("is read-only: it was moved to s3://new/wh"), "{err}");
        assert!(guard.delete(&Path::from("wh/a")).await.is_err(), "deletes are writes too");
        assert!(guard.get(&Path::from("wh/a")).await.is_ok(), "reads still work");
        // Another process's guard sees the flag in storage.
        let other = ReadOnlyGuard::new(inner, &Path::from("wh"), "memory://wh".into());
        assert!(other.put(&Path::from("wh/c"), PutPayload::from_static(b"3")).await.is_err());
        guard.set_flag(None).await.unwrap();
        guard.put(&Path::from("wh/b"), PutPayload::from_static(b"2")).await.unwrap();
    }
}
