//! Delta-level behaviour a user notices as speed: scans skip files by partition and statistics,
//! and tables with many commits get checkpoints so they open fast.

use kura_engine::datafusion::arrow::array::{Array, StringArray};

async fn explain_analyze(s: &kura_engine::Session, sql: &str) -> String {
    let batches = s.query(&format!("EXPLAIN ANALYZE {sql}")).await.unwrap();
    let plans = batches[0].column(1).as_any().downcast_ref::<StringArray>().unwrap();
    (0..plans.len()).map(|i| plans.value(i).to_string()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn scans_skip_files_by_partition_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let s = engine.session("kura");
    s.execute_all("CREATE TABLE c (id BIGINT, fy INT, points INT) PARTITIONED BY (fy)").await.unwrap();
    for fy in 2021..2025 {
        // One commit (one file per partition) per fiscal year, with disjoint id ranges.
        s.execute_all(&format!(
            "INSERT INTO c SELECT value + {base}, {fy}, 100 FROM generate_series(1, 1000)",
            base = (fy - 2021) * 10_000
        ))
        .await
        .unwrap();
    }
    let by_partition = explain_analyze(&s, "SELECT sum(points) FROM c WHERE fy = 2023").await;
    assert!(by_partition.contains("files_opened=1,"), "{by_partition}");
    let by_stats = explain_analyze(&s, "SELECT sum(points) FROM c WHERE id BETWEEN 20001 AND 20010").await;
    assert!(by_stats.contains("files_opened=1,"), "{by_stats}");
}

#[tokio::test]
async fn many_commits_are_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let s = engine.session("kura");
    s.execute_all("CREATE TABLE small (n INT)").await.unwrap();
    for i in 0..105 {
        s.execute_all(&format!("INSERT INTO small VALUES ({i})")).await.unwrap();
    }
    let tables = dir.path().join("wh/tables");
    let table_dir = std::fs::read_dir(&tables).unwrap().next().unwrap().unwrap().path();
    let checkpoints = std::fs::read_dir(table_dir.join("_delta_log"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".checkpoint."))
        .count();
    assert!(checkpoints >= 1, "a checkpoint is written every 100 commits");
    let n = crate::support::count(&s, "SELECT count(*) FROM small").await;
    assert_eq!(n, 105);
}
