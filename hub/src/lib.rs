//! The integration hub's core.
//!
//! A record's path through the hub, module by module:
//! [`connectors`] hand a raw record to [`intake`], which runs the source's
//! [`mapping`] to a [`ticket`] draft and stores record, ticket revision and
//! outbox row in one transaction ([`store`]); only then does the connector
//! acknowledge it at its source. [`delivery`] leases changes from the outbox
//! and PUTs them to the platform. [`app`] starts and stops it all, [`config`]
//! says how, [`sources`] is where configured sources become connectors.
//! [`stats`] keeps the figures the centre's screen and [`api`] show.

pub mod api;
pub mod app;
pub mod callbacks;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod diagnostic;
pub mod feedback;
pub mod intake;
pub mod mapping;
pub mod markup;
pub mod metrics;
pub mod pii;
pub mod server;
pub mod sources;
pub mod stats;
pub mod store;
pub mod ticket;

pub use app::Hub;

/// The allocator of every program built on the hub (the `hub` binary, the
/// benchmarks that run it in process): under load glibc's malloc and free
/// took 17% of the hub's CPU, most of it in buffers one thread allocates
/// and another frees (a connector's payload, a ticket's body on its way to
/// SQLite's thread, a request to the platform).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
