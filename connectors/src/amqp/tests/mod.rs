//! Tests against a real RabbitMQ at 127.0.0.1:5672 (guest/guest), as `.ci/services` starts it.

mod consume;
mod publish;
mod support;
mod throughput;
