//! The resume journal, kept at the destination under `_kura_migrate/`.
//!
//! - `_kura_migrate/source.json` names the warehouse being copied (its catalog's first version's
//!   checksum), written before the first object, so a destination half-filled by another
//!   warehouse's migration is recognised.
//! - `_kura_migrate/journal/<seq>.json` are batches of entries, written about once a second by one
//!   writer task: an entry is added only after its object was uploaded and its checksum verified,
//!   so SIGKILL loses at most the last second's entries, whose objects are simply copied again.
//!   Later batches override earlier ones; a successful run compacts them into one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::plan::MIGRATE_DIR;
use crate::{Error, Result};

/// One verified object at the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path below the warehouse prefix.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The source object's version tag it was copied from.
    pub tag: String,
    /// MD5 of its content (hex), as sent and as verified at the destination.
    pub md5: String,
    /// Set when the object left the source and was removed from the destination.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

impl Entry {
    /// A verified copy.
    pub fn new(path: &str, size: u64, tag: &str, md5: &str) -> Self {
        Self { path: path.into(), size, tag: tag.into(), md5: md5.into(), removed: false }
    }
}

/// Which warehouse a destination receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// The source URL of the first run.
    pub source: String,
    /// MD5 of the source's catalog version 0.
    pub genesis_md5: String,
}

fn journal_dir() -> Path {
    Path::from(format!("{MIGRATE_DIR}/journal"))
}

fn batch_path(seq: u64) -> Path {
    Path::from(format!("{MIGRATE_DIR}/journal/{seq:020}.json"))
}

/// The identity file's path.
pub fn identity_path() -> Path {
    Path::from(format!("{MIGRATE_DIR}/source.json"))
}

/// The journal as read at the start of a run.
#[derive(Debug, Default)]
pub struct Journal {
    /// Latest entry per path (removed ones dropped).
    pub entries: HashMap<String, Entry>,
    /// Batch objects read (to compact them away).
    batches: Vec<u64>,
}

impl Journal {
    /// Reads every batch at the destination, oldest first.
    pub async fn load(store: &Arc<dyn ObjectStore>, location: &str) -> Result<Journal> {
        let listed: Vec<_> = store.list(Some(&journal_dir())).try_collect().await.map_err(Error::store(location))?;
        let mut batches: Vec<(u64, Path)> = listed
            .into_iter()
            .filter_map(|m| {
                let seq = m.location.filename()?.strip_suffix(".json")?.parse().ok()?;
                Some((seq, m.location))
            })
            .collect();
        batches.sort();
        let mut journal = Journal::default();
        for (seq, path) in batches {
            let bytes = store.get(&path).await.map_err(Error::store(location))?.bytes().await.map_err(Error::store(location))?;
            let entries: Vec<Entry> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Journal { path: path.to_string(), reason: e.to_string() })?;
            for e in entries {
                if e.removed {
                    journal.entries.remove(&e.path);
                } else {
                    journal.entries.insert(e.path.clone(), e);
                }
            }
            journal.batches.push(seq);
        }
        Ok(journal)
    }

    /// The next free batch number.
    pub fn next_seq(&self) -> u64 {
        self.batches.last().map_or(1, |s| s + 1)
    }

    /// Writes the whole journal as one batch and removes the batches it replaces.
    pub async fn compact(
        store: &Arc<dyn ObjectStore>,
        location: &str,
        entries: &HashMap<String, Entry>,
        seq: u64,
    ) -> Result<()> {
        let mut all: Vec<&Entry> = entries.values().collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        put_json(store, location, &batch_path(seq), &all).await?;
        let listed: Vec<_> = store.list(Some(&journal_dir())).try_collect().await.map_err(Error::store(location))?;
        for m in listed {
            let older = m.location.filename().and_then(|f| f.strip_suffix(".json")?.parse::<u64>().ok()).is_some_and(|s| s < seq);
            if older {
                match store.delete(&m.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::store(location)(e)),
                }
            }
        }
        Ok(())
    }
}

/// Writes a JSON value to the destination.
pub async fn put_json<T: Serialize + ?Sized>(store: &Arc<dyn ObjectStore>, location: &str, path: &Path, value: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(value).expect("journal values serialise");
    store.put(path, PutPayload::from(Bytes::from(body))).await.map_err(Error::store(location))?;
    Ok(())
}

/// Collects verified entries and writes them in batches from one task.
pub struct JournalWriter {
    sender: mpsc::UnboundedSender<Entry>,
    task: tokio::task::JoinHandle<Result<(HashMap<String, Entry>, u64)>>,
}

impl JournalWriter {
    /// Starts the writer; `entries` is the journal so far, `seq` the first free batch number.
    pub fn start(store: Arc<dyn ObjectStore>, location: String, mut entries: HashMap<String, Entry>, mut seq: u64) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Entry>();
        let task = tokio::spawn(async move {
            let mut pending: Vec<Entry> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let (closed, ticked) = tokio::select! {
                    got = receiver.recv() => match got {
                        Some(e) => { pending.push(e); (false, false) }
                        None => (true, false),
                    },
                    _ = tick.tick() => (false, true),
                };
                let due = closed || ticked || pending.len() >= 1000;
                if due && !pending.is_empty() {
                    put_json(&store, &location, &batch_path(seq), &pending).await?;
                    seq += 1;
                    for e in pending.drain(..) {
                        if e.removed {
                            entries.remove(&e.path);
                        } else {
                            entries.insert(e.path.clone(), e);
                        }
                    }
                }
                if closed {
                    return Ok((entries, seq));
                }
            }
        });
        Self { sender, task }
    }

    /// Records a verified object (or a removal).
    pub fn record(&self, entry: Entry) {
        // The receiver lives until `finish`; a send can only fail after it stopped on an error,
        // which `finish` reports.
        let _ = self.sender.send(entry);
    }

    /// Writes what is pending and returns the journal and the next free batch number.
    pub async fn finish(self) -> Result<(HashMap<String, Entry>, u64)> {
        drop(self.sender);
        self.task.await.map_err(|e| Error::Journal { path: MIGRATE_DIR.into(), reason: e.to_string() })?
    }
}
