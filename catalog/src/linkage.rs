//! Linkage sources: which query yields a source's identity rows for research-ID linkage (名寄せ).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CatalogState, Error, ObjectKind, Result};

/// A source declared for linkage: `CREATE LINKAGE SOURCE name [WITH UNIQUE KEYS] AS query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkageSourceEntry {
    /// Source name (as in the research-ID map's `source` column).
    pub name: String,
    /// The query yielding `source_key` and identity columns.
    pub query: String,
    /// Different keys of this source are different people (a resident register).
    pub unique_keys: bool,
    /// Who declared it.
    pub owner: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl CatalogState {
    /// A linkage source by name.
    pub fn linkage_source(&self, name: &str) -> Result<&LinkageSourceEntry> {
        self.linkage_sources.get(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::LinkageSource, name: name.into() })
    }

    /// Declares a linkage source; `or_replace` replaces one of the same name.
    pub fn create_linkage_source(&mut self, entry: LinkageSourceEntry, or_replace: bool) -> Result<()> {
        if !or_replace && self.linkage_sources.contains_key(&entry.name) {
            return Err(Error::AlreadyExists { kind: ObjectKind::LinkageSource, name: entry.name });
        }
        self.linkage_sources.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes a linkage source (its keys keep their research IDs until the next linkage).
    pub fn drop_linkage_source(&mut self, name: &str) -> Result<LinkageSourceEntry> {
        self.linkage_sources.remove(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::LinkageSource, name: name.into() })
    }
}
