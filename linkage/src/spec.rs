//! What a linkage compares and how: fields with their comparators, blocking rules,
//! deterministic passes and thresholds.

use serde::{Deserialize, Serialize};

/// How two values of a field are compared. Every comparator has a level for "either value is
/// missing" (no evidence either way), one for exact agreement, fuzzy levels, and disagreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    /// Personal names, kana or Latin: kana normalised (see [`crate::kana`]), Latin lowercased;
    /// exact, Jaro-Winkler at least 0.92, at least 0.80, else.
    Name,
    /// Free text such as addresses: lowercased, spaces collapsed; exact, Jaro-Winkler at least
    /// 0.90, at least 0.75, else.
    Text,
    /// Dates (`YYYY-MM-DD`, `YYYYMMDD` or `YYYY/MM/DD`): exact, one typing error away (one digit
    /// wrong, two adjacent digits swapped, or day and month swapped), same year, else.
    Date,
    /// Codes and identifiers (insurer numbers, social security numbers): exact, one edit away
    /// (a substitution, or two adjacent characters swapped), else.
    Code,
    /// Postal codes (digits only are kept): all seven digits, the first three (the delivery
    /// area), else.
    Postal,
    /// Exact agreement or not (sex, keys hashed by the sender).
    Exact,
}

impl Comparator {
    /// Labels of the comparison levels, level 0 first.
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Comparator::Name => &["missing", "exact", "similar (jaro-winkler >= 0.92)", "close (jaro-winkler >= 0.80)", "different"],
            Comparator::Text => &["missing", "exact", "similar (jaro-winkler >= 0.90)", "close (jaro-winkler >= 0.75)", "different"],
            Comparator::Date => &["missing", "exact", "one typing error", "same year", "different"],
            Comparator::Code => &["missing", "exact", "one edit", "different"],
            Comparator::Postal => &["missing", "exact", "same first 3 digits", "different"],
            Comparator::Exact => &["missing", "exact", "different"],
        }
    }

    /// Whether values are kept as characters (for fuzzy comparison) rather than only as ids.
    pub(crate) fn keeps_chars(self) -> bool {
        matches!(self, Comparator::Name | Comparator::Text | Comparator::Code)
    }
}

/// Level 0 of every comparator: a value is missing.
pub const MISSING: u8 = 0;
/// Level 1 of every comparator: exact agreement.
pub const EXACT: u8 = 1;

/// A compared field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Name (as in the source tables).
    pub name: String,
    /// How values are compared.
    pub comparator: Comparator,
    /// Weigh exact agreement by how rare the value is (agreement on 佐藤 counts less than
    /// agreement on a rare surname).
    #[serde(default)]
    pub term_frequency: bool,
    /// Fields of one group describe the same thing (a name in kana and in kanji): a rule that
    /// blocks on one of them has the others agree by implication, so within that rule none of
    /// them is evidence (EM would otherwise take namesakes for matches).
    #[serde(default)]
    pub group: Option<String>,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, comparator: Comparator) -> Self {
        Self { name: name.into(), comparator, term_frequency: false, group: None }
    }

    /// The same field in group `group`.
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }

    /// The same field with term-frequency adjustment.
    pub fn with_term_frequency(mut self) -> Self {
        self.term_frequency = true;
        self
    }
}

/// A part of a blocking key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// The field's whole (normalised) value.
    Value(String),
    /// The first `n` characters of the field's value.
    Prefix(String, usize),
    /// The year of a date field.
    Year(String),
}

impl KeyPart {
    /// The field the part reads.
    pub fn field(&self) -> &str {
        match self {
            KeyPart::Value(f) | KeyPart::Prefix(f, _) | KeyPart::Year(f) => f,
        }
    }
}

/// Records are compared only when they agree on every part of at least one blocking rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockingRule {
    /// Parts of the key; a record with a missing part is not blocked by this rule.
    pub parts: Vec<KeyPart>,
    /// Whether EM learns m from this rule's pairs. Leave out rules whose blocks mix true matches
    /// with another coherent group that agrees on many fields: pairs sharing an insurance card
    /// are one person or family members (same surname, address and card), and EM may take the
    /// family for the match class.
    #[serde(default = "yes")]
    pub train: bool,
}

fn yes() -> bool {
    true
}

impl BlockingRule {
    /// A rule on the whole values of `fields`, used for training.
    pub fn on(fields: &[&str]) -> Self {
        Self::with_parts(fields.iter().map(|f| KeyPart::Value((*f).to_owned())).collect())
    }

    /// A rule on `parts`, used for training.
    pub fn with_parts(parts: Vec<KeyPart>) -> Self {
        Self { parts, train: true }
    }

    /// The same rule, not used for training.
    pub fn without_training(mut self) -> Self {
        self.train = false;
        self
    }

    /// Readable form, e.g. `birth_date + sex`.
    pub fn describe(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                KeyPart::Value(f) => f.clone(),
                KeyPart::Prefix(f, n) => format!("{f}[..{n}]"),
                KeyPart::Year(f) => format!("year({f})"),
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// Everything a linkage run is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Compared fields.
    pub fields: Vec<Field>,
    /// Deterministic passes: records that agree exactly on every field of a pass are the same
    /// person (unless a constraint says otherwise).
    pub deterministic: Vec<Vec<String>>,
    /// Blocking rules for probabilistic matching.
    pub blocking: Vec<BlockingRule>,
    /// Rules whose pairs only teach EM (nothing is linked from them): blocks that hold nearly
    /// only true matches yet leave informative fields free, such as the records of one insured
    /// person (card, suffix and sex agree; how often names and birth dates differ is then the
    /// typing-error rate).
    #[serde(default)]
    pub training: Vec<BlockingRule>,
    /// A pair is a match at or above this probability.
    pub match_threshold: f64,
    /// Pairs between this probability and `match_threshold` form the grey zone for review.
    pub review_threshold: f64,
    /// Blocks larger than this are skipped (and reported): a key shared by that many records
    /// does not discriminate.
    pub max_block_size: usize,
    /// Random record pairs drawn to estimate the u probabilities (agreement among non-matches).
    pub u_sample_pairs: usize,
    /// EM iterations at most (stops earlier when parameters move less than 1e-6).
    pub em_iterations: usize,
    /// The date field holding the birth date: a record active before another's birth date is
    /// not that person. `None`: no such check.
    #[serde(default)]
    pub birth_field: Option<String>,
    /// Days of activity tolerated after a recorded death (late claims are billed after death).
    pub death_grace_days: i32,
    /// Seed of the u sample; the result is a function of the data, the settings and this seed.
    pub seed: u64,
    /// Worker threads (0: all cores). The result does not depend on it.
    pub threads: usize,
}

impl Settings {
    /// Defaults for `fields`, `deterministic` passes and `blocking` rules.
    pub fn new(fields: Vec<Field>, deterministic: Vec<Vec<String>>, blocking: Vec<BlockingRule>) -> Self {
        Self {
            fields,
            deterministic,
            blocking,
            training: Vec::new(),
            match_threshold: 0.95,
            review_threshold: 0.5,
            max_block_size: 20_000,
            u_sample_pairs: 2_000_000,
            em_iterations: 50,
            birth_field: None,
            death_grace_days: 90,
            seed: 0x6b75_7261,
            threads: 0,
        }
    }

    /// Index of field `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        use crate::Error::Settings as E;
        if self.fields.is_empty() {
            return Err(E("no fields to compare".into()));
        }
        if self.fields.len() > 21 {
            return Err(E(format!("at most 21 compared fields, got {}", self.fields.len())));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(E(format!("field {} is listed twice", f.name)));
            }
        }
        let known = |name: &str, what: &str| {
            if self.field_index(name).is_none() {
                Err(E(format!("{what} names {name}, which is not a compared field")))
            } else {
                Ok(())
            }
        };
        for pass in &self.deterministic {
            if pass.is_empty() {
                return Err(E("a deterministic pass has no fields".into()));
            }
            for f in pass {
                known(f, "a deterministic pass")?;
            }
        }
        if self.deterministic.len() + self.blocking.len() + self.training.len() > 200 {
            return Err(E("at most 200 deterministic passes, blocking and training rules together".into()));
        }
        if let Some(b) = &self.birth_field {
            known(b, "birth_field")?;
            if self.fields[self.field_index(b).unwrap_or(0)].comparator != Comparator::Date {
                return Err(E(format!("birth_field {b} must be a date field")));
            }
        }
        if self.blocking.is_empty() {
            return Err(E("no blocking rule: every record would be compared with every other".into()));
        }
        for rule in self.blocking.iter().chain(&self.training) {
            if rule.parts.is_empty() {
                return Err(E("a blocking rule has no parts".into()));
            }
            for p in &rule.parts {
                known(p.field(), "a blocking rule")?;
                if let KeyPart::Year(f) = p {
                    if self.fields[self.field_index(f).unwrap_or(0)].comparator != Comparator::Date {
                        return Err(E(format!("year({f}) in a blocking rule needs a date field")));
                    }
                }
            }
        }
        if !(0.0 < self.review_threshold && self.review_threshold <= self.match_threshold && self.match_threshold < 1.0) {
            return Err(E(format!(
                "thresholds must satisfy 0 < review ({}) <= match ({}) < 1",
                self.review_threshold, self.match_threshold
            )));
        }
        if self.u_sample_pairs < 1000 {
            return Err(E("u_sample_pairs must be at least 1000".into()));
        }
        Ok(())
    }
}
