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

use crate::config::{MappingRef, Settings};
use crate::mapping::feedback::FeedbackSpec;

/// Which agencies (by source name) have a back-channel, and what it says.
#[derive(Clone, Debug, Default)]
pub struct Plan(HashMap<String, Arc<FeedbackSpec>>);

impl Plan {
    /// The `[feedback]` sections of the configured sources' mappings.
    pub fn of(settings: &Settings) -> Plan {
        let mut plan = HashMap::new();
        for s in &settings.sources {
            if let MappingRef::File { mapper, .. } = &s.mapping
                && let Some(spec) = mapper.feedback()
            {
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

    pub fn sources(&self) -> impl Iterator<Item = (&str, &Arc<FeedbackSpec>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}
