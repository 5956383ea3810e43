//! Clustering accepted pairs into persons, under constraints.
//!
//! Pairs are taken strongest first (deterministic passes, then by match weight; ties by record
//! index, so the order is fixed). Two clusters merge unless:
//! - they hold two different keys of a source whose keys are unique (cannot-link),
//! - an operator said two of their keys are different people,
//! - together they would be active long after a recorded death,
//! - or, for a probabilistic pair joining two clusters of several records each, fewer than half
//!   of the smaller cluster's records have an accepted pair into the other: one weak link does not
//!   chain two people together.

use rustc_hash::FxHashMap;

use crate::data::{Dataset, NONE, max_opt, min_opt};

/// An accepted or grey-zone pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    /// Records (a < b).
    pub a: u32,
    pub b: u32,
    /// Match weight (log2-odds).
    pub weight: f32,
    /// Deterministic pass that accepted it, or [`PROBABILISTIC`].
    pub pass: u8,
    /// The rule (deterministic passes first, then blocking rules) that compared it.
    pub rule: u8,
}

/// `Edge::pass` of a pair accepted by its match weight.
pub const PROBABILISTIC: u8 = u8::MAX;

/// Why merges were refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Refusals {
    /// Two keys of a source with unique keys.
    pub cannot_link: u64,
    /// An operator's cannot-link decision.
    pub operator: u64,
    /// Activity after a recorded death.
    pub impossible_history: u64,
    /// A weak single link between two multi-record clusters.
    pub weak_chain: u64,
}

struct Clusters {
    parent: Vec<u32>,
    members: Vec<Vec<u32>>,
    /// Per root: (source, entry) of records from sources with unique keys, sorted.
    unique: Vec<Vec<(u16, u32)>>,
    /// Per root: (last seen, death).
    history: Vec<(Option<i32>, Option<i32>)>,
    /// Per root: entries in it that carry operator cannot-link decisions.
    operator_entries: Vec<Vec<u32>>,
}

impl Clusters {
    fn new(ds: &Dataset, cannot: &FxHashMap<u32, Vec<u32>>) -> Self {
        let n = ds.records();
        let mut operator_entries = vec![Vec::new(); n];
        for &(e, r) in &ds.entry_records {
            if cannot.contains_key(&e) {
                operator_entries[r as usize].push(e);
            }
        }
        Self {
            parent: (0..n as u32).collect(),
            members: (0..n as u32).map(|r| vec![r]).collect(),
            unique: (0..n)
                .map(|r| match ds.rec_entry[r] {
                    NONE => Vec::new(),
                    e => vec![(ds.rec_source[r], e)],
                })
                .collect(),
            history: ds.rec_history.iter().map(|h| (h.last_seen, h.death)).collect(),
            operator_entries,
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return ra;
        }
        let (big, small) = if self.members[ra as usize].len() >= self.members[rb as usize].len() { (ra, rb) } else { (rb, ra) };
        self.parent[small as usize] = big;
        let m = std::mem::take(&mut self.members[small as usize]);
        self.members[big as usize].extend(m);
        let u = std::mem::take(&mut self.unique[small as usize]);
        if !u.is_empty() {
            let big_u = &mut self.unique[big as usize];
            big_u.extend(u);
            big_u.sort_unstable();
            big_u.dedup();
        }
        let o = std::mem::take(&mut self.operator_entries[small as usize]);
        self.operator_entries[big as usize].extend(o);
        let (hs, hb) = (self.history[small as usize], self.history[big as usize]);
        self.history[big as usize] = (max_opt(hs.0, hb.0), min_opt(hs.1, hb.1));
        big
    }

    /// Two different entries of one unique-key source across clusters `ra` and `rb`.
    fn unique_conflict(&self, ra: u32, rb: u32) -> bool {
        let (x, y) = (&self.unique[ra as usize], &self.unique[rb as usize]);
        x.iter().any(|&(s, e)| y.iter().any(|&(t, f)| s == t && e != f))
    }

    fn operator_conflict(&mut self, ra: u32, rb: u32, cannot: &FxHashMap<u32, Vec<u32>>, entry_record: &FxHashMap<u32, u32>) -> bool {
        let entries = self.operator_entries[ra as usize].clone();
        for e in entries {
            for other in cannot.get(&e).into_iter().flatten() {
                if let Some(&r) = entry_record.get(other) {
                    if self.find(r) == rb {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Clusters records. `edges` are sorted strongest first; `accepted` marks which of them are
/// accepted (the rest are grey-zone pairs, kept for support counting only when accepted).
/// `must` are record pairs known to be one person, `cannot` maps an entry to entries an operator
/// said are different people (symmetric). Returns per record its cluster's smallest record index.
pub(crate) fn cluster(
    ds: &Dataset,
    edges: &[Edge],
    accepted: &[bool],
    must: &[(u32, u32)],
    cannot: &FxHashMap<u32, Vec<u32>>,
    death_grace_days: i32,
    merges: &mut [u64],
    refusals: &mut Refusals,
) -> Vec<u32> {
    let n = ds.records();
    let mut c = Clusters::new(ds, cannot);
    for &(a, b) in must {
        c.union(a, b);
    }
    // One record of each entry under an operator's cannot-link, to find its cluster.
    let mut entry_record: FxHashMap<u32, u32> = FxHashMap::default();
    for &(e, r) in &ds.entry_records {
        if cannot.contains_key(&e) {
            entry_record.entry(e).or_insert(r);
        }
    }
    // Accepted pairs per record, both ways, for support counting.
    let mut start = vec![0u32; n + 1];
    for (e, _) in edges.iter().zip(accepted).filter(|(_, a)| **a) {
        start[e.a as usize + 1] += 1;
        start[e.b as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut adj = vec![0u32; start[n] as usize];
    let mut fill = start.clone();
    for (e, _) in edges.iter().zip(accepted).filter(|(_, a)| **a) {
        adj[fill[e.a as usize] as usize] = e.b;
        fill[e.a as usize] += 1;
        adj[fill[e.b as usize] as usize] = e.a;
        fill[e.b as usize] += 1;
    }
    for (e, _) in edges.iter().zip(accepted).filter(|(_, a)| **a) {
        let (ra, rb) = (c.find(e.a), c.find(e.b));
        if ra == rb {
            continue;
        }
        if c.unique_conflict(ra, rb) {
            refusals.cannot_link += 1;
            continue;
        }
        if !cannot.is_empty() && (c.operator_conflict(ra, rb, cannot, &entry_record) || c.operator_conflict(rb, ra, cannot, &entry_record)) {
            refusals.operator += 1;
            continue;
        }
        let (ha, hb) = (c.history[ra as usize], c.history[rb as usize]);
        let (last, death) = (max_opt(ha.0, hb.0), min_opt(ha.1, hb.1));
        if let (Some(l), Some(d)) = (last, death) {
            if l > d + death_grace_days {
                refusals.impossible_history += 1;
                continue;
            }
        }
        let (sa, sb) = (c.members[ra as usize].len(), c.members[rb as usize].len());
        if e.pass == PROBABILISTIC && sa >= 2 && sb >= 2 {
            let (small, other) = if sa <= sb { (ra, rb) } else { (rb, ra) };
            let need = sa.min(sb).div_ceil(2);
            let members = c.members[small as usize].clone();
            let mut supported = 0usize;
            for r in members {
                let linked = adj[start[r as usize] as usize..start[r as usize + 1] as usize].to_vec();
                if linked.into_iter().any(|o| c.find(o) == other) {
                    supported += 1;
                    if supported >= need {
                        break;
                    }
                }
            }
            if supported < need {
                refusals.weak_chain += 1;
                continue;
            }
        }
        c.union(ra, rb);
        let slot = if e.pass == PROBABILISTIC { merges.len() - 1 } else { e.pass as usize };
        merges[slot] += 1;
    }
    let mut smallest = vec![NONE; n];
    for r in 0..n as u32 {
        let root = c.find(r) as usize;
        if smallest[root] == NONE {
            smallest[root] = r;
        }
    }
    (0..n as u32).map(|r| smallest[c.find(r) as usize]).collect()
}
