//! The one place where configured sources become connectors and mappers.

use std::sync::Arc;

use connectors::BoxedConnector;
use connectors::http::HttpConnector;

use crate::config::{MappingRef, Settings, SourceSettings, Transport};
use crate::mapping::{CanonicalMapper, Mapper, Mappings};

pub fn mapper(source: &SourceSettings) -> Arc<dyn Mapper> {
    match source.mapping {
        MappingRef::Canonical => Arc::new(CanonicalMapper),
    }
}

pub fn connector(source: &SourceSettings) -> BoxedConnector {
    match &source.transport {
        Transport::Http(config) => Box::new(HttpConnector::new(source.name.clone(), config.clone())),
    }
}

pub fn mappings(settings: &Settings) -> Mappings {
    let mut m = Mappings::new();
    for source in &settings.sources {
        m.insert(source.name.clone(), mapper(source));
    }
    m
}
