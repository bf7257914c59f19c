//! Turns one Kafka record into the bytes of one SSE event (reference 2.4): value → `data:`;
//! tombstone → `event:delete` with base64url(key); the id per the route's template.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use proto::event_id::{encode_event_id, IdTemplate};
use proto::kafka::Record;
use proto::sse::encode_event;

/// Scratch buffers reused across events so encoding allocates nothing once warm.
#[derive(Default)]
pub struct EventEncoder {
    id: Vec<u8>,
    key64: Vec<u8>,
}

impl EventEncoder {
    /// Appends the event for `record` to `out`; `progress` is the id's (partition, next offset)
    /// list with the record's own partition already at `offset + 1`.
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        template: IdTemplate,
        progress: &[(i32, i64)],
        record: &Record<'_>,
    ) {
        self.id.clear();
        let etag = record.headers.get(b"etag").flatten();
        encode_event_id(template, record.key, progress, etag, &mut self.id);
        match record.value {
            Some(value) => encode_event(out, Some(&self.id), None, Some(value)),
            None => {
                let data = record.key.map(|key| {
                    self.key64.clear();
                    let need = base64::encoded_len(key.len(), true).unwrap_or(0);
                    self.key64.resize(need, 0);
                    let n = URL_SAFE.encode_slice(key, &mut self.key64).unwrap_or(0);
                    self.key64.truncate(n);
                    self.key64.as_slice()
                });
                encode_event(out, Some(&self.id), Some(b"delete"), data);
            }
        }
    }
}
