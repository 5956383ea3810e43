//! The records a linkage compares.
//!
//! A row pushed by the caller belongs to an *entry*: one key of one source (an atena number, an
//! insurance key, a hospital's patient ID). Rows with the same identity values collapse into one
//! *record* (a profile): a person's hundred claims under one insurance key with one spelling of
//! the name are compared once. Records are then put in a canonical order, so that the result
//! depends on the data and not on the order it arrived in.

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::kana;
use crate::spec::{Comparator, Settings};
use crate::{Error, Result};

/// Marks a missing value in a column.
pub(crate) const NONE: u32 = u32::MAX;

/// How a source's keys behave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourcePolicy {
    /// The source says different keys are different people (a resident register's atena
    /// numbers): two of its keys never end up in one person.
    pub unique_keys: bool,
}

/// Dates that bound a record's life in the data (days since 1970-01-01), for impossible
/// histories: activity long after a recorded death, or before the birth date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// First activity (visit, claim, checkup).
    pub first_seen: Option<i32>,
    /// Last activity.
    pub last_seen: Option<i32>,
    /// Recorded death.
    pub death: Option<i32>,
}

impl History {
    fn merge(&mut self, o: History) {
        self.first_seen = min_opt(self.first_seen, o.first_seen);
        self.last_seen = max_opt(self.last_seen, o.last_seen);
        self.death = min_opt(self.death, o.death);
    }
}

pub(crate) fn min_opt(a: Option<i32>, b: Option<i32>) -> Option<i32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(crate) fn max_opt(a: Option<i32>, b: Option<i32>) -> Option<i32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The values of one field for every record.
pub(crate) struct Column {
    pub comparator: Comparator,
    /// Per record: the value's id (dates: `yyyymmdd`), or [`NONE`].
    pub ids: Vec<u32>,
    /// Per value id: the normalised value (empty for dates).
    pub values: Vec<Box<str>>,
    /// Per value id: its characters, for fuzzy comparators.
    pub chars: Vec<Box<[char]>>,
    /// Per value id: rows holding it (term frequencies).
    pub counts: Vec<u64>,
    /// Rows with a value.
    pub present: u64,
    /// Values that could not be read (an invalid date) and were taken as missing.
    pub invalid: u64,
    intern: FxHashMap<Box<str>, u32>,
}

impl Column {
    fn new(comparator: Comparator) -> Self {
        Self {
            comparator,
            ids: Vec::new(),
            values: Vec::new(),
            chars: Vec::new(),
            counts: Vec::new(),
            present: 0,
            invalid: 0,
            intern: FxHashMap::default(),
        }
    }

    /// Term frequency of value `id` among rows with a value.
    pub fn tf(&self, id: u32) -> f64 {
        self.counts[id as usize] as f64 / self.present.max(1) as f64
    }

    /// The id of a normalised value, interning it.
    fn id(&mut self, v: &str) -> u32 {
        if let Some(&id) = self.intern.get(v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.into());
        if self.comparator.keeps_chars() {
            self.chars.push(v.chars().collect());
        }
        self.counts.push(0);
        self.intern.insert(v.into(), id);
        id
    }
}

/// Normalises `raw` for `comparator` into `buf`; false when nothing is left.
fn normalize(comparator: Comparator, raw: &str, buf: &mut String) -> bool {
    buf.clear();
    match comparator {
        Comparator::Name => {
            kana::name_normalize_into(raw.trim(), buf);
            if buf.chars().any(|c| c.is_ascii_uppercase()) {
                *buf = buf.to_lowercase();
            }
        }
        Comparator::Text => {
            for w in raw.split_whitespace() {
                if !buf.is_empty() {
                    buf.push(' ');
                }
                buf.extend(w.chars().flat_map(char::to_lowercase));
            }
        }
        Comparator::Postal => buf.extend(raw.chars().filter(char::is_ascii_digit)),
        Comparator::Code | Comparator::Exact | Comparator::Date => buf.push_str(raw.trim()),
    }
    !buf.is_empty()
}

/// `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYYMMDD` as `yyyymmdd`, when it is a calendar date.
pub fn parse_date(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits: String = match s.len() {
        8 => s.to_owned(),
        10 if matches!(&s[4..5], "-" | "/") && s[4..5] == s[7..8] => format!("{}{}{}", &s[..4], &s[5..7], &s[8..10]),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = digits.parse().ok()?;
    let (y, m, d) = (v / 10000, v / 100 % 100, v % 100);
    (1800..=2200).contains(&y).then_some(())?;
    (1..=12).contains(&m).then_some(())?;
    (d >= 1 && d <= days_in_month(y, m)).then_some(v)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a `yyyymmdd` date (proleptic Gregorian).
pub fn days_from_yyyymmdd(v: u32) -> i32 {
    let (y, m, d) = ((v / 10000) as i64, (v / 100 % 100) as i64, (v % 100) as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// One key of one source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// Source name.
    pub source: String,
    /// The source's key.
    pub key: String,
}

/// Collects rows, then [`DatasetBuilder::finish`] makes a [`Dataset`].
pub struct DatasetBuilder {
    columns: Vec<Column>,
    sources: Vec<(String, SourcePolicy)>,
    source_index: FxHashMap<String, u16>,
    entries: Vec<(u16, Box<str>)>,
    entry_index: FxHashMap<(u16, Box<str>), u32>,
    /// Per record: source, entry when the source's keys are unique, history.
    rec_source: Vec<u16>,
    rec_entry: Vec<u32>,
    rec_history: Vec<History>,
    profiles: FxHashMap<Box<[u32]>, u32>,
    /// (entry, record) for every row, deduplicated at the end.
    rows: Vec<(u32, u32)>,
    pushed: u64,
    buf: String,
    key: Vec<u32>,
}

impl DatasetBuilder {
    /// A builder for the fields of `settings`.
    pub fn new(settings: &Settings) -> Result<Self> {
        settings.validate()?;
        Ok(Self {
            columns: settings.fields.iter().map(|f| Column::new(f.comparator)).collect(),
            sources: Vec::new(),
            source_index: FxHashMap::default(),
            entries: Vec::new(),
            entry_index: FxHashMap::default(),
            rec_source: Vec::new(),
            rec_entry: Vec::new(),
            rec_history: Vec::new(),
            profiles: FxHashMap::default(),
            rows: Vec::new(),
            pushed: 0,
            buf: String::new(),
            key: Vec::new(),
        })
    }

    /// Declares a source (again with the same policy is fine).
    pub fn source(&mut self, name: &str, policy: SourcePolicy) -> Result<u16> {
        if let Some(&i) = self.source_index.get(name) {
            if self.sources[i as usize].1 != policy {
                return Err(Error::Input(format!("source {name} declared twice with different policies")));
            }
            return Ok(i);
        }
        let i = u16::try_from(self.sources.len()).map_err(|_| Error::Input("more than 65535 sources".into()))?;
        self.sources.push((name.to_owned(), policy));
        self.source_index.insert(name.to_owned(), i);
        Ok(i)
    }

    /// Adds one row of `source` under `key`, with one value per compared field (in the order of
    /// the settings; `None` or an empty string is missing).
    pub fn push(&mut self, source: u16, key: &str, values: &[Option<&str>], history: History) -> Result<()> {
        if values.len() != self.columns.len() {
            return Err(Error::Input(format!("a row has {} values for {} fields", values.len(), self.columns.len())));
        }
        let policy = self.sources.get(source as usize).map(|s| s.1).ok_or_else(|| Error::Input(format!("unknown source {source}")))?;
        if key.is_empty() {
            return Err(Error::Input(format!("a row of source {} has an empty key", self.sources[source as usize].0)));
        }
        let entry = match self.entry_index.get(&(source, key.into())) {
            Some(&e) => e,
            None => {
                let e = self.entries.len() as u32;
                self.entries.push((source, key.into()));
                self.entry_index.insert((source, key.into()), e);
                e
            }
        };
        self.key.clear();
        self.key.push(source as u32);
        self.key.push(if policy.unique_keys { entry } else { NONE });
        for (col, v) in self.columns.iter_mut().zip(values) {
            let id = match v {
                Some(raw) if col.comparator == Comparator::Date => match parse_date(raw) {
                    Some(d) => d,
                    None if raw.trim().is_empty() => NONE,
                    None => {
                        col.invalid += 1;
                        NONE
                    }
                },
                Some(raw) if normalize(col.comparator, raw, &mut self.buf) => col.id(&self.buf),
                _ => NONE,
            };
            self.key.push(id);
        }
        let record = match self.profiles.get(self.key.as_slice()) {
            Some(&r) => {
                self.rec_history[r as usize].merge(history);
                r
            }
            None => {
                let r = self.rec_source.len() as u32;
                self.rec_source.push(source);
                self.rec_entry.push(if policy.unique_keys { entry } else { NONE });
                self.rec_history.push(history);
                for (col, &id) in self.columns.iter_mut().zip(&self.key[2..]) {
                    col.ids.push(id);
                }
                self.profiles.insert(self.key.as_slice().into(), r);
                r
            }
        };
        for (col, &id) in self.columns.iter_mut().zip(&self.key[2..]) {
            if id != NONE {
                col.present += 1;
                if col.comparator != Comparator::Date {
                    col.counts[id as usize] += 1;
                }
            }
        }
        self.rows.push((entry, record));
        self.pushed += 1;
        Ok(())
    }

    /// Puts records in canonical order and returns the dataset.
    pub fn finish(mut self) -> Dataset {
        self.profiles = FxHashMap::default();
        self.entry_index = FxHashMap::default();
        let n = self.rec_source.len();
        self.rows.sort_unstable();
        self.rows.dedup();
        // The smallest entry key of each record, for the canonical order.
        let mut first_entry = vec![NONE; n];
        for &(e, r) in &self.rows {
            let cur = first_entry[r as usize];
            if cur == NONE || self.entries[e as usize].1 < self.entries[cur as usize].1 {
                first_entry[r as usize] = e;
            }
        }
        let cols = &self.columns;
        // Missing first, then dates by yyyymmdd (8 digits, so as their text sorts), text by value.
        let value_cmp = |c: &Column, a: usize, b: usize| match (c.ids[a], c.ids[b]) {
            (x, y) if x == y => Ordering::Equal,
            (NONE, _) => Ordering::Less,
            (_, NONE) => Ordering::Greater,
            (x, y) if c.comparator == Comparator::Date => x.cmp(&y),
            (x, y) => c.values[x as usize].cmp(&c.values[y as usize]),
        };
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let sa = &self.sources[self.rec_source[a] as usize].0;
            let sb = &self.sources[self.rec_source[b] as usize].0;
            sa.cmp(sb)
                .then_with(|| self.entries[first_entry[a] as usize].1.cmp(&self.entries[first_entry[b] as usize].1))
                .then_with(|| cols.iter().map(|c| value_cmp(c, a, b)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal))
        });
        let mut new_index = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            new_index[old as usize] = new as u32;
        }
        let permute = |v: &[u32]| order.iter().map(|&o| v[o as usize]).collect::<Vec<u32>>();
        for c in &mut self.columns {
            c.ids = permute(&c.ids);
            c.intern = FxHashMap::default();
        }
        let rec_source = order.iter().map(|&o| self.rec_source[o as usize]).collect();
        let rec_entry = permute(&self.rec_entry);
        let rec_history = order.iter().map(|&o| self.rec_history[o as usize]).collect();
        let mut entry_records: Vec<(u32, u32)> = self.rows.iter().map(|&(e, r)| (e, new_index[r as usize])).collect();
        entry_records.sort_unstable();
        let rec_first_entry = permute(&first_entry);
        Dataset {
            rec_first_entry,
            columns: self.columns,
            sources: self.sources,
            entries: self.entries,
            rec_source,
            rec_entry,
            rec_history,
            entry_records,
            rows: self.pushed,
        }
    }
}

/// Records ready to link.
pub struct Dataset {
    pub(crate) columns: Vec<Column>,
    pub(crate) sources: Vec<(String, SourcePolicy)>,
    pub(crate) entries: Vec<(u16, Box<str>)>,
    pub(crate) rec_source: Vec<u16>,
    /// Per record: its entry when its source's keys are unique, else [`NONE`].
    pub(crate) rec_entry: Vec<u32>,
    pub(crate) rec_history: Vec<History>,
    /// (entry, record), sorted.
    pub(crate) entry_records: Vec<(u32, u32)>,
    /// Per record: the entry with the smallest key holding it.
    pub(crate) rec_first_entry: Vec<u32>,
    pub(crate) rows: u64,
}

impl Dataset {
    /// Records (distinct identity profiles).
    pub fn records(&self) -> usize {
        self.rec_source.len()
    }

    /// Entries (distinct source keys).
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Rows pushed.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The source and key of entry `e`.
    pub fn entry(&self, e: u32) -> EntryKey {
        let (s, k) = &self.entries[e as usize];
        EntryKey { source: self.sources[*s as usize].0.clone(), key: k.to_string() }
    }

    /// The displayed value of field `f` of record `r`.
    pub(crate) fn display(&self, f: usize, r: u32) -> Option<String> {
        let c = &self.columns[f];
        match c.ids[r as usize] {
            NONE => None,
            d if c.comparator == Comparator::Date => Some(format!("{:04}-{:02}-{:02}", d / 10000, d / 100 % 100, d % 100)),
            id => Some(c.values[id as usize].to_string()),
        }
    }

    /// Invalid values per field (read as missing).
    pub(crate) fn invalid(&self) -> Vec<u64> {
        self.columns.iter().map(|c| c.invalid).collect()
    }

    /// Whether records `a` and `b` are two keys of a source whose keys are unique (never the
    /// same person).
    #[inline]
    pub(crate) fn cannot_link(&self, a: u32, b: u32) -> bool {
        let (ea, eb) = (self.rec_entry[a as usize], self.rec_entry[b as usize]);
        ea != NONE && eb != NONE && ea != eb && self.rec_source[a as usize] == self.rec_source[b as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-02-29"), Some(20240229));
        assert_eq!(parse_date("20240229"), Some(20240229));
        assert_eq!(parse_date("2024/02/29"), Some(20240229));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("2024-02/01"), None);
        assert_eq!(parse_date("abcdefgh"), None);
        assert_eq!(days_from_yyyymmdd(19700101), 0);
        assert_eq!(days_from_yyyymmdd(20000301), 11_017);
        assert_eq!(days_from_yyyymmdd(19691231), -1);
    }
}
