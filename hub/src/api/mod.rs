//! The centre's side of the hub on `HUB_LISTEN`: the admin API (JSON, with
//! an OpenAPI document), the live dashboard and Open311, each behind
//! bearer tokens with roles ([`auth`]).

pub mod auth;
