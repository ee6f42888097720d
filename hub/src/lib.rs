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

/// Asks the kernel not to back this process's memory with transparent huge
/// pages, once. Where THP is `always` (as on many servers), each page the
/// allocator takes afresh is a 2 MiB page the kernel zeroes whole, for a
/// buffer of a few KiB; under load that zeroing was 5.9% of the hub's CPU
/// samples (`clear_page_erms`), and 0.9% with small pages, with 30% less
/// memory held. What huge pages did buy is felt only by a very large
/// duplicate index: over a million open tickets (`benches/dedup.rs`) the
/// search per record takes 14 µs at the median against 12, p99 0.61–0.69
/// ms against 0.57–0.61 (its target is 2 ms), where a city's three days
/// hold tens of thousands. Called as the hub starts; like the allocator, it
/// is the process's, and programs it starts inherit it.
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: prctl with PR_SET_THP_DISABLE takes integers and
            // touches no memory of ours; a kernel without it says EINVAL,
            // and the hub runs as before.
            let done = unsafe {
                libc::prctl(
                    libc::PR_SET_THP_DISABLE,
                    1 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if done != 0 {
                tracing::debug!("transparent huge pages stay as the system has them");
            }
        });
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_asks_for_small_pages() {
        super::prefer_small_pages();
        // SAFETY: as in `prefer_small_pages`.
        let disabled = unsafe {
            libc::prctl(
                libc::PR_GET_THP_DISABLE,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if disabled < 0 {
            // A kernel without the setting: the hub runs as before.
            return;
        }
        assert_eq!(disabled, 1);
    }
}
