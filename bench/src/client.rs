//! The load generator (`sse-kafka-bench client …`): one process holding a share of the SSE
//! streams, spread over source addresses, on monoio (io_uring).
//!
//! Every stream tracks, per sequence (`src`: a partition or a key), the next `seq` it expects;
//! a higher one opens a gap, a lower one either fills a gap (out of order) or is a duplicate.
//! At the end, lost = gaps still open + the tail not received. Latency is CLOCK_MONOTONIC when
//! the read that carried the event completed minus the `ts_ns` in the value.
//!
//! Talks to the harness over stdio: prints `ready OPENED FAILED` once every stream has its
//! response (or gave up), reads `finish MS` (wait for completion at most MS) or `stop`, writes
//! its counts and histogram to `--out` as JSON and prints `done`.
//!
//! HTTP/1.1 (one stream per connection) or HTTP/2 by prior knowledge (`--http 2`, several
//! streams per connection, see [`h2_conn_task`]); [`StreamState`], the SSE parser and the
//! accounting are the same for both.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use hdrhistogram::Histogram;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use serde_json::json;

use crate::payload::mono_ns;
use crate::sse::{parse_response_head, Chunked, EventInfo, SseParser};

/// Width of one throughput timeline bucket.
pub const BUCKET_NS: u64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    /// HTTP/2 with prior knowledge (cleartext), `streams_per_conn` streams per connection.
    Http2,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Http1 => "http/1.1",
            Proto::Http2 => "h2",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientArgs {
    pub target: SocketAddr,
    /// Request path; `{i}` is replaced by the stream index.
    pub path: String,
    pub proto: Proto,
    /// HTTP/2: streams per connection.
    pub streams_per_conn: usize,
    pub first: usize,
    pub count: usize,
    pub src_addrs: Vec<Ipv4Addr>,
    /// Number of sequences in the data.
    pub srcs: u64,
    /// Records per sequence each stream must receive.
    pub per_src: u64,
    /// Stream i subscribes to sequence i % srcs only (keyed routes); else to all sequences.
    pub keyed: bool,
    pub threads: usize,
    pub connect_concurrency: usize,
    pub buf_size: usize,
    pub out: PathBuf,
    /// Origin of the throughput timeline (CLOCK_MONOTONIC ns).
    pub t0_ns: u64,
    /// Fault injection: stream 0 discards its third event (must be reported as 1 lost).
    pub drop_one: bool,
    /// Fault injection: stream 0 counts its third event twice (must be reported as 1 duplicate).
    pub dup_one: bool,
    /// Deliberately drop each stream after about this many ms and resume by Last-Event-ID (0 = never).
    pub reconnect_ms: u64,
}

impl ClientArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "client".to_string(),
            "--target".into(),
            self.target.to_string(),
            "--path".into(),
            self.path.clone(),
            "--first".into(),
            self.first.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--src-addrs".into(),
            self.src_addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "--srcs".into(),
            self.srcs.to_string(),
            "--per-src".into(),
            self.per_src.to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--connect-concurrency".into(),
            self.connect_concurrency.to_string(),
            "--buf".into(),
            self.buf_size.to_string(),
            "--out".into(),
            self.out.display().to_string(),
            "--t0-ns".into(),
            self.t0_ns.to_string(),
            "--reconnect-ms".into(),
            self.reconnect_ms.to_string(),
            "--http".into(),
            match self.proto {
                Proto::Http1 => "1.1".into(),
                Proto::Http2 => "2".into(),
            },
            "--streams-per-conn".into(),
            self.streams_per_conn.to_string(),
        ];
        if self.keyed {
            a.push("--keyed".into());
        }
        if self.drop_one {
            a.push("--drop-one".into());
        }
        if self.dup_one {
            a.push("--dup-one".into());
        }
        a
    }

    pub fn parse(args: &[String]) -> Result<ClientArgs, String> {
        let mut c = ClientArgs {
            target: "127.0.0.1:7114".parse().unwrap(),
            path: "/".into(),
            proto: Proto::Http1,
            streams_per_conn: 10,
            first: 0,
            count: 1,
            src_addrs: vec![Ipv4Addr::new(127, 0, 0, 2)],
            srcs: 1,
            per_src: 0,
            keyed: false,
            threads: 1,
            connect_concurrency: 128,
            buf_size: 8192,
            out: PathBuf::from("client.json"),
            t0_ns: mono_ns(),
            drop_one: false,
            dup_one: false,
            reconnect_ms: 0,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut v = || crate::procs::flag_value(it.next(), a);
            let num = |s: String| {
                s.parse::<u64>()
                    .map_err(|_| format!("{a}: not a number: {s}"))
            };
            match a.as_str() {
                "--target" => c.target = v()?.parse().map_err(|e| format!("--target: {e}"))?,
                "--path" => c.path = v()?,
                "--http" => {
                    c.proto = match v()?.as_str() {
                        "1.1" | "h1" => Proto::Http1,
                        "2" | "h2" => Proto::Http2,
                        other => return Err(format!("--http {other}: 1.1 or 2")),
                    }
                }
                "--streams-per-conn" => c.streams_per_conn = num(v()?)?.max(1) as usize,
                "--first" => c.first = num(v()?)? as usize,
                "--count" => c.count = num(v()?)? as usize,
                "--src-addrs" => {
                    c.src_addrs = v()?
                        .split(',')
                        .map(|s| s.parse().map_err(|e| format!("--src-addrs {s}: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "--srcs" => c.srcs = num(v()?)?.max(1),
                "--per-src" => c.per_src = num(v()?)?,
                "--keyed" => c.keyed = true,
                "--threads" => c.threads = num(v()?)?.max(1) as usize,
                "--connect-concurrency" => c.connect_concurrency = num(v()?)?.max(1) as usize,
                "--buf" => c.buf_size = num(v()?)?.max(256) as usize,
                "--out" => c.out = PathBuf::from(v()?),
                "--t0-ns" => c.t0_ns = num(v()?)?,
                "--drop-one" => c.drop_one = true,
                "--dup-one" => c.dup_one = true,
                "--reconnect-ms" => c.reconnect_ms = num(v()?)?,
                other => return Err(format!("client: unknown argument {other}")),
            }
        }
        if c.src_addrs.is_empty() {
            return Err("--src-addrs is empty".into());
        }
        Ok(c)
    }
}

// ---------------------------------------------------------------------------------------------
// Process-wide coordination
// ---------------------------------------------------------------------------------------------

static OPENED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
/// CLOCK_MONOTONIC deadline for finishing; 0 = not asked yet.
static FINISH_AT: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------------------------------------
// Per-stream accounting
// ---------------------------------------------------------------------------------------------

/// Sequence accounting of one stream.
#[derive(Debug, Default)]
pub struct Track {
    /// The one sequence this stream expects (keyed), else None (all of them).
    pub only_src: Option<u64>,
    /// Next expected seq per subscribed sequence.
    pub next: Box<[u64]>,
    /// Open gaps: (src, from, to) half-open; normally empty.
    pub gaps: Vec<(u64, u64, u64)>,
    pub events: u64,
    pub unique: u64,
    pub dups: u64,
    pub out_of_order: u64,
    /// seq beyond what was produced, or a sequence this stream should not see.
    pub unexpected: u64,
}

impl Track {
    pub fn new(srcs: u64, only_src: Option<u64>) -> Track {
        let n = if only_src.is_some() { 1 } else { srcs as usize };
        Track {
            only_src,
            next: vec![0; n].into_boxed_slice(),
            ..Default::default()
        }
    }

    /// Accounts one event; returns whether it was new (not a duplicate).
    pub fn on_event(&mut self, src: u64, seq: u64, per_src: u64) -> bool {
        self.events += 1;
        let slot = match self.only_src {
            Some(s) if s == src => 0,
            Some(_) => {
                self.unexpected += 1;
                return false;
            }
            None if (src as usize) < self.next.len() => src as usize,
            None => {
                self.unexpected += 1;
                return false;
            }
        };
        if seq >= per_src {
            self.unexpected += 1;
            return false;
        }
        let next = &mut self.next[slot];
        if seq == *next {
            *next += 1;
        } else if seq > *next {
            self.gaps.push((src, *next, seq));
            *next = seq + 1;
        } else {
            // Behind: fills a gap (out of order) or repeats (duplicate).
            match self
                .gaps
                .iter()
                .position(|&(s, from, to)| s == src && from <= seq && seq < to)
            {
                Some(g) => {
                    self.out_of_order += 1;
                    let (s, from, to) = self.gaps[g];
                    self.gaps.swap_remove(g);
                    if from < seq {
                        self.gaps.push((s, from, seq));
                    }
                    if seq + 1 < to {
                        self.gaps.push((s, seq + 1, to));
                    }
                }
                None => {
                    self.dups += 1;
                    return false;
                }
            }
        }
        self.unique += 1;
        true
    }

    /// Events expected by this stream in total.
    pub fn expected(&self, per_src: u64) -> u64 {
        self.next.len() as u64 * per_src
    }

    /// The last record of every subscribed sequence has arrived (only gaps could still fill).
    pub fn reached_end(&self, per_src: u64) -> bool {
        self.next.iter().all(|&n| n >= per_src)
    }

    /// Events never received.
    pub fn lost(&self, per_src: u64) -> u64 {
        self.expected(per_src).saturating_sub(self.unique)
    }
}

pub(crate) struct StreamState {
    pub(crate) index: usize,
    pub(crate) track: Track,
    pub(crate) parser: SseParser,
    pub(crate) chunked: Chunked,
    pub(crate) opened: bool,
    pub(crate) failed: bool,
    pub(crate) complete: bool,
    pub(crate) connects: u32,
    pub(crate) server_closes: u32,
    pub(crate) drops: u32,
    pub(crate) next_drop_ns: u64,
    pub(crate) rng: u64,
}

/// Per-thread state shared by the stream tasks and the supervisor.
pub(crate) struct Ctx {
    pub(crate) args: Arc<ClientArgs>,
    pub(crate) host: String,
    pub(crate) streams: Vec<RefCell<StreamState>>,
    pub(crate) hist: RefCell<Histogram<u64>>,
    pub(crate) timeline: RefCell<Vec<u64>>,
    pub(crate) statuses: RefCell<BTreeMap<u16, u64>>,
    pub(crate) errors: RefCell<BTreeMap<String, u64>>,
    pub(crate) first_ns: Cell<u64>,
    pub(crate) last_ns: Cell<u64>,
    pub(crate) complete: Cell<usize>,
    pub(crate) failed: Cell<usize>,
    pub(crate) bytes: Cell<u64>,
    /// Connection attempts allowed at once (connect + response head).
    pub(crate) permits: Cell<usize>,
    pub(crate) waiters: RefCell<Vec<Waker>>,
}

impl Ctx {
    pub(crate) async fn acquire(&self) {
        poll_fn(|cx| {
            if self.permits.get() > 0 {
                self.permits.set(self.permits.get() - 1);
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    pub(crate) fn release(&self) {
        self.permits.set(self.permits.get() + 1);
        if let Some(w) = self.waiters.borrow_mut().pop() {
            w.wake();
        }
    }

    pub(crate) fn error(&self, what: &str) {
        *self
            .errors
            .borrow_mut()
            .entry(what.to_string())
            .or_default() += 1;
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

pub fn run(args: ClientArgs) -> Result<(), String> {
    let args = Arc::new(args);
    // stdin: `finish MS` or `stop`, then `exit`; EOF (the harness went away) means exit.
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            match parts.next() {
                Some("finish") => {
                    let ms: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    FINISH_AT.store(mono_ns() + ms * 1_000_000, Ordering::SeqCst);
                }
                Some("stop") => FINISH_AT.store(mono_ns(), Ordering::SeqCst),
                Some("exit") => std::process::exit(0),
                _ => {}
            }
        }
        std::process::exit(0);
    });

    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    for t in 0..args.threads {
        let args = args.clone();
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("client-{t}"))
            .spawn(move || {
                let mut rt = match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .with_entries(4096)
                    .enable_timer()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("client: runtime: {e}");
                        std::process::exit(2);
                    }
                };
                let report = rt.block_on(thread_main(args, t));
                let _ = tx.send(report);
                // Keep the connections open until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| format!("spawn: {e}"))?;
    }
    drop(tx);

    // Report readiness once every stream has its answer.
    let mut announced = false;
    let mut reports = Vec::new();
    loop {
        if !announced {
            let (o, f) = (OPENED.load(Ordering::SeqCst), FAILED.load(Ordering::SeqCst));
            if o + f >= args.count {
                println!("ready {o} {f}");
                let _ = std::io::stdout().flush();
                announced = true;
            }
        }
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(r) => reports.push(r),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if reports.len() == args.threads {
            break;
        }
    }
    let merged = merge_reports(&reports);
    std::fs::write(&args.out, serde_json::to_vec(&merged).unwrap())
        .map_err(|e| format!("write {}: {e}", args.out.display()))?;
    println!("done");
    let _ = std::io::stdout().flush();
    // Streams stay open until the harness says `exit` (it scrapes the server first).
    loop {
        std::thread::park();
    }
}

/// Sums the per-thread reports (histogram entries concatenated, timelines added).
pub fn merge_reports(reports: &[serde_json::Value]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut hist: Vec<serde_json::Value> = Vec::new();
    let mut timeline: Vec<u64> = Vec::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first = u64::MAX;
    let mut last = 0u64;
    for r in reports {
        let Some(obj) = r.as_object() else { continue };
        for (k, v) in obj {
            match k.as_str() {
                "hist" => hist.extend(v.as_array().cloned().unwrap_or_default()),
                "timeline" => {
                    for (i, n) in v.as_array().into_iter().flatten().enumerate() {
                        if timeline.len() <= i {
                            timeline.resize(i + 1, 0);
                        }
                        timeline[i] += n.as_u64().unwrap_or(0);
                    }
                }
                "statuses" | "errors" => {
                    let m = if k == "statuses" {
                        &mut statuses
                    } else {
                        &mut errors
                    };
                    for (sk, sv) in v.as_object().into_iter().flatten() {
                        *m.entry(sk.clone()).or_default() += sv.as_u64().unwrap_or(0);
                    }
                }
                "first_event_ns" => {
                    let f = v.as_u64().unwrap_or(0);
                    if f > 0 {
                        first = first.min(f);
                    }
                }
                "last_event_ns" => last = last.max(v.as_u64().unwrap_or(0)),
                _ => {
                    if let Some(n) = v.as_u64() {
                        let e = out.entry(k.clone()).or_insert(json!(0u64));
                        *e = json!(e.as_u64().unwrap_or(0) + n);
                    }
                }
            }
        }
    }
    out.insert("hist".into(), json!(hist));
    out.insert("timeline".into(), json!(timeline));
    out.insert("statuses".into(), json!(statuses));
    out.insert("errors".into(), json!(errors));
    out.insert(
        "first_event_ns".into(),
        json!(if first == u64::MAX { 0 } else { first }),
    );
    out.insert("last_event_ns".into(), json!(last));
    serde_json::Value::Object(out)
}

async fn thread_main(args: Arc<ClientArgs>, t: usize) -> serde_json::Value {
    let indices: Vec<usize> = (0..args.count)
        .filter(|i| i % args.threads == t)
        .map(|i| args.first + i)
        .collect();
    let streams = indices
        .iter()
        .map(|&index| {
            let only = args.keyed.then(|| index as u64 % args.srcs);
            RefCell::new(StreamState {
                index,
                track: Track::new(args.srcs, only),
                parser: SseParser::default(),
                chunked: Chunked::default(),
                opened: false,
                failed: false,
                complete: false,
                connects: 0,
                server_closes: 0,
                drops: 0,
                next_drop_ns: 0,
                rng: (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            })
        })
        .collect();
    let ctx = Rc::new(Ctx {
        host: args.target.to_string(),
        permits: Cell::new(args.connect_concurrency.div_ceil(args.threads).max(1)),
        args: args.clone(),
        streams,
        hist: RefCell::new(Histogram::new_with_bounds(1_000, 600_000_000_000, 3).unwrap()),
        timeline: RefCell::new(Vec::with_capacity(6000)),
        statuses: RefCell::new(BTreeMap::new()),
        errors: RefCell::new(BTreeMap::new()),
        first_ns: Cell::new(0),
        last_ns: Cell::new(0),
        complete: Cell::new(0),
        failed: Cell::new(0),
        bytes: Cell::new(0),
        waiters: RefCell::new(Vec::new()),
    });
    match args.proto {
        Proto::Http1 => {
            for slot in 0..ctx.streams.len() {
                monoio::spawn(stream_task(ctx.clone(), slot));
            }
        }
        Proto::Http2 => {
            let slots: Vec<usize> = (0..ctx.streams.len()).collect();
            for group in slots.chunks(args.streams_per_conn.max(1)) {
                monoio::spawn(crate::h2::h2_conn_task(ctx.clone(), group.to_vec()));
            }
        }
    }
    // Supervisor: wait for `finish`, then for every stream to complete (or the deadline), then
    // a short grace period to catch trailing duplicates.
    loop {
        monoio::time::sleep(Duration::from_millis(10)).await;
        let at = FINISH_AT.load(Ordering::SeqCst);
        if at == 0 {
            continue;
        }
        let n = ctx.streams.len();
        if ctx.complete.get() + ctx.failed.get() >= n || mono_ns() >= at {
            break;
        }
    }
    if mono_ns() < FINISH_AT.load(Ordering::SeqCst) {
        monoio::time::sleep(Duration::from_millis(100)).await;
    }
    report(&ctx)
}

fn report(ctx: &Ctx) -> serde_json::Value {
    let per_src = ctx.args.per_src;
    let (mut events, mut unique, mut dups, mut ooo, mut unexpected, mut lost) = (0, 0, 0, 0, 0, 0);
    let (mut opened, mut failed, mut complete, mut connects, mut closes, mut drops) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut comments, mut foreign, mut streams_with_loss) = (0u64, 0u64, 0u64);
    let mut expected = 0;
    for s in &ctx.streams {
        let s = s.borrow();
        events += s.track.events;
        unique += s.track.unique;
        dups += s.track.dups;
        ooo += s.track.out_of_order;
        unexpected += s.track.unexpected;
        expected += s.track.expected(per_src);
        let l = s.track.lost(per_src);
        lost += l;
        streams_with_loss += (l > 0) as u64;
        opened += s.opened as u64;
        failed += s.failed as u64;
        complete += s.complete as u64;
        connects += s.connects as u64;
        closes += s.server_closes as u64;
        drops += s.drops as u64;
        comments += s.parser.counts.comments;
        foreign += s.parser.counts.foreign;
    }
    let hist: Vec<serde_json::Value> = ctx
        .hist
        .borrow()
        .iter_recorded()
        .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
        .collect();
    json!({
        "streams": ctx.streams.len() as u64,
        "opened": opened,
        "failed": failed,
        "complete": complete,
        "events": events,
        "unique": unique,
        "expected": expected,
        "lost": lost,
        "streams_with_loss": streams_with_loss,
        "duplicates": dups,
        "out_of_order": ooo,
        "unexpected": unexpected,
        "foreign": foreign,
        "comments": comments,
        "connects": connects,
        "server_closes": closes,
        "deliberate_drops": drops,
        "bytes": ctx.bytes.get(),
        "first_event_ns": ctx.first_ns.get(),
        "last_event_ns": ctx.last_ns.get(),
        "hist": hist,
        "timeline": *ctx.timeline.borrow(),
        "statuses": ctx.statuses.borrow().iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "errors": *ctx.errors.borrow(),
    })
}

// ---------------------------------------------------------------------------------------------
// One stream over HTTP/1.1
// ---------------------------------------------------------------------------------------------

enum Ended {
    /// The server closed or ended the response.
    Server,
    /// We dropped it on purpose (reconnect scenario).
    Deliberate,
    /// Nothing more to do (finishing and complete).
    Done,
}

async fn stream_task(ctx: Rc<Ctx>, slot: usize) {
    let args = ctx.args.clone();
    let index = ctx.streams[slot].borrow().index;
    let src = args.src_addrs[index % args.src_addrs.len()];
    let path = args.path.replace("{i}", &index.to_string());
    let mut attempts = 0u32;
    let mut buf: Vec<u8> = Vec::with_capacity(args.buf_size);
    loop {
        ctx.acquire().await;
        let conn = open(&ctx, slot, src, &path, buf).await;
        ctx.release();
        let opened = match conn {
            Ok(ok) => ok,
            Err((what, b)) => {
                buf = b;
                ctx.error(&what);
                attempts += 1;
                let opened = ctx.streams[slot].borrow().opened;
                if attempts >= 5 && !opened {
                    let mut s = ctx.streams[slot].borrow_mut();
                    s.failed = true;
                    ctx.failed.set(ctx.failed.get() + 1);
                    FAILED.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if FINISH_AT.load(Ordering::SeqCst) != 0
                    && mono_ns() > FINISH_AT.load(Ordering::SeqCst)
                {
                    return;
                }
                monoio::time::sleep(Duration::from_millis(50 * attempts.min(20) as u64)).await;
                continue;
            }
        };
        attempts = 0;
        let (ended, b) = pump(&ctx, slot, opened).await;
        buf = b;
        match ended {
            Ended::Done => return,
            Ended::Deliberate => {}
            Ended::Server => {
                let complete = {
                    let mut s = ctx.streams[slot].borrow_mut();
                    s.server_closes += 1;
                    s.complete
                };
                if complete && FINISH_AT.load(Ordering::SeqCst) != 0 {
                    return;
                }
                // As an EventSource would: reconnect (after a short pause) with the last id.
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

struct Opened {
    stream: TcpStream,
    /// Holds any body bytes read with the head, from `body_start`.
    buf: Vec<u8>,
    body_start: usize,
    chunked: bool,
}

/// Connects from `src`, sends the request and reads the response head. On success returns the
/// stream, the buffer holding any body bytes after the head, and where they start.
async fn open(
    ctx: &Ctx,
    slot: usize,
    src: Ipv4Addr,
    path: &str,
    mut buf: Vec<u8>,
) -> Result<Opened, (String, Vec<u8>)> {
    buf.clear();
    let std_stream = match crate::net::start_connect(src, ctx.args.target) {
        Ok(s) => s,
        Err(e) => return Err((format!("connect: {}", e.kind()), buf)),
    };
    let stream = match TcpStream::from_std(std_stream) {
        Ok(s) => s,
        Err(e) => return Err((format!("register: {}", e.kind()), buf)),
    };
    if let Err(e) = stream.writable(false).await {
        return Err((format!("connect: {}", e.kind()), buf));
    }
    if let Some(e) = so_error(&stream) {
        return Err((format!("connect: {}", e.kind()), buf));
    }
    let mut stream = stream;
    let request = {
        let mut s = ctx.streams[slot].borrow_mut();
        s.connects += 1;
        let mut r = Vec::with_capacity(160 + path.len());
        r.extend_from_slice(b"GET ");
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(ctx.host.as_bytes());
        r.extend_from_slice(b"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n");
        if !s.parser.last_id().is_empty() {
            r.extend_from_slice(b"Last-Event-ID: ");
            r.extend_from_slice(s.parser.last_id());
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let (res, _) = stream.write_all(request).await;
    if let Err(e) = res {
        return Err((format!("write: {}", e.kind()), buf));
    }
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(4096);
        }
        let len = buf.len();
        let (res, b) = stream.read(buf.slice_mut_from(len)).await;
        buf = b.into_inner();
        match res {
            Ok(0) => return Err(("closed before response head".into(), buf)),
            Err(e) => return Err((format!("read head: {}", e.kind()), buf)),
            Ok(_) => {}
        }
        match parse_response_head(&buf) {
            Ok(None) => continue,
            Err(e) => return Err((e.to_string(), buf)),
            Ok(Some(head)) => {
                *ctx.statuses.borrow_mut().entry(head.status).or_default() += 1;
                if head.status != 200 {
                    return Err((format!("status {}", head.status), buf));
                }
                on_opened(ctx, slot);
                return Ok(Opened {
                    stream,
                    buf,
                    body_start: head.len,
                    chunked: head.chunked,
                });
            }
        }
    }
}

/// A response 200 arrived on `slot`'s stream: a new body starts.
pub(crate) fn on_opened(ctx: &Ctx, slot: usize) {
    let mut s = ctx.streams[slot].borrow_mut();
    s.chunked = Chunked::default();
    s.parser.reset_connection();
    if !s.opened {
        s.opened = true;
        OPENED.fetch_add(1, Ordering::SeqCst);
        if s.track.reached_end(ctx.args.per_src) {
            s.complete = true;
            ctx.complete.set(ctx.complete.get() + 1);
        }
    }
    if ctx.args.reconnect_ms > 0 {
        let span = ctx.args.reconnect_ms * 1_000_000;
        let r = xorshift(&mut s.rng) % span.max(1);
        s.next_drop_ns = mono_ns() + span / 2 + r;
    }
}

/// The stream gave up (never answered 200 after several attempts).
pub(crate) fn mark_failed(ctx: &Ctx, slot: usize) {
    let mut s = ctx.streams[slot].borrow_mut();
    if !s.failed {
        s.failed = true;
        ctx.failed.set(ctx.failed.get() + 1);
        FAILED.fetch_add(1, Ordering::SeqCst);
    }
}

pub(crate) fn finishing() -> u64 {
    FINISH_AT.load(Ordering::SeqCst)
}

pub(crate) fn so_error(stream: &TcpStream) -> Option<std::io::Error> {
    use std::os::fd::AsRawFd;
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket and an int-sized out value.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Some(std::io::Error::last_os_error());
    }
    (err != 0).then(|| std::io::Error::from_raw_os_error(err))
}

use monoio::buf::{IoBufMut, SliceMut};

trait SliceFrom {
    fn slice_mut_from(self, from: usize) -> SliceMut<Vec<u8>>;
}

/// `buf`'s spare capacity from `from` on, for a read.
pub(crate) fn slice_from(buf: Vec<u8>, from: usize) -> SliceMut<Vec<u8>> {
    buf.slice_mut_from(from)
}

impl SliceFrom for Vec<u8> {
    fn slice_mut_from(self, from: usize) -> SliceMut<Vec<u8>> {
        let cap = self.capacity();
        IoBufMut::slice_mut(self, from..cap)
    }
}

/// Reads the body until the connection ends (or we drop it), feeding the decoders.
async fn pump(ctx: &Ctx, slot: usize, opened: Opened) -> (Ended, Vec<u8>) {
    let Opened {
        mut stream,
        mut buf,
        body_start,
        chunked,
    } = opened;
    let mut pending = Some(body_start);
    loop {
        let from = match pending.take() {
            Some(from) => from,
            None => {
                buf.clear();
                let (res, b) = stream.read(buf).await;
                buf = b;
                match res {
                    Ok(0) | Err(_) => return (Ended::Server, buf),
                    Ok(_) => 0,
                }
            }
        };
        if from >= buf.len() {
            continue;
        }
        let now = mono_ns();
        match on_bytes(ctx, slot, &buf[from..], chunked, now) {
            Flow::Continue => {}
            Flow::ServerEnded => return (Ended::Server, buf),
            Flow::Drop => return (Ended::Deliberate, buf),
            Flow::Done => return (Ended::Done, buf),
        }
    }
}

pub(crate) enum Flow {
    Continue,
    ServerEnded,
    Drop,
    Done,
}

pub(crate) fn on_bytes(ctx: &Ctx, slot: usize, bytes: &[u8], chunked: bool, now: u64) -> Flow {
    ctx.bytes.set(ctx.bytes.get() + bytes.len() as u64);
    let per_src = ctx.args.per_src;
    let mut s = ctx.streams[slot].borrow_mut();
    let s = &mut *s;
    let was_complete = s.complete;
    let StreamState {
        index,
        track,
        parser,
        chunked: decoder,
        ..
    } = s;
    let index = *index;
    let mut hist = ctx.hist.borrow_mut();
    let mut timeline = ctx.timeline.borrow_mut();
    let (drop_one, dup_one) = (
        ctx.args.drop_one && index == 0,
        ctx.args.dup_one && index == 0,
    );
    let mut new_events = 0u64;
    let mut on_event = |e: EventInfo, _id: &[u8]| {
        if !e.parsed {
            return;
        }
        if (drop_one || dup_one) && track.events == 2 {
            if drop_one {
                // Pretend this event never arrived (but count it as seen so this fires once).
                track.events += 1;
                return;
            }
            track.on_event(e.src, e.seq, per_src);
        }
        track.on_event(e.src, e.seq, per_src);
        new_events += 1;
        let _ = hist.record(now.saturating_sub(e.ts_ns).max(1_000));
    };
    let mut ended = false;
    if chunked {
        match decoder.feed(bytes, |d| parser.feed(d, &mut on_event)) {
            Ok(true) => ended = true,
            Ok(false) => {}
            Err(e) => {
                ctx.error(e);
                return Flow::ServerEnded;
            }
        }
    } else {
        parser.feed(bytes, &mut on_event);
    }
    if new_events > 0 {
        if ctx.first_ns.get() == 0 {
            ctx.first_ns.set(now);
        }
        ctx.last_ns.set(now);
        let b = (now.saturating_sub(ctx.args.t0_ns) / BUCKET_NS) as usize;
        if timeline.len() <= b {
            timeline.resize(b + 1, 0);
        }
        timeline[b] += new_events;
    }
    if !was_complete && track.reached_end(per_src) {
        s.complete = true;
        ctx.complete.set(ctx.complete.get() + 1);
    }
    if ended {
        return Flow::ServerEnded;
    }
    let finishing = FINISH_AT.load(Ordering::Relaxed);
    if s.complete && finishing != 0 && now >= finishing {
        return Flow::Done;
    }
    if ctx.args.reconnect_ms > 0 && now >= s.next_drop_ns && !s.complete {
        s.drops += 1;
        return Flow::Drop;
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::Track;

    #[test]
    fn track_counts_gaps_dups_and_order() {
        let mut t = Track::new(2, None);
        for seq in [0, 1, 2] {
            t.on_event(0, seq, 5);
        }
        t.on_event(1, 0, 5);
        t.on_event(1, 2, 5); // gap at 1
        t.on_event(1, 1, 5); // fills it: out of order
        t.on_event(0, 2, 5); // duplicate
        t.on_event(0, 4, 5); // gap at 3, never filled
        t.on_event(0, 9, 5); // beyond what was produced
        t.on_event(7, 0, 5); // no such sequence
        assert_eq!(t.unique, 7);
        assert_eq!(t.dups, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.unexpected, 2);
        assert_eq!(t.lost(5), 10 - 7);
        let mut k = Track::new(10, Some(3));
        k.on_event(3, 0, 2);
        k.on_event(4, 0, 2);
        assert_eq!((k.unique, k.unexpected, k.lost(2)), (1, 1, 1));
    }
}
