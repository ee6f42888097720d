//! The quarantine list reads sizes, not payloads, a page at a time.

use super::*;

on_both!(the_quarantine_list_pages_and_reads_sizes_not_payloads, |store, _url| {
    let sizes = [10, 300_000, 1_000_000];
    for (i, n) in sizes.iter().enumerate() {
        let mut bytes = format!("{{\"recordId\": \"L-{i}\", \"pad\": \"").into_bytes();
        bytes.resize(*n - 2, b'x');
        bytes.extend_from_slice(b"\"}");
        assert!(matches!(one(&store, bad_item(&bytes)).await, StoredOutcome::Quarantined { .. }));
    }
    let first = store.quarantined_page(false, 0, 2).await.unwrap();
    assert_eq!(first.iter().map(|q| q.payload_bytes).collect::<Vec<_>>(), vec![10, 300_000]);
    let rest = store.quarantined_page(false, first[1].id, 2).await.unwrap();
    assert_eq!(rest.iter().map(|q| q.payload_bytes).collect::<Vec<_>>(), vec![1_000_000]);
    assert!(rest[0].reason.contains("not a canonical record"), "{}", rest[0].reason);
    assert_eq!(store.quarantined(true).await.unwrap().len(), 3);
});
