//! `?since=`: where each partition starts for a time. One ListOffsets by timestamp per
//! partition (Kafka answers the first offset whose record timestamp is at or after it, or -1
//! when there is none yet); the answer becomes a start like a decoded event id, with -1 meaning
//! the live head. Only requests that ask for it pay the round trips, within the metadata
//! timeout.

use std::time::Instant;

use super::hub::{OpenError, OpenRequest, SharedHub};
use crate::kafka::error::KafkaError;

/// (partition, offset) for every partition of the request's topic at `ms` since the epoch.
pub async fn offsets_for_time(
    hub: &SharedHub,
    req: &OpenRequest,
    ms: i64,
) -> Result<Vec<(i32, i64)>, OpenError> {
    let (client, timeout) = {
        let h = hub.borrow();
        let client = h
            .clusters
            .get(req.cluster)
            .cloned()
            .ok_or(OpenError::Unavailable)?;
        (client, h.settings.metadata_timeout)
    };
    let deadline = Instant::now() + timeout;
    let work = async {
        let meta = client.metadata(&req.topic).await?;
        let mut out = Vec::with_capacity(meta.partitions.len());
        for p in &meta.partitions {
            let offset = client
                .list_offset(p.leader, &req.topic, p.partition, ms.max(0))
                .await?;
            out.push((p.partition, offset.max(-1)));
        }
        Ok::<_, KafkaError>(out)
    };
    match monoio::time::timeout_at(deadline.into(), work).await {
        Ok(Ok(positions)) => Ok(positions),
        Ok(Err(KafkaError::UnknownTopic)) => Err(OpenError::NotFound),
        Ok(Err(e)) => {
            crate::debug!("since= offsets for {}: {e}", req.topic);
            Err(OpenError::Unavailable)
        }
        Err(_) => Err(OpenError::Unavailable),
    }
}
