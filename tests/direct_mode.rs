//! `sse-kafka --kafka HOST:PORT --listen ADDR:PORT`: no config file, `GET /{topic}` for any
//! topic.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn serves_any_topic_by_name() {
    let broker = Broker::with_empty_topic("alpha", 2);
    broker.create_topic("beta", 1);
    let producer = Producer::new(&broker.bootstrap());
    let a = produce_spread(&producer, "alpha", 2, 3, "a");
    let b = produce_spread(&producer, "beta", 1, 2, "b");
    let server = Server::direct(&broker.bootstrap(), &[]);

    let sa = Sse::open(&server.url("/alpha"));
    let sb = Sse::open(&server.url("/beta?some=query"));
    assert_exactly_once(&sa.expect(a.len(), WAIT), &a);
    assert_exactly_once(&sb.expect(b.len(), WAIT), &b);
    sa.expect_no_more(Duration::from_millis(200));

    // Live records, and resume.
    let a2 = produce_spread(&producer, "alpha", 2, 2, "a2");
    let live = sa.expect(a2.len(), WAIT);
    assert_exactly_once(&live, &a2);
    let resumed = Sse::resume(&server.url("/alpha"), live[0].id.as_deref().unwrap());
    let after_first: Vec<_> = a2
        .iter()
        .filter(|(v, _)| *v != live[0].data)
        .cloned()
        .collect();
    assert_exactly_once(&resumed.expect(after_first.len(), WAIT), &after_first);
}

#[test]
fn only_get_slash_topic() {
    let broker = Broker::with_empty_topic("alpha", 1);
    let server = Server::direct(&broker.bootstrap(), &["--metadata-timeout-ms", "500"]);
    assert_eq!(
        curl(&server.url("/alpha"), &["-X", "POST", "-d", "x"]).status,
        405
    );
    assert_eq!(curl(&server.url("/"), &[]).status, 404);
}

/// The bootstrap may be given as a host name.
#[test]
fn bootstrap_by_host_name() {
    let (broker, producer) = Broker::with_topic("alpha", 1);
    producer.send_value("alpha", Some(0), "named");
    let server = Server::direct(&format!("localhost:{}", broker.port), &[]);
    assert_eq!(
        Sse::open(&server.url("/alpha")).expect(1, WAIT)[0].data,
        "named"
    );
}
