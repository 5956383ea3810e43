//! Generalisation hierarchies and their encoding into per-level code tables.
//!
//! A hierarchy maps a quasi-identifier's value to a label at each level: level 0 is the value
//! itself (as text), each next level is coarser, and the last level is `*` for every value.
//! Invariants the search relies on, checked for every column before searching:
//! - each level is a function of the level below it (two values equal at level `i` are equal at
//!   level `i + 1`), so a node higher in the lattice only ever merges equivalence classes;
//! - NULL is a value of its own: it stays NULL at every level below the last and becomes `*`
//!   there, so a missing value never merges with a present one before everything merges.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Date64Type, Int64Type, UInt64Type};
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::postal;

/// How one quasi-identifier is generalised, level by level. Every hierarchy ends with a level
/// where all values (NULL included) are `*`.
#[derive(Debug, Clone, PartialEq)]
pub enum Hierarchy {
    /// Integer ages. Level 0 is the exact age; level `i` (1..=`widths.len()`) is a band of
    /// `widths[i - 1]` years (`40-44`, `40-49`); the last level is `*`. With `top: Some(t)`,
    /// every banded level top-codes ages `>= t` as `"{t}+"` (e.g. `90+`) and clips the band just
    /// below `t`. Widths must increase and each must divide the next, so the bands nest.
    Age {
        /// Band widths in years, finest first, e.g. `[5, 10]`.
        widths: Vec<u32>,
        /// Top-coding threshold, e.g. `Some(90)`.
        top: Option<u32>,
    },
    /// Dates (Arrow `Date32`/`Date64`, or text `YYYY-MM-DD`): day `YYYY-MM-DD`, then month
    /// `YYYY-MM`, then year `YYYY`, then `*`.
    Date,
    /// 7-digit Japanese postal codes (text `1000001` or `100-0001`, or integers, zero-padded):
    /// the 7 digits, then the 3-digit zone (`100`), then the zone's prefecture (`東京都`), then
    /// `*`. The zone-to-prefecture table and its approximation are documented in the crate
    /// README and in `postal.rs`.
    Postal,
    /// Codes such as ICD-10: the full code, then its first `lengths[0]` characters, then its
    /// first `lengths[1]`, ..., then `*`. Lengths must decrease; codes shorter than a length are
    /// kept whole at that level.
    Truncate {
        /// Prefix lengths in characters, longest first, e.g. `[3, 1]`.
        lengths: Vec<usize>,
    },
    /// Explicit tables for anything else: `levels[i]` maps each original value (as text) to its
    /// label at level `i + 1`, as ARX's hierarchy tables do; the last level, `*`, is added.
    /// Every non-NULL value in the data must be mapped at every level, and the tables must nest
    /// (values with the same label at one level share the label at the next).
    Custom {
        /// One mapping table per level above 0, finest first.
        levels: Vec<HashMap<String, String>>,
    },
}

impl Hierarchy {
    /// The highest level: the one where everything is `*`.
    pub fn max_level(&self) -> usize {
        match self {
            Hierarchy::Age { widths, .. } => widths.len() + 1,
            Hierarchy::Date | Hierarchy::Postal => 3,
            Hierarchy::Truncate { lengths } => lengths.len() + 1,
            Hierarchy::Custom { levels } => levels.len() + 1,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Hierarchy::Age { .. } => "the Age hierarchy",
            Hierarchy::Date => "the Date hierarchy",
            Hierarchy::Postal => "the Postal hierarchy",
            Hierarchy::Truncate { .. } => "the Truncate hierarchy",
            Hierarchy::Custom { .. } => "the Custom hierarchy",
        }
    }

    /// Checks the hierarchy's own parameters (not the data).
    pub(crate) fn validate(&self, column: &str) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidHierarchy {
                column: column.to_string(),
                reason,
            })
        };
        match self {
            Hierarchy::Age { widths, top } => {
                if widths.contains(&0) {
                    return invalid("age band widths must be at least 1".into());
                }
                for pair in widths.windows(2) {
                    if pair[1] <= pair[0] || pair[1] % pair[0] != 0 {
                        return invalid(format!(
                            "age band widths must increase and each must divide the next \
                             (so bands nest); {} does not nest in {}",
                            pair[0], pair[1]
                        ));
                    }
                }
                if *top == Some(0) {
                    return invalid("the top-coding age must be at least 1".into());
                }
            }
            Hierarchy::Truncate { lengths } => {
                if lengths.contains(&0) {
                    return invalid("truncation lengths must be at least 1".into());
                }
                if lengths.windows(2).any(|p| p[1] >= p[0]) {
                    return invalid("truncation lengths must decrease".into());
                }
            }
            Hierarchy::Date | Hierarchy::Postal | Hierarchy::Custom { .. } => {}
        }
        Ok(())
    }

    /// Checks that the hierarchy accepts a column of this type.
    pub(crate) fn check_type(&self, column: &str, data_type: &DataType) -> Result<()> {
        let ok = match self {
            Hierarchy::Age { .. } => data_type.is_integer(),
            Hierarchy::Date => {
                matches!(data_type, DataType::Date32 | DataType::Date64) || is_text(data_type)
            }
            Hierarchy::Postal | Hierarchy::Custom { .. } => {
                data_type.is_integer() || is_text(data_type)
            }
            Hierarchy::Truncate { .. } => is_text(data_type),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::UnsupportedType {
                column: column.to_string(),
                data_type: data_type.clone(),
                used_as: self.name(),
            })
        }
    }

    /// Encodes a column (one array per batch) into level-0 codes and per-level tables.
    pub(crate) fn encode(&self, column: &str, arrays: &[ArrayRef]) -> Result<ColumnDomain> {
        match self {
            Hierarchy::Age { widths, top } => {
                let enc = encode_ints(column, arrays, "integers within the 64-bit range")?;
                let label = |v: &i64, level: usize| Some(age_label(*v, level, widths, *top));
                build(column, enc, self.max_level(), label)
            }
            Hierarchy::Date => {
                let mut enc = Encoder::default();
                for array in arrays {
                    match array.data_type() {
                        DataType::Date32 => {
                            for v in array.as_primitive::<Date32Type>() {
                                enc.push(v.as_ref());
                            }
                        }
                        DataType::Date64 => {
                            for v in array.as_primitive::<Date64Type>() {
                                let day = v.map(|ms| ms.div_euclid(86_400_000) as i32);
                                enc.push(day.as_ref());
                            }
                        }
                        _ => for_each_text(array, |s| match s {
                            None => enc.push_null(),
                            Some(s) => match parse_date(s) {
                                Some(day) => enc.push(Some(&day)),
                                None => enc.invalid += 1,
                            },
                        })?,
                    }
                }
                check_invalid(column, &enc, "dates in YYYY-MM-DD form")?;
                build(column, enc, 3, |&day: &i32, level| {
                    let (y, m, d) = civil_from_days(day);
                    Some(match level {
                        0 => format!("{y:04}-{m:02}-{d:02}"),
                        1 => format!("{y:04}-{m:02}"),
                        _ => format!("{y:04}"),
                    })
                })
            }
            Hierarchy::Postal => {
                let mut enc = Encoder::default();
                for array in arrays {
                    if array.data_type().is_integer() {
                        let ints = cast(array, &DataType::Int64)?;
                        for v in ints.as_primitive::<Int64Type>() {
                            match v.map(|v| u32::try_from(v).ok().filter(|&v| valid_postal(v))) {
                                None => enc.push_null(),
                                Some(Some(code)) => enc.push(Some(&code)),
                                Some(None) => enc.invalid += 1,
                            }
                        }
                    } else {
                        for_each_text(array, |s| match s.map(parse_postal) {
                            None => enc.push_null(),
                            Some(Some(code)) => enc.push(Some(&code)),
                            Some(None) => enc.invalid += 1,
                        })?;
                    }
                }
                check_invalid(column, &enc, "7-digit Japanese postal codes")?;
                build(column, enc, 3, |&code: &u32, level| {
                    Some(match level {
                        0 => format!("{code:07}"),
                        1 => format!("{:03}", code / 10_000),
                        // valid_postal guarantees the zone has a prefecture
                        _ => postal::prefecture((code / 10_000) as u16)?.to_string(),
                    })
                })
            }
            Hierarchy::Truncate { lengths } => {
                let enc = encode_text(arrays)?;
                build(column, enc, self.max_level(), |s: &String, level| {
                    Some(match level {
                        0 => s.clone(),
                        _ => s.chars().take(lengths[level - 1]).collect(),
                    })
                })
            }
            Hierarchy::Custom { levels } => {
                let enc = if arrays.iter().all(|a| a.data_type().is_integer()) {
                    let ints = encode_ints(column, arrays, "integers within the 64-bit range")?;
                    Encoder {
                        values: ints
                            .values
                            .iter()
                            .map(|v| v.map(|v| v.to_string()))
                            .collect(),
                        codes: ints.codes,
                        ..Encoder::default()
                    }
                } else {
                    encode_text(arrays)?
                };
                // Count unmapped values per level before building, to report them all at once.
                for (i, table) in levels.iter().enumerate() {
                    let unmapped = enc
                        .values
                        .iter()
                        .flatten()
                        .filter(|v| !table.contains_key(*v));
                    let count = unmapped.count();
                    if count > 0 {
                        return Err(Error::UnmappedValues {
                            column: column.to_string(),
                            level: i + 1,
                            count,
                        });
                    }
                }
                build(
                    column,
                    enc,
                    self.max_level(),
                    |s: &String, level| match level {
                        0 => Some(s.clone()),
                        _ => levels[level - 1].get(s).cloned(),
                    },
                )
            }
        }
    }
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => matches!(
            value.as_ref(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        _ => false,
    }
}

/// Calls `f` for every row of a text column (any string layout), NULL as `None`.
fn for_each_text(array: &ArrayRef, f: impl FnMut(Option<&str>)) -> Result<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(f),
        DataType::Utf8View => array.as_string_view().iter().for_each(f),
        _ => {
            let utf8 = cast(array, &DataType::Utf8)?;
            utf8.as_string::<i32>().iter().for_each(f);
        }
    }
    Ok(())
}

/// Level-0 encoding of a column: each distinct value (NULL included) gets a dense code.
struct Encoder<V> {
    map: FxHashMap<V, u32>,
    null_code: Option<u32>,
    /// Distinct values by code; `None` is NULL.
    values: Vec<Option<V>>,
    /// Code of each row.
    codes: Vec<u32>,
    /// Rows whose value the hierarchy cannot read.
    invalid: usize,
}

impl<V> Default for Encoder<V> {
    fn default() -> Self {
        Encoder {
            map: FxHashMap::default(),
            null_code: None,
            values: Vec::new(),
            codes: Vec::new(),
            invalid: 0,
        }
    }
}

impl<V: Hash + Eq + Clone> Encoder<V> {
    fn push_null(&mut self) {
        let code = *self.null_code.get_or_insert_with(|| {
            self.values.push(None);
            (self.values.len() - 1) as u32
        });
        self.codes.push(code);
    }

    fn push<Q>(&mut self, value: Option<&Q>)
    where
        V: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = V> + ?Sized,
    {
        let Some(q) = value else {
            return self.push_null();
        };
        let code = match self.map.get(q) {
            Some(&code) => code,
            None => {
                let code = self.values.len() as u32;
                self.values.push(Some(q.to_owned()));
                self.map.insert(q.to_owned(), code);
                code
            }
        };
        self.codes.push(code);
    }
}

fn check_invalid<V>(column: &str, enc: &Encoder<V>, expected: &'static str) -> Result<()> {
    if enc.invalid > 0 {
        return Err(Error::InvalidValues {
            column: column.to_string(),
            count: enc.invalid,
            expected,
        });
    }
    Ok(())
}

fn encode_ints(column: &str, arrays: &[ArrayRef], expected: &'static str) -> Result<Encoder<i64>> {
    let mut enc = Encoder::default();
    for array in arrays {
        if *array.data_type() == DataType::UInt64 {
            for v in array.as_primitive::<UInt64Type>() {
                match v.map(i64::try_from) {
                    None => enc.push_null(),
                    Some(Ok(v)) => enc.push(Some(&v)),
                    Some(Err(_)) => enc.invalid += 1,
                }
            }
        } else {
            // Lossless: every other integer type fits in i64.
            let ints = cast(array, &DataType::Int64)?;
            for v in ints.as_primitive::<Int64Type>() {
                enc.push(v.as_ref());
            }
        }
    }
    check_invalid(column, &enc, expected)?;
    Ok(enc)
}

fn encode_text(arrays: &[ArrayRef]) -> Result<Encoder<String>> {
    let mut enc = Encoder::<String>::default();
    for array in arrays {
        for_each_text(array, |s| enc.push(s))?;
    }
    Ok(enc)
}

/// One level of a column's hierarchy over the column's distinct values.
#[derive(Debug)]
pub(crate) struct LevelTable {
    /// Level-0 code -> code of its label at this level (dense, `0..labels.len()`).
    pub map: Vec<u32>,
    /// Label of each code at this level; `None` is NULL.
    pub labels: Vec<Option<String>>,
}

/// A quasi-identifier encoded for the search.
#[derive(Debug)]
pub(crate) struct ColumnDomain {
    /// Level-0 code of each input row (all batches, in order).
    pub codes: Vec<u32>,
    /// Tables for levels 0..=max_level.
    pub levels: Vec<LevelTable>,
    /// Loss of one cell: `cell_loss[level][level-0 code]`, Iyengar's
    /// `(leaves(label) - 1) / (|domain| - 1)` where leaves are the distinct input values the
    /// label covers.
    pub cell_loss: Vec<Vec<f64>>,
    /// Sum of `cell_loss` over all input rows, per level.
    pub row_loss: Vec<f64>,
}

/// Builds the level tables of a column from its distinct values. `label(v, level)` gives the
/// label of a non-NULL value at levels `0..max_level`; the last level is `*` for everything.
fn build<V>(
    column: &str,
    enc: Encoder<V>,
    max_level: usize,
    label: impl Fn(&V, usize) -> Option<String>,
) -> Result<ColumnDomain> {
    let domain = enc.values.len();
    let mut levels = Vec::with_capacity(max_level + 1);
    for level in 0..=max_level {
        let mut by_label: HashMap<Option<String>, u32> = HashMap::new();
        let mut table = LevelTable {
            map: Vec::with_capacity(domain),
            labels: Vec::new(),
        };
        for value in &enc.values {
            let l = match value {
                _ if level == max_level => Some("*".to_string()),
                None => None,
                // Unmapped custom values were rejected before building; built-in hierarchies
                // label every value they accepted.
                Some(v) => Some(label(v, level).ok_or_else(|| Error::UnmappedValues {
                    column: column.to_string(),
                    level,
                    count: 1,
                })?),
            };
            let next = table.labels.len() as u32;
            let code = *by_label.entry(l.clone()).or_insert_with(|| {
                table.labels.push(l);
                next
            });
            table.map.push(code);
        }
        levels.push(table);
    }
    check_nested(column, &levels)?;

    let mut rows_per_code = vec![0u64; domain];
    for &c in &enc.codes {
        rows_per_code[c as usize] += 1;
    }
    let mut cell_loss = Vec::with_capacity(levels.len());
    let mut row_loss = Vec::with_capacity(levels.len());
    for table in &levels {
        let mut leaves = vec![0u32; table.labels.len()];
        for &g in &table.map {
            leaves[g as usize] += 1;
        }
        let loss: Vec<f64> = table
            .map
            .iter()
            .map(|&g| {
                if domain <= 1 {
                    0.0
                } else {
                    f64::from(leaves[g as usize] - 1) / (domain - 1) as f64
                }
            })
            .collect();
        row_loss.push(
            loss.iter()
                .zip(&rows_per_code)
                .map(|(l, &n)| l * n as f64)
                .sum::<f64>(),
        );
        cell_loss.push(loss);
    }
    Ok(ColumnDomain {
        codes: enc.codes,
        levels,
        cell_loss,
        row_loss,
    })
}

/// Each level must be a function of the level below it (see the module invariants).
fn check_nested(column: &str, levels: &[LevelTable]) -> Result<()> {
    for (level, pair) in levels.windows(2).enumerate() {
        let (lower, upper) = (&pair[0], &pair[1]);
        let mut parent = vec![u32::MAX; lower.labels.len()];
        for (&lo, &up) in lower.map.iter().zip(&upper.map) {
            let p = &mut parent[lo as usize];
            if *p == u32::MAX {
                *p = up;
            } else if *p != up {
                return Err(Error::NotNested {
                    column: column.to_string(),
                    level,
                });
            }
        }
    }
    Ok(())
}

/// The label of an age at a level (see [`Hierarchy::Age`]).
pub(crate) fn age_label(age: i64, level: usize, widths: &[u32], top: Option<u32>) -> String {
    if level == 0 {
        return age.to_string();
    }
    if level > widths.len() {
        return "*".to_string();
    }
    if let Some(top) = top
        && age >= i64::from(top)
    {
        return format!("{top}+");
    }
    let width = i64::from(widths[level - 1]);
    let lo = age.div_euclid(width) * width;
    let mut hi = lo + width - 1;
    if let Some(top) = top {
        hi = hi.min(i64::from(top) - 1);
    }
    format!("{lo}-{hi}")
}

/// Parses a 7-digit postal code, with or without the hyphen after the zone.
pub(crate) fn parse_postal(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits: String = match s.len() {
        7 => s.to_string(),
        8 if s.as_bytes()[3] == b'-' => format!("{}{}", &s[..3], &s[4..]),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = digits.parse().ok()?;
    valid_postal(code).then_some(code)
}

fn valid_postal(code: u32) -> bool {
    code <= 9_999_999 && postal::prefecture((code / 10_000) as u16).is_some()
}

/// Parses `YYYY-MM-DD` (a real calendar date) into days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms (proleptic Gregorian, public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(days: i32) -> (i64, i64, i64) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Date32Array, Int32Array, StringArray};

    use super::*;

    /// Labels of the given rows at every level, as (row, level) -> label.
    fn labels(h: &Hierarchy, array: ArrayRef) -> Vec<Vec<Option<String>>> {
        let domain = h.encode("c", &[array]).unwrap();
        domain
            .codes
            .iter()
            .map(|&code| {
                domain
                    .levels
                    .iter()
                    .map(|t| t.labels[t.map[code as usize] as usize].clone())
                    .collect()
            })
            .collect()
    }

    fn strs(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn age_bands_and_top_coding() {
        let h = Hierarchy::Age {
            widths: vec![5, 10],
            top: Some(90),
        };
        let got = labels(
            &h,
            Arc::new(Int32Array::from(vec![Some(42), Some(93), Some(89), None])),
        );
        assert_eq!(got[0], strs(&["42", "40-44", "40-49", "*"]));
        assert_eq!(got[1], strs(&["93", "90+", "90+", "*"]));
        assert_eq!(got[2], strs(&["89", "85-89", "80-89", "*"]));
        assert_eq!(got[3], vec![None, None, None, Some("*".into())]);
        // a band that straddles the top is clipped below it
        assert_eq!(age_label(84, 1, &[7], Some(90)), "84-89");
        assert_eq!(age_label(3, 1, &[5], None), "0-4");
    }

    #[test]
    fn age_widths_must_nest() {
        let h = Hierarchy::Age {
            widths: vec![5, 7],
            top: None,
        };
        let err = h.validate("age").unwrap_err().to_string();
        assert!(err.contains("'age'") && err.contains("nest"), "{err}");
    }

    #[test]
    fn dates_from_date32_and_text() {
        let day = parse_date("2024-02-29").unwrap();
        assert_eq!(civil_from_days(day), (2024, 2, 29));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-13-01"), None);
        assert_eq!(parse_date("20230101"), None);
        let got = labels(&Hierarchy::Date, Arc::new(Date32Array::from(vec![day])));
        assert_eq!(got[0], strs(&["2024-02-29", "2024-02", "2024", "*"]));
        let text = Arc::new(StringArray::from(vec![Some("1931-12-31"), None]));
        let got = labels(&Hierarchy::Date, text);
        assert_eq!(got[0], strs(&["1931-12-31", "1931-12", "1931", "*"]));
        assert_eq!(got[1], vec![None, None, None, Some("*".into())]);
        // negative days (before 1970) round-trip
        assert_eq!(
            civil_from_days(parse_date("1931-12-31").unwrap()),
            (1931, 12, 31)
        );
    }

    #[test]
    fn bad_dates_are_counted_not_quoted() {
        let text = Arc::new(StringArray::from(vec![
            "2024-02-30",
            "yesterday",
            "2024-01-01",
        ]));
        let err = Hierarchy::Date
            .encode("birth_date", &[text])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'birth_date'") && err.contains("2 values"),
            "{err}"
        );
        assert!(
            !err.contains("yesterday") && !err.contains("2024-02-30"),
            "{err}"
        );
    }

    #[test]
    fn postal_codes() {
        let text = Arc::new(StringArray::from(vec!["100-0001", "0600001", "8120011"]));
        let got = labels(&Hierarchy::Postal, text);
        assert_eq!(got[0], strs(&["1000001", "100", "東京都", "*"]));
        assert_eq!(got[1], strs(&["0600001", "060", "北海道", "*"]));
        assert_eq!(got[2], strs(&["8120011", "812", "福岡県", "*"]));
        // integers lose leading zeros; they are padded back
        let got = labels(&Hierarchy::Postal, Arc::new(Int32Array::from(vec![600001])));
        assert_eq!(got[0], strs(&["0600001", "060", "北海道", "*"]));
        for bad in [
            "100000",
            "10000011",
            "100_0001",
            "0000001",
            "１００００００",
        ] {
            assert_eq!(parse_postal(bad), None, "{bad}");
        }
    }

    #[test]
    fn truncate_codes() {
        let h = Hierarchy::Truncate {
            lengths: vec![4, 3, 1],
        };
        let text = Arc::new(StringArray::from(vec!["E119", "I10", "C34.1"]));
        let got = labels(&h, text);
        assert_eq!(got[0], strs(&["E119", "E119", "E11", "E", "*"]));
        assert_eq!(got[1], strs(&["I10", "I10", "I10", "I", "*"]));
        assert_eq!(got[2], strs(&["C34.1", "C34.", "C34", "C", "*"]));
        let bad = Hierarchy::Truncate {
            lengths: vec![1, 3],
        };
        assert!(bad.validate("icd10").is_err());
    }

    #[test]
    fn custom_tables_must_cover_and_nest() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let h = Hierarchy::Custom {
            levels: vec![map(&[("M", "any"), ("F", "any")])],
        };
        let got = labels(&h, Arc::new(StringArray::from(vec!["M", "F"])));
        assert_eq!(got[0], strs(&["M", "any", "*"]));

        let text: ArrayRef = Arc::new(StringArray::from(vec!["M", "F", "X"]));
        let err = h.encode("sex", std::slice::from_ref(&text)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnmappedValues {
                    level: 1,
                    count: 1,
                    ..
                }
            ),
            "{err}"
        );

        // M and F share a label at level 1 but differ at level 2: not a hierarchy
        let h = Hierarchy::Custom {
            levels: vec![
                map(&[("M", "any"), ("F", "any"), ("X", "x")]),
                map(&[("M", "a"), ("F", "b"), ("X", "b")]),
            ],
        };
        let err = h.encode("sex", &[text]).unwrap_err();
        assert!(matches!(err, Error::NotNested { level: 1, .. }), "{err}");
    }

    #[test]
    fn loss_is_zero_at_level_zero_and_one_at_the_top() {
        let h = Hierarchy::Age {
            widths: vec![10],
            top: None,
        };
        let d = h
            .encode("age", &[Arc::new(Int32Array::from(vec![41, 42, 43, 55]))])
            .unwrap();
        // domain {41, 42, 43, 55}: band 40-49 covers 3 of 4 values -> (3-1)/(4-1)
        assert_eq!(d.cell_loss[0], vec![0.0; 4]);
        assert_eq!(d.cell_loss[1], vec![2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 0.0]);
        assert_eq!(d.cell_loss[2], vec![1.0; 4]);
        assert_eq!(d.row_loss, vec![0.0, 2.0, 4.0]);
    }
}
