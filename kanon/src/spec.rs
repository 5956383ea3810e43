//! What to anonymise (the spec) and what was done (the report).

use crate::error::{Error, Result};
use crate::hierarchy::Hierarchy;

/// A quasi-identifier (準識別子): a column that, combined with others, could single a person
/// out, and the hierarchy it is generalised along.
#[derive(Debug, Clone, PartialEq)]
pub struct QuasiIdentifier {
    /// Column name, exactly as in the schema.
    pub column: String,
    /// How the column is generalised.
    pub hierarchy: Hierarchy,
}

impl QuasiIdentifier {
    /// A quasi-identifier on `column`.
    pub fn new(column: impl Into<String>, hierarchy: Hierarchy) -> Self {
        QuasiIdentifier {
            column: column.into(),
            hierarchy,
        }
    }
}

/// Distinct l-diversity: every equivalence class of the output holds at least `l` distinct
/// values of the sensitive column (NULL counts as a value).
#[derive(Debug, Clone, PartialEq)]
pub struct LDiversity {
    /// The sensitive column (e.g. a diagnosis code); it must not be a quasi-identifier.
    pub column: String,
    /// Minimum distinct sensitive values per class.
    pub l: usize,
}

/// What an extract must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractSpec {
    /// The quasi-identifiers, each with its hierarchy. At least one.
    pub quasi_identifiers: Vec<QuasiIdentifier>,
    /// Every equivalence class of the output has at least `k` rows.
    pub k: usize,
    /// Optional distinct l-diversity on a sensitive column.
    pub l_diversity: Option<LDiversity>,
    /// Fraction of input rows that may be suppressed (removed), in [0, 1], e.g. `0.05`.
    pub max_suppression: f64,
}

impl ExtractSpec {
    /// A spec for k-anonymity over `quasi_identifiers`, with no suppression allowed and no
    /// l-diversity.
    pub fn new(quasi_identifiers: Vec<QuasiIdentifier>, k: usize) -> Self {
        ExtractSpec {
            quasi_identifiers,
            k,
            l_diversity: None,
            max_suppression: 0.0,
        }
    }

    /// Allows suppressing up to `fraction` of the input rows.
    pub fn with_max_suppression(mut self, fraction: f64) -> Self {
        self.max_suppression = fraction;
        self
    }

    /// Requires `l` distinct values of `column` in every equivalence class.
    pub fn with_l_diversity(mut self, column: impl Into<String>, l: usize) -> Self {
        self.l_diversity = Some(LDiversity {
            column: column.into(),
            l,
        });
        self
    }

    /// Checks the spec's own parameters (not against a schema).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.quasi_identifiers.is_empty() {
            return Err(Error::NoQuasiIdentifiers);
        }
        if self.k == 0 {
            return Err(Error::InvalidK);
        }
        if !(0.0..=1.0).contains(&self.max_suppression) {
            // also rejects NaN
            return Err(Error::InvalidSuppressionLimit {
                limit: self.max_suppression,
            });
        }
        let mut names: Vec<&str> = self
            .quasi_identifiers
            .iter()
            .map(|q| q.column.as_str())
            .collect();
        if let Some(ld) = &self.l_diversity {
            if ld.l == 0 {
                return Err(Error::InvalidL);
            }
            names.push(&ld.column);
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(Error::DuplicateColumn {
                    column: name.to_string(),
                });
            }
        }
        for qi in &self.quasi_identifiers {
            qi.hierarchy.validate(&qi.column)?;
        }
        Ok(())
    }

    /// Rows that may be suppressed out of `rows`.
    pub(crate) fn allowed_suppression(&self, rows: usize) -> u64 {
        // The epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 from rounding down to 28.
        (self.max_suppression * rows as f64 + 1e-9).floor() as u64
    }
}

/// The level chosen for one quasi-identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLevel {
    /// The column.
    pub column: String,
    /// The level applied (0 = unchanged).
    pub level: usize,
    /// The hierarchy's highest level (everything `*`).
    pub max_level: usize,
}

/// What [`anonymize`](crate::anonymize) did, for the provision record and the review committee.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The k asked for.
    pub k_requested: usize,
    /// The smallest equivalence class in the output (0 when the output is empty).
    pub k_reached: usize,
    /// The l asked for, if any.
    pub l_requested: Option<usize>,
    /// With l-diversity: the fewest distinct sensitive values in any output class (0 when the
    /// output is empty).
    pub l_reached: Option<usize>,
    /// Rows in the input.
    pub rows_in: usize,
    /// Rows in the output.
    pub rows_out: usize,
    /// Rows removed by suppression (`rows_in - rows_out`).
    pub rows_suppressed: usize,
    /// The level applied to each quasi-identifier, in spec order.
    pub levels: Vec<AppliedLevel>,
    /// Information loss in [0, 1]: Iyengar's loss metric (ARX's "Loss"). Each quasi-identifier
    /// cell loses `(n - 1) / (|D| - 1)`, where `n` is the number of distinct input values its
    /// generalised label covers and `|D|` the number of distinct input values of the column;
    /// cells of suppressed rows lose 1. The metric is the mean over all input cells: 0 for the
    /// input unchanged, 1 for everything `*` or suppressed.
    pub information_loss: f64,
    /// Discernibility metric: the sum of the squared sizes of the output classes, plus
    /// `rows_in` for each suppressed row.
    pub discernibility: u64,
    /// Lattice nodes whose equivalence classes were computed.
    pub nodes_evaluated: usize,
    /// Nodes in the generalisation lattice (0 for empty input, where nothing is searched).
    pub lattice_size: usize,
}
