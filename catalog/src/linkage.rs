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
    /// Base-table columns its query makes direct identifiers from (names, insured numbers,
    /// source keys): the identity zone, which only operators read raw.
    #[serde(default)]
    pub identity: Vec<IdentityColumn>,
    /// Who declared it.
    pub owner: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A base-table column in the identity zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityColumn {
    /// Schema of the table.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// The identity columns of the source it feeds (`name_kana`, `source_key`, ...).
    pub feeds: String,
}

/// How a linked table is made from its base table: the base's rows with the person's research ID
/// in place of the identity columns (`CREATE LINKED TABLE`). Refreshed by every `LINK`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkedTable {
    /// Schema of the base table (in the identity zone).
    pub base_schema: String,
    /// Name of the base table.
    pub base_table: String,
    /// The linkage source whose research IDs it carries.
    pub source: String,
    /// SQL expression over the base table giving the row's key in that source.
    pub key: String,
    /// Base columns copied, in order (after `research_id`).
    pub columns: Vec<String>,
    /// Quasi-identifying columns copied because `KEEP` named them.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Base columns held back in the identity zone, with the identity column each feeds.
    pub withheld: Vec<(String, String)>,
    /// Columns the rows are sorted by after `research_id`.
    #[serde(default)]
    pub order_by: Vec<String>,
}

impl CatalogState {
    /// The identity-zone columns of table `schema.table`, with the source each comes from.
    pub fn identity_columns(&self, schema: &str, table: &str) -> Vec<(&str, &IdentityColumn)> {
        self.linkage_sources
            .values()
            .flat_map(|s| s.identity.iter().map(move |c| (s.name.as_str(), c)))
            .filter(|(_, c)| c.schema == schema && c.table == table)
            .collect()
    }

    /// The first linked table (in name order) made from base table `schema.table`.
    pub fn linked_table_of_base(&self, schema: &str, table: &str) -> Option<&LinkedTable> {
        self.linked_tables().into_iter().map(|(_, _, l)| l).find(|l| l.base_schema == schema && l.base_table == table)
    }

    /// Whether `schema.table` is a linked table or the base of one: what the automatic opt-out
    /// filter applies to.
    pub fn carries_refusals(&self, schema: &str, table: &str) -> bool {
        self.table(schema, table).is_ok_and(|t| t.linked.is_some()) || self.linked_table_of_base(schema, table).is_some()
    }

    /// Every linked table as (schema, name, definition), in name order.
    pub fn linked_tables(&self) -> Vec<(&str, &str, &LinkedTable)> {
        self.schemas
            .iter()
            .flat_map(|(s, e)| e.tables.iter().filter_map(move |(n, t)| t.linked.as_ref().map(|l| (s.as_str(), n.as_str(), l))))
            .collect()
    }

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

    /// Removes a linkage source (its keys keep their research IDs until the next linkage). A
    /// source that linked tables are made from stays until they are dropped.
    pub fn drop_linkage_source(&mut self, name: &str) -> Result<LinkageSourceEntry> {
        if let Some((s, t, _)) = self.linked_tables().into_iter().find(|(_, _, l)| l.source == name) {
            return Err(Error::Invalid(format!(
                "cannot drop linkage source \"{name}\": linked table {s}.{t} is made from it; drop that table first"
            )));
        }
        self.linkage_sources.remove(name).ok_or_else(|| Error::NotFound { kind: ObjectKind::LinkageSource, name: name.into() })
    }
}
