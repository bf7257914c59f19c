//! Resuming a stream by its last event id: `Last-Event-ID` header or `?lastEventId=` query
//! parameter (header wins), on a 3-partition topic, with no loss, no duplicate and per-partition
//! order kept; malformed ids replay from the earliest record.

mod common;
use common::*;
use std::time::Duration;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;

struct Setup {
    _broker: Broker,
    producer: Producer,
    server: Server,
}

fn setup() -> Setup {
    let (broker, producer) = Broker::with_topic(TOPIC, PARTITIONS);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(
            Route::new("/keyed/{topic}", "${params.topic}")
                .event_id(r#"["${base64(key)}","${etag}"]"#),
        )
        .route(Route::any_topic())
        .start(&[]);
    Setup {
        _broker: broker,
        producer,
        server,
    }
}

enum How {
    Header,
    Query,
    QueryPercentEncoded,
}

/// Reads some events, disconnects, produces more, resumes with the last id seen.
fn resume_after_disconnect(how: How) {
    let s = setup();
    let first = produce_spread(&s.producer, TOPIC, PARTITIONS, 8, "a");

    let a = Sse::open(&s.server.url(&format!("/{TOPIC}")));
    let seen = a.expect(10, WAIT);
    drop(a); // the client goes away after its 10th event
    let last_id = seen.last().unwrap().id.clone().expect("events carry ids");

    let second = produce_spread(&s.producer, TOPIC, PARTITIONS, 8, "b");
    let b = match how {
        How::Header => Sse::resume(&s.server.url(&format!("/{TOPIC}")), &last_id),
        How::Query => Sse::open(&s.server.url(&format!("/{TOPIC}?lastEventId={last_id}"))),
        How::QueryPercentEncoded => Sse::open(&s.server.url(&format!(
            "/{TOPIC}?x=1&lastEventId={}&y=2",
            percent_encode(&last_id)
        ))),
    };
    let rest = b.expect(first.len() + second.len() - seen.len(), WAIT);
    b.expect_no_more(Duration::from_millis(500));

    let all: Vec<_> = first.into_iter().chain(second).collect();
    let union: Vec<Event> = seen.into_iter().chain(rest).collect();
    assert_exactly_once(&union, &all);
}

#[test]
fn resume_by_last_event_id_header() {
    resume_after_disconnect(How::Header);
}

#[test]
fn resume_by_query_parameter() {
    resume_after_disconnect(How::Query);
}

#[test]
fn resume_by_percent_encoded_query_parameter_among_others() {
    resume_after_disconnect(How::QueryPercentEncoded);
}

#[test]
fn header_wins_over_query_parameter() {
    let s = setup();
    let first = produce_spread(&s.producer, TOPIC, PARTITIONS, 4, "a");
    let a = Sse::open(&s.server.url(&format!("/{TOPIC}")));
    let seen = a.expect(5, WAIT);
    drop(a);
    let header_id = seen.last().unwrap().id.clone().unwrap();
    // The query id points past everything produced so far: if it won, the first batch would
    // not be replayed at all.
    let query_id = encode_id(&[(0, 4), (1, 4), (2, 4)]);
    let second = produce_spread(&s.producer, TOPIC, PARTITIONS, 2, "b");
    let b = Sse::open_args(
        &s.server.url(&format!("/{TOPIC}?lastEventId={query_id}")),
        &["-H", &format!("Last-Event-ID: {header_id}")],
    );
    let rest = b.expect(first.len() + second.len() - seen.len(), WAIT);
    b.expect_no_more(Duration::from_millis(500));
    let all: Vec<_> = first.into_iter().chain(second).collect();
    assert_exactly_once(&seen.into_iter().chain(rest).collect::<Vec<_>>(), &all);
}

#[test]
fn malformed_ids_replay_from_earliest() {
    let s = setup();
    let all = produce_spread(&s.producer, TOPIC, PARTITIONS, 3, "a");
    // Not base64url, truncated, bad length, bad padding, standard base64, unknown version.
    for bad in [
        "not an id!",
        "AQQA",
        "AQQABAIC===",
        "AQQABAIC==^=",
        "AQIAAg",
        "+/+/",
        "AgIAAg==",
    ] {
        let sse = Sse::resume(&s.server.url(&format!("/{TOPIC}")), bad);
        assert_eq!(sse.status(WAIT), Some(200), "id {bad:?}");
        let events = sse.expect(all.len(), WAIT);
        sse.expect_no_more(Duration::from_millis(200));
        assert_exactly_once(&events, &all);
    }
}

#[test]
fn partitions_missing_from_the_id_start_at_earliest() {
    let s = setup();
    let all = produce_spread(&s.producer, TOPIC, PARTITIONS, 6, "a");
    // Only partition 1 is positioned (at offset 4); partitions 0 and 2 replay everything.
    let sse = Sse::resume(&s.server.url(&format!("/{TOPIC}")), &encode_id(&[(1, 4)]));
    let expected: Vec<_> = all
        .iter()
        .filter(|(_, d)| d.partition != 1 || d.offset >= 4)
        .cloned()
        .collect();
    let events = sse.expect(expected.len(), WAIT);
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &expected);
}

#[test]
fn etag_suffix_is_ignored_for_resume() {
    let s = setup();
    let all = produce_spread(&s.producer, TOPIC, PARTITIONS, 4, "a");
    let id = format!("{}/revision=42", encode_id(&[(0, 2), (1, 3), (2, 4)]));
    let sse = Sse::resume(&s.server.url(&format!("/{TOPIC}")), &id);
    let expected: Vec<_> = all
        .iter()
        .filter(|(_, d)| d.offset >= [2, 3, 4][d.partition as usize])
        .cloned()
        .collect();
    let events = sse.expect(expected.len(), WAIT);
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &expected);
}

/// decisions.md 3.1: ids of the key template without an etag resume correctly (Zilla drops a
/// character of them and replays everything).
#[test]
fn key_template_ids_resume_exactly() {
    let s = setup();
    let first = produce_spread(&s.producer, TOPIC, PARTITIONS, 5, "a");
    let url = s.server.url(&format!("/keyed/{TOPIC}"));
    let a = Sse::open(&url);
    let seen = a.expect(7, WAIT);
    drop(a);
    let last_id = seen.last().unwrap().id.clone().unwrap();
    assert!(
        last_id.starts_with("[\""),
        "key template id expected, got {last_id}"
    );
    let second = produce_spread(&s.producer, TOPIC, PARTITIONS, 2, "b");
    let b = Sse::resume(&url, &last_id);
    let rest = b.expect(first.len() + second.len() - seen.len(), WAIT);
    b.expect_no_more(Duration::from_millis(500));
    let all: Vec<_> = first.into_iter().chain(second).collect();
    assert_exactly_once(&seen.into_iter().chain(rest).collect::<Vec<_>>(), &all);
}

/// Resuming with the id of the very last event waits for new records and replays nothing.
#[test]
fn resume_at_the_end_waits_for_new_records() {
    let s = setup();
    let first = produce_spread(&s.producer, TOPIC, PARTITIONS, 2, "a");
    let a = Sse::open(&s.server.url(&format!("/{TOPIC}")));
    let seen = a.expect(first.len(), WAIT);
    drop(a);
    let b = Sse::resume(
        &s.server.url(&format!("/{TOPIC}")),
        seen.last().unwrap().id.as_deref().unwrap(),
    );
    assert_eq!(b.status(WAIT), Some(200));
    b.expect_no_more(Duration::from_millis(500));
    let second = produce_spread(&s.producer, TOPIC, PARTITIONS, 1, "b");
    let rest = b.expect(second.len(), WAIT);
    assert_exactly_once(&rest, &second);
}

/// An id past the end of a partition (a topic deleted and created again, an id from another
/// cluster) is out of range: issue 2 maps OFFSET_OUT_OF_RANGE to the earliest retained record,
/// so the client gets the partition from its start rather than waiting for offsets that may
/// never come.
#[test]
fn id_past_the_end_replays_from_earliest() {
    let s = setup();
    let all = produce_spread(&s.producer, TOPIC, PARTITIONS, 3, "a");
    let id = encode_id(&[(0, 1000), (1, 1), (2, 1000)]);
    let sse = Sse::resume(&s.server.url(&format!("/{TOPIC}")), &id);
    let expected: Vec<_> = all
        .iter()
        .filter(|(_, d)| d.partition != 1 || d.offset >= 1)
        .cloned()
        .collect();
    let events = sse.expect(expected.len(), WAIT);
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &expected);
}
