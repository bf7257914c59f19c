//! Fast readers beside a stopped one under a burst (issue 9): several streams read as fast as
//! they can while one client has stopped reading (a 4 KiB receive buffer and a small MSS, so
//! the kernels hold little for it); a burst of records many times a stream's budget is produced
//! at once. The fast readers get every record, in order, within a generous deadline; the stopped
//! one either falls out of the live group (demoted, `sse_kafka_streams_demoted_total`) and,
//! when it reads again, catches up from the cache without a gap or a duplicate, or — with a
//! stall timeout — is ended (`sse_kafka_streams_ended_total{reason="budget"}`, the stall cut's
//! reason) and resumes by the id of its last whole event.
//!
//! tests/slow_client.rs covers a stopped reader beside readers that read between rounds of
//! records (each round under the budget); here the whole burst is pending at once.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

/// Records in the burst: ~4 MiB of events, four times the default stream budget (1 MiB).
const BURST: usize = 4000;
const FAST: usize = 6;
const VALUE_LEN: usize = 1024;
/// Generous: the fast readers usually take well under a second.
const DEADLINE: Duration = Duration::from_secs(60);

fn value(i: usize) -> String {
    let head = format!("b{i:05}-");
    format!("{head}{}", "z".repeat(VALUE_LEN - head.len()))
}

struct Setup {
    // Field order is drop order: clients, then the server, then the broker.
    fast: Vec<Sse>,
    stopped: RawSse,
    produced: Vec<(String, Delivered)>,
    metrics_port: u16,
    server: Server,
    broker: Broker,
}

/// A server on a one-partition topic, `FAST` curl readers and one stopped raw client, all at
/// the head with the first record read; then the burst, produced in one go.
fn burst(extra: &[&str]) -> Setup {
    let broker = Broker::start();
    broker.create_topic("burst", 1);
    let producer = Producer::batching(&broker.bootstrap());
    let metrics_port = free_port();
    let mut args = vec!["--heartbeat", "0"];
    args.extend_from_slice(extra);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .prometheus(metrics_port)
        .start(&args);
    let url = server.url("/burst");
    let mut produced = Vec::new();
    let first = value(0);
    produced.push((
        first.clone(),
        producer.send_batch("burst", &[Rec::value(&first).partition(0)])[0],
    ));
    let fast: Vec<Sse> = (0..FAST).map(|_| Sse::open(&url)).collect();
    let mut stopped = RawSse::open(&server.addr(), "/burst");
    assert!(stopped.read_until(WAIT, |s| s.events.len() == 1));
    assert_eq!(stopped.status, Some(200));
    assert_eq!(stopped.events[0].data, first);
    for r in &fast {
        assert_eq!(r.expect(1, WAIT)[0].data, first);
    }
    for start in (1..=BURST).step_by(500) {
        let end = (start + 500).min(BURST + 1);
        let recs: Vec<Rec> = (start..end)
            .map(|i| Rec::value(value(i)).partition(0))
            .collect();
        let d = producer.send_batch("burst", &recs);
        produced.extend((start..end).map(value).zip(d));
    }
    Setup {
        fast,
        stopped,
        produced,
        metrics_port,
        server,
        broker,
    }
}

/// Every fast reader gets the whole burst, exactly once and in order, and is still open.
fn fast_readers_get_everything(s: &Setup) {
    let want = s.produced.len() - 1;
    for (j, r) in s.fast.iter().enumerate() {
        let got = r.collect(want, DEADLINE);
        assert_eq!(
            got.len(),
            want,
            "fast reader {j} got {} of {want} (eof {}; curl: {})",
            got.len(),
            r.is_eof(),
            r.curl_errors()
        );
        assert!(!r.is_eof(), "fast reader {j} was ended");
        assert_exactly_once(&r.received(), &s.produced);
    }
}

/// A raw HTTP/1.1 SSE client whose socket keeps little in the kernel (a 4 KiB receive buffer
/// and a 536-byte MSS): it reads only when told to, decoding the chunked framing and the events
/// as they arrive.
struct RawSse {
    stream: TcpStream,
    head: Vec<u8>,
    status: Option<u16>,
    chunk: Chunked,
    parser: SseParser,
    events: Vec<Event>,
    /// The last chunk arrived (the response ended properly).
    complete: bool,
    /// The server closed the connection.
    closed: bool,
}

/// Incremental chunked-transfer decoding.
enum Chunked {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// Bytes of chunk data still to come.
    Data(usize),
    /// The CRLF after a chunk's data (bytes of it still to come).
    DataEnd(usize),
    /// After the last chunk.
    Done,
}

impl RawSse {
    fn open(addr: &str, path: &str) -> RawSse {
        let mut stream = tcp_connect_with(addr, Some(Ipv4Addr::LOCALHOST), Some(4096), Some(536));
        stream
            .write_all(&sse_request(path, addr))
            .expect("send the request");
        RawSse {
            stream,
            head: Vec::new(),
            status: None,
            chunk: Chunked::Size(Vec::new()),
            parser: SseParser::default(),
            events: Vec::new(),
            complete: false,
            closed: false,
        }
    }

    /// Reads until `pred` holds, the connection ends or `timeout` passes; returns `pred`.
    fn read_until(&mut self, timeout: Duration, pred: impl Fn(&RawSse) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if pred(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.closed || left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).ok();
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    let bytes = buf[..n].to_vec();
                    self.feed(&bytes);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => self.closed = true,
            }
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        if self.status.is_none() {
            self.head.extend_from_slice(bytes);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.head[..end]).into_owned();
            self.status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
            assert!(
                head.to_ascii_lowercase()
                    .contains("transfer-encoding: chunked"),
                "an HTTP/1.1 SSE response is chunked:\n{head}"
            );
            let rest = self.head.split_off(end + 4);
            self.feed_body(&rest);
            return;
        }
        while !bytes.is_empty() {
            bytes = self.feed_body_step(bytes);
        }
    }

    fn feed_body(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            bytes = self.feed_body_step(bytes);
        }
    }

    /// Consumes some of `bytes`; returns the rest.
    fn feed_body_step<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        match &mut self.chunk {
            Chunked::Size(line) => {
                let Some(i) = bytes.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(bytes);
                    return &[];
                };
                line.extend_from_slice(&bytes[..i]);
                let text = String::from_utf8_lossy(line).trim().to_string();
                let size = usize::from_str_radix(text.split(';').next().unwrap_or(""), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {text:?}"));
                self.chunk = if size == 0 {
                    self.complete = true;
                    Chunked::Done
                } else {
                    Chunked::Data(size)
                };
                &bytes[i + 1..]
            }
            Chunked::Data(left) => {
                let n = (*left).min(bytes.len());
                let mut items = Vec::new();
                self.parser.feed(&bytes[..n], &mut items);
                self.events
                    .extend(items.into_iter().filter_map(|i| match i {
                        SseItem::Event(e) => Some(e),
                        SseItem::Comment(_) => None,
                    }));
                *left -= n;
                if *left == 0 {
                    self.chunk = Chunked::DataEnd(2);
                }
                &bytes[n..]
            }
            Chunked::DataEnd(left) => {
                let n = (*left).min(bytes.len());
                assert!(
                    bytes[..n].iter().all(|&b| b == b'\r' || b == b'\n'),
                    "chunk data not followed by CRLF"
                );
                *left -= n;
                if *left == 0 {
                    self.chunk = Chunked::Size(Vec::new());
                }
                &bytes[n..]
            }
            Chunked::Done => panic!("bytes after the last chunk"),
        }
    }
}

#[test]
fn a_stopped_reader_is_demoted_and_catches_up_while_the_fast_ones_get_the_burst() {
    // No stall timeout: the stopped stream may only leave the live group, never be ended.
    let mut s = burst(&["--stall-timeout", "0"]);
    fast_readers_get_everything(&s);

    let (ok, m) = wait_metrics(s.metrics_port, WAIT, |m| {
        m.value("sse_kafka_streams_demoted_total", &[]) >= 1.0
    });
    assert!(
        ok,
        "the stopped stream, a burst behind, did not leave the live group:\n{}",
        m.raw
    );
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        (FAST + 1) as f64,
        "nobody was ended:\n{}",
        m.raw
    );

    // It reads again: every record, from the cache, in order, no gap, no duplicate.
    let total = s.produced.len();
    let caught_up = s.stopped.read_until(DEADLINE, |r| r.events.len() >= total);
    assert!(
        caught_up,
        "the stopped client, reading again, got {} of {total} events (closed {})\n{}",
        s.stopped.events.len(),
        s.stopped.closed,
        s.server.logs()
    );
    assert!(
        !s.stopped.complete && !s.stopped.closed,
        "its stream goes on"
    );
    assert_exactly_once(&s.stopped.events, &s.produced);

    // And it is live again: a new record reaches it and every fast reader.
    let producer = Producer::new(&s.broker.bootstrap());
    let after = value(BURST + 1);
    s.produced
        .push((after.clone(), producer.send_value("burst", Some(0), &after)));
    assert!(s.stopped.read_until(WAIT, |r| r.events.len() > total));
    assert_exactly_once(&s.stopped.events, &s.produced);
    for r in &s.fast {
        assert_eq!(r.expect(1, WAIT)[0].data, after);
    }
}

#[test]
fn a_stopped_reader_is_ended_by_the_stall_timeout_and_resumes_by_its_last_id() {
    let mut s = burst(&["--stall-timeout", "2"]);
    fast_readers_get_everything(&s);

    // It takes nothing for 2 s: ended while still stopped, counted under "budget" (the stall
    // cut's reason), no longer open; the fast readers are not.
    let (ok, m) = wait_metrics(s.metrics_port, WAIT, |m| {
        m.get("sse_kafka_streams_ended_total", &[("reason", "budget")]) == Some(1.0)
    });
    assert!(ok, "the stalled stream was not ended:\n{}", m.raw);
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        FAST as f64,
        "{}",
        m.raw
    );
    for (j, r) in s.fast.iter().enumerate() {
        assert!(!r.is_eof(), "fast reader {j} was ended");
    }

    // Reading again it finds what the kernels held, then the end, without the last chunk; what
    // it got is a prefix, exactly once.
    let total = s.produced.len();
    assert!(
        s.stopped.read_until(WAIT, |r| r.closed),
        "the stalled connection ends"
    );
    assert!(
        !s.stopped.complete,
        "a cut stream does not end with the last chunk"
    );
    let events = std::mem::take(&mut s.stopped.events);
    assert!(
        !events.is_empty() && events.len() < total,
        "the stalled client got {} of {total} events",
        events.len()
    );
    assert_exactly_once(&events, &s.produced[..events.len()]);

    // It resumes by its last whole event's id and gets the rest, no gap, no duplicate.
    let last_id = events.last().unwrap().id.clone().expect("events carry ids");
    let resumed = Sse::resume(&s.server.url("/burst"), &last_id);
    let rest = resumed.expect(total - events.len(), DEADLINE);
    resumed.expect_no_more(Duration::from_millis(300));
    let union: Vec<Event> = events.into_iter().chain(rest).collect();
    assert_exactly_once(&union, &s.produced);
    s.fast.clear();
}
