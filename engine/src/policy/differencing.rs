//! The differencing check: an aggregate-only user's released groups are remembered, and a group
//! whose persons differ from earlier released groups by fewer than k persons is suppressed.
//!
//! Group-size suppression alone lets two large groups be subtracted: `count(*) WHERE ward = 'A'`
//! minus `count(*) WHERE ward = 'A' AND id <> 'X'` is X's count. For every group that passes the
//! size check, the engine computes the set of its entities (64-bit hashes of the entity key,
//! [`EntityHashes`]) and [`DifferencingCheck`] compares it with the groups this user was given
//! before (earlier queries and earlier groups of the same query).
//!
//! Invariants (tests: the differencing section of `tests/slt/policies.slt`, the `agg-differencing`
//! cases of the bypass suite, `tests/it/persistence.rs`):
//! - SECURITY: a group G is released only if, for every released group H, the symmetric
//!   difference `G Δ H` is empty or holds at least k persons (rule A: the difference of two
//!   aggregates is an aggregate over `G Δ H`); and if the released subsets of G leave either
//!   nothing or at least k persons of G uncovered, and the same holds for every released superset
//!   of G once G is added (rule B: a total minus its released subgroups is the suppressed rest).
//! - Released groups are written to the warehouse (`_kura/history/<user>/<seq>.bin`, one object per
//!   batch of groups) before the query gets them, and read back when the engine restarts.
//! - Fail closed: a history that cannot be read or written, or that is full ([`MAX_HASHES`]),
//!   makes the query fail; no group is released.
//! - Neither function is registered by name: no SQL can call them, and `EXPLAIN` prints their names
//!   only, never a hash.
//!
//! Limits (documented in the README): persons are compared, not rows, so two queries that keep
//! the same persons but differ in some rows of one of them (`AND NOT (id = 'X' AND year = 2024)`)
//! are not caught; combinations of three or more overlapping groups other than a set and its
//! released subsets are not analysed; whether a group is suppressed depends on the data, so it
//! can itself be an oracle (a group of known persons plus a candidate is released or not); the
//! history is per user, so colluding users are not compared; sums remain exposed to outliers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{Error, Result};

/// Entity hashes one user's history may hold (released sets and their uncovered parts, 8 bytes
/// each: 50 million is 400 MB). A full history refuses every further aggregate of that user until
/// an administrator archives `_kura/history/<user>/`.
pub(crate) const MAX_HASHES: usize = 50_000_000;

/// The name of [`DifferencingCheck`] in plans (its first argument is the group-size condition).
pub(crate) const CHECK_NAME: &str = "kura_differencing_check";

/// Under the warehouse: `_kura/history/<user>/<seq>.bin`.
const HISTORY_DIR: [&str; 2] = ["_kura", "history"];
const MAGIC: &[u8; 8] = b"KURAHIS1";

/// The hash of one entity key value: strings by their UTF-8 bytes, integers by their decimal
/// text (so `42` and `'42'` agree), other types by their text form.
fn hash_bytes(bytes: &[u8]) -> u64 {
    twox_hash::XxHash64::oneshot(0, bytes)
}

fn hashes_of(array: &ArrayRef, out: &mut HashSet<u64>) -> DFResult<()> {
    use datafusion::arrow::compute::cast;
    if matches!(array.data_type(), DataType::Binary | DataType::LargeBinary | DataType::BinaryView) {
        let binary = cast(array, &DataType::Binary)?;
        let binary = binary.as_any().downcast_ref::<BinaryArray>().expect("cast to Binary");
        out.extend(binary.iter().flatten().map(hash_bytes));
        return Ok(());
    }
    let text = cast(array, &DataType::Utf8)?;
    let text = text.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
    out.extend(text.iter().flatten().map(|s| hash_bytes(s.as_bytes())));
    Ok(())
}

fn encode(sorted: &[u64]) -> Vec<u8> {
    sorted.iter().flat_map(|h| h.to_le_bytes()).collect()
}

fn decode(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// `entity_hashes(key)`: the sorted, deduplicated 64-bit hashes of the entity keys of a group, as
/// Binary (little-endian). Hidden: added by the aggregation rule, never callable from SQL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct EntityHashes {
    signature: Signature,
}

impl EntityHashes {
    /// `entity_hashes(expr)` as an aggregate expression.
    pub(crate) fn call(expr: Expr) -> Expr {
        let udaf = AggregateUDF::from(Self { signature: Signature::any(1, Volatility::Immutable) });
        udaf.call(vec![expr])
    }
}

impl AggregateUDFImpl for EntityHashes {
    fn name(&self) -> &str {
        "kura_entity_hashes"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        Ok(Box::new(HashesAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "hashes"), DataType::Binary, true))])
    }
}

#[derive(Debug, Default)]
struct HashesAccumulator {
    hashes: HashSet<u64>,
}

impl HashesAccumulator {
    fn sorted(&self) -> ScalarValue {
        let mut sorted: Vec<u64> = self.hashes.iter().copied().collect();
        sorted.sort_unstable();
        ScalarValue::Binary(Some(encode(&sorted)))
    }
}

impl Accumulator for HashesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        hashes_of(&values[0], &mut self.hashes)
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(self.sorted())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.hashes.capacity() * 16
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![self.sorted()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let states = states[0]
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| DataFusionError::Internal("entity hashes state is not Binary".into()))?;
        for state in states.iter().flatten() {
            self.hashes.extend(decode(state));
        }
        Ok(())
    }
}

/// `differencing_check(size_ok, members_0, ...)`: true for the groups that may be released (their
/// size check holds and no entity set differences with the history are too small), which it
/// records. Volatile, so the optimiser neither folds, moves nor repeats it; it holds the querying
/// user's history, so it is never registered in a session.
#[derive(Debug)]
pub(crate) struct DifferencingCheck {
    signature: Signature,
    history: Arc<UserHistory>,
    /// The minimum group size of each entity set argument.
    ks: Vec<u64>,
}

impl DifferencingCheck {
    /// The predicate that keeps the groups with `size_ok` that pass the check, one `(members, k)`
    /// per entity set.
    pub(crate) fn call(history: Arc<UserHistory>, size_ok: Expr, members: Vec<(Expr, u64)>) -> Expr {
        let (members, ks): (Vec<Expr>, Vec<u64>) = members.into_iter().unzip();
        let udf = ScalarUDF::from(Self { signature: Signature::any(ks.len() + 1, Volatility::Volatile), history, ks });
        udf.call(std::iter::once(size_ok).chain(members).collect())
    }
}

impl PartialEq for DifferencingCheck {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.history, &other.history) && self.ks == other.ks
    }
}
impl Eq for DifferencingCheck {}
impl std::hash::Hash for DifferencingCheck {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.history.user.hash(state);
        self.ks.hash(state);
    }
}

impl ScalarUDFImpl for DifferencingCheck {
    fn name(&self) -> &str {
        CHECK_NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let size_ok = arrays[0]
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Internal("differencing check: size check is not Boolean".into()))?;
        let mut members = Vec::new();
        for array in &arrays[1..] {
            members.push(
                array
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| DataFusionError::Internal("differencing check: members are not Binary".into()))?,
            );
        }
        let groups: Vec<Option<Vec<(Vec<u64>, u64)>>> = (0..rows)
            .map(|row| {
                (size_ok.is_valid(row) && size_ok.value(row)).then(|| {
                    members
                        .iter()
                        .zip(&self.ks)
                        .map(|(m, k)| (if m.is_valid(row) { decode(m.value(row)) } else { vec![] }, *k))
                        .collect()
                })
            })
            .collect();
        let released = self.history.release(groups).map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(released))))
    }
}

/// The histories of every user of one warehouse (an engine holds one).
#[derive(Debug)]
pub(crate) struct Histories {
    store: Arc<dyn ObjectStore>,
    users: parking_lot::Mutex<HashMap<String, Arc<UserHistory>>>,
}

impl Histories {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, users: Default::default() }
    }

    /// The history of `user` (read from the warehouse on first use).
    pub(crate) fn of(&self, user: &str) -> Arc<UserHistory> {
        self.users
            .lock()
            .entry(user.to_string())
            .or_insert_with(|| {
                Arc::new(UserHistory { user: user.to_string(), store: self.store.clone(), state: Default::default() })
            })
            .clone()
    }
}

/// One user's released groups. The lock serialises the user's checks (and writes), so two
/// concurrent queries cannot both release halves of a difference.
pub(crate) struct UserHistory {
    user: String,
    store: Arc<dyn ObjectStore>,
    /// None until read from the warehouse (and again after a failed write, so that memory never
    /// holds a group the warehouse does not).
    state: parking_lot::Mutex<Option<Released>>,
}

impl std::fmt::Debug for UserHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserHistory").field("user", &self.user).finish_non_exhaustive()
    }
}

fn history_error(user: &str, what: impl std::fmt::Display) -> Error {
    Error::PermissionDenied(format!(
        "permission denied: the differencing check's history of user \"{user}\" {what}; no group was released"
    ))
}

impl UserHistory {
    fn dir(&self) -> Path {
        Path::from_iter(HISTORY_DIR.into_iter().chain([self.user.as_str()]))
    }

    /// Decides every group (None: failed its size check) in order, each against the history and
    /// the groups released before it, and stores the released ones before returning.
    fn release(&self, groups: Vec<Option<Vec<(Vec<u64>, u64)>>>) -> Result<Vec<bool>> {
        let mut guard = self.state.lock();
        if guard.is_none() {
            *guard = Some(blocking(self.load())??);
        }
        let state = guard.as_mut().expect("loaded above");
        let mut out = Vec::with_capacity(groups.len());
        let mut added = Vec::new();
        for group in groups {
            let Some(sets) = group else {
                out.push(false);
                continue;
            };
            let sets: Vec<(Vec<u64>, u64)> = sets.into_iter().filter(|(s, _)| !s.is_empty()).collect();
            let decisions: Option<Vec<Decision>> = sets.iter().map(|(s, k)| state.decide(s, *k)).collect();
            let Some(decisions) = decisions else {
                out.push(false);
                continue;
            };
            let growth: usize = sets.iter().zip(&decisions).map(|((s, _), d)| d.growth(s.len())).sum();
            if state.stored + growth > MAX_HASHES {
                return Err(history_error(&self.user, format_args!("is full ({MAX_HASHES} entity hashes)")));
            }
            for ((set, _), decision) in sets.into_iter().zip(decisions) {
                if let Some(set) = state.apply(set, decision) {
                    added.push(set);
                }
            }
            out.push(true);
        }
        if !added.is_empty() {
            let seq = state.next_seq;
            let path = self.dir().join(format!("{seq:020}.bin"));
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            let payload = PutPayload::from(Bytes::from(serialise(&added)));
            let store = self.store.clone();
            match blocking(async move { store.put_opts(&path, payload, opts).await }) {
                Ok(Ok(_)) => state.next_seq += 1,
                Ok(Err(e)) => {
                    // Memory now holds groups the warehouse does not: read it again next time.
                    *guard = None;
                    return Err(history_error(&self.user, format_args!("could not be written ({e})")));
                }
                Err(e) => {
                    *guard = None;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Reads every stored batch of released groups, in order.
    async fn load(&self) -> Result<Released> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self
            .store
            .list(Some(&self.dir()))
            .try_collect()
            .await
            .map_err(|e| history_error(&self.user, format_args!("could not be listed ({e})")))?;
        let mut objects: Vec<(u64, Path)> = Vec::new();
        for meta in listed {
            let seq = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".bin"))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| history_error(&self.user, format_args!("holds an unknown object {}", meta.location)))?;
            objects.push((seq, meta.location));
        }
        objects.sort();
        let mut released = Released::default();
        for (seq, path) in objects {
            let bytes = async { self.store.get(&path).await?.bytes().await }
                .await
                .map_err(|e| history_error(&self.user, format_args!("could not be read ({e})")))?;
            let sets = deserialise(&bytes)
                .ok_or_else(|| history_error(&self.user, format_args!("has a damaged object {path}")))?;
            for set in sets {
                let decision = released.decide(&set, 0).expect("k = 0 refuses nothing");
                released.apply(set, decision);
            }
            released.next_seq = seq + 1;
        }
        Ok(released)
    }
}

fn serialise(sets: &[Arc<[u64]>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend((sets.len() as u64).to_le_bytes());
    for set in sets {
        out.extend((set.len() as u64).to_le_bytes());
        out.extend(encode(set));
    }
    out
}

fn deserialise(bytes: &[u8]) -> Option<Vec<Vec<u64>>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (count, mut rest) = rest.split_at_checked(8)?;
    let count = u64::from_le_bytes(count.try_into().ok()?);
    let mut sets = Vec::new();
    for _ in 0..count {
        let (len, tail) = rest.split_at_checked(8)?;
        let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
        let (set, tail) = tail.split_at_checked(len.checked_mul(8)?)?;
        sets.push(decode(set));
        rest = tail;
    }
    rest.is_empty().then_some(sets)
}

/// Runs `future` to completion from synchronous code (a function's invoke). On a multi-threaded
/// runtime (servers, the CLI) the worker blocks in place; elsewhere (single-threaded tests) a
/// helper thread with a runtime of its own runs it.
fn blocking<T: Send>(future: impl Future<Output = T> + Send) -> Result<T> {
    if let Ok(handle) = tokio::runtime::Handle::try_current()
        && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return Ok(tokio::task::block_in_place(|| handle.block_on(future)));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                Ok(runtime.block_on(future))
            })
            .join()
    })
    .map_err(|_| Error::Invalid("the differencing check's storage thread failed".into()))?
    .map_err(|e: std::io::Error| Error::Invalid(format!("the differencing check cannot start a runtime: {e}")))
}

/// What releasing a set would change.
#[derive(Debug)]
enum Decision {
    /// The same set was released before: nothing changes.
    Known,
    /// A new set: its part not covered by released subsets, and the new uncovered parts of the
    /// released supersets it shrinks.
    New { uncovered: Vec<u64>, supersets: Vec<(usize, Vec<u64>)> },
}

impl Decision {
    /// Entity hashes releasing a set of `len` would add (the set and its uncovered part;
    /// supersets only shrink).
    fn growth(&self, len: usize) -> usize {
        match self {
            Decision::Known => 0,
            Decision::New { uncovered, .. } => len + uncovered.len(),
        }
    }
}

/// The released sets of one user, indexed by size.
#[derive(Debug, Default)]
struct Released {
    sets: Vec<Arc<[u64]>>,
    /// Per set: the persons no released subset of it covers.
    uncovered: Vec<Vec<u64>>,
    by_size: BTreeMap<usize, Vec<usize>>,
    /// Content hash -> sets with that content (to find an identical set quickly).
    by_content: HashMap<u64, Vec<usize>>,
    /// Entity hashes held (sets and uncovered parts).
    stored: usize,
    next_seq: u64,
}

fn content_hash(set: &[u64]) -> u64 {
    hash_bytes(&encode(set))
}

/// `|a Δ b|` of two sorted sets, counted up to `limit`.
fn symmetric_difference(a: &[u64], b: &[u64], limit: usize) -> usize {
    let (mut i, mut j, mut d) = (0, 0, 0);
    while i < a.len() && j < b.len() && d < limit {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                d += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                d += 1;
                j += 1;
            }
        }
    }
    d + (a.len() - i) + (b.len() - j)
}

/// Whether sorted `small` is a subset of sorted `large`; a few sampled members first, so most
/// sets that are not are rejected in logarithmic time.
fn is_subset(small: &[u64], large: &[u64]) -> bool {
    if small.len() > large.len() {
        return false;
    }
    let step = (small.len() / 4).max(1);
    if small.iter().step_by(step).any(|h| large.binary_search(h).is_err()) {
        return false;
    }
    small.iter().all(|h| large.binary_search(h).is_ok())
}

/// `a \ b` of two sorted sets.
fn minus(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().copied().filter(|h| b.binary_search(h).is_err()).collect()
}

impl Released {
    /// Whether `set` may be released for minimum group size `k` (None: refused), and what it
    /// would change.
    fn decide(&self, set: &[u64], k: u64) -> Option<Decision> {
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        let small = |n: usize| n > 0 && n < k;
        if let Some(same) = self.by_content.get(&content_hash(set))
            && same.iter().any(|&i| *self.sets[i] == *set)
        {
            return Some(Decision::Known);
        }
        // Rule A: a released set whose difference from this one holds 1..k-1 persons. Only sets
        // whose size differs by less than k can be that close.
        let window = set.len().saturating_sub(k.saturating_sub(1))..=set.len().saturating_add(k.saturating_sub(1));
        for indices in self.by_size.range(window).map(|(_, v)| v) {
            if indices.iter().any(|&i| small(symmetric_difference(set, &self.sets[i], k))) {
                return None;
            }
        }
        // Rule B: released subsets must leave nothing or at least k persons of this set, and
        // this set must leave nothing or at least k uncovered persons of each released superset.
        let mut covered = vec![false; set.len()];
        let mut supersets = Vec::new();
        for (&size, indices) in &self.by_size {
            for &i in indices {
                let other = &self.sets[i];
                if size < set.len() && is_subset(other, set) {
                    for h in other.iter() {
                        if let Ok(p) = set.binary_search(h) {
                            covered[p] = true;
                        }
                    }
                } else if size > set.len() && is_subset(set, other) {
                    let left = minus(&self.uncovered[i], set);
                    if small(left.len()) {
                        return None;
                    }
                    supersets.push((i, left));
                }
            }
        }
        let uncovered: Vec<u64> = set.iter().zip(&covered).filter(|(_, c)| !**c).map(|(h, _)| *h).collect();
        if small(uncovered.len()) {
            return None;
        }
        Some(Decision::New { uncovered, supersets })
    }

    /// Records a decided set; returns it if it is new (to be written).
    fn apply(&mut self, set: Vec<u64>, decision: Decision) -> Option<Arc<[u64]>> {
        let Decision::New { uncovered, supersets } = decision else { return None };
        for (i, left) in supersets {
            self.stored -= self.uncovered[i].len() - left.len();
            self.uncovered[i] = left;
        }
        let set: Arc<[u64]> = set.into();
        let index = self.sets.len();
        self.stored += set.len() + uncovered.len();
        self.by_size.entry(set.len()).or_default().push(index);
        self.by_content.entry(content_hash(&set)).or_default().push(index);
        self.sets.push(set.clone());
        self.uncovered.push(uncovered);
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> Vec<u64> {
        let mut v = ids.to_vec();
        v.sort_unstable();
        v
    }

    fn release(r: &mut Released, ids: &[u64], k: u64) -> bool {
        match r.decide(&set(ids), k) {
            Some(d) => {
                r.apply(set(ids), d);
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_difference_of_fewer_than_k_persons_is_refused() {
        let mut r = Released::default();
        assert!(release(&mut r, &[1, 2, 3, 4, 5], 3));
        assert!(!release(&mut r, &[1, 2, 3, 4], 3), "subset, one person less");
        assert!(!release(&mut r, &[1, 2, 3, 4, 9], 3), "one person swapped");
        assert!(release(&mut r, &[1, 2, 3, 4, 5], 3), "the same set again");
        assert!(release(&mut r, &[6, 7, 8], 3), "disjoint");
        assert!(release(&mut r, &[1, 2, 6, 7, 8, 9], 3), "far enough from all");
    }

    #[test]
    fn a_total_minus_released_subgroups_must_not_leave_a_small_rest() {
        let mut r = Released::default();
        assert!(release(&mut r, &[1, 2, 3, 4], 3));
        assert!(release(&mut r, &[5, 6, 7, 8], 3));
        assert!(!release(&mut r, &[1, 2, 3, 4, 5, 6, 7, 8, 9], 3), "the rest is person 9");
        // The other order: the total first, then the subgroups.
        let mut r = Released::default();
        assert!(release(&mut r, &[1, 2, 3, 4, 5, 6, 7, 8, 9], 3));
        assert!(release(&mut r, &[1, 2, 3, 4], 3));
        assert!(!release(&mut r, &[5, 6, 7, 8], 3), "the rest would be person 9");
        assert!(release(&mut r, &[5, 6, 7, 8, 9], 3), "the whole rest is fine");
    }

    #[test]
    fn stored_batches_read_back() {
        let sets: Vec<Arc<[u64]>> = vec![Arc::from(vec![1, 2, 3]), Arc::from(vec![])];
        let back = deserialise(&serialise(&sets)).unwrap();
        assert_eq!(back, vec![vec![1, 2, 3], vec![]]);
        assert!(deserialise(&serialise(&sets)[..20]).is_none());
    }

    #[test]
    fn integers_and_their_text_hash_alike() {
        let mut a = HashSet::new();
        let mut b = HashSet::new();
        hashes_of(&(Arc::new(datafusion::arrow::array::Int64Array::from(vec![42])) as ArrayRef), &mut a).unwrap();
        hashes_of(&(Arc::new(StringArray::from(vec!["42"])) as ArrayRef), &mut b).unwrap();
        assert_eq!(a, b);
    }
}
