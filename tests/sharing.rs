//! Never one Kafka consumer per client (issue 2, point 4): many streams of one topic share the
//! server's broker connections. Counted at a relay in front of tansu, which every broker
//! connection of the server goes through.

mod common;
use common::*;

#[test]
fn fifty_streams_share_a_few_broker_connections() {
    let (_broker, relay, producer) = relayed_topic("shared", 3);
    let server = Zilla::any_topic(&relay.addr()).start(&["--workers", "2"]);
    let all = produce_spread(&producer, "shared", 3, 2, "v");
    let exempt_before = relay.accepted() - relay.active();
    let urls: Vec<String> = (0..50).map(|_| server.url("/shared")).collect();
    let fleet = CurlFleet::open(&urls, 50);
    fleet.wait_all(all.len(), WAIT).unwrap();
    for i in 0..fleet.n {
        assert_exactly_once(&fleet.events(i), &all);
    }
    // One connection per broker per worker is the most a sharing design needs (plus a
    // bootstrap/metadata connection or two); one per client would be 50 or more.
    let server_conns = relay.accepted() - exempt_before;
    assert!(
        server_conns <= 8,
        "{server_conns} broker connections for 50 streams: streams are not sharing fetches"
    );
}
