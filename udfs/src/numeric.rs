//! Numeric coarsening for extreme and identifying values (statistical disclosure control):
//! `round_to(x, step)`, `top_code(x, max)` and `bottom_code(x, min)`.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, AsArray, PrimitiveArray, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, FieldRef, Float64Type, Int32Type, Int64Type};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignatureClass, Volatility,
};

use crate::args::{SECTION, exec_literal, field, finish, planned_literal, rows};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Round,
    Top,
    Bottom,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Round => "round_to",
            Op::Top => "top_code",
            Op::Bottom => "bottom_code",
        }
    }
    fn argument(self) -> &'static str {
        match self {
            Op::Round => "step",
            Op::Top => "max",
            Op::Bottom => "min",
        }
    }
}

/// `round_to(x, step)`, `top_code(x, max)` and `bottom_code(x, min)`: one struct, three
/// functions, built by [`NumericCoding::round_to`], [`NumericCoding::top_code`] and
/// [`NumericCoding::bottom_code`].
///
/// - `round_to(x, step)`: the nearest multiple of `step` (> 0), halves away from zero:
///   `round_to(147, 5) = 145`, `round_to(-7.5, 5) = -10`. An integer multiple that does not fit
///   the type is an error.
/// - `top_code(x, max)`: `x` if `x <= max`, else `max` (so 104 becomes 90 for `max = 90`).
/// - `bottom_code(x, min)`: `x` if `x >= min`, else `min`.
///
/// `x` is an integer (Int8..Int32 and UInt8/UInt16 return Int32, Int64/UInt32 return Int64),
/// a float (returns Float64; NaN stays NaN) or a decimal (returns Decimal128 with the same scale;
/// `round_to` adds one digit of precision for the carry, as in 99.9 -> 100.0). The second argument
/// is a numeric literal; for integer `x` it must be a whole number, for decimal `x` it must be
/// exact at `x`'s scale. NULL gives NULL.
///
/// ```sql
/// SELECT top_code(age, 90), round_to(income_yen, 1000), bottom_code(bmi, 15.0);
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericCoding {
    op: Op,
    signature: Signature,
}

impl NumericCoding {
    fn new(op: Op) -> Self {
        Self {
            op,
            signature: Signature::coercible(
                vec![
                    Coercion::new_exact(TypeSignatureClass::Numeric),
                    Coercion::new_exact(TypeSignatureClass::Numeric),
                ],
                Volatility::Immutable,
            ),
        }
    }
    /// `round_to(x, step)`.
    pub fn round_to() -> Self {
        Self::new(Op::Round)
    }
    /// `top_code(x, max)`.
    pub fn top_code() -> Self {
        Self::new(Op::Top)
    }
    /// `bottom_code(x, min)`.
    pub fn bottom_code() -> Self {
        Self::new(Op::Bottom)
    }

    fn x_error(&self) -> Error {
        Error::InvalidArgument {
            function: self.op.name(),
            argument: "x",
            expected: "a signed integer, UInt8..UInt32, float or decimal (cast UInt64 to a decimal first)",
        }
    }

    /// The type `x` is computed in.
    fn work_type(&self, x: &DataType) -> Result<DataType> {
        Ok(match x {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
            DataType::Int64 | DataType::UInt32 | DataType::Null => DataType::Int64,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
                DataType::Decimal128(*p, *s)
            }
            _ => return Err(self.x_error().into()),
        })
    }

    fn out_type(&self, x: &DataType) -> Result<DataType> {
        Ok(match (self.work_type(x)?, self.op) {
            (DataType::Decimal128(p, s), Op::Round) => DataType::Decimal128((p + 1).min(38), s),
            (t, _) => t,
        })
    }

    /// The literal bound in `x`'s working type, `None` for NULL.
    fn bound(&self, v: &ScalarValue, work: &DataType) -> Result<Option<Bound>> {
        let (function, argument) = (self.op.name(), self.op.argument());
        let bad = |expected| Error::InvalidArgument { function, argument, expected };
        let number = Number::of(v).ok_or_else(|| bad("a numeric literal"))?;
        let Some(number) = number else { return Ok(None) };
        let bound = match work {
            DataType::Float64 => Bound::Float(number.to_f64()),
            DataType::Decimal128(_, s) => {
                Bound::Int(number.at_scale(*s).ok_or_else(|| bad("a numeric literal exact at the scale of x"))?)
            }
            _ => Bound::Int(number.at_scale(0).ok_or_else(|| bad("a whole-number literal for integer x"))?),
        };
        if self.op == Op::Round && !bound.is_positive() {
            return Err(bad("a positive numeric literal").into());
        }
        Ok(Some(bound))
    }
}

/// A literal's value, exactly where possible.
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
    Decimal(i128, i8),
}

impl Number {
    /// `Some(None)` for NULL, `None` for a non-numeric literal.
    fn of(v: &ScalarValue) -> Option<Option<Number>> {
        Some(match v {
            ScalarValue::Int8(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::Int16(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::Int32(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::Int64(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::UInt8(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::UInt16(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::UInt32(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::UInt64(x) => x.map(|x| Number::Int(x.into())),
            ScalarValue::Float16(x) => x.map(|x| Number::Float(x.into())),
            ScalarValue::Float32(x) => x.map(|x| Number::Float(x.into())),
            ScalarValue::Float64(x) => x.map(Number::Float),
            ScalarValue::Decimal32(x, _, s) => x.map(|x| Number::Decimal(x.into(), *s)),
            ScalarValue::Decimal64(x, _, s) => x.map(|x| Number::Decimal(x.into(), *s)),
            ScalarValue::Decimal128(x, _, s) => x.map(|x| Number::Decimal(x, *s)),
            ScalarValue::Null => None,
            _ => return None,
        })
    }

    fn to_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
            Number::Decimal(v, s) => v as f64 / 10f64.powi(i32::from(s)),
        }
    }

    /// The value times 10^scale as an integer, if exact.
    fn at_scale(self, scale: i8) -> Option<i128> {
        let pow = |e: i8| 10i128.checked_pow(u32::try_from(e).ok()?);
        match self {
            Number::Int(i) => i.checked_mul(pow(scale)?),
            Number::Decimal(v, s) if s <= scale => v.checked_mul(pow(scale - s)?),
            Number::Decimal(v, s) => {
                let d = pow(s - scale)?;
                (v % d == 0).then_some(v / d)
            }
            Number::Float(f) => {
                let scaled = f * 10f64.powi(i32::from(scale));
                let r = scaled.round();
                // Float literals such as 0.29 are not exact in binary; accept them when the
                // scaled value is integral to 1e-9 relative.
                let exact = r.is_finite() && (scaled - r).abs() <= 1e-9 * r.abs().max(1.0) && r.abs() < 1.7e38;
                exact.then_some(r as i128)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Int(i128),
    Float(f64),
}

impl Bound {
    fn is_positive(self) -> bool {
        match self {
            Bound::Int(i) => i > 0,
            Bound::Float(f) => f > 0.0 && f.is_finite(),
        }
    }
}

/// The nearest multiple of `step` (> 0), halves away from zero.
fn round_int(x: i128, step: i128) -> Option<i128> {
    let (q, r) = (x / step, (x % step).abs());
    let q = if r >= step - r { q + x.signum() } else { q };
    q.checked_mul(step)
}

fn code_int(op: Op, x: i128, b: i128) -> Option<i128> {
    match op {
        Op::Round => round_int(x, b),
        Op::Top => Some(x.min(b)),
        Op::Bottom => Some(x.max(b)),
    }
}

/// [`code_int`] in `i64` when the bound fits: i128 division is several times slower.
fn code_i64(op: Op, x: i64, b: i128) -> Option<i64> {
    match i64::try_from(b) {
        Ok(b) => match op {
            Op::Round => {
                let (q, r) = (x / b, (x % b).abs());
                let q = if r >= b - r { q + x.signum() } else { q };
                q.checked_mul(b)
            }
            Op::Top => Some(x.min(b)),
            Op::Bottom => Some(x.max(b)),
        },
        Err(_) => code_int(op, x.into(), b).and_then(|r| i64::try_from(r).ok()),
    }
}

impl ScalarUDFImpl for NumericCoding {
    fn name(&self) -> &str {
        self.op.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.out_type(args.first().unwrap_or(&DataType::Null))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let x = args.arg_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        if let Some(v) = planned_literal(&args, 1, self.op.name(), self.op.argument())? {
            self.bound(v, &self.work_type(&x)?)?;
        }
        Ok(field(self.op.name(), self.out_type(&x)?))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (function, op) = (self.op.name(), self.op);
        let Some(x) = args.args.first() else {
            return internal_err!("{function} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let x = x.to_array(n)?;
        let work = self.work_type(x.data_type())?;
        let out_type = self.out_type(x.data_type())?;
        let bound = match exec_literal(&args.args, 1, function, op.argument())? {
            Some(v) => self.bound(v, &work)?,
            None => None,
        };
        let Some(bound) = bound else {
            return finish(new_null_array(&out_type, n), &args.args);
        };
        let xs = cast(&x, &work)?;
        let overflow = Cell::new(false);
        let fail = || overflow.set(true);
        let out: ArrayRef = match (&work, bound) {
            (DataType::Int32, Bound::Int(b)) => Arc::new(xs.as_primitive::<Int32Type>().unary::<_, Int32Type>(|v| {
                code_i64(op, v.into(), b).and_then(|r| i32::try_from(r).ok()).unwrap_or_else(|| {
                    fail();
                    0
                })
            })),
            (DataType::Int64, Bound::Int(b)) => Arc::new(xs.as_primitive::<Int64Type>().unary::<_, Int64Type>(|v| {
                code_i64(op, v, b).unwrap_or_else(|| {
                    fail();
                    0
                })
            })),
            (DataType::Float64, Bound::Float(b)) => {
                Arc::new(xs.as_primitive::<Float64Type>().unary::<_, Float64Type>(|v| match op {
                    Op::Round => (v / b).round() * b,
                    // Comparisons with NaN are false, so NaN passes through.
                    Op::Top if v > b => b,
                    Op::Bottom if v < b => b,
                    _ => v,
                }))
            }
            (DataType::Decimal128(_, s), Bound::Int(b)) => {
                let DataType::Decimal128(p, _) = out_type else {
                    return internal_err!("{function}: decimal output expected");
                };
                let limit = 10i128.pow(u32::from(p));
                let out: PrimitiveArray<Decimal128Type> = xs.as_primitive::<Decimal128Type>().unary(|v| {
                    code_int(op, v, b).filter(|r| r.abs() < limit).unwrap_or_else(|| {
                        fail();
                        0
                    })
                });
                Arc::new(out.with_precision_and_scale(p, *s)?)
            }
            _ => return internal_err!("{function}: unexpected working type {work}"),
        };
        if overflow.get() {
            return Err(Error::OutOfRange { function, what: "the result type" }.into());
        }
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOCS: OnceLock<[Documentation; 3]> = OnceLock::new();
        let docs = DOCS.get_or_init(|| {
            let arg = |d: datafusion::logical_expr::DocumentationBuilder, name: &str, text: &str| {
                d.with_argument("x", "Integer, float or decimal value.").with_argument(name, text).build()
            };
            [
                arg(
                    Documentation::builder(
                        SECTION,
                        "Rounds x to the nearest multiple of step, halves away from zero. NULL gives NULL.",
                        "round_to(x, step)",
                    )
                    .with_sql_example("SELECT round_to(147, 5); -- 145"),
                    "step",
                    "Positive numeric literal.",
                ),
                arg(
                    Documentation::builder(SECTION, "Caps x at max. NULL gives NULL.", "top_code(x, max)")
                        .with_sql_example("SELECT top_code(104, 90); -- 90"),
                    "max",
                    "Numeric literal.",
                ),
                arg(
                    Documentation::builder(
                        SECTION,
                        "Raises x to at least min. NULL gives NULL.",
                        "bottom_code(x, min)",
                    )
                    .with_sql_example("SELECT bottom_code(12.5, 15.0); -- 15.0"),
                    "min",
                    "Numeric literal.",
                ),
            ]
        });
        Some(match self.op {
            Op::Round => &docs[0],
            Op::Top => &docs[1],
            Op::Bottom => &docs[2],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_halves_away_from_zero() {
        assert_eq!(round_int(147, 5), Some(145));
        assert_eq!(round_int(148, 5), Some(150));
        assert_eq!(round_int(-147, 5), Some(-145));
        assert_eq!(round_int(-148, 5), Some(-150));
        assert_eq!(round_int(15, 10), Some(20));
        assert_eq!(round_int(-15, 10), Some(-20));
        assert_eq!(round_int(14, 10), Some(10));
        assert_eq!(round_int(0, 10), Some(0));
        assert_eq!(round_int(i128::MAX, 10), None);
        for (x, step) in [(147, 5), (-148, 5), (15, 10), (-15, 10), (0, 7), (i64::MAX, 1), (i64::MIN + 1, 3)] {
            assert_eq!(code_i64(Op::Round, x, step).map(i128::from), round_int(x.into(), step), "{x} {step}");
        }
        assert_eq!(code_i64(Op::Round, i64::MAX, 10), None);
        assert_eq!(code_i64(Op::Round, 1, i128::from(u64::MAX)), Some(0));
        assert_eq!(code_i64(Op::Top, 5, i128::MAX), Some(5));
        assert_eq!(code_i64(Op::Bottom, 5, i128::MAX), None);
    }

    #[test]
    fn literal_scaling() {
        assert_eq!(Number::Float(0.29).at_scale(2), Some(29));
        assert_eq!(Number::Float(0.125).at_scale(2), None);
        assert_eq!(Number::Decimal(150, 2).at_scale(1), Some(15));
        assert_eq!(Number::Decimal(155, 2).at_scale(1), None);
        assert_eq!(Number::Int(5).at_scale(2), Some(500));
        assert_eq!(Number::Float(5.5).at_scale(0), None);
    }
}
