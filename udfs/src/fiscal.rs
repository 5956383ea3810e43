//! `fiscal_year(date)`: the Japanese fiscal year (年度), which starts on 1 April.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, Date32Array, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// `fiscal_year(date | timestamp) -> int`: 2025-03-31 is in fiscal 2024, 2025-04-01 in fiscal 2025.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FiscalYear {
    signature: Signature,
}

impl Default for FiscalYear {
    fn default() -> Self {
        Self::new()
    }
}

impl FiscalYear {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Exact(vec![DataType::Date32]), TypeSignature::Any(1)],
                Volatility::Immutable,
            ),
        }
    }
}

/// Days since 1970-01-01 to the fiscal year, without allocating dates.
fn fiscal_year_of_days(days: i32) -> i32 {
    use chrono::Datelike;
    let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or_default();
    if date.month() >= 4 { date.year() } else { date.year() - 1 }
}

impl ScalarUDFImpl for FiscalYear {
    fn name(&self) -> &str {
        "fiscal_year"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("fiscal_year takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let dates: ArrayRef = match array.data_type() {
            DataType::Date32 => array,
            DataType::Date64 | DataType::Timestamp(_, _) | DataType::Utf8 | DataType::Utf8View | DataType::Null => {
                // SECURITY: arrow's cast errors quote the value ("Cannot cast string '...'").
                cast(&array, &DataType::Date32).map_err(|_| crate::error::Error::InvalidValue {
                    function: "fiscal_year",
                    argument: "date",
                    expected: "a date, a timestamp or an ISO date text",
                })?
            }
            other => return exec_err!("fiscal_year expects a date or timestamp, got {other}"),
        };
        let dates = dates.as_any().downcast_ref::<Date32Array>().expect("cast to Date32");
        let out: Int32Array = dates.iter().map(|d| d.map(fiscal_year_of_days)).collect();
        let out: ArrayRef = Arc::new(out);
        Ok(match arg {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                crate::args::SECTION,
                "The Japanese fiscal year (年度), which starts on 1 April. NULL gives NULL.",
                "fiscal_year(date)",
            )
            .with_sql_example("SELECT fiscal_year(DATE '2025-03-31'); -- 2024")
            .with_argument("date", "Date or timestamp.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_year_boundaries() {
        let d = |y, m, dd| {
            (chrono::NaiveDate::from_ymd_opt(y, m, dd).unwrap() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days() as i32
        };
        assert_eq!(fiscal_year_of_days(d(2025, 3, 31)), 2024);
        assert_eq!(fiscal_year_of_days(d(2025, 4, 1)), 2025);
        assert_eq!(fiscal_year_of_days(d(2026, 1, 15)), 2025);
        assert_eq!(fiscal_year_of_days(d(1969, 12, 31)), 1969);
    }
}
