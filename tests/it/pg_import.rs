//! `kura import postgres` against a real PostgreSQL server (scripts/test.sh starts one on
//! loopback and sets `KURA_TEST_POSTGRES` to its DSN; without it these tests print a notice and
//! pass). Each test works in a database of its own.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kura_engine::Engine;
use kura_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use kura_pgimport::{ImportOptions, Status};
use tokio_postgres::NoTls;

use crate::support::{count, files_below, kura_bin};

/// A fresh database `name` on the test server: its DSN, or `None` (with a notice) without one.
async fn database(name: &str) -> Option<String> {
    let Ok(dsn) = std::env::var("KURA_TEST_POSTGRES") else {
        eprintln!("NOTICE: KURA_TEST_POSTGRES is not set; skipping PostgreSQL import test {name} (scripts/test.sh sets it)");
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&dsn, NoTls).await.expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    let db = format!("kura_it_{name}");
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    let (base, _) = dsn.rsplit_once('/').expect("DSN of the form postgres://user@host:port/db");
    Some(format!("{base}/{db}"))
}

async fn run_sql(dsn: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

fn options(dsn: &str, schema: &str) -> ImportOptions {
    let mut o = ImportOptions::new(dsn);
    o.schema = schema.into();
    o.progress = false;
    o
}

async fn show(session: &kura_engine::Session, sql: &str) -> String {
    pretty_format_batches(&session.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapped_type_arrives_with_its_value() {
    let Some(dsn) = database("types").await else { return };
    run_sql(
        &dsn,
        r#"
        CREATE SCHEMA clinic;
        CREATE TABLE clinic.everything (
          id int4, i2 int2, i8 int8, f4 real, f8 double precision, amount numeric(12,2), free numeric,
          flag bool, name text, kana varchar(20), code char(5), nm name, born date, seen timestamp,
          at timestamptz, raw bytea, uid uuid, j json, jb jsonb,
          ints int4[], names text[], amounts numeric(6,3)[], ats timestamptz[]);
        SET timezone = 'America/New_York';
        INSERT INTO clinic.everything VALUES
         (1, -32768, -9223372036854775808, 1.5, -2.25e300, -12345.67, 3.1415926535, true, '山田 太郎', 'ﾔﾏﾀﾞ', 'ab', 'n1',
          '2024-04-01', '2024-04-01 09:30:00.123456', '2024-04-01 09:30:00+09', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '{"a": 1}', '{"b": [1, 2]}', '{1,NULL,3}', '{"髙橋","a,b",NULL}', '{-1.5,2.125}', '{"2020-01-01 00:00:00+00"}'),
         (2, 32767, 9223372036854775807, 'NaN', '-Infinity', -0.05, -100, false, '', NULL, NULL, NULL,
          '1900-02-28', '1969-12-31 23:59:59.999999', '1999-12-31 23:59:59', '\x', NULL, NULL, NULL, '{}', '{}', NULL, NULL),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE clinic.visits AS SELECT g AS id, 'visit ' || g AS note FROM generate_series(1, 200000) g;
        -- Random values of every kind, so that both sides' hashes meet every case (string tails,
        -- negative and pre-2000 values, decimals of every scale and size, empty and NULL arrays).
        SELECT setseed(0.25);
        CREATE TABLE clinic.shaken AS SELECT g AS id,
          (random() * 65535 - 32768)::int2 AS i2, (random() * 4e9 - 2e9)::int4 AS i4,
          ((random() - 0.5) * 1.8e19)::numeric(20,0)::int8 AS i8,
          ((random() - 0.5) * 10 ^ (g % 30 - 15))::real AS f4, (random() - 0.5) * 10 ^ (g % 600 - 300) AS f8,
          ((random() - 0.5) * 10 ^ (g % 28))::numeric(38,10) AS wide,
          round(((random() - 0.5) * 10 ^ (g % 12))::numeric, g % 11) AS free,
          round((random() - 0.5)::numeric * 1000, 3)::numeric(7,3) AS small,
          random() < 0.5 AS flag, left(md5(g::text) || md5((g * 7)::text), g % 41) AS txt,
          date '1900-01-01' + (random() * 80000)::int AS d,
          timestamp '1900-01-01' + random() * interval '200 years' AS ts,
          timestamptz '1950-01-01 00:00+00' + random() * interval '100 years' AS tz,
          decode(left(md5(g::text), (g % 17) * 2), 'hex') AS raw,
          CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY[(random() * 100)::int4, NULL] END AS ints,
          CASE WHEN g % 3 = 0 THEN '{}' ELSE ARRAY[round((random() - 0.5)::numeric * 100, 2)] END AS nums,
          ARRAY[date '1990-01-01' + g, NULL] AS ds, ARRAY[left(md5(g::text), g % 13)]::varchar[] AS words
        FROM generate_series(1, 3000) g;
        "#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(
        dir.path().to_str().unwrap(),
        kura_engine::EngineOptions { audit: kura_engine::audit::AuditOptions::on(), ..Default::default() },
    )
    .await
    .unwrap();
    let session = engine.session("kura");
    let report = kura_pgimport::import(&session, &options(&dsn, "clinic")).await.unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.tables.len(), 3);
    assert!(report.tables.iter().all(|t| t.status == Status::Imported && t.verified), "{}", report.to_text());
    assert_eq!(count(&session, "SELECT count(*) FROM clinic.visits").await, 200_000);
    let got = show(
        &session,
        "SELECT id, i2, i8, f4, f8, amount, free, flag, name, kana, code, nm, born, seen, at, raw, uid, j, jb, ints, names, amounts, ats FROM clinic.everything ORDER BY id",
    )
    .await;
    for expected in [
        "-9223372036854775808", "9223372036854775807", "-12345.67", "-0.05", "3.1415926535", "-100.0000000000",
        "山田 太郎", "ﾔﾏﾀﾞ", "| ab ", "2024-04-01T09:30:00.123456", "2024-04-01T00:30:00Z", "2000-01-01T04:59:59Z",
        "1969-12-31T23:59:59.999999", "1900-02-28", "00ff10", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", r#"{"b": [1, 2]}"#,
        "[1, , 3]", "[髙橋, a,b, ]", "[-1.500, 2.125]", "[2020-01-01T00:00:00Z]", "NaN", "-inf", "-2.25e300",
    ] {
        assert!(got.contains(expected), "{expected} missing from\n{got}");
    }
    // Types as declared, NULLs as NULLs.
    assert_eq!(count(&session, "SELECT count(*) FROM clinic.everything WHERE name IS NULL AND ints IS NULL AND raw IS NULL").await, 1);
    assert_eq!(count(&session, "SELECT count(*) FROM clinic.everything WHERE name = '' AND cardinality(ints) = 0").await, 1);
    let types = show(&session, "SELECT arrow_typeof(amount), arrow_typeof(at), arrow_typeof(raw), arrow_typeof(ints) FROM clinic.everything LIMIT 1").await;
    assert!(types.contains("Decimal128(12, 2)") && types.contains("Timestamp(µs, \"UTC\")") || types.contains("Timestamp(Microsecond, Some(\"UTC\"))"), "{types}");
    // The load is a normal Kura load, recorded with its source and checksum.
    let audit = show(&session, "SELECT target_table, source, format, rows, checksums FROM audit.ingestions ORDER BY target_table").await;
    assert!(audit.contains("clinic.everything") && audit.contains("/kura_it_types clinic.everything") && audit.contains("pghash:"), "{audit}");
    assert!(audit.contains("200000"), "{audit}");

    // A rerun skips what is verified.
    let again = kura_pgimport::import(&session, &options(&dsn, "clinic")).await.unwrap();
    assert!(again.ok && again.tables.iter().all(|t| t.status == Status::Skipped), "{}", again.to_text());

    // A table changed in Kura after the import no longer verifies against PostgreSQL.
    session.execute_all("DELETE FROM clinic.visits WHERE id = 7").await.unwrap();
    let sum = kura_pgimport::checksum::kura_side(&session, "clinic", "visits", &visits_table()).await.unwrap();
    assert_eq!(sum.rows, 199_999);
    assert_ne!(sum.sum, report.tables.iter().find(|t| t.target == "clinic.visits").unwrap().checksum);

    // So does any single changed value: a sign, a microsecond, one array element, two values
    // swapped between columns, a NULL for a zero.
    let everything = kura_pgimport::describe(&dsn, "clinic", "everything").await.unwrap();
    let imported = report.tables.iter().find(|t| t.target == "clinic.everything").unwrap().checksum.clone();
    let now = kura_pgimport::checksum::kura_side(&session, "clinic", "everything", &everything).await.unwrap();
    assert_eq!(now.sum, imported, "recomputing gives the verified checksum");
    session.execute_all("CREATE TABLE clinic.probe AS SELECT * FROM clinic.everything").await.unwrap();
    let copied = kura_pgimport::checksum::kura_side(&session, "clinic", "probe", &everything).await.unwrap();
    assert_eq!(copied.sum, imported, "an unchanged copy has the same checksum");
    for change in [
        "UPDATE clinic.everything SET amount = -amount WHERE id = 1",
        "UPDATE clinic.everything SET free = -free WHERE id = 2",
        "UPDATE clinic.everything SET amounts = [CAST(1.5 AS DECIMAL(6,3)), CAST(2.125 AS DECIMAL(6,3))] WHERE id = 1",
        "UPDATE clinic.everything SET seen = seen + INTERVAL '1 microsecond' WHERE id = 1",
        "UPDATE clinic.everything SET ints = [1, 3, NULL] WHERE id = 1",
        "UPDATE clinic.everything SET i2 = 1 WHERE id = 3",
        "UPDATE clinic.everything SET name = kana, kana = name WHERE id = 1",
        "UPDATE clinic.everything SET f8 = 0 WHERE id = 3",
        "UPDATE clinic.everything SET born = born + 1 WHERE id = 2",
    ] {
        // On a copy, so that each change is alone.
        session.execute_all("DROP TABLE IF EXISTS clinic.probe; CREATE TABLE clinic.probe AS SELECT * FROM clinic.everything").await.unwrap();
        let change = change.replace("clinic.everything", "clinic.probe");
        session.execute_all(&change).await.unwrap_or_else(|e| panic!("{change}: {e}"));
        let changed = kura_pgimport::checksum::kura_side(&session, "clinic", "probe", &everything).await.unwrap();
        assert_ne!(changed.sum, imported, "{change} was not noticed");
    }
}

fn visits_table() -> kura_pgimport::types::SourceTable {
    use kura_pgimport::types::{Column, ColumnType, Scalar, SourceTable};
    let col = |name: &str, scalar| Column { name: name.into(), kind: ColumnType { scalar, array: false }, pg_type: String::new(), bpchar: false };
    SourceTable { schema: "clinic".into(), name: "visits".into(), columns: vec![col("id", Scalar::Int4), col("note", Scalar::Text)], estimated_rows: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_creates_nothing() {
    let Some(dsn) = database("bad").await else { return };
    run_sql(
        &dsn,
        r#"
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE public.fine (id int4, name text);
        INSERT INTO public.fine VALUES (1, 'a');
        CREATE TABLE public.shapes (id int4, at point);
        CREATE TABLE public.moods (id int4, m mood);
        DROP ROLE IF EXISTS kura_pw;
        CREATE ROLE kura_pw LOGIN PASSWORD 'right-password';
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO kura_pw;
        "#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
    let session = engine.session("kura");
    let tables_before = files_below(&dir.path().join("tables")).len();
    let refuse = |o: ImportOptions| {
        let session = &session;
        async move { kura_pgimport::import(session, &o).await.expect_err("must be refused").to_string() }
    };

    // Unmappable types: named with table and column, before anything moves.
    let e = refuse(options(&dsn, "public")).await;
    assert!(e.contains("public.moods") && e.contains("\"m\"") && e.contains("mood"), "{e}");
    let mut o = options(&dsn, "public");
    o.tables = vec!["fine".into(), "shapes".into()];
    let e = refuse(o).await;
    assert!(e.contains("public.shapes") && e.contains("\"at\"") && e.contains("point"), "{e}");
    assert_eq!(files_below(&dir.path().join("tables")).len(), tables_before, "no table files written");
    assert!(session.query("SELECT * FROM public.fine").await.is_err(), "fine must not have been imported either");

    // A missing table, a missing schema.
    let mut o = options(&dsn, "public");
    o.tables = vec!["nope".into()];
    assert!(refuse(o).await.contains("\"public\".\"nope\" does not exist"));
    assert!(refuse(options(&dsn, "nowhere")).await.contains("\"nowhere\" does not exist"));

    // Unreachable server, wrong password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = refuse(options(&format!("postgres://postgres@127.0.0.1:{port}/postgres"), "public")).await;
    assert!(e.contains("cannot connect to PostgreSQL at postgres://127.0.0.1:"), "{e}");
    let (base, db) = dsn.rsplit_once('/').unwrap();
    let host = base.rsplit_once('@').unwrap().1;
    let e = refuse(options(&format!("postgres://kura_pw:wrong-password@{host}/{db}"), "public")).await;
    assert!(e.contains("password authentication failed") && !e.contains("wrong-password"), "{e}");

    // An existing Kura table of the same name (not from this import) is refused.
    session.execute_all("CREATE TABLE public.fine (x int)").await.unwrap();
    let mut o = options(&format!("postgres://kura_pw:right-password@{host}/{db}"), "public");
    o.tables = vec!["fine".into()];
    let e = refuse(o.clone()).await;
    assert!(e.contains("public.fine already exists"), "{e}");
    // ...and into another schema it works, with the right password.
    o.into = Some("imported".into());
    let report = kura_pgimport::import(&session, &o).await.unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(count(&session, "SELECT count(*) FROM imported.fine").await, 1);
}

/// Generates a table of `rows` rows of about 330 bytes each.
async fn big_table(dsn: &str, rows: u64) {
    run_sql(
        dsn,
        &format!(
            "CREATE TABLE public.claims AS SELECT g::int8 AS id, repeat(md5(g::text), 10) AS payload,
               (g % 100000)::numeric(12,2) AS points, timestamptz '2024-01-01' + g * interval '1 second' AS at
             FROM generate_series(1, {rows}) g; ANALYZE public.claims;"
        ),
    )
    .await;
}

fn import_command(dsn: &str, data: &std::path::Path) -> Command {
    let mut cmd = Command::new(kura_bin());
    cmd.args(["import", "postgres", "--dsn", dsn, "--data", data.to_str().unwrap(), "--schema", "public"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_resumes_and_verifies() {
    let Some(dsn) = database("kill").await else { return };
    big_table(&dsn, 1_500_000).await;
    run_sql(&dsn, "CREATE TABLE public.small AS SELECT g AS id FROM generate_series(1, 1000) g").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wh");
    let mut child = import_command(&dsn, &data).arg("--jobs").arg("1").spawn().unwrap();
    // Wait until the big table is being read (its COPY runs on the server; the load commits only
    // after it ends), then SIGKILL. Data files are no sign: Delta writes a file when it is full,
    // which can be just before the commit, and the audit tables write files of their own.
    let (watch, conn) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
    tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reading: i64 = watch
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%claims%' AND state = 'active'", &[])
            .await
            .unwrap()
            .get(0);
        if reading > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the import finished before it could be killed; make the table bigger");
        assert!(Instant::now() < deadline, "no data files after 120 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "the import finished before it could be killed");
    child.kill().unwrap();
    child.wait().unwrap();
    {
        let engine = Engine::open(data.to_str().unwrap()).await.unwrap();
        let session = engine.session("kura");
        assert!(session.query("SELECT count(*) FROM public.claims").await.is_err(), "a killed load leaves no table");
    }
    let out = import_command(&dsn, &data).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rerun failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("public.claims") && text.contains("2 of 2 tables verified"), "{text}");
    let engine = Engine::open(data.to_str().unwrap()).await.unwrap();
    let session = engine.session("kura");
    assert_eq!(count(&session, "SELECT count(*) FROM public.claims").await, 1_500_000);
    assert_eq!(count(&session, "SELECT count(DISTINCT id) FROM public.claims").await, 1_500_000);
}

/// Peak resident memory of a running process, sampled until it exits.
fn run_measuring_rss(mut cmd: Command) -> (std::process::Output, u64) {
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let p = peak.clone();
    let sampler = std::thread::spawn(move || {
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            // VmHWM is the peak itself; keep sampling VmRSS in case the kernel lacks it.
            for line in status.lines().filter(|l| l.starts_with("VmHWM:") || l.starts_with("VmRSS:")) {
                let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                p.fetch_max(kb * 1024, std::sync::atomic::Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let out = child.wait_with_output().unwrap();
    sampler.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_table_streams_in_bounded_memory() {
    let Some(dsn) = database("memory").await else { return };
    // About 500 MB of rows in PostgreSQL's text form.
    big_table(&dsn, 1_500_000).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wh");
    let (out, peak) = run_measuring_rss(import_command(&dsn, &data));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 of 1 tables verified"), "{text}");
    eprintln!("peak RSS importing 1,500,000 rows (~500 MB): {} MiB", peak >> 20);
    assert!(peak < 400 << 20, "peak RSS {} MiB: the import does not stream", peak >> 20);
}
