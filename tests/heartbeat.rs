//! The idle `:` comment heartbeat (decisions.md 3.6): `--heartbeat SECS`, 0 turns it off.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn idle_streams_get_comment_heartbeats() {
    let broker = Broker::with_empty_topic("quiet", 1);
    let server = Server::direct(&broker.bootstrap(), &["--heartbeat", "1"]);
    let sse = Sse::open(&server.url("/quiet"));
    assert_eq!(sse.status(WAIT), Some(200));
    // Two heartbeats on an idle stream, and nothing else: exactly ":\n\n" each.
    assert!(
        sse.wait_body(Duration::from_secs(10), |b| b.len() >= 6),
        "no heartbeat: {:?}",
        sse.body()
    );
    let body = sse.body();
    assert!(
        body.chunks(3).all(|c| c == b":\n\n"),
        "an idle stream carries only `:\\n\\n` comments, got {:?}",
        String::from_utf8_lossy(&body)
    );
    assert!(sse.comments() >= 2);

    // Events still flow, and heartbeats resume when the stream is idle again.
    Producer::new(&broker.bootstrap()).send_value("quiet", Some(0), "tick");
    assert_eq!(sse.expect(1, WAIT)[0].data, "tick");
    let after_event = sse.comments();
    assert!(
        wait_until(Duration::from_secs(10), || sse.comments() > after_event),
        "no heartbeat after the event"
    );
    assert!(String::from_utf8_lossy(&sse.body()).ends_with(":\n\n"));
}

#[test]
fn heartbeat_zero_turns_it_off() {
    let broker = Broker::with_empty_topic("quiet", 1);
    let server = Server::direct(&broker.bootstrap(), &["--heartbeat", "0"]);
    let sse = Sse::open(&server.url("/quiet"));
    assert_eq!(sse.status(WAIT), Some(200));
    // A negative check needs a wait; 2.5 s is well past a 1 s heartbeat, and far below the
    // 15 s default, so this only tells whether `0` disables it.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        sse.body(),
        b"",
        "no bytes expected on an idle stream with --heartbeat 0"
    );
}
