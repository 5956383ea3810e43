//! `mask_text(s, keep_first, keep_last [, mask_char])`: partial masking of free text and
//! identifiers for display (`山田太郎` -> `山**郎`).

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::types::logical_string;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};

use crate::args::{
    SECTION, exec_literal, field, finish, for_each_str, lit_i64_in, lit_str, planned_literal, rows, string_literal,
};
use crate::error::Error;

const NAME: &str = "mask_text";
const KEEP_EXPECTED: &str = "an integer literal from 0 to 1000";
const CHAR_EXPECTED: &str = "a one-character string literal";

/// Masks `s` into `out`: keeps the first `first` and last `last` characters and replaces each
/// other character with `mask`. When that would mask nothing (the string has at most
/// `first + last` characters), every character is masked instead.
pub(crate) fn mask_into(s: &str, first: usize, last: usize, mask: char, out: &mut String) {
    out.clear();
    let n = if s.is_ascii() { s.len() } else { s.chars().count() };
    if n <= first + last {
        // SECURITY: never return the input unchanged from a masking function.
        out.extend(std::iter::repeat_n(mask, n));
        return;
    }
    let byte_at = |k: usize| if s.is_ascii() { k } else { s.char_indices().nth(k).map_or(s.len(), |(i, _)| i) };
    let head_end = byte_at(first);
    let tail_start = byte_at(n - last);
    out.push_str(&s[..head_end]);
    out.extend(std::iter::repeat_n(mask, n - first - last));
    out.push_str(&s[tail_start..]);
}

/// `mask_text(s, keep_first, keep_last [, mask_char]) -> Utf8`: keeps the first `keep_first` and
/// the last `keep_last` characters (Unicode scalar values, not bytes) and replaces every other
/// character with `mask_char` (default `'*'`), preserving the length.
///
/// A string with no character left to mask (at most `keep_first + keep_last` characters) is
/// fully masked, so the function never returns its input unchanged; the empty string stays
/// empty. `keep_first` and `keep_last` are integer literals (0..=1000); `mask_char` is a
/// one-character literal. NULL gives NULL.
///
/// ```sql
/// SELECT mask_text('山田太郎', 1, 1);      -- '山**郎'
/// SELECT mask_text('09012345678', 3, 2, '#'); -- '090######78'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskText {
    signature: Signature,
}

impl Default for MaskText {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskText {
    /// The function, ready to register.
    pub fn new() -> Self {
        let string = || Coercion::new_exact(TypeSignatureClass::Native(logical_string()));
        let int = || Coercion::new_exact(TypeSignatureClass::Integer);
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string(), int(), int()]),
                    TypeSignature::Coercible(vec![string(), int(), int(), string_literal()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

/// `(keep_first, keep_last, mask_char)`, `None` if one is NULL.
fn config(
    first: Option<&ScalarValue>,
    last: Option<&ScalarValue>,
    mask: Option<&ScalarValue>,
) -> Result<Option<(usize, usize, char)>> {
    let keep = |v: Option<&ScalarValue>, argument| match v {
        Some(v) => lit_i64_in(v, 0..=1000, NAME, argument, KEEP_EXPECTED).map(|k| k.map(|k| k as usize)),
        None => internal_err!("{NAME} takes three or four arguments"),
    };
    let (Some(first), Some(last)) = (keep(first, "keep_first")?, keep(last, "keep_last")?) else {
        return Ok(None);
    };
    let mask = match mask {
        None => '*',
        Some(v) => {
            let Some(s) = lit_str(v, NAME, "mask_char", CHAR_EXPECTED)? else {
                return Ok(None);
            };
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(Error::InvalidArgument {
                        function: NAME,
                        argument: "mask_char",
                        expected: CHAR_EXPECTED,
                    }
                    .into());
                }
            }
        }
    };
    Ok(Some((first, last, mask)))
}

impl ScalarUDFImpl for MaskText {
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
        let first = planned_literal(&args, 1, NAME, "keep_first")?;
        let last = planned_literal(&args, 2, NAME, "keep_last")?;
        let mask = planned_literal(&args, 3, NAME, "mask_char")?;
        if first.is_some() && last.is_some() {
            config(first, last, mask)?;
        }
        Ok(field(NAME, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(text) = args.args.first() else {
            return internal_err!("{NAME} takes three or four arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let values = text.to_array(n)?;
        let config = config(
            exec_literal(&args.args, 1, NAME, "keep_first")?,
            exec_literal(&args.args, 2, NAME, "keep_last")?,
            exec_literal(&args.args, 3, NAME, "mask_char")?,
        )?;
        let mut out = StringBuilder::with_capacity(n, n * 16);
        let mut buf = String::new();
        for_each_str(values.as_ref(), |s| {
            match (s, config) {
                (Some(s), Some((first, last, mask))) => {
                    mask_into(s, first, last, mask, &mut buf);
                    out.append_value(&buf);
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
                "Keeps the first keep_first and last keep_last characters and masks the rest with mask_char \
                 (default '*'), preserving length. A string with nothing left to mask is fully masked. NULL \
                 gives NULL.",
                "mask_text(s, keep_first, keep_last [, mask_char])",
            )
            .with_sql_example("SELECT mask_text('山田太郎', 1, 1); -- '山**郎'")
            .with_argument("s", "String to mask.")
            .with_argument("keep_first", "Integer literal 0..1000: leading characters to keep.")
            .with_argument("keep_last", "Integer literal 0..1000: trailing characters to keep.")
            .with_argument("mask_char", "Optional one-character string literal, default '*'.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_by_character() {
        let mut out = String::new();
        let mut m = |s, f, l, c| {
            mask_into(s, f, l, c, &mut out);
            out.clone()
        };
        assert_eq!(m("山田太郎", 1, 1, '*'), "山**郎");
        assert_eq!(m("09012345678", 3, 2, '#'), "090######78");
        assert_eq!(m("山田", 1, 1, '*'), "**");
        assert_eq!(m("山", 2, 0, '＊'), "＊");
        assert_eq!(m("", 1, 1, '*'), "");
        assert_eq!(m("abcdef", 0, 0, '*'), "******");
        assert_eq!(m("abcdef", 0, 2, '*'), "****ef");
        assert_eq!(m("ｱｲｳｴｵ", 2, 0, '*'), "ｱｲ***");
    }
}
