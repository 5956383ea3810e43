//! k-anonymous extracts of the generator's resident register, confirmed by an independent
//! checker: Python's pycanon (`kanon/tests/pycanon_check.py`, run with `KURA_PYTHON`, which
//! `scripts/test.sh` sets to a virtualenv with pycanon and pandas; without them the test fails
//! rather than skipping).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{report, value};
use kura_engine::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn pycanon(csv: &Path, qi: &str, k: usize, l: Option<(&str, usize)>) -> String {
    let python = std::env::var("KURA_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kanon/tests/pycanon_check.py");
    let mut cmd = Command::new(&python);
    cmd.arg(script).arg(csv).args(["--qi", qi, "--k", &k.to_string()]);
    if let Some((column, l)) = l {
        cmd.args(["--sensitive", column, "--l", &l.to_string()]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "pycanon does not confirm the extract (install pycanon and pandas for KURA_PYTHON, as scripts/test.sh does): {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extracts_of_the_resident_register_pass_pycanon() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    kura_datagen::generate(&kura_datagen::Config { persons: 3000, seed: 7, out_dir: source.clone(), progress: false, receipts: false })
        .unwrap();
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let mut session = engine.session("kura");
    session.set_base_dir(&source);
    session.execute_all(&std::fs::read_to_string(source.join("load.sql")).unwrap()).await.unwrap();
    session.execute_all("CREATE SCHEMA research").await.unwrap();
    let out = dir.path().join("out");
    let residents = "SELECT age_at(birth_date, DATE '2026-04-01') AS age, birth_date, CAST(sex AS TEXT) AS sex, \
                     postal_code, ward_name, status FROM resident.residents";

    // k = 10 over four quasi-identifiers, as CSV.
    let batches = session
        .query(&format!(
            "CREATE EXTRACT research.k10 \
               QUASI IDENTIFIERS (age AGE (5, 10, 20) TOP 90, birth_date DATE, sex EXACT, postal_code POSTAL) \
               K 10 MAX SUPPRESSION 2 PERCENT TO '{}' FORMAT CSV AS {residents}",
            out.display()
        ))
        .await
        .unwrap();
    let r = report(&batches);
    println!("k = 10 extract: {r:?}");
    let rows_out: usize = value(&r, "rows out").parse().unwrap();
    let k_reached: usize = value(&r, "k reached").parse().unwrap();
    assert!(k_reached >= 10, "{r:?}");
    assert!(rows_out > 0, "{r:?}");
    let csv = out.join("k10.csv");
    let checked = pycanon(&csv, "age,birth_date,sex,postal_code", 10, None);
    assert!(checked.contains(&format!("\"rows\": {rows_out}")), "{checked} vs {r:?}");
    assert!(checked.contains(&format!("\"k\": {k_reached}")), "pycanon's k differs from the report: {checked} vs {r:?}");
    let json = std::fs::read_to_string(out.join("k10.report.json")).unwrap();
    assert!(json.contains(&format!("\"k_reached\": {k_reached}")), "{json}");
    // The table holds the same rows.
    assert_eq!(crate::support::count(&session, "SELECT count(*) FROM research.k10").await as usize, rows_out);

    // k = 5 with the status 2-diverse in every class, as Parquet; pycanon checks a CSV of it.
    let batches = session
        .query(&format!(
            "CREATE EXTRACT research.k5l2 QUASI IDENTIFIERS (age AGE (5, 10) TOP 90, sex EXACT, ward_name EXACT) \
               K 5 L 2 ON status MAX SUPPRESSION 5 PERCENT TO '{}' AS {residents}",
            out.display()
        ))
        .await
        .unwrap();
    let r = report(&batches);
    println!("k = 5, l = 2 extract: {r:?}");
    assert!(value(&r, "l reached").parse::<usize>().unwrap() >= 2, "{r:?}");
    let rows_out: usize = value(&r, "rows out").parse().unwrap();
    let file = std::fs::File::open(out.join("k5l2.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let parquet_rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(parquet_rows, rows_out);
    let csv = out.join("k5l2-check.csv");
    session
        .execute_all(&format!("COPY research.k5l2 TO '{}' WITH (FORMAT csv, HEADER true)", csv.display()))
        .await
        .unwrap();
    pycanon(&csv, "age,sex,ward_name", 5, Some(("status", 2)));

    // The check is not vacuous: the raw register is far from 10-anonymous.
    let raw = out.join("raw.csv");
    session
        .execute_all(&format!("COPY ({residents}) TO '{}' WITH (FORMAT csv, HEADER true)", raw.display()))
        .await
        .unwrap();
    let python = std::env::var("KURA_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kanon/tests/pycanon_check.py");
    let status = Command::new(python)
        .arg(script)
        .arg(&raw)
        .args(["--qi", "age,birth_date,sex,postal_code", "--k", "10"])
        .output()
        .unwrap();
    assert!(!status.status.success(), "the raw data passed the checker: the check proves nothing");
}
