//! Compacted topics (`cleanup.policy` contains `compact`): the latest record per key of a
//! partition, so a client without an id gets the current value of every key (tombstones as
//! `delete` events) and then live records, and nothing superseded before it subscribed.
//!
//! The owner keeps an index from the earliest offset on; each subscribed worker builds its own
//! from the owner's snapshot plus the chunks appended after it. Entries point into shared
//! chunks, so an index costs a key copy and a chunk reference per key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::kafka::chunk::Chunk;

/// The latest record of one key.
#[derive(Debug, Clone)]
pub struct Latest {
    pub offset: i64,
    pub chunk: Arc<Chunk>,
    /// Position of the record in `chunk.records()`.
    pub index: u32,
}

#[derive(Debug, Default)]
pub struct KeyIndex {
    latest: HashMap<Box<[u8]>, Latest>,
}

impl KeyIndex {
    /// Records every keyed record of `chunk` as the latest of its key.
    pub fn apply(&mut self, chunk: &Arc<Chunk>) {
        for (i, r) in chunk.records().iter().enumerate() {
            let Some(key) = chunk.record(r).and_then(|rec| rec.key) else {
                continue;
            };
            let latest = Latest {
                offset: r.offset,
                chunk: chunk.clone(),
                index: i as u32,
            };
            match self.latest.get_mut(key) {
                Some(slot) => *slot = latest,
                None => {
                    self.latest.insert(key.into(), latest);
                }
            }
        }
    }

    pub fn from_snapshot(entries: &[Latest]) -> Self {
        let mut index = KeyIndex::default();
        for e in entries {
            let r = &e.chunk.records()[e.index as usize];
            if let Some(key) = e.chunk.record(r).and_then(|rec| rec.key) {
                index.latest.insert(key.into(), e.clone());
            }
        }
        index
    }

    /// Every key's latest record, in offset order.
    pub fn snapshot(&self) -> Vec<Latest> {
        let mut v: Vec<Latest> = self.latest.values().cloned().collect();
        v.sort_by_key(|l| l.offset);
        v
    }
}

/// A stream's replay of the latest record per key, before it catches up from `heads`.
///
/// "Before it subscribed" means what the broker held when the stream arrived, so the replay is
/// taken only once the worker's view has fetched up to the partitions' end offsets of that
/// moment (`ready` false until then, `heads` holding those end offsets).
pub struct Replay {
    /// (partition index in the view, entry), partitions one after another, offsets ascending.
    pub entries: Vec<(usize, Latest)>,
    pub cursor: usize,
    /// Before `ready`: the offsets the view must reach. After: the heads the replay was taken
    /// at, where the stream continues.
    pub heads: Vec<i64>,
    pub ready: bool,
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::testing::{batch, KeyValue};

    #[test]
    fn keeps_the_latest_per_key_including_tombstones() {
        let recs: Vec<KeyValue<'_>> = vec![
            (Some(b"k1"), Some(b"v1")),
            (Some(b"k2"), Some(b"v1")),
            (Some(b"k1"), Some(b"v2")),
            (Some(b"k3"), Some(b"v1")),
            (Some(b"k3"), None),
            (None, Some(b"keyless")),
        ];
        let chunk = Arc::new(
            Chunk::decode(0, 0, 6, &Bytes::from(batch(0, &recs)), &[]).expect("valid batch"),
        );
        let mut index = KeyIndex::default();
        index.apply(&chunk);
        let offsets: Vec<i64> = index.snapshot().iter().map(|l| l.offset).collect();
        assert_eq!(offsets, [1, 2, 4]);
        let rebuilt = KeyIndex::from_snapshot(&index.snapshot());
        let again: Vec<i64> = rebuilt.snapshot().iter().map(|l| l.offset).collect();
        assert_eq!(again, offsets);
    }
}
