//! Graceful shutdown: SIGTERM or SIGINT stops accepting, ends the streams and exits within
//! 5 s (issue 2, point 1) when the drain timeout is short (tests/drain.rs covers the drain).

mod common;
use common::*;
use std::time::Duration;

/// A drain short enough for the 5 s bound.
const DRAIN_FAST: &[&str] = &["--drain-grace", "0.2", "--drain-timeout", "3"];

fn shutdown_with(sig: i32) {
    let (broker, producer) = Broker::with_topic("t", 2);
    producer.send_value("t", Some(0), "x");
    let mut server = Server::direct(&broker.bootstrap(), DRAIN_FAST);
    let streams: Vec<Sse> = (0..5).map(|_| Sse::open(&server.url("/t"))).collect();
    for s in &streams {
        assert_eq!(s.expect(1, WAIT)[0].data, "x");
    }
    // A keep-alive connection with no request in flight, too.
    let mut idle = HttpConn::connect(&server.addr());

    let (status, took) = server.stop_with(sig, Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("still running 5 s after signal {sig}"));
    // A clean exit is what a service manager expects after SIGTERM/SIGINT.
    assert!(status.success(), "exit status {status} after signal {sig}");
    eprintln!("exited in {took:?}");
    for s in &streams {
        assert!(s.wait_eof(WAIT), "a stream outlived the server");
    }
    assert!(idle.closed_within(WAIT));
    assert!(
        std::net::TcpStream::connect(server.addr()).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn sigterm_ends_streams_and_exits() {
    shutdown_with(libc::SIGTERM);
}

#[test]
fn sigint_ends_streams_and_exits() {
    shutdown_with(libc::SIGINT);
}

/// Shutdown also works while the broker is unreachable (nothing waits on Kafka forever).
#[test]
fn shutdown_while_broker_is_gone() {
    let broker = Broker::with_empty_topic("t", 1);
    let mut server = Server::direct(&broker.bootstrap(), DRAIN_FAST);
    let s = Sse::open(&server.url("/t"));
    assert_eq!(s.status(WAIT), Some(200));
    drop(broker);
    let (status, took) = server.stop_with(libc::SIGTERM, Duration::from_secs(5));
    assert!(
        status.is_some(),
        "did not exit within 5 s with the broker gone"
    );
    eprintln!("exited in {took:?}");
}
