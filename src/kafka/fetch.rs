//! Fetch requests: many partitions of one leader in one long-poll request, decoded into chunks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::chunk::Chunk;
use super::client::REQUEST_TIMEOUT;
use super::conn::BrokerConn;
use super::error::{KafkaError, OFFSET_OUT_OF_RANGE};

/// Bytes one partition may return per fetch (Kafka still returns a whole first batch if larger).
pub const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// Bytes one fetch may return in all.
pub const MAX_FETCH_BYTES: i32 = 32 << 20;

#[derive(Debug, Clone)]
pub struct FetchPosition {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug)]
pub enum Outcome {
    Records(Chunk),
    OutOfRange,
    Error(KafkaError),
}

/// Sends one Fetch (READ_COMMITTED) for `positions` and returns an outcome per position, in
/// the same order. `max_wait` zero makes it a one-shot read.
pub async fn fetch(
    conn: &mut BrokerConn,
    version: i16,
    positions: &[FetchPosition],
    max_wait: Duration,
) -> Result<Vec<Outcome>, KafkaError> {
    let req = fetch_request(positions, max_wait);
    let resp = conn.send(&req, version, max_wait + REQUEST_TIMEOUT).await?;
    if resp.error_code != 0 {
        return Err(KafkaError::Code(resp.error_code));
    }
    let outcomes = positions
        .iter()
        .map(|p| {
            let data = resp
                .responses
                .iter()
                .filter(|t| t.topic.0.as_str() == &*p.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|d| d.partition_index == p.partition);
            match data {
                None => Outcome::Error(KafkaError::Code(-1)),
                Some(d) if d.error_code == OFFSET_OUT_OF_RANGE => Outcome::OutOfRange,
                Some(d) if d.error_code != 0 => Outcome::Error(KafkaError::Code(d.error_code)),
                Some(d) => decode_partition(p, d),
            }
        })
        .collect();
    Ok(outcomes)
}

/// The Fetch for `positions`, partitions grouped by topic.
fn fetch_request(positions: &[FetchPosition], max_wait: Duration) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for p in positions {
        let part = FetchPartition::default()
            .with_partition(p.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(p.offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(PARTITION_MAX_BYTES);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == &*p.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(p.topic.to_string())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait.as_millis() as i32)
        .with_min_bytes(if max_wait.is_zero() { 0 } else { 1 })
        .with_max_bytes(MAX_FETCH_BYTES)
        .with_isolation_level(1)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// A partition's records, aborted transactions dropped, up to its last stable offset.
fn decode_partition(p: &FetchPosition, d: &PartitionData) -> Outcome {
    let aborted: Vec<(i64, i64)> = d
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let empty = Bytes::new();
    let records = d.records.as_ref().unwrap_or(&empty);
    let stable = if d.last_stable_offset >= 0 {
        d.last_stable_offset
    } else {
        d.high_watermark
    };
    match Chunk::decode(p.partition, p.offset, stable, records, &aborted) {
        Ok(mut chunk) => {
            chunk.high_watermark = d.high_watermark;
            Outcome::Records(chunk)
        }
        Err(e) => Outcome::Error(KafkaError::Io(e.to_string())),
    }
}
