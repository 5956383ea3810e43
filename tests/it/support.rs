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

/// `SELECT count(*) ...` as a number.
pub async fn count(session: &Session, sql: &str) -> i64 {
    let batches = session.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    batches[0].column(0).as_any().downcast_ref::<Int64Array>().expect("count is bigint").value(0)
}
