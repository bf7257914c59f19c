//! Prometheus text exposition (format 0.0.4) of the merged metrics.

use std::fmt::Write;

use super::{Registry, HTTP_VERSIONS, LATENCY_BOUNDS};

/// Reads one counter of a worker.
type Read<'a> = dyn Fn(&super::WorkerMetrics) -> u64 + 'a;

const ENDED: [&str; 5] = ["client", "budget", "expiry", "error", "shutdown"];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric, summing worker counters.
pub fn render(reg: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    let sum = |f: &Read<'_>| -> u64 { reg.workers.iter().map(|w| f(w)).sum() };

    header(
        &mut out,
        "sse_kafka_connections_open",
        "gauge",
        "Client connections open.",
    );
    for (v, name) in HTTP_VERSIONS.iter().enumerate() {
        let open = sum(&|w| w.connections_opened[v].get())
            .saturating_sub(sum(&|w| w.connections_closed[v].get()));
        let _ = writeln!(
            out,
            "sse_kafka_connections_open{{version=\"{name}\"}} {open}"
        );
    }
    header(
        &mut out,
        "sse_kafka_connections_total",
        "counter",
        "Client connections accepted.",
    );
    for (v, name) in HTTP_VERSIONS.iter().enumerate() {
        let _ = writeln!(
            out,
            "sse_kafka_connections_total{{version=\"{name}\"}} {}",
            sum(&|w| w.connections_opened[v].get())
        );
    }
    header(
        &mut out,
        "sse_kafka_streams_open",
        "gauge",
        "SSE streams open.",
    );
    for (v, name) in HTTP_VERSIONS.iter().enumerate() {
        let open =
            sum(&|w| w.streams_opened[v].get()).saturating_sub(sum(&|w| w.streams_closed[v].get()));
        let _ = writeln!(out, "sse_kafka_streams_open{{version=\"{name}\"}} {open}");
    }
    header(
        &mut out,
        "sse_kafka_streams_total",
        "counter",
        "SSE streams opened.",
    );
    for (v, name) in HTTP_VERSIONS.iter().enumerate() {
        let _ = writeln!(
            out,
            "sse_kafka_streams_total{{version=\"{name}\"}} {}",
            sum(&|w| w.streams_opened[v].get())
        );
    }
    header(
        &mut out,
        "sse_kafka_streams_shed_total",
        "counter",
        "SSE requests refused a stream (answered retry: or 503), by reason.",
    );
    for (i, reason) in crate::http::shed::REASONS.iter().enumerate() {
        let _ = writeln!(
            out,
            "sse_kafka_streams_shed_total{{reason=\"{reason}\"}} {}",
            sum(&|w| w.streams_shed[i].get())
        );
    }
    header(
        &mut out,
        "sse_kafka_streams_ended_total",
        "counter",
        "SSE streams ended, by reason.",
    );
    for (i, reason) in ENDED.iter().enumerate() {
        let _ = writeln!(
            out,
            "sse_kafka_streams_ended_total{{reason=\"{reason}\"}} {}",
            sum(&|w| w.streams_ended[i].get())
        );
    }
    let simple: &[(&str, &str, &Read<'_>)] = &[
        (
            "sse_kafka_events_sent_total",
            "Events appended to client streams.",
            &|w| w.events_sent.get(),
        ),
        (
            "sse_kafka_bytes_sent_total",
            "Bytes written to client streams.",
            &|w| w.bytes_sent.get(),
        ),
        (
            "sse_kafka_malformed_event_ids_total",
            "Last-Event-IDs that could not be decoded (replayed from earliest).",
            &|w| w.malformed_ids.get(),
        ),
        (
            "sse_kafka_fetch_requests_total",
            "Kafka fetch requests sent.",
            &|w| w.fetch_requests.get(),
        ),
        (
            "sse_kafka_fetch_bytes_total",
            "Record bytes received from Kafka fetches.",
            &|w| w.fetch_bytes.get(),
        ),
        (
            "sse_kafka_fetch_errors_total",
            "Kafka fetch requests or partitions that failed.",
            &|w| w.fetch_errors.get(),
        ),
        (
            "sse_kafka_fetch_paused_total",
            "Fetches held back because a worker's inbox was full (backpressure).",
            &|w| w.fetch_paused.get(),
        ),
        (
            "sse_kafka_streams_demoted_total",
            "Live streams that fell behind and continued from the cache.",
            &|w| w.streams_demoted.get(),
        ),
        (
            "sse_kafka_metadata_refused_total",
            "Topic look-ups answered from the negative cache or refused for the look-up cap.",
            &|w| w.metadata_refused.get(),
        ),
        (
            "sse_kafka_sasl_failures_total",
            "Kafka broker connections whose SASL authentication was refused.",
            &|w| w.sasl_failures.get(),
        ),
        (
            "sse_kafka_tls_failures_total",
            "Kafka broker connections whose TLS handshake failed.",
            &|w| w.tls_failures.get(),
        ),
        (
            "sse_kafka_records_invalid_total",
            "Fetched records skipped because their key or value failed the topic's model.",
            &|w| w.records_invalid.get(),
        ),
    ];
    for (name, help, f) in simple {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", sum(f));
    }
    header(
        &mut out,
        "sse_kafka_cache_bytes",
        "gauge",
        "Bytes of records held in partition caches.",
    );
    let cache: i64 = reg.workers.iter().map(|w| w.cache_bytes.get()).sum();
    let _ = writeln!(out, "sse_kafka_cache_bytes {cache}");

    let parts = reg.live_partitions();
    header(
        &mut out,
        "sse_kafka_partition_position",
        "gauge",
        "Next offset the shared fetch reads, per partition.",
    );
    for p in &parts {
        let _ = writeln!(
            out,
            "sse_kafka_partition_position{{topic=\"{}\",partition=\"{}\"}} {}",
            escape(&p.topic),
            p.partition,
            p.position.get()
        );
    }
    header(
        &mut out,
        "sse_kafka_partition_high_watermark",
        "gauge",
        "Last stable offset reported by the broker, per partition.",
    );
    for p in &parts {
        let _ = writeln!(
            out,
            "sse_kafka_partition_high_watermark{{topic=\"{}\",partition=\"{}\"}} {}",
            escape(&p.topic),
            p.partition,
            p.high_watermark.get()
        );
    }

    let name = "sse_kafka_delivery_latency_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Record timestamp to event appended to live streams.",
    );
    let mut cum = vec![0u64; LATENCY_BOUNDS.len()];
    let (mut total, mut secs) = (0u64, 0f64);
    for w in &reg.workers {
        let (c, t, s) = w.delivery_latency.snapshot();
        for (a, b) in cum.iter_mut().zip(c) {
            *a += b;
        }
        total += t;
        secs += s;
    }
    for (bound, count) in LATENCY_BOUNDS.iter().zip(&cum) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {secs}");
    let _ = writeln!(out, "{name}_count {total}");
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
