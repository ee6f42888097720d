//! Simulators used by the demo, the end-to-end tests and the benchmarks.
//!
//! They stand in for systems we cannot run locally (the city governance
//! platform, the agencies) and can misbehave on demand, so that the hub's
//! retry, ordering and idempotency logic is exercised against realistic
//! failures instead of a happy path.

pub mod agencies;
pub mod canonical;
pub mod platform;
pub mod surge;
