//! The store's behaviour, run on SQLite and on PostgreSQL alike.

use std::sync::Arc;

use connectors::{ContentType, RawRecord};

use super::testing::TestDb;
use super::*;
use crate::intake::{IntakeSettings, prepare};
use crate::mapping::{CanonicalMapper, Mappings};

fn mappings() -> Mappings {
    let mut m = Mappings::new();
    m.insert("canon", Arc::new(CanonicalMapper));
    m
}

fn item(matter: &simulators::canonical::Matter, version: i64) -> IntakeItem {
    let rec = RawRecord::new("canon", ContentType::Json, matter.payload(version));
    prepare(&rec, &mappings(), &IntakeSettings::default())
}

fn bad_item(bytes: &[u8]) -> IntakeItem {
    prepare(&RawRecord::new("canon", ContentType::Json, bytes.to_vec()), &mappings(), &IntakeSettings::default())
}

async fn one(store: &Store, item: IntakeItem) -> StoredOutcome {
    store.store_batch(std::slice::from_ref(&item)).await.remove(0).expect("stored")
}

/// Runs a test body against a fresh SQLite file and a fresh PostgreSQL database.
macro_rules! on_both {
    ($name:ident, |$store:ident, $url:ident| $body:block) => {
        mod $name {
            use super::*;
            async fn body($store: Store, $url: String) $body

            #[tokio::test]
            async fn sqlite() {
                let db = TestDb::sqlite();
                body(Store::open(&db.url).await.expect("open"), db.url.clone()).await;
                db.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                let db = TestDb::postgres().await;
                body(Store::open(&db.url).await.expect("open"), db.url.clone()).await;
                db.cleanup().await;
            }
        }
    };
}

/// Messages with ids of their own, in their own orders.
mod terminal;

/// The platform's status callbacks.
mod callbacks;

/// The courts' same-day documents.
mod courts;

/// The statistics' aggregates.
mod stats;

/// The admin API's searches and lists.
mod admin;

/// Open311's rows.
mod open311;

/// The centre's screen: the live feed's numbers, lists by region.
mod live;

on_both!(the_same_record_three_times_is_one_ticket_and_one_change, |store, _url| {
    let m = &simulators::canonical::matters(1, 1, "S")[0];
    let first = one(&store, item(m, 1)).await;
    assert!(matches!(first, StoredOutcome::Created { revision: 1, .. }), "{first:?}");
    assert_eq!(one(&store, item(m, 1)).await, StoredOutcome::Duplicate);
    // The third time inside one batch with itself: still one.
    let outcomes = store.store_batch(&[item(m, 1), item(m, 1)]).await;
    assert!(outcomes.iter().all(|o| matches!(o, Ok(StoredOutcome::Duplicate))), "{outcomes:?}");
    let s = store.summary().await.unwrap();
    assert_eq!((s.tickets, s.revisions, s.pending), (1, 1, 1));
});

on_both!(versions_one_three_two_end_at_three, |store, _url| {
    let m = &simulators::canonical::matters(2, 1, "V")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    assert!(matches!(one(&store, item(m, 3)).await, StoredOutcome::Updated { revision: 2, .. }));
    assert_eq!(one(&store, item(m, 2)).await, StoredOutcome::Stale);
    let t = store.ticket(&ticket_id).await.unwrap();
    assert_eq!(t.ticket.revision, 2);
    assert_eq!(t.ticket.sources.len(), 1);
    assert_eq!(t.ticket.sources[0].version, 3);
    assert!(t.ticket.draft.description.contains("第3次补充"));
    let counts = store.record_counts().await.unwrap();
    assert!(counts.contains(&("canon".into(), "stale".into(), 1)), "{counts:?}");
    // Two changes queued, in revision order.
    let leased = store.lease("me", 10, 60_000).await.unwrap();
    assert_eq!(leased.iter().map(|c| c.revision).collect::<Vec<_>>(), vec![1]);
});

on_both!(bad_input_is_quarantined_kept_and_replayable, |store, _url| {
    let bytes = br#"{"recordId": "Q-1", "channel": "hotline", "ticket": {"title": "x"}}"#;
    let StoredOutcome::Quarantined { reason, quarantine_id } = one(&store, bad_item(bytes)).await else {
        panic!("not quarantined")
    };
    assert!(reason.contains("missing field"), "{reason}");
    // The same bad bytes again are a duplicate, not a second quarantine entry.
    assert_eq!(one(&store, bad_item(bytes)).await, StoredOutcome::Duplicate);
    let list = store.quarantined(false).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(store.quarantined_record(list[0].id).await.unwrap().payload, bytes.to_vec());
    // Still bad on replay: stays, with the reason.
    let again = store.resolve_quarantine(quarantine_id, &bad_item(bytes)).await.unwrap();
    assert!(matches!(again, StoredOutcome::Quarantined { .. }));
    // Fixed (here: by replaying a good item in its place): becomes a ticket.
    let m = &simulators::canonical::matters(3, 1, "Q")[0];
    let fixed = store.resolve_quarantine(quarantine_id, &item(m, 1)).await.unwrap();
    assert!(matches!(fixed, StoredOutcome::Created { .. }), "{fixed:?}");
    assert!(store.quarantined(false).await.unwrap().is_empty());
    assert!(
        store.resolve_quarantine(quarantine_id, &item(m, 1)).await.is_err(),
        "a replayed record is not replayed twice"
    );
});

on_both!(a_replayed_record_is_keyed_as_if_it_had_mapped_on_arrival, |store, _url| {
    let ms = simulators::canonical::matters(31, 2, "K");
    let quarantined = |bytes: &'static [u8]| {
        let store = &store;
        async move {
            let StoredOutcome::Quarantined { quarantine_id, .. } = one(store, bad_item(bytes)).await else {
                panic!("not quarantined")
            };
            quarantine_id
        }
    };
    // Replayed, then resent by its source: the resend is a duplicate.
    let first = quarantined(br#"{"recordId": "K-1"}"#).await;
    let fixed = store.resolve_quarantine(first, &item(&ms[0], 1)).await.unwrap();
    assert!(matches!(fixed, StoredOutcome::Created { .. }), "{fixed:?}");
    assert_eq!(one(&store, item(&ms[0], 1)).await, StoredOutcome::Duplicate);
    // Resent first, replayed after: the replay is the duplicate.
    let second = quarantined(br#"{"recordId": "K-2"}"#).await;
    assert!(matches!(one(&store, item(&ms[1], 1)).await, StoredOutcome::Created { .. }));
    assert_eq!(store.resolve_quarantine(second, &item(&ms[1], 1)).await.unwrap(), StoredOutcome::Duplicate);
    assert!(store.quarantined(false).await.unwrap().is_empty());
    let s = store.summary().await.unwrap();
    assert_eq!((s.tickets, s.revisions), (2, 2));
});

on_both!(outbox_leases_heads_only_and_commits_results, |store, _url| {
    let ms = simulators::canonical::matters(4, 3, "O");
    for m in &ms {
        one(&store, item(m, 1)).await;
    }
    one(&store, item(&ms[0], 2)).await; // a second change of ticket 0
    let a = store.lease("a", 10, 60_000).await.unwrap();
    assert_eq!(a.len(), 3, "one head per ticket");
    assert!(store.lease("b", 10, 60_000).await.unwrap().is_empty(), "leased rows are not leased again");
    let first = a[0].clone();
    let results = vec![
        (a[0].clone(), DeliveryResult::Done),
        (a[1].clone(), DeliveryResult::Rejected { status: 422, response: "{\"error\":\"title\"}".into() }),
        (a[2].clone(), DeliveryResult::Retry { next_attempt_at: now_ms() + 60_000, error: "500".into() }),
    ];
    store.complete(&results).await.unwrap();
    // Ticket 0's second revision is now the head; ticket 2 waits for its retry time.
    let b = store.lease("b", 10, 60_000).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].ticket_id.as_str(), b[0].revision), (first.ticket_id.as_str(), 2));
    assert_eq!(store.ticket(&first.ticket_id).await.unwrap().delivered_revision, 1);
    // The dead letter keeps the answer and can be replayed once, with a new key.
    let dl = store.dead_letters(false).await.unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!((dl[0].status_code, dl[0].response.as_str()), (422, "{\"error\":\"title\"}"));
    let key = store.replay_dead_letter(dl[0].id, None).await.unwrap().idempotency_key;
    assert_ne!(key, dl[0].idempotency_key);
    assert!(store.replay_dead_letter(dl[0].id, None).await.is_err());
    let c = store.lease("c", 10, 60_000).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].idempotency_key, key);
    // A crashed owner's leases are freed on an embedded restart.
    assert!(store.release_all_leases().await.unwrap() >= 2);
});

on_both!(replay_with_a_corrected_body_checks_it, |store, _url| {
    let m = &simulators::canonical::matters(5, 1, "R")[0];
    one(&store, item(m, 1)).await;
    let a = store.lease("a", 1, 60_000).await.unwrap();
    store.complete(&[(a[0].clone(), DeliveryResult::Rejected { status: 400, response: "bad".into() })]).await.unwrap();
    let dl = &store.dead_letters(false).await.unwrap()[0];
    assert!(store.replay_dead_letter(dl.id, Some("{not json")).await.is_err());
    let mut body: serde_json::Value = serde_json::from_str(&dl.body).unwrap();
    body["revision"] = 9.into();
    assert!(store.replay_dead_letter(dl.id, Some(&body.to_string())).await.is_err(), "another revision is refused");
    body["revision"] = 1.into();
    body["title"] = "更正后的标题".into();
    let replayed = store.replay_dead_letter(dl.id, Some(&body.to_string())).await.unwrap();
    assert_eq!(replayed.revision, 2, "a replay is the ticket's next revision");
    let c = store.lease("c", 1, 60_000).await.unwrap();
    assert_eq!(c[0].revision, 2);
    assert!(c[0].body.contains("更正后的标题"));
    let t = store.ticket(&dl.ticket_id).await.unwrap().ticket;
    assert_eq!((t.revision, t.draft.title.as_str()), (2, "更正后的标题"), "the correction is the ticket's too");
});

on_both!(results_count_only_under_the_lease_they_were_leased_with, |store, _url| {
    let ms = simulators::canonical::matters(6, 4, "LL");
    for m in &ms {
        one(&store, item(m, 1)).await;
    }
    // Hub a's leases run out while its requests hang; hub b takes them over.
    let a = store.lease("a", 10, 1).await.unwrap();
    assert_eq!(a.len(), 4);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let b = store.lease("b", 10, 60_000).await.unwrap();
    assert_eq!(b.len(), 4, "expired leases are taken over");
    // a's late results must not touch b's leases.
    let late = vec![
        (a[0].clone(), DeliveryResult::Done),
        (a[1].clone(), DeliveryResult::Rejected { status: 422, response: "late".into() }),
        (a[2].clone(), DeliveryResult::Retry { next_attempt_at: now_ms() + 60_000, error: "late".into() }),
        (a[3].clone(), DeliveryResult::Release),
    ];
    store.complete(&late).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 4, "nothing left the outbox under b's lease");
    assert!(store.dead_letters(true).await.unwrap().is_empty(), "no dead letter from a result that came too late");
    assert!(store.lease("c", 10, 60_000).await.unwrap().is_empty(), "b's leases still hold");
    assert_eq!(store.outbox_head(10).await.unwrap().iter().map(|h| h.3).sum::<i64>(), 0, "no attempt counted");
    // b's own results count.
    let mine: Vec<_> = b.iter().map(|c| (c.clone(), DeliveryResult::Done)).collect();
    store.complete(&mine).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
});

on_both!(a_replayed_correction_is_sent_after_later_revisions_and_kept_in_the_ticket, |store, _url| {
    let m = &simulators::canonical::matters(7, 1, "RC")[0];
    one(&store, item(m, 1)).await;
    let a = store.lease("a", 1, 60_000).await.unwrap();
    store
        .complete(&[(a[0].clone(), DeliveryResult::Rejected { status: 422, response: "title".into() })])
        .await
        .unwrap();
    // The ticket moves on: revision 2 is delivered before anyone looks at the dead letter.
    assert!(matches!(one(&store, item(m, 2)).await, StoredOutcome::Updated { revision: 2, .. }));
    let b = store.lease("b", 1, 60_000).await.unwrap();
    assert_eq!(b[0].revision, 2);
    store.complete(&[(b[0].clone(), DeliveryResult::Done)]).await.unwrap();

    let dl = store.dead_letters(false).await.unwrap().remove(0);
    assert_eq!(dl.revision, 1);
    // A correction of revision 1 would undo revision 2, and the platform
    // would answer it 409 (it has 2): refused, and the dead letter stays open.
    let mut old: serde_json::Value = serde_json::from_str(&dl.body).unwrap();
    old["title"] = "更正后的标题".into();
    let err = store.replay_dead_letter(dl.id, Some(&old.to_string())).await.unwrap_err();
    assert!(err.to_string().contains("revision 2 now"), "{err}");
    assert_eq!(store.dead_letters(false).await.unwrap().len(), 1);

    // Corrected from the ticket as it is now: revision 3, after what was delivered.
    let mut now: serde_json::Value = serde_json::to_value(store.ticket(&dl.ticket_id).await.unwrap().ticket).unwrap();
    now["title"] = "更正后的标题".into();
    let replayed = store.replay_dead_letter(dl.id, Some(&now.to_string())).await.unwrap();
    assert_eq!(replayed.revision, 3);
    let c = store.lease("c", 1, 60_000).await.unwrap();
    assert_eq!((c[0].revision, c[0].idempotency_key.as_str()), (3, replayed.idempotency_key.as_str()));
    let sent: serde_json::Value = serde_json::from_str(&c[0].body).unwrap();
    assert_eq!((sent["revision"].as_i64(), sent["title"].as_str()), (Some(3), Some("更正后的标题")));
    let t = store.ticket(&dl.ticket_id).await.unwrap();
    assert_eq!((t.ticket.revision, t.ticket.draft.title.as_str()), (3, "更正后的标题"));
    assert!(t.revisions.iter().any(|(rev, cause, _)| *rev == 3 && cause.contains("dead letter")), "{:?}", t.revisions);
});

on_both!(two_hubs_storing_the_same_record_at_once_make_one_ticket, |store, url| {
    let other = Store::open(&url).await.unwrap();
    let ms = simulators::canonical::matters(6, 40, "P");
    let batch_a: Vec<IntakeItem> = ms.iter().map(|m| item(m, 1)).collect();
    let batch_b: Vec<IntakeItem> = ms.iter().rev().map(|m| item(m, 1)).collect();
    let (a, b) = tokio::join!(store.store_batch(&batch_a), other.store_batch(&batch_b));
    let created = a.iter().chain(&b).filter(|o| matches!(o, Ok(StoredOutcome::Created { .. }))).count();
    let duplicates = a.iter().chain(&b).filter(|o| matches!(o, Ok(StoredOutcome::Duplicate))).count();
    assert_eq!((created, duplicates), (40, 40), "{a:?} {b:?}");
    assert_eq!(store.summary().await.unwrap().tickets, 40);
    // Two dispatchers never lease the same change.
    let (la, lb) = tokio::join!(store.lease("a", 25, 60_000), other.lease("b", 25, 60_000));
    let (la, lb) = (la.unwrap(), lb.unwrap());
    assert_eq!(la.len() + lb.len(), 40);
    assert!(la.iter().all(|x| lb.iter().all(|y| x.id != y.id)));
    other.close().await;
});

on_both!(one_batch_with_every_case_in_it, |store, _url| {
    let ms = simulators::canonical::matters(7, 3, "B");
    one(&store, item(&ms[2], 2)).await;
    let bad = br#"{"recordId": "B-bad"}"#;
    let batch = vec![
        item(&ms[0], 1),
        item(&ms[0], 3),
        item(&ms[0], 2), // older than what this very batch applied
        item(&ms[1], 1),
        item(&ms[1], 1), // the same record twice in one batch
        bad_item(bad),
        item(&ms[2], 1), // older than what was stored before
        item(&ms[2], 2), // stored before
    ];
    let out: Vec<StoredOutcome> = store.store_batch(&batch).await.into_iter().map(Result::unwrap).collect();
    let labels: Vec<&str> = out.iter().map(StoredOutcome::label).collect();
    assert_eq!(labels, ["created", "updated", "stale", "created", "duplicate", "quarantined", "stale", "duplicate"]);
    let StoredOutcome::Updated { ticket_id, revision } = &out[1] else { panic!() };
    assert_eq!(*revision, 2);
    let t = store.ticket(ticket_id).await.unwrap();
    assert_eq!((t.ticket.revision, t.ticket.sources[0].version, t.revisions.len()), (2, 3, 2));
    // Both revisions wait in the outbox, the first one first.
    let leased = store.lease("x", 10, 60_000).await.unwrap();
    let mine: Vec<i64> = leased.iter().filter(|c| &c.ticket_id == ticket_id).map(|c| c.revision).collect();
    assert_eq!(mine, vec![1]);
    let counts = store.record_counts().await.unwrap();
    assert!(counts.iter().all(|(_, outcome, _)| outcome != "pending"), "{counts:?}");
});

on_both!(a_page_and_its_cursor_commit_together, |store, _url| {
    assert_eq!(store.cursor("court:吉0402").await.unwrap(), None);
    let ms = simulators::canonical::matters(8, 3, "PAGE");
    let items: Vec<IntakeItem> = ms.iter().map(|m| item(m, 1)).collect();
    let out = store.store_page(&items, Some(("court:吉0402", "c-1723", Some("\"e1\"")))).await.unwrap();
    assert_eq!(out.iter().filter(|o| matches!(o, StoredOutcome::Created { .. })).count(), 3);
    assert_eq!(store.cursor("court:吉0402").await.unwrap(), Some(("c-1723".into(), Some("\"e1\"".into()))));
    // The same page fetched again (a crash before the cursor was seen): duplicates, cursor moves on.
    let again = store.store_page(&items, Some(("court:吉0402", "c-1725", None))).await.unwrap();
    assert!(again.iter().all(|o| *o == StoredOutcome::Duplicate));
    assert_eq!(store.cursor("court:吉0402").await.unwrap(), Some(("c-1725".into(), None)));
});

/// The contract's one collapsed manhole, told by the hotline and by a grid
/// worker, `days` later than in the samples (so that rounds are different
/// matters: rounds 100 days apart are beyond every window).
fn manhole(days: i64, n: u32) -> (IntakeItem, IntakeItem) {
    let (m, settings) = manhole_mappings();
    let sample = |name: &str| {
        std::fs::read_to_string(format!("{}/../mappings/samples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let day = chrono::NaiveDate::from_ymd_opt(2022, 7, 12).unwrap() + chrono::Duration::days(days);
    let hotline = sample("hotline-created.json")
        .replace("2022-07-12", &day.format("%Y-%m-%d").to_string())
        .replace("LY12345-20220712-000318", &format!("LY12345-{}-{n:06}", day.format("%Y%m%d")));
    let mut terminal: serde_json::Value = serde_json::from_str(&sample("terminal-report.json")).unwrap();
    terminal["occurredAt"] = (1_657_613_100_000i64 + days * 86_400_000).into();
    terminal["eventId"] = format!("W0412-{}-{:04}", day.format("%Y%m%d"), n % 10_000).into();
    let h = RawRecord::new("hotline", ContentType::Json, hotline.into_bytes());
    let t = RawRecord::new("terminal", ContentType::Json, terminal.to_string().into_bytes())
        .with_meta("topic", "grid/220402/W0412/report")
        .with_meta("county", "220402")
        .with_meta("worker_id", "W0412")
        .with_meta("kind", "report");
    (prepare(&h, &m, &settings), prepare(&t, &m, &settings))
}

/// The mappings and settings [`manhole`] prepares its records with.
fn manhole_mappings() -> (Mappings, IntakeSettings) {
    let mut m = Mappings::new();
    for agency in ["hotline", "terminal"] {
        m.insert(agency, Arc::new(crate::mapping::shipped::mapper(agency).unwrap().unwrap()));
    }
    // Thresholds of the test's own: these two reports are alike enough for
    // any sensible tuning of the scores; the store's behaviour is under test.
    let mut settings = IntakeSettings::default();
    settings.dedup.thresholds = crate::dedup::Thresholds { merge: 0.6, review: 0.3 };
    (m, settings)
}

/// The hotline's order `call` (from [`manhole`]) sent again as its version 2.
fn second_version(call: &IntakeItem) -> IntakeItem {
    let (m, settings) = manhole_mappings();
    let text = String::from_utf8(call.payload.clone()).unwrap();
    assert!(text.contains("\"version\": 1"), "the sample's version");
    let raw =
        RawRecord::new("hotline", ContentType::Json, text.replace("\"version\": 1", "\"version\": 2").into_bytes());
    prepare(&raw, &m, &settings)
}

on_both!(a_decision_taken_before_another_hub_committed_is_taken_again, |store, url| {
    // Hub A scores the grid worker's report before its transaction: no
    // ticket yet. Hub B then opens the ticket for the hotline call of the
    // same manhole. Under the lock, A must see B's ticket and join it.
    let other = Store::open(&url).await.unwrap();
    let (h, t) = manhole(0, 1);
    let pending = [intake::Pending { item: &t, raw_id: None }];
    let pre = intake::predecide(&store.pool, store.backend, &store.matching, &pending).await.unwrap();
    assert!(pre.is_some(), "the report was scored in advance");
    let StoredOutcome::Created { ticket_id, .. } = one(&other, h).await else { panic!("the call opens the ticket") };
    let mut w = store.begin_write().await.unwrap();
    let (outcomes, _) =
        intake::store_pending(&mut w.tx, store.backend, &store.matching, &store.feedback_plan(), &pending, pre, None)
            .await
            .unwrap();
    w.commit().await.unwrap();
    assert_eq!(outcomes, vec![StoredOutcome::Updated { ticket_id, revision: 2 }], "joined, not a second ticket");
    other.close().await;
});

/// Scores `first` and publishes its decisions, as intake does before
/// storing it, then scores `second` against them: the two batches' state
/// while the first is being written.
async fn score_in_turn(store: &Store, first: &IntakeItem, second: &IntakeItem) -> (intake::Ahead, intake::Ahead) {
    let mut ahead = store.score_ahead(std::slice::from_ref(first)).await;
    store.publish_ahead(std::slice::from_ref(first), &mut ahead).await;
    let next = store.score_ahead(std::slice::from_ref(second)).await;
    (ahead, next)
}

on_both!(a_batch_scored_while_the_one_before_is_stored_joins_the_ticket_it_opens, |store, _url| {
    // Intake scores a batch while the batch before it is being written: the
    // grid worker's report is scored against the call's ticket before that
    // ticket is committed, and joins it.
    let (h, t) = manhole(0, 1);
    let (first, second) = score_in_turn(&store, &h, &t).await;
    let out = store.try_store_batch(std::slice::from_ref(&h), Some(first)).await.unwrap();
    let [StoredOutcome::Created { ticket_id, .. }] = &out[..] else { panic!("the call opens the ticket: {out:?}") };
    let out = store.try_store_batch(std::slice::from_ref(&t), Some(second)).await.unwrap();
    assert_eq!(out, vec![StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 }]);
});

on_both!(a_batch_scored_against_decisions_that_did_not_stand_is_decided_again, |store, url| {
    // The report is scored to open a ticket; the call, scored against that,
    // to join it. Another hub then opens the manhole's ticket for a second
    // call, so the report joins that one instead, and the ticket the first
    // call was scored to join never exists: it must be decided again (a
    // merge into a missing ticket would fail the batch).
    let other = Store::open(&url).await.unwrap();
    let (h, t) = manhole(0, 1);
    let (h2, _) = manhole(0, 2);
    let (first, second) = score_in_turn(&store, &t, &h).await;
    let StoredOutcome::Created { ticket_id, .. } = one(&other, h2).await else { panic!("the second call opens it") };
    let out = store.try_store_batch(std::slice::from_ref(&t), Some(first)).await.unwrap();
    assert_eq!(out, vec![StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 }]);
    let out = store.try_store_batch(std::slice::from_ref(&h), Some(second)).await.unwrap();
    assert_eq!(out, vec![StoredOutcome::Updated { ticket_id, revision: 3 }], "decided again, not failed");
    other.close().await;
});

on_both!(a_later_version_of_a_record_the_batch_before_opens_is_no_new_record, |store, _url| {
    // A call's version 2 arrives while version 1, which opens the ticket, is
    // being written: it will update that ticket, so there is nothing to
    // score in advance, nothing to find changed under the lock.
    let (h, _) = manhole(0, 1);
    let h2 = second_version(&h);
    let (first, second) = score_in_turn(&store, &h, &h2).await;
    assert!(first.scored(), "version 1 is a new record");
    assert!(!second.scored(), "version 2 is an update of it");
    let out = store.try_store_batch(std::slice::from_ref(&h), Some(first)).await.unwrap();
    let [StoredOutcome::Created { ticket_id, .. }] = &out[..] else { panic!("version 1 opens the ticket: {out:?}") };
    let out = store.try_store_batch(std::slice::from_ref(&h2), Some(second)).await.unwrap();
    assert_eq!(out, vec![StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 }]);
});

on_both!(a_batch_decided_again_alike_lets_the_next_batchs_decisions_stand, |store, url| {
    // The report is scored to open a ticket, the call against that to join
    // it; another hub commits an unrelated matter in between, so the
    // report is decided again under the lock. Decided alike (the same
    // ticket, under the id chosen in advance), it commits what it
    // published, and the call's decisions, scored against that, stand:
    // one batch decided again does not make every batch after it so.
    let other = Store::open(&url).await.unwrap();
    let (h, t) = manhole(0, 1);
    let mut first = store.score_ahead(std::slice::from_ref(&t)).await;
    store.publish_ahead(std::slice::from_ref(&t), &mut first).await;
    let (far, _) = manhole(200, 9);
    assert!(matches!(one(&other, far).await, StoredOutcome::Created { .. }), "an unrelated matter");
    let mut second = store.score_ahead(std::slice::from_ref(&h)).await;
    let out = store.try_store_batch(std::slice::from_ref(&t), Some(first)).await.unwrap();
    let [StoredOutcome::Created { ticket_id, .. }] = &out[..] else { panic!("the report opens the ticket: {out:?}") };
    store.publish_ahead(std::slice::from_ref(&h), &mut second).await;
    let token = second.token().expect("the call's decisions published");
    let out = store.try_store_batch(std::slice::from_ref(&h), Some(second)).await.unwrap();
    assert_eq!(out, vec![StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 }]);
    let seen = store.matching.lock().await.seen();
    assert!(
        store.matching.mark().holds(seen, Some(token)),
        "the call's decisions stood and were taken in as published"
    );
    other.close().await;
});

on_both!(a_batch_scored_against_a_batch_that_failed_is_decided_again, |store, _url| {
    // The call is scored to join the ticket the report was scored to open;
    // the report's transaction then fails. The call opens its own ticket.
    let (h, t) = manhole(0, 1);
    let (first, second) = score_in_turn(&store, &t, &h).await;
    store.withdraw_ahead(&first).await;
    let out = store.try_store_batch(std::slice::from_ref(&h), Some(second)).await.unwrap();
    assert!(matches!(out[..], [StoredOutcome::Created { .. }]), "decided again, not failed: {out:?}");
});

on_both!(one_matter_through_two_channels_is_one_ticket_and_can_be_unmerged, |store, _url| {
    let (h, t) = manhole(0, 1);
    let StoredOutcome::Created { ticket_id, .. } = one(&store, h).await else { panic!("hotline opens the ticket") };
    let t_draft = t.change.as_ref().unwrap().draft.clone();
    let joined = one(&store, t).await;
    assert_eq!(joined, StoredOutcome::Updated { ticket_id: ticket_id.clone(), revision: 2 }, "the report joins");
    let s = store.ticket(&ticket_id).await.unwrap();
    assert_eq!(s.ticket.sources.len(), 2);
    assert!(s.ticket.draft.description.contains(crate::ticket::MERGED_MARK), "both voices kept");
    let links = store.duplicate_links_of(&ticket_id).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].state.as_str(), links[0].system.as_str()), ("merged", "terminal"));
    assert!(!links[0].reasons.is_empty() && links[0].score >= 0.6, "{:?}", links[0]);
    assert!(links[0].reasons.iter().all(|r| !r.contains("13904371234")), "no personal data in reasons");

    // A person takes it apart again.
    let source = s.ticket.sources[1].clone();
    let own =
        store.unmerge(links[0].id, Unmerged { draft: t_draft, source }, Some("a different manhole")).await.unwrap();
    let after = store.ticket(&ticket_id).await.unwrap();
    assert_eq!((after.ticket.revision, after.ticket.sources.len()), (3, 1));
    assert!(!after.ticket.draft.description.contains(crate::ticket::MERGED_MARK));
    assert_eq!(store.ticket(&own).await.unwrap().ticket.sources[0].system, "terminal");
    assert_eq!(store.duplicate_link(links[0].id).await.unwrap().state, "unmerged");
    use sqlx::Row;
    // Its fingerprint went with it (found through its source link), as the
    // newest row of the record.
    let prints: Vec<(i64, String)> = sqlx::query(
        "SELECT p.seq, p.ticket_id FROM match_prints p JOIN source_links l ON l.system = p.system AND l.record_id = p.record_id \
         WHERE l.system = 'terminal' ORDER BY p.seq",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(prints.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), [ticket_id.as_str(), own.as_str()]);
    let kept: Option<i64> = sqlx::query("SELECT print_seq FROM source_links WHERE system = 'terminal'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, Some(prints[1].0));
    assert!(
        store
            .unmerge(links[0].id, Unmerged { draft: after.ticket.draft, source: after.ticket.sources[0].clone() }, None)
            .await
            .is_err(),
        "only once"
    );
    // Every change waits for the platform: created, merged, unmerged, and the new ticket.
    assert_eq!(store.summary().await.unwrap().pending, 4);
});

on_both!(two_hubs_deciding_at_the_same_instant_make_one_ticket_per_matter, |store, url| {
    let other = Store::open(&url).await.unwrap();
    for round in 0..12 {
        let (h, t) = manhole(i64::from(round) * 100, round + 1);
        let (a, b) =
            tokio::join!(store.store_batch(std::slice::from_ref(&h)), other.store_batch(std::slice::from_ref(&t)));
        let outcomes = [a[0].as_ref().unwrap().clone(), b[0].as_ref().unwrap().clone()];
        let created = outcomes.iter().filter(|o| matches!(o, StoredOutcome::Created { .. })).count();
        assert_eq!(created, 1, "round {round}: {outcomes:?}");
    }
    assert_eq!(store.summary().await.unwrap().tickets, 12);
    other.close().await;
});

on_both!(results_and_the_next_lease_commit_together, |store, _url| {
    let ms = simulators::canonical::matters(5, 2, "L");
    for m in &ms {
        one(&store, item(m, 1)).await;
    }
    one(&store, item(&ms[0], 2)).await; // a second change of ticket 0
    let a = store.lease("a", 10, 60_000).await.unwrap();
    assert_eq!(a.len(), 2, "one head per ticket");
    let lease = LeaseRequest { owner: "a".into(), limit: 10, lease_ms: 60_000 };
    let results = vec![(a[0].clone(), DeliveryResult::Done), (a[1].clone(), DeliveryResult::Release)];
    let b = store.complete_and_lease(&results, Some(lease.clone())).await.unwrap();
    // The lease sees the results: ticket 0's second revision is its head now,
    // and the released change of ticket 1 is leasable again.
    let mut got: Vec<(String, i64)> = b.iter().map(|c| (c.ticket_id.clone(), c.revision)).collect();
    got.sort();
    let mut want = vec![(a[0].ticket_id.clone(), 2), (a[1].ticket_id.clone(), 1)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(store.ticket(&a[0].ticket_id).await.unwrap().delivered_revision, 1);
    // Nothing left to lease, nothing to record: no transaction at all.
    assert!(store.complete_and_lease(&[], Some(LeaseRequest { limit: 0, ..lease })).await.unwrap().is_empty());
    assert!(store.lease("b", 10, 60_000).await.unwrap().is_empty(), "all are leased by a");
});

/// A feed page that cannot be parsed, as the court connector hands it over:
/// the bytes differ on every poll (the court regenerates it), the position
/// does not.
fn bad_page_at(position: &str, poll: usize) -> IntakeItem {
    let page = format!("<?xml version=\"1.0\"?><!-- poll {poll} --><MediationFeed next=\"c-9\"><Case seq=\"1\">");
    let rec = RawRecord::new("court", ContentType::Xml, page.into_bytes())
        .with_meta(crate::mapping::DEFECT, "the page ends before its root element is closed (truncated)")
        .with_meta(crate::mapping::DEFECT_AT, position);
    prepare(&rec, &mappings(), &IntakeSettings::default())
}

on_both!(a_bad_feed_page_is_quarantined_once_per_cursor_position, |store, _url| {
    let first = store.store_page(&[bad_page_at("court-feed:X after c-1", 0)], None).await.unwrap();
    assert!(matches!(first[0], StoredOutcome::Quarantined { .. }), "{first:?}");
    for poll in 1..5 {
        let again = store.store_page(&[bad_page_at("court-feed:X after c-1", poll)], None).await.unwrap();
        assert_eq!(again, [StoredOutcome::Duplicate], "poll {poll} stored the page again");
    }
    // Another position is another defect; the plain content-hash rule still
    // holds for bad input that is not a feed position.
    let other = store.store_page(&[bad_page_at("court-feed:X after c-2", 0)], None).await.unwrap();
    assert!(matches!(other[0], StoredOutcome::Quarantined { .. }), "{other:?}");
    assert!(matches!(one(&store, bad_item(b"{not json")).await, StoredOutcome::Quarantined { .. }));
    assert_eq!(one(&store, bad_item(b"{not json")).await, StoredOutcome::Duplicate);
    assert_eq!(store.quarantined(false).await.unwrap().len(), 3);
});

on_both!(skipping_a_cursor_moves_it_only_from_where_it_is, |store, _url| {
    let stored = store.store_page(&[bad_page_at("court-feed:X after c-1", 0)], None).await.unwrap();
    let StoredOutcome::Quarantined { quarantine_id: id, .. } = stored[0] else { panic!("{stored:?}") };
    store.store_page(&[], Some(("court-feed:X", "c-1", Some("\"e\"")))).await.unwrap();
    // Not from where it is: nothing changes.
    let err = store.skip_cursor("court-feed:X", Some("c-0"), "c-9", id).await.unwrap_err();
    assert!(err.to_string().contains("is at `c-1`, not at `c-0`"), "{err}");
    assert_eq!(store.cursor("court-feed:X").await.unwrap(), Some(("c-1".into(), Some("\"e\"".into()))));
    store.skip_cursor("court-feed:X", Some("c-1"), "c-9", id).await.unwrap();
    assert_eq!(store.cursor("court-feed:X").await.unwrap(), Some(("c-9".into(), None)), "moved, ETag dropped");
    assert_eq!(store.quarantined_record(id).await.unwrap().state, "skipped");
    let err = store.skip_cursor("court-feed:X", Some("c-9"), "c-10", id).await.unwrap_err();
    assert!(err.to_string().contains("already skipped"), "{err}");
    // A bad first page: no cursor stored yet.
    let stored = store.store_page(&[bad_page_at("court-feed:Y from the start", 0)], None).await.unwrap();
    let StoredOutcome::Quarantined { quarantine_id: id, .. } = stored[0] else { panic!("{stored:?}") };
    store.skip_cursor("court-feed:Y", None, "c-3", id).await.unwrap();
    assert_eq!(store.cursor("court-feed:Y").await.unwrap(), Some(("c-3".into(), None)));
});

/// Records the database refuses, and what keeps their streams going.
mod unstorable;

/// The quarantine list.
mod quarantine_list;

on_both!(a_revision_body_is_written_once_and_leased_from_the_revision, |store, _url| {
    let ms = simulators::canonical::matters(9, 2, "BO");
    one(&store, item(&ms[0], 1)).await;
    let (queued, revision): (String, String) = (
        sqlx::query_scalar("SELECT body FROM outbox").fetch_one(&store.pool).await.unwrap(),
        sqlx::query_scalar("SELECT body FROM ticket_revisions").fetch_one(&store.pool).await.unwrap(),
    );
    assert_eq!(queued, "", "the outbox row points at its revision's body");
    // A row queued before bodies were written once carries its own and is sent as it is.
    sqlx::query(
        "INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at) VALUES ('old', 1, 'old:1', '{\"old\":true}', 0, 0)",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    // A row whose revision were missing goes out empty (to be refused), not a panic.
    sqlx::query(
        "INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at) VALUES ('ghost', 1, 'ghost:1', '', 0, 0)",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    let leased = store.lease("a", 10, 60_000).await.unwrap();
    assert_eq!(leased.len(), 3);
    assert_eq!(leased[0].body, revision, "the platform gets the revision's body");
    assert_eq!(leased[1].body, "{\"old\":true}");
    assert_eq!(leased[2].body, "");
    // Refused for good, the change keeps its body in the dead letters.
    store
        .complete(&[(leased[0].clone(), DeliveryResult::Rejected { status: 422, response: "no".into() })])
        .await
        .unwrap();
    assert_eq!(store.dead_letters(false).await.unwrap()[0].body, revision);
});

/// A database migrated as far as `upto`, as an older hub left it.
async fn migrated_to(url: &str, upto: i64) -> (Backend, sqlx::AnyPool) {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let (backend, url) = normalize_url(url).unwrap();
    let mut migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    migrator.migrations =
        std::borrow::Cow::Owned(migrator.migrations.iter().filter(|m| m.version <= upto).cloned().collect());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    (backend, pool)
}

mod an_upgrade_keeps_what_the_platform_acknowledged {
    use super::*;

    async fn body(db: TestDb) {
        // Before deliveries were kept apart from the ticket's row.
        let (_, pool) = migrated_to(&db.url, 14).await;
        let (h, _) = manhole(0, 1);
        let draft = h.change.as_ref().unwrap().draft.clone();
        let source = crate::ticket::Source {
            channel: crate::ticket::Channel::Hotline,
            system: "hotline".into(),
            record_id: h.record_id.clone(),
            version: 1,
            received_at: h.received_at,
        };
        let mut ticket = crate::ticket::Ticket::create("t-old".into(), draft, source);
        ticket.revision = 3;
        for (id, delivered) in [("t-old", 2i64), ("t-none", 0)] {
            ticket.ticket_id = id.into();
            sqlx::query(
                "INSERT INTO tickets (ticket_id, revision, delivered_revision, status, body, created_at, updated_at)
                 VALUES ($1, 3, $2, 'new', $3, 0, 0)",
            )
            .bind(id)
            .bind(delivered)
            .bind(serde_json::to_string(&ticket).unwrap())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
        let store = Store::open(&db.url).await.expect("upgraded");
        assert_eq!(store.ticket("t-old").await.unwrap().delivered_revision, 2);
        assert_eq!(store.ticket("t-none").await.unwrap().delivered_revision, 0);
        assert_eq!(store.summary().await.unwrap().delivered_revisions, 2);
        store.close().await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn sqlite() {
        body(TestDb::sqlite()).await;
    }

    #[tokio::test]
    async fn postgres() {
        body(TestDb::postgres().await).await;
    }
}

on_both!(a_write_transaction_let_go_without_its_commit_leaves_nothing_and_frees_the_writer, |store, _url| {
    let mut w = store.begin_write().await.unwrap();
    query("INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, 0)")
        .bind("dropped")
        .bind("1")
        .execute(&mut w.tx)
        .await
        .unwrap();
    drop(w);
    // A failed statement inside a transaction, then the transaction let go.
    let mut w = store.begin_write().await.unwrap();
    assert!(query("INSERT INTO no_such_table VALUES (1)").execute(&mut w.tx).await.is_err());
    drop(w);
    let mut w = store.begin_write().await.unwrap();
    query("INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, 0)")
        .bind("kept")
        .bind("2")
        .execute(&mut w.tx)
        .await
        .unwrap();
    w.commit().await.unwrap();
    assert_eq!(store.cursor("dropped").await.unwrap(), None);
    assert_eq!(store.cursor("kept").await.unwrap().map(|c| c.0), Some("2".to_string()));
});

on_both!(statements_bind_numbered_placeholders_by_number_and_read_back_every_type, |store, _url| {
    let mut w = store.begin_write().await.unwrap();
    let row = query("SELECT $2 AS b, $1 AS a, $2 AS b_again, $3 AS absent, $4 AS real, $5 AS yes")
        .bind(7_i64)
        .bind("二")
        .bind(None::<i64>)
        .bind(2.5_f64)
        .bind(true)
        .fetch_one(&mut w.tx)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("b"), "二");
    assert_eq!(row.get::<i64, _>(1), 7);
    assert_eq!(row.get::<String, _>(2), "二");
    assert_eq!(row.get::<Option<i64>, _>("absent"), None);
    assert_eq!(row.get::<f64, _>("real"), 2.5);
    assert!(row.get::<bool, _>("yes"));
    assert!(row.try_get::<i64, _>("b").is_err(), "text is not read as a number");
    assert!(row.try_get::<i64, _>("missing").is_err());
    // `?` placeholders, as the multi-row statements write them on SQLite.
    let sql = format!("SELECT COUNT(*) FROM {} AS v", batch::values_table(store.backend(), 2, 3, 1));
    let mut q = query(sql);
    for i in 0..3_i64 {
        q = q.bind(i).bind(format!("v{i}"));
    }
    assert_eq!(q.fetch_one(&mut w.tx).await.unwrap().get::<i64, _>(0), 3);
    let many = query_scalar::<i64>("SELECT $1 UNION ALL SELECT $2").bind(1_i64).bind(2_i64).fetch_all(&mut w.tx).await;
    assert_eq!(many.unwrap(), vec![1, 2]);
    w.commit().await.unwrap();
});

on_both!(
    a_write_cancelled_while_it_holds_the_writer_leaves_nothing_and_a_closed_store_writes_nothing,
    |store, _url| {
        let writing = async {
            let mut w = store.begin_write().await.unwrap();
            query("INSERT INTO cursors (name, value, updated_at) VALUES ('cancelled', '1', 0)")
                .execute(&mut w.tx)
                .await
                .unwrap();
            std::future::pending::<()>().await;
            w.commit().await.unwrap();
        };
        assert!(tokio::time::timeout(Duration::from_millis(50), writing).await.is_err());
        let w = store.begin_write().await.expect("the writer is free again");
        w.commit().await.unwrap();
        assert_eq!(store.cursor("cancelled").await.unwrap(), None);
        store.close().await;
        assert!(store.begin_write().await.is_err(), "a closed store begins no write");
    }
);

on_both!(only_the_dispatchers_bookkeeping_and_the_figures_commit_without_waiting_for_the_disk, |store, _url| {
    let setting = |store: Store, who: Writer| async move {
        let mut w = store.begin_write_as(who).await.unwrap();
        let sql = match store.backend() {
            Backend::Sqlite => "PRAGMA synchronous",
            Backend::Postgres => "SHOW synchronous_commit",
        };
        let row = query(sql).fetch_one(&mut w.tx).await.unwrap();
        w.commit().await.unwrap();
        match store.backend() {
            // 2 is FULL, 1 NORMAL.
            Backend::Sqlite => (row.get::<i64, _>(0) == 2).to_string(),
            // `on` by default; `remote_apply` and the like are as durable.
            Backend::Postgres => (row.get::<String, _>(0) != "off").to_string(),
        }
    };
    for (who, durable) in [
        (Writer::Intake, "true"),
        (Writer::Delivery, "false"),
        (Writer::Other, "true"),
        (Writer::Figures, "false"),
        (Writer::Intake, "true"),
    ] {
        assert_eq!(setting(store.clone(), who).await, durable, "{who:?}");
    }
});

on_both!(changes_handed_to_the_dispatcher_carry_the_bodies_their_revisions_hold, |store, _url| {
    let handoff = Arc::new(Handoff::new("dispatcher-a".into(), Duration::from_secs(60)));
    store.set_handoff(handoff.clone());
    handoff.want(3);
    let matters = simulators::canonical::matters(5, 4, "H");
    // Two versions of one matter in a batch: only its first change is handed.
    let mut items: Vec<IntakeItem> = matters.iter().map(|m| item(m, 1)).collect();
    items.push(item(&matters[0], 2));
    assert!(store.store_batch(&items).await.iter().all(|o| o.is_ok()));
    let handed = handoff.take();
    match store.backend() {
        // One writer: the transaction leases its own rows as it writes them.
        Backend::Sqlite => {
            assert_eq!(handed.changes.len(), 3, "as many as wanted");
            assert!(handed.left, "the rest wait in the outbox");
            for c in &handed.changes {
                let stored = super::testing::revision_body(&store, &c.ticket_id, c.revision).await;
                assert!(!c.body.is_empty());
                assert_eq!(c.body, stored, "{}:{}", c.ticket_id, c.revision);
                assert_eq!(c.revision, 1);
                assert_eq!(c.lease_owner, "dispatcher-a");
            }
        }
        // Other hubs' rows may land among them: the dispatcher leases.
        Backend::Postgres => assert!(handed.changes.is_empty()),
    }
});
