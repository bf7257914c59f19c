//! The exact bytes of events (reference sections 2.3, 2.4, 3.1, 3.2; decisions.md 3.2):
//! `id:<progress64>[/etag]\ndata:<value>\n\n`, the key template, and ids computed by hand.

mod common;
use common::*;
use std::time::Duration;

struct Setup {
    _broker: Broker,
    producer: Producer,
    server: Server,
}

/// A 1-partition topic, so every id is known in advance: the record at offset n has the
/// progress {0 → n+1}.
fn setup(topic: &str) -> Setup {
    let (broker, producer) = Broker::with_topic(topic, 1);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(
            Route::new("/keyed/{topic}", "${params.topic}")
                .event_id(r#"["${base64(key)}","${etag}"]"#),
        )
        .route(Route::any_topic())
        // No heartbeat comments in the byte-exact bodies.
        .start(&["--heartbeat", "0"]);
    Setup {
        _broker: broker,
        producer,
        server,
    }
}

fn wait_exact(sse: &Sse, expected: &str) {
    let ok = sse.wait_body(WAIT, |b| b.len() >= expected.len());
    let body = String::from_utf8_lossy(&sse.body()).into_owned();
    assert!(ok, "body never reached {} bytes: {body:?}", expected.len());
    assert_eq!(body, expected);
}

#[test]
fn first_records_byte_exact() {
    let s = setup("one");
    s.producer.send(
        "one",
        Some(0),
        Some(b"key"),
        Some(b"Hello, world"),
        &[("header", b"value")],
    );
    let sse = Sse::open(&s.server.url("/one"));
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(
        sse.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    // Offset 0 → progress {0 → 1} → 01 02 00 02 → "AQIAAg==" (the id of Zilla's example).
    wait_exact(&sse, "id:AQIAAg==\ndata:Hello, world\n\n");
    s.producer
        .send("one", Some(0), Some(b"key"), Some(b"Hello, again"), &[]);
    // Offset 1 → {0 → 2} → 01 02 00 04.
    assert_eq!(encode_id(&[(0, 2)]), "AQIABA==");
    wait_exact(
        &sse,
        "id:AQIAAg==\ndata:Hello, world\n\nid:AQIABA==\ndata:Hello, again\n\n",
    );
}

#[test]
fn etag_header_suffixes_the_id() {
    let s = setup("etags");
    s.producer.send(
        "etags",
        Some(0),
        Some(b"key"),
        Some(b"v1"),
        &[("etag", b"revision=42")],
    );
    s.producer.send(
        "etags",
        Some(0),
        Some(b"key"),
        Some(b"v2"),
        &[("other", b"x"), ("etag", b"revision=43")],
    );
    // Header names are exact: `ETag` is not `etag`.
    s.producer.send(
        "etags",
        Some(0),
        Some(b"key"),
        Some(b"v3"),
        &[("ETag", b"nope")],
    );
    let sse = Sse::open(&s.server.url("/etags"));
    wait_exact(
        &sse,
        "id:AQIAAg==/revision=42\ndata:v1\n\nid:AQIABA==/revision=43\ndata:v2\n\nid:AQIABg==\ndata:v3\n\n",
    );
}

/// decisions.md 3.2: no `id:` line ever carries CR, LF or NUL; such an etag is left out.
#[test]
fn etag_with_line_breaks_is_left_out_of_the_id() {
    let s = setup("evil");
    s.producer.send(
        "evil",
        Some(0),
        None,
        Some(b"a"),
        &[("etag", b"x\ndata:injected")],
    );
    s.producer
        .send("evil", Some(0), None, Some(b"b"), &[("etag", b"x\ry")]);
    s.producer
        .send("evil", Some(0), None, Some(b"c"), &[("etag", b"x\0y")]);
    s.producer
        .send("evil", Some(0), None, Some(b"d"), &[("etag", b"fine")]);
    let sse = Sse::open(&s.server.url("/evil"));
    wait_exact(
        &sse,
        "id:AQIAAg==\ndata:a\n\nid:AQIABA==\ndata:b\n\nid:AQIABg==\ndata:c\n\nid:AQIACA==/fine\ndata:d\n\n",
    );
}

#[test]
fn key_template_ids() {
    let s = setup("keyed");
    s.producer
        .send("keyed", Some(0), Some(b"key"), Some(b"v1"), &[]);
    s.producer.send("keyed", Some(0), None, Some(b"v2"), &[]);
    s.producer.send(
        "keyed",
        Some(0),
        Some(b"key"),
        Some(b"v3"),
        &[("etag", b"revision=43")],
    );
    // base64url with padding, url alphabet.
    s.producer
        .send("keyed", Some(0), Some(&[0xfb, 0xff]), Some(b"v4"), &[]);
    let sse = Sse::open(&s.server.url("/keyed/keyed"));
    wait_exact(
        &sse,
        concat!(
            "id:[\"a2V5\",\"AQIAAg==\"]\ndata:v1\n\n",
            "id:[null,\"AQIABA==\"]\ndata:v2\n\n",
            "id:[\"a2V5\",\"AQIABg==/revision=43\"]\ndata:v3\n\n",
            "id:[\"-_8=\",\"AQIACA==\"]\ndata:v4\n\n",
        ),
    );
}

/// Ids on a multi-partition topic decode to the next offset of the event's partition.
#[test]
fn ids_on_three_partitions_decode() {
    let (broker, producer) = Broker::with_topic("multi", 3);
    let server = Zilla::any_topic(&broker.bootstrap()).start(&[]);
    let all = produce_spread(&producer, "multi", 3, 4, "v");
    let sse = Sse::open(&server.url("/multi"));
    let events = sse.expect(all.len(), WAIT);
    sse.expect_no_more(Duration::from_millis(200));
    assert_exactly_once(&events, &all);
    // Progress only moves forward, partition by partition.
    let mut high = std::collections::BTreeMap::new();
    for e in &events {
        for (p, o) in decode_id(e.id.as_deref().unwrap()).unwrap() {
            let prev = high.insert(p, o).unwrap_or(i64::MIN);
            assert!(
                o >= prev || o < 0,
                "partition {p} went back from {prev} to {o} in {:?}",
                e.id
            );
        }
    }
}
