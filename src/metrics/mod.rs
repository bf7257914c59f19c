//! Metrics: per-worker counters written only by their worker (a relaxed load + store, no lock,
//! no read-modify-write), merged when `/metrics` is scraped. Partition gauges are registered
//! when a partition starts and read on scrape.

pub mod render;
pub mod serve;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// A monotonic counter with a single writer (its worker); any thread may read it.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A single-writer gauge.
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds (seconds) of the delivery latency histogram buckets.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Fixed-bucket histogram (Prometheus style), single writer.
#[derive(Default)]
pub struct Histogram {
    buckets: [Counter; LATENCY_BOUNDS.len() + 1],
    sum_micros: Counter,
}

impl Histogram {
    pub fn record_micros(&self, micros: u64) {
        let secs = micros as f64 / 1e6;
        let i = LATENCY_BOUNDS.partition_point(|&b| b < secs);
        self.buckets[i].inc();
        self.sum_micros.add(micros);
    }
    /// (cumulative counts per bound, +Inf count, sum in seconds).
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut cumulative = Vec::with_capacity(LATENCY_BOUNDS.len());
        let mut total = 0;
        for b in &self.buckets[..LATENCY_BOUNDS.len()] {
            total += b.get();
            cumulative.push(total);
        }
        total += self.buckets[LATENCY_BOUNDS.len()].get();
        (cumulative, total, self.sum_micros.get() as f64 / 1e6)
    }
}

/// Why a stream ended, for `streams_ended_total{reason}`.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    Client,
    Budget,
    Expiry,
    Error,
    Shutdown,
}

pub const HTTP_VERSIONS: [&str; 2] = ["http/1.1", "h2"];

/// `streams_shed_total{reason}` labels, indexed by `http::admission::Refused::index`.
pub const SHED_REASONS: [&str; 3] = ["max_streams", "max_streams_per_ip", "draining"];

#[derive(Default)]
pub struct WorkerMetrics {
    pub connections_opened: [Counter; 2],
    pub connections_closed: [Counter; 2],
    pub streams_opened: [Counter; 2],
    pub streams_closed: [Counter; 2],
    pub streams_ended: [Counter; 5],
    /// Requests refused a stream, by [`SHED_REASONS`].
    pub streams_shed: [Counter; 3],
    pub events_sent: Counter,
    pub bytes_sent: Counter,
    pub malformed_ids: Counter,
    pub fetch_requests: Counter,
    pub fetch_bytes: Counter,
    pub fetch_errors: Counter,
    /// Fetches held back because another worker's inbox was full.
    pub fetch_paused: Counter,
    /// Live streams that fell behind their group and continue from the cache.
    pub streams_demoted: Counter,
    /// SSE requests for topics answered from the negative cache or refused because too many
    /// metadata look-ups were in flight.
    pub metadata_refused: Counter,
    /// Broker connections whose SASL authentication was refused.
    pub sasl_failures: Counter,
    /// Broker connections whose TLS handshake failed.
    pub tls_failures: Counter,
    /// Records skipped by a topic model (invalid key or value).
    pub records_invalid: Counter,
    pub cache_bytes: Gauge,
    pub delivery_latency: Histogram,
}

impl WorkerMetrics {
    pub fn ended(&self, why: Ended) {
        self.streams_ended[why as usize].inc();
    }
}

/// Position of the shared fetch of one owned partition against its high watermark.
pub struct PartitionGauge {
    pub topic: Arc<str>,
    pub partition: i32,
    pub position: Gauge,
    pub high_watermark: Gauge,
}

/// Everything a scrape reads.
pub struct Registry {
    pub workers: Vec<Arc<WorkerMetrics>>,
    partitions: Mutex<Vec<Weak<PartitionGauge>>>,
}

impl Registry {
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(Self {
            workers: (0..workers).map(|_| Arc::default()).collect(),
            partitions: Mutex::new(Vec::new()),
        })
    }

    /// Registers a partition's gauges (when its fetch starts; not on the event path).
    pub fn partition(&self, topic: Arc<str>, partition: i32) -> Arc<PartitionGauge> {
        let g = Arc::new(PartitionGauge {
            topic,
            partition,
            position: Gauge::default(),
            high_watermark: Gauge::default(),
        });
        if let Ok(mut list) = self.partitions.lock() {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&g));
        }
        g
    }

    pub fn live_partitions(&self) -> Vec<Arc<PartitionGauge>> {
        match self.partitions.lock() {
            Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.record_micros(300); // 0.0003 s → first bucket
        h.record_micros(1_500); // 0.0015 s → le 0.002
        h.record_micros(60_000_000); // over every bound → +Inf only
        let (cum, total, sum) = h.snapshot();
        assert_eq!(cum[0], 1);
        assert_eq!(cum[1], 1);
        assert_eq!(cum[2], 2);
        assert_eq!(*cum.last().unwrap(), 2);
        assert_eq!(total, 3);
        assert!((sum - 60.0018).abs() < 1e-6);
    }
}
