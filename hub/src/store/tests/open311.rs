//! Open311's rows: chosen from the facts by time, region, category and
//! status, newest first, with their bodies.

use super::*;

fn july() -> PublicFilter {
    let ms = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
    PublicFilter {
        from_ms: ms("2024-07-01T00:00:00+08:00"),
        until_ms: ms("2024-08-01T00:00:00+08:00"),
        limit: MAX_REQUESTS,
        ..PublicFilter::default()
    }
}

on_both!(public_requests_follow_time_region_category_and_status, |store, _url| {
    let ms = simulators::canonical::matters(311, 30, "O");
    for m in &ms {
        one(&store, item(m, 1)).await;
    }
    let all = store.public_requests(&july()).await.unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].received_at >= w[1].received_at), "newest first");
    assert!(all.iter().all(|r| r.body.contains(&r.ticket_id)));
    let dongfeng = store.public_requests(&PublicFilter { region: Some("220421".into()), ..july() }).await.unwrap();
    assert!(!dongfeng.is_empty() && dongfeng.len() < 30);
    assert!(dongfeng.iter().all(|r| r.region.starts_with("220421")));
    let code = all[0].category.clone();
    let same = store.public_requests(&PublicFilter { categories: vec![code.clone()], ..july() }).await.unwrap();
    assert_eq!(same.len(), all.iter().filter(|r| r.category == code).count());
    let closed = PublicFilter { statuses: vec!["resolved".into(), "closed".into()], ..july() };
    assert!(store.public_requests(&closed).await.unwrap().is_empty());
    let august = PublicFilter { from_ms: july().until_ms, until_ms: july().until_ms + 86_400_000, ..july() };
    assert!(store.public_requests(&august).await.unwrap().is_empty());
    let ids = vec![all[3].ticket_id.clone(), all[7].ticket_id.clone(), "nobody".into()];
    let two = store.public_requests(&PublicFilter { ids, from_ms: 0, until_ms: 0, ..july() }).await.unwrap();
    assert_eq!(two.len(), 2);
    let capped = store.public_requests(&PublicFilter { limit: 5, ..july() }).await.unwrap();
    assert_eq!(capped.len(), 5);
});
