//! # kura-linkage: research-ID linkage (名寄せ, "name gathering")
//!
//! Finds which records of hospitals, claims, checkups, care and the resident register are one
//! person: deterministic passes on exact keys, then probabilistic matching in the Fellegi-Sunter
//! model (u from random pairs, m by EM, term-frequency adjustment), then clustering under
//! constraints (cannot-link keys, operator decisions, impossible histories, no chaining through
//! one weak link). The result is a function of the data and the settings: the same records in any
//! order and with any thread count give the same persons.
//!
//! ## What this crate owns, and what it must not do
//! It owns the linkage algorithm, kana name normalisation and the rule that keeps research IDs
//! stable across linkages. It does no I/O and knows nothing of tables or SQL (the engine reads
//! the sources and persists the IDs), and it never logs a compared value.
//!
//! ```
//! use kura_linkage::{BlockingRule, Comparator, DatasetBuilder, Field, History, Settings, SourcePolicy, link};
//! let settings = Settings::new(
//!     vec![Field::new("name", Comparator::Name), Field::new("birth", Comparator::Date)],
//!     vec![vec!["name".into(), "birth".into()]],
//!     vec![BlockingRule::on(&["birth"])],
//! );
//! let mut b = DatasetBuilder::new(&settings)?;
//! let reg = b.source("register", SourcePolicy { unique_keys: true })?;
//! let claims = b.source("claims", SourcePolicy::default())?;
//! b.push(reg, "A1", &[Some("ヤマダ タロウ"), Some("1975-04-12")], History::default())?;
//! b.push(claims, "K9", &[Some("ﾔﾏﾀﾞ ﾀﾛｳ"), Some("19750412")], History::default())?;
//! let linkage = link(b.finish(), &settings, &Default::default(), &kura_linkage::NoProgress)?;
//! assert_eq!(linkage.report.persons, 1);
//! # Ok::<(), kura_linkage::Error>(())
//! ```

mod block;
mod cluster;
mod compare;
mod data;
mod eval;
mod ids;
pub mod kana;
mod model;
mod spec;

use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;

pub use cluster::{Edge, PROBABILISTIC, Refusals};
pub use compare::{date_typo, jaro_winkler, one_edit};
pub use data::{Dataset, DatasetBuilder, EntryKey, History, SourcePolicy, days_from_yyyymmdd, parse_date};
pub use eval::{Quality, pairwise_quality};
pub use ids::{Assignment, IdChange, assign_ids};
pub use model::{Model, probability};

pub use spec::{BlockingRule, Comparator, EXACT, Field, KeyPart, MISSING, Settings};

use block::Blocking;
use data::NONE;
use model::{Scorer, level_of, pattern};

/// Errors of a linkage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot work.
    #[error("linkage settings: {0}")]
    Settings(String),
    /// A row or decision cannot be used.
    #[error("linkage input: {0}")]
    Input(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a long linkage reports progress (the CLI draws a bar; the default does nothing).
pub trait Progress: Sync {
    /// A new stage with `total` units of work.
    fn stage(&self, name: &str, total: u64);
    /// `n` more units done.
    fn advance(&self, n: u64);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// An operator's decisions on pairs of keys; they hold on every re-run.
#[derive(Clone, Debug, Default)]
pub struct Decisions {
    /// Keys that are one person.
    pub must_link: Vec<(EntryKey, EntryKey)>,
    /// Keys that are different people.
    pub cannot_link: Vec<(EntryKey, EntryKey)>,
}

/// What a linkage did, for the quality report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Rows pushed, distinct keys (entries), distinct identity profiles compared (records).
    pub rows: u64,
    pub entries: u64,
    pub records: u64,
    /// Pairs in all blocks before removing those already compared by an earlier rule.
    pub candidate_pairs: u64,
    /// Pairs compared, per rule (deterministic passes first).
    pub pairs_compared: Vec<(String, u64)>,
    /// Blocks skipped for their size, per rule: (rule, blocks, records).
    pub blocks_skipped: Vec<(String, u64, u64)>,
    /// Accepted pairs per pass (deterministic passes, then "probabilistic").
    pub matches_per_pass: Vec<(String, u64)>,
    /// Merges of clusters per pass.
    pub merges_per_pass: Vec<(String, u64)>,
    /// Pairs dropped because their histories cannot be one person.
    pub impossible_pairs: u64,
    /// Uncertain pairs left for review: between the review and match thresholds, not linked,
    /// and stronger than the best accepted pair of one of their records.
    pub grey_zone: u64,
    /// Merges refused by constraints.
    pub refusals: Refusals,
    /// Persons found.
    pub persons: u64,
    /// Model-based estimates over the pairs linked, and those left apart above the review
    /// threshold (pairs below it count as non-matches): expected true links over links, and
    /// over expected true links plus expected matches left apart. Deterministic passes count
    /// one minus their expected share of chance agreements.
    pub estimated_precision: f64,
    pub estimated_recall: f64,
    /// Values taken as missing because they could not be read, per field.
    pub invalid_values: Vec<(String, u64)>,
    /// Wall time, and comparisons per second (training compares each rule's pairs, scoring each
    /// pair once).
    pub seconds: f64,
    pub comparisons_per_second: f64,
    pub threads: usize,
    /// For a linkage of new keys only: records that had no research ID before, and whether the
    /// earlier model was reused (else it was fitted again).
    pub new_records: Option<u64>,
    pub model_reused: bool,
}

/// What a linkage of new keys only ([`link_new`]) keeps from the one before.
#[derive(Clone, Debug, Default)]
pub struct Previous {
    /// Each key linked before, with its research ID.
    pub ids: FxHashMap<EntryKey, i64>,
    /// The model fitted then; fitted again when missing or made for other settings.
    pub model: Option<Model>,
}

/// One field's part of a pair's match weight.
#[derive(Clone, Debug, Serialize)]
pub struct FieldWeight {
    pub field: String,
    pub level: &'static str,
    pub left: Option<String>,
    pub right: Option<String>,
    pub weight: f64,
}

/// The result of a linkage.
pub struct Linkage {
    pub dataset: Dataset,
    pub settings: Settings,
    pub model: Model,
    /// Per record: its person (0-based, numbered in record order).
    pub record_person: Vec<u32>,
    /// Accepted pairs (strongest first).
    pub accepted: Vec<Edge>,
    /// Grey-zone pairs whose records were not linked.
    pub review: Vec<Edge>,
    pub report: Report,
}

impl Linkage {
    /// Every entry (source key) with its person.
    pub fn entry_persons(&self) -> Vec<(EntryKey, u32)> {
        let mut out: Vec<(EntryKey, u32)> = Vec::with_capacity(self.dataset.entries());
        let mut last = NONE;
        for &(e, r) in &self.dataset.entry_records {
            if e != last {
                out.push((self.dataset.entry(e), self.record_person[r as usize]));
                last = e;
            }
        }
        out
    }

    /// One entry (source key) of record `r`: the smallest key holding it.
    pub fn record_entry(&self, r: u32) -> EntryKey {
        self.dataset.entry(self.dataset.rec_first_entry[r as usize])
    }

    /// Per field, how the records of `edge` compare and what it weighs.
    pub fn explain(&self, edge: &Edge) -> Vec<FieldWeight> {
        let (a, b, rule) = (edge.a, edge.b, edge.rule as usize);
        let scorer = scorer(&self.dataset, &self.settings, &self.model);
        let p = pattern(&self.dataset, a, b);
        self.settings
            .fields
            .iter()
            .enumerate()
            .map(|(f, field)| {
                let l = level_of(p, f);
                FieldWeight {
                    field: field.name.clone(),
                    level: field.comparator.levels()[l as usize],
                    left: self.dataset.display(f, a),
                    right: self.dataset.display(f, b),
                    weight: scorer.field_weight(rule, f, l, a),
                }
            })
            .collect()
    }
}

fn scorer<'a>(ds: &'a Dataset, settings: &Settings, model: &'a Model) -> Scorer<'a> {
    Scorer {
        ds,
        model,
        tf: settings.fields.iter().map(|f| f.term_frequency).collect(),
        birth: settings.birth_field.as_deref().and_then(|b| settings.field_index(b)),
        death_grace_days: settings.death_grace_days,
    }
}

/// Record pairs known to be one person (they share a source key), and each record's group.
/// u from random pairs, then m and the prior by EM on each rule's comparison vectors. Returns
/// the model and the comparisons made.
fn fit(
    ds: &Dataset,
    settings: &Settings,
    blocking: &Blocking,
    rules: &[Vec<KeyPart>],
    blocked: &[Vec<bool>],
    threads: usize,
    progress: &dyn Progress,
) -> (Model, u64) {
    let u = model::estimate_u(ds, settings, &blocking.group);
    progress.stage("linkage: training (comparisons)", blocking.candidate_pairs(rules.len()));
    let advance = |n: u64| progress.advance(n);
    // Each rule trains on all its pairs (scoring then compares each pair once).
    let hists = blocking.scan(
        ds,
        threads,
        false,
        rules.len(),
        || vec![FxHashMap::<u64, u64>::default(); rules.len()],
        |h, rule, a, b| *h[rule].entry(pattern(ds, a, b)).or_default() += 1,
        &advance,
    );
    let mut merged = vec![FxHashMap::<u64, u64>::default(); rules.len()];
    for h in hists {
        for (r, h) in h.into_iter().enumerate() {
            for (p, c) in h {
                *merged[r].entry(p).or_default() += c;
            }
        }
    }
    let sorted = |h: FxHashMap<u64, u64>| {
        let mut v: Vec<(u64, f64)> = h.into_iter().map(|(p, c)| (p, c as f64)).collect();
        v.sort_unstable_by_key(|x| x.0);
        v
    };
    let trained: u64 = merged.iter().flat_map(|h| h.values()).sum();
    let hist: Vec<Vec<(u64, f64)>> = merged.into_iter().map(sorted).collect();
    let train: Vec<bool> = settings
        .deterministic
        .iter()
        .map(|_| true)
        .chain(settings.blocking.iter().map(|r| r.train))
        .chain(settings.training.iter().map(|_| true))
        .collect();
    let model = Model::fit(u, &hist, blocked, &train, settings.em_iterations);
    (model, trained)
}

fn known_groups(ds: &Dataset) -> (Vec<(u32, u32)>, Vec<u32>) {
    let n = ds.records();
    let mut group: Vec<u32> = (0..n as u32).collect();
    fn find(g: &mut [u32], mut x: u32) -> u32 {
        while g[x as usize] != x {
            g[x as usize] = g[g[x as usize] as usize];
            x = g[x as usize];
        }
        x
    }
    let mut must = Vec::new();
    let mut i = 0;
    let er = &ds.entry_records;
    while i < er.len() {
        let mut j = i + 1;
        while j < er.len() && er[j].0 == er[i].0 {
            let (a, b) = (find(&mut group, er[i].1), find(&mut group, er[j].1));
            if a != b {
                group[a.max(b) as usize] = a.min(b);
                must.push((er[i].1, er[j].1));
            }
            j += 1;
        }
        i = j;
    }
    for r in 0..n as u32 {
        let root = find(&mut group, r);
        group[r as usize] = root;
    }
    (must, group)
}

/// Links `ds`: deterministic passes, EM-fitted probabilistic matching, constrained clustering.
pub fn link(ds: Dataset, settings: &Settings, decisions: &Decisions, progress: &dyn Progress) -> Result<Linkage> {
    link_with(ds, settings, decisions, None, progress)
}

/// Links the records of keys that have no research ID yet into the persons of an earlier
/// linkage: only pairs with at least one new record are compared, earlier persons stay whole
/// (a new record may still join two of them, which `assign_ids` records as a merge), and the
/// earlier model is reused when it fits the settings. A full [`link`] re-examines every pair.
pub fn link_new(ds: Dataset, settings: &Settings, decisions: &Decisions, previous: &Previous, progress: &dyn Progress) -> Result<Linkage> {
    link_with(ds, settings, decisions, Some(previous), progress)
}

fn link_with(ds: Dataset, settings: &Settings, decisions: &Decisions, previous: Option<&Previous>, progress: &dyn Progress) -> Result<Linkage> {
    settings.validate()?;
    if ds.columns.len() != settings.fields.len() {
        return Err(Error::Settings("the dataset was built for other settings".into()));
    }
    let started = Instant::now();
    let threads = if settings.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { settings.threads };

    // Operator decisions, by entry.
    let mut entry_of: FxHashMap<EntryKey, u32> = FxHashMap::default();
    if !decisions.must_link.is_empty() || !decisions.cannot_link.is_empty() {
        for e in 0..ds.entries() as u32 {
            entry_of.insert(ds.entry(e), e);
        }
    }
    let entry_record = |e: u32| ds.entry_records.binary_search_by_key(&e, |x| x.0).map(|i| ds.entry_records[i].1).ok();
    let (mut must, group) = known_groups(&ds);
    // Incremental: records with an earlier research ID stay together with their person.
    let mut new_records = None;
    if let Some(p) = previous {
        let mut old_id: Vec<Option<i64>> = vec![None; ds.records()];
        for &(e, r) in &ds.entry_records {
            if let Some(&id) = p.ids.get(&ds.entry(e)) {
                old_id[r as usize].get_or_insert(id);
            }
        }
        let mut first: FxHashMap<i64, u32> = FxHashMap::default();
        for (r, id) in old_id.iter().enumerate() {
            if let Some(id) = id {
                let f = *first.entry(*id).or_insert(r as u32);
                if f != r as u32 {
                    must.push((f, r as u32));
                }
            }
        }
        new_records = Some(old_id.iter().map(|x| x.is_none()).collect::<Vec<bool>>());
    }
    for (x, y) in &decisions.must_link {
        if let (Some(&ex), Some(&ey)) = (entry_of.get(x), entry_of.get(y)) {
            if let (Some(a), Some(b)) = (entry_record(ex), entry_record(ey)) {
                must.push((a, b));
            }
        }
    }
    let mut cannot: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (x, y) in &decisions.cannot_link {
        if decisions.must_link.iter().any(|(a, b)| (a == x && b == y) || (a == y && b == x)) {
            return Err(Error::Input(format!(
                "{}:{} and {}:{} are both must-link and cannot-link",
                x.source, x.key, y.source, y.key
            )));
        }
        if let (Some(&ex), Some(&ey)) = (entry_of.get(x), entry_of.get(y)) {
            cannot.entry(ex).or_default().push(ey);
            cannot.entry(ey).or_default().push(ex);
        }
    }

    // Blocks: deterministic passes first, then the blocking rules.
    let mut rules: Vec<Vec<KeyPart>> = settings.deterministic.iter().map(|p| p.iter().map(|f| KeyPart::Value(f.clone())).collect()).collect();
    rules.extend(settings.blocking.iter().map(|r| r.parts.clone()));
    // Training-only rules come last: scoring stops before them.
    let scoring_rules = rules.len();
    rules.extend(settings.training.iter().map(|r| r.parts.clone()));
    let rule_names: Vec<String> = settings
        .deterministic
        .iter()
        .map(|p| format!("deterministic: {}", p.join(" + ")))
        .chain(settings.blocking.iter().map(|r| format!("blocking: {}", r.describe())))
        .chain(settings.training.iter().map(|r| format!("training: {}", r.describe())))
        .collect();
    let mut blocking = Blocking::new(&ds, settings, &rules, group);
    // A rule blocks on a field when it requires the field's whole value to agree (a prefix or a
    // year leaves the rest of the value informative), or that of a field in its group.
    let blocked: Vec<Vec<bool>> = rules
        .iter()
        .map(|parts| {
            let whole: Vec<&Field> = settings
                .fields
                .iter()
                .filter(|f| parts.iter().any(|p| matches!(p, KeyPart::Value(v) if *v == f.name)))
                .collect();
            settings
                .fields
                .iter()
                .map(|f| whole.iter().any(|w| w.name == f.name || (w.group.is_some() && w.group == f.group)))
                .collect()
        })
        .collect();

    let reused = previous.and_then(|p| p.model.clone()).filter(|m| m.fits(settings, rules.len()));
    let model_reused = reused.is_some();
    // A model fitted again trains on every pair, as a full linkage does.
    let (model, trained) = match reused {
        Some(m) => (m, 0),
        None => fit(&ds, settings, &blocking, &rules, &blocked, threads, progress),
    };
    tracing::info!(pairs = trained, reused = model_reused, "linkage model ready");
    blocking.only_new = new_records;
    let candidate_pairs = blocking.candidate_pairs(scoring_rules);
    let advance = |n: u64| progress.advance(n);

    // Score every pair; keep the grey zone and above.
    let scorer = scorer(&ds, settings, &model);
    let review_weight = (settings.review_threshold / (1.0 - settings.review_threshold)).log2();
    let deterministic = settings.deterministic.len();
    progress.stage("linkage: scoring (comparisons)", candidate_pairs);
    let scored = blocking.scan(
        &ds,
        threads,
        true,
        scoring_rules,
        || (Vec::<Edge>::new(), 0u64, vec![0u64; scoring_rules]),
        |(edges, impossible, per_rule), rule, a, b| {
            per_rule[rule] += 1;
            let w = scorer.weight(rule, pattern(&ds, a, b), a);
            let det = rule < deterministic;
            if det || w >= review_weight {
                if scorer.impossible(a, b).is_some() {
                    *impossible += 1;
                    return;
                }
                edges.push(Edge { a, b, weight: w as f32, pass: if det { rule as u8 } else { PROBABILISTIC }, rule: rule as u8 });
            }
        },
        &advance,
    );
    let mut edges = Vec::new();
    let mut impossible_pairs = 0u64;
    let mut per_rule = vec![0u64; scoring_rules];
    for (e, i, n) in scored {
        edges.extend(e);
        impossible_pairs += i;
        per_rule.iter_mut().zip(n).for_each(|(t, n)| *t += n);
    }
    let compared: u64 = per_rule.iter().sum();
    let pairs_compared: Vec<(String, u64)> = rule_names.iter().cloned().zip(per_rule).collect();
    edges.sort_unstable_by(|x, y| {
        x.pass.cmp(&y.pass).then(y.weight.total_cmp(&x.weight)).then(x.a.cmp(&y.a)).then(x.b.cmp(&y.b))
    });
    let match_weight = (settings.match_threshold / (1.0 - settings.match_threshold)).log2() as f32;
    let accepted: Vec<bool> = edges.iter().map(|e| e.pass != PROBABILISTIC || e.weight >= match_weight).collect();

    progress.stage("linkage: clustering (pairs)", edges.len() as u64);
    let mut merges = vec![0u64; deterministic + 1];
    let mut refusals = Refusals::default();
    let smallest = cluster::cluster(&ds, &edges, &accepted, &must, &cannot, settings.death_grace_days, &mut merges, &mut refusals);
    progress.advance(edges.len() as u64);
    // Persons numbered in record order.
    let mut number = vec![NONE; ds.records()];
    let mut persons = 0u32;
    let record_person: Vec<u32> = smallest
        .iter()
        .map(|&s| {
            if number[s as usize] == NONE {
                number[s as usize] = persons;
                persons += 1;
            }
            number[s as usize]
        })
        .collect();

    let pass_names: Vec<String> =
        settings.deterministic.iter().map(|p| p.join(" + ")).chain(std::iter::once("probabilistic".to_owned())).collect();
    let mut matches = vec![0u64; deterministic + 1];
    // A grey pair needs review only when it is the best evidence one of its records has: a
    // record already linked by a stronger pair (to its own person) is not in doubt because a
    // namesake scored in the grey zone.
    let mut best = vec![f32::NEG_INFINITY; ds.records()];
    for (e, _) in edges.iter().zip(&accepted).filter(|(_, ok)| **ok) {
        let w = if e.pass == PROBABILISTIC { e.weight } else { f32::INFINITY };
        best[e.a as usize] = best[e.a as usize].max(w);
        best[e.b as usize] = best[e.b as usize].max(w);
    }
    // Estimates of precision and recall, per pair linked or left apart above the review
    // threshold: a probabilistic pair counts its match probability; a deterministic pass counts
    // one minus its expected share of coincidences (records of different people agreeing
    // exactly on all its fields, at the model's u, over every pair of records), since the
    // model's posterior means little for fields the pass already requires to agree.
    let n = ds.records() as f64;
    let pass_pairs: Vec<u64> = (0..deterministic)
        .map(|i| edges.iter().zip(&accepted).filter(|(e, ok)| **ok && e.pass as usize == i).count() as u64)
        .collect();
    let pass_precision: Vec<f64> = settings
        .deterministic
        .iter()
        .zip(&pass_pairs)
        .map(|(fields, &pairs)| {
            let chance: f64 = fields.iter().filter_map(|f| settings.field_index(f)).map(|f| model.u[f][EXACT as usize]).product();
            let coincidences = n * (n - 1.0) / 2.0 * chance;
            if pairs == 0 { 1.0 } else { 1.0 - (coincidences / pairs as f64).min(1.0) }
        })
        .collect();
    let (mut accepted_edges, mut review) = (Vec::new(), Vec::new());
    let (mut found, mut linked, mut missed) = (0.0f64, 0u64, 0.0f64);
    for (e, ok) in edges.into_iter().zip(accepted) {
        let together = record_person[e.a as usize] == record_person[e.b as usize];
        let p = if e.pass == PROBABILISTIC { probability(e.weight as f64) } else { pass_precision[e.pass as usize] };
        if ok && together {
            found += p;
            linked += 1;
        } else if !together {
            missed += p;
        }
        if ok {
            matches[if e.pass == PROBABILISTIC { deterministic } else { e.pass as usize }] += 1;
            accepted_edges.push(e);
        } else if !together && e.weight > best[e.a as usize].min(best[e.b as usize]) {
            review.push(e);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        rows: ds.rows(),
        entries: ds.entries() as u64,
        records: ds.records() as u64,
        candidate_pairs,
        pairs_compared,
        blocks_skipped: rule_names.iter().zip(&blocking.skipped).filter(|(_, s)| s.0 > 0).map(|(n, s)| (n.clone(), s.0, s.1)).collect(),
        matches_per_pass: pass_names.iter().cloned().zip(matches).collect(),
        merges_per_pass: pass_names.into_iter().zip(merges).collect(),
        impossible_pairs,
        grey_zone: review.len() as u64,
        refusals,
        persons: persons as u64,
        estimated_precision: if linked == 0 { 1.0 } else { found / linked as f64 },
        estimated_recall: if found + missed > 0.0 { found / (found + missed) } else { 1.0 },
        invalid_values: settings.fields.iter().map(|f| f.name.clone()).zip(ds.invalid()).filter(|x| x.1 > 0).collect(),
        seconds,
        comparisons_per_second: (trained + compared) as f64 / seconds.max(1e-9),
        threads,
        new_records: blocking.only_new.as_ref().map(|n| n.iter().filter(|x| **x).count() as u64),
        model_reused,
    };
    Ok(Linkage { dataset: ds, settings: settings.clone(), model, record_person, accepted: accepted_edges, review, report })
}
