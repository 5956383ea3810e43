//! Kura's storage layer: where a warehouse lives and how its Delta Lake tables are opened,
//! created and removed on object storage.
//!
//! A warehouse is one URL ([`WarehouseLocation`]): a local folder, `s3://bucket/prefix` on any
//! S3-compatible server, or `memory://name` for tests. Everything Kura keeps lives under that one
//! prefix, so copying the prefix copies the warehouse:
//!
//! ```text
//! <prefix>/_kura/catalog/...   the durable catalog (owned by `kura-catalog`)
//! <prefix>/tables/<uuid>/      one Delta Lake table per catalog table, readable by any Delta reader
//! ```
//!
//! Invariants every caller may rely on:
//! - A table directory is written only through delta-rs, so every change is one Delta commit and a
//!   crash leaves the table at its last committed version.
//! - On S3 the store uses conditional puts (`If-None-Match: *`), so two writers never overwrite
//!   each other's commit files; delta-rs retries or reports a conflict.
//! - `memory://name` stores are shared within one process by name and vanish with it.
//! - A warehouse moved elsewhere (`kura migrate --cutover`) refuses every write, from any code
//!   path, at the object-store level ([`ReadOnly`]); reads are untouched.
//!
//! This crate must not know about SQL, users or policies: it stores bytes and Delta tables and
//! nothing above that. It never decides who may read what.
//!
//! ```no_run
//! # async fn demo() -> kura_storage::Result<()> {
//! let wh = kura_storage::Warehouse::open("memory://demo").await?;
//! let store = wh.store(); // object store scoped to the warehouse prefix
//! # let _ = store; Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod location;
mod read_only;
mod tables;
mod warehouse;

pub use error::{Error, Result};
pub use location::WarehouseLocation;
pub use read_only::{FLAG_CACHE, READ_ONLY_FLAG, ReadOnly, ReadOnlyError, SETTLE};
pub use tables::{CHECKPOINT_INTERVAL, TableVersionSpec, checkpoint_if_due, delta_schema_from_arrow};
pub use warehouse::Warehouse;

/// Where a process serving a local-folder warehouse journals its audit records before they
/// reach the audit table (local to that process and machine: never copied with the warehouse).
pub const AUDIT_JOURNAL_DIR: &str = "_kura/audit/journal";

/// Re-export of the delta-rs crate as Kura uses it, so that upper crates share one version.
pub use deltalake;
/// Re-export of `object_store` for the same reason.
pub use object_store;
