//! A worker's view of one topic: a mirror of each partition's recent chunks (the same
//! `Arc<Chunk>`s the owner holds), the worker's streams grouped by (filters, id template), and
//! the delivery paths.
//!
//! Two kinds of stream:
//! - *live* streams sit exactly at the head of every partition. Their ids are identical, so each
//!   record is filtered once per group and encoded once per id template, and the same bytes are
//!   appended to every live stream of the group.
//! - *catching-up* streams (resumed from an older id, started at the earliest record, or waiting
//!   for a position ahead of the head) are pumped one by one from the mirror, or from one-shot
//!   backfill fetches when they are older than the mirror, each under half its budget at a time.
//!   When a catching-up stream reaches the head of every partition it joins its group's live
//!   list, so it continues with the next appended chunk: no gap, no duplicate.

use std::collections::VecDeque;
use std::sync::Arc;

use proto::event_id::IdTemplate;

use super::cache::{evict, Bounds};
use super::compaction::{KeyIndex, Latest, Replay};
use super::filter::{matches_any, Filter};
use super::hub::{flush, Hub, OpenError, OpenRequest, SharedHub, Stream, ViewKey};
use super::message::{Message, PartKey, StartHint, StreamKey};
use super::stream_io::{EndReason, SharedIo};
use crate::config::plan::DefaultOffset;
use crate::kafka::chunk::Chunk;
use crate::kafka::client::TopicMeta;
use crate::kafka::error::KafkaError;
use crate::runtime::signal::Signal;

/// Where a stream starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// No id: the topic's `defaultOffset` (historical or live).
    Default,
    /// A decoded Last-Event-ID: partitions listed start at their offset (-1 live, -2 or unlisted
    /// historical), as the reference does.
    Ids(Vec<(i32, i64)>),
    /// A malformed id: replay everything from the earliest record (as the reference).
    Historical,
    /// `?since=` (milliseconds since the epoch): each partition from its first record at or
    /// after that time; turned into `Ids` by `open_stream` (fanout/since.rs).
    Since(i64),
}

pub(super) struct PartView {
    mirror: VecDeque<Arc<Chunk>>,
    bytes: usize,
    /// Next offset the owner will append.
    head: i64,
    earliest: i64,
    latest: i64,
    ready: bool,
    /// Latest record per key when the topic is compacted.
    index: Option<KeyIndex>,
}

impl PartView {
    fn low(&self) -> i64 {
        self.mirror.front().map_or(self.head, |c| c.first_offset)
    }

    fn historical(&self) -> i64 {
        self.low().min(self.earliest)
    }

    fn live(&self) -> i64 {
        self.head.max(self.latest)
    }

    fn chunk_at(&self, pos: i64) -> Option<&Arc<Chunk>> {
        let i = self.mirror.partition_point(|c| c.next_offset <= pos);
        self.mirror.get(i)
    }

    fn evict(&mut self, bounds: Bounds) {
        evict(&mut self.mirror, &mut self.bytes, bounds);
    }
}

pub(super) struct Group {
    filters: Vec<Filter>,
    template: IdTemplate,
    live: Vec<usize>,
    members: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewState {
    Resolving,
    Subscribing { remaining: usize },
    Ready,
}

pub(super) struct TopicView {
    cluster: usize,
    topic: Arc<str>,
    state: ViewState,
    hint: StartHint,
    parts: Vec<PartView>,
    /// (partition, head): the id of a live stream; the record's own entry is bumped while encoding.
    progress: Vec<(i32, i64)>,
    groups: Vec<Group>,
    waiting: Vec<usize>,
    catching_up: Vec<usize>,
    members: usize,
    idle_since: Option<u64>,
    meta: Signal<Result<(), OpenError>>,
    /// A `cache_server.bootstrap` topic: kept subscribed without streams.
    pinned: bool,
}

impl TopicView {
    fn new(cluster: usize, topic: Arc<str>, hint: StartHint, now: u64) -> Self {
        TopicView {
            cluster,
            topic,
            state: ViewState::Resolving,
            hint,
            parts: Vec::new(),
            progress: Vec::new(),
            groups: Vec::new(),
            waiting: Vec::new(),
            catching_up: Vec::new(),
            members: 0,
            idle_since: Some(now),
            meta: Signal::new(),
            pinned: false,
        }
    }

    fn part_index(&self, partition: i32) -> Option<usize> {
        self.progress
            .binary_search_by_key(&partition, |(p, _)| *p)
            .ok()
    }

    fn key(&self, index: usize) -> PartKey {
        PartKey {
            cluster: self.cluster,
            topic: self.topic.clone(),
            partition: self.progress[index].0,
        }
    }

    fn group_for(&mut self, filters: &[Filter], template: IdTemplate) -> usize {
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.template == template && g.filters == filters)
        {
            return i;
        }
        if let Some(i) = self.groups.iter().position(|g| g.members == 0) {
            let g = &mut self.groups[i];
            g.filters = filters.to_vec();
            g.template = template;
            return i;
        }
        self.groups.push(Group {
            filters: filters.to_vec(),
            template,
            live: Vec::new(),
            members: 0,
        });
        self.groups.len() - 1
    }

    /// Removes a stream from the live, waiting and catching-up lists (idempotent).
    pub(super) fn detach(&mut self, slot: usize, group: usize) {
        if let Some(g) = self.groups.get_mut(group) {
            if let Some(i) = g.live.iter().position(|&s| s == slot) {
                g.live.swap_remove(i);
            }
        }
        for list in [&mut self.waiting, &mut self.catching_up] {
            if let Some(i) = list.iter().position(|&s| s == slot) {
                list.swap_remove(i);
            }
        }
    }

    /// The stream is gone: its group and the view lose a member.
    pub(super) fn release(&mut self, group: usize, now: u64) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members = g.members.saturating_sub(1);
        }
        self.members = self.members.saturating_sub(1);
        if self.members == 0 {
            self.idle_since = Some(now);
        }
    }
}

fn template_slot(t: IdTemplate) -> usize {
    match t {
        IdTemplate::Etag => 0,
        IdTemplate::KeyAndEtag => 1,
    }
}

/// Opens a stream: waits for the topic's metadata (404 / 503 after the metadata timeout), then
/// registers the stream; it starts delivering once every partition is subscribed.
pub async fn open_stream(
    hub: &SharedHub,
    mut req: OpenRequest,
) -> Result<(StreamKey, SharedIo), OpenError> {
    if let Start::Since(ms) = req.start {
        req.start = Start::Ids(super::since::offsets_for_time(hub, &req, ms).await?);
    }
    let (vkey, meta) = {
        let mut h = hub.borrow_mut();
        if h.shutting_down {
            return Err(OpenError::ShuttingDown);
        }
        let topic = h.intern(&req.topic);
        let vkey: ViewKey = (req.cluster, topic.clone());
        let now = h.now;
        if !h.views.contains_key(&vkey) {
            let hint = match req.default_offset {
                DefaultOffset::Historical => StartHint::Earliest,
                DefaultOffset::Live => StartHint::Latest,
            };
            h.views
                .insert(vkey.clone(), TopicView::new(req.cluster, topic, hint, now));
            monoio::spawn(resolve_view(hub.clone(), vkey.clone()));
        }
        let meta = h.views[&vkey].meta.clone();
        (vkey, meta)
    };
    meta.wait().await?;
    let opened = {
        let mut h = hub.borrow_mut();
        if h.shutting_down {
            return Err(OpenError::ShuttingDown);
        }
        let Some(view) = h.views.get_mut(&vkey) else {
            return Err(OpenError::Unavailable);
        };
        let group = view.group_for(&req.filters, req.template);
        view.groups[group].members += 1;
        view.members += 1;
        view.idle_since = None;
        let ready = view.state == ViewState::Ready;
        let (key, io) = h.insert_stream(&req, vkey.clone(), group);
        if ready {
            h.start_stream(key.slot);
        } else if let Some(view) = h.views.get_mut(&vkey) {
            view.waiting.push(key.slot);
        }
        (key, io)
    };
    flush(hub);
    Ok(opened)
}

async fn resolve_view(hub: SharedHub, vkey: ViewKey) {
    let (client, timeout) = {
        let h = hub.borrow();
        (h.clusters[vkey.0].clone(), h.settings.metadata_timeout)
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut last = OpenError::Unavailable;
    loop {
        match monoio::time::timeout_at(deadline.into(), client.metadata(&vkey.1)).await {
            Ok(Ok(meta)) => {
                hub.borrow_mut().on_metadata(&vkey, &meta);
                flush(&hub);
                return;
            }
            Ok(Err(KafkaError::UnknownTopic)) => last = OpenError::NotFound,
            Ok(Err(e)) => {
                crate::debug!("metadata for {}: {e}", vkey.1);
                last = OpenError::Unavailable;
            }
            Err(_) => break,
        }
        let pause = std::time::Duration::from_millis(200);
        if std::time::Instant::now() + pause >= deadline {
            break;
        }
        monoio::time::sleep(pause).await;
    }
    let view = hub.borrow_mut().views.remove(&vkey);
    if let Some(view) = view {
        view.meta.set(Err(last));
    }
}

impl Hub {
    /// A bootstrap topic: this worker subscribes to every partition from start and keeps the
    /// view without streams, so the first client needs no broker round trip.
    pub fn pin_view(&mut self, cluster: usize, topic: Arc<str>, hint: StartHint, meta: &TopicMeta) {
        let vkey: ViewKey = (cluster, topic.clone());
        if let Some(view) = self.views.get_mut(&vkey) {
            view.pinned = true;
            return;
        }
        let mut view = TopicView::new(cluster, topic, hint, self.now);
        view.pinned = true;
        self.views.insert(vkey.clone(), view);
        self.on_metadata(&vkey, meta);
    }

    fn on_metadata(&mut self, vkey: &ViewKey, meta: &TopicMeta) {
        let workers = self.workers();
        let worker = self.worker;
        let Some(view) = self.views.get_mut(vkey) else {
            return;
        };
        view.parts = meta
            .partitions
            .iter()
            .map(|_| PartView {
                mirror: VecDeque::new(),
                bytes: 0,
                head: 0,
                earliest: 0,
                latest: 0,
                ready: false,
                index: None,
            })
            .collect();
        view.progress = meta.partitions.iter().map(|p| (p.partition, 0)).collect();
        view.state = ViewState::Subscribing {
            remaining: view.parts.len(),
        };
        let hint = view.hint;
        let keys: Vec<PartKey> = (0..view.parts.len()).map(|i| view.key(i)).collect();
        view.meta.set(Ok(()));
        for key in keys {
            let owner = key.owner(workers);
            self.send(owner, Message::Subscribe { key, worker, hint });
        }
    }

    pub(super) fn on_subscribed(
        &mut self,
        key: PartKey,
        snapshot: Vec<Arc<Chunk>>,
        head: i64,
        earliest: i64,
        latest: i64,
        compacted: Option<Vec<Latest>>,
    ) {
        let vkey = (key.cluster, key.topic.clone());
        let Some(view) = self.views.get_mut(&vkey) else {
            let owner = key.owner(self.workers());
            let worker = self.worker;
            self.send(owner, Message::Unsubscribe { key, worker });
            return;
        };
        let Some(i) = view.part_index(key.partition) else {
            return;
        };
        let part = &mut view.parts[i];
        if part.ready {
            return;
        }
        part.bytes = snapshot.iter().map(|c| c.size).sum();
        part.mirror = snapshot.into();
        part.head = head;
        part.earliest = earliest;
        part.latest = latest;
        part.ready = true;
        part.index = compacted.map(|entries| KeyIndex::from_snapshot(&entries));
        view.progress[i].1 = head;
        if let ViewState::Subscribing { remaining } = &mut view.state {
            *remaining -= 1;
            if *remaining == 0 {
                view.state = ViewState::Ready;
                let waiting = std::mem::take(&mut view.waiting);
                for slot in waiting {
                    self.start_stream(slot);
                }
                self.wake_touched();
            }
        }
    }

    pub(super) fn on_subscribe_failed(&mut self, key: PartKey, reason: &str) {
        crate::warn!(
            "topic {} partition {}: cannot subscribe: {reason}",
            key.topic,
            key.partition
        );
        let vkey = (key.cluster, key.topic.clone());
        if let Some(view) = self.views.remove(&vkey) {
            view.meta.set(Err(OpenError::Unavailable));
            for (_, s) in self.streams.iter() {
                if s.view == vkey {
                    s.io.borrow_mut().finish(EndReason::Upstream);
                }
            }
        }
    }

    /// Computes a new stream's positions and makes it live or starts catching it up.
    pub(super) fn start_stream(&mut self, slot: usize) {
        let Some(s) = self.streams.get_mut(slot) else {
            return;
        };
        let Some(view) = self.views.get_mut(&s.view) else {
            return;
        };
        s.positions = view
            .parts
            .iter()
            .zip(&view.progress)
            .map(|(part, &(pid, _))| {
                let pos = match &s.start {
                    Start::Ids(ids) => match ids.iter().rev().find(|(p, _)| *p == pid) {
                        Some(&(_, o)) if o >= 0 => o,
                        Some(&(_, -1)) => part.live(),
                        _ => part.historical(),
                    },
                    Start::Historical | Start::Since(_) => part.historical(),
                    Start::Default => match s.default_offset {
                        DefaultOffset::Historical => part.historical(),
                        DefaultOffset::Live => part.live(),
                    },
                };
                (pid, pos)
            })
            .collect();
        s.backfilling = vec![false; view.parts.len()];
        let compacted_replay = matches!(s.start, Start::Default)
            && s.default_offset == DefaultOffset::Historical
            && view.parts.iter().any(|p| p.index.is_some());
        if compacted_replay {
            s.replay = Some(Replay {
                entries: Vec::new(),
                cursor: 0,
                heads: view.parts.iter().map(PartView::live).collect(),
                ready: false,
            });
            view.catching_up.push(slot);
            self.pump(slot);
            return;
        }
        if s.positions
            .iter()
            .zip(&view.parts)
            .all(|(p, part)| p.1 == part.head)
        {
            s.live = true;
            view.groups[s.group].live.push(slot);
        } else {
            view.catching_up.push(slot);
            self.pump(slot);
        }
    }

    pub(super) fn on_append(&mut self, key: &PartKey, chunk: Arc<Chunk>) {
        let vkey = (key.cluster, key.topic.clone());
        let bounds = self.cache_bounds();
        let now = self.now;
        let Hub {
            views,
            streams,
            encoder,
            scratch,
            touched,
            metrics,
            ..
        } = self;
        let Some(view) = views.get_mut(&vkey) else {
            return;
        };
        let Some(i) = view.part_index(key.partition) else {
            return;
        };
        if !view.parts[i].ready {
            return;
        }
        debug_assert_eq!(chunk.partition, key.partition);
        if chunk.first_offset != view.parts[i].head {
            crate::warn!(
                "topic {} partition {}: chunk at {} does not continue head {}",
                key.topic,
                key.partition,
                chunk.first_offset,
                view.parts[i].head
            );
        }
        let mut demoted = Vec::new();
        deliver_live(
            view,
            i,
            &chunk,
            streams,
            encoder,
            scratch,
            touched,
            &mut demoted,
            now,
            metrics,
        );
        for (slot, at) in demoted {
            let Some(s) = streams.get_mut(slot) else {
                continue;
            };
            s.live = false;
            s.positions = at;
            s.backfilling = vec![false; view.parts.len()];
            if let Some(k) = view.groups[s.group].live.iter().position(|&x| x == slot) {
                view.groups[s.group].live.swap_remove(k);
            }
            view.catching_up.push(slot);
        }
        let part = &mut view.parts[i];
        if let Some(index) = &mut part.index {
            index.apply(&chunk);
        }
        part.head = chunk.next_offset;
        part.latest = part.latest.max(chunk.stable_offset);
        part.bytes += chunk.size;
        part.mirror.push_back(chunk);
        part.evict(bounds);
        view.progress[i].1 = part.head;
        // From the end, without a copy: pumping a stream only ever removes that stream from the
        // list (`swap_remove`, which moves an entry already visited into its place).
        let mut k = view.catching_up.len();
        while k > 0 {
            k -= 1;
            let slot = match self.views.get(&vkey).and_then(|v| v.catching_up.get(k)) {
                Some(&slot) => slot,
                None => continue,
            };
            self.pump(slot);
        }
        self.reap_ended();
        self.wake_touched();
    }

    /// Fills a catching-up stream up to half its budget from the mirror, asking the owner for a
    /// backfill where the stream is older than the mirror; promotes it to live at the head.
    pub fn pump(&mut self, slot: usize) {
        let now = self.now;
        let worker = self.worker;
        let workers = self.workers();
        let Hub {
            views,
            streams,
            encoder,
            touched,
            outbox,
            metrics,
            ..
        } = self;
        let Some(s) = streams.get_mut(slot) else {
            return;
        };
        if s.live || s.io.borrow().end.is_some() {
            return;
        }
        let Some(view) = views.get_mut(&s.view) else {
            return;
        };
        if view.state != ViewState::Ready {
            return;
        }
        s.io.borrow_mut().full = false;
        let target = s.io.borrow().budget() / 2;
        let was_empty = s.io.borrow().pending() == 0;
        let group = &view.groups[s.group];
        if let Some(r) = s.replay.as_mut().filter(|r| !r.ready) {
            if !view.parts.iter().zip(&r.heads).all(|(p, &h)| p.head >= h) {
                return; // the view has not yet reached what the broker held at subscription
            }
            for (i, part) in view.parts.iter().enumerate() {
                if let Some(index) = &part.index {
                    r.entries
                        .extend(index.snapshot().into_iter().map(|l| (i, l)));
                }
            }
            r.heads = view.parts.iter().map(|p| p.head).collect();
            r.ready = true;
        }
        if s.replay.is_some()
            && !replay(
                s,
                &group.filters,
                group.template,
                encoder,
                target,
                now,
                &metrics.events_sent,
            )
        {
            if was_empty && s.io.borrow().pending() > 0 {
                touched.push(slot);
            }
            return;
        }
        'fill: loop {
            let mut progressed = false;
            for i in 0..view.parts.len() {
                let part = &view.parts[i];
                let pos = s.positions[i].1;
                // Past what the broker held (a one-shot fetch at `pos` asks it; a position beyond
                // its log end comes back as a reset to the earliest offset), or older than the
                // cache (the fetch brings the records): one request in flight per partition.
                let ask = pos > part.live() || pos < part.low();
                if ask && !s.backfilling[i] {
                    s.backfilling[i] = true;
                    let key = view.key(i);
                    let stream = StreamKey {
                        slot,
                        generation: s.generation,
                    };
                    let from = pos;
                    outbox.push_back((
                        key.owner(workers),
                        Message::Backfill {
                            key,
                            from,
                            worker,
                            stream,
                        },
                    ));
                }
                if pos >= part.head {
                    continue;
                }
                if pos < part.low() {
                    continue;
                }
                let Some(chunk) = part.chunk_at(pos) else {
                    continue;
                };
                let full = deliver_chunk(
                    s,
                    i,
                    chunk,
                    &group.filters,
                    group.template,
                    encoder,
                    target,
                    now,
                    &metrics.events_sent,
                );
                progressed |= s.positions[i].1 != pos;
                if full {
                    break 'fill;
                }
            }
            if !progressed {
                break;
            }
        }
        if was_empty && s.io.borrow().pending() > 0 {
            touched.push(slot);
        }
        let at_head = s
            .positions
            .iter()
            .zip(&view.parts)
            .all(|(p, part)| p.1 == part.head);
        if at_head && !s.backfilling.iter().any(|&b| b) {
            s.live = true;
            if let Some(k) = view.catching_up.iter().position(|&x| x == slot) {
                view.catching_up.swap_remove(k);
            }
            view.groups[s.group].live.push(slot);
        }
    }

    /// The writer drained a stream's buffer: a catching-up stream may take more.
    pub fn on_drained(&mut self, key: StreamKey) {
        let live = match self.stream(key) {
            Some(s) => s.live,
            None => return,
        };
        if !live {
            self.pump(key.slot);
            self.wake_touched();
        }
    }

    pub(super) fn on_backfill_data(&mut self, key: &PartKey, stream: StreamKey, chunk: &Chunk) {
        let now = self.now;
        let Hub {
            views,
            streams,
            encoder,
            metrics,
            ..
        } = self;
        let Some(s) = streams.get_mut(stream.slot) else {
            return;
        };
        if s.generation != stream.generation {
            return;
        }
        let Some(view) = views.get_mut(&s.view) else {
            return;
        };
        let Some(i) = view.part_index(key.partition) else {
            return;
        };
        s.backfilling[i] = false;
        let pos = s.positions[i].1;
        // What the broker said of the log end: a position up to it is valid, only not fetched yet.
        let part = &mut view.parts[i];
        part.latest = part
            .latest
            .max(chunk.stable_offset)
            .max(chunk.high_watermark);
        if chunk.is_reset() {
            if chunk.first_offset == pos {
                crate::info!(
                    "topic {} partition {}: resume offset {pos} is past the end; replaying from {}",
                    key.topic,
                    key.partition,
                    chunk.next_offset
                );
                s.positions[i].1 = chunk.next_offset;
            }
            self.pump(stream.slot);
            self.wake_touched();
            return;
        }
        let group = &view.groups[s.group];
        let target = s.io.borrow().budget() / 2;
        let full = deliver_chunk(
            s,
            i,
            chunk,
            &group.filters,
            group.template,
            encoder,
            target,
            now,
            &metrics.events_sent,
        );
        if !full
            && s.positions[i].1 == pos
            && chunk.records().is_empty()
            && pos < view.parts[i].low()
        {
            // The broker has nothing between here and the cache: continue from the cache.
            let low = view.parts[i].low();
            crate::warn!(
                "topic {} partition {}: backfill at {pos} returned nothing; continuing at {low}",
                key.topic,
                key.partition
            );
            s.positions[i].1 = pos.max(low);
        }
        self.pump(stream.slot);
        if let Some(s) = self.streams.get(stream.slot) {
            s.io.borrow_mut().wake();
        }
    }

    /// Applies the cache's age bound to every mirror and owned cache (quiet partitions too).
    pub(super) fn evict_aged(&mut self) {
        let bounds = self.cache_bounds();
        for view in self.views.values_mut() {
            for part in &mut view.parts {
                part.evict(bounds);
            }
        }
        self.evict_owned();
    }

    /// Drops views nobody used for `view_linger_secs`, unsubscribing from their owners.
    pub(super) fn drop_idle_views(&mut self) {
        let linger = self.settings.view_linger_secs;
        let now = self.now;
        let idle: Vec<ViewKey> = self
            .views
            .iter()
            .filter(|(_, v)| {
                !v.pinned
                    && v.members == 0
                    && v.state != ViewState::Resolving
                    && v.idle_since.is_some_and(|t| now >= t + linger)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let workers = self.workers();
        for vkey in idle {
            if let Some(view) = self.views.remove(&vkey) {
                for i in 0..view.parts.len() {
                    let key = view.key(i);
                    let owner = key.owner(workers);
                    let worker = self.worker;
                    self.send(owner, Message::Unsubscribe { key, worker });
                }
            }
        }
    }
}

/// Live delivery of one appended chunk: filter once per group, encode once per template.
#[allow(clippy::too_many_arguments)]
fn deliver_live(
    view: &mut TopicView,
    i: usize,
    chunk: &Chunk,
    streams: &slab::Slab<Stream>,
    encoder: &mut super::encode::EventEncoder,
    scratch: &mut [Vec<u8>; 2],
    touched: &mut Vec<usize>,
    demoted: &mut Vec<(usize, Vec<(i32, i64)>)>,
    now: u64,
    metrics: &crate::metrics::WorkerMetrics,
) {
    if view.groups.iter().all(|g| g.live.is_empty()) {
        return;
    }
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    for r in chunk.records() {
        let Some(rec) = chunk.record(r) else { continue };
        view.progress[i].1 = r.offset + 1;
        let mut encoded = [false; 2];
        let mut delivered = 0u64;
        for g in &view.groups {
            if g.live.is_empty() || !matches_any(&g.filters, &rec) {
                continue;
            }
            let t = template_slot(g.template);
            if !encoded[t] {
                scratch[t].clear();
                encoder.encode(&mut scratch[t], g.template, &view.progress, &rec);
                encoded[t] = true;
            }
            let bytes = &scratch[t];
            delivered += g.live.len() as u64;
            for &slot in &g.live {
                let Some(s) = streams.get(slot) else { continue };
                let mut io = s.io.borrow_mut();
                let was_empty = io.pending() == 0;
                let was_full = io.full;
                if io.push(bytes, now) {
                    if was_empty {
                        touched.push(slot);
                    }
                } else if io.full && !was_full {
                    // This burst does not fit the budget: the stream continues from this record
                    // by catching up from the cache, within its budget.
                    let mut at = view.progress.clone();
                    at[i].1 = r.offset;
                    demoted.push((slot, at));
                }
            }
        }
        if delivered > 0 {
            metrics.events_sent.add(delivered);
            if r.timestamp > 0 {
                metrics
                    .delivery_latency
                    .record_micros(now_micros.saturating_sub(r.timestamp * 1000).max(0) as u64);
            }
        }
    }
    view.progress[i].1 = chunk.next_offset;
}

/// Delivers a compacted replay under `target` pending bytes; true when it is finished (the
/// stream then continues from the heads the replay was taken at).
fn replay(
    s: &mut Stream,
    filters: &[Filter],
    template: IdTemplate,
    encoder: &mut super::encode::EventEncoder,
    target: usize,
    now: u64,
    events: &crate::metrics::Counter,
) -> bool {
    let Some(r) = s.replay.as_mut() else {
        return true;
    };
    let mut io = s.io.borrow_mut();
    while let Some((i, latest)) = r.entries.get(r.cursor) {
        if io.pending() >= target {
            return false;
        }
        r.cursor += 1;
        let rref = &latest.chunk.records()[latest.index as usize];
        s.positions[*i].1 = latest.offset + 1;
        let Some(rec) = latest.chunk.record(rref) else {
            continue;
        };
        if matches_any(filters, &rec) {
            encoder.encode(io.buffer(), template, &s.positions, &rec);
            io.last_activity = now;
            events.inc();
        }
    }
    for (p, head) in s.positions.iter_mut().zip(&r.heads) {
        p.1 = p.1.max(*head);
    }
    drop(io);
    s.replay = None;
    true
}

/// Delivers `chunk`'s records at or after the stream's position on partition `i` with the
/// stream's own ids; stops (returns true) once the stream has `target` bytes pending. Counts
/// delivered events into `events`.
#[allow(clippy::too_many_arguments)]
fn deliver_chunk(
    s: &mut Stream,
    i: usize,
    chunk: &Chunk,
    filters: &[Filter],
    template: IdTemplate,
    encoder: &mut super::encode::EventEncoder,
    target: usize,
    now: u64,
    events: &crate::metrics::Counter,
) -> bool {
    let mut io = s.io.borrow_mut();
    let pos = s.positions[i].1;
    let start = chunk.seek(pos);
    for r in &chunk.records()[start..] {
        if io.pending() >= target {
            return true;
        }
        s.positions[i].1 = r.offset + 1;
        let Some(rec) = chunk.record(r) else { continue };
        if matches_any(filters, &rec) {
            encoder.encode(io.buffer(), template, &s.positions, &rec);
            io.last_activity = now;
            events.inc();
        }
    }
    s.positions[i].1 = s.positions[i].1.max(chunk.next_offset);
    false
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
