//! `date_shift(date, person_id, key_name, max_days)`: per-person date shifting (日付シフト).
//!
//! Every date of one person moves by the same secret offset, so intervals within a person
//! (admission to discharge, diagnosis to death) survive exactly while calendar dates no longer
//! match other sources.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, PrimitiveArray};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::types::logical_date;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};
use hmac::Mac;

use crate::args::{SECTION, exec_literal, field, finish, lit_i64_in, lit_str, planned_literal, rows, string_literal};
use crate::error::Error;
use crate::keys::{KeyRing, SharedRing};
use crate::pseudonym::{HmacSha256, check_key, for_each_id, id_classes, keyed_mac};

const NAME: &str = "date_shift";
const KEY_EXPECTED: &str = "a string literal naming a key";
const MAX_DAYS: std::ops::RangeInclusive<i64> = 0..=36_500;
const MAX_DAYS_EXPECTED: &str = "an integer literal from 0 to 36500";

/// SECURITY: domain separation. The MAC input starts with 0xFF, a byte that never occurs in
/// UTF-8 or in decimal text, so no `pseudonymize` output (HMAC of canonical bytes under the
/// same key) reveals anything about a person's offset. Without it, a recipient holding
/// `pseudonymize(person_id, k)` could recompute the offset and undo the shift.
const DOMAIN: &[u8] = b"\xffkura.date_shift.v1\x00";

/// Offset in `[-max, max]` from the first 8 bytes of the MAC, by multiply-shift: uniform up to a
/// bias below 2^-32 (the range has at most 73001 values).
fn offset_of(mac: &[u8], max: i64) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&mac[..8]);
    let u = u128::from(u64::from_be_bytes(first));
    let n = (2 * max + 1) as u128;
    ((u * n) >> 64) as i64 - max
}

/// `date_shift(date, person_id, key_name, max_days) -> date`: moves `date` by a per-person
/// offset of `-max_days..=max_days` days, derived from HMAC-SHA-256 of the person's canonical
/// bytes (as in `pseudonymize`) under the named key. The same person always gets the same offset,
/// so intervals within a person are exact; offsets are uniform and unpredictable without the key.
///
/// Accepts `Date32` (and `Date64`, returned as `Date32`) and timestamps of any unit and time
/// zone (returned in the same type, shifted by whole days). `key_name` and `max_days` must be
/// literals (`max_days` in 0..=36500). NULL date or NULL person gives NULL.
///
/// ```sql
/// SELECT date_shift(admitted_on, patient_id, 'provision_2026_04', 180);
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateShift {
    signature: Signature,
    keys: SharedRing,
}

impl DateShift {
    /// The function over `keys`.
    pub fn new(keys: Arc<dyn KeyRing>) -> Self {
        let mut sigs = vec![];
        for date in [TypeSignatureClass::Native(logical_date()), TypeSignatureClass::Timestamp] {
            for id in id_classes() {
                sigs.push(TypeSignature::Coercible(vec![
                    Coercion::new_exact(date.clone()),
                    Coercion::new_exact(id),
                    string_literal(),
                    Coercion::new_exact(TypeSignatureClass::Integer),
                ]));
            }
        }
        Self { signature: Signature::one_of(sigs, Volatility::Immutable), keys: SharedRing(keys) }
    }
}

fn output_type(input: &DataType) -> DataType {
    match input {
        DataType::Timestamp(unit, tz) => DataType::Timestamp(*unit, tz.clone()),
        _ => DataType::Date32,
    }
}

fn shift_timestamps<T: ArrowTimestampType>(
    array: &ArrayRef,
    offsets: &[Option<i64>],
    per_day: i64,
    tz: Option<Arc<str>>,
) -> Result<ArrayRef> {
    let ts = array.as_primitive::<T>();
    let out: PrimitiveArray<T> = ts
        .iter()
        .zip(offsets)
        .map(|(t, o)| match (t, o) {
            (Some(t), Some(o)) => o
                .checked_mul(per_day)
                .and_then(|d| t.checked_add(d))
                .map(Some)
                .ok_or(Error::OutOfRange { function: NAME, what: "the timestamp type" }),
            _ => Ok(None),
        })
        .collect::<Result<_, Error>>()?;
    Ok(Arc::new(out.with_timezone_opt(tz)))
}

impl ScalarUDFImpl for DateShift {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(output_type(args.first().unwrap_or(&DataType::Date32)))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(v) = planned_literal(&args, 2, NAME, "key_name")? {
            check_key(self.keys.0.as_ref(), lit_str(v, NAME, "key_name", KEY_EXPECTED)?)?;
        }
        if let Some(v) = planned_literal(&args, 3, NAME, "max_days")? {
            lit_i64_in(v, MAX_DAYS, NAME, "max_days", MAX_DAYS_EXPECTED)?;
        }
        let input = args.arg_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Date32);
        Ok(field(NAME, output_type(&input)))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [date, person, _, _] = args.args.as_slice() else {
            return internal_err!("{NAME} takes four arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let dates = date.to_array(n)?;
        let persons = person.to_array(n)?;
        let key_name = match exec_literal(&args.args, 2, NAME, "key_name")? {
            Some(v) => lit_str(v, NAME, "key_name", KEY_EXPECTED)?,
            None => None,
        };
        let max_days = match exec_literal(&args.args, 3, NAME, "max_days")? {
            Some(v) => lit_i64_in(v, MAX_DAYS, NAME, "max_days", MAX_DAYS_EXPECTED)?,
            None => None,
        };

        let mut offsets: Vec<Option<i64>> = Vec::with_capacity(n);
        match (key_name, max_days) {
            (Some(name), Some(max)) => {
                let mut base: HmacSha256 = keyed_mac(self.keys.0.as_ref(), name)?;
                base.update(DOMAIN);
                for_each_id(&persons, |id| {
                    offsets.push(id.map(|bytes| {
                        let mut m = base.clone();
                        m.update(bytes);
                        offset_of(&m.finalize().into_bytes(), max)
                    }));
                    Ok(())
                })?;
            }
            _ => offsets.resize(n, None),
        }

        let out: ArrayRef = match dates.data_type().clone() {
            DataType::Timestamp(unit, tz) => match unit {
                TimeUnit::Second => shift_timestamps::<TimestampSecondType>(&dates, &offsets, 86_400, tz)?,
                TimeUnit::Millisecond => {
                    shift_timestamps::<TimestampMillisecondType>(&dates, &offsets, 86_400_000, tz)?
                }
                TimeUnit::Microsecond => {
                    shift_timestamps::<TimestampMicrosecondType>(&dates, &offsets, 86_400_000_000, tz)?
                }
                TimeUnit::Nanosecond => {
                    shift_timestamps::<TimestampNanosecondType>(&dates, &offsets, 86_400_000_000_000, tz)?
                }
            },
            _ => {
                let days = crate::args::dates(&dates, NAME, "date")?;
                let out: Date32Array = days
                    .iter()
                    .zip(&offsets)
                    .map(|(d, o)| match (d, o) {
                        (Some(d), Some(o)) => i32::try_from(i64::from(d) + o)
                            .map(Some)
                            .map_err(|_| Error::OutOfRange { function: NAME, what: "the date type" }),
                        _ => Ok(None),
                    })
                    .collect::<Result<_, Error>>()?;
                Arc::new(out)
            }
        };
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "Shifts a date or timestamp by a per-person offset in [-max_days, max_days], derived from \
                 HMAC-SHA-256 of the person id under the named key: every date of one person moves by the \
                 same number of days. NULL date or person gives NULL.",
                "date_shift(date, person_id, key_name, max_days)",
            )
            .with_sql_example("SELECT date_shift(admitted_on, patient_id, 'provision_2026_04', 180);")
            .with_argument("date", "Date or timestamp.")
            .with_argument("person_id", "String or integer person identifier.")
            .with_argument("key_name", "String literal: the name of a key in the server's key ring.")
            .with_argument("max_days", "Integer literal, 0 to 36500: the largest shift in days.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_cover_the_range() {
        assert_eq!(offset_of(&[0u8; 32], 180), -180);
        assert_eq!(offset_of(&[0xffu8; 32], 180), 180);
        let mut half = [0u8; 32];
        half[0] = 0x80;
        assert_eq!(offset_of(&half, 180), 0);
        assert_eq!(offset_of(&[0x42u8; 32], 0), 0);
    }

    #[test]
    fn offsets_are_roughly_uniform() {
        use sha2::Digest;
        let mut counts = [0u32; 7];
        for i in 0..70_000u32 {
            let h = sha2::Sha256::digest(i.to_be_bytes());
            counts[(offset_of(&h, 3) + 3) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }
}
