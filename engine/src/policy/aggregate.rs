//! Aggregation policies: a user restricted to aggregates (the municipal evaluator) gets only
//! groups that stand for at least `k` distinct entities (persons, counted by the table's entity
//! key, e.g. `research_id`), and no row-level data.
//!
//! Rules, applied to the logical plan before optimisation (SECURITY, each one closes an attack):
//! - Every path from the result to a protected table passes through an aggregate. A protected
//!   table reached otherwise (row-level output, `EXISTS`/`IN` subqueries, joins of raw rows with
//!   aggregates) refuses the query: a subquery's rows can steer a result without being counted.
//! - At the first aggregate above protected tables, hidden `count(DISTINCT entity)` columns are
//!   added, one per protected table; groups below `k` in any of them are suppressed. `WHERE`,
//!   `GROUP BY` and `HAVING` that narrow a group to a few people therefore yield nothing.
//! - Aggregate functions must not hand values back (min, max, first_value, string_agg, array_agg,
//!   percentiles, mode): only counts and sums/averages/variances are allowed, and their
//!   arguments must be plain columns of the tables (no `CASE WHEN research_id = ...`, no
//!   `FILTER (WHERE ...)`), so a value cannot be computed for one person inside a large group.
//!
//! - Each group that passes the size check must also pass the differencing check
//!   ([`super::differencing`]): its persons, compared with the groups this user was given before,
//!   must not isolate fewer than k persons by subtraction. It is the filter's predicate.
//!
//! Limits (documented in the README): the differencing check's (see its module), and outliers
//! dominating a sum.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, TableReference};
use datafusion::catalog::TableProvider;
use datafusion::datasource::source_as_provider;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, LogicalPlan, Projection, SubqueryAlias, TableScan, lit, when,
};

use super::differencing::{DifferencingCheck, EntityHashes, UserHistory};
use super::table::PolicedTable;
use crate::{Error, Result};

/// Aggregates that return a combination of many values, never one of them.
const ALLOWED_AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
    "var_population",
    "var_sample",
    "variance",
    "corr",
    "covar",
    "covar_pop",
    "covar_samp",
    "approx_distinct",
    "grouping",
];

fn refused(message: impl Into<String>) -> Error {
    Error::PermissionDenied(format!("permission denied: {}", message.into()))
}

/// The aggregation rule of a scan, if it reads a table under one for this user.
fn aggregation_of(scan: &TableScan) -> Option<(u64, Option<String>, String)> {
    let provider = source_as_provider(&scan.source).ok()?;
    let policed = provider.downcast_ref::<PolicedTable>()?;
    let (k, key, _) = policed.aggregation()?;
    Some((k, key.first().cloned(), policed.label.clone()))
}

/// The plan of a view that a scan reads, if it reads one.
fn view_of(scan: &TableScan) -> Option<Arc<dyn datafusion::catalog::TableProvider>> {
    let provider = source_as_provider(&scan.source).ok()?;
    provider.is::<crate::provider::OpaqueView>().then_some(provider)
}

fn view_plan(provider: &Arc<dyn datafusion::catalog::TableProvider>) -> &LogicalPlan {
    provider.downcast_ref::<crate::provider::OpaqueView>().expect("checked by view_of").0.logical_plan()
}

/// Whether `plan` (subqueries and views included) reads a table under an aggregation policy.
fn protected(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && (aggregation_of(scan).is_some() || view_of(scan).is_some_and(|v| protected(view_plan(&v))))
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A scan of a view over protected tables: the view's own plan must stand as a result (an
/// aggregate), checked as such; its scan then reads the checked plan.
fn police_view(mut scan: TableScan, history: &Arc<UserHistory>) -> Result<LogicalPlan> {
    let provider = view_of(&scan).expect("called for views");
    let view = provider.downcast_ref::<crate::provider::OpaqueView>().expect("checked by view_of");
    let checked = above(view.0.logical_plan().clone(), history)?;
    let definition = view.0.get_table_definition().map(str::to_string);
    let replaced = crate::provider::OpaqueView(datafusion::datasource::ViewTable::new(checked, definition));
    scan.source = datafusion::datasource::provider_as_source(Arc::new(replaced));
    Ok(LogicalPlan::TableScan(scan))
}

/// Applies the aggregation policies of the tables `plan` reads; a plan that reads none is
/// returned as it is. `history` gives the querying user's differencing history, only when needed.
pub(crate) fn enforce(plan: LogicalPlan, history: impl FnOnce() -> Arc<UserHistory>) -> Result<LogicalPlan> {
    if !protected(&plan) {
        return Ok(plan);
    }
    above(plan, &history())
}

/// A node at or above the aggregates: row-level access to protected tables is refused here.
fn above(plan: LogicalPlan, history: &Arc<UserHistory>) -> Result<LogicalPlan> {
    if !protected(&plan) {
        return Ok(plan);
    }
    match plan {
        LogicalPlan::Aggregate(aggregate) => enforce_aggregate(aggregate, history),
        // SECURITY: EXPLAIN ANALYZE counts the rows of every operator, those below the
        // group-size check included.
        LogicalPlan::Analyze(_) => Err(refused("EXPLAIN ANALYZE shows row counts below the group-size check; use EXPLAIN")),
        LogicalPlan::TableScan(scan) if view_of(&scan).is_some() => police_view(scan, history),
        LogicalPlan::TableScan(scan) => {
            let (_, _, label) = aggregation_of(&scan).unwrap_or_default();
            Err(refused(format!(
                "{label} may only be read in aggregates (GROUP BY with count, sum, avg ...) by this user; row-level results and row-level subqueries are refused"
            )))
        }
        LogicalPlan::Subquery(mut sq) => {
            sq.subquery = Arc::new(above(Arc::unwrap_or_clone(sq.subquery), history)?);
            Ok(LogicalPlan::Subquery(sq))
        }
        other => {
            let other = other
                .map_subqueries(|sq| Ok(Transformed::yes(above(sq, history)?)))
                .map_err(Error::from_datafusion)?
                .data;
            Ok(other.map_children(|child| Ok(Transformed::yes(above(child, history)?))).map_err(Error::from_datafusion)?.data)
        }
    }
}

/// An entity column threaded up from a protected table, or rows counted when it has no key.
#[derive(Debug, Clone)]
struct Entity {
    column: Option<Column>,
    k: u64,
}

/// Suppresses the groups of `aggregate` that stand for fewer than `k` entities.
fn enforce_aggregate(aggregate: Aggregate, history: &Arc<UserHistory>) -> Result<LogicalPlan> {
    for expr in &aggregate.aggr_expr {
        check_aggregate_expr(expr, &aggregate.input)?;
    }
    check_cannot_fail(&aggregate.group_expr, aggregate.input.schema())?;
    let original = aggregate.schema.clone();
    let (input, entities) = thread(Arc::unwrap_or_clone(aggregate.input), history)?;
    if entities.is_empty() {
        // Everything protected below was aggregated (and suppressed) by a lower aggregate.
        let rebuilt = Aggregate::try_new(Arc::new(input), aggregate.group_expr, aggregate.aggr_expr)
            .map_err(Error::from_datafusion)?;
        return Ok(LogicalPlan::Aggregate(rebuilt));
    }
    let mut aggr_expr = aggregate.aggr_expr.clone();
    let mut checks = Vec::new();
    let mut members = Vec::new();
    for (i, entity) in entities.iter().enumerate() {
        let name = format!("__kura_entities_{i}");
        let counted = match &entity.column {
            Some(c) => count_distinct(Expr::Column(c.clone())),
            None => count(lit(1)),
        };
        aggr_expr.push(counted.alias(&name));
        checks.push(Expr::Column(Column::new_unqualified(name)).gt_eq(lit(entity.k as i64)));
        // Rows without an entity key are counted, not identified: no set to compare.
        if let Some(c) = &entity.column {
            let name = format!("__kura_members_{i}");
            aggr_expr.push(EntityHashes::call(Expr::Column(c.clone())).alias(&name));
            members.push((Expr::Column(Column::new_unqualified(name)), entity.k));
        }
    }
    let grouped = LogicalPlan::Aggregate(
        Aggregate::try_new(Arc::new(input), aggregate.group_expr, aggr_expr).map_err(Error::from_datafusion)?,
    );
    let predicate = checks.into_iter().reduce(Expr::and).expect("at least one entity");
    // SECURITY: the differencing check sees every group that passes its size check and keeps
    // those whose persons are not too close to groups this user was given before (it records
    // them). It is the filter's only predicate, so it runs exactly once per group.
    let kept_if = if members.is_empty() {
        predicate.clone()
    } else {
        DifferencingCheck::call(history.clone(), predicate.clone(), members)
    };
    let kept = LogicalPlan::Filter(Filter::try_new(kept_if, Arc::new(grouped)).map_err(Error::from_datafusion)?);
    // Back to the aggregate's own columns, hidden counts dropped. Each is NULL-able now (a
    // suppressed scalar subquery is NULL, even where the aggregate was `count(*)`), which the
    // CASE (true on every row the filter kept) says to the planner.
    let columns = original
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::from((qualifier, field)));
            Ok(when(predicate.clone(), column).end()?.alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<datafusion::error::Result<Vec<Expr>>>()
        .map_err(Error::from_datafusion)?;
    Ok(LogicalPlan::Projection(Projection::try_new(columns, Arc::new(kept)).map_err(Error::from_datafusion)?))
}

/// The group-size check `predicate` without its side effects: the differencing check (which
/// records released groups) reads as its size condition, other volatile functions as true. For
/// figures that must not count as a release.
pub(crate) fn without_side_effects(predicate: Expr) -> Result<Expr> {
    Ok(predicate
        .transform(|e| match e {
            Expr::ScalarFunction(mut f) if f.func.name() == super::differencing::CHECK_NAME && !f.args.is_empty() => {
                Ok(Transformed::yes(f.args.swap_remove(0)))
            }
            Expr::ScalarFunction(f) if f.func.signature().volatility == datafusion::logical_expr::Volatility::Volatile => {
                Ok(Transformed::yes(lit(true)))
            }
            other => Ok(Transformed::no(other)),
        })
        .map_err(Error::from_datafusion)?
        .data)
}

/// SECURITY: below the group-size check, expressions run on every row of a group that will be
/// suppressed; one that can fail (`1 / (points - 210)`, `CAST(note AS INT)`) would tell, by
/// failing or not, about a single person. Only leak-proof expressions may run there.
fn check_cannot_fail(exprs: &[Expr], schema: &datafusion::common::DFSchema) -> Result<()> {
    for expr in exprs {
        let parts: Vec<&Expr> = match expr {
            // Aggregate calls are checked by check_aggregate_expr; subqueries were checked above.
            Expr::AggregateFunction(_) => continue,
            Expr::GroupingSet(set) => set.distinct_expr(),
            other => vec![other],
        };
        for part in parts {
            // Subqueries are results of their own, checked by `above`: only what this node does
            // with their values is checked here.
            let part = part
                .clone()
                .transform(|e| match e {
                    Expr::ScalarSubquery(_) | Expr::Exists(_) => Ok(Transformed::yes(lit(true))),
                    Expr::InSubquery(i) => Ok(Transformed::yes(Expr::IsNotNull(i.expr))),
                    other => Ok(Transformed::no(other)),
                })
                .map_err(Error::from_datafusion)?
                .data;
            let part = &part;
            if !super::leakproof::is_leakproof(part, schema) {
                return Err(refused(format!(
                    "the expression {} could fail on a row below the group-size check (an error would tell about one person); this user may use comparisons, IN, LIKE, + - * and division by a constant there",
                    part.human_display()
                )));
            }
        }
    }
    Ok(())
}

/// The schema the expressions of `node` are evaluated against: its inputs' columns.
fn input_schema(node: &LogicalPlan) -> datafusion::common::DFSchema {
    let mut merged = datafusion::common::DFSchema::empty();
    for input in node.inputs() {
        merged.merge(input.schema());
    }
    merged
}

/// Refuses aggregates that could hand back one person's value.
fn check_aggregate_expr(expr: &Expr, input: &LogicalPlan) -> Result<()> {
    let mut result = Ok(());
    let _ = expr.apply(|e| {
        if let Expr::AggregateFunction(AggregateFunction { func, params }) = e {
            let name = func.name().to_ascii_lowercase();
            if !ALLOWED_AGGREGATES.contains(&name.as_str()) {
                result = Err(refused(format!(
                    "{name}() returns values from the data; this user may use count, sum, avg, stddev and variance only"
                )));
                return Ok(TreeNodeRecursion::Stop);
            }
            if params.filter.is_some() {
                result = Err(refused("FILTER (WHERE ...) on an aggregate is not allowed for this user; use WHERE or GROUP BY"));
                return Ok(TreeNodeRecursion::Stop);
            }
            for arg in &params.args {
                if !plain_argument(arg, input) {
                    result = Err(refused(format!(
                        "the argument of {name}() must be a column of a table (an expression could single out a person inside a group); use WHERE or GROUP BY to choose rows"
                    )));
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    result
}

/// Whether `arg` is a literal, or a column that comes unchanged from a table (through
/// projections, aliases and casts), not a value computed below the aggregate.
fn plain_argument(arg: &Expr, input: &LogicalPlan) -> bool {
    match arg {
        Expr::Literal(..) => true,
        Expr::Alias(a) => plain_argument(&a.expr, input),
        Expr::Cast(c) => plain_argument(&c.expr, input),
        Expr::TryCast(c) => plain_argument(&c.expr, input),
        Expr::Column(c) => traces_to_table(c, input),
        _ => false,
    }
}

fn traces_to_table(column: &Column, plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => true,
        LogicalPlan::Projection(p) => {
            let Ok(index) = p.schema.index_of_column(column) else { return false };
            plain_argument(&p.expr[index], &p.input)
        }
        LogicalPlan::SubqueryAlias(sa) => {
            let Ok(index) = sa.schema.index_of_column(column) else { return false };
            let inner = Column::from(sa.input.schema().qualified_field(index));
            traces_to_table(&inner, &sa.input)
        }
        LogicalPlan::Join(j) => {
            if j.left.schema().has_column(column) {
                traces_to_table(column, &j.left)
            } else {
                traces_to_table(column, &j.right)
            }
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Window(_)
        | LogicalPlan::Distinct(_) => {
            let input = plan.inputs()[0];
            input.schema().has_column(column) && traces_to_table(column, input)
        }
        _ => false,
    }
}

/// Rewrites the plan below an aggregate so that each protected table's entity column reaches
/// the aggregate, and returns those columns.
fn thread(plan: LogicalPlan, history: &Arc<UserHistory>) -> Result<(LogicalPlan, Vec<Entity>)> {
    if !protected(&plan) {
        return Ok((plan, vec![]));
    }
    // SECURITY: subqueries in this node's expressions are results of their own: row-level ones
    // over protected tables are refused, aggregated ones are suppressed on their own.
    let plan = plan.map_subqueries(|sq| Ok(Transformed::yes(above(sq, history)?))).map_err(Error::from_datafusion)?.data;
    match plan {
        // A view over protected tables is a result of its own (an aggregate, or refused).
        LogicalPlan::TableScan(scan) if view_of(&scan).is_some() => Ok((police_view(scan, history)?, vec![])),
        LogicalPlan::TableScan(scan) => {
            let Some((k, key, label)) = aggregation_of(&scan) else { return Ok((LogicalPlan::TableScan(scan), vec![])) };
            let column = match key {
                None => None,
                Some(key) => {
                    let column = Column::new(Some(scan.table_name.clone()), &key);
                    if !scan.projected_schema.has_column(&column) {
                        return Err(refused(format!(
                            "the entity key \"{key}\" of {label} is not visible to this user, so group sizes cannot be checked"
                        )));
                    }
                    Some(column)
                }
            };
            Ok((LogicalPlan::TableScan(scan), vec![Entity { column, k }]))
        }
        LogicalPlan::Aggregate(aggregate) => Ok((enforce_aggregate(aggregate, history)?, vec![])),
        LogicalPlan::Projection(p) => {
            check_cannot_fail(&p.expr, p.input.schema())?;
            let (input, entities) = thread(Arc::unwrap_or_clone(p.input), history)?;
            let mut exprs = p.expr;
            for e in &entities {
                if let Some(c) = &e.column
                    && !exprs.iter().any(|x| matches!(x, Expr::Column(y) if y == c))
                {
                    exprs.push(Expr::Column(c.clone()));
                }
            }
            let projection = Projection::try_new(exprs, Arc::new(input)).map_err(Error::from_datafusion)?;
            Ok((LogicalPlan::Projection(projection), entities))
        }
        LogicalPlan::SubqueryAlias(sa) => {
            let (input, entities) = thread(Arc::unwrap_or_clone(sa.input), history)?;
            let input_schema = input.schema().clone();
            let alias: TableReference = sa.alias.clone();
            let rebuilt = SubqueryAlias::try_new(Arc::new(input), alias).map_err(Error::from_datafusion)?;
            let entities = entities
                .into_iter()
                .map(|mut e| {
                    if let Some(c) = &e.column {
                        let index = input_schema.index_of_column(c).map_err(Error::from_datafusion)?;
                        e.column = Some(Column::from(rebuilt.schema.qualified_field(index)));
                    }
                    Ok(e)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((LogicalPlan::SubqueryAlias(rebuilt), entities))
        }
        // SECURITY: no Window here: a window function puts values of many rows (one person's
        // maximum, a string_agg of every row) on each row, which then passes any group size.
        node @ (LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Join(_)) => {
            let mut entities = Vec::new();
            let exprs = node.expressions();
            check_cannot_fail(&exprs, &input_schema(&node))?;
            let mut inputs = Vec::new();
            for child in node.inputs() {
                let (child, found) = thread(child.clone(), history)?;
                entities.extend(found);
                inputs.push(child);
            }
            let rebuilt = node.with_new_exprs(exprs, inputs).map_err(Error::from_datafusion)?;
            Ok((rebuilt, entities))
        }
        other => {
            let what = other.display().to_string();
            let what = what.split(':').next().unwrap_or("this operation").to_string();
            let label = {
                let mut label = String::new();
                let _ = other.apply_with_subqueries(|n| {
                    if let LogicalPlan::TableScan(s) = n
                        && let Some((_, _, l)) = aggregation_of(s)
                    {
                        label = l;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
                label
            };
            Err(refused(format!(
                "group sizes over {label} cannot be checked through {what}; aggregate each part separately or read the table directly"
            )))
        }
    }
}
