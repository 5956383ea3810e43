//! Runs the SQL specification (`tests/slt/*.slt`) against Kura.
//!
//! Each file gets its own warehouse, so files never see each other's tables: a fresh temporary
//! folder by default, or a fresh prefix under `KURA_TEST_WAREHOUSE` (e.g. `s3://kura-test/run1`
//! against an S3-compatible server). Each file also gets a folder with the synthetic fixture
//! files, which relative COPY paths resolve against.
//!
//! Usage: `cargo test -p kura-tests --test slt [-- FILTER]`.

use std::path::PathBuf;
use kura_tests::slt_db::KuraDb;

fn main() -> std::process::ExitCode {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| filter.as_ref().is_none_or(|f| p.to_string_lossy().contains(f.as_str())))
        .collect();
    files.sort();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let base = std::env::var("KURA_TEST_WAREHOUSE").ok();
    let mut failed = 0;
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let result = runtime.block_on(run_file(file.clone(), &name, base.as_deref()));
        match result {
            Ok(()) => println!("ok     {name}"),
            Err(e) => {
                failed += 1;
                println!("FAILED {name}\n{e}");
            }
        }
    }
    println!("{} files, {} failed (warehouse: {})", files.len(), failed, base.as_deref().unwrap_or("temp folder"));
    if failed > 0 { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}

async fn run_file(file: PathBuf, name: &str, base: Option<&str>) -> Result<(), String> {
    let fixtures = tempfile::tempdir().map_err(|e| e.to_string())?;
    kura_tests::fixtures::write_all(fixtures.path()).map_err(|e| e.to_string())?;
    let local = tempfile::tempdir().map_err(|e| e.to_string())?;
    let location = match base {
        Some(b) => format!("{}/{name}-{}", b.trim_end_matches('/'), std::process::id()),
        None => local.path().join("warehouse").to_string_lossy().to_string(),
    };
    let engine = kura_engine::Engine::open(&location).await.map_err(|e| format!("cannot open {location}: {e}"))?;
    let fixture_dir = fixtures.path().to_path_buf();
    let mut runner = sqllogictest::Runner::new(move || {
        let engine = engine.clone();
        let dir = fixture_dir.clone();
        async move { Ok::<_, kura_tests::slt_db::SltError>(KuraDb::new(&engine, &dir)) }
    });
    runner.add_label(if base.is_some_and(|b| b.starts_with("s3://")) { "s3" } else { "local" });
    runner.run_file_async(&file).await.map_err(|e| e.display(true).to_string())
}
