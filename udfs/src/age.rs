//! Ages: `age_at(birth, on_date)` in completed years (満年齢) and `age_band(age, width, top)`,
//! the 5-year bands top-coded at 90+ that anonymised extracts publish.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, AsArray, Int32Array, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::types::logical_date;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};

use crate::args::{SECTION, dates, exec_literal, field, finish, lit_i64_in, planned_literal, rows};
use crate::calendar::civil_from_days;
use crate::error::Error;

/// Completed years from `birth` to `on` (both `Date32`), or `None` if `on` precedes `birth`.
///
/// Japanese law (年齢計算ニ関スル法律) adds a year at the end of the day before the birthday, so on
/// the birthday itself the age has increased, as in the usual count. A 29 February birthday in a
/// common year: the anniversary is taken as 1 March (the day after 28 February), which is the
/// result the law gives for ages on any calendar day.
pub(crate) fn completed_years(birth: i32, on: i32) -> Option<i32> {
    if on < birth {
        return None;
    }
    let (y1, m1, d1) = civil_from_days(birth);
    let (y2, m2, d2) = civil_from_days(on);
    Some(y2 - y1 - i32::from((m2, d2) < (m1, d1)))
}

const AGE_AT: &str = "age_at";

/// `age_at(birth, on_date) -> Int32`: age in completed years (満年齢) on `on_date`.
///
/// Someone born 2000-02-29 is 24 on 2025-02-28 and 25 on 2025-03-01 (and 24 on 2024-02-29).
/// Accepts dates and timestamps (zoned timestamps use their local date). NULL if either
/// argument is NULL, and NULL when `on_date` precedes `birth` (an age there is meaningless and
/// usually a data-entry error).
///
/// ```sql
/// SELECT age_at(DATE '1960-04-02', DATE '2025-04-01'); -- 64
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AgeAt {
    signature: Signature,
}

impl Default for AgeAt {
    fn default() -> Self {
        Self::new()
    }
}

impl AgeAt {
    /// The function, ready to register.
    pub fn new() -> Self {
        let classes = [TypeSignatureClass::Native(logical_date()), TypeSignatureClass::Timestamp];
        let mut sigs = vec![];
        for a in &classes {
            for b in &classes {
                sigs.push(TypeSignature::Coercible(vec![
                    Coercion::new_exact(a.clone()),
                    Coercion::new_exact(b.clone()),
                ]));
            }
        }
        Self { signature: Signature::one_of(sigs, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for AgeAt {
    fn name(&self) -> &str {
        AGE_AT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [birth, on] = args.args.as_slice() else {
            return internal_err!("{AGE_AT} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let births = dates(&birth.to_array(n)?, AGE_AT, "birth")?;
        let out: Int32Array = match on {
            // One reference date for all rows, the common case: decompose it once.
            ColumnarValue::Scalar(_) => {
                let on = dates(&on.to_array(1)?, AGE_AT, "on_date")?;
                match on.iter().next().flatten() {
                    None => Int32Array::new_null(births.len()),
                    Some(on) => births.iter().map(|b| b.and_then(|b| completed_years(b, on))).collect(),
                }
            }
            ColumnarValue::Array(_) => {
                let ons = dates(&on.to_array(n)?, AGE_AT, "on_date")?;
                births
                    .iter()
                    .zip(ons.iter())
                    .map(|(b, o)| match (b, o) {
                        (Some(b), Some(o)) => completed_years(b, o),
                        _ => None,
                    })
                    .collect()
            }
        };
        finish(Arc::new(out), &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "Age in completed years (満年齢) on on_date. A 29 February birthday counts on 1 March in \
                 common years. NULL if either argument is NULL or on_date precedes birth.",
                "age_at(birth, on_date)",
            )
            .with_sql_example("SELECT age_at(DATE '2000-02-29', DATE '2025-02-28'); -- 24")
            .with_argument("birth", "Date or timestamp of birth.")
            .with_argument("on_date", "Date or timestamp at which to measure the age.")
            .build()
        }))
    }
}

const AGE_BAND: &str = "age_band";
const WIDTH_EXPECTED: &str = "an integer literal from 1 to 200";
const TOP_EXPECTED: &str = "a positive integer literal that is a multiple of width";

/// `age_band(age, width [, top]) -> Utf8`: the `width`-year band holding `age`, as
/// `'40-44'` (or `'40'` when `width` is 1); ages at or above `top` give `'{top}+'`.
///
/// `width` (1..=200) and `top` (a positive multiple of `width`, so bands never straddle it) are
/// literals; without `top` there is no top-coding. Negative ages and NULL give NULL.
///
/// ```sql
/// SELECT age_band(42, 5), age_band(93, 5, 90); -- '40-44', '90+'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AgeBand {
    signature: Signature,
}

impl Default for AgeBand {
    fn default() -> Self {
        Self::new()
    }
}

impl AgeBand {
    /// The function, ready to register.
    pub fn new() -> Self {
        let int = || Coercion::new_exact(TypeSignatureClass::Integer);
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Coercible(vec![int(), int()]), TypeSignature::Coercible(vec![int(), int(), int()])],
                Volatility::Immutable,
            ),
        }
    }
}

/// `(width, top)` from literals, `None` if one is NULL.
fn band_config(width: &ScalarValue, top: Option<&ScalarValue>) -> Result<Option<(i64, Option<i64>)>> {
    let Some(width) = lit_i64_in(width, 1..=200, AGE_BAND, "width", WIDTH_EXPECTED)? else {
        return Ok(None);
    };
    let top = match top {
        None => None,
        Some(v) => match lit_i64_in(v, 1..=100_000, AGE_BAND, "top", TOP_EXPECTED)? {
            None => return Ok(None),
            Some(t) if t % width != 0 => {
                return Err(
                    Error::InvalidArgument { function: AGE_BAND, argument: "top", expected: TOP_EXPECTED }.into()
                );
            }
            Some(t) => Some(t),
        },
    };
    Ok(Some((width, top)))
}

fn band_label(lower: i64, width: i64) -> String {
    if width == 1 { lower.to_string() } else { format!("{lower}-{}", lower + width - 1) }
}

impl ScalarUDFImpl for AgeBand {
    fn name(&self) -> &str {
        AGE_BAND
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(width) = planned_literal(&args, 1, AGE_BAND, "width")? {
            band_config(width, planned_literal(&args, 2, AGE_BAND, "top")?)?;
        }
        Ok(field(AGE_BAND, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(age) = args.args.first() else {
            return internal_err!("{AGE_BAND} takes two or three arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let ages = cast(&age.to_array(n)?, &DataType::Int64)?;
        let ages = ages.as_primitive::<Int64Type>();
        let Some(width) = exec_literal(&args.args, 1, AGE_BAND, "width")? else {
            return internal_err!("{AGE_BAND} takes two or three arguments");
        };
        let top = exec_literal(&args.args, 2, AGE_BAND, "top")?;
        let mut out = StringBuilder::with_capacity(n, n * 5);
        match band_config(width, top)? {
            None => (0..n).for_each(|_| out.append_null()),
            Some((width, top)) => {
                // Labels for the usual ages, built once; rarer ones are formatted per row.
                let cached = top.unwrap_or(150) / width;
                let labels: Vec<String> = (0..cached).map(|i| band_label(i * width, width)).collect();
                let top_label = top.map(|t| format!("{t}+"));
                for a in ages.iter() {
                    match (a, top) {
                        (Some(a), _) if a < 0 => out.append_null(),
                        (Some(a), Some(t)) if a >= t => out.append_value(top_label.as_deref().unwrap_or_default()),
                        (Some(a), _) => match labels.get((a / width) as usize) {
                            Some(label) => out.append_value(label),
                            None => out.append_value(band_label(a / width * width, width)),
                        },
                        (None, _) => out.append_null(),
                    }
                }
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "The width-year band holding age ('40-44'; '40' when width is 1); ages at or above top give \
                 '{top}+'. Negative ages and NULL give NULL.",
                "age_band(age, width [, top])",
            )
            .with_sql_example("SELECT age_band(93, 5, 90); -- '90+'")
            .with_argument("age", "Integer age in years.")
            .with_argument("width", "Integer literal 1..200: band width in years.")
            .with_argument("top", "Optional integer literal, a multiple of width: top-coding threshold.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    #[test]
    fn leap_day_birthdays() {
        let b = days_from_civil(2000, 2, 29);
        assert_eq!(completed_years(b, days_from_civil(2025, 2, 28)), Some(24));
        assert_eq!(completed_years(b, days_from_civil(2025, 3, 1)), Some(25));
        assert_eq!(completed_years(b, days_from_civil(2024, 2, 28)), Some(23));
        assert_eq!(completed_years(b, days_from_civil(2024, 2, 29)), Some(24));
        assert_eq!(completed_years(b, days_from_civil(2000, 2, 28)), None);
        assert_eq!(completed_years(b, b), Some(0));
    }
}
