//! Prometheus text exposition (format 0.0.4) of the merged metrics, from tables: each family
//! is a row (name, type, help, how to read it), rendered in the order of the tables.

use std::fmt::Write;

use super::{PartitionGauge, Registry, WorkerMetrics, HTTP_VERSIONS, LATENCY_BOUNDS, SHED_REASONS};

const ENDED: [&str; 5] = ["client", "budget", "expiry", "error", "shutdown"];

/// A family with one label: one series per label value, its value read from the whole registry
/// (index = the label value's position).
struct Labelled {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    read: fn(&Registry, usize) -> u64,
}

/// A counter without labels, summed over the workers.
struct Plain {
    name: &'static str,
    help: &'static str,
    read: fn(&WorkerMetrics) -> u64,
}

/// A per-partition gauge.
struct PerPartition {
    name: &'static str,
    help: &'static str,
    read: fn(&PartitionGauge) -> i64,
}

/// One counter of every worker, summed.
fn sum(reg: &Registry, read: impl Fn(&WorkerMetrics) -> u64) -> u64 {
    reg.workers.iter().map(|w| read(w)).sum()
}

const LABELLED: [Labelled; 6] = [
    Labelled {
        name: "sse_kafka_connections_open",
        kind: "gauge",
        help: "Client connections open.",
        label: "version",
        values: &HTTP_VERSIONS,
        read: |r, v| {
            sum(r, |w| w.connections_opened[v].get())
                .saturating_sub(sum(r, |w| w.connections_closed[v].get()))
        },
    },
    Labelled {
        name: "sse_kafka_connections_total",
        kind: "counter",
        help: "Client connections accepted.",
        label: "version",
        values: &HTTP_VERSIONS,
        read: |r, v| sum(r, |w| w.connections_opened[v].get()),
    },
    Labelled {
        name: "sse_kafka_streams_open",
        kind: "gauge",
        help: "SSE streams open.",
        label: "version",
        values: &HTTP_VERSIONS,
        read: |r, v| {
            sum(r, |w| w.streams_opened[v].get())
                .saturating_sub(sum(r, |w| w.streams_closed[v].get()))
        },
    },
    Labelled {
        name: "sse_kafka_streams_total",
        kind: "counter",
        help: "SSE streams opened.",
        label: "version",
        values: &HTTP_VERSIONS,
        read: |r, v| sum(r, |w| w.streams_opened[v].get()),
    },
    Labelled {
        name: "sse_kafka_streams_shed_total",
        kind: "counter",
        help: "SSE requests refused a stream (answered retry: or 503), by reason.",
        label: "reason",
        values: &SHED_REASONS,
        read: |r, i| sum(r, |w| w.streams_shed[i].get()),
    },
    Labelled {
        name: "sse_kafka_streams_ended_total",
        kind: "counter",
        help: "SSE streams ended, by reason.",
        label: "reason",
        values: &ENDED,
        read: |r, i| sum(r, |w| w.streams_ended[i].get()),
    },
];

const PLAIN: [Plain; 12] = [
    Plain {
        name: "sse_kafka_events_sent_total",
        help: "Events appended to client streams.",
        read: |w| w.events_sent.get(),
    },
    Plain {
        name: "sse_kafka_bytes_sent_total",
        help: "Bytes written to client streams.",
        read: |w| w.bytes_sent.get(),
    },
    Plain {
        name: "sse_kafka_malformed_event_ids_total",
        help: "Last-Event-IDs that could not be decoded (replayed from earliest).",
        read: |w| w.malformed_ids.get(),
    },
    Plain {
        name: "sse_kafka_fetch_requests_total",
        help: "Kafka fetch requests sent.",
        read: |w| w.fetch_requests.get(),
    },
    Plain {
        name: "sse_kafka_fetch_bytes_total",
        help: "Record bytes received from Kafka fetches.",
        read: |w| w.fetch_bytes.get(),
    },
    Plain {
        name: "sse_kafka_fetch_errors_total",
        help: "Kafka fetch requests or partitions that failed.",
        read: |w| w.fetch_errors.get(),
    },
    Plain {
        name: "sse_kafka_fetch_paused_total",
        help: "Fetches held back because a worker's inbox was full (backpressure).",
        read: |w| w.fetch_paused.get(),
    },
    Plain {
        name: "sse_kafka_streams_demoted_total",
        help: "Live streams that fell behind and continued from the cache.",
        read: |w| w.streams_demoted.get(),
    },
    Plain {
        name: "sse_kafka_metadata_refused_total",
        help: "Topic look-ups answered from the negative cache or refused for the look-up cap.",
        read: |w| w.metadata_refused.get(),
    },
    Plain {
        name: "sse_kafka_sasl_failures_total",
        help: "Kafka broker connections whose SASL authentication was refused.",
        read: |w| w.sasl_failures.get(),
    },
    Plain {
        name: "sse_kafka_tls_failures_total",
        help: "Kafka broker connections whose TLS handshake failed.",
        read: |w| w.tls_failures.get(),
    },
    Plain {
        name: "sse_kafka_records_invalid_total",
        help: "Fetched records skipped because their key or value failed the topic's model.",
        read: |w| w.records_invalid.get(),
    },
];

const PER_PARTITION: [PerPartition; 2] = [
    PerPartition {
        name: "sse_kafka_partition_position",
        help: "Next offset the shared fetch reads, per partition.",
        read: |p| p.position.get(),
    },
    PerPartition {
        name: "sse_kafka_partition_high_watermark",
        help: "Last stable offset reported by the broker, per partition.",
        read: |p| p.high_watermark.get(),
    },
];

const LATENCY: &str = "sse_kafka_delivery_latency_seconds";

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric, summing worker counters.
pub fn render(reg: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    for family in &LABELLED {
        labelled(&mut out, reg, family);
    }
    for family in &PLAIN {
        header(&mut out, family.name, "counter", family.help);
        let _ = writeln!(out, "{} {}", family.name, sum(reg, family.read));
    }
    cache_bytes(&mut out, reg);
    let parts = reg.live_partitions();
    for family in &PER_PARTITION {
        per_partition(&mut out, &parts, family);
    }
    latency_histogram(&mut out, reg);
    out
}

fn labelled(out: &mut String, reg: &Registry, f: &Labelled) {
    header(out, f.name, f.kind, f.help);
    for (i, value) in f.values.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}{{{}=\"{value}\"}} {}",
            f.name,
            f.label,
            (f.read)(reg, i)
        );
    }
}

fn cache_bytes(out: &mut String, reg: &Registry) {
    header(
        out,
        "sse_kafka_cache_bytes",
        "gauge",
        "Bytes of records held in partition caches.",
    );
    let cache: i64 = reg.workers.iter().map(|w| w.cache_bytes.get()).sum();
    let _ = writeln!(out, "sse_kafka_cache_bytes {cache}");
}

fn per_partition(out: &mut String, parts: &[std::sync::Arc<PartitionGauge>], f: &PerPartition) {
    header(out, f.name, "gauge", f.help);
    for p in parts {
        let _ = writeln!(
            out,
            "{}{{topic=\"{}\",partition=\"{}\"}} {}",
            f.name,
            escape(&p.topic),
            p.partition,
            (f.read)(p)
        );
    }
}

/// The delivery latency histogram, the workers' buckets added up.
fn latency_histogram(out: &mut String, reg: &Registry) {
    header(
        out,
        LATENCY,
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
        let _ = writeln!(out, "{LATENCY}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{LATENCY}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{LATENCY}_sum {secs}");
    let _ = writeln!(out, "{LATENCY}_count {total}");
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family in table order, with its type, and values summed over the workers.
    #[test]
    fn families_render_in_order_with_summed_values() {
        let reg = Registry::new(2);
        for (k, w) in reg.workers.iter().enumerate() {
            let k = k as u64 + 1;
            w.connections_opened[0].add(5 * k);
            w.connections_closed[0].add(2 * k);
            w.streams_shed[2].add(k);
            w.events_sent.add(100 * k);
            w.cache_bytes.add(1000 * k as i64);
            w.delivery_latency.record_micros(1500 * k);
        }
        let g = reg.partition("a\"b".into(), 3);
        g.position.set(42);
        let text = render(&reg);
        for line in [
            "# TYPE sse_kafka_connections_open gauge",
            "sse_kafka_connections_open{version=\"http/1.1\"} 9",
            "sse_kafka_connections_total{version=\"http/1.1\"} 15",
            "sse_kafka_streams_shed_total{reason=\"draining\"} 3",
            "sse_kafka_streams_ended_total{reason=\"shutdown\"} 0",
            "# TYPE sse_kafka_events_sent_total counter",
            "sse_kafka_events_sent_total 300",
            "sse_kafka_cache_bytes 3000",
            "sse_kafka_partition_position{topic=\"a\\\"b\",partition=\"3\"} 42",
            "sse_kafka_delivery_latency_seconds_bucket{le=\"0.002\"} 1",
            "sse_kafka_delivery_latency_seconds_bucket{le=\"0.005\"} 2",
            "sse_kafka_delivery_latency_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or(l))
            .collect();
        let expected: Vec<&str> = LABELLED
            .iter()
            .map(|f| f.name)
            .chain(PLAIN.iter().map(|f| f.name))
            .chain(["sse_kafka_cache_bytes"])
            .chain(PER_PARTITION.iter().map(|f| f.name))
            .chain([LATENCY])
            .collect();
        assert_eq!(order, expected);
    }
}
