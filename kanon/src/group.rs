//! Grouping: rows into distinct quasi-identifier tuples, and tuples into the equivalence classes
//! of a lattice node.
//!
//! The input is grouped once, into the distinct tuples of level-0 codes with their row counts
//! (and, for l-diversity, the distinct sensitive values of each tuple). Every lattice node is
//! then evaluated over these tuples, never over the rows: a node's classes are the tuples
//! regrouped by their generalised codes. Because each hierarchy level is a function of level 0,
//! any member of a tuple stands for all of them.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::hierarchy::ColumnDomain;

/// Keys below this many distinct values are grouped through a flat slot array rather than a
/// hash map (4 Mi slots = 16 MiB, reused across nodes).
const DENSE_LIMIT: u64 = 1 << 22;

/// Reusable scratch for turning composite keys into dense ids.
#[derive(Default)]
pub(crate) struct Grouper {
    slots: Vec<u32>,
    touched: Vec<u64>,
    map: FxHashMap<u64, u32>,
}

impl Grouper {
    /// Rewrites every key (each `< card`) to a dense id, numbered in order of first appearance,
    /// and returns the number of ids.
    fn densify(&mut self, keys: &mut [u64], card: u64) -> u64 {
        // A slot array pays off when it is small next to the work; otherwise hash.
        if card <= DENSE_LIMIT && card <= 8 * keys.len() as u64 + 4096 {
            if (self.slots.len() as u64) < card {
                self.slots.resize(card as usize, u32::MAX);
            }
            self.touched.clear();
            for k in keys.iter_mut() {
                let slot = &mut self.slots[*k as usize];
                if *slot == u32::MAX {
                    *slot = self.touched.len() as u32;
                    self.touched.push(*k);
                }
                *k = u64::from(*slot);
            }
            for &k in &self.touched {
                self.slots[k as usize] = u32::MAX;
            }
            self.touched.len() as u64
        } else {
            self.map.clear();
            for k in keys.iter_mut() {
                let next = self.map.len() as u32;
                *k = u64::from(*self.map.entry(*k).or_insert(next));
            }
            self.map.len() as u64
        }
    }

    /// Groups items by several columns at once. Each column gives, per item, a code into `map`,
    /// whose values are `< card`. On return `keys[i]` is the dense group id of item `i`; the
    /// number of groups is returned. Keys are built in mixed radix and re-densified only when
    /// the radix would overflow 64 bits.
    pub(crate) fn group(&mut self, cols: &[ColumnView<'_>], keys: &mut Vec<u64>) -> usize {
        let n = cols.first().map_or(0, |c| c.codes.len());
        keys.clear();
        keys.resize(n, 0);
        let mut card: u64 = 1;
        for col in cols {
            if card.checked_mul(col.card).is_none() {
                card = self.densify(keys, card);
            }
            for (k, &code) in keys.iter_mut().zip(col.codes) {
                *k = *k * col.card + u64::from(col.map[code as usize]);
            }
            card *= col.card;
        }
        self.densify(keys, card) as usize
    }
}

/// One column as [`Grouper::group`] reads it.
pub(crate) struct ColumnView<'a> {
    /// A code per item.
    pub codes: &'a [u32],
    /// Code -> group code at the level in use.
    pub map: &'a [u32],
    /// Number of distinct group codes.
    pub card: u64,
}

/// The input grouped into distinct level-0 quasi-identifier tuples.
pub(crate) struct Tuples {
    /// Tuple of each row.
    pub row_tuple: Vec<u32>,
    /// Level-0 code of each tuple, per quasi-identifier: `codes[column][tuple]`.
    pub codes: Vec<Vec<u32>>,
    /// Rows per tuple.
    pub count: Vec<u64>,
    /// Distinct (tuple, sensitive value code) pairs; empty without l-diversity.
    pub pairs: Vec<(u32, u32)>,
}

impl Tuples {
    pub(crate) fn build(
        domains: &[ColumnDomain],
        sensitive: Option<&[u32]>,
        grouper: &mut Grouper,
    ) -> Tuples {
        let cols: Vec<ColumnView<'_>> = domains
            .iter()
            .map(|d| ColumnView {
                codes: &d.codes,
                map: &d.levels[0].map,
                card: d.levels[0].labels.len() as u64,
            })
            .collect();
        let mut keys = Vec::new();
        let n_tuples = grouper.group(&cols, &mut keys);
        let row_tuple: Vec<u32> = keys.iter().map(|&k| k as u32).collect();

        let mut codes: Vec<Vec<u32>> = vec![Vec::with_capacity(n_tuples); domains.len()];
        let mut count = Vec::with_capacity(n_tuples);
        for (row, &t) in row_tuple.iter().enumerate() {
            // ids are numbered by first appearance, so a new tuple is always the next id
            if t as usize == count.len() {
                count.push(0);
                for (c, d) in codes.iter_mut().zip(domains) {
                    c.push(d.codes[row]);
                }
            }
            count[t as usize] += 1;
        }

        let pairs = match sensitive {
            None => Vec::new(),
            Some(s) => {
                let mut seen = FxHashSet::default();
                let mut pairs = Vec::new();
                for (&t, &v) in row_tuple.iter().zip(s) {
                    if seen.insert((u64::from(t) << 32) | u64::from(v)) {
                        pairs.push((t, v));
                    }
                }
                pairs
            }
        };
        Tuples {
            row_tuple,
            codes,
            count,
            pairs,
        }
    }
}

/// Equivalence classes of one lattice node.
#[derive(Default)]
pub(crate) struct Classes {
    /// Class of each tuple.
    pub of_tuple: Vec<u64>,
    /// Rows per class.
    pub size: Vec<u64>,
    /// Distinct sensitive values per class (empty without l-diversity).
    pub diversity: Vec<u32>,
    seen: FxHashSet<u64>,
}

impl Classes {
    /// Regroups the tuples by their labels at `levels` (one level per quasi-identifier).
    pub(crate) fn compute(
        &mut self,
        domains: &[ColumnDomain],
        tuples: &Tuples,
        levels: &[usize],
        grouper: &mut Grouper,
    ) {
        let cols: Vec<ColumnView<'_>> = domains
            .iter()
            .zip(&tuples.codes)
            .zip(levels)
            .map(|((d, codes), &level)| ColumnView {
                codes,
                map: &d.levels[level].map,
                card: d.levels[level].labels.len() as u64,
            })
            .collect();
        let n = grouper.group(&cols, &mut self.of_tuple);
        self.size.clear();
        self.size.resize(n, 0);
        for (&c, &rows) in self.of_tuple.iter().zip(&tuples.count) {
            self.size[c as usize] += rows;
        }
        self.diversity.clear();
        if !tuples.pairs.is_empty() {
            self.diversity.resize(n, 0);
            self.seen.clear();
            for &(t, v) in &tuples.pairs {
                let class = self.of_tuple[t as usize];
                if self.seen.insert((class << 32) | u64::from(v)) {
                    self.diversity[class as usize] += 1;
                }
            }
        }
    }

    /// Whether a class must be suppressed: fewer than `k` rows, or (with l-diversity) fewer
    /// than `l` distinct sensitive values.
    pub(crate) fn fails(&self, class: usize, k: u64, l: Option<usize>) -> bool {
        self.size[class] < k || l.is_some_and(|l| (self.diversity[class] as usize) < l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_combines_columns_and_numbers_by_first_appearance() {
        let mut g = Grouper::default();
        let identity: Vec<u32> = (0..10).collect();
        let a = [0, 1, 0, 1, 0];
        let b = [5, 5, 5, 6, 6];
        let cols = [
            ColumnView {
                codes: &a,
                map: &identity,
                card: 2,
            },
            ColumnView {
                codes: &b,
                map: &identity,
                card: 10,
            },
        ];
        let mut keys = Vec::new();
        assert_eq!(g.group(&cols, &mut keys), 4);
        assert_eq!(keys, vec![0, 1, 0, 2, 3]);
    }

    #[test]
    fn group_survives_radix_overflow() {
        // 5 columns of cardinality 2^20 overflow 64 bits; the grouper must re-densify.
        let mut g = Grouper::default();
        let map: Vec<u32> = (0..4).collect();
        let codes = [0u32, 1, 0, 3];
        let cols: Vec<_> = (0..5)
            .map(|_| ColumnView {
                codes: &codes,
                map: &map,
                card: 1 << 20,
            })
            .collect();
        let mut keys = Vec::new();
        assert_eq!(g.group(&cols, &mut keys), 3);
        assert_eq!(keys, vec![0, 1, 0, 2]);
    }
}
