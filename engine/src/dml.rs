//! Data manipulation: INSERT through DataFusion into the Delta sink, DELETE and UPDATE through
//! delta-rs — always with this session's state, so that no rule or function of Kura's is skipped
//! (delta-rs would otherwise plan with a default state of its own).

use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchema;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::physical_plan::collect;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, Expr as SqlExpr, ExprWithAlias, FromTable, ObjectName, Statement, TableFactor,
    TableWithJoins, Update,
};
use deltalake::DeltaTable;
use deltalake::delta_datafusion::SessionFallbackPolicy;
use kura_catalog::TableEntry;
use kura_storage::TableVersionSpec;

use crate::names::{QualifiedName, normalize_ident, qualified};
use kura_catalog::Privilege;
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

pub(crate) async fn execute(session: &Session, stmt: Statement) -> Result<StatementOutput> {
    match stmt {
        Statement::Insert(insert) => {
            let qn = match &insert.table {
                datafusion::sql::sqlparser::ast::TableObject::TableName(name) => qualified(name)?,
                other => return Err(Error::Unsupported(format!("INSERT INTO {other}"))),
            };
            let entry = target_entry(session, &qn).await?;
            let planned = session.plan(Statement::Insert(insert)).await.map_err(|e| match e {
                Error::DataFusion(df) if df.to_string().contains("Column count doesn't match insert query") => {
                    Error::Invalid(format!("the number of INSERT values does not match the columns of \"{qn}\""))
                }
                other => other,
            })?;
            let plan = session.police_plan(name_insert_columns(planned)?)?;
            let target = match &plan {
                LogicalPlan::Dml(dml) => Some(dml.target.schema()),
                _ => None,
            };
            let rows = run_counting(session, plan, &qn.to_string(), target).await?;
            after_write(&session.engine.warehouse().table_handle(&entry.location)?).await;
            Ok(StatementOutput::counted("INSERT 0", rows))
        }
        Statement::Delete(delete) => delete_rows(session, delete).await,
        Statement::Update(update) => update_rows(session, update).await,
        Statement::Truncate(truncate) => {
            for target in &truncate.table_names {
                let qn = qualified(&target.name)?;
                let entry = target_entry(session, &qn).await?;
                session.require_relation(Privilege::Truncate, &qn.schema, &qn.name)?;
                let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
                let (table, _) = table
                    .delete()
                    .with_session_state(Arc::new(session.ctx.state()))
                    .with_session_fallback_policy(SessionFallbackPolicy::RequireSessionState)
                    .await
                    .map_err(|e| scrub_delta_error(e, &qn))?;
                after_write(&table).await;
            }
            Ok(StatementOutput::command("TRUNCATE TABLE"))
        }
        other => Err(Error::Unsupported(other.to_string())),
    }
}

/// After a committed write: keep the table's log short (checkpoints). Failure here does not undo
/// the write, so it is logged, not returned.
pub(crate) async fn after_write(table: &DeltaTable) {
    if let Err(e) = kura_storage::checkpoint_if_due(table).await {
        tracing::warn!(table = %table.table_url(), error = %e, "could not write a checkpoint");
    }
}

/// The catalog entry of a table that a statement writes to. Views and time-travel references
/// are refused: history is read-only.
pub(crate) async fn target_entry(session: &Session, qn: &QualifiedName) -> Result<TableEntry> {
    let entry = writable_entry(session, qn)?;
    if policed_provider(session, qn, &entry).await?.is_some() {
        // SECURITY: a user who sees the table through policies (masked, filtered) cannot add
        // or load rows into it, nor truncate it (that would remove rows the user cannot see).
        return Err(Error::PermissionDenied(format!(
            "permission denied: {qn} is protected by policies for this user and cannot be written through them by INSERT, COPY FROM or TRUNCATE"
        )));
    }
    Ok(entry)
}

fn writable_entry(session: &Session, qn: &QualifiedName) -> Result<TableEntry> {
    if qn.name.contains('@') {
        return Err(Error::Invalid("an earlier version of a table is read-only".into()));
    }
    crate::audit::refuse_write(qn)?;
    let snapshot = session.engine.catalog().cached();
    if snapshot.state.view(&qn.schema, &qn.name).is_ok() {
        return Err(Error::Invalid(format!("cannot change view \"{qn}\"; change its tables instead")));
    }
    snapshot.state.table(&qn.schema, &qn.name).cloned().map_err(Error::catalog)
}

/// The provider through which the session user sees `qn`, when it is not the raw table.
async fn policed_provider(
    session: &Session,
    qn: &QualifiedName,
    entry: &TableEntry,
) -> Result<Option<Arc<dyn TableProvider>>> {
    // Linked tables and their bases carry the automatic opt-out filter even without policies.
    if entry.policies.is_empty() && !session.snapshot().state.carries_refusals(&qn.schema, &qn.name) {
        return Ok(None);
    }
    let reference = datafusion::common::TableReference::full(crate::names::CATALOG_NAME, qn.schema.clone(), qn.name.clone());
    let provider = session.ctx.table_provider(reference).await.map_err(Error::from_datafusion)?;
    Ok(provider.is::<crate::policy::table::PolicedTable>().then_some(provider))
}

/// For UPDATE and DELETE on `table` (opened at the version the write starts from): the guard
/// of a user who sees it through policies, or None.
async fn write_guard(
    session: &Session,
    qn: &QualifiedName,
    entry: &TableEntry,
    table: &DeltaTable,
) -> Result<Option<crate::policy::write::WriteGuard>> {
    // Resolved after `table` was opened, so the policy's raw scan reads that version or a later one.
    let Some(provider) = policed_provider(session, qn, entry).await? else { return Ok(None) };
    let policed = provider.downcast_ref::<crate::policy::table::PolicedTable>().expect("checked by policed_provider");
    let mut params: Vec<String> = Vec::new();
    for rf in &entry.policies.row_filters {
        for c in &rf.columns {
            if !params.contains(c) {
                params.push(c.clone());
            }
        }
    }
    let optout = policed
        .applied
        .iter()
        .any(|a| matches!(a, crate::policy::table::Applied::Filtered { policy } if policy == crate::policy::plan::OPTOUT_FILTER));
    if optout {
        // SECURITY: refused persons' rows must stay out of reach: on a linked table they are
        // known by research_id; on a base table only by its key expression, so refuse.
        if entry.linked.is_none() {
            return Err(Error::PermissionDenied(format!(
                "permission denied: {qn} holds rows of persons who refused, hidden from this user; only operators update or delete its rows"
            )));
        }
        if !params.iter().any(|p| p == "research_id") {
            params.push("research_id".to_string());
        }
    }
    let raw = table.snapshot()?.snapshot().arrow_schema();
    let has_row_filters = !entry.policies.row_filters.is_empty() || optout;
    let guard = crate::policy::write::guard(session, policed, &raw, &params, has_row_filters).await?;
    // SECURITY: the rows hidden from the user were computed on the newest version; it must be
    // the one the write starts from.
    let latest = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    if latest.version() != table.version() {
        return Err(Error::SerializationFailure(format!(
            "{qn} changed while the rows this user may write were determined; retry the statement"
        )));
    }
    Ok(Some(guard))
}

/// Names the input columns of an INSERT after the target's, so that errors name table columns
/// (not `column2` of a VALUES list).
fn name_insert_columns(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Dml(mut dml) = plan else { return Ok(plan) };
    let target = dml.target.schema();
    let input_columns = dml.input.schema().columns();
    if input_columns.len() != target.fields().len() {
        return Ok(LogicalPlan::Dml(dml));
    }
    let exprs: Vec<Expr> = input_columns
        .into_iter()
        .zip(target.fields())
        .map(|(c, f)| Expr::Column(c).alias(f.name()))
        .collect();
    let input = LogicalPlanBuilder::from(Arc::unwrap_or_clone(dml.input)).project(exprs)?.build()?;
    dml.input = Arc::new(input);
    Ok(LogicalPlan::Dml(dml))
}

/// Executes a plan whose single output is a row count (a Delta sink), and returns the count.
async fn run_counting(
    session: &Session,
    plan: LogicalPlan,
    table: &str,
    target: Option<datafusion::arrow::datatypes::SchemaRef>,
) -> Result<u64> {
    let state = session.ctx.state();
    let physical = state
        .create_physical_plan(&plan)
        .await
        .map_err(|e| not_null_error(e, table, target.as_ref()))?;
    // SECURITY: the rows written may come through policies; their errors may quote raw values.
    let policed = crate::policy::reads_policed(&plan);
    let batches =
        collect(physical, session.ctx.task_ctx()).await.map_err(|e| write_error(e, policed, table, target.as_ref()))?;
    Ok(batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<UInt64Array>().map(|a| if a.is_empty() { 0 } else { a.value(0) }))
        .unwrap_or(0))
}

/// The error of a write that failed while running: withheld when its rows came through policies
/// (it may quote a raw value), else with NOT NULL violations named.
fn write_error(
    err: datafusion::error::DataFusionError,
    policed: bool,
    table: &str,
    target: Option<&datafusion::arrow::datatypes::SchemaRef>,
) -> Error {
    if policed { Error::withheld(err) } else { not_null_error(err, table, target) }
}

/// DataFusion reports NOT NULL violations by column index; users want the column name.
fn not_null_error(
    err: datafusion::error::DataFusionError,
    table: &str,
    target: Option<&datafusion::arrow::datatypes::SchemaRef>,
) -> Error {
    let text = err.to_string();
    if text.contains("declared as non-nullable but contains null values") || text.contains("violates not-null") {
        let mut column = text.split('\'').nth(1).unwrap_or("?").to_string();
        // A VALUES list names its columns column1, column2, ...: name the table's column instead.
        if let (Some(target), Some(n)) = (target, column.strip_prefix("column").and_then(|n| n.parse::<usize>().ok())) {
            if target.field_with_name(&column).is_err() && n >= 1 && n <= target.fields().len() {
                column = target.field(n - 1).name().clone();
            }
        }
        return Error::NotNullViolation { table: table.to_string(), column };
    }
    Error::from_datafusion(err)
}

/// Appends in-memory batches (in the table's schema) to a table in one commit.
pub(crate) async fn append_batches(session: &Session, qn: &QualifiedName, batches: Vec<datafusion::arrow::array::RecordBatch>) -> Result<u64> {
    write_batches(session, qn, batches, InsertOp::Append).await
}

/// Replaces a table's rows with in-memory batches (in the table's schema) in one commit: readers
/// see the old rows or the new ones, never none.
pub(crate) async fn overwrite_batches(session: &Session, qn: &QualifiedName, batches: Vec<datafusion::arrow::array::RecordBatch>) -> Result<u64> {
    write_batches(session, qn, batches, InsertOp::Overwrite).await
}

async fn write_batches(session: &Session, qn: &QualifiedName, batches: Vec<datafusion::arrow::array::RecordBatch>, op: InsertOp) -> Result<u64> {
    let entry = target_entry(session, qn).await?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let Some(first) = batches.first() else { return Ok(0) };
    let mem = datafusion::datasource::MemTable::try_new(first.schema(), vec![batches]).map_err(Error::from_datafusion)?;
    let plan = LogicalPlanBuilder::scan("input", provider_as_source(Arc::new(mem)), None)?.build()?;
    write_into_table(session, table, &qn.to_string(), plan, op).await
}

/// Replaces a table's rows with those of `input` (in the table's column order; cast to its
/// types) in one commit, streaming.
pub(crate) async fn overwrite_from_plan(session: &Session, qn: &QualifiedName, input: LogicalPlan) -> Result<u64> {
    let entry = target_entry(session, qn).await?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let target = table.snapshot()?.snapshot().arrow_schema();
    if target.fields().len() != input.schema().fields().len() {
        return Err(Error::Invalid(format!(
            "\"{qn}\" has {} columns but its new rows have {}",
            target.fields().len(),
            input.schema().fields().len()
        )));
    }
    let exprs: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .zip(target.fields())
        .map(|(c, f)| cast(Expr::Column(c), f.data_type().clone()).alias(f.name()))
        .collect();
    let input = LogicalPlanBuilder::from(input).project(exprs)?.build()?;
    write_into_table(session, table, &qn.to_string(), input, InsertOp::Overwrite).await
}

/// Appends the rows of `input` (already in the table's column order and types) to `table` in
/// one Delta commit.
pub(crate) async fn insert_into_table(
    session: &Session,
    table: DeltaTable,
    display_name: &str,
    input: LogicalPlan,
) -> Result<u64> {
    write_into_table(session, table, display_name, input, InsertOp::Append).await
}

async fn write_into_table(session: &Session, table: DeltaTable, display_name: &str, input: LogicalPlan, op: InsertOp) -> Result<u64> {
    let state = session.ctx.state();
    let provider = table.table_provider().await?;
    check_not_null_input(&provider, &input, display_name)?;
    let mut physical = state.create_physical_plan(&input).await.map_err(Error::from_datafusion)?;
    // The sink writes what its input's partition 0 yields; the physical optimizer, which would
    // merge partitions for it, does not run on a sink built here. Merge them ourselves, or a
    // multi-partition input (UNION ALL, a repartitioned projection) would lose rows.
    if datafusion::physical_plan::ExecutionPlanProperties::output_partitioning(&physical).partition_count() > 1 {
        physical = Arc::new(datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec::new(physical));
    }
    let sink = provider.insert_into(&state, physical, op).await.map_err(Error::from_datafusion)?;
    let target = provider.schema();
    let policed = crate::policy::reads_policed(&input);
    let batches =
        collect(sink, session.ctx.task_ctx()).await.map_err(|e| write_error(e, policed, display_name, Some(&target)))?;
    after_write(&table).await;
    Ok(batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<UInt64Array>().map(|a| a.value(0)))
        .unwrap_or(0))
}

fn check_not_null_input(provider: &Arc<dyn TableProvider>, input: &LogicalPlan, table: &str) -> Result<()> {
    let target = provider.schema();
    if target.fields().len() != input.schema().fields().len() {
        return Err(Error::Invalid(format!(
            "table \"{table}\" has {} columns but {} values were given",
            target.fields().len(),
            input.schema().fields().len()
        )));
    }
    Ok(())
}

/// delta-rs validation errors print a preview of the offending rows; never pass values on.
fn scrub_delta_error(err: deltalake::DeltaTableError, qn: &QualifiedName) -> Error {
    let text = err.to_string();
    if text.contains("Preview of invalid data") || text.contains("failed validation check") {
        return Error::Invalid(format!("rows of \"{qn}\" would violate a NOT NULL constraint"));
    }
    Error::Delta(err)
}

/// Resolves the single table of an UPDATE or DELETE and the name its columns are qualified by.
fn single_table(from: &[TableWithJoins]) -> Result<(ObjectName, String)> {
    match from {
        [twj] if twj.joins.is_empty() => match &twj.relation {
            TableFactor::Table { name, alias, .. } => {
                let q = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| {
                    qualified(name).map(|q| q.name).unwrap_or_default()
                });
                Ok((name.clone(), q))
            }
            other => Err(Error::Unsupported(format!("UPDATE/DELETE on {other}"))),
        },
        _ => Err(Error::Unsupported("UPDATE/DELETE on more than one table or with joins".into())),
    }
}

/// Plans a WHERE or SET expression against the table's columns, coerces its types, and strips
/// qualifiers (delta-rs resolves columns by bare name).
fn plan_expr(session: &Session, table: &DeltaTable, qualifier: &str, expr: SqlExpr) -> Result<Expr> {
    let state = session.ctx.state();
    let arrow_schema = table.snapshot()?.snapshot().arrow_schema();
    let df_schema = DFSchema::try_from_qualified_schema(qualifier, &arrow_schema).map_err(Error::from_datafusion)?;
    let planned = state
        .create_logical_expr_from_sql_expr(ExprWithAlias { expr, alias: None }, &df_schema)
        .map_err(Error::from_datafusion)?;
    let mut coercion = TypeCoercionRewriter::new(&df_schema);
    let coerced = planned.rewrite(&mut coercion).map_err(Error::from_datafusion)?.data;
    crate::policy::table::unqualify(coerced).map_err(Error::from_datafusion)
}

/// Counts the rows of `table` (at its loaded version) matching `predicate`.
async fn count_matching(session: &Session, table: &DeltaTable, predicate: Option<Expr>) -> Result<u64> {
    use datafusion::functions_aggregate::count::count;
    use datafusion::logical_expr::lit;
    let provider = table.table_provider().await?;
    let mut builder = LogicalPlanBuilder::scan("t", provider_as_source(provider), None)?;
    if let Some(p) = predicate {
        builder = builder.filter(p)?;
    }
    let plan = builder.aggregate(Vec::<Expr>::new(), vec![count(lit(1))])?.build()?;
    let stream = session.stream_plan(plan).await?;
    let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await.map_err(Error::from_datafusion)?;
    let n = batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().map(|a| a.value(0)))
        .unwrap_or(0);
    Ok(n as u64)
}

async fn delete_rows(session: &Session, delete: Delete) -> Result<StatementOutput> {
    if delete.using.is_some() || delete.returning.is_some() || delete.limit.is_some() || !delete.order_by.is_empty() {
        return Err(Error::Unsupported("DELETE with USING, RETURNING, ORDER BY or LIMIT".into()));
    }
    let from = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let (name, qualifier) = single_table(from)?;
    let qn = qualified(&name)?;
    let entry = writable_entry(session, &qn)?;
    session.require_relation(Privilege::Delete, &qn.schema, &qn.name)?;
    if delete.selection.is_some() {
        // As in PostgreSQL, a WHERE clause reads the table.
        session.require_relation(Privilege::Select, &qn.schema, &qn.name)?;
    }
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let guard = write_guard(session, &qn, &entry, &table).await?;
    let predicate = delete.selection.map(|e| plan_expr(session, &table, &qualifier, e)).transpose()?;
    let predicate = match &guard {
        Some(guard) => Some(guard.predicate(predicate)?),
        None => predicate,
    };
    let mut builder = table
        .clone()
        .delete()
        .with_session_state(Arc::new(session.ctx.state()))
        .with_session_fallback_policy(SessionFallbackPolicy::RequireSessionState);
    if let Some(p) = predicate.clone() {
        builder = builder.with_predicate(p);
    }
    let (after, metrics) = builder.await.map_err(|e| scrub_delta_error(e, &qn))?;
    after_write(&after).await;
    let rows = match metrics.num_deleted_rows {
        Some(n) => n as u64,
        // Whole files were removed from metadata alone; count them on the version before.
        None => count_matching(session, &table, predicate).await?,
    };
    Ok(StatementOutput::counted("DELETE", rows))
}

async fn update_rows(session: &Session, update: Update) -> Result<StatementOutput> {
    if update.from.is_some() || update.returning.is_some() || update.limit.is_some() {
        return Err(Error::Unsupported("UPDATE with FROM, RETURNING or LIMIT".into()));
    }
    let (name, qualifier) = single_table(std::slice::from_ref(&update.table))?;
    let qn = qualified(&name)?;
    let entry = writable_entry(session, &qn)?;
    session.require_relation(Privilege::Update, &qn.schema, &qn.name)?;
    // SET expressions and WHERE read the table (PostgreSQL asks for SELECT when they do; Kura
    // always does, since an UPDATE's row count alone reveals what matched).
    session.require_relation(Privilege::Select, &qn.schema, &qn.name)?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let guard = write_guard(session, &qn, &entry, &table).await?;
    let schema = table.snapshot()?.snapshot().arrow_schema();
    let mut not_null_checks = Vec::new();
    let mut builder = table
        .clone()
        .update()
        .with_session_state(Arc::new(session.ctx.state()))
        .with_session_fallback_policy(SessionFallbackPolicy::RequireSessionState);
    for assignment in update.assignments {
        let column = match &assignment.target {
            AssignmentTarget::ColumnName(n) => match n.0.last() {
                Some(datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(i)) => normalize_ident(i),
                _ => return Err(Error::Invalid(format!("invalid column name {n}"))),
            },
            AssignmentTarget::Tuple(_) => return Err(Error::Unsupported("UPDATE ... SET (a, b) = ...".into())),
        };
        let field = schema.field_with_name(&column).map_err(|_| {
            Error::UndefinedObject(format!("column \"{column}\" of relation \"{qn}\" does not exist"))
        })?;
        if entry.partition_columns.contains(&column) {
            return Err(Error::Unsupported(format!("UPDATE of partition column \"{column}\"")));
        }
        let value = plan_expr(session, &table, &qualifier, assignment.value)?;
        if let Some(guard) = &guard {
            guard.check_assignment(&column, &value)?;
        }
        let value = cast(value, field.data_type().clone());
        if !field.is_nullable() {
            not_null_checks.push((column.clone(), value.clone()));
        }
        builder = builder.with_update(column.as_str(), value);
    }
    let predicate = update.selection.map(|sel| plan_expr(session, &table, &qualifier, sel)).transpose()?;
    let predicate = match &guard {
        Some(guard) => Some(guard.predicate(predicate)?),
        None => predicate,
    };
    // Check NOT NULL before writing: delta-rs would refuse too, but its error previews row values.
    for (column, value) in not_null_checks {
        let nulls = match &predicate {
            Some(p) => p.clone().and(value.is_null()),
            None => value.is_null(),
        };
        if count_matching(session, &table, Some(nulls)).await? > 0 {
            return Err(Error::NotNullViolation { table: qn.to_string(), column });
        }
    }
    if let Some(p) = predicate {
        builder = builder.with_predicate(p);
    }
    let (after, metrics) = builder.await.map_err(|e| scrub_delta_error(e, &qn))?;
    after_write(&after).await;
    Ok(StatementOutput::counted("UPDATE", metrics.num_updated_rows as u64))
}
