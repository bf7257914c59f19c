//! librdkafka's mock cluster (bundled with the `rdkafka` crate): a second Kafka implementation
//! with lower protocol maxima than tansu (ApiVersions ≤ 2, Metadata ≤ 12, Fetch ≤ 16,
//! ListOffsets ≤ 7), several brokers, and fault injection: leader changes, a broker going
//! down, request errors. Streams must get every record exactly once throughout.

mod common;
use common::*;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::time::Duration;

#[test]
fn streams_from_the_mock_cluster() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("m", 3, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let producer = Producer::new(&bootstrap);
    let a = produce_spread(&producer, "m", 3, 4, "a");
    let server = Zilla::new(free_port(), &bootstrap)
        .route(Route::any_topic())
        .start(&[]);
    let sse = Sse::open(&server.url("/m"));
    let mut events = sse.expect(a.len(), WAIT);
    let b = produce_spread(&producer, "m", 3, 4, "b");
    events.extend(sse.expect(b.len(), WAIT));
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &a.into_iter().chain(b).collect::<Vec<_>>());
}

#[test]
fn leader_changes_and_broker_loss() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("m", 3, 1).unwrap();
    for p in 0..3 {
        mock.partition_leader("m", p, Some(1)).unwrap();
    }
    let bootstrap = mock.bootstrap_servers();
    let producer = Producer::new(&bootstrap);
    // `--kafka` takes one HOST:PORT; the others are found through metadata.
    let server = Server::direct(bootstrap.split(',').next().unwrap(), &[]);
    let sse = Sse::open(&server.url("/m"));
    let mut all = produce_spread(&producer, "m", 3, 3, "a");
    let mut events = sse.expect(all.len(), WAIT);

    // Leadership moves: fetches get NOT_LEADER, metadata is refreshed, fetching goes on.
    for p in 0..3 {
        mock.partition_leader("m", p, Some(2 + p % 2)).unwrap();
    }
    let b = produce_spread(&producer, "m", 3, 3, "b");
    events.extend(sse.expect(b.len(), Duration::from_secs(60)));
    all.extend(b);

    // The leader of partition 0 goes down; leadership moves to a live broker.
    mock.broker_down(2).unwrap();
    mock.partition_leader("m", 0, Some(1)).unwrap();
    mock.partition_leader("m", 2, Some(1)).unwrap();
    let c = produce_spread(&producer, "m", 3, 3, "c");
    events.extend(sse.expect(c.len(), Duration::from_secs(60)));
    all.extend(c);
    mock.broker_up(2).unwrap();

    sse.expect_no_more(Duration::from_millis(500));
    assert_exactly_once(&events, &all);
}

#[test]
fn transient_request_errors() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("m", 2, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let producer = Producer::new(&bootstrap);
    let server = Server::direct(&bootstrap, &[]);
    let sse = Sse::open(&server.url("/m"));
    let mut all = produce_spread(&producer, "m", 2, 2, "a");
    let mut events = sse.expect(all.len(), WAIT);
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::Metadata,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE],
    );
    let b = produce_spread(&producer, "m", 2, 4, "b");
    events.extend(sse.expect(b.len(), Duration::from_secs(60)));
    all.extend(b);
    sse.expect_no_more(Duration::from_millis(500));
    assert_exactly_once(&events, &all);
}
