//! A client that closes first while its stream is being written does not disturb another
//! connection. When an HTTP/1.1 SSE client goes away, the server's reader and writer halves of
//! that socket end; anything that still acts on the socket's descriptor number afterwards (a
//! shutdown(2) to wake the other half, the stall cut's abort) would hit whatever connection the
//! kernel handed that number to in between — on the epoll driver the descriptor is closed at
//! once when the last half drops, and another worker thread may accept a connection into it.
//!
//! The server runs with two workers, once on the epoll driver (`SSE_KAFKA_IO_DRIVER=epoll`)
//! and once on the default io_uring driver (its closes go through the ring as well, and a
//! number once closed is just as free for the next accept). Hammer threads open streams that
//! replay a few hundred records, read a little and close abruptly (unread bytes pending: the
//! kernel answers with RST) while the server is writing to them.
//! Meanwhile streams are opened one by one — each a fresh connection that could be handed a
//! descriptor number just freed — and every one of them, and every hammer client before it
//! closes, must receive its bytes: the steady streams every record exactly once, in order,
//! uncorrupted, over HTTP/1.1 and HTTP/2.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Records in the topic before the hammer starts (what each hammer client's stream replays).
const PRELOAD: usize = 600;
/// Records produced while the hammer runs.
const LIVE: usize = 600;
const ROUND: usize = 30;
const HAMMER_THREADS: usize = 4;
/// Steady streams opened one after another during the hammer (every third over HTTP/2).
const STEADY: usize = 24;

fn value(i: usize) -> String {
    let head = format!("r{i:05}-");
    format!("{head}{}", "y".repeat(220 - head.len()))
}

/// A stream that reads until it has `want` bytes of the response, then drops the socket with
/// those bytes unread behind it. Returns false when the server closed it before `want` bytes.
fn hammer_one(addr: &str, want: usize) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return true; // a refused connect is not a disturbed stream
    };
    s.set_read_timeout(Some(WAIT)).ok();
    if s.write_all(&sse_request("/feed", addr)).is_err() {
        return false;
    }
    let mut got = 0;
    let mut buf = [0u8; 4096];
    while got < want {
        match s.read(&mut buf[..(want - got).min(4096)]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

#[test]
fn clients_closing_first_do_not_disturb_other_connections_on_the_epoll_driver() {
    hammer_beside_steady_streams(Some("epoll"), "epoll driver");
}

#[test]
fn clients_closing_first_do_not_disturb_other_connections_on_the_io_uring_driver() {
    hammer_beside_steady_streams(None, "io_uring driver");
}

/// The test on the driver `SSE_KAFKA_IO_DRIVER=driver` selects (None: the default), which the
/// server must confirm by logging `driver_log`.
fn hammer_beside_steady_streams(driver: Option<&str>, driver_log: &str) {
    let (broker, producer) = Broker::with_topic("feed", 1);
    let mut produced: Vec<(String, Delivered)> = Vec::new();
    for start in (0..PRELOAD).step_by(100) {
        let recs: Vec<Rec> = (start..start + 100)
            .map(|i| Rec::value(value(i)).partition(0))
            .collect();
        let d = producer.send_batch("feed", &recs);
        produced.extend((start..start + 100).map(value).zip(d));
    }

    let port = free_port();
    let zilla = Zilla::new(port, &broker.bootstrap())
        .route(Route::any_topic())
        .versions(&["http/1.1", "h2"]);
    let mut builder =
        Server::builder(port)
            .config(&zilla.yaml())
            .args(["--workers", "2", "--heartbeat", "0"]);
    if let Some(driver) = driver {
        builder = builder.env("SSE_KAFKA_IO_DRIVER", driver);
    }
    let server = builder.start();
    // Worker 0 logs the driver (a kernel without io_uring falls back to epoll and says so:
    // then this test would not test io_uring, and fails).
    assert!(
        server
            .log_lines()
            .wait_count(1, WAIT, |l| l.contains(driver_log)
                && !l.contains("unavailable")),
        "the server runs on the {driver_log}:\n{}",
        server.logs()
    );
    let addr = server.addr();
    let url = server.url("/feed");

    // The hammer: the replay of PRELOAD records is ~130 KiB; each client takes 1..64 KiB of it.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let disturbed = Arc::new(AtomicUsize::new(0));
    let hammers: Vec<_> = (0..HAMMER_THREADS)
        .map(|t| {
            let (stop, opened, disturbed, addr) = (
                stop.clone(),
                opened.clone(),
                disturbed.clone(),
                addr.clone(),
            );
            std::thread::spawn(move || {
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ t as u64;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let want = 1 + (x % (64 * 1024)) as usize;
                    if !hammer_one(&addr, want) {
                        disturbed.fetch_add(1, Ordering::Relaxed);
                    }
                    opened.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Steady streams open one by one while the hammer runs and the live records flow.
    let mut steady: Vec<Sse> = Vec::new();
    let mut next = PRELOAD;
    for k in 0..STEADY {
        steady.push(if k % 3 == 2 {
            Sse::open_args(&url, &["--http2-prior-knowledge"])
        } else {
            Sse::open(&url)
        });
        if k % 2 == 1 && next < PRELOAD + LIVE {
            let recs: Vec<Rec> = (next..next + ROUND)
                .map(|i| Rec::value(value(i)).partition(0))
                .collect();
            let d = producer.send_batch("feed", &recs);
            produced.extend((next..next + ROUND).map(value).zip(d));
            next += ROUND;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    while next < PRELOAD + LIVE {
        let recs: Vec<Rec> = (next..next + ROUND)
            .map(|i| Rec::value(value(i)).partition(0))
            .collect();
        let d = producer.send_batch("feed", &recs);
        produced.extend((next..next + ROUND).map(value).zip(d));
        next += ROUND;
    }
    let total = produced.len();
    for (k, s) in steady.iter().enumerate() {
        let events = s.expect(total, WAIT);
        assert_exactly_once(&events, &produced);
        assert!(!s.is_eof(), "steady stream {k} was closed");
    }
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    let opened = opened.load(Ordering::Relaxed);
    assert!(
        opened >= 100,
        "the hammer opened and closed {opened} streams: too few to mean anything"
    );
    assert_eq!(
        disturbed.load(Ordering::Relaxed),
        0,
        "of {opened} hammer streams, some were closed by the server before their bytes arrived"
    );
    // The server is still serving: a new stream gets everything.
    let last = Sse::open(&url);
    assert_eq!(last.collect(total, WAIT).len(), total);
}
