//! Several workers: every topic-partition is fetched by one worker and shared with the
//! streams of the others (issue 2, point 4). With `--workers 2`, 4 partitions and 40
//! connections spread by SO_REUSEPORT, streams whose partitions are owned by the other worker
//! are all but certain (every one of 40 connections landing on one worker has a chance of
//! about 2^-39).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn many_streams_over_two_workers_get_everything() {
    let broker = Broker::start();
    broker.create_topic("spread", 4);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .start(&["--workers", "2"]);
    let before = produce_spread(&producer, "spread", 4, 3, "before");
    let urls: Vec<String> = (0..40).map(|_| server.url("/spread")).collect();
    let fleet = CurlFleet::open(&urls, 40);
    fleet.wait_all(before.len(), WAIT).unwrap();
    let after = produce_spread(&producer, "spread", 4, 3, "after");
    let all: Vec<_> = before.into_iter().chain(after).collect();
    fleet.wait_all(all.len(), WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // let any duplicate show up
    for i in 0..fleet.n {
        assert_exactly_once(&fleet.events(i), &all);
    }
    assert!(server.logs().contains("listening on"));
}

/// `--workers 1` works too (everything on one thread).
#[test]
fn one_worker() {
    let broker = Broker::start();
    broker.create_topic("solo", 2);
    let producer = Producer::new(&broker.bootstrap());
    let server = Server::direct(&broker.bootstrap(), &["--workers", "1"]);
    let all = produce_spread(&producer, "solo", 2, 3, "v");
    let a = Sse::open(&server.url("/solo"));
    let b = Sse::open(&server.url("/solo"));
    assert_exactly_once(&a.expect(all.len(), WAIT), &all);
    assert_exactly_once(&b.expect(all.len(), WAIT), &all);
}
