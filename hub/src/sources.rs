//! The one place where configured sources become connectors and mappers.

use std::sync::Arc;

use connectors::BoxedConnector;
use connectors::amqp::AmqpConnector;
use connectors::court::{CourtFeedConnector, FileDropConnector};
use connectors::http::HttpConnector;
use connectors::mqtt::MqttConnector;

use crate::config::{MappingRef, Settings, SourceSettings, Transport};
use crate::mapping::{CanonicalMapper, Mapper, Mappings};

pub fn mapper(source: &SourceSettings) -> Arc<dyn Mapper> {
    match &source.mapping {
        MappingRef::Canonical => Arc::new(CanonicalMapper),
        MappingRef::File { mapper, .. } => mapper.clone(),
    }
}

pub fn connector(source: &SourceSettings) -> Result<BoxedConnector, String> {
    Ok(match &source.transport {
        Transport::Http(config) => Box::new(HttpConnector::new(source.name.clone(), config.clone())),
        Transport::Amqp(config) => Box::new(AmqpConnector::new(config.clone())),
        Transport::Mqtt(config) => {
            Box::new(MqttConnector::new(config.clone()).map_err(|e| format!("source `{}`: {e}", source.name))?)
        }
        Transport::CourtFeed(config) => Box::new(CourtFeedConnector::new(config.clone()).map_err(|e| e.to_string())?),
        Transport::FileDrop(config) => Box::new(FileDropConnector::new(config.clone())),
    })
}

pub fn mappings(settings: &Settings) -> Mappings {
    let mut m = Mappings::new();
    for source in &settings.sources {
        m.insert(source.name.clone(), mapper(source));
    }
    m
}
