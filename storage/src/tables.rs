//! Delta table helpers: version selection, schema conversion and creation.

use datafusion::arrow::datatypes::Schema as ArrowSchema;
use deltalake::DeltaTable;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

use crate::{Result, Warehouse};

/// A checkpoint is written once this many commits have accumulated since the last one, so that
/// opening a table reads one Parquet file and a few JSON commits instead of the whole log.
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// Which version of a table a read sees (time travel).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TableVersionSpec {
    /// The newest committed version.
    #[default]
    Latest,
    /// An exact Delta version number.
    Version(u64),
    /// The newest version committed at or before this instant.
    Timestamp(chrono::DateTime<chrono::Utc>),
}

/// Converts an Arrow schema to a Delta schema, keeping nullability (NOT NULL columns).
pub fn delta_schema_from_arrow(schema: &ArrowSchema) -> Result<StructType> {
    let st: StructType = schema.try_into_kernel().map_err(deltalake::DeltaTableError::from)?;
    Ok(st)
}

/// Writes a checkpoint of `table` if [`CHECKPOINT_INTERVAL`] commits have accumulated since the
/// last one, reading the newest version first (the handle may predate the caller's commit).
/// Returns whether it wrote one. Two racing writers may both write the same checkpoint, which is
/// harmless (same version, same content).
pub async fn checkpoint_if_due(table: &DeltaTable) -> Result<bool> {
    use object_store::ObjectStoreExt;
    // Only the newest version number is needed to decide; the full snapshot is loaded only
    // when a checkpoint is actually due.
    let version = table.get_latest_version().await?;
    let store = table.log_store().object_store(None);
    let last = match store.get(&object_store::path::Path::from("_delta_log/_last_checkpoint")).await {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
                .unwrap_or(0)
        }
        Err(object_store::Error::NotFound { .. }) => 0,
        Err(e) => return Err(e.into()),
    };
    if version < last + CHECKPOINT_INTERVAL {
        return Ok(false);
    }
    let mut table = table.clone();
    table.load_version(version).await?;
    deltalake::checkpoints::create_checkpoint(&table, None).await?;
    tracing::debug!(version, "wrote checkpoint");
    Ok(true)
}

impl Warehouse {
    /// Creates a new, empty Delta table at `relative` with the given columns and partitioning.
    ///
    /// Fails if a table already exists there: Kura never reuses a table directory.
    pub async fn create_table(
        &self,
        relative: &str,
        name: &str,
        schema: &ArrowSchema,
        partition_columns: &[String],
    ) -> Result<DeltaTable> {
        let delta_schema = delta_schema_from_arrow(schema)?;
        let handle = self.table_handle(relative)?;
        let table = handle
            .create()
            .with_table_name(name)
            .with_columns(delta_schema.fields().cloned())
            .with_partition_columns(partition_columns.iter().cloned())
            .with_save_mode(deltalake::protocol::SaveMode::ErrorIfExists)
            .await?;
        Ok(table)
    }
}
