//! The courts' same-day documents: one alarm per agreed case without its
//! document at the cut-off, cleared by a document that comes later.

use super::*;

fn mappings() -> Mappings {
    let mut m = Mappings::new();
    let court = crate::mapping::shipped::mapper("court").expect("shipped").expect("loads");
    m.insert("court", Arc::new(court));
    m
}

/// The sample's agreed case at `seq`, with or without its document.
fn agreed(seq: u32, documented: bool) -> IntakeItem {
    let page = include_str!("../../../../mappings/samples/court-feed-page2.xml");
    let start = page.find("<Case ").unwrap();
    let end = page.find("</Case>").unwrap() + "</Case>".len();
    let mut case = page[start..end].replace("seq=\"1724\"", &format!("seq=\"{seq}\""));
    if !documented {
        let (a, b) = (case.find("<Documents>").unwrap(), case.find("</Documents>").unwrap() + "</Documents>".len());
        case.replace_range(a..b, "");
    }
    let rec = RawRecord::new("court", ContentType::Xml, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{case}"));
    let item = prepare(&rec, &mappings(), &IntakeSettings::default());
    assert!(item.change.is_ok(), "{:?}", item.change.as_ref().err());
    item
}

on_both!(an_agreed_case_without_its_document_raises_one_alarm_that_a_late_document_clears, |store, url| {
    let by = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    let StoredOutcome::Created { ticket_id, .. } = one(&store, agreed(1724, false)).await else {
        panic!("not created")
    };
    let pending = store.pending_documents().await.unwrap();
    assert_eq!((pending.len(), pending[0].case_no.as_str()), (1, "(2024)吉0402民诉前调123号"));
    let cut = crate::store::cut_off(pending[0].agreed_at, by);
    assert!(store.check_court_documents(by, cut - 1).await.unwrap().is_empty(), "not before the cut-off");
    let other = Store::open(&url).await.unwrap();
    let (a, b) = tokio::join!(store.check_court_documents(by, cut + 1), other.check_court_documents(by, cut + 1));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1, "one alarm, whichever hub looks");
    assert!(store.check_court_documents(by, cut + 60_000).await.unwrap().is_empty());
    assert!(store.pending_documents().await.unwrap()[0].alarmed_at.is_some());

    // The document comes, late: the alarm is cleared, and the document goes to the platform.
    assert!(matches!(one(&store, agreed(1725, true)).await, StoredOutcome::Updated { .. }));
    assert!(store.pending_documents().await.unwrap().is_empty());
    let t = store.ticket(&ticket_id).await.unwrap().ticket;
    assert_eq!(t.draft.court.as_ref().map(|c| c.documents.len()), Some(1));
    let history: Vec<String> = store.ticket_events(&ticket_id).await.unwrap().into_iter().map(|e| e.detail).collect();
    assert!(
        history.iter().any(|l| l.starts_with("ALARM")) && history.iter().any(|l| l.contains("alarm cleared")),
        "{history:?}"
    );
    other.close().await;
});

on_both!(an_agreed_case_with_its_document_raises_nothing, |store, _url| {
    one(&store, agreed(1724, true)).await;
    assert!(store.pending_documents().await.unwrap().is_empty());
    assert!(store.check_court_documents(chrono::NaiveTime::MIN, i64::MAX / 2).await.unwrap().is_empty());
});
