//! Engine errors. Expected errors (bad SQL, unknown objects, bad input files) are kept apart from
//! bugs so that the wire layer can map each to a SQLSTATE in one exhaustive match.

use datafusion::error::DataFusionError;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in an input file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePosition {
    /// File name as given in the statement.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Column name, when the problem is in one field.
    pub column: Option<String>,
}

impl std::fmt::Display for FilePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, line {}", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        Ok(())
    }
}

/// What can go wrong while running a statement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text could not be parsed.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// What the parser expected or found.
        message: String,
        /// 1-based line of the offending token (0 when unknown).
        line: u64,
        /// 1-based column of the offending token (0 when unknown).
        column: u64,
    },
    /// A schema, table, view or column does not exist.
    #[error("{0}")]
    UndefinedObject(String),
    /// A schema, table or view already exists.
    #[error("{0}")]
    DuplicateObject(String),
    /// A copy of another error: its message and SQLSTATE.
    #[error("{message}")]
    Reported {
        /// The original error's SQLSTATE.
        sqlstate: &'static str,
        /// The original error's message.
        message: String,
    },
    /// The statement raced with another writer and must be retried.
    #[error("{0}")]
    SerializationFailure(String),
    /// A value does not fit its column (type, NOT NULL, encoding) while loading or writing.
    #[error("{message} ({position})")]
    BadInput {
        /// What is wrong, naming the column but never echoing the value.
        message: String,
        /// Where.
        position: FilePosition,
    },
    /// A NOT NULL column received a NULL outside of a file load.
    #[error("null value in column \"{column}\" of table \"{table}\" violates not-null constraint")]
    NotNullViolation {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// The user lacks a privilege the statement needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// The statement is valid SQL but Kura does not support it (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The statement is invalid for a reason stated in the message.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("could not access file \"{path}\": {source}")]
    File {
        /// Path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The catalog refused or failed a change.
    #[error(transparent)]
    Catalog(#[from] kura_catalog::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] kura_storage::Error),
    /// Query planning or execution failed.
    #[error("{}", clean_datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
    /// A query over data the user sees only through policies failed on a value; the engine's
    /// message (which may quote the value) is withheld.
    #[error("the query failed on a value ({what}); details are withheld because the data is protected by policies")]
    Withheld {
        /// The SQLSTATE of the original error.
        sqlstate: &'static str,
        /// What kind of failure, without values.
        what: &'static str,
    },
    /// delta-rs failed during a table operation.
    #[error("table operation failed: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
}

impl Error {
    /// Recovers a Kura error that travelled through DataFusion as `External`.
    pub fn from_datafusion(err: DataFusionError) -> Self {
        if let DataFusionError::External(inner) = err.find_root() {
            if let Some(kura) = inner.downcast_ref::<Error>() {
                return kura.clone_shallow();
            }
        }
        match err {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(kura) => *kura,
                Err(inner) => Error::DataFusion(DataFusionError::External(inner)),
            },
            other => Error::DataFusion(other),
        }
    }

    /// A copy of errors that carry plain data; others become their message.
    pub(crate) fn clone_shallow(&self) -> Self {
        match self {
            Error::BadInput { message, position } => {
                Error::BadInput { message: message.clone(), position: position.clone() }
            }
            Error::NotNullViolation { table, column } => {
                Error::NotNullViolation { table: table.clone(), column: column.clone() }
            }
            Error::Syntax { message, line, column } => {
                Error::Syntax { message: message.clone(), line: *line, column: *column }
            }
            Error::UndefinedObject(m) => Error::UndefinedObject(m.clone()),
            Error::DuplicateObject(m) => Error::DuplicateObject(m.clone()),
            Error::SerializationFailure(m) => Error::SerializationFailure(m.clone()),
            Error::Unsupported(m) => Error::Unsupported(m.clone()),
            Error::PermissionDenied(m) => Error::PermissionDenied(m.clone()),
            Error::Withheld { sqlstate, what } => Error::Withheld { sqlstate, what },
            Error::Reported { sqlstate, message } => Error::Reported { sqlstate, message: message.clone() },
            other => Error::Reported { sqlstate: other.sqlstate(), message: other.to_string() },
        }
    }

    /// The PostgreSQL SQLSTATE code that clients expect for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "42601",
            Error::UndefinedObject(m) => {
                if m.starts_with("column") || m.contains("column \"") {
                    "42703"
                } else if m.starts_with("schema") {
                    "3F000"
                } else if m.starts_with("role") {
                    "42704"
                } else {
                    "42P01"
                }
            }
            Error::DuplicateObject(m) => {
                if m.starts_with("schema") {
                    "42P06"
                } else if m.starts_with("role") {
                    "42710"
                } else {
                    "42P07"
                }
            }
            Error::BadInput { .. } => "22P04",
            Error::NotNullViolation { .. } => "23502",
            Error::SerializationFailure(_) => "40001",
            Error::Reported { sqlstate, .. } => sqlstate,
            Error::PermissionDenied(_) => "42501",
            Error::Unsupported(_) => "0A000",
            Error::Invalid(_) => "22023",
            Error::File { .. } => "58P01",
            Error::Catalog(kura_catalog::Error::Conflict { .. }) => "40001",
            Error::Catalog(kura_catalog::Error::Invalid(_)) => "22023",
            Error::Catalog(_) | Error::Storage(_) | Error::Delta(_) => "XX000",
            Error::DataFusion(e) => datafusion_sqlstate(e),
            Error::Withheld { sqlstate, .. } => sqlstate,
        }
    }

    /// The error a user sees when a statement over policed data fails while running: the
    /// SQLSTATE is kept, the message (which DataFusion may fill with a cell value) is not.
    pub(crate) fn withheld(err: DataFusionError) -> Self {
        let kura = Error::from_datafusion(err);
        if !matches!(kura, Error::DataFusion(_)) {
            return kura;
        }
        let sqlstate = kura.sqlstate();
        let what = match sqlstate {
            "22012" => "division by zero",
            "22P02" => "invalid conversion",
            "22003" => "numeric value out of range",
            "53200" => "out of memory",
            s if s.starts_with("22") => "data exception",
            _ => "execution error",
        };
        Error::Withheld { sqlstate, what }
    }

    /// Turns a catalog error into the engine's vocabulary.
    pub(crate) fn catalog(err: kura_catalog::Error) -> Self {
        use kura_catalog::Error as C;
        match err {
            C::NotFound { .. } => Error::UndefinedObject(err.to_string()),
            C::AlreadyExists { .. } => Error::DuplicateObject(err.to_string()),
            C::Reserved(m) => Error::PermissionDenied(m),
            other => Error::Catalog(other),
        }
    }
}

fn datafusion_sqlstate(err: &DataFusionError) -> &'static str {
    match err.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            datafusion::common::SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P10",
        },
        DataFusionError::Plan(m) => {
            if m.contains("table") && (m.contains("not found") || m.contains("does not exist")) {
                "42P01"
            } else if m.contains("function") && m.contains("not found") || m.contains("Invalid function") {
                "42883"
            } else if m.contains("Cannot") && m.contains("cast") || m.contains("coerce") {
                "42804"
            } else {
                "42000"
            }
        }
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            datafusion::arrow::error::ArrowError::DivideByZero => "22012",
            datafusion::arrow::error::ArrowError::CastError(_) => "22P02",
            datafusion::arrow::error::ArrowError::ComputeError(m) if m.contains("Overflow") => "22003",
            _ => "22000",
        },
        DataFusionError::Execution(m) if m.contains("Cast error") || m.contains("cannot be cast") => "22P02",
        DataFusionError::Execution(m) if m.contains("Divide by zero") => "22012",
        _ => "XX000",
    }
}

/// DataFusion prefixes messages with its internal layer names ("Error during planning: ");
/// users want the sentence.
fn clean_datafusion_message(err: &DataFusionError) -> String {
    let root = err.find_root();
    let text = root.to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Invalid argument error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    text
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}
