//! Errors of the generator.

use std::path::PathBuf;

/// Everything that can go wrong while generating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (e.g. zero persons).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Creating or writing an output file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A character could not be encoded in Shift_JIS (a generator bug: every emitted
    /// character must be representable in CP932).
    #[error("text not encodable in Shift_JIS in {file}: {sample:?}")]
    Unencodable {
        /// Output file.
        file: &'static str,
        /// A short sample of the offending text.
        sample: String,
    },
    /// A worker thread panicked.
    #[error("generator worker thread panicked")]
    WorkerPanicked,
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
