//! `pseudonymize(value, key_name)`: keyed, irreversible replacement of identifiers (仮名化).
//!
//! The pseudonym is HMAC-SHA-256 under a named secret key, so it is stable across batches and
//! datasets for one key, differs between keys (one key per provision keeps users from linking
//! their extracts), and cannot be recomputed by anyone who lacks the key, unlike a plain hash of
//! an insurance number, which a dictionary of all numbers reverses.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, UInt64Type};
use datafusion::common::types::logical_string;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::args::{SECTION, exec_literal, field, finish, lit_str, planned_literal, rows, string_literal};
use crate::error::Error;
use crate::keys::{KeyRing, SharedRing};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The HMAC state keyed with `name`'s bytes, ready to clone per row (cloning skips re-hashing
/// the key pads).
pub(crate) fn keyed_mac(keys: &dyn KeyRing, name: &str) -> Result<HmacSha256> {
    let key = keys.key(name).ok_or_else(|| Error::UnknownKey(name.to_string()))?;
    // HMAC accepts keys of any length; an error here would be a bug in the hmac crate.
    HmacSha256::new_from_slice(&key).map_err(|_| Error::UnknownKey(name.to_string()).into())
}

/// At planning, fails early on an unknown key name.
pub(crate) fn check_key(keys: &dyn KeyRing, name: Option<&str>) -> Result<()> {
    match name {
        Some(n) if keys.key(n).is_none() => Err(Error::UnknownKey(n.to_string()).into()),
        _ => Ok(()),
    }
}

/// Accepted identifier types: any string type, or any integer type.
pub(crate) fn id_classes() -> [TypeSignatureClass; 2] {
    [TypeSignatureClass::Native(logical_string()), TypeSignatureClass::Integer]
}

/// Decimal text of `v` in `buf`, without allocating.
fn decimal(v: i128, buf: &mut [u8; 40]) -> &[u8] {
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Calls `f` with the canonical bytes of every identifier: UTF-8 for strings, decimal text for
/// integers (so `42` and `'42'` are the same identifier), `None` for NULL.
pub(crate) fn for_each_id(array: &ArrayRef, mut f: impl FnMut(Option<&[u8]>) -> Result<()>) -> Result<()> {
    let mut buf = [0u8; 40];
    match array.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let ints = cast(array, &DataType::Int64)?;
            for v in ints.as_primitive::<Int64Type>().iter() {
                f(v.map(|v| decimal(i128::from(v), &mut buf)))?;
            }
            Ok(())
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let ints = cast(array, &DataType::UInt64)?;
            for v in ints.as_primitive::<UInt64Type>().iter() {
                f(v.map(|v| decimal(i128::from(v), &mut buf)))?;
            }
            Ok(())
        }
        _ => crate::args::for_each_str(array.as_ref(), |s| f(s.map(str::as_bytes))),
    }
}

/// Lowercase hex of the first 16 bytes.
fn hex16(bytes: &[u8], out: &mut [u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().take(16).enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

/// `pseudonymize(value, key_name) -> Utf8`: the lowercase hex of the first 16 bytes (128 bits)
/// of HMAC-SHA-256 under the key named `key_name`, over the value's canonical bytes (UTF-8 for
/// strings, decimal text for integers, so `42` and `'42'` agree).
///
/// `key_name` must be a literal naming a key in the function's [`KeyRing`]; the key bytes never
/// appear in SQL. NULL gives NULL. Deterministic for a key, hence `Immutable`.
///
/// ```sql
/// SELECT pseudonymize(insurer_no || symbol || number, 'provision_2026_04');
/// -- 32 hex characters, the same in every batch keyed with provision_2026_04
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Pseudonymize {
    signature: Signature,
    keys: SharedRing,
}

impl Pseudonymize {
    /// The function over `keys`.
    pub fn new(keys: Arc<dyn KeyRing>) -> Self {
        Self {
            signature: Signature::one_of(
                id_classes()
                    .into_iter()
                    .map(|id| TypeSignature::Coercible(vec![Coercion::new_exact(id), string_literal()]))
                    .collect(),
                Volatility::Immutable,
            ),
            keys: SharedRing(keys),
        }
    }
}

const NAME: &str = "pseudonymize";
const KEY_EXPECTED: &str = "a string literal naming a key";

impl ScalarUDFImpl for Pseudonymize {
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
        if let Some(v) = planned_literal(&args, 1, NAME, "key_name")? {
            check_key(self.keys.0.as_ref(), lit_str(v, NAME, "key_name", KEY_EXPECTED)?)?;
        }
        Ok(field(NAME, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, _] = args.args.as_slice() else {
            return internal_err!("{NAME} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let values = value.to_array(n)?;
        let key_name = match exec_literal(&args.args, 1, NAME, "key_name")? {
            Some(v) => lit_str(v, NAME, "key_name", KEY_EXPECTED)?,
            None => None,
        };
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 32);
        match key_name {
            None => (0..values.len()).for_each(|_| out.append_null()),
            Some(name) => {
                let mac = keyed_mac(self.keys.0.as_ref(), name)?;
                let mut hex = [0u8; 32];
                for_each_id(&values, |id| {
                    match id {
                        None => out.append_null(),
                        Some(bytes) => {
                            let mut m = mac.clone();
                            m.update(bytes);
                            hex16(&m.finalize().into_bytes(), &mut hex);
                            out.append_value(std::str::from_utf8(&hex).expect("hex is ASCII"));
                        }
                    }
                    Ok(())
                })?;
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
                "Keyed pseudonym: lowercase hex of the first 16 bytes of HMAC-SHA-256 under the named key, \
                 over UTF-8 (strings) or decimal text (integers). Stable for a key, different between keys, \
                 irreversible without the key. NULL gives NULL.",
                "pseudonymize(value, key_name)",
            )
            .with_sql_example("SELECT pseudonymize(patient_id, 'provision_2026_04'); -- 32 hex chars")
            .with_argument("value", "String or integer identifier.")
            .with_argument("key_name", "String literal: the name of a key in the server's key ring.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text() {
        let mut b = [0u8; 40];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(-42, &mut b), b"-42");
        assert_eq!(decimal(i128::from(i64::MIN), &mut b), b"-9223372036854775808");
        assert_eq!(decimal(i128::from(u64::MAX), &mut b), b"18446744073709551615");
    }

    #[test]
    fn rfc4231_case_2() {
        // HMAC-SHA-256 test vector: key "Jefe", data "what do ya want for nothing?".
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        let mut hex = [0u8; 32];
        hex16(&m.finalize().into_bytes(), &mut hex);
        assert_eq!(&hex, b"5bdcc146bf60754e6a042426089575c7");
    }
}
