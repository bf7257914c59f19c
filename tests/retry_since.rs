//! `retry:` from the sse binding's `options.retry` at the start of every stream (issue 12,
//! point 4), and `?since=` (point 5): every partition starts at its first record at or after a
//! time, given in milliseconds since the epoch or as an RFC 3339 time; an event id wins.

mod common;
use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn with_retry(yaml: String, ms: u32) -> String {
    let plain = "  north_sse_server:\n    type: sse\n    kind: server\n";
    assert!(yaml.contains(plain), "{yaml}");
    yaml.replace(plain, &format!("{plain}    options:\n      retry: {ms}\n"))
}

#[test]
fn retry_from_the_config_starts_every_stream() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "one");
    let port = free_port();
    let zilla = Zilla::new(port, &broker.bootstrap())
        .versions(&["http/1.1", "h2"])
        .route(Route::any_topic());
    let server = Server::builder(port)
        .config(&with_retry(zilla.yaml(), 3000))
        .arg("--heartbeat")
        .arg("0")
        .start();
    let first = format!("id:{}\ndata:one\n\n", encode_id(&[(0, 1)]));

    // HTTP/1.1: the retry line is the first bytes of the body, before the first event.
    let s = Sse::open(&server.url("/events"));
    assert_eq!(s.expect(1, WAIT)[0].data, "one");
    assert!(
        s.wait_body(WAIT, |b| b
            .starts_with(format!("retry: 3000\n\n{first}").as_bytes())),
        "{:?}",
        String::from_utf8_lossy(&s.body())
    );
    // A resumed stream too (it has nothing to replay: the retry line alone, then live events).
    let r = Sse::resume(&server.url("/events"), &encode_id(&[(0, 1)]));
    assert_eq!(r.status(WAIT), Some(200));
    producer.send_value("events", Some(0), "two");
    assert_eq!(r.expect(1, WAIT)[0].data, "two");
    assert!(String::from_utf8_lossy(&r.body()).starts_with("retry: 3000\n\nid:"));
    // HTTP/2: the first DATA bytes.
    let mut c = common::h2::Client::connect(&server.addr());
    c.request(1, "GET", "/events");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 2));
    assert!(
        c.stream(1)
            .data
            .starts_with(format!("retry: 3000\n\n{first}").as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&c.stream(1).data)
    );

    // Without the option, no retry line (as the reference).
    let plain = Zilla::any_topic(&broker.bootstrap()).start(&["--heartbeat", "0"]);
    let s = Sse::open(&plain.url("/events"));
    assert_eq!(s.expect(2, WAIT)[0].data, "one");
    assert!(!String::from_utf8_lossy(&s.body()).contains("retry:"));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `ms` since the epoch as RFC 3339 with milliseconds and a +01:00 offset (via `date`).
fn rfc3339_plus_one_hour(ms: i64) -> String {
    let secs = ms.div_euclid(1000) + 3600;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("run date");
    let base = String::from_utf8(out.stdout).unwrap();
    format!("{}.{:03}+01:00", base.trim(), ms.rem_euclid(1000))
}

#[test]
fn since_starts_every_partition_at_that_time() {
    let (broker, producer) = Broker::with_topic("t", 3);
    // One record per batch (the broker answers a time with a batch's first offset).
    for p in 0..3 {
        for i in 0..2 {
            producer.send_value("t", Some(p), &format!("old-{p}-{i}"));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let since = now_ms();
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..2 {
        for p in 0..3 {
            producer.send_value("t", Some(p), &format!("new-{p}-{i}"));
        }
    }
    let server = Server::direct(&broker.bootstrap(), &["--heartbeat", "0"]);
    let check = |events: &[Event]| {
        let mut data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        for p in 0..3 {
            let mine: Vec<&str> = data
                .iter()
                .copied()
                .filter(|d| d.contains(&format!("-{p}-")))
                .collect();
            assert_eq!(
                mine,
                [format!("new-{p}-0"), format!("new-{p}-1")],
                "partition {p}: {data:?}"
            );
        }
        data.sort();
        assert_eq!(data.len(), 6, "{data:?}");
    };
    let s = Sse::open(&server.url(&format!("/t?since={since}")));
    check(&s.expect(6, WAIT));
    s.expect_no_more(Duration::from_millis(500));

    let text = rfc3339_plus_one_hour(since);
    let url = server.url(&format!("/t?since={}", percent_encode(&text)));
    let s = Sse::open(&url);
    check(&s.expect(6, WAIT));
    s.expect_no_more(Duration::from_millis(500));
    // A raw `+` in the query (form-decoded as a space) is still read as the offset sign.
    let s = Sse::open(&server.url(&format!("/t?since={text}")));
    check(&s.expect(6, WAIT));

    // Live records after the start arrive as usual.
    producer.send_value("t", Some(1), "later");
    assert_eq!(s.expect(1, WAIT)[0].data, "later");

    // An event id wins over since: resume after old-0-0 on partition 0, from the start of 1 and 2.
    let id = encode_id(&[(0, 1), (1, 0), (2, 0)]);
    let r = Sse::resume(&server.url(&format!("/t?since={since}")), &id);
    let events = r.expect(12, WAIT);
    assert!(events.iter().any(|e| e.data == "old-1-0"), "{events:?}");
    assert!(!events.iter().any(|e| e.data == "old-0-0"), "{events:?}");

    // Not a time: 400.
    assert_eq!(curl(&server.url("/t?since=yesterday"), &[]).status, 400);
    assert_eq!(
        curl(&server.url("/t?since=2026-13-01T00:00:00Z"), &[]).status,
        400
    );
}
