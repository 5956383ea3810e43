//! Loads whose rows arrive as a stream of Arrow batches from outside the warehouse's files (an
//! import from another database, `kura import postgres`).
//!
//! Guarantees, the same as `COPY ... FROM`'s:
//! - A new table appears in the catalog only once all its rows are committed to Delta: a load
//!   that fails or is killed leaves no table (its unreferenced files are not read by anything).
//! - The load runs through this session (its privileges, its DataFusion state, the engine's
//!   writer), and its record goes to `audit.ingestions` like any other load.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use kura_storage::TableVersionSpec;

use crate::copy::OnceStream;
use crate::names::QualifiedName;
use crate::session::Session;
use crate::{Error, Result};

/// What a finished load records in `audit.ingestions`.
#[derive(Debug, Clone)]
pub struct LoadRecord {
    /// Schema of the loaded table.
    pub schema: String,
    /// The loaded table.
    pub table: String,
    /// Where the rows came from (`postgres://host:port/db schema.table`; never a password).
    pub source: String,
    /// How they came (`postgres-binary`).
    pub format: String,
    /// Checksums of the content (e.g. `pghash:<sum>`), computed by the loader.
    pub checksums: Vec<String>,
    /// Bytes received, if known.
    pub bytes: Option<u64>,
    /// Rows loaded.
    pub rows: u64,
}

impl Session {
    /// Creates table `schema.table` with the columns of `columns` (Kura's storage types; every
    /// column NULL-able) and fills it from `rows`, streaming, in one commit. The table is named
    /// in the catalog only after its rows are committed. Returns the rows written.
    ///
    /// Fails, creating nothing, if the name is taken or the user may not create tables there.
    pub async fn create_table_from_stream(
        &self,
        schema: &str,
        table: &str,
        columns: SchemaRef,
        rows: SendableRecordBatchStream,
    ) -> Result<u64> {
        let qn = QualifiedName { schema: schema.to_string(), name: table.to_string() };
        self.snapshot().state.schema(schema).map_err(Error::catalog)?;
        self.require_create_in(schema)?;
        if crate::ddl::relation_exists(self, &qn)? {
            return Err(Error::DuplicateObject(format!("relation \"{qn}\" already exists")));
        }
        crate::types::storage_schema(&columns)?;
        let partition = Arc::new(OnceStream::new(rows));
        let provider = StreamingTable::try_new(columns, vec![partition]).map_err(Error::from_datafusion)?;
        let plan = LogicalPlanBuilder::scan("__kura_load", provider_as_source(Arc::new(provider)), None)?.build()?;
        crate::ddl::create_table_from_plan(self, &qn, plan, None).await
    }

    /// Adds a load's row to `audit.ingestions` (when the engine audits), with the table's
    /// current Delta version as the version after.
    pub async fn record_load(&self, load: LoadRecord) -> Result<()> {
        let snapshot = self.engine.catalog().refresh().await?;
        let entry = snapshot.state.table(&load.schema, &load.table).map_err(Error::catalog)?;
        let version_after = self
            .engine
            .warehouse()
            .open_table(&entry.location, &TableVersionSpec::Latest)
            .await
            .ok()
            .and_then(|t| t.version())
            .map(|v| v as u64);
        let ingestion = crate::audit::Ingestion {
            table: format!("{}.{}", load.schema, load.table),
            source: load.source,
            format: load.format,
            files: vec![],
            checksums: load.checksums,
            bytes: load.bytes,
            rows: load.rows,
            rejected: 0,
            version_before: None,
            version_after,
        };
        crate::audit::record_ingestion(self, ingestion).await
    }

    /// The rows of table `schema.table` at its newest version, as stored (no policy applies),
    /// one stream per partition: for a loader verifying what it wrote, never for answering users.
    pub async fn read_stored(&self, schema: &str, table: &str) -> Result<Vec<SendableRecordBatchStream>> {
        use datafusion::prelude::{SessionConfig, SessionContext};
        // SECURITY: policies do not apply to this read, so only a superuser may make it.
        self.require_superuser("read a table as stored")?;
        let snapshot = self.engine.catalog().refresh().await?;
        let entry = snapshot.state.table(schema, table).map_err(Error::catalog)?;
        let delta = self.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
        let external = |e: deltalake::DeltaTableError| Error::from_datafusion(datafusion::error::DataFusionError::External(Box::new(e)));
        let config = SessionConfig::new().with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config(config);
        delta.update_datafusion_session(&ctx.state()).map_err(external)?;
        let provider = delta.table_provider().await?;
        let frame = ctx.read_table(provider).map_err(Error::from_datafusion)?;
        frame.execute_stream_partitioned().await.map_err(Error::from_datafusion)
    }
}
