//! Errors of k-anonymous extraction.
//!
//! Every message names columns, levels and counts, never a cell's value: an extract is prepared
//! from identifiable data, and an error message travels further than the data it describes
//! (logs, tickets, review-committee mail).

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;

/// What went wrong while anonymising an extract.
///
/// Variants other than [`Error::Arrow`] are expected errors: a spec that does not fit the data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec names a column the schema does not have.
    #[error("column '{column}' is not in the input schema")]
    UnknownColumn {
        /// The column named in the spec.
        column: String,
    },

    /// The spec names a column twice (as two quasi-identifiers, or as a quasi-identifier and the
    /// sensitive column of l-diversity).
    #[error("column '{column}' is named more than once in the spec")]
    DuplicateColumn {
        /// The repeated column.
        column: String,
    },

    /// A column's type does not fit the hierarchy (or, for the sensitive column, cannot be
    /// compared).
    #[error("column '{column}' has type {data_type}, which {used_as} does not accept")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: DataType,
        /// The hierarchy (or role) that rejected it, e.g. "the Date hierarchy".
        used_as: &'static str,
    },

    /// Values of a column do not have the form the hierarchy needs (a date that is not a calendar
    /// date, a postal code that is not 7 digits).
    #[error("column '{column}': {count} values are not {expected}")]
    InvalidValues {
        /// The column.
        column: String,
        /// How many rows hold such values.
        count: usize,
        /// The form expected, e.g. "7-digit Japanese postal codes".
        expected: &'static str,
    },

    /// A custom hierarchy has no mapping at some level for values present in the data.
    #[error(
        "column '{column}': {count} distinct values have no mapping at hierarchy level {level}"
    )]
    UnmappedValues {
        /// The column.
        column: String,
        /// The hierarchy level (1 = the first mapping table).
        level: usize,
        /// How many distinct values lack a mapping.
        count: usize,
    },

    /// A hierarchy level does not generalise the level below it: two values that are equal at
    /// `level` differ at `level + 1`. Full-domain search relies on each level being a function of
    /// the one below (otherwise a "more general" node could split classes, and pruning would be
    /// wrong).
    #[error(
        "column '{column}': hierarchy level {} does not generalise level {level} \
         (values equal at level {level} differ at level {})", level + 1, level + 1
    )]
    NotNested {
        /// The column.
        column: String,
        /// The lower of the two levels.
        level: usize,
    },

    /// A hierarchy's parameters are inconsistent (e.g. age bands that do not nest).
    #[error("column '{column}': invalid hierarchy: {reason}")]
    InvalidHierarchy {
        /// The column.
        column: String,
        /// What is wrong with the parameters (never data).
        reason: String,
    },

    /// The spec has no quasi-identifiers.
    #[error("the spec names no quasi-identifier columns")]
    NoQuasiIdentifiers,

    /// `k` must be at least 1.
    #[error("k must be at least 1")]
    InvalidK,

    /// `l` must be at least 1.
    #[error("l (of l-diversity) must be at least 1")]
    InvalidL,

    /// The suppression limit must be a fraction in [0, 1].
    #[error("the suppression limit must be a fraction between 0 and 1, got {limit}")]
    InvalidSuppressionLimit {
        /// The limit given.
        limit: f64,
    },

    /// No output can be k-anonymous: the input has fewer rows than `k`, so every row would have
    /// to be suppressed.
    #[error("k = {k} cannot be reached: the input has only {rows} rows, all would be suppressed")]
    KUnreachable {
        /// The k requested.
        k: usize,
        /// The input's row count.
        rows: usize,
    },

    /// No output can be l-diverse: the whole input has fewer than `l` distinct sensitive values.
    #[error(
        "l = {l} cannot be reached: sensitive column '{column}' has only {distinct} distinct \
         values in the whole input"
    )]
    LUnreachable {
        /// The sensitive column.
        column: String,
        /// The l requested.
        l: usize,
        /// The number of distinct values (NULL counts as one) in the input.
        distinct: usize,
    },

    /// The generalisation lattice (the product of the hierarchies' level counts) is too large to
    /// search.
    #[error("the generalisation lattice has {nodes} nodes, more than the limit of {limit}")]
    LatticeTooLarge {
        /// Nodes in the lattice (saturated at `u128::MAX`).
        nodes: u128,
        /// The limit.
        limit: usize,
    },

    /// A record batch does not match the schema passed alongside it.
    #[error("record batch {batch} does not match the input schema")]
    BatchSchemaMismatch {
        /// The batch's position in the input slice.
        batch: usize,
    },

    /// The input has more rows or distinct values than the 32-bit codes used internally hold.
    #[error("the input has {rows} rows, more than the {limit} an extract may have")]
    TooManyRows {
        /// Rows in the input.
        rows: usize,
        /// The limit.
        limit: usize,
    },

    /// An Arrow kernel failed while building the output; this is a bug, not a spec problem.
    #[error("arrow error while building the extract: {0}")]
    Arrow(#[from] ArrowError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
