//! End-to-end unit tests of [`anonymize`] on hand-made data, and a differential test of the
//! pruned search against exhaustive evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Date32Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::group::{Classes, Grouper, Tuples};
use crate::search::{self, Best, Criteria, Evaluator};
use crate::{ExtractSpec, Hierarchy, QuasiIdentifier, Report, anonymize};

fn decades() -> Hierarchy {
    Hierarchy::Age {
        widths: vec![10],
        top: None,
    }
}

fn sex() -> Hierarchy {
    Hierarchy::Custom { levels: vec![] }
}

/// A batch of (age Int32, sex Utf8, diagnosis Utf8).
fn people(rows: &[(i32, &str, &str)]) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("age", DataType::Int32, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("diagnosis", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap();
    (schema, batch)
}

const SIX: &[(i32, &str, &str)] = &[
    (31, "M", "E11"),
    (35, "M", "E11"),
    (38, "F", "I10"),
    (33, "F", "C34"),
    (52, "M", "I10"),
    (57, "M", "J45"),
];

fn age_sex(k: usize) -> ExtractSpec {
    ExtractSpec::new(
        vec![
            QuasiIdentifier::new("age", decades()),
            QuasiIdentifier::new("sex", sex()),
        ],
        k,
    )
}

fn levels(report: &Report) -> Vec<usize> {
    report.levels.iter().map(|l| l.level).collect()
}

fn text(array: &ArrayRef) -> Vec<Option<String>> {
    array
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Output equivalence classes: QI labels -> (rows, distinct values of `sensitive`).
type OutputClasses = HashMap<Vec<Option<String>>, (usize, HashSet<Option<String>>)>;

fn classes_of(batches: &[RecordBatch], qi: &[&str], sensitive: Option<&str>) -> OutputClasses {
    let mut out = OutputClasses::new();
    for b in batches {
        let cols: Vec<Vec<Option<String>>> = qi
            .iter()
            .map(|c| text(b.column_by_name(c).unwrap()))
            .collect();
        let sens = sensitive.map(|s| text(b.column_by_name(s).unwrap()));
        for r in 0..b.num_rows() {
            let key = cols.iter().map(|c| c[r].clone()).collect();
            let e = out.entry(key).or_default();
            e.0 += 1;
            if let Some(s) = &sens {
                e.1.insert(s[r].clone());
            }
        }
    }
    out
}

#[test]
fn finds_the_minimal_node() {
    let (schema, batch) = people(SIX);
    let (out_schema, out, report) = anonymize(schema, &[batch], &age_sex(2)).unwrap();
    // [age exact] and [age exact, sex *] leave every age alone; decades with sex kept give
    // (30s,M) x2, (30s,F) x2, (50s,M) x2 and lose least.
    assert_eq!(levels(&report), vec![1, 0]);
    assert_eq!(report.rows_suppressed, 0);
    assert_eq!(report.k_reached, 2);
    assert_eq!(report.discernibility, 12);
    assert_eq!(report.lattice_size, 6);
    assert!(report.nodes_evaluated <= 6);
    // ages: 30-39 covers 4 of 6 distinct ages -> 3/5, 50-59 covers 2 -> 1/5; sex unchanged
    let expected = (4.0 * 0.6 + 2.0 * 0.2) / 12.0;
    assert!(
        (report.information_loss - expected).abs() < 1e-12,
        "{report:?}"
    );
    assert_eq!(out_schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(out_schema.field(2).data_type(), &DataType::Utf8);
    let ages = text(out[0].column(0));
    assert_eq!(ages[0].as_deref(), Some("30-39"));
    assert_eq!(ages[4].as_deref(), Some("50-59"));
    // the sensitive column passes through untouched
    assert_eq!(out[0].column(2).as_ref(), people(SIX).1.column(2).as_ref());
}

#[test]
fn k_one_changes_nothing() {
    let (schema, batch) = people(SIX);
    let (_, out, report) = anonymize(schema, &[batch], &age_sex(1)).unwrap();
    assert_eq!(levels(&report), vec![0, 0]);
    assert_eq!(report.information_loss, 0.0);
    assert_eq!(text(out[0].column(0))[0].as_deref(), Some("31"));
}

#[test]
fn suppression_limit_is_respected() {
    let mut rows = SIX.to_vec();
    rows.push((77, "F", "I10"));
    let (schema, batch) = people(&rows);

    // No suppression allowed: the lone 70s row forces ages to '*'.
    let (_, out, report) = anonymize(
        Arc::clone(&schema),
        std::slice::from_ref(&batch),
        &age_sex(2),
    )
    .unwrap();
    assert_eq!(levels(&report), vec![2, 0]);
    assert_eq!(report.rows_suppressed, 0);
    assert_eq!(out[0].num_rows(), 7);

    // One row (15% of 7, floored) may go: decades again, the 77-year-old suppressed.
    let spec = age_sex(2).with_max_suppression(0.15);
    let (_, out, report) = anonymize(schema, &[batch], &spec).unwrap();
    assert_eq!(levels(&report), vec![1, 0]);
    assert_eq!(report.rows_suppressed, 1);
    assert_eq!((report.rows_in, report.rows_out), (7, 6));
    assert_eq!(out[0].num_rows(), 6);
    assert!(!text(out[0].column(0)).contains(&Some("70-79".into())));
    // suppressed cells count as fully lost: (4 * 3/6 + 2 * 1/6 + 2) / 14
    let expected = (4.0 * 0.5 + 2.0 / 6.0 + 2.0) / 14.0;
    assert!(
        (report.information_loss - expected).abs() < 1e-12,
        "{report:?}"
    );
    for (_, (n, _)) in classes_of(&out, &["age", "sex"], None) {
        assert!(n >= 2);
    }
}

#[test]
fn l_diversity_is_respected() {
    let (schema, batch) = people(SIX);
    let spec = age_sex(2).with_l_diversity("diagnosis", 2);
    let (_, out, report) = anonymize(schema, &[batch], &spec).unwrap();
    // (30s,M) holds only E11, so decades with sex fail; ages '*' with sex kept is 2-diverse.
    assert_eq!(levels(&report), vec![2, 0]);
    assert_eq!(report.l_requested, Some(2));
    assert!(report.l_reached.unwrap() >= 2);
    let classes = classes_of(&out, &["age", "sex"], Some("diagnosis"));
    assert_eq!(classes.len(), 2);
    for (n, distinct) in classes.values() {
        assert!(*n >= 2 && distinct.len() >= 2);
    }
}

#[test]
fn output_is_k_anonymous_across_batches() {
    // Same data split over three batches, with k = 3.
    let (schema, _) = people(SIX);
    let batches: Vec<RecordBatch> = SIX.chunks(2).map(|c| people(c).1).collect();
    let spec = age_sex(3).with_max_suppression(0.2);
    let (_, out, report) = anonymize(schema, &batches, &spec).unwrap();
    let classes = classes_of(&out, &["age", "sex"], None);
    let smallest = classes.values().map(|c| c.0).min().unwrap();
    assert_eq!(smallest, report.k_reached);
    assert!(smallest >= 3);
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, report.rows_out);
    assert_eq!(report.rows_in - report.rows_out, report.rows_suppressed);
}

#[test]
fn nulls_are_their_own_value_until_the_top() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("postal_code", DataType::Utf8, true),
        Field::new("age", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![
                Some("1000001"),
                Some("100-0002"),
                None,
                None,
            ])),
            Arc::new(Int32Array::from(vec![Some(40), None, Some(41), None])),
        ],
    )
    .unwrap();
    let spec = ExtractSpec::new(
        vec![QuasiIdentifier::new("postal_code", Hierarchy::Postal)],
        2,
    );
    let (_, out, report) =
        anonymize(Arc::clone(&schema), std::slice::from_ref(&batch), &spec).unwrap();
    assert_eq!(levels(&report), vec![1]);
    assert_eq!(
        text(out[0].column(0)),
        vec![Some("100".into()), Some("100".into()), None, None]
    );
    // ages: NULL never merges with 40-49, so k = 2 needs '*' (or suppression)
    let spec = ExtractSpec::new(vec![QuasiIdentifier::new("age", decades())], 2);
    let (_, out, report) = anonymize(schema, &[batch], &spec).unwrap();
    assert_eq!(levels(&report), vec![1]);
    assert_eq!(
        text(out[0].column(1)),
        vec![Some("40-49".into()), None, Some("40-49".into()), None]
    );
}

#[test]
fn empty_input_reports_k_zero() {
    let (schema, _) = people(&[]);
    let spec = age_sex(5).with_l_diversity("diagnosis", 2);
    let (out_schema, out, report) = anonymize(Arc::clone(&schema), &[], &spec).unwrap();
    assert!(out.is_empty());
    assert_eq!(report.k_reached, 0);
    assert_eq!(report.l_reached, Some(0));
    assert_eq!(report.rows_in, 0);
    assert_eq!(out_schema.field(0).data_type(), &DataType::Utf8);
    // empty batches too
    let (_, empty) = people(&[]);
    let (_, out, report) = anonymize(schema, &[empty], &spec).unwrap();
    assert!(out.is_empty());
    assert_eq!(report.k_reached, 0);
}

#[test]
fn errors_name_columns_and_counts() {
    let (schema, batch) = people(SIX);
    let run = |spec: &ExtractSpec| {
        anonymize(Arc::clone(&schema), std::slice::from_ref(&batch), spec)
            .unwrap_err()
            .to_string()
    };

    let err = run(&ExtractSpec::new(
        vec![QuasiIdentifier::new("postcode", Hierarchy::Postal)],
        2,
    ));
    assert!(
        err.contains("'postcode'") && err.contains("not in the input"),
        "{err}"
    );

    let err = run(&age_sex(7));
    assert!(
        err.contains("k = 7") && err.contains("only 6 rows"),
        "{err}"
    );

    let err = run(&ExtractSpec::new(
        vec![QuasiIdentifier::new("sex", Hierarchy::Date)],
        2,
    ));
    assert!(err.contains("'sex'") && err.contains("6 values"), "{err}");
    assert!(!err.contains("\"M\"") && !err.contains(" M "), "{err}");

    let err = run(&ExtractSpec::new(
        vec![QuasiIdentifier::new(
            "diagnosis",
            Hierarchy::Age {
                widths: vec![],
                top: None,
            },
        )],
        2,
    ));
    assert!(
        err.contains("'diagnosis'") && err.contains("Utf8") && err.contains("Age"),
        "{err}"
    );

    let err = run(&age_sex(2).with_l_diversity("diagnosis", 5));
    assert!(
        err.contains("'diagnosis'") && err.contains("only 4 distinct"),
        "{err}"
    );

    let err = run(&age_sex(2).with_l_diversity("age", 2));
    assert!(
        err.contains("'age'") && err.contains("more than once"),
        "{err}"
    );

    let err = run(&age_sex(0));
    assert!(err.contains("k must be at least 1"), "{err}");

    let err = run(&age_sex(2).with_max_suppression(1.5));
    assert!(err.contains("between 0 and 1"), "{err}");

    let err = run(&ExtractSpec::new(vec![], 2));
    assert!(err.contains("no quasi-identifier"), "{err}");

    // a batch that does not match the schema
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)])),
        vec![Arc::new(Float64Array::from(vec![1.0]))],
    )
    .unwrap();
    let err = anonymize(Arc::clone(&schema), &[batch.clone(), other], &age_sex(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch 1"), "{err}");
}

#[test]
fn float_age_is_a_type_error() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "age",
        DataType::Float64,
        true,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Float64Array::from(vec![40.5]))],
    )
    .unwrap();
    let spec = ExtractSpec::new(vec![QuasiIdentifier::new("age", decades())], 1);
    let err = anonymize(schema, &[batch], &spec).unwrap_err().to_string();
    assert!(err.contains("'age'") && err.contains("Float64"), "{err}");
}

/// A tiny deterministic generator (SplitMix64) for the differential test.
struct Mix(u64);

impl Mix {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// The pruned search must pick exactly the node an exhaustive search picks.
#[test]
fn pruned_search_equals_exhaustive_search() {
    let mut rng = Mix(7);
    for round in 0..40 {
        let n = 30 + rng.next(200) as usize;
        let ages: Vec<Option<i32>> = (0..n)
            .map(|_| (rng.next(20) > 0).then(|| 20 + rng.next(60) as i32))
            .collect();
        let days: Vec<i32> = (0..n).map(|_| 18_000 + rng.next(800) as i32).collect();
        let codes: Vec<String> = (0..n)
            .map(|_| {
                format!(
                    "{}{:02}",
                    ["E", "I", "C"][rng.next(3) as usize],
                    rng.next(12)
                )
            })
            .collect();
        let diagnosis: Vec<String> = (0..n).map(|_| format!("D{}", rng.next(4))).collect();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(ages)),
            Arc::new(Date32Array::from(days)),
            Arc::new(StringArray::from_iter_values(codes)),
        ];
        let hierarchies = [
            Hierarchy::Age {
                widths: vec![5, 10, 20],
                top: Some(70),
            },
            Hierarchy::Date,
            Hierarchy::Truncate {
                lengths: vec![2, 1],
            },
        ];
        let domains: Vec<_> = hierarchies
            .iter()
            .zip(&arrays)
            .map(|(h, a)| h.encode("c", std::slice::from_ref(a)).unwrap())
            .collect();
        let k = 2 + rng.next(6);
        let l = (round % 2 == 0).then(|| 2 + rng.next(2) as usize);
        let sensitive: Vec<u32> = diagnosis.iter().map(|d| d.as_bytes()[1] as u32).collect();
        let mut grouper = Grouper::default();
        let tuples = Tuples::build(&domains, l.map(|_| &sensitive[..]), &mut grouper);
        let criteria = Criteria {
            k,
            l,
            allowed: rng.next(n as u64 / 10 + 1),
        };
        let mut eval = Evaluator {
            domains: &domains,
            tuples: &tuples,
            criteria: &criteria,
            rows: n as u64,
            grouper,
            classes: Classes::default(),
        };
        let pruned = search::search(&mut eval).unwrap();

        // exhaustive: every node, compare with the same order
        let heights: Vec<usize> = domains.iter().map(|d| d.levels.len()).collect();
        let mut best: Option<Best> = None;
        for a in 0..heights[0] {
            for b in 0..heights[1] {
                for c in 0..heights[2] {
                    let levels = vec![a, b, c];
                    let (suppressed, loss) = eval.evaluate(&levels);
                    if suppressed > criteria.allowed {
                        continue;
                    }
                    let candidate = Best {
                        levels,
                        loss,
                        suppressed,
                    };
                    if best.as_ref().is_none_or(|b| search::better(&candidate, b)) {
                        best = Some(candidate);
                    }
                }
            }
        }
        let best = best.unwrap();
        assert_eq!(pruned.best.levels, best.levels, "round {round}");
        assert_eq!(pruned.best.suppressed, best.suppressed, "round {round}");
        assert!(pruned.nodes_evaluated <= pruned.lattice_size);
    }
}
