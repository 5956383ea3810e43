//! Measured quality against a ground truth: pairwise precision, recall and F1.

use rustc_hash::FxHashMap;
use serde::Serialize;

/// Pairwise quality: every two keys put in one person is a predicted pair, every two keys of one
/// true person a true pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quality {
    pub true_positives: u64,
    pub predicted_pairs: u64,
    pub true_pairs: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Quality of `(predicted person, true person)` for every key.
pub fn pairwise_quality(assignments: impl IntoIterator<Item = (u64, u64)>) -> Quality {
    let mut cells: FxHashMap<(u64, u64), u64> = FxHashMap::default();
    let mut predicted: FxHashMap<u64, u64> = FxHashMap::default();
    let mut truth: FxHashMap<u64, u64> = FxHashMap::default();
    for (p, t) in assignments {
        *cells.entry((p, t)).or_default() += 1;
        *predicted.entry(p).or_default() += 1;
        *truth.entry(t).or_default() += 1;
    }
    let tp: u64 = cells.values().map(|&n| pairs(n)).sum();
    let pp: u64 = predicted.values().map(|&n| pairs(n)).sum();
    let tt: u64 = truth.values().map(|&n| pairs(n)).sum();
    let precision = if pp == 0 { 1.0 } else { tp as f64 / pp as f64 };
    let recall = if tt == 0 { 1.0 } else { tp as f64 / tt as f64 };
    let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    Quality { true_positives: tp, predicted_pairs: pp, true_pairs: tt, precision, recall, f1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs() {
        // Truth: {1,2,3} {4}; predicted: {1,2} {3,4}.
        let q = pairwise_quality([(10, 1), (10, 1), (11, 1), (11, 2)]);
        assert_eq!((q.true_positives, q.predicted_pairs, q.true_pairs), (1, 2, 3));
        assert!((q.precision - 0.5).abs() < 1e-12 && (q.recall - 1.0 / 3.0).abs() < 1e-12);
    }
}
