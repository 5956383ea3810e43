//! Semi-join reduction of grouped join inputs: a `GROUP BY k` whose groups are then joined on `k`
//! computes only the groups the join can keep.
//!
//! A correlated subquery such as TPC-H 17's `l_quantity < (SELECT 0.2 * avg(l_quantity) FROM
//! lineitem WHERE l_partkey = p_partkey)` is decorrelated by DataFusion into a join with
//! `SELECT l_partkey, avg(l_quantity) FROM lineitem GROUP BY l_partkey`: all 200,000 parts are
//! averaged over all 6 M rows, when the other side of the join keeps 204 parts. This rule filters
//! the aggregate's input first, by a semi join with the rows the other side's key comes from
//! (the filtered `part`), so the aggregate sees the rows of those groups only (DuckDB gets the
//! same effect from its dependent join).
//!
//! Only aggregates of subqueries (correlated scalar subqueries, `IN` and `EXISTS`) are reduced:
//! what the subquery computes is asked per row of the outer query, which is usually filtered
//! (DuckDB's dependent join evaluates it that way). A join the user wrote with a grouped derived
//! table or CTE is left as written: without cardinality estimates the rule cannot know that the
//! second read of the other side pays (it did not in a cohort query whose other side kept 87% of
//! a table).
//!
//! It is exact: grouping by `k` puts every row of a key in the same group, so removing the rows
//! whose key the join cannot match removes whole groups and leaves the others as they were. It
//! applies when the aggregate side is the one an equi join drops unmatched rows from (inner,
//! outer on the other side, semi and anti), the key is a plain group column, and the other side's
//! key can be traced through inner joins and projections to a filtered scan (the reduction is a
//! second, selective read of that table). Aggregates carrying Kura's group-size machinery are left
//! alone.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DFResult};
use datafusion::logical_expr::{Aggregate, Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The alias of the key list a reduced aggregate is semi-joined with; marks it as reduced.
const REDUCER: &str = "__kura_reduce";

#[derive(Debug, Default)]
pub(crate) struct ReduceGroupedJoins;

impl OptimizerRule for ReduceGroupedJoins {
    fn name(&self) -> &str {
        "kura_reduce_grouped_joins"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> DFResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else { return Ok(Transformed::no(plan)) };
        let (reduce_right, reduce_left) = match join.join_type {
            JoinType::Inner => (true, true),
            JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => (true, false),
            JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => (false, true),
            _ => (false, false),
        };
        for (left_key, right_key) in &join.on {
            let (Expr::Column(lk), Expr::Column(rk)) = (left_key, right_key) else { continue };
            if reduce_right && let Some(right) = reduce(&join.right, rk, &join.left, lk, false)? {
                return Ok(Transformed::yes(LogicalPlan::Join(Join { right: Arc::new(right), ..join.clone() })));
            }
            if reduce_left && let Some(left) = reduce(&join.left, lk, &join.right, rk, false)? {
                return Ok(Transformed::yes(LogicalPlan::Join(Join { left: Arc::new(left), ..join.clone() })));
            }
        }
        Ok(Transformed::no(plan))
    }
}

/// `grouped` with its aggregate's input semi-joined with the keys `other_key` can take in
/// `other`, when `grouped` is (a projection or alias of) an aggregate grouped by `key` that came
/// from a subquery (`subquery`: an alias DataFusion's decorrelation made was passed).
fn reduce(grouped: &LogicalPlan, key: &Column, other: &LogicalPlan, other_key: &Column, subquery: bool) -> DFResult<Option<LogicalPlan>> {
    match grouped {
        LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            let Some(inner) = passed_through(grouped, key) else { return Ok(None) };
            let decorrelated = matches!(grouped, LogicalPlan::SubqueryAlias(a)
                if ["__scalar_sq_", "__correlated_sq_"].iter().any(|p| a.alias.table().starts_with(p)));
            let Some(input) = reduce(grouped.inputs()[0], &inner, other, other_key, subquery || decorrelated)? else {
                return Ok(None);
            };
            Ok(Some(grouped.with_new_exprs(grouped.expressions(), vec![input])?))
        }
        // A filter on the groups (HAVING, or a correlated predicate on the aggregate) keeps or
        // drops whole groups either way.
        LogicalPlan::Filter(f) => {
            let Some(input) = reduce(&f.input, key, other, other_key, subquery)? else { return Ok(None) };
            Ok(Some(grouped.with_new_exprs(grouped.expressions(), vec![input])?))
        }
        LogicalPlan::Aggregate(agg) if subquery => reduce_aggregate(agg, key, other, other_key),
        _ => Ok(None),
    }
}

fn reduce_aggregate(agg: &Aggregate, key: &Column, other: &LogicalPlan, other_key: &Column) -> DFResult<Option<LogicalPlan>> {
    // Kura's group-size checks count what each group holds; they are not to be second-guessed.
    if agg.aggr_expr.iter().chain(&agg.group_expr).any(|e| e.schema_name().to_string().contains("__kura"))
        || agg.schema.fields().iter().any(|f| f.name().starts_with("__kura"))
    {
        return Ok(None);
    }
    // Already reduced.
    if let LogicalPlan::Join(j) = agg.input.as_ref()
        && matches!(j.right.as_ref(), LogicalPlan::SubqueryAlias(a) if a.alias.table() == REDUCER)
    {
        return Ok(None);
    }
    let Some(i) = agg.schema.maybe_index_of_column(key) else { return Ok(None) };
    if i >= agg.group_expr.len() || matches!(agg.group_expr[i], Expr::GroupingSet(_)) {
        return Ok(None);
    }
    let Expr::Column(group_column) = agg.group_expr[i].clone().unalias() else { return Ok(None) };
    let Some((source, source_key)) = key_source(other, other_key) else { return Ok(None) };
    let reducer = LogicalPlanBuilder::from(source).project(vec![Expr::Column(source_key.clone())])?.alias(REDUCER)?.build()?;
    let reduced_key = Column::new(Some(REDUCER), source_key.name());
    let input = LogicalPlanBuilder::from(agg.input.as_ref().clone())
        .join(reducer, JoinType::LeftSemi, (vec![group_column], vec![reduced_key]), None)?
        .build()?;
    let aggregate = Aggregate::try_new(Arc::new(input), agg.group_expr.clone(), agg.aggr_expr.clone())?;
    if aggregate.schema != agg.schema {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::Aggregate(aggregate)))
}

/// A filtered scan below `plan` whose `column` holds every value `plan`'s `key` can have.
fn key_source(plan: &LogicalPlan, key: &Column) -> Option<(LogicalPlan, Column)> {
    match plan {
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => {
            if j.left.schema().has_column(key) {
                key_source(&j.left, key)
            } else {
                key_source(&j.right, key)
            }
        }
        LogicalPlan::Join(j) if matches!(j.join_type, JoinType::LeftSemi | JoinType::LeftAnti) => key_source(&j.left, key),
        LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => key_source(plan.inputs()[0], &passed_through(plan, key)?),
        // SECURITY of results: the reduction reads the filtered scan again, so its predicate must
        // give the same rows twice (nothing volatile, no subquery).
        LogicalPlan::Filter(f) if reads_one_scan(&f.input) && repeatable(&f.predicate) => Some((plan.clone(), key.clone())),
        LogicalPlan::TableScan(s) if !s.filters.is_empty() && s.filters.iter().all(repeatable) => Some((plan.clone(), key.clone())),
        _ => None,
    }
}

/// The input column that output column `key` of a projection or alias is, unchanged.
fn passed_through(plan: &LogicalPlan, key: &Column) -> Option<Column> {
    match plan {
        LogicalPlan::Projection(p) => match p.expr[p.schema.maybe_index_of_column(key)?].clone().unalias() {
            Expr::Column(c) => Some(c),
            _ => None,
        },
        LogicalPlan::SubqueryAlias(a) => {
            let (qualifier, field) = a.input.schema().qualified_field(a.schema.maybe_index_of_column(key)?);
            Some(Column::new(qualifier.cloned(), field.name()))
        }
        _ => None,
    }
}

/// Whether `e` gives the same result on the same rows each time it is evaluated.
pub(crate) fn repeatable(e: &Expr) -> bool {
    !e.is_volatile()
        && !e.contains_outer()
        && !e.exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)))).unwrap_or(true)
}

/// Whether `plan` is a table scan, possibly under projections.
fn reads_one_scan(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(_) => true,
        LogicalPlan::Projection(p) => reads_one_scan(&p.input),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn context(reduce: bool) -> SessionContext {
        let ctx = SessionContext::new();
        if reduce {
            ctx.add_optimizer_rule(Arc::new(ReduceGroupedJoins));
        }
        for sql in [
            "CREATE TABLE parts AS SELECT * FROM (VALUES (1, 'A'), (2, 'A'), (3, 'B')) AS t(partkey, brand)",
            "CREATE TABLE items AS SELECT * FROM (VALUES (1, 1, 10), (1, 5, 20), (1, 9, 30), (2, 2, 5), (2, 4, 7), (3, 1, 100), (3, 100, 200), (4, 7, 1)) AS t(partkey, qty, price)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    /// Whether the rule reduced the query, and that its answer is the same without the rule.
    async fn reduced(sql: &str) -> bool {
        let with = context(true).await;
        let plan = with.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let got = pretty_format_batches(&with.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
        let want = pretty_format_batches(&context(false).await.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
        assert_eq!(got, want, "{sql}");
        plan.display_indent().to_string().contains(REDUCER)
    }

    #[tokio::test]
    async fn grouped_sides_of_joins_that_drop_unmatched_groups_are_reduced() {
        // TPC-H 17's shape: a correlated aggregate, decorrelated into a join with a GROUP BY.
        assert!(
            reduced(
                "SELECT sum(price) FROM items, parts WHERE parts.partkey = items.partkey AND brand = 'A' \
                 AND qty < (SELECT 0.6 * avg(qty) FROM items i2 WHERE i2.partkey = parts.partkey)"
            )
            .await
        );
        for sql in [
            "SELECT partkey FROM parts WHERE brand = 'A' AND 6 > (SELECT max(qty) FROM items WHERE items.partkey = parts.partkey) ORDER BY 1",
            "SELECT partkey FROM parts WHERE brand = 'A' AND partkey IN (SELECT partkey FROM items GROUP BY partkey HAVING count(*) > 2) ORDER BY 1",
            "SELECT partkey FROM parts WHERE brand = 'A' AND partkey NOT IN (SELECT partkey FROM items GROUP BY partkey HAVING max(qty) > 5) ORDER BY 1",
        ] {
            assert!(reduced(sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn groups_the_join_keeps_or_cannot_trace_are_left_alone() {
        for sql in [
            // Every group reaches the output.
            "SELECT count(*) FROM (SELECT partkey, count(*) n FROM items GROUP BY partkey) a FULL JOIN (SELECT * FROM parts WHERE brand = 'A') p ON a.partkey = p.partkey",
            "SELECT count(*) FROM (SELECT partkey, count(*) n FROM items GROUP BY partkey) a LEFT JOIN (SELECT * FROM parts WHERE brand = 'A') p ON a.partkey = p.partkey",
            // A volatile filter would give another set of keys when read again.
            "SELECT partkey FROM parts WHERE brand = 'A' AND random() < 2 AND 6 > (SELECT max(qty) FROM items WHERE items.partkey = parts.partkey) ORDER BY 1",
            // Joined on an aggregate, not on the group key.
            "SELECT p.partkey FROM parts p JOIN (SELECT partkey, count(*) n FROM items GROUP BY partkey) a ON a.n = p.partkey WHERE p.brand = 'A' ORDER BY 1",
            // Joins the user wrote with grouped derived tables: left as written.
            "SELECT p.partkey, a.n FROM parts p LEFT JOIN (SELECT partkey, count(*) n FROM items GROUP BY partkey) a ON a.partkey = p.partkey WHERE p.brand = 'A' ORDER BY 1",
            "SELECT a.partkey, a.s FROM (SELECT partkey, sum(price) s FROM items GROUP BY partkey) a JOIN parts p ON a.partkey = p.partkey WHERE p.brand = 'B' ORDER BY 1",
            // The other side is not filtered: nothing to gain.
            "SELECT partkey FROM parts WHERE 6 > (SELECT max(qty) FROM items WHERE items.partkey = parts.partkey) ORDER BY 1",
        ] {
            assert!(!reduced(sql).await, "{sql}");
        }
    }
}
