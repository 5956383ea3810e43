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
