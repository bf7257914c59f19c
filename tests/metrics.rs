//! The zilla.yaml `prometheus` telemetry exporter: `/metrics` on its own port, in Prometheus
//! text format 0.0.4, parsed strictly line by line (see `parse_prometheus`), with counters that
//! follow what a stream did.

mod common;
use common::*;

const N: usize = 12;

#[test]
fn metrics_follow_a_stream() {
    let (broker, producer) = Broker::with_topic("ticks", 1);
    let metrics_port = free_port();
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&["--heartbeat", "0"]);

    // Before any client: every family is present and the exposition parses.
    let m = scrape(metrics_port);
    for (family, kind) in [
        ("sse_kafka_connections_open", "gauge"),
        ("sse_kafka_streams_total", "counter"),
        ("sse_kafka_streams_ended_total", "counter"),
        ("sse_kafka_events_sent_total", "counter"),
        ("sse_kafka_bytes_sent_total", "counter"),
        ("sse_kafka_fetch_requests_total", "counter"),
        ("sse_kafka_fetch_bytes_total", "counter"),
        ("sse_kafka_fetch_errors_total", "counter"),
        ("sse_kafka_cache_bytes", "gauge"),
        ("sse_kafka_partition_position", "gauge"),
        ("sse_kafka_partition_high_watermark", "gauge"),
        ("sse_kafka_delivery_latency_seconds", "histogram"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "TYPE of {family}:\n{}",
            m.raw
        );
        assert!(m.help.contains_key(family), "HELP of {family}");
    }
    for version in ["http/1.1", "h2"] {
        assert_eq!(
            m.value("sse_kafka_streams_total", &[("version", version)]),
            0.0
        );
        assert_eq!(
            m.value("sse_kafka_connections_open", &[("version", version)]),
            0.0
        );
    }
    for reason in ["client", "budget", "expiry", "error", "shutdown"] {
        assert_eq!(
            m.value("sse_kafka_streams_ended_total", &[("reason", reason)]),
            0.0
        );
    }
    assert_eq!(m.value("sse_kafka_events_sent_total", &[]), 0.0);

    // Half the records before the stream opens (replayed), half while it is live.
    let mut produced = Vec::new();
    for i in 0..N / 2 {
        produced.push(producer.send_value("ticks", Some(0), &format!("before-{i}")));
    }
    let sse = Sse::open(&server.url("/ticks"));
    sse.expect(N / 2, WAIT);
    for i in 0..N / 2 {
        produced.push(producer.send_value("ticks", Some(0), &format!("live-{i}")));
    }
    let events = sse.expect(N / 2, WAIT);
    let body_len = sse.body().len();
    let end = produced.last().unwrap().offset + 1;
    assert_eq!(end, N as i64);
    assert!(events.last().unwrap().data.starts_with("live-"));

    // The shared fetch's position reaches the end offset (it is updated when the fetch
    // response is processed, which may be a moment after the client got the events).
    let topic_labels = [("topic", "ticks"), ("partition", "0")];
    let m = expect_metrics(
        metrics_port,
        &format!("partition position never reached {end}"),
        |m| m.get("sse_kafka_partition_position", &topic_labels) == Some(end as f64),
    );
    assert_eq!(
        m.value("sse_kafka_partition_high_watermark", &topic_labels),
        end as f64
    );
    assert!(m.value("sse_kafka_streams_total", &[("version", "http/1.1")]) >= 1.0);
    assert_eq!(
        m.value("sse_kafka_streams_total", &[("version", "h2")]),
        0.0
    );
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        1.0
    );
    assert!(
        m.value("sse_kafka_events_sent_total", &[]) >= N as f64,
        "{}",
        m.raw
    );
    // Bytes written include the response head and chunk framing: at least the SSE body.
    assert!(
        m.value("sse_kafka_bytes_sent_total", &[]) >= body_len as f64,
        "bytes_sent {} < body {body_len}",
        m.value("sse_kafka_bytes_sent_total", &[])
    );
    assert!(m.value("sse_kafka_fetch_requests_total", &[]) > 0.0);
    // Every record value went through a fetch at least once.
    let value_bytes: usize = (0..N / 2)
        .map(|i| format!("before-{i}").len() + format!("live-{i}").len())
        .sum();
    assert!(m.value("sse_kafka_fetch_bytes_total", &[]) >= value_bytes as f64);
    assert_eq!(m.value("sse_kafka_fetch_errors_total", &[]), 0.0);
    assert!(
        m.value("sse_kafka_cache_bytes", &[]) > 0.0,
        "records are cached"
    );
    // The live half was timed: the histogram counts them (parse_prometheus has checked that
    // buckets are cumulative and that _count equals the +Inf bucket).
    let count = m.value("sse_kafka_delivery_latency_seconds_count", &[]);
    assert!(count >= 1.0, "no delivery latency recorded:\n{}", m.raw);
    assert_eq!(
        m.value(
            "sse_kafka_delivery_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        count
    );
    assert!(m.value("sse_kafka_delivery_latency_seconds_sum", &[]) >= 0.0);
    let buckets = m.all("sse_kafka_delivery_latency_seconds_bucket");
    assert!(buckets.len() >= 2, "finite buckets and +Inf");

    // The client goes away: the stream ends for reason `client`.
    drop(sse);
    let m = expect_metrics(
        metrics_port,
        "the closed stream is not counted as ended",
        |m| {
            m.get("sse_kafka_streams_ended_total", &[("reason", "client")]) >= Some(1.0)
                && m.get("sse_kafka_streams_open", &[("version", "http/1.1")]) == Some(0.0)
        },
    );
    assert_eq!(
        m.value("sse_kafka_streams_ended_total", &[("reason", "budget")]),
        0.0
    );
    drop(server);
}

/// A connection carrying an SSE stream is an open connection until the stream ends.
#[test]
fn open_connections_include_streaming_ones() {
    let (broker, producer) = Broker::with_topic("ticks", 1);
    let metrics_port = free_port();
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&["--heartbeat", "0"]);
    producer.send_value("ticks", Some(0), "one");
    // The harness's readiness probe was a connection too: count from here.
    let before =
        scrape(metrics_port).value("sse_kafka_connections_total", &[("version", "http/1.1")]);
    let a = Sse::open(&server.url("/ticks"));
    let b = Sse::open(&server.url("/ticks"));
    a.expect(1, WAIT);
    b.expect(1, WAIT);
    let m = scrape(metrics_port);
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        2.0
    );
    assert_eq!(
        m.value("sse_kafka_connections_total", &[("version", "http/1.1")]) - before,
        2.0
    );
    assert_eq!(
        m.value("sse_kafka_connections_open", &[("version", "http/1.1")]),
        2.0,
        "two connections stream events"
    );
    drop((a, b));
    let (ok, m) = wait_metrics(metrics_port, WAIT, |m| {
        m.get("sse_kafka_streams_open", &[("version", "http/1.1")]) == Some(0.0)
            && m.get("sse_kafka_connections_open", &[("version", "http/1.1")]) == Some(0.0)
    });
    assert!(ok, "{}", m.raw);
}

/// An HTTP/2 connection (prior knowledge on the shared port) counts as `h2`, not `http/1.1`.
#[test]
fn h2_connections_are_counted_once_as_h2() {
    let (broker, producer) = Broker::with_topic("ticks", 1);
    let metrics_port = free_port();
    let server = Zilla::h2_metrics(&broker.bootstrap(), metrics_port).start(&["--heartbeat", "0"]);
    producer.send_value("ticks", Some(0), "one");
    let before = scrape(metrics_port);
    let sse = Sse::open_args(&server.url("/ticks"), &["--http2-prior-knowledge"]);
    sse.expect(1, WAIT);
    let m = scrape(metrics_port);
    let delta = |name: &str, version: &str| {
        m.value(name, &[("version", version)]) - before.value(name, &[("version", version)])
    };
    assert_eq!(delta("sse_kafka_connections_total", "h2"), 1.0);
    assert_eq!(delta("sse_kafka_streams_total", "h2"), 1.0);
    assert_eq!(
        m.value("sse_kafka_connections_open", &[("version", "h2")]),
        1.0
    );
    assert_eq!(
        delta("sse_kafka_connections_total", "http/1.1"),
        0.0,
        "the HTTP/2 connection was also counted as an HTTP/1.1 one"
    );
}

#[test]
fn metrics_endpoint_answers_only_get_on_its_path() {
    let broker = Broker::start();
    let metrics_port = free_port();
    let _server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&[]);
    let (status, _, _) = http_get(metrics_port, "/metrics?x=1").unwrap();
    assert_eq!(status, 200, "a query string is ignored");
    let (status, _, _) = http_get(metrics_port, "/other").unwrap();
    assert_eq!(status, 404);
    let r = raw_request(
        &format!("127.0.0.1:{metrics_port}"),
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .unwrap();
    assert_eq!(r.status, 405);
    // Scrapes in a row all parse.
    for _ in 0..5 {
        scrape(metrics_port);
    }
}

/// The parser itself rejects what the format forbids (so that a pass above means something).
#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total A counter.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n";
    let p = parse_prometheus(good).unwrap();
    assert_eq!(p.value("a_total", &[("y", "q\"\\\n"), ("x", "1")]), 3.0);
    for bad in [
        "a 1",                                        // no final newline
        "a{x=1} 1\n",                                 // unquoted label value
        "a{x=\"1\"\n",                                // unterminated
        "a{x=\"\\t\"} 1\n",                           // bad escape
        "a{1x=\"1\"} 1\n",                            // bad label name
        "a{x=\"1\",x=\"2\"} 1\n",                     // label twice
        "a one\n",                                    // not a number
        "a 1\na 2\n",                                 // duplicate series
        "# TYPE a counter\n# TYPE a counter\na 1\n",  // TYPE twice
        "a 1\n# TYPE a counter\n",                    // TYPE after samples
        "# TYPE a counter\na 1\nb 1\na{x=\"y\"} 2\n", // not contiguous
        "# TYPE a foo\na 1\n",                        // unknown type
        "# TYPE c counter\nc -1\n",                   // negative counter
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", // count != +Inf
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "1a 1\n",                                                         // bad metric name
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted: {bad:?}");
    }
}
