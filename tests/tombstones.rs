//! Tombstones (null values) become `event:delete` events whose data is base64url(key) with
//! padding; with a null key there is no data line (reference 2.4, 2.5).

mod common;
use common::*;

#[test]
fn tombstones_are_delete_events() {
    let (broker, producer) = Broker::with_topic("things", 1);
    let server = Zilla::any_topic(&broker.bootstrap()).start(&["--heartbeat", "0"]);

    producer.send("things", Some(0), Some(b"k1"), Some(b"created"), &[]);
    producer.send("things", Some(0), Some(b"k1"), None, &[]);
    producer.send("things", Some(0), Some(&[0xfb, 0xff]), None, &[]);
    producer.send(
        "things",
        Some(0),
        Some(&[0xfb, 0xff, 0xfe]),
        None,
        &[("etag", b"gone")],
    );
    producer.send("things", Some(0), None, None, &[]);
    producer.send("things", Some(0), Some(b"key"), None, &[]);
    producer.send("things", Some(0), Some(b"k2"), Some(b""), &[]); // empty, not null: a message

    let id = |n: i64| encode_id(&[(0, n)]);
    let expected = format!(
        "id:{}\ndata:created\n\n\
         id:{}\nevent:delete\ndata:azE=\n\n\
         id:{}\nevent:delete\ndata:-_8=\n\n\
         id:{}/gone\nevent:delete\ndata:-__-\n\n\
         id:{}\nevent:delete\n\n\
         id:{}\nevent:delete\ndata:a2V5\n\n\
         id:{}\ndata:\n\n",
        id(1),
        id(2),
        id(3),
        id(4),
        id(5),
        id(6),
        id(7)
    );
    let sse = Sse::open(&server.url("/things"));
    assert!(
        sse.wait_body(WAIT, |b| b.len() >= expected.len()),
        "{:?}",
        String::from_utf8_lossy(&sse.body())
    );
    assert_eq!(String::from_utf8_lossy(&sse.body()), expected);

    let events = sse.received();
    assert_eq!(
        events[1],
        Event {
            id: Some(id(2)),
            event: Some("delete".into()),
            data: "azE=".into()
        }
    );
    assert_eq!(b64url_decode(&events[2].data).unwrap(), vec![0xfb, 0xff]);
}
