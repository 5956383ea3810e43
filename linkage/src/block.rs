//! Blocking: which record pairs are compared at all, shared out over threads.
//!
//! Each rule gives every record a key (a hash of the key parts' values). Records with equal keys
//! are compared pairwise. A pair that an earlier rule already produced is skipped, so that every
//! pair is compared once; pairs known to be one person (one source key) or never one person (two
//! keys of a source whose keys are unique) are not compared.

use std::hash::Hasher;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::FxHasher;

use crate::data::{Dataset, NONE};
use crate::spec::{Comparator, KeyPart, Settings};

/// A rule's keys: `keys[r]` is record `r`'s key, 0 when it has none.
pub(crate) struct RuleKeys {
    pub keys: Vec<u64>,
    /// (key, record) with a key, sorted.
    pub sorted: Vec<(u64, u32)>,
}

/// Blocks of every rule, and what was skipped.
pub(crate) struct Blocking {
    pub rules: Vec<RuleKeys>,
    /// Per record: the group of records known to be one person (shared source keys).
    pub group: Vec<u32>,
    /// Per rule: blocks skipped for being larger than `max_block_size`, and their records.
    pub skipped: Vec<(u64, u64)>,
    /// When set, only pairs with at least one record marked here are compared (a linkage of
    /// new keys into earlier persons).
    pub only_new: Option<Vec<bool>>,
    tasks: Vec<Task>,
}

#[derive(Clone, Copy)]
struct Task {
    rule: usize,
    start: usize,
    end: usize,
}

fn part_value(ds: &Dataset, settings: &Settings, part: &KeyPart, r: usize) -> Option<u64> {
    let f = settings.field_index(part.field())?;
    let col = &ds.columns[f];
    let id = col.ids[r];
    if id == NONE {
        return None;
    }
    Some(match part {
        KeyPart::Value(_) => id as u64,
        KeyPart::Year(_) => (id / 10000) as u64,
        KeyPart::Prefix(_, n) => {
            if col.comparator == Comparator::Date {
                let digits = (*n).min(8) as u32;
                (id / 10u32.pow(8 - digits)) as u64
            } else {
                let mut h = FxHasher::default();
                for c in col.values[id as usize].chars().take(*n) {
                    h.write_u32(c as u32);
                }
                h.finish()
            }
        }
    })
}

/// The blocks of a sorted (key, record) list: runs of one key.
fn blocks(sorted: &[(u64, u32)]) -> impl Iterator<Item = &[(u64, u32)]> {
    sorted.chunk_by(|x, y| x.0 == y.0)
}

/// Final mix (splitmix64) so that FxHash's weak low bits do not cluster keys.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Blocking {
    /// Keys and blocks for `rules` (deterministic passes first, then blocking rules).
    pub fn new(ds: &Dataset, settings: &Settings, rules: &[Vec<KeyPart>], group: Vec<u32>) -> Self {
        let n = ds.records();
        let mut out = Vec::with_capacity(rules.len());
        let mut skipped = Vec::with_capacity(rules.len());
        let mut tasks = Vec::new();
        for (ri, parts) in rules.iter().enumerate() {
            let mut keys = vec![0u64; n];
            let mut sorted = Vec::with_capacity(n);
            'rec: for (r, key) in keys.iter_mut().enumerate() {
                let mut h = FxHasher::default();
                h.write_usize(ri);
                for (pi, p) in parts.iter().enumerate() {
                    match part_value(ds, settings, p, r) {
                        Some(v) => {
                            h.write_usize(pi);
                            h.write_u64(v);
                        }
                        None => continue 'rec,
                    }
                }
                *key = mix(h.finish()).max(1);
                sorted.push((*key, r as u32));
            }
            sorted.sort_unstable();
            // Tasks of about 200k pairs each, whole blocks only.
            let (mut skip_blocks, mut skip_records) = (0u64, 0u64);
            let mut task_start = 0usize;
            let mut task_pairs = 0u64;
            let mut i = 0usize;
            for block in blocks(&sorted) {
                let (size, j) = (block.len(), i + block.len());
                if size > settings.max_block_size {
                    // Not compared here, so later rules must not take the pairs as done.
                    for &(_, r) in block {
                        keys[r as usize] = 0;
                    }
                    skip_blocks += 1;
                    skip_records += size as u64;
                    if task_start < i {
                        tasks.push(Task { rule: ri, start: task_start, end: i });
                    }
                    task_start = j;
                    task_pairs = 0;
                } else {
                    task_pairs += (size * (size - 1) / 2) as u64;
                    if task_pairs >= 200_000 {
                        tasks.push(Task { rule: ri, start: task_start, end: j });
                        task_start = j;
                        task_pairs = 0;
                    }
                }
                i = j;
            }
            if task_start < sorted.len() {
                tasks.push(Task { rule: ri, start: task_start, end: sorted.len() });
            }
            skipped.push((skip_blocks, skip_records));
            out.push(RuleKeys { keys, sorted });
        }
        Self { rules: out, group, skipped, only_new: None, tasks }
    }

    /// Pairs that rules below `rules` would produce in their blocks, before deduplication.
    pub fn candidate_pairs(&self, rules: usize) -> u64 {
        self.tasks
            .iter()
            .filter(|t| t.rule < rules)
            .flat_map(|t| blocks(&self.rules[t.rule].sorted[t.start..t.end]))
            .map(|b| {
                let n = b.len() as u64;
                match &self.only_new {
                    None => n * (n - 1) / 2,
                    Some(new) => {
                        let k = b.iter().filter(|x| new[x.1 as usize]).count() as u64;
                        k * (n - k) + k * k.saturating_sub(1) / 2
                    }
                }
            })
            .sum()
    }

    /// Whether no rule before `rule` produces the pair (so `rule` is the one that compares it).
    pub fn first_rule(&self, rule: usize, a: u32, b: u32) -> bool {
        !self.rules[..rule].iter().any(|e| {
            let k = e.keys[a as usize];
            k != 0 && k == e.keys[b as usize]
        })
    }

    /// Calls `visit(state, rule, a, b)` for every pair to compare (a < b), on `threads` threads.
    /// With `dedup`, a pair an earlier rule produced is skipped (scoring compares each pair
    /// once); without, every rule sees all its pairs (training: a rule's pairs must not be
    /// biased towards disagreeing on earlier rules' keys). Returns one state per task, in a fixed
    /// order (so merging them is deterministic).
    /// Only rules below `rules` are scanned.
    pub fn scan<S: Send>(
        &self,
        ds: &Dataset,
        threads: usize,
        dedup: bool,
        rules: usize,
        make: impl Fn() -> S + Sync,
        visit: impl Fn(&mut S, usize, u32, u32) + Sync,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Vec<S> {
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, S)> = Vec::with_capacity(self.tasks.len());
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let t = next.fetch_add(1, Ordering::Relaxed);
                            let Some(task) = self.tasks.get(t) else { break };
                            if task.rule >= rules {
                                continue;
                            }
                            let mut state = make();
                            let pairs = self.run_task(ds, *task, dedup, &mut state, &visit);
                            progress(pairs);
                            done.push((t, state));
                        }
                        done
                    })
                })
                .collect();
            for w in workers {
                results.extend(w.join().expect("a linkage worker panicked"));
            }
        });
        results.sort_by_key(|(t, _)| *t);
        results.into_iter().map(|(_, s)| s).collect()
    }

    fn run_task<S>(&self, ds: &Dataset, task: Task, dedup: bool, state: &mut S, visit: &impl Fn(&mut S, usize, u32, u32)) -> u64 {
        let rule = &self.rules[task.rule];
        let mut seen = 0u64;
        for block in blocks(&rule.sorted[task.start..task.end]) {
            if let Some(new) = &self.only_new {
                if !block.iter().any(|x| new[x.1 as usize]) {
                    continue;
                }
            }
            for (x, &(_, a)) in block.iter().enumerate() {
                for &(_, b) in &block[x + 1..] {
                    if let Some(new) = &self.only_new {
                        if !new[a as usize] && !new[b as usize] {
                            continue;
                        }
                    }
                    seen += 1;
                    if self.group[a as usize] == self.group[b as usize] || ds.cannot_link(a, b) {
                        continue;
                    }
                    if dedup && !self.first_rule(task.rule, a, b) {
                        continue;
                    }
                    visit(state, task.rule, a, b);
                }
            }
        }
        seen
    }
}
