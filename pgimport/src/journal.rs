//! The resume journal: one small JSON object per imported table under `_kura/import/` in the
//! warehouse, written before its load starts (`loading`) and once both sides' checksums agree
//! (`verified`). A rerun skips verified tables, verifies (and then skips) a table whose load
//! committed before the process died, and loads again a table that never appeared (a load is one
//! commit, so an interrupted one left no table).

use kura_engine::Session;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where a table's import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its load started; the table exists only if the load committed.
    Loading,
    /// Loaded, and its rows and checksum agree with PostgreSQL.
    Verified,
}

/// One table's journal entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// `postgres://host:port/db schema.table`.
    pub source: String,
    /// Where it stands.
    pub state: State,
    /// Rows verified (when verified).
    pub rows: u64,
    /// The checksum both sides agreed on (when verified).
    pub checksum: String,
    /// When the entry was written (RFC 3339).
    pub at: String,
}

fn path(schema: &str, table: &str) -> Path {
    Path::from_iter(["_kura", "import", schema, &format!("{table}.json")])
}

/// The entry for Kura table `schema.table`, if any.
pub async fn read(session: &Session, schema: &str, table: &str) -> Result<Option<Entry>> {
    let store = session.engine().warehouse().store();
    let p = path(schema, table);
    let err = |reason: String| Error::Journal { path: p.to_string(), reason };
    match store.get(&p).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(|e| err(e.to_string()))?;
            serde_json::from_slice(&bytes).map(Some).map_err(|e| err(e.to_string()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes the entry for Kura table `schema.table`.
pub async fn write(session: &Session, schema: &str, table: &str, entry: &Entry) -> Result<()> {
    let store = session.engine().warehouse().store();
    let p = path(schema, table);
    let bytes = serde_json::to_vec_pretty(entry).expect("journal entries serialise");
    store.put(&p, bytes.into()).await.map_err(|e| Error::Journal { path: p.to_string(), reason: e.to_string() })?;
    Ok(())
}
