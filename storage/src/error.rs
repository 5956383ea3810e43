//! Errors of the storage layer.

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong below the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The warehouse URL could not be understood.
    #[error("invalid warehouse location '{location}': {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// The object store refused or failed an operation.
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// delta-rs reported an error.
    #[error("delta table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    /// A requested table version or timestamp does not exist.
    #[error("table version not found: {0}")]
    VersionNotFound(String),
    /// A local I/O operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
