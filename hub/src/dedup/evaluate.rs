//! Precision and recall of merging on a labelled set of reports, replayed
//! in arrival order against an in-memory set of open tickets, the way the
//! store will run it.
//!
//! A report that merges joins its ticket (and is compared as one of that
//! ticket's sources from then on); a "possible" opens its own ticket, so it
//! counts as not merged. Quality is counted over pairs of reports: a pair in
//! one ticket is a predicted pair, a pair of one matter a true pair.

use std::collections::HashMap;
use std::fmt;

use crate::ticket::{Channel, TicketDraft};

use super::decide::{CandidateRules, Decision, Thresholds, candidates, decide};
use super::fingerprint::Fingerprint;
use super::score::{Score, score};

/// What went wrong with one report.
#[derive(Clone, Debug, PartialEq)]
pub enum Mistake {
    /// Merged into a ticket of other matters (listed).
    WrongMerge { into: Vec<String> },
    /// Not merged although a ticket of its matter was open: new or possible,
    /// with the best score against that ticket (None: not even a candidate).
    Missed { decision: &'static str, best: Option<Score> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct WrongDecision {
    /// Position in arrival order (0-based).
    pub index: usize,
    pub matter: String,
    pub channel: Option<Channel>,
    pub mistake: Mistake,
    /// The score of the decision taken (for a wrong merge: the merge's).
    pub score: Option<Score>,
}

impl fmt::Display for WrongDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ch = self.channel.map_or("?", |c| c.as_str());
        write!(f, "#{} {} ({ch}) ", self.index, self.matter)?;
        match &self.mistake {
            Mistake::WrongMerge { into } => {
                write!(f, "merged into the ticket of {}", into.join(", "))?;
                if let Some(s) = &self.score {
                    write!(f, " — {s}")?;
                }
                Ok(())
            }
            Mistake::Missed { decision, best: Some(s) } => {
                write!(f, "{decision}, though its matter's ticket was open — {s}")
            }
            Mistake::Missed { decision, best: None } => {
                write!(
                    f,
                    "{decision}, though its matter's ticket was open — not a candidate (region, window or family)"
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationReport {
    pub thresholds: Thresholds,
    pub reports: usize,
    pub matters: usize,
    pub tickets: usize,
    pub merges: usize,
    pub possibles: usize,
    /// Possibles that pointed at a ticket of the report's own matter.
    pub possibles_right: usize,
    pub news: usize,
    /// Pairs of reports of one matter.
    pub true_pairs: u64,
    /// Pairs of reports put in one ticket.
    pub merged_pairs: u64,
    /// Both.
    pub right_pairs: u64,
    pub precision: f64,
    pub recall: f64,
    pub wrong: Vec<WrongDecision>,
}

impl EvaluationReport {
    /// Possible duplicates a person must look at, per 100 records: each
    /// costs someone's time, so it stands beside precision and recall.
    pub fn review_load(&self) -> f64 {
        if self.reports == 0 { 0.0 } else { self.possibles as f64 * 100.0 / self.reports as f64 }
    }
}

impl fmt::Display for EvaluationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} reports of {} matters → {} tickets ({} merged, {} possible, {} new)",
            self.reports, self.matters, self.tickets, self.merges, self.possibles, self.news
        )?;
        writeln!(
            f,
            "precision {:.3}, recall {:.3}: {} pairs merged, {} of them right, of {} true pairs (merge ≥ {:.2}, review ≥ {:.2})",
            self.precision,
            self.recall,
            self.merged_pairs,
            self.right_pairs,
            self.true_pairs,
            self.thresholds.merge,
            self.thresholds.review
        )?;
        writeln!(
            f,
            "possible duplicates: {}, {} of them of the same matter; review load {:.1} per 100 records",
            self.possibles,
            self.possibles_right,
            self.review_load()
        )?;
        let wrong_merges = self.wrong.iter().filter(|w| matches!(w.mistake, Mistake::WrongMerge { .. })).count();
        writeln!(
            f,
            "wrong decisions: {} ({wrong_merges} wrong merges, {} missed)",
            self.wrong.len(),
            self.wrong.len() - wrong_merges
        )?;
        for w in &self.wrong {
            writeln!(f, "  {w}")?;
        }
        Ok(())
    }
}

struct OpenTicket {
    members: Vec<usize>,
    prints: Vec<Fingerprint>,
}

/// Replays `reports` (matter label, mapped draft) in order with the default
/// candidate rules.
pub fn evaluate(reports: &[(String, TicketDraft)], thresholds: Thresholds) -> EvaluationReport {
    evaluate_with(reports, &CandidateRules::default(), thresholds)
}

pub fn evaluate_with(
    reports: &[(String, TicketDraft)],
    rules: &CandidateRules,
    thresholds: Thresholds,
) -> EvaluationReport {
    let mut tickets: Vec<OpenTicket> = Vec::new();
    let mut wrong = Vec::new();
    let (mut merges, mut possibles, mut possibles_right, mut news) = (0, 0, 0, 0);
    for (i, (label, draft)) in reports.iter().enumerate() {
        let fp = Fingerprint::of(draft);
        let open = tickets.iter().enumerate().map(|(t, open)| (t, open.prints.as_slice()));
        let decision = decide(&fp, candidates(&fp, open, rules), &thresholds);
        let of_matter = |t: &OpenTicket| t.members.iter().any(|m| reports[*m].0 == *label);
        let own = tickets.iter().position(of_matter);
        match decision {
            Decision::Merge { ticket, score } => {
                merges += 1;
                if !of_matter(&tickets[ticket]) {
                    let mut into: Vec<String> = tickets[ticket].members.iter().map(|m| reports[*m].0.clone()).collect();
                    into.dedup();
                    wrong.push(WrongDecision {
                        index: i,
                        matter: label.clone(),
                        channel: fp.channel,
                        mistake: Mistake::WrongMerge { into },
                        score: Some(score),
                    });
                }
                tickets[ticket].members.push(i);
                tickets[ticket].prints.push(fp);
                continue;
            }
            Decision::Possible { ticket, score } => {
                possibles += 1;
                let right = of_matter(&tickets[ticket]);
                possibles_right += usize::from(right);
                if let Some(t) = own {
                    let best = if right { Some(score) } else { best_against(&fp, &tickets[t], rules) };
                    wrong.push(WrongDecision {
                        index: i,
                        matter: label.clone(),
                        channel: fp.channel,
                        mistake: Mistake::Missed { decision: "possible", best },
                        score: None,
                    });
                }
            }
            Decision::New => {
                news += 1;
                if let Some(t) = own {
                    wrong.push(WrongDecision {
                        index: i,
                        matter: label.clone(),
                        channel: fp.channel,
                        mistake: Mistake::Missed { decision: "new", best: best_against(&fp, &tickets[t], rules) },
                        score: None,
                    });
                }
            }
        }
        tickets.push(OpenTicket { members: vec![i], prints: vec![fp] });
    }

    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut per_matter: HashMap<&str, u64> = HashMap::new();
    for (label, _) in reports {
        *per_matter.entry(label.as_str()).or_default() += 1;
    }
    let true_pairs = per_matter.values().map(|n| pairs(*n)).sum();
    let (mut merged_pairs, mut right_pairs) = (0, 0);
    for t in &tickets {
        merged_pairs += pairs(t.members.len() as u64);
        let mut in_ticket: HashMap<&str, u64> = HashMap::new();
        for m in &t.members {
            *in_ticket.entry(reports[*m].0.as_str()).or_default() += 1;
        }
        right_pairs += in_ticket.values().map(|n| pairs(*n)).sum::<u64>();
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    EvaluationReport {
        thresholds,
        reports: reports.len(),
        matters: per_matter.len(),
        tickets: tickets.len(),
        merges,
        possibles,
        possibles_right,
        news,
        true_pairs,
        merged_pairs,
        right_pairs,
        precision: ratio(right_pairs, merged_pairs),
        recall: ratio(right_pairs, true_pairs),
        wrong,
    }
}

/// The best score of `fp` against the admitted sources of `ticket`.
fn best_against(fp: &Fingerprint, ticket: &OpenTicket, rules: &CandidateRules) -> Option<Score> {
    ticket
        .prints
        .iter()
        .filter(|p| rules.admits(fp, p).is_some())
        .map(|p| score(fp, p))
        .max_by(|a, b| a.value.total_cmp(&b.value))
}

#[cfg(test)]
mod tests;
