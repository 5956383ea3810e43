//! The audit trail: every statement over the wire or in `kura sql` is recorded, an acknowledged
//! statement's record survives a SIGKILLed server, identity values and passwords never reach it,
//! only auditors and operators read it, nobody writes it, and `kura audit verify` finds any
//! changed, removed or reordered record.

use std::process::Command;
use std::sync::Arc;

use kura_engine::Engine;
use kura_engine::datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use kura_engine::datafusion::arrow::compute::{cast, filter_record_batch};
use kura_engine::datafusion::arrow::datatypes::DataType;

use crate::server::TestServer;
use crate::support::kura_bin;

fn kura_sql(data: &str, sql: &str) -> (bool, String, String) {
    let out = Command::new(kura_bin()).args(["sql", "--data", data, "--csv", "--no-timing", "-c", sql]).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn verify_cli(data: &str, head: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(kura_bin());
    cmd.args(["audit", "verify", "--data", data]);
    if let Some(h) = head {
        cmd.args(["--head", h]);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_statements_survive_a_killed_server_without_identity_values() {
    let mut server = TestServer::start();
    let data = server.data();
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE SCHEMA hospital;
             CREATE TABLE hospital.patients (patient_id BIGINT, name_kana TEXT, birth_date TEXT, ward TEXT);
             INSERT INTO hospital.patients VALUES (1, 'ヤマダ タロウ', '1950-01-02', 'east'), (2, 'スズキ ハナコ', '1961-03-04', 'west');
             CREATE USER alice PASSWORD 'alice-Secret-9';",
        )
        .await
        .unwrap();
    let found = admin
        .query("SELECT patient_id FROM hospital.patients WHERE name_kana = 'ヤマダ タロウ' AND ward = 'east'", &[])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let err = admin.simple_query("SELECT patient_id / 0 FROM hospital.patients").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    admin.simple_query("SET application_name = 'audit-test'").await.unwrap();
    // Acknowledged: all of the above. Now the server dies before its next flush.
    server.kill();

    // The next process takes over the dead server's journal.
    let (ok, out, err) = kura_sql(
        &data,
        "SELECT user_name, client, kind, statement, array_to_string(objects_read, ','), array_to_string(objects_written, ','), \
         rows, outcome, sqlstate FROM audit.statements WHERE user_name = 'kura' ORDER BY seq",
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no record with {needle}:\n{out}"));
    let select = find("ward = 'east'");
    assert!(select.starts_with("kura,127.0.0.1:"), "{select}");
    assert!(select.contains("name_kana = '<redacted>'"), "{select}");
    assert!(select.contains(",hospital.patients,,1,ok,"), "objects read, rows, outcome: {select}");
    let failed = find("/ 0");
    assert!(failed.ends_with(",error,22012"), "{failed}");
    let insert = find("INSERT INTO hospital.patients");
    assert!(insert.contains(",hospital.patients,2,ok,"), "{insert}");
    find("CREATE USER alice");
    find("SET application_name");
    for secret in ["ヤマダ", "スズキ", "1950-01-02", "alice-Secret-9"] {
        assert!(!out.contains(secret), "{secret} reached the audit trail:\n{out}");
    }
    // Nor does it sit in the journal's files.
    for file in crate::support::files_below(std::path::Path::new(&data).join("_kura").as_path()) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("alice-Secret-9") && !text.contains("ヤマダ"), "{} holds an identity value", file.display());
    }
    let (ok, report) = verify_cli(&data, None);
    assert!(ok && report.contains("audit trail intact"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_auditors_and_operators_read_the_audit_trail_and_nobody_writes_it() {
    let mut server = TestServer::start();
    let data = server.data();
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE ROLE auditors AUDITOR;
             CREATE ROLE operators OPERATOR;
             CREATE USER aud PASSWORD 'aud-pw' IN ROLE auditors;
             CREATE USER op PASSWORD 'op-pw' IN ROLE operators;
             CREATE USER bob PASSWORD 'bob-pw';
             GRANT USAGE ON SCHEMA audit TO bob;
             GRANT SELECT ON ALL TABLES IN SCHEMA audit TO bob;
             CREATE ROW ACCESS POLICY hide_all AS (u TEXT) RETURNS BOOLEAN -> false;",
        )
        .await
        .unwrap();
    let count = "SELECT count(*) FROM audit.statements";
    // A grant does not open the audit trail.
    let bob = server.connect("bob", "bob-pw").await.unwrap();
    let err = bob.simple_query(count).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let (_, listed, _) = server.psql("bob", "bob-pw", &["-c", "\\dt audit.*"]);
    assert!(!listed.contains("statements"), "{listed}");
    for (user, pw) in [("aud", "aud-pw"), ("op", "op-pw")] {
        let c = server.connect(user, pw).await.unwrap();
        let n: i64 = c.query_one(count, &[]).await.unwrap().get(0);
        assert!(n >= 7, "{user} sees {n} records");
        // Bob's refused attempt is on record, with its error.
        let refused: i64 = c
            .query_one("SELECT count(*) FROM audit.statements WHERE user_name = 'bob' AND outcome = 'error' AND sqlstate = '42501'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(refused, 1, "{user}");
        let err = c.simple_query("DELETE FROM audit.statements").await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{user}: {err}");
    }
    // Not even a superuser, over the wire or embedded, changes it.
    let attempts = [
        "DELETE FROM audit.statements WHERE user_name = 'bob'",
        "UPDATE audit.statements SET statement = 'x'",
        "INSERT INTO audit.statements SELECT * FROM audit.statements",
        "TRUNCATE audit.statements",
        "DROP TABLE audit.statements",
        "DROP SCHEMA audit CASCADE",
        "ALTER TABLE audit.statements ADD COLUMN note TEXT",
        "ALTER TABLE audit.statements ADD ROW ACCESS POLICY hide_all ON (user_name)",
        "CREATE TABLE audit.fake (seq BIGINT)",
        "CREATE VIEW audit.v AS SELECT 1 AS x",
    ];
    for sql in attempts {
        let err = admin.simple_query(sql).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
    drop(admin);
    server.kill();
    for sql in attempts {
        let (ok, _, err) = kura_sql(&data, sql);
        assert!(!ok && err.contains("audit"), "{sql} was not refused embedded: {err}");
    }
    let (ok, report) = verify_cli(&data, None);
    assert!(ok, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_removed_reordered_and_truncated_records_are_evident() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wh").to_string_lossy().to_string();
    for i in 0..6 {
        let (ok, _, err) = kura_sql(&data, &format!("SELECT {i} AS step"));
        assert!(ok, "{err}");
    }
    let (ok, report) = verify_cli(&data, None);
    assert!(ok, "{report}");
    let head = report.split("head ").nth(1).unwrap().trim().to_string();

    // Each attack on its own copy of the warehouse, as someone with write access to the storage
    // would make it: rewriting the audit table through Delta.
    let attacks: [(&str, fn(&RecordBatch) -> RecordBatch, &str); 3] = [
        ("changed", |b| replace_statement(b, 3, "SELECT 'innocent'"), "record 3 was changed"),
        ("removed", |b| drop_seq(b, 4), "record 4 is missing"),
        ("reordered", swap_seq_2_and_5, "was changed"),
    ];
    for (name, attack, expected) in attacks {
        let copy = dir.path().join(name);
        copy_dir(std::path::Path::new(&data), &copy);
        let copy = copy.to_string_lossy().to_string();
        rewrite_audit_table(&copy, attack).await;
        let (ok, report) = verify_cli(&copy, None);
        assert!(!ok && report.contains(expected), "{name}: {report}");
    }
    // Removing the newest records leaves a shorter chain that is intact in itself: the head kept
    // from an earlier verify shows it.
    let copy = dir.path().join("truncated");
    copy_dir(std::path::Path::new(&data), &copy);
    let copy = copy.to_string_lossy().to_string();
    let last: i64 = head.split(':').next().unwrap().parse().unwrap();
    rewrite_audit_table(&copy, move |b| {
        let seq = seq_column(b);
        let keep: Vec<bool> = (0..seq.len()).map(|i| seq.value(i) < last).collect();
        filter_record_batch(b, &keep.into()).unwrap()
    })
    .await;
    let (ok, report) = verify_cli(&copy, Some(&head));
    assert!(!ok && report.contains("newest records were removed"), "{report}");
    let (ok, report) = verify_cli(&data, Some(&head));
    assert!(ok, "the untouched warehouse still reaches its head: {report}");
}

fn seq_column(b: &RecordBatch) -> Int64Array {
    cast(b.column_by_name("seq").unwrap(), &DataType::Int64).unwrap().as_primitive().clone()
}

fn replace_statement(b: &RecordBatch, seq: i64, text: &str) -> RecordBatch {
    let seqs = seq_column(b);
    let idx = b.schema().index_of("statement").unwrap();
    let old = cast(b.column(idx), &DataType::Utf8).unwrap();
    let old = old.as_string::<i32>();
    let new: StringArray =
        (0..old.len()).map(|i| Some(if seqs.value(i) == seq { text.to_string() } else { old.value(i).to_string() })).collect();
    let mut columns = b.columns().to_vec();
    columns[idx] = cast(&(Arc::new(new) as Arc<dyn Array>), b.schema().field(idx).data_type()).unwrap();
    RecordBatch::try_new(b.schema(), columns).unwrap()
}

fn drop_seq(b: &RecordBatch, seq: i64) -> RecordBatch {
    let seqs = seq_column(b);
    let keep: Vec<bool> = (0..seqs.len()).map(|i| seqs.value(i) != seq).collect();
    filter_record_batch(b, &keep.into()).unwrap()
}

/// Records 2 and 5 trade places in the chain (each keeps its fields and hashes).
fn swap_seq_2_and_5(b: &RecordBatch) -> RecordBatch {
    let seqs = seq_column(b);
    let swapped: Int64Array = (0..seqs.len())
        .map(|i| Some(match seqs.value(i) {
            2 => 5,
            5 => 2,
            s => s,
        }))
        .collect();
    let idx = b.schema().index_of("seq").unwrap();
    let mut columns = b.columns().to_vec();
    columns[idx] = Arc::new(swapped);
    RecordBatch::try_new(b.schema(), columns).unwrap()
}

/// Reads the whole audit table, applies `attack` and overwrites the table with the result.
async fn rewrite_audit_table(data: &str, attack: impl Fn(&RecordBatch) -> RecordBatch) {
    let engine = Engine::open(data).await.unwrap();
    let snapshot = engine.catalog().refresh().await.unwrap();
    let location = snapshot.state.table("audit", "statements").unwrap().location.clone();
    let table = engine.warehouse().open_table(&location, &Default::default()).await.unwrap();
    let ctx = kura_engine::datafusion::prelude::SessionContext::new();
    ctx.register_table("a", table.table_provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT * FROM a ORDER BY seq").await.unwrap().collect().await.unwrap();
    let batch = kura_engine::datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let tampered = attack(&batch);
    table.write(vec![tampered]).with_save_mode(deltalake::protocol::SaveMode::Overwrite).await.unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_are_recorded_with_files_checksums_rows_and_versions() {
    let mut server = TestServer::start();
    let data = server.data();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("visits.csv");
    std::fs::write(&csv, "id,ward\n1,east\n2,west\nx,bad\n3,east\n").unwrap();
    let sha = Command::new("sha256sum").arg(&csv).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    let admin = server.admin().await;
    admin.batch_execute("CREATE SCHEMA clinic; CREATE TABLE clinic.visits (id BIGINT, ward TEXT)").await.unwrap();
    let copy = format!("COPY clinic.visits FROM '{}' WITH (FORMAT csv, HEADER true, REJECTS_TABLE 'clinic.rejects')", csv.display());
    admin.batch_execute(&copy).await.unwrap();
    // The client's data, through psql's \copy (COPY ... FROM STDIN).
    let (ok, _, err) = server.psql("kura", crate::server::ADMIN_PASSWORD, &["-c", &format!("\\copy clinic.visits FROM '{}' WITH (FORMAT csv, HEADER true, REJECTS_TABLE 'clinic.rejects')", csv.display())]);
    assert!(ok, "{err}");
    drop(admin);
    server.kill();
    let (ok, out, err) = kura_sql(
        &data,
        "SELECT target_table, source, format, array_to_string(files, ','), array_to_string(checksums, ','), bytes, rows, rejected, \
         version_before, version_after FROM audit.ingestions ORDER BY at",
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let path = csv.display().to_string();
    assert_eq!(lines[0], format!("clinic.visits,{path},csv,{path},sha256:{sha},35,3,1,0,1"), "{out}");
    assert!(lines[1].starts_with(&format!("clinic.visits,STDIN,csv,,sha256:")) && lines[1].ends_with(",3,1,1,2"), "{out}");
}

/// A demo warehouse (linked research tables, refusals in the consent registry), built once.
fn demo_warehouse(dir: &std::path::Path) -> String {
    let out = Command::new(kura_bin())
        .args(["demo", "--data", dir.join("demo").to_str().unwrap(), "--persons", "2000", "--no-serve"])
        .env("KURA_DEMO_PASSWORD", "demo-pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "kura demo: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("demo").join("warehouse").to_string_lossy().into_owned()
}

/// The rows of a successful `kura sql` query, as CSV lines without the header.
fn sql_rows(data: &str, q: &str) -> Vec<String> {
    let (ok, out, err) = kura_sql(data, q);
    assert!(ok, "{q}: {err}");
    out.lines().skip(1).map(str::to_string).collect()
}

async fn parquet_ids(path: &std::path::Path) -> Vec<i64> {
    let ctx = kura_engine::datafusion::prelude::SessionContext::new();
    let df = ctx.read_parquet(path.to_str().unwrap(), Default::default()).await.unwrap();
    let batches = df.select_columns(&["research_id"]).unwrap().collect().await.unwrap();
    batches.iter().flat_map(|b| cast(b.column(0), &DataType::Int64).unwrap().as_primitive::<kura_engine::datafusion::arrow::datatypes::Int64Type>().values().to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_write_verified_files_record_persons_and_leave_out_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_warehouse(dir.path());
    let sql = |q: &str| sql_rows(&data, q);
    // A refused person with checkups, and one not yet refused.
    let refused: i64 = sql("SELECT o.research_id FROM linkage.optout_ids o JOIN research.checkups c USING (research_id) ORDER BY 1 LIMIT 1")[0].parse().unwrap();
    let later = sql(&format!(
        "SELECT r.source_key, r.research_id FROM linkage.research_ids r JOIN research.checkups c USING (research_id) \
         WHERE r.source = 'resident' AND r.research_id NOT IN (SELECT research_id FROM linkage.optout_ids) ORDER BY 2 LIMIT 1"
    ))[0]
        .clone();
    let (later_key, later_id) = later.split_once(',').unwrap();
    let later_id: i64 = later_id.parse().unwrap();
    let all_rows: usize = sql("SELECT count(*) FROM research.checkups WHERE research_id IS NOT NULL")[0].parse().unwrap();

    // Pseudonymised, by the embedded superuser: refusals bind it all the same.
    let p1 = dir.path().join("p1");
    sql(&format!(
        "PROVIDE (SELECT research_id, sex, checkup_date FROM research.checkups) TO 'Example University' APPROVAL 'IRB-2026-001' \
         AS PSEUDONYMISED INTO '{}'",
        p1.display()
    ));
    let ids = parquet_ids(&p1.join("data.parquet")).await;
    assert!(!ids.is_empty() && ids.len() < all_rows, "{} of {all_rows} rows", ids.len());
    assert!(!ids.contains(&refused), "a refused person was provided");
    assert!(ids.contains(&later_id));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(p1.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["approval_id"], "IRB-2026-001");
    assert_eq!(manifest["files"][0]["rows"].as_u64().unwrap() as usize, ids.len());
    let id1 = manifest["provision_id"].as_str().unwrap().to_string();
    let verify = |p: &std::path::Path| {
        let out = Command::new(kura_bin()).args(["provision", "verify", p.to_str().unwrap(), "--data", &data]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, report) = verify(&p1);
    assert!(ok, "{report}");
    let persons = sql(&format!("SELECT count(*) FROM audit.provision_persons WHERE provision_id = '{id1}'"));
    let distinct: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(persons[0], distinct.len().to_string());

    // A refusal after the provision: the next provision leaves the person out, and the record
    // shows the earlier one touched them.
    sql(&format!("OPT OUT resident KEY '{later_key}' NOTE 'letter'"));
    let p2 = dir.path().join("p2");
    sql(&format!(
        "PROVIDE (SELECT research_id, sex FROM research.checkups) TO 'City of Example' APPROVAL 'IRB-2026-002' AS ANONYMISED \
         INTO '{}' FORMAT CSV",
        p2.display()
    ));
    let csv = std::fs::read_to_string(p2.join("data.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("sex"), "an anonymised provision carries no research ID");
    let touched = sql(&format!(
        "SELECT p.provision_id FROM audit.provision_persons p JOIN linkage.optout_ids o USING (research_id) \
         WHERE o.research_id = {later_id} ORDER BY 1"
    ));
    assert_eq!(touched, vec![id1.clone()], "only the provision made before the refusal touched the person");

    // Aggregates name their cohort; bad provisions are refused and write nothing.
    let p3 = dir.path().join("p3");
    let (ok, _, err) = kura_sql(&data, &format!(
        "PROVIDE (SELECT sex, count(*) FROM research.checkups GROUP BY sex) TO 'x' APPROVAL 'IRB-3' AS ANONYMISED INTO '{}'",
        p3.display()
    ));
    assert!(!ok && err.contains("whom it touches"), "{err}");
    assert!(!p3.exists());
    sql(&format!(
        "PROVIDE (SELECT sex, count(*) AS n FROM research.checkups GROUP BY sex) TO 'x' APPROVAL 'IRB-3' AS ANONYMISED INTO '{}' \
         PERSONS (SELECT research_id FROM research.checkups)",
        p3.display()
    ));
    let (ok, _, err) = kura_sql(&data, &format!(
        "PROVIDE (SELECT name_kana, 1 AS research_id FROM resident.residents) TO 'x' APPROVAL 'IRB-4' AS PSEUDONYMISED INTO '{}'",
        dir.path().join("p4").display()
    ));
    assert!(!ok && err.contains("name_kana"), "{err}");
    let (ok, _, err) = kura_sql(&data, &format!(
        "PROVIDE (SELECT research_id FROM research.checkups) TO 'x' APPROVAL 'IRB-5' AS PSEUDONYMISED INTO '{}'",
        p1.display()
    ));
    assert!(!ok && err.contains("never overwrites"), "{err}");

    // Tampering shows: a changed data file, a changed manifest.
    let data_file = p2.join("data.csv");
    std::fs::write(&data_file, csv.replacen('1', "2", 1)).unwrap();
    let (ok, report) = verify(&p2);
    assert!(!ok && report.contains("data.csv"), "{report}");
    let m = std::fs::read_to_string(p1.join("manifest.json")).unwrap();
    std::fs::write(p1.join("manifest.json"), m.replace("Example University", "Another University")).unwrap();
    let (ok, report) = verify(&p1);
    assert!(!ok && report.contains("manifest.json differs"), "{report}");

    // Over the wire: operators provide, others may not.
    let server = TestServer::serve(&data, &[]);
    let p5 = dir.path().join("p5");
    let provide = format!("PROVIDE (SELECT research_id FROM research.checkups) TO 'x' APPROVAL 'IRB-6' AS PSEUDONYMISED INTO '{}'", p5.display());
    let analyst = server.connect("analyst", "demo-pw").await.unwrap();
    let err = analyst.simple_query(&provide).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let operator = server.connect("operator", "demo-pw").await.unwrap();
    operator.simple_query(&provide).await.unwrap();
    let ids = parquet_ids(&p5.join("data.parquet")).await;
    assert!(!ids.contains(&refused) && !ids.contains(&later_id), "refusals bind operators' provisions");
}

/// Every file under `dir`, as text: Parquet files decoded (all columns, nested ones included),
/// others as their bytes.
async fn files_as_text(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for path in crate::support::files_below(dir) {
        let text = if path.extension().is_some_and(|e| e == "parquet") {
            let ctx = kura_engine::datafusion::prelude::SessionContext::new();
            let batches = ctx.read_parquet(path.to_str().unwrap(), Default::default()).await.unwrap().collect().await.unwrap();
            kura_engine::datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string()
        } else {
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
        };
        out.push((path, text));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_byte_of_the_person_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_warehouse(dir.path());
    let sql = |q: &str| sql_rows(&data, q);
    // The person found in the most sources.
    let person: i64 = sql("SELECT research_id FROM linkage.research_ids GROUP BY 1 ORDER BY count(DISTINCT source) DESC, 1 LIMIT 1")[0].parse().unwrap();
    let mut values: Vec<String> = sql(&format!("SELECT source_key FROM linkage.research_ids WHERE research_id = {person}"))
        .into_iter()
        .filter(|k| k.chars().count() >= 8)
        .collect();
    let resident = sql(&format!("SELECT source_key FROM linkage.research_ids WHERE research_id = {person} AND source = 'resident'"));
    let name = sql(&format!("SELECT name_kanji FROM resident.residents WHERE atena_number = '{}'", resident[0]))[0].clone();
    if sql(&format!("SELECT count(*) FROM resident.residents WHERE name_kanji = '{name}'"))[0] == "1" {
        values.push(name);
    }
    assert!(values.len() >= 3, "{values:?}");
    let others: i64 = sql("SELECT count(DISTINCT research_id) FROM linkage.research_ids")[0].parse().unwrap();
    let rows_before: i64 = sql("SELECT count(*) FROM research.checkups")[0].parse().unwrap();
    let warehouse = std::path::Path::new(&data);
    // The search finds them before: it would see them after.
    let before = files_as_text(warehouse).await;
    for v in &values {
        assert!(before.iter().any(|(_, t)| t.contains(v.as_str())), "{v} is not in any file to begin with");
    }
    let version: i64 = 1;

    // The generator's answer key names persons by its own number, which Kura cannot know: the
    // operator erases such rows by name (ERASE FROM), then the person.
    let true_id = sql(&format!("SELECT person_id FROM truth.person_map WHERE source = 'resident' AND source_key = '{}'", resident[0]))[0].clone();
    sql(&format!("ERASE FROM truth.persons WHERE person_id = {true_id} RETAIN 0 HOURS"));
    let out = sql(&format!("ERASE PERSON {person} RETAIN 0 HOURS"));
    assert!(out.is_empty() || !out[0].is_empty());
    let engine = Engine::open(&data).await.unwrap();
    let catalog = engine.catalog().refresh().await.unwrap();
    let table_of = |path: &std::path::Path| {
        let path = path.to_string_lossy();
        let mut names = catalog.state.schemas.iter().flat_map(|(s, e)| e.tables.iter().map(move |(t, te)| (format!("{s}.{t}"), te.location.clone())));
        names.find(|(_, l)| path.contains(l.as_str())).map(|(n, _)| n).unwrap_or_default()
    };
    for (path, text) in files_as_text(warehouse).await {
        for v in &values {
            assert!(!text.contains(v.as_str()), "{} ({}) still holds {v} after the erasure", path.display(), table_of(&path));
        }
    }
    // The others are untouched; older versions are gone rather than holding the person.
    assert_eq!(sql("SELECT count(DISTINCT research_id) FROM linkage.research_ids")[0].parse::<i64>().unwrap(), others - 1);
    let rows_after: i64 = sql("SELECT count(*) FROM research.checkups")[0].parse().unwrap();
    assert!(rows_after < rows_before && rows_after > 0);
    let (ok, out, _) = kura_sql(&data, &format!("SELECT count(*) FROM research.checkups VERSION AS OF {version} WHERE research_id = {person}"));
    assert!(!ok || out.lines().nth(1) == Some("0"), "time travel still returns the person: {out}");
    let record = sql("SELECT user_name, erased, rows, retain_hours FROM audit.erasures ORDER BY at");
    assert_eq!(record.len(), 2, "{record:?}");
    assert!(record[1].starts_with(&format!("kura,persons {person},")) && record[1].ends_with(",0"), "{record:?}");

    // A source's data: everything it brought in, its linked table and its keys.
    assert!(sql("SELECT count(*) FROM vaccination.records")[0] != "0");
    sql("ERASE SOURCE vaccination RETAIN 0 HOURS");
    for q in [
        "SELECT count(*) FROM vaccination.records",
        "SELECT count(*) FROM research.vaccinations",
        "SELECT count(*) FROM linkage.research_ids WHERE source = 'vaccination'",
    ] {
        assert_eq!(sql(q), vec!["0".to_string()], "{q}");
    }
    assert!(sql("SELECT count(*) FROM research.checkups")[0] != "0", "other sources stay");

    // Retention rows go the same way, and the audit trail is not erasable.
    let (ok, _, err) = kura_sql(&data, "ERASE FROM audit.statements WHERE seq < 10 RETAIN 0 HOURS");
    assert!(!ok && err.contains("audit trail"), "{err}");
    let n = sql("ERASE FROM claims.medical_claims WHERE fiscal_year < 2020 RETAIN 0 HOURS");
    let _ = n;
    assert_eq!(sql("SELECT count(*) FROM claims.medical_claims WHERE fiscal_year < 2020"), vec!["0".to_string()]);
    let (ok, report) = verify_cli(&data, None);
    assert!(ok, "{report}");
}
