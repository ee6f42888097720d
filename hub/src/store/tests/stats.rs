//! The statistics' aggregates follow every change.

use super::*;
use crate::stats::figures::Figures;

fn callback(ticket_id: &str, status: &str, at: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut v = serde_json::json!({"ticketId": ticket_id, "status": status, "at": at});
    if let serde_json::Value::Object(m) = extra {
        v.as_object_mut().unwrap().extend(m);
    }
    serde_json::to_vec(&v).unwrap()
}

fn july() -> CellFilter {
    CellFilter { from_month: "2024-07".into(), to_month: "2024-07".into(), region: None }
}

on_both!(figures_follow_dispatch_resolution_rating_reopening_and_deadlines, |store, _url| {
    let ms = simulators::canonical::matters(60, 3, "ST");
    let mut ids = Vec::new();
    for m in &ms {
        let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
        ids.push(ticket_id);
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let take = |id: &str, body: Vec<u8>| {
        let (store, id) = (store.clone(), id.to_string());
        async move {
            let out = store.take_callback(&id, &body).await.unwrap();
            assert!(!matches!(out, CallbackOutcome::Held { .. }), "{out:?}");
        }
    };
    let due = |d: &str, t: &str, due: &str| {
        callback(d, "dispatched", t, serde_json::json!({"department": "甲局", "dueAt": due}))
    };
    take("a1", due(a, "2024-08-01T09:00:00+08:00", "2024-08-10T18:00:00+08:00")).await;
    take("a2", callback(a, "resolved", "2024-08-02T09:00:00+08:00", serde_json::json!({}))).await;
    let rated = |id: &str, t: &str, r: &str| {
        callback(id, "closed", t, serde_json::json!({"evaluation": {"result": r, "by": "citizen"}}))
    };
    take("a3", rated(a, "2024-08-03T09:00:00+08:00", "satisfied")).await;
    let b_due = callback(
        b,
        "dispatched",
        "2024-08-01T09:00:00+08:00",
        serde_json::json!({"department": "乙局", "dueAt": "2024-08-01T12:00:00+08:00"}),
    );
    take("b1", b_due).await;
    take("b2", callback(b, "resolved", "2024-08-03T09:00:00+08:00", serde_json::json!({}))).await;

    let t = Figures::of(&store.cell_total(&july()).await.unwrap());
    assert_eq!((t.received, t.closed, t.on_time_rate, t.rated), (3, 2, Some(0.5), 1));

    // A frown on B: back in progress, no longer closed, still rated.
    take("b3", rated(b, "2024-08-04T09:00:00+08:00", "unsatisfied")).await;
    let t = Figures::of(&store.cell_total(&july()).await.unwrap());
    assert_eq!((t.received, t.closed, t.on_time_rate), (3, 1, Some(1.0)));
    assert_eq!((t.rated, t.satisfaction_rate, t.reopened), (2, Some(0.5), 1));
    let hours = t.avg_handling_hours.unwrap();
    assert!(hours > 24.0, "A took days from its report to its resolution: {hours}");

    // C crosses a deadline unresolved, and so does B, back in progress: overdue, once each.
    take("c1", due(c, "2024-08-01T09:00:00+08:00", "2024-08-02T09:00:00+08:00")).await;
    let later = chrono::DateTime::parse_from_rfc3339("2024-09-01T00:00:00+08:00").unwrap().timestamp_millis();
    store.check_deadlines(0.8, later).await.unwrap();
    store.check_deadlines(0.8, later + 60_000).await.unwrap();
    assert_eq!(store.cell_total(&july()).await.unwrap().overdue, 2);

    let by_department = store.cell_sums(&july(), Dimension::Department).await.unwrap();
    let names: Vec<(&str, i64)> = by_department.iter().map(|(d, c)| (d.as_str(), c.received)).collect();
    assert_eq!(names, [("乙局", 1), ("甲局", 2)]);
    let by_county = store.cell_sums(&july(), Dimension::County).await.unwrap();
    assert_eq!(by_county.iter().map(|(_, c)| c.received).sum::<i64>(), 3);
    let (county, n) = (&by_county[0].0, by_county[0].1.received);
    let scoped = CellFilter { region: Some(county.clone()), ..july() };
    assert_eq!(store.cell_total(&scoped).await.unwrap().received, n);
    // A county's figures (from the rollups) and its townships' (from the
    // cells) agree with each other and with the city's.
    let townships = store.cell_sums(&scoped, Dimension::Township).await.unwrap();
    let mut summed = crate::stats::facts::Counts::default();
    for (township, c) in &townships {
        summed.add(c);
        if township.is_empty() {
            continue; // matters placed at county level only
        }
        let own = CellFilter { region: Some(township.clone()), ..july() };
        assert_eq!(&store.cell_total(&own).await.unwrap(), c, "{township}");
    }
    assert_eq!(summed, store.cell_total(&scoped).await.unwrap());
    let by_department_in_county = store.cell_sums(&scoped, Dimension::Department).await.unwrap();
    assert_eq!(by_department_in_county.iter().map(|(_, c)| c.received).sum::<i64>(), n);
    let months = store.cell_sums(&july(), Dimension::Month).await.unwrap();
    assert_eq!(months.iter().map(|(m, c)| (m.as_str(), c.received)).collect::<Vec<_>>(), [("2024-07", 3)]);
    assert_eq!(months[0].1, store.cell_total(&july()).await.unwrap(), "overdue and all, alike");
    let days = store.daily_received("2024-07-01", "2024-07-31", None).await.unwrap();
    assert_eq!(days.iter().map(|d| d.received).sum::<i64>(), 3);
    // Counting again changes nothing; a store that kept no figures gets them.
    let before = store.cell_total(&july()).await.unwrap();
    assert_eq!(store.rebuild_statistics(|_| {}).await.unwrap(), 3);
    assert_eq!(store.cell_total(&july()).await.unwrap(), before);
    for table in ["ticket_facts", "stats_cells", "stats_rollups", "stats_daily"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(store.pool()).await.unwrap();
    }
    store.rebuild_statistics(|_| {}).await.unwrap();
    let rebuilt = store.cell_total(&july()).await.unwrap();
    assert_eq!((rebuilt.received, rebuilt.finished, rebuilt.rated, rebuilt.reopened), (3, 1, 2, 1));
    assert_eq!(rebuilt.overdue, 2, "deadlines crossed before the figures were kept count");
    let empty = CellFilter { from_month: "2025-01".into(), to_month: "2025-12".into(), region: None };
    assert_eq!(store.cell_total(&empty).await.unwrap().received, 0);
});

on_both!(intake_lists_its_tickets_and_the_figures_count_them_after, |store, _url| {
    let ms = simulators::canonical::matters(64, 3, "SM");
    for m in &ms {
        assert!(matches!(one(&store, item(m, 1)).await, StoredOutcome::Created { .. }));
    }
    let count = |sql: &'static str| {
        let store = store.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM ticket_facts").await, 0, "intake's transactions write no figures");
    assert_eq!(count("SELECT COUNT(*) FROM stats_due").await, 3);
    assert_eq!(store.count_listed().await.unwrap(), 3);
    assert_eq!(store.count_listed().await.unwrap(), 0, "counted, off the list");
    assert_eq!(count("SELECT COUNT(*) FROM ticket_facts").await, 3);
    let all = CellFilter { from_month: "2000-01".into(), to_month: "2099-12".into(), region: None };
    let counted = store.cell_total(&all).await.unwrap();
    assert_eq!(counted.received, 3);

    // A later version marks its ticket again: counted as a move, not a
    // fourth matter; a read counts it first.
    assert!(matches!(one(&store, item(&ms[0], 2)).await, StoredOutcome::Updated { .. }));
    assert_eq!(count("SELECT COUNT(*) FROM stats_due").await, 1);
    assert_eq!(store.cell_total(&all).await.unwrap().received, 3);
    assert_eq!(count("SELECT COUNT(*) FROM stats_due").await, 0);
    // Counting a ticket again moves nothing.
    sqlx::query("INSERT INTO stats_due (ticket_id, due_at) SELECT ticket_id, 1 FROM tickets")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.count_listed().await.unwrap(), 3);
    assert_eq!(store.cell_total(&all).await.unwrap().received, 3);
});

/// `matter`'s record at `version`, with its status and region set.
fn changed(matter: &simulators::canonical::Matter, version: i64, status: &str, region: &str) -> IntakeItem {
    let mut record = matter.record(version);
    record["ticket"]["status"] = status.into();
    record["ticket"]["region"]["code"] = region.into();
    let raw = RawRecord::new("canon", ContentType::Json, serde_json::to_vec(&record).unwrap());
    prepare(&raw, &mappings(), &IntakeSettings::default())
}

on_both!(a_finish_is_dated_by_the_change_that_finished_it, |store, _url| {
    let m = &simulators::canonical::matters(65, 1, "SF")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, changed(m, 1, "new", "220402002000")).await else {
        panic!("not created")
    };
    store.count_listed().await.unwrap();
    let listed = |store: Store| async move {
        sqlx::query_as::<_, (i64, Option<i64>)>("SELECT due_at, finished_at FROM stats_due")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    // Changed, then resolved a moment later, both before the count.
    one(&store, changed(m, 2, "new", "220402002000")).await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    one(&store, changed(m, 3, "resolved", "220402002000")).await;
    let (due_at, finished_at) = listed(store.clone()).await;
    let finished_at = finished_at.expect("the resolving change is remembered");
    assert!(finished_at >= due_at + 30, "dated by the resolution, not the first change: {due_at} {finished_at}");
    store.count_listed().await.unwrap();
    let counted: Option<i64> = sqlx::query_scalar("SELECT finished_at FROM ticket_facts WHERE ticket_id = $1")
        .bind(&ticket_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(counted, Some(finished_at));
    // Unfinished again before a count: no finish to date.
    one(&store, changed(m, 4, "resolved", "220402002000")).await;
    one(&store, changed(m, 5, "in_progress", "220402002000")).await;
    assert_eq!(listed(store.clone()).await.1, None);
});

on_both!(a_tickets_region_and_its_live_events_are_read_as_it_now_stands, |store, _url| {
    let m = &simulators::canonical::matters(66, 1, "SR")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, changed(m, 1, "new", "220402002000")).await else {
        panic!("not created")
    };
    // Not counted yet: the live feed counts the tickets it shows first.
    let events = store.revisions_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].region.as_str(), events[0].county.as_str()), ("220402002000", "220402"));
    // Moved to another county: an access check sees where it is now.
    one(&store, changed(m, 2, "new", "220421100000")).await;
    assert_eq!(store.ticket_region(&ticket_id).await.unwrap().as_deref(), Some("220421100000"));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_due").fetch_one(store.pool()).await.unwrap();
    assert_eq!(count, 0);
});

on_both!(a_surge_in_a_township_raises_its_alerts_once, |store, _url| {
    let m = &simulators::canonical::matters(62, 1, "SG")[0];
    let StoredOutcome::Created { ticket_id, .. } = one(&store, item(m, 1)).await else { panic!("not created") };
    let template = store.ticket(&ticket_id).await.unwrap().ticket;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let mut tickets = Vec::new();
    for back in 0..42i64 {
        // Two a day (one on Sundays), then fifteen on the last day.
        let n = if back == 0 {
            15
        } else if back % 7 == 0 {
            1
        } else {
            2
        };
        for k in 0..n {
            let mut t = template.clone();
            t.ticket_id = format!("SURGE-{back}-{k}");
            t.draft.category = "0101".to_string().try_into().unwrap();
            t.draft.region.code = crate::ticket::RegionCode::parse("220421100000").unwrap();
            let day = today - chrono::Duration::days(back);
            t.draft.reported_at = chrono::DateTime::parse_from_rfc3339(&format!("{day}T10:00:00+08:00")).unwrap();
            let at = t.draft.reported_at.timestamp_millis();
            tickets.push((t, None, at));
        }
    }
    store.count_in_statistics(&tickets).await.unwrap();
    let raised = crate::stats::alerts::check(&store, today, &Default::default()).await.unwrap();
    let areas: Vec<(&str, &str)> = raised.iter().map(|a| (a.area.as_str(), a.day.as_str())).collect();
    assert!(areas.contains(&("220421100", "2026-11-30")), "the township: {raised:?}");
    assert!(areas.contains(&("220421", "2026-11-30")), "and its county: {raised:?}");
    let township = raised.iter().find(|a| a.area == "220421100").unwrap();
    assert_eq!(township.count, 15);
    assert!(township.evidence.contains("东丰镇") && township.evidence.contains("市政设施"), "{}", township.evidence);
    assert!(crate::stats::alerts::check(&store, today, &Default::default()).await.unwrap().is_empty(), "once");
    assert_eq!(store.alerts("2026-11-01", Some("220421"), 100).await.unwrap().len(), raised.len());
    assert!(store.alerts("2026-11-01", Some("220402"), 100).await.unwrap().is_empty(), "another county's");
    // A month's report reads that month's alerts, not the newest ones after it.
    let october = store.alerts_between("2026-10-01", "2026-10-31", Some("220421"), 100).await.unwrap();
    assert!(october.is_empty(), "{october:?}");
    let last_day = store.alerts_between("2026-11-30", "2026-11-30", Some("220421"), 100).await.unwrap();
    assert!(!last_day.is_empty() && last_day.iter().all(|a| a.day == "2026-11-30"), "{last_day:?}");
});
