//! PostgreSQL's text forms of values where Arrow's differ, for casts to text.
//!
//! Arrow casts a timestamp to text in ISO 8601 (`2024-04-01T09:00:00`); PostgreSQL writes
//! `2024-04-01 09:00:00` (and `+00` after a `timestamptz`), which is what clients compare, parse
//! and show. Kura's wire encoder already sends result columns in PostgreSQL's form; this analyzer
//! rule does the same for casts inside a query (`at::text`, `CAST(at AS varchar)`, `'x' || at`),
//! so the text a query computes equals the text the client would have been sent.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Rewrites casts of timestamps to text into [`TimestampText`], keeping the expressions' names.
#[derive(Debug, Default)]
pub(crate) struct PgTextCasts;

impl AnalyzerRule for PgTextCasts {
    fn name(&self) -> &str {
        "kura_pg_text_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            // Expressions of a node read its inputs' columns (a scan's filters read its own).
            let mut schema = DFSchema::empty();
            if node.inputs().is_empty() {
                schema.merge(node.schema());
            }
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let saved = names.save(&expr);
                let rewritten = expr.transform_up(|e| rewrite_cast(e, &schema))?;
                Ok(if rewritten.transformed { rewritten.update_data(|e| saved.restore(e)) } else { rewritten })
            })
        })
        .map(|t| t.data)
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn rewrite_cast(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let (inner, target) = match &expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) if is_text(field.data_type()) => {
            (expr.as_ref(), field.clone())
        }
        _ => return Ok(Transformed::no(expr)),
    };
    // A column of an outer query (correlated subquery) has no type here: leave the cast alone.
    let Ok(DataType::Timestamp(..)) = inner.get_type(schema) else { return Ok(Transformed::no(expr)) };
    let text = Expr::ScalarFunction(ScalarFunction::new_udf(timestamp_text_udf(), vec![inner.clone()]));
    Ok(Transformed::yes(if *target.data_type() == DataType::Utf8 {
        text
    } else {
        Expr::Cast(Cast::new_from_field(Box::new(text), target))
    }))
}

fn timestamp_text_udf() -> Arc<ScalarUDF> {
    static UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    UDF.get_or_init(|| Arc::new(ScalarUDF::from(TimestampText::default()))).clone()
}

/// `pg_timestamp_text(ts)`: a timestamp as PostgreSQL writes it: `YYYY-MM-DD HH:MI:SS`, the
/// fraction of a second without trailing zeros, and for a time-zoned timestamp the offset
/// (`+00`, `+05:30`) in the type's time zone.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    signature: Signature,
}

impl Default for TimestampText {
    fn default() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        "pg_timestamp_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    // Null exactly when the timestamp is, like the cast it replaces (plans compare schemas).
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return Err(DataFusionError::Plan("pg_timestamp_text takes one argument".into()));
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let array = arg.to_array(args.number_rows)?;
        let text: ArrayRef = Arc::new(match array.data_type().clone() {
            DataType::Timestamp(TimeUnit::Second, tz) => format::<TimestampSecondType>(&array, tz.as_deref())?,
            DataType::Timestamp(TimeUnit::Millisecond, tz) => format::<TimestampMillisecondType>(&array, tz.as_deref())?,
            DataType::Timestamp(TimeUnit::Microsecond, tz) => format::<TimestampMicrosecondType>(&array, tz.as_deref())?,
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => format::<TimestampNanosecondType>(&array, tz.as_deref())?,
            other => return Err(DataFusionError::Plan(format!("pg_timestamp_text of {other}"))),
        });
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&text, 0)?)
        } else {
            ColumnarValue::Array(text)
        })
    }
}

fn format<T: ArrowTimestampType>(
    array: &ArrayRef,
    tz: Option<&str>,
) -> Result<datafusion::arrow::array::StringArray> {
    use chrono::{Offset, Timelike};
    use datafusion::arrow::array::temporal_conversions::{as_datetime, as_datetime_with_timezone};
    let tz: Option<Tz> = tz.map(str::parse).transpose()?;
    let values = array.as_primitive::<T>();
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 26);
    for i in 0..values.len() {
        if values.is_null(i) {
            out.append_null();
            continue;
        }
        let v = values.value(i);
        let (local, offset) = match tz {
            Some(tz) => {
                let dt = as_datetime_with_timezone::<T>(v, tz)
                    .ok_or_else(|| DataFusionError::Execution("timestamp out of range".into()))?;
                (dt.naive_local(), Some(dt.offset().fix().local_minus_utc()))
            }
            None => (as_datetime::<T>(v).ok_or_else(|| DataFusionError::Execution("timestamp out of range".into()))?, None),
        };
        let mut text = local.format("%Y-%m-%d %H:%M:%S").to_string();
        let nanos = local.nanosecond() % 1_000_000_000;
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        if let Some(seconds) = offset {
            let sign = if seconds < 0 { '-' } else { '+' };
            let (h, m) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
            text.push_str(&if m == 0 { format!("{sign}{h:02}") } else { format!("{sign}{h:02}:{m:02}") });
        }
        out.append_value(text);
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    async fn text(sql: &str) -> String {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(std::sync::Arc::new(super::PgTextCasts));
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::display::ArrayFormatter::try_new(batches[0].column(0).as_ref(), &Default::default())
            .unwrap()
            .value(0)
            .to_string()
    }

    #[tokio::test]
    async fn timestamps_cast_to_text_as_postgres_writes_them() {
        assert_eq!(text("SELECT CAST(TIMESTAMP '2024-04-01 09:00:00' AS TEXT)").await, "2024-04-01 09:00:00");
        assert_eq!(text("SELECT CAST(TIMESTAMP '2024-04-01 09:00:00.5' AS VARCHAR)").await, "2024-04-01 09:00:00.5");
        assert_eq!(
            text("SELECT arrow_cast(TIMESTAMP '2024-04-01 09:00:00', 'Timestamp(Microsecond, Some(\"+09:00\"))')::text")
                .await,
            "2024-04-01 09:00:00+09"
        );
        assert_eq!(text("SELECT 'at ' || TIMESTAMP '2024-04-01 09:00:00'").await, "at 2024-04-01 09:00:00");
        assert_eq!(text("SELECT CAST(DATE '2024-04-01' AS TEXT)").await, "2024-04-01");
    }
}
