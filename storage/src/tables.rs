//! Delta table helpers: version selection, schema conversion and creation.

use datafusion::arrow::datatypes::Schema as ArrowSchema;
use deltalake::DeltaTable;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

use crate::{Result, Warehouse};

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
