//! What gets published, and the paced publishers: a Kafka producer (rdkafka BaseProducer) for
//! our server, and HTTP POSTs for Nchan. Both stamp each value with CLOCK_MONOTONIC at the
//! moment it is handed over (latency then includes the broker hop, as a user would see it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::payload::{mono_ns, write_value};
use crate::procs::check_interrupt;

/// How records map to sequences: `src` is the partition (fan-out) or the key index (keyed).
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Partitions(u32),
    Keys { keys: u64, partitions: u32 },
}

#[derive(Debug, Clone, Copy)]
pub struct FeedSpec {
    pub records: u64,
    pub rate: f64,
    pub size: usize,
    pub mode: Mode,
}

/// Where record `n` goes.
pub struct Slot {
    pub src: u64,
    pub seq: u64,
    pub partition: i32,
}

impl FeedSpec {
    pub fn srcs(&self) -> u64 {
        match self.mode {
            Mode::Partitions(p) => p.max(1) as u64,
            Mode::Keys { keys, .. } => keys.max(1),
        }
    }

    /// Records per sequence (records are rounded down to a multiple of the sequences).
    pub fn per_src(&self) -> u64 {
        self.records / self.srcs()
    }

    pub fn total(&self) -> u64 {
        self.per_src() * self.srcs()
    }

    pub fn slot(&self, n: u64) -> Slot {
        let s = self.srcs();
        let (src, seq) = (n % s, n / s);
        let partition = match self.mode {
            Mode::Partitions(_) => src as i32,
            Mode::Keys { partitions, .. } => (src % partitions.max(1) as u64) as i32,
        };
        Slot {
            src,
            seq,
            partition,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FeedReport {
    pub sent: u64,
    pub failed: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl FeedReport {
    pub fn achieved_rate(&self) -> f64 {
        let secs = self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9;
        if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        }
    }
}

/// Sleeps until record `n` is due; returns early on Ctrl-C.
fn pace(start: u64, n: u64, rate: f64) -> Result<(), String> {
    let due = start + (n as f64 * 1e9 / rate) as u64;
    loop {
        let now = mono_ns();
        if now >= due {
            return Ok(());
        }
        check_interrupt()?;
        std::thread::sleep(Duration::from_nanos((due - now).min(20_000_000)));
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
pub struct Counting {
    pub failed: AtomicU64,
    pub delivered: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub fn kafka_producer(bootstrap: &str) -> Result<BaseProducer<Counting>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "1000000")
        .set("client.id", "sse-kafka-bench")
        .create_with_context(Counting::default())
        .map_err(|e| format!("create producer: {e}"))
}

/// Produces `spec` to `topic` at the paced rate; waits for every delivery report.
pub fn produce_kafka(bootstrap: &str, topic: &str, spec: &FeedSpec) -> Result<FeedReport, String> {
    let producer = kafka_producer(bootstrap)?;
    // Metadata first, so the first record does not wait for it.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("producer metadata: {e}"))?;
    let mut value = Vec::with_capacity(spec.size + 64);
    let mut key = String::new();
    let total = spec.total();
    let start = mono_ns();
    let mut report = FeedReport {
        start_ns: start,
        ..Default::default()
    };
    for n in 0..total {
        pace(start, n, spec.rate)?;
        let slot = spec.slot(n);
        write_value(&mut value, slot.src, slot.seq, mono_ns(), spec.size);
        key.clear();
        if let Mode::Keys { .. } = spec.mode {
            use std::fmt::Write as _;
            let _ = write!(key, "k{}", slot.src);
        }
        loop {
            let mut rec = BaseRecord::to(topic)
                .payload(&value[..])
                .partition(slot.partition);
            if !key.is_empty() {
                rec = rec.key(key.as_bytes());
            }
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("produce: {e}")),
            }
        }
        producer.poll(Duration::ZERO);
        report.sent += 1;
    }
    report.end_ns = mono_ns();
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("flush: {e}"))?;
    report.failed = producer.context().failed.load(Ordering::Relaxed);
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Nchan: HTTP publisher
// ---------------------------------------------------------------------------------------------

/// POSTs `spec` (one source) to `path` on one keep-alive connection at the paced rate.
pub fn publish_http(addr: SocketAddr, path: &str, spec: &FeedSpec) -> Result<FeedReport, String> {
    let mut conn = TcpStream::connect(addr).map_err(|e| format!("publisher connect: {e}"))?;
    conn.set_nodelay(true).ok();
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut value = Vec::with_capacity(spec.size + 64);
    let mut req = Vec::with_capacity(spec.size + 256);
    let mut resp = Vec::with_capacity(4096);
    let total = spec.total();
    let start = mono_ns();
    let mut report = FeedReport {
        start_ns: start,
        ..Default::default()
    };
    for n in 0..total {
        pace(start, n, spec.rate)?;
        let slot = spec.slot(n);
        write_value(&mut value, slot.src, slot.seq, mono_ns(), spec.size);
        req.clear();
        let _ = write!(
            req,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            value.len()
        );
        req.extend_from_slice(&value);
        conn.write_all(&req).map_err(|e| format!("publish: {e}"))?;
        let status = read_response(&mut conn, &mut resp)?;
        if !(200..300).contains(&status) {
            report.failed += 1;
        }
        report.sent += 1;
    }
    report.end_ns = mono_ns();
    Ok(report)
}

/// Reads one response (Content-Length or chunked body); returns its status.
fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    buf.clear();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = crate::sse::find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn
            .read(&mut tmp)
            .map_err(|e| format!("publisher read: {e}"))?;
        if n == 0 {
            return Err("publisher: connection closed".into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = crate::sse::parse_response_head(buf)
        .map_err(|e| e.to_string())?
        .ok_or("publisher: bad head")?;
    let text = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.chunked {
        while crate::sse::find(&buf[head_end..], b"0\r\n\r\n").is_none() {
            let n = conn
                .read(&mut tmp)
                .map_err(|e| format!("publisher read: {e}"))?;
            if n == 0 {
                return Err("publisher: connection closed".into());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    } else {
        let len = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = conn
                .read(&mut tmp)
                .map_err(|e| format!("publisher read: {e}"))?;
            if n == 0 {
                return Err("publisher: connection closed".into());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    }
    Ok(head.status)
}

// ---------------------------------------------------------------------------------------------
// Broker floor: what a plain Kafka consumer sees from the same broker
// ---------------------------------------------------------------------------------------------

/// Consumes `topic` from the beginning with librdkafka (fetch wait `wait_ms`, min bytes 1: the
/// same long-poll the server uses) and records produce → consume latency, until `expect`
/// records arrived or `stop` is set. Shows how much of the end-to-end latency is the broker's.
pub fn broker_floor(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expect: u64,
    wait_ms: i32,
    stop: &std::sync::atomic::AtomicBool,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<(hdrhistogram::Histogram<u64>, u64), String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("sse-kafka-bench-floor-{}", mono_ns()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", wait_ms.to_string())
        .set("fetch.min.bytes", "1")
        .set("client.id", "sse-kafka-bench-floor")
        .create()
        .map_err(|e| format!("floor consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("floor assign: {e}"))?;
    let mut hist =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).unwrap();
    let mut got = 0u64;
    // Connected and fetching before the feed starts (the caller waits for `ready`), so that
    // the first records do not carry the consumer's start-up (metadata, connection, offsets).
    let _ = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10));
    let warm_until = mono_ns() + 500_000_000;
    while mono_ns() < warm_until && !stop.load(Ordering::SeqCst) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let now = mono_ns();
            if let Some(info) = m.payload().and_then(crate::sse::parse_value) {
                let _ = hist.record(now.saturating_sub(info.ts_ns).max(1_000));
                got += 1;
            }
        }
    }
    let _ = ready.send(());
    while got < expect && !stop.load(Ordering::SeqCst) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let now = mono_ns();
            if let Some(info) = m.payload().and_then(crate::sse::parse_value) {
                let _ = hist.record(now.saturating_sub(info.ts_ns).max(1_000));
                got += 1;
            }
        }
    }
    Ok((hist, got))
}
