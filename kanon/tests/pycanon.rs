//! Independent check: Python's pycanon confirms the extract's k (and l).
//!
//! Runs `tests/pycanon_check.py` with the Python in `KURA_PYTHON` (default `python3`). If that
//! Python lacks pycanon or pandas the test fails, on purpose: a check that skips itself
//! silently proves nothing. `scripts/test.sh` installs both and sets `KURA_PYTHON`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use kura_kanon::anonymize;

use crate::synthetic::{QI_NAMES, patients, spec};

fn python() -> String {
    std::env::var("KURA_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn require_pycanon(python: &str) {
    let probe = Command::new(python)
        .args(["-c", "import pycanon, pandas"])
        .output();
    let ok = probe.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "pycanon and pandas are not importable with `{python}` ({}). Run the test suite's \
         installer, scripts/test.sh (it installs them into its virtualenv and sets KURA_PYTHON), \
         or point KURA_PYTHON at a Python with `pip install pycanon pandas`.",
        match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        }
    );
}

fn write_csv(path: &Path, batches: &[RecordBatch]) {
    let mut writer = WriterBuilder::new()
        .with_header(true)
        .build(File::create(path).unwrap());
    for b in batches {
        writer.write(b).unwrap();
    }
}

/// Runs the checker; returns (success, stdout + stderr).
fn pycanon(csv: &Path, k: usize, l: Option<(&str, usize)>) -> (bool, String) {
    let python = python();
    require_pycanon(&python);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pycanon_check.py");
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .arg(csv)
        .args(["--qi", &QI_NAMES.join(","), "--k", &k.to_string()]);
    if let Some((column, l)) = l {
        cmd.args(["--sensitive", column, "--l", &l.to_string()]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn pycanon_confirms_k_anonymity() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, batches) = patients(20_000, 7, 5000);

    // The raw input is not 10-anonymous: the checker must say so (it is not vacuous).
    let raw = dir.path().join("raw.csv");
    write_csv(&raw, &batches);
    let (ok, text) = pycanon(&raw, 10, None);
    assert!(!ok, "raw input judged 10-anonymous: {text}");

    let (_, out, report) = anonymize(schema, &batches, &spec(10)).unwrap();
    let csv = dir.path().join("extract.csv");
    write_csv(&csv, &out);
    let (ok, text) = pycanon(&csv, 10, None);
    println!("pycanon: {text}kura: {report:?}");
    assert!(ok, "pycanon rejects the extract: {text}");
    assert!(
        text.contains(&format!("\"k\": {}", report.k_reached)),
        "{text}"
    );
}

#[test]
fn pycanon_confirms_l_diversity() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, batches) = patients(20_000, 8, 5000);
    let spec = spec(10).with_l_diversity("icd10", 2);
    let (_, out, report) = anonymize(schema, &batches, &spec).unwrap();
    let csv = dir.path().join("extract.csv");
    write_csv(&csv, &out);
    let (ok, text) = pycanon(&csv, 10, Some(("icd10", 2)));
    println!("pycanon: {text}kura: {report:?}");
    assert!(ok, "pycanon rejects the extract: {text}");
    assert!(
        text.contains(&format!("\"l\": {}", report.l_reached.unwrap())),
        "{text}"
    );
}
