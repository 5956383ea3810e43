//! SIGKILL in the middle of a large INSERT or COPY leaves every table at its last committed
//! version, readable, and the next run works.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::{files_below, kura_bin};

fn kura(location: &str, sql: &str) -> std::process::Output {
    std::process::Command::new(kura_bin())
        .args(["sql", "--data", location, "--csv", "--no-timing", "-c", sql])
        .output()
        .unwrap()
}

fn scalar(location: &str, sql: &str) -> String {
    let out = kura(location, sql);
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap_or("").to_string()
}

/// Starts `sql` in a child, waits until it has written data files, then kills it with SIGKILL.
fn kill_midway(location: &str, sql: &str, data_dir: &std::path::Path) {
    let mut child = std::process::Command::new(kura_bin())
        .args(["sql", "--data", location, "--no-timing", "-c", sql])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Wait for the first Parquet file of the statement: the write is then surely under way.
    loop {
        let parquet_files = files_below(data_dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count();
        if parquet_files > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the statement finished before it could be killed; make it bigger");
        assert!(started.elapsed() < Duration::from_secs(120), "no data file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the statement finished before it could be killed; make it bigger");
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

#[test]
fn sigkill_during_insert_and_copy_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let out = kura(&location, "CREATE TABLE big (id BIGINT NOT NULL, payload TEXT); INSERT INTO big VALUES (1, 'committed')");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tables = dir.path().join("wh/tables");

    // A large INSERT ... SELECT, killed while writing.
    kill_midway(
        &location,
        "INSERT INTO big SELECT value, repeat('x', 200) FROM generate_series(2, 200000000)",
        &tables,
    );
    assert_eq!(scalar(&location, "SELECT count(*) AS n FROM big"), "1", "only the committed row is visible");

    // A large COPY, killed while writing.
    let csv = dir.path().join("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        for i in 0..3_000_000u64 {
            writeln!(f, "{},row {} of a large synthetic load with some padding text", i + 10, i).unwrap();
        }
    }
    let copy = format!("COPY big FROM '{}' WITH (FORMAT csv)", csv.display());
    // Files from the killed INSERT are already there; wait for one more.
    let before = files_below(&tables).len();
    let mut child = std::process::Command::new(kura_bin())
        .args(["sql", "--data", &location, "--no-timing", "-c", &copy])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while files_below(&tables).len() == before {
        assert!(child.try_wait().unwrap().is_none(), "COPY finished before it could be killed; make it bigger");
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(scalar(&location, "SELECT count(*) AS n FROM big"), "1");

    // The next run works: the same COPY completes and commits.
    let out = kura(&location, &copy);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(scalar(&location, "SELECT count(*) AS n FROM big"), "3000001");
    assert_eq!(scalar(&location, "SELECT payload AS p FROM big WHERE id = 1"), "committed");
}
