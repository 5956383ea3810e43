//! Full-domain generalisation search over the lattice of level combinations.
//!
//! A node assigns one level to every quasi-identifier; node `a` is below node `b` when every
//! level of `a` is at most that of `b`. The search relies on two monotone properties:
//! - anonymity within the suppression limit: a class that satisfies k (and distinct-l) at a
//!   node is inside a class that satisfies them at every node above, so the rows a node must
//!   suppress only shrink going up. A node that fails makes every node below it fail;
//! - the lower bound of information loss: the loss the node would have with no row suppressed.
//!   It only grows going up, and it needs no grouping (it is a sum of per-column terms).
//!
//! Suppressed rows count as fully generalised in the loss, so the loss itself is not monotone
//! (a higher node may suppress fewer rows and lose less). As ARX does for such metrics, the
//! search therefore visits nodes in increasing lower bound, skips nodes known to fail, evaluates
//! the rest, and stops once the lower bound reaches the best loss found: no node left can beat
//! it. A node that fails tags its whole down-set as failing.

use crate::error::{Error, Result};
use crate::group::{Classes, Grouper, Tuples};
use crate::hierarchy::ColumnDomain;

/// Largest lattice the search accepts.
pub(crate) const LATTICE_LIMIT: usize = 1 << 22;

/// Two losses closer than this are equal (they are sums of floats in different orders).
const EPS: f64 = 1e-12;

/// What the search needs besides the data.
pub(crate) struct Criteria {
    pub k: u64,
    pub l: Option<usize>,
    /// Rows that may be suppressed.
    pub allowed: u64,
}

/// The chosen node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Best {
    pub levels: Vec<usize>,
    pub loss: f64,
    pub suppressed: u64,
}

/// The search's result.
pub(crate) struct Outcome {
    pub best: Best,
    pub nodes_evaluated: usize,
    pub lattice_size: usize,
}

/// The lattice: node index = levels in mixed radix, first column most significant (so index
/// order is lexicographic order of the levels).
struct Lattice {
    heights: Vec<usize>,
    strides: Vec<usize>,
    size: usize,
}

impl Lattice {
    fn new(heights: Vec<usize>) -> Result<Lattice> {
        let mut strides = vec![0; heights.len()];
        let mut size: u128 = 1;
        for (i, &h) in heights.iter().enumerate().rev() {
            strides[i] = size as usize;
            size = size.saturating_mul(h as u128 + 1);
            if size > LATTICE_LIMIT as u128 {
                // keep multiplying to report the full size
                let total = heights[..i]
                    .iter()
                    .fold(size, |s, &h| s.saturating_mul(h as u128 + 1));
                return Err(Error::LatticeTooLarge {
                    nodes: total,
                    limit: LATTICE_LIMIT,
                });
            }
        }
        Ok(Lattice {
            heights,
            strides,
            size: size as usize,
        })
    }

    fn levels(&self, node: usize, out: &mut Vec<usize>) {
        out.clear();
        out.extend(
            self.heights
                .iter()
                .zip(&self.strides)
                .map(|(&h, &s)| (node / s) % (h + 1)),
        );
    }

    /// Marks `node` and every node below it.
    fn tag_down(&self, node: usize, tagged: &mut [bool]) {
        let mut stack = vec![node];
        let mut levels = Vec::new();
        while let Some(n) = stack.pop() {
            if tagged[n] {
                continue; // its down-set is tagged already
            }
            tagged[n] = true;
            self.levels(n, &mut levels);
            for (c, &level) in levels.iter().enumerate() {
                if level > 0 {
                    stack.push(n - self.strides[c]);
                }
            }
        }
    }
}

/// Evaluates nodes of one data set.
pub(crate) struct Evaluator<'a> {
    pub domains: &'a [ColumnDomain],
    pub tuples: &'a Tuples,
    pub criteria: &'a Criteria,
    pub rows: u64,
    pub grouper: Grouper,
    pub classes: Classes,
}

impl Evaluator<'_> {
    /// Information loss without suppression: the mean cell loss over all rows and columns.
    fn lower_bound(&self, levels: &[usize]) -> f64 {
        let sum: f64 = self
            .domains
            .iter()
            .zip(levels)
            .map(|(d, &l)| d.row_loss[l])
            .sum();
        sum / self.cells()
    }

    fn cells(&self) -> f64 {
        (self.rows as f64) * (self.domains.len() as f64)
    }

    /// Groups the node, leaving its classes in `self.classes`; returns the suppressed rows and
    /// the node's information loss (suppressed cells count as fully generalised, loss 1).
    pub(crate) fn evaluate(&mut self, levels: &[usize]) -> (u64, f64) {
        self.classes
            .compute(self.domains, self.tuples, levels, &mut self.grouper);
        let q = self.domains.len() as f64;
        let mut suppressed = 0;
        let mut extra = 0.0;
        for (t, &class) in self.classes.of_tuple.iter().enumerate() {
            if self
                .classes
                .fails(class as usize, self.criteria.k, self.criteria.l)
            {
                let rows = self.tuples.count[t];
                suppressed += rows;
                let kept: f64 = self
                    .domains
                    .iter()
                    .zip(&self.tuples.codes)
                    .zip(levels)
                    .map(|((d, codes), &l)| d.cell_loss[l][codes[t] as usize])
                    .sum();
                extra += rows as f64 * (q - kept);
            }
        }
        (suppressed, self.lower_bound(levels) + extra / self.cells())
    }
}

/// Whether `a` beats `b`: lower loss, then fewer suppressed rows, then less generalisation
/// (lower level sum, then lexicographically lower levels).
pub(crate) fn better(a: &Best, b: &Best) -> bool {
    if (a.loss - b.loss).abs() > EPS {
        return a.loss < b.loss;
    }
    let height = |x: &Best| x.levels.iter().sum::<usize>();
    (a.suppressed, height(a), &a.levels) < (b.suppressed, height(b), &b.levels)
}

/// Finds the node with minimal information loss among those that are k-anonymous (and
/// l-diverse) after suppressing at most `criteria.allowed` rows. The top node (everything `*`)
/// must be feasible; the caller checks that beforehand.
pub(crate) fn search(eval: &mut Evaluator<'_>) -> Result<Outcome> {
    let lattice = Lattice::new(eval.domains.iter().map(|d| d.levels.len() - 1).collect())?;
    let mut levels = Vec::new();
    let mut order: Vec<(f64, usize, usize)> = (0..lattice.size)
        .map(|node| {
            lattice.levels(node, &mut levels);
            let height = levels.iter().sum();
            (eval.lower_bound(&levels), height, node)
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    let mut fails = vec![false; lattice.size];
    let mut best: Option<Best> = None;
    let mut nodes_evaluated = 0;
    for &(bound, _, node) in &order {
        if best.as_ref().is_some_and(|b| bound > b.loss + EPS) {
            break; // every node left has at least this loss
        }
        if fails[node] {
            continue;
        }
        lattice.levels(node, &mut levels);
        let (suppressed, loss) = eval.evaluate(&levels);
        nodes_evaluated += 1;
        if suppressed > eval.criteria.allowed {
            lattice.tag_down(node, &mut fails);
            continue;
        }
        let candidate = Best {
            levels: levels.clone(),
            loss,
            suppressed,
        };
        if best.as_ref().is_none_or(|b| better(&candidate, b)) {
            best = Some(candidate);
        }
    }
    let best = best.expect("the top node is feasible, and no bound exceeds an unset best");
    Ok(Outcome {
        best,
        nodes_evaluated,
        lattice_size: lattice.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_indexes_levels_lexicographically() {
        let lattice = Lattice::new(vec![1, 2]).unwrap();
        assert_eq!(lattice.size, 6);
        let mut levels = Vec::new();
        let all: Vec<Vec<usize>> = (0..6)
            .map(|n| {
                lattice.levels(n, &mut levels);
                levels.clone()
            })
            .collect();
        assert_eq!(
            all,
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![0, 2],
                vec![1, 0],
                vec![1, 1],
                vec![1, 2]
            ]
        );
    }

    #[test]
    fn tag_down_marks_exactly_the_down_set() {
        let lattice = Lattice::new(vec![1, 2]).unwrap();
        let mut tagged = vec![false; 6];
        lattice.tag_down(4, &mut tagged); // node [1, 1]
        assert_eq!(tagged, vec![true, true, false, true, true, false]);
    }

    #[test]
    fn oversized_lattice_is_an_error() {
        let err = Lattice::new(vec![99; 5]).err().unwrap();
        assert!(
            matches!(
                err,
                Error::LatticeTooLarge {
                    nodes: 10_000_000_000,
                    ..
                }
            ),
            "{err}"
        );
    }
}
