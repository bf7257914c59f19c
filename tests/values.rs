//! Record values as `data:` lines: split on CR, LF and CRLF (decisions.md 3.2, as browsers
//! parse them), empty values, and a 100 kB value.

mod common;
use common::*;
use std::time::Duration;

fn setup(topic: &str) -> (Broker, Producer, Server) {
    let (broker, producer) = Broker::with_topic(topic, 1);
    let server = Zilla::any_topic(&broker.bootstrap()).start(&["--heartbeat", "0"]);
    (broker, producer, server)
}

#[test]
fn multi_line_values_become_several_data_lines() {
    let (_b, producer, server) = setup("lines");
    // (value, wire data lines, what an EventSource hands the application)
    let cases: &[(&[u8], &str, &str)] = &[
        (b"line1\nline2", "data:line1\ndata:line2\n", "line1\nline2"),
        (b"a\rb", "data:a\ndata:b\n", "a\nb"),
        (b"a\r\nb", "data:a\ndata:b\n", "a\nb"),
        (b"trailing\n", "data:trailing\ndata:\n", "trailing\n"),
        (b"", "data:\n", ""),
        (
            b"x\r\n\r\ny\n\rz",
            "data:x\ndata:\ndata:y\ndata:\ndata:z\n",
            "x\n\ny\n\nz",
        ),
        (b"\n", "data:\ndata:\n", "\n"),
        (
            b": not a comment\nid: not an id",
            "data:: not a comment\ndata:id: not an id\n",
            ": not a comment\nid: not an id",
        ),
    ];
    let mut expected_body = String::new();
    for (i, (value, lines, _)) in cases.iter().enumerate() {
        let d = producer.send("lines", Some(0), None, Some(value), &[]);
        assert_eq!(d.offset, i as i64);
        expected_body += &format!("id:{}\n{lines}\n", encode_id(&[(0, i as i64 + 1)]));
    }
    let sse = Sse::open(&server.url("/lines"));
    let events = sse.expect(cases.len(), WAIT);
    for (e, (_, _, app)) in events.iter().zip(cases) {
        assert_eq!(e.data, *app);
        assert_eq!(e.event, None);
    }
    assert!(sse.wait_body(WAIT, |b| b.len() >= expected_body.len()));
    assert_eq!(String::from_utf8_lossy(&sse.body()), expected_body);
}

#[test]
fn a_100_kb_value_arrives_whole() {
    let (_b, producer, server) = setup("big");
    let big: String = (0..100_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let big_lines: String = (0..1000).map(|i| format!("{i:099}\n")).collect::<String>(); // 100 kB, 1000 lines
    producer.send_value("big", Some(0), "before");
    producer.send_value("big", Some(0), &big);
    producer.send_value("big", Some(0), &big_lines);
    producer.send_value("big", Some(0), "after");
    let sse = Sse::open(&server.url("/big"));
    let events = sse.expect(4, WAIT);
    assert_eq!(events[0].data, "before");
    assert_eq!(events[1].data.len(), big.len());
    assert!(events[1].data == big, "100 kB value corrupted");
    assert!(
        events[2].data == big_lines,
        "100 kB multi-line value corrupted"
    );
    assert_eq!(events[3].data, "after");
    assert_eq!(events[3].id.as_deref(), Some(encode_id(&[(0, 4)]).as_str()));
    // The 100 kB value is one event: one id line and one data line.
    let body = sse.body();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches("id:").count(), 4);
    assert!(text.contains(&format!("id:{}\ndata:{big}\n\n", encode_id(&[(0, 2)]))));
    sse.expect_no_more(Duration::from_millis(200));
}

/// Values that are not UTF-8 pass through as bytes.
#[test]
fn binary_values_pass_through() {
    let (_b, producer, server) = setup("bin");
    let value: Vec<u8> = vec![0xff, 0xfe, b'x', 0x00, 0x80];
    producer.send("bin", Some(0), None, Some(&value), &[]);
    let sse = Sse::open(&server.url("/bin"));
    let expected = [
        format!("id:{}\ndata:", encode_id(&[(0, 1)])).into_bytes(),
        value,
        b"\n\n".to_vec(),
    ]
    .concat();
    assert!(sse.wait_body(WAIT, |b| b.len() >= expected.len()));
    assert_eq!(sse.body(), expected);
}
