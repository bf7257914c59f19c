//! Drain on SIGTERM (issue 12, point 1): readiness false at once, new streams shed with
//! `retry:` during the grace, then every open stream gets a `retry:` line after the events it
//! was sent and a clean end (HTTP/1.1 terminating chunk, close for a close-delimited body,
//! HTTP/2 END_STREAM), spread over the drain timeout, and the process exits 0. A stream that
//! cannot take its last bytes does not hold the process past the timeout.

mod common;
use common::*;
use std::thread;
use std::time::{Duration, Instant};

/// The `retry:` delay at the end of `body`, after exactly `events` events; panics otherwise.
fn trailing_retry(body: &[u8], events: usize) -> u64 {
    let text = String::from_utf8_lossy(body).into_owned();
    let (parsed, _) = parse_sse(body);
    assert_eq!(
        parsed.len(),
        events,
        "every event sent before the drain: {text:?}"
    );
    let last = text
        .rfind("retry: ")
        .unwrap_or_else(|| panic!("no retry: {text:?}"));
    let value = text[last + 7..]
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("retry: is the last line: {text:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("retry value: {text:?}"))
}

fn raw_stream(addr: &str, close: bool) -> HttpConn {
    let mut c = HttpConn::connect(addr);
    let connection = if close { "Connection: close\r\n" } else { "" };
    c.send(
        format!("GET /t HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{connection}\r\n")
            .as_bytes(),
    );
    let head = c.read_head(WAIT).expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("transfer-encoding").is_some(),
        !close,
        "{}",
        head.head
    );
    c
}

#[test]
fn every_stream_gets_retry_and_a_clean_end_then_exit_0() {
    let (broker, producer) = Broker::with_topic("t", 2);
    for (p, v) in [(0, "a"), (1, "b"), (0, "c")] {
        producer.send_value("t", Some(p), v);
    }
    let health = free_port();
    let mut server = Server::direct(
        &broker.bootstrap(),
        &[
            "--heartbeat",
            "0",
            "--drain-grace",
            "1.5",
            "--drain-timeout",
            "6",
            "--shed-retry-ms",
            "1000",
            "--health-listen",
            &format!("127.0.0.1:{health}"),
        ],
    );
    let addr = server.addr();
    let three = |b: &[u8]| parse_sse(b).0.len() == 3;
    let chunked =
        |b: &[u8]| decode_chunks(b).is_some_and(|(body, _, _)| parse_sse(&body).0.len() == 3);
    let mut h1: Vec<(HttpConn, bool)> = Vec::new();
    for i in 0..8 {
        let close = i >= 6;
        let mut c = raw_stream(&addr, close);
        let got = if close {
            c.read_until(WAIT, three)
        } else {
            c.read_until(WAIT, chunked)
        };
        assert!(
            got,
            "stream {i}: {:?}",
            String::from_utf8_lossy(c.buffered())
        );
        h1.push((c, close));
    }
    let mut h2c = common::h2::Client::connect(&addr);
    for id in [1, 3] {
        h2c.request(id, "GET", "/t");
    }
    assert!(h2c.run_until(WAIT, |c| [1, 3].iter().all(|id| c.events(*id).len() == 3)));

    // Each client reads on its own thread and notes when its stream ended.
    let mut readers = Vec::new();
    for (i, (mut c, close)) in h1.into_iter().enumerate() {
        readers.push(thread::spawn(move || {
            let closed = c.closed_within(WAIT + WAIT);
            let at = Instant::now();
            let body = if close {
                c.buffered().to_vec()
            } else {
                let (body, used, done) =
                    decode_chunks(c.buffered()).unwrap_or_else(|| panic!("stream {i}: bad chunks"));
                assert!(done, "stream {i}: no terminating chunk");
                assert_eq!(
                    used,
                    c.buffered().len(),
                    "stream {i}: bytes after the last chunk"
                );
                body
            };
            assert!(closed, "stream {i}: connection not closed");
            (vec![trailing_retry(&body, 3)], at)
        }));
    }
    readers.push(thread::spawn(move || {
        let ended = h2c.run_until(WAIT + WAIT, |c| [1, 3].iter().all(|id| c.stream(*id).ended));
        assert!(ended, "HTTP/2 streams did not end: {:?}", h2c.streams);
        let at = Instant::now();
        let mut retries = Vec::new();
        for id in [1, 3] {
            let s = h2c.stream(id);
            assert_eq!(
                s.reset, None,
                "stream {id} ended with END_STREAM, not a reset"
            );
            retries.push(trailing_retry(&s.data, 3));
        }
        (retries, at)
    }));

    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    // Readiness turns false at once; a new stream is shed while the listeners still accept.
    assert!(wait_until(WAIT, || http_get(health, "/health/ready")
        .is_some_and(|r| r.0 == 503)));
    if let Ok(stream) = std::net::TcpStream::connect(&addr) {
        let mut c = HttpConn::from_stream(stream);
        c.send(&sse_request("/t", &addr));
        if let Some(r) = c.read_response(WAIT) {
            assert_eq!(r.status, 200, "{}", r.head);
            assert!(
                r.body.starts_with(b"retry: ") && r.header("content-length").is_some(),
                "a stream opened while draining is shed: {} {:?}",
                r.head,
                String::from_utf8_lossy(&r.body)
            );
        }
    }

    let mut retries = Vec::new();
    let mut ends = Vec::new();
    for r in readers {
        let (values, at) = r.join().expect("reader");
        retries.extend(values);
        ends.push(at);
    }
    let status = server.wait_exit(WAIT).expect("exits after the drain");
    assert!(status.success(), "exit status {status}");
    assert!(
        retries.iter().all(|ms| (500..=1500).contains(ms)),
        "jittered around 1000 ms: {retries:?}"
    );
    let distinct: std::collections::BTreeSet<_> = retries.iter().collect();
    assert!(distinct.len() > 1, "retry delays are jittered: {retries:?}");
    let first = ends.iter().min().unwrap().duration_since(signalled);
    let last = ends.iter().max().unwrap().duration_since(signalled);
    eprintln!("streams ended between {first:?} and {last:?} after SIGTERM");
    assert!(
        last > first,
        "the ends are spread over the drain, not all at once"
    );
}

/// A stream whose client stopped taking bytes (its HTTP/2 window stays closed, so neither the
/// pending events nor the `retry:` line can leave) does not keep the process past the timeout.
#[test]
fn exits_0_at_the_timeout_with_a_stuck_stream() {
    let (broker, producer) = Broker::with_topic("t", 1);
    let big = "x".repeat(4000);
    let mut server = Server::direct(
        &broker.bootstrap(),
        &[
            "--heartbeat",
            "0",
            "--stall-timeout",
            "0",
            "--drain-grace",
            "0.2",
            "--drain-timeout",
            "2",
        ],
    );
    let mut c = common::h2::Client::connect(&server.addr());
    c.hold(1);
    c.request(1, "GET", "/t");
    assert!(c.run_until(WAIT, |c| c.stream(1).headers_seen));
    for _ in 0..40 {
        producer.send_value("t", Some(0), &big);
    }
    // 160 kB against a 64 KiB stream window: the stream stays behind.
    assert!(c.run_until(WAIT, |c| c.stream(1).data.len() >= 60_000));
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(WAIT).expect("exits at the drain timeout");
    assert!(status.success(), "exit status {status}");
    c.run_until(Duration::from_millis(200), |_| false);
    assert!(
        !c.stream(1).ended,
        "a stuck stream cannot have ended cleanly"
    );
}
