//! What can go wrong talking to Kafka, and which failures are worth a metadata refresh.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaError {
    /// Connection refused, reset, timed out, or a response we could not decode.
    Io(String),
    /// No bootstrap server or broker answered.
    NoBroker,
    /// The topic does not exist (no auto-creation is ever requested).
    UnknownTopic,
    /// Metadata named a broker id we have no address for.
    UnknownBroker(i32),
    /// The cluster does not offer a version of this API key that we speak.
    Unsupported(i16),
    /// A Kafka error code.
    Code(i16),
    /// SASL refused: the handshake (mechanism not offered) or the credentials. Never holds
    /// the password or token.
    Auth {
        mechanism: &'static str,
        username: String,
        message: String,
    },
    /// The TLS handshake with the broker failed (unknown CA, wrong name, no client
    /// certificate...).
    Tls { binding: String, message: String },
}

pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

impl KafkaError {
    /// The broker refused who we are (SASL) or we refused the broker (TLS): retrying at once
    /// cannot help.
    pub fn is_security(&self) -> bool {
        matches!(self, KafkaError::Auth { .. } | KafkaError::Tls { .. })
    }

    /// Leadership moved or the broker is gone: refresh metadata and retry.
    pub fn needs_metadata(&self) -> bool {
        match self {
            KafkaError::Io(_) | KafkaError::NoBroker | KafkaError::UnknownBroker(_) => true,
            // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REPLICA_NOT_AVAILABLE,
            // UNKNOWN_TOPIC_OR_PARTITION, FENCED/UNKNOWN_LEADER_EPOCH, NOT_COORDINATOR-style moves.
            KafkaError::Code(c) => matches!(c, 3 | 5 | 6 | 9 | 74 | 75 | 100),
            _ => false,
        }
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaError::Io(e) => write!(f, "{e}"),
            KafkaError::NoBroker => write!(f, "no broker reachable"),
            KafkaError::UnknownTopic => write!(f, "unknown topic"),
            KafkaError::UnknownBroker(n) => write!(f, "no address for broker {n}"),
            KafkaError::Unsupported(k) => write!(f, "broker does not support api key {k}"),
            KafkaError::Code(c) => write!(f, "kafka error code {c}"),
            KafkaError::Auth {
                mechanism,
                username,
                message,
            } => {
                write!(f, "SASL {mechanism} authentication failed")?;
                if !username.is_empty() {
                    write!(f, " for identity {username:?}")?;
                }
                write!(f, ": {message}")
            }
            KafkaError::Tls { binding, message } => {
                write!(f, "TLS (bindings.{binding}) handshake failed: {message}")
            }
        }
    }
}
