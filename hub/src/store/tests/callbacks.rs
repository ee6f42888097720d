//! The platform's callbacks applied to tickets (contract: platform.md,
//! "Status callbacks"): once per event id, never moving a status back.

use super::*;
use crate::feedback::Plan;

fn callback(ticket_id: &str, status: &str, at: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut v = serde_json::json!({"ticketId": ticket_id, "status": status, "at": at});
    if let serde_json::Value::Object(m) = extra {
        v.as_object_mut().unwrap().extend(m);
    }
    serde_json::to_vec(&v).unwrap()
}

on_both!(a_callback_taken_three_times_changes_the_ticket_once, |store, _url| {
    let m = &simulators::canonical::matters(41, 1, "CB")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let body = callback(
        &ticket_id,
        "dispatched",
        "2026-12-04T09:00:00+08:00",
        serde_json::json!({"department": "南康街道城管科", "dueAt": "2026-12-07T18:00:00+08:00", "note": "请尽快处理"}),
    );
    let first = store.take_callback("ev-1", &body).await.unwrap();
    assert_eq!(first, CallbackOutcome::Applied { ticket_id: ticket_id.clone() });
    for _ in 0..2 {
        assert_eq!(store.take_callback("ev-1", &body).await.unwrap(), CallbackOutcome::Duplicate { held: None });
    }
    let t = store.ticket(&ticket_id).await.unwrap();
    assert_eq!(t.ticket.draft.status, crate::ticket::Status::Dispatched);
    assert_eq!(t.ticket.revision, 1, "the platform knows its own status: nothing is sent for it");
    let h = store.handling(&ticket_id).await.unwrap().unwrap();
    assert_eq!(h.department.as_deref(), Some("南康街道城管科"));
    let history = store.ticket_events(&ticket_id).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0].detail.starts_with("dispatched to 南康街道城管科, due 2026-12-07 18:00"), "{history:?}");
    assert!(!history[0].detail.contains("请尽快"), "the note stays out of the history");

    // The source's next version says what it knows; the matter stays dispatched.
    let updated = one(&store, item(m, 2)).await;
    assert!(matches!(updated, StoredOutcome::Updated { revision: 2, .. }), "{updated:?}");
    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(t.draft.status, crate::ticket::Status::Dispatched, "not back to new");
    assert_eq!(t.draft.due_at, h.due_at);
});

on_both!(an_older_event_is_recorded_and_does_not_move_the_status_back, |store, _url| {
    let m = &simulators::canonical::matters(42, 1, "CO")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let resolved = callback(&ticket_id, "resolved", "2026-12-05T15:00:00+08:00", serde_json::json!({}));
    let dispatched = callback(&ticket_id, "dispatched", "2026-12-04T09:00:00+08:00", serde_json::json!({}));
    assert!(matches!(store.take_callback("r", &resolved).await.unwrap(), CallbackOutcome::Applied { .. }));
    assert_eq!(
        store.take_callback("d", &dispatched).await.unwrap(),
        CallbackOutcome::Stale { ticket_id: ticket_id.clone() }
    );
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.draft.status, crate::ticket::Status::Resolved);
    let history = store.ticket_events(&ticket_id).await.unwrap();
    assert_eq!(history.len(), 2, "both recorded");
    assert!(history[1].detail.contains("status unchanged"), "{history:?}");
});

on_both!(unknown_tickets_statuses_and_bodies_are_held_for_a_person, |store, _url| {
    let m = &simulators::canonical::matters(43, 1, "CU")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let unknown_ticket = callback("no-such-ticket", "resolved", "2026-12-05T15:00:00+08:00", serde_json::json!({}));
    let unknown_status = callback(&ticket_id, "archived", "2026-12-05T15:00:00+08:00", serde_json::json!({}));
    let CallbackOutcome::Held { reason } = store.take_callback("u1", &unknown_ticket).await.unwrap() else {
        panic!("not held")
    };
    assert!(reason.contains("no ticket no-such-ticket"), "{reason}");
    let CallbackOutcome::Held { reason } = store.take_callback("u2", &unknown_status).await.unwrap() else {
        panic!("not held")
    };
    assert!(reason.contains("unknown status `archived`"), "{reason}");
    assert!(matches!(
        store.take_callback("u3", br#"{"ticketId": "13904371234"#).await.unwrap(),
        CallbackOutcome::Held { .. }
    ));
    // Sent again: held again, one row each.
    assert!(matches!(
        store.take_callback("u2", &unknown_status).await.unwrap(),
        CallbackOutcome::Duplicate { held: Some(_) }
    ));
    let open = store.callbacks(true, 10).await.unwrap();
    assert_eq!(open.len(), 3);
    assert!(open.iter().all(|c| c.reason.as_deref().is_some_and(|r| !r.contains("13904371234"))), "{open:?}");
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.draft.status, crate::ticket::Status::New);
});

on_both!(a_frown_reopens_the_matter_and_the_platform_is_told, |store, _url| {
    let m = &simulators::canonical::matters(44, 1, "CF")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let leased = store.lease("p", 10, 60_000).await.unwrap();
    store.complete(&leased.into_iter().map(|c| (c, DeliveryResult::Done)).collect::<Vec<_>>()).await.unwrap();
    let resolved = callback(&ticket_id, "resolved", "2026-12-05T15:00:00+08:00", serde_json::json!({}));
    store.take_callback("r", &resolved).await.unwrap();
    let frown = callback(
        &ticket_id,
        "closed",
        "2026-12-06T10:00:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen", "at": "2026-12-06T10:00:00+08:00"}}),
    );
    assert_eq!(
        store.take_callback("f", &frown).await.unwrap(),
        CallbackOutcome::Reopened { ticket_id: ticket_id.clone(), revision: 2 }
    );
    let sent = store.lease("p", 10, 60_000).await.unwrap();
    assert_eq!(sent.len(), 1, "the reopened revision waits for the platform");
    let body: crate::ticket::Ticket = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!((body.revision, body.draft.status), (2, crate::ticket::Status::InProgress));
    assert_eq!(body.draft.evaluation.map(|e| e.result), Some(crate::ticket::EvaluationResult::Unsatisfied));
    assert_eq!(store.handling(&ticket_id).await.unwrap().unwrap().reopened, 1);
});

/// A plan that tells the canonical source's agency over AMQP.
fn canon_plan() -> Plan {
    let spec = crate::mapping::feedback::FeedbackSpec::from_mapping(
        "[feedback]\ntransport = \"amqp\"\nto = \"canon.feedback\"\nkey = \"feedback.{status}\"\n\
         [feedback.body]\nid = \"record_id\"\nstatus = \"status\"\nat = \"at\"\n",
        "canon.toml",
    )
    .unwrap()
    .unwrap();
    Plan::default().with("canon", std::sync::Arc::new(spec))
}

on_both!(the_origins_hear_each_change_once_in_order_and_a_refusal_is_kept, |store, _url| {
    let m = &simulators::canonical::matters(45, 1, "FB")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    store.set_feedback_plan(canon_plan());
    let event =
        |status: &str, at: &str| callback(&ticket_id, status, at, serde_json::json!({"department": "龙山区住建局"}));
    store.take_callback("e1", &event("dispatched", "2026-12-04T09:00:00+08:00")).await.unwrap();
    store.take_callback("e1", &event("dispatched", "2026-12-04T09:00:00+08:00")).await.unwrap();
    store.take_callback("e2", &event("urged", "2026-12-05T09:00:00+08:00")).await.unwrap();
    store.take_callback("e0", &event("escalated", "2026-12-03T09:00:00+08:00")).await.unwrap(); // stale
    store.take_callback("e3", &event("resolved", "2026-12-06T09:00:00+08:00")).await.unwrap();

    // Three changes, in order; a second sender waits while the first holds them.
    let leased = store.lease_feedback("canon", "a", 10, 60_000).await.unwrap();
    let statuses: Vec<&str> = leased.iter().map(|m| m.status.as_str()).collect();
    assert_eq!(statuses, ["dispatched", "urged", "resolved"]);
    assert_eq!(leased[0].address, "feedback.dispatched");
    let body: serde_json::Value = serde_json::from_slice(&leased[0].body).unwrap();
    assert_eq!(body["id"], m.record_id.as_str());
    assert!(store.lease_feedback("canon", "b", 10, 60_000).await.unwrap().is_empty(), "one sender at a time");

    // A result under a lease it does not hold changes nothing.
    assert_eq!(store.settle_feedback("b", &[(leased[0].clone(), FeedbackResult::Delivered)]).await.unwrap(), 0);
    // The first is taken; the second fails for now: it and the third wait, in order.
    let retry = FeedbackResult::Retry { error: "broker down".into(), next_at: now_ms() + 60_000 };
    let results = [(leased[0].clone(), FeedbackResult::Delivered), (leased[1].clone(), retry)];
    assert_eq!(store.settle_feedback("a", &results).await.unwrap(), 2);
    assert!(store.lease_feedback("canon", "b", 10, 60_000).await.unwrap().is_empty(), "the head is not due");

    // Due again: a refusal for good is kept, the rest goes on.
    sqlx::query("UPDATE feedback_outbox SET next_attempt_at = 0").execute(store.pool()).await.unwrap();
    let again = store.lease_feedback("canon", "b", 10, 60_000).await.unwrap();
    assert_eq!(again.iter().map(|m| m.status.as_str()).collect::<Vec<_>>(), ["urged", "resolved"]);
    let results = [
        (again[0].clone(), FeedbackResult::Dead { error: "answered 404".into() }),
        (again[1].clone(), FeedbackResult::Delivered),
    ];
    assert_eq!(store.settle_feedback("b", &results).await.unwrap(), 2);
    let left = store.feedback_entries(false, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].state.as_str(), left[0].last_error.as_deref()), ("dead", Some("answered 404")));
    let history: Vec<String> = store.ticket_events(&ticket_id).await.unwrap().into_iter().map(|e| e.detail).collect();
    assert_eq!(history.iter().filter(|l| l.starts_with("canon told of")).count(), 2, "{history:?}");
    assert!(history.iter().any(|l| l.contains("canon refused urged for good: answered 404")), "{history:?}");
});

on_both!(a_frown_on_closure_is_told_as_the_closure_then_the_reopening, |store, _url| {
    let m = &simulators::canonical::matters(46, 1, "FR")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    store.set_feedback_plan(canon_plan());
    let frown = callback(
        &ticket_id,
        "closed",
        "2026-12-06T10:00:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
    );
    assert!(matches!(store.take_callback("f", &frown).await.unwrap(), CallbackOutcome::Reopened { .. }));
    let told = store.lease_feedback("canon", "a", 10, 60_000).await.unwrap();
    assert_eq!(told.iter().map(|m| m.status.as_str()).collect::<Vec<_>>(), ["closed", "reopened"]);
    assert_ne!(told[0].message_id, told[1].message_id);
});

on_both!(signed_bytes_replayed_under_another_event_id_are_not_applied_again, |store, _url| {
    let m = &simulators::canonical::matters(47, 1, "RP")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let frown = callback(
        &ticket_id,
        "closed",
        "2026-12-06T10:00:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
    );
    let first = store.take_signed_callback("e1", Some("1765000000"), &frown).await.unwrap();
    assert!(matches!(first, CallbackOutcome::Reopened { revision: 2, .. }), "{first:?}");
    let replay = store.take_signed_callback("e-forged-id", Some("1765000000"), &frown).await.unwrap();
    assert_eq!(replay, CallbackOutcome::Duplicate { held: None });
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.revision, 2, "reopened once");
    assert_eq!(store.handling(&ticket_id).await.unwrap().unwrap().reopened, 1);
});

on_both!(an_urging_leaves_a_withdrawn_matter_withdrawn, |store, _url| {
    let m = &simulators::canonical::matters(48, 1, "UW")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let d = callback(&ticket_id, "dispatched", "2026-12-04T09:00:00+08:00", serde_json::json!({}));
    store.take_callback("d", &d).await.unwrap();
    sqlx::query("UPDATE tickets SET body = REPLACE(body, '\"status\":\"dispatched\"', '\"status\":\"withdrawn\"')")
        .execute(store.pool())
        .await
        .unwrap();
    let u = callback(&ticket_id, "urged", "2026-12-05T09:00:00+08:00", serde_json::json!({}));
    assert!(matches!(store.take_callback("u", &u).await.unwrap(), CallbackOutcome::Applied { .. }));
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.draft.status, crate::ticket::Status::Withdrawn);
});

on_both!(the_platforms_reopened_after_a_frown_is_not_told_twice, |store, _url| {
    let m = &simulators::canonical::matters(49, 1, "RT")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    store.set_feedback_plan(canon_plan());
    let frown = callback(
        &ticket_id,
        "closed",
        "2026-12-06T10:00:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
    );
    assert!(matches!(store.take_callback("f", &frown).await.unwrap(), CallbackOutcome::Reopened { revision: 2, .. }));
    // The platform follows the frown with its own `reopened`, and echoes the rating.
    let reopened = callback(&ticket_id, "reopened", "2026-12-06T10:05:00+08:00", serde_json::json!({}));
    assert!(matches!(store.take_callback("r", &reopened).await.unwrap(), CallbackOutcome::Applied { .. }));
    let echo = callback(
        &ticket_id,
        "urged",
        "2026-12-06T10:06:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
    );
    assert!(matches!(store.take_callback("e", &echo).await.unwrap(), CallbackOutcome::Applied { .. }));
    let told = store.lease_feedback("canon", "a", 10, 60_000).await.unwrap();
    assert_eq!(told.iter().map(|m| m.status.as_str()).collect::<Vec<_>>(), ["closed", "reopened"]);
    let h = store.handling(&ticket_id).await.unwrap().unwrap();
    assert_eq!((h.reopened, h.sent_back), (1, true));
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.revision, 2, "the platform is sent the reopening once");
    let history: Vec<String> = store.ticket_events(&ticket_id).await.unwrap().into_iter().map(|e| e.detail).collect();
    assert!(history.iter().any(|l| l.contains("not told twice")), "{history:?}");

    // Resolved again, then frowned on again: that is a second reopening.
    let resolved = callback(&ticket_id, "resolved", "2026-12-07T10:00:00+08:00", serde_json::json!({}));
    store.take_callback("s", &resolved).await.unwrap();
    let again = callback(
        &ticket_id,
        "closed",
        "2026-12-08T10:00:00+08:00",
        serde_json::json!({"evaluation": {"result": "unsatisfied", "by": "citizen"}}),
    );
    assert!(matches!(store.take_callback("f2", &again).await.unwrap(), CallbackOutcome::Reopened { revision: 3, .. }));
    assert_eq!(store.handling(&ticket_id).await.unwrap().unwrap().reopened, 2);
});

/// Two hubs on one PostgreSQL: a callback applied by one while the other
/// has read the ticket to plan a source's update. The update is planned
/// again on the callback's state instead of writing over it.
#[tokio::test]
async fn a_callback_from_another_hub_during_an_update_is_not_written_over() {
    use crate::store::intake::pause::Pause;
    let db = TestDb::postgres().await;
    let store = Store::open(&db.url).await.unwrap();
    let other = Store::open(&db.url).await.unwrap();
    let m = &simulators::canonical::matters(50, 1, "LU")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };

    let (pause, reached, go) = Pause::new();
    let update = item(m, 2);
    let intake = {
        let store = store.clone();
        tokio::spawn(pause.scope(async move { store.store_batch(std::slice::from_ref(&update)).await }))
    };
    reached.await.unwrap();
    let d = callback(
        &ticket_id,
        "dispatched",
        "2026-12-04T09:00:00+08:00",
        serde_json::json!({"department": "南康街道城管科", "dueAt": "2026-12-07T18:00:00+08:00"}),
    );
    assert!(matches!(other.take_callback("d", &d).await.unwrap(), CallbackOutcome::Applied { .. }));
    go.send(()).unwrap();
    let stored = intake.await.unwrap().remove(0).unwrap();
    assert!(matches!(stored, StoredOutcome::Updated { revision: 2, .. }), "{stored:?}");

    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(t.draft.status, crate::ticket::Status::Dispatched, "the callback's state stands");
    assert!(t.draft.due_at.is_some());
    let h = store.handling(&ticket_id).await.unwrap().unwrap();
    assert_eq!(h.department.as_deref(), Some("南康街道城管科"));
    drop((store, other));
    db.cleanup().await;
}

on_both!(a_held_callback_is_applied_again_when_its_ticket_is_back, |store, _url| {
    let m = &simulators::canonical::matters(51, 1, "HR")[0];
    let StoredOutcome::Created { ticket_id: original, .. } = one(&store, item(m, 1)).await else {
        panic!("not created")
    };
    // The callback names a ticket this store does not hold (yet): one that
    // comes back with a restore from a backup, say.
    let ticket_id = format!("{original}-restored");
    let restore = || {
        sqlx::query(
            "INSERT INTO tickets (ticket_id, revision, status, body, created_at, updated_at)
             SELECT $2, revision, status, REPLACE(body, $1, $2), created_at, updated_at FROM tickets WHERE ticket_id = $1",
        )
        .bind(original.clone())
        .bind(ticket_id.clone())
        .execute(store.pool())
    };
    let d = callback(&ticket_id, "dispatched", "2026-12-04T09:00:00+08:00", serde_json::json!({}));
    assert!(matches!(store.take_callback("d", &d).await.unwrap(), CallbackOutcome::Held { .. }));
    let held = store.callbacks(true, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    let id = held[0].id;
    // Not there yet: held again, still open.
    assert!(matches!(store.replay_callback(id).await.unwrap(), CallbackOutcome::Held { .. }));
    assert_eq!(store.callbacks(true, 10).await.unwrap().len(), 1);
    restore().await.unwrap();
    assert_eq!(store.replay_callback(id).await.unwrap(), CallbackOutcome::Applied { ticket_id: ticket_id.clone() });
    assert!(store.callbacks(true, 10).await.unwrap().is_empty());
    assert_eq!(store.ticket(&ticket_id).await.unwrap().ticket.draft.status, crate::ticket::Status::Dispatched);
    assert!(matches!(store.replay_callback(id).await, Err(StoreError::Invalid(_))), "applied once only");
    // The same event again from the platform is still a duplicate.
    assert_eq!(store.take_callback("d", &d).await.unwrap(), CallbackOutcome::Duplicate { held: None });

    let unknown = callback(&ticket_id, "archived", "2026-12-05T09:00:00+08:00", serde_json::json!({}));
    store.take_callback("u", &unknown).await.unwrap();
    let id = store.callbacks(true, 10).await.unwrap()[0].id;
    store.dismiss_callback(id).await.unwrap();
    assert!(store.callbacks(true, 10).await.unwrap().is_empty());
    assert_eq!(store.callback(id).await.unwrap().outcome, "dismissed");
});
