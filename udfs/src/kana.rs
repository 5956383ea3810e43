//! `kana_normalize(s)`: one spelling for a kana name, for 名寄せ (record linkage).
//!
//! Legacy systems send half-width kana with separate voicing marks (`ﾔﾏﾀﾞ ﾀﾛｳ`), others drop
//! small kana (`ハツトリ` for `ハットリ`), write hiragana, or put spaces and middle dots between
//! family and given names. Every such spelling of a name must normalise to the same string.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::types::logical_string;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignatureClass,
    Volatility,
};
use kura_linkage::kana::normalize_into;

use crate::args::{SECTION, finish, for_each_str, rows};

const NAME: &str = "kana_normalize";

/// `kana_normalize(s) -> Utf8`: the comparison form of a kana name.
///
/// In order:
/// 1. NFKC: half-width kana and their voicing marks to full-width, full-width ASCII to ASCII;
/// 2. hiragana to katakana;
/// 3. spaces (any whitespace, including U+3000) and middle dots (`・ ･ ·`) dropped;
/// 4. ヴ plus a small vowel to one syllable (ヴァ バ, ヴィ ビ, ヴゥ ブ, ヴェ ベ, ヴォ ボ), ヴャ ヴュ ヴョ
///    to ビヤ ビユ ビヨ, any other ヴ to ブ (ヷ ヸ ヹ ヺ to バ ビ ベ ボ);
/// 5. small kana to large (ァィゥェォ アイウエオ, ッ ツ, ャュョ ヤユヨ, ヮ ワ, ヵ カ, ヶ ケ);
/// 6. ヂ to ジ, ヅ to ズ;
/// 7. the long vowel mark ー kept; hyphen-like characters (`- ‐ ‑ ‒ – — ― − ｰ －`) right after a
///    kana become ー (elsewhere they are kept).
///
/// Other characters (kanji, Latin letters, digits) only go through NFKC. NULL gives NULL.
///
/// ```sql
/// SELECT kana_normalize('ﾔﾏﾀﾞ ﾀﾛｳ'), kana_normalize('はっとり　きょうこ'); -- 'ヤマダタロウ', 'ハツトリキヨウコ'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KanaNormalize {
    signature: Signature,
}

impl Default for KanaNormalize {
    fn default() -> Self {
        Self::new()
    }
}

impl KanaNormalize {
    /// The function, ready to register.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(logical_string()))],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for KanaNormalize {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return internal_err!("{NAME} takes one argument");
        };
        let n = rows(&args.args, args.number_rows);
        let values = text.to_array(n)?;
        let mut out = StringBuilder::with_capacity(n, n * 24);
        let mut buf = String::new();
        for_each_str(values.as_ref(), |s| {
            match s {
                Some(s) => {
                    normalize_into(s, &mut buf);
                    out.append_value(&buf);
                }
                None => out.append_null(),
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
                "Comparison form of a kana name: NFKC, hiragana to katakana, spaces and middle dots dropped, \
                 small kana to large, ヂ->ジ, ヅ->ズ, ヴ->ブ (ヴァ->バ ...), hyphens after kana to ー. NULL gives NULL.",
                "kana_normalize(s)",
            )
            .with_sql_example("SELECT kana_normalize('ﾔﾏﾀﾞ ﾀﾛｳ'); -- 'ヤマダタロウ'")
            .with_argument("s", "String: a name in kana.")
            .build()
        }))
    }
}
