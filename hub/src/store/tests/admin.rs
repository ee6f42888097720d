//! The admin API's reads: ticket search a page at a time, regions, and the
//! repair lists within a region.

use super::*;

fn placed(m: &simulators::canonical::Matter, code: &str) -> IntakeItem {
    let mut r = m.record(1);
    r["ticket"]["region"] = serde_json::json!({"code": code, "level": "township", "name": "某镇"});
    prepare(
        &RawRecord::new("canon", ContentType::Json, r.to_string().into_bytes()),
        &mappings(),
        &IntakeSettings::default(),
    )
}

on_both!(a_search_pages_through_every_ticket_once_within_its_region, |store, _url| {
    let ms = simulators::canonical::matters(808, 11, "ADM");
    let mut ids = Vec::new();
    let mut dongfeng = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        let code = if i % 3 == 0 { "220421100000" } else { "220402002000" };
        let StoredOutcome::Created { ticket_id, .. } = one(&store, placed(m, code)).await else {
            panic!("not created")
        };
        if i % 3 == 0 {
            dongfeng.push(ticket_id.clone());
        }
        ids.push(ticket_id);
    }
    // By cursor, three at a time: every ticket once, newest received first.
    let mut seen = Vec::new();
    let mut q = TicketQuery { limit: 3, ..TicketQuery::default() };
    loop {
        let page = store.search_tickets(&q).await.unwrap();
        assert!(page.len() <= 3);
        assert!(page.iter().all(|f| !f.body.is_empty() && f.revision == 1), "{page:?}");
        seen.extend(page.iter().map(|f| (f.received_at, f.ticket_id.clone())));
        match page.last() {
            Some(last) if page.len() == 3 => q.after = Some((last.received_at, last.ticket_id.clone())),
            _ => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id");
    let mut found: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    found.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(found, all);

    // A county, a township, a status, a day range, ids.
    let county = TicketQuery { region: Some("220421".into()), limit: 50, ..TicketQuery::default() };
    let mut got: Vec<String> = store.search_tickets(&county).await.unwrap().into_iter().map(|f| f.ticket_id).collect();
    got.sort();
    dongfeng.sort();
    assert_eq!(got, dongfeng);
    let township = TicketQuery { region: Some("220421100".into()), limit: 50, ..TicketQuery::default() };
    assert_eq!(store.search_tickets(&township).await.unwrap().len(), dongfeng.len());
    let other = TicketQuery { region: Some("220422".into()), limit: 50, ..TicketQuery::default() };
    assert!(store.search_tickets(&other).await.unwrap().is_empty());
    let closed = TicketQuery { status: Some("closed".into()), limit: 50, ..TicketQuery::default() };
    let n_closed = store.search_tickets(&closed).await.unwrap().len();
    let all_of = TicketQuery { limit: 50, ..TicketQuery::default() };
    assert!(n_closed < store.search_tickets(&all_of).await.unwrap().len());
    let before = TicketQuery { to_ms: Some(0), limit: 50, ..TicketQuery::default() };
    assert!(store.search_tickets(&before).await.unwrap().is_empty());
    let by_offset = TicketQuery { limit: 4, offset: 8, ..TicketQuery::default() };
    assert_eq!(store.search_tickets(&by_offset).await.unwrap().len(), 3);

    let named = store.tickets_named(&ms[4].record_id, &["canon".to_string()]).await.unwrap();
    assert_eq!(named, vec![ids[4].clone()]);
    assert_eq!(store.tickets_named(&ids[2], &[]).await.unwrap(), vec![ids[2].clone()]);
    assert!(store.tickets_named("nothing", &["canon".to_string()]).await.unwrap().is_empty());
    let only = TicketQuery { ids: Some(named), limit: 50, ..TicketQuery::default() };
    assert_eq!(store.search_tickets(&only).await.unwrap()[0].ticket_id, ids[4]);

    assert_eq!(store.ticket_region(&ids[0]).await.unwrap().as_deref(), Some("220421100000"));
    assert_eq!(store.ticket_region("no-such").await.unwrap(), None);
    assert_eq!(store.last_record("canon").await.unwrap().unwrap().outcome, "created");
    assert!(store.last_record("nobody").await.unwrap().is_none());
    assert_eq!(store.cursor_moved_at("court-feed:nowhere").await.unwrap(), None);
});

on_both!(repair_lists_are_paged_and_scoped_by_their_tickets_region, |store, _url| {
    let ms = simulators::canonical::matters(909, 2, "REP");
    let StoredOutcome::Created { ticket_id: east, .. } = one(&store, placed(&ms[0], "220421100000")).await else {
        panic!("not created")
    };
    let StoredOutcome::Created { ticket_id: west, .. } = one(&store, placed(&ms[1], "220402002000")).await else {
        panic!("not created")
    };
    let event = |id: &str, at: &str| {
        serde_json::json!({"ticketId": id, "status": "dispatched", "department": "甲局", "at": at}).to_string()
    };
    store.take_callback("e1", event(&east, "2024-08-01T09:00:00+08:00").as_bytes()).await.unwrap();
    store.take_callback("e2", event(&west, "2024-08-01T09:00:00+08:00").as_bytes()).await.unwrap();
    store.take_callback("e3", event("no-such", "2024-08-01T09:00:00+08:00").as_bytes()).await.unwrap();

    let city = store.callbacks_page(false, 0, 50, None).await.unwrap();
    assert_eq!(city.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["e3", "e2", "e1"]);
    let page = store.callbacks_page(false, 0, 2, None).await.unwrap();
    let rest = store.callbacks_page(false, page[1].id, 2, None).await.unwrap();
    assert_eq!(rest.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["e1"]);
    let open = store.callbacks_page(true, 0, 50, None).await.unwrap();
    assert_eq!(open.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["e3"]);
    let east_only = store.callbacks_page(false, 0, 50, Some("220421")).await.unwrap();
    assert_eq!(east_only.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["e1"]);
    assert!(store.callbacks_page(true, 0, 50, Some("220421")).await.unwrap().is_empty(), "held: no region");

    // The other lists' statements run on this backend, scoped or not.
    assert!(store.dead_letters_page(true, 0, 50, Some("220421")).await.unwrap().is_empty());
    assert!(store.dead_letters_page(false, 0, 50, None).await.unwrap().is_empty());
    for state in [None, Some("possible")] {
        assert!(store.duplicate_links_page(state, 0, 50, Some("220421")).await.unwrap().is_empty());
        assert!(store.duplicate_links_page(state, 0, 50, None).await.unwrap().is_empty());
    }
});
