//! Topic models on cache_server topics (reference B.4): JSON Schema validation, Avro and
//! Protobuf records converted to JSON, from inline catalogs and from a schema registry, against
//! a real tansu broker and a real librdkafka producer.
//!
//! The schema registry is `common::models::TestRegistry`: no registry installs from the
//! package registries this project can reach, so it is a minimal std-thread HTTP server
//! speaking the Confluent REST subset the catalog uses (`GET /schemas/ids/{id}`,
//! `GET /subjects/{s}/versions/{v|latest}`).
//!
//! Avro and Protobuf payloads are written byte by byte in this file from the specifications'
//! binary encodings (not with the decoding crates the server uses), and the expected JSON is
//! spelled out, so the test checks the server's decoding and rendering independently.

mod common;
use common::models::{framed, with_models, TestRegistry};
use common::*;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(1500);

struct Setup {
    _broker: Broker,
    producer: Producer,
    server: Server,
    metrics: u16,
}

fn setup(
    topic: &str,
    catalogs: &str,
    key: Option<&str>,
    value: Option<&str>,
    route: Route,
) -> Setup {
    let (broker, producer) = Broker::with_topic(topic, 1);
    let metrics = free_port();
    let zilla = Zilla::new(free_port(), &broker.bootstrap())
        .prometheus(metrics)
        .route(route);
    let yaml = with_models(&zilla, catalogs, topic, key, value);
    let server = Server::builder(zilla.port)
        .config(&yaml)
        .args(["--heartbeat", "0"])
        .start();
    Setup {
        _broker: broker,
        producer,
        server,
        metrics,
    }
}

fn send(s: &Setup, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> Delivered {
    s.producer.send(topic, Some(0), key, value, &[])
}

fn invalid(s: &Setup) -> f64 {
    scrape(s.metrics).value("sse_kafka_records_invalid_total", &[])
}

fn datas(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

/// The next offset an event's id names for partition 0.
fn next_offset(e: &Event) -> i64 {
    let id = e.id.as_deref().expect("id");
    decode_id(id).unwrap_or_else(|| panic!("id {id:?}"))[&0]
}

const JSON_SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer","minimum":0},"name":{"type":"string"}},"required":["id"]}"#;

#[test]
fn json_schema_skips_invalid_records_and_counts_them() {
    let catalogs = format!(
        "  local:\n    type: inline\n    options:\n      subjects:\n        events-value:\n          schema: {}\n",
        q(JSON_SCHEMA)
    );
    let s = setup(
        "events",
        &catalogs,
        None,
        Some("{ model: json, catalog: { local: [ { strategy: topic, version: latest } ] } }"),
        Route::any_topic(),
    );
    let sse = Sse::open(&s.server.url("/events"));
    assert_eq!(sse.status(WAIT), Some(200));
    send(
        &s,
        "events",
        Some(b"1"),
        Some(br#"{"id": 1,"name":"Hello World!"}"#),
    );
    send(&s, "events", Some(b"2"), Some(br#"{"id":-1,"name":"x"}"#));
    send(&s, "events", Some(b"3"), Some(br#"{"id":"a"}"#));
    send(&s, "events", Some(b"4"), Some(b"hello"));
    send(&s, "events", Some(b"5"), Some(br#"{"name":"no id"}"#));
    send(&s, "events", Some(b"6"), Some(br#"{"id":2,"other":true}"#));
    let events = sse.expect(2, WAIT);
    // Verbatim bytes: the JSON model validates, it does not re-serialise.
    assert_eq!(
        datas(&events),
        [
            r#"{"id": 1,"name":"Hello World!"}"#,
            r#"{"id":2,"other":true}"#
        ]
    );
    // The second event's id moves past the skipped offsets 1..=4.
    assert_eq!(next_offset(&events[0]), 1);
    assert_eq!(next_offset(&events[1]), 6);
    sse.expect_no_more(QUIET);
    let (ok, m) = wait_metrics(s.metrics, WAIT, |m| {
        m.value("sse_kafka_records_invalid_total", &[]) >= 4.0
    });
    assert!(
        ok,
        "invalid records counted: {}",
        m.value("sse_kafka_records_invalid_total", &[])
    );
    assert_eq!(invalid(&s), 4.0);

    // The stream goes on; a new client replays the same two from the cache.
    send(&s, "events", None, Some(br#"{"id":3}"#));
    assert_eq!(sse.expect(1, WAIT)[0].data, r#"{"id":3}"#);
    let replay = Sse::open(&s.server.url("/events"));
    assert_eq!(datas(&replay.expect(3, WAIT))[..2], datas(&events)[..]);
    replay.expect_no_more(QUIET);
}

// --- Avro ----------------------------------------------------------------------------------

const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Item","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["positive","negative"]}},{"name":"note","type":["null","string"]},{"name":"price","type":["null","int","double"]},{"name":"raw","type":"bytes"},{"name":"count","type":"long"}]}"#;

/// Avro zig-zag varint.
fn zz(v: i64, out: &mut Vec<u8>) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn avro_str(s: &[u8], out: &mut Vec<u8>) {
    zz(s.len() as i64, out);
    out.extend_from_slice(s);
}

enum Price {
    Null,
    Int(i64),
    Double(f64),
}

fn avro_item(
    id: &str,
    status: i64,
    note: Option<&str>,
    price: Price,
    raw: &[u8],
    count: i64,
) -> Vec<u8> {
    let mut out = Vec::new();
    avro_str(id.as_bytes(), &mut out);
    zz(status, &mut out);
    match note {
        None => zz(0, &mut out),
        Some(n) => {
            zz(1, &mut out);
            avro_str(n.as_bytes(), &mut out);
        }
    }
    match price {
        Price::Null => zz(0, &mut out),
        Price::Int(v) => {
            zz(1, &mut out);
            zz(v, &mut out);
        }
        Price::Double(v) => {
            zz(2, &mut out);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    avro_str(raw, &mut out);
    zz(count, &mut out);
    out
}

#[test]
fn avro_from_a_schema_registry_is_delivered_as_json() {
    let registry = TestRegistry::start();
    registry.register("items-value", 7, None, AVRO_SCHEMA);
    let catalogs = format!(
        "  sr:\n    type: schema-registry\n    options:\n      url: {}\n      context: default\n",
        q(&registry.url())
    );
    let s = setup(
        "items",
        &catalogs,
        None,
        Some("{ model: avro, view: json, catalog: { sr: [ { strategy: topic, version: latest } ] } }"),
        Route::any_topic(),
    );
    let sse = Sse::open(&s.server.url("/items"));
    assert_eq!(sse.status(WAIT), Some(200));
    let one = avro_item(
        "id0",
        0,
        None,
        Price::Int(5),
        &[0, 1, 2, 255],
        9_007_199_254_740_993,
    );
    let two = avro_item("id1", 1, Some("hi \"there\""), Price::Double(2.5), b"", -1);
    let three = avro_item("id2", 0, Some("x"), Price::Null, b"a", 0);
    send(&s, "items", Some(b"a"), Some(&framed(7, &one)));
    send(&s, "items", Some(b"b"), Some(&framed(7, &two)));
    // Framed with an id the registry does not know: skipped.
    send(&s, "items", Some(b"c"), Some(&framed(99, &one)));
    // Truncated Avro: skipped.
    send(&s, "items", Some(b"d"), Some(&framed(7, &one[..4])));
    // No framing: decoded with the topic's subject, latest version.
    send(&s, "items", Some(b"e"), Some(&three));
    // A tombstone bypasses the value model.
    send(&s, "items", Some(b"f"), None);
    let events = sse.expect(4, WAIT);
    assert_eq!(
        datas(&events),
        [
            r#"{"id":"id0","status":"positive","note":null,"price":{"int":5},"raw":"AAEC/w==","count":9007199254740993}"#,
            r#"{"id":"id1","status":"negative","note":"hi \"there\"","price":{"double":2.5},"raw":"","count":-1}"#,
            r#"{"id":"id2","status":"positive","note":"x","price":null,"raw":"YQ==","count":0}"#,
            "Zg==",
        ]
    );
    assert_eq!(events[3].event.as_deref(), Some("delete"));
    assert_eq!(next_offset(&events[2]), 5);
    sse.expect_no_more(QUIET);
    let (ok, _) = wait_metrics(s.metrics, WAIT, |m| {
        m.value("sse_kafka_records_invalid_total", &[]) >= 2.0
    });
    assert!(ok);
    assert_eq!(invalid(&s), 2.0);
    // Cached by id: schema 7 was fetched once for three records (and a second client).
    let again = Sse::open(&s.server.url("/items"));
    again.expect(4, WAIT);
    let requests = registry.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.as_str() == "/schemas/ids/7")
            .count(),
        1,
        "{requests:?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.as_str() == "/schemas/ids/99")
            .count(),
        1,
        "{requests:?}"
    );
}

const KEY_SCHEMA: &str = r#"{"type":"record","name":"Key","fields":[{"name":"id","type":"int"}]}"#;

fn avro_key(id: i64) -> Vec<u8> {
    let mut out = Vec::new();
    zz(id, &mut out);
    out
}

#[test]
fn a_converted_key_drives_filters_ids_and_deletes() {
    let catalogs = format!(
        "  local:\n    type: inline\n    options:\n      subjects:\n        keyed-key:\n          schema: {}\n",
        q(KEY_SCHEMA)
    );
    let route = Route::new("/keyed/{topic}", "${params.topic}")
        .filter(Filter::key(r#"{"id":1}"#))
        .event_id(r#"["${base64(key)}","${etag}"]"#);
    let s = setup(
        "keyed",
        &catalogs,
        Some("{ model: avro, view: json, catalog: { local: [ { subject: keyed-key } ] } }"),
        None,
        route,
    );
    let sse = Sse::open(&s.server.url("/keyed/keyed"));
    assert_eq!(sse.status(WAIT), Some(200));
    send(&s, "keyed", Some(&avro_key(2)), Some(b"two"));
    send(&s, "keyed", Some(&avro_key(1)), Some(b"one"));
    send(&s, "keyed", Some(&[0x80]), Some(b"bad key"));
    send(&s, "keyed", Some(&avro_key(1)), None);
    let events = sse.expect(2, WAIT);
    let json_key = b64url(br#"{"id":1}"#);
    assert_eq!(events[0].data, "one");
    assert!(
        events[0]
            .id
            .as_deref()
            .unwrap()
            .starts_with(&format!("[\"{json_key}\",")),
        "{:?}",
        events[0].id
    );
    assert_eq!(events[1].event.as_deref(), Some("delete"));
    assert_eq!(events[1].data, json_key);
    sse.expect_no_more(QUIET);
    let (ok, _) = wait_metrics(s.metrics, WAIT, |m| {
        m.value("sse_kafka_records_invalid_total", &[]) >= 1.0
    });
    assert!(ok);
}

// --- Protobuf ------------------------------------------------------------------------------

const PROTO_SCHEMA: &str = r#"syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 quantity = 2;
  Status status = 3;
  repeated string tags = 4;
  message Line { string sku = 1; }
  Line line = 5;
}
enum Status { UNKNOWN = 0; SHIPPED = 1; }
message Note { string text = 1; }
"#;

/// Protobuf base-128 varint (not zig-zag).
fn uv(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn pb_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    uv(field << 3 | 2, out);
    uv(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn pb_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    uv(field << 3, out);
    uv(v, out);
}

#[test]
fn protobuf_from_a_schema_registry_is_delivered_as_json() {
    let registry = TestRegistry::start();
    registry.register("orders-value", 3, Some("PROTOBUF"), PROTO_SCHEMA);
    let catalogs = format!(
        "  sr:\n    type: schema-registry\n    options:\n      url: {}\n",
        q(&registry.url())
    );
    let s = setup(
        "orders",
        &catalogs,
        None,
        Some("{ model: protobuf, view: json, catalog: { sr: [ { strategy: topic, version: latest } ] } }"),
        Route::any_topic(),
    );
    let sse = Sse::open(&s.server.url("/orders"));
    assert_eq!(sse.status(WAIT), Some(200));
    let mut order = Vec::new();
    pb_bytes(1, b"o1", &mut order);
    pb_varint(2, 12, &mut order);
    pb_varint(3, 1, &mut order);
    pb_bytes(4, b"a", &mut order);
    pb_bytes(4, b"b", &mut order);
    let mut line = Vec::new();
    pb_bytes(1, b"sku-9", &mut line);
    pb_bytes(5, &line, &mut order);
    // Message index list [0] written as the single byte 0 (Confluent's short form).
    let mut first = vec![0];
    first.extend_from_slice(&order);
    send(&s, "orders", None, Some(&framed(3, &first)));
    // Index list [1] (count 1, index 1; zig-zag): the second top-level message, Note.
    let mut note = vec![2, 2];
    pb_bytes(1, b"hello", &mut note);
    send(&s, "orders", None, Some(&framed(3, &note)));
    // Index list [0, 0]: Order.Line.
    let mut nested = vec![4, 0, 0];
    nested.extend_from_slice(&line);
    send(&s, "orders", None, Some(&framed(3, &nested)));
    // Not protobuf of the schema (a truncated length-delimited field): skipped.
    send(&s, "orders", None, Some(&framed(3, &[0, 0x0a, 0x05, b'x'])));
    // Defaults are left out (proto3 JSON mapping).
    send(&s, "orders", None, Some(&framed(3, &[0])));
    let events = sse.expect(4, WAIT);
    assert_eq!(
        datas(&events),
        [
            r#"{"id":"o1","quantity":"12","status":"SHIPPED","tags":["a","b"],"line":{"sku":"sku-9"}}"#,
            r#"{"text":"hello"}"#,
            r#"{"sku":"sku-9"}"#,
            "{}",
        ]
    );
    sse.expect_no_more(QUIET);
    let (ok, _) = wait_metrics(s.metrics, WAIT, |m| {
        m.value("sse_kafka_records_invalid_total", &[]) >= 1.0
    });
    assert!(ok);
    assert_eq!(invalid(&s), 1.0);
}

#[test]
fn bad_schemas_and_catalog_references_are_refused_at_check() {
    let dir = tempfile::tempdir().unwrap();
    let zilla = Zilla::new(free_port(), "localhost:9092").route(Route::any_topic());
    let catalogs = "  local:\n    type: inline\n    options:\n      subjects:\n        t-value:\n          schema: '{\"type\": \"record\"'\n";
    let yaml = with_models(
        &zilla,
        catalogs,
        "t",
        None,
        Some("{ model: avro, view: json, catalog: { local: [ { subject: t-value } ] } }"),
    );
    let path = dir.path().join("zilla.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bindings.south_kafka_cache_server.options.topics[0].value: schema")
            && stderr.contains("invalid Avro schema"),
        "{stderr}"
    );

    let yaml = with_models(
        &zilla,
        "  sr: { type: schema-registry, options: { url: 'http://127.0.0.1:1' } }\n",
        "t",
        None,
        Some("{ model: json, catalog: { sr: [ { strategy: topic } ] } }"),
    );
    std::fs::write(&path, &yaml).unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
