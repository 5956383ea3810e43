//! `UPDATE` and `DELETE` by a user who sees a table through row filters and masks: they touch
//! only the rows the user sees, and read masked columns as the user sees them (PostgreSQL's
//! row-level security for writes, and its `security_barrier` for the predicate).
//!
//! delta-rs runs the write with a predicate over the raw columns and cannot plan subqueries, so
//! the row filters (which may read a consent table) are turned into a predicate without any:
//! visibility is a function of the filters' parameter columns, so the distinct parameter values
//! of the rows the user may NOT see are computed first (all rows' values EXCEPT the visible
//! rows' values) and the write's predicate becomes `<params not among those> AND <user
//! predicate>`.
//!
//! SECURITY:
//! - The user's WHERE and SET expressions must be leak-proof ([`super::leakproof`]): delta-rs
//!   evaluates them on every row of the files it rewrites, hidden rows included, and the
//!   optimiser is free to reorder `visible AND predicate` (DataFusion even rewrites a boolean
//!   `CASE WHEN visible THEN p ELSE false END` into an AND). An expression that can fail
//!   (`1 / (x - 3)`) would tell, by failing, about a hidden row; it is refused whatever the data.
//! - The hidden values are computed on the table version the write starts from; if another
//!   writer commits in between, the write is refused (SQLSTATE 40001) rather than run against
//!   rows the computation did not see.
//! - Masked columns read as their masks in WHERE when the mask cannot fail; a mask that can fail
//!   (it would run on hidden rows) refuses the predicate. SET may not write a masked or hidden
//!   column, nor compute from one (it would write the masked value back as the raw one).
//! - Users restricted to aggregates cannot update or delete: the row count is row-level data.
//! - INSERT, TRUNCATE and COPY FROM into a table the user sees through policies stay refused.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit, when};
use futures::TryStreamExt;

use super::table::PolicedTable;
use crate::session::Session;
use crate::{Error, Result};

/// At most this many distinct hidden parameter values (e.g. opted-out persons) per write.
const MAX_HIDDEN: usize = 1_000_000;

/// What a write through policies may touch and read.
pub(crate) struct WriteGuard {
    label: String,
    /// True on the rows the user sees; over bare raw column names, without subqueries.
    visible: Expr,
    /// Masked columns and their masks, over bare raw column names.
    masks: HashMap<String, Expr>,
    /// Masked columns whose mask can fail.
    fallible: HashSet<String>,
    /// Raw columns the user does not see at all (projection policies).
    hidden_columns: HashSet<String>,
    /// The table's columns by bare name, as delta-rs evaluates expressions over them.
    raw: DFSchema,
}

/// The guard for a write by this session's user to `policed`, whose row filters take
/// `params` (the raw columns bound to their parameters). `raw` is the table's schema.
pub(crate) async fn guard(
    session: &Session,
    policed: &PolicedTable,
    raw: &Schema,
    params: &[String],
    has_row_filters: bool,
) -> Result<WriteGuard> {
    let label = policed.label.clone();
    if policed.aggregation().is_some() {
        return Err(Error::PermissionDenied(format!(
            "permission denied: {label} may only be read in aggregates by this user, and cannot be updated or deleted from"
        )));
    }
    let plan = policed.plan();
    let mut masks = HashMap::new();
    let mut fallible = HashSet::new();
    if let LogicalPlan::Projection(projection) = plan {
        for (expr, field) in projection.expr.iter().zip(projection.schema.fields()) {
            let inner = expr.clone().unalias();
            if matches!(&inner, Expr::Column(c) if c.name == *field.name()) {
                continue;
            }
            if !super::leakproof::is_leakproof(&inner, projection.input.schema()) {
                fallible.insert(field.name().clone());
            }
            masks.insert(field.name().clone(), super::table::unqualify(inner).map_err(Error::from_datafusion)?);
        }
    }
    let seen: HashSet<&String> = plan.schema().fields().iter().map(|f| f.name()).collect();
    let hidden_columns = raw.fields().iter().map(|f| f.name()).filter(|n| !seen.contains(n)).cloned().collect();

    let mut filter = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::Filter(f) = node {
            filter = Some(f.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let visible = match filter {
        Some(filter) => visibility(session, filter, raw, params, &label).await?,
        None if !has_row_filters => lit(true),
        // SECURITY: fail closed if the policy plan is not the shape this module reads.
        None => {
            return Err(Error::Unsupported(format!(
                "UPDATE/DELETE through the row filters of {label}: the rows they hide cannot be determined"
            )));
        }
    };
    let raw = DFSchema::try_from(raw.clone()).map_err(Error::from_datafusion)?;
    Ok(WriteGuard { label, visible, masks, fallible, hidden_columns, raw })
}

/// The row filters as a predicate without subqueries (see the module documentation).
async fn visibility(
    session: &Session,
    filter: datafusion::logical_expr::Filter,
    raw: &Schema,
    params: &[String],
    label: &str,
) -> Result<Expr> {
    let input = filter.input.as_ref().clone();
    let visible_rows = LogicalPlan::Filter(filter);
    if params.is_empty() {
        // A filter without parameters does not depend on the row: all visible or none.
        let any = LogicalPlanBuilder::from(visible_rows).limit(0, Some(1))?.build()?;
        let all = LogicalPlanBuilder::from(input).limit(0, Some(1))?.build()?;
        let (any, all) = (rows(session, any).await?, rows(session, all).await?);
        return Ok(lit(any.iter().map(|b| b.num_rows()).sum::<usize>() > 0 || all.iter().all(|b| b.num_rows() == 0)));
    }
    let columns: Vec<Expr> = params.iter().map(|c| Expr::Column(Column::from_name(c))).collect();
    let every = LogicalPlanBuilder::from(input).project(columns.clone())?.build()?;
    let seen = LogicalPlanBuilder::from(visible_rows).project(columns)?.build()?;
    let hidden = LogicalPlanBuilder::except(every, seen, false)?;
    let hidden = LogicalPlanBuilder::from(hidden).limit(0, Some(MAX_HIDDEN + 1))?.build()?;
    let batches = rows(session, hidden).await?;
    let count: usize = batches.iter().map(|b| b.num_rows()).sum();
    if count > MAX_HIDDEN {
        return Err(Error::Unsupported(format!(
            "UPDATE/DELETE through the row filters of {label}: they hide more than {MAX_HIDDEN} distinct values of ({}); ask an operator",
            params.join(", ")
        )));
    }
    // The literals take the columns' types in the table as delta-rs reads it.
    let types: Vec<_> = params
        .iter()
        .map(|p| raw.field_with_name(p).map(|f| f.data_type().clone()).map_err(|e| Error::from_datafusion(e.into())))
        .collect::<Result<_>>()?;
    let value = |batch: &datafusion::arrow::array::RecordBatch, column: usize, row: usize| -> Result<ScalarValue> {
        ScalarValue::try_from_array(batch.column(column), row)
            .and_then(|v| v.cast_to(&types[column]))
            .map_err(Error::from_datafusion)
    };
    if params.len() == 1 {
        let column = Expr::Column(Column::new_unqualified(&params[0]));
        let mut values = Vec::with_capacity(count);
        let mut null_hidden = false;
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let v = value(batch, 0, row)?;
                if v.is_null() { null_hidden = true } else { values.push(lit(v)) }
            }
        }
        let not_hidden = if values.is_empty() { lit(true) } else { column.clone().in_list(values, true) };
        return Ok(when(column.is_null(), lit(!null_hidden)).otherwise(not_hidden)?);
    }
    // Several parameter columns: NOT (tuple 1 OR tuple 2 ...), NULL-safe equality per column.
    let mut tuples = Vec::with_capacity(count);
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let mut tuple = Vec::with_capacity(params.len());
            for (i, p) in params.iter().enumerate() {
                tuple.push(Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                    Box::new(Expr::Column(Column::new_unqualified(p))),
                    datafusion::logical_expr::Operator::IsNotDistinctFrom,
                    Box::new(lit(value(batch, i, row)?)),
                )));
            }
            tuples.push(tuple.into_iter().reduce(Expr::and).expect("at least one column"));
        }
    }
    Ok(match tuples.into_iter().reduce(Expr::or) {
        Some(hidden) => Expr::Not(Box::new(hidden)),
        None => lit(true),
    })
}

async fn rows(session: &Session, plan: LogicalPlan) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
    // SECURITY: these plans read raw rows; an error could quote one.
    let stream = session.stream_plan(plan).await.map_err(|e| match e {
        Error::DataFusion(d) => Error::withheld(d),
        other => other,
    })?;
    stream.try_collect().await.map_err(Error::withheld)
}

impl WriteGuard {
    fn check_columns(&self, expr: &Expr, what: &str, masked_ok: bool) -> Result<()> {
        for column in expr.column_refs() {
            let name = &column.name;
            if self.hidden_columns.contains(name) {
                return Err(Error::UndefinedObject(format!("column \"{name}\" does not exist")));
            }
            if self.masks.contains_key(name) && (!masked_ok || self.fallible.contains(name)) {
                return Err(Error::PermissionDenied(format!(
                    "permission denied: column {name} of {} is masked for this user and cannot be used in {what}",
                    self.label
                )));
            }
        }
        Ok(())
    }

    /// Refuses an expression that could fail on a hidden row.
    fn check_leakproof(&self, expr: &Expr, what: &str) -> Result<()> {
        if super::leakproof::is_leakproof(expr, &self.raw) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "permission denied: {what} {} could fail on a row of {} this user cannot see; through policies it may use comparisons, IN, LIKE, + - * and division by a constant",
            expr.human_display(),
            self.label
        )))
    }

    /// The write's predicate: the user's `WHERE` (over what the user sees), on visible rows only,
    /// typed as delta-rs will evaluate it.
    pub(crate) fn predicate(&self, user: Option<Expr>) -> Result<Expr> {
        let Some(user) = user else { return self.coerce(self.visible.clone()) };
        self.check_columns(&user, "the WHERE of an UPDATE or DELETE (its mask can fail)", true)?;
        self.check_leakproof(&user, "the condition")?;
        let seen = user
            .transform(|e| match e {
                Expr::Column(c) => match self.masks.get(&c.name) {
                    Some(mask) => Ok(Transformed::yes(mask.clone())),
                    None => Ok(Transformed::no(Expr::Column(c))),
                },
                other => Ok(Transformed::no(other)),
            })
            .map_err(Error::from_datafusion)?
            .data;
        self.coerce(self.visible.clone().and(seen))
    }

    fn coerce(&self, expr: Expr) -> Result<Expr> {
        let mut coercion = datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter::new(&self.raw);
        Ok(expr.rewrite(&mut coercion).map_err(Error::from_datafusion)?.data)
    }

    /// Checks `SET column = value`.
    pub(crate) fn check_assignment(&self, column: &str, value: &Expr) -> Result<()> {
        if self.hidden_columns.contains(column) {
            return Err(Error::UndefinedObject(format!("column \"{column}\" of relation \"{}\" does not exist", self.label)));
        }
        if self.masks.contains_key(column) {
            return Err(Error::PermissionDenied(format!(
                "permission denied: column {column} of {} is masked for this user and cannot be updated",
                self.label
            )));
        }
        self.check_columns(value, "a SET value", false)?;
        self.check_leakproof(value, "the value")
    }
}
