//! Polling the court's mediation feed.

use std::time::{Duration, SystemTime};

use backoff::backoff::Backoff;
use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH, RETRY_AFTER};
use tokio::sync::mpsc;

use super::pipeline::{
    ChannelReader, META_FEED, META_FEED_CURSOR, PageCtx, PageEnd, defect_record, new_backoff, next_delay, pause,
    run_page,
};
use crate::{CancellationToken, Connector, ConnectorError, Cursor, Intake, IntakeError};

/// Configuration of one court's feed.
#[derive(Clone, Debug)]
pub struct CourtFeedConfig {
    /// e.g. `http://court.example:8080` (the feed is at `{base_url}/mediation/feed`).
    pub base_url: String,
    /// The source system name in the hub (`court`).
    pub system: String,
    /// The court code (`吉0402`); the cursor is stored as `court-feed:{court}`.
    pub court: String,
    /// `limit` query parameter.
    pub limit: u32,
    /// Pause after a page without `more` or a 304.
    pub poll_interval: Duration,
    /// Connect timeout, and the longest silence while reading a response.
    pub timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// `Retry-After` of a 429 or 503 is honoured within these bounds: `0`
    /// or a date in the past would poll again at once, without end, and a
    /// huge value would stop the feed for as long.
    pub retry_after_min: Duration,
    pub retry_after_max: Duration,
    /// A single case larger than this is handed over as a defect record.
    pub max_case_bytes: usize,
    /// At most this many cases per hand-over (and held in memory).
    pub chunk_size: usize,
    /// How much of a bad page is kept in its defect record: its beginning,
    /// enough for a person to see what the court sent and where it goes on
    /// (`next`); a page that stays bad is kept once per cursor position.
    pub max_defect_bytes: usize,
}

/// The position a page is asked from: the cursor's name and value, the key
/// under which a page that cannot be parsed there is quarantined once.
pub(crate) fn position(cursor_name: &str, after: Option<&str>) -> String {
    match after {
        Some(a) => format!("{cursor_name} after {a}"),
        None => format!("{cursor_name} from the start"),
    }
}

impl CourtFeedConfig {
    pub fn new(base_url: impl Into<String>, system: impl Into<String>, court: impl Into<String>) -> Self {
        CourtFeedConfig {
            base_url: base_url.into(),
            system: system.into(),
            court: court.into(),
            limit: 200,
            poll_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            retry_after_min: Duration::from_secs(1),
            retry_after_max: Duration::from_secs(3600),
            max_case_bytes: 1024 * 1024,
            chunk_size: 100,
            max_defect_bytes: 256 * 1024,
        }
    }

    pub fn cursor_name(&self) -> String {
        format!("court-feed:{}", self.court)
    }
}

/// The court feed connector (HTTP polling).
pub struct CourtFeedConnector {
    config: CourtFeedConfig,
    client: reqwest::Client,
    feed_url: reqwest::Url,
}

impl CourtFeedConnector {
    pub fn new(config: CourtFeedConfig) -> Result<Self, ConnectorError> {
        let fail = |message: String| ConnectorError { connector: config.system.clone(), message };
        let feed_url = reqwest::Url::parse(&format!("{}/mediation/feed", config.base_url.trim_end_matches('/')))
            .map_err(|e| fail(format!("bad base_url: {e}")))?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .build()
            .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        Ok(CourtFeedConnector { config, client, feed_url })
    }
}

/// What one request came to.
enum Poll {
    Committed {
        next: String,
        etag: Option<String>,
        more: bool,
        cases: usize,
    },
    NotModified,
    Throttled(Option<Duration>),
    /// Bad page handed over as a defect record.
    Defect(String),
    Failed(String),
    Intake(IntakeError),
    Cancelled,
}

impl Connector for CourtFeedConnector {
    fn name(&self) -> &str {
        &self.config.system
    }

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>> {
        Box::pin(async move {
            self.run_loop(intake, shutdown).await;
            Ok(())
        })
    }
}

impl CourtFeedConnector {
    async fn run_loop(self: Box<Self>, intake: Intake, shutdown: CancellationToken) {
        let cfg = &self.config;
        let name = cfg.cursor_name();
        let mut backoff = new_backoff(cfg.backoff_min, cfg.backoff_max);
        let mut cursor = loop {
            match intake.load_cursor(&name).await {
                Ok(c) => break c,
                Err(IntakeError::ShuttingDown) => return,
                Err(e) => {
                    tracing::warn!(court = %cfg.court, error = %e, "court feed: cannot load the cursor; retrying");
                    if !pause(&shutdown, next_delay(&mut backoff)).await {
                        return;
                    }
                }
            }
        };
        backoff.reset();
        tracing::info!(court = %cfg.court, cursor = ?cursor.as_ref().map(|c| &c.value), "court feed: polling");
        // The cursor value whose bad page was already reported (warn once).
        let mut warned: Option<Option<String>> = None;
        while !shutdown.is_cancelled() {
            if warned.is_some() {
                // Stuck on a bad page: an operator may have moved the cursor
                // past it (`hub court skip`); take the stored one.
                match intake.load_cursor(&name).await {
                    Ok(stored) if stored.as_ref().map(|c| &c.value) != cursor.as_ref().map(|c| &c.value) => {
                        tracing::warn!(court = %cfg.court, from = ?cursor.as_ref().map(|c| &c.value),
                            to = ?stored.as_ref().map(|c| &c.value), "court feed: the cursor was moved past the bad page");
                        cursor = stored;
                        warned = None;
                        backoff.reset();
                    }
                    Ok(_) => {}
                    Err(IntakeError::ShuttingDown) => break,
                    Err(e) => tracing::warn!(court = %cfg.court, error = %e, "court feed: cannot load the cursor"),
                }
            }
            let delay = match self.poll_once(&intake, &shutdown, cursor.as_ref()).await {
                Poll::Committed { next, etag, more, cases } => {
                    tracing::debug!(court = %cfg.court, cases, more, "court feed: page committed");
                    cursor = Some(Cursor { value: next, etag });
                    intake.link().up();
                    backoff.reset();
                    warned = None;
                    if more { Duration::ZERO } else { cfg.poll_interval }
                }
                Poll::NotModified => {
                    intake.link().up();
                    backoff.reset();
                    cfg.poll_interval
                }
                Poll::Throttled(after) => after.unwrap_or_else(|| next_delay(&mut backoff)),
                Poll::Defect(reason) => {
                    intake.link().down(format!("a bad page at the cursor, quarantined: {reason}"));
                    let at = cursor.as_ref().map(|c| c.value.clone());
                    if warned.as_ref() != Some(&at) {
                        tracing::warn!(court = %cfg.court, cursor = ?at, %reason,
                            "court feed: bad page quarantined (once for this cursor); polling the same cursor again \
                             with backoff until the court fixes it or `hub court skip` moves past it");
                        warned = Some(at);
                    }
                    next_delay(&mut backoff)
                }
                Poll::Failed(error) => {
                    intake.link().down(format!("request failed: {error}"));
                    tracing::warn!(court = %cfg.court, %error, "court feed: request failed; backing off");
                    next_delay(&mut backoff)
                }
                Poll::Intake(IntakeError::ShuttingDown) | Poll::Cancelled => break,
                Poll::Intake(e) => {
                    tracing::warn!(court = %cfg.court, error = %e, "court feed: the hub did not commit; the cursor stays");
                    next_delay(&mut backoff)
                }
            };
            if !delay.is_zero() && !pause(&shutdown, delay).await {
                break;
            }
        }
        tracing::info!(court = %cfg.court, "court feed: stopped");
    }

    async fn poll_once(&self, intake: &Intake, shutdown: &CancellationToken, cursor: Option<&Cursor>) -> Poll {
        let cfg = &self.config;
        let mut url = self.feed_url.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(c) = cursor {
                q.append_pair("after", &c.value);
            }
            q.append_pair("limit", &cfg.limit.to_string());
        }
        let mut req = self.client.get(url);
        if let Some(etag) = cursor.and_then(|c| c.etag.as_deref()) {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let mut resp = tokio::select! {
            _ = shutdown.cancelled() => return Poll::Cancelled,
            r = req.send() => match r {
                Ok(r) => r,
                Err(e) => return Poll::Failed(e.without_url().to_string()),
            },
        };
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED => return Poll::NotModified,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()))
                    .map(|d| clamp(d, cfg.retry_after_min, cfg.retry_after_max));
                tracing::info!(court = %cfg.court, status = %resp.status(), retry_after = ?after, "court feed: throttled");
                return Poll::Throttled(after);
            }
            other => return Poll::Failed(format!("unexpected status {other}")),
        }
        let etag = resp.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let after = cursor.map(|c| c.value.clone());

        // Pump the body into the parser thread; keep the beginning of it for a defect record.
        let (btx, brx) = mpsc::channel::<Bytes>(8);
        let stop = shutdown.child_token();
        let max_keep = cfg.max_defect_bytes;
        let pump = {
            let stop = stop.clone();
            async move {
                let mut kept: Vec<u8> = Vec::new();
                let mut total = 0usize;
                let result = loop {
                    let chunk = tokio::select! {
                        _ = stop.cancelled() => break Err(None),
                        c = resp.chunk() => c,
                    };
                    match chunk {
                        Ok(Some(b)) => {
                            total += b.len();
                            if kept.len() < max_keep {
                                let n = (max_keep - kept.len()).min(b.len());
                                kept.extend_from_slice(&b[..n]);
                            }
                            if btx.send(b).await.is_err() {
                                break Ok(());
                            }
                        }
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(Some(e.without_url().to_string())),
                    }
                };
                drop(btx);
                (result, kept, total)
            }
        };
        let mut meta = Vec::new();
        if let Some(a) = &after {
            meta.push((META_FEED_CURSOR.to_string(), a.clone()));
        }
        let ctx = PageCtx {
            intake,
            shutdown,
            system: &cfg.system,
            court: Some(&cfg.court),
            extra_meta: meta,
            chunk_size: cfg.chunk_size,
            max_case_bytes: cfg.max_case_bytes,
        };
        let name = cfg.cursor_name();
        let cursor_etag = etag.clone();
        let page = async {
            let end = run_page(&ctx, ChannelReader::new(brx), |h| {
                let next = h.next.clone().unwrap_or_default();
                // An ETag only means "nothing new" once we are caught up.
                Some((name, Cursor { value: next, etag: if h.more { None } else { cursor_etag } }))
            })
            .await;
            stop.cancel();
            end
        };
        let ((pumped, kept, total), end) = tokio::join!(pump, page);
        if shutdown.is_cancelled() {
            return Poll::Cancelled;
        }
        match end {
            PageEnd::Committed { header, cases } => Poll::Committed {
                next: header.next.clone().unwrap_or_default(),
                etag: if header.more { None } else { etag },
                more: header.more,
                cases,
            },
            PageEnd::Defect(reason) => {
                if let Err(Some(e)) = pumped {
                    // The connection broke: that is a transport failure, not bad input.
                    return Poll::Failed(format!("reading the page failed: {e}"));
                }
                let kept_all = kept.len() == total;
                let mut meta = ctx.extra_meta.clone();
                meta.push((META_FEED.to_string(), cfg.cursor_name()));
                let at = position(&cfg.cursor_name(), after.as_deref());
                let record =
                    defect_record(&cfg.system, Some(&cfg.court), kept, kept_all, total, &reason, &meta, Some(&at));
                match intake.submit_page(vec![record], None).await {
                    Ok(_) => Poll::Defect(reason),
                    Err(e) => Poll::Intake(e),
                }
            }
            PageEnd::Intake(e) => Poll::Intake(e),
            PageEnd::Cancelled => Poll::Cancelled,
        }
    }
}

/// `Retry-After` as seconds or an HTTP date, as asked: a date in the past is
/// zero, a number of seconds too large for a `u64` the longest duration.
/// Unreadable: `None` (the caller backs off as for any failure).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `d` within `[min, max]`; a `max` below `min` counts as `min` (never
/// panics, unlike `Duration::clamp`).
pub(crate) fn clamp(d: Duration, min: Duration, max: Duration) -> Duration {
    d.min(max).max(min)
}
