//! The one place where configured sources become connectors and mappers.

use std::sync::Arc;
use std::time::Duration;

use connectors::BoxedConnector;
use connectors::amqp::AmqpConnector;
use connectors::court::{CourtFeedConnector, FileDropConnector};
use connectors::http::HttpConnector;
use connectors::mqtt::{MqttConnector, Notifier};
use connectors::outbound::{AmqpSender, HttpSender, MqttSender, Sender};

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

/// The transport that carries status changes back to `source`'s agency,
/// when its mapping has a `[feedback]` section: the same broker or server
/// its records come from (the hotline's RabbitMQ, the terminals' MQTT
/// broker, the court feed's base URL).
pub fn feedback_sender(source: &SourceSettings, hub_id: &str) -> Option<Result<Arc<dyn Sender>, String>> {
    let spec = crate::feedback::reach(source)?;
    let name = &source.name;
    Some(match &source.transport {
        Transport::Amqp(c) => Ok(Arc::new(AmqpSender::new(
            &c.url,
            spec.exchange.as_deref().unwrap_or_default(),
            &format!("{name}-feedback"),
            Duration::from_secs(30),
        ))),
        // Its own client id: the broker allows one connection per id, and
        // every hub sharing the broker needs its own.
        Transport::Mqtt(c) => Notifier::start(c, format!("{name}-notify-{hub_id}"))
            .map(|n| Arc::new(MqttSender(n)) as Arc<dyn Sender>)
            .map_err(|e| format!("source `{name}`: the notification publisher: {e}")),
        Transport::CourtFeed(c) => HttpSender::new(&c.base_url, Duration::from_secs(30))
            .map(|h| Arc::new(h) as Arc<dyn Sender>)
            .map_err(|e| format!("source `{name}`: {e}")),
        Transport::Http(_) | Transport::FileDrop(_) => return None,
    })
}

pub fn mappings(settings: &Settings) -> Mappings {
    let mut m = Mappings::new();
    for source in &settings.sources {
        m.insert(source.name.clone(), mapper(source));
    }
    m
}
