//! Connecting, and declaring what the hub consumes from: the agency's
//! exchange, the hub's queue with its bindings, and the dead-letter pair.
//!
//! Every declaration is idempotent, so it is simply repeated after each
//! reconnect: a broker that lost its (non-durable) state gets it back.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties, ErrorKind, ExchangeKind};

use super::AmqpConfig;

/// A TCP connect to a host that drops packets would otherwise hang for minutes.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Setting up a connection failed; the caller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot connect: {0}")]
    Connect(lapin::Error),
    #[error("cannot connect: no answer within {0:?}")]
    ConnectTimeout(Duration),
    #[error("cannot {what}: {source}")]
    Declare { what: String, source: lapin::Error },
}

impl SetupError {
    /// The broker holds something under that name with other properties: a
    /// person has to fix it (retrying still resumes once they have).
    pub fn is_mismatch(&self) -> bool {
        matches!(self, SetupError::Declare { source, .. } if soft_error(source) == Some(AMQPSoftError::PRECONDITIONFAILED))
    }
}

fn soft_error(e: &lapin::Error) -> Option<AMQPSoftError> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => Some(soft.clone()),
            AMQPErrorKind::Hard(_) => None,
        },
        _ => None,
    }
}

/// Opens a connection named `connection_name` (the client property an
/// operator sees in `rabbitmqctl list_connections client_properties`).
pub(crate) async fn connect(uri: &AMQPUri, connection_name: &str) -> Result<Connection, SetupError> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri.clone(), properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(SetupError::Connect(e)),
        Err(_) => Err(SetupError::ConnectTimeout(CONNECT_TIMEOUT)),
    }
}

/// Makes sure a durable topic exchange exists without fighting its owner
/// over arguments: a passive declare first (which accepts the exchange as
/// the agency made it), a durable declare only if it is missing. A failed
/// passive declare closes its channel, hence one channel per attempt.
pub(crate) async fn ensure_exchange(
    connection: &Connection,
    exchange: &str,
    kind: ExchangeKind,
) -> Result<(), SetupError> {
    let declare = |source| SetupError::Declare { what: format!("declare exchange `{exchange}`"), source };
    let channel = connection.create_channel().await.map_err(declare)?;
    let passive = ExchangeDeclareOptions { passive: true, ..ExchangeDeclareOptions::default() };
    match channel.exchange_declare(exchange.into(), kind.clone(), passive, FieldTable::default()).await {
        Ok(()) => {
            let _ = channel.close(200, "OK".into()).await;
            return Ok(());
        }
        Err(e) if soft_error(&e) == Some(AMQPSoftError::NOTFOUND) => {}
        Err(e) => return Err(declare(e)),
    }
    let channel = connection.create_channel().await.map_err(declare)?;
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel.exchange_declare(exchange.into(), kind, durable, FieldTable::default()).await.map_err(declare)?;
    let _ = channel.close(200, "OK".into()).await;
    Ok(())
}

/// Declares the source exchange, the dead-letter pair and the hub's queue
/// with its bindings.
pub(crate) async fn declare(connection: &Connection, config: &AmqpConfig) -> Result<(), SetupError> {
    ensure_exchange(connection, &config.exchange, ExchangeKind::Topic).await?;

    let channel = connection
        .create_channel()
        .await
        .map_err(|source| SetupError::Declare { what: "open a channel".into(), source })?;
    let durable = QueueDeclareOptions::durable();
    let mut queue_arguments = FieldTable::default();
    if let Some(dlx) = &config.dead_letter_exchange {
        ensure_exchange(connection, dlx, ExchangeKind::Fanout).await?;
        let dead = config.dead_letter_queue();
        let what = || format!("declare dead-letter queue `{dead}`");
        channel
            .queue_declare(dead.as_str().into(), durable, FieldTable::default())
            .await
            .map_err(|source| SetupError::Declare { what: what(), source })?;
        channel
            .queue_bind(
                dead.as_str().into(),
                dlx.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| SetupError::Declare { what: what(), source })?;
        queue_arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.as_str().into()));
    }
    channel
        .queue_declare(config.queue.as_str().into(), durable, queue_arguments)
        .await
        .map_err(|source| SetupError::Declare { what: format!("declare queue `{}`", config.queue), source })?;
    for key in &config.binding_keys {
        channel
            .queue_bind(
                config.queue.as_str().into(),
                config.exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| SetupError::Declare {
                what: format!("bind `{}` to `{}` with `{key}`", config.queue, config.exchange),
                source,
            })?;
    }
    let _ = channel.close(200, "OK".into()).await;
    Ok(())
}
