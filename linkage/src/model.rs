//! The Fellegi-Sunter model: comparison vectors, u from random pairs, m and the prior by EM,
//! match weights with term-frequency adjustment.
//!
//! A pair's comparison vector has one level per field. `m[f][l]` is the probability of level
//! `l` on field `f` among true matches, `u[f][l]` among non-matches. Fields are taken as
//! independent given the match status, so a pair's match weight is the sum of
//! `log2(m[f][l] / u[f][l])` plus the prior's log-odds; level 0 (a missing value) adds nothing.
//! As Splink does, u is estimated from random record pairs (nearly all non-matches) and kept
//! fixed; m is estimated by EM once per blocking rule, leaving out the fields the rule blocks on
//! (they agree by construction there), and averaged over rules.
//!
//! A pair is scored given the rule that compared it: the prior is that rule's share of matches
//! (EM with m and u fixed), and the fields the rule blocks on add nothing more (their agreement is
//! already in the prior) except their term-frequency adjustment: agreeing on a rare name says more
//! than the rule's average. So a block of people sharing a given name and a birth year, nearly all
//! different persons, does not turn name agreement into a match.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::compare::level;
use crate::data::{Dataset, NONE};
use crate::spec::{EXACT, MISSING, Settings};

/// Bits per field in a packed comparison vector.
const BITS: u32 = 3;

/// The comparison vector of records `a` and `b`, packed 3 bits per field.
#[inline]
pub(crate) fn pattern(ds: &Dataset, a: u32, b: u32) -> u64 {
    let mut p = 0u64;
    for (f, col) in ds.columns.iter().enumerate() {
        p |= (level(col, a, b) as u64) << (f as u32 * BITS);
    }
    p
}

/// Level of field `f` in a packed vector.
#[inline]
pub(crate) fn level_of(p: u64, f: usize) -> u8 {
    ((p >> (f as u32 * BITS)) & 0b111) as u8
}

/// Estimated parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Per rule (deterministic passes first): probability that a pair in its blocks is a match.
    pub rule_priors: Vec<f64>,
    /// Per rule, per field: whether the rule blocks on the field's whole value.
    pub blocked: Vec<Vec<bool>>,
    /// Per field, per level: probability among matches.
    pub m: Vec<Vec<f64>>,
    /// Per field, per level: probability among non-matches.
    pub u: Vec<Vec<f64>>,
    /// Per field, per level: `log2(m / u)` (0 for a missing value).
    pub weights: Vec<Vec<f64>>,
    /// EM iterations run, per rule.
    pub iterations: Vec<usize>,
}

impl Model {
    /// Whether the model was fitted for these settings' fields, levels and `rules` rules.
    pub fn fits(&self, settings: &Settings, rules: usize) -> bool {
        self.rule_priors.len() == rules
            && self.blocked.len() == rules
            && self.m.len() == settings.fields.len()
            && self.u.len() == settings.fields.len()
            && self.weights.iter().zip(&settings.fields).all(|(w, f)| w.len() == f.comparator.levels().len())
            && self.blocked.iter().all(|b| b.len() == settings.fields.len())
    }
}

/// Random record pairs' levels: u probabilities.
pub(crate) fn estimate_u(ds: &Dataset, settings: &Settings, group: &[u32]) -> Vec<Vec<f64>> {
    let n = ds.records() as u64;
    let mut counts: Vec<Vec<u64>> = settings.fields.iter().map(|f| vec![0; f.comparator.levels().len()]).collect();
    if n < 2 {
        return normalise_counts(&counts, 1);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut drawn = 0usize;
    let mut tries = 0usize;
    while drawn < settings.u_sample_pairs && tries < settings.u_sample_pairs * 4 {
        tries += 1;
        let a = rng.random_range(0..n) as u32;
        let b = rng.random_range(0..n) as u32;
        if a == b || group[a as usize] == group[b as usize] {
            continue;
        }
        drawn += 1;
        for (f, col) in ds.columns.iter().enumerate() {
            counts[f][level(col, a, b) as usize] += 1;
        }
    }
    normalise_counts(&counts, drawn.max(1))
}

/// Counts to probabilities over the non-missing levels, with a floor for unseen levels.
fn normalise_counts(counts: &[Vec<u64>], drawn: usize) -> Vec<Vec<f64>> {
    let floor = 0.5 / drawn as f64;
    counts
        .iter()
        .map(|c| {
            let seen: u64 = c[1..].iter().sum();
            let mut p: Vec<f64> = c.iter().map(|&x| if seen == 0 { 0.0 } else { x as f64 / seen as f64 }).collect();
            p[0] = 1.0;
            for x in &mut p[1..] {
                *x = x.max(floor);
            }
            p
        })
        .collect()
}

/// Starting m: most matches agree exactly, fewer at each fuzzier level.
fn initial_m(levels: usize) -> Vec<f64> {
    let mut m = vec![1.0; levels];
    let rest = levels - 2;
    m[EXACT as usize] = 0.9;
    let mut share = 0.1;
    for (i, x) in m.iter_mut().enumerate().skip(2) {
        *x = if i + 1 == levels { share } else { share * 0.6 };
        share *= 0.4;
    }
    if rest == 0 {
        m[EXACT as usize] = 1.0;
    }
    m
}

/// One EM fit on a pattern histogram; `fit[f]` says whether field `f`'s m is estimated (fields a
/// rule blocks on are left out). Returns m (for fitted fields), the prior and iterations.
fn em(hist: &[(u64, f64)], u: &[Vec<f64>], fit: &[bool], iterations: usize) -> (Vec<Vec<f64>>, f64, usize) {
    let mut m: Vec<Vec<f64>> = u.iter().map(|l| initial_m(l.len())).collect();
    let mut prior = 0.05f64;
    let mut done = 0;
    let ln = |p: &[Vec<f64>]| -> Vec<Vec<f64>> { p.iter().map(|l| l.iter().map(|x| x.max(1e-12).ln()).collect()).collect() };
    let ln_u = ln(u);
    for it in 0..iterations {
        done = it + 1;
        let ln_m = ln(&m);
        let mut new_m: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        let (mut matches, mut total) = (0.0f64, 0.0f64);
        for &(p, count) in hist {
            let mut lm = prior.ln();
            let mut lu = (1.0 - prior).ln();
            for f in 0..u.len() {
                let l = level_of(p, f) as usize;
                if fit[f] && l != MISSING as usize {
                    lm += ln_m[f][l];
                    lu += ln_u[f][l];
                }
            }
            let r = 1.0 / (1.0 + (lu - lm).exp());
            matches += r * count;
            total += count;
            for (f, nm) in new_m.iter_mut().enumerate() {
                nm[level_of(p, f) as usize] += r * count;
            }
        }
        if total == 0.0 || matches == 0.0 {
            break;
        }
        let new_prior = (matches / total).clamp(1e-9, 1.0 - 1e-9);
        let mut moved = (new_prior - prior).abs();
        for (f, nm) in new_m.iter_mut().enumerate() {
            let seen: f64 = nm[1..].iter().sum();
            for l in 1..nm.len() {
                let v = if seen > 0.0 { (nm[l] / seen).max(1e-6) } else { m[f][l] };
                moved = moved.max((v - m[f][l]).abs());
                m[f][l] = v;
            }
        }
        prior = new_prior;
        if moved < 1e-6 {
            break;
        }
    }
    (m, prior, done)
}

/// The prior alone by EM, with m and u fixed, over the fields in `fit`.
fn em_prior(hist: &[(u64, f64)], weights: &[Vec<f64>], fit: &[bool], iterations: usize) -> f64 {
    let mut prior = 0.05f64;
    for _ in 0..iterations.max(1) * 4 {
        let logit = (prior / (1.0 - prior)).log2();
        let (mut matches, mut total) = (0.0, 0.0);
        for &(p, count) in hist {
            let w: f64 = (0..weights.len()).filter(|&f| fit[f]).map(|f| weights[f][level_of(p, f) as usize]).sum::<f64>() + logit;
            matches += count / (1.0 + (-w).exp2());
            total += count;
        }
        if total == 0.0 {
            break;
        }
        let new = (matches / total).clamp(1e-9, 1.0 - 1e-9);
        if (new - prior).abs() < 1e-9 {
            prior = new;
            break;
        }
        prior = new;
    }
    prior
}

impl Model {
    /// Fits the model: `hists[r]` is rule `r`'s pattern histogram, `blocked[r][f]` whether rule
    /// `r` blocks on field `f`.
    /// Only rules marked in `train` teach m; every rule gets its prior.
    pub(crate) fn fit(u: Vec<Vec<f64>>, hists: &[Vec<(u64, f64)>], blocked: &[Vec<bool>], train: &[bool], iterations: usize) -> Model {
        let fields = u.len();
        let mut sum: Vec<Vec<f64>> = u.iter().map(|l| vec![0.0; l.len()]).collect();
        let mut n = vec![0usize; fields];
        let mut iters = Vec::with_capacity(hists.len());
        for ((hist, blocked), train) in hists.iter().zip(blocked).zip(train) {
            let fit: Vec<bool> = blocked.iter().map(|b| !b).collect();
            let pairs: f64 = hist.iter().map(|h| h.1).sum();
            if pairs < 10.0 || !train {
                iters.push(0);
                continue;
            }
            let (m, _, it) = em(hist, &u, &fit, iterations);
            iters.push(it);
            for f in (0..fields).filter(|&f| fit[f]) {
                // A field missing in every pair of this rule says nothing about its m.
                let seen = hist.iter().any(|&(p, _)| level_of(p, f) != MISSING);
                if seen {
                    for l in 1..sum[f].len() {
                        sum[f][l] += m[f][l];
                    }
                    n[f] += 1;
                }
            }
        }
        let m: Vec<Vec<f64>> = sum
            .iter()
            .enumerate()
            .map(|(f, s)| if n[f] == 0 { initial_m(s.len()) } else { s.iter().map(|x| x / n[f] as f64).collect() })
            .map(|mut l| {
                l[0] = 1.0;
                l
            })
            .collect();
        let weights = weights(&m, &u);
        let rule_priors = hists
            .iter()
            .zip(blocked)
            .map(|(hist, blocked)| {
                let fit: Vec<bool> = blocked.iter().map(|b| !b).collect();
                em_prior(hist, &weights, &fit, iterations)
            })
            .collect();
        Model { rule_priors, blocked: blocked.to_vec(), m, u, weights, iterations: iters }
    }

    /// Log2-odds of rule `rule`'s prior.
    pub fn prior_weight(&self, rule: usize) -> f64 {
        let p = self.rule_priors[rule];
        (p / (1.0 - p)).log2()
    }
}

fn weights(m: &[Vec<f64>], u: &[Vec<f64>]) -> Vec<Vec<f64>> {
    m.iter()
        .zip(u)
        .map(|(m, u)| {
            m.iter().zip(u).enumerate().map(|(l, (m, u))| if l == MISSING as usize { 0.0 } else { (m / u).log2() }).collect()
        })
        .collect()
}

/// Scores pairs with a fitted model.
pub(crate) struct Scorer<'a> {
    pub ds: &'a Dataset,
    pub model: &'a Model,
    /// Per field: term-frequency adjusted.
    pub tf: Vec<bool>,
    /// Field holding the birth date, for impossible histories.
    pub birth: Option<usize>,
    pub death_grace_days: i32,
}

impl Scorer<'_> {
    /// Term-frequency adjustment of exact agreement on field `f` with record `a`'s value:
    /// `log2(u_exact / tf(value))`, positive for a rarer than average value.
    #[inline]
    fn tf_adjustment(&self, f: usize, a: u32) -> f64 {
        let col = &self.ds.columns[f];
        let u = self.model.u[f][EXACT as usize];
        (u / col.tf(col.ids[a as usize]).max(u.min(1e-7))).log2()
    }

    /// Weight of field `f` at level `l` for a pair of record `a` compared by `rule`.
    #[inline]
    pub fn field_weight(&self, rule: usize, f: usize, l: u8, a: u32) -> f64 {
        let tf = l == EXACT && self.tf[f];
        if self.model.blocked[rule][f] {
            return if tf { self.tf_adjustment(f, a) } else { 0.0 };
        }
        self.model.weights[f][l as usize] + if tf { self.tf_adjustment(f, a) } else { 0.0 }
    }

    /// Match weight (log2-odds) of a pair compared by `rule` with comparison vector `p`.
    #[inline]
    pub fn weight(&self, rule: usize, p: u64, a: u32) -> f64 {
        let mut w = self.model.prior_weight(rule);
        for f in 0..self.ds.columns.len() {
            w += self.field_weight(rule, f, level_of(p, f), a);
        }
        w
    }

    /// Why records `a` and `b` cannot be one person, if the data says so: activity long after a
    /// recorded death, or before the birth date.
    pub fn impossible(&self, a: u32, b: u32) -> Option<&'static str> {
        let (ha, hb) = (&self.ds.rec_history[a as usize], &self.ds.rec_history[b as usize]);
        let late = |h: &crate::data::History, other: &crate::data::History| match (h.death, other.last_seen) {
            (Some(d), Some(l)) => l > d + self.death_grace_days,
            _ => false,
        };
        if late(ha, hb) || late(hb, ha) {
            return Some("activity after a recorded death");
        }
        if let Some(f) = self.birth {
            let col = &self.ds.columns[f];
            let early = |r: u32, other: &crate::data::History| match (col.ids[r as usize], other.first_seen) {
                (NONE, _) | (_, None) => false,
                (birth, Some(seen)) => crate::data::days_from_yyyymmdd(birth) > seen,
            };
            if early(a, hb) || early(b, ha) {
                return Some("activity before the birth date");
            }
        }
        None
    }
}

/// Probability from log2-odds.
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}
