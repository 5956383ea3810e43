//! Which predicates may run on rows a policy hides (PostgreSQL's LEAKPROOF, Databend's secure
//! filter): only those that cannot fail, have no side effects and reveal nothing but their
//! boolean result. A division, a cast that can fail, a function that errors on some input, a
//! subquery or a user function is not leak-proof: `WHERE 1 / (CASE WHEN secret = 'x' THEN 0
//! ELSE 1 END) = 1` would fail exactly when a hidden row holds `x`.
//!
//! Leak-proof predicates are pushed below the policy so that they still prune files and row
//! groups; the others are evaluated above it, on visible (masked) rows only.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, ExprSchemable, Like, Operator, expr::InList};

/// Built-in functions that return a value for every input (no errors, no side effects).
const LEAKPROOF_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "trim",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "coalesce",
    "nullif",
    "starts_with",
    "ends_with",
    "concat",
    "isnan",
    "iszero",
    // Kura's: a date in, a date out, for every date.
    "date_floor",
];

/// Whether `expr`, evaluated against rows of `schema`, is leak-proof.
pub(crate) fn is_leakproof(expr: &Expr, schema: &DFSchema) -> bool {
    match expr {
        // A parameter is bound to a literal before the plan runs.
        Expr::Column(_) | Expr::OuterReferenceColumn(..) | Expr::Literal(..) | Expr::Placeholder(_) => true,
        Expr::Alias(a) => is_leakproof(&a.expr, schema),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            (leakproof_operator(*op) || safe_arithmetic(left, *op, right, schema))
                && is_leakproof(left, schema)
                && is_leakproof(right, schema)
        }
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::IsNotUnknown(e) => is_leakproof(e, schema),
        Expr::Between(Between { expr, low, high, .. }) => {
            is_leakproof(expr, schema) && is_leakproof(low, schema) && is_leakproof(high, schema)
        }
        Expr::InList(InList { expr, list, .. }) => {
            is_leakproof(expr, schema) && list.iter().all(|e| is_leakproof(e, schema))
        }
        // A literal LIKE pattern cannot fail on any input; a pattern taken from data could.
        // (SIMILAR TO compiles a regular expression, which fails for any row when invalid:
        // evaluated below the policy, that failure would tell that hidden rows exist.)
        Expr::Like(Like { expr, pattern, escape_char: None, .. }) => {
            matches!(pattern.as_ref(), Expr::Literal(..)) && is_leakproof(expr, schema)
        }
        Expr::TryCast(c) => is_leakproof(&c.expr, schema),
        // A parameter's cast runs on the bound value, once, whatever the rows.
        Expr::Cast(Cast { expr, .. }) if matches!(expr.as_ref(), Expr::Placeholder(_)) => true,
        // A literal that casts now casts the same on every row (a bound text parameter).
        Expr::Cast(Cast { expr, field }) if matches!(expr.as_ref(), Expr::Literal(..)) => {
            matches!(expr.as_ref(), Expr::Literal(v, _) if v.cast_to(field.data_type()).is_ok())
        }
        Expr::Cast(Cast { expr, field }) => {
            is_leakproof(expr, schema)
                && expr.get_type(schema).is_ok_and(|from| infallible_cast(&from, field.data_type()))
        }
        Expr::ScalarFunction(f) => {
            let name = f.func.name();
            let known = LEAKPROOF_FUNCTIONS.contains(&name)
                // A valid literal unit: these then return a value for every date.
                || (matches!(name, "date_part" | "date_trunc")
                    && matches!(f.args.first(), Some(Expr::Literal(ScalarValue::Utf8(Some(u)) | ScalarValue::Utf8View(Some(u)), _))
                        if DATE_UNITS.contains(&u.to_ascii_lowercase().as_str())));
            known && f.args.iter().all(|a| is_leakproof(a, schema))
        }
        _ => false,
    }
}

/// Units `date_part` and `date_trunc` accept.
const DATE_UNITS: &[&str] = &["year", "quarter", "month", "week", "day", "hour", "minute", "second", "dow", "doy"];

/// `+`, `-` and `*` on integers and floats (DataFusion's integer arithmetic wraps rather than
/// fails), and `/` or `%` by a positive literal: none of them can fail on any row.
fn safe_arithmetic(left: &Expr, op: Operator, right: &Expr, schema: &DFSchema) -> bool {
    let numeric = |e: &Expr| e.get_type(schema).is_ok_and(|t| t.is_integer() || t.is_floating());
    if !(numeric(left) && numeric(right)) {
        return false;
    }
    match op {
        Operator::Plus | Operator::Minus | Operator::Multiply => true,
        Operator::Divide | Operator::Modulo => match right {
            // Positive: `i64::MIN / -1` overflows.
            Expr::Literal(v, _) => {
                ScalarValue::new_zero(&v.data_type()).is_ok_and(|zero| !v.is_null() && v.partial_cmp(&zero) == Some(std::cmp::Ordering::Greater))
            }
            _ => false,
        },
        _ => false,
    }
}

fn leakproof_operator(op: Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or | IsDistinctFrom | IsNotDistinctFrom | StringConcat
    )
}

/// Casts that succeed for every value of `from`.
fn infallible_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || matches!(from, Null) {
        return true;
    }
    match (from, to) {
        (_, Utf8 | LargeUtf8 | Utf8View) => !matches!(from, Binary | LargeBinary | BinaryView | FixedSizeBinary(_)),
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64)
        | (Int16, Int32 | Int64 | Float32 | Float64)
        | (Int32, Int64 | Float64)
        | (Int64, Float64)
        | (UInt8, Int16 | Int32 | Int64 | UInt16 | UInt32 | UInt64 | Float32 | Float64)
        | (UInt16, Int32 | Int64 | UInt32 | UInt64 | Float32 | Float64)
        | (UInt32, Int64 | UInt64 | Float64)
        | (Float32, Float64)
        | (Date32, Date64)
        | (Timestamp(..), Date32 | Date64) => true,
        // Dates to timestamps (how `date_trunc('month', d)` reads a date): arrow multiplies
        // without a check, so a date beyond the timestamp range (after 2262 in nanoseconds)
        // wraps in release builds rather than failing. Debug builds' overflow checks would
        // panic instead; they are not what Kura ships.
        (Date32 | Date64, Timestamp(..)) => true,
        (Dictionary(_, v), t) => infallible_cast(v, t),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{cast, col, lit};

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]))
        .unwrap()
    }

    #[test]
    fn comparisons_are_leakproof_arithmetic_and_fallible_casts_are_not() {
        let s = schema();
        assert!(is_leakproof(&col("n").eq(lit(3)).and(col("s").like(lit("ab%"))), &s));
        assert!(is_leakproof(&cast(col("n"), DataType::Int64).gt(lit(1i64)), &s));
        assert!(is_leakproof(&col("s").in_list(vec![lit("a"), lit("b")], false), &s));
        // 1 / (n - 3): fails exactly when a hidden row has n = 3.
        assert!(!is_leakproof(&(lit(1) / (col("n") - lit(3))).eq(lit(1)), &s));
        // CAST(s AS INT) fails on non-numeric text.
        assert!(!is_leakproof(&cast(col("s"), DataType::Int32).eq(lit(1)), &s));
        // A pattern from data can be invalid.
        assert!(!is_leakproof(&col("s").like(col("s")), &s));
    }
}
