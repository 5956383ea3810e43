//! Errors raised by Kura's functions.
//!
//! SECURITY: an error message is an oracle. A query such as
//! `SELECT wareki_to_date(name) FROM patients` must not learn a name from the error it raises, so
//! every variant carries only `&'static str` (the function, the argument, the expected form) plus,
//! for [`Error::UnknownKey`], a key *name* that came from a literal in the query text. No variant
//! can hold a cell value: adding a `String` field here needs a security review.

use datafusion::common::DataFusionError;

/// What a Kura function reports. Crosses DataFusion as [`DataFusionError::External`]; recover it
/// at the edge with `DataFusionError::find_root()` and a downcast to map it to a SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key ring has no key under this name (the name is not secret: it is query text).
    #[error("unknown key \"{0}\"")]
    UnknownKey(String),
    /// A configuration argument (a unit, a width, a key name) was not a literal.
    #[error("{function}: argument `{argument}` must be a literal")]
    NotLiteral {
        /// SQL function name.
        function: &'static str,
        /// Argument name as documented.
        argument: &'static str,
    },
    /// A literal argument has the wrong type or an unsupported value.
    #[error("{function}: argument `{argument}` must be {expected}")]
    InvalidArgument {
        /// SQL function name.
        function: &'static str,
        /// Argument name as documented.
        argument: &'static str,
        /// The accepted values, e.g. "a positive integer".
        expected: &'static str,
    },
    /// A data value could not be interpreted. The value itself is never reported.
    #[error("{function}: a value of `{argument}` is not {expected}")]
    InvalidValue {
        /// SQL function name.
        function: &'static str,
        /// Argument name as documented.
        argument: &'static str,
        /// The accepted form, e.g. "a Japanese era date such as R7.4.1".
        expected: &'static str,
    },
    /// A result does not fit its type (e.g. a shifted date beyond year 262143).
    #[error("{function}: a result is out of range for {what}")]
    OutOfRange {
        /// SQL function name.
        function: &'static str,
        /// The type or range exceeded.
        what: &'static str,
    },
}

/// Result with Kura's function [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}
