//! Stream admission caps: `--max-streams N` (whole process) and `--max-streams-per-ip N`. A
//! stream over a cap is refused with 503 on HTTP/1.1 (and the connection closed); a stream
//! that ends gives its place back. Non-stream requests are not counted.

mod common;
use common::*;
use std::net::Ipv4Addr;

/// An SSE request on its own connection from `from` (None: 127.0.0.1), returning the connection
/// and the response head's status.
fn open(server: &Server, from: Option<Ipv4Addr>, path: &str) -> (HttpConn, u16) {
    let mut c = HttpConn::from_stream(tcp_connect(&server.addr(), from, None));
    c.send(&sse_request(path, &server.addr()));
    let head = c
        .read_head(WAIT)
        .unwrap_or_else(|| panic!("no response head for {path} from {from:?}"));
    (c, head.status)
}

/// Asserts the next SSE request is refused: 503, empty body, connection closed.
fn assert_refused(server: &Server, from: Option<Ipv4Addr>) {
    let mut c = HttpConn::from_stream(tcp_connect(&server.addr(), from, None));
    c.send(&sse_request("/events", &server.addr()));
    let r = c.read_response(WAIT).expect("a response");
    assert_eq!(r.status, 503, "head: {}", r.head);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    assert!(c.closed_within(WAIT), "a refused connection is closed");
}

fn setup(extra: &[&str]) -> (Broker, Producer, Server) {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .start(extra);
    (broker, producer, server)
}

#[test]
fn global_cap_refuses_the_fourth_stream_until_one_ends() {
    let (_broker, producer, server) = setup(&["--max-streams", "3", "--heartbeat", "0"]);
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
                assert_eq!(status, 503);
                false
            }
        }),
        "the place of the closed stream was never given back"
    );
    let mut fourth = admitted.unwrap();
    assert!(fourth.read_until(WAIT, |b| find(b, b"data:e1").is_some()));
    // Three again: the next is refused.
    assert_refused(&server, None);
}

#[test]
fn per_ip_cap_refuses_the_third_stream_from_one_address_only() {
    let (_broker, producer, server) = setup(&["--max-streams-per-ip", "2", "--heartbeat", "0"]);
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
}

/// HTTP/2: a stream over the cap is refused with `RST_STREAM(REFUSED_STREAM)` (issue 5: "503 on
/// HTTP/1.1 and REFUSED_STREAM on HTTP/2"), which tells the client that nothing was processed
/// and the request can be retried; the connection and its admitted stream carry on.
#[test]
fn http2_stream_over_the_cap_is_refused_stream() {
    use common::h2::{Client, REFUSED_STREAM};
    let broker = Broker::start();
    broker.create_topic("events", 1);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .versions(&["http/1.1", "h2"])
        .route(Route::any_topic())
        .start(&["--max-streams", "1", "--heartbeat", "0"]);
    producer.send_value("events", Some(0), "e0");
    let mut c = Client::connect(&server.addr());
    c.request(1, "GET", "/events");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 1));
    c.request(3, "GET", "/events");
    assert!(
        c.run_until(WAIT, |c| {
            let s = c.stream(3);
            s.reset.is_some() || s.headers_seen
        }),
        "no answer for stream 3"
    );
    let refused = c.stream(3);
    assert_eq!(
        (refused.reset, refused.status),
        (Some(REFUSED_STREAM), None),
        "stream 3 over the cap: {refused:?}"
    );
    producer.send_value("events", Some(0), "e1");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 2));
    assert!(c.goaway.is_none() && !c.closed);
}
