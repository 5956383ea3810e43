//! `information_schema` as PostgreSQL clients read it: DataFusion's, with what PostgreSQL adds
//! that BI tools query (Metabase's field sync).
//!
//! - `columns` counts `ordinal_position` from 1, as an integer (DataFusion: from 0, unsigned), and
//!   gains PostgreSQL's `udt_catalog`, `udt_schema`, `udt_name` (the type's name in
//!   `pg_type`: `int8`, `numeric`), `is_identity` (`NO`) and `is_generated` (`NEVER`);
//! - `table_constraints`, `key_column_usage`, `referential_constraints` and
//!   `constraint_column_usage` exist, empty: Kura has no constraints.
//!
//! The session mounts this schema in its catalog instead of letting DataFusion answer
//! `information_schema` itself (DataFusion's provider cannot be extended); `SHOW` keeps working
//! because it reads `information_schema.df_settings` through the catalog.
//!
//! SECURITY: everything is read from the session's own catalog list, which lists only what the
//! user may use, as DataFusion's `information_schema` did.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::{INFORMATION_SCHEMA_TABLES, InformationSchemaProvider};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session as CatalogSession, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::{MemTable, MemorySourceConfig};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The schema's name.
pub(crate) const SCHEMA: &str = "information_schema";

/// Constraint views, empty, with PostgreSQL's columns (all text but the positions).
const CONSTRAINT_VIEWS: &[(&str, &[&str])] = &[
    (
        "table_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
            "enforced",
            "nulls_distinct",
        ],
    ),
    (
        "key_column_usage",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "position_in_unique_constraint",
        ],
    ),
    (
        "referential_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ],
    ),
    (
        "constraint_column_usage",
        &["table_catalog", "table_schema", "table_name", "column_name", "constraint_catalog", "constraint_schema", "constraint_name"],
    ),
];

/// Kura's `information_schema` for one session.
#[derive(Debug)]
pub(crate) struct KuraInformationSchema {
    /// Weak: the session's catalog list holds this schema (a strong reference would keep every
    /// session alive).
    catalogs: Weak<dyn CatalogProviderList>,
}

impl KuraInformationSchema {
    pub(crate) fn new(catalogs: &Arc<dyn CatalogProviderList>) -> Self {
        Self { catalogs: Arc::downgrade(catalogs) }
    }

    fn catalogs(&self) -> Result<Arc<dyn CatalogProviderList>> {
        self.catalogs
            .upgrade()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("information_schema outlived its session".into()))
    }
}

fn empty_view(columns: &[&str]) -> Result<Arc<dyn TableProvider>> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let t = if c.starts_with("ordinal_position") || c.starts_with("position_") { DataType::Int32 } else { DataType::Utf8 };
            Field::new(*c, t, true)
        })
        .collect();
    Ok(Arc::new(MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?))
}

#[async_trait]
impl SchemaProvider for KuraInformationSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = INFORMATION_SCHEMA_TABLES.iter().map(|t| t.to_string()).collect();
        names.extend(CONSTRAINT_VIEWS.iter().map(|(name, _)| name.to_string()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let lower = name.to_ascii_lowercase();
        if let Some((_, columns)) = CONSTRAINT_VIEWS.iter().find(|(view, _)| *view == lower) {
            return Ok(Some(empty_view(columns)?));
        }
        let catalogs = self.catalogs()?;
        let Some(table) = InformationSchemaProvider::new(catalogs.clone()).table(name).await? else { return Ok(None) };
        if lower == "columns" {
            return Ok(Some(Arc::new(PgColumns::new(table, catalogs))));
        }
        Ok(Some(table))
    }

    fn table_exist(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        INFORMATION_SCHEMA_TABLES.contains(&lower.as_str()) || CONSTRAINT_VIEWS.iter().any(|(view, _)| *view == lower)
    }
}

/// The columns PostgreSQL's `information_schema.columns` has beyond DataFusion's.
const ADDED: &[&str] = &["udt_catalog", "udt_schema", "udt_name", "is_identity", "is_generated"];

/// DataFusion's `information_schema.columns` with [`ADDED`].
#[derive(Debug)]
struct PgColumns {
    inner: Arc<dyn TableProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    schema: SchemaRef,
}

impl PgColumns {
    fn new(inner: Arc<dyn TableProvider>, catalogs: Arc<dyn CatalogProviderList>) -> Self {
        let mut fields: Vec<Field> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "ordinal_position" => Field::new("ordinal_position", DataType::Int32, f.is_nullable()),
                _ => f.as_ref().clone(),
            })
            .collect();
        fields.extend(ADDED.iter().map(|name| Field::new(*name, DataType::Utf8, true)));
        Self { inner, catalogs, schema: Arc::new(Schema::new(fields)) }
    }

    /// PostgreSQL's name for the type of a column (`pg_type.typname`), as the wire reports it.
    async fn type_names(&self, catalog: &str, schema: &str, table: &str) -> Result<HashMap<String, String>> {
        let Some(provider) = self.catalogs.catalog(catalog).and_then(|c| c.schema(schema)) else {
            return Ok(HashMap::new());
        };
        let Some(table) = provider.table(table).await? else { return Ok(HashMap::new()) };
        Ok(table
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let name = arrow_pg::datatypes::into_pg_type(f.data_type())
                    .map(|t| t.name().to_string())
                    .unwrap_or_else(|_| "text".to_string());
                (f.name().clone(), name)
            })
            .collect())
    }
}

#[async_trait]
impl TableProvider for PgColumns {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches = crate::pg_overrides::rows(state, &self.inner).await?;
        let mut types: HashMap<(String, String, String), HashMap<String, String>> = HashMap::new();
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            let (catalog, schema, table, column) = (
                crate::pg_overrides::texts(&batch, "table_catalog")?,
                crate::pg_overrides::texts(&batch, "table_schema")?,
                crate::pg_overrides::texts(&batch, "table_name")?,
                crate::pg_overrides::texts(&batch, "column_name")?,
            );
            let mut udt_name = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                let key = (catalog.value(i).to_string(), schema.value(i).to_string(), table.value(i).to_string());
                if !types.contains_key(&key) {
                    let names = self.type_names(&key.0, &key.1, &key.2).await?;
                    types.insert(key.clone(), names);
                }
                udt_name.push(types[&key].get(column.value(i)).cloned());
            }
            let rows = batch.num_rows();
            let constant = |v: &str| Arc::new(StringArray::from(vec![v; rows])) as ArrayRef;
            let mut columns = batch.columns().to_vec();
            // PostgreSQL counts columns from 1, as an integer; DataFusion from 0, unsigned.
            if let Some(i) = batch.schema().index_of("ordinal_position").ok() {
                let zero_based = datafusion::arrow::compute::cast(&columns[i], &DataType::Int32)?;
                columns[i] = datafusion::arrow::compute::kernels::numeric::add(
                    &zero_based,
                    &datafusion::arrow::array::Int32Array::new_scalar(1),
                )?;
            }
            columns.push(Arc::new(catalog.clone()));
            columns.push(constant("pg_catalog"));
            columns.push(Arc::new(StringArray::from(udt_name)));
            columns.push(constant("NO"));
            columns.push(constant("NEVER"));
            out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(MemorySourceConfig::try_new_exec(&[out], self.schema.clone(), projection.cloned())?)
    }
}
