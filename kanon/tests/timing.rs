//! Timing on 1,000,000 synthetic rows with 4 quasi-identifiers. Printed, not asserted; run with
//! `cargo test --release -p kura-kanon -- --ignored --nocapture`.

use std::time::Instant;

use kura_kanon::anonymize;

use crate::synthetic::{patients, spec};

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn one_million_rows() {
    let started = Instant::now();
    let (schema, batches) = patients(1_000_000, 1, 65_536);
    let generated = started.elapsed();
    let cases = [
        ("k = 5", spec(5)),
        ("k = 10", spec(10)),
        (
            "k = 10, l = 2 on icd10",
            spec(10).with_l_diversity("icd10", 2),
        ),
    ];
    for (name, spec) in cases {
        let started = Instant::now();
        let (_, out, report) = anonymize(schema.clone(), &batches, &spec).unwrap();
        let elapsed = started.elapsed();
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, report.rows_out);
        println!(
            "1M rows, {name}: anonymize {elapsed:.2?} (data generated in {generated:.2?}); \
             nodes evaluated {} of {}; levels {:?}; suppressed {}; loss {:.4}; k reached {}",
            report.nodes_evaluated,
            report.lattice_size,
            report
                .levels
                .iter()
                .map(|l| format!("{}={}/{}", l.column, l.level, l.max_level))
                .collect::<Vec<_>>(),
            report.rows_suppressed,
            report.information_loss,
            report.k_reached,
        );
    }
}
