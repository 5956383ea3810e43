//! Kura's engine: parses SQL, plans it with DataFusion against the warehouse's catalog, and runs
//! it, reading and writing Delta Lake tables through `kura-storage`.
//!
//! The engine owns:
//! - the [`Engine`] (one per warehouse) and [`Session`]s (one per connection), the only way to
//!   get a DataFusion `SessionState` over the warehouse;
//! - statement dispatch: DDL goes to the durable catalog, DML to delta-rs (always with this
//!   session's state), COPY to the loaders, queries to DataFusion;
//! - Kura's SQL extensions: time travel (`t VERSION AS OF 3`, `t TIMESTAMP AS OF '...'`) and COPY
//!   options (`ENCODING 'shift_jis'`, `REJECTS_TABLE 'name'`).
//!
//! It must not know about the wire protocol, terminals or processes: servers and the CLI sit on
//! top and reach data only through a [`Session`], so no path skips the engine's rules.
//!
//! ```no_run
//! # async fn demo() -> kura_engine::Result<()> {
//! let engine = kura_engine::Engine::open("memory://example").await?;
//! let session = engine.session("kura");
//! session.execute_all("CREATE TABLE t (id BIGINT NOT NULL, name TEXT); INSERT INTO t VALUES (1, 'a')").await?;
//! let batches = session.query("SELECT count(*) FROM t").await?;
//! # let _ = batches; Ok(()) }
//! ```
#![deny(missing_docs)]

mod access;
pub mod audit;
mod constant;
mod copy;
mod cte;
mod ddl;
mod dialect;
mod dml;
mod erase;
mod error;
mod extract;
mod information_schema;
mod keys;
mod linkage;
mod linked;
mod load;
mod names;
mod optimize;
mod params;
mod parser;
mod pg;
mod pg_overrides;
mod pg_subquery;
mod pg_text;
mod policy;
mod provider;
mod provision;
mod read_only;
mod refusals;
mod receipts;
mod scan;
mod dimjoin;
mod semijoin;
pub mod scram;
mod session;
mod types;

pub use access::{AccessStatement, GrantTarget, RoleOptions};
pub use copy::{CopyIn, CopyOut};
pub use dialect::KuraDialect;
pub use error::{Error, FilePosition, Result};
pub use extract::{ExtractStatement, FileFormat, Generalisation};
pub use load::LoadRecord;
pub use linkage::{IDENTITY_COLUMNS, LinkageStatement, default_settings as default_linkage_settings};
pub use names::{CATALOG_NAME, DEFAULT_SCHEMA};
pub use parser::{CopyEndpoint, CopySource, CopyStatement, ParsedStatement, StatementKind, parse_sql};
pub use params::bind_parameters;
pub use policy::{ExplainPrivacy, PolicyStatement, PrivacyTarget};
pub use erase::EraseStatement;
pub use optimize::{OptimizeMode, OptimizeStatement};
pub use provision::{ProvideSource, ProvideStatement, ProvisionKind, verify_provision};
pub use session::{Described, Engine, EngineOptions, ProgressSink, Session, StatementOutput};

/// Re-exports so that upper layers use the engine's versions.
pub use datafusion;
