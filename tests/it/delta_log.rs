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

async fn files_of(engine: &std::sync::Arc<kura_engine::Engine>, schema: &str, table: &str) -> usize {
    let entry = engine.catalog().cached().state.table(schema, table).unwrap().clone();
    let t = engine.warehouse().open_table(&entry.location, &kura_storage::TableVersionSpec::Latest).await.unwrap();
    t.get_file_uris().unwrap().count()
}

/// `OPTIMIZE` rewrites files, never rows: compaction, Z-order and a sorted rewrite keep the
/// same multiset of rows (checked against the version before); only an owner the table's
/// policies do not restrict (or a superuser) may run it.
#[tokio::test]
async fn optimize_rewrites_files_and_keeps_every_row() {
    use crate::support::count;
    let dir = tempfile::tempdir().unwrap();
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let s = engine.session("kura");
    s.execute_all("CREATE TABLE c (id BIGINT, fy INT, points INT) PARTITIONED BY (fy)").await.unwrap();
    // 20 small commits, ids interleaved so that every file spans the whole id range.
    for i in 0..20 {
        s.execute_all(&format!(
            "INSERT INTO c SELECT value * 20 + {i}, 2021 + value % 3, CAST(value % 97 AS INT) FROM generate_series(0, 499)"
        ))
        .await
        .unwrap();
    }
    assert_eq!(files_of(&engine, "public", "c").await, 60);
    let same_rows = |version: i64| {
        format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM c EXCEPT ALL SELECT * FROM c VERSION AS OF {version})) \
                  + (SELECT count(*) FROM (SELECT * FROM c VERSION AS OF {version} EXCEPT ALL SELECT * FROM c))"
        )
    };
    s.execute_all("OPTIMIZE c").await.unwrap();
    assert_eq!(files_of(&engine, "public", "c").await, 3, "one file per partition");
    assert_eq!(count(&s, &same_rows(20)).await, 0);

    s.execute_all("OPTIMIZE c ORDER BY (id)").await.unwrap();
    assert_eq!(count(&s, &same_rows(21)).await, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM c").await, 10_000);
    s.execute_all("OPTIMIZE c ZORDER BY (id, points)").await.unwrap();
    assert_eq!(count(&s, &same_rows(22)).await, 0);

    // Owner-only; the audit trail and unknown columns are refused.
    s.execute_all("CREATE USER kura WITH SUPERUSER PASSWORD 'x'; CREATE USER alice PASSWORD 'x'; CREATE USER bob PASSWORD 'x'; GRANT SELECT ON c TO bob")
        .await
        .unwrap();
    let bob = engine.login_session("bob").await.unwrap();
    let err = bob.execute_all("OPTIMIZE c ORDER BY (id)").await.unwrap_err();
    assert_eq!(err.sqlstate(), "42501", "{err}");
    let err = s.execute_all("OPTIMIZE c ORDER BY (nope)").await.unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");

    // The owner under a row filter that hides everything from her may not rewrite the table
    // (as she may not write to it): nothing she runs can drop the rows she cannot see.
    s.execute_all("GRANT CREATE ON SCHEMA public TO alice").await.unwrap();
    let alice = engine.login_session("alice").await.unwrap();
    let values: Vec<String> = (1..=100).map(|n| format!("({n})")).collect();
    alice.execute_all(&format!("CREATE TABLE mine (n INT); INSERT INTO mine VALUES {}", values.join(", "))).await.unwrap();
    s.execute_all(
        "CREATE ROW ACCESS POLICY nothing_for_alice AS (v INT) RETURNS BOOLEAN -> v IS NOT NULL AND current_user <> 'alice';
         ALTER TABLE mine ADD ROW ACCESS POLICY nothing_for_alice ON (n)",
    )
    .await
    .unwrap();
    let alice = engine.login_session("alice").await.unwrap();
    assert_eq!(count(&alice, "SELECT count(*) FROM mine").await, 0, "the filter hides her rows from her");
    for how in ["", " ORDER BY (n)", " ZORDER BY (n)"] {
        let err = alice.execute_all(&format!("OPTIMIZE mine{how}")).await.unwrap_err();
        assert_eq!(err.sqlstate(), "42501", "{err}");
    }
    assert_eq!(count(&s, "SELECT count(*) FROM mine").await, 100);
    s.execute_all("OPTIMIZE mine ORDER BY (n)").await.unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM mine").await, 100, "a superuser's rewrite keeps her rows");
}
