//! Japanese era dates (和暦): `wareki_to_date(text)` and `to_wareki(date [, style])`.
//!
//! Era starts (the first day of year 1; each era ends the day before the next starts):
//!
//! | code | era | letter | first day |
//! | --- | --- | --- | --- |
//! | 1 | 明治 Meiji | M | 1868-01-25 |
//! | 2 | 大正 Taishō | T | 1912-07-30 |
//! | 3 | 昭和 Shōwa | S | 1926-12-25 |
//! | 4 | 平成 Heisei | H | 1989-01-08 |
//! | 5 | 令和 Reiwa | R | 2019-05-01 |
//!
//! Meiji starts on 1868-01-25, the Gregorian date of Keiō 4 (Meiji 1) 1/1, because the era was
//! applied from the first day of that year, rather than on 1868-10-23, the day of the
//! proclamation. Dates before M6.1.1 (1873-01-01) were lunisolar in their time; like claims
//! systems, we read every era date as Gregorian.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, Date32Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::types::{logical_date, logical_string};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};
use unicode_normalization::UnicodeNormalization;

use crate::args::{
    SECTION, dates, exec_literal, field, finish, for_each_str, lit_str, planned_literal, rows, string_literal,
};
use crate::calendar::{checked_days, civil_from_days, days_from_civil};
use crate::error::Error;

struct Era {
    code: u32,
    letter: char,
    kanji: &'static str,
    start: (i32, u32, u32),
}

const ERAS: [Era; 5] = [
    Era { code: 1, letter: 'M', kanji: "明治", start: (1868, 1, 25) },
    Era { code: 2, letter: 'T', kanji: "大正", start: (1912, 7, 30) },
    Era { code: 3, letter: 'S', kanji: "昭和", start: (1926, 12, 25) },
    Era { code: 4, letter: 'H', kanji: "平成", start: (1989, 1, 8) },
    Era { code: 5, letter: 'R', kanji: "令和", start: (2019, 5, 1) },
];

fn era_start(i: usize) -> i32 {
    let (y, m, d) = ERAS[i].start;
    days_from_civil(y, m, d)
}

/// Why a text is not a date.
#[derive(Debug, PartialEq, Eq)]
enum Invalid {
    Malformed,
    OutsideEra,
}

/// The `Date32` of era `era` (index into [`ERAS`]), year `year`, `month`, `day`.
fn era_date(era: usize, year: u32, month: u32, day: u32) -> Result<i32, Invalid> {
    if year == 0 {
        return Err(Invalid::Malformed);
    }
    let y = ERAS[era].start.0 + year as i32 - 1;
    let d = checked_days(y, month, day).ok_or(Invalid::Malformed)?;
    let after_end = ERAS.get(era + 1).is_some_and(|_| d >= era_start(era + 1));
    if d < era_start(era) || after_end { Err(Invalid::OutsideEra) } else { Ok(d) }
}

/// A run of 1..=`max` ASCII digits at the start of `s`, and the rest.
fn number(s: &str, max: usize) -> Option<(u32, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > max {
        return None;
    }
    Some((s[..len].parse().ok()?, &s[len..]))
}

/// Parses a Japanese era date (see [`WarekiToDate`]); `Ok(None)` for blank text.
fn parse(text: &str, nfkc: &mut String) -> Result<Option<i32>, Invalid> {
    let s = if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_whitespace()) {
        text
    } else {
        // NFKC: full-width letters and digits, and the era ligatures ㍾㍽㍼㍻㋿ (明治..令和).
        nfkc.clear();
        nfkc.extend(text.nfkc().filter(|c| !c.is_whitespace()));
        nfkc.as_str()
    };
    if s.is_empty() {
        return Ok(None);
    }
    // Claims form: era code + YYMMDD.
    if s.len() == 7 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
        let era = ERAS.iter().position(|e| e.code == n(0..1)).ok_or(Invalid::Malformed)?;
        return era_date(era, n(1..3), n(3..5), n(5..7)).map(Some);
    }
    let (era, rest) = ERAS
        .iter()
        .enumerate()
        .find_map(|(i, e)| {
            let upper = s.chars().next().map(|c| c.to_ascii_uppercase());
            if upper == Some(e.letter) { Some((i, &s[1..])) } else { s.strip_prefix(e.kanji).map(|rest| (i, rest)) }
        })
        .ok_or(Invalid::Malformed)?;
    let (year, rest) = match rest.strip_prefix('元') {
        Some(rest) => (1, rest),
        None => number(rest, 3).ok_or(Invalid::Malformed)?,
    };
    let kanji = rest.starts_with('年');
    let rest = rest.strip_prefix(['.', '/', '-', '年']).ok_or(Invalid::Malformed)?;
    let (month, rest) = number(rest, 2).ok_or(Invalid::Malformed)?;
    let rest = if kanji { rest.strip_prefix('月') } else { rest.strip_prefix(['.', '/', '-']) };
    let (day, rest) = number(rest.ok_or(Invalid::Malformed)?, 2).ok_or(Invalid::Malformed)?;
    let rest = if kanji { rest.strip_prefix('日').unwrap_or(rest) } else { rest };
    if !rest.is_empty() {
        return Err(Invalid::Malformed);
    }
    era_date(era, year, month, day).map(Some)
}

/// The date of a claims-file era date: era code (1 明治 .. 5 令和) + `YYMMDD`, e.g. `5070401`
/// for 2025-04-01, as days since 1970-01-01 (Arrow `Date32`). `None` if `text` is not seven
/// digits naming a day of that era.
pub fn era_code_date(text: &str) -> Option<i32> {
    let s = text.as_bytes();
    if s.len() != 7 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().unwrap_or(0);
    let era = ERAS.iter().position(|e| e.code == n(0..1))?;
    era_date(era, n(1..3), n(3..5), n(5..7)).ok()
}

/// The first day of a claims-file era month: era code + `YYMM`, e.g. `50704` for 2025-04 (a
/// service or billing month). `None` if `text` is not five digits naming a month that era
/// covers at least in part (平成元年1月, whose first week was 昭和, is a valid month).
pub fn era_code_month(text: &str) -> Option<i32> {
    let s = text.as_bytes();
    if s.len() != 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().unwrap_or(0);
    let era = ERAS.iter().position(|e| e.code == n(0..1))?;
    let (year, month) = (n(1..3), n(3..5));
    if year == 0 || !(1..=12).contains(&month) {
        return None;
    }
    let y = ERAS[era].start.0 + year as i32 - 1;
    let first = days_from_civil(y, month, 1);
    let last = days_from_civil(y, month, crate::calendar::days_in_month(y, month));
    let starts_in_time = last >= era_start(era);
    let ends_in_time = ERAS.get(era + 1).is_none_or(|_| first < era_start(era + 1));
    (starts_in_time && ends_in_time).then_some(first)
}

const TO_DATE: &str = "wareki_to_date";

/// `wareki_to_date(text) -> Date32`: reads a Japanese era date.
///
/// Accepted forms (full-width characters and spaces allowed; era letters in either case):
/// - short: `R7.4.1`, `R07.04.01`, `H31/4/30`, `S64-1-7`, `R元.5.1`;
/// - kanji: `令和7年4月1日`, `令和元年5月1日`, `㋿7年4月1日` (the trailing 日 is optional);
/// - claims (レセプト電算) code: era code (1 明治, 2 大正, 3 昭和, 4 平成, 5 令和) + YYMMDD:
///   `5070401` is 2025-04-01.
///
/// Era years run from the era's first day to the day before the next era (`H31.4.30` is the last
/// day of Heisei, `H31.5.1` is an error, `R1.5.1` the first day of Reiwa; `S64.1.7` is the last
/// day of Shōwa, `H1.1.8` the first of Heisei). Meiji starts on 1868-01-25 (module docs).
///
/// NULL and blank text give NULL. Malformed text, an impossible date (`R7.2.30`) or a date
/// outside its era is an error that names the argument and the expected form, never the value.
///
/// ```sql
/// SELECT wareki_to_date('令和元年5月1日'); -- 2019-05-01
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WarekiToDate {
    signature: Signature,
}

impl Default for WarekiToDate {
    fn default() -> Self {
        Self::new()
    }
}

impl WarekiToDate {
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

impl ScalarUDFImpl for WarekiToDate {
    fn name(&self) -> &str {
        TO_DATE
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return internal_err!("{TO_DATE} takes one argument");
        };
        let n = rows(&args.args, args.number_rows);
        let values = text.to_array(n)?;
        let mut out = Vec::with_capacity(n);
        let mut nfkc = String::new();
        for_each_str(values.as_ref(), |s| {
            let d = match s {
                None => None,
                // SECURITY: the error names the argument and the form, not the text.
                Some(s) => parse(s, &mut nfkc).map_err(|e| Error::InvalidValue {
                    function: TO_DATE,
                    argument: "text",
                    expected: match e {
                        Invalid::Malformed => "a Japanese era date such as R7.4.1, 令和7年4月1日 or 5070401",
                        Invalid::OutsideEra => "a date within its era",
                    },
                })?,
            };
            out.push(d);
            Ok(())
        })?;
        let out: ArrayRef = Arc::new(Date32Array::from(out));
        finish(out, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                SECTION,
                "Reads a Japanese era date: 'R7.4.1', 'R07.04.01', '令和7年4月1日', '令和元年5月1日', or the \
                 claims code era digit + YYMMDD ('5070401'). Blank gives NULL; malformed text or a date \
                 outside its era is an error that does not quote the value.",
                "wareki_to_date(text)",
            )
            .with_sql_example("SELECT wareki_to_date('H31.4.30'); -- 2019-04-30")
            .with_argument("text", "String era date.")
            .build()
        }))
    }
}

#[derive(Clone, Copy)]
enum Style {
    Short,
    Kanji,
    Code,
}

const TO_WAREKI: &str = "to_wareki";
const STYLE_EXPECTED: &str = "one of 'short', 'kanji', 'code'";

fn style(v: Option<&datafusion::common::ScalarValue>) -> Result<Option<Style>> {
    let Some(v) = v else { return Ok(Some(Style::Short)) };
    let Some(s) = lit_str(v, TO_WAREKI, "style", STYLE_EXPECTED)? else {
        return Ok(None);
    };
    Ok(Some(match s.to_ascii_lowercase().as_str() {
        "short" => Style::Short,
        "kanji" => Style::Kanji,
        "code" => Style::Code,
        _ => {
            return Err(
                Error::InvalidArgument { function: TO_WAREKI, argument: "style", expected: STYLE_EXPECTED }.into()
            );
        }
    }))
}

/// Writes `days` in `style` into `buf`; false if it has no era form (before Meiji, or a year
/// beyond 99 in the 7-digit code).
fn format_wareki(days: i32, style: Style, buf: &mut String) -> bool {
    use std::fmt::Write;
    buf.clear();
    let Some(i) = (0..ERAS.len()).rev().find(|&i| days >= era_start(i)) else {
        return false;
    };
    let era = &ERAS[i];
    let (y, m, d) = civil_from_days(days);
    let year = (y - era.start.0 + 1) as u32;
    let _ = match style {
        Style::Short => write!(buf, "{}{year}.{m}.{d}", era.letter),
        Style::Kanji if year == 1 => write!(buf, "{}元年{m}月{d}日", era.kanji),
        Style::Kanji => write!(buf, "{}{year}年{m}月{d}日", era.kanji),
        Style::Code if year > 99 => return false,
        Style::Code => write!(buf, "{}{year:02}{m:02}{d:02}", era.code),
    };
    true
}

/// `to_wareki(date [, style]) -> Utf8`: a date in its Japanese era.
///
/// `style` is a literal: `'short'` (default) gives `R7.4.1`, `'kanji'` gives `令和7年4月1日`
/// (the first year as 元年: `令和元年5月1日`), `'code'` gives the claims form `5070401`.
/// Accepts dates and timestamps (zoned timestamps use their local date). NULL, dates before
/// Meiji (1868-01-25) and, in `'code'` style, era years beyond 99 give NULL.
///
/// ```sql
/// SELECT to_wareki(DATE '2019-04-30'), to_wareki(DATE '2019-05-01', 'kanji'); -- 'H31.4.30', '令和元年5月1日'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToWareki {
    signature: Signature,
}

impl Default for ToWareki {
    fn default() -> Self {
        Self::new()
    }
}

impl ToWareki {
    /// The function, ready to register.
    pub fn new() -> Self {
        let mut sigs = vec![];
        for date in [TypeSignatureClass::Native(logical_date()), TypeSignatureClass::Timestamp] {
            sigs.push(TypeSignature::Coercible(vec![Coercion::new_exact(date.clone())]));
            sigs.push(TypeSignature::Coercible(vec![Coercion::new_exact(date), string_literal()]));
        }
        Self { signature: Signature::one_of(sigs, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ToWareki {
    fn name(&self) -> &str {
        TO_WAREKI
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        style(planned_literal(&args, 1, TO_WAREKI, "style")?)?;
        Ok(field(TO_WAREKI, DataType::Utf8))
    }
    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(date) = args.args.first() else {
            return internal_err!("{TO_WAREKI} takes one or two arguments");
        };
        let n = rows(&args.args, args.number_rows);
        let days = dates(&date.to_array(n)?, TO_WAREKI, "date")?;
        let style = style(exec_literal(&args.args, 1, TO_WAREKI, "style")?)?;
        let mut out = StringBuilder::with_capacity(n, n * 12);
        let mut buf = String::with_capacity(32);
        for d in days.iter() {
            match (d, style) {
                (Some(d), Some(style)) if format_wareki(d, style, &mut buf) => out.append_value(&buf),
                _ => out.append_null(),
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
                "Formats a date in its Japanese era: 'short' (default) 'R7.4.1', 'kanji' '令和7年4月1日' \
                 (元年 for year 1), 'code' '5070401'. Dates before Meiji give NULL.",
                "to_wareki(date [, style])",
            )
            .with_sql_example("SELECT to_wareki(DATE '2019-05-01', 'kanji'); -- '令和元年5月1日'")
            .with_argument("date", "Date or timestamp.")
            .with_argument("style", "Optional string literal: 'short', 'kanji' or 'code'.")
            .build()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<(i32, u32, u32)>, Invalid> {
        parse(s, &mut String::new()).map(|d| d.map(civil_from_days))
    }

    #[test]
    fn claims_era_codes() {
        let d = |s: &str| era_code_date(s).map(civil_from_days);
        assert_eq!(d("5070401"), Some((2025, 4, 1)));
        assert_eq!(d("4310430"), Some((2019, 4, 30)));
        assert_eq!(d("4310501"), None, "平成31年5月1日 is 令和");
        assert_eq!(d("3501231"), Some((1975, 12, 31)));
        assert_eq!(d("6010101"), None, "no era 6");
        assert_eq!(d("507040"), None);
        assert_eq!(d("50704a1"), None);
        assert_eq!(d("5070231"), None);
        let m = |s: &str| era_code_month(s).map(civil_from_days);
        assert_eq!(m("50704"), Some((2025, 4, 1)));
        assert_eq!(m("40101"), Some((1989, 1, 1)), "平成元年1月 is a month 平成 covers in part");
        assert_eq!(m("43104"), Some((2019, 4, 1)));
        assert_eq!(m("43105"), None, "平成31年5月 is 令和");
        assert_eq!(m("50104"), None, "令和元年4月 is 平成");
        assert_eq!(m("50713"), None);
        assert_eq!(m("50004"), None);
    }

    #[test]
    fn forms() {
        assert_eq!(p("R7.4.1"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("R07.04.01"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("r7/4/1"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("Ｒ７．４．１"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("令和7年4月1日"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("令和 7年 4月 1日"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("㋿7年4月1日"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("令和元年5月1日"), Ok(Some((2019, 5, 1))));
        assert_eq!(p("R元.5.1"), Ok(Some((2019, 5, 1))));
        assert_eq!(p("5070401"), Ok(Some((2025, 4, 1))));
        assert_eq!(p("3640107"), Ok(Some((1989, 1, 7))));
        assert_eq!(p("  "), Ok(None));
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(p("H31.4.30"), Ok(Some((2019, 4, 30))));
        assert_eq!(p("H31.5.1"), Err(Invalid::OutsideEra));
        assert_eq!(p("R1.4.30"), Err(Invalid::OutsideEra));
        assert_eq!(p("R1.5.1"), Ok(Some((2019, 5, 1))));
        assert_eq!(p("S64.1.7"), Ok(Some((1989, 1, 7))));
        assert_eq!(p("S64.1.8"), Err(Invalid::OutsideEra));
        assert_eq!(p("H1.1.7"), Err(Invalid::OutsideEra));
        assert_eq!(p("H1.1.8"), Ok(Some((1989, 1, 8))));
        assert_eq!(p("T15.12.24"), Ok(Some((1926, 12, 24))));
        assert_eq!(p("S1.12.25"), Ok(Some((1926, 12, 25))));
        assert_eq!(p("M1.1.24"), Err(Invalid::OutsideEra));
        assert_eq!(p("M45.7.29"), Ok(Some((1912, 7, 29))));
        assert_eq!(p("H32.1.1"), Err(Invalid::OutsideEra));
    }

    #[test]
    fn malformed() {
        for s in ["R7.2.30", "R0.4.1", "X7.4.1", "R7.4", "R7.4.1.2", "R7年4.1", "6070401", "507041", "令和七年"] {
            assert_eq!(p(s), Err(Invalid::Malformed), "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let mut buf = String::new();
        for (y, m, d) in [(2019, 4, 30), (2019, 5, 1), (1989, 1, 7), (1989, 1, 8), (1926, 12, 25), (1868, 1, 25)] {
            let days = days_from_civil(y, m, d);
            for style in [Style::Short, Style::Kanji, Style::Code] {
                assert!(format_wareki(days, style, &mut buf));
                assert_eq!(parse(&buf, &mut String::new()), Ok(Some(days)), "{buf}");
            }
        }
        assert!(!format_wareki(days_from_civil(1868, 1, 24), Style::Short, &mut buf));
        assert!(format_wareki(days_from_civil(2019, 5, 1), Style::Kanji, &mut buf));
        assert_eq!(buf, "令和元年5月1日");
    }
}
