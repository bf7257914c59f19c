//! The soak scenario's monitor: while a long run goes on, every `period` it reads the server's
//! RSS and scrapes its metrics, and keeps one row per period: RSS, events appended, and the
//! delivery latency percentiles of that period alone (from the difference of the cumulative
//! histogram buckets between two scrapes). Flat RSS, a steady event count (no stall) and
//! steady percentiles are what a soak shows.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::procs;
use crate::targets::scrape;

const BUCKET: &str = "sse_kafka_delivery_latency_seconds_bucket{le=\"";

pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Value>>>,
}

/// (upper bound in seconds, cumulative count) per bucket, and events appended so far.
fn read(metrics: SocketAddr) -> Option<(Vec<(f64, f64)>, f64)> {
    let samples = scrape(metrics).ok()?;
    let mut buckets = Vec::new();
    let mut events = 0.0;
    for (name, v) in samples {
        if let Some(rest) = name.strip_prefix(BUCKET) {
            let bound = rest.trim_end_matches("\"}");
            let b = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            buckets.push((b, v));
        } else if name == "sse_kafka_events_sent_total" {
            events += v;
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some((buckets, events))
}

/// The bucket bound (ms) under which a fraction `q` of this period's deliveries fell.
fn percentile(now: &[(f64, f64)], before: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|&(b, c)| {
            let prev = before.iter().find(|p| p.0 == b).map_or(0.0, |p| p.1);
            (b, c - prev)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = total * q;
    delta
        .iter()
        .find(|&&(_, c)| c >= want)
        .map(|&(b, _)| b * 1000.0)
}

impl Monitor {
    pub fn start(metrics: SocketAddr, pid: u32, period: Duration) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut rows = Vec::new();
            let mut last = read(metrics);
            let mut next = t0 + period;
            while !s.load(Ordering::SeqCst) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                next += period;
                let now = read(metrics);
                let rss = procs::rss_kib(pid).unwrap_or(0);
                if let (Some((b1, e1)), Some((b0, e0))) = (&now, &last) {
                    let row = json!({
                        "at_s": t0.elapsed().as_secs(),
                        "rss_kib": rss,
                        "events": e1 - e0,
                        "p50_ms": percentile(b1, b0, 0.50),
                        "p99_ms": percentile(b1, b0, 0.99),
                        "p999_ms": percentile(b1, b0, 0.999),
                    });
                    eprintln!("    soak {row}");
                    rows.push(row);
                }
                last = now;
            }
            rows
        });
        Monitor {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> Vec<Value> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_period() {
        let before = [(0.001, 10.0), (0.01, 10.0), (f64::INFINITY, 10.0)];
        let now = [(0.001, 10.0), (0.01, 60.0), (f64::INFINITY, 110.0)];
        assert_eq!(percentile(&now, &before, 0.5), Some(10.0));
        assert_eq!(percentile(&now, &before, 0.99), Some(f64::INFINITY));
        assert_eq!(percentile(&before, &before, 0.5), None);
    }
}
