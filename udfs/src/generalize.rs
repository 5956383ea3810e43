//! `generalize_date(date, unit)`: coarsen a date to a year, fiscal year, quarter or month, the
//! granularity a 匿名加工 (anonymised) extract usually publishes.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::types::logical_date;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};

use crate::args::{SECTION, dates, exec_literal, field, finish, lit_str, planned_literal, rows, string_literal};
use crate::calendar::{civil_from_days, days_from_civil};
use crate::error::Error;

const NAME: &str = "generalize_date";
const UNIT_EXPECTED: &str = "one of 'year', 'month', 'quarter', 'fiscal_year'";

#[derive(Clone, Copy)]
enum Unit {
    Year,
    Month,
    Quarter,
    FiscalYear,
}

fn unit(v: &datafusion::common::ScalarValue, function: &'static str) -> Result<Option<Unit>> {
    let Some(s) = lit_str(v, function, "unit", UNIT_EXPECTED)? else {
        return Ok(None);
    };
    Ok(Some(match s.to_ascii_lowercase().as_str() {
        "year" => Unit::Year,
        "month" => Unit::Month,
        "quarter" => Unit::Quarter,
        "fiscal_year" => Unit::FiscalYear,
        _ => return Err(Error::InvalidArgument { function, argument: "unit", expected: UNIT_EXPECTED }.into()),
    }))
}

/// Refuses an unknown unit literal at planning time, so a bad query fails before it reads data.
fn check_planned_unit(args: &ReturnFieldArgs, function: &'static str) -> Result<()> {
    if let Some(v) = planned_literal(args, 1, function, "unit")? {
        unit(v, function)?;
    }
    Ok(())
}

/// The unit argument at execution (None for a NULL unit, which gives NULL).
fn exec_unit(args: &[ColumnarValue], function: &'static str) -> Result<Option<Unit>> {
    match exec_literal(args, 1, function, "unit")? {
        Some(v) => unit(v, function),
        None => Ok(None),
    }
}

/// The Japanese fiscal year (年度, from 1 April) of year `y`, month `m`.
fn fiscal_year(y: i32, m: u32) -> i32 {
    if m >= 4 { y } else { y - 1 }
}

/// Appends a zero-padded 4-digit year (years outside 0..=9999 as plain decimal).
pub(crate) fn push_year(buf: &mut String, y: i32) {
    if (0..=9999).contains(&y) {
        let y = y as u32;
        for d in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
            buf.push(char::from(b'0' + d as u8));
        }
    } else {
        let _ = write!(buf, "{y}");
    }
}

pub(crate) fn push_2(buf: &mut String, v: u32) {
    buf.push(char::from(b'0' + (v / 10 % 10) as u8));
    buf.push(char::from(b'0' + (v % 10) as u8));
}

/// `generalize_date(date, unit) -> Utf8`: the date's year (`'2025'`), month (`'2025-04'`),
/// calendar quarter (`'2025-Q2'`) or Japanese fiscal year (年度, from 1 April: `'FY2025'`, so
/// 2026-03-31 is `'FY2025'`).
///
/// `unit` is a literal, one of `'year' | 'month' | 'quarter' | 'fiscal_year'`. Accepts dates and
/// timestamps (a zoned timestamp uses its local date). NULL gives NULL.
///
/// ```sql
/// SELECT generalize_date(DATE '2026-03-31', 'fiscal_year'); -- 'FY2025'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeneralizeDate {
    signature: Signature,
}

impl Default for GeneralizeDate {
    fn default() -> Self {
        Self::new()
    }
}

impl GeneralizeDate {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![
                        Coercion::new_exact(TypeSignatureClass::Native(logical_date())),
                        string_literal(),
                    ]),
                    TypeSignature::Coercible(vec![
                        Coercion::new_exact(TypeSignatureClass::Timestamp),
                        string_literal(),
                    ]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for GeneralizeDate {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_planned_unit(&args, NAME)?;
        Ok(field(NAME, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [date, _] = args.args.as_slice() else {
            return internal_err!("{NAME} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let days = dates(&date.to_array(n)?, NAME, "date")?;
        let unit = exec_unit(&args.args, NAME)?;
        let mut out = StringBuilder::with_capacity(n, n * 7);
        let mut buf = String::with_capacity(16);
        for d in days.iter() {
            let (Some(d), Some(unit)) = (d, unit) else {
                out.append_null();
                continue;
            };
            let (y, m, _) = civil_from_days(d);
            buf.clear();
            match unit {
                Unit::Year => push_year(&mut buf, y),
                Unit::Month => {
                    push_year(&mut buf, y);
                    buf.push('-');
                    push_2(&mut buf, m);
                }
                Unit::Quarter => {
                    push_year(&mut buf, y);
                    buf.push_str("-Q");
                    buf.push(char::from(b'0' + ((m - 1) / 3 + 1) as u8));
                }
                Unit::FiscalYear => {
                    buf.push_str("FY");
                    push_year(&mut buf, fiscal_year(y, m));
                }
            }
            out.append_value(&buf);
        }
        let out: ArrayRef = Arc::new(out.finish());
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "Coarsens a date or timestamp to its year ('2025'), month ('2025-04'), calendar quarter \
                 ('2025-Q2') or Japanese fiscal year starting 1 April ('FY2025'; 2026-03-31 is FY2025). \
                 NULL gives NULL.",
                "generalize_date(date, unit)",
            )
            .with_sql_example("SELECT generalize_date(DATE '2026-03-31', 'fiscal_year'); -- 'FY2025'")
            .with_argument("date", "Date or timestamp (a zoned timestamp uses its local date).")
            .with_argument("unit", "String literal: 'year', 'month', 'quarter' or 'fiscal_year'.")
            .build()
        }))
    }
}

const FLOOR: &str = "date_floor";

/// `date_floor(date, unit) -> Date`: the first day of the date's year, calendar quarter, month or
/// Japanese fiscal year (1 April), as a date: a mask that keeps the column's type
/// (`date_floor(birth_date, 'month')` for a birth year-month). `date_trunc` does the same through
/// a nanosecond timestamp, several times slower, and fails for dates outside 1677-2262.
///
/// `unit` is a literal, one of `'year' | 'month' | 'quarter' | 'fiscal_year'`. Accepts dates
/// only; it cannot fail on any date. NULL gives NULL.
///
/// ```sql
/// SELECT date_floor(DATE '2026-03-31', 'fiscal_year'); -- 2025-04-01
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFloor {
    signature: Signature,
}

impl Default for DateFloor {
    fn default() -> Self {
        Self::new()
    }
}

impl DateFloor {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(logical_date())), string_literal()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for DateFloor {
    fn name(&self) -> &str {
        FLOOR
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_planned_unit(&args, FLOOR)?;
        Ok(field(FLOOR, DataType::Date32))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [date, _] = args.args.as_slice() else {
            return internal_err!("{FLOOR} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let days = dates(&date.to_array(n)?, FLOOR, "date")?;
        let Some(unit) = exec_unit(&args.args, FLOOR)? else {
            let out: ArrayRef = Arc::new(datafusion::arrow::array::Date32Array::new_null(n));
            return finish(out, &args.args);
        };
        let out: datafusion::arrow::array::Date32Array = days.unary(|d| {
            let (y, m, day) = civil_from_days(d);
            match unit {
                Unit::Year => days_from_civil(y, 1, 1),
                Unit::Month => d.wrapping_sub(day as i32 - 1),
                Unit::Quarter => days_from_civil(y, (m - 1) / 3 * 3 + 1, 1),
                Unit::FiscalYear => days_from_civil(fiscal_year(y, m), 4, 1),
            }
        });
        let out: ArrayRef = Arc::new(out);
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "The first day of a date's year, calendar quarter, month or Japanese fiscal year \
                 (1 April), as a date: a date mask that keeps the column's type. NULL gives NULL.",
                "date_floor(date, unit)",
            )
            .with_sql_example("SELECT date_floor(DATE '2026-03-31', 'fiscal_year'); -- 2025-04-01")
            .with_argument("date", "Date.")
            .with_argument("unit", "String literal: 'year', 'month', 'quarter' or 'fiscal_year'.")
            .build()
        }))
    }
}
