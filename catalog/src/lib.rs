//! Kura's durable, versioned catalog: which schemas, tables and views exist and how they are
//! defined, roles and grants, and policy definitions with their attachments to tables. Later it
//! also holds key metadata and linkage state.
//!
//! The catalog is a log of full snapshots under `<warehouse>/_kura/catalog/_log/`, one JSON file
//! per version (`00000000000000000042.json`). Invariants:
//! - A version is written once, with a create-if-absent put. Two writers racing for the same
//!   version cannot both win; the loser re-reads the newest state, re-applies its change (which
//!   re-checks its preconditions) and tries the next version. So concurrent changes either both
//!   land, one after the other, or one fails with a clear error; nothing is lost or half-written.
//! - Each file holds the whole state, so reading a version never depends on replaying others, and
//!   any older version can be read back (history).
//! - An unreadable commit file stops the catalog from loading (fail closed) instead of being
//!   skipped: policies will live here, and a skipped policy would be a hole.
//!
//! This crate stores definitions; it must not enforce them (that is `kura-engine`'s job) and it
//! never touches table data (that is `kura-storage`'s).
//!
//! ```no_run
//! # async fn demo() -> kura_catalog::Result<()> {
//! use kura_catalog::{Catalog, SchemaEntry};
//! let wh = kura_storage::Warehouse::open("memory://doc").await?;
//! let catalog = Catalog::open(&wh).await?;
//! catalog.commit("kura", "CREATE SCHEMA claims", |state| {
//!     state.create_schema(SchemaEntry::new("claims"), false)
//! }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod linkage;
mod log;
mod model;
mod policy;
mod roles;

pub use error::{Error, ObjectKind, Result};
pub use linkage::{IdentityColumn, LinkageSourceEntry, LinkedTable};
pub use log::{Catalog, Snapshot};
pub use model::{CatalogState, SchemaEntry, TableEntry, ViewEntry};
pub use policy::{
    AggregationAttachment, MaskAttachment, PolicyAttachment, PolicyEntry, PolicyKind, PolicyParam, RowFilterAttachment,
    TablePolicies,
};
pub use roles::{AUDIT_SCHEMA, Grant, GrantObject, Privilege, RoleEntry};
