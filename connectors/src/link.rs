//! Whether a connector's connection to its source is up, as the connector
//! itself last found it.
//!
//! A broker that accepts TCP but refuses the hub's login, or whose TLS
//! certificate the hub does not trust, looks reachable from outside while
//! no record comes through; the connector keeps retrying inside its `run`
//! and so stays "running". Only the connector knows, so it says: the hub
//! shows it on `/readyz`.

use std::sync::{Arc, Mutex};

/// What the connector last said about its connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LinkState {
    /// Not said yet (still connecting for the first time, or a connector
    /// without a connection of its own, such as an HTTP listener).
    #[default]
    Unknown,
    Up,
    /// The last attempt failed, or the connection was lost, for this reason
    /// (never with credentials).
    Down(String),
}

/// The connector's end: cheap to clone, shared with the hub's health.
#[derive(Clone, Debug, Default)]
pub struct Link(Arc<Mutex<LinkState>>);

impl Link {
    pub fn up(&self) {
        self.set(LinkState::Up);
    }

    pub fn down(&self, reason: impl Into<String>) {
        self.set(LinkState::Down(reason.into()));
    }

    pub fn state(&self) -> LinkState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, state: LinkState) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_what_the_connector_said() {
        let link = Link::default();
        let seen = link.clone();
        assert_eq!(seen.state(), LinkState::Unknown);
        link.down("not authorised");
        assert_eq!(seen.state(), LinkState::Down("not authorised".into()));
        link.up();
        assert_eq!(seen.state(), LinkState::Up);
    }
}
