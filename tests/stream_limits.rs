//! Stream admission caps: `--max-streams N` (whole process) and `--max-streams-per-ip N`. A
//! stream over a cap is shed: a client that accepts `text/event-stream` gets `200` with a
//! jittered `retry:` line and an immediate end (an EventSource comes back by itself), any other
//! gets 503 with `Retry-After`; the connection is closed. A stream that ends gives its place
//! back. Non-stream requests are not counted. Sheds are counted by reason.

mod common;
use common::*;
use std::net::Ipv4Addr;

/// Base of the shed delay in these tests (`--shed-retry-ms`).
const SHED_MS: u64 = 1000;

/// An SSE request on its own connection from `from` (None: 127.0.0.1), returning the connection
/// and the response head's status: 200 for a stream, 0 for a shed answer (200 with a length).
fn open(server: &Server, from: Option<Ipv4Addr>, path: &str) -> (HttpConn, u16) {
    let mut c = HttpConn::from_stream(tcp_connect(&server.addr(), from, None));
    c.send(&sse_request(path, &server.addr()));
    let head = c
        .read_head(WAIT)
        .unwrap_or_else(|| panic!("no response head for {path} from {from:?}"));
    if head.status == 200 && head.header("content-length").is_some() {
        return (c, 0);
    }
    (c, head.status)
}

/// Asserts the next SSE request is shed: for an EventSource-like client 200, a `retry:` line
/// with a delay within half to one and a half times the base, nothing else, connection closed;
/// for a client that does not accept `text/event-stream`, 503 with `Retry-After`.
fn assert_refused(server: &Server, from: Option<Ipv4Addr>) {
    let mut c = HttpConn::from_stream(tcp_connect(&server.addr(), from, None));
    c.send(&sse_request("/events", &server.addr()));
    let r = c.read_response(WAIT).expect("a response");
    assert_eq!(r.status, 200, "head: {}", r.head);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let ms: u64 = body
        .strip_prefix("retry: ")
        .and_then(|b| b.strip_suffix("\n\n"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a retry: line alone: {body:?}"));
    assert!((SHED_MS / 2..=SHED_MS * 3 / 2).contains(&ms), "retry {ms}");
    assert!(c.closed_within(WAIT), "a shed connection is closed");

    let mut c = HttpConn::from_stream(tcp_connect(&server.addr(), from, None));
    c.send(format!("GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr()).as_bytes());
    let r = c.read_response(WAIT).expect("a response");
    assert_eq!(r.status, 503, "head: {}", r.head);
    assert_eq!(r.header("content-length"), Some("0"));
    let after: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After: {}", r.head));
    assert!((1..=2).contains(&after), "Retry-After {after}");
    assert!(r.body.is_empty());
    assert!(c.closed_within(WAIT), "a refused connection is closed");
}

fn setup(extra: &[&str]) -> (Broker, Producer, Server, u16) {
    let prom_port = free_port();
    let (broker, producer) = Broker::with_topic("events", 1);
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(prom_port)
        .start(&[extra, &["--shed-retry-ms", "1000"]].concat());
    (broker, producer, server, prom_port)
}

#[test]
fn global_cap_refuses_the_fourth_stream_until_one_ends() {
    let (_broker, producer, server, prom) = setup(&["--max-streams", "3", "--heartbeat", "0"]);
    producer.send_value("events", Some(0), "e0");

    let mut open_streams: Vec<HttpConn> = Vec::new();
    for i in 0..3 {
        let (mut c, status) = open(&server, None, "/events");
        assert_eq!(status, 200, "stream {i}");
        assert!(
            c.read_until(WAIT, |b| find(b, b"data:e0").is_some()),
            "stream {i} streams"
        );
        open_streams.push(c);
    }
    assert_refused(&server, None);
    assert_refused(&server, Some(Ipv4Addr::new(127, 0, 0, 2)));

    // Requests that are not streams are answered as usual, not refused for the cap.
    assert_eq!(curl(&server.url("/events"), &["-X", "POST"]).status, 405);

    // The refused streams took no place: the three still stream.
    producer.send_value("events", Some(0), "e1");
    for (i, c) in open_streams.iter_mut().enumerate() {
        assert!(
            c.read_until(WAIT, |b| find(b, b"data:e1").is_some()),
            "stream {i}"
        );
    }

    // One client leaves: its place is given back once the server notices (asynchronously,
    // so retry; a refused attempt takes no place).
    drop(open_streams.remove(0));
    let mut admitted = None;
    assert!(
        wait_until(WAIT, || {
            let (c, status) = open(&server, None, "/events");
            if status == 200 {
                admitted = Some(c);
                true
            } else {
                assert_eq!(status, 0, "shed");
                false
            }
        }),
        "the place of the closed stream was never given back"
    );
    let mut fourth = admitted.unwrap();
    assert!(fourth.read_until(WAIT, |b| find(b, b"data:e1").is_some()));
    // Three again: the next is refused.
    assert_refused(&server, None);
    let m = scrape(prom);
    assert!(
        m.value("sse_kafka_streams_shed_total", &[("reason", "max_streams")]) >= 6.0,
        "sheds counted by reason"
    );
    assert_eq!(
        m.value(
            "sse_kafka_streams_shed_total",
            &[("reason", "max_streams_per_ip")]
        ),
        0.0
    );
}

#[test]
fn per_ip_cap_refuses_the_third_stream_from_one_address_only() {
    let (_broker, producer, server, prom) =
        setup(&["--max-streams-per-ip", "2", "--heartbeat", "0"]);
    producer.send_value("events", Some(0), "e0");

    let (mut a, sa) = open(&server, None, "/events");
    let (mut b, sb) = open(&server, None, "/events");
    assert_eq!((sa, sb), (200, 200));
    for c in [&mut a, &mut b] {
        assert!(c.read_until(WAIT, |buf| find(buf, b"data:e0").is_some()));
    }
    assert_refused(&server, None);

    // Another address is not affected: curl bound to 127.0.0.2 gets its stream.
    let other = Sse::open_args(&server.url("/events"), &["--interface", "127.0.0.2"]);
    assert_eq!(other.status(WAIT), Some(200));
    assert_eq!(other.expect(1, WAIT)[0].data, "e0");
    // And a second one from there too; the third from there is refused.
    let (mut c2, s2) = open(&server, Some(Ipv4Addr::new(127, 0, 0, 2)), "/events");
    assert_eq!(s2, 200);
    assert!(c2.read_until(WAIT, |buf| find(buf, b"data:e0").is_some()));
    assert_refused(&server, Some(Ipv4Addr::new(127, 0, 0, 2)));

    // 127.0.0.1 frees a place when one of its streams ends.
    drop(a);
    let mut admitted = None;
    assert!(wait_until(WAIT, || {
        let (c, status) = open(&server, None, "/events");
        admitted = (status == 200).then_some(c);
        admitted.is_some()
    }));
    let mut again = admitted.unwrap();
    assert!(again.read_until(WAIT, |buf| find(buf, b"data:e0").is_some()));
    assert_refused(&server, None);

    // Everyone admitted still streams.
    producer.send_value("events", Some(0), "e1");
    assert_eq!(other.expect(1, WAIT)[0].data, "e1");
    for c in [&mut b, &mut c2] {
        assert!(c.read_until(WAIT, |buf| find(buf, b"data:e1").is_some()));
    }
    let m = scrape(prom);
    assert!(
        m.value(
            "sse_kafka_streams_shed_total",
            &[("reason", "max_streams_per_ip")]
        ) >= 6.0
    );
    assert_eq!(
        m.value("sse_kafka_streams_shed_total", &[("reason", "max_streams")]),
        0.0
    );
}

/// HTTP/2: a stream over the cap is shed like on HTTP/1.1 (200, a `retry:` DATA frame with
/// END_STREAM) and the connection and its admitted stream carry on; a client that does not
/// accept `text/event-stream` (curl) gets 503 with `retry-after`. REFUSED_STREAM is left to
/// streams beyond SETTINGS_MAX_CONCURRENT_STREAMS (tests/h2_hardening.rs).
#[test]
fn http2_stream_over_the_cap_is_shed() {
    use common::h2::Client;
    let (broker, producer) = Broker::with_topic("events", 1);
    let prom = free_port();
    let server = Zilla::h2_metrics(&broker.bootstrap(), prom).start(&[
        "--max-streams",
        "1",
        "--heartbeat",
        "0",
        "--shed-retry-ms",
        "1000",
    ]);
    producer.send_value("events", Some(0), "e0");
    let mut c = Client::connect(&server.addr());
    c.request(1, "GET", "/events");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 1));
    c.request(3, "GET", "/events");
    assert!(
        c.run_until(WAIT, |c| {
            let s = c.stream(3);
            s.reset.is_some() || s.ended
        }),
        "no answer for stream 3"
    );
    let shed = c.stream(3);
    assert_eq!((shed.reset, shed.status), (None, Some(200)), "{shed:?}");
    let body = String::from_utf8_lossy(&shed.data).into_owned();
    let ms: u64 = body
        .strip_prefix("retry: ")
        .and_then(|b| b.strip_suffix("\n\n"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a retry: line alone: {body:?}"));
    assert!((500..=1500).contains(&ms), "retry {ms}");

    let plain = curl(&server.url("/events"), &["--http2-prior-knowledge"]);
    assert_eq!(plain.status, 503);
    assert!(plain.header("retry-after").is_some(), "{:?}", plain.headers);

    producer.send_value("events", Some(0), "e1");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 2));
    assert!(c.goaway.is_none() && !c.closed);
    let m = scrape(prom);
    assert_eq!(
        m.value("sse_kafka_streams_shed_total", &[("reason", "max_streams")]),
        2.0
    );
}
