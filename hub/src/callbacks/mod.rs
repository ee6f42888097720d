//! The way back in: the platform's status callbacks (`POST
//! /api/v1/platform/events` on the hub's listener), the mirror of a source's
//! intake. `verify` decides whether a callback is the platform's, `event`
//! reads it, `endpoint` answers it once it is kept (`store/callbacks.rs`
//! applies it to the ticket in the same transaction).

pub mod endpoint;
pub mod event;
pub mod verify;
