//! Errors of a migration.

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a migration stopped. Each names the location and what to do; none deletes anything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A location could not be parsed or opened (unknown scheme, bad bucket name...).
    #[error(transparent)]
    Location(#[from] kura_storage::Error),
    /// The source holds no Kura warehouse.
    #[error("{location} is not a Kura warehouse (it has no catalog under _kura/catalog/_log/)")]
    NotAWarehouse {
        /// The source as given.
        location: String,
    },
    /// The destination already holds another warehouse (or other data).
    #[error("destination {location} {reason}; choose an empty location (nothing was changed)")]
    DestinationInUse {
        /// The destination as given.
        location: String,
        /// What is there.
        reason: String,
    },
    /// Source and destination overlap, so copying would copy the copy.
    #[error("source {from} and destination {to} overlap; choose a destination outside the source")]
    Overlap {
        /// Source URL.
        from: String,
        /// Destination URL.
        to: String,
    },
    /// A location did not answer in time.
    #[error("{location} is unreachable (no answer within {seconds} s): {reason}")]
    Unreachable {
        /// The location.
        location: String,
        /// How long was waited.
        seconds: u64,
        /// The last error seen, if any.
        reason: String,
    },
    /// The object store failed an operation.
    #[error("object store error on {location}: {source}")]
    Store {
        /// Source or destination URL.
        location: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// An object read back from the destination differs from what was sent.
    #[error("{path}: checksum mismatch after upload (sent {sent}, destination has {found})")]
    Checksum {
        /// Object path below the warehouse prefix.
        path: String,
        /// Checksum of the bytes sent.
        sent: String,
        /// Checksum the destination reports.
        found: String,
    },
    /// Some objects could not be copied; later phases were not started.
    #[error("{failed} object(s) could not be copied (first: {first}); run the migration again to resume")]
    Incomplete {
        /// How many failed.
        failed: usize,
        /// The first failure.
        first: String,
    },
    /// Reading a table or the catalog for verification failed.
    #[error("verifying {what}: {reason}")]
    Verify {
        /// Table or catalog.
        what: String,
        /// The cause.
        reason: String,
    },
    /// The migration journal at the destination is unreadable.
    #[error("the migration journal {path} is unreadable: {reason}")]
    Journal {
        /// Journal object.
        path: String,
        /// Why.
        reason: String,
    },
    /// The source warehouse is already read-only because it moved somewhere else.
    #[error("{from} was already moved to {moved_to} (it is read-only); lift that with `kura migrate --reopen --from {from}` first")]
    MovedElsewhere {
        /// Source URL.
        from: String,
        /// Where its flag says it went.
        moved_to: String,
    },
}

impl Error {
    pub(crate) fn store(location: &str) -> impl FnOnce(object_store::Error) -> Self + '_ {
        move |source| Self::Store { location: location.to_string(), source }
    }
}
