//! Protocol fuzzing: random and mutated frontend messages, before and after login, against a
//! real `kura serve`. The server must answer with an error or close the connection, and keep
//! serving everyone else. Runs `KURA_FUZZ_SECONDS` (default 5) seconds; set it higher to fuzz
//! longer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kura_engine::scram::{hmac_sha256, salted_password, sha256};

use crate::server::TestServer;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn startup(user: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", "kura")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    m.extend_from_slice(&body);
    m
}

/// Reads backend messages until one of type `want` (returns its body) or an error/close.
fn read_until(s: &mut TcpStream, want: u8) -> Option<Vec<u8>> {
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).ok()?;
        let len = i32::from_be_bytes(head[1..5].try_into().ok()?) as usize;
        let mut body = vec![0u8; len.checked_sub(4)?];
        s.read_exact(&mut body).ok()?;
        if std::env::var("KURA_FUZZ_TRACE").is_ok() {
            eprintln!("<- {} ({} bytes)", head[0] as char, body.len());
        }
        if head[0] == want {
            return Some(body);
        }
        if head[0] == b'E' && want != b'E' {
            return None;
        }
    }
}

/// Logs in with SCRAM over a raw socket; returns the socket ready for queries.
fn login(port: u16, user: &str, password: &str) -> Option<TcpStream> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(&startup(user)).ok()?;
    read_until(&mut s, b'R')?;
    let client_first_bare = "n=,r=fuzznonce";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    let first = format!("n,,{client_first_bare}");
    body.extend_from_slice(&(first.len() as i32).to_be_bytes());
    body.extend_from_slice(first.as_bytes());
    s.write_all(&message(b'p', &body)).ok()?;
    let cont = read_until(&mut s, b'R')?;
    let server_first = String::from_utf8(cont[4..].to_vec()).ok()?;
    let mut nonce = "";
    let mut salt = vec![];
    let mut iterations = 0;
    for attr in server_first.split(',') {
        if let Some(v) = attr.strip_prefix("r=") {
            nonce = v;
        } else if let Some(v) = attr.strip_prefix("s=") {
            salt = b64.decode(v).ok()?;
        } else if let Some(v) = attr.strip_prefix("i=") {
            iterations = v.parse().ok()?;
        }
    }
    let without_proof = format!("c=biws,r={nonce}");
    let salted = salted_password(password, &salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let sig = hmac_sha256(&sha256(&client_key), auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
    let fin = format!("{without_proof},p={}", b64.encode(proof));
    s.write_all(&message(b'p', fin.as_bytes())).ok()?;
    read_until(&mut s, b'Z')?;
    Some(s)
}

/// Valid messages to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut parse = b"s1\0SELECT $1::int + 1\0".to_vec();
    parse.extend_from_slice(&1i16.to_be_bytes());
    parse.extend_from_slice(&23i32.to_be_bytes());
    let mut bind = b"\0s1\0".to_vec();
    bind.extend_from_slice(&0i16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes());
    bind.extend_from_slice(&1i32.to_be_bytes());
    bind.push(b'7');
    bind.extend_from_slice(&0i16.to_be_bytes());
    vec![
        message(b'Q', b"SELECT 1\0"),
        message(b'Q', b"CREATE TABLE IF NOT EXISTS f (a INT); INSERT INTO f VALUES (1)\0"),
        message(b'P', &parse),
        message(b'B', &bind),
        message(b'D', b"S s1\0"),
        message(b'E', b"\0\0\0\0\x01"),
        message(b'S', b""),
        message(b'H', b""),
        message(b'C', b"Ss1\0"),
        message(b'Q', b"COPY f FROM STDIN\0"),
        message(b'd', b"1\n2\n"),
        message(b'c', b""),
        message(b'f', b"oops\0"),
    ]
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let mut m = corpus[rng.below(corpus.len())].clone();
        match rng.below(6) {
            0 => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            1 => m.truncate(rng.below(m.len())),
            2 => {
                // A lying length field.
                let len = match rng.below(3) {
                    0 => i32::MAX,
                    1 => -1,
                    _ => rng.below(1 << 20) as i32,
                };
                if m.len() >= 5 {
                    m[1..5].copy_from_slice(&len.to_be_bytes());
                }
            }
            3 => m = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            4 => {
                let extra: Vec<u8> = (0..rng.below(50)).map(|_| rng.next() as u8).collect();
                let at = rng.below(m.len());
                m.splice(at..at, extra);
            }
            _ => {}
        }
        out.extend(m);
    }
    out
}

#[test]
fn random_and_mutated_messages_never_take_the_server_down() {
    let seconds: u64 = std::env::var("KURA_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let server = TestServer::start();
    let port = server.port;
    let seed = std::env::var("KURA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("fuzzing for {seconds}s with KURA_FUZZ_SEED={seed}");
    let mut rng = Rng(seed);
    let corpus = corpus();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut cases = 0;
    while Instant::now() < deadline {
        cases += 1;
        let before_login = rng.below(4) == 0;
        let stream = if before_login {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("server accepts connections");
            let mut first = startup("kura");
            if rng.below(2) == 0 {
                let i = rng.below(first.len());
                first[i] = rng.next() as u8;
            }
            let _ = s.write_all(&first);
            Some(s)
        } else {
            login(port, "kura", crate::server::ADMIN_PASSWORD)
        };
        let Some(mut s) = stream else { panic!("login failed in case {cases} (seed {seed})") };
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..1 + rng.below(5) {
            if s.write_all(&mutate(&mut rng, &corpus)).is_err() {
                break;
            }
        }
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
    eprintln!("{cases} fuzz cases");
    // Still alive, and still correct.
    let mut s = login(port, "kura", crate::server::ADMIN_PASSWORD).expect("login after fuzzing");
    s.write_all(&message(b'Q', b"SELECT 40 + 2\0")).unwrap();
    let row = read_until(&mut s, b'D').expect("a data row");
    assert!(row.ends_with(b"42"), "{row:?}");
}

#[test]
fn a_million_parameters_is_an_error_not_a_crash() {
    let server = TestServer::start();
    let mut s = login(server.port, "kura", crate::server::ADMIN_PASSWORD).unwrap();
    let mut sql = String::from("SELECT ");
    let n: usize = std::env::var("KURA_TEST_PARAMS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    for i in 1..=n {
        if i > 1 {
            sql.push(',');
        }
        sql.push_str(&format!("${i}"));
    }
    let mut parse = b"big\0".to_vec();
    parse.extend_from_slice(sql.as_bytes());
    parse.push(0);
    parse.extend_from_slice(&0i16.to_be_bytes());
    s.write_all(&message(b'P', &parse)).unwrap();
    s.write_all(&message(b'S', b"")).unwrap();
    let err = read_until(&mut s, b'E').expect("an error response");
    assert!(String::from_utf8_lossy(&err).contains("too many parameters"), "{}", String::from_utf8_lossy(&err));
    // The same connection goes on.
    read_until(&mut s, b'Z').unwrap();
    s.write_all(&message(b'Q', b"SELECT 7\0")).unwrap();
    assert!(read_until(&mut s, b'D').unwrap().ends_with(b"7"));
}
