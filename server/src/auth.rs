//! Login: SCRAM-SHA-256 over pgwire's SASL messages, checked against the PostgreSQL-format
//! verifiers in Kura's catalog.
//!
//! pgwire's own SCRAM handler needs the `SaltedPassword`, which is as good as the password to
//! anyone who reads it; Kura stores only `StoredKey`/`ServerKey` (as PostgreSQL does), so the
//! server half of the exchange is written here (RFC 5802 §3, RFC 7677).
//!
//! Failed logins are answered the same way whether the user, the password or the login
//! attribute was wrong (a user without a verifier gets a mock one, as PostgreSQL does), logged
//! with the client's address, and slowed per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kura_engine::scram::{ScramVerifier, hmac_sha256, sha256};
use parking_lot::Mutex;
use pgwire::error::{ErrorInfo, PgWireError};

/// The only mechanism offered. Channel binding (`-PLUS`) is not offered, so clients send the
/// `n,,` or `y,,` GS2 header.
pub(crate) const MECHANISM: &str = "SCRAM-SHA-256";

/// Where a SCRAM exchange is.
#[derive(Debug, Default)]
pub(crate) enum ScramState {
    /// Waiting for the client's first message.
    #[default]
    Initial,
    /// Server-first sent; waiting for client-final.
    ServerFirstSent(Box<Pending>),
    /// Done (successfully).
    Finished,
}

#[derive(Debug)]
pub(crate) struct Pending {
    verifier: ScramVerifier,
    /// Whether a login can succeed at all (user exists, may log in, has a password).
    valid: bool,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// A login failure as PostgreSQL words it (never says which part was wrong).
pub(crate) fn login_failed(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "28P01".into(),
        format!("password authentication failed for user \"{user}\""),
    )))
}

fn protocol_error(message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), "08P01".into(), message.into())))
}

/// Handles the client-first message; returns the server-first message.
pub(crate) fn client_first(
    message: &[u8],
    verifier: Option<ScramVerifier>,
    user: &str,
    server_secret: &[u8],
) -> Result<(String, Pending), PgWireError> {
    let text = std::str::from_utf8(message).map_err(|_| protocol_error("SCRAM message is not UTF-8"))?;
    // gs2-header: ("n" | "y" | "p=...") "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let cbind = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or_else(|| protocol_error("malformed SCRAM client-first message"))?;
    let bare = parts.next().ok_or_else(|| protocol_error("malformed SCRAM client-first message"))?;
    if cbind.starts_with("p=") {
        return Err(protocol_error("SCRAM channel binding is not supported; use SCRAM-SHA-256"));
    }
    if cbind != "n" && cbind != "y" {
        return Err(protocol_error("malformed SCRAM GS2 header"));
    }
    let client_nonce = bare
        .split(',')
        .find_map(|attr| attr.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_graphic() && c != ','))
        .ok_or_else(|| protocol_error("SCRAM client-first message has no nonce"))?;
    let valid = verifier.is_some();
    let verifier = verifier.unwrap_or_else(|| ScramVerifier::mock(user, server_secret));
    let server_nonce: [u8; 18] = rand::random();
    let nonce = format!("{client_nonce}{}", STANDARD.encode(server_nonce));
    let server_first = format!("r={nonce},s={},i={}", STANDARD.encode(&verifier.salt), verifier.iterations);
    let pending = Pending {
        verifier,
        valid,
        gs2_header: format!("{cbind},{authzid},"),
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
    };
    Ok((server_first, pending))
}

/// Checks the client-final message; returns the server-final message on success, `None` when
/// the proof is wrong (or the login could never succeed).
pub(crate) fn client_final(message: &[u8], pending: &Pending) -> Result<Option<String>, PgWireError> {
    let text = std::str::from_utf8(message).map_err(|_| protocol_error("SCRAM message is not UTF-8"))?;
    let (without_proof, proof) =
        text.rsplit_once(",p=").ok_or_else(|| protocol_error("SCRAM client-final message has no proof"))?;
    let mut channel_binding = None;
    let mut nonce = None;
    for attr in without_proof.split(',') {
        if let Some(c) = attr.strip_prefix("c=") {
            channel_binding = Some(c);
        } else if let Some(r) = attr.strip_prefix("r=") {
            nonce = Some(r);
        }
    }
    let expected_binding = STANDARD.encode(pending.gs2_header.as_bytes());
    if channel_binding != Some(expected_binding.as_str()) {
        return Err(protocol_error("SCRAM channel binding does not match"));
    }
    if nonce != Some(pending.nonce.as_str()) {
        return Err(protocol_error("SCRAM nonce does not match"));
    }
    let proof = STANDARD.decode(proof).map_err(|_| protocol_error("SCRAM proof is not base64"))?;
    let auth_message = format!("{},{},{}", pending.client_first_bare, pending.server_first, without_proof);
    let client_signature = hmac_sha256(&pending.verifier.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Ok(None);
    }
    let client_key: Vec<u8> = proof.iter().zip(client_signature.iter()).map(|(a, b)| a ^ b).collect();
    let computed = sha256(&client_key);
    // Constant-time comparison.
    let diff = computed.iter().zip(pending.verifier.stored_key.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 || !pending.valid {
        return Ok(None);
    }
    let server_signature = hmac_sha256(&pending.verifier.server_key, auth_message.as_bytes());
    Ok(Some(format!("v={}", STANDARD.encode(server_signature))))
}

/// Per-address slow-down after failed logins: each failure doubles the wait before the next
/// failure is answered (from 250 ms up to 8 s); a success or 10 quiet minutes reset it.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Backoff {
    const FORGET_AFTER: Duration = Duration::from_secs(600);

    /// Records a failure and returns how long to wait before answering it.
    pub(crate) fn failed(&self, addr: IpAddr) -> Duration {
        let mut map = self.failures.lock();
        let now = Instant::now();
        map.retain(|_, (_, at)| now.duration_since(*at) < Self::FORGET_AFTER);
        let entry = map.entry(addr).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Duration::from_millis(250u64 << (entry.0 - 1).min(5))
    }

    /// Forgets an address's failures after a successful login.
    pub(crate) fn succeeded(&self, addr: IpAddr) {
        self.failures.lock().remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side of the exchange, as RFC 5802 describes it.
    fn client_proof(password: &str, client_first_bare: &str, server_first: &str, without_proof: &str) -> String {
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            if let Some(s) = attr.strip_prefix("s=") {
                salt = Some(STANDARD.decode(s).unwrap());
            } else if let Some(i) = attr.strip_prefix("i=") {
                iterations = Some(i.parse::<u32>().unwrap());
            }
        }
        let salted = kura_engine::scram::salted_password(password, &salt.unwrap(), iterations.unwrap());
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature.iter()).map(|(a, b)| a ^ b).collect();
        STANDARD.encode(proof)
    }

    fn exchange(stored: Option<&str>, password: &str) -> Option<String> {
        let verifier = stored.map(|p| ScramVerifier::derive(p, b"0123456789abcdef", 4096));
        let (server_first, pending) = client_first(b"n,,n=,r=clientnonce", verifier, "alice", b"secret").unwrap();
        let nonce = server_first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let without_proof = format!("c=biws,r={nonce}");
        let proof = client_proof(password, "n=,r=clientnonce", &server_first, &without_proof);
        client_final(format!("{without_proof},p={proof}").as_bytes(), &pending).unwrap()
    }

    #[test]
    fn right_password_logs_in_and_wrong_ones_do_not() {
        assert!(exchange(Some("s3cret"), "s3cret").is_some());
        assert!(exchange(Some("s3cret"), "s3cret ").is_none());
        assert!(exchange(Some("s3cret"), "").is_none());
        // No verifier (unknown user): even the "right" guess of anything fails.
        assert!(exchange(None, "s3cret").is_none());
    }

    #[test]
    fn tampered_messages_are_protocol_errors() {
        let verifier = Some(ScramVerifier::derive("pw", b"0123456789abcdef", 4096));
        assert!(client_first(b"p=tls-server-end-point,,n=,r=x", verifier.clone(), "a", b"k").is_err());
        assert!(client_first(b"garbage", verifier.clone(), "a", b"k").is_err());
        let (_, pending) = client_first(b"n,,n=,r=abc", verifier, "a", b"k").unwrap();
        assert!(client_final(b"c=biws,r=wrongnonce,p=AAAA", &pending).is_err());
        assert!(client_final(b"c=eSws,r=x,p=AAAA", &pending).is_err());
        assert!(client_final(b"\xff\xfe", &pending).is_err());
    }

    #[test]
    fn backoff_grows_per_address_and_resets() {
        let b = Backoff::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = b.failed(a);
        let second = b.failed(a);
        assert!(second > first);
        assert_eq!(b.failed("10.0.0.2".parse().unwrap()), first);
        b.succeeded(a);
        assert_eq!(b.failed(a), first);
    }
}
