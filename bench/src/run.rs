//! One measured run: N streams from client processes against one target, a paced feed, then
//! counts, latency, throughput, CPU and memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::client::{merge_reports, ClientArgs, Proto, BUCKET_NS};
use crate::feed::{FeedReport, FeedSpec};
use crate::payload::mono_ns;
use crate::procs::{self, ClientProc, Sampler};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    Raw,
    Nchan,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "sse-kafka",
            Kind::Raw => "raw-floor",
            Kind::Nchan => "nchan",
        }
    }
}

/// How the feed reaches the target.
pub enum Publisher<'a> {
    Kafka { bootstrap: &'a str, topic: &'a str },
    Raw(&'a mut crate::targets::RawServer),
    Http { addr: SocketAddr, path: &'a str },
}

pub struct RunSpec {
    pub scenario: String,
    pub kind: Kind,
    pub streams: usize,
    pub path: String,
    pub feed: Option<FeedSpec>,
    pub keyed: bool,
    pub reconnect_ms: u64,
    pub drop_one: bool,
    pub dup_one: bool,
    pub client_procs: usize,
    pub client_threads: usize,
    pub src_addrs: usize,
    pub drain: Duration,
    pub settle: Duration,
    pub workers: usize,
    /// Raw floor: release events in batches every this many ms (0: one by one).
    pub raw_burst_ms: u64,
    /// Client protocol (HTTP/2 for our server only; the baselines speak HTTP/1.1).
    pub proto: Proto,
    pub streams_per_conn: usize,
    /// Fetch wait of the broker-floor consumer (ms): 500 like the server's default, or the
    /// short wait the server is given on the mock cluster.
    pub floor_wait_ms: i32,
}

pub struct Target<'a> {
    pub addr: SocketAddr,
    pub pids: Vec<u32>,
    pub broker_pid: Option<u32>,
    pub metrics: Option<SocketAddr>,
    pub publisher: Publisher<'a>,
    /// A request path used to warm the target up before measuring its memory.
    pub warm_path: Option<String>,
}

/// (Slab KiB from /proc/meminfo, TCP buffer pages from /proc/net/sockstat): kernel memory
/// that grows with sockets (machine-wide, so only approximate on a shared host).
fn kernel_mem() -> (u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let slab = meminfo
        .lines()
        .find(|l| l.starts_with("Slab:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "mem")?;
            f.get(i + 1)?.parse().ok()
        })
        .unwrap_or(0);
    (slab, pages)
}

fn rss_of(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| procs::rss_kib(p).unwrap_or(0)).sum()
}

/// Spreads `streams` over client processes (each below the per-process fd limit).
pub fn default_client_procs(streams: usize) -> usize {
    streams.div_ceil(9_500).max(1)
}

pub fn execute(
    spec: &RunSpec,
    mut target: Target,
    dir: &Path,
    exe: &Path,
) -> Result<Value, String> {
    let t0 = mono_ns();
    eprintln!(
        "==> {} · {} · {} streams{}",
        spec.scenario,
        spec.kind.name(),
        spec.streams,
        spec.feed
            .map(|f| format!(" · {} records at {}/s, {} B", f.total(), f.rate, f.size))
            .unwrap_or_default()
    );
    if let Some(p) = &target.warm_path {
        let status = crate::targets::warm_up(target.addr, p)?;
        if status != 200 {
            return Err(format!("warm-up request {p} answered {status}"));
        }
        procs::sleep(Duration::from_millis(300))?;
    }
    let rss_before = rss_of(&target.pids);
    let kernel_before = kernel_mem();

    // Client processes.
    let procs_n = spec.client_procs.max(1).min(spec.streams.max(1));
    // 127.0.0.2, .3, …: each source address has its own ephemeral port range per destination.
    let src_addrs: Vec<Ipv4Addr> = (0..spec.src_addrs.clamp(1, 250))
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i as u8))
        .collect();
    let (srcs, per_src) = spec.feed.map(|f| (f.srcs(), f.per_src())).unwrap_or((1, 0));
    let mut clients = Vec::new();
    let per = spec.streams.div_ceil(procs_n);
    for k in 0..procs_n {
        let first = k * per;
        let count = per.min(spec.streams.saturating_sub(first));
        if count == 0 {
            break;
        }
        let out = dir.join(format!("client-{k}.json"));
        let args = ClientArgs {
            target: target.addr,
            path: spec.path.clone(),
            proto: spec.proto,
            streams_per_conn: spec.streams_per_conn,
            first,
            count,
            src_addrs: src_addrs.clone(),
            srcs,
            per_src,
            keyed: spec.keyed,
            threads: spec.client_threads,
            connect_concurrency: 256,
            buf_size: 8192,
            out: out.clone(),
            t0_ns: t0,
            drop_one: spec.drop_one,
            dup_one: spec.dup_one,
            reconnect_ms: spec.reconnect_ms,
        };
        clients.push(ClientProc::spawn(
            exe,
            &args.to_args(),
            &dir.join(format!("client-{k}.log")),
            out,
        )?);
    }
    let connect_timeout = Duration::from_secs(30 + spec.streams as u64 / 200);
    let mut opened = 0u64;
    let mut failed = 0u64;
    for c in clients.iter_mut() {
        let line = c.wait_line("ready", connect_timeout)?;
        let mut p = line.split_whitespace().skip(1);
        opened += p.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        failed += p.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    let t_ready = mono_ns();
    eprintln!(
        "    {opened} streams open, {failed} failed, in {:.1} s",
        (t_ready - t0) as f64 / 1e9
    );
    procs::sleep(spec.settle)?;
    let rss_streams = rss_of(&target.pids);
    let kernel_streams = kernel_mem();

    let client_pids: Vec<u32> = clients.iter().map(|c| c.proc.pid()).collect();
    let mut groups = vec![
        ("target".to_string(), target.pids.clone()),
        ("clients".to_string(), client_pids),
    ];
    if let Some(b) = target.broker_pid {
        groups.push(("broker".to_string(), vec![b]));
    }
    groups.push(("harness".to_string(), vec![std::process::id()]));
    let mut sampler = Sampler::start(groups, Duration::from_millis(100));

    // Beside a Kafka feed, a plain consumer measures what the broker alone gives.
    let floor_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (floor_ready, floor_ready_rx) = std::sync::mpsc::channel();
    let floor = match (spec.feed, &target.publisher) {
        (Some(f), Publisher::Kafka { bootstrap, topic }) => {
            let (b, t, stop) = (bootstrap.to_string(), topic.to_string(), floor_stop.clone());
            let wait = spec.floor_wait_ms;
            let partitions = match f.mode {
                crate::feed::Mode::Partitions(p) => p,
                crate::feed::Mode::Keys { partitions, .. } => partitions,
            } as i32;
            Some(std::thread::spawn(move || {
                crate::feed::broker_floor(&b, &t, partitions, f.total(), wait, &stop, floor_ready)
            }))
        }
        _ => None,
    };

    if floor.is_some() {
        // Until the floor consumer fetches (or gave up: the sender is dropped).
        let _ = floor_ready_rx.recv_timeout(Duration::from_secs(15));
    }
    // The feed.
    let feed_report: Option<FeedReport> = match (spec.feed, &mut target.publisher) {
        (None, _) => None,
        (Some(f), Publisher::Kafka { bootstrap, topic }) => {
            Some(crate::feed::produce_kafka(bootstrap, topic, &f)?)
        }
        (Some(f), Publisher::Http { addr, path }) => {
            Some(crate::feed::publish_http(*addr, path, &f)?)
        }
        (Some(f), Publisher::Raw(raw)) => {
            let start = mono_ns();
            raw.go(f.rate, f.total(), f.size, spec.raw_burst_ms)?;
            let secs = f.total() as f64 / f.rate + spec.raw_burst_ms as f64 / 1000.0;
            procs::sleep(Duration::from_secs_f64(secs))?;
            Some(FeedReport {
                sent: f.total(),
                failed: 0,
                start_ns: start,
                end_ns: start + (secs * 1e9) as u64,
            })
        }
    };
    let feed_end = mono_ns();
    for c in clients.iter_mut() {
        c.send(&format!("finish {}", spec.drain.as_millis()));
    }
    let done_timeout = spec.drain + Duration::from_secs(30);
    let mut reports = Vec::new();
    for c in clients.iter_mut() {
        c.wait_line("done", done_timeout)?;
        let text =
            std::fs::read_to_string(&c.out).map_err(|e| format!("{}: {e}", c.out.display()))?;
        reports.push(serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())?);
    }
    let t_done = mono_ns();
    // The floor consumer may still be catching up: give it a few seconds to see every record.
    if let Some(h) = &floor {
        let end = mono_ns() + 5_000_000_000;
        while !h.is_finished() && mono_ns() < end && !procs::interrupted() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    floor_stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let floor = match floor.map(|t| t.join()) {
        Some(Ok(Ok((h, got)))) => {
            let mut v = latency_json(&h);
            if !v.is_null() {
                v["received"] = json!(got);
            }
            v
        }
        Some(Ok(Err(e))) => json!({ "error": e }),
        _ => Value::Null,
    };
    let samples = sampler.stop();
    let metrics = target.metrics.and_then(|m| crate::targets::scrape(m).ok());
    for c in clients.iter_mut() {
        c.send("exit");
    }
    drop(clients);
    let merged = merge_reports(&reports);

    // Latency histogram.
    let mut hist = Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).unwrap();
    for e in merged["hist"].as_array().into_iter().flatten() {
        if let (Some(v), Some(n)) = (e[0].as_u64(), e[1].as_u64()) {
            let _ = hist.record_n(v.max(1_000), n);
        }
    }
    let latency = latency_json(&hist);

    let n = |k: &str| merged[k].as_u64().unwrap_or(0);
    let unique = n("unique");
    let last_event = n("last_event_ns");
    let (window_from, window_to) = match feed_report {
        Some(f) => (f.start_ns, last_event.max(f.end_ns)),
        None => (t_ready, t_done),
    };
    let window_s = window_to.saturating_sub(window_from) as f64 / 1e9;
    let cpu = |g: usize| procs::cpu_seconds(&samples, g, window_from, window_to);
    let target_cpu = cpu(0);
    let client_cpu = cpu(1);
    let broker_cpu = if target.broker_pid.is_some() {
        cpu(2)
    } else {
        0.0
    };
    let delivered_per_s = if window_s > 0.0 {
        unique as f64 / window_s
    } else {
        0.0
    };
    let per_cpu_s = if target_cpu > 0.0 {
        unique as f64 / target_cpu
    } else {
        0.0
    };
    // Steady delivery: per-second sums of the timeline while the feed ran.
    let timeline: Vec<u64> = merged["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_u64().unwrap_or(0))
        .collect();
    let per_sec: Vec<u64> = timeline
        .chunks((1_000_000_000 / BUCKET_NS) as usize)
        .map(|c| c.iter().sum())
        .collect();
    let streams_bytes = if opened > 0 {
        (rss_streams.saturating_sub(rss_before) * 1024) as f64 / opened as f64
    } else {
        0.0
    };
    let integrity_ok = n("lost") == 0
        && n("duplicates") == 0
        && n("out_of_order") == 0
        && n("unexpected") == 0
        && failed == 0
        && feed_report.is_none_or(|f| f.failed == 0);
    let metric = |name: &str| -> Value {
        metrics
            .as_ref()
            .map(|m| {
                let v: f64 = m
                    .iter()
                    .filter(|(k, _)| k == name || k.starts_with(&format!("{name}{{")))
                    .map(|(_, v)| v)
                    .sum();
                json!(v)
            })
            .unwrap_or(Value::Null)
    };
    let ended_by: Value = metrics
        .as_ref()
        .map(|m| {
            let mut o = serde_json::Map::new();
            for (k, v) in m {
                if let Some(r) = k.strip_prefix("sse_kafka_streams_ended_total{reason=\"") {
                    o.insert(r.trim_end_matches("\"}").to_string(), json!(v));
                }
            }
            Value::Object(o)
        })
        .unwrap_or(Value::Null);

    let record = json!({
        "scenario": spec.scenario,
        "target": spec.kind.name(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "streams": spec.streams,
        "opened": opened,
        "failed_streams": failed,
        "workers": spec.workers,
        "client_procs": procs_n,
        "protocol": spec.proto.name(),
        "streams_per_conn": if spec.proto == Proto::Http2 { json!(spec.streams_per_conn) } else { json!(1) },
        "raw_burst_ms": if spec.kind == Kind::Raw { json!(spec.raw_burst_ms) } else { Value::Null },
        "feed": spec.feed.map(|f| json!({
            "records": f.total(), "rate": f.rate, "record_size": f.size, "sequences": f.srcs(), "per_sequence": f.per_src(),
        })),
        "feed_report": feed_report.map(|f| json!({
            "sent": f.sent, "failed": f.failed, "achieved_rate": f.achieved_rate(),
            "seconds": (f.end_ns - f.start_ns) as f64 / 1e9,
        })),
        "delivery": {
            "expected": n("expected"),
            "events": n("events"),
            "unique": unique,
            "lost": n("lost"),
            "streams_with_loss": n("streams_with_loss"),
            "duplicates": n("duplicates"),
            "out_of_order": n("out_of_order"),
            "unexpected": n("unexpected"),
            "foreign_events": n("foreign"),
            "comments": n("comments"),
            "connects": n("connects"),
            "server_closes": n("server_closes"),
            "deliberate_drops": n("deliberate_drops"),
            "bytes": n("bytes"),
            "integrity_ok": integrity_ok,
            "window_s": window_s,
            "delivered_per_s": delivered_per_s,
            "per_second_max": per_sec.iter().copied().max().unwrap_or(0),
            "drain_s": if last_event > 0 { last_event.saturating_sub(feed_end) as f64 / 1e9 } else { 0.0 },
            "statuses": merged["statuses"],
            "errors": merged["errors"],
        },
        "latency": latency,
        "broker_floor_latency": floor,
        "cpu": {
            "target_s": target_cpu,
            "target_cores_busy": if window_s > 0.0 { target_cpu / window_s } else { 0.0 },
            "events_per_cpu_s": per_cpu_s,
            "clients_s": client_cpu,
            "broker_s": broker_cpu,
        },
        "memory": {
            "rss_before_kib": rss_before,
            "rss_with_streams_kib": rss_streams,
            "rss_peak_kib": procs::peak_rss(&samples, 0, window_from, window_to).max(rss_streams),
            "bytes_per_stream": streams_bytes,
            // Both ends of every loopback connection live on this host: per connection end.
            "kernel_slab_bytes_per_socket": if opened > 0 {
                (kernel_streams.0 as f64 - kernel_before.0 as f64) * 1024.0 / (2.0 * opened as f64)
            } else { 0.0 },
            "tcp_buffer_pages_delta": kernel_streams.1 as i64 - kernel_before.1 as i64,
        },
        "server_metrics": {
            "events_sent_total": metric("sse_kafka_events_sent_total"),
            "streams_ended": ended_by,
            "fetch_requests_total": metric("sse_kafka_fetch_requests_total"),
        },
        "timeline_per_s": per_sec,
    });
    Ok(record)
}

/// A fresh directory for a run's files (logs, configs, client reports).
pub fn run_dir(base: &Path, name: &str) -> Result<PathBuf, String> {
    let d = base.join(name);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

/// Percentiles of a latency histogram (ns) in microseconds; null when empty.
pub fn latency_json(hist: &Histogram<u64>) -> Value {
    let us = |ns: u64| ns as f64 / 1_000.0;
    if hist.is_empty() {
        return Value::Null;
    }
    json!({
        "count": hist.len(),
        "p50_us": us(hist.value_at_quantile(0.50)),
        "p90_us": us(hist.value_at_quantile(0.90)),
        "p99_us": us(hist.value_at_quantile(0.99)),
        "p999_us": us(hist.value_at_quantile(0.999)),
        "max_us": us(hist.max()),
        "mean_us": hist.mean() / 1_000.0,
    })
}
