//! The way back out: each status change, told to every agency that brought
//! the matter in (件件有回音). The mirror of platform delivery: what to say
//! comes from each agency's mapping (`mapping/feedback.rs`), is queued in
//! the feedback outbox with the callback that caused it
//! (`store/feedback.rs`), and one [`dispatcher`] per agency sends it over
//! that agency's transport (`connectors::outbound`), so an agency that is
//! down delays only its own messages.

pub mod dispatcher;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{MappingRef, Settings, SourceSettings, Transport};
use crate::mapping::feedback::{self, FeedbackSpec};

/// The `[feedback]` of `source`'s mapping, if the source's transport can
/// carry it back: an amqp back-channel needs an amqp source (the same
/// broker), mqtt an mqtt source, http a court_feed source (its base URL).
/// A court that drops files has no address to post outcomes to.
pub fn reach(source: &SourceSettings) -> Option<&Arc<FeedbackSpec>> {
    let MappingRef::File { mapper, .. } = &source.mapping else { return None };
    let spec = mapper.feedback()?;
    let fits = matches!(
        (spec.transport, &source.transport),
        (feedback::Transport::Amqp, Transport::Amqp(_))
            | (feedback::Transport::Mqtt, Transport::Mqtt(_))
            | (feedback::Transport::Http, Transport::CourtFeed(_))
    );
    fits.then_some(spec)
}

/// Why `source`'s agency will not hear back, when its mapping asks for it
/// and its transport cannot carry it (for `hub check` and the start log).
pub fn unreachable(source: &SourceSettings) -> Option<String> {
    let MappingRef::File { mapper, .. } = &source.mapping else { return None };
    let spec = mapper.feedback()?;
    reach(source).is_none().then(|| {
        format!(
            "source `{}`: its mapping's [feedback] goes over {:?}, which a {} source cannot carry: the agency will not hear back (a court that drops files needs a court_feed URL for its outcomes)",
            source.name,
            spec.transport,
            match source.transport {
                Transport::Http(_) => "http",
                Transport::Amqp(_) => "amqp",
                Transport::Mqtt(_) => "mqtt",
                Transport::CourtFeed(_) => "court_feed",
                Transport::FileDrop(_) => "file_drop",
            }
        )
    })
}

/// Which agencies (by source name) have a back-channel, and what it says.
#[derive(Clone, Debug, Default)]
pub struct Plan(HashMap<String, Arc<FeedbackSpec>>);

impl Plan {
    /// The `[feedback]` sections of the configured sources' mappings.
    pub fn of(settings: &Settings) -> Plan {
        let mut plan = HashMap::new();
        for s in &settings.sources {
            if let Some(spec) = reach(s) {
                plan.insert(s.name.clone(), spec.clone());
            }
        }
        Plan(plan)
    }

    pub fn with(mut self, source: &str, spec: Arc<FeedbackSpec>) -> Plan {
        self.0.insert(source.to_string(), spec);
        self
    }

    pub fn spec(&self, source: &str) -> Option<&FeedbackSpec> {
        self.0.get(source).map(Arc::as_ref)
    }
}
