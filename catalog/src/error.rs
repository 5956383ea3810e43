//! Catalog errors.

use std::fmt;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Kinds of catalog objects, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A schema (namespace).
    Schema,
    /// A table.
    Table,
    /// A view.
    View,
    /// A table or a view (both live in one namespace, as in PostgreSQL).
    Relation,
    /// A role (a user is a role that can log in).
    Role,
    /// A policy (masking, row access, projection or aggregation).
    Policy,
    /// A source declared for research-ID linkage.
    LinkageSource,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Schema => "schema",
            Self::Table => "table",
            Self::View => "view",
            Self::Relation => "relation",
            Self::Role => "role",
            Self::Policy => "policy",
            Self::LinkageSource => "linkage source",
        })
    }
}

/// What can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object already exists.
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists {
        /// Kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} \"{name}\" does not exist")]
    NotFound {
        /// Kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// A schema still holds objects.
    #[error("cannot drop schema \"{name}\" because it still contains {count} object(s); use DROP SCHEMA ... CASCADE")]
    SchemaNotEmpty {
        /// Schema name.
        name: String,
        /// How many objects it holds.
        count: usize,
    },
    /// Another writer kept winning the race for the next version.
    #[error("catalog conflict: another process changed the catalog concurrently {attempts} times; retry the statement")]
    Conflict {
        /// How many attempts were made.
        attempts: usize,
    },
    /// A change was refused for a reason the caller states.
    #[error("{0}")]
    Invalid(String),
    /// A change to something only Kura itself may change (the audit trail).
    #[error("{0}")]
    Reserved(String),
    /// A commit file could not be read; the catalog refuses to load rather than skip it.
    #[error("catalog commit {path} is unreadable: {reason}")]
    Corrupt {
        /// Path of the commit file.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The object store failed.
    #[error("catalog storage error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] kura_storage::Error),
}
