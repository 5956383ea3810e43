//! Several writers at once: catalog changes and appends from separate engines (as separate
//! processes would) and from separate `kura` processes.

use crate::support::{concurrent_writers, kura_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_change_catalog_and_append_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers(&dir.path().join("wh").to_string_lossy(), 4, 5).await;
}

#[test]
fn separate_processes_create_tables_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let bin = kura_bin();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(&bin)
                .args(["sql", "--data", &location, "--no-timing", "-c"])
                .arg(format!("CREATE TABLE p{i} (a INT); INSERT INTO p{i} VALUES ({i})"))
                .output_spawn()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The same name from two processes: one wins, the other gets a clear error.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&bin)
                .args(["sql", "--data", &location, "--no-timing", "-c", "CREATE TABLE same (a INT)"])
                .output_spawn()
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let ok = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one CREATE TABLE same wins");
    let loser = results.iter().find(|o| !o.status.success()).unwrap();
    let msg = String::from_utf8_lossy(&loser.stderr);
    assert!(msg.contains("already exists"), "{msg}");
    let out = std::process::Command::new(&bin)
        .args(["sql", "--data", &location, "--csv", "--no-timing", "-c"])
        .arg("SELECT (SELECT count(*) FROM p0) + (SELECT count(*) FROM p1) + (SELECT count(*) FROM p2) + (SELECT count(*) FROM p3) AS n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n4");
}

trait SpawnPiped {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl SpawnPiped for std::process::Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}

/// An engine that has read a table sees another engine's later commits on its next statement
/// (each engine keeps the table's state between statements and must bring it up to date).
#[tokio::test]
async fn reads_see_commits_of_another_engine() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let reader_engine = kura_engine::Engine::open(&location).await.unwrap();
    let writer_engine = kura_engine::Engine::open(&location).await.unwrap();
    let reader = reader_engine.session("kura");
    let writer = writer_engine.session("kura");
    writer.execute_all("CREATE TABLE seen (a INT); INSERT INTO seen VALUES (1)").await.unwrap();
    assert_eq!(crate::support::count(&reader, "SELECT count(*) FROM seen").await, 1);
    for n in 2..5 {
        writer.execute_all(&format!("INSERT INTO seen VALUES ({n})")).await.unwrap();
        assert_eq!(crate::support::count(&reader, "SELECT count(*) FROM seen").await, n);
        assert_eq!(crate::support::count(&reader, "SELECT sum(a) FROM seen").await, (1..=n).sum::<i64>());
    }
    writer.execute_all("DELETE FROM seen WHERE a = 1").await.unwrap();
    assert_eq!(crate::support::count(&reader, "SELECT count(*) FROM seen").await, 3);
}
