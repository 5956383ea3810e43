//! Data definition: schemas, tables, views. Each change is one catalog commit; table data is
//! created before the commit that names it and removed after the commit that forgets it, so a
//! crash in between leaves at worst an unreferenced directory, never a catalog entry without data.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder, cast, col};
use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, CreateTable, CreateTableOptions, HiveDistributionStyle, ObjectType, SchemaName, Statement,
    helpers::stmt_create_table::CreateTableBuilder,
};
use kura_catalog::{SchemaEntry, TableEntry, ViewEntry};
use kura_storage::TableVersionSpec;

use crate::names::{QualifiedName, normalize_ident, qualified, schema_name, validate_new_name};
use crate::session::{Session, StatementOutput};
use crate::types::storage_schema;
use crate::{Error, Result};

pub(crate) async fn execute(session: &Session, stmt: Statement) -> Result<StatementOutput> {
    match stmt {
        Statement::CreateSchema { schema_name: name, if_not_exists, .. } => {
            let name = match name {
                SchemaName::Simple(n) => schema_name(&n)?,
                other => return Err(Error::Unsupported(format!("CREATE SCHEMA {other}"))),
            };
            validate_new_name("schema", &name)?;
            session.require_superuser("create schemas")?;
            let op = format!("CREATE SCHEMA {name}");
            session
                .engine
                .catalog()
                .commit(&session.user, &op, |s| s.create_schema(SchemaEntry::new(&name), if_not_exists))
                .await
                .map_err(Error::catalog)?;
            Ok(StatementOutput::command("CREATE SCHEMA"))
        }
        Statement::CreateTable(ct) => create_table(session, ct).await,
        Statement::CreateView(view) => {
            if view.materialized {
                return Err(Error::Unsupported("materialized views".into()));
            }
            let qn = qualified(&view.name)?;
            validate_new_name("view", &qn.name)?;
            session.require_create_in(&qn.schema)?;
            // Plan once now so that a broken definition fails here, not at first use, and so
            // that the creator may only define views over what it can read itself.
            let plan = session.plan(Statement::Query(view.query.clone())).await?;
            session.check_plan(&plan)?;
            let columns: Vec<String> = view.columns.iter().map(|c| normalize_ident(&c.name)).collect();
            if !columns.is_empty() && columns.len() != plan.schema().fields().len() {
                return Err(Error::Invalid(format!(
                    "CREATE VIEW names {} columns but the query returns {}",
                    columns.len(),
                    plan.schema().fields().len()
                )));
            }
            let snapshot = session.engine.catalog().cached();
            if view.if_not_exists && snapshot.state.schema(&qn.schema).is_ok_and(|s| s.views.contains_key(&qn.name)) {
                return Ok(StatementOutput::command("CREATE VIEW"));
            }
            if let Ok(existing) = snapshot.state.view(&qn.schema, &qn.name) {
                session.require_owner(&qn.schema, &qn.name, &existing.owner)?;
            }
            let entry = ViewEntry {
                name: qn.name.clone(),
                sql: view.query.to_string(),
                columns,
                created_at: chrono::Utc::now(),
                owner: session.user.clone(),
            };
            let op = format!("CREATE VIEW {qn}");
            session
                .engine
                .catalog()
                .commit(&session.user, &op, |s| s.create_view(&qn.schema, entry.clone(), view.or_replace))
                .await
                .map_err(Error::catalog)?;
            Ok(StatementOutput::command("CREATE VIEW"))
        }
        Statement::Drop { object_type, if_exists, names, cascade, .. } => {
            drop_objects(session, object_type, if_exists, &names, cascade).await
        }
        Statement::AlterTable(alter) => {
            let qn = qualified(&alter.name)?;
            crate::audit::refuse_write(&qn)?;
            let entry = match session.engine.catalog().cached().state.table(&qn.schema, &qn.name) {
                Ok(e) => e.clone(),
                Err(_) if alter.if_exists => return Ok(StatementOutput::command("ALTER TABLE")),
                Err(e) => return Err(Error::catalog(e)),
            };
            session.require_owner(&qn.schema, &qn.name, &entry.owner)?;
            for op in alter.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, if_not_exists, .. } => {
                        add_column(session, &entry, column_def, if_not_exists).await?
                    }
                    other => return Err(Error::Unsupported(format!("ALTER TABLE ... {other}"))),
                }
            }
            Ok(StatementOutput::command("ALTER TABLE"))
        }
        other => Err(Error::Unsupported(other.to_string())),
    }
}

async fn create_table(session: &Session, mut ct: CreateTable) -> Result<StatementOutput> {
    let qn = qualified(&ct.name)?;
    validate_new_name("table", &qn.name)?;
    if ct.or_replace {
        return Err(Error::Unsupported("CREATE OR REPLACE TABLE; drop the table first".into()));
    }
    let partitions: Vec<String> = match std::mem::replace(&mut ct.hive_distribution, HiveDistributionStyle::NONE) {
        HiveDistributionStyle::PARTITIONED { columns } => columns.iter().map(|c| normalize_ident(&c.name)).collect(),
        HiveDistributionStyle::NONE => vec![],
        other => return Err(Error::Unsupported(format!("table distribution {other:?}"))),
    };
    if !matches!(ct.table_options, CreateTableOptions::None) {
        return Err(Error::Unsupported("table options (WITH/OPTIONS) on CREATE TABLE".into()));
    }
    let exists = relation_exists(session, &qn)?;
    session.require_create_in(&qn.schema)?;
    if exists {
        if ct.if_not_exists {
            return Ok(StatementOutput::command("CREATE TABLE"));
        }
        return Err(Error::DuplicateObject(format!("relation \"{qn}\" already exists")));
    }
    let is_ctas = ct.query.is_some();
    ct.if_not_exists = false;
    let plan = session.plan(Statement::CreateTable(ct)).await?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(mut cmt)) = plan else {
        return Err(Error::Unsupported("this form of CREATE TABLE".into()));
    };
    cmt.input = Arc::new(session.police_plan(Arc::unwrap_or_clone(cmt.input))?);
    if !cmt.column_defaults.is_empty() {
        return Err(Error::Unsupported("column DEFAULT values".into()));
    }
    if !cmt.constraints.is_empty() {
        return Err(Error::Unsupported(
            "PRIMARY KEY, UNIQUE and CHECK constraints (Kura enforces NOT NULL only); remove them".into(),
        ));
    }
    let declared = cmt.input.schema().as_arrow().clone();
    let declared = if is_ctas {
        // Like PostgreSQL, columns created from a query accept NULLs.
        Schema::new(declared.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<Field>>())
    } else {
        declared
    };
    let schema = storage_schema(&declared)?;
    for p in &partitions {
        if schema.field_with_name(p).is_err() {
            return Err(Error::UndefinedObject(format!("partition column \"{p}\" is not a column of the table")));
        }
    }
    if !partitions.is_empty() && partitions.len() == schema.fields().len() {
        return Err(Error::Invalid("a table needs at least one column that is not a partition column".into()));
    }
    let data = if is_ctas { Some(Arc::unwrap_or_clone(cmt.input)) } else { None };
    match register_table(session, &qn, &schema, &partitions, data, None).await? {
        Some(n) => Ok(StatementOutput::counted("SELECT", n)),
        None => Ok(StatementOutput::command("CREATE TABLE")),
    }
}

/// Whether `qn` names a table or view (its schema must exist).
pub(crate) fn relation_exists(session: &Session, qn: &QualifiedName) -> Result<bool> {
    let snapshot = session.engine.catalog().cached();
    let schema = snapshot.state.schema(&qn.schema).map_err(Error::catalog)?;
    Ok(schema.tables.contains_key(&qn.name) || schema.views.contains_key(&qn.name))
}

/// Creates the table `qn` holding `batches` (NULL-able columns, as from CREATE TABLE AS).
pub(crate) async fn create_table_from_batches(
    session: &Session,
    qn: &QualifiedName,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<datafusion::arrow::array::RecordBatch>,
) -> Result<u64> {
    let declared = Schema::new(schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<Field>>());
    let storage = storage_schema(&declared)?;
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(Error::from_datafusion)?;
    let source = datafusion::datasource::provider_as_source(Arc::new(table));
    let data = LogicalPlanBuilder::scan("__kura_rows", source, None)?.build()?;
    Ok(register_table(session, qn, &storage, &[], Some(data), None).await?.unwrap_or(0))
}

/// The current columns of table `qn`.
pub(crate) async fn table_schema(session: &Session, qn: &QualifiedName) -> Result<datafusion::arrow::datatypes::SchemaRef> {
    let snapshot = session.engine.catalog().cached();
    let entry = snapshot.state.table(&qn.schema, &qn.name).map_err(Error::catalog)?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    Ok(table.snapshot()?.snapshot().arrow_schema())
}

/// Creates the table `qn` holding the rows of `plan` (NULL-able columns, as from CREATE TABLE AS),
/// with its linked-table definition if it is one (in the same catalog commit).
pub(crate) async fn create_table_from_plan(
    session: &Session,
    qn: &QualifiedName,
    plan: LogicalPlan,
    linked: Option<kura_catalog::LinkedTable>,
) -> Result<u64> {
    let declared = plan.schema().as_arrow().clone();
    let declared = Schema::new(declared.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<Field>>());
    let storage = storage_schema(&declared)?;
    Ok(register_table(session, qn, &storage, &[], Some(plan), linked).await?.unwrap_or(0))
}

/// Creates an empty table with `schema` (already in storage types) and names it in the catalog.
pub(crate) async fn create_table_from_schema(
    session: &Session,
    qn: &QualifiedName,
    schema: &Schema,
    partitions: &[String],
) -> Result<()> {
    register_table(session, qn, schema, partitions, None, None).await.map(|_| ())
}

/// Creates the Delta table, fills it from `data` if given, then commits the catalog entry.
/// Returns the number of rows written from `data`.
async fn register_table(
    session: &Session,
    qn: &QualifiedName,
    schema: &Schema,
    partitions: &[String],
    data: Option<LogicalPlan>,
    linked: Option<kura_catalog::LinkedTable>,
) -> Result<Option<u64>> {
    let mut entry = TableEntry::new(&qn.name, partitions.to_vec());
    entry.owner = session.user.clone();
    entry.linked = linked;
    let warehouse = session.engine.warehouse();
    warehouse.create_table(&entry.location, &qn.name, schema, partitions).await?;
    let mut rows = None;
    if let Some(input) = data {
        let exprs: Vec<_> = input
            .schema()
            .columns()
            .into_iter()
            .zip(schema.fields())
            .map(|(c, f)| cast(col(c), f.data_type().clone()).alias(f.name()))
            .collect();
        let input = LogicalPlanBuilder::from(input).project(exprs)?.build()?;
        let table = warehouse.open_table(&entry.location, &TableVersionSpec::Latest).await?;
        match crate::dml::insert_into_table(session, table, &qn.to_string(), input).await {
            Ok(n) => rows = Some(n),
            Err(e) => {
                discard_table_files(session, &entry.location).await;
                return Err(e);
            }
        }
    }
    let op = format!("CREATE TABLE {qn}");
    if let Err(e) = session.engine.catalog().commit(&session.user, &op, |s| s.create_table(&qn.schema, entry.clone())).await
    {
        discard_table_files(session, &entry.location).await;
        return Err(Error::catalog(e));
    }
    Ok(rows)
}

async fn discard_table_files(session: &Session, location: &str) {
    if let Err(e) = session.engine.warehouse().delete_prefix(location).await {
        tracing::warn!(location, error = %e, "could not remove the files of an abandoned table");
    }
}

async fn drop_objects(
    session: &Session,
    object_type: ObjectType,
    if_exists: bool,
    names: &[datafusion::sql::sqlparser::ast::ObjectName],
    cascade: bool,
) -> Result<StatementOutput> {
    let catalog = session.engine.catalog();
    let tag = match object_type {
        ObjectType::Table => "DROP TABLE",
        ObjectType::View => "DROP VIEW",
        ObjectType::Schema => "DROP SCHEMA",
        other => return Err(Error::Unsupported(format!("DROP {other}"))),
    };
    for name in names {
        let snapshot = catalog.cached();
        let committed = if object_type == ObjectType::Schema {
            let s = schema_name(name)?;
            if if_exists && snapshot.state.schema(&s).is_err() {
                continue;
            }
            if s == crate::names::DEFAULT_SCHEMA {
                return Err(Error::Invalid("the public schema cannot be dropped".into()));
            }
            session.require_superuser("drop schemas")?;
            let op = format!("DROP SCHEMA {s}");
            catalog.commit(&session.user, &op, |state| state.drop_schema(&s, cascade).map(|_| ())).await
        } else {
            let qn = qualified(name)?;
            let schema = snapshot.state.schema(&qn.schema).ok();
            let is_table = schema.is_some_and(|s| s.tables.contains_key(&qn.name));
            let is_view = schema.is_some_and(|s| s.views.contains_key(&qn.name));
            let wanted_table = object_type == ObjectType::Table;
            if (wanted_table && is_view) || (!wanted_table && is_table) {
                let (what, hint) = if is_view { ("a view", "DROP VIEW") } else { ("a table", "DROP TABLE") };
                return Err(Error::Invalid(format!("\"{qn}\" is {what}; use {hint}")));
            }
            if !is_table && !is_view {
                if if_exists {
                    continue;
                }
                let kind = if wanted_table { "table" } else { "view" };
                return Err(Error::UndefinedObject(format!("{kind} \"{qn}\" does not exist")));
            }
            let owner = schema
                .and_then(|s| s.tables.get(&qn.name).map(|t| t.owner.clone()).or_else(|| s.views.get(&qn.name).map(|v| v.owner.clone())))
                .unwrap_or_default();
            session.require_owner(&qn.schema, &qn.name, &owner)?;
            let op = format!("{tag} {qn}");
            catalog
                .commit(&session.user, &op, |state| {
                    if wanted_table {
                        state.drop_table(&qn.schema, &qn.name).map(|_| ())
                    } else {
                        state.drop_view(&qn.schema, &qn.name).map(|_| ())
                    }
                })
                .await
        };
        let committed = committed.map_err(Error::catalog)?;
        // Remove the data of exactly the tables this commit forgot, as of the version it replaced.
        let previous = catalog.snapshot_at(committed.version - 1).await?;
        for table in forgotten_tables(&previous.state, &committed.state) {
            discard_table_files(session, &table.location).await;
        }
    }
    Ok(StatementOutput::command(tag))
}

/// Tables present in `before` and absent from `after`, by identity.
fn forgotten_tables(before: &kura_catalog::CatalogState, after: &kura_catalog::CatalogState) -> Vec<TableEntry> {
    let kept: std::collections::HashSet<_> =
        after.schemas.values().flat_map(|s| s.tables.values().map(|t| t.id)).collect();
    before.schemas.values().flat_map(|s| s.tables.values()).filter(|t| !kept.contains(&t.id)).cloned().collect()
}

async fn add_column(
    session: &Session,
    entry: &TableEntry,
    column_def: datafusion::sql::sqlparser::ast::ColumnDef,
    if_not_exists: bool,
) -> Result<()> {
    let column = normalize_ident(&column_def.name);
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let current = table.snapshot()?.schema();
    if current.field(&column).is_some() {
        if if_not_exists {
            return Ok(());
        }
        return Err(Error::DuplicateObject(format!(
            "column \"{column}\" of relation \"{}\" already exists",
            entry.name
        )));
    }
    // Let DataFusion map the SQL type exactly as CREATE TABLE does.
    let probe = CreateTableBuilder::new(datafusion::sql::sqlparser::ast::ObjectName::from(vec![
        datafusion::sql::sqlparser::ast::Ident::new("kura_add_column_probe"),
    ]))
    .columns(vec![column_def])
    .build();
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmt)) = session.plan(Statement::CreateTable(probe)).await? else {
        return Err(Error::Invalid("could not plan the new column".into()));
    };
    if !cmt.column_defaults.is_empty() || !cmt.constraints.is_empty() {
        return Err(Error::Unsupported("DEFAULT or constraints on an added column".into()));
    }
    let declared = cmt.input.schema().as_arrow().clone();
    if declared.fields().iter().any(|f| !f.is_nullable()) {
        return Err(Error::Unsupported(
            "ADD COLUMN ... NOT NULL: existing rows would have no value; add the column as nullable".into(),
        ));
    }
    let schema = storage_schema(&declared)?;
    let fields = kura_storage::delta_schema_from_arrow(&schema)?;
    table.add_columns().with_fields(fields.fields().cloned().collect::<Vec<_>>()).await?;
    Ok(())
}
