//! HTTP/2 by prior knowledge on the HTTP/1.1 port (`versions: [http/1.1, h2]`), with
//! independent clients: curl (`--http2-prior-knowledge`), nghttp (ten SSE streams on one
//! connection), h2load (many short requests: an unknown topic's 404 and a POST's 405; SSE
//! responses never end, and h2load counts a request only when its response ends, so it cannot
//! measure SSE streams), and a small raw client for what needs control: a client RST_STREAM
//! ends only that stream.

mod common;
use common::h2::{Client, CANCEL};
use common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Setup {
    _broker: Broker,
    producer: Producer,
    server: Server,
    metrics_port: u16,
}

fn setup(topics: &[&str]) -> Setup {
    let broker = Broker::start();
    for t in topics {
        broker.create_topic(t, 1);
    }
    let producer = Producer::new(&broker.bootstrap());
    let metrics_port = free_port();
    let server = Zilla::h2_metrics(&broker.bootstrap(), metrics_port)
        // An unknown topic is looked up again until the metadata timeout (it may be being
        // created), then answered 404: keep the timeout short.
        .start(&["--heartbeat", "0", "--metadata-timeout-ms", "500"]);
    Setup {
        _broker: broker,
        producer,
        server,
        metrics_port,
    }
}

fn require(program: &str) {
    assert!(
        find_program(program).is_some(),
        "{program} not found: apt-get install -y nghttp2-client (scripts/test installs it)"
    );
}

/// A child process killed (and reaped) on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn curl_over_h2_gets_the_same_bytes_as_over_http1() {
    let s = setup(&["news"]);
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        s.producer.send(
            "news",
            Some(0),
            Some(k.as_bytes()),
            Some(format!("line {i}\nnext").as_bytes()),
            &[("etag", b"e1")],
        );
    }
    s.producer.send("news", Some(0), Some(b"gone"), None, &[]);
    let url = s.server.url("/news");
    let h1 = Sse::open(&url);
    let h2 = Sse::open_args(&url, &["--http2-prior-knowledge"]);
    assert_eq!(h2.status(WAIT), Some(200));
    let h2_events = h2.expect(4, WAIT);
    h1.expect(4, WAIT);
    assert_eq!(h2_events[3].event.as_deref(), Some("delete"));
    // Live records too.
    s.producer.send_value("news", Some(0), "live");
    h1.expect(1, WAIT);
    h2.expect(1, WAIT);
    assert_eq!(
        String::from_utf8_lossy(&h2.body()),
        String::from_utf8_lossy(&h1.body()),
        "the SSE bytes do not depend on the HTTP version"
    );
    assert_eq!(
        h2.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(h2.header("transfer-encoding"), None);
    let m = scrape(s.metrics_port);
    assert_eq!(
        m.value("sse_kafka_streams_total", &[("version", "h2")]),
        1.0
    );
    assert_eq!(
        m.value("sse_kafka_streams_total", &[("version", "http/1.1")]),
        1.0
    );

    // Unknown topic and wrong method over HTTP/2.
    let r = curl(
        &s.server.url("/no-such-topic"),
        &["--http2-prior-knowledge"],
    );
    assert_eq!(r.status, 404);
    let r = curl(&url, &["--http2-prior-knowledge", "-X", "POST"]);
    assert_eq!(r.status, 405);
}

/// nghttp's verbose output, read as it comes: nghttp prints each DATA frame's payload on
/// stdout right before its `recv DATA frame <length=N, ..., stream_id=S>` line (and flushes,
/// while without `-v` it holds stream bodies back), so the N bytes before that line belong to
/// stream S. `send HEADERS frame <..., stream_id=S>` is followed by the request's `:path: P`.
#[derive(Default)]
struct NghttpLog {
    out: Vec<u8>,
}

impl NghttpLog {
    /// Stream id → request path.
    fn paths(&self) -> BTreeMap<u32, String> {
        let text = String::from_utf8_lossy(&self.out);
        let mut paths = BTreeMap::new();
        let mut current = None;
        for line in text.lines() {
            if let Some(i) = line.find("send HEADERS frame <") {
                current = line[i..]
                    .split("stream_id=")
                    .nth(1)
                    .and_then(|r| r.trim_end_matches('>').parse::<u32>().ok());
            } else if let (Some(id), Some(p)) = (current, line.trim_start().strip_prefix(":path: "))
            {
                paths.insert(id, p.to_string());
                current = None;
            }
        }
        paths
    }

    /// Stream id → body bytes received so far.
    fn bodies(&self) -> BTreeMap<u32, Vec<u8>> {
        let out = &self.out;
        let marker = b"] recv DATA frame <length=";
        let mut bodies: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut pos = 0;
        while let Some(rel) = find(&out[pos..], marker) {
            let at = pos + rel;
            let line_end = out[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(out.len(), |e| at + e);
            let line = String::from_utf8_lossy(&out[at..line_end]).into_owned();
            let len: usize = line[marker.len()..]
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("DATA length");
            let id: u32 = line
                .split("stream_id=")
                .nth(1)
                .and_then(|r| r.trim_end_matches('>').parse().ok())
                .expect("DATA stream id");
            let start = out[..at]
                .iter()
                .rposition(|&b| b == b'[')
                .expect("log line start");
            assert!(start >= len, "DATA payload not in front of its log line");
            bodies
                .entry(id)
                .or_default()
                .extend_from_slice(&out[start - len..start]);
            pos = line_end;
        }
        bodies
    }

    /// Request path → events received so far.
    fn events_by_path(&self) -> BTreeMap<String, Vec<Event>> {
        let bodies = self.bodies();
        self.paths()
            .into_iter()
            .map(|(id, p)| (p, parse_sse(bodies.get(&id).map_or(&[][..], |b| &b[..])).0))
            .collect()
    }
}

#[test]
fn nghttp_ten_streams_on_one_connection() {
    let topics: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let s = setup(&names);
    require("nghttp");
    let mut produced: Vec<Vec<(String, Delivered)>> = Vec::new();
    for t in &topics {
        produced.push(
            (0..3)
                .map(|i| {
                    let v = format!("{t}-{i}");
                    (v.clone(), s.producer.send_value(t, Some(0), &v))
                })
                .collect(),
        );
    }
    let before = scrape(s.metrics_port);
    let urls: Vec<String> = topics
        .iter()
        .map(|t| s.server.url(&format!("/{t}")))
        .collect();
    let mut child = spawn_with(
        Command::new("nghttp")
            .arg("-v")
            .args(["-H", "accept: text/event-stream"])
            .args(&urls),
        Stdio::piped(),
        Stdio::null(),
    );
    let mut stdout = child.stdout.take().unwrap();
    let _nghttp = Killed(child);
    let log = Arc::new(Mutex::new(NghttpLog::default()));
    let l = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            l.lock().unwrap().out.extend_from_slice(&buf[..n]);
        }
    });
    let counts = || {
        let by_path = log.lock().unwrap().events_by_path();
        topics
            .iter()
            .map(|t| by_path.get(&format!("/{t}")).map_or(0, Vec::len))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(WAIT, || counts().iter().all(|&n| n >= 3)),
        "not every stream got its records: {:?}",
        counts()
    );
    for (t, p) in topics.iter().zip(&mut produced) {
        let v = format!("{t}-live");
        p.push((v.clone(), s.producer.send_value(t, Some(0), &v)));
    }
    assert!(
        wait_until(WAIT, || counts().iter().all(|&n| n >= 4)),
        "live records did not reach every stream: {:?}",
        counts()
    );
    std::thread::sleep(Duration::from_millis(200)); // let a stray duplicate show up
    let by_path = log.lock().unwrap().events_by_path();
    assert_eq!(by_path.len(), 10, "ten streams: {:?}", by_path.keys());
    for (t, p) in topics.iter().zip(&produced) {
        assert_exactly_once(&by_path[&format!("/{t}")], p);
    }
    let m = scrape(s.metrics_port);
    let delta = |name: &str, version: &str| {
        m.value(name, &[("version", version)]) - before.value(name, &[("version", version)])
    };
    assert_eq!(
        delta("sse_kafka_connections_total", "h2"),
        1.0,
        "one connection"
    );
    assert_eq!(delta("sse_kafka_streams_total", "h2"), 10.0);
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "h2")]),
        10.0
    );
    assert_eq!(
        m.value("sse_kafka_connections_open", &[("version", "h2")]),
        1.0
    );
}

/// Parses h2load's summary: (requests done, 2xx, 4xx, 5xx, errored).
fn h2load_summary(out: &str) -> (u64, u64, u64, u64, u64) {
    let nums = |line: &str| -> Vec<u64> {
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let requests = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line in h2load output:\n{out}"));
    // requests: 50 total, 50 started, 50 done, 0 succeeded, 50 failed, 0 errored, 0 timeout
    let r = nums(requests);
    let codes = nums(
        out.lines()
            .find(|l| l.starts_with("status codes:"))
            .unwrap(),
    );
    // status codes: 0 2xx, 0 3xx, 50 4xx, 0 5xx  → [0, 2, 0, 3, 50, 4, 0, 5]
    (r[2], codes[0], codes[4], codes[6], r[5])
}

#[test]
fn h2load_many_requests_over_multiplexed_connections() {
    let s = setup(&["news"]);
    require("h2load");
    let run = |extra: &[&str], path: &str| -> String {
        let out = Command::new("h2load")
            .args(["-n", "50", "-c", "2", "-m", "10"])
            .args(extra)
            .arg(s.server.url(path))
            .stdin(Stdio::null())
            .output()
            .expect("run h2load");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "h2load failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("Application protocol: h2c"),
            "h2load did not speak h2c:\n{text}"
        );
        text
    };
    // Unknown topic: 404 for every request, all answered, none errored.
    let out = run(&[], "/no-such-topic");
    assert_eq!(h2load_summary(&out), (50, 0, 50, 0, 0), "{out}");
    // POST to a stream route (h2load posts a body given with -d): 405 for every request.
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), b"x").unwrap();
    let out = run(&["-d", body.path().to_str().unwrap()], "/news");
    assert_eq!(h2load_summary(&out), (50, 0, 50, 0, 0), "{out}");
    let m = scrape(s.metrics_port);
    assert_eq!(
        m.value("sse_kafka_streams_total", &[("version", "h2")]),
        0.0,
        "no stream was opened"
    );
    assert!(m.value("sse_kafka_connections_total", &[("version", "h2")]) >= 4.0);
    // The server still streams.
    s.producer.send_value("news", Some(0), "after");
    let sse = Sse::open_args(&s.server.url("/news"), &["--http2-prior-knowledge"]);
    assert_eq!(sse.expect(1, WAIT)[0].data, "after");
}

#[test]
fn a_client_reset_ends_only_that_stream() {
    let s = setup(&["news", "sport"]);
    let mut produced = Vec::new();
    produced.push((
        "n0".to_string(),
        s.producer.send_value("news", Some(0), "n0"),
    ));
    s.producer.send_value("sport", Some(0), "s0");

    let mut c = Client::connect(&s.server.addr());
    c.request(1, "GET", "/news");
    c.request(3, "GET", "/news");
    c.request(5, "GET", "/sport");
    assert!(
        c.run_until(WAIT, |c| [1, 3, 5]
            .iter()
            .all(|&id| c.events(id).len() == 1)),
        "streams: {:?}",
        c.streams
    );
    for id in [1, 3, 5] {
        assert_eq!(c.stream(id).status, Some(200), "stream {id}");
    }

    c.reset(3, CANCEL);
    let (ok, m) = wait_metrics(s.metrics_port, WAIT, |m| {
        m.get("sse_kafka_streams_ended_total", &[("reason", "client")]) == Some(1.0)
    });
    assert!(ok, "the reset stream did not end:\n{}", m.raw);
    assert_eq!(m.value("sse_kafka_streams_open", &[("version", "h2")]), 2.0);

    // The other stream of the same topic and the other topic carry on, on the same connection.
    produced.push((
        "n1".to_string(),
        s.producer.send_value("news", Some(0), "n1"),
    ));
    s.producer.send_value("sport", Some(0), "s1");
    assert!(
        c.run_until(WAIT, |c| c.events(1).len() == 2 && c.events(5).len() == 2),
        "streams: {:?}",
        c.streams
    );
    assert_exactly_once(&c.events(1), &produced);
    assert_eq!(c.events(3).len(), 1, "nothing after the reset");
    assert!(c.goaway.is_none() && !c.closed, "the connection stays up");
    assert_eq!(c.stream(1).reset, None);
    assert_eq!(c.stream(5).reset, None);

    // A new stream on the same connection replays the topic.
    c.request(7, "GET", "/news");
    assert!(c.run_until(WAIT, |c| c.events(7).len() == 2));
    assert_exactly_once(&c.events(7), &produced);
    let m = scrape(s.metrics_port);
    assert_eq!(m.value("sse_kafka_streams_open", &[("version", "h2")]), 3.0);
    assert_eq!(
        m.value("sse_kafka_connections_total", &[("version", "h2")]),
        1.0
    );
}
