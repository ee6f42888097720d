//! A grid worker's messages (contract: terminal.md) through the shipped
//! mapping into the store. The event's ticket is keyed on `eventId`, each
//! message on its `msgId`; the report and the partial updates (progress,
//! evaluation) each keep their own order.

use super::*;

const EVENT: &str = "W0412-20240715-0007";
/// 2024-07-15 09:20 +08:00, when it happened.
const T0: i64 = 1_721_006_400_000;
const HOUR: i64 = 3_600_000;
const REASON: &str = "义宁街下水井井盖缺失，夜间行人易跌落";
const NOTE_1: &str = "市政人员已到场设置围挡";
const NOTE_2: &str = "井盖已订购，明日安装";

fn mappings() -> Mappings {
    let mut m = Mappings::new();
    let terminal = crate::mapping::shipped::mapper("terminal").expect("shipped").expect("loads");
    m.insert("terminal", Arc::new(terminal));
    m
}

fn msg_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn message(kind: &str, body: serde_json::Value) -> IntakeItem {
    let item = mapped(kind, body);
    assert!(item.change.is_ok(), "{kind} does not map: {:?}", item.change.as_ref().err());
    item
}

fn mapped(kind: &str, body: serde_json::Value) -> IntakeItem {
    let rec = RawRecord::new("terminal", ContentType::Json, body.to_string())
        .with_encoding("utf-8")
        .with_meta("topic", format!("grid/220402/W0412/{kind}"))
        .with_meta("county", "220402")
        .with_meta("worker_id", "W0412")
        .with_meta("kind", kind);
    prepare(&rec, &mappings(), &IntakeSettings::default())
}

fn report(n: u32) -> IntakeItem {
    message(
        "report",
        serde_json::json!({
            "msgId": msg_id(n), "eventId": EVENT, "workerId": "W0412", "gridId": "220402002007-G05",
            "reason": REASON, "category": "城市管理/市政设施",
            "location": {"address": "龙山区南康街道义宁街康宁路口", "lat": 42.9027, "lng": 125.1451},
            "occurredAt": T0, "deadlineHours": 24,
            "photos": [{"url": "https://terminal.example/p/W0412/r.jpg"}],
        }),
    )
}

fn progress(n: u32, note: &str, at: i64) -> IntakeItem {
    message(
        "progress",
        serde_json::json!({
            "msgId": msg_id(n), "eventId": EVENT, "workerId": "W0412", "note": note, "at": at,
            "photos": [{"url": format!("https://terminal.example/p/W0412/{n}.jpg")}],
        }),
    )
}

fn evaluation(n: u32, at: i64) -> IntakeItem {
    message(
        "evaluation",
        serde_json::json!({
            "msgId": msg_id(n), "eventId": EVENT, "workerId": "W0412", "result": "smile", "closed": true,
            "comment": "已修复", "at": at,
        }),
    )
}

/// Every change the platform receives, in order (each acknowledged).
async fn delivered(store: &Store) -> Vec<crate::ticket::Ticket> {
    let mut out = Vec::new();
    loop {
        let leased = store.lease("platform", 10, 60_000).await.unwrap();
        if leased.is_empty() {
            return out;
        }
        for c in &leased {
            out.push(serde_json::from_str(&c.body).unwrap());
        }
        store.complete(&leased.into_iter().map(|c| (c, DeliveryResult::Done)).collect::<Vec<_>>()).await.unwrap();
    }
}

on_both!(a_report_after_its_progress_note_still_fills_the_ticket, |store, _url| {
    let StoredOutcome::Created { ticket_id, .. } = one(&store, progress(2, NOTE_1, T0 + HOUR)).await else {
        panic!("the progress note opens the event's ticket")
    };
    let filled = one(&store, report(1)).await;
    assert_eq!(filled, StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 });

    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    let d = &t.draft;
    assert_eq!(d.category.as_str(), "0101", "the report's category, not 9999");
    assert!(d.title.as_str().contains(REASON), "{}", d.title.as_str());
    assert_eq!(d.description, format!("{REASON}\n{NOTE_1}"), "the report's words, then the note");
    assert_eq!(d.status, crate::ticket::Status::InProgress, "the newer note's status stays");
    assert_eq!(d.region.code.as_str(), "220402002007", "the grid cell's village");
    assert!(d.address.is_some() && d.geo.is_some() && d.due_at.is_some());
    assert_eq!(d.attachments.len(), 2, "the report's photo and the note's");
    assert_eq!((t.sources.len(), t.sources[0].record_id.as_str()), (1, EVENT));

    // And that is what the platform gets.
    let sent = delivered(&store).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].draft, t.draft);

    // A later progress note still applies on top, in its own order.
    let later = one(&store, progress(3, NOTE_2, T0 + 2 * HOUR)).await;
    assert!(matches!(later, StoredOutcome::Updated { revision: 3, .. }), "{later:?}");
    let d = store.ticket(&ticket_id).await.unwrap().ticket.draft;
    assert_eq!(d.description, format!("{REASON}\n{NOTE_1}\n{NOTE_2}"));
    assert_eq!(d.category.as_str(), "0101");
});

on_both!(a_report_behind_its_progress_note_in_one_batch_fills_the_ticket, |store, _url| {
    let out = store.store_batch(&[progress(2, NOTE_1, T0 + HOUR), report(1)]).await;
    let labels: Vec<&str> = out.iter().map(|o| o.as_ref().unwrap().label()).collect();
    assert_eq!(labels, ["created", "updated"]);
    let Ok(StoredOutcome::Created { ticket_id, .. }) = &out[0] else { unreachable!() };
    let d = store.ticket(ticket_id).await.unwrap().ticket.draft;
    assert_eq!(d.description, format!("{REASON}\n{NOTE_1}"));
    assert_eq!((d.category.as_str(), d.status), ("0101", crate::ticket::Status::InProgress));
});

on_both!(a_quarantined_report_replayed_after_its_progress_fills_the_ticket, |store, _url| {
    // The report came in while the mapping could not take it; its note did not wait.
    let mut body: serde_json::Value = serde_json::from_slice(&report(1).payload).unwrap();
    body["gridId"] = "G05".into();
    let StoredOutcome::Quarantined { quarantine_id, .. } = one(&store, mapped("report", body)).await else {
        panic!("not quarantined")
    };
    let StoredOutcome::Created { ticket_id, .. } = one(&store, progress(2, NOTE_1, T0 + HOUR)).await else {
        panic!("not created")
    };
    let replayed = store.resolve_quarantine(quarantine_id, &report(1)).await.unwrap();
    assert_eq!(replayed, StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 });
    let d = store.ticket(&ticket_id).await.unwrap().ticket.draft;
    assert!(d.description.starts_with(REASON), "{}", d.description);
    assert_eq!(d.category.as_str(), "0101");
});

on_both!(two_messages_of_one_event_at_the_same_moment_both_apply, |store, _url| {
    let StoredOutcome::Created { ticket_id, .. } = one(&store, report(1)).await else { panic!("not created") };
    let at = T0 + HOUR;
    // One in a batch of its own, then two more at that moment in one batch.
    assert!(matches!(one(&store, progress(2, NOTE_1, at)).await, StoredOutcome::Updated { .. }));
    let both = store.store_batch(&[progress(3, NOTE_2, at), evaluation(4, at)]).await;
    let labels: Vec<&str> = both.iter().map(|o| o.as_ref().unwrap().label()).collect();
    assert_eq!(labels, ["updated", "updated"]);
    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(t.revision, 4);
    assert!(t.draft.description.contains(NOTE_1) && t.draft.description.contains(NOTE_2), "{}", t.draft.description);
    assert!(t.draft.evaluation.is_some());
});

on_both!(a_resend_is_a_duplicate_and_an_older_progress_does_not_take_back_the_status, |store, _url| {
    let StoredOutcome::Created { ticket_id, .. } = one(&store, report(1)).await else { panic!("not created") };
    assert!(matches!(one(&store, evaluation(3, T0 + 3 * HOUR)).await, StoredOutcome::Updated { revision: 2, .. }));
    // The same message again, on its own and twice in one batch: nothing changes.
    assert_eq!(one(&store, evaluation(3, T0 + 3 * HOUR)).await, StoredOutcome::Duplicate);
    let twice = store.store_batch(&[report(1), report(1)]).await;
    assert!(twice.iter().all(|o| matches!(o, Ok(StoredOutcome::Duplicate))), "{twice:?}");

    // A progress note written before the evaluation arrives after it: its
    // words and photo are added, the status stays closed.
    let late = one(&store, progress(2, NOTE_1, T0 + HOUR)).await;
    assert_eq!(late, StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 3 });
    let d = store.ticket(&ticket_id).await.unwrap().ticket.draft;
    assert_eq!(d.status, crate::ticket::Status::Closed);
    assert!(d.evaluation.is_some());
    assert!(d.description.contains(NOTE_1), "{}", d.description);
    assert_eq!(d.attachments.len(), 2);
    assert_eq!(one(&store, progress(2, NOTE_1, T0 + HOUR)).await, StoredOutcome::Duplicate);
    // An older report than the one applied changes nothing.
    let mut old = report(9);
    old.version -= HOUR;
    assert_eq!(one(&store, old).await, StoredOutcome::Stale);
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.revision, 3);
});

on_both!(progress_notes_before_any_report_keep_their_order, |store, _url| {
    let StoredOutcome::Created { ticket_id, .. } = one(&store, evaluation(3, T0 + 3 * HOUR)).await else {
        panic!("not created")
    };
    // Older than the evaluation, and no report yet: the note is added, the status stays.
    assert!(matches!(one(&store, progress(2, NOTE_1, T0 + HOUR)).await, StoredOutcome::Updated { revision: 2, .. }));
    let d = store.ticket(&ticket_id).await.unwrap().ticket.draft;
    assert_eq!(d.status, crate::ticket::Status::Closed);
    assert!(d.description.ends_with(NOTE_1), "{}", d.description);
    // The report still fills it, under the evaluation and the note.
    assert!(matches!(one(&store, report(1)).await, StoredOutcome::Updated { revision: 3, .. }));
    let d = store.ticket(&ticket_id).await.unwrap().ticket.draft;
    assert!(d.description.starts_with(&format!("{REASON}\n")) && d.description.ends_with(NOTE_1), "{}", d.description);
    assert_eq!((d.status, d.category.as_str()), (crate::ticket::Status::Closed, "0101"));
    assert!(d.evaluation.is_some());
});

on_both!(an_unmerged_event_is_rebuilt_from_all_its_messages_not_its_newest, |store, _url| {
    let StoredOutcome::Created { ticket_id, .. } = one(&store, progress(2, NOTE_1, T0 + HOUR)).await else {
        panic!("not created")
    };
    for m in [report(1), evaluation(3, T0 + 3 * HOUR), progress(2, NOTE_1, T0 + HOUR)] {
        one(&store, m).await;
    }
    let raws = store.raw_messages("terminal", EVENT).await.unwrap();
    assert_eq!(raws.len(), 3, "each message once");
    let mapped: Vec<_> = raws
        .iter()
        .map(|r| {
            (mappings().map(&r.record()).unwrap(), r.record().received_at.with_timezone(&crate::ticket::beijing()))
        })
        .collect();
    let rebuilt = Unmerged::rebuild("terminal", mapped).unwrap();
    let stored = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(rebuilt.draft, stored.draft, "the event as intake made it");
    assert!(rebuilt.draft.description.starts_with(REASON), "the report's words: {}", rebuilt.draft.description);
    assert_eq!(rebuilt.draft.status, crate::ticket::Status::Closed);
    assert_eq!((rebuilt.source.record_id.as_str(), rebuilt.source.version), (EVENT, T0 + 3 * HOUR));
    assert!(store.raw_messages("terminal", "W0412-nothing").await.is_err());
});

on_both!(a_workers_frown_reopens_the_matter_and_the_origins_are_told, |store, _url| {
    let spec = crate::mapping::shipped::mapper("terminal").unwrap().unwrap().feedback().unwrap().clone();
    store.set_feedback_plan(crate::feedback::Plan::default().with("terminal", spec));
    let StoredOutcome::Created { ticket_id, .. } = one(&store, report(1)).await else { panic!("not created") };
    let frown = message(
        "evaluation",
        serde_json::json!({
            "msgId": msg_id(5), "eventId": EVENT, "workerId": "W0412", "result": "frown", "closed": false,
            "comment": "井盖仍未安装", "at": T0 + 5 * HOUR,
        }),
    );
    assert!(matches!(one(&store, frown).await, StoredOutcome::Updated { revision: 2, .. }));
    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(t.draft.status, crate::ticket::Status::InProgress);
    assert_eq!(t.draft.evaluation.map(|e| e.result), Some(crate::ticket::EvaluationResult::Unsatisfied));
    assert_eq!(store.handling(&ticket_id).await.unwrap().unwrap().reopened, 1);
    let told = store.lease_feedback("terminal", "t", 10, 60_000).await.unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0].status.as_str(), told[0].address.as_str()), ("reopened", "grid/220402/W0412/notify"));
    let history: Vec<String> = store.ticket_events(&ticket_id).await.unwrap().into_iter().map(|e| e.detail).collect();
    assert!(history.iter().any(|l| l.contains("reopened")), "{history:?}");
    // A smile that closes it after the department's second try: no reopening.
    let smile = evaluation(6, T0 + 9 * HOUR);
    assert!(matches!(one(&store, smile).await, StoredOutcome::Updated { revision: 3, .. }));
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.draft.status, crate::ticket::Status::Closed);
    let h = store.handling(&ticket_id).await.unwrap().unwrap();
    assert_eq!((h.reopened, h.sent_back), (1, false), "closed since: a later reopening is news");
});

on_both!(a_deadline_gives_one_reminder_and_one_overdue_mark_whichever_hub_looks, |store, url| {
    let spec = crate::mapping::shipped::mapper("terminal").unwrap().unwrap().feedback().unwrap().clone();
    let plan = crate::feedback::Plan::default().with("terminal", spec);
    store.set_feedback_plan(plan.clone());
    let other = Store::open(&url).await.unwrap();
    other.set_feedback_plan(plan);
    let StoredOutcome::Created { ticket_id, .. } = one(&store, report(1)).await else { panic!("not created") };
    // The report's deadline: 24 h after it happened; its clock started then.
    let due = T0 + 24 * HOUR;
    assert_eq!(store.check_deadlines(0.8, T0 + 12 * HOUR).await.unwrap(), Default::default());
    let (a, b) = tokio::join!(store.check_deadlines(0.8, T0 + 20 * HOUR), other.check_deadlines(0.8, T0 + 20 * HOUR));
    assert_eq!(a.unwrap().reminded + b.unwrap().reminded, 1, "one reminder, whichever hub looks");
    assert_eq!(store.check_deadlines(0.8, T0 + 21 * HOUR).await.unwrap().reminded, 0);
    let told = store.lease_feedback("terminal", "t", 10, 60_000).await.unwrap();
    assert_eq!(told.iter().map(|m| m.status.as_str()).collect::<Vec<_>>(), ["due_soon"]);
    let body: serde_json::Value = serde_json::from_slice(&told[0].body).unwrap();
    assert_eq!(
        body["dueAt"].as_str().map(|d| d.parse::<crate::ticket::Timestamp>().unwrap().timestamp_millis()),
        Some(due)
    );
    store.settle_feedback("t", &[(told[0].clone(), FeedbackResult::Delivered)]).await.unwrap();
    let listed = store.due_tickets(10).await.unwrap();
    assert_eq!((listed.len(), listed[0].overdue_at), (1, None));

    assert_eq!(store.check_deadlines(0.8, due + 1).await.unwrap().overdue, 1);
    assert_eq!(other.check_deadlines(0.8, due + 2).await.unwrap(), Default::default());
    assert!(store.due_tickets(10).await.unwrap()[0].overdue_at.is_some());

    // The platform dispatches it with a new deadline: its clock starts over.
    let later = "2024-07-20T18:00:00+08:00";
    let dispatched = serde_json::json!({"ticketId": ticket_id, "status": "dispatched", "department": "龙山区住建局",
        "dueAt": later, "at": "2024-07-16T10:00:00+08:00"});
    store.take_callback("d1", dispatched.to_string().as_bytes()).await.unwrap();
    assert!(store.due_tickets(10).await.unwrap().is_empty(), "a new deadline is not overdue");
    let due2 = later.parse::<crate::ticket::Timestamp>().unwrap().timestamp_millis();
    assert_eq!(store.check_deadlines(0.8, due2 - 1).await.unwrap().reminded, 1);
    // Resolved: no clock runs.
    let resolved = serde_json::json!({"ticketId": ticket_id, "status": "resolved", "at": "2024-07-20T12:00:00+08:00"});
    store.take_callback("r1", resolved.to_string().as_bytes()).await.unwrap();
    assert_eq!(store.check_deadlines(0.8, due2 + 1).await.unwrap(), Default::default());
    other.close().await;
});
