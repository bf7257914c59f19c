//! The worker-local fan-out hub: everything a worker knows about topics, the partitions it
//! owns, and its streams. One per worker, behind `Rc<RefCell<_>>`; methods are synchronous and
//! never awaited while borrowed. Messages for other workers are queued in `outbox` and sent by
//! `flush` once the borrow is released.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use proto::event_id::IdTemplate;
use slab::Slab;

use super::encode::EventEncoder;
use super::expiry::Wheel;
use super::filter::Filter;
use super::message::{Mesh, Message, PartKey, StreamKey};
use super::owner::OwnedPartition;
use super::stream_io::{EndReason, SharedIo, StreamIo};
use super::view::{Start, TopicView};
use crate::auth::keys::Keys;
use crate::auth::session::Session;
use crate::config::plan::DefaultOffset;
use crate::kafka::client::ClusterClient;
use crate::metrics::{Ended, Registry, WorkerMetrics};
use crate::sync::Signal;

/// Tunables of the fan-out (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Outbound bytes a stream may have pending before it leaves the live group and catches
    /// up from the cache as its socket drains.
    pub stream_budget: usize,
    /// Outbound bytes a worker may hold pending for all its streams (shared live logs and
    /// private buffers); past it the furthest-behind live streams catch up from the cache.
    pub worker_budget: usize,
    /// Bytes of recent chunks kept per partition for replay (the cache).
    pub cache_bytes: usize,
    /// Seconds a fetched chunk stays in the cache; 0 = no age bound.
    pub cache_age_secs: u64,
    /// Idle comment interval in seconds; 0 disables it.
    pub heartbeat_secs: u64,
    /// How long a request waits for topic metadata before 404 / 503.
    pub metadata_timeout: Duration,
    /// Seconds a topic view without streams is kept before it is dropped.
    pub view_linger_secs: u64,
    /// Seconds a stream's pending bytes may stay untaken before the client counts as stopped
    /// and the stream is ended (it resumes by its last id); 0 = never.
    pub stall_secs: u64,
    /// Long-poll wait of the shared fetch (real Kafka answers as soon as data arrives; some
    /// brokers hold a fetch for part of it whatever arrives).
    pub fetch_max_wait: Duration,
    /// SETTINGS the worker's HTTP/2 connections advertise (carried here with the other
    /// per-worker tunables; only `http::h2` reads it).
    pub h2: proto::h2::Settings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream_budget: 1 << 20,
            worker_budget: 32 << 20,
            cache_bytes: 64 << 20,
            cache_age_secs: 3600,
            heartbeat_secs: 15,
            metadata_timeout: Duration::from_secs(5),
            view_linger_secs: 30,
            stall_secs: 10,
            fetch_max_wait: Duration::from_millis(500),
            h2: proto::h2::Settings::default(),
        }
    }
}

/// What a request asks of the fan-out.
pub struct OpenRequest {
    pub cluster: usize,
    pub topic: String,
    pub filters: Vec<Filter>,
    pub template: IdTemplate,
    pub start: Start,
    pub default_offset: DefaultOffset,
    /// HTTP/1.1 chunked framing (false: close-delimited body, or HTTP/2).
    pub chunked: bool,
    /// Index into `metrics::HTTP_VERSIONS`.
    pub version: usize,
    /// The request's verified token, when a guard authorized it: its expiry ends the stream.
    pub session: Option<Session>,
    /// The sse binding's `options.retry`: a `retry:` line before the first event.
    pub retry: Option<u32>,
}

/// A guarded stream's token: when to challenge, when to end.
pub(super) struct StreamAuth {
    guard: String,
    identity: Option<String>,
    roles: Vec<String>,
    challenge: Option<u64>,
    expires_at: i64,
    challenged: bool,
    /// The wheel deadline in force (older wheel entries are stale).
    next: i64,
}

impl StreamAuth {
    fn from_session(s: &Session) -> Option<Self> {
        let exp = s.exp?;
        let mut auth = StreamAuth {
            guard: s.guard.clone(),
            identity: s.identity.clone(),
            roles: s.roles.clone(),
            challenge: s.challenge,
            expires_at: exp,
            challenged: false,
            next: exp,
        };
        auth.next = auth.challenge_at().unwrap_or(exp);
        Some(auth)
    }

    /// Challenges go to streams whose token has a subject, `challenge` seconds before expiry.
    fn challenge_at(&self) -> Option<i64> {
        let lead = self.challenge.filter(|&c| c > 0)?;
        self.identity.as_ref()?;
        Some(self.expires_at - lead as i64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The topic does not exist (404).
    NotFound,
    /// Kafka did not answer within the metadata timeout (503).
    Unavailable,
    /// The server is shutting down (503).
    ShuttingDown,
}

pub(super) struct Stream {
    pub io: SharedIo,
    pub generation: u64,
    pub view: ViewKey,
    pub group: usize,
    /// (partition, next offset) in partition order; meaningful once started.
    pub positions: Vec<(i32, i64)>,
    pub start: Start,
    pub default_offset: DefaultOffset,
    pub live: bool,
    pub version: usize,
    /// Partitions with a backfill request in flight.
    pub backfilling: Vec<bool>,
    /// Latest-per-key replay of a compacted topic, before catching up (boxed, like `auth`:
    /// most streams have neither, and every byte of `Stream` is paid per idle stream).
    pub replay: Option<Box<super::compaction::Replay>>,
    pub auth: Option<Box<StreamAuth>>,
}

pub(super) type ViewKey = (usize, Arc<str>);

pub struct Hub {
    pub worker: usize,
    pub(super) mesh: Arc<Mesh>,
    pub clusters: Vec<Rc<ClusterClient>>,
    pub settings: Settings,
    pub(super) views: HashMap<ViewKey, TopicView>,
    pub(super) owned: HashMap<PartKey, OwnedPartition>,
    pub(super) streams: Slab<Stream>,
    next_generation: u64,
    pub(super) encoder: EventEncoder,
    /// Streams that received bytes in the current delivery, to wake once each.
    pub(super) touched: Vec<usize>,
    pub(super) ended: Vec<usize>,
    pub(super) outbox: VecDeque<(usize, Message)>,
    /// What the driver is to do for the hub after this turn (tasks, timers, I/O).
    pub(super) commands: Vec<Command>,
    /// Per destination: messages waiting for room in its inbox, in order. Bounded by the
    /// fetch loops, which do not fetch again while any is waiting (`backpressure`): a worker
    /// that cannot keep up slows the fetches feeding it, and at most one fetch's chunks wait.
    pub(super) overflow: Vec<VecDeque<Message>>,
    pub(super) overflow_draining: Vec<bool>,
    /// Set when every overflow queue has drained; fetch loops wait on it.
    pub(super) overflow_clear: Option<Signal<()>>,
    /// Topic names in use by a view (one `Arc` per name); a name leaves with its last view.
    topics: HashMap<String, Arc<str>>,
    /// Topics Kafka did not know, with the tick until which requests for them get 404 without
    /// asking again (at most `NEGATIVE_TOPICS`).
    unknown: Vec<HashMap<String, u64>>,
    /// Coarse clock in seconds since the worker started (advanced by the tick task).
    pub now: u64,
    pub shutting_down: bool,
    pub shutdown: Signal<()>,
    pub metrics: Arc<WorkerMetrics>,
    pub registry: Arc<Registry>,
    /// Guard verification keys.
    pub keys: Arc<Keys>,
    wheel: Wheel,
    due: Vec<(i64, StreamKey)>,
    /// Partitions whose fetch loop has a metadata refresh pending.
    pub(super) fetch_loops: HashMap<(usize, i32), ()>,
}

pub type SharedHub = Rc<RefCell<Hub>>;

/// What the hub asks of its driver; the hub itself spawns nothing, reads no clock and does no
/// I/O. Executed by `driver::flush` once per turn, after messages to other workers are sent.
#[derive(Debug)]
pub enum Command {
    /// Look up a new view's topic (answered with `on_metadata` or `on_unresolved`).
    Resolve(ViewKey),
    /// Find an owned partition's leader and offsets (answered with `activate`/`fail_start`),
    /// then make sure a fetch loop runs for its leader.
    StartPartition(PartKey),
    /// Read a partition once from `from` for a stream older than the cache (answered with a
    /// `BackfillData` message to `worker`).
    Backfill {
        key: PartKey,
        from: i64,
        worker: usize,
        stream: StreamKey,
        leader: i32,
    },
}

/// Unknown topic names remembered per worker (the negative cache), so that requests for names
/// that do not exist cost at most one look-up each per interval and no unbounded memory.
pub const NEGATIVE_TOPICS: usize = 4096;
/// Topic look-ups in flight per worker; more requests for new topics are answered 503 at once,
/// so anonymous clients cannot make us hammer the brokers.
pub const MAX_RESOLVING: usize = 64;

impl Hub {
    pub fn new(
        worker: usize,
        mesh: Arc<Mesh>,
        clusters: Vec<Rc<ClusterClient>>,
        settings: Settings,
        registry: Arc<Registry>,
        keys: Arc<Keys>,
    ) -> SharedHub {
        let workers = mesh.workers();
        let metrics = registry.workers[worker].clone();
        Rc::new(RefCell::new(Hub {
            worker,
            mesh,
            clusters,
            settings,
            views: HashMap::new(),
            owned: HashMap::new(),
            streams: Slab::new(),
            next_generation: 1,
            encoder: EventEncoder::default(),
            touched: Vec::new(),
            ended: Vec::new(),
            outbox: VecDeque::new(),
            commands: Vec::new(),
            overflow: (0..workers).map(|_| VecDeque::new()).collect(),
            overflow_draining: vec![false; workers],
            overflow_clear: None,
            topics: HashMap::new(),
            unknown: Vec::new(),
            now: 0,
            shutting_down: false,
            shutdown: Signal::new(),
            metrics,
            registry,
            keys,
            wheel: Wheel::default(),
            due: Vec::new(),
            fetch_loops: HashMap::new(),
        }))
    }

    pub fn workers(&self) -> usize {
        self.mesh.workers()
    }

    /// Whether a view of `topic` exists on `cluster`.
    pub(super) fn has_view(&self, cluster: usize, topic: &str) -> bool {
        self.topics
            .get(topic)
            .is_some_and(|t| self.views.contains_key(&(cluster, t.clone())))
    }

    pub fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(topic.to_owned(), t.clone());
        t
    }

    /// While messages wait for room in another worker's inbox: what the fetch loops wait on
    /// before fetching again.
    pub fn backpressure(&mut self) -> Option<Signal<()>> {
        if self.overflow.iter().all(VecDeque::is_empty) {
            return None;
        }
        Some(self.overflow_clear.get_or_insert_with(Signal::new).clone())
    }

    /// Removes a view and, with it, its topic name.
    pub(super) fn remove_view(&mut self, vkey: &ViewKey) -> Option<TopicView> {
        let view = self.views.remove(vkey)?;
        if !self.views.keys().any(|(_, t)| Arc::ptr_eq(t, &vkey.1)) {
            self.topics.remove(&*vkey.1);
        }
        Some(view)
    }

    /// Remembers that `topic` does not exist, for `NEGATIVE_TTL_SECS`.
    pub(super) fn remember_unknown(&mut self, cluster: usize, topic: &str) {
        let now = self.now;
        let ttl = self.settings.metadata_timeout.as_secs().max(1);
        if self.unknown.len() <= cluster {
            self.unknown.resize_with(cluster + 1, HashMap::new);
        }
        let names = &mut self.unknown[cluster];
        if names.len() >= NEGATIVE_TOPICS {
            names.retain(|_, until| *until > now);
        }
        if names.len() < NEGATIVE_TOPICS {
            names.insert(topic.to_owned(), now + ttl);
        }
    }

    /// Whether `topic` is known not to exist (a recent look-up said so).
    pub(super) fn known_unknown(&self, cluster: usize, topic: &str) -> bool {
        self.unknown
            .get(cluster)
            .and_then(|names| names.get(topic))
            .is_some_and(|&until| until > self.now)
    }

    pub(super) fn send(&mut self, to: usize, msg: Message) {
        self.outbox.push_back((to, msg));
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Dispatches one message from another worker (or from this one, via the outbox).
    pub fn handle(&mut self, msg: Message) {
        match msg {
            Message::Subscribe { key, worker, hint } => self.on_subscribe(key, worker, hint),
            Message::Subscribed {
                key,
                snapshot,
                head,
                earliest,
                latest,
                compacted,
            } => self.on_subscribed(key, snapshot, head, earliest, latest, compacted),
            Message::SubscribeFailed { key, reason } => self.on_subscribe_failed(key, &reason),
            Message::Append { key, chunk } => self.on_append(&key, chunk),
            Message::Unsubscribe { key, worker } => self.on_unsubscribe(key, worker),
            Message::Backfill {
                key,
                from,
                worker,
                stream,
            } => self.on_backfill(key, from, worker, stream),
            Message::BackfillData { key, stream, chunk } => {
                self.on_backfill_data(&key, stream, &chunk)
            }
            Message::Shutdown => self.begin_shutdown(),
        }
    }

    pub fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        // New streams are refused from here on; open ones are ended a few at a time by
        // `runtime::drain`, each with a `retry:` line (fanout/drain.rs).
        self.shutting_down = true;
        self.shutdown.set(());
    }

    /// Registers a stream on `view` (which must exist) and returns its key and I/O state.
    pub(super) fn insert_stream(
        &mut self,
        req: &OpenRequest,
        view: ViewKey,
        group: usize,
    ) -> (StreamKey, SharedIo) {
        let io = StreamIo::new(req.chunked, self.settings.stream_budget, self.now);
        if let Some(ms) = req.retry {
            let mut line = [0u8; 32];
            let n = crate::retry::retry_line(u64::from(ms), &mut line);
            io.borrow_mut().push(&line[..n], self.now);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let slot = self.streams.insert(Stream {
            io: io.clone(),
            generation,
            view,
            group,
            positions: Vec::new(),
            start: req.start.clone(),
            default_offset: req.default_offset,
            live: false,
            version: req.version,
            backfilling: Vec::new(),
            replay: None,
            auth: req
                .session
                .as_ref()
                .and_then(StreamAuth::from_session)
                .map(Box::new),
        });
        if let Some(next) = self.streams[slot].auth.as_ref().map(|a| a.next) {
            self.wheel.schedule(next, StreamKey { slot, generation });
        }
        self.metrics.streams_opened[req.version].inc();
        (StreamKey { slot, generation }, io)
    }

    pub(super) fn stream(&self, key: StreamKey) -> Option<&Stream> {
        self.streams
            .get(key.slot)
            .filter(|s| s.generation == key.generation)
    }

    /// The connection is gone (or the stream ended): forget the stream.
    pub fn close_stream(&mut self, key: StreamKey) {
        if self.stream(key).is_none() {
            return;
        }
        let s = self.streams.remove(key.slot);
        self.metrics.streams_closed[s.version].inc();
        self.metrics.ended(match s.io.borrow().end {
            Some(EndReason::Budget) => Ended::Budget,
            Some(EndReason::Shutdown) => Ended::Shutdown,
            Some(EndReason::Upstream) => Ended::Error,
            Some(EndReason::Expiry) => Ended::Expiry,
            Some(EndReason::Client) | None => Ended::Client,
        });
        if let Some(view) = self.views.get_mut(&s.view) {
            view.detach(key.slot, s.group);
            view.release(s.group, self.now);
        }
    }

    /// Ends streams collected in `ended` during a delivery (over budget).
    pub(super) fn reap_ended(&mut self) {
        while let Some(slot) = self.ended.pop() {
            if let Some(s) = self.streams.get(slot) {
                let view = s.view.clone();
                let group = s.group;
                if let Some(v) = self.views.get_mut(&view) {
                    v.detach(slot, group);
                }
                // The slab entry stays until the connection calls `close_stream`.
                if let Some(s) = self.streams.get_mut(slot) {
                    s.live = false;
                    s.io.borrow_mut().leave_live();
                }
            }
        }
    }

    /// Wakes every stream that got bytes in the last delivery.
    pub(super) fn wake_touched(&mut self) {
        while let Some(slot) = self.touched.pop() {
            if let Some(s) = self.streams.get(slot) {
                s.io.borrow_mut().wake();
            }
        }
    }

    /// One tick per second (`wall_secs`: the wall clock, for token expiry): stalled streams,
    /// heartbeats for idle streams, dropping idle views, cache ages, expiry.
    pub fn tick(&mut self, wall_secs: i64) {
        self.now += 1;
        let stall = self.settings.stall_secs;
        for (slot, s) in self.streams.iter() {
            let mut io = s.io.borrow_mut();
            if io.end.is_none() && io.stalled(self.now, stall) {
                io.cut_stalled();
                self.ended.push(slot);
            }
        }
        self.reap_ended();
        let hb = self.settings.heartbeat_secs;
        for (_, s) in self.streams.iter() {
            let mut io = s.io.borrow_mut();
            if hb > 0 && io.end.is_none() && io.pending() == 0 && self.now >= io.last_activity + hb
            {
                let now = self.now;
                io.push(b":\n\n", now);
                io.wake();
            } else if io.wants_park(self.now) {
                io.request_park();
            }
        }
        self.drop_idle_views();
        self.evict_aged();
        self.release_passed_logs();
        self.expire(wall_secs);
    }

    /// Challenges and ends guarded streams whose time has come.
    fn expire(&mut self, now: i64) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(now, &mut due);
        for (deadline, key) in due.drain(..) {
            let Some(s) = self
                .streams
                .get_mut(key.slot)
                .filter(|s| s.generation == key.generation)
            else {
                continue;
            };
            let Some(auth) = s.auth.as_mut().filter(|a| a.next == deadline) else {
                continue;
            };
            if now >= auth.expires_at {
                s.io.borrow_mut().finish(EndReason::Expiry);
                continue;
            }
            if !auth.challenged {
                auth.challenged = true;
                let mut io = s.io.borrow_mut();
                let was_empty = io.pending() == 0;
                // Over budget means the stream is being cut anyway.
                if io.push(proto::sse::CHALLENGE_EVENT, self.now) && was_empty {
                    io.wake();
                }
            }
            auth.next = auth.expires_at;
            self.wheel.schedule(auth.next, key);
        }
        self.due = due;
    }

    /// A challenge response on the stream's connection: a token for the same identity, with a
    /// later expiry and roles no narrower, extends the stream. Returns whether it did.
    pub fn reauthorize(&mut self, key: StreamKey, new: &Session) -> bool {
        let Some(s) = self
            .streams
            .get_mut(key.slot)
            .filter(|s| s.generation == key.generation)
        else {
            return false;
        };
        let Some(auth) = s.auth.as_mut() else {
            return false;
        };
        let same =
            new.guard == auth.guard && new.identity.is_some() && new.identity == auth.identity;
        let wider = auth.roles.iter().all(|r| new.roles.contains(r));
        let later = new.exp.is_none_or(|e| e > auth.expires_at);
        if !(same && wider && later) {
            return false;
        }
        match StreamAuth::from_session(new) {
            Some(next) => {
                **auth = next;
                let at = auth.next;
                self.wheel.schedule(at, key);
            }
            None => s.auth = None, // the new token never expires
        }
        true
    }

    pub fn cache_bounds(&self) -> super::cache::Bounds {
        super::cache::Bounds {
            bytes: self.settings.cache_bytes,
            age_secs: self.settings.cache_age_secs,
        }
    }
}

pub use super::driver::flush;
