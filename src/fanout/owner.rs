//! The owner side: each topic-partition is fetched by exactly one worker (`PartKey::owner`) for
//! the whole process, however many streams on however many workers read it. The owner keeps the
//! partition's recent chunks (the cache), answers subscriptions with a snapshot of it, appends
//! every new chunk to each subscribed worker, and serves one-shot backfills for streams older
//! than the cache.
//!
//! One long-poll fetch loop runs per (cluster, leader broker) and carries every owned partition
//! that broker leads. Connection loss and leadership moves are retried with capped backoff and a
//! metadata refresh; the fetch position only advances when a chunk is published, so streams
//! that stay connected see neither a gap nor a duplicate.

use std::collections::VecDeque;
use std::sync::Arc;

use super::cache::evict;
use super::compaction::KeyIndex;
use super::hub::{Command, Hub};
use super::message::{Message, PartKey, StartHint, StreamKey};
use crate::kafka::chunk::Chunk;
use crate::kafka::fetch::FetchPosition;
use crate::metrics::PartitionGauge;

#[derive(Debug, PartialEq, Eq)]
enum OwnerState {
    Starting,
    Active,
}

pub(super) struct OwnedPartition {
    state: OwnerState,
    hint: StartHint,
    subscribers: Vec<usize>,
    pending: Vec<usize>,
    cache: VecDeque<Arc<Chunk>>,
    cache_bytes: usize,
    fetch_pos: i64,
    earliest: i64,
    latest: i64,
    leader: i32,
    /// A `cache_server.bootstrap` topic: fetched from startup, kept without subscribers.
    pinned: bool,
    gauge: Option<Arc<PartitionGauge>>,
    /// Latest record per key, for compacted topics.
    index: Option<KeyIndex>,
}

impl OwnedPartition {
    fn new(hint: StartHint, pending: Vec<usize>, pinned: bool) -> Self {
        Self {
            state: OwnerState::Starting,
            hint,
            subscribers: Vec::new(),
            pending,
            cache: VecDeque::new(),
            cache_bytes: 0,
            fetch_pos: 0,
            earliest: 0,
            latest: 0,
            leader: -1,
            pinned,
            gauge: None,
            index: None,
        }
    }
}

impl Hub {
    pub(super) fn on_subscribe(&mut self, key: PartKey, worker: usize, hint: StartHint) {
        match self.owned.get_mut(&key) {
            Some(op) if op.state == OwnerState::Active => {
                if !op.subscribers.contains(&worker) {
                    op.subscribers.push(worker);
                }
                let msg = Message::Subscribed {
                    key: key.clone(),
                    snapshot: op.cache.iter().cloned().collect(),
                    head: op.fetch_pos,
                    earliest: op.earliest,
                    latest: op.latest,
                    compacted: op.index.as_ref().map(KeyIndex::snapshot),
                };
                self.send(worker, msg);
            }
            Some(op) => {
                if !op.pending.contains(&worker) {
                    op.pending.push(worker);
                }
            }
            None => {
                self.owned
                    .insert(key.clone(), OwnedPartition::new(hint, vec![worker], false));
                self.commands.push(Command::StartPartition(key));
            }
        }
    }

    pub(super) fn on_unsubscribe(&mut self, key: PartKey, worker: usize) {
        if let Some(op) = self.owned.get_mut(&key) {
            op.subscribers.retain(|&w| w != worker);
            op.pending.retain(|&w| w != worker);
            if op.subscribers.is_empty()
                && op.pending.is_empty()
                && op.state == OwnerState::Active
                && !op.pinned
            {
                // The fetch loop drops it from its next request.
                self.forget(&key);
            }
        }
    }

    pub(super) fn activate(&mut self, key: &PartKey, started: Started) {
        let Started {
            leader,
            earliest,
            latest,
            compacted,
        } = started;
        let Some(op) = self.owned.get_mut(key) else {
            return;
        };
        op.state = OwnerState::Active;
        op.leader = leader;
        op.earliest = earliest;
        op.latest = latest;
        // A compacted partition is read from the start: its latest value per key is the state
        // new clients receive.
        op.fetch_pos = match op.hint {
            _ if compacted => earliest,
            StartHint::Earliest => earliest,
            StartHint::Latest => latest,
        };
        if compacted {
            op.index = Some(KeyIndex::default());
        }
        let pending = std::mem::take(&mut op.pending);
        let head = op.fetch_pos;
        let mut replies = Vec::with_capacity(pending.len());
        for w in pending {
            if !op.subscribers.contains(&w) {
                op.subscribers.push(w);
            }
            let msg = Message::Subscribed {
                key: key.clone(),
                snapshot: Vec::new(),
                head,
                earliest,
                latest,
                compacted: compacted.then(Vec::new),
            };
            replies.push((w, msg));
        }
        self.outbox.extend(replies);
        let gauge = self.registry.partition(key.topic.clone(), key.partition);
        gauge.position.set(head);
        gauge.high_watermark.set(latest);
        if let Some(op) = self.owned.get_mut(key) {
            op.gauge = Some(gauge);
            if op.subscribers.is_empty() && !op.pinned {
                // Everyone left while it was starting.
                self.forget(key);
            }
        }
    }

    /// Drops an owned partition and its cache accounting.
    fn forget(&mut self, key: &PartKey) {
        if let Some(op) = self.owned.remove(key) {
            self.metrics.cache_bytes.add(-(op.cache_bytes as i64));
        }
    }

    /// Starts fetching a bootstrap partition owned by this worker, before any client asks.
    pub(super) fn pin(&mut self, key: PartKey, hint: StartHint) {
        if let Some(op) = self.owned.get_mut(&key) {
            op.pinned = true;
            return;
        }
        self.owned
            .insert(key.clone(), OwnedPartition::new(hint, Vec::new(), true));
        self.commands.push(Command::StartPartition(key));
    }

    pub(super) fn fail_start(&mut self, key: &PartKey, reason: String) {
        if let Some(op) = self.owned.remove(key) {
            self.metrics.cache_bytes.add(-(op.cache_bytes as i64));
            for w in op.pending.into_iter().chain(op.subscribers) {
                self.send(
                    w,
                    Message::SubscribeFailed {
                        key: key.clone(),
                        reason: reason.clone(),
                    },
                );
            }
        }
    }

    /// Appends a fetched chunk to the cache and to every subscribed worker.
    pub(super) fn publish(&mut self, key: &PartKey, chunk: Chunk) {
        let bounds = self.cache_bounds();
        let Some(op) = self.owned.get_mut(key) else {
            return;
        };
        if chunk.first_offset != op.fetch_pos {
            return; // a stale response for a position we already moved past
        }
        op.fetch_pos = chunk.next_offset;
        op.latest = op.latest.max(chunk.stable_offset);
        let chunk = Arc::new(chunk);
        if let Some(index) = &mut op.index {
            index.apply(&chunk);
        }
        let before = op.cache_bytes;
        op.cache_bytes += chunk.size;
        op.cache.push_back(chunk.clone());
        evict(&mut op.cache, &mut op.cache_bytes, bounds);
        if let Some(g) = &op.gauge {
            g.position.set(op.fetch_pos);
            g.high_watermark.set(op.latest);
        }
        let delta = op.cache_bytes as i64 - before as i64;
        self.metrics.cache_bytes.add(delta);
        self.metrics.fetch_bytes.add(chunk.size as u64);
        let subscribers = op.subscribers.clone();
        for w in subscribers {
            self.send(
                w,
                Message::Append {
                    key: key.clone(),
                    chunk: chunk.clone(),
                },
            );
        }
    }

    /// Applies the cache's age bound to every owned partition (quiet ones included).
    pub(super) fn evict_owned(&mut self) {
        let bounds = self.cache_bounds();
        let mut released = 0;
        for op in self.owned.values_mut() {
            released += evict(&mut op.cache, &mut op.cache_bytes, bounds);
        }
        self.metrics.cache_bytes.add(-(released as i64));
    }

    /// The positions a fetch loop for `leader` should ask for now.
    pub(super) fn fetch_positions(
        &self,
        cluster: usize,
        leader: i32,
    ) -> Vec<(PartKey, FetchPosition)> {
        self.owned
            .iter()
            .filter(|(k, op)| {
                k.cluster == cluster && op.state == OwnerState::Active && op.leader == leader
            })
            .map(|(k, op)| {
                (
                    k.clone(),
                    FetchPosition {
                        topic: k.topic.clone(),
                        partition: k.partition,
                        offset: op.fetch_pos,
                    },
                )
            })
            .collect()
    }

    /// The known leader of an owned partition.
    pub(super) fn leader_of(&self, key: &PartKey) -> Option<i32> {
        self.owned.get(key).map(|op| op.leader).filter(|&l| l >= 0)
    }

    pub(super) fn set_leader(&mut self, key: &PartKey, leader: i32) -> bool {
        match self.owned.get_mut(key) {
            Some(op) if op.leader != leader => {
                op.leader = leader;
                true
            }
            _ => false,
        }
    }

    pub(super) fn on_backfill(
        &mut self,
        key: PartKey,
        from: i64,
        worker: usize,
        stream: StreamKey,
    ) {
        let leader = self.owned.get(&key).map_or(-1, |op| op.leader);
        self.commands.push(Command::Backfill {
            key,
            from,
            worker,
            stream,
            leader,
        });
    }
}

/// What a partition's owner learns before fetching it.
pub(super) struct Started {
    pub leader: i32,
    pub earliest: i64,
    pub latest: i64,
    pub compacted: bool,
}

pub use super::driver::bootstrap_topic;
