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
use std::time::Duration;

use super::cache::evict;
use super::compaction::KeyIndex;
use super::hub::{flush, Hub, SharedHub};
use super::message::{Message, PartKey, StartHint, StreamKey};
use crate::kafka::chunk::Chunk;
use crate::kafka::client::{EARLIEST, LATEST};
use crate::kafka::error::KafkaError;
use crate::kafka::fetch::{fetch, FetchPosition, Outcome};
use crate::metrics::PartitionGauge;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Attempts to start a partition (metadata + offsets) before its subscribers are told it failed.
const START_ATTEMPTS: u32 = 20;

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

fn backoff_next(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

impl Hub {
    pub(super) fn on_subscribe(
        &mut self,
        key: PartKey,
        worker: usize,
        hint: StartHint,
        hub: &SharedHub,
    ) {
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
                monoio::spawn(start_partition(hub.clone(), key));
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

    fn activate(&mut self, key: &PartKey, started: Started) {
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
    fn pin(&mut self, key: PartKey, hint: StartHint, hub: &SharedHub) {
        if let Some(op) = self.owned.get_mut(&key) {
            op.pinned = true;
            return;
        }
        self.owned
            .insert(key.clone(), OwnedPartition::new(hint, Vec::new(), true));
        monoio::spawn(start_partition(hub.clone(), key));
    }

    fn fail_start(&mut self, key: &PartKey, reason: String) {
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
    fn publish(&mut self, key: &PartKey, chunk: Chunk) {
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
    fn fetch_positions(&self, cluster: usize, leader: i32) -> Vec<(PartKey, FetchPosition)> {
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

    fn set_leader(&mut self, key: &PartKey, leader: i32) -> bool {
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
        hub: &SharedHub,
    ) {
        let leader = self.owned.get(&key).map_or(-1, |op| op.leader);
        monoio::spawn(backfill(hub.clone(), key, from, worker, stream, leader));
    }
}

fn ensure_fetch_loop(hub: &SharedHub, cluster: usize, leader: i32) {
    if leader < 0 {
        return;
    }
    let mut h = hub.borrow_mut();
    if h.fetch_loops.insert((cluster, leader), ()).is_none() {
        drop(h);
        monoio::spawn(broker_fetch_loop(hub.clone(), cluster, leader));
    }
}

/// `cache_server.bootstrap`: this worker starts fetching the partitions of `topic` it owns, so
/// the first client finds a warm cache. Retries until the topic's metadata is known.
pub async fn bootstrap_topic(hub: SharedHub, cluster: usize, topic: String, hint: StartHint) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let meta = loop {
        match client.metadata(&topic).await {
            Ok(meta) => break meta,
            Err(e) => {
                if backoff == BACKOFF_MAX {
                    crate::warn!("bootstrap topic {topic}: {e}; retrying");
                }
            }
        }
        if hub.borrow().shutting_down {
            return;
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    };
    let mut h = hub.borrow_mut();
    let topic = h.intern(&topic);
    let (me, workers) = (h.worker, h.workers());
    for p in &meta.partitions {
        let key = PartKey {
            cluster,
            topic: topic.clone(),
            partition: p.partition,
        };
        if key.owner(workers) == me {
            h.pin(key, hint, &hub);
        }
    }
    h.pin_view(cluster, topic, hint, &meta);
    drop(h);
    flush(&hub);
}

/// Finds the leader and the earliest/latest offsets, then activates the partition.
async fn start_partition(hub: SharedHub, key: PartKey) {
    let client = hub.borrow().clusters[key.cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let mut last = String::new();
    for _ in 0..START_ATTEMPTS {
        match start_once(&client, &key).await {
            Ok(started) => {
                let leader = started.leader;
                hub.borrow_mut().activate(&key, started);
                ensure_fetch_loop(&hub, key.cluster, leader);
                flush(&hub);
                return;
            }
            Err(e) => {
                crate::debug!("start {}/{}: {e}", key.topic, key.partition);
                last = e.to_string();
            }
        }
        if hub.borrow().shutting_down {
            return;
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    }
    hub.borrow_mut().fail_start(&key, last);
    flush(&hub);
}

/// What a partition's owner learns before fetching it.
struct Started {
    leader: i32,
    earliest: i64,
    latest: i64,
    compacted: bool,
}

async fn start_once(
    client: &crate::kafka::client::ClusterClient,
    key: &PartKey,
) -> Result<Started, KafkaError> {
    let meta = client.metadata(&key.topic).await?;
    let leader = meta
        .partitions
        .iter()
        .find(|p| p.partition == key.partition)
        .map(|p| p.leader)
        .ok_or(KafkaError::UnknownTopic)?;
    if leader < 0 {
        return Err(KafkaError::Code(5));
    }
    let earliest = client
        .list_offset(leader, &key.topic, key.partition, EARLIEST)
        .await?;
    let latest = client
        .list_offset(leader, &key.topic, key.partition, LATEST)
        .await?;
    let compacted = client.is_compacted(&key.topic).await.unwrap_or_else(|e| {
        crate::warn!(
            "topic {}: cannot read cleanup.policy ({e}); not compacted",
            key.topic
        );
        false
    });
    crate::debug!(
        "topic {} partition {}: leader {leader}, offsets {earliest}..{latest}, compacted {compacted}",
        key.topic,
        key.partition
    );
    Ok(Started {
        leader,
        earliest,
        latest,
        compacted,
    })
}

/// Re-reads leaders for the topics of `keys`; partitions that moved get a loop on their new
/// leader. Errors are left for the next attempt.
async fn refresh_leaders(hub: &SharedHub, cluster: usize, keys: &[PartKey]) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut topics: Vec<Arc<str>> = keys.iter().map(|k| k.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    for topic in topics {
        let Ok(meta) = client.metadata(&topic).await else {
            continue;
        };
        for k in keys.iter().filter(|k| k.topic == topic) {
            let Some(p) = meta.partitions.iter().find(|p| p.partition == k.partition) else {
                continue;
            };
            if hub.borrow_mut().set_leader(k, p.leader) {
                crate::info!(
                    "topic {} partition {}: leader is now broker {}",
                    k.topic,
                    k.partition,
                    p.leader
                );
                ensure_fetch_loop(hub, cluster, p.leader);
            }
        }
    }
}

/// The shared long-poll fetch for every owned partition led by `leader`.
async fn broker_fetch_loop(hub: SharedHub, cluster: usize, leader: i32) {
    let client = hub.borrow().clusters[cluster].clone();
    let mut conn = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let wanted = {
            let h = hub.borrow();
            if h.shutting_down {
                Vec::new()
            } else {
                h.fetch_positions(cluster, leader)
            }
        };
        if wanted.is_empty() {
            hub.borrow_mut().fetch_loops.remove(&(cluster, leader));
            return;
        }
        let keys: Vec<PartKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let positions: Vec<FetchPosition> = wanted.into_iter().map(|(_, p)| p).collect();
        if conn.is_none() {
            match client.connect_node(leader).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if e.is_security() {
                        // Logged once by the client.
                        crate::debug!("kafka broker {leader}: {e}; retrying in {backoff:?}");
                    } else {
                        crate::warn!("kafka broker {leader}: {e}; retrying in {backoff:?}");
                    }
                    monoio::time::sleep(backoff).await;
                    backoff = backoff_next(backoff);
                    refresh_leaders(&hub, cluster, &keys).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if c.reauth_due() {
            // KIP-368: the broker's session is about to expire. Some brokers (tansu 0.6) refuse
            // a second handshake on one connection: a new connection then authenticates anew.
            if let Err(e) = c
                .reauthenticate(crate::kafka::client::REQUEST_TIMEOUT)
                .await
            {
                crate::debug!("kafka broker {leader}: re-authentication: {e}; reconnecting");
                conn = None;
                continue;
            }
            crate::debug!("kafka broker {leader}: re-authenticated");
        }
        let version = client.versions().map_or(4, |v| v.fetch);
        let metrics = hub.borrow().metrics.clone();
        metrics.fetch_requests.inc();
        let max_wait = hub.borrow().settings.fetch_max_wait;
        match fetch(c, version, &positions, max_wait).await {
            Ok(outcomes) => {
                backoff = BACKOFF_MIN;
                let mut moved = Vec::new();
                for ((key, pos), outcome) in keys.iter().zip(&positions).zip(outcomes) {
                    match outcome {
                        Outcome::Records(chunk) => {
                            if chunk.next_offset > pos.offset || !chunk.records().is_empty() {
                                // Topic models (src/models): converted once here, for all.
                                let converted =
                                    crate::models::convert(cluster, &key.topic, chunk, &metrics);
                                if let Some(chunk) = converted.await {
                                    hub.borrow_mut().publish(key, chunk);
                                }
                            }
                        }
                        Outcome::OutOfRange => {
                            out_of_range(&hub, &client, key, pos.offset, leader).await;
                        }
                        Outcome::Error(e) => {
                            metrics.fetch_errors.inc();
                            if e.needs_metadata() {
                                moved.push(key.clone());
                            } else {
                                crate::warn!(
                                    "topic {} partition {}: fetch: {e}",
                                    key.topic,
                                    key.partition
                                );
                            }
                        }
                    }
                }
                flush(&hub);
                if !moved.is_empty() {
                    monoio::time::sleep(backoff).await;
                    backoff = backoff_next(backoff);
                    refresh_leaders(&hub, cluster, &moved).await;
                }
            }
            Err(e) => {
                metrics.fetch_errors.inc();
                crate::warn!(
                    "kafka broker {leader}: fetch failed: {e}; reconnecting in {backoff:?}"
                );
                conn = None;
                monoio::time::sleep(backoff).await;
                backoff = backoff_next(backoff);
                refresh_leaders(&hub, cluster, &keys).await;
            }
        }
    }
}

/// OFFSET_OUT_OF_RANGE: the position fell below retention; move to the earliest record.
async fn out_of_range(
    hub: &SharedHub,
    client: &crate::kafka::client::ClusterClient,
    key: &PartKey,
    pos: i64,
    leader: i32,
) {
    match client
        .list_offset(leader, &key.topic, key.partition, EARLIEST)
        .await
    {
        Ok(earliest) if earliest > pos => {
            crate::warn!(
                "topic {} partition {}: offset {pos} no longer retained; continuing at {earliest}",
                key.topic,
                key.partition
            );
            hub.borrow_mut()
                .publish(key, Chunk::jump(key.partition, pos, earliest, earliest));
        }
        Ok(earliest) => {
            crate::warn!(
                "topic {} partition {}: offset {pos} out of range (earliest {earliest})",
                key.topic,
                key.partition
            );
        }
        Err(e) => crate::warn!(
            "topic {} partition {}: list offsets: {e}",
            key.topic,
            key.partition
        ),
    }
}

/// One-shot read of `from` for a stream older than the cache.
async fn backfill(
    hub: SharedHub,
    key: PartKey,
    from: i64,
    worker: usize,
    stream: StreamKey,
    leader: i32,
) {
    let client = hub.borrow().clusters[key.cluster].clone();
    let mut backoff = BACKOFF_MIN;
    let chunk = loop {
        if hub.borrow().shutting_down {
            return;
        }
        let leader = match hub.borrow().owned.get(&key) {
            Some(op) if op.leader >= 0 => op.leader,
            _ => leader,
        };
        let attempt = async {
            let mut conn = client.connect_node(leader).await?;
            let version = client.versions().map_or(4, |v| v.fetch);
            let pos = FetchPosition {
                topic: key.topic.clone(),
                partition: key.partition,
                offset: from,
            };
            let out = fetch(
                &mut conn,
                version,
                std::slice::from_ref(&pos),
                Duration::ZERO,
            )
            .await?;
            client.checkin(conn);
            Ok::<_, KafkaError>(out)
        };
        match attempt.await {
            Ok(mut out) => match out.pop() {
                // Past the log end: some brokers (tansu 0.6) answer an empty fetch with the high
                // watermark instead of OFFSET_OUT_OF_RANGE.
                Some(Outcome::Records(chunk))
                    if chunk.records().is_empty()
                        && chunk.high_watermark >= 0
                        && chunk.high_watermark < from =>
                {
                    match client
                        .list_offset(leader, &key.topic, key.partition, EARLIEST)
                        .await
                    {
                        Ok(earliest) => break Chunk::reset(key.partition, from, earliest),
                        Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
                    }
                }
                Some(Outcome::Records(chunk)) => {
                    let metrics = hub.borrow().metrics.clone();
                    let converted =
                        crate::models::convert(key.cluster, &key.topic, chunk, &metrics);
                    if let Some(chunk) = converted.await {
                        break chunk;
                    }
                }
                Some(Outcome::OutOfRange) => {
                    match client
                        .list_offset(leader, &key.topic, key.partition, EARLIEST)
                        .await
                    {
                        Ok(earliest) if earliest > from => {
                            break Chunk::jump(key.partition, from, earliest, earliest)
                        }
                        // Not below the earliest, so `from` is past the log end.
                        Ok(earliest) => break Chunk::reset(key.partition, from, earliest),
                        Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
                    }
                }
                Some(Outcome::Error(e)) => {
                    crate::debug!("backfill {}/{}: {e}", key.topic, key.partition)
                }
                None => {}
            },
            Err(e) => crate::debug!("backfill {}/{}: {e}", key.topic, key.partition),
        }
        monoio::time::sleep(backoff).await;
        backoff = backoff_next(backoff);
    };
    hub.borrow_mut().send(
        worker,
        Message::BackfillData {
            key,
            stream,
            chunk: Arc::new(chunk),
        },
    );
    flush(&hub);
}
