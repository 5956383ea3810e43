//! Argument plumbing shared by every function: literal checks at planning and execution, string
//! and date access over Arrow arrays, and scalar-in/scalar-out.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::{ColumnarValue, DocSection, ReturnFieldArgs};

use crate::error::Error;

/// Where Kura's functions appear in generated function documentation.
pub(crate) const SECTION: DocSection = DocSection {
    include: true,
    label: "Kura anonymisation functions",
    description: Some("Pseudonymisation and generalisation for Japanese medical data."),
};

/// The nullable output field of a function.
pub(crate) fn field(name: &str, data_type: DataType) -> FieldRef {
    Arc::new(Field::new(name, data_type, true))
}

/// At planning: the literal value of argument `i`, `Ok(None)` if the (optional) argument is
/// absent, or [`Error::NotLiteral`] if it is an expression.
pub(crate) fn planned_literal<'a>(
    args: &ReturnFieldArgs<'a>,
    i: usize,
    function: &'static str,
    argument: &'static str,
) -> Result<Option<&'a ScalarValue>> {
    if i >= args.arg_fields.len() {
        return Ok(None);
    }
    match args.scalar_arguments.get(i).copied().flatten() {
        Some(v) => Ok(Some(v)),
        None => Err(Error::NotLiteral { function, argument }.into()),
    }
}

/// At execution: the literal value of argument `i` (`Ok(None)` if absent). A column arrives as an
/// array, which is rejected: configuration must not vary by row.
pub(crate) fn exec_literal<'a>(
    args: &'a [ColumnarValue],
    i: usize,
    function: &'static str,
    argument: &'static str,
) -> Result<Option<&'a ScalarValue>> {
    match args.get(i) {
        None => Ok(None),
        Some(ColumnarValue::Scalar(v)) => Ok(Some(v)),
        Some(ColumnarValue::Array(_)) => Err(Error::NotLiteral { function, argument }.into()),
    }
}

/// A literal integer: `Ok(None)` for SQL NULL.
pub(crate) fn lit_i64(
    v: &ScalarValue,
    function: &'static str,
    argument: &'static str,
    expected: &'static str,
) -> Result<Option<i64>> {
    let bad = || Error::InvalidArgument { function, argument, expected };
    Ok(match v {
        ScalarValue::Int8(x) => x.map(i64::from),
        ScalarValue::Int16(x) => x.map(i64::from),
        ScalarValue::Int32(x) => x.map(i64::from),
        ScalarValue::Int64(x) => *x,
        ScalarValue::UInt8(x) => x.map(i64::from),
        ScalarValue::UInt16(x) => x.map(i64::from),
        ScalarValue::UInt32(x) => x.map(i64::from),
        ScalarValue::UInt64(x) => match x {
            Some(x) => Some(i64::try_from(*x).map_err(|_| bad())?),
            None => None,
        },
        ScalarValue::Null => None,
        _ => return Err(bad().into()),
    })
}

/// A literal integer within `range`: `Ok(None)` for SQL NULL.
pub(crate) fn lit_i64_in(
    v: &ScalarValue,
    range: std::ops::RangeInclusive<i64>,
    function: &'static str,
    argument: &'static str,
    expected: &'static str,
) -> Result<Option<i64>> {
    match lit_i64(v, function, argument, expected)? {
        Some(x) if !range.contains(&x) => Err(Error::InvalidArgument { function, argument, expected }.into()),
        x => Ok(x),
    }
}

/// A literal string: `Ok(None)` for SQL NULL.
pub(crate) fn lit_str<'a>(
    v: &'a ScalarValue,
    function: &'static str,
    argument: &'static str,
    expected: &'static str,
) -> Result<Option<&'a str>> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => Ok(s.as_deref()),
        ScalarValue::Dictionary(_, inner) => lit_str(inner, function, argument, expected),
        ScalarValue::Null => Ok(None),
        _ => Err(Error::InvalidArgument { function, argument, expected }.into()),
    }
}

/// Calls `f` with every value of a string array (Utf8, LargeUtf8, Utf8View, dictionary or Null).
pub(crate) fn for_each_str(array: &dyn Array, mut f: impl FnMut(Option<&str>) -> Result<()>) -> Result<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().try_for_each(f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().try_for_each(f),
        DataType::Utf8View => array.as_string_view().iter().try_for_each(f),
        DataType::Null => (0..array.len()).try_for_each(|_| f(None)),
        DataType::Dictionary(_, _) => {
            let flat = cast(array, &DataType::Utf8)?;
            flat.as_string::<i32>().iter().try_for_each(f)
        }
        other => internal_err!("expected a string array, got {other}"),
    }
}

/// A date or timestamp array as `Date32` (a zoned timestamp gives its local date).
pub(crate) fn dates(array: &ArrayRef, function: &'static str, argument: &'static str) -> Result<Date32Array> {
    match array.data_type() {
        DataType::Date32 => Ok(array.as_primitive().clone()),
        DataType::Date64 | DataType::Timestamp(_, _) | DataType::Null => {
            // SECURITY: arrow's cast errors quote the value; report the range only.
            let out = cast(array, &DataType::Date32).map_err(|_| Error::OutOfRange { function, what: argument })?;
            Ok(out.as_primitive().clone())
        }
        other => internal_err!("{function}: expected a date or timestamp for {argument}, got {other}"),
    }
}

/// Returns a scalar when every argument was a scalar (constant folding), else the array.
pub(crate) fn finish(out: ArrayRef, args: &[ColumnarValue]) -> Result<ColumnarValue> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// How many rows to compute: one when every argument is a scalar (the result is a scalar).
pub(crate) fn rows(args: &[ColumnarValue], number_rows: usize) -> usize {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) { 1 } else { number_rows }
}

/// The signature slot of a string *literal* configuration argument (unit, style, key name).
///
/// `Any`, not the string class: DataFusion coerces a NULL literal in a string slot with a
/// `CAST`, which is no longer a literal when the plan's schema is recomputed, so
/// `f(x, NULL)` would fail the literal check instead of giving NULL. The type is checked with
/// the literal itself at planning ([`lit_str`]), so the slot still accepts only strings.
pub(crate) fn string_literal() -> datafusion::logical_expr::Coercion {
    datafusion::logical_expr::Coercion::new_exact(datafusion::logical_expr::TypeSignatureClass::Any)
}
