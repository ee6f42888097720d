//! Small drafts for the unit tests.

use crate::ticket::{Category, Channel, Kind, Phone, Region, RegionCode, Reporter, Status, TicketDraft, Title};

pub(crate) fn draft(
    kind: &str,
    category: &str,
    text: &str,
    region: &str,
    address: Option<&str>,
    at: &str,
) -> TicketDraft {
    let code = RegionCode::parse(region).expect("region code");
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("time");
    TicketDraft {
        kind: kind.parse::<Kind>().expect("kind"),
        category: Category::try_from(category.to_string()).expect("category"),
        title: Title::new(text),
        description: text.to_string(),
        region: Region { level: code.level(), code, name: String::new() },
        address: address.map(str::to_string),
        geo: None,
        occurred_at: at,
        reported_at: at,
        due_at: None,
        urgent: false,
        reporters: Vec::new(),
        attachments: Vec::new(),
        court: None,
        status: Status::New,
        evaluation: None,
    }
}

pub(crate) fn with_reporter(mut d: TicketDraft, name: &str, phone: &str) -> TicketDraft {
    d.reporters.push(Reporter {
        channel: Channel::Hotline,
        name: Some(name.to_string()),
        phone: Some(Phone::parse(phone).expect("phone")),
        id_number: None,
        anonymous: false,
    });
    d
}
