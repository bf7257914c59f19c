//! A topic that does not exist answers 404 within the metadata timeout instead of hanging
//! (decisions.md 3.4).

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn unknown_topic_is_404_within_the_metadata_timeout() {
    let (broker, producer) = Broker::with_topic("exists", 1);
    producer.send_value("exists", Some(0), "hello");
    let server = Server::direct(&broker.bootstrap(), &["--metadata-timeout-ms", "500"]);

    let t0 = Instant::now();
    let sse = Sse::open(&server.url("/does-not-exist"));
    assert_eq!(sse.status(WAIT), Some(404));
    // Not a performance assertion: only that it does not hang like the reference does.
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "404 took {:?}",
        t0.elapsed()
    );
    assert!(sse.wait_eof(WAIT), "the 404 response must end");

    // The server is fine otherwise.
    let ok = Sse::open(&server.url("/exists"));
    assert_eq!(ok.status(WAIT), Some(200));
    assert_eq!(ok.expect(1, WAIT)[0].data, "hello");
}

/// A topic created after a 404 is served on the next request: an unknown topic is not
/// remembered as unknown forever (what a user creating the topic would expect).
#[test]
fn topic_created_later_is_served() {
    let broker = Broker::start();
    let server = Server::direct(&broker.bootstrap(), &["--metadata-timeout-ms", "300"]);
    let first = curl(&server.url("/later"), &[]);
    assert_eq!(first.status, 404);
    broker.create_topic("later", 2);
    Producer::new(&broker.bootstrap()).send_value("later", Some(1), "now it exists");
    let mut got = None;
    // Metadata may be cached briefly: retry for a while.
    assert!(wait_until(WAIT, || {
        let sse = Sse::open(&server.url("/later"));
        match sse.status(WAIT) {
            Some(200) => {
                got = sse.next(WAIT);
                true
            }
            _ => false,
        }
    }));
    assert_eq!(got.unwrap().data, "now it exists");
}

/// Same through a zilla.yaml route with a static topic name.
#[test]
fn configured_route_to_a_missing_topic_is_404() {
    let broker = Broker::start();
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::new("/missing", "no-such-topic"))
        .start(&["--metadata-timeout-ms", "500"]);
    let r = curl(
        &server.url("/missing"),
        &["-H", "Accept: text/event-stream"],
    );
    assert_eq!(r.status, 404);
}
