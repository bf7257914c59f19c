//! A real browser: headless Chromium (Debian `chromium`) loads a page served by sse-kafka
//! itself over HTTPS (a throwaway self-signed certificate made with openssl, accepted with
//! `--ignore-certificate-errors`) from the `http-filesystem` + `filesystem` bindings, on the
//! same TLS listener as the sse-kafka route. The page's `EventSource` receives Kafka records,
//! some produced before it opened and some while it is open, and writes them into the DOM;
//! once it has them all it reports (events, the list read back from the DOM, the protocol of
//! each response) to a small collector in this test. Checked: exactly the produced records, in
//! order, with the server's event ids; the DOM holds the same; the page, its EventSource and a
//! later static request went over HTTP/2 (`nextHopProtocol` "h2", and the server's own
//! counters: one h2 SSE stream, no HTTP/1.1 one).
//!
//! The zilla.yaml `tls` binding is not supported yet: the listener gets TLS from the
//! `--tls-cert`/`--tls-key` options, and routes on `:scheme: https`.

mod common;
use common::chromium::{chromium_bin, Chromium, Page};
use common::h2wire;
use common::*;
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "browser";
/// Chromium's first start in a fresh profile takes a few seconds on a loaded machine.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

fn yaml(port: u16, metrics_port: u16, kafka: &str) -> String {
    Zilla::new(port, kafka)
        .named("browser-test")
        .versions(&["h2", "http/1.1"])
        .same_origin()
        .scheme("https")
        .http_path("/events")
        .files("www/")
        .route(Route::new("/events", TOPIC))
        .bootstrap_topic(TOPIC)
        .prometheus(metrics_port)
        .yaml()
}

/// The page's report: (key, percent-decoded value) lines.
fn parse_report(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------

#[test]
fn eventsource_in_headless_chromium_over_https_h2() {
    let chromium = chromium_bin();
    let (broker, producer) = Broker::with_topic(TOPIC, 1);
    // Before the page opens (replayed), among them a multi-line value (EventSource joins the
    // data lines with LF) and non-ASCII text.
    let before = ["before-0", "two\nlines", "naïve ✓ 日本語", "before-3"];
    let mut produced: Vec<(String, Delivered)> = before
        .iter()
        .map(|v| (v.to_string(), producer.send_value(TOPIC, Some(0), v)))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser/index.html");
    std::fs::copy(&page, www.join("index.html")).expect("copy the page fixture");
    std::fs::write(www.join("probe.txt"), "probe ok").unwrap();
    let (cert, key) = h2wire::test_certificate(dir.path());

    let port = free_port();
    let metrics_port = free_port();
    let server = Server::builder(port)
        .dir(dir.path())
        .config(&yaml(port, metrics_port, &broker.bootstrap()))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .start();
    assert!(server.logs().contains("(TLS, "), "{}", server.logs());

    let collector = Page::start("");
    let live = ["live-0", "live-1", "live-2"];
    let n = before.len() + live.len();
    let url = format!(
        "https://127.0.0.1:{port}/?n={n}&report={}",
        percent_encode(&collector.report_url())
    );
    let browser = Chromium::open_with(
        &url,
        &["--ignore-certificate-errors", "--remote-debugging-port=0"],
    );
    eprintln!("{} -> {url}", chromium.display());

    // The page's EventSource is open (an h2 SSE stream exists) before the live records go out.
    let (opened, m) = wait_metrics(metrics_port, BROWSER_WAIT, |m| {
        m.get("sse_kafka_streams_total", &[("version", "h2")]) == Some(1.0)
    });
    assert!(
        opened,
        "the page never opened its EventSource over h2:\n{}\nchromium: {}",
        m.raw,
        browser.output()
    );
    for v in live {
        produced.push((v.to_string(), producer.send_value(TOPIC, Some(0), v)));
    }

    let report = collector
        .wait_report(BROWSER_WAIT, |_| true)
        .unwrap_or_else(|| {
            panic!(
                "no report from the page within {BROWSER_WAIT:?}; server:\n{}",
                server.logs()
            )
        });
    let facts = parse_report(&report);
    let all = |k: &str| -> Vec<String> {
        facts
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let one = |k: &str| all(k).into_iter().next().unwrap_or_default();
    assert_eq!(one("kind"), "done", "report: {report}");
    assert!(
        all("error").is_empty(),
        "EventSource errors: {:?}",
        all("error")
    );

    // Exactly the produced records, in order, with the server's ids.
    let ids = all("id");
    let data = all("data");
    assert_eq!(ids.len(), data.len(), "report: {report}");
    let events: Vec<Event> = ids
        .into_iter()
        .zip(data.iter().cloned())
        .map(|(id, data)| Event {
            id: Some(id),
            event: None,
            data,
        })
        .collect();
    let expected: Vec<String> = produced.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(data, expected, "records as the page saw them");
    assert_exactly_once(&events, &produced);
    // The DOM holds the same, in order.
    assert_eq!(all("dom"), expected, "the page's list");

    // HTTP/2 all the way: the page, the EventSource (Chromium records its timing entry when
    // the page closes it) and the static request made after it.
    assert_eq!(one("secure"), "true", "report: {report}");
    assert_eq!(one("origin"), format!("https://127.0.0.1:{port}"));
    assert_eq!(one("page"), "h2", "navigation protocol; report: {report}");
    assert_eq!(one("probe"), "probe ok", "report: {report}");
    let resources = all("resource");
    let probe = resources
        .iter()
        .find(|r| r.starts_with("/probe.txt "))
        .unwrap_or_else(|| panic!("no timing entry for the probe: {resources:?}"));
    assert_eq!(probe, "/probe.txt h2", "{resources:?}");
    let es = resources
        .iter()
        .find(|r| r.starts_with("/events "))
        .unwrap_or_else(|| panic!("no timing entry for the EventSource: {resources:?}"));
    assert_eq!(es, "/events h2", "{resources:?}");
    eprintln!("resource timing: {resources:?}");
    // And as the server counted them: one SSE stream, over h2, none over HTTP/1.1.
    let m = scrape(metrics_port);
    assert_eq!(
        m.get("sse_kafka_streams_total", &[("version", "h2")]),
        Some(1.0),
        "{}",
        m.raw
    );
    assert_eq!(
        m.get("sse_kafka_streams_total", &[("version", "http/1.1")]),
        Some(0.0),
        "{}",
        m.raw
    );
    drop(browser);
}
