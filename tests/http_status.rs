//! Status codes (reference 2.1, 2.8, issue 2): 404 no route, 405 non-GET on an SSE route, 400
//! for a last event id over 254 bytes, 400/414/431/501/505 for malformed requests. curl for
//! what curl can send; raw bytes on a TcpStream for what it cannot.

mod common;
use common::*;
use std::time::Duration;

/// Routes only `/events/{topic}`; anything else has no route.
fn setup() -> (Broker, Server) {
    let (broker, producer) = Broker::with_topic("t", 1);
    producer.send_value("t", Some(0), "hello");
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .http_path("/events/*")
        .route(Route::new("/events/{topic}", "${params.topic}"))
        .start(&[]);
    (broker, server)
}

fn raw(server: &Server, request: &[u8]) -> RawResponse {
    raw_request(&server.addr(), request, WAIT).unwrap_or_else(|| {
        panic!(
            "no response to {:?}",
            String::from_utf8_lossy(&request[..request.len().min(200)])
        )
    })
}

fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{extra_headers}\r\n").into_bytes()
}

#[test]
fn no_route_is_404() {
    let (_b, server) = setup();
    assert_eq!(curl(&server.url("/nothing/here"), &[]).status, 404);
    assert_eq!(curl(&server.url("/"), &[]).status, 404);
    // The http route matches but no sse-kafka route does.
    assert_eq!(curl(&server.url("/events/"), &[]).status, 404);
}

#[test]
fn non_get_on_an_sse_route_is_405() {
    let (_b, server) = setup();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = curl(&server.url("/events/t"), &["-X", method, "-d", "x"]);
        assert_eq!(r.status, 405, "{method}");
    }
    // GET still works.
    let sse = Sse::open(&server.url("/events/t"));
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(sse.expect(1, WAIT)[0].data, "hello");
}

#[test]
fn last_event_id_over_254_bytes_is_400() {
    let (_b, server) = setup();
    let url = server.url("/events/t");
    // 254 bytes: accepted (malformed, so replayed from the earliest record).
    let sse = Sse::resume(&url, &"A".repeat(254));
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(sse.expect(1, WAIT)[0].data, "hello");
    // 255 bytes in the header or in the query parameter: 400.
    assert_eq!(
        curl(
            &url,
            &["-H", &format!("Last-Event-ID: {}", "A".repeat(255))]
        )
        .status,
        400
    );
    assert_eq!(
        curl(&format!("{url}?lastEventId={}", "A".repeat(255)), &[]).status,
        400
    );
    // 64 four-byte characters = 256 bytes (64 characters).
    let emoji = "\u{1F600}".repeat(64);
    assert_eq!(
        raw(
            &server,
            &get("/events/t", &format!("Last-Event-ID: {emoji}\r\n"))
        )
        .status,
        400
    );
    assert_eq!(
        curl(
            &format!("{url}?lastEventId={}", percent_encode(&emoji)),
            &[]
        )
        .status,
        400
    );
}

#[test]
fn request_line_too_long_is_414() {
    let (_b, server) = setup();
    let path = format!("/events/{}", "x".repeat(20_000));
    assert_eq!(raw(&server, &get(&path, "")).status, 414);
}

#[test]
fn headers_too_large_is_431() {
    let (_b, server) = setup();
    let many: String = (0..300)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "v".repeat(1000)))
        .collect();
    assert_eq!(raw(&server, &get("/events/t", &many)).status, 431);
    let one_huge = format!("X-Huge: {}\r\n", "v".repeat(200_000));
    assert_eq!(raw(&server, &get("/events/t", &one_huge)).status, 431);
}

#[test]
fn unknown_method_and_transfer_coding_are_501() {
    let (_b, server) = setup();
    assert_eq!(
        raw(
            &server,
            b"BREW /events/t HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        .status,
        501
    );
    // RFC 9112 6.1: a transfer coding the server does not understand.
    let r = raw(
        &server,
        b"POST /events/t HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 501);
}

#[test]
fn other_http_versions_are_505() {
    let (_b, server) = setup();
    assert_eq!(
        raw(
            &server,
            b"GET /events/t HTTP/2.0\r\nHost: localhost\r\n\r\n"
        )
        .status,
        505
    );
    assert_eq!(
        raw(
            &server,
            b"GET /events/t HTTP/3.0\r\nHost: localhost\r\n\r\n"
        )
        .status,
        505
    );
}

#[test]
fn malformed_requests_are_400() {
    let (_b, server) = setup();
    let cases: &[&[u8]] = &[
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /events/t HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n",
        // HTTP/1.1 without Host (RFC 9112 3.2).
        b"GET /events/t HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
        // Obsolete line folding.
        b"GET /events/t HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n  folded\r\n\r\n",
        // Space before the colon (RFC 9112 5.1).
        b"GET /events/t HTTP/1.1\r\nHost : localhost\r\n\r\n",
        // Both Content-Length and Transfer-Encoding... and conflicting lengths.
        b"POST /events/t HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    ];
    for (i, req) in cases.iter().enumerate() {
        let r = raw(&server, req);
        assert_eq!(
            r.status,
            400,
            "case {i}: {:?}",
            String::from_utf8_lossy(req)
        );
    }
    // The server is still fine.
    assert_eq!(Sse::open(&server.url("/events/t")).status(WAIT), Some(200));
}

/// The `Accept` header is not checked (as in the reference): a plain GET streams too.
#[test]
fn accept_header_is_not_required() {
    let (_b, server) = setup();
    let mut c = HttpConn::connect(&server.addr());
    c.send(b"GET /events/t HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let head = c.read_head(WAIT).expect("response head");
    assert_eq!(head.status, 200);
    assert!(c.read_until(WAIT, |b| find(b, b"data:hello\n\n").is_some()));
}

/// A request head trickled in byte by byte is still understood.
#[test]
fn head_split_across_many_reads() {
    let (_b, server) = setup();
    let mut c = HttpConn::connect(&server.addr());
    for b in get("/events/t", "") {
        c.send(&[b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.read_head(WAIT).map(|h| h.status), Some(200));
}
