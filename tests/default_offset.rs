//! Where a stream without an id starts: the earliest retained record by default
//! (`historical`), the end of the topic with `defaultOffset: live` on the cache_server topic
//! (decisions.md 3.5).

mod common;
use common::*;
use std::time::Duration;

fn setup() -> (Broker, Producer, Server) {
    let broker = Broker::with_empty_topic("live", 3);
    broker.create_topic("hist", 3);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::any_topic(&broker.bootstrap())
        .topic_offset("live", "live")
        .topic_offset("hist", "historical")
        .start(&[]);
    (broker, producer, server)
}

#[test]
fn historical_is_the_default_and_replays_everything() {
    let (_b, producer, server) = setup();
    let old = produce_spread(&producer, "hist", 3, 3, "old");
    let sse = Sse::open(&server.url("/hist"));
    let events = sse.expect(old.len(), WAIT);
    assert_exactly_once(&events, &old);
}

#[test]
fn live_starts_at_the_end() {
    let (_b, producer, server) = setup();
    let old = produce_spread(&producer, "live", 3, 3, "old");
    let sse = Sse::open(&server.url("/live"));
    assert_eq!(sse.status(WAIT), Some(200));
    // The 200 may go out before every partition is positioned (decisions.md 3.4), so the exact
    // start is "about now": probe until a freshly produced record arrives, then check that no
    // old record ever came and that everything after the probe arrives exactly once.
    let mut probes = Vec::new();
    let mut first = None;
    for i in 0..20 {
        let v = format!("probe-{i}");
        probes.push((v.clone(), producer.send_value("live", Some(i % 3), &v)));
        if let Some(e) = sse.next(Duration::from_secs(1)) {
            first = Some(e);
            break;
        }
    }
    let first = first.expect("no record produced after the 200 ever arrived on a live stream");
    assert!(
        first.data.starts_with("probe-"),
        "a live stream replayed history: {first:?} (old: {old:?})"
    );
    let new = produce_spread(&producer, "live", 3, 3, "new");
    let mut events = vec![first];
    let new_seen = |events: &[Event]| events.iter().filter(|e| e.data.starts_with("new-")).count();
    while new_seen(&events) < new.len() {
        match sse.next(WAIT) {
            Some(e) => events.push(e),
            None => panic!("live stream stopped short: {events:?}"),
        }
    }
    sse.expect_no_more(Duration::from_millis(300));
    assert!(
        events.iter().all(|e| !e.data.starts_with("old-")),
        "a live stream replayed history: {events:?}"
    );
    // Probes may or may not arrive (only those produced after the stream was positioned);
    // each at most once. Everything produced after the first delivered probe: exactly once.
    let news: Vec<Event> = events
        .iter()
        .filter(|e| e.data.starts_with("new-"))
        .cloned()
        .collect();
    assert_exactly_once(&news, &new);
    let probe_events: Vec<Event> = events
        .iter()
        .filter(|e| e.data.starts_with("probe-"))
        .cloned()
        .collect();
    let delivered_probes: Vec<_> = probes
        .iter()
        .filter(|(v, _)| probe_events.iter().any(|e| &e.data == v))
        .cloned()
        .collect();
    assert_exactly_once(&probe_events, &delivered_probes);
    drop(old);
}

/// An id wins over `defaultOffset: live`: a client resuming on a live topic gets what it
/// missed.
#[test]
fn live_topic_resumes_from_an_id() {
    let (_b, producer, server) = setup();
    let old = produce_spread(&producer, "live", 3, 4, "old");
    let from = [1i64, 2, 3];
    let id = encode_id(&[(0, from[0]), (1, from[1]), (2, from[2])]);
    let sse = Sse::resume(&server.url("/live"), &id);
    let expected: Vec<_> = old
        .iter()
        .filter(|(_, d)| d.offset >= from[d.partition as usize])
        .cloned()
        .collect();
    let events = sse.expect(expected.len(), WAIT);
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &expected);
}
