//! The centre's screen's reads: revisions by number, lists by region.

use super::*;

on_both!(revisions_are_numbered_in_order_with_where_they_are, |store, _url| {
    assert_eq!(store.last_revision_id().await.unwrap(), 0);
    let ms = simulators::canonical::matters(31, 4, "LV");
    let outs = store.store_batch(&ms.iter().map(|m| item(m, 1)).collect::<Vec<_>>()).await;
    assert!(outs.iter().all(|o| matches!(o, Ok(StoredOutcome::Created { .. }))), "{outs:?}");
    let first = store.revisions_after(0, 100).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "{first:?}");
    for r in &first {
        assert_eq!((r.revision, r.cause.as_str(), r.channel.as_str()), (1, "created", "hotline"));
        assert_eq!(r.region.len(), 12, "{r:?}");
        assert!(r.region.starts_with(&r.county) && !r.category.is_empty(), "{r:?}");
    }
    let last = store.last_revision_id().await.unwrap();
    assert_eq!(last, first[3].id);

    // An update is numbered after everything before it; reading after a
    // number gives exactly what came later.
    one(&store, item(&ms[1], 2)).await;
    let later = store.revisions_after(last, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].ticket_id.as_str(), later[0].revision), (first[1].ticket_id.as_str(), 2));
    assert_eq!(
        store.revisions_after(first[1].id, 2).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        [first[2].id, first[3].id]
    );
});

on_both!(overdue_lists_keep_to_their_region, |store, _url| {
    let ms = simulators::canonical::matters(32, 6, "DL");
    let mut tickets = Vec::new();
    for m in &ms {
        let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
        tickets.push(ticket_id);
    }
    for (i, t) in tickets.iter().enumerate() {
        let body = serde_json::to_vec(&serde_json::json!({"ticketId": t, "status": "dispatched",
            "at": "2024-08-01T09:00:00+08:00", "department": "甲局", "dueAt": "2024-08-02T09:00:00+08:00"}))
        .unwrap();
        store.take_callback(&format!("d{i}"), &body).await.unwrap();
    }
    let now = chrono::Utc::now().timestamp_millis();
    store.check_deadlines(0.8, now).await.unwrap();
    let all = store.due_tickets_in(None, 100).await.unwrap();
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(all.iter().all(|d| d.overdue_at.is_some() && d.placed.department == "甲局"));
    let county = all[0].placed.county.clone();
    let own = store.due_tickets_in(Some(&county), 100).await.unwrap();
    let expected = all.iter().filter(|d| d.placed.county == county).count();
    assert_eq!(own.len(), expected);
    assert!(own.iter().all(|d| d.placed.county == county));
    assert!(store.due_tickets_in(Some("220499"), 100).await.unwrap().is_empty());
    assert_eq!(store.due_tickets_in(None, 2).await.unwrap().len(), 2);
    assert!(store.pending_documents_in(Some(&county), 10).await.unwrap().is_empty());
});
