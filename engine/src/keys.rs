//! The warehouse's pseudonym key store: one random 256-bit key per name, under
//! `<warehouse>/_kura/keys/<name>.key`, for `pseudonymize(value, 'name')` and `date_shift`.
//!
//! Invariants:
//! - SECURITY: no SQL reads a key. Keyed functions are registered only in the state that plans
//!   policy bodies (`policy::plan`), so a user can neither call them on values of their choice nor
//!   see them; `EXPLAIN` of a user's query never shows a policy plan, and the functions print key
//!   names only. One key per provision: two recipients' pseudonyms cannot be joined.
//! - A key is written once (create-if-absent) and never changes, so pseudonyms are stable; losing
//!   it is erasing the link between pseudonyms and persons (消去), which is why there is no DROP.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parking_lot::RwLock;

use crate::{Error, Result};

const KEY_DIR: &str = "_kura/keys";

fn key_path(name: &str) -> Path {
    Path::from(format!("{KEY_DIR}/{name}.key"))
}

/// The key store of one warehouse, with the keys read so far.
pub(crate) struct WarehouseKeys {
    store: Arc<dyn ObjectStore>,
    cache: RwLock<HashMap<String, Arc<[u8]>>>,
}

impl std::fmt::Debug for WarehouseKeys {
    // SECURITY: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.cache.read().keys().cloned().collect();
        f.debug_struct("WarehouseKeys").field("loaded", &names).finish_non_exhaustive()
    }
}

impl WarehouseKeys {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, cache: RwLock::new(HashMap::new()) }
    }

    /// Creates key `name` with 32 random bytes; an existing key is an error (keys never change).
    pub(crate) async fn create(&self, name: &str) -> Result<()> {
        crate::names::validate_new_name("key", name)?;
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| Error::Invalid("the system random number generator failed".into()))?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&key_path(name), PutPayload::from(Bytes::copy_from_slice(&bytes)), opts).await {
            Ok(_) => {
                self.cache.write().insert(name.to_string(), Arc::from(&bytes[..]));
                Ok(())
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::DuplicateObject(format!("pseudonym key \"{name}\" already exists")))
            }
            Err(e) => Err(Error::Storage(kura_storage::Error::from(e))),
        }
    }

    /// Reads every key into memory (at start-up: keys are few and small).
    pub(crate) async fn preload(&self) -> Result<()> {
        for name in self.names().await? {
            if let Some(key) = self.load(&name).await {
                self.cache.write().insert(name, key);
            }
        }
        Ok(())
    }

    /// Names of the keys in the store.
    pub(crate) async fn names(&self) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self
            .store
            .list(Some(&Path::from(KEY_DIR)))
            .try_collect()
            .await
            .map_err(|e| Error::Storage(kura_storage::Error::from(e)))?;
        let mut names: Vec<String> = listed
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".key").map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn load(&self, name: &str) -> Option<Arc<[u8]>> {
        let bytes = self.store.get(&key_path(name)).await.ok()?.bytes().await.ok()?;
        (bytes.len() == 32).then(|| Arc::from(bytes.as_ref()))
    }
}

impl kura_udfs::KeyRing for WarehouseKeys {
    fn key(&self, name: &str) -> Option<Arc<[u8]>> {
        if let Some(k) = self.cache.read().get(name) {
            return Some(k.clone());
        }
        // A key made since this process last looked (by another process, too): read it once.
        // Functions run on the runtime's worker threads, where blocking in place is allowed.
        let handle = tokio::runtime::Handle::try_current().ok()?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return None;
        }
        let key = tokio::task::block_in_place(|| handle.block_on(self.load(name)))?;
        self.cache.write().insert(name.to_string(), key.clone());
        Some(key)
    }
}
