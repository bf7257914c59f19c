//! The partition cache: a `cache_server` `bootstrap` topic is fetched from startup, so the
//! first client finds a warm cache, and a replay from the start of the topic is served from
//! memory without asking the broker for the records again.
//!
//! What is observed, and why it is deterministic: the server reaches the broker only through a
//! relay that sees every Kafka request of the server (client id `sse-kafka`). After the cache is
//! warm (the exporter shows the partition's position at the end offset), a replay of every
//! record may cost at most the shared long-poll on the partition, which carries on regardless
//! (a Fetch at the end offset every broker max-wait, answered with no records). So, across
//! the replay:
//! - no request other than Fetch and no new broker connection: every worker resolves and
//!   subscribes a view of each bootstrap topic at start, so a client's first request needs no
//!   Metadata either (no ListOffsets, no DescribeConfigs);
//! - `sse_kafka_fetch_bytes_total` (record bytes received from fetches) does not move: nothing
//!   was fetched at an old offset, as any such fetch would return the records' bytes again;
//! - the bytes from the broker stay far below the size of the records (empty long-poll answers
//!   only). This is a byte count, not a time: a handful of empty answers is a few hundred bytes
//!   against the 100 KiB of records.

mod common;
use common::*;
use std::time::Duration;

const TOPIC: &str = "prices";
const RECORDS: usize = 100;

fn value(i: usize) -> String {
    let head = format!("price-{i:04}-");
    format!("{head}{}", "p".repeat(1024 - head.len()))
}

#[test]
fn bootstrap_topic_is_warm_and_replays_come_from_the_cache() {
    let (broker, relay) = broker_behind_relay();
    broker.create_topic(TOPIC, 1);
    // The producer goes through the relay as well (tansu advertises it), under its own id.
    let producer = Producer::new(&broker.bootstrap());
    let produced: Vec<(String, Delivered)> = (0..RECORDS)
        .map(|i| (value(i), producer.send_value(TOPIC, Some(0), &value(i))))
        .collect();
    let end = RECORDS as i64;

    let metrics_port = free_port();
    let server = Zilla::new(free_port(), &relay.addr())
        .bootstrap_topic(TOPIC)
        .route(Route::any_topic())
        .prometheus(metrics_port)
        .start(&["--heartbeat", "0", "--workers", "2"]);

    // No client yet: the bootstrap topic is fetched from startup up to its end.
    let labels = [("topic", TOPIC), ("partition", "0")];
    let m = expect_metrics(
        metrics_port,
        "the bootstrap topic was not fetched to its end",
        |m| m.get("sse_kafka_partition_position", &labels) == Some(end as f64),
    );
    assert_eq!(
        m.value("sse_kafka_streams_total", &[("version", "http/1.1")]),
        0.0
    );
    let record_bytes = (RECORDS * 1024) as f64;
    assert!(
        m.value("sse_kafka_fetch_bytes_total", &[]) >= record_bytes,
        "the records were fetched:\n{}",
        m.raw
    );
    assert!(m.value("sse_kafka_cache_bytes", &[]) >= record_bytes);

    // Replays from the start, one after another (with two workers, a stream may land on the
    // partition's owner or on the other worker, which mirrors the owner's cache).
    let mut metadata_requests = 0;
    let first = relay.traffic("sse-kafka");
    for client in 0..6 {
        let before = relay.traffic("sse-kafka");
        let fetched_before = scrape(metrics_port).value("sse_kafka_fetch_bytes_total", &[]);

        let sse = Sse::open(&server.url(&format!("/{TOPIC}")));
        let events = sse.expect(RECORDS, WAIT);
        sse.expect_no_more(Duration::from_millis(100));
        assert_exactly_once(&events, &produced);
        drop(sse);

        let after = relay.traffic("sse-kafka");
        let fetched_after = scrape(metrics_port).value("sse_kafka_fetch_bytes_total", &[]);
        assert!(
            after.connections == first.connections,
            "client {client}: {} new broker connections",
            after.connections - first.connections
        );
        let delta = |k: i16| {
            after.requests.get(&k).copied().unwrap_or(0)
                - before.requests.get(&k).copied().unwrap_or(0)
        };
        metadata_requests += delta(3);
        let other: Vec<(i16, usize)> = after
            .requests
            .iter()
            .filter(|(k, _)| **k != 1 && **k != 3)
            .map(|(k, n)| (*k, n - before.requests.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert!(
            other.is_empty(),
            "client {client}: requests other than Fetch during the replay (api key, count): {other:?}"
        );
        assert!(
            metadata_requests == 0,
            "client {client}: {metadata_requests} Metadata requests for a bootstrap topic"
        );
        assert_eq!(
            fetched_after, fetched_before,
            "client {client}: record bytes were fetched again for the replay"
        );
        let down = after.bytes_down - before.bytes_down;
        assert!(
            (down as f64) < record_bytes / 10.0,
            "client {client}: {down} bytes came from the broker during the replay of {record_bytes} bytes"
        );
    }

    // A resume from the middle is served from the cache too.
    let before = relay.traffic("sse-kafka");
    let fetched_before = scrape(metrics_port).value("sse_kafka_fetch_bytes_total", &[]);
    let sse = Sse::resume(&server.url(&format!("/{TOPIC}")), &encode_id(&[(0, 60)]));
    let rest = sse.expect(RECORDS - 60, WAIT);
    assert_exactly_once(&rest, &produced[60..]);
    let after = relay.traffic("sse-kafka");
    assert_eq!(after.connections, first.connections);
    for k in [0i16, 2, 32] {
        assert_eq!(
            after.requests.get(&k),
            before.requests.get(&k),
            "api key {k} for a resume"
        );
    }
    assert!(((after.bytes_down - before.bytes_down) as f64) < record_bytes / 10.0);
    let metadata = |t: &ClientTraffic| t.requests.get(&3).copied().unwrap_or(0);
    assert_eq!(
        metadata(&after),
        metadata(&first),
        "no Metadata for a bootstrap topic"
    );
    assert_eq!(
        scrape(metrics_port).value("sse_kafka_fetch_bytes_total", &[]),
        fetched_before
    );

    // And the stream is live: a new record arrives through the shared fetch.
    let last = value(RECORDS);
    producer.send_value(TOPIC, Some(0), &last);
    assert_eq!(sse.expect(1, WAIT)[0].data, last);
}
