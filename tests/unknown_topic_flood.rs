//! A flood of requests for topics that do not exist (issue 9): an anonymous client asking for
//! thousands of made-up names must not grow the server's memory nor make it hammer the brokers.
//!
//! The server (src/fanout/view.rs `begin_open`, driver.rs `resolve_view`, hub.rs) looks a new
//! name up with one Metadata request per second (`METADATA_RETRY`) until the metadata timeout
//! `T`, answering 404 (Kafka does not know it) or 503 (no answer) at the end; at most
//! `MAX_RESOLVING` = 64 look-ups are in flight per worker and any further new name is answered
//! 503 at once; a name Kafka did not know is remembered for `T` (at least 1 s, the negative
//! cache), and requests for it meanwhile get 404 at once. Every request that shares a name in
//! flight shares its look-up.
//!
//! From that, for `W` workers and a look-up of at most `L = T / 1 s + 1` Metadata requests
//! holding its slot at least `T - 1 s`:
//! - Metadata requests ≤ `L` × look-ups, and look-ups = requests − refused
//!   (`sse_kafka_metadata_refused_total` counts the cap's 503s and the negative cache's 404s);
//! - look-ups ≤ `W × 64 × (1 + floor(E / (T - 1 s)))`, `E` the time during which requests were
//!   still arriving: each slot is held at least `T - 1 s` by each look-up.
//!
//! Metadata requests are counted by the harness relay in front of tansu (tansu advertises the
//! relay, so the server's every Kafka connection, bootstrap or not, goes through it; the relay
//! parses each request's header and counts by API key, 3 = Metadata).

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const METADATA: i16 = 3;
/// `hub::MAX_RESOLVING`: topic look-ups in flight per worker.
const MAX_RESOLVING: usize = 64;
const WORKERS: usize = 2;
/// The metadata timeout, the server's default.
const T: Duration = Duration::from_secs(5);
/// Metadata requests one look-up makes at most: one at 0 s, then one after each 1 s pause
/// that ends before `T - 1 s` has passed: 5 for `T` = 5 s, and a 6th (cut by the deadline) when
/// the runtime's timer ends a pause a little early (measured: 642 requests for 128 look-ups).
const PER_LOOKUP: usize = 6;

/// The server's resident set (VmRSS of /proc/PID/status), in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

fn metadata_requests(relay: &Relay) -> usize {
    relay
        .traffic("sse-kafka")
        .requests
        .get(&METADATA)
        .copied()
        .unwrap_or(0)
}

/// What a flood saw.
#[derive(Debug, Default)]
struct Flood {
    /// Answers by status.
    statuses: std::collections::BTreeMap<u16, usize>,
    /// Requests without a whole answer within `T` + `WAIT` (a hang).
    hung: usize,
    /// From the first request sent to the last one sent.
    sending: Duration,
    /// From the first request sent to the last answer.
    total: Duration,
}

/// Sends `n` requests for `name(i)` from `clients` threads, each one request at a time on a
/// new connection, and reads every answer to its end.
fn flood(
    addr: &str,
    n: usize,
    clients: usize,
    name: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Flood {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Flood::default()));
    let last_sent = Arc::new(Mutex::new(Duration::ZERO));
    let name = Arc::new(name);
    let t0 = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (next, out, last_sent, name) =
                (next.clone(), out.clone(), last_sent.clone(), name.clone());
            let addr = addr.to_string();
            thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let req = sse_request(&format!("/{}", name(i)), &addr);
                let mut c = HttpConn::connect(&addr);
                c.send(&req);
                {
                    let mut l = last_sent.lock().unwrap();
                    *l = (*l).max(t0.elapsed());
                }
                let r = c.read_response(T + WAIT);
                let mut o = out.lock().unwrap();
                match r {
                    Some(r) if r.complete => *o.statuses.entry(r.status).or_default() += 1,
                    _ => o.hung += 1,
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let mut f = std::mem::take(&mut *out.lock().unwrap());
    f.sending = *last_sent.lock().unwrap();
    f.total = t0.elapsed();
    f
}

/// A random-looking, unique topic name (no two requests share one).
fn random_name(run: &str, i: usize) -> String {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    format!("{run}-{i}-{x:016x}")
}

fn refused(metrics_port: u16) -> usize {
    scrape(metrics_port).value("sse_kafka_metadata_refused_total", &[]) as usize
}

fn check_answers(f: &Flood, n: usize) {
    assert_eq!(f.hung, 0, "requests without a whole answer: {f:?}");
    let answered: usize = f.statuses.values().sum();
    assert_eq!(answered, n, "{f:?}");
    assert!(
        f.statuses.keys().all(|s| *s == 404 || *s == 503),
        "unknown topics are answered 404 or 503 only: {f:?}"
    );
}

#[test]
fn random_unknown_topics_leave_memory_flat_and_cost_bounded_metadata() {
    let (broker, relay) = broker_behind_relay();
    broker.create_topic("exists", 1);
    let metrics_port = free_port();
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .prometheus(metrics_port)
        .start(&["--workers", &WORKERS.to_string(), "--heartbeat", "0"]);
    let addr = server.addr();
    // More clients than look-up slots (W × 64), so the cap is reached.
    let clients = 3 * WORKERS * MAX_RESOLVING / 2;

    // Warm-up in the same shape, so that the allocator's arenas and every worker's buffers
    // have grown to what a flood needs before the first measure.
    let warm = flood(&addr, 400, clients, |i| random_name("warm", i));
    check_answers(&warm, 400);

    let rss0 = rss(server.pid());
    let meta0 = metadata_requests(&relay);
    let refused0 = refused(metrics_port);
    const N: usize = 2000;
    let f = flood(&addr, N, clients, |i| random_name("flood", i));
    let rss1 = rss(server.pid());
    let meta = metadata_requests(&relay) - meta0;
    let refused = refused(metrics_port) - refused0;
    eprintln!(
        "flood: {f:?}; Metadata requests {meta}; refused {refused}; RSS {} -> {} KiB",
        rss0 / 1024,
        rss1 / 1024
    );
    check_answers(&f, N);
    assert!(
        f.statuses.get(&404).copied().unwrap_or(0) > 0,
        "some names were looked up (404): {f:?}"
    );

    // Every look-up is a request that was not refused; each costs at most PER_LOOKUP.
    let lookups = N - refused;
    assert!(
        meta <= PER_LOOKUP * lookups,
        "{meta} Metadata requests for {lookups} look-ups (at most {PER_LOOKUP} each)"
    );
    // Look-ups are capped per worker; each holds its slot at least T - 1 s.
    let hold = T - Duration::from_secs(1);
    let rounds = 1 + (f.sending.as_secs_f64() / hold.as_secs_f64()).floor() as usize;
    let cap = WORKERS * MAX_RESOLVING * rounds;
    assert!(
        lookups <= cap,
        "{lookups} look-ups while requests arrived for {:?}: the cap allows {cap}",
        f.sending
    );
    assert!(
        meta <= PER_LOOKUP * cap,
        "{meta} Metadata requests: more than {PER_LOOKUP} × {cap}"
    );
    assert!(
        meta < N / 2,
        "{meta} Metadata requests for {N} requests (sent over {:?})",
        f.sending
    );

    // Memory: nothing per name is kept but the negative cache's entry (a name and a tick),
    // at most a few hundred bytes each; 2,000 names are well under 1 MiB. 8 MiB is for the
    // allocator's noise.
    let growth = rss1.saturating_sub(rss0);
    assert!(
        growth < 8 << 20,
        "RSS grew by {} KiB over {N} requests for unknown topics",
        growth / 1024
    );

    // The server is fine otherwise.
    let producer = Producer::new(&broker.bootstrap());
    producer.send_value("exists", Some(0), "still here");
    let ok = Sse::open(&server.url("/exists"));
    assert_eq!(ok.status(WAIT), Some(200));
    assert_eq!(ok.expect(1, WAIT)[0].data, "still here");
}

/// 2,000 requests over a handful of unknown names: one look-up per name is shared by every
/// request in flight for it, and afterwards the negative cache answers 404 without asking.
#[test]
fn repeated_unknown_names_share_their_lookup() {
    let (broker, relay) = broker_behind_relay();
    let metrics_port = free_port();
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .prometheus(metrics_port)
        .start(&["--workers", &WORKERS.to_string(), "--heartbeat", "0"]);
    const NAMES: usize = 8;
    const N: usize = 2000;
    let meta0 = metadata_requests(&relay);
    let f = flood(&server.addr(), N, 64, |i| format!("nope-{}", i % NAMES));
    let meta = metadata_requests(&relay) - meta0;
    eprintln!("flood: {f:?}; Metadata requests {meta}");
    check_answers(&f, N);
    assert_eq!(
        f.statuses.get(&404).copied().unwrap_or(0),
        N,
        "every request for a name Kafka does not know is 404: {f:?}"
    );
    // Per worker and name: one look-up per T - 1 s (held while it runs, then remembered for T).
    let hold = T - Duration::from_secs(1);
    let rounds = 1 + (f.sending.as_secs_f64() / hold.as_secs_f64()).floor() as usize;
    let bound = WORKERS * NAMES * PER_LOOKUP * rounds;
    assert!(
        meta <= bound,
        "{meta} Metadata requests for {NAMES} names over {:?}: at most {bound}",
        f.sending
    );
}
