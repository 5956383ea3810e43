//! Common table expressions used more than once run once, as in PostgreSQL (12 and later, for a
//! CTE referenced twice or more): DataFusion inlines a CTE at every reference, so
//! `WITH f AS (SELECT ... GROUP BY ...) SELECT ... FROM f JOIN (... f ...)` computed `f` twice.
//!
//! [`materialize_repeated`] runs on a query's plan after Kura's policies were applied to it
//! ([`crate::session::Session::police_plan`]): it finds identical aliased subplans that occur
//! more than once and contain an aggregate (cheap to keep, and what analysts' cohort CTEs are),
//! runs each once, and puts its rows in place of every occurrence. The rows are the ones the
//! policed plan would have produced at each occurrence, so no policy is bypassed; a volatile
//! function in such a CTE gives one value for all its uses, as PostgreSQL's materialised CTEs do.
//!
//! Limits: a result larger than [`MAX_ROWS`] rows or [`MAX_BYTES`] bytes is not kept (the plan is
//! left as it was); correlated subplans and plans under `EXPLAIN` are left alone.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, SubqueryAlias};
use futures::TryStreamExt;

use crate::{Error, Result};

/// Rows kept per materialised CTE at most.
pub(crate) const MAX_ROWS: usize = 1_000_000;
/// Bytes kept per materialised CTE at most.
pub(crate) const MAX_BYTES: usize = 256 << 20;

/// Aliased subplans that occur at least twice in `plan` (subqueries included) and contain an
/// aggregate, each once.
fn repeated(plan: &LogicalPlan) -> Vec<SubqueryAlias> {
    let mut seen: Vec<(SubqueryAlias, usize)> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::SubqueryAlias(alias) = node {
            match seen.iter_mut().find(|(s, _)| s == alias) {
                Some((_, n)) => *n += 1,
                None => seen.push((alias.clone(), 1)),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    seen.into_iter()
        .filter(|(alias, n)| *n > 1 && has_aggregate(&alias.input) && !alias.input.contains_outer_reference())
        .map(|(alias, _)| alias)
        .collect()
}

fn has_aggregate(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        if matches!(node, LogicalPlan::Aggregate(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Runs each repeated CTE of `plan` once and reads its rows at every use (see the module).
pub(crate) async fn materialize_repeated(state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return Ok(plan);
    }
    let mut plan = plan;
    // One at a time: keeping an outer CTE removes the repeats of those inside it.
    let mut too_big: Vec<SubqueryAlias> = Vec::new();
    while let Some(alias) = repeated(&plan).into_iter().find(|a| !too_big.contains(a)) {
        let Some(rows) = run_bounded(state, &alias.input).await? else {
            too_big.push(alias);
            continue;
        };
        let schema = Arc::new(alias.input.schema().as_arrow().clone());
        let batches: Vec<RecordBatch> = match rows
            .into_iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<_, _>>()
        {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(alias = %alias.alias, error = %e, "a repeated CTE's rows do not fit its schema; not kept");
                too_big.push(alias);
                continue;
            }
        };
        let table = MemTable::try_new(schema, vec![batches]).map_err(Error::from_datafusion)?;
        let scan = LogicalPlanBuilder::scan(alias.alias.clone(), provider_as_source(Arc::new(table)), None)?.build()?;
        let replacement = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(scan), alias.alias.clone())?);
        plan = plan
            .transform_up_with_subqueries(|node| {
                Ok(match &node {
                    LogicalPlan::SubqueryAlias(a) if *a == alias => Transformed::yes(replacement.clone()),
                    _ => Transformed::no(node),
                })
            })
            .map_err(Error::from_datafusion)?
            .data;
    }
    Ok(plan)
}

/// The rows of `plan`, unless there are more than the limits allow.
async fn run_bounded(state: &SessionState, plan: &LogicalPlan) -> Result<Option<Vec<RecordBatch>>> {
    // As any query runs (an error from a policed read names no value).
    let mut stream = crate::session::start_plan(state, plan).await?;
    let (mut rows, mut bytes, mut out) = (0usize, 0usize, Vec::new());
    while let Some(batch) = stream.try_next().await.map_err(Error::from_datafusion)? {
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if rows > MAX_ROWS || bytes > MAX_BYTES {
            return Ok(None);
        }
        out.push(batch);
    }
    Ok(Some(out))
}
