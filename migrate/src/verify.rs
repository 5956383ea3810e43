//! Table-level verification: each table is read on both sides, at the same Delta version, and its
//! row count and an order-independent content hash are compared.
//!
//! The hash of a table is the pair of wrapping sums, over its rows, of a 64-bit row hash
//! (DataFusion's vectorised `create_hashes` over every column, partition columns included) and of
//! a mix of it: equal multisets of rows give equal hashes whatever the file or row order. The
//! read is streamed (one batch per partition in memory) with DataFusion, without Kura's engine:
//! policies never filter what is verified.

use std::sync::Arc;

use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use kura_storage::deltalake::DeltaTable;
use kura_storage::{TableVersionSpec, Warehouse};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Row count and content hash of one table version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Digest {
    /// Rows.
    pub rows: u64,
    /// Sum of row hashes.
    pub sum: u64,
    /// Sum of mixed row hashes.
    pub mixed: u64,
}

impl Digest {
    /// The hash as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.sum, self.mixed)
    }

    fn add(&mut self, other: Digest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
        self.mixed = self.mixed.wrapping_add(other.mixed);
    }
}

/// SplitMix64's finaliser: a second, independent-looking hash of each row hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// One table's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCheck {
    /// `schema.table`.
    pub name: String,
    /// Its folder below the warehouse prefix.
    pub location: String,
    /// The Delta version compared (the destination's newest).
    pub version: u64,
    /// Rows at the source.
    pub source_rows: u64,
    /// Rows at the destination.
    pub destination_rows: u64,
    /// Content hash at the source.
    pub source_hash: String,
    /// Content hash at the destination.
    pub destination_hash: String,
    /// Whether both agree.
    pub matches: bool,
}

/// Opens a table at a version (or the newest) and digests it.
pub async fn digest_table(warehouse: &Warehouse, location: &str, version: Option<u64>) -> Result<(u64, Digest)> {
    let spec = version.map_or(TableVersionSpec::Latest, TableVersionSpec::Version);
    let verify_err = |e: String| Error::Verify { what: format!("{} at {}", location, warehouse.url()), reason: e };
    let table = warehouse.open_table(location, &spec).await.map_err(|e| verify_err(e.to_string()))?;
    let loaded = table.version().unwrap_or(0).max(0) as u64;
    let digest = digest_delta(&table).await.map_err(|e| verify_err(e.to_string()))?;
    Ok((loaded, digest))
}

async fn digest_delta(table: &DeltaTable) -> datafusion::error::Result<Digest> {
    let config = SessionConfig::new().with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let ctx = SessionContext::new_with_config(config);
    table.update_datafusion_session(&ctx.state()).map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let provider = table.table_provider().await.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let streams = ctx.read_table(provider)?.execute_stream_partitioned().await?;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let state = RandomState::with_seed(0x6b75_7261);
                let mut digest = Digest::default();
                let mut hashes = Vec::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    hashes.clear();
                    hashes.resize(batch.num_rows(), 0);
                    create_hashes(batch.columns(), &state, &mut hashes)?;
                    for h in &hashes {
                        digest.sum = digest.sum.wrapping_add(*h);
                        digest.mixed = digest.mixed.wrapping_add(mix(*h));
                    }
                    digest.rows += batch.num_rows() as u64;
                }
                Ok::<_, datafusion::error::DataFusionError>(digest)
            })
        })
        .collect();
    let mut total = Digest::default();
    for t in tasks {
        total.add(t.await.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))??);
    }
    Ok(total)
}

/// Every table of the destination's catalog, compared with the source at the same version.
///
/// `precomputed` holds source digests made earlier (while copying), by location and version;
/// they are used when the version matches.
pub async fn verify_tables(
    source: &Warehouse,
    destination: &Warehouse,
    precomputed: &std::collections::HashMap<String, (u64, Digest)>,
    parallel: usize,
) -> Result<Vec<TableCheck>> {
    let catalog = kura_catalog::Catalog::open(destination)
        .await
        .map_err(|e| Error::Verify { what: "the copied catalog".into(), reason: e.to_string() })?;
    let snapshot = catalog.cached();
    let tables: Vec<(String, String)> = snapshot
        .state
        .schemas
        .values()
        .flat_map(|s| s.tables.values().map(move |t| (format!("{}.{}", s.name, t.name), t.location.clone())))
        .collect();
    let source = Arc::new(source.clone());
    let destination = Arc::new(destination.clone());
    let checks = futures::stream::iter(tables)
        .map(|(name, location)| {
            let source = source.clone();
            let destination = destination.clone();
            let pre = precomputed.get(&location).copied();
            async move {
                let (version, dest) = digest_table(&destination, &location, None).await?;
                let src = match pre {
                    Some((v, d)) if v == version => d,
                    _ => digest_table(&source, &location, Some(version)).await?.1,
                };
                Ok::<_, Error>(TableCheck {
                    name,
                    location,
                    version,
                    source_rows: src.rows,
                    destination_rows: dest.rows,
                    source_hash: src.hex(),
                    destination_hash: dest.hex(),
                    matches: src == dest,
                })
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut out = checks.into_iter().collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Digests every table of the source's current catalog (by location), to overlap the source's
/// side of verification with the copy.
pub async fn digest_source_tables(source: &Warehouse) -> Result<std::collections::HashMap<String, (u64, Digest)>> {
    let catalog = kura_catalog::Catalog::open(source)
        .await
        .map_err(|e| Error::Verify { what: "the source catalog".into(), reason: e.to_string() })?;
    let mut out = std::collections::HashMap::new();
    let snapshot = catalog.cached();
    for schema in snapshot.state.schemas.values() {
        for table in schema.tables.values() {
            let (version, digest) = digest_table(source, &table.location, None).await?;
            out.insert(table.location.clone(), (version, digest));
        }
    }
    Ok(out)
}
