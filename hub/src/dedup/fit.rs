//! Fitting the scorer's weights to labelled sets: a logistic regression
//! over the features of every (record, candidate ticket) pair the hub would
//! weigh, solved by Newton's method with a Gaussian prior around each
//! feature's prior weight ([`Feature::prior`]).
//!
//! The pairs are what the hub weighs: each record, in arrival order,
//! against each source of each candidate ticket, where tickets are grouped
//! as they would be if every earlier decision had been right (so one wrong
//! merge early does not poison what the fit sees later). The label is
//! whether the source is of the record's matter. Pairs, not each ticket's
//! best source: which source is best depends on the weights being fitted.

use std::collections::HashMap;

use crate::ticket::TicketDraft;

use super::decide::{CandidateRules, candidates};
use super::fingerprint::Fingerprint;
use super::score::score;
use super::weights::{Feature, Weights};

/// One decision: the features of a record against a candidate ticket, and
/// whether that ticket is the record's matter.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub x: Vec<f64>,
    pub same: bool,
    /// How much this decision counts (sets of different sizes can be
    /// made to count alike).
    pub weight: f64,
}

/// Features the fit leaves at their prior, because they are rules, not
/// tendencies a labelled set can show: a surname with an honorific (王女士)
/// never carries a merge (weight 0); one reporter with two problems is two
/// tickets (generated sets hold too few such pairs to learn it from).
const FIXED: &[Feature] = &[Feature::SameWeakName, Feature::SameReporterDifferentContent];

/// Identity may grow with the data, but to no more than twice its prior: in
/// a generated set every shared phone is one matter, and unbounded the fit
/// lets a phone outweigh a different problem.
const CAPPED: &[Feature] = &[Feature::SamePhone, Feature::SameIdNumber, Feature::SameIdNumberAndPhone];

/// The examples of a labelled set (matter label, mapped draft), in arrival order.
pub fn examples(reports: &[(String, TicketDraft)], rules: &CandidateRules) -> Vec<Example> {
    // Tickets as right decisions would have made them: one per matter.
    let mut tickets: Vec<(String, Vec<Fingerprint>)> = Vec::new();
    let mut by_matter: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (label, draft) in reports {
        let fp = Fingerprint::of(draft);
        let open = tickets.iter().enumerate().map(|(t, (_, prints))| (t, prints.as_slice()));
        // Every candidate source, not each ticket's best: which source is
        // best depends on the weights being fitted.
        for (ticket, source) in candidates(&fp, open, rules) {
            let score = score(&fp, source);
            out.push(Example { x: score.features(), same: tickets[ticket].0 == *label, weight: 1.0 });
        }
        match by_matter.get(label.as_str()) {
            Some(&t) => tickets[t].1.push(fp),
            None => {
                by_matter.insert(label, tickets.len());
                tickets.push((label.clone(), vec![fp]));
            }
        }
    }
    out
}

/// What the fit found, for a person to read before shipping it.
#[derive(Clone, Debug)]
pub struct Fitted {
    pub weights: Weights,
    pub examples: usize,
    pub positives: usize,
    /// How many examples each feature was present in.
    pub support: Vec<usize>,
    /// Mean log-loss per example, before (priors) and after.
    pub loss_before: f64,
    pub loss_after: f64,
    pub iterations: usize,
}

/// Fits the weights: maximum a posteriori logistic regression, prior
/// N(prior, sigma²) on each weight (the bias included).
pub fn fit(examples: &[Example], sigma: f64) -> Fitted {
    let n = Feature::ALL.len();
    let prior: Vec<f64> = Feature::ALL.iter().map(|f| f.prior()).collect();
    let fixed = |j: usize| FIXED.iter().any(|f| *f as usize == j);
    let rows: Vec<(Vec<f64>, f64, f64)> = examples
        .iter()
        .map(|e| {
            let mut x = e.x.clone();
            for (j, v) in x.iter_mut().enumerate() {
                if fixed(j) {
                    *v = 0.0;
                }
            }
            (x, if e.same { 1.0 } else { 0.0 }, e.weight)
        })
        .collect();
    // A fixed feature's part of each score is an offset: the fit sees it and
    // fits the other weights around it, but cannot move it.
    let offsets: Vec<f64> = examples.iter().map(|e| FIXED.iter().map(|f| f.prior() * e.x[*f as usize]).sum()).collect();
    let loss = |w: &[f64]| -> f64 {
        let total: f64 = rows
            .iter()
            .zip(&offsets)
            .map(|((x, y, c), o)| {
                let z: f64 = o + x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
                // log(1 + e^z) - y z, computed without overflow.
                let softplus = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
                c * (softplus - y * z)
            })
            .sum();
        total / rows.iter().map(|r| r.2).sum::<f64>().max(1e-9)
    };
    let precision = 1.0 / (sigma * sigma);
    let mut w = prior.clone();
    let loss_before = loss(&w);
    let mut iterations = 0;
    for _ in 0..100 {
        iterations += 1;
        let mut g: Vec<f64> = w.iter().zip(&prior).map(|(a, m)| (a - m) * precision).collect();
        let mut h = vec![vec![0.0; n]; n];
        for (j, row) in h.iter_mut().enumerate() {
            row[j] = precision;
        }
        for ((x, y, c), o) in rows.iter().zip(&offsets) {
            let z: f64 = o + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let r = c * p * (1.0 - p);
            for j in 0..n {
                if x[j] == 0.0 {
                    continue;
                }
                g[j] += c * (p - y) * x[j];
                for k in 0..n {
                    if x[k] != 0.0 {
                        h[j][k] += r * x[j] * x[k];
                    }
                }
            }
        }
        let Some(step) = solve(h, g) else { break };
        let mut largest: f64 = 0.0;
        for ((wj, s), f) in w.iter_mut().zip(&step).zip(Feature::ALL) {
            let before = *wj;
            *wj = keep_sign(*f, *wj - s);
            largest = largest.max((*wj - before).abs());
        }
        if largest < 1e-7 {
            break;
        }
    }
    let support = (0..n).map(|j| rows.iter().filter(|(x, _, _)| x[j] != 0.0).count()).collect();
    Fitted {
        loss_after: loss(&w),
        weights: Weights::from_vec(w),
        examples: rows.len(),
        positives: examples.iter().filter(|e| e.same).count(),
        support,
        loss_before,
        iterations,
    }
}

/// Evidence keeps the direction it was designed with: a fact against (a
/// different township) never becomes one for, whatever a labelled set's
/// accidents say (a set with few "one reporter, two problems" cases would
/// otherwise learn that a shared phone outweighs a different problem). The
/// bias and features without a direction (prior 0) are free.
fn keep_sign(f: Feature, w: f64) -> f64 {
    if CAPPED.contains(&f) {
        return w.clamp(0.0, 2.0 * f.prior());
    }
    match f.prior() {
        _ if f == Feature::Bias => w,
        p if p > 0.0 => w.max(0.0),
        p if p < 0.0 => w.min(0.0),
        _ => w,
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (Cholesky).
#[allow(clippy::needless_range_loop)]
fn solve(mut a: Vec<Vec<f64>>, b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j][j];
        for k in 0..j {
            d -= a[j][k] * a[j][k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j][j] = d;
        for i in j + 1..n {
            let mut s = a[i][j];
            for k in 0..j {
                s -= a[i][k] * a[j][k];
            }
            a[i][j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i][k] * y[k];
        }
        y[i] = s / a[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= a[k][i] * x[k];
        }
        x[i] = s / a[i][i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_weight_the_data_speaks_for() {
        // Same category is present in 90% of same-matter examples and 10%
        // of others: the fit must move its weight up from the prior.
        let n = Feature::ALL.len();
        let mut examples = Vec::new();
        for i in 0..400 {
            let same = i % 2 == 0;
            let mut x = vec![0.0; n];
            x[Feature::Bias as usize] = 1.0;
            let present = if same { i % 20 != 0 } else { i % 10 == 1 };
            if present {
                x[Feature::SameCategory as usize] = 1.0;
            }
            // A weak name in every same-matter example: fixed, it must not move.
            if same {
                x[Feature::SameWeakName as usize] = 1.0;
            }
            examples.push(Example { x, same, weight: 1.0 });
        }
        let f = fit(&examples, 2.0);
        assert!(f.weights.get(Feature::SameCategory) > 3.0, "{:?}", f.weights);
        assert_eq!(f.weights.get(Feature::SameWeakName), Feature::SameWeakName.prior());
        assert!(f.loss_after < f.loss_before);
        // A feature never seen keeps its prior.
        assert_eq!(f.weights.get(Feature::SameHouse), Feature::SameHouse.prior());
    }

    #[test]
    fn cholesky_solves() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let x = solve(a, vec![2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(solve(vec![vec![-1.0]], vec![1.0]).is_none());
    }
}
