//! `kura serve` with real clients: tokio-postgres (extended protocol, binary results, cancel)
//! and psql (simple protocol, meta-commands, TLS). Each test starts its own server process on a
//! free loopback port.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::{Client, NoTls, error::SqlState};

use crate::support::kura_bin;

pub const ADMIN_PASSWORD: &str = "admin-Pa55";

/// A running `kura serve` over a fresh warehouse with superuser `kura`.
pub struct TestServer {
    child: Child,
    pub port: u16,
    /// The folder of the warehouse it created (None when it serves one it was given).
    _dir: Option<tempfile::TempDir>,
    data: String,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("wh").to_string_lossy().into_owned();
        let init = Command::new(kura_bin())
            .args(["init", "--data", &data])
            .env("KURA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap();
        assert!(init.status.success(), "kura init: {}", String::from_utf8_lossy(&init.stderr));
        let mut server = Self::serve(&data, extra);
        server._dir = Some(dir);
        server
    }

    /// Serves an existing warehouse (its users and passwords are the caller's).
    pub fn serve(data: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(kura_bin())
            .args(["serve", "--data", data, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("Kura is serving on ") {
                let addr = rest.split_whitespace().next().unwrap();
                port = Some(addr.rsplit(':').next().unwrap().parse().unwrap());
                break;
            }
        }
        // Keep draining the server's log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let port = port.expect("server announced its address");
        Self { child, port, _dir: None, data: data.to_string() }
    }

    /// The warehouse folder it serves.
    pub fn data(&self) -> String {
        self.data.clone()
    }

    /// Kills the server with SIGKILL (no shutdown, no last flush).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn conninfo(&self, user: &str, password: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} password={password} dbname=kura", self.port)
    }

    pub async fn connect(&self, user: &str, password: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.conninfo(user, password), NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    pub async fn admin(&self) -> Client {
        self.connect("kura", ADMIN_PASSWORD).await.expect("admin logs in")
    }

    /// Runs psql with `args`; returns (success, stdout, stderr).
    pub fn psql(&self, user: &str, password: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("psql")
            .arg(format!("host=127.0.0.1 port={} user={user} dbname=kura sslmode=disable", self.port))
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql is installed (Debian postgresql-client)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_never_log_in_and_look_alike() {
    let server = TestServer::start();
    let right = server.admin().await;
    let row = right.query_one("SELECT current_user, session_user", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "kura");
    let wrong = server.connect("kura", "admin-pa55").await.unwrap_err();
    let unknown = server.connect("nobody", ADMIN_PASSWORD).await.unwrap_err();
    assert_eq!(code(&wrong), Some(&SqlState::INVALID_PASSWORD));
    assert_eq!(code(&unknown), Some(&SqlState::INVALID_PASSWORD));
    let msg = |e: &tokio_postgres::Error| e.as_db_error().unwrap().message().replace("nobody", "kura");
    assert_eq!(msg(&wrong), msg(&unknown), "the error does not tell which part was wrong");
    // A role without LOGIN cannot log in even with its password.
    right.batch_execute("CREATE ROLE clerk PASSWORD 'clerk-pw'").await.unwrap();
    assert!(server.connect("clerk", "clerk-pw").await.is_err());
    // After ALTER USER ... PASSWORD the old password stops working.
    right.batch_execute("CREATE USER alice PASSWORD 'first'; ALTER USER alice PASSWORD 'second'").await.unwrap();
    assert!(server.connect("alice", "first").await.is_err());
    server.connect("alice", "second").await.expect("new password works");
    // The catalog holds a SCRAM verifier, never the password.
    let stored = right.query("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = 'alice'", &[]).await.unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test]
async fn types_round_trip_through_parameters_and_binary_results() {
    let server = TestServer::start();
    let c = server.admin().await;
    c.batch_execute(
        "CREATE TABLE t (s SMALLINT, i INT, b BIGINT, r REAL, d DOUBLE PRECISION, n DECIMAL(10,2), \
         txt TEXT, ok BOOLEAN, day DATE, at TIMESTAMP, raw BYTEA)",
    )
    .await
    .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
    let at = day.and_hms_opt(9, 30, 0).unwrap();
    let n = c
        .execute(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5, 12.50, $6, $7, $8, $9, $10)",
            &[&7i16, &-42i32, &9_000_000_000i64, &1.5f32, &2.25f64, &"ヤマダ 'quoted'", &true, &day, &at, &vec![0u8, 255, 7]],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row = c.query_one("SELECT s, i, b, r, d, txt, ok, day, at, raw FROM t WHERE i = $1", &[&-42i32]).await.unwrap();
    assert_eq!(row.get::<_, i16>(0), 7);
    assert_eq!(row.get::<_, i32>(1), -42);
    assert_eq!(row.get::<_, i64>(2), 9_000_000_000);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), 2.25);
    assert_eq!(row.get::<_, String>(5), "ヤマダ 'quoted'");
    assert!(row.get::<_, bool>(6));
    assert_eq!(row.get::<_, chrono::NaiveDate>(7), day);
    assert_eq!(row.get::<_, chrono::NaiveDateTime>(8), at);
    assert_eq!(row.get::<_, Vec<u8>>(9), vec![0u8, 255, 7]);
    // A parameter is a value, never SQL.
    let none = c.query("SELECT i FROM t WHERE txt = $1", &[&"x' OR '1'='1"]).await.unwrap();
    assert!(none.is_empty());
    // Simple protocol: several statements, text results.
    let msgs = c.simple_query("SELECT 1 AS one; SELECT 'two' AS two").await.unwrap();
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(rows, ["1", "two"]);
}

#[tokio::test]
async fn errors_carry_sqlstates_and_the_session_goes_on() {
    let server = TestServer::start();
    let mut c = server.admin().await;
    let cases = [
        ("SELEC 1", SqlState::SYNTAX_ERROR),
        ("SELECT * FROM no_such_table", SqlState::UNDEFINED_TABLE),
        ("CREATE TABLE t (a INT NOT NULL); INSERT INTO t VALUES (NULL)", SqlState::NOT_NULL_VIOLATION),
        ("CREATE TABLE t (a INT)", SqlState::DUPLICATE_TABLE),
        ("SET ROLE kura", SqlState::FEATURE_NOT_SUPPORTED),
    ];
    for (sql, expected) in cases {
        let err = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(code(&err), Some(&expected), "{sql}: {err:?}");
    }
    // BEGIN/COMMIT as drivers send them; the session still works after errors.
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    let tz: String = c.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(tz, "UTC");
}

#[tokio::test]
async fn grants_decide_what_a_user_sees_and_does() {
    let server = TestServer::start();
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE SCHEMA claims;
             CREATE TABLE claims.medical (id INT, points INT);
             CREATE TABLE claims.secret (id INT);
             INSERT INTO claims.medical VALUES (1, 100), (2, 200);
             INSERT INTO claims.secret VALUES (1);
             CREATE VIEW claims.totals AS SELECT sum(points) AS total FROM claims.secret, claims.medical;
             CREATE ROLE analysts;
             GRANT SELECT ON claims.medical TO analysts;
             GRANT SELECT ON claims.totals TO analysts;
             CREATE USER ana PASSWORD 'ana-pw' IN ROLE analysts;
             CREATE USER bob PASSWORD 'bob-pw';",
        )
        .await
        .unwrap();
    let ana = server.connect("ana", "ana-pw").await.unwrap();
    let me: String = ana.query_one("SELECT current_user", &[]).await.unwrap().get(0);
    assert_eq!(me, "ana");
    let n: i64 = ana.query_one("SELECT count(*) FROM claims.medical", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    // The view reads claims.secret with its owner's rights; ana may use the view only.
    let total: i64 = ana.query_one("SELECT total FROM claims.totals", &[]).await.unwrap().get(0);
    assert_eq!(total, 300);
    for sql in [
        "SELECT * FROM claims.secret",
        "SELECT m.id FROM claims.medical m JOIN claims.secret s ON m.id = s.id",
        "SELECT * FROM claims.medical WHERE id IN (SELECT id FROM claims.secret)",
        "SELECT * FROM claims.secret VERSION AS OF 1",
        "INSERT INTO claims.medical VALUES (3, 300)",
        "DELETE FROM claims.medical WHERE id = 1",
        "UPDATE claims.medical SET points = 0",
        "DROP TABLE claims.medical",
        "CREATE TABLE claims.mine AS SELECT * FROM claims.secret",
        "CREATE VIEW public.peek AS SELECT * FROM claims.secret",
        "CREATE USER eve PASSWORD 'x'",
        "GRANT SELECT ON claims.secret TO ana",
        "ALTER USER ana SUPERUSER",
        "COPY claims.medical TO '/tmp/kura-leak.csv'",
        "EXPLAIN SELECT * FROM claims.secret",
        "SELECT * FROM claims.\"secret@v1\"",
        "COPY claims.secret TO STDOUT",
    ] {
        let err = ana.batch_execute(sql).await.expect_err(sql);
        assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {err:?}");
    }
    // SQL-level PREPARE would freeze privileges at preparation time; it is refused.
    let err = ana.batch_execute("PREPARE p AS SELECT * FROM claims.medical").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{err:?}");
    // Ungranted relations are invisible in every catalog clients read.
    let tables: Vec<String> = ana
        .query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'claims' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["medical", "totals"]);
    let classes: Vec<String> = ana
        .query("SELECT relname::text FROM pg_catalog.pg_class WHERE relname IN ('medical', 'secret')", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(classes, ["medical"]);
    // A user may change its own password, but nothing else about itself.
    ana.batch_execute("ALTER USER ana PASSWORD 'ana-pw2'").await.unwrap();
    // bob holds no grant at all.
    let bob = server.connect("bob", "bob-pw").await.unwrap();
    let err = bob.query("SELECT * FROM claims.medical", &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    // Revoking takes effect on the next statement.
    admin.batch_execute("REVOKE analysts FROM ana").await.unwrap();
    let err = ana.query("SELECT * FROM claims.medical", &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}

#[tokio::test]
async fn cancel_and_statement_timeout_stop_a_runaway_query_only() {
    let server = TestServer::start();
    let c = server.admin().await;
    let slow = "SELECT count(*) FROM generate_series(1, 2000000000) a";
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    let err = c.query(slow, &[]).await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(code(&err), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    c.batch_execute("SET statement_timeout = '300ms'").await.unwrap();
    let err = c.query(slow, &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::QUERY_CANCELED));
    assert!(err.as_db_error().unwrap().message().contains("timeout"));
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    let one: i64 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1, "the session goes on");
}

#[tokio::test]
async fn garbage_and_vanishing_clients_do_not_hurt_the_server() {
    let server = TestServer::start();
    let addr = format!("127.0.0.1:{}", server.port);
    let mut rng = 0x9e3779b97f4a7c15u64;
    for round in 0..50 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let len = 1 + (round * 37) % 300;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let _ = s.write_all(&bytes);
        // Vanish without a goodbye.
    }
    // A truncated startup message, then silence.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let _ = s.write_all(&[0, 0, 0, 40, 0, 3, 0, 0, b'u']);
    drop(s);
    // A client that disconnects in the middle of a query.
    {
        let c = server.admin().await;
        let q = tokio::spawn(async move { c.query("SELECT count(*) FROM generate_series(1, 500000000)", &[]).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        q.abort();
    }
    let c = server.admin().await;
    let one: i64 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn psql_meta_commands_list_only_what_the_user_may_see() {
    let server = TestServer::start();
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE SCHEMA claims;
             CREATE TABLE claims.medical (id INT NOT NULL, points INT, day DATE);
             CREATE TABLE claims.secret (id INT);
             CREATE VIEW claims.v AS SELECT id FROM claims.medical;
             CREATE USER ana PASSWORD 'ana-pw';
             GRANT SELECT ON claims.medical TO ana;",
        )
        .await
        .unwrap();
    for cmd in ["\\l", "\\dn", "\\dt claims.*", "\\d claims.medical", "\\dv claims.*", "\\du", "\\df"] {
        let (ok, out, err) = server.psql("kura", ADMIN_PASSWORD, &["-c", cmd]);
        assert!(ok, "psql {cmd} failed: {err}");
        match cmd {
            "\\dn" => assert!(out.contains("claims"), "{cmd}: {out}"),
            "\\dt claims.*" => assert!(out.contains("medical") && out.contains("secret"), "{cmd}: {out}"),
            "\\d claims.medical" => assert!(out.contains("points") && out.contains("integer"), "{cmd}: {out}"),
            "\\dv claims.*" => assert!(out.contains(" v "), "{cmd}: {out}"),
            "\\du" => assert!(out.contains("ana") && out.contains("Superuser"), "{cmd}: {out}"),
            _ => {}
        }
    }
    let (ok, out, err) = server.psql("ana", "ana-pw", &["-c", "\\dt claims.*"]);
    assert!(ok, "{err}");
    assert!(out.contains("medical") && !out.contains("secret"), "{out}");
    let (ok, _, err) = server.psql("ana", "ana-pw", &["-c", "SELECT * FROM claims.secret"]);
    assert!(!ok && err.contains("permission denied"), "{err}");
}

#[tokio::test]
async fn tls_is_used_when_configured_and_a_bad_certificate_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let server = TestServer::start_with(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    for mode in ["sslmode=require".to_string(), format!("sslmode=verify-full sslrootcert={}", cert.display())] {
        let out = Command::new("psql")
            .arg(format!("host=localhost port={} user=kura dbname=kura {mode}", server.port))
            .args(["-X", "-At", "-c", "\\conninfo", "-c", "SELECT 42"])
            .env("PGPASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("42"), "{mode}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("SSL connection"), "{mode}: not encrypted: {stdout}");
    }
    // A certificate that cannot be loaded: the server refuses to start, never serves plaintext.
    let data = dir.path().join("wh2");
    let init = Command::new(kura_bin())
        .args(["init", "--data", data.to_str().unwrap()])
        .env("KURA_ADMIN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(init.status.success());
    let out = Command::new(kura_bin())
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--tls-cert", key.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_hundred_clients_query_at_once() {
    let server = TestServer::start();
    let admin = server.admin().await;
    admin.batch_execute("CREATE TABLE nums AS SELECT * FROM generate_series(1, 1000) AS t(n)").await.unwrap();
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for i in 0..100i64 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let c = server.admin().await;
            let row = c.query_one("SELECT count(*), sum(n) FROM nums WHERE n > $1", &[&i]).await.unwrap();
            (row.get::<_, i64>(0), i)
        }));
    }
    for t in tasks {
        let (count, i) = t.await.unwrap();
        assert_eq!(count, 1000 - i);
    }
}

#[tokio::test]
async fn psql_copy_loads_and_dumps_and_a_bad_row_changes_nothing() {
    let server = TestServer::start();
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE TABLE visits (id INT NOT NULL, name TEXT, day DATE); CREATE USER clerk PASSWORD 'clerk-pw';
             GRANT INSERT ON visits TO clerk;",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "id,name,day\n1,ヤマダ,2024-04-01\n2,\"Tab\tand, comma\",2024-04-02\n3,,\n").unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name,day\n4,ok,2024-04-03\nfive,bad,2024-04-04\n").unwrap();
    // A user with INSERT only may load with \copy but not read back.
    let copy_in = format!("\\copy visits FROM '{}' WITH (FORMAT csv, HEADER true)", good.display());
    let (ok, out, err) = server.psql("clerk", "clerk-pw", &["-c", &copy_in]);
    assert!(ok, "{err}");
    assert!(out.contains("COPY 3"), "{out}");
    let copy_bad = format!("\\copy visits FROM '{}' WITH (FORMAT csv, HEADER true)", bad.display());
    let (ok, _, err) = server.psql("kura", ADMIN_PASSWORD, &["-c", &copy_bad]);
    assert!(!ok && err.contains("line 3") && err.contains("id"), "{err}");
    let n: i64 = admin.query_one("SELECT count(*) FROM visits", &[]).await.unwrap().get(0);
    assert_eq!(n, 3, "the failed load left the table unchanged");
    let (ok, _, err) = server.psql("clerk", "clerk-pw", &["-c", "\\copy visits TO STDOUT"]);
    assert!(!ok && err.contains("permission denied"), "{err}");
    // Dump as CSV and as text, and read it back identically.
    let (ok, csv, err) = server.psql("kura", ADMIN_PASSWORD, &["-c", "\\copy (SELECT * FROM visits ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true)"]);
    assert!(ok, "{err}");
    assert_eq!(csv, "id,name,day\n1,ヤマダ,2024-04-01\n2,\"Tab\tand, comma\",2024-04-02\n3,,\n");
    let (ok, text, err) = server.psql("kura", ADMIN_PASSWORD, &["-c", "\\copy (SELECT * FROM visits ORDER BY id) TO STDOUT"]);
    assert!(ok, "{err}");
    assert_eq!(text, "1\tヤマダ\t2024-04-01\n2\tTab\\tand, comma\t2024-04-02\n3\t\\N\t\\N\n");
}

#[tokio::test]
async fn an_unfinished_copy_from_stdin_loads_nothing() {
    use futures::SinkExt;
    let server = TestServer::start();
    let c = server.admin().await;
    c.batch_execute("CREATE TABLE t (a INT)").await.unwrap();
    {
        let sink = c.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.unwrap();
        let mut sink = Box::pin(sink);
        sink.send(bytes::Bytes::from_static(b"1\n2\n")).await.unwrap();
        // Dropped without finish(): the client aborts the copy.
    }
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
    let sink = c.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.unwrap();
    let mut sink = Box::pin(sink);
    sink.send(bytes::Bytes::from_static(b"1\n2\n3\n")).await.unwrap();
    let rows = sink.as_mut().finish().await.unwrap();
    assert_eq!(rows, 3);
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_query_over_its_memory_limit_fails_alone() {
    let server = TestServer::start_with(&["--query-memory", "16MB"]);
    let c = server.admin().await;
    let other = server.admin().await;
    // Grouping needs memory per group; 2 million groups of a wide key do not fit in 16 MB.
    let err = c
        .query(
            "SELECT k, count(*) FROM (SELECT repeat('x', 100) || CAST(n AS TEXT) AS k FROM generate_series(1, 2000000) AS t(n)) GROUP BY k ORDER BY k DESC LIMIT 1",
            &[],
        )
        .await;
    // DataFusion spills the aggregation where it can; either it finished within the limit, or it
    // failed with "resources exhausted". It must not take the server down.
    if let Err(e) = err {
        assert_eq!(code(&e).map(|c| c.code()), Some("53200"), "{e:?}");
    }
    let err = c.query("SELECT array_agg(repeat('y', 1000)) FROM generate_series(1, 200000)", &[]).await.unwrap_err();
    assert_eq!(code(&err).map(|c| c.code()), Some("53200"), "{err:?}");
    let one: i64 = other.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let one: i64 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1, "the session that failed goes on");
    // A user cannot lift the limit for itself.
    c.batch_execute("CREATE USER ana PASSWORD 'ana-pw'").await.unwrap();
    let ana = server.connect("ana", "ana-pw").await.unwrap();
    let err = ana.batch_execute("SET datafusion.runtime.memory_limit = '64G'").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err:?}");
    // Nor move name resolution behind the privilege checks' back.
    let err = ana.batch_execute("SET datafusion.catalog.default_schema = 'claims'").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{err:?}");
}

#[tokio::test]
async fn search_path_decides_where_unqualified_names_live() {
    let server = TestServer::start();
    let admin = server.admin().await;
    admin
        .batch_execute("CREATE SCHEMA claims; CREATE TABLE claims.medical (id INT); INSERT INTO claims.medical VALUES (1), (2)")
        .await
        .unwrap();
    admin.batch_execute("SET search_path TO claims").await.unwrap();
    let n: i64 = admin.query_one("SELECT count(*) FROM medical", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    let schema: String = admin.query_one("SELECT current_schema()", &[]).await.unwrap().get(0);
    assert_eq!(schema, "claims");
    admin.batch_execute("CREATE TABLE here (a INT); INSERT INTO here VALUES (7)").await.unwrap();
    let n: i64 = admin.query_one("SELECT count(*) FROM claims.here", &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "unqualified DDL and DML went to the search path");
    // The startup option libpq and Superset use.
    let conninfo = format!("{} options='-c search_path=claims'", server.conninfo("kura", ADMIN_PASSWORD));
    let (c, conn) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
    tokio::spawn(conn);
    let n: i64 = c.query_one("SELECT count(*) FROM medical", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    // Other sessions keep their own path.
    let other = server.admin().await;
    assert!(other.query("SELECT * FROM medical", &[]).await.is_err());
    // Privileges follow the schema a bare name resolves to: SELECT on public.x does not read
    // claims.x, which this user may only insert into.
    admin
        .batch_execute(
            "CREATE TABLE public.x (a INT); CREATE TABLE claims.x (a INT); INSERT INTO claims.x VALUES (42);
             CREATE USER ana PASSWORD 'ana-pw'; GRANT SELECT ON public.x TO ana; GRANT INSERT ON claims.x TO ana",
        )
        .await
        .unwrap();
    let ana = server.connect("ana", "ana-pw").await.unwrap();
    assert_eq!(ana.query("SELECT * FROM x", &[]).await.unwrap().len(), 0);
    ana.batch_execute("SET search_path TO claims").await.unwrap();
    let err = ana.query("SELECT * FROM x", &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err:?}");
    ana.batch_execute("INSERT INTO x VALUES (1)").await.unwrap();
}

#[tokio::test]
async fn portals_return_rows_in_pieces() {
    let server = TestServer::start();
    let mut c = server.admin().await;
    c.batch_execute("CREATE TABLE nums AS SELECT value AS n FROM generate_series(1, 10)").await.unwrap();
    let tx = c.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT n FROM nums WHERE n > $1 ORDER BY n").await.unwrap();
    let portal = tx.bind(&stmt, &[&2i64]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 3).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3, "a portal returns at most the rows asked for");
        seen.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    assert_eq!(seen, (3..=10).collect::<Vec<i64>>());
    tx.commit().await.unwrap();
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = TestServer::start();
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            assert!(exit.success(), "kura serve exits with success after SIGTERM: {exit:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "kura serve did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The port is free again.
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[tokio::test]
async fn result_columns_carry_postgres_types() {
    use tokio_postgres::types::Type;
    let server = TestServer::start();
    let c = server.admin().await;
    let sql = "SELECT CAST(1 AS SMALLINT) AS s, CAST(1 AS INT) AS i, CAST(1 AS BIGINT) AS b, \
               CAST(1.5 AS DECIMAL(10,2)) AS n, CAST(1.5 AS DOUBLE) AS d, 'x' AS t, true AS ok, \
               DATE '2024-04-01' AS day, TIMESTAMP '2024-04-01 09:30:00' AS at, \
               CAST(TIMESTAMP '2024-04-01 09:30:00' AS TIMESTAMP WITH TIME ZONE) AS atz, \
               INTERVAL '1 day' AS span, CAST('ab' AS BYTEA) AS raw, make_array(1, 2, 3) AS arr";
    let stmt = c.prepare(sql).await.unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|col| col.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::NUMERIC,
            Type::FLOAT8,
            Type::TEXT,
            Type::BOOL,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
            Type::INTERVAL,
            Type::BYTEA,
            Type::INT8_ARRAY
        ]
    );
    let row = c.query_one(&stmt, &[]).await.unwrap();
    assert_eq!(row.get::<_, Vec<i64>>(12), vec![1, 2, 3]);
    let atz: chrono::DateTime<chrono::Utc> = row.get(9);
    assert_eq!(atz.to_rfc3339(), "2024-04-01T09:30:00+00:00");
    // Text forms through the simple protocol.
    let msgs = c.simple_query("SELECT CAST(1.5 AS DECIMAL(10,2)), make_array(1, 2, 3)").await.unwrap();
    let row = msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string())),
        _ => None,
    });
    assert_eq!(row, Some(("1.50".to_string(), "{1,2,3}".to_string())));
}
