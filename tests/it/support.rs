//! Helpers: the built `kura` binary and small query shortcuts.

use std::path::PathBuf;

use kura_engine::Session;
use kura_engine::datafusion::arrow::array::{Array, Int64Array};

/// The `kura` binary next to this test binary (target/<profile>/kura), or `KURA_BIN`.
pub fn kura_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KURA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile_dir.join("kura");
    assert!(bin.exists(), "build the CLI first: cargo build -p kura (looked for {})", bin.display());
    bin
}

/// Every file below `dir` (none if it does not exist).
pub fn files_below(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_below(&p)) } else { out.push(p) }
        }
    }
    out
}

/// `SELECT count(*) ...` as a number.
pub async fn count(session: &Session, sql: &str) -> i64 {
    let batches = session.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    batches[0].column(0).as_any().downcast_ref::<Int64Array>().expect("count is bigint").value(0)
}

/// Runs `writers` engines at once on one warehouse (as separate processes would): each creates a
/// table of its own and appends `appends` rows to the shared table `events`. Then checks, on a
/// fresh engine, that every append and every catalog change landed.
pub async fn concurrent_writers(location: &str, writers: usize, appends: usize) {
    let setup = kura_engine::Engine::open(location).await.unwrap();
    setup.session("kura").execute_all("CREATE TABLE events (writer INT, n INT)").await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let location = location.to_string();
        tasks.push(tokio::spawn(async move {
            // A separate engine: its own catalog handle, like another process.
            let engine = kura_engine::Engine::open(&location).await.unwrap();
            let s = engine.session("kura");
            s.execute_all(&format!("CREATE TABLE own_{w} (a INT)")).await.unwrap();
            for i in 0..appends {
                s.execute_all(&format!("INSERT INTO events VALUES ({w}, {i})")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let engine = kura_engine::Engine::open(location).await.unwrap();
    let s = engine.session("kura");
    assert_eq!(count(&s, "SELECT count(*) FROM events").await, (writers * appends) as i64, "no append was lost");
    assert_eq!(count(&s, "SELECT count(DISTINCT writer) FROM events").await, writers as i64);
    for w in 0..writers {
        assert_eq!(count(&s, &format!("SELECT count(*) FROM own_{w}")).await, 0, "catalog change of writer {w} kept");
    }
}

/// The statement's (item, value) report as lookups.
pub fn report(batches: &[kura_engine::datafusion::arrow::array::RecordBatch]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in batches {
        let items = b.column(0).as_any().downcast_ref::<kura_engine::datafusion::arrow::array::StringArray>().unwrap();
        let values = b.column(1).as_any().downcast_ref::<kura_engine::datafusion::arrow::array::StringArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push((items.value(i).to_string(), values.value(i).to_string()));
        }
    }
    out
}

pub fn value<'a>(report: &'a [(String, String)], item: &str) -> &'a str {
    &report.iter().find(|(i, _)| i == item).unwrap_or_else(|| panic!("no {item} in {report:?}")).1
}
