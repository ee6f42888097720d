//! What happens to one ticket on the platform, as a list of status events
//! in the order they are sent: 派单 to a department with a deadline, maybe
//! 催办, maybe 上报 to a city bureau, 办结 (with the mediation outcome when
//! the matter is a court's dispute), closed, and maybe the citizen's
//! rating. A round after a frown is shorter: dispatched again, resolved,
//! closed and rated satisfied. Pure, so that it can be tested on its own.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};

use super::CallbackConfig;
use super::departments;
use crate::agencies::content::Rng;

/// A ticket the platform took, with what its events need to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub ticket_id: String,
    /// The ticket's region code, for the departments it is dispatched to.
    pub region: Option<String>,
    /// `court.caseNo`: a dispute a court waits for.
    pub case_no: Option<String>,
}

impl Accepted {
    /// Reads what a lifecycle needs from a ticket body as the hub PUT it.
    pub fn from_body(ticket_id: &str, body: &Value) -> Accepted {
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Accepted {
            ticket_id: ticket_id.to_string(),
            region: text(&body["region"]["code"]),
            case_no: text(&body["court"]["caseNo"]),
        }
    }
}

/// One event to send.
#[derive(Clone, Debug)]
pub struct Planned {
    pub event_id: String,
    pub status: &'static str,
    pub body: Value,
    /// When to send it, after the round started.
    pub send_after: Duration,
    /// Sent a second time with the same `X-Event-Id` (a platform that did
    /// not hear the first answer).
    pub repeat: bool,
    /// Sent after a newer event of its ticket: the hub records it, and
    /// nothing moves back.
    pub late: bool,
    /// The rating carried: `Some(false)` is a frown.
    pub satisfied: Option<bool>,
}

const DISPATCH_NOTES: &[&str] = &["请于3个工作日内办理并回复", "请尽快核实处置，按时反馈", "请联系诉求人，按时限办理"];
const URGE_NOTES: &[&str] = &["承诺时限已过半，请加快办理", "诉求人再次来电，请优先处理"];
const ESCALATE_NOTES: &[&str] = &["涉及多个部门，提请市级协调", "区级无法解决，上报市级部门"];
const RESOLVE_NOTES: &[&str] = &["已现场处置完毕", "已整改完成，经复查合格", "已答复诉求人，问题已解决"];
const CLOSE_NOTES: &[&str] = &["回访完毕，予以办结", "经回访，予以结案"];

/// The events of one round for `ticket`, the first at `start` (Beijing
/// time) plus one step; each next one a step (0.5–1.5 × `cfg.step`) later,
/// its `at` the moment it is due, so that `at` grows as a real platform's does.
pub fn round(
    cfg: &CallbackConfig,
    rng: &mut Rng,
    ticket: &Accepted,
    start: DateTime<FixedOffset>,
    first: bool,
) -> Vec<Planned> {
    let departments = departments::of_region(ticket.region.as_deref());
    let mut elapsed = Duration::ZERO;
    let mut step = |rng: &mut Rng| {
        elapsed += cfg.step.mul_f64(0.5 + rng.unit());
        elapsed
    };
    let mut events: Vec<(Duration, &'static str, Value, Option<bool>)> = Vec::new();
    let at = |after: Duration| start + chrono::Duration::from_std(after).unwrap_or_default();
    let stamp = |t: DateTime<FixedOffset>| t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
    let due = |t: DateTime<FixedOffset>, days: u64| stamp(t + chrono::Duration::days(days as i64));

    let department = *rng.pick(departments);
    let t = step(rng);
    let note = if first { *rng.pick(DISPATCH_NOTES) } else { "诉求人不满意，重新派单办理" };
    events.push((
        t,
        "dispatched",
        json!({"department": department, "dueAt": due(at(t), rng.range(3, 7)), "note": note}),
        None,
    ));
    let mut current = department;
    if first && rng.chance(cfg.urge_share) {
        let t = step(rng);
        events.push((t, "urged", json!({"department": current, "note": *rng.pick(URGE_NOTES)}), None));
    }
    if first && rng.chance(cfg.escalate_share) {
        let t = step(rng);
        current = *rng.pick(departments::ESCALATED);
        events.push((
            t,
            "escalated",
            json!({"department": current, "dueAt": due(at(t), rng.range(5, 10)), "note": *rng.pick(ESCALATE_NOTES)}),
            None,
        ));
    }
    let t = step(rng);
    let mut resolved = json!({"department": current, "note": *rng.pick(RESOLVE_NOTES)});
    if first && let Some(case_no) = &ticket.case_no {
        let agreed = rng.chance(cfg.agreed_share);
        resolved["mediation"] = json!({"caseNo": case_no, "result": if agreed { "AGREED" } else { "FAILED" }});
        resolved["note"] = json!(if agreed {
            "经调解，双方达成协议"
        } else {
            "调解未成，已告知当事人诉讼途径"
        });
    }
    events.push((t, "resolved", resolved, None));
    let t = step(rng);
    let mut closed = json!({"department": current, "note": *rng.pick(CLOSE_NOTES)});
    let rating =
        if first { rng.chance(cfg.rate_share).then(|| !rng.chance(cfg.unsatisfied_share)) } else { Some(true) };
    if let Some(satisfied) = rating {
        let result = if satisfied { "satisfied" } else { "unsatisfied" };
        closed["evaluation"] = json!({"result": result, "by": "citizen", "at": stamp(at(t))});
    }
    events.push((t, "closed", closed, rating));

    // Out of order: the urging goes after the event that followed it.
    let late_one = if first && rng.chance(cfg.out_of_order_share) {
        events.iter().position(|e| e.1 == "urged").filter(|i| i + 1 < events.len())
    } else {
        None
    };
    let mut planned: Vec<Planned> = events
        .into_iter()
        .map(|(t, status, mut body, satisfied)| {
            body["ticketId"] = json!(ticket.ticket_id);
            body["status"] = json!(status);
            body["at"] = json!(stamp(at(t)));
            if body.get("dueAt").is_none() {
                body["dueAt"] = Value::Null;
            }
            Planned {
                event_id: uuid::Uuid::new_v4().to_string(),
                status,
                body,
                send_after: t,
                repeat: rng.chance(cfg.duplicate_share),
                late: false,
                satisfied,
            }
        })
        .collect();
    if let Some(i) = late_one {
        // Swap what is sent, not when: the older event goes second.
        let (a, b) = (planned[i].send_after, planned[i + 1].send_after);
        planned.swap(i, i + 1);
        planned[i].send_after = a;
        planned[i + 1].send_after = b;
        planned[i + 1].late = true;
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<FixedOffset> {
        "2026-12-04T09:00:00+08:00".parse().unwrap()
    }

    fn ticket(case_no: Option<&str>) -> Accepted {
        Accepted { ticket_id: "t1".into(), region: Some("220402002".into()), case_no: case_no.map(str::to_string) }
    }

    #[test]
    fn a_round_runs_from_dispatch_to_closure_with_growing_times() {
        let cfg = CallbackConfig { urge_share: 1.0, escalate_share: 1.0, ..CallbackConfig::new("http://x", "s") };
        let plan = round(&cfg, &mut Rng::new(1), &ticket(None), start(), true);
        let statuses: Vec<&str> = plan.iter().map(|p| p.status).collect();
        assert_eq!(statuses, ["dispatched", "urged", "escalated", "resolved", "closed"]);
        let ats: Vec<&str> = plan.iter().map(|p| p.body["at"].as_str().unwrap()).collect();
        assert!(ats.windows(2).all(|w| w[0] < w[1]), "{ats:?}");
        assert!(plan.windows(2).all(|w| w[0].send_after < w[1].send_after));
        let dispatched = &plan[0].body;
        assert!(departments::of_region(Some("220402")).contains(&dispatched["department"].as_str().unwrap()));
        assert!(dispatched["dueAt"].as_str().unwrap() > dispatched["at"].as_str().unwrap());
        assert!(departments::ESCALATED.contains(&plan[2].body["department"].as_str().unwrap()));
        assert!(plan[3].body.get("mediation").is_none(), "no court case, no mediation");
        assert!(plan.iter().all(|p| p.body["ticketId"] == "t1" && !p.late));
    }

    #[test]
    fn a_courts_dispute_is_resolved_with_its_mediation_outcome() {
        let cfg = CallbackConfig::new("http://x", "s");
        let plan = round(&cfg, &mut Rng::new(2), &ticket(Some("(2024)吉0402民诉前调101号")), start(), true);
        let resolved = plan.iter().find(|p| p.status == "resolved").unwrap();
        assert_eq!(resolved.body["mediation"]["caseNo"], "(2024)吉0402民诉前调101号");
        assert!(["AGREED", "FAILED"].contains(&resolved.body["mediation"]["result"].as_str().unwrap()));
        let again = round(&cfg, &mut Rng::new(2), &ticket(Some("x")), start(), false);
        assert!(again.iter().all(|p| p.body.get("mediation").is_none()), "one outcome per case");
        assert_eq!(again.last().unwrap().satisfied, Some(true), "the second round ends satisfied");
    }

    #[test]
    fn out_of_order_sends_the_older_urging_after_the_newer_event() {
        let cfg = CallbackConfig { urge_share: 1.0, out_of_order_share: 1.0, ..CallbackConfig::new("http://x", "s") };
        let plan = round(&cfg, &mut Rng::new(3), &ticket(None), start(), true);
        let late = plan.iter().position(|p| p.late).expect("one late event");
        assert_eq!(plan[late].status, "urged");
        assert!(plan[late].body["at"].as_str() < plan[late - 1].body["at"].as_str());
        assert!(plan[late].send_after > plan[late - 1].send_after, "sent second");
    }

    #[test]
    fn a_frown_is_an_unsatisfied_rating_on_closure() {
        let cfg = CallbackConfig { rate_share: 1.0, unsatisfied_share: 1.0, ..CallbackConfig::new("http://x", "s") };
        let plan = round(&cfg, &mut Rng::new(4), &ticket(None), start(), true);
        let closed = plan.last().unwrap();
        assert_eq!((closed.status, closed.satisfied), ("closed", Some(false)));
        assert_eq!(closed.body["evaluation"]["result"], "unsatisfied");
        assert_eq!(closed.body["evaluation"]["by"], "citizen");
    }

    #[test]
    fn what_a_lifecycle_needs_is_read_from_the_ticket_body() {
        let body = json!({"region": {"code": "220403001"}, "court": {"caseNo": "(2024)吉0403民诉前调5号"}});
        let a = Accepted::from_body("t9", &body);
        assert_eq!((a.region.as_deref(), a.case_no.as_deref()), (Some("220403001"), Some("(2024)吉0403民诉前调5号")));
        assert_eq!(Accepted::from_body("t9", &json!({})).case_no, None);
    }
}
