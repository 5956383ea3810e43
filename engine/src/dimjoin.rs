//! Dimension joins first: an inner join with a small, filtered table (a dimension such as TPC-H's
//! `nation` filtered to two names) is moved down a tree of inner joins, next to the table its key
//! comes from, so that the filter shrinks every join above instead of the last one.
//!
//! DataFusion joins tables in the order the query names them. In TPC-H 7 (`FROM supplier,
//! lineitem, orders, customer, nation n1, nation n2`) the two nations, each filtered to 2 of 25
//! rows, come last: 1.8 M lineitem rows go through the joins with orders and customers before
//! the nation filters drop 92% of them. With this rule `supplier` meets `n1` and `customer` meets
//! `n2` first.
//!
//! It is exact: inner joins commute and associate, so moving one inside a tree of inner joins
//! keeps the multiset of rows. The join's filter, which may need columns from anywhere, becomes the
//! filter of the new top join, and a projection on top gives the plan the schema it had. It applies only
//! when every join on the way down is an inner equi join with plain column keys, the projections
//! on the way only pass columns through, and the dimension reads one table of at most
//! [`MAX_DIMENSION_ROWS`] rows (as the table provider counts them) under a filter that gives the
//! same rows each time. Anything else is left as written.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result as DFResult};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::semijoin::repeatable;

/// The largest table (rows, before its filter) the rule treats as a dimension.
pub(crate) const MAX_DIMENSION_ROWS: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct DimensionJoinsFirst;

impl OptimizerRule for DimensionJoinsFirst {
    fn name(&self) -> &str {
        "kura_dimension_joins_first"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> DFResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else { return Ok(Transformed::no(plan)) };
        if !plain_inner(join) {
            return Ok(Transformed::no(plan));
        }
        for dimension_on_right in [true, false] {
            let (fact, dimension) = if dimension_on_right { (&join.left, &join.right) } else { (&join.right, &join.left) };
            if !is_dimension(dimension) {
                continue;
            }
            // (fact key, dimension key) pairs; the fact keys must be plain columns.
            let pairs: Option<Vec<(Column, Expr)>> = join
                .on
                .iter()
                .map(|(l, r)| {
                    let (f, d) = if dimension_on_right { (l, r) } else { (r, l) };
                    match f {
                        Expr::Column(c) => Some((c.clone(), d.clone())),
                        _ => None,
                    }
                })
                .collect();
            let Some(pairs) = pairs.filter(|p| !p.is_empty()) else { continue };
            let Some(moved) = place(fact, dimension, &pairs)? else { continue };
            // The join's own filter goes to the new top join, which has every column. (Not to a
            // filter above it: DataFusion 55's physical filter pushdown resolves columns by name
            // and sends a filter over two same-named columns, such as TPC-H 7's `n1.n_name` and
            // `n2.n_name`, to one side; apache/datafusion#25296.)
            let moved = match (moved, &join.filter) {
                (LogicalPlan::Join(top), Some(filter)) => {
                    let filter = match &top.filter {
                        Some(f) => f.clone().and(filter.clone()),
                        None => filter.clone(),
                    };
                    LogicalPlan::Join(Join { filter: Some(filter), ..top })
                }
                (moved, _) => moved,
            };
            let restored =
                LogicalPlanBuilder::from(moved).project(join.schema.columns().into_iter().map(Expr::Column))?.build()?;
            return Ok(Transformed::yes(restored));
        }
        Ok(Transformed::no(plan))
    }
}

/// `fact` with `dimension` joined (on `pairs`) to the input of its inner-join tree that holds
/// the fact keys; `None` when `fact` is not such a tree.
fn place(fact: &LogicalPlan, dimension: &LogicalPlan, pairs: &[(Column, Expr)]) -> DFResult<Option<LogicalPlan>> {
    let LogicalPlan::Join(j) = peel(fact) else { return Ok(None) };
    if !plain_inner(j) {
        return Ok(None);
    }
    // The dimension goes further down the side holding the keys, or joins it here.
    let with_dimension = |child: &LogicalPlan| -> DFResult<LogicalPlan> {
        match place(child, dimension, pairs)? {
            Some(p) => Ok(p),
            None => join_with(child.clone(), dimension, pairs),
        }
    };
    let holds = |p: &LogicalPlan| pairs.iter().all(|(c, _)| p.schema().has_column(c));
    let (left, right) = if holds(&j.left) {
        (with_dimension(&j.left)?, j.right.as_ref().clone())
    } else if holds(&j.right) {
        (j.left.as_ref().clone(), with_dimension(&j.right)?)
    } else {
        return Ok(None);
    };
    let (lk, rk): (Vec<Expr>, Vec<Expr>) = j.on.iter().cloned().unzip();
    Ok(Some(LogicalPlanBuilder::from(left).join_with_expr_keys(right, JoinType::Inner, (lk, rk), j.filter.clone())?.build()?))
}

/// Whether `j` is an inner join whose keys never match NULLs (SQL's `=`).
fn plain_inner(j: &Join) -> bool {
    j.join_type == JoinType::Inner && j.null_equality == NullEquality::NullEqualsNothing
}

/// `input JOIN dimension ON pairs`.
fn join_with(input: LogicalPlan, dimension: &LogicalPlan, pairs: &[(Column, Expr)]) -> DFResult<LogicalPlan> {
    let (fact_keys, dimension_keys): (Vec<Expr>, Vec<Expr>) =
        pairs.iter().map(|(c, d)| (Expr::Column(c.clone()), d.clone())).unzip();
    LogicalPlanBuilder::from(input)
        .join_with_expr_keys(dimension.clone(), JoinType::Inner, (fact_keys, dimension_keys), None)?
        .build()
}

/// `plan` without projections that only pass columns through (their names unchanged).
fn peel(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => peel(&p.input),
        _ => plan,
    }
}

/// Whether `plan` reads one small table under a filter that gives the same rows each time.
fn is_dimension(plan: &LogicalPlan) -> bool {
    fn walk(plan: &LogicalPlan, filtered: bool) -> bool {
        match plan {
            LogicalPlan::SubqueryAlias(a) => walk(&a.input, filtered),
            LogicalPlan::Projection(p) => walk(&p.input, filtered),
            LogicalPlan::Filter(f) => repeatable(&f.predicate) && walk(&f.input, true),
            LogicalPlan::TableScan(s) => {
                let filtered = filtered || !s.filters.is_empty();
                let small = source_as_provider(&s.source)
                    .ok()
                    .and_then(|p| p.statistics())
                    .and_then(|st| st.num_rows.get_value().copied())
                    .is_some_and(|n| n <= MAX_DIMENSION_ROWS);
                filtered && small && s.filters.iter().all(repeatable)
            }
            _ => false,
        }
    }
    walk(plan, false)
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use datafusion::arrow::datatypes::SchemaRef;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::catalog::Session;
    use datafusion::common::Statistics;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::TableProvider;
    use datafusion::logical_expr::TableType;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;

    use std::sync::Arc;

    use super::*;

    /// A table that knows its row count.
    #[derive(Debug)]
    struct Counted {
        inner: Arc<dyn TableProvider>,
        rows: usize,
    }

    #[async_trait]
    impl TableProvider for Counted {
        fn schema(&self) -> SchemaRef {
            self.inner.schema()
        }
        fn table_type(&self) -> TableType {
            TableType::Base
        }
        fn statistics(&self) -> Option<Statistics> {
            Some(Statistics { num_rows: Precision::Exact(self.rows), ..Statistics::new_unknown(&self.schema()) })
        }
        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            filters: &[Expr],
            limit: Option<usize>,
        ) -> DFResult<Arc<dyn ExecutionPlan>> {
            self.inner.scan(state, projection, filters, limit).await
        }
    }

    async fn context(rule: bool) -> SessionContext {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(DimensionJoinsFirst));
        }
        for sql in [
            "CREATE TABLE nation AS SELECT * FROM (VALUES (1, 'FRANCE', 1), (2, 'GERMANY', 1), (3, 'JAPAN', 2), (4, 'PERU', 3)) AS t(nkey, name, rkey)",
            "CREATE TABLE region AS SELECT * FROM (VALUES (1, 'EUROPE'), (2, 'ASIA'), (3, 'AMERICA')) AS t(rkey, rname)",
            "CREATE TABLE supplier AS SELECT * FROM (VALUES (10, 1), (11, 2), (12, 3), (13, 4), (14, NULL)) AS t(skey, nkey)",
            "CREATE TABLE customer AS SELECT * FROM (VALUES (20, 2), (21, 1), (22, 3), (23, 4), (24, 1)) AS t(ckey, nkey)",
            "CREATE TABLE orders AS SELECT * FROM (VALUES (100, 20), (101, 21), (102, 22), (103, 23), (104, 24), (105, 20)) AS t(okey, ckey)",
            "CREATE TABLE lineitem AS SELECT * FROM (VALUES (100, 10, 1.5), (100, 11, 2.5), (101, 11, 3.0), (102, 12, 4.0), (103, 13, 5.0), (104, 10, 6.0), (105, 11, 7.0), (105, 14, 8.0)) AS t(okey, skey, price)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        // Memory tables give no row counts; Kura's Delta tables do.
        for name in ["nation", "region", "supplier", "customer", "orders", "lineitem"] {
            let inner = ctx.table_provider(name).await.unwrap();
            let batches = ctx.sql(&format!("SELECT * FROM {name}")).await.unwrap().collect().await.unwrap();
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            ctx.deregister_table(name).unwrap();
            ctx.register_table(name, Arc::new(Counted { inner, rows })).unwrap();
        }
        ctx
    }

    /// Whether the rule moved a join, and that the answer is the same without the rule.
    async fn moved(sql: &str) -> bool {
        let with = context(true).await;
        let plan = with.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let got = pretty_format_batches(&with.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
        let want = pretty_format_batches(&context(false).await.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
        assert_eq!(got, want, "{sql}");
        let without = context(false).await.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        plan.display_indent().to_string() != without.display_indent().to_string()
    }

    #[tokio::test]
    async fn filtered_dimensions_meet_their_table_first_with_the_same_answer() {
        for sql in [
            // TPC-H 7's shape: two filtered nations, an OR across both.
            "SELECT n1.name, n2.name, sum(price) FROM supplier, lineitem, orders, customer, nation n1, nation n2 \
             WHERE supplier.skey = lineitem.skey AND orders.okey = lineitem.okey AND customer.ckey = orders.ckey \
             AND supplier.nkey = n1.nkey AND customer.nkey = n2.nkey \
             AND ((n1.name = 'FRANCE' AND n2.name = 'GERMANY') OR (n1.name = 'GERMANY' AND n2.name = 'FRANCE')) \
             GROUP BY 1, 2 ORDER BY 1, 2",
            // TPC-H 5's shape: a filtered region two joins away from the nation it filters.
            "SELECT name, sum(price) FROM lineitem, supplier, nation, region \
             WHERE lineitem.skey = supplier.skey AND supplier.nkey = nation.nkey AND nation.rkey = region.rkey \
             AND rname = 'EUROPE' GROUP BY name ORDER BY name",
            // Every column still there, in order.
            "SELECT * FROM lineitem, supplier, nation WHERE lineitem.skey = supplier.skey AND supplier.nkey = nation.nkey \
             AND name = 'GERMANY' ORDER BY price",
        ] {
            assert!(moved(sql).await, "{sql}");
        }
        // TPC-H 7's filter over both nations' `name` stays a join filter: as a filter above a
        // join, DataFusion 55's physical pushdown would send it to one nation (by column name).
        let sql = "SELECT n1.name, n2.name FROM supplier, customer, nation n1, nation n2 \
                   WHERE supplier.skey = customer.ckey AND supplier.nkey = n1.nkey AND customer.nkey = n2.nkey \
                   AND ((n1.name = 'FRANCE' AND n2.name = 'GERMANY') OR (n1.name = 'GERMANY' AND n2.name = 'FRANCE'))";
        let plan = context(true).await.sql(sql).await.unwrap().into_optimized_plan().unwrap().display_indent().to_string();
        assert!(
            !plan.lines().any(|l| l.trim_start().starts_with("Filter:") && l.contains("n1.name") && l.contains("n2.name")),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn other_joins_are_left_as_written() {
        for sql in [
            // No filter on the dimension.
            "SELECT sum(price) FROM lineitem, supplier, nation WHERE lineitem.skey = supplier.skey AND supplier.nkey = nation.nkey",
            // An outer join on the way.
            "SELECT sum(price) FROM lineitem LEFT JOIN supplier ON lineitem.skey = supplier.skey JOIN nation ON supplier.nkey = nation.nkey WHERE name = 'FRANCE'",
            // Already next to its table.
            "SELECT count(*) FROM supplier, nation WHERE supplier.nkey = nation.nkey AND name = 'FRANCE'",
            // Written first, DataFusion starts the join order from it.
            "SELECT name, sum(price) FROM region, lineitem, supplier, nation WHERE lineitem.skey = supplier.skey \
             AND supplier.nkey = nation.nkey AND nation.rkey = region.rkey AND rname = 'EUROPE' GROUP BY name ORDER BY name",
        ] {
            assert!(!moved(sql).await, "{sql}");
        }
    }
}
