//! The catalog and tables survive a restart; the catalog keeps its history.

use crate::support::count;

#[tokio::test]
async fn catalog_and_data_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    {
        let engine = kura_engine::Engine::open(&location).await.unwrap();
        let s = engine.session("kura");
        s.execute_all(
            "CREATE SCHEMA care;
             CREATE TABLE care.cert (person_key TEXT NOT NULL, level SMALLINT, certified_on DATE) PARTITIONED BY (level);
             INSERT INTO care.cert VALUES ('a', 1, DATE '2024-05-01'), ('b', 3, DATE '2024-06-01');
             CREATE VIEW care.severe AS SELECT person_key FROM care.cert WHERE level >= 3;",
        )
        .await
        .unwrap();
    }
    let engine = kura_engine::Engine::open(&location).await.unwrap();
    let s = engine.session("kura");
    assert_eq!(count(&s, "SELECT count(*) FROM care.cert").await, 2);
    assert_eq!(count(&s, "SELECT count(*) FROM care.severe").await, 1);
    // NOT NULL survived too.
    let err = s.execute_all("INSERT INTO care.cert VALUES (NULL, 1, NULL)").await.unwrap_err();
    assert!(err.to_string().contains("null value in column \"person_key\""), "{err}");
    // History: the version before the view existed does not have it.
    let catalog = engine.catalog();
    let now = catalog.cached();
    let before_view = catalog.snapshot_at(now.version - 1).await.unwrap();
    assert!(before_view.state.view("care", "severe").is_err());
    assert!(now.state.view("care", "severe").is_ok());
    assert_eq!(now.operation, "CREATE VIEW care.severe");
}

#[tokio::test]
async fn dropped_table_files_are_removed_and_name_reusable() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let engine = kura_engine::Engine::open(&location).await.unwrap();
    let s = engine.session("kura");
    s.execute_all("CREATE TABLE t (a INT); INSERT INTO t VALUES (1)").await.unwrap();
    let tables = dir.path().join("wh/tables");
    assert_eq!(std::fs::read_dir(&tables).unwrap().count(), 1);
    s.execute_all("DROP TABLE t; CREATE TABLE t (b TEXT)").await.unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM t").await, 0);
    assert_eq!(std::fs::read_dir(&tables).unwrap().count(), 1, "the dropped table's folder is gone");
}

/// Rows of a one-column query, as text (NULL as "NULL").
async fn column(s: &kura_engine::Session, sql: &str) -> Vec<String> {
    let batches = s.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in batches {
        let formatted = kura_engine::datafusion::arrow::util::display::ArrayFormatter::try_new(
            b.column(0),
            &Default::default(),
        )
        .unwrap();
        for i in 0..b.num_rows() {
            out.push(formatted.value(i).to_string());
        }
    }
    out
}

/// The differencing check's history is stored in the warehouse: a restarted engine still
/// suppresses a group one person away from a group it released before the restart.
#[tokio::test]
async fn differencing_history_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let narrowed = "SELECT count(*) FROM claims WHERE ward = 'A' AND research_id <> 'P1'";
    {
        let engine = kura_engine::Engine::open(&location).await.unwrap();
        engine
            .session("kura")
            .execute_all(
                "CREATE TABLE claims (research_id TEXT NOT NULL, ward TEXT);
                 INSERT INTO claims SELECT 'P' || CAST(value AS TEXT), CASE WHEN value <= 6 THEN 'A' ELSE 'B' END FROM generate_series(1, 12);
                 CREATE ROLE municipal;
                 CREATE USER muni PASSWORD 'pw' IN ROLE municipal;
                 GRANT SELECT ON claims TO municipal;
                 CREATE AGGREGATION POLICY k3 AS () RETURNS INT -> CASE WHEN is_member('municipal') THEN 3 END;
                 ALTER TABLE claims SET AGGREGATION POLICY k3 ENTITY KEY (research_id);",
            )
            .await
            .unwrap();
        let muni = engine.login_session("muni").await.unwrap();
        assert_eq!(column(&muni, "SELECT count(*) FROM claims WHERE ward = 'A'").await, ["6"]);
        assert!(column(&muni, narrowed).await.is_empty(), "one person away: suppressed");
    }
    let stored = dir.path().join("wh/_kura/history/muni");
    assert!(stored.is_dir(), "the history is under the warehouse: {:?}", std::fs::read_dir(dir.path().join("wh/_kura")).map(|d| d.map(|e| e.map(|e| e.path())).collect::<Vec<_>>()));
    let engine = kura_engine::Engine::open(&location).await.unwrap();
    let muni = engine.login_session("muni").await.unwrap();
    assert!(column(&muni, narrowed).await.is_empty(), "still suppressed after the restart");
    // Another user has a history of their own.
    engine.session("kura").execute_all("CREATE USER muni2 PASSWORD 'pw' IN ROLE municipal").await.unwrap();
    let other = engine.login_session("muni2").await.unwrap();
    assert_eq!(column(&other, narrowed).await, ["5"]);
}
