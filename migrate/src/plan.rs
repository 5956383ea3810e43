//! What to copy, in which order, and what is already there.
//!
//! Order is what keeps a half-migrated destination consistent: data files first, then each
//! table's Delta log in version order (a commit never names a file that is not there yet), then
//! `_last_checkpoint`, then Kura's own state (keys, histories, audit records), then the catalog,
//! and the catalog's `_latest` hint last. Objects that left the source are removed from the
//! destination only after the catalog that no longer names them.

use std::collections::{BTreeMap, HashMap};

use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::journal::Entry;

/// Prefix of the migration's own objects at the destination (journal, reports).
pub const MIGRATE_DIR: &str = "_kura_migrate";
/// The catalog's first version: its checksum identifies a warehouse.
pub const GENESIS: &str = "_kura/catalog/_log/00000000000000000000.json";

/// The copy phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Parquet data files, deletion vectors: immutable, copied in parallel, largest first.
    Data,
    /// `_delta_log/` commits and checkpoints: in version order within a table.
    DeltaLog,
    /// `_delta_log/_last_checkpoint` (rewritten in place by the source).
    LastCheckpoint,
    /// `_kura/` except the catalog: pseudonym keys, differencing histories, audit records.
    KuraState,
    /// `_kura/catalog/_log/`: one full catalog state per version.
    Catalog,
    /// `_kura/catalog/_latest`: a hint, last.
    CatalogHint,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 6] =
        [Phase::Data, Phase::DeltaLog, Phase::LastCheckpoint, Phase::KuraState, Phase::Catalog, Phase::CatalogHint];

    /// The phase of an object, by its path below the warehouse prefix.
    pub fn of(path: &str) -> Phase {
        if path == "_kura/catalog/_latest" {
            Phase::CatalogHint
        } else if path.starts_with("_kura/catalog/_log/") {
            Phase::Catalog
        } else if path.starts_with("_kura/") {
            Phase::KuraState
        } else if path.ends_with("/_delta_log/_last_checkpoint") || path == "_delta_log/_last_checkpoint" {
            Phase::LastCheckpoint
        } else if path.contains("_delta_log/") {
            Phase::DeltaLog
        } else {
            Phase::Data
        }
    }
}

/// Whether an object of the source takes part in a migration at all.
pub fn is_migrated(path: &str) -> bool {
    !(path == MIGRATE_DIR
        || path.starts_with(&format!("{MIGRATE_DIR}/"))
        // SECURITY: the source's read-only flag must never make the copy read-only.
        || path == kura_storage::READ_ONLY_FLAG
        // A serving process's audit journal is its own; its records reach the audit table,
        // which is copied.
        || path.starts_with(&format!("{}/", kura_storage::AUDIT_JOURNAL_DIR)))
}

/// A source object and what identifies its version (ETag, or modification time and size).
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Path below the warehouse prefix.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Version tag: a changed tag means a changed object.
    pub tag: String,
}

impl SourceObject {
    /// From a listing of the source (paths already relative to the warehouse prefix).
    pub fn from_meta(meta: &ObjectMeta) -> Self {
        let tag = meta.e_tag.clone().unwrap_or_else(|| format!("{}-{}", meta.last_modified.timestamp_micros(), meta.size));
        Self { path: meta.location.to_string(), size: meta.size, tag }
    }
}

/// The decision for one run.
#[derive(Debug, Default)]
pub struct Plan {
    /// Objects to copy, by phase.
    pub copy: BTreeMap<Phase, Vec<SourceObject>>,
    /// Objects already at the destination and verified by an earlier run.
    pub skipped: Vec<SourceObject>,
    /// Objects an earlier run copied that have since left the source.
    pub remove: Vec<String>,
}

impl Plan {
    /// Compares the source listing with the journal and the destination listing (path -> size).
    ///
    /// An object is skipped only if the journal says it was copied and verified from this very
    /// version of the source object (same size and tag) and the destination still holds an object
    /// of that size; anything else is copied (again).
    pub fn new(source: Vec<SourceObject>, journal: &HashMap<String, Entry>, destination: &HashMap<String, u64>) -> Plan {
        let mut plan = Plan::default();
        let mut present = std::collections::HashSet::new();
        for object in source {
            if !is_migrated(&object.path) {
                continue;
            }
            present.insert(object.path.clone());
            let done = journal.get(&object.path).is_some_and(|e| {
                e.size == object.size && e.tag == object.tag && destination.get(&object.path) == Some(&object.size)
            });
            if done {
                plan.skipped.push(object);
            } else {
                plan.copy.entry(Phase::of(&object.path)).or_default().push(object);
            }
        }
        for list in plan.copy.values_mut() {
            // Largest first balances parallel transfers; names order a table's log by version.
            list.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
        }
        if let Some(log) = plan.copy.get_mut(&Phase::DeltaLog) {
            log.sort_by(|a, b| a.path.cmp(&b.path));
        }
        plan.remove = journal.keys().filter(|p| !present.contains(*p)).cloned().collect();
        plan.remove.sort();
        plan
    }

    /// Objects and bytes to copy.
    pub fn to_copy(&self) -> (usize, u64) {
        self.copy.values().flatten().fold((0, 0), |(n, b), o| (n + 1, b + o.size))
    }
}

/// The table directory a Delta log object belongs to (`tables/<id>`), for per-table ordering.
pub fn table_of(path: &str) -> &str {
    path.split_once("/_delta_log/").map(|(t, _)| t).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(path: &str, size: u64, tag: &str) -> SourceObject {
        SourceObject { path: path.into(), size, tag: tag.into() }
    }

    #[test]
    fn phases_order_data_before_logs_before_catalog() {
        assert_eq!(Phase::of("tables/a/fy=2024/part-1.parquet"), Phase::Data);
        assert_eq!(Phase::of("tables/a/_delta_log/00000000000000000003.json"), Phase::DeltaLog);
        assert_eq!(Phase::of("tables/a/_delta_log/00000000000000000100.checkpoint.parquet"), Phase::DeltaLog);
        assert_eq!(Phase::of("tables/a/_delta_log/_last_checkpoint"), Phase::LastCheckpoint);
        assert_eq!(Phase::of("_kura/keys/research.key"), Phase::KuraState);
        assert_eq!(Phase::of("_kura/catalog/_log/00000000000000000007.json"), Phase::Catalog);
        assert_eq!(Phase::of("_kura/catalog/_latest"), Phase::CatalogHint);
        assert!(Phase::Data < Phase::DeltaLog && Phase::DeltaLog < Phase::Catalog && Phase::Catalog < Phase::CatalogHint);
        assert!(!is_migrated("_kura/read_only.json"));
        assert!(!is_migrated("_kura/audit/journal/0123abcd-0.jsonl"));
        assert!(!is_migrated("_kura_migrate/journal/00000000000000000001.json"));
        assert_eq!(table_of("tables/a/_delta_log/00000000000000000003.json"), "tables/a");
    }

    #[test]
    fn skips_only_what_was_verified_from_the_same_source_version() {
        let journal: HashMap<String, Entry> = [
            Entry::new("tables/a/p1.parquet", 10, "t1", "m1"),
            Entry::new("tables/a/_delta_log/_last_checkpoint", 5, "old", "m2"),
            Entry::new("tables/a/p2.parquet", 7, "t2", "m3"),
            Entry::new("tables/gone/p.parquet", 3, "t", "m4"),
        ]
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect();
        let dest: HashMap<String, u64> = [
            ("tables/a/p1.parquet".to_string(), 10),
            ("tables/a/_delta_log/_last_checkpoint".to_string(), 5),
            ("tables/gone/p.parquet".to_string(), 3),
        ]
        .into();
        let plan = Plan::new(
            vec![
                obj("tables/a/p1.parquet", 10, "t1"),                  // verified: skip
                obj("tables/a/_delta_log/_last_checkpoint", 5, "new"), // rewritten at the source
                obj("tables/a/p2.parquet", 7, "t2"),                   // journaled but missing at destination
                obj("tables/b/p.parquet", 9, "t9"),                    // new
                obj("_kura/read_only.json", 9, "x"),                   // never copied
            ],
            &journal,
            &dest,
        );
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.to_copy(), (3, 21));
        assert_eq!(plan.copy[&Phase::LastCheckpoint].len(), 1);
        assert_eq!(plan.remove, vec!["tables/gone/p.parquet".to_string()]);
    }
}
