//! `kura migrate`: a demo warehouse (tables, catalog, roles, policies, pseudonym keys, linkage
//! state) copied between folders with the real binary, killed with SIGKILL mid-transfer and
//! resumed, copied again incrementally, cut over; bad input refused with nothing deleted; a
//! tampered copy caught by the table verification. The S3 round trip is in `s3.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kura_engine::datafusion::arrow::util::pretty::pretty_format_batches;

use crate::support::{files_below as files, kura_bin};

/// `kura demo --no-serve` with `persons`: returns the warehouse folder.
pub fn demo_warehouse(dir: &Path, persons: u32) -> PathBuf {
    let out = Command::new(kura_bin())
        .args(["demo", "--data", dir.join("demo").to_str().unwrap(), "--persons", &persons.to_string(), "--no-serve"])
        .env("KURA_DEMO_PASSWORD", "migrate-test")
        .output()
        .unwrap();
    assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("demo").join("warehouse")
}

fn kura(args: &[&str]) -> Output {
    Command::new(kura_bin()).args(args).output().unwrap()
}

/// Runs `kura migrate` with a JSON report; returns the output and the report (on success).
fn migrate(args: &[&str], report: &Path) -> (Output, Option<serde_json::Value>) {
    let _ = std::fs::remove_file(report);
    let mut all = vec!["migrate", "--report", report.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = kura(&all);
    let parsed = std::fs::read(report).ok().map(|b| serde_json::from_slice(&b).unwrap());
    (out, parsed)
}

fn n(report: &serde_json::Value, what: &str) -> u64 {
    report[what]["objects"].as_u64().unwrap_or_else(|| panic!("no {what} in {report}"))
}

/// What the demo's users see, as text: raw, pseudonymised (keys), linked (linkage), anonymised.
pub async fn views(location: &str) -> Vec<String> {
    let engine = kura_engine::Engine::open(location).await.unwrap();
    let people = "SELECT atena_number, name_kana, birth_date, postal_code FROM resident.residents ORDER BY 1, 2, 3, 4";
    let cohort = "SELECT count(DISTINCT k.research_id) FROM research.checkups k \
                  JOIN research.medical_claims m ON m.research_id = k.research_id WHERE k.hba1c >= 6.0";
    let claims = "SELECT fiscal_year, count(*), sum(total_points) FROM claims.medical_claims GROUP BY 1 ORDER BY 1";
    let mut out = Vec::new();
    for (user, sql) in [("kura", claims), ("operator", people), ("researcher", people), ("researcher", cohort), ("analyst", people)] {
        let session = if user == "kura" { engine.session(user) } else { engine.login_session(user).await.unwrap() };
        let batches = session.query(sql).await.unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
        out.push(format!("{user}: {}", pretty_format_batches(&batches).unwrap()));
    }
    let snapshot = engine.catalog().cached();
    out.push(format!("roles {:?}", snapshot.state.roles.keys().collect::<Vec<_>>()));
    out.push(format!("policies {:?}", snapshot.state.policies));
    out.push(format!("grants {:?}", snapshot.state.grants));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_transfer_then_resume_copies_the_rest_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let source = demo_warehouse(dir.path(), 2000);
    let dest = dir.path().join("copy");
    let (src, dst) = (source.to_str().unwrap(), dest.to_str().unwrap());

    // Capped at 2 MB/s, the demo's ~8 MB take about four seconds: kill it once the journal has
    // recorded a first batch of verified objects.
    let mut child = Command::new(kura_bin())
        .args(["migrate", "--from", src, "--to", dst, "--bandwidth", "2MB", "--jobs", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if !files(&dest.join("_kura_migrate").join("journal")).is_empty() {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the migration finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(60), "no journal batch appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the migration finished before it could be killed");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!dest.join("_kura/catalog/_log").exists(), "killed mid-transfer: the catalog (copied last) is not there yet");

    let report_file = dir.path().join("report.json");
    let (out, report) = migrate(&["--from", src, "--to", dst], &report_file);
    assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
    let report = report.unwrap();
    assert!(n(&report, "skipped") > 0, "objects verified before the kill are not copied again: {report}");
    assert!(n(&report, "copied") > 0, "the rest is copied: {report}");
    assert_eq!(n(&report, "skipped") + n(&report, "copied"), n(&report, "listed"));
    assert_eq!(report["ok"], true);
    let tables = report["tables"].as_array().unwrap();
    assert!(tables.len() >= 15 && tables.iter().all(|t| t["matches"] == true), "{report}");
    assert!(dir.path().join("report.txt").exists(), "text report next to the JSON one");

    // A third run finds everything there.
    let (out, report) = migrate(&["--from", src, "--to", dst], &report_file);
    assert!(out.status.success());
    assert_eq!(n(&report.unwrap(), "copied"), 0);

    assert_eq!(views(src).await, views(dst).await, "same answers, same roles and policies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_and_cutover_leave_the_source_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let source = demo_warehouse(dir.path(), 500);
    let dest = dir.path().join("copy");
    let (src, dst) = (source.to_str().unwrap(), dest.to_str().unwrap());
    let report_file = dir.path().join("report.json");
    let (out, first) = migrate(&["--from", src, "--to", dst], &report_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = first.unwrap();

    // The source stays in use: a new Delta version, a new table, a grant (catalog commits).
    let out = kura(&["sql", "--data", src, "--no-timing", "-c",
        "INSERT INTO consent.optout SELECT atena_number, DATE '2026-05-01' FROM resident.residents LIMIT 3; \
         CREATE TABLE public.after_first (a INT); INSERT INTO public.after_first VALUES (1), (2); \
         GRANT SELECT ON public.after_first TO analysts"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (out, second) = migrate(&["--from", src, "--to", dst, "--dry-run"], &report_file);
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("copy   _kura/catalog/_log/"), "the dry run lists the new catalog versions:\n{listed}");
    assert!(second.unwrap()["would_copy"].as_array().unwrap().len() < 30);
    let (out, second) = migrate(&["--from", src, "--to", dst], &report_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = second.unwrap();
    assert!(n(&second, "copied") > 0 && n(&second, "copied") < 30, "only the changes: {second}");
    assert!(n(&second, "copied") * 10 < n(&first, "copied"), "{second}");

    // Cutover: the source refuses writes and names the new location; the copy takes them.
    let out = kura(&["migrate", "--from", src, "--to", dst, "--cutover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("kura serve --data file://{dst}")), "{stdout}");
    let out = kura(&["sql", "--data", src, "-c", "INSERT INTO public.after_first VALUES (3)"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is read-only") && err.contains(dst), "{err}");
    let out = kura(&["sql", "--data", src, "--csv", "--no-timing", "-c", "SELECT count(*) FROM public.after_first"]);
    assert!(out.status.success(), "reads still work: {}", String::from_utf8_lossy(&out.stderr));
    let out = kura(&["sql", "--data", dst, "--no-timing", "-c", "INSERT INTO public.after_first VALUES (3)"]);
    assert!(out.status.success(), "the new location takes writes: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(views(src).await, views(dst).await, "same answers after cutover");
    // Moving it elsewhere again is refused until the flag is lifted (rollback).
    let out = kura(&["migrate", "--from", src, "--to", dir.path().join("third").to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--reopen"));
    assert!(kura(&["migrate", "--reopen", "--from", src]).status.success());
    assert!(kura(&["sql", "--data", src, "-c", "INSERT INTO public.after_first VALUES (4)"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for wh in [&a, &b] {
        let out = kura(&["sql", "--data", wh.to_str().unwrap(), "-c", "CREATE TABLE t (x INT); INSERT INTO t VALUES (1)"]);
        assert!(out.status.success());
    }
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), b"mine").unwrap();
    let (c, missing) = (dir.path().join("c"), dir.path().join("missing"));
    let before: Vec<_> = [&a, &b, &junk].iter().map(|d| files(d).len()).collect();
    let cases: [(&[&str], &str); 6] = [
        (&["--from", "gs://bucket/x", "--to", b.to_str().unwrap()], "unsupported scheme 'gs'"),
        (&["--from", a.to_str().unwrap(), "--to", "ftp://host/x"], "unsupported scheme 'ftp'"),
        (&["--from", junk.to_str().unwrap(), "--to", c.to_str().unwrap()], "is not a Kura warehouse"),
        (&["--from", missing.to_str().unwrap(), "--to", b.to_str().unwrap()], "is not a Kura warehouse"),
        (&["--from", a.to_str().unwrap(), "--to", b.to_str().unwrap()], "holds a different Kura warehouse"),
        (&["--from", a.to_str().unwrap(), "--to", junk.to_str().unwrap()], "is not empty"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        let out = kura(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expected), "{args:?}: expected `{expected}`, got {err}");
    }
    let out = kura(&["migrate", "--from", a.to_str().unwrap(), "--to", a.join("inside").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlap"));
    let after: Vec<_> = [&a, &b, &junk].iter().map(|d| files(d).len()).collect();
    assert_eq!(before, after, "nothing created or deleted");
    assert!(!missing.exists() && !c.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_catches_a_tampered_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (s, x, d) = (dir.path().join("s"), dir.path().join("x"), dir.path().join("d"));
    for (wh, last) in [(&s, 3), (&x, 4)] {
        let engine = kura_engine::Engine::open(wh.to_str().unwrap()).await.unwrap();
        engine.session("kura").execute_all(&format!("CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2), ({last})")).await.unwrap();
    }
    let report = kura_migrate::migrate(&kura_migrate::MigrateOptions::new(s.to_str().unwrap(), d.to_str().unwrap())).await.unwrap();
    assert!(report.ok);
    // Replace the copy's data file with another table's file of the same shape (3 rows).
    let parquet = |root: &Path| files(root).into_iter().find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    std::fs::copy(parquet(&x), parquet(&d)).unwrap();
    let source = kura_storage_open(&s).await;
    let copy = kura_storage_open(&d).await;
    let checks = kura_migrate::verify::verify_tables(&source, &copy, &Default::default(), 1).await.unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!((checks[0].source_rows, checks[0].destination_rows), (3, 3));
    assert!(!checks[0].matches, "same row count, different content: {checks:?}");
}

async fn kura_storage_open(dir: &Path) -> kura_storage::Warehouse {
    kura_storage::Warehouse::open(dir.to_str().unwrap()).await.unwrap()
}
