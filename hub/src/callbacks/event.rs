//! What a platform callback says: the body of `POST /api/v1/platform/events`.

use serde::Deserialize;

use crate::ticket::{EvaluationResult, Status, Timestamp};

/// One status event of a ticket, as the platform sends it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformEvent {
    pub ticket_id: String,
    /// Read as text first: an unknown status is kept for a person (422),
    /// not refused as unreadable.
    pub status: String,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    #[serde(default)]
    pub note: Option<String>,
    pub at: Timestamp,
    #[serde(default)]
    pub evaluation: Option<PlatformEvaluation>,
    #[serde(default)]
    pub mediation: Option<Mediation>,
}

/// The citizen's 笑脸/苦脸 given to the platform.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PlatformEvaluation {
    pub result: EvaluationResult,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub at: Option<Timestamp>,
}

/// The outcome of a dispute mediated at the centre that a court waits for.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mediation {
    pub case_no: String,
    pub result: MediationResult,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum MediationResult {
    #[serde(rename = "AGREED")]
    Agreed,
    #[serde(rename = "FAILED")]
    Failed,
}

impl MediationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            MediationResult::Agreed => "AGREED",
            MediationResult::Failed => "FAILED",
        }
    }
}

/// The statuses a callback may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventStatus {
    /// 派单: to a department, with a deadline.
    Dispatched,
    /// 催办: the department is urged; nothing else changes.
    Urged,
    /// 上报: to the next tier, with the new department.
    Escalated,
    /// 办结.
    Resolved,
    Closed,
    /// 重办, after a dissatisfied evaluation.
    Reopened,
    /// Not the platform's: the hub's reminder that a deadline is near,
    /// told to the reporting grid workers.
    DueSoon,
}

impl EventStatus {
    pub const ALL: [&'static str; 6] = ["dispatched", "urged", "escalated", "resolved", "closed", "reopened"];

    /// A status a mapping's `[feedback] statuses` may name: the platform's,
    /// and the hub's own `due_soon`.
    pub fn named(text: &str) -> Option<EventStatus> {
        if text == "due_soon" { Some(EventStatus::DueSoon) } else { Self::parse(text) }
    }

    /// A status as the platform sends it.
    pub fn parse(text: &str) -> Option<EventStatus> {
        Some(match text {
            "dispatched" => EventStatus::Dispatched,
            "urged" => EventStatus::Urged,
            "escalated" => EventStatus::Escalated,
            "resolved" => EventStatus::Resolved,
            "closed" => EventStatus::Closed,
            "reopened" => EventStatus::Reopened,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Dispatched => "dispatched",
            EventStatus::Urged => "urged",
            EventStatus::Escalated => "escalated",
            EventStatus::Resolved => "resolved",
            EventStatus::Closed => "closed",
            EventStatus::Reopened => "reopened",
            EventStatus::DueSoon => "due_soon",
        }
    }

    /// The ticket's status after this event; `None` leaves it (urged).
    pub fn ticket_status(self) -> Option<Status> {
        match self {
            EventStatus::Dispatched | EventStatus::Escalated => Some(Status::Dispatched),
            EventStatus::Urged | EventStatus::DueSoon => None,
            EventStatus::Resolved => Some(Status::Resolved),
            EventStatus::Closed => Some(Status::Closed),
            EventStatus::Reopened => Some(Status::InProgress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_mediation_reads_with_its_case() {
        let e: PlatformEvent = serde_json::from_str(
            r#"{"ticketId":"t1","status":"resolved","department":"龙山区司法局","dueAt":null,"note":"调解成功",
                "at":"2026-12-04T10:00:00+08:00","mediation":{"caseNo":"(2026)吉0402民诉前调1234号","result":"AGREED"}}"#,
        )
        .unwrap();
        assert_eq!(EventStatus::parse(&e.status), Some(EventStatus::Resolved));
        assert_eq!(e.mediation.unwrap().result, MediationResult::Agreed);
        assert_eq!(EventStatus::parse("archived"), None);
    }
}
