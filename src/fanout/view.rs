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
use super::hub::{Command, Hub, OpenError, OpenRequest, Stream, ViewKey, MAX_RESOLVING};
use super::live_log::{worker_log_bytes, LiveLog, SharedLog};
use super::message::{Message, PartKey, StartHint, StreamKey};
use super::stream_io::{worker_private_bytes, EndReason, SharedIo};
use crate::config::plan::DefaultOffset;
use crate::kafka::chunk::Chunk;
use crate::kafka::client::TopicMeta;
use crate::sync::Signal;

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
    /// The live streams' shared encoded events.
    log: SharedLog,
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
            log: LiveLog::new_shared(),
        });
        self.groups.len() - 1
    }

    /// Removes a stream from the live, waiting and catching-up lists (idempotent).
    pub(super) fn detach(&mut self, slot: usize, group: usize) {
        if let Some(g) = self.groups.get_mut(group) {
            if let Some(i) = g.live.iter().position(|&s| s == slot) {
                g.live.swap_remove(i);
            }
            if g.live.is_empty() {
                let mut log = g.log.borrow_mut();
                let head = log.head();
                log.release_before(head);
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

/// Makes a stream live in its group: it joins the group's log at the head.
fn join_live(view: &mut TopicView, s: &mut Stream, slot: usize) {
    s.live = true;
    let g = &mut view.groups[s.group];
    let head = g.log.borrow().head();
    s.io.borrow_mut().join_live(&g.log, head);
    g.live.push(slot);
}

impl Hub {
    /// Views still waiting for their topic's metadata.
    fn resolving(&self) -> usize {
        self.views
            .values()
            .filter(|v| v.state == ViewState::Resolving)
            .count()
    }

    /// The first half of opening a stream: finds or creates the topic's view (a new view asks
    /// for the topic's metadata with `Command::Resolve`) and returns what to wait on before
    /// `finish_open`. Unknown topics remembered by the negative cache are refused at once, and
    /// so are new topics while `MAX_RESOLVING` look-ups are in flight.
    pub fn begin_open(&mut self, req: &OpenRequest) -> Result<Opening, OpenError> {
        if self.shutting_down {
            return Err(OpenError::ShuttingDown);
        }
        if self.known_unknown(req.cluster, &req.topic) {
            self.metrics.metadata_refused.inc();
            return Err(OpenError::NotFound);
        }
        if !self.has_view(req.cluster, &req.topic) && self.resolving() >= MAX_RESOLVING {
            self.metrics.metadata_refused.inc();
            return Err(OpenError::Unavailable);
        }
        let topic = self.intern(&req.topic);
        let vkey: ViewKey = (req.cluster, topic.clone());
        if !self.views.contains_key(&vkey) {
            let hint = match req.default_offset {
                DefaultOffset::Historical => StartHint::Earliest,
                DefaultOffset::Live => StartHint::Latest,
            };
            let view = TopicView::new(req.cluster, topic, hint, self.now);
            self.views.insert(vkey.clone(), view);
            self.commands.push(Command::Resolve(vkey.clone()));
        }
        let meta = self.views[&vkey].meta.clone();
        Ok(Opening { vkey, meta })
    }

    /// The second half, once `Opening::meta` is set: registers the stream on the view; it
    /// starts delivering once every partition is subscribed.
    pub fn finish_open(
        &mut self,
        opening: &Opening,
        req: &OpenRequest,
    ) -> Result<(StreamKey, SharedIo), OpenError> {
        if self.shutting_down {
            return Err(OpenError::ShuttingDown);
        }
        let vkey = &opening.vkey;
        let Some(view) = self.views.get_mut(vkey) else {
            return Err(OpenError::Unavailable);
        };
        let group = view.group_for(&req.filters, req.template);
        view.groups[group].members += 1;
        view.members += 1;
        view.idle_since = None;
        let ready = view.state == ViewState::Ready;
        let (key, io) = self.insert_stream(req, vkey.clone(), group);
        if ready {
            self.start_stream(key.slot);
        } else if let Some(view) = self.views.get_mut(vkey) {
            view.waiting.push(key.slot);
        }
        Ok((key, io))
    }

    /// The topic's metadata could not be had within the timeout: the view is dropped and its
    /// waiting requests get `last` (a topic Kafka does not know is remembered a while).
    pub fn on_unresolved(&mut self, vkey: &ViewKey, last: OpenError) {
        if last == OpenError::NotFound {
            self.remember_unknown(vkey.0, &vkey.1);
        }
        if let Some(view) = self.remove_view(vkey) {
            view.meta.set(Err(last));
        }
    }
}

/// A stream being opened: its view, and the signal its metadata sets.
pub struct Opening {
    pub vkey: ViewKey,
    pub meta: Signal<Result<(), OpenError>>,
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

    pub(super) fn on_metadata(&mut self, vkey: &ViewKey, meta: &TopicMeta) {
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
        if let Some(view) = self.remove_view(&vkey) {
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
            s.replay = Some(Box::new(Replay {
                entries: Vec::new(),
                cursor: 0,
                heads: view.parts.iter().map(PartView::live).collect(),
                ready: false,
            }));
            view.catching_up.push(slot);
            self.pump(slot);
            return;
        }
        if s.positions
            .iter()
            .zip(&view.parts)
            .all(|(p, part)| p.1 == part.head)
        {
            join_live(view, s, slot);
        } else {
            view.catching_up.push(slot);
            self.pump(slot);
        }
    }

    pub(super) fn on_append(&mut self, key: &PartKey, chunk: Arc<Chunk>) {
        let vkey = (key.cluster, key.topic.clone());
        let bounds = self.cache_bounds();
        let limits = self.live_limits();
        let Hub {
            views,
            streams,
            encoder,
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
            touched,
            &mut demoted,
            limits,
            metrics,
        );
        for (slot, at) in demoted {
            metrics.streams_demoted.inc();
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
        let worker_budget = self.settings.worker_budget;
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
        let target = catch_up_target(s.io.borrow().budget(), worker_budget);
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
            if let Some(k) = view.catching_up.iter().position(|&x| x == slot) {
                view.catching_up.swap_remove(k);
            }
            join_live(view, s, slot);
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

    /// Releases the live logs' blocks every cursor of their group has passed (delivery does it
    /// on each append; this catches the last burst of a quiet topic, once per tick).
    pub(super) fn release_passed_logs(&mut self) {
        let Hub { views, streams, .. } = self;
        for view in views.values_mut() {
            for g in &mut view.groups {
                let mut log = g.log.borrow_mut();
                let lowest = g
                    .live
                    .iter()
                    .filter_map(|&slot| streams.get(slot))
                    .filter_map(|s| s.io.borrow().live_pos())
                    .min()
                    .unwrap_or(log.head());
                log.release_before(lowest);
            }
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
            if let Some(view) = self.remove_view(&vkey) {
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

/// How far live streams may fall behind before they leave the live group.
#[derive(Debug, Clone, Copy)]
pub(super) struct LiveLimits {
    /// Live bytes a stream may have pending (its budget), lowered to `PRESSURE_BEHIND` while
    /// the worker holds more than its budget of pending bytes.
    pub behind: usize,
}

/// Live bytes a stream may have pending while its worker is over its budget: the furthest
/// behind leave the live group (they catch up from the record cache as their sockets drain),
/// so the bytes held for them are released.
pub(super) const PRESSURE_BEHIND: usize = 64 * 1024;
/// Most private bytes a catching-up stream is filled with at a time, and while the worker is
/// over its budget.
const CATCH_UP_FILL: usize = 256 * 1024;
const PRESSURE_FILL: usize = 16 * 1024;

/// What a catching-up stream is filled up to.
fn catch_up_target(budget: usize, worker_budget: usize) -> usize {
    if worker_pending_bytes() > worker_budget {
        PRESSURE_FILL.min(budget / 2)
    } else {
        CATCH_UP_FILL.min(budget / 2)
    }
}

/// Bytes waiting to be written on the calling worker: the live logs and private buffers.
pub fn worker_pending_bytes() -> usize {
    worker_log_bytes() + worker_private_bytes()
}

impl Hub {
    pub(super) fn live_limits(&self) -> LiveLimits {
        let budget = self.settings.stream_budget;
        LiveLimits {
            behind: if worker_pending_bytes() > self.settings.worker_budget {
                budget.min(PRESSURE_BEHIND)
            } else {
                budget
            },
        }
    }
}

/// Live delivery of one appended chunk: each group's matching records are encoded once into
/// the group's log, and its live streams' writers, idle until now, are woken. Streams further
/// behind than `limits` leave the group (`demoted`, with the positions they reached) and the
/// blocks every remaining cursor has passed are released. O(records x groups + streams).
#[allow(clippy::too_many_arguments)]
fn deliver_live(
    view: &mut TopicView,
    i: usize,
    chunk: &Chunk,
    streams: &slab::Slab<Stream>,
    encoder: &mut super::encode::EventEncoder,
    touched: &mut Vec<usize>,
    demoted: &mut Vec<(usize, Vec<(i32, i64)>)>,
    limits: LiveLimits,
    metrics: &crate::metrics::WorkerMetrics,
) {
    let now_micros = crate::clock::wall_micros();
    let first = view.progress[i].1;
    for g in &mut view.groups {
        if g.live.is_empty() {
            continue;
        }
        let mut log = g.log.borrow_mut();
        let old_head = log.head();
        view.progress[i].1 = first;
        let mut open = log.open(&view.progress, i);
        let mut events = 0u64;
        for r in chunk.records() {
            let Some(rec) = chunk.record(r) else { continue };
            if !matches_any(&g.filters, &rec) {
                continue;
            }
            view.progress[i].1 = r.offset + 1;
            encoder.encode(open.buffer(), g.template, &view.progress, &rec);
            open.event_written(r.offset);
            events += 1;
            if r.timestamp > 0 {
                metrics
                    .delivery_latency
                    .record_micros(now_micros.saturating_sub(r.timestamp * 1000).max(0) as u64);
            }
        }
        if open.is_empty() {
            log.commit(open);
            continue;
        }
        log.commit(open);
        metrics.events_sent.add(events * g.live.len() as u64);
        let head = log.head();
        let mut lowest = head;
        let mut k = 0;
        while k < g.live.len() {
            let slot = g.live[k];
            let Some(s) = streams.get(slot) else {
                g.live.swap_remove(k);
                continue;
            };
            let mut io = s.io.borrow_mut();
            let pos = io.live_pos().unwrap_or(head);
            if (head - pos) as usize > limits.behind {
                // Too far behind: continue from the record cache at the cursor's positions.
                io.leave_live();
                let mut at = Vec::new();
                if !log.positions_at(pos, &mut at) {
                    at = view.progress.clone();
                }
                demoted.push((slot, at));
                g.live.swap_remove(k);
                continue;
            }
            if pos == old_head {
                touched.push(slot);
            }
            lowest = lowest.min(pos);
            k += 1;
        }
        log.release_before(lowest);
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
            let positions = &s.positions;
            io.encode_with(now, |out| encoder.encode(out, template, positions, &rec));
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
            let positions = &s.positions;
            io.encode_with(now, |out| encoder.encode(out, template, positions, &rec));
            events.inc();
        }
    }
    s.positions[i].1 = s.positions[i].1.max(chunk.next_offset);
    false
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "core_tests.rs"]
mod core_tests;

pub use super::driver::open_stream;
