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
use common::h2wire;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const TOPIC: &str = "browser";
/// Chromium's first start in a fresh profile takes a few seconds on a loaded machine.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

fn yaml(port: u16, metrics_port: u16, kafka: &str) -> String {
    format!(
        r#"name: browser-test
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 127.0.0.1
      port:
        - {port}
    routes:
      - when:
          - port: {port}
        exit: north_http_server
  north_http_server:
    type: http
    kind: server
    options:
      versions:
        - h2
        - http/1.1
    routes:
      - when:
          - headers:
              :scheme: https
              :path: /events
        exit: north_sse_server
      - when:
          - headers:
              :scheme: https
        exit: east_http_filesystem_mapping
  east_http_filesystem_mapping:
    type: http-filesystem
    kind: proxy
    routes:
      - when:
          - path: /
        exit: east_filesystem_server
        with:
          path: index.html
      - when:
          - path: /{{path}}
        exit: east_filesystem_server
        with:
          path: ${{params.path}}
  east_filesystem_server:
    type: filesystem
    kind: server
    options:
      location: www/
  north_sse_server:
    type: sse
    kind: server
    exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when:
          - path: /events
        exit: north_kafka_cache_client
        with:
          topic: {TOPIC}
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    options:
      bootstrap:
        - {TOPIC}
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - {kafka}
    exit: south_tcp_client
  south_tcp_client:
    type: tcp
    kind: client
telemetry:
  exporters:
    prom:
      type: prometheus
      options:
        endpoints:
          - scheme: http
            port: {metrics_port}
            path: /metrics
"#
    )
}

// ---------------------------------------------------------------------------------------------
// The collector the page reports to
// ---------------------------------------------------------------------------------------------

/// A plain-HTTP loopback endpoint that keeps the body of every POST (answering 204).
struct Collector {
    port: u16,
    reports: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        let port = listener.local_addr().unwrap().port();
        let reports: Arc<Mutex<Vec<String>>> = Arc::default();
        let r = reports.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let r = r.clone();
                thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 8192];
                    let (head_end, length) = loop {
                        if let Some(end) = find(&buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                        match conn.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match conn.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let _ = conn.write_all(
                        b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                    );
                    if buf.starts_with(b"POST ") {
                        let body = &buf[head_end..head_end + length];
                        r.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(body).into_owned());
                    }
                });
            }
        });
        Collector { port, reports }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/report", self.port)
    }

    fn wait_report(&self, timeout: Duration) -> Option<String> {
        let mut report = None;
        wait_until(timeout, || {
            report = self.reports.lock().unwrap().first().cloned();
            report.is_some()
        });
        report
    }
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

fn chromium_bin() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| find_program(n))
        .unwrap_or_else(|| panic!("chromium not found: `apt-get install chromium` (Debian)"))
}

/// Headless Chromium in a process group of its own (killed as a group on drop), with a fresh
/// profile; output kept for failure messages.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    log: PathBuf,
}

impl Browser {
    fn open(url: &str, dir: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = dir.join("chromium.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(chromium_bin());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--ignore-certificate-errors",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn chromium");
        Browser {
            child,
            _profile: profile,
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGTERM lets Chromium end and reap its own helpers; whatever is left of its process
        // group after a while is killed.
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let ended = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        if !ended {
            let _ = self.child.wait();
        }
        if thread::panicking() {
            let out = self.output();
            let tail: Vec<&str> = out.lines().rev().take(40).collect();
            eprintln!(
                "--- chromium output (last 40 lines) ---\n{}\n---",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn eventsource_in_headless_chromium_over_https_h2() {
    let chromium = chromium_bin();
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let producer = Producer::new(&broker.bootstrap());
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

    let collector = Collector::start();
    let live = ["live-0", "live-1", "live-2"];
    let n = before.len() + live.len();
    let url = format!(
        "https://127.0.0.1:{port}/?n={n}&report={}",
        percent_encode(&collector.url())
    );
    let browser = Browser::open(&url, dir.path());
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

    let report = collector.wait_report(BROWSER_WAIT).unwrap_or_else(|| {
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
