//! What workers say to each other. Everything here is `Send`; record data travels as
//! `Arc<Chunk>` (immutable), never copied.

use std::sync::Arc;

use super::compaction::Latest;
use crate::kafka::chunk::Chunk;

/// The workers' inboxes (src/sync/mesh.rs), carrying these messages.
pub type Mesh = crate::sync::Mesh<Message>;

/// A topic-partition of one configured cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub cluster: usize,
    pub topic: Arc<str>,
    pub partition: i32,
}

impl PartKey {
    /// The worker that fetches this partition for the whole process (FNV-1a, stable).
    pub fn owner(&self, workers: usize) -> usize {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in self
            .topic
            .as_bytes()
            .iter()
            .chain(&self.partition.to_le_bytes())
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        (h % workers as u64) as usize
    }
}

/// Where the shared fetch should begin when this subscription is the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartHint {
    Earliest,
    Latest,
}

/// Identifies a stream across an asynchronous round trip (slab slot + generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub slot: usize,
    pub generation: u64,
}

#[derive(Debug)]
pub enum Message {
    /// A worker wants every chunk of this partition from now on.
    Subscribe {
        key: PartKey,
        worker: usize,
        hint: StartHint,
    },
    /// The owner's answer: the cache as it is, and the positions it starts from. Every later
    /// `Append` for the key continues exactly at `head`.
    Subscribed {
        key: PartKey,
        snapshot: Vec<Arc<Chunk>>,
        head: i64,
        earliest: i64,
        latest: i64,
        /// For a compacted topic: the latest record per key, in offset order.
        compacted: Option<Vec<Latest>>,
    },
    /// The owner could not start the partition (e.g. it vanished).
    SubscribeFailed { key: PartKey, reason: String },
    /// New records (or a position jump) at the head of the partition.
    Append { key: PartKey, chunk: Arc<Chunk> },
    /// The worker has no more streams on this partition.
    Unsubscribe { key: PartKey, worker: usize },
    /// A stream needs records older than the cache: fetch once from `from`.
    Backfill {
        key: PartKey,
        from: i64,
        worker: usize,
        stream: StreamKey,
    },
    /// Answer to `Backfill`. `chunk.next_offset` may jump past `from` (retention moved on).
    BackfillData {
        key: PartKey,
        stream: StreamKey,
        chunk: Arc<Chunk>,
    },
    /// Stop accepting, end every stream.
    Shutdown,
}
