//! Compacted topics (`cleanup.policy=compact`, read from the broker's topic config): a client
//! without an id gets the latest record per key, tombstones as `delete` events, in offset order,
//! then live records; nothing superseded before it subscribed. A client with an id resumes
//! normally (every record after the id, superseded or not). A topic without the policy
//! replays everything.
//!
//! tansu keeps every record (it does not compact), so what is left out is left out by the
//! server, not by the broker.

mod common;
use common::*;
use std::time::Duration;

/// (key, value or tombstone), one record per send so each lands in its own batch.
const RECORDS: [(&str, Option<&str>); 5] = [
    ("k1", Some("k1:v1")),
    ("k2", Some("k2:v1")),
    ("k1", Some("k1:v2")),
    ("k3", Some("k3:v1")),
    ("k3", None),
];

fn produce_all(producer: &Producer, topic: &str) -> Vec<Delivered> {
    RECORDS
        .iter()
        .map(|(k, v)| {
            producer.send(
                topic,
                Some(0),
                Some(k.as_bytes()),
                v.map(str::as_bytes),
                &[],
            )
        })
        .collect()
}

/// (event type, data, next offset its id names for partition 0).
fn summary(events: &[Event]) -> Vec<(String, String, i64)> {
    events
        .iter()
        .map(|e| {
            let id =
                e.id.as_deref()
                    .unwrap_or_else(|| panic!("event without id: {e:?}"));
            let progress = decode_id(id).unwrap_or_else(|| panic!("id {id:?} does not decode"));
            assert_eq!(progress.len(), 1, "one partition in {id}: {progress:?}");
            (
                e.event.clone().unwrap_or_else(|| "message".into()),
                e.data.clone(),
                progress[&0],
            )
        })
        .collect()
}

fn row(event: &str, data: &str, next: i64) -> (String, String, i64) {
    (event.to_string(), data.to_string(), next)
}

#[test]
fn late_client_gets_latest_per_key_then_live_records() {
    let broker = Broker::start();
    broker.create_topic_with_config("state", 1, &[("cleanup.policy", "compact")]);
    broker.create_topic("plain", 1);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::any_topic(&broker.bootstrap()).start(&["--heartbeat", "0"]);

    let offsets = produce_all(&producer, "state");
    assert_eq!(
        offsets.iter().map(|d| d.offset).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );

    // The late client: the latest value of each key, in offset order. k1:v1 (superseded by
    // k1:v2) and k3:v1 (deleted by the tombstone) are not sent; the tombstone is, as a
    // `delete` event whose data is base64url("k3").
    let late = Sse::open(&server.url("/state"));
    assert_eq!(late.status(WAIT), Some(200));
    let replay = late.expect(3, WAIT);
    assert_eq!(
        summary(&replay),
        [
            row("message", "k2:v1", 2),
            row("message", "k1:v2", 3),
            row("delete", &b64url(b"k3"), 5),
        ],
        "latest per key; body: {:?}",
        String::from_utf8_lossy(&late.body())
    );
    late.expect_no_more(Duration::from_millis(300));

    // Then live records, with ids continuing from the end of the partition.
    let live = producer.send("state", Some(0), Some(b"k4"), Some(b"k4:v1"), &[]);
    assert_eq!(live.offset, 5);
    let next = late.expect(1, WAIT);
    assert_eq!(summary(&next), [row("message", "k4:v1", 6)]);
    let update = producer.send("state", Some(0), Some(b"k2"), Some(b"k2:v2"), &[]);
    assert_eq!(update.offset, 6);
    assert_eq!(
        summary(&late.expect(1, WAIT)),
        [row("message", "k2:v2", 7)],
        "a live update of a replayed key is sent too"
    );

    // The replay's ids are ordinary progress ids: resuming with the first one gets every record
    // after it, the superseded k3:v1 included (a resume is not a compacted replay).
    let first_id = replay[0].id.clone().unwrap();
    let resumed = Sse::resume(&server.url("/state"), &first_id);
    let rest = resumed.expect(5, WAIT);
    resumed.expect_no_more(Duration::from_millis(300));
    assert_eq!(
        summary(&rest),
        [
            row("message", "k1:v2", 3),
            row("message", "k3:v1", 4),
            row("delete", &b64url(b"k3"), 5),
            row("message", "k4:v1", 6),
            row("message", "k2:v2", 7),
        ]
    );

    // A second late client, after the live records: the latest per key again, k2 now at v2.
    let later = Sse::open(&server.url("/state"));
    let replay2 = later.expect(4, WAIT);
    later.expect_no_more(Duration::from_millis(300));
    assert_eq!(
        summary(&replay2),
        [
            row("message", "k1:v2", 3),
            row("delete", &b64url(b"k3"), 5),
            row("message", "k4:v1", 6),
            row("message", "k2:v2", 7),
        ]
    );

    // The same records on a topic without cleanup.policy=compact: all five, in order.
    produce_all(&producer, "plain");
    let plain = Sse::open(&server.url("/plain"));
    let all = plain.expect(5, WAIT);
    plain.expect_no_more(Duration::from_millis(300));
    assert_eq!(
        summary(&all),
        [
            row("message", "k1:v1", 1),
            row("message", "k2:v1", 2),
            row("message", "k1:v2", 3),
            row("message", "k3:v1", 4),
            row("delete", &b64url(b"k3"), 5),
        ]
    );
}

/// The client connects before anything is produced: it is at the head, so every record is
/// live and is sent, superseded or not (compaction only shapes what a late client replays).
#[test]
fn early_client_gets_every_record_live() {
    let broker = Broker::start();
    broker.create_topic_with_config("state", 1, &[("cleanup.policy", "compact,delete")]);
    let producer = Producer::new(&broker.bootstrap());
    let server = Zilla::any_topic(&broker.bootstrap()).start(&["--heartbeat", "0"]);

    let early = Sse::open(&server.url("/state"));
    assert_eq!(early.status(WAIT), Some(200));
    // Wait until the stream is attached at the head: a record produced now is received.
    producer.send("state", Some(0), Some(b"k0"), Some(b"k0:v1"), &[]);
    assert_eq!(
        summary(&early.expect(1, WAIT)),
        [row("message", "k0:v1", 1)]
    );
    for (k, v) in RECORDS {
        producer.send(
            "state",
            Some(0),
            Some(k.as_bytes()),
            v.map(str::as_bytes),
            &[],
        );
    }
    assert_eq!(
        summary(&early.expect(5, WAIT)),
        [
            row("message", "k1:v1", 2),
            row("message", "k2:v1", 3),
            row("message", "k1:v2", 4),
            row("message", "k3:v1", 5),
            row("delete", &b64url(b"k3"), 6),
        ]
    );

    // `compact,delete` counts as compacted: a late client gets the latest per key only.
    let late = Sse::open(&server.url("/state"));
    let replay = late.expect(3 + 1, WAIT);
    late.expect_no_more(Duration::from_millis(300));
    assert_eq!(
        summary(&replay),
        [
            row("message", "k0:v1", 1),
            row("message", "k2:v1", 3),
            row("message", "k1:v2", 4),
            row("delete", &b64url(b"k3"), 6),
        ]
    );
}
