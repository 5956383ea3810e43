//! Correlated scalar subqueries as PostgreSQL runs them.
//!
//! In PostgreSQL a scalar subquery may return no row (its value is NULL) or one row; a second row
//! is an error at run time ("more than one row returned by a subquery used as an expression").
//! DataFusion plans a correlated scalar subquery only if it is aggregated (it turns it into a join
//! that must give one row per outer row), so SQLAlchemy's column reflection, which reads each
//! column's default as `(SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE
//! pg_attribute.atthasdef AND adrelid = attrelid AND adnum = attnum)`, does not plan. This
//! analyzer rule rewrites such a subquery into a form DataFusion decorrelates, with the same
//! answer:
//!
//! - the subquery's rows go through [`SingleRow`], an aggregate that keeps the first value and
//!   counts the rows, and the outer query reads it with [`SubqueryValue`], which fails if the
//!   subquery had a second row, as PostgreSQL does. The check is outside the aggregate because
//!   DataFusion computes the aggregate for every correlation key, also those no outer row asks
//!   for (PostgreSQL fails only when an outer row's subquery has two rows);
//! - conjuncts of its `WHERE` that read only the outer row (`pg_attribute.atthasdef`) move out of
//!   it: `CASE WHEN cond THEN (subquery) END` (the subquery has no row when they do not hold), as
//!   DataFusion cannot decorrelate an aggregate below them;
//! - if its value reads the outer row too (`json_build_object('always', attidentity = 'a',
//!   'start', seqstart, ...)`), the subquery returns the inner columns it needs as one struct and
//!   the value is computed outside it, NULL when the subquery has no row.
//!
//! Subqueries DataFusion plans already (aggregated ones, at most one row) are left alone.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{conjunction, format_state_name, split_conjunction};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, Filter, LogicalPlan, LogicalPlanBuilder,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Subquery, Volatility, lit, when,
};
use datafusion::optimizer::AnalyzerRule;

/// Rewrites correlated scalar subqueries DataFusion cannot plan (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CorrelatedScalarSubqueries;

impl AnalyzerRule for CorrelatedScalarSubqueries {
    fn name(&self) -> &str {
        "kura_correlated_scalar_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let saved = names.save(&expr);
                let rewritten = expr.transform_up(|e| match e {
                    Expr::ScalarSubquery(subquery) => match rewrite(&subquery)? {
                        Some(new) => Ok(Transformed::yes(new)),
                        None => Ok(Transformed::no(Expr::ScalarSubquery(subquery))),
                    },
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(if rewritten.transformed { rewritten.update_data(|e| saved.restore(e)) } else { rewritten })
            })
        })
        .map(|t| t.data)
    }
}

/// True if `e` reads the outer row and nothing of the subquery's own (no column, no subquery).
fn outer_only(e: &Expr) -> bool {
    e.contains_outer()
        && !e.any_column_refs()
        && !e
            .exists(|x| Ok(matches!(x, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_))))
            .unwrap_or(true)
}

/// `e` evaluated in the outer query: its outer references become plain columns.
fn to_outer(e: Expr) -> Result<Expr> {
    e.transform_up(|x| match x {
        Expr::OuterReferenceColumn(_, column) => Ok(Transformed::yes(Expr::Column(column))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn scalar_subquery(plan: LogicalPlan, like: &Subquery) -> Expr {
    Expr::ScalarSubquery(Subquery {
        outer_ref_columns: plan.all_out_ref_exprs(),
        subquery: Arc::new(plan),
        spans: like.spans.clone(),
    })
}

/// The rewritten expression for a scalar subquery, or `None` to leave it as it is.
fn rewrite(subquery: &Subquery) -> Result<Option<Expr>> {
    if subquery.outer_ref_columns.is_empty() {
        return Ok(None);
    }
    let plan = subquery.subquery.as_ref();
    let LogicalPlan::Projection(projection) = plan else { return Ok(None) };
    let [value] = projection.expr.as_slice() else { return Ok(None) };
    let at_most_one_row = plan.max_rows().is_some_and(|n| n <= 1);
    let aggregated = match projection.input.as_ref() {
        LogicalPlan::Aggregate(_) => true,
        LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)),
        _ => false,
    };
    if at_most_one_row || aggregated {
        return Ok(None);
    }
    let value_type = projection.schema.field(0).data_type().clone();
    let value = value.clone().unalias();

    // Conditions on the outer row alone leave the subquery.
    let mut input = projection.input.as_ref().clone();
    let mut guards = vec![];
    if let LogicalPlan::Filter(filter) = &input {
        let (outer, inner): (Vec<&Expr>, Vec<&Expr>) = split_conjunction(&filter.predicate).into_iter().partition(|e| outer_only(e));
        if !outer.is_empty() {
            guards = outer.into_iter().cloned().map(to_outer).collect::<Result<_>>()?;
            input = match conjunction(inner.into_iter().cloned()) {
                Some(predicate) => LogicalPlan::Filter(Filter::try_new(predicate, filter.input.clone())?),
                None => filter.input.as_ref().clone(),
            };
        }
    }

    let single = AggregateUDF::from(SingleRow::new());
    let read = |plan: LogicalPlan| ScalarUDF::from(SubqueryValue::new()).call(vec![scalar_subquery(plan, subquery)]);
    let result = if !value.contains_outer() {
        let plan = LogicalPlanBuilder::from(input).aggregate(Vec::<Expr>::new(), vec![single.call(vec![value])])?.build()?;
        read(plan)
    } else {
        // The subquery yields the inner columns the value reads, as one struct; the value is
        // computed outside, where the outer row is.
        let mut columns: Vec<Column> = value.column_refs().into_iter().cloned().collect();
        columns.sort_by_key(|c| c.flat_name());
        let mut fields = vec![];
        for (i, c) in columns.iter().enumerate() {
            fields.push(lit(format!("c{i}")));
            fields.push(Expr::Column(c.clone()));
        }
        if fields.is_empty() {
            fields = vec![lit("c"), lit(true)];
        }
        let row = datafusion::functions::core::named_struct().call(fields);
        let plan = LogicalPlanBuilder::from(input).aggregate(Vec::<Expr>::new(), vec![single.call(vec![row])])?.build()?;
        let row = read(plan);
        let outside = value
            .transform_up(|x| match x {
                Expr::Column(c) => {
                    let i = columns.iter().position(|k| *k == c).expect("collected above");
                    Ok(Transformed::yes(datafusion::functions::core::get_field().call(vec![row.clone(), lit(format!("c{i}"))])))
                }
                Expr::OuterReferenceColumn(_, c) => Ok(Transformed::yes(Expr::Column(c))),
                other => Ok(Transformed::no(other)),
            })?
            .data;
        let null = Expr::Literal(ScalarValue::try_from(&value_type)?, None);
        when(row.is_null(), null).otherwise(outside)?
    };
    Ok(Some(match conjunction(guards) {
        Some(guard) => when(guard, result).end()?,
        None => result,
    }))
}

/// `kura_single_row(x)`: the first value of a subquery's rows and how many there were (1 or 2,
/// more count as 2), as `{value, rows}`; NULL without rows. Added by [`CorrelatedScalarSubqueries`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SingleRow {
    signature: Signature,
}

impl SingleRow {
    fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

fn row_fields(value: &DataType) -> Fields {
    Fields::from(vec![Field::new("value", value.clone(), true), Field::new("rows", DataType::Int64, false)])
}

/// PostgreSQL's message (SQLSTATE 21000).
const TOO_MANY_ROWS: &str = "more than one row returned by a subquery used as an expression";

impl AggregateUDFImpl for SingleRow {
    fn name(&self) -> &str {
        "kura_single_row"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(row_fields(&args[0])))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let DataType::Struct(fields) = args.return_type() else {
            return Err(DataFusionError::Internal("kura_single_row returns a struct".into()));
        };
        let value_type = fields[0].data_type().clone();
        Ok(Box::new(SingleRowAccumulator { value: ScalarValue::try_from(&value_type)?, value_type, rows: 0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let DataType::Struct(fields) = args.return_type() else {
            return Err(DataFusionError::Internal("kura_single_row returns a struct".into()));
        };
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "value"), fields[0].data_type().clone(), true)),
            Arc::new(Field::new(format_state_name(args.name, "rows"), DataType::Int64, true)),
        ])
    }
}

#[derive(Debug)]
struct SingleRowAccumulator {
    value: ScalarValue,
    value_type: DataType,
    rows: i64,
}

impl SingleRowAccumulator {
    fn add(&mut self, values: &ArrayRef, row: usize, rows: i64) -> Result<()> {
        if self.rows == 0 {
            self.value = ScalarValue::try_from_array(values, row)?;
        }
        self.rows = (self.rows + rows).min(2);
        Ok(())
    }
}

impl Accumulator for SingleRowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[0].len().min(2) {
            self.add(&values[0], row, 1)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fields = row_fields(&self.value_type);
        if self.rows == 0 {
            return ScalarValue::try_from(&DataType::Struct(fields));
        }
        let mut builder = ScalarStructBuilder::new();
        builder = builder.with_scalar(fields[0].as_ref().clone(), self.value.clone());
        builder = builder.with_scalar(fields[1].as_ref().clone(), ScalarValue::Int64(Some(self.rows)));
        builder.build()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::Int64(Some(self.rows))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[1].as_primitive::<Int64Type>();
        for i in 0..rows.len() {
            let n = if rows.is_null(i) { 0 } else { rows.value(i) };
            if n > 0 {
                self.add(&states[0], i, n)?;
            }
        }
        Ok(())
    }
}

/// `kura_subquery_value(r)`: the value of a [`SingleRow`] result, NULL for none, an error if
/// the subquery had a second row.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SubqueryValue {
    signature: Signature,
}

impl SubqueryValue {
    fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for SubqueryValue {
    fn name(&self) -> &str {
        "kura_subquery_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::Struct(fields) if fields.len() == 2 => Ok(fields[0].data_type().clone()),
            other => Err(DataFusionError::Internal(format!("kura_subquery_value of {other}"))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(args.number_rows)?;
        let rows = array.as_struct();
        let counts = rows.column(1).as_primitive::<Int64Type>();
        if (0..rows.len()).any(|i| rows.is_valid(i) && counts.value(i) > 1) {
            return Err(DataFusionError::Execution(TOO_MANY_ROWS.into()));
        }
        let absent = datafusion::arrow::compute::is_null(rows)?;
        let values = datafusion::arrow::compute::nullif(rows.column(0).as_ref(), &absent)?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&values, 0)?)
        } else {
            ColumnarValue::Array(values)
        })
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int32Type};
    use datafusion::prelude::SessionContext;

    /// Rows of `SELECT id, <text>` as (id, text).
    async fn run(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<(i32, Option<String>)>> {
        let mut out = vec![];
        for batch in ctx.sql(sql).await?.collect().await? {
            let text = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
            let (ids, text) = (batch.column(0).as_primitive::<Int32Type>(), text.as_string::<i32>());
            for i in 0..batch.num_rows() {
                out.push((ids.value(i), (!text.is_null(i)).then(|| text.value(i).to_string())));
            }
        }
        Ok(out)
    }

    async fn context() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(std::sync::Arc::new(super::CorrelatedScalarSubqueries));
        for sql in [
            "CREATE TABLE o (id INT, flag BOOLEAN) AS VALUES (1, true), (2, true), (3, false)",
            "CREATE TABLE i (oid INT, v TEXT) AS VALUES (1, 'one'), (3, 'three'), (4, 'x'), (4, 'y')",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    fn owned(rows: &[(i32, Option<&str>)]) -> Vec<(i32, Option<String>)> {
        rows.iter().map(|(i, v)| (*i, v.map(str::to_string))).collect()
    }

    #[tokio::test]
    async fn correlated_scalar_subqueries_plan_with_postgres_answers() {
        let ctx = context().await;
        // No row is NULL, one row its value; a condition on the outer row alone is kept.
        let got = run(&ctx, "SELECT id, (SELECT v FROM i WHERE o.flag AND i.oid = o.id) FROM o ORDER BY id").await.unwrap();
        assert_eq!(got, owned(&[(1, Some("one")), (2, None), (3, None)]));
        // The value may read the outer row too.
        let got = run(&ctx, "SELECT id, (SELECT v || CAST(o.id AS TEXT) FROM i WHERE i.oid = o.id) FROM o ORDER BY id")
            .await
            .unwrap();
        assert_eq!(got, owned(&[(1, Some("one1")), (2, None), (3, Some("three3"))]));
    }

    #[tokio::test]
    async fn a_second_row_is_an_error() {
        let ctx = context().await;
        // Only where an outer row's subquery has two rows (k = 4 has two, no outer row asks).
        run(&ctx, "SELECT id, (SELECT v FROM i WHERE i.oid = o.id) FROM o").await.unwrap();
        ctx.sql("INSERT INTO o VALUES (4, true)").await.unwrap().collect().await.unwrap();
        let err = run(&ctx, "SELECT id, (SELECT v FROM i WHERE i.oid = o.id) FROM o").await.unwrap_err();
        assert!(err.to_string().contains(super::TOO_MANY_ROWS), "{err}");
    }
}
