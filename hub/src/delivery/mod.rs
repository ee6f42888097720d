//! Delivery: the outbox → the platform, with retries, pauses and ordering.
//!
//! `dispatcher` leases changes and runs the requests, `platform` speaks the
//! platform's HTTP contract and classifies its answers, `retry` holds the
//! backoff policy.

mod dispatcher;
mod platform;
mod retry;

pub use dispatcher::{DispatcherSettings, Wake, run};
pub use platform::{Answer, PlatformClient, PlatformSettings};
pub use retry::RetryPolicy;
