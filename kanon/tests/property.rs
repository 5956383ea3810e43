//! Property test: for several k, on 20,000 synthetic patients, every output class has at least
//! k rows, suppression stays within the limit, and every output row is its input row with the
//! reported levels applied.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Date32Type, Int32Type, Int64Type};
use datafusion::arrow::temporal_conversions::date32_to_datetime;
use kura_kanon::{Report, anonymize};

use crate::synthetic::{QI_NAMES, patients, spec};

const ROWS: usize = 20_000;

/// An input row's quasi-identifiers and pass-through columns, keyed by id.
struct Input {
    age: Option<i32>,
    sex: Option<String>,
    birth: Option<i32>,
    postal: Option<String>,
    icd10: Option<String>,
    cost: Option<i64>,
}

fn inputs(batches: &[RecordBatch]) -> HashMap<i64, Input> {
    let mut out = HashMap::new();
    for b in batches {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let age = b.column(1).as_primitive::<Int32Type>();
        let sex = b.column(2).as_string::<i32>();
        let birth = b.column(3).as_primitive::<Date32Type>();
        let postal = b.column(4).as_string::<i32>();
        let icd = b.column(5).as_string::<i32>();
        let cost = b.column(6).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let s = |a: &datafusion::arrow::array::StringArray| {
                a.is_valid(r).then(|| a.value(r).to_string())
            };
            out.insert(
                ids.value(r),
                Input {
                    age: age.is_valid(r).then(|| age.value(r)),
                    sex: s(sex),
                    birth: birth.is_valid(r).then(|| birth.value(r)),
                    postal: s(postal),
                    icd10: s(icd),
                    cost: cost.is_valid(r).then(|| cost.value(r)),
                },
            );
        }
    }
    out
}

/// Expected labels, written independently of the crate's hierarchy code.
fn expected_age(age: Option<i32>, level: usize) -> Option<String> {
    let a = age?;
    Some(match level {
        0 => a.to_string(),
        3 => "*".into(),
        _ if a >= 90 => "90+".into(),
        1 => format!("{}-{}", a / 5 * 5, a / 5 * 5 + 4),
        _ => format!("{}-{}", a / 10 * 10, a / 10 * 10 + 9),
    })
}

fn expected_date(day: Option<i32>, level: usize) -> Option<String> {
    let d = date32_to_datetime(day?).unwrap();
    Some(match level {
        0 => d.format("%Y-%m-%d").to_string(),
        1 => d.format("%Y-%m").to_string(),
        2 => d.format("%Y").to_string(),
        _ => "*".into(),
    })
}

fn check_postal(input: &Option<String>, output: Option<&str>, level: usize) {
    match (input, level) {
        (_, 3) => assert_eq!(output, Some("*")),
        (None, _) => assert_eq!(output, None),
        (Some(p), 0) => assert_eq!(output, Some(p.as_str())),
        (Some(p), 1) => assert_eq!(output, Some(&p[..3])),
        (Some(_), _) => {
            let pref = output.unwrap();
            assert!(
                ["都", "道", "府", "県"].iter().any(|s| pref.ends_with(s)),
                "{pref}"
            );
        }
    }
}

/// Checks the output against the input and the report; returns the output classes' sizes.
fn check(input: &[RecordBatch], output: &[RecordBatch], report: &Report, k: usize) {
    let by_id = inputs(input);
    let level = |name: &str| {
        report
            .levels
            .iter()
            .find(|l| l.column == name)
            .unwrap()
            .level
    };
    let (la, ls, lb, lp) = (
        level("age"),
        level("sex"),
        level("birth_date"),
        level("postal_code"),
    );
    let mut classes: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut rows = 0;
    for b in output {
        let col = |name: &str| b.column_by_name(name).unwrap().as_string::<i32>().clone();
        let (age, sex, birth, postal) = (
            col("age"),
            col("sex"),
            col("birth_date"),
            col("postal_code"),
        );
        let icd = col("icd10");
        let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let cost = b
            .column_by_name("cost")
            .unwrap()
            .as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let get = |a: &datafusion::arrow::array::StringArray| {
                a.is_valid(r).then(|| a.value(r).to_string())
            };
            let orig = &by_id[&ids.value(r)];
            assert_eq!(get(&age), expected_age(orig.age, la));
            let expected_sex = if ls == 0 {
                orig.sex.clone()
            } else {
                Some("*".into())
            };
            assert_eq!(get(&sex), expected_sex);
            assert_eq!(get(&birth), expected_date(orig.birth, lb));
            check_postal(&orig.postal, get(&postal).as_deref(), lp);
            // pass-through columns are untouched
            assert_eq!(get(&icd), orig.icd10);
            assert_eq!(cost.is_valid(r).then(|| cost.value(r)), orig.cost);
            let key = [&age, &sex, &birth, &postal]
                .iter()
                .map(|a| get(a))
                .collect();
            *classes.entry(key).or_default() += 1;
            rows += 1;
        }
    }
    let smallest = classes.values().copied().min().unwrap();
    assert!(smallest >= k, "a class of {smallest} rows with k = {k}");
    assert_eq!(smallest, report.k_reached);
    assert_eq!(rows, report.rows_out);
    assert_eq!(report.rows_in, ROWS);
    assert_eq!(report.rows_out + report.rows_suppressed, ROWS);
    assert!(report.rows_suppressed as f64 <= 0.05 * ROWS as f64);
    assert!((0.0..=1.0).contains(&report.information_loss));
}

#[test]
fn every_class_has_k_rows_within_the_suppression_limit() {
    let (schema, batches) = patients(ROWS, 42, 4096);
    let mut previous_loss = 0.0;
    for k in [2, 5, 10] {
        let (_, out, report) = anonymize(schema.clone(), &batches, &spec(k)).unwrap();
        println!("k = {k}: {report:?}");
        check(&batches, &out, &report, k);
        // a larger k never costs less information
        assert!(report.information_loss >= previous_loss - 1e-12);
        previous_loss = report.information_loss;
    }
    // the spec's column names are the ones the test groups by
    assert_eq!(QI_NAMES.len(), 4);
}

#[test]
fn l_diversity_on_icd10() {
    let (schema, batches) = patients(ROWS, 43, 4096);
    let spec = spec(5).with_l_diversity("icd10", 3);
    let (_, out, report) = anonymize(schema, &batches, &spec).unwrap();
    println!("{report:?}");
    check(&batches, &out, &report, 5);
    let mut distinct: HashMap<Vec<Option<String>>, std::collections::HashSet<Option<String>>> =
        HashMap::new();
    for b in &out {
        let cols: Vec<_> = QI_NAMES
            .iter()
            .chain(["icd10"].iter())
            .map(|c| b.column_by_name(c).unwrap().as_string::<i32>().clone())
            .collect();
        for r in 0..b.num_rows() {
            let v: Vec<Option<String>> = cols
                .iter()
                .map(|a| a.is_valid(r).then(|| a.value(r).to_string()))
                .collect();
            distinct
                .entry(v[..4].to_vec())
                .or_default()
                .insert(v[4].clone());
        }
    }
    let fewest = distinct.values().map(|s| s.len()).min().unwrap();
    assert!(fewest >= 3);
    assert_eq!(Some(fewest), report.l_reached);
}
