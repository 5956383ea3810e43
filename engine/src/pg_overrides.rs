//! Kura's own answers for the `pg_catalog` tables where datafusion-pg-catalog's do not fit a
//! Kura warehouse. Everything else is the crate's.
//!
//! - `pg_attribute.atttypmod`: the crate writes -1 everywhere, so clients lose a decimal's
//!   precision and scale (SQLAlchemy's `format_type(atttypid, atttypmod)`, pgjdbc's
//!   `COLUMN_SIZE`/`DECIMAL_DIGITS`). Here it is PostgreSQL's `((precision << 16) | scale) + 4`.
//! - `pg_constraint` and `pg_index`: the crate ships PostgreSQL 17's rows for PostgreSQL's own
//!   system tables, with the key columns as text (`{1}`). Kura has no constraints or indexes, so
//!   both are empty here, with the key columns as arrays (`int2vector`, `oidvector`) (`attnum = ANY(conkey)`,
//!   `unnest(indkey)`) as clients use them.
//!
//! - `pg_class`: PostgreSQL's `relacl` and `reloptions`, NULL (the crate has neither).
//! - `pg_settings`: the server's fixed settings (the crate lists only `standard_conforming_strings`;
//!   pgjdbc's `getImportedKeys` needs `max_index_keys`).
//!
//! SECURITY: `pg_attribute` is read from the crate's table, which lists only relations the user
//! may use; the type modifiers come from the same user's view of the catalog.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session as CatalogSession, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::{MemTable, MemorySourceConfig};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;

use crate::names::CATALOG_NAME;

/// The `pg_catalog` schema of one user: the crate's provider with Kura's tables in front.
#[derive(Debug)]
pub(crate) struct KuraPgCatalog<C> {
    inner: Arc<dyn SchemaProvider>,
    info: C,
}

impl<C: CatalogInfo> KuraPgCatalog<C> {
    pub(crate) fn new(inner: Arc<dyn SchemaProvider>, info: C) -> Self {
        Self { inner, info }
    }
}

#[async_trait]
impl<C: CatalogInfo + std::fmt::Debug + Clone + 'static> SchemaProvider for KuraPgCatalog<C> {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else { return Ok(None) };
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "pg_attribute" => Arc::new(AttributeTypmods {
                schema: table.schema(),
                attributes: table,
                catalog: self.inner.clone(),
                info: self.info.clone(),
            }),
            // PostgreSQL's relacl (aclitem[]) and reloptions (text[]), NULL as for a relation with
            // default privileges and no storage options (SQLAlchemy's index reflection reads them).
            "pg_class" => Arc::new(WithNullColumns::new(
                table,
                "relpartbound",
                &[("relacl", DataType::new_list(DataType::Utf8, true)), ("reloptions", DataType::new_list(DataType::Utf8, true))],
            )?),
            "pg_settings" => settings(&table)?,
            "pg_constraint" => empty_with_arrays(&table, &[("conkey", DataType::Int16), ("confkey", DataType::Int16)])?,
            // int2vector and oidvector columns.
            "pg_index" => empty_with_arrays(
                &table,
                &[
                    ("indkey", DataType::Int16),
                    ("indoption", DataType::Int16),
                    ("indcollation", DataType::Int32),
                    ("indclass", DataType::Int32),
                ],
            )?,
            _ => table,
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// An empty table with `table`'s columns, those named in `arrays` as arrays of the given type.
fn empty_with_arrays(table: &Arc<dyn TableProvider>, arrays: &[(&str, DataType)]) -> Result<Arc<dyn TableProvider>> {
    let fields: Vec<Field> = table
        .schema()
        .fields()
        .iter()
        .map(|f| {
            match arrays.iter().find(|(name, _)| name == f.name()) {
                Some((_, element)) => Field::new(f.name(), DataType::new_list(element.clone(), true), true),
                None => f.as_ref().clone(),
            }
        })
        .collect();
    Ok(Arc::new(MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?))
}

/// The server's fixed settings: what PostgreSQL reports for them, and what Kura's server sends
/// (`server_version`, encodings). pgjdbc's key metadata reads `max_index_keys`.
/// Name, value and type of the settings no client can change (also `current_setting`'s answers).
pub(crate) fn fixed_settings() -> Vec<(&'static str, String, &'static str)> {
    let major_minor: Vec<u32> = crate::pg::PG_VERSION.split('.').filter_map(|p| p.parse().ok()).collect();
    let version_num = major_minor.first().copied().unwrap_or(0) * 10000 + major_minor.get(1).copied().unwrap_or(0);
    vec![
        ("block_size", "8192".into(), "integer"),
        // SQLAlchemy's table options compare a relation's access method with it.
        ("default_table_access_method", "heap".into(), "string"),
        ("integer_datetimes", "on".into(), "bool"),
        ("max_function_args", "100".into(), "integer"),
        ("max_identifier_length", "63".into(), "integer"),
        ("max_index_keys", "32".into(), "integer"),
        ("server_encoding", "UTF8".into(), "string"),
        ("server_version", crate::pg::PG_VERSION.into(), "string"),
        ("server_version_num", version_num.to_string(), "integer"),
        ("standard_conforming_strings", "on".into(), "bool"),
    ]
}

fn settings(table: &Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let rows = fixed_settings();
    let schema = table.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> Result<Arc<dyn Array>> {
            let text = |values: Vec<Option<String>>| Arc::new(StringArray::from(values)) as Arc<dyn Array>;
            Ok(match f.name().as_str() {
                "name" => text(rows.iter().map(|r| Some(r.0.to_string())).collect()),
                "setting" | "reset_val" | "boot_val" => text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                "vartype" => text(rows.iter().map(|r| Some(r.2.to_string())).collect()),
                // Fixed when the server was built or started: clients cannot change them.
                "context" => text(rows.iter().map(|_| Some("internal".to_string())).collect()),
                "source" => text(rows.iter().map(|_| Some("default".to_string())).collect()),
                "pending_restart" => Arc::new(datafusion::arrow::array::BooleanArray::from(vec![false; rows.len()])),
                _ => datafusion::arrow::array::new_null_array(f.data_type(), rows.len()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// A table with NULL columns added before `before` (or at the end).
#[derive(Debug)]
struct WithNullColumns {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

impl WithNullColumns {
    fn new(inner: Arc<dyn TableProvider>, before: &str, added: &[(&str, DataType)]) -> Result<Self> {
        let mut fields: Vec<Field> = inner.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        let at = fields.iter().position(|f| f.name() == before).unwrap_or(fields.len());
        for (i, (name, data_type)) in added.iter().enumerate() {
            fields.insert(at + i, Field::new(*name, data_type.clone(), true));
        }
        Ok(Self { inner, schema: Arc::new(Schema::new(fields)) })
    }
}

#[async_trait]
impl TableProvider for WithNullColumns {
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
        let mut out = vec![];
        for batch in rows(state, &self.inner).await? {
            let columns = self
                .schema
                .fields()
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(c) => c.clone(),
                    None => datafusion::arrow::array::new_null_array(f.data_type(), batch.num_rows()),
                })
                .collect();
            out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(MemorySourceConfig::try_new_exec(&[out], self.schema.clone(), projection.cloned())?)
    }
}

/// All rows of a table.
pub(crate) async fn rows(state: &dyn CatalogSession, table: &Arc<dyn TableProvider>) -> Result<Vec<RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    datafusion::physical_plan::collect(plan, state.task_ctx()).await
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| DataFusionError::Internal(format!("catalog table without column {name}")))
}

/// A column as `Int32` (OIDs, attribute numbers) or as text.
fn int32s(batch: &RecordBatch, name: &str) -> Result<Int32Array> {
    Ok(datafusion::arrow::compute::cast(column(batch, name)?, &DataType::Int32)?.as_primitive::<Int32Type>().clone())
}

pub(crate) fn texts(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Ok(datafusion::arrow::compute::cast(column(batch, name)?, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// PostgreSQL's type modifier of a column of this Arrow type (-1: none).
fn typmod(data_type: &DataType) -> i32 {
    match data_type {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) | DataType::Decimal256(p, s)
            if *s >= 0 =>
        {
            ((i32::from(*p) << 16) | i32::from(*s)) + 4
        }
        _ => -1,
    }
}

/// The crate's `pg_attribute` with `atttypmod` filled in.
#[derive(Debug)]
struct AttributeTypmods<C> {
    schema: SchemaRef,
    attributes: Arc<dyn TableProvider>,
    catalog: Arc<dyn SchemaProvider>,
    info: C,
}

impl<C: CatalogInfo> AttributeTypmods<C> {
    /// Relation OID -> (schema, relation), from the crate's own `pg_class` and `pg_namespace`
    /// (the same OIDs its `pg_attribute` hands out).
    async fn relations(&self, state: &dyn CatalogSession) -> Result<HashMap<i32, (String, String)>> {
        let table = |name: &'static str| async move {
            let t = self.catalog.table(name).await?.ok_or_else(|| DataFusionError::Internal(format!("no {name}")))?;
            rows(state, &t).await
        };
        let mut namespaces = HashMap::new();
        for batch in table("pg_namespace").await? {
            let (oid, name) = (int32s(&batch, "oid")?, texts(&batch, "nspname")?);
            for i in 0..batch.num_rows() {
                namespaces.insert(oid.value(i), name.value(i).to_string());
            }
        }
        let mut relations = HashMap::new();
        for batch in table("pg_class").await? {
            let (oid, namespace, name) = (int32s(&batch, "oid")?, int32s(&batch, "relnamespace")?, texts(&batch, "relname")?);
            for i in 0..batch.num_rows() {
                if let Some(schema) = namespaces.get(&namespace.value(i)) {
                    relations.insert(oid.value(i), (schema.clone(), name.value(i).to_string()));
                }
            }
        }
        Ok(relations)
    }
}

#[async_trait]
impl<C: CatalogInfo + std::fmt::Debug + 'static> TableProvider for AttributeTypmods<C> {
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
        let attributes = rows(state, &self.attributes).await?;
        let relations = self.relations(state).await?;
        let mut types: HashMap<i32, Option<SchemaRef>> = HashMap::new();
        let typmod_index = self.schema.index_of("atttypmod")?;
        let mut out = Vec::with_capacity(attributes.len());
        for batch in attributes {
            let (relid, attnum) = (int32s(&batch, "attrelid")?, int32s(&batch, "attnum")?);
            let mut typmods = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                let oid = relid.value(i);
                if !types.contains_key(&oid) {
                    let schema = match relations.get(&oid) {
                        Some((schema, table)) => self.info.table_schema(CATALOG_NAME, schema, table).await?,
                        None => None,
                    };
                    types.insert(oid, schema);
                }
                let field = types[&oid]
                    .as_ref()
                    .and_then(|s| usize::try_from(attnum.value(i) - 1).ok().and_then(|n| s.fields().get(n).cloned()));
                typmods.push(field.map_or(-1, |f| typmod(f.data_type())));
            }
            let mut columns = batch.columns().to_vec();
            columns[typmod_index] = Arc::new(Int32Array::from(typmods));
            out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(MemorySourceConfig::try_new_exec(&[out], self.schema.clone(), projection.cloned())?)
    }
}
