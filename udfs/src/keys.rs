//! Key material for the keyed functions (`pseudonymize`, `date_shift`).
//!
//! Invariants every [`KeyRing`] must hold:
//! - SECURITY: key bytes never leave the ring except through [`KeyRing::key`]. `Debug` prints key
//!   names at most, never bytes: DataFusion prints function structs in `EXPLAIN VERBOSE` and in
//!   logs, so a derived `Debug` over the bytes would publish them.
//! - Keys are addressed by name from SQL (`pseudonymize(id, 'research_2026')`); the name is not
//!   secret, the bytes are. Key bytes are never taken from SQL arguments, because the query text
//!   goes to the audit log and to `EXPLAIN`.
//! - A name maps to the same bytes for the life of a session, so a function is deterministic
//!   (`Volatility::Immutable`) for a given ring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where keyed functions find their secrets, by name. The engine implements it over its key
/// store; [`StaticKeyRing`] serves tests and tools.
pub trait KeyRing: Send + Sync + fmt::Debug {
    /// The key bytes registered under `name`, or `None` if there is no such key.
    fn key(&self, name: &str) -> Option<Arc<[u8]>>;
}

/// A fixed, in-memory key ring. Its `Debug` lists key names only.
///
/// ```
/// use std::sync::Arc;
/// use kura_udfs::{KeyRing, StaticKeyRing};
/// let ring = StaticKeyRing::default().with_key("research", b"0123456789abcdef0123456789abcdef");
/// assert!(ring.key("research").is_some());
/// assert!(!format!("{ring:?}").contains("0123"));
/// ```
#[derive(Clone, Default)]
pub struct StaticKeyRing(pub HashMap<String, Arc<[u8]>>);

impl StaticKeyRing {
    /// Adds (or replaces) the key `name`.
    pub fn with_key(mut self, name: impl Into<String>, bytes: impl AsRef<[u8]>) -> Self {
        self.0.insert(name.into(), Arc::from(bytes.as_ref()));
        self
    }
}

impl KeyRing for StaticKeyRing {
    fn key(&self, name: &str) -> Option<Arc<[u8]>> {
        self.0.get(name).cloned()
    }
}

impl fmt::Debug for StaticKeyRing {
    // SECURITY: names only; see the module invariants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("StaticKeyRing").field("keys", &names).finish_non_exhaustive()
    }
}

/// A shared ring with pointer identity, so keyed UDF structs can derive `PartialEq` and `Hash`
/// (DataFusion compares functions when it deduplicates expressions) without looking at keys.
#[derive(Clone)]
pub(crate) struct SharedRing(pub(crate) Arc<dyn KeyRing>);

impl SharedRing {
    fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }
}

impl PartialEq for SharedRing {
    fn eq(&self, other: &Self) -> bool {
        self.addr() == other.addr()
    }
}
impl Eq for SharedRing {}

impl std::hash::Hash for SharedRing {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.addr().hash(state);
    }
}

impl fmt::Debug for SharedRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Delegates to the ring, which must not print bytes (module invariant).
        self.0.fmt(f)
    }
}
