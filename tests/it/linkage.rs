//! Research-ID linkage of the generator's six sources against its ground truth: precision and
//! recall at default settings, and stable IDs when a batch of about 1% more keys arrives.

use kura_engine::datafusion::arrow::array::StringArray;

use crate::support::{count, report, value};

/// The linkage sources the demo declares (`cli/src/linkage.sql`).
fn sources_sql() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cli/src/linkage.sql");
    std::fs::read_to_string(path).unwrap()
}

const TRUTH: &str = "WITH GROUND TRUTH (SELECT source, source_key, person_id FROM truth.person_map)";

fn ratio(r: &[(String, String)], item: &str) -> f64 {
    value(r, item).parse().unwrap_or_else(|_| panic!("{item} is not a number: {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_sources_link_with_precision_recall_and_stable_ids() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    kura_datagen::generate(&kura_datagen::Config { persons: 20_000, seed: 11, out_dir: source.clone(), progress: false, receipts: false })
        .unwrap();
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let mut session = engine.session("kura");
    session.set_base_dir(&source);
    session.execute_all(&std::fs::read_to_string(source.join("load.sql")).unwrap()).await.unwrap();
    session.execute_all(&sources_sql()).await.unwrap();

    // First batch: every source without the keys ending in 00 (about 1% of them).
    let shown = session.query("SHOW LINKAGE SOURCES").await.unwrap();
    let mut full = Vec::new();
    for b in &shown {
        let names = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let unique = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let queries = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            full.push((names.value(i).to_string(), unique.value(i) == "yes", queries.value(i).to_string()));
        }
    }
    assert_eq!(full.len(), 6, "{full:?}");
    let declare = |name: &str, unique: bool, query: &str| {
        format!("CREATE OR REPLACE LINKAGE SOURCE {name} {} AS {query}", if unique { "WITH UNIQUE KEYS" } else { "" })
    };
    for (name, unique, query) in &full {
        let held_back = format!("SELECT * FROM ({query}) AS s WHERE right(source_key, 2) <> '00'");
        session.execute_all(&declare(name, *unique, &held_back)).await.unwrap();
    }
    let first = report(&session.query(&format!("LINK {TRUTH}")).await.unwrap());
    let (precision, recall) = (ratio(&first, "measured precision"), ratio(&first, "measured recall"));
    eprintln!("first batch: {first:?}");
    assert!(precision >= 0.995, "precision {precision} below 0.995: {first:?}");
    assert!(recall >= 0.99, "recall {recall} below 0.99: {first:?}");
    // The model's own estimates, which is all an operator has without a ground truth, are close.
    for (estimated, measured) in [("estimated precision", precision), ("estimated recall", recall)] {
        let e = ratio(&first, estimated);
        assert!((e - measured).abs() < 0.02, "{estimated} {e} is far from the measured {measured}: {first:?}");
    }
    session.execute_all("CREATE SCHEMA t; CREATE TABLE t.ids1 AS SELECT * FROM linkage.research_ids").await.unwrap();
    let keys1 = count(&session, "SELECT count(*) FROM t.ids1").await;

    // The batch arrives: the full sources.
    for (name, unique, query) in &full {
        session.execute_all(&declare(name, *unique, query)).await.unwrap();
    }
    // LINK NEW compares only pairs with a new key, with the first run's model.
    let second = report(&session.query(&format!("LINK NEW {TRUTH}")).await.unwrap());
    eprintln!("with the new batch (LINK NEW): {second:?}");
    let keys2 = count(&session, "SELECT count(*) FROM linkage.research_ids").await;
    let added = (keys2 - keys1) as f64 / keys1 as f64;
    assert!((0.005..0.02).contains(&added), "the new batch holds {added:.4} of the keys, not about 1%");
    assert!(ratio(&second, "measured precision") >= 0.995 && ratio(&second, "measured recall") >= 0.99, "{second:?}");
    let pairs = |r: &[(String, String)]| value(r, "pairs compared").parse::<f64>().unwrap();
    assert!(pairs(&second) < 0.1 * pairs(&first), "LINK NEW compared {} pairs, the first run {}", pairs(&second), pairs(&first));
    assert!(value(&second, "mode").starts_with("new keys only"), "{second:?}");
    stable(&session, "t.ids1").await;

    // LINK ALL re-examines every pair and still keeps the IDs.
    session.execute_all("CREATE TABLE t.ids2 AS SELECT * FROM linkage.research_ids").await.unwrap();
    let third = report(&session.query(&format!("LINK ALL {TRUTH}")).await.unwrap());
    eprintln!("LINK ALL: {third:?}");
    assert!(ratio(&third, "measured precision") >= 0.995 && ratio(&third, "measured recall") >= 0.99, "{third:?}");
    stable(&session, "t.ids2").await;

    // A cohort joins sources on research_id: checkup participants with a claim, per source pair.
    let joined = count(
        &session,
        "SELECT count(DISTINCT c.research_id) FROM linkage.research_ids c JOIN linkage.research_ids m \
         ON c.research_id = m.research_id WHERE c.source = 'checkup' AND m.source = 'claims'",
    )
    .await;
    assert!(joined > 1000, "only {joined} checkup participants linked to claims");

    // The review table explains each grey-zone pair, field by field.
    assert!(count(&session, "SELECT count(*) FROM linkage.review").await > 0);
    let unexplained = count(&session, "SELECT count(*) FROM linkage.review WHERE explanation NOT LIKE '%birth_date: %'").await;
    assert_eq!(unexplained, 0);
}

/// At least 99.9% of the keys in `before` kept their research ID, and every change is a merge or
/// a split in the history.
async fn stable(session: &kura_engine::Session, before: &str) {
    let keys = count(session, &format!("SELECT count(*) FROM {before}")).await;
    let kept = count(
        session,
        &format!(
            "SELECT count(*) FROM {before} a JOIN linkage.research_ids b ON a.source = b.source AND a.source_key = b.source_key \
             WHERE a.research_id = b.research_id"
        ),
    )
    .await;
    assert!(kept as f64 >= 0.999 * keys as f64, "only {kept} of {keys} research IDs unchanged");
    let unexplained = count(
        session,
        &format!(
            "SELECT count(*) FROM {before} a JOIN linkage.research_ids b ON a.source = b.source AND a.source_key = b.source_key \
             WHERE a.research_id <> b.research_id AND NOT EXISTS (SELECT 1 FROM linkage.id_history h WHERE \
               (h.change = 'merge' AND h.research_id = b.research_id AND h.other_research_id = a.research_id) OR \
               (h.change = 'split' AND h.research_id = a.research_id AND h.other_research_id = b.research_id))"
        ),
    )
    .await;
    assert_eq!(unexplained, 0, "research IDs changed without a merge or split recorded");
}
