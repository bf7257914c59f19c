//! Health endpoints (issue 12, point 2): `/health/live` and `/health/ready` on `--health-listen`
//! and on the prometheus exporter's listener, in each state: starting (the Kafka cluster has
//! not answered yet), ready, broker unreachable, draining.

mod common;
use common::*;
use std::net::TcpListener;
use std::time::Duration;

/// (status, body) of `GET path` on `127.0.0.1:port`.
fn get(port: u16, path: &str) -> (u16, String) {
    let (status, content_type, body) =
        http_get(port, path).unwrap_or_else(|| panic!("no answer for {path} on {port}"));
    assert_eq!(content_type, "application/json", "{path}: {body}");
    (status, body)
}

fn wait_ready_body(port: u16, want_status: u16, want: &str) -> (u16, String) {
    let mut last = (0, String::new());
    let ok = wait_until(WAIT, || {
        last = get(port, "/health/ready");
        last.0 == want_status && last.1.contains(want)
    });
    assert!(
        ok,
        "ready never answered {want_status} with {want:?}: last {last:?}"
    );
    last
}

#[test]
fn starting_while_the_cluster_has_not_answered() {
    // A "broker" that accepts connections and never answers: the first probe stays pending.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = blackhole.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in blackhole.incoming().flatten().take(8) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let health = free_port();
    let _server = Server::direct(
        &addr,
        &[
            "--metadata-timeout-ms",
            "60000",
            "--health-listen",
            &format!("127.0.0.1:{health}"),
        ],
    );
    let (status, body) = get(health, "/health/ready");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("{\"status\":\"not ready\",\"reason\":\"starting"),
        "{body}"
    );
    assert_eq!(
        get(health, "/health/live"),
        (200, "{\"status\":\"live\"}\n".into())
    );
    assert_eq!(http_get(health, "/metrics").map(|r| r.0), Some(404));
    drop(held);
}

#[test]
fn unreachable_broker_is_not_ready_but_live() {
    let dead = free_port(); // nothing listens there
    let health = free_port();
    let _server = Server::direct(
        &format!("127.0.0.1:{dead}"),
        &["--health-listen", &format!("127.0.0.1:{health}")],
    );
    let (_, body) = wait_ready_body(health, 503, "unreachable");
    assert_eq!(
        body,
        "{\"status\":\"not ready\",\"reason\":\"kafka cluster south_kafka_client unreachable\"}\n"
    );
    assert_eq!(get(health, "/health/live").0, 200);
}

#[test]
fn ready_on_both_listeners_then_unreachable_when_the_broker_goes() {
    let broker = Broker::with_empty_topic("events", 1);
    let health = free_port();
    let prom = free_port();
    let _server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(prom)
        .start(&["--health-listen", &format!("127.0.0.1:{health}")]);
    for port in [health, prom] {
        let (status, body) = wait_ready_body(port, 200, "ready");
        assert_eq!((status, body.as_str()), (200, "{\"status\":\"ready\"}\n"));
        assert_eq!(get(port, "/health/live").0, 200);
    }
    // The exporter still serves metrics.
    scrape(prom);
    drop(broker);
    for port in [health, prom] {
        wait_ready_body(port, 503, "unreachable");
    }
}

#[test]
fn draining_is_not_ready_at_once_and_still_live() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "x");
    let health = free_port();
    let mut server = Server::direct(
        &broker.bootstrap(),
        &[
            "--health-listen",
            &format!("127.0.0.1:{health}"),
            "--drain-grace",
            "1",
            "--drain-timeout",
            "8",
        ],
    );
    wait_ready_body(health, 200, "ready");
    let stream = Sse::open(&server.url("/events"));
    assert_eq!(stream.expect(1, WAIT)[0].data, "x");
    server.signal(libc::SIGTERM);
    let (_, body) = wait_ready_body(health, 503, "draining");
    assert_eq!(body, "{\"status\":\"not ready\",\"reason\":\"draining\"}\n");
    // Live while draining: an orchestrator must not kill a draining process.
    let (status, body) = get(health, "/health/live");
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"status\":\"live\",\"draining\":true}\n")
    );
    let status = server.wait_exit(WAIT).expect("exits after the drain");
    assert!(status.success(), "{status}");
    assert!(stream.wait_eof(WAIT));
}
