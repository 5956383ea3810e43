//! Stable research IDs: random numbers that encode nothing, kept across linkages.
//!
//! Given the previous map (source key -> research ID) and this linkage's persons, every previous
//! ID goes to the person holding most of its keys (ties: the person found first). A person given
//! no previous ID gets a new random one; a person given several keeps the one with most keys and
//! the others are recorded as merged into it; keys of a previous ID that ended in other persons
//! are recorded as split off. Nobody is renumbered unless the evidence moved them.

use rand::Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::data::EntryKey;

/// A change of research IDs between two linkages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum IdChange {
    /// `retired` was merged into `kept`: new evidence says they are one person.
    Merge { kept: i64, retired: i64 },
    /// Keys of `from` were split off to the person now called `to`.
    Split { from: i64, to: i64, keys: u64 },
}

/// The research IDs of a linkage and how they differ from before.
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    /// Every key with its research ID.
    pub ids: Vec<(EntryKey, i64)>,
    /// Merges and splits.
    pub changes: Vec<IdChange>,
    /// Keys that had an ID before, and of those, how many kept it.
    pub previous_keys: u64,
    pub unchanged_keys: u64,
    /// Persons given a new ID.
    pub new_ids: u64,
}

impl Assignment {
    /// Share of previously mapped keys that kept their research ID (1 when there were none).
    pub fn stability(&self) -> f64 {
        if self.previous_keys == 0 { 1.0 } else { self.unchanged_keys as f64 / self.previous_keys as f64 }
    }
}

/// Assigns research IDs to `persons` (key, person index), keeping those of `previous`. New IDs
/// are positive 63-bit random numbers from `rng` (a cryptographic generator in production), never
/// reusing one that exists or existed.
pub fn assign_ids(
    persons: &[(EntryKey, u32)],
    previous: &FxHashMap<EntryKey, i64>,
    retired: &FxHashSet<i64>,
    rng: &mut impl Rng,
) -> Assignment {
    let n = persons.iter().map(|p| p.1 as usize + 1).max().unwrap_or(0);
    // Keys per (previous ID, person).
    let mut counts: FxHashMap<(i64, u32), u64> = FxHashMap::default();
    for (key, person) in persons {
        if let Some(&id) = previous.get(key) {
            *counts.entry((id, *person)).or_default() += 1;
        }
    }
    let mut by_id: Vec<((i64, u32), u64)> = counts.into_iter().collect();
    by_id.sort_unstable_by(|a, b| a.0.0.cmp(&b.0.0).then(b.1.cmp(&a.1)).then(a.0.1.cmp(&b.0.1)));
    // Each previous ID goes to its largest holder: (person -> [(id, keys)]).
    let mut awarded: Vec<Vec<(i64, u64)>> = vec![Vec::new(); n];
    let mut spread: FxHashMap<i64, Vec<(u32, u64)>> = FxHashMap::default();
    let mut i = 0;
    while i < by_id.len() {
        let id = by_id[i].0.0;
        awarded[by_id[i].0.1 as usize].push((id, by_id[i].1));
        let mut j = i + 1;
        while j < by_id.len() && by_id[j].0.0 == id {
            spread.entry(id).or_default().push((by_id[j].0.1, by_id[j].1));
            j += 1;
        }
        i = j;
    }
    let mut used: FxHashSet<i64> = previous.values().copied().collect();
    used.extend(retired.iter().copied());
    let mut out = Assignment::default();
    let mut person_id = vec![0i64; n];
    for (p, ids) in awarded.iter_mut().enumerate() {
        ids.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        person_id[p] = match ids.first() {
            Some(&(kept, _)) => {
                for &(other, _) in &ids[1..] {
                    out.changes.push(IdChange::Merge { kept, retired: other });
                }
                kept
            }
            None => {
                out.new_ids += 1;
                loop {
                    let id = (rng.random::<u64>() >> 1) as i64;
                    if id != 0 && used.insert(id) {
                        break id;
                    }
                }
            }
        };
    }
    let mut split: Vec<(i64, Vec<(u32, u64)>)> = spread.into_iter().collect();
    split.sort_unstable_by_key(|s| s.0);
    for (from, parts) in split {
        for (p, keys) in parts {
            if person_id[p as usize] != from {
                out.changes.push(IdChange::Split { from, to: person_id[p as usize], keys });
            }
        }
    }
    out.ids = persons
        .iter()
        .map(|(key, p)| {
            let id = person_id[*p as usize];
            if let Some(&before) = previous.get(key) {
                out.previous_keys += 1;
                if before == id {
                    out.unchanged_keys += 1;
                }
            }
            (key.clone(), id)
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn k(s: &str) -> EntryKey {
        EntryKey { source: "s".into(), key: s.into() }
    }

    #[test]
    fn keeps_merges_and_splits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let first = assign_ids(&[(k("a"), 0), (k("b"), 0), (k("c"), 1)], &FxHashMap::default(), &FxHashSet::default(), &mut rng);
        assert_eq!(first.new_ids, 2);
        let prev: FxHashMap<EntryKey, i64> = first.ids.iter().cloned().collect();
        let (ab, c) = (prev[&k("a")], prev[&k("c")]);
        assert_ne!(ab, c);
        // Same persons plus a new key: nobody renumbered.
        let again = assign_ids(&[(k("a"), 0), (k("b"), 0), (k("c"), 1), (k("d"), 2)], &prev, &FxHashSet::default(), &mut rng);
        assert_eq!((again.unchanged_keys, again.previous_keys, again.new_ids), (3, 3, 1));
        assert!(again.changes.is_empty());
        // Evidence merges c into a+b: the larger keeps its ID.
        let merged = assign_ids(&[(k("a"), 0), (k("b"), 0), (k("c"), 0)], &prev, &FxHashSet::default(), &mut rng);
        assert_eq!(merged.changes, vec![IdChange::Merge { kept: ab, retired: c }]);
        // Evidence splits b off a.
        let split = assign_ids(&[(k("a"), 0), (k("b"), 1), (k("c"), 2)], &prev, &FxHashSet::default(), &mut rng);
        let b_id = split.ids[1].1;
        assert_eq!(split.changes, vec![IdChange::Split { from: ab, to: b_id, keys: 1 }]);
        assert!(b_id != ab && b_id != c && b_id > 0);
    }
}
