//! SCRAM-SHA-256 password verifiers (RFC 5802 / RFC 7677), stored exactly as PostgreSQL stores
//! them: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
//!
//! A verifier lets a server check a SCRAM proof but is not enough to log in: the password and the
//! `SaltedPassword`/`ClientKey` derived from it are never stored.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};

/// Iterations used for new verifiers (PostgreSQL's default).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// A parsed SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramVerifier").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// `SaltedPassword := Hi(Normalize(password), salt, i)`, SASLprep-normalised as PostgreSQL does
/// (falling back to the raw bytes when the password is not valid for SASLprep).
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let normalized = stringprep::saslprep(password).map(|c| c.into_owned()).unwrap_or_else(|_| password.to_string());
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(iterations.max(1)).expect("at least one iteration");
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, normalized.as_bytes(), &mut out);
    out
}

/// HMAC-SHA-256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl ScramVerifier {
    /// Derives a verifier for `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        Self::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// Derives a verifier for `password` with the given salt and iteration count.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Parses PostgreSQL's text form; `None` if `text` is not a SCRAM-SHA-256 verifier.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
        let salt = STANDARD.decode(salt).ok()?;
        let stored_key: [u8; 32] = STANDARD.decode(stored).ok()?.try_into().ok()?;
        let server_key: [u8; 32] = STANDARD.decode(server).ok()?.try_into().ok()?;
        Some(Self { iterations, salt, stored_key, server_key })
    }

    /// A deterministic verifier for a user that does not exist (or has no password), so that a
    /// login attempt looks the same whether or not the user exists; no password matches it.
    pub fn mock(user: &str, server_secret: &[u8]) -> Self {
        let salt = hmac_sha256(server_secret, user.as_bytes());
        let unguessable = hmac_sha256(server_secret, &salt);
        Self {
            iterations: DEFAULT_ITERATIONS,
            salt: salt[..16].to_vec(),
            stored_key: sha256(&unguessable),
            server_key: unguessable,
        }
    }
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_round_trips_and_matches_postgres() {
        // PostgreSQL's verifier for password "secret" with this salt and 4096 iterations, computed
        // independently with Python's hashlib (pbkdf2_hmac, hmac, sha256).
        let pg = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$Ce3wZiZ+yIBCjltccfRiqM0+XDsLE3qPdkEeZKe3hus=:k3q4nlLsA09ST5FLo9zNmfyXR+Ci1J4KmBK5JRVSxeI=";
        let parsed = ScramVerifier::parse(pg).expect("parses");
        let derived = ScramVerifier::derive("secret", b"saltsaltsaltsalt", 4096);
        assert_eq!(ScramVerifier::parse(&derived.to_string()), Some(derived.clone()));
        assert_eq!(parsed.salt, b"saltsaltsaltsalt");
        assert_eq!(parsed, derived, "Kura derives the same verifier as PostgreSQL");
        assert!(ScramVerifier::parse("md5abc").is_none());
        assert!(ScramVerifier::parse("SCRAM-SHA-256$0:AA==$AA==:AA==").is_none());
    }

    #[test]
    fn mock_verifiers_are_stable_per_user_and_differ_between_users() {
        let a = ScramVerifier::mock("alice", b"k");
        assert_eq!(a, ScramVerifier::mock("alice", b"k"));
        assert_ne!(a.salt, ScramVerifier::mock("bob", b"k").salt);
    }
}
