//! Records the store cannot take as they are: quarantined with a reason a
//! person can read, and the records after them on the same stream stored.

use super::*;

fn shipped(agency: &str) -> Mappings {
    let mut m = Mappings::new();
    let mapper = crate::mapping::shipped::mapper(agency).expect("shipped").expect("loads");
    m.insert(agency, Arc::new(mapper));
    m
}

fn hotline_order(order_no: &str) -> IntakeItem {
    let mut order: serde_json::Value =
        serde_json::from_str(include_str!("../../../../mappings/samples/hotline-created.json")).unwrap();
    order["orderNo"] = order_no.into();
    let rec = RawRecord::new("hotline", ContentType::Json, serde_json::to_vec(&order).unwrap())
        .with_encoding("utf-8")
        .with_meta("routing_key", "order.created");
    prepare(&rec, &shipped("hotline"), &IntakeSettings::default())
}

fn terminal_report(event_id: &str) -> IntakeItem {
    let mut report: serde_json::Value =
        serde_json::from_str(include_str!("../../../../mappings/samples/terminal-report.json")).unwrap();
    // The event's own worker (its id's prefix) speaks for it, else the
    // mapping refuses the record before its id is looked at.
    let worker = event_id.split('-').next().unwrap_or_default();
    report["eventId"] = event_id.into();
    report["workerId"] = worker.into();
    let rec = RawRecord::new("terminal", ContentType::Json, serde_json::to_vec(&report).unwrap())
        .with_encoding("utf-8")
        .with_meta("topic", format!("grid/220402/{worker}/report"))
        .with_meta("county", "220402")
        .with_meta("worker_id", worker)
        .with_meta("kind", "report");
    prepare(&rec, &shipped("terminal"), &IntakeSettings::default())
}

/// 5,000 letters and digits that do not compress (PostgreSQL compresses
/// index entries before it measures them).
fn long_event_id() -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let letters: String = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect();
    format!("{letters}-20220712-0003")
}

fn quarantined(outcome: &Result<StoredOutcome, StoreError>) -> &str {
    match outcome {
        Ok(StoredOutcome::Quarantined { reason, .. }) => reason,
        other => panic!("not quarantined: {other:?}"),
    }
}

on_both!(a_hotline_order_number_holding_u0000_is_quarantined_and_the_stream_goes_on, |store, _url| {
    let bad = hotline_order("LY12345-20240715-\u{0}00001");
    let good = hotline_order("LY12345-20240715-000002");
    // In one batch with a good order, and again on its own (a redelivery).
    let outcomes = store.store_batch(&[bad, good]).await;
    let reason = quarantined(&outcomes[0]).to_string();
    assert!(reason.contains("orderNo") && reason.contains("\\u{0}"), "a readable reason: {reason}");
    assert!(matches!(outcomes[1], Ok(StoredOutcome::Created { .. })), "{:?}", outcomes[1]);
    let again = store.store_batch(&[hotline_order("LY12345-20240715-\u{0}00001")]).await;
    assert!(matches!(again[0], Ok(StoredOutcome::Duplicate)), "{:?}", again[0]);
    // (The same words as the good order: it joins that ticket.)
    let later = store.store_batch(&[hotline_order("LY12345-20240715-000003")]).await;
    assert!(matches!(later[0], Ok(StoredOutcome::Created { .. } | StoredOutcome::Updated { .. })), "{:?}", later[0]);
    let list = store.quarantined(false).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason, reason);
});

on_both!(a_terminal_event_id_of_5_kb_is_quarantined_and_the_stream_goes_on, |store, _url| {
    let outcomes = store.store_batch(&[terminal_report(&long_event_id())]).await;
    let reason = quarantined(&outcomes[0]);
    assert!(reason.contains("record id has 5014 bytes"), "{reason}");
    let later = store.store_batch(&[terminal_report("W0412-20220712-0004")]).await;
    assert!(matches!(later[0], Ok(StoredOutcome::Created { .. } | StoredOutcome::Updated { .. })), "{:?}", later[0]);
});

/// An update of a ticket whose stored body cannot be read any more.
async fn break_ticket(store: &Store, m: &simulators::canonical::Matter) {
    let StoredOutcome::Created { ticket_id, .. } = one(store, item(m, 1)).await else { panic!("not created") };
    sqlx::query("UPDATE tickets SET body = 'not a ticket' WHERE ticket_id = $1")
        .bind(ticket_id)
        .execute(store.pool())
        .await
        .unwrap();
}

on_both!(a_record_that_fails_to_store_every_time_is_quarantined_once_and_the_rest_stored, |store, _url| {
    let ms = simulators::canonical::matters(11, 3, "P");
    break_ticket(&store, &ms[0]).await;
    let outcomes = store.store_batch(&[item(&ms[1], 1), item(&ms[0], 2), item(&ms[2], 1)]).await;
    assert!(matches!(outcomes[0], Ok(StoredOutcome::Created { .. })), "{:?}", outcomes[0]);
    let reason = quarantined(&outcomes[1]);
    assert!(reason.contains("could not be stored") && reason.contains("cannot be read back"), "{reason}");
    assert!(matches!(outcomes[2], Ok(StoredOutcome::Created { .. })), "{:?}", outcomes[2]);
    // Delivered again: the same bytes are kept already.
    assert!(matches!(store.store_batch(&[item(&ms[0], 2)]).await[0], Ok(StoredOutcome::Duplicate)));
    let list = store.quarantined(false).await.unwrap();
    assert_eq!(list.len(), 1);
    let kept = store.quarantined_record(list[0].id).await.unwrap();
    assert_eq!(kept.payload, ms[0].payload(2), "the bytes as received, for a replay");
});

on_both!(a_page_with_a_record_that_cannot_be_stored_moves_its_cursor, |store, _url| {
    let ms = simulators::canonical::matters(12, 3, "C");
    break_ticket(&store, &ms[0]).await;
    let page = [item(&ms[1], 1), item(&ms[0], 2), item(&ms[2], 1)];
    let outcomes = store.store_page(&page, Some(("feed", "after-3", Some("etag-3")))).await.expect("page stored");
    assert!(matches!(outcomes[0], StoredOutcome::Created { .. }), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1], StoredOutcome::Quarantined { .. }), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], StoredOutcome::Created { .. }), "{:?}", outcomes[2]);
    assert_eq!(store.cursor("feed").await.unwrap(), Some(("after-3".into(), Some("etag-3".into()))));
});

/// PostgreSQL refuses U+0000 in text: a record id holding one, handed to
/// the store by something other than the mappings (which refuse it), is
/// still only that record's trouble.
#[tokio::test]
async fn a_record_postgres_refuses_is_quarantined_whatever_handed_it_over() {
    let db = TestDb::postgres().await;
    let store = Store::open(&db.url).await.expect("open");
    let ms = simulators::canonical::matters(13, 2, "N");
    let mut bad = item(&ms[0], 1);
    bad.record_id = "N-\u{0}".into();
    bad.encoding = Some("utf-8\u{0}".into());
    let outcomes = store.store_batch(&[bad, item(&ms[1], 1)]).await;
    let reason = quarantined(&outcomes[0]);
    assert!(reason.contains("could not be stored"), "{reason}");
    assert!(matches!(outcomes[1], Ok(StoredOutcome::Created { .. })), "{:?}", outcomes[1]);
    // The page path too, cursor and all.
    let mut bad = item(&ms[0], 2);
    bad.record_id = "N-\u{0}".into();
    let outcomes = store.store_page(&[bad], Some(("feed", "after-1", None))).await.expect("page stored");
    assert!(matches!(outcomes[0], StoredOutcome::Quarantined { .. }), "{:?}", outcomes[0]);
    assert_eq!(store.cursor("feed").await.unwrap(), Some(("after-1".into(), None)));
    store.close().await;
    db.cleanup().await;
}

on_both!(a_record_that_fails_with_an_unclear_error_is_quarantined_after_five_tries, |store, _url| {
    // A rule of the database refuses one record's link (a constraint
    // violation: neither the database's trouble nor plainly the record's).
    // A missing table would be the database's: it fails every record alike.
    let first = store.store_batch(&[hotline_order("LY12345-20240715-000011")]).await;
    assert!(matches!(first[0], Ok(StoredOutcome::Created { .. })), "{:?}", first[0]);
    let refused = "LY12345-20240715-000012";
    let rules = match store.backend() {
        crate::store::Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON source_links WHEN NEW.record_id = '{refused}' \
             BEGIN SELECT RAISE(ABORT, 'refused by a rule'); END"
        )],
        crate::store::Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $f$ BEGIN IF NEW.record_id = '{refused}' THEN \
                 RAISE EXCEPTION 'refused by a rule' USING ERRCODE = '23514'; END IF; RETURN NEW; END $f$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_one BEFORE INSERT ON source_links FOR EACH ROW EXECUTE FUNCTION refuse_one()".into(),
        ],
    };
    for rule in rules {
        sqlx::query(sqlx::AssertSqlSafe(rule)).execute(store.pool()).await.unwrap();
    }
    for attempt in 1..crate::store::failure::UNCLEAR_TRIES {
        let again = store.store_batch(&[hotline_order("LY12345-20240715-000012")]).await;
        assert!(again[0].is_err(), "attempt {attempt}: {:?}", again[0]);
    }
    let last = store.store_batch(&[hotline_order("LY12345-20240715-000012")]).await;
    let reason = quarantined(&last[0]);
    assert!(reason.contains("could not be stored"), "{reason}");
    // Kept: delivered once more, it is a duplicate of what is in quarantine.
    let after = store.store_batch(&[hotline_order("LY12345-20240715-000012")]).await;
    assert!(matches!(after[0], Ok(StoredOutcome::Duplicate)), "{:?}", after[0]);
});
