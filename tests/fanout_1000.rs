//! 1,000 concurrent streams on one topic, each receiving every record exactly once, read by
//! real curl processes (`--parallel`; curl 7.88 caps `--parallel-max` at 300, so 4 × 250).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn a_thousand_streams_each_get_every_record() {
    let (broker, producer) = Broker::with_topic("fanout", 3);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .bootstrap_topic("fanout")
        .route(Route::any_topic())
        .start(&[]);

    // Some records before the streams open (replayed), some while they are open (live).
    let before = produce_spread(&producer, "fanout", 3, 4, "before");
    let urls: Vec<String> = (0..1000).map(|_| server.url("/fanout")).collect();
    let fleet = CurlFleet::open(&urls, 250);
    fleet
        .wait_all(before.len(), Duration::from_secs(60))
        .unwrap();
    let after = produce_spread(&producer, "fanout", 3, 4, "after");
    let all: Vec<_> = before.into_iter().chain(after).collect();
    fleet.wait_all(all.len(), Duration::from_secs(60)).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // let any duplicate show up
    for i in 0..fleet.n {
        let events = fleet.events(i);
        assert_eq!(events.len(), all.len(), "stream {i}");
        assert_exactly_once(&events, &all);
    }
    // The server is still answering new clients.
    assert_eq!(
        Sse::open(&server.url("/fanout"))
            .expect(all.len(), WAIT)
            .len(),
        all.len()
    );
}
