//! Decides, for one user and one protected table, what the user sees, and builds the plan of it.
//!
//! The plan is built as a query AST (never as SQL text): `SELECT <column or mask> AS <column>, ...
//! FROM <raw table> AS __kura_t WHERE <row access policies>`, with each policy's parameters
//! replaced by the columns they are attached to. It is planned by DataFusion with the policy
//! owner's rights, analysed, and simplified for the session user: `is_member('operator')` and
//! `current_user` are constants within a statement, so a mask that is the identity for this user
//! folds away, and a table whose policies all fold away is read raw, at no cost.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::optimizer::{OptimizerContext, OptimizerRule};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlDataType, Expr as SqlExpr, Ident, ObjectName, ObjectNamePart, Query,
    SelectItem, SetExpr, Statement, TableFactor, visit_expressions_mut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_catalog::{PolicyEntry, PolicyKind, Snapshot};

use super::table::{Applied, PolicedTable};
use crate::dialect::KuraDialect;

/// The key store policy bodies read pseudonym keys from.
pub(crate) type Keys = Arc<crate::keys::WarehouseKeys>;
use crate::{Error, Result};

/// The alias of the raw table inside a policy plan.
const RAW_ALIAS: &str = "__kura_t";

fn policy_error(policy: &str, table: &str, reason: impl std::fmt::Display) -> Error {
    // The reason goes to the log for the administrator; the user learns only which policy failed.
    tracing::warn!(policy, table, %reason, "a policy could not be applied; the query is refused");
    Error::PermissionDenied(format!(
        "policy \"{policy}\" on {table} could not be applied, so the query is refused; ask an administrator to check it"
    ))
}

/// Parses a stored body.
pub(crate) fn parse_body(text: &str) -> Result<SqlExpr> {
    let dialect = KuraDialect::default();
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(crate::parser::syntax_error)?;
    let expr = parser.parse_expr().map_err(crate::parser::syntax_error)?;
    if parser.peek_token().token != Token::EOF {
        return Err(Error::Invalid("a policy body must be one expression".into()));
    }
    Ok(expr)
}

/// Parses a stored SQL type.
pub(crate) fn parse_type(text: &str) -> Result<SqlDataType> {
    let dialect = KuraDialect::default();
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(crate::parser::syntax_error)?;
    parser.parse_data_type().map_err(crate::parser::syntax_error)
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// The body of `policy` with its parameters bound to `args`, cast to its declared type.
pub(crate) fn bound_body(policy: &PolicyEntry, args: &[SqlExpr]) -> Result<SqlExpr> {
    let mut body = parse_body(&policy.body)?;
    let bindings: HashMap<&str, &SqlExpr> = policy.params.iter().map(|p| p.name.as_str()).zip(args).collect();
    let _ = visit_expressions_mut(&mut body, |e| {
        if let SqlExpr::Identifier(ident) = e
            && let Some(arg) = bindings.get(crate::names::normalize_ident(ident).as_str())
        {
            *e = (*arg).clone();
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(SqlExpr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(SqlExpr::Nested(Box::new(body))),
        data_type: parse_type(&policy.returns)?,
        array: false,
        format: None,
    })
}

fn raw_column(column: &str) -> SqlExpr {
    SqlExpr::CompoundIdentifier(vec![quoted(RAW_ALIAS), quoted(column)])
}

/// `SELECT <items> FROM <from> AS __kura_t [WHERE <selection>]` as an AST.
fn select(items: Vec<(SqlExpr, String)>, from: Option<ObjectName>, selection: Option<SqlExpr>) -> Result<Statement> {
    let skeleton = match from {
        Some(_) => "SELECT 1 AS c FROM t AS __kura_t",
        None => "SELECT 1 AS c",
    };
    let mut stmt = match crate::parser::parse_sql(skeleton)?.remove(0).kind {
        crate::parser::StatementKind::Sql(s) => *s,
        _ => unreachable!("the skeleton is a query"),
    };
    let Statement::Query(query) = &mut stmt else { unreachable!("the skeleton is a query") };
    let Query { body, .. } = query.as_mut();
    let SetExpr::Select(sel) = body.as_mut() else { unreachable!("the skeleton is a SELECT") };
    sel.projection =
        items.into_iter().map(|(expr, alias)| SelectItem::ExprWithAlias { expr, alias: quoted(&alias) }).collect();
    if let (Some(name), Some(twj)) = (from, sel.from.first_mut())
        && let TableFactor::Table { name: n, .. } = &mut twj.relation
    {
        *n = name;
    }
    sel.selection = selection;
    Ok(stmt)
}

/// The state policy bodies are planned with: the session's, plus the keyed functions, with
/// unqualified names in the default schema. Made once per table, for all its bodies.
fn definer_state(mut state: SessionState, keys: &Keys) -> Result<SessionState> {
    // SECURITY: keyed functions (pseudonymize, date_shift) exist only here, in policy bodies.
    for udf in kura_udfs::keyed(keys.clone() as Arc<dyn kura_udfs::KeyRing>) {
        datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(udf)).map_err(Error::from_datafusion)?;
    }
    // Unqualified names in a body mean the same whatever the querying session's search path.
    state.config_mut().options_mut().catalog.default_schema = crate::names::DEFAULT_SCHEMA.to_string();
    Ok(state)
}

/// Plans `stmt` as the policy owner would (tables raw, the owner's rights) with a
/// [`definer_state`], then analyses and simplifies it for the session user.
async fn plan_as_definer(state: &SessionState, owner: &str, stmt: Statement) -> Result<LogicalPlan> {
    let planned = super::POLICY_DEFINER
        .scope(
            owner.to_string(),
            crate::access::ACTING_ROLE.scope(
                owner.to_string(),
                crate::names::CURRENT_SCHEMA.scope(crate::names::DEFAULT_SCHEMA.to_string(), async {
                    state.statement_to_plan(DFStatement::Statement(Box::new(stmt))).await
                }),
            ),
        )
        .await
        .map_err(Error::from_datafusion)?;
    let analysed = state
        .analyzer()
        .execute_and_check(planned, state.config_options(), |_, _| {})
        .map_err(Error::from_datafusion)?;
    simplify(analysed)
}

fn simplify(plan: LogicalPlan) -> Result<LogicalPlan> {
    let rule = SimplifyExpressions::new();
    let config = OptimizerContext::new();
    Ok(plan.transform_up(|node| rule.rewrite(node, &config)).map_err(Error::from_datafusion)?.data)
}

/// The value of a parameterless policy for the session user (projection: allowed?, aggregation:
/// minimum group size). It must fold to a constant: a body that depends on data is refused.
async fn decide(state: &SessionState, policy: &PolicyEntry, table: &str) -> Result<ScalarValue> {
    let body = bound_body(policy, &[]).map_err(|e| policy_error(&policy.name, table, e))?;
    let plan = plan_as_definer(state, &policy.owner, select(vec![(body, "v".into())], None, None)?)
        .await
        .map_err(|e| policy_error(&policy.name, table, e))?;
    if let LogicalPlan::Projection(p) = &plan
        && let [expr] = p.expr.as_slice()
        && let Expr::Literal(value, _) = strip_alias(expr)
    {
        return Ok(value.clone());
    }
    Err(policy_error(&policy.name, table, "its body does not fold to a constant for the user (it may use only current_user and is_member)"))
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other,
    }
}

/// Whether `expr` is just the raw column `name` (possibly cast to its own type).
fn is_raw_column(expr: &Expr, name: &str, plan: &LogicalPlan) -> bool {
    match strip_alias(expr) {
        Expr::Column(c) => c.name == name,
        Expr::Cast(c) => {
            let input = plan.inputs();
            let same_type = input.first().is_some_and(|i| {
                c.expr.get_type(i.schema()).is_ok_and(|t| &t == c.field.data_type())
            });
            same_type && is_raw_column(&c.expr, name, plan)
        }
        _ => false,
    }
}

/// What `user` sees of table `schema.table` (read through `raw_name`, which may carry a time
/// travel suffix): `None` when every policy folds to the identity for the user.
pub(crate) async fn policed_table(
    state: SessionState,
    keys: &Keys,
    snapshot: &Snapshot,
    schema: &str,
    table: &str,
    raw_name: &str,
    raw_schema: &SchemaRef,
    user: &str,
    refusals_only: bool,
    without_refusals: Option<&str>,
) -> Result<Option<PolicedTable>> {
    let Ok(entry) = snapshot.state.table(schema, table) else { return Ok(None) };
    let none = Default::default();
    let policies = if refusals_only { &none } else { &entry.policies };
    let optout = optout_filter(snapshot, entry, schema, table, user, raw_schema)?;
    if policies.is_empty() && optout.is_none() {
        return Ok(None);
    }
    let label = format!("{schema}.{table}");
    let lookup = |name: &str| snapshot.state.policy(name).map_err(|e| policy_error(name, &label, e));
    let state = &definer_state(state, keys)?;
    let mut applied = Vec::new();

    // Projection policies: a column the user may not use is not there at all.
    let mut denied = Vec::new();
    for (column, name) in &policies.projections {
        let policy = lookup(name)?;
        if decide(state, policy, &label).await? != ScalarValue::Boolean(Some(true)) {
            denied.push(column.clone());
            applied.push(Applied::Denied { column: column.clone(), policy: name.clone() });
        }
    }

    // Aggregation policy: a positive minimum group size restricts the user to aggregates.
    if let Some(agg) = &policies.aggregation {
        let policy = lookup(&agg.policy)?;
        let k = match decide(state, policy, &label).await? {
            v if v.is_null() => 0,
            ScalarValue::Int8(Some(k)) => k as i64,
            ScalarValue::Int16(Some(k)) => k as i64,
            ScalarValue::Int32(Some(k)) => k as i64,
            ScalarValue::Int64(Some(k)) => k,
            other => {
                return Err(policy_error(&agg.policy, &label, format!("it returned {} instead of an integer", other.data_type())));
            }
        };
        if k > 0 {
            applied.push(Applied::Aggregated { policy: agg.policy.clone(), k: k as u64, entity_key: agg.entity_key.clone() });
        }
    }

    // Masks and row filters, planned together over the raw table.
    let mut items = Vec::new();
    let mut masked = Vec::new();
    for field in raw_schema.fields() {
        let column = field.name();
        if denied.contains(column) {
            continue;
        }
        let expr = match policies.masks.get(column) {
            Some(mask) => {
                let policy = lookup(&mask.policy)?;
                let args: Vec<SqlExpr> = mask.using.iter().map(|c| raw_column(c)).collect();
                masked.push((column.clone(), mask.policy.clone()));
                bound_body(policy, &args).map_err(|e| policy_error(&mask.policy, &label, e))?
            }
            None => raw_column(column),
        };
        items.push((expr, column.clone()));
    }
    if items.is_empty() {
        return Err(Error::PermissionDenied(format!("permission denied: no column of {label} is visible to this user")));
    }
    let mut selection: Option<SqlExpr> = None;
    for rf in &policies.row_filters {
        let policy = lookup(&rf.policy)?;
        let args: Vec<SqlExpr> = rf.columns.iter().map(|c| raw_column(c)).collect();
        let body = bound_body(policy, &args).map_err(|e| policy_error(&rf.policy, &label, e))?;
        selection = Some(match selection {
            None => body,
            Some(prev) => SqlExpr::BinaryOp { left: Box::new(prev), op: BinaryOperator::And, right: Box::new(body) },
        });
    }
    // The opt-out registry, for every non-operator, whatever the table's policies say.
    // On a linked table laid out for the current refusals, reading its clean files is the filter.
    let mut optout_source_owner = None;
    let mut raw_name = raw_name;
    if let Some((filter, source_owner)) = optout {
        optout_source_owner = Some(source_owner);
        applied.push(Applied::Filtered { policy: OPTOUT_FILTER.into() });
        match without_refusals {
            Some(clean) if entry.linked.is_some() => raw_name = clean,
            _ => {
                selection = Some(match selection {
                    None => filter,
                    Some(prev) => SqlExpr::BinaryOp { left: Box::new(prev), op: BinaryOperator::And, right: Box::new(filter) },
                })
            }
        }
    }
    // SECURITY: every policy is created by a superuser; its owner's rights read the tables its
    // body names (the last mask's, else the last row filter's); without either, the table's owner.
    // The opt-out filter reads the linkage schema: with it, the rights of the superuser who
    // declared the linkage source.
    let definer = policies.masks.values().last().map(|m| &m.policy).or(policies.row_filters.last().map(|r| &r.policy));
    let owner = match (optout_source_owner, definer) {
        (Some(o), _) => o,
        (None, Some(name)) => lookup(name)?.owner.clone(),
        (None, None) => entry.owner.clone(),
    };
    let name = ObjectName(vec![ObjectNamePart::Identifier(quoted(schema)), ObjectNamePart::Identifier(quoted(raw_name))]);
    let all_policies = || policies.policy_names().collect::<Vec<_>>().join(", ");
    let plan = plan_as_definer(state, &owner, select(items, Some(name), selection)?)
        .await
        .map_err(|e| policy_error(&all_policies(), &label, e))?;

    let LogicalPlan::Projection(projection) = &plan else {
        return Err(policy_error(&all_policies(), &label, "unexpected plan shape"));
    };
    let filtered = match projection.input.as_ref() {
        LogicalPlan::Filter(f) => !matches!(f.predicate, Expr::Literal(ScalarValue::Boolean(Some(true)), _)),
        _ => false,
    };
    if filtered {
        applied.extend(policies.row_filters.iter().map(|rf| Applied::Filtered { policy: rf.policy.clone() }));
    }
    let fields = plan.schema().fields().clone();
    for ((column, policy), _) in masked.iter().zip(0..) {
        let index = fields.iter().position(|f| f.name() == column).expect("every item has its column's name");
        if !is_raw_column(&projection.expr[index], column, &plan) {
            applied.push(Applied::Masked { column: column.clone(), policy: policy.clone() });
        }
    }
    if applied.is_empty() {
        return Ok(None);
    }
    Ok(Some(PolicedTable::new(label, plan, applied)))
}

/// How `EXPLAIN PRIVACY` and the write guard name the automatic opt-out filter.
pub(crate) const OPTOUT_FILTER: &str = "opt-out registry (linkage.optouts)";

tokio::task_local! {
    /// Set while a provision is planned: refusals bind operators and embedded sessions too.
    pub(crate) static REFUSALS_FOR_ALL: bool;
}

/// Whether refusals bind everyone now (a provision is being planned).
pub(crate) fn refusals_for_all() -> bool {
    REFUSALS_FOR_ALL.try_with(|b| *b).unwrap_or(false)
}

/// Whether refusals hide rows from `user`: from everyone but operators, and from everyone while
/// a provision is planned.
pub(crate) fn bound_by_refusals(snapshot: &Snapshot, user: &str) -> bool {
    !snapshot.state.is_operator(user) || refusals_for_all()
}

/// The automatic opt-out filter of a linked table (by research ID; rows not linked yet are held
/// back too) or of a linked table's base (by source key), for a user who is not an operator,
/// with the owner of the linkage source whose rights read the registry.
fn optout_filter(
    snapshot: &Snapshot,
    entry: &kura_catalog::TableEntry,
    schema: &str,
    table: &str,
    user: &str,
    raw_schema: &SchemaRef,
) -> Result<Option<(SqlExpr, String)>> {
    if !bound_by_refusals(snapshot, user) {
        return Ok(None);
    }
    let (text, source) = if let Some(l) = &entry.linked {
        if raw_schema.field_with_name("research_id").is_err() {
            return Ok(None);
        }
        let id = format!("{RAW_ALIAS}.research_id");
        // NOT EXISTS, not NOT IN: a null-aware anti join must hash the large side.
        (
            format!("{id} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM linkage.optout_ids o WHERE o.research_id = {id})"),
            l.source.clone(),
        )
    } else if let Some(l) = snapshot.state.linked_table_of_base(schema, table) {
        (
            // The registry's columns are renamed so that the key expression's unqualified
            // names can only mean the table's columns.
            format!(
                "NOT EXISTS (SELECT 1 FROM (SELECT source AS __kura_source, source_key AS __kura_key FROM linkage.optout_keys) k \
                 WHERE k.__kura_source = {} AND k.__kura_key = coalesce(CAST(({}) AS TEXT), ''))",
                crate::names::sql_literal(&l.source),
                l.key
            ),
            l.source.clone(),
        )
    } else {
        return Ok(None);
    };
    let owner = snapshot.state.linkage_source(&source).map_err(Error::catalog)?.owner.clone();
    Ok(Some((parse_body(&text)?, owner)))
}

/// Plans a new policy's body once, as it will run, so that a broken definition fails at CREATE:
/// parameters become columns of a one-row relation of their declared types.
pub(crate) async fn validate(state: SessionState, keys: &Keys, policy: &PolicyEntry) -> Result<()> {
    let args: Vec<SqlExpr> = policy.params.iter().map(|p| raw_column(&p.name)).collect();
    let body = bound_body(policy, &args)?;
    let stmt = if policy.params.is_empty() {
        select(vec![(body, "v".into())], None, None)?
    } else {
        // SELECT <body> FROM (SELECT CAST(NULL AS t1) AS p1, ...) AS __kura_t
        let columns = policy
            .params
            .iter()
            .map(|p| {
                let null = SqlExpr::Value(datafusion::sql::sqlparser::ast::Value::Null.into());
                Ok((
                    SqlExpr::Cast { kind: CastKind::Cast, expr: Box::new(null), data_type: parse_type(&p.sql_type)?, array: false, format: None },
                    p.name.clone(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let inner = select(columns, None, None)?;
        let mut outer = select(vec![(body, "v".into())], Some(ObjectName(vec![ObjectNamePart::Identifier(quoted("t"))])), None)?;
        if let (Statement::Query(outer_q), Statement::Query(inner_q)) = (&mut outer, inner)
            && let SetExpr::Select(sel) = outer_q.body.as_mut()
            && let Some(twj) = sel.from.first_mut()
        {
            twj.relation = TableFactor::Derived {
                lateral: false,
                subquery: inner_q,
                alias: Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: quoted(RAW_ALIAS),
                    columns: vec![],
                    at: None,
                }),
                sample: None,
            };
        }
        outer
    };
    let plan = plan_as_definer(&definer_state(state, keys)?, &policy.owner, stmt).await?;
    let returned = plan.schema().field(0).data_type().clone();
    let expected = match policy.kind {
        PolicyKind::RowAccess | PolicyKind::Projection => Some(datafusion::arrow::datatypes::DataType::Boolean),
        _ => None,
    };
    if let Some(expected) = expected
        && returned != expected
    {
        return Err(Error::Invalid(format!("a {} must return BOOLEAN, not {}", policy.kind, policy.returns)));
    }
    if policy.kind == PolicyKind::Aggregation && !returned.is_integer() {
        return Err(Error::Invalid(format!("an aggregation policy returns the minimum group size as an integer, not {}", policy.returns)));
    }
    Ok(())
}

/// The Arrow type DataFusion gives the SQL type `sql_type`.
pub(crate) async fn arrow_type(state: &SessionState, sql_type: &str) -> Result<datafusion::arrow::datatypes::DataType> {
    let null = SqlExpr::Value(datafusion::sql::sqlparser::ast::Value::Null.into());
    let cast = SqlExpr::Cast { kind: CastKind::Cast, expr: Box::new(null), data_type: parse_type(sql_type)?, array: false, format: None };
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(select(vec![(cast, "v".into())], None, None)?)))
        .await
        .map_err(Error::from_datafusion)?;
    Ok(plan.schema().field(0).data_type().clone())
}
