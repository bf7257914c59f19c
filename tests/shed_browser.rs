//! Shedding that a browser survives (issue 12, point 3): headless Chromium's EventSource asks
//! for a stream while the server is at its `--max-streams` cap. It is answered `200` with a
//! `retry:` line and an immediate end, so the EventSource stays in CONNECTING (a 503 would
//! close it for good) and tries again after the delay; once a place is free it connects and
//! receives the records.

mod common;
use common::chromium::{Chromium, Page};
use common::*;
use std::time::Duration;

const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// Reports each error (with the EventSource's readyState) and, once it has `n` events, the data.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>shed</title>
<script>
const q = new URLSearchParams(location.search);
const n = Number(q.get('n'));
const data = [];
let opens = 0, errors = 0;
function report(kind, extra) {
  fetch('/report', { method: 'POST', body: `kind ${kind}\nopens ${opens}\nerrors ${errors}\n${extra}` });
}
const es = new EventSource(q.get('src'));
es.onopen = () => { opens++; };
es.onerror = () => { errors++; report('error', `state ${es.readyState}\n`); };
es.onmessage = (e) => {
  data.push(e.data);
  if (data.length === n) {
    es.close();
    report('done', data.map((d) => `data ${encodeURIComponent(d)}`).join('\n'));
  }
};
</script>
"#;

fn field<'r>(report: &'r str, key: &str) -> Vec<&'r str> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .collect()
}

#[test]
fn chromium_eventsource_is_shed_then_connects_when_there_is_room() {
    let _ = common::chromium::chromium_bin();
    let (broker, producer) = Broker::with_topic("events", 1);
    for v in ["one", "two"] {
        producer.send_value("events", Some(0), v);
    }
    let port = free_port();
    let prom = free_port();
    let zilla = Zilla::new(port, &broker.bootstrap())
        .route(Route::any_topic())
        .prometheus(prom);
    // The page comes from another origin (the test's page server): the builder's default
    // policy is cross-origin.
    let yaml = zilla.yaml();
    assert!(yaml.contains("policy: cross-origin"));
    let server = Server::builder(port)
        .config(&yaml)
        .args([
            "--max-streams",
            "1",
            "--shed-retry-ms",
            "600",
            "--heartbeat",
            "0",
        ])
        .start();

    // The one place is taken.
    let holder = Sse::open(&server.url("/events"));
    assert_eq!(holder.expect(2, WAIT)[1].data, "two");

    let page = Page::start(PAGE);
    let src = server.url("/events");
    let _browser = Chromium::open(&page.url(&format!("n=3&src={}", percent_encode(&src))));

    // Shed at least twice: it came back by itself after the first refusal.
    let (shed, m) = wait_metrics(prom, BROWSER_WAIT, |m| {
        m.value("sse_kafka_streams_shed_total", &[("reason", "max_streams")]) >= 2.0
    });
    assert!(
        shed,
        "the page was not shed twice:\n{}\nreports: {:?}",
        m.raw,
        page.reports()
    );
    let errors = page
        .wait_report(BROWSER_WAIT, |r| r.starts_with("kind error"))
        .expect("the page saw the shed end");
    assert_eq!(
        field(&errors, "state"),
        ["0"],
        "the EventSource stays CONNECTING after a shed answer: {errors}"
    );

    // Room again: the EventSource connects on its next try and streams.
    drop(holder);
    producer.send_value("events", Some(0), "three");
    let done = page
        .wait_report(BROWSER_WAIT, |r| r.starts_with("kind done"))
        .unwrap_or_else(|| panic!("no data report; reports: {:?}", page.reports()));
    assert_eq!(field(&done, "data"), ["one", "two", "three"], "{done}");
    let opens: u32 = field(&done, "opens")[0].parse().unwrap();
    assert!(
        opens >= 3,
        "opened on each shed answer and once for real: {done}"
    );
    let m = scrape(prom);
    assert_eq!(
        m.value("sse_kafka_streams_shed_total", &[("reason", "draining")]),
        0.0
    );
}
