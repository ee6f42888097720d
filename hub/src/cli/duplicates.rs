//! `hub duplicates`: the decisions of cross-channel duplicate detection, for
//! a person to confirm, reject or undo, and the evaluation of the scoring
//! on a labelled set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hub::store::{DuplicateLink, Store, Unmerged};

use super::{ConfigArg, load};

#[derive(Subcommand, Debug)]
pub enum DuplicatesCommand {
    /// List possible duplicates waiting for a person (`--state` for others).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// possible, merged, confirmed, rejected, unmerged or all.
        #[arg(long, default_value = "possible")]
        state: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one decision: the two tickets, the score and every reason.
    Show {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The two tickets are one matter: the later one gets `duplicateOf`, the
    /// earlier one takes its sources. Both changes go to the platform.
    Confirm {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// The two tickets are different matters.
    Reject {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        note: Option<String>,
    },
    /// Undo a merge: the record leaves the ticket it joined and gets a
    /// ticket of its own (its latest version, mapped again).
    Unmerge {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        note: Option<String>,
    },
    /// Precision and recall of merging on a labelled set of records, and
    /// every wrong decision with its reasons.
    Evaluate {
        /// The set (JSON lines, one record each with its matter's label).
        #[arg(long, default_value = "tests/data/dedup-evaluation.jsonl")]
        set: PathBuf,
        /// Override the merge threshold.
        #[arg(long)]
        merge: Option<f64>,
        /// Override the review threshold.
        #[arg(long)]
        review: Option<f64>,
        /// Weights to try instead of the ones the hub is built with (a CSV
        /// `hub duplicates fit --out` wrote).
        #[arg(long)]
        weights: Option<PathBuf>,
    },
    /// Fit the scorer's weights to labelled sets (logistic regression over
    /// every record-against-candidate decision) and write them as the CSV
    /// the hub is built with. Fit on tuning sets only, never on a held-out one.
    ///
    /// Example: hub duplicates fit --set tests/data/dedup-handwritten-tuning.jsonl
    /// --set tests/data/dedup-evaluation.jsonl --out hub/src/dedup/weights.csv
    Fit {
        /// A labelled set (repeat for several).
        #[arg(long, required = true)]
        set: Vec<PathBuf>,
        /// Where to write the weights (printed only, without).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Standard deviation of the prior around each feature's prior weight:
        /// smaller keeps weights closer to the priors.
        #[arg(long, default_value_t = 2.0)]
        sigma: f64,
        /// How much each set after the first counts, relative to the first
        /// (1: every set alike, however many decisions it makes).
        #[arg(long, default_value_t = 1.0)]
        others_weight: f64,
        /// Cross-validate on the first set: split its matters into this many
        /// folds (neighbouring matter numbers together, so a hard negative
        /// stays with the matter it confuses), fit without each fold and
        /// decide it with those weights; prints the pooled figures. How to
        /// choose --sigma, --others-weight and thresholds without a held-out set.
        #[arg(long, conflicts_with = "out")]
        folds: Option<usize>,
        /// Merge threshold for the cross-validated figures.
        #[arg(long, default_value_t = 0.9)]
        merge: f64,
        /// Review threshold for the cross-validated figures.
        #[arg(long, default_value_t = 0.5)]
        review: f64,
    },
}

pub async fn run(cmd: DuplicatesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DuplicatesCommand::List { config, state, limit } => {
            let store = open(&config).await?;
            let filter = (state != "all").then_some(state.as_str());
            let links = store.duplicate_links(filter, limit).await?;
            if links.is_empty() {
                println!("no {} duplicates", if filter.is_some() { state.as_str() } else { "kept" });
            }
            for l in &links {
                println!(
                    "#{:<5} {:<9} score {:.2}  {} {} → ticket {}{}",
                    l.id,
                    l.state,
                    l.score,
                    l.system,
                    l.record_id,
                    l.ticket_id,
                    if l.other_id != l.ticket_id { format!(" (like {})", l.other_id) } else { String::new() }
                );
            }
        }
        DuplicatesCommand::Show { id, config } => {
            let store = open(&config).await?;
            let l = store.duplicate_link(id).await?;
            print_link(&l);
            for ticket in [&l.ticket_id, &l.other_id] {
                if let Ok(t) = store.ticket(ticket).await {
                    let masker = hub::pii::Masker::of_ticket(&serde_json::to_value(&t.ticket)?);
                    println!(
                        "ticket {ticket}: r{} {} | {}",
                        t.ticket.revision,
                        t.ticket.draft.status.as_str(),
                        masker.text(t.ticket.draft.title.as_str())
                    );
                }
                if l.other_id == l.ticket_id {
                    break;
                }
            }
        }
        DuplicatesCommand::Confirm { id, config, note } => {
            let store = open(&config).await?;
            let l = store.confirm_duplicate(id, note.as_deref()).await?;
            println!(
                "confirmed: ticket {} is now a duplicate of {}, which took its sources; both changes are queued for the platform",
                l.ticket_id, l.other_id
            );
        }
        DuplicatesCommand::Reject { id, config, note } => {
            let store = open(&config).await?;
            let l = store.reject_duplicate(id, note.as_deref()).await?;
            println!("rejected: tickets {} and {} stay separate matters", l.ticket_id, l.other_id);
        }
        DuplicatesCommand::Unmerge { id, config, note } => {
            let settings = load(&config)?;
            let store = Store::open(&settings.database_url).await?;
            let l = store.duplicate_link(id).await?;
            let mappings = hub::sources::mappings(&settings);
            let mut mapped = Vec::new();
            for raw in store.raw_messages(&l.system, &l.record_id).await? {
                let m = mappings.map(&raw.record()).map_err(|u| {
                    anyhow::anyhow!("a message of the record no longer maps ({}); fix the mapping first", u.reason)
                })?;
                mapped.push((m, raw.record().received_at.with_timezone(&hub::ticket::beijing())));
            }
            let unmerged =
                Unmerged::rebuild(&l.system, mapped).context("the record has no message to rebuild it from")?;
            let new = store.unmerge(id, unmerged, note.as_deref()).await?;
            println!(
                "unmerged: {} {} left ticket {} and opened ticket {new}; both changes are queued for the platform",
                l.system, l.record_id, l.ticket_id
            );
        }
        DuplicatesCommand::Evaluate { set, merge, review, weights } => {
            return match weights {
                None => evaluate(&set, merge, review),
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read the weights {}", path.display()))?;
                    let weights =
                        hub::dedup::Weights::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    println!("with the weights of {}", path.display());
                    hub::dedup::with_weights(&weights, || evaluate(&set, merge, review))
                }
            };
        }
        DuplicatesCommand::Fit { set, out, sigma, others_weight, folds, merge, review } => {
            let fitting = Fitting { sigma, others_weight };
            return match folds {
                Some(k) => cross_validate(&set, fitting, k, hub::dedup::Thresholds { merge, review }),
                None => fit(&set, out.as_deref(), fitting),
            };
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn open(config: &ConfigArg) -> anyhow::Result<Store> {
    let settings = load(config)?;
    Store::open(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the store {}", super::redact_url(&settings.database_url)))
}

fn print_link(l: &DuplicateLink) {
    println!("decision #{} ({}), score {:.3}", l.id, l.state, l.score);
    println!("  record  {} {}", l.system, l.record_id);
    if l.other_id == l.ticket_id {
        println!("  joined  ticket {}", l.ticket_id);
    } else {
        println!("  opened  ticket {}, possibly the same matter as ticket {}", l.ticket_id, l.other_id);
    }
    println!("  reasons:");
    for r in &l.reasons {
        println!("    {r}");
    }
    if let Some(note) = &l.note {
        println!("  note: {note}");
    }
}

/// How a fit is made: the prior's width and how much the sets after the
/// first count.
#[derive(Clone, Copy, Debug)]
struct Fitting {
    sigma: f64,
    others_weight: f64,
}

impl Fitting {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.sigma > 0.0 && self.sigma.is_finite(), "--sigma must be a positive number");
        anyhow::ensure!(
            self.others_weight > 0.0 && self.others_weight.is_finite(),
            "--others-weight must be a positive number"
        );
        Ok(())
    }

    /// Fits on the examples of each set (the first one first). Each set
    /// counts alike, however many decisions it makes (a large generated set
    /// must not drown a small hand-written one), the later ones
    /// `others_weight` times as much as the first.
    fn fit(&self, sets: Vec<Vec<hub::dedup::Example>>) -> hub::dedup::Fitted {
        let total: usize = sets.iter().map(Vec::len).sum();
        let mean = total as f64 / sets.len().max(1) as f64;
        let mut examples = Vec::with_capacity(total);
        for (k, mut set) in sets.into_iter().enumerate() {
            let share = if k == 0 { 1.0 } else { self.others_weight };
            let each = share * mean / set.len().max(1) as f64;
            for e in &mut set {
                e.weight = each;
            }
            examples.extend(set);
        }
        hub::dedup::fit(&examples, self.sigma)
    }
}

fn fit(sets: &[PathBuf], out: Option<&std::path::Path>, fitting: Fitting) -> anyhow::Result<ExitCode> {
    fitting.check()?;
    let sigma = fitting.sigma;
    let rules = hub::dedup::CandidateRules::default();
    let mut per_set = Vec::new();
    let mut all_reports = Vec::new();
    for set in sets {
        let (reports, _) = load_set(set)?;
        let examples = hub::dedup::examples(&reports, &rules);
        eprintln!("{}: {} records, {} decisions", set.display(), reports.len(), examples.len());
        per_set.push(examples);
        all_reports.extend(reports);
    }
    print_gaps(&all_reports);
    let fitted = fitting.fit(per_set);
    println!(
        "{} decisions ({} same matter), {} iterations, log-loss {:.4} → {:.4}",
        fitted.examples, fitted.positives, fitted.iterations, fitted.loss_before, fitted.loss_after
    );
    println!("{:<34} {:>7} {:>7} {:>7}", "feature", "prior", "fitted", "seen");
    for (j, f) in hub::dedup::Feature::ALL.iter().enumerate() {
        println!("{:<34} {:>7.2} {:>7.2} {:>7}", f.name(), f.prior(), fitted.weights.get(*f), fitted.support[j]);
    }
    if let Some(out) = out {
        let names: Vec<String> = sets.iter().map(|s| s.display().to_string()).collect();
        let others = fitting.others_weight;
        let comment = format!(
            "Fitted by `hub duplicates fit` (logistic regression, prior sigma {sigma}, sets after the first counting {others}) on:\n{}\n{} decisions, {} of them the same matter; log-loss {:.4} (priors {:.4}).",
            names.join("\n"),
            fitted.examples,
            fitted.positives,
            fitted.loss_after,
            fitted.loss_before
        );
        std::fs::write(out, fitted.weights.to_csv(&comment))
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("written to {} (the hub is built with hub/src/dedup/weights.csv)", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// K-fold cross-validation on the first set: each fold's matters are
/// decided with weights fitted on the other folds and every other set, and
/// the pooled pairs give precision, recall and review load that were not
/// fitted on what they measure.
fn cross_validate(
    sets: &[PathBuf],
    fitting: Fitting,
    folds: usize,
    thresholds: hub::dedup::Thresholds,
) -> anyhow::Result<ExitCode> {
    fitting.check()?;
    anyhow::ensure!((2..=50).contains(&folds), "--folds must be between 2 and 50");
    let rules = hub::dedup::CandidateRules::default();
    let (first, _) = load_set(&sets[0])?;
    let mut others = Vec::new();
    for set in &sets[1..] {
        others.push(hub::dedup::examples(&load_set(set)?.0, &rules));
    }
    let fold_of = folds_by_matter_group(&first, folds);
    let groups = fold_of.iter().copied().max().map_or(0, |m| m + 1);
    anyhow::ensure!(
        groups == folds,
        "{} has too few groups of matters for {folds} folds: use --folds {groups} or fewer",
        sets[0].display()
    );
    let (mut merged, mut right, mut truth, mut possibles, mut records) = (0u64, 0u64, 0u64, 0usize, 0usize);
    for k in 0..folds {
        let (train, test): (Vec<_>, Vec<_>) = first.iter().cloned().zip(&fold_of).partition(|(_, fold)| **fold != k);
        let train: Vec<_> = train.into_iter().map(|(r, _)| r).collect();
        let test: Vec<_> = test.into_iter().map(|(r, _)| r).collect();
        let mut per_set = vec![hub::dedup::examples(&train, &rules)];
        per_set.extend(others.iter().cloned());
        let fitted = fitting.fit(per_set);
        let report = hub::dedup::with_weights(&fitted.weights, || hub::dedup::evaluate(&test, thresholds));
        println!(
            "fold {k}: {} records, precision {:.3}, recall {:.3}, review load {:.1}",
            report.reports,
            report.precision,
            report.recall,
            report.review_load()
        );
        merged += report.merged_pairs;
        right += report.right_pairs;
        truth += report.true_pairs;
        possibles += report.possibles;
        records += report.reports;
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    println!(
        "cross-validated ({folds} folds, sigma {}, others {}, merge ≥ {:.2}, review ≥ {:.2}): precision {:.3}, recall {:.3}, review load {:.1} per 100 records",
        fitting.sigma,
        fitting.others_weight,
        thresholds.merge,
        thresholds.review,
        ratio(right, merged),
        ratio(right, truth),
        possibles as f64 * 100.0 / records.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// The fold of each report: matters grouped by their label without its last
/// character (`H0101`, `H0102` → `H010`), so a hard negative written against
/// a matter is decided in the same fold as that matter; groups dealt to the
/// folds in order of first appearance.
fn folds_by_matter_group(reports: &[(String, hub::ticket::TicketDraft)], folds: usize) -> Vec<usize> {
    let group = |m: &str| m.char_indices().last().map_or(m.to_string(), |(i, _)| m[..i].to_string());
    let mut order: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    reports
        .iter()
        .map(|(m, _)| {
            let n = order.len();
            *order.entry(group(m)).or_insert(n) % folds
        })
        .collect()
}

/// Maps every line of the set with the shipped mappings, the way the
/// connectors hand records over, and runs the decisions in arrival order.
fn evaluate(set: &std::path::Path, merge: Option<f64>, review: Option<f64>) -> anyhow::Result<ExitCode> {
    let (reports, unmapped) = load_set(set)?;
    let base = hub::dedup::Thresholds::default();
    let thresholds =
        hub::dedup::Thresholds { merge: merge.unwrap_or(base.merge), review: review.unwrap_or(base.review) };
    let started = std::time::Instant::now();
    let report = hub::dedup::evaluate(&reports, thresholds);
    println!("{report}");
    let (precision, recall, pairs) = through_the_index(&reports, thresholds);
    println!(
        "through the hub's candidate index (anchors, places, identifiers; what intake runs): precision {precision:.3}, recall {recall:.3} over {pairs} same-matter pairs"
    );
    println!(
        "{} records ({unmapped} left out), thresholds merge {} review {}, decided in {:.0?}",
        reports.len(),
        thresholds.merge,
        thresholds.review,
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

/// How long after a matter's first report each later channel's report came,
/// by pair of channels: what the candidate windows are chosen from.
fn print_gaps(reports: &[(String, hub::ticket::TicketDraft)]) {
    use std::collections::BTreeMap;
    let mut first: BTreeMap<&str, (String, i64)> = BTreeMap::new();
    let mut gaps: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (matter, draft) in reports {
        let fp = hub::dedup::Fingerprint::of(draft);
        let channel = fp.channel.map_or("?", |c| c.as_str()).to_string();
        match first.get(matter.as_str()) {
            None => {
                first.insert(matter, (channel, fp.occurred));
            }
            Some((c, at)) => {
                let days = (fp.occurred - at) as f64 / 86_400.0;
                gaps.entry((c.clone(), channel)).or_default().push(days);
            }
        }
    }
    println!(
        "days from a matter's first report to a later one, by channels (first → later): n, median, 90th percentile, most"
    );
    for ((a, b), mut v) in gaps {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!("  {a:>15} → {b:<15} {:>4} {:>6.1} {:>6.1} {:>6.1}", v.len(), at(0.5), at(0.9), v[v.len() - 1]);
    }
}

/// A labelled set, each line mapped with the shipped mappings the way the
/// connectors hand records over: (matter, draft) in arrival order, and how
/// many lines did not map.
fn load_set(set: &std::path::Path) -> anyhow::Result<(Vec<(String, hub::ticket::TicketDraft)>, usize)> {
    use connectors::{ContentType, RawRecord};
    let text = std::fs::read_to_string(set).with_context(|| format!("cannot read the set {}", set.display()))?;
    let mut mappers = std::collections::HashMap::new();
    let mut reports = Vec::new();
    let mut unmapped = 0;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", set.display(), n + 1))?;
        let field = |k: &str| v[k].as_str();
        let (Some(matter), Some(system), Some(payload)) = (field("matter"), field("system"), field("payload")) else {
            anyhow::bail!("{}:{}: needs matter, system and payload", set.display(), n + 1);
        };
        let mapper = match mappers.entry(system.to_string()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                hub::mapping::shipped::mapper(system)
                    .with_context(|| format!("{}:{}: no shipped mapping for `{system}`", set.display(), n + 1))?
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        };
        let xml = field("contentType") == Some("xml");
        let mut r =
            RawRecord::new(system, if xml { ContentType::Xml } else { ContentType::Json }, payload.as_bytes().to_vec());
        if let Some(e) = field("encoding").filter(|_| !xml) {
            r = r.with_encoding(e);
        }
        if let Some(k) = field("routingKey") {
            r = r.with_meta("routing_key", k);
        }
        if let Some(t) = field("topic") {
            r = r.with_meta("topic", t);
            if let [_, county, worker, kind] = t.split('/').collect::<Vec<_>>()[..] {
                r = r.with_meta("county", county).with_meta("worker_id", worker).with_meta("kind", kind);
            }
        }
        match hub::mapping::Mapper::map(&*mapper, &r) {
            Ok(m) => reports.push((matter.to_string(), m.applied.draft)),
            Err(u) => {
                unmapped += 1;
                eprintln!("{}:{}: left out, it does not map: {}", set.display(), n + 1, u.reason);
            }
        }
    }
    Ok((reports, unmapped))
}

/// Replays the set through [`hub::store::MatchIndex`], the candidate search
/// intake uses, and scores the grouping pairwise: precision is the share of
/// record pairs put in one ticket that are one matter, recall the share of
/// one-matter pairs put in one ticket.
fn through_the_index(
    reports: &[(String, hub::ticket::TicketDraft)],
    thresholds: hub::dedup::Thresholds,
) -> (f64, f64, usize) {
    let mut index = hub::store::MatchIndex::new(hub::dedup::CandidateRules::default());
    let mut ticket_of: Vec<String> = Vec::with_capacity(reports.len());
    let none = std::collections::HashSet::new();
    for (i, (_, draft)) in reports.iter().enumerate() {
        let print = hub::dedup::Fingerprint::of(draft);
        let ticket = match index.decide(&print, &Default::default(), &thresholds, &none) {
            hub::dedup::Decision::Merge { ticket, .. } => ticket,
            _ => format!("T{i}"),
        };
        index.add(&ticket, "set", &i.to_string(), print);
        ticket_of.push(ticket);
    }
    let (mut together, mut together_right, mut same) = (0usize, 0usize, 0usize);
    for a in 0..reports.len() {
        for b in a + 1..reports.len() {
            let one_matter = reports[a].0 == reports[b].0;
            let one_ticket = ticket_of[a] == ticket_of[b];
            same += usize::from(one_matter);
            together += usize::from(one_ticket);
            together_right += usize::from(one_ticket && one_matter);
        }
    }
    let precision = if together == 0 { 1.0 } else { together_right as f64 / together as f64 };
    let recall = if same == 0 { 1.0 } else { together_right as f64 / same as f64 };
    (precision, recall, same)
}
