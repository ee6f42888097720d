//! Shared by the feed and the file drop: runs the parser on a blocking
//! thread and hands its cases to the hub in chunks as they close.

use std::io::{self, Read};
use std::time::Duration;

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::parse::{CaseItem, Header, Item, ParseError, parse_page};
use crate::{CancellationToken, ContentType, Cursor, Intake, IntakeError, RawRecord};

/// How a page (or file) ended.
#[derive(Debug)]
pub(crate) enum PageEnd {
    /// All cases handed over; the last chunk carried the cursor (if any).
    Committed {
        header: Header,
        cases: usize,
    },
    /// Bad input: nothing more was handed over for it (the caller hands the
    /// raw bytes over as one defect record).
    Defect(String),
    /// The hub failed: the cursor did not move.
    Intake(IntakeError),
    Cancelled,
}

pub(crate) struct PageCtx<'a> {
    pub intake: &'a Intake,
    pub shutdown: &'a CancellationToken,
    pub system: &'a str,
    /// The court for the metadata; when `None`, the root's `court` attribute.
    pub court: Option<&'a str>,
    pub extra_meta: Vec<(String, String)>,
    pub chunk_size: usize,
    pub max_case_bytes: usize,
}

/// Cases waiting between the parser thread and the hand-over.
const ITEM_QUEUE: usize = 4;

pub(crate) async fn run_page<R, F>(ctx: &PageCtx<'_>, raw: R, make_cursor: F) -> PageEnd
where
    R: Read + Send + 'static,
    F: FnOnce(&Header) -> Option<(String, Cursor)>,
{
    let (tx, mut rx) = mpsc::channel::<Item>(ITEM_QUEUE);
    let max = ctx.max_case_bytes;
    let parser = tokio::task::spawn_blocking(move || parse_page(raw, max, &mut |item| tx.blocking_send(item).is_ok()));
    let chunk_size = ctx.chunk_size.max(1);
    let mut header: Option<Header> = None;
    let mut pending: Vec<RawRecord> = Vec::with_capacity(chunk_size);
    let mut cases = 0usize;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Case(case) => {
                if pending.len() >= chunk_size {
                    if ctx.shutdown.is_cancelled() {
                        return PageEnd::Cancelled;
                    }
                    let chunk = std::mem::replace(&mut pending, Vec::with_capacity(chunk_size));
                    if let Err(e) = ctx.intake.submit_page(chunk, None).await {
                        return PageEnd::Intake(e);
                    }
                }
                cases += 1;
                pending.push(case_record(ctx, header.as_ref(), case));
            }
        }
    }
    let result = match parser.await {
        Ok(r) => r,
        Err(e) => Err(ParseError::Defect(format!("the parser failed: {e}"))),
    };
    match result {
        Ok(()) => {
            let header = header.expect("a parsed page has a header");
            if ctx.shutdown.is_cancelled() {
                return PageEnd::Cancelled;
            }
            let cursor = make_cursor(&header);
            let submit = cursor.is_some() || !pending.is_empty();
            let result = if submit { ctx.intake.submit_page(pending, cursor).await.map(drop) } else { Ok(()) };
            if let Err(e) = result {
                return PageEnd::Intake(e);
            }
            PageEnd::Committed { header, cases }
        }
        Err(ParseError::Defect(reason)) => PageEnd::Defect(reason),
        Err(ParseError::Aborted) => PageEnd::Cancelled,
    }
}

pub(crate) fn case_record(ctx: &PageCtx<'_>, header: Option<&Header>, case: CaseItem) -> RawRecord {
    let mut r = RawRecord::new(ctx.system, ContentType::Xml, case.xml).with_encoding("utf-8");
    if let Some(court) = ctx.court.or(header.and_then(|h| h.court.as_deref())) {
        r = r.with_meta("court", court);
    }
    if let Some(seq) = case.seq {
        r = r.with_meta("seq", seq);
    }
    for (k, v) in &ctx.extra_meta {
        r = r.with_meta(k.clone(), v.clone());
    }
    if let Some(oversized) = case.oversized {
        r = r.with_meta(META_DEFECT, oversized.reason(ctx.max_case_bytes));
    }
    r
}

/// Metadata of a defect record: the reason the hub quarantines it with.
pub const META_DEFECT: &str = "defect";
/// Metadata of a feed page's defect record: the position of the feed it
/// stands for (`court-feed:吉0402 after c-1723`). The hub keeps one defect per
/// position, however often the page is polled and whatever bytes the court
/// serves there each time.
pub const META_DEFECT_AT: &str = "defect_at";
/// Metadata of a feed page's defect record: the name of the feed's cursor.
pub const META_FEED: &str = "feed";
/// Metadata of a feed page's records: the cursor the page was asked after
/// (absent for the first page).
pub const META_FEED_CURSOR: &str = "feed_cursor";

/// The raw bytes of a bad page or file as one record, for quarantine.
/// `position` is set for a feed page: see [`META_DEFECT_AT`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn defect_record(
    system: &str,
    court: Option<&str>,
    raw: Vec<u8>,
    kept_all: bool,
    total: usize,
    reason: &str,
    extra_meta: &[(String, String)],
    position: Option<&str>,
) -> RawRecord {
    let mut r = RawRecord::new(system, ContentType::Xml, raw).with_meta(META_DEFECT, reason);
    if let Some(at) = position {
        r = r.with_meta(META_DEFECT_AT, at);
    }
    if let Some(court) = court {
        r = r.with_meta("court", court);
    }
    if !kept_all {
        r = r.with_meta("defect_truncated", format!("only the first bytes of {total} are kept"));
    }
    for (k, v) in extra_meta {
        r = r.with_meta(k.clone(), v.clone());
    }
    r
}

/// A blocking `Read` over body chunks arriving on a channel; the end of the
/// channel is the end of the body.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader { rx, cur: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = self.cur.len().min(dst.len());
        dst[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

pub(crate) fn new_backoff(min: Duration, max: Duration) -> ExponentialBackoff {
    backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(min)
        .with_max_interval(max.max(min))
        .with_multiplier(2.0)
        .with_randomization_factor(0.5)
        .with_max_elapsed_time(None)
        .build()
}

pub(crate) fn next_delay(b: &mut ExponentialBackoff) -> Duration {
    b.next_backoff().unwrap_or(b.max_interval)
}

/// Sleeps unless shut down first; false when shut down.
pub(crate) async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
