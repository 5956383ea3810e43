//! Code truncation: `postal_truncate(postal, digits)` (郵便番号 to its first digits, e.g. the
//! 3-digit area) and `icd10_truncate(code, len)` (an ICD-10 code to its category or subcategory).
//! Both return NULL for malformed input rather than failing the query: codes typed by hand are
//! often malformed, and an error would make the query an oracle for which rows are.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::types::logical_string;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignatureClass, Volatility,
};
use unicode_normalization::UnicodeNormalization;

use crate::args::{SECTION, exec_literal, field, finish, for_each_str, lit_i64_in, planned_literal, rows};

/// `(string, integer literal)`: the shape of both functions here.
fn string_and_int() -> Signature {
    Signature::coercible(
        vec![
            Coercion::new_exact(TypeSignatureClass::Native(logical_string())),
            Coercion::new_exact(TypeSignatureClass::Integer),
        ],
        Volatility::Immutable,
    )
}

/// NFKC (full-width digits and letters to ASCII) only when the text is not already ASCII.
fn nfkc_into<'a>(s: &'a str, buf: &'a mut String) -> &'a str {
    if s.is_ascii() {
        s
    } else {
        buf.clear();
        buf.extend(s.nfkc());
        buf
    }
}

/// Characters written between the 3- and 4-digit parts of a postal code (after NFKC): ASCII
/// hyphen, Unicode hyphens and dashes, minus, and the katakana long vowel mark that Japanese
/// input methods often produce instead of a hyphen.
fn is_hyphen_like(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}')
}

/// The 7 digits of a Japanese postal code written `8020011`, `802-0011`, `〒802-0011` or in
/// full-width digits, surrounded by optional whitespace; `None` otherwise.
pub(crate) fn postal_digits(s: &str, buf: &mut String) -> Option<[u8; 7]> {
    let s = nfkc_into(s, buf).trim();
    let s = s.strip_prefix('〒').unwrap_or(s).trim_start();
    let mut digits = [0u8; 7];
    let mut n = 0;
    let mut hyphen = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            *digits.get_mut(n)? = c as u8;
            n += 1;
        } else if is_hyphen_like(c) && n == 3 && !hyphen {
            hyphen = true;
        } else {
            return None;
        }
    }
    (n == 7).then_some(digits)
}

const POSTAL: &str = "postal_truncate";
const DIGITS_EXPECTED: &str = "an integer literal from 1 to 7";

/// `postal_truncate(postal, digits) -> Utf8`: the first `digits` digits (literal, 1..=7) of a
/// Japanese 7-digit postal code.
///
/// Accepts `8020011`, `802-0011`, `〒802-0011`, full-width digits and hyphens (via NFKC),
/// Unicode hyphens/dashes/minus and `ー` as the separator, and surrounding spaces. Anything
/// else (wrong digit count, letters, a separator elsewhere) gives NULL, as does NULL input.
/// Integers are not accepted: a numeric column has lost the leading zero of codes such as
/// `060-0001`.
///
/// ```sql
/// SELECT postal_truncate('８０２－００１１', 3); -- '802'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PostalTruncate {
    signature: Signature,
}

impl Default for PostalTruncate {
    fn default() -> Self {
        Self::new()
    }
}

impl PostalTruncate {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self { signature: string_and_int() }
    }
}

fn postal_len(v: &ScalarValue) -> Result<Option<usize>> {
    Ok(lit_i64_in(v, 1..=7, POSTAL, "digits", DIGITS_EXPECTED)?.map(|d| d as usize))
}

impl ScalarUDFImpl for PostalTruncate {
    fn name(&self) -> &str {
        POSTAL
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(v) = planned_literal(&args, 1, POSTAL, "digits")? {
            postal_len(v)?;
        }
        Ok(field(POSTAL, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(postal) = args.args.first() else {
            return internal_err!("{POSTAL} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let values = postal.to_array(n)?;
        let digits = match exec_literal(&args.args, 1, POSTAL, "digits")? {
            Some(v) => postal_len(v)?,
            None => None,
        };
        let mut out = StringBuilder::with_capacity(n, n * digits.unwrap_or(0));
        let mut buf = String::new();
        for_each_str(values.as_ref(), |s| {
            match (s.and_then(|s| postal_digits(s, &mut buf)), digits) {
                (Some(code), Some(d)) => {
                    out.append_value(std::str::from_utf8(&code[..d]).expect("ASCII digits"));
                }
                _ => out.append_null(),
            }
            Ok(())
        })?;
        let out: ArrayRef = Arc::new(out.finish());
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "The first digits of a Japanese 7-digit postal code ('8020011', '802-0011', '〒802-0011', \
                 full-width). Malformed codes and NULL give NULL.",
                "postal_truncate(postal, digits)",
            )
            .with_sql_example("SELECT postal_truncate('802-0011', 3); -- '802'")
            .with_argument("postal", "String postal code.")
            .with_argument("digits", "Integer literal 1..7: how many leading digits to keep.")
            .build()
        }))
    }
}

/// A normalised ICD-10 code: uppercase, without `.`, whitespace or a trailing dagger/asterisk
/// mark (`+`, `*`, `†`), validated as one letter and at least two digits. `None` if malformed.
pub(crate) fn icd10_normalize<'a>(s: &str, nfkc: &mut String, out: &'a mut String) -> Option<&'a str> {
    let s = nfkc_into(s, nfkc);
    out.clear();
    out.extend(s.chars().filter(|c| *c != '.' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()));
    if out.ends_with(['+', '*', '†']) {
        out.pop();
    }
    let mut chars = out.chars();
    let letter_first = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let rest = chars.as_str();
    (letter_first && rest.len() >= 2 && rest.bytes().all(|b| b.is_ascii_digit())).then_some(out.as_str())
}

const ICD10: &str = "icd10_truncate";
const LEN_EXPECTED: &str = "an integer literal from 3 to 16";

/// `icd10_truncate(code, len) -> Utf8`: an ICD-10 code normalised (uppercase; `.`, spaces and a
/// trailing dagger/asterisk mark `+ * †` dropped; full-width via NFKC) and cut to its first `len`
/// characters (literal, 3..=16): 3 gives the category (`E11`), 4 the subcategory (`E119`).
///
/// A code that is not one letter followed by at least two digits gives NULL, as does NULL.
/// Shorter codes than `len` are returned whole.
///
/// ```sql
/// SELECT icd10_truncate('e11.9', 3); -- 'E11'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Icd10Truncate {
    signature: Signature,
}

impl Default for Icd10Truncate {
    fn default() -> Self {
        Self::new()
    }
}

impl Icd10Truncate {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self { signature: string_and_int() }
    }
}

fn icd_len(v: &ScalarValue) -> Result<Option<usize>> {
    Ok(lit_i64_in(v, 3..=16, ICD10, "len", LEN_EXPECTED)?.map(|d| d as usize))
}

impl ScalarUDFImpl for Icd10Truncate {
    fn name(&self) -> &str {
        ICD10
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(v) = planned_literal(&args, 1, ICD10, "len")? {
            icd_len(v)?;
        }
        Ok(field(ICD10, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(code) = args.args.first() else {
            return internal_err!("{ICD10} takes two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let values = code.to_array(n)?;
        let len = match exec_literal(&args.args, 1, ICD10, "len")? {
            Some(v) => icd_len(v)?,
            None => None,
        };
        let mut out = StringBuilder::with_capacity(n, n * len.unwrap_or(0).min(5));
        let (mut nfkc, mut norm) = (String::new(), String::new());
        for_each_str(values.as_ref(), |s| {
            match (s.and_then(|s| icd10_normalize(s, &mut nfkc, &mut norm)), len) {
                // ASCII after validation, so byte slicing is character slicing.
                (Some(code), Some(len)) => out.append_value(&code[..len.min(code.len())]),
                _ => out.append_null(),
            }
            Ok(())
        })?;
        let out: ArrayRef = Arc::new(out.finish());
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "Normalises an ICD-10 code (uppercase, no '.', spaces or trailing +/*/† mark) and keeps its \
                 first len characters. Malformed codes (not a letter and 2+ digits) and NULL give NULL.",
                "icd10_truncate(code, len)",
            )
            .with_sql_example("SELECT icd10_truncate('e11.9', 3); -- 'E11'")
            .with_argument("code", "String ICD-10 code.")
            .with_argument("len", "Integer literal 3..16: characters to keep.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_forms() {
        let mut b = String::new();
        let p = |s: &str, b: &mut String| postal_digits(s, b).map(|d| String::from_utf8(d.to_vec()).unwrap());
        assert_eq!(p("8020011", &mut b).as_deref(), Some("8020011"));
        assert_eq!(p("802-0011", &mut b).as_deref(), Some("8020011"));
        assert_eq!(p("〒802-0011", &mut b).as_deref(), Some("8020011"));
        assert_eq!(p("８０２－００１１", &mut b).as_deref(), Some("8020011"));
        assert_eq!(p("８０２ー００１１", &mut b).as_deref(), Some("8020011"));
        assert_eq!(p(" 060-0001 ", &mut b).as_deref(), Some("0600001"));
        assert_eq!(p("80-20011", &mut b), None);
        assert_eq!(p("802-00111", &mut b), None);
        assert_eq!(p("802001", &mut b), None);
        assert_eq!(p("802-0O11", &mut b), None);
        assert_eq!(p("", &mut b), None);
        assert_eq!(p("802--0011", &mut b), None);
    }

    #[test]
    fn icd10_forms() {
        let (mut a, mut b) = (String::new(), String::new());
        let mut n = |s: &str| icd10_normalize(s, &mut a, &mut b).map(str::to_string);
        assert_eq!(n("e11.9").as_deref(), Some("E119"));
        assert_eq!(n(" I10 ").as_deref(), Some("I10"));
        assert_eq!(n("Ｃ１８．９").as_deref(), Some("C189"));
        assert_eq!(n("A18.0+").as_deref(), Some("A180"));
        assert_eq!(n("M49.0*").as_deref(), Some("M490"));
        assert_eq!(n("E1"), None);
        assert_eq!(n("11.9"), None);
        assert_eq!(n("E1X"), None);
        assert_eq!(n(""), None);
    }
}
