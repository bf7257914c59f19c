//! The broker connection is cut mid-stream and restored: the connected stream stays open and
//! gets every record exactly once, including those produced during the outage (issue 2,
//! point 3). tansu advertises a relay's address, so every connection the server makes to the
//! broker goes through the relay; the test's own producer is exempt from the cut.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn broker_cut_and_restored_loses_nothing() {
    let (_broker, relay, producer) = relayed_topic("ticks", 3);
    let server = Zilla::any_topic(&relay.addr()).start(&[]);

    let a = produce_spread(&producer, "ticks", 3, 5, "a");
    let sse = Sse::open(&server.url("/ticks"));
    let mut events = sse.expect(a.len(), WAIT);
    assert!(
        relay.active() > 0,
        "the server's broker connections do not go through the relay"
    );

    relay.cut();
    // Proof that the server noticed and tried to reconnect (and was refused).
    assert!(
        wait_until(WAIT, || relay.refused() > 0),
        "the server never tried to reconnect"
    );
    let b = produce_spread(&producer, "ticks", 3, 5, "b"); // produced during the outage
    assert!(
        !sse.is_eof(),
        "the SSE stream must stay open while the broker is away"
    );
    relay.restore();
    let c = produce_spread(&producer, "ticks", 3, 5, "c");

    events.extend(sse.expect(b.len() + c.len(), Duration::from_secs(60)));
    sse.expect_no_more(Duration::from_millis(500));
    let all: Vec<_> = a.into_iter().chain(b).chain(c).collect();
    assert_exactly_once(&events, &all);

    // A client arriving after the outage gets everything too.
    let late = Sse::open(&server.url("/ticks"));
    assert_exactly_once(&late.expect(all.len(), WAIT), &all);
}

/// Two outages in a row, the second while the first reconnection may still be backing off.
#[test]
fn repeated_cuts() {
    let (_broker, relay, producer) = relayed_topic("ticks", 2);
    let server = Server::direct(&relay.addr(), &[]);
    let sse = Sse::open(&server.url("/ticks"));
    assert_eq!(sse.status(WAIT), Some(200));
    let mut all = Vec::new();
    let mut events = Vec::new();
    for round in 0..3 {
        let batch = produce_spread(&producer, "ticks", 2, 3, &format!("round{round}"));
        events.extend(sse.expect(batch.len(), Duration::from_secs(60)));
        all.extend(batch);
        relay.cut();
        let refused = relay.refused();
        assert!(
            wait_until(WAIT, || relay.refused() > refused),
            "round {round}: no reconnect attempt"
        );
        relay.restore();
    }
    let last = produce_spread(&producer, "ticks", 2, 3, "last");
    events.extend(sse.expect(last.len(), Duration::from_secs(60)));
    all.extend(last);
    sse.expect_no_more(Duration::from_millis(500));
    assert_exactly_once(&events, &all);
}
