//! The platform's side of a ticket: what its callbacks said (派单 to a
//! department with a deadline, 催办, 上报, 办结, the citizen's rating). Kept
//! apart from what the sources say, and laid over every revision the hub
//! sends later, so that a hotline's `order.updated` for a dispatched matter
//! does not send it back to `new`.

use serde::{Deserialize, Serialize};

use super::{Evaluation, EvaluationResult, Status, TicketDraft, Timestamp};
use crate::callbacks::event::{EventStatus, PlatformEvent};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handling {
    /// The status the platform's last applied event set.
    pub status: Option<Status>,
    pub department: Option<String>,
    pub due_at: Option<Timestamp>,
    pub evaluation: Option<Evaluation>,
    /// How many times the matter was sent back (a frown, or `reopened`).
    pub reopened: u32,
    /// The `at` of the newest event applied: an older one is recorded and
    /// changes nothing.
    pub last_event_at: Option<Timestamp>,
    /// Sent back (a frown, or `reopened`) and not resolved or closed since:
    /// the platform's `reopened` for a matter the hub sent back, or another
    /// frown on it, confirms what the origins were told already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sent_back: bool,
}

/// What an event did to the ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Older than the last event applied: recorded only.
    Stale,
    /// The platform's state moved; the platform knows it already, so the
    /// ticket is not sent again for it.
    Applied,
    /// A dissatisfied rating sent the matter back: the hub tells the
    /// platform (a new revision) and the origins.
    Reopened,
    /// It says what the ticket's state says already (a `reopened`, or a
    /// frown, for a matter sent back and not resolved since): recorded,
    /// the origins are not told twice.
    Confirmed,
}

impl Handling {
    /// Applies an event whose status is `status`. Events of one ticket may
    /// arrive out of order; one older than the newest applied does not move
    /// the state back.
    pub fn apply(&mut self, status: EventStatus, event: &PlatformEvent) -> Effect {
        if self.last_event_at.is_some_and(|last| event.at < last) {
            return Effect::Stale;
        }
        self.last_event_at = Some(event.at);
        if status == EventStatus::Reopened && self.sent_back {
            return Effect::Confirmed;
        }
        if let Some(s) = status.ticket_status() {
            self.status = Some(s);
        }
        match status {
            EventStatus::Resolved | EventStatus::Closed => self.sent_back = false,
            EventStatus::Reopened => self.sent_back = true,
            _ => {}
        }
        if let Some(d) = event.department.as_ref().filter(|d| !d.trim().is_empty())
            && matches!(status, EventStatus::Dispatched | EventStatus::Escalated)
        {
            self.department = Some(d.trim().to_string());
        }
        if let Some(due) = event.due_at {
            self.due_at = Some(due);
        }
        if status == EventStatus::Reopened {
            self.reopened += 1;
        }
        if let Some(e) = &event.evaluation {
            self.evaluation = Some(Evaluation { result: e.result, by: e.by.clone(), at: e.at.unwrap_or(event.at) });
            if e.result == EvaluationResult::Unsatisfied && status != EventStatus::Reopened {
                if self.sent_back {
                    return Effect::Confirmed;
                }
                self.send_back();
                return Effect::Reopened;
            }
        }
        Effect::Applied
    }

    /// A frown sent the matter back to its department.
    pub fn send_back(&mut self) {
        self.status = Some(Status::InProgress);
        self.reopened += 1;
        self.sent_back = true;
    }

    /// The ticket as the platform's newest event leaves it: its status, as
    /// well as what [`Handling::overlay`] lays over.
    pub fn impose(&self, draft: &mut TicketDraft) {
        if let Some(s) = self.status {
            draft.status = s;
        }
        self.overlay(draft);
    }

    /// Lays what the platform said over a draft the sources made: its
    /// status stands against a source's `new` (any other status a source
    /// sends, such as withdrawn or a worker's closure, is news and stays),
    /// its deadline and the newer evaluation win.
    pub fn overlay(&self, draft: &mut TicketDraft) {
        if let Some(s) = self.status
            && draft.status == Status::New
        {
            draft.status = s;
        }
        if self.due_at.is_some() {
            draft.due_at = self.due_at;
        }
        if let Some(e) = &self.evaluation
            && draft.evaluation.as_ref().is_none_or(|own| own.at <= e.at)
        {
            draft.evaluation = Some(e.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: &str, at: &str, extra: serde_json::Value) -> PlatformEvent {
        let mut v = serde_json::json!({"ticketId": "t1", "status": status, "at": at});
        if let serde_json::Value::Object(m) = extra {
            v.as_object_mut().unwrap().extend(m);
        }
        serde_json::from_value(v).unwrap()
    }

    fn apply(h: &mut Handling, e: &PlatformEvent) -> Effect {
        h.apply(EventStatus::parse(&e.status).unwrap(), e)
    }

    #[test]
    fn an_older_event_is_recorded_and_does_not_move_the_status_back() {
        let mut h = Handling::default();
        let resolved = event("resolved", "2026-12-04T15:00:00+08:00", serde_json::json!({}));
        let dispatched = event(
            "dispatched",
            "2026-12-04T09:00:00+08:00",
            serde_json::json!({"department": "南康街道城管科", "dueAt": "2026-12-07T18:00:00+08:00"}),
        );
        assert_eq!(apply(&mut h, &resolved), Effect::Applied);
        assert_eq!(apply(&mut h, &dispatched), Effect::Stale);
        assert_eq!((h.status, h.department.as_deref()), (Some(Status::Resolved), None));
    }

    #[test]
    fn a_frown_reopens_and_a_source_update_keeps_the_platforms_state() {
        let mut h = Handling::default();
        let d = event(
            "dispatched",
            "2026-12-04T09:00:00+08:00",
            serde_json::json!({"department": "龙山区住建局", "dueAt": "2026-12-09T18:00:00+08:00"}),
        );
        assert_eq!(apply(&mut h, &d), Effect::Applied);
        let u = event("urged", "2026-12-05T09:00:00+08:00", serde_json::json!({"department": "不该改变"}));
        assert_eq!(apply(&mut h, &u), Effect::Applied);
        assert_eq!(h.department.as_deref(), Some("龙山区住建局"), "urging names no new department");
        let frown = event(
            "closed",
            "2026-12-06T09:00:00+08:00",
            serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
        );
        assert_eq!(apply(&mut h, &frown), Effect::Reopened);
        assert_eq!((h.status, h.reopened), (Some(Status::InProgress), 1));

        let mut draft = crate::ticket::tests::sample_draft();
        draft.status = Status::New;
        draft.due_at = None;
        h.overlay(&mut draft);
        assert_eq!(draft.status, Status::InProgress, "not back to new");
        assert_eq!(draft.due_at, d.due_at);
        assert_eq!(draft.evaluation.as_ref().map(|e| e.result), Some(EvaluationResult::Unsatisfied));
        let mut withdrawn = crate::ticket::tests::sample_draft();
        withdrawn.status = Status::Withdrawn;
        h.overlay(&mut withdrawn);
        assert_eq!(withdrawn.status, Status::Withdrawn, "the citizen's withdrawal is news");
    }

    #[test]
    fn a_reopened_for_a_matter_sent_back_confirms_it_and_a_resolution_ends_that() {
        let mut h = Handling::default();
        let frown = |at: &str| {
            event("closed", at, serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}))
        };
        assert_eq!(apply(&mut h, &frown("2026-12-06T09:00:00+08:00")), Effect::Reopened);
        let r = event("reopened", "2026-12-06T09:05:00+08:00", serde_json::json!({}));
        assert_eq!(apply(&mut h, &r), Effect::Confirmed);
        assert_eq!((h.reopened, h.sent_back), (1, true));
        let done = event("resolved", "2026-12-07T09:00:00+08:00", serde_json::json!({}));
        assert_eq!(apply(&mut h, &done), Effect::Applied);
        assert!(!h.sent_back);
        let r = event("reopened", "2026-12-08T09:00:00+08:00", serde_json::json!({}));
        assert_eq!(apply(&mut h, &r), Effect::Applied, "the platform's own reopening is news");
        assert_eq!((h.reopened, h.sent_back), (2, true));
    }
}
