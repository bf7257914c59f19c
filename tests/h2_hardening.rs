//! HTTP/2 hardening: each abuse gets the answer the server documents (proto/src/h2/settings.rs:
//! GOAWAY(ENHANCE_YOUR_CALM) for floods and rapid resets, 431 for a header list over
//! SETTINGS_MAX_HEADER_LIST_SIZE, FRAME_SIZE_ERROR for oversized frames, REFUSED_STREAM past
//! SETTINGS_MAX_CONCURRENT_STREAMS, RST_STREAM(CANCEL) for a stream stalled past its budget),
//! the server's memory stays bounded, and another client, an HTTP/2 SSE stream read by
//! `curl --http2-prior-knowledge` on its own connection, keeps receiving records throughout.
//! The flow-control side: a 100 kB value crosses a small stream window in many DATA frames,
//! none over the window or the frame size, and no DATA frame is ever empty but an END_STREAM.
//!
//! The attacking clients write frames by hand (testkit/src/h2wire.rs).

mod common;
use common::h2wire::{self, code, flag, kind, rss_kib, setting, Wire};
use common::*;
use std::time::{Duration, Instant};

const TOPIC: &str = "live";

/// Growth of the server's resident memory an attack may cause (KiB): the large CONTINUATION
/// flood offers 256 MiB and the HPACK bomb decodes to 48 MB per request, so a server that
/// buffered either would show here.
const RSS_BOUND_KIB: u64 = 64 * 1024;

struct Setup {
    broker: Broker,
    producer: Producer,
    server: Server,
    /// An HTTP/2 SSE stream on a connection of its own (curl).
    bystander: Sse,
    rss_before: u64,
}

fn setup(extra: &[&str]) -> Setup {
    let (broker, producer) = Broker::with_topic(TOPIC, 1);
    let server = Server::direct(&broker.bootstrap(), extra);
    let bystander = Sse::open_args(
        &server.url(&format!("/{TOPIC}")),
        &["--http2-prior-knowledge"],
    );
    let s = Setup {
        broker,
        producer,
        server,
        bystander,
        rss_before: 0,
    };
    s.bystander_streams("warm-up");
    Setup {
        rss_before: rss_kib(s.server.pid()),
        ..s
    }
}

impl Setup {
    fn path(&self) -> String {
        format!("/{TOPIC}")
    }

    /// Produces `tag` and waits until the bystander received it (after whatever came before).
    fn bystander_streams(&self, tag: &str) {
        self.producer.send_value(TOPIC, Some(0), tag);
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.bystander.next(left) {
                Some(e) if e.data == tag => return,
                Some(_) => {}
                None => panic!(
                    "the bystander stream did not receive {tag:?}: status {:?}, curl: {}",
                    self.bystander.status(Duration::ZERO),
                    self.bystander.curl_errors()
                ),
            }
        }
    }

    fn assert_memory_bounded(&self, what: &str) {
        let now = rss_kib(self.server.pid());
        assert!(
            now < self.rss_before + RSS_BOUND_KIB,
            "{what}: server RSS grew from {} KiB to {now} KiB",
            self.rss_before
        );
    }

    /// The connection got GOAWAY(`expected`) and was then closed; the bystander still streams
    /// and memory stayed bounded.
    fn assert_cut(&self, w: &mut Wire, expected: u32, what: &str) {
        let g = w
            .goaway(WAIT)
            .unwrap_or_else(|| panic!("{what}: no GOAWAY: {}", w.log_text()));
        assert_eq!(
            g.error_code(),
            Some(expected),
            "{what}: expected GOAWAY({}), got {g:?}",
            code::name(expected)
        );
        eprintln!("{what}: {g:?} after {} frames from the server", w.log.len());
        assert!(
            w.closed_within(WAIT),
            "{what}: the connection stays open after GOAWAY: {}",
            w.log_text()
        );
        self.bystander_streams(&format!("after {what}"));
        self.assert_memory_bounded(what);
    }
}

/// CVE-2023-44487: streams opened and reset at once, a thousand of them in one burst, cost
/// the client the connection (GOAWAY(ENHANCE_YOUR_CALM)); nothing is left behind and the
/// server serves new connections.
#[test]
fn rapid_reset_is_answered_with_enhance_your_calm() {
    let s = setup(&[]);
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    let b = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
    let mut burst = Vec::new();
    for i in 0..1000u32 {
        let id = 1 + 2 * i;
        burst.extend(h2wire::headers(id, &b, true, true));
        burst.extend(h2wire::rst_stream(id, code::CANCEL));
    }
    w.flood(burst.chunks(8192).map(|c| c.to_vec()));
    s.assert_cut(&mut w, code::ENHANCE_YOUR_CALM, "rapid reset");
    // A well-behaved client on a new connection is served.
    let mut fresh = Wire::handshake(&s.server.addr(), &[]);
    fresh.auto_window = true;
    fresh.get(1, &s.path());
    assert!(
        fresh.run_until(WAIT, |w| w.events(1).iter().any(|e| e.data == "warm-up")),
        "{}",
        fresh.log_text()
    );
}

/// A client cancelling streams it has been answered on at an ordinary pace is not a rapid
/// reset: 50 streams opened, answered, reset one by one, and the connection stays.
#[test]
fn ordinary_cancels_are_not_a_rapid_reset() {
    let s = setup(&[]);
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    w.auto_window = true;
    for i in 0..50u32 {
        let id = 1 + 2 * i;
        w.get(id, &s.path());
        let head = w
            .response(id, WAIT)
            .unwrap_or_else(|| panic!("{}", w.log_text()));
        assert_eq!(head.status(), Some(200));
        w.send(&h2wire::rst_stream(id, code::CANCEL));
    }
    assert!(w.alive(WAIT), "{}", w.log_text());
    assert!(
        w.log.iter().all(|f| !f.is(kind::GOAWAY)),
        "{}",
        w.log_text()
    );
    s.bystander_streams("after cancels");
}

/// CVE-2024-27316: a header block that never ends. Many small CONTINUATION frames hit the
/// frame count limit; few large ones hit the header block size limit. Either way the client
/// gets GOAWAY(ENHANCE_YOUR_CALM) long before the server has buffered much.
#[test]
fn continuation_flood_is_answered_with_enhance_your_calm() {
    let s = setup(&[]);
    // Many small frames: 100 000 CONTINUATIONs of one 10-octet literal each.
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    let head = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
    let one = h2wire::continuation(1, &h2wire::block(&[("x-a", "0123")]), false);
    let mut chunk = h2wire::headers(1, &head, true, false);
    let per_chunk = 4096;
    let mut chunks = Vec::new();
    for i in 0..100_000 {
        chunk.extend_from_slice(&one);
        if i % per_chunk == per_chunk - 1 {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    chunks.push(chunk);
    w.flood(chunks);
    s.assert_cut(
        &mut w,
        code::ENHANCE_YOUR_CALM,
        "CONTINUATION flood (many frames)",
    );

    // Few large frames: up to 256 MiB of 16 KiB CONTINUATIONs.
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    let big = h2wire::continuation(1, &vec![0u8; h2wire::DEFAULT_MAX_FRAME], false);
    let first = h2wire::headers(1, &head, true, false);
    let chunks = std::iter::once(first).chain((0..16_384).map(|_| big.clone()));
    let sent = w.flood(chunks);
    s.assert_cut(
        &mut w,
        code::ENHANCE_YOUR_CALM,
        "CONTINUATION flood (large frames)",
    );
    eprintln!("large-frame CONTINUATION flood: {sent} octets written before the server cut it");
}

/// A header block a few KiB long that decodes to megabytes: one 4000-octet field put in the
/// HPACK dynamic table, then referenced 12 000 times with one octet each. The request is
/// answered 431 (the server's documented answer), the decoded list is never built, and the
/// connection (whose HPACK state stays in step) serves the next request.
#[test]
fn hpack_bomb_is_answered_431() {
    let s = setup(&[]);
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    let mut bomb = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
    bomb.push(0x40); // literal with incremental indexing, new name
    h2wire::hpack_str(&mut bomb, b"x-bomb");
    h2wire::hpack_str(&mut bomb, &vec![b'a'; 4000]);
    bomb.extend(std::iter::repeat_n(0x80 | 62, 12_000)); // indexed: the entry just added
    assert!(bomb.len() <= h2wire::DEFAULT_MAX_FRAME, "{}", bomb.len());
    let decoded = 12_001 * (6 + 4000 + 32);
    let max_list = w
        .server_settings()
        .iter()
        .find(|(id, _)| *id == setting::MAX_HEADER_LIST_SIZE)
        .map(|(_, v)| *v as usize)
        .expect("server announces SETTINGS_MAX_HEADER_LIST_SIZE");
    assert!(decoded > 1000 * max_list);
    for i in 0..20u32 {
        let id = 1 + 2 * i;
        w.open_stream_window(id);
        w.send(&h2wire::headers(id, &bomb, true, true));
        let head = w
            .response(id, WAIT)
            .unwrap_or_else(|| panic!("no answer to the bomb on stream {id}: {}", w.log_text()));
        assert_eq!(head.status(), Some(431), "{head:?}");
        assert!(head.has(flag::END_STREAM), "{head:?}");
    }
    s.assert_memory_bounded("HPACK bomb");
    // Same connection, a normal request whose block references the bomb's table entry once
    // (a 4 KiB field, within the limit): the HPACK state stayed in step.
    w.auto_window = true;
    let mut normal = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
    normal.push(0x80 | 62);
    w.open_stream_window(41);
    w.send(&h2wire::headers(41, &normal, true, true));
    assert!(
        w.run_until(WAIT, |w| w.events(41).iter().any(|e| e.data == "warm-up")),
        "{}",
        w.log_text()
    );
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    s.bystander_streams("after the HPACK bomb");
}

/// SETTINGS, PING and empty DATA frames cost the server work each: 10 000 of them in a burst
/// end the connection with GOAWAY(ENHANCE_YOUR_CALM).
#[test]
fn control_frame_floods_are_answered_with_enhance_your_calm() {
    let s = setup(&[]);
    for what in ["SETTINGS", "PING", "empty DATA"] {
        let mut w = Wire::handshake(&s.server.addr(), &[]);
        let one = match what {
            "SETTINGS" => h2wire::settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535)]),
            "PING" => h2wire::ping(*b"flooding"),
            _ => {
                // On an open request stream (a GET still sending its body).
                let b = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
                w.open_stream_window(1);
                w.send(&h2wire::headers(1, &b, false, true));
                h2wire::data(1, &[], false)
            }
        };
        let burst: Vec<u8> = one.repeat(10_000);
        w.flood(burst.chunks(16_384).map(|c| c.to_vec()));
        s.assert_cut(&mut w, code::ENHANCE_YOUR_CALM, &format!("{what} flood"));
    }
}

/// A stalled HTTP/2 stream: the client keeps its connection busy-free and never gives window
/// back. The stream's events pile up on the server until the stream budget (`--stream-budget`,
/// 64 KiB here) is spent, then the stream must be cut with RST_STREAM(CANCEL) (the client
/// resumes by id), without the client sending anything more; its connection stays, nothing
/// past the window was sent, and the bystander received every record meanwhile.
///
/// Records go out in rounds of 48 KiB, each round produced once the bystander has the previous
/// one: a single fetch larger than the budget would cut every live stream, however fast
/// (tests/slow_client.rs), which is not what this test is about.
fn stalled_stream_is_cut_after_its_budget(initial_window: u32) {
    let budget = 64 * 1024;
    let s = setup(&["--stream-budget", &budget.to_string()]);
    let mut w = Wire::handshake(
        &s.server.addr(),
        &[(setting::INITIAL_WINDOW_SIZE, initial_window)],
    );
    w.get(1, &s.path());
    let head = w
        .response(1, WAIT)
        .unwrap_or_else(|| panic!("{}", w.log_text()));
    assert_eq!(head.status(), Some(200));
    let value = "v".repeat(8 * 1024);
    let (rounds, per_round) = (5, 6);
    for r in 0..rounds {
        for i in 0..per_round {
            s.producer
                .send_value(TOPIC, Some(0), &format!("{r}-{i}-{value}"));
        }
        let last = format!("{r}-{}-", per_round - 1);
        let deadline = Instant::now() + WAIT;
        loop {
            let e = s
                .bystander
                .next(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| {
                    panic!(
                        "bystander stalled in round {r}: curl {:?}",
                        s.bystander.curl_errors()
                    )
                });
            if e.data.starts_with(&last) {
                break;
            }
        }
        // The stalled client reads what arrives (no window update, no other frame).
        w.poll_ready();
    }
    // 240 KiB produced: the stream is far past its window plus budget.
    let rst = w.reset_of(1, WAIT).unwrap_or_else(|| {
        panic!(
            "stalled stream (initial window {initial_window}) not cut; it received {} DATA \
             octets: {}",
            w.data_frames(1)
                .iter()
                .map(|f| f.payload.len())
                .sum::<usize>(),
            w.log_text()
        )
    });
    assert_eq!(rst.error_code(), Some(code::CANCEL), "{rst:?}");
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    let sent: usize = w.data_frames(1).iter().map(|f| f.payload.len()).sum();
    assert!(
        sent <= initial_window as usize,
        "{sent} octets past a {initial_window} window"
    );
    assert!(w.alive(WAIT), "connection gone: {}", w.log_text());
    s.bystander_streams("after the stall");
    s.assert_memory_bounded("stalled stream");
}

/// SETTINGS_INITIAL_WINDOW_SIZE 0: the server may never send a DATA octet on the stream.
#[test]
fn zero_window_stream_is_cut_after_its_budget() {
    stalled_stream_is_cut_after_its_budget(0);
}

/// The default 65 535 window, never given back: stream and connection windows run dry.
#[test]
fn exhausted_window_stream_is_cut_after_its_budget() {
    stalled_stream_is_cut_after_its_budget(65_535);
}

/// Frames over SETTINGS_MAX_FRAME_SIZE (16 384): a HEADERS frame announcing 16 MiB (answered
/// at once, not after buffering the payload), a DATA frame one octet too long on an open
/// stream, and an unknown frame type one octet too long: FRAME_SIZE_ERROR each time.
#[test]
fn oversized_frames_are_frame_size_errors() {
    let s = setup(&[]);
    let too_big = h2wire::DEFAULT_MAX_FRAME + 1;
    for what in ["16 MiB HEADERS", "DATA", "unknown type"] {
        let mut w = Wire::handshake(&s.server.addr(), &[]);
        let bytes = match what {
            "16 MiB HEADERS" => {
                let mut b =
                    h2wire::frame_head(0xff_ffff, kind::HEADERS, flag::END_HEADERS, 1).to_vec();
                b.extend(h2wire::get_block(&w.authority.clone(), &s.path(), &[]));
                b
            }
            "DATA" => {
                let b = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
                w.open_stream_window(1);
                w.send(&h2wire::headers(1, &b, false, true));
                let head = w
                    .response(1, WAIT)
                    .unwrap_or_else(|| panic!("{}", w.log_text()));
                assert_eq!(head.status(), Some(200));
                h2wire::data(1, &vec![b'x'; too_big], true)
            }
            _ => h2wire::frame(0xfa, 0, 0, &vec![0; too_big]),
        };
        w.send(&bytes);
        let e = w
            .wait_for(WAIT, |f| f.is(kind::GOAWAY) || f.is(kind::RST_STREAM))
            .unwrap_or_else(|| panic!("{what}: no error: {}", w.log_text()));
        assert_eq!(
            e.error_code(),
            Some(code::FRAME_SIZE_ERROR),
            "{what}: {e:?}"
        );
        if e.is(kind::GOAWAY) {
            assert!(w.closed_within(WAIT), "{what}: {}", w.log_text());
        }
    }
    s.bystander_streams("after oversized frames");
    s.assert_memory_bounded("oversized frames");
}

/// SETTINGS_MAX_CONCURRENT_STREAMS is 100: 101 SSE streams opened in one burst, the 101st
/// gets RST_STREAM(REFUSED_STREAM), the 100 others are served and keep streaming, and once
/// one of them is reset a new stream is accepted.
#[test]
fn max_concurrent_streams_refuses_the_next_one() {
    let s = setup(&[]);
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    w.auto_window = true;
    let announced = w
        .server_settings()
        .iter()
        .find(|(id, _)| *id == setting::MAX_CONCURRENT_STREAMS)
        .map(|(_, v)| *v);
    assert_eq!(announced, Some(100));
    let b = h2wire::get_block(&w.authority.clone(), &s.path(), &[]);
    let mut burst = Vec::new();
    for i in 0..101u32 {
        let id = 1 + 2 * i;
        w.open_stream_window(id);
        burst.extend(h2wire::headers(id, &b, true, true));
    }
    w.send(&burst);
    let refused = w
        .reset_of(201, WAIT)
        .unwrap_or_else(|| panic!("stream 201 not refused: {}", w.log_text()));
    assert_eq!(
        refused.error_code(),
        Some(code::REFUSED_STREAM),
        "{refused:?}"
    );
    let ids: Vec<u32> = (0..100u32).map(|i| 1 + 2 * i).collect();
    assert!(
        w.run_until(WAIT, |w| ids.iter().all(|id| w.events(*id).len() == 1)),
        "not every stream got its first event: {}",
        w.log_text()
    );
    for id in &ids {
        let head = w.response(*id, Duration::ZERO).expect("head");
        assert_eq!(head.status(), Some(200), "stream {id}: {head:?}");
        assert!(
            w.reset_of(*id, Duration::ZERO).is_none(),
            "stream {id} reset"
        );
    }
    s.producer.send_value(TOPIC, Some(0), "to all hundred");
    assert!(
        w.run_until(WAIT, |w| ids.iter().all(|id| w
            .events(*id)
            .last()
            .is_some_and(|e| e.data == "to all hundred"))),
        "{}",
        w.log_text()
    );
    assert!(w.events(201).is_empty());
    // One slot frees up when a stream is reset.
    w.send(&h2wire::rst_stream(1, code::CANCEL));
    w.get(203, &s.path());
    let head = w
        .response(203, WAIT)
        .unwrap_or_else(|| panic!("{}", w.log_text()));
    assert_eq!(head.status(), Some(200));
    assert!(w.reset_of(203, Duration::ZERO).is_none());
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    s.bystander_streams("after 101 streams");
}

/// A 100 kB value crosses the windows: with a 4 KiB stream window (given back frame by frame
/// with WINDOW_UPDATE) it arrives in 25 or more DATA frames none over the window; with a
/// 1 MiB window it arrives in frames none over the client's 16 KiB SETTINGS_MAX_FRAME_SIZE.
/// The bytes are exactly the value's, and no DATA frame is empty.
#[test]
fn large_value_crosses_small_windows_in_many_frames() {
    let s = setup(&[]);
    let value: String = (0..100_000u32)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut small = Wire::handshake(&s.server.addr(), &[(setting::INITIAL_WINDOW_SIZE, 4096)]);
    let mut large = Wire::handshake(&s.server.addr(), &[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]);
    large.grant(0, 1 << 20);
    for w in [&mut small, &mut large] {
        w.auto_window = true;
        w.get(1, &s.path());
        assert!(
            w.run_until(WAIT, |w| w.events(1).len() == 1),
            "{}",
            w.log_text()
        );
    }
    let before_small = small.data_frames(1).len();
    let before_large = large.data_frames(1).len();
    s.producer.send_value(TOPIC, Some(0), &value);
    for (name, w, min_frames, max_len) in [
        ("4 KiB window", &mut small, 25, 4096),
        ("1 MiB window", &mut large, 7, h2wire::DEFAULT_MAX_FRAME),
    ] {
        assert!(
            w.run_until(WAIT, |w| w.events(1).len() == 2),
            "{name}: {}",
            w.log_text()
        );
        let events = w.events(1);
        assert!(
            events[1].data == value,
            "{name}: value differs ({} octets)",
            events[1].data.len()
        );
        let frames: Vec<usize> = w.data_frames(1).iter().map(|f| f.payload.len()).collect();
        let before = if name.starts_with('4') {
            before_small
        } else {
            before_large
        };
        let new = &frames[before..];
        assert!(
            new.len() >= min_frames,
            "{name}: {} frames: {new:?}",
            new.len()
        );
        assert!(
            new.iter().all(|&n| n > 0 && n <= max_len),
            "{name}: {new:?}"
        );
        assert!(w.violations.is_empty(), "{name}: {:?}", w.violations);
    }
    s.bystander_streams("after the large value");
}

/// Many small records to several streams with various windows (1, 100 and 65 535 octets,
/// given back frame by frame), one stream reset by the client: no DATA frame is ever empty
/// (a live SSE stream has no END_STREAM, the one case an empty DATA frame is allowed), none
/// exceeds a window, and every stream gets every record.
#[test]
fn no_empty_data_frames() {
    // The connections are read one after the other, and the one with a 1-octet window takes
    // seconds (a round trip per octet): the others must not count as stalled meanwhile.
    let s = setup(&["--stall-timeout", "0"]);
    let mut conns: Vec<Wire> = [1u32, 100, 65_535]
        .iter()
        .map(|&iws| {
            let mut w = Wire::handshake(&s.server.addr(), &[(setting::INITIAL_WINDOW_SIZE, iws)]);
            w.auto_window = true;
            for id in [1, 3, 5] {
                w.get(id, &s.path());
            }
            w
        })
        .collect();
    for w in conns.iter_mut() {
        assert!(
            w.run_until(WAIT, |w| [1, 3, 5]
                .iter()
                .all(|id| w.events(*id).len() == 1)),
            "{}",
            w.log_text()
        );
        w.send(&h2wire::rst_stream(5, code::CANCEL));
    }
    let recs: Vec<Rec> = (0..300)
        .map(|i| Rec::value(format!("r{i}")).partition(0))
        .collect();
    Producer::batching(&s.broker.bootstrap()).send_batch(TOPIC, &recs);
    for w in conns.iter_mut() {
        assert!(
            w.run_until(WAIT, |w| [1, 3].iter().all(|id| w.events(*id).len() == 301)),
            "{}",
            w.log_text()
        );
        for id in [1, 3] {
            let data: Vec<String> = w.events(id).iter().map(|e| e.data.clone()).collect();
            let expected: Vec<String> = std::iter::once("warm-up".to_string())
                .chain((0..300).map(|i| format!("r{i}")))
                .collect();
            assert_eq!(data, expected, "initial window {}", w.initial_window);
        }
        let empty = w
            .log
            .iter()
            .filter(|f| f.is(kind::DATA) && f.payload.is_empty())
            .count();
        assert_eq!(empty, 0, "{}", w.log_text());
        assert!(w.violations.is_empty(), "{:?}", w.violations);
    }
    s.bystander_streams("after the small records");
}

/// Graceful shutdown (SIGTERM) over HTTP/2: every open stream ends with END_STREAM (on an
/// empty DATA frame at most, the one allowed), and the connection with GOAWAY(NO_ERROR)
/// before it closes; HTTP/1.1 clients get their terminating chunk in the same situation.
#[test]
fn graceful_shutdown_ends_streams_with_end_stream_and_goaway() {
    let mut s = setup(&["--drain-grace", "0.2", "--drain-timeout", "3"]);
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    w.auto_window = true;
    for id in [1, 3] {
        w.get(id, &s.path());
    }
    assert!(
        w.run_until(WAIT, |w| [1, 3].iter().all(|id| w.events(*id).len() == 1)),
        "{}",
        w.log_text()
    );
    s.server.signal(libc::SIGTERM);
    assert!(
        w.closed_within(WAIT),
        "not closed on shutdown: {}",
        w.log_text()
    );
    assert!(s.server.wait_exit(WAIT).is_some(), "server did not exit");
    let g = w.goaway(Duration::ZERO);
    let ends: Vec<u32> = [1u32, 3]
        .into_iter()
        .filter(|id| {
            w.log
                .iter()
                .any(|f| f.stream == *id && f.is(kind::DATA) && f.has(flag::END_STREAM))
        })
        .collect();
    assert!(
        g.as_ref().and_then(|g| g.error_code()) == Some(code::NO_ERROR) && ends == [1, 3],
        "shutdown: GOAWAY {g:?}, streams ended with END_STREAM: {ends:?}; {}",
        w.log_text()
    );
    assert!(w.violations.is_empty(), "{:?}", w.violations);
}
