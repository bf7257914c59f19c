//! [`H2Conn`] driven by a scripted client: the exchange of an SSE stream, every connection
//! and stream error, and the flood limits.

use super::frame::{self, flag, kind, setting, FrameHeader, HEADER_LEN};
use super::hpack::{encode_int, encode_string, Decoder, Encoder};
use super::*;

const NOW: u64 = 1_000;

/// An owned frame read from the server's output.
#[derive(Debug, Clone)]
struct Frame {
    head: FrameHeader,
    payload: Vec<u8>,
}

impl Frame {
    fn is(&self, kind: u8, stream_id: u32) -> bool {
        self.head.kind == kind && self.head.stream_id == stream_id
    }

    fn code(&self) -> ErrorCode {
        let at = if self.head.kind == kind::GOAWAY { 4 } else { 0 };
        let b = &self.payload[at..at + 4];
        ErrorCode(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn parse_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(head) = FrameHeader::parse(bytes) {
        let end = HEADER_LEN + head.length as usize;
        frames.push(Frame {
            head,
            payload: bytes[HEADER_LEN..end].to_vec(),
        });
        bytes = &bytes[end..];
    }
    assert!(bytes.is_empty(), "trailing partial frame");
    frames
}

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    for (n, v) in fields {
        enc.encode_field(n.as_bytes(), v.as_bytes(), &mut out);
    }
    out
}

/// A literal field without indexing, name and value as given (not lowercased).
fn literal(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    encode_string(name, &mut out);
    encode_string(value, &mut out);
    out
}

const GET: [(&str, &str); 5] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/events"),
    (":authority", "example.com"),
    ("accept", "text/event-stream"),
];

const POST: [(&str, &str); 4] = [
    (":method", "POST"),
    (":scheme", "https"),
    (":path", "/challenge"),
    (":authority", "example.com"),
];

fn headers(stream_id: u32, fragment: &[u8], flags: u8) -> Vec<u8> {
    let mut out = Vec::new();
    frame::Headers {
        stream_id,
        end_stream: flags & flag::END_STREAM != 0,
        end_headers: flags & flag::END_HEADERS != 0,
        priority: None,
        fragment,
        pad_len: None,
    }
    .encode(&mut out);
    out
}

fn get(stream_id: u32) -> Vec<u8> {
    headers(
        stream_id,
        &block(&GET),
        flag::END_STREAM | flag::END_HEADERS,
    )
}

/// A POST whose body follows.
fn post(stream_id: u32) -> Vec<u8> {
    headers(stream_id, &block(&POST), flag::END_HEADERS)
}

fn data(stream_id: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    frame::Data {
        stream_id,
        end_stream,
        data: bytes,
        pad_len: None,
    }
    .encode(&mut out);
    out
}

fn rst(stream_id: u32, code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::new();
    frame::RstStream { stream_id, code }.encode(&mut out);
    out
}

fn window_update(stream_id: u32, increment: u32) -> Vec<u8> {
    let mut out = Vec::new();
    frame::WindowUpdate {
        stream_id,
        increment,
    }
    .encode(&mut out);
    out
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::Settings::encode_params(params, &mut out);
    out
}

fn settings_ack() -> Vec<u8> {
    let mut out = Vec::new();
    frame::Settings::encode_ack(&mut out);
    out
}

fn ping(payload: [u8; 8], ack: bool) -> Vec<u8> {
    let mut out = Vec::new();
    frame::Ping { ack, payload }.encode(&mut out);
    out
}

fn continuation(stream_id: u32, fragment: &[u8], end_headers: bool) -> Vec<u8> {
    let mut out = Vec::new();
    frame::Continuation {
        stream_id,
        end_headers,
        fragment,
    }
    .encode(&mut out);
    out
}

fn raw(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = FrameHeader {
        length: payload.len() as u32,
        kind,
        flags,
        stream_id,
    }
    .encode()
    .to_vec();
    out.extend_from_slice(payload);
    out
}

/// The client side of one connection.
struct Peer {
    conn: H2Conn,
    now: u64,
    dec: Decoder,
}

impl Peer {
    /// Preface and SETTINGS exchanged both ways, the server's acknowledged.
    fn new() -> Peer {
        Peer::with(Settings::default(), Limits::default())
    }

    fn with(ours: Settings, limits: Limits) -> Peer {
        let mut p = Peer::unacked(ours, limits);
        p.feed(&settings_ack()).unwrap();
        p
    }

    /// The client's preface and SETTINGS sent; the server's SETTINGS not yet acknowledged.
    fn unacked(ours: Settings, limits: Limits) -> Peer {
        let mut p = Peer {
            conn: H2Conn::with_limits(ours, limits),
            now: NOW,
            dec: Decoder::new(4096),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&settings(&[]));
        p.feed(&hello).unwrap();
        let frames = p.frames();
        assert!(frames[0].is(kind::SETTINGS, 0) && frames[0].head.flags == 0);
        assert!(frames[1].is(kind::SETTINGS, 0) && frames[1].head.flags == flag::ACK);
        assert_eq!(frames.len(), 2);
        p
    }

    /// Feeds `bytes`, which must all be consumed.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let n = self.conn.recv(bytes, self.now)?;
        assert_eq!(n, bytes.len(), "not all consumed");
        Ok(())
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn frames(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        self.conn.write_output(&mut out);
        parse_frames(&out)
    }

    /// Feeding `bytes` is a connection error with `code`, answered by GOAWAY.
    fn expect_goaway(&mut self, bytes: &[u8], code: ErrorCode) {
        let e = self.feed(bytes).unwrap_err();
        assert_eq!(e.code, code, "{e:?}");
        let frames = self.frames();
        let last = frames.last().unwrap();
        assert!(last.is(kind::GOAWAY, 0), "{frames:?}");
        assert_eq!(last.code(), code);
        assert_eq!(self.conn.recv(b"", self.now), Err(e));
        assert_eq!(self.conn.send_capacity(1), 0);
    }

    /// Feeding `bytes` is a stream error with `code` on `stream_id`, answered by RST_STREAM.
    fn expect_rst(&mut self, bytes: &[u8], stream_id: u32, code: ErrorCode) {
        self.feed(bytes).unwrap();
        let frames = self.frames();
        assert!(
            frames
                .iter()
                .any(|f| f.is(kind::RST_STREAM, stream_id) && f.code() == code),
            "{frames:?}"
        );
        assert!(!self.conn.is_open(stream_id));
    }

    /// Opens `stream_id` with GET /events and takes its request event.
    fn open(&mut self, stream_id: u32) -> Request {
        self.feed(&get(stream_id)).unwrap();
        match self.events().as_slice() {
            [Event::Request(r)] => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// Decodes a response head from HEADERS + CONTINUATION frames.
    fn response(&mut self, frames: &[Frame]) -> Vec<(String, String)> {
        let mut fragment = Vec::new();
        for f in frames {
            match f.head.kind {
                kind::HEADERS | kind::CONTINUATION => fragment.extend_from_slice(&f.payload),
                _ => {}
            }
        }
        let mut fields = Vec::new();
        self.dec
            .decode(&fragment, |n, v| {
                fields.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        fields
    }
}

#[test]
fn sse_exchange() {
    let mut p = Peer::unacked(Settings::default(), Limits::default());
    // The client's stream window is small; the server's SETTINGS get acknowledged.
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 100)]))
        .unwrap();
    assert!(!p.conn.settings_acked());
    p.feed(&settings_ack()).unwrap();
    assert!(p.conn.settings_acked());
    assert!(p.frames().iter().all(|f| f.is(kind::SETTINGS, 0)));

    let req = p.open(1);
    assert_eq!(req.stream_id, 1);
    assert!(req.end_stream);
    assert_eq!(
        (req.method(), req.scheme(), req.path(), req.authority()),
        ("GET", "https", "/events", Some("example.com"))
    );
    assert_eq!(req.header("accept"), Some(&b"text/event-stream"[..]));
    assert_eq!(p.conn.last_stream_id(), 1);
    // No DATA before the response head.
    assert_eq!(p.conn.send_capacity(1), 0);

    let mut out = Vec::new();
    assert!(p.conn.send_headers(
        1,
        200,
        &[
            ("content-type", b"text/event-stream"),
            ("Cache-Control", b"no-cache"),
            ("transfer-encoding", b"chunked"),
        ],
        false,
        &mut out,
    ));
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].is(kind::HEADERS, 1));
    assert_eq!(frames[0].head.flags, flag::END_HEADERS);
    assert_eq!(
        p.response(&frames),
        [
            (":status".to_string(), "200".to_string()),
            ("content-type".into(), "text/event-stream".into()),
            ("cache-control".into(), "no-cache".into()),
        ]
    );

    // DATA under the stream window: zero-copy header in front of shared bytes.
    let event = b"id:AQIAAg==\ndata:hello\n\n";
    assert_eq!(p.conn.send_capacity(1), 100);
    out.clear();
    out.extend_from_slice(&p.conn.data_frame_header(1, event.len(), false));
    out.extend_from_slice(event);
    let frames = parse_frames(&out);
    assert!(frames[0].is(kind::DATA, 1) && frames[0].payload == event);
    let left = 100 - event.len();
    assert_eq!(p.conn.send_capacity(1), left);
    out.clear();
    p.conn.data_frame_header(1, left, false);
    assert_eq!(p.conn.send_capacity(1), 0);

    // WINDOW_UPDATE reopens the zero window.
    p.feed(&window_update(1, 1000)).unwrap();
    assert_eq!(p.events(), [Event::WindowOpened { stream_id: 1 }]);
    assert_eq!(p.conn.send_capacity(1), 1000);
    assert_eq!(p.conn.frame_capacity(1), 1000);

    // A second stream, then the client resets the first.
    p.open(3);
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    assert_eq!(
        p.events(),
        [Event::Reset {
            stream_id: 1,
            code: ErrorCode::CANCEL,
            remote: true
        }]
    );
    assert!(!p.conn.is_open(1));
    assert_eq!(p.conn.send_capacity(1), 0);
    assert!(!p.conn.send_headers(1, 200, &[], false, &mut out));
    assert_eq!(p.conn.open_streams(), 1);

    // Graceful shutdown: GOAWAY NO_ERROR with the last stream processed; stream 3 goes on,
    // a new stream is refused.
    out.clear();
    let last = p.conn.last_stream_id();
    p.conn.goaway(last, ErrorCode::NO_ERROR, &mut out);
    let frames = parse_frames(&out);
    assert!(frames[0].is(kind::GOAWAY, 0));
    assert_eq!(frames[0].code(), ErrorCode::NO_ERROR);
    assert_eq!(&frames[0].payload[..4], &3u32.to_be_bytes());
    assert!(p.conn.goaway_sent());
    p.feed(&get(5)).unwrap();
    assert_eq!(p.events(), []);
    let frames = p.frames();
    assert!(frames[0].is(kind::RST_STREAM, 5) && frames[0].code() == ErrorCode::REFUSED_STREAM);
    out.clear();
    assert!(p.conn.send_headers(3, 200, &[], false, &mut out));
    assert_eq!(p.conn.send_data(3, b"last", true, &mut out), 4);
    let frames = parse_frames(&out);
    assert!(frames[1].is(kind::DATA, 3) && frames[1].head.has(flag::END_STREAM));
    assert_eq!(p.conn.open_streams(), 0);
}

#[test]
fn preface() {
    // Partial preface: nothing consumed yet.
    let mut conn = H2Conn::new(Settings::default());
    assert_eq!(conn.recv(&PREFACE[..10], NOW), Ok(0));
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(&settings(&[])[..5]);
    assert_eq!(conn.recv(&hello, NOW), Ok(24));
    assert_eq!(conn.recv(&hello[24..], NOW), Ok(0));
    assert!(conn.has_output());

    for bad in [&b"GET / HTTP/1.1\r\n"[..], b"PRI * HTTP/1.1", b"X"] {
        let mut conn = H2Conn::new(Settings::default());
        let e = conn.recv(bad, NOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
        let mut out = Vec::new();
        conn.write_output(&mut out);
        let frames = parse_frames(&out);
        assert!(frames[0].is(kind::SETTINGS, 0));
        assert!(frames[1].is(kind::GOAWAY, 0) && frames[1].code() == ErrorCode::PROTOCOL_ERROR);
    }

    // The preface must be followed by SETTINGS, not an ACK nor anything else.
    for first in [ping([0; 8], false), settings_ack(), get(1)] {
        let mut conn = H2Conn::new(Settings::default());
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(&first);
        assert_eq!(
            conn.recv(&bytes, NOW).unwrap_err().code,
            ErrorCode::PROTOCOL_ERROR
        );
    }
}

#[test]
fn byte_by_byte() {
    // Frames split anywhere give the same events as whole ones.
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&settings(&[(setting::MAX_FRAME_SIZE, 1 << 20)]));
    input.extend_from_slice(&settings_ack());
    input.extend_from_slice(&post(1));
    input.extend_from_slice(&data(1, b"hello", false));
    input.extend_from_slice(&ping(*b"12345678", false));
    input.extend_from_slice(&data(1, b"", true));
    let mut conn = H2Conn::new(Settings::default());
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for &b in &input {
        buf.push(b);
        let n = conn.recv(&buf, NOW).unwrap();
        buf.drain(..n);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    assert!(buf.is_empty());
    assert_eq!(events.len(), 3);
    assert!(matches!(&events[0], Event::Request(r) if r.method() == "POST" && !r.end_stream));
    assert_eq!(
        events[1..],
        [
            Event::Data {
                stream_id: 1,
                len: 5,
                end_stream: false
            },
            Event::Data {
                stream_id: 1,
                len: 0,
                end_stream: true
            },
        ]
    );
    assert_eq!(conn.max_frame_len(), 1 << 20);
    assert_eq!(conn.recv_buffer_len(), 9 + 16384);
}

#[test]
fn data_frame_errors() {
    let mut p = Peer::new();
    p.expect_goaway(&data(0, b"x", true), ErrorCode::PROTOCOL_ERROR);

    let mut p = Peer::new();
    p.expect_goaway(&data(1, b"x", true), ErrorCode::PROTOCOL_ERROR);

    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.events();
    // Length 5 with a pad length of 6.
    p.expect_goaway(
        &raw(kind::DATA, flag::PADDED, 1, b"\x06Test"),
        ErrorCode::PROTOCOL_ERROR,
    );

    // Half-closed (remote): STREAM_CLOSED.
    let mut p = Peer::new();
    p.open(1);
    p.expect_rst(&data(1, b"test", true), 1, ErrorCode::STREAM_CLOSED);
    assert_eq!(
        p.events(),
        [Event::Reset {
            stream_id: 1,
            code: ErrorCode::STREAM_CLOSED,
            remote: false
        }]
    );
    // Once we reset it, late frames are ignored.
    p.feed(&data(1, b"late", true)).unwrap();
    assert!(p
        .frames()
        .iter()
        .all(|f| f.head.kind == kind::WINDOW_UPDATE));

    // Closed after both sides ended: STREAM_CLOSED.
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 204, &[], true, &mut out);
    p.expect_rst(&data(1, b"test", true), 1, ErrorCode::STREAM_CLOSED);

    // After the client's RST_STREAM: STREAM_CLOSED.
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    p.expect_rst(&data(1, b"test", true), 1, ErrorCode::STREAM_CLOSED);
}

#[test]
fn request_body_flow_control() {
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.events();
    // Credit comes back once half of a window is used.
    let chunk = vec![b'x'; 16_384];
    p.feed(&data(1, &chunk, false)).unwrap();
    assert!(p.frames().is_empty());
    p.feed(&data(1, &chunk, false)).unwrap();
    let frames = p.frames();
    let updates: Vec<(u32, u32)> = frames
        .iter()
        .filter(|f| f.head.kind == kind::WINDOW_UPDATE)
        .map(|f| {
            let b = &f.payload;
            (
                f.head.stream_id,
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            )
        })
        .collect();
    assert_eq!(updates, [(0, 32_768), (1, 32_768)]);
    let events = p.events();
    assert_eq!(events.len(), 2);

    // A client ignoring the connection window.
    let big = Settings {
        max_frame_size: 1 << 17,
        ..Settings::default()
    };
    let mut q = Peer::with(big, Limits::default());
    q.feed(&post(1)).unwrap();
    q.expect_goaway(
        &data(1, &vec![0; 65_536], false),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn stream_window_overrun() {
    // Stream 3 makes the connection window come back; stream 1 then exceeds its own.
    let s = Settings {
        max_frame_size: 1 << 17,
        ..Settings::default()
    };
    let mut p = Peer::with(s, Limits::default());
    p.feed(&post(1)).unwrap();
    p.feed(&post(3)).unwrap();
    p.feed(&data(1, &vec![0; 30_000], false)).unwrap();
    p.feed(&data(3, &vec![0; 30_000], false)).unwrap();
    assert!(p.frames().iter().any(|f| f.is(kind::WINDOW_UPDATE, 0)));
    p.expect_rst(
        &data(1, &vec![0; 35_536], false),
        1,
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    assert!(p.conn.is_open(3));
}

#[test]
fn content_length() {
    let with_length = |len: &str| {
        let mut f = POST.to_vec();
        f.push(("content-length", len));
        headers(1, &block(&f), flag::END_HEADERS)
    };
    let mut p = Peer::new();
    p.feed(&with_length("4")).unwrap();
    match p.events().as_slice() {
        [Event::Request(r)] => assert_eq!(r.content_length(), Some(4)),
        other => panic!("{other:?}"),
    }
    p.feed(&data(1, b"te", false)).unwrap();
    p.feed(&data(1, b"st", true)).unwrap();
    assert_eq!(p.events().len(), 2);

    let mut p = Peer::new();
    p.feed(&with_length("4")).unwrap();
    p.expect_rst(&data(1, b"tests", false), 1, ErrorCode::PROTOCOL_ERROR);

    let mut p = Peer::new();
    p.feed(&with_length("4")).unwrap();
    p.expect_rst(&data(1, b"tes", true), 1, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn trailers() {
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.feed(&data(1, b"body", false)).unwrap();
    p.feed(&headers(
        1,
        &block(&[("x-checksum", "1")]),
        flag::END_STREAM | flag::END_HEADERS,
    ))
    .unwrap();
    let events = p.events();
    assert_eq!(
        events.last(),
        Some(&Event::Data {
            stream_id: 1,
            len: 0,
            end_stream: true
        })
    );
    assert!(p.conn.is_open(1));

    // Trailers without END_STREAM, or with a pseudo-header field.
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.expect_rst(
        &headers(1, &block(&[("x-test", "ok")]), flag::END_HEADERS),
        1,
        ErrorCode::PROTOCOL_ERROR,
    );
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.expect_rst(
        &headers(
            1,
            &block(&[(":method", "POST")]),
            flag::END_STREAM | flag::END_HEADERS,
        ),
        1,
        ErrorCode::PROTOCOL_ERROR,
    );
}

#[test]
fn headers_frame_errors() {
    let mut p = Peer::new();
    p.expect_goaway(
        &headers(0, &block(&GET), flag::END_HEADERS | flag::END_STREAM),
        ErrorCode::PROTOCOL_ERROR,
    );
    let mut p = Peer::new();
    p.expect_goaway(&get(2), ErrorCode::PROTOCOL_ERROR);

    // A stream id lower than a previous one.
    let mut p = Peer::new();
    p.open(5);
    p.expect_goaway(&get(3), ErrorCode::PROTOCOL_ERROR);

    // Padding longer than the fragment.
    let mut p = Peer::new();
    let fragment = block(&GET);
    let mut payload = vec![fragment.len() as u8 + 2];
    payload.extend_from_slice(&fragment);
    p.expect_goaway(
        &raw(
            kind::HEADERS,
            flag::PADDED | flag::END_HEADERS | flag::END_STREAM,
            1,
            &payload,
        ),
        ErrorCode::PROTOCOL_ERROR,
    );

    // Half-closed (remote): STREAM_CLOSED on the stream.
    let mut p = Peer::new();
    p.open(1);
    p.expect_rst(&get(1), 1, ErrorCode::STREAM_CLOSED);

    // Closed after both ends: STREAM_CLOSED on the connection.
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], true, &mut out);
    p.expect_goaway(&get(1), ErrorCode::STREAM_CLOSED);

    // After the client's RST_STREAM.
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    p.expect_goaway(&get(1), ErrorCode::STREAM_CLOSED);

    // Invalid HPACK: COMPRESSION_ERROR.
    let mut p = Peer::new();
    p.expect_goaway(
        &raw(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &[0x40],
        ),
        ErrorCode::COMPRESSION_ERROR,
    );
}

#[test]
fn malformed_requests() {
    let cases: Vec<Vec<u8>> = vec![
        [block(&GET), literal(b"UPPERCASE", b"oh no")].concat(),
        [block(&GET), literal(b"connection", b"keep-alive")].concat(),
        [block(&GET), literal(b"x", b"a\nb")].concat(),
        [block(&GET), literal(b":status", b"200")].concat(),
        [block(&GET), literal(b"te", b"gzip")].concat(),
        [block(&GET), literal(b"host", b"other.example")].concat(),
        block(&GET[1..]),
        block(&[
            (":method", "CONNECT"),
            (":path", "/"),
            (":authority", "h:443"),
        ]),
    ];
    for fragment in cases {
        let mut p = Peer::new();
        p.expect_rst(
            &headers(1, &fragment, flag::END_HEADERS | flag::END_STREAM),
            1,
            ErrorCode::PROTOCOL_ERROR,
        );
        assert_eq!(p.events(), []);
        // The connection goes on.
        p.open(3);
    }
}

#[test]
fn priority_frames() {
    let prio = |stream_id: u32, dependency: u32| {
        let mut out = Vec::new();
        frame::Priority {
            stream_id,
            spec: frame::PrioritySpec {
                dependency,
                exclusive: false,
                weight: 255,
            },
        }
        .encode(&mut out);
        out
    };
    // Accepted and ignored, on idle and open streams.
    let mut p = Peer::new();
    p.feed(&prio(7, 0)).unwrap();
    p.open(1);
    p.feed(&prio(1, 3)).unwrap();
    assert!(p.frames().is_empty());
    assert!(p.conn.is_open(1));
    // PRIORITY does not open the stream: 3 is still usable.
    p.open(3);

    let mut p = Peer::new();
    p.expect_goaway(&prio(0, 1), ErrorCode::PROTOCOL_ERROR);
    // Wrong length on an open stream: stream error.
    let mut p = Peer::new();
    p.open(1);
    p.expect_rst(
        &raw(kind::PRIORITY, 0, 1, b"\x80\0\0\x01"),
        1,
        ErrorCode::FRAME_SIZE_ERROR,
    );
    // Self-dependency of an open stream: stream error; of an idle one: the connection.
    let mut p = Peer::new();
    p.open(1);
    p.expect_rst(&prio(1, 1), 1, ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(&prio(1, 1), ErrorCode::PROTOCOL_ERROR);
    // HEADERS depending on itself.
    let mut p = Peer::new();
    let mut out = Vec::new();
    frame::Headers {
        stream_id: 1,
        end_stream: true,
        end_headers: true,
        priority: Some(frame::PrioritySpec {
            dependency: 1,
            exclusive: false,
            weight: 255,
        }),
        fragment: &block(&GET),
        pad_len: None,
    }
    .encode(&mut out);
    p.expect_rst(&out, 1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(p.events(), []);
}

#[test]
fn rst_stream_frames() {
    let mut p = Peer::new();
    p.expect_goaway(&rst(0, ErrorCode::CANCEL), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(&rst(1, ErrorCode::CANCEL), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.open(1);
    p.expect_goaway(
        &raw(kind::RST_STREAM, 0, 1, b"\0\0\0"),
        ErrorCode::FRAME_SIZE_ERROR,
    );
    // RST_STREAM on a closed stream is ignored, never answered.
    let mut p = Peer::new();
    p.open(1);
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    assert!(p.frames().is_empty());
}

#[test]
fn settings_frames() {
    for (frame, code) in [
        (
            raw(kind::SETTINGS, flag::ACK, 0, b"\0"),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
        (
            raw(kind::SETTINGS, 0, 1, &settings(&[(3, 100)])[9..]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            raw(kind::SETTINGS, 0, 0, b"\0\x03\0"),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
        (
            settings(&[(setting::ENABLE_PUSH, 2)]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            settings(&[(setting::MAX_FRAME_SIZE, (1 << 14) - 1)]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            settings(&[(setting::MAX_FRAME_SIZE, 1 << 24)]),
            ErrorCode::PROTOCOL_ERROR,
        ),
    ] {
        let mut p = Peer::new();
        p.expect_goaway(&frame, code);
    }
    // Unknown identifiers are ignored; every SETTINGS is acknowledged.
    let mut p = Peer::new();
    p.feed(&settings(&[(0xff, 0), (setting::ENABLE_PUSH, 0)]))
        .unwrap();
    let frames = p.frames();
    assert!(
        frames.len() == 1 && frames[0].is(kind::SETTINGS, 0) && frames[0].head.flags == flag::ACK
    );
    // A second ACK is ignored.
    p.feed(&settings_ack()).unwrap();
    assert!(p.frames().is_empty());
}

#[test]
fn initial_window_size_changes() {
    let mut p = Peer::new();
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 3)]))
        .unwrap();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    assert_eq!(p.conn.send_capacity(1), 3);
    p.conn.data_frame_header(1, 3, false);
    // 3 → 2: the window goes to -1.
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 2)]))
        .unwrap();
    assert_eq!(p.conn.send_capacity(1), 0);
    p.feed(&window_update(1, 2)).unwrap();
    assert_eq!(p.conn.send_capacity(1), 1);
    // Values apply in order; a raise opens every stream.
    p.events();
    p.feed(&settings(&[
        (setting::INITIAL_WINDOW_SIZE, 100),
        (setting::INITIAL_WINDOW_SIZE, 10),
    ]))
    .unwrap();
    assert_eq!(p.conn.send_capacity(1), 9);
    assert_eq!(p.events(), [Event::WindowOpened { stream_id: 0 }]);
    // Raising a stream window past 2^31-1 through SETTINGS: connection FLOW_CONTROL_ERROR.
    p.feed(&window_update(1, frame::MAX_WINDOW_SIZE - 9))
        .unwrap();
    p.expect_goaway(
        &settings(&[(setting::INITIAL_WINDOW_SIZE, 11)]),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn window_update_frames() {
    let mut p = Peer::new();
    p.expect_goaway(&window_update(0, 0), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(&window_update(1, 100), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(
        &raw(kind::WINDOW_UPDATE, 0, 0, b"\0\0\x01"),
        ErrorCode::FRAME_SIZE_ERROR,
    );
    let mut p = Peer::new();
    p.feed(&window_update(0, frame::MAX_WINDOW_SIZE - 65_535))
        .unwrap();
    p.expect_goaway(&window_update(0, 1), ErrorCode::FLOW_CONTROL_ERROR);

    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.expect_rst(&window_update(1, 0), 1, ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.feed(&window_update(1, frame::MAX_WINDOW_SIZE - 65_535))
        .unwrap();
    p.expect_rst(&window_update(1, 1), 1, ErrorCode::FLOW_CONTROL_ERROR);

    // Connection window: every stream is limited by it.
    let mut p = Peer::new();
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]))
        .unwrap();
    p.events();
    p.open(1);
    p.open(3);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    p.conn.send_headers(3, 200, &[], false, &mut out);
    assert_eq!(p.conn.send_capacity(1), 65_535);
    assert_eq!(p.conn.frame_capacity(1), 16_384);
    let payload = vec![b'x'; 65_535];
    out.clear();
    assert_eq!(p.conn.send_data(1, &payload, false, &mut out), 65_535);
    assert_eq!(parse_frames(&out).len(), 4);
    assert_eq!(p.conn.send_capacity(3), 0);
    p.events();
    p.feed(&window_update(0, 10)).unwrap();
    assert_eq!(p.events(), [Event::WindowOpened { stream_id: 0 }]);
    assert_eq!(p.conn.send_capacity(3), 10);
    // WINDOW_UPDATE on a closed stream is ignored.
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    p.feed(&window_update(1, 5)).unwrap();
    assert!(p.frames().is_empty());
}

#[test]
fn ping_frames() {
    let mut p = Peer::new();
    p.feed(&ping(*b"h2spec\0\0", true)).unwrap();
    assert!(p.frames().is_empty());
    p.feed(&ping(*b"h2spec\0\0", false)).unwrap();
    let frames = p.frames();
    assert!(frames[0].is(kind::PING, 0) && frames[0].head.flags == flag::ACK);
    assert_eq!(frames[0].payload, b"h2spec\0\0");
    p.expect_goaway(&raw(kind::PING, 0, 1, &[0; 8]), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(&raw(kind::PING, 0, 0, &[0; 6]), ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn goaway_and_push_promise_frames() {
    let mut p = Peer::new();
    p.open(1);
    let mut g = Vec::new();
    frame::GoAway {
        last_stream_id: 0,
        code: ErrorCode::NO_ERROR,
        debug: b"bye",
    }
    .encode(&mut g);
    p.feed(&g).unwrap();
    assert_eq!(
        p.events(),
        [Event::GoAway {
            last_stream_id: 0,
            code: ErrorCode::NO_ERROR
        }]
    );
    assert!(p.conn.is_open(1));
    p.expect_goaway(&raw(kind::GOAWAY, 0, 1, &[0; 8]), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.expect_goaway(
        &raw(kind::GOAWAY, 0, 0, &[0; 7]),
        ErrorCode::FRAME_SIZE_ERROR,
    );

    let mut p = Peer::new();
    p.open(1);
    let mut pp = Vec::new();
    frame::PushPromise {
        stream_id: 1,
        promised_id: 2,
        end_headers: true,
        fragment: &block(&[(":status", "200")]),
    }
    .encode(&mut pp);
    p.expect_goaway(&pp, ErrorCode::PROTOCOL_ERROR);
    // The GOAWAY names the last stream processed.
    let _ = p;
}

#[test]
fn goaway_carries_last_processed_stream() {
    let mut p = Peer::new();
    p.open(1);
    p.open(7);
    let e = p.feed(&data(0, b"", false)).unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
    let frames = p.frames();
    let goaway = frames.last().unwrap();
    assert_eq!(&goaway.payload[..4], &7u32.to_be_bytes());
    assert_eq!(&goaway.payload[8..], e.reason.as_bytes());
    // A later graceful GOAWAY never raises the id.
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn
        .goaway(frame::MAX_WINDOW_SIZE, ErrorCode::NO_ERROR, &mut out);
    p.open(3);
    p.conn.goaway(3, ErrorCode::NO_ERROR, &mut out);
    p.conn.goaway(5, ErrorCode::NO_ERROR, &mut out);
    let ids: Vec<u32> = parse_frames(&out)
        .iter()
        .map(|f| u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]))
        .collect();
    assert_eq!(ids, [frame::MAX_WINDOW_SIZE, 3, 3]);
}

#[test]
fn continuation_frames() {
    let fragment = block(&GET);
    let (a, b) = fragment.split_at(5);
    // HEADERS + CONTINUATION + CONTINUATION.
    let mut p = Peer::new();
    p.feed(&headers(1, a, flag::END_STREAM)).unwrap();
    p.feed(&continuation(1, &b[..2], false)).unwrap();
    assert!(p.events().is_empty());
    p.feed(&continuation(1, &b[2..], true)).unwrap();
    assert!(matches!(p.events().as_slice(), [Event::Request(r)] if r.path() == "/events"));

    for interloper in [
        data(1, b"test", true),
        ping([0; 8], false),
        raw(0xff, 0, 0, b"00000000"),
        get(3),
        continuation(3, b, true),
        continuation(0, b, true),
    ] {
        let mut p = Peer::new();
        p.feed(&headers(1, a, flag::END_STREAM)).unwrap();
        p.expect_goaway(&interloper, ErrorCode::PROTOCOL_ERROR);
    }
    // CONTINUATION without a HEADERS before it.
    let mut p = Peer::new();
    p.expect_goaway(&continuation(1, &fragment, true), ErrorCode::PROTOCOL_ERROR);
    let mut p = Peer::new();
    p.open(1);
    p.expect_goaway(&continuation(1, &fragment, true), ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn unknown_frames_are_ignored() {
    let mut p = Peer::new();
    p.feed(&raw(0xff, 0xff, 0, b"anything")).unwrap();
    p.feed(&raw(0x10, 0, 1, b"")).unwrap();
    p.open(1);
    assert!(p.frames().is_empty());
}

#[test]
fn oversized_frames() {
    // Refused from the header alone, before the payload arrives.
    let mut p = Peer::new();
    let head = FrameHeader {
        length: 16_385,
        kind: kind::DATA,
        flags: 0,
        stream_id: 1,
    };
    p.expect_goaway(&head.encode(), ErrorCode::FRAME_SIZE_ERROR);
    // A HEADERS frame over the limit.
    let mut p = Peer::new();
    let dummy = "x".repeat(4000);
    let mut fields = GET.to_vec();
    for _ in 0..5 {
        fields.push(("x-dummy", &dummy));
    }
    p.expect_goaway(
        &headers(1, &block(&fields), flag::END_HEADERS),
        ErrorCode::FRAME_SIZE_ERROR,
    );
    // Exactly 2^14 is fine.
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.feed(&data(1, &[0; 16_384], true)).unwrap();
    assert_eq!(p.events().len(), 2);
}

#[test]
fn concurrency_limit() {
    let s = Settings {
        max_concurrent_streams: 2,
        ..Settings::default()
    };
    let mut p = Peer::with(s, Limits::default());
    p.open(1);
    p.open(3);
    p.expect_rst(&get(5), 5, ErrorCode::REFUSED_STREAM);
    assert_eq!(p.events(), []);
    // Streams the server closed no longer count.
    let mut out = Vec::new();
    p.conn.send_headers(1, 404, &[], true, &mut out);
    p.open(7);
    p.expect_rst(&get(9), 9, ErrorCode::REFUSED_STREAM);
    // Refused streams are closed: frames in flight on them are ignored.
    p.feed(&data(9, b"late", true)).unwrap();
    assert!(p
        .frames()
        .iter()
        .all(|f| f.head.kind == kind::WINDOW_UPDATE));
}

#[test]
fn response_head_spanning_frames() {
    let mut p = Peer::new();
    p.open(1);
    let big = vec![b'v'; 40_000];
    let mut out = Vec::new();
    p.conn.send_headers(
        1,
        200,
        &[("x-big", &big), ("x-small", b"s")],
        true,
        &mut out,
    );
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 3);
    assert!(frames[0].is(kind::HEADERS, 1) && frames[0].head.flags == flag::END_STREAM);
    assert!(frames[1].is(kind::CONTINUATION, 1) && frames[1].head.flags == 0);
    assert!(frames[2].is(kind::CONTINUATION, 1) && frames[2].head.flags == flag::END_HEADERS);
    assert!(frames.iter().all(|f| f.payload.len() <= 16_384));
    let fields = p.response(&frames);
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[1].1.len(), 40_000);
    assert_eq!(fields[2], ("x-small".to_string(), "s".to_string()));
    assert!(!p.conn.is_open(1));
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "CR, LF or NUL"))]
fn response_value_with_crlf_is_left_out() {
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn
        .send_headers(1, 200, &[("x-ctl", b"a\r\nb")], false, &mut out);
    let frames = parse_frames(&out);
    assert_eq!(p.response(&frames).len(), 1);
}

#[test]
fn early_response_cancels_the_request_body() {
    let mut p = Peer::new();
    p.feed(&post(1)).unwrap();
    p.events();
    let mut out = Vec::new();
    assert!(p.conn.send_headers(1, 204, &[], true, &mut out));
    let frames = parse_frames(&out);
    assert!(frames[0].is(kind::HEADERS, 1) && frames[0].head.has(flag::END_STREAM));
    assert!(frames[1].is(kind::RST_STREAM, 1) && frames[1].code() == ErrorCode::NO_ERROR);
    // The body still in flight is ignored, its connection credit returned.
    p.feed(&data(1, &[0; 16_384], false)).unwrap();
    p.feed(&data(1, &[0; 16_384], true)).unwrap();
    let frames = p.frames();
    assert!(
        frames.iter().all(|f| f.is(kind::WINDOW_UPDATE, 0)),
        "{frames:?}"
    );
    assert_eq!(p.events(), []);
}

#[test]
fn server_reset_and_end_of_stream() {
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    out.clear();
    assert!(p.conn.reset_stream(1, ErrorCode::NO_ERROR, &mut out));
    assert!(!p.conn.reset_stream(1, ErrorCode::NO_ERROR, &mut out));
    let frames = parse_frames(&out);
    assert!(frames.len() == 1 && frames[0].is(kind::RST_STREAM, 1));
    assert_eq!(p.conn.send_capacity(1), 0);
    // Frames in flight are ignored.
    p.feed(&window_update(1, 10)).unwrap();
    p.feed(&rst(1, ErrorCode::CANCEL)).unwrap();
    assert!(p.frames().is_empty());
    assert_eq!(p.events(), []);

    // END_STREAM on an empty DATA frame.
    let mut p = Peer::new();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    assert_eq!(
        p.conn.data_frame_header(1, 0, true),
        [0, 0, 0, 0, 1, 0, 0, 0, 1]
    );
    assert!(!p.conn.is_open(1));
    assert!(!p.conn.has_output());
}

#[test]
fn send_data_respects_windows() {
    let mut p = Peer::new();
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 20_000)]))
        .unwrap();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    out.clear();
    let value = vec![7u8; 100_000];
    let sent = p.conn.send_data(1, &value, true, &mut out);
    assert_eq!(sent, 20_000);
    let frames = parse_frames(&out);
    assert_eq!(
        frames.iter().map(|f| f.payload.len()).collect::<Vec<_>>(),
        [16_384, 3_616]
    );
    assert!(frames.iter().all(|f| !f.head.has(flag::END_STREAM)));
    // Zero window: nothing is written, no empty frame.
    out.clear();
    assert_eq!(p.conn.send_data(1, &value[sent..], true, &mut out), 0);
    assert!(out.is_empty());
    // Reopened by the client: the rest goes out, END_STREAM on the last frame.
    p.feed(&window_update(0, 100_000)).unwrap();
    p.feed(&window_update(1, 100_000)).unwrap();
    let sent2 = p.conn.send_data(1, &value[sent..], true, &mut out);
    assert_eq!(sent + sent2, 100_000);
    let frames = parse_frames(&out);
    assert!(frames.last().unwrap().head.has(flag::END_STREAM));
    assert_eq!(
        frames.iter().map(|f| f.payload.len()).sum::<usize>(),
        80_000
    );
    assert!(!p.conn.is_open(1));
}

#[test]
fn zero_window_stall_stays_bounded() {
    let mut p = Peer::new();
    p.feed(&settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]))
        .unwrap();
    p.open(1);
    let mut out = Vec::new();
    p.conn.send_headers(1, 200, &[], false, &mut out);
    for _ in 0..1000 {
        assert_eq!(p.conn.send_capacity(1), 0);
        out.clear();
        assert_eq!(p.conn.send_data(1, b"event", false, &mut out), 0);
        assert!(out.is_empty());
    }
}

#[test]
fn zilla_window_zero_grants_body_credit() {
    let s = Settings {
        initial_window_size: 0,
        ..Settings::default()
    };
    let mut p = Peer::with(s, Limits::default());
    p.feed(&post(1)).unwrap();
    let frames = p.frames();
    assert!(frames[0].is(kind::WINDOW_UPDATE, 1));
    assert_eq!(frames[0].payload, 65_535u32.to_be_bytes());
    p.feed(&data(1, &[0; 16_384], false)).unwrap();
    assert_eq!(p.events().len(), 2);

    // Before the ACK the default 65535 applies, then the difference is granted back.
    let mut q = Peer::unacked(s, Limits::default());
    q.feed(&post(1)).unwrap();
    assert!(q.frames().is_empty());
    q.feed(&data(1, &[0; 10_000], false)).unwrap();
    q.feed(&settings_ack()).unwrap();
    let frames = q.frames();
    assert!(frames[0].is(kind::WINDOW_UPDATE, 1));
    assert_eq!(frames[0].payload, 75_535u32.to_be_bytes());
}

#[test]
fn header_table_size_lowered_by_our_settings() {
    let s = Settings {
        header_table_size: 0,
        ..Settings::default()
    };
    let mut p = Peer::with(s, Limits::default());
    // The first block after the ACK must start with a size update.
    p.expect_goaway(&get(1), ErrorCode::COMPRESSION_ERROR);
    let mut p = Peer::with(s, Limits::default());
    let fragment = [&[0x20][..], &block(&GET)].concat();
    p.feed(&headers(1, &fragment, flag::END_HEADERS | flag::END_STREAM))
        .unwrap();
    assert_eq!(p.events().len(), 1);
    // Before the ACK, the default 4096 applies and no update is owed.
    let mut q = Peer::unacked(s, Limits::default());
    q.feed(&headers(
        1,
        &[0x82, 0x87, 0x84, 0x40, 1, b'k', 1, b'v'],
        flag::END_HEADERS | flag::END_STREAM,
    ))
    .unwrap();
    assert_eq!(q.events().len(), 1);
}

// ---- hardening

#[test]
fn hpack_bomb_is_answered_431() {
    let mut p = Peer::new();
    // One 4000-octet entry, then referenced 1000 times: 4 MB decoded from ~1 KB.
    let mut fragment = block(&GET);
    fragment.push(0x40);
    encode_string(b"x-bomb", &mut fragment);
    encode_string(&[b'b'; 4000], &mut fragment);
    for _ in 0..1000 {
        encode_int(62, 7, 0x80, &mut fragment);
    }
    assert!(fragment.len() < 8192);
    p.feed(&headers(1, &fragment, flag::END_HEADERS | flag::END_STREAM))
        .unwrap();
    assert_eq!(p.events(), []);
    let frames = p.frames();
    assert!(frames[0].is(kind::HEADERS, 1) && frames[0].head.has(flag::END_STREAM));
    assert_eq!(
        p.response(&frames),
        [(":status".to_string(), "431".to_string())]
    );
    assert_eq!(p.conn.last_stream_id(), 1);
    // The HPACK state stayed in sync: the entry is usable by the next request.
    let mut next = block(&GET);
    encode_int(62, 7, 0x80, &mut next);
    p.feed(&headers(3, &next, flag::END_HEADERS | flag::END_STREAM))
        .unwrap();
    match p.events().as_slice() {
        [Event::Request(r)] => assert_eq!(r.header("x-bomb").map(<[u8]>::len), Some(4000)),
        other => panic!("{other:?}"),
    }
    // With a body pending, the 431 is followed by RST_STREAM(NO_ERROR).
    let mut big = block(&POST);
    for _ in 0..3 {
        encode_int(62, 7, 0x80, &mut big);
    }
    p.feed(&headers(5, &big, flag::END_HEADERS)).unwrap();
    let frames = p.frames();
    assert!(frames[0].is(kind::HEADERS, 5));
    assert!(frames[1].is(kind::RST_STREAM, 5) && frames[1].code() == ErrorCode::NO_ERROR);
    p.feed(&data(5, b"ignored", true)).unwrap();
}

#[test]
fn continuation_flood() {
    // Octets: a block longer than twice MAX_HEADER_LIST_SIZE is refused as it arrives.
    let mut p = Peer::new();
    p.feed(&headers(1, &block(&GET), 0)).unwrap();
    let chunk = vec![0x82; 4096];
    let mut refused = None;
    for i in 0..100 {
        match p.conn.recv(&continuation(1, &chunk, false), NOW) {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e.code));
                break;
            }
        }
    }
    assert_eq!(refused, Some((3, ErrorCode::ENHANCE_YOUR_CALM)));
    assert!(p.conn.block.capacity() <= 2 * 8192 + 4096);

    // Frames: endless empty CONTINUATION frames.
    let mut p = Peer::new();
    p.feed(&headers(1, &block(&GET), 0)).unwrap();
    for _ in 0..32 {
        p.feed(&continuation(1, b"", false)).unwrap();
    }
    p.expect_goaway(&continuation(1, b"", false), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn rapid_reset() {
    let limits = Limits {
        reset_burst: 50,
        resets_per_sec: 10,
        ..Limits::default()
    };
    let mut p = Peer::with(Settings::default(), limits);
    let mut id = 1;
    let mut result = Ok(());
    for _ in 0..1000 {
        result = p
            .feed(&get(id))
            .and_then(|()| p.feed(&rst(id, ErrorCode::CANCEL)));
        if result.is_err() {
            break;
        }
        id += 2;
    }
    assert_eq!(result.unwrap_err().code, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(id, 1 + 2 * 50);
    let frames = p.frames();
    assert_eq!(frames.last().unwrap().code(), ErrorCode::ENHANCE_YOUR_CALM);

    // At the allowed rate it never trips; streams answered before the reset are free.
    let mut p = Peer::with(Settings::default(), limits);
    let mut id = 1;
    for second in 0..100 {
        p.now = NOW + second;
        for _ in 0..10 {
            p.feed(&get(id)).unwrap();
            p.feed(&rst(id, ErrorCode::CANCEL)).unwrap();
            id += 2;
        }
        p.events();
    }
    for _ in 0..500 {
        p.open(id);
        let mut out = Vec::new();
        p.conn.send_headers(id, 200, &[], false, &mut out);
        p.feed(&rst(id, ErrorCode::CANCEL)).unwrap();
        p.events();
        id += 2;
    }
    p.frames();

    // Malformed requests count too.
    let mut p = Peer::with(Settings::default(), limits);
    let bad = [block(&GET), literal(b"Bad", b"x")].concat();
    let mut id = 1;
    while p
        .feed(&headers(id, &bad, flag::END_HEADERS | flag::END_STREAM))
        .is_ok()
    {
        id += 2;
        assert!(id < 1000);
    }
    assert_eq!(id, 1 + 2 * 50);
}

#[test]
fn ping_and_settings_floods() {
    let limits = Limits {
        control_burst: 100,
        control_per_sec: 10,
        ..Limits::default()
    };
    for flood in [ping(*b"flooding", false), settings(&[])] {
        let mut p = Peer::with(Settings::default(), limits);
        let mut n = 0;
        let e = loop {
            match p.feed(&flood) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
            p.frames();
        };
        // The client's SETTINGS and ACK of the handshake took two tokens.
        assert_eq!((n, e.code), (98, ErrorCode::ENHANCE_YOUR_CALM));
    }
    // Within the rate, fine.
    let mut p = Peer::with(Settings::default(), limits);
    for second in 0..100 {
        p.now = NOW + second;
        for _ in 0..10 {
            p.feed(&ping(*b"pingpong", false)).unwrap();
        }
        p.frames();
    }
    // Empty DATA frames without END_STREAM count as well.
    let mut p = Peer::with(Settings::default(), limits);
    p.feed(&post(1)).unwrap();
    let mut n = 0;
    while p.feed(&data(1, b"", false)).is_ok() {
        n += 1;
    }
    assert_eq!(n, 98);
}

#[test]
fn undrained_output_is_bounded() {
    let limits = Limits {
        max_queued_output: 1000,
        ..Limits::default()
    };
    let mut p = Peer::with(Settings::default(), limits);
    let pings: Vec<u8> = (0..100).flat_map(|_| ping(*b"pingpong", false)).collect();
    let e = p.conn.recv(&pings, NOW).unwrap_err();
    assert_eq!(e.code, ErrorCode::ENHANCE_YOUR_CALM);
    let mut out = Vec::new();
    p.conn.write_output(&mut out);
    assert!(out.len() < 1100);
}

#[test]
fn memory_of_a_connection_is_bounded() {
    // Many requests, bodies and closes: the buffers the connection keeps stay small.
    let mut p = Peer::new();
    let mut id = 1;
    for _ in 0..2000 {
        p.feed(&post(id)).unwrap();
        p.feed(&data(id, &[1; 1000], true)).unwrap();
        let mut out = Vec::new();
        p.conn.send_headers(id, 204, &[], true, &mut out);
        p.events();
        p.frames();
        id += 2;
    }
    assert_eq!(p.conn.open_streams(), 0);
    assert!(p.conn.closed_len() <= 64);
    assert!(p.conn.block.capacity() <= 2 * 8192);
}
