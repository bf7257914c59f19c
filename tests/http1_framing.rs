//! HTTP/1.1 framing of SSE responses (reference 2.2): chunked by default, delimited by the
//! connection close when the request says `Connection: close`.

mod common;
use common::*;

fn setup() -> (Broker, Producer, Server) {
    let (broker, producer) = Broker::with_topic("t", 1);
    producer.send_value("t", Some(0), "first");
    let server = Zilla::any_topic(&broker.bootstrap()).start(&[
        "--heartbeat",
        "0",
        "--drain-grace",
        "0.2",
        "--drain-timeout",
        "3",
    ]);
    (broker, producer, server)
}

#[test]
fn sse_response_is_chunked() {
    let (_b, producer, server) = setup();
    let mut c = HttpConn::connect(&server.addr());
    c.send(b"GET /t HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
    let head = c.read_head(WAIT).expect("head");
    assert!(
        head.head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{:?}",
        head.head
    );
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    let first = format!("id:{}\ndata:first\n\n", encode_id(&[(0, 1)]));
    let second = format!("id:{}\ndata:second\n\n", encode_id(&[(0, 2)]));
    let body_is = |want: String| {
        move |b: &[u8]| decode_chunks(b).is_some_and(|(body, _, _)| body == want.as_bytes())
    };
    assert!(
        c.read_until(WAIT, body_is(first.clone())),
        "chunked body: {:?}",
        String::from_utf8_lossy(c.buffered())
    );
    producer.send_value("t", Some(0), "second");
    assert!(
        c.read_until(WAIT, body_is(first + &second)),
        "chunked body: {:?}",
        String::from_utf8_lossy(c.buffered())
    );
    // Every chunk is well formed and none is the terminating one.
    let (_, used, done) = decode_chunks(c.buffered()).unwrap();
    assert!(!done && used == c.buffered().len());
}

#[test]
fn connection_close_gives_a_close_delimited_body() {
    let (_b, producer, mut server) = setup();
    let mut c = HttpConn::connect(&server.addr());
    c.send(b"GET /t HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
    let head = c.read_head(WAIT).expect("head");
    assert!(
        head.head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{:?}",
        head.head
    );
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), None, "{:?}", head.head);
    assert_eq!(head.header("content-length"), None);
    let first = format!("id:{}\ndata:first\n\n", encode_id(&[(0, 1)]));
    assert!(c.read_until(WAIT, |b| b.len() >= first.len()));
    assert_eq!(
        String::from_utf8_lossy(c.buffered()),
        first,
        "raw event bytes, no chunk framing"
    );
    producer.send_value("t", Some(0), "second");
    let both = format!("{first}id:{}\ndata:second\n\n", encode_id(&[(0, 2)]));
    assert!(c.read_until(WAIT, |b| b.len() >= both.len()));
    assert_eq!(String::from_utf8_lossy(c.buffered()), both);
    // The body ends when the connection does: on shutdown (a drain), the stream gets a
    // `retry:` line after its last event, then is closed.
    let (status, _) = server.stop_with(libc::SIGTERM, std::time::Duration::from_secs(5));
    assert!(status.is_some(), "server did not exit");
    assert!(c.closed_within(WAIT));
    let text = String::from_utf8_lossy(c.buffered()).into_owned();
    let rest = text
        .strip_prefix(&both)
        .unwrap_or_else(|| panic!("events first: {text:?}"));
    assert!(
        rest.starts_with("retry: ") && rest.ends_with("\n\n") && rest.len() < 20,
        "only a retry: line after the last event: {rest:?}"
    );
}

/// A client that stops reading does not take the server down, and other clients go on.
#[test]
fn client_disconnect_mid_stream_is_harmless() {
    let (_b, producer, server) = setup();
    for _ in 0..20 {
        let mut c = HttpConn::connect(&server.addr());
        c.send(b"GET /t HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let _ = c.read_head(WAIT);
        // dropped right away
    }
    let sse = Sse::open(&server.url("/t"));
    assert_eq!(sse.expect(1, WAIT)[0].data, "first");
    producer.send_value("t", Some(0), "after");
    assert_eq!(sse.expect(1, WAIT)[0].data, "after");
}

/// decisions.md 3.4: the 200 goes out as soon as the route matches and the topic's metadata is
/// known, not with the first event: an empty topic still answers at once.
#[test]
fn response_head_is_sent_before_any_event() {
    let broker = Broker::with_empty_topic("empty", 3);
    let server = Server::direct(&broker.bootstrap(), &["--heartbeat", "0"]);
    let sse = Sse::open(&server.url("/empty"));
    assert_eq!(
        sse.status(WAIT),
        Some(200),
        "no response head for an empty topic"
    );
    let mut c = HttpConn::connect(&server.addr());
    c.send(b"GET /empty HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(
        c.read_head(WAIT).map(|h| h.status),
        Some(200),
        "no head with Connection: close either"
    );
}
