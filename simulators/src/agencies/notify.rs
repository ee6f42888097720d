//! The grid workers' terminals, listening: one client subscribed at QoS 1
//! to every worker's `grid/{county}/{workerId}/notify` topic, with a
//! persistent session so that what the hub publishes while the link is
//! down comes when it is back. MQTT carries no message id a receiver sees,
//! so a change is told apart by its event, status and time; a copy of one
//! heard before is a resend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::feedback::{HeardChange, HeardTally, Ledger, at_ms};
use super::terminal::parse_mqtt_url;

/// A listener on the workers' notify topics.
pub struct NotifyListener {
    ledger: Arc<Mutex<Ledger>>,
    client: AsyncClient,
    task: JoinHandle<()>,
}

impl NotifyListener {
    /// Connects as `client_id`, subscribes to `topics` and returns once the
    /// broker has acknowledged the subscription.
    pub async fn start(mqtt_url: &str, client_id: &str, topics: Vec<String>) -> Result<NotifyListener> {
        anyhow::ensure!(!topics.is_empty(), "no notify topic to listen on");
        let (host, port) = parse_mqtt_url(mqtt_url)?;
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_clean_session(false).set_keep_alive(Duration::from_secs(10));
        let (client, mut events) = AsyncClient::new(options, 256);
        let filters: Vec<SubscribeFilter> =
            topics.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce)).collect();
        client.subscribe_many(filters.clone()).await.context("subscribe to the notify topics")?;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Err(_) => bail!("the broker did not acknowledge the notify subscription in 10 s"),
                Ok(Err(e)) => bail!("the notify listener cannot connect to {mqtt_url}: {e}"),
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    ledger.lock().unwrap_or_else(|e| e.into_inner()).hear(read(&p.payload))
                }
                Ok(Ok(_)) => {}
            }
        }
        let task = {
            let (ledger, client) = (ledger.clone(), client.clone());
            tokio::spawn(async move {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            ledger.lock().unwrap_or_else(|e| e.into_inner()).hear(read(&p.payload))
                        }
                        // A broker that lost the session needs the subscriptions again.
                        Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                            let _ = client.try_subscribe_many(filters.clone());
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            })
        };
        Ok(NotifyListener { ledger, client, task })
    }

    /// What was heard so far.
    pub fn tally(&self) -> HeardTally {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).snapshot().0
    }

    /// Disconnects; what was heard.
    pub async fn stop(self) -> (HeardTally, Vec<HeardChange>) {
        let _ = self.client.try_disconnect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.task.abort();
        let _ = self.task.await;
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).snapshot()
    }
}

/// A notification: `{eventId, ticketId, status, department, dueAt, note, at}`.
fn read(payload: &[u8]) -> Option<HeardChange> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let record_id = v["eventId"].as_str()?.to_string();
    let status = v["status"].as_str()?.to_string();
    let at_ms = at_ms(&v);
    Some(HeardChange { key: format!("{record_id}|{status}|{at_ms}"), record_id, status, at_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_one_change_per_event_status_and_time() {
        let a = br#"{"eventId":"W1001-20240715-0001","ticketId":"t","status":"dispatched","dueAt":null,"note":null,"at":"2026-12-04T09:00:00+08:00"}"#;
        let b = br#"{"eventId":"W1001-20240715-0001","ticketId":"t","status":"resolved","dueAt":null,"note":null,"at":"2026-12-04T10:00:00+08:00"}"#;
        let (ca, cb) = (read(a).unwrap(), read(b).unwrap());
        assert_ne!(ca.key, cb.key);
        assert_eq!(read(a).unwrap().key, ca.key, "a copy is the same change");
        assert!(read(b"{}").is_none());
    }

    #[tokio::test]
    async fn agencies_notify_listener_against_mosquitto() {
        let root = format!("test-{}", uuid::Uuid::new_v4().simple());
        let topics = vec![format!("{root}/220402/W1000/notify"), format!("{root}/220403/W1001/notify")];
        let listener =
            NotifyListener::start("mqtt://127.0.0.1:1883", &format!("{root}-l"), topics.clone()).await.unwrap();
        let (publisher, mut events) = AsyncClient::new(MqttOptions::new(format!("{root}-p"), "127.0.0.1", 1883), 16);
        tokio::spawn(async move { while events.poll().await.is_ok() {} });
        let body =
            br#"{"eventId":"W1000-20240715-0001","ticketId":"t","status":"urged","at":"2026-12-04T09:00:00+08:00"}"#;
        for topic in [&topics[0], &topics[0], &topics[1]] {
            publisher.publish(topic.as_str(), QoS::AtLeastOnce, false, body.to_vec()).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while listener.tally().heard < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (t, _) = listener.stop().await;
        assert_eq!((t.heard, t.distinct, t.resends()), (3, 1, 2), "{t:?}");
        assert_eq!(t.by_status.get("urged"), Some(&1));
    }
}
