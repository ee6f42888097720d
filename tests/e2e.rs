//! End-to-end tests of the hub with real faults: the platform going away,
//! the hub process killed with SIGKILL, the platform refusing changes.

mod admin_api;
mod api;
mod brokers;
mod callbacks;
mod cli;
mod court;
mod crash;
mod dashboard;
mod deadletters;
mod delivery;
mod duplicates;
mod feedback;
mod http_source;
mod onboarding;
mod open311;
mod supervision;
mod unstorable;
