//! Producing and reading back records with rdkafka (BaseProducer, no async runtime).
use rdkafka::consumer::Consumer;
use rdkafka::message::Headers;
use rdkafka::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::*;

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// One record to produce.
#[derive(Debug, Clone, Default)]
pub struct Rec {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Rec {
    /// A record with this value (no key, partition chosen by the client).
    pub fn value(v: impl AsRef<[u8]>) -> Rec {
        Rec {
            value: Some(v.as_ref().to_vec()),
            ..Rec::default()
        }
    }
    /// A tombstone (null value).
    pub fn tombstone() -> Rec {
        Rec::default()
    }
    pub fn key(mut self, k: impl AsRef<[u8]>) -> Rec {
        self.key = Some(k.as_ref().to_vec());
        self
    }
    pub fn partition(mut self, p: i32) -> Rec {
        self.partition = Some(p);
        self
    }
    pub fn header(mut self, name: &str, v: impl AsRef<[u8]>) -> Rec {
        self.headers.push((name.to_string(), v.as_ref().to_vec()));
        self
    }
}

pub(crate) type Report = Result<Delivered, String>;

#[derive(Default)]
pub struct DeliveryContext {
    reports: Mutex<HashMap<usize, Report>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let report = match result {
            Ok(m) => Ok(Delivered {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, _)) => Err(e.to_string()),
        };
        self.reports.lock().unwrap().insert(id, report);
    }
}

/// A Kafka producer for tests. `send` waits for the delivery report, so when it returns the
/// record is committed and its partition and offset are known; by default every `send` is its
/// own record batch (linger.ms 0, one record in flight). `send_batch` puts all its records into
/// one batch per partition (they are queued together and released after a short linger).
pub struct Producer {
    inner: BaseProducer<DeliveryContext>,
    next_id: AtomicUsize,
}

/// The linger used by batching producers: long enough for `send_batch` to queue every record
/// before the batch leaves.
pub(crate) const BATCH_LINGER_MS: &str = "200";

impl Producer {
    /// An uncompressed producer, one batch per `send`.
    pub fn new(bootstrap: &str) -> Producer {
        Producer::with_options(bootstrap, &[])
    }

    /// A producer that compresses with `codec` (`gzip`, `snappy`, `lz4`, `zstd` or `none`);
    /// lingers so that `send_batch` makes multi-record compressed batches.
    pub fn with_compression(bootstrap: &str, codec: &str) -> Producer {
        Producer::with_options(
            bootstrap,
            &[("compression.type", codec), ("linger.ms", BATCH_LINGER_MS)],
        )
    }

    /// An uncompressed producer that lingers (for `send_batch`).
    pub fn batching(bootstrap: &str) -> Producer {
        Producer::with_options(bootstrap, &[("linger.ms", BATCH_LINGER_MS)])
    }

    /// Any librdkafka producer properties on top of the defaults.
    pub fn with_options(bootstrap: &str, options: &[(&str, &str)]) -> Producer {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .set("batch.num.messages", "100000")
            .set("batch.size", "4000000")
            .set("message.max.bytes", "4000000")
            .set("message.timeout.ms", "30000")
            .set("socket.timeout.ms", "10000")
            .set("enable.idempotence", "false")
            .set("client.id", "harness-producer");
        for (k, v) in options {
            cfg.set(*k, *v);
        }
        let inner = cfg
            .create_with_context(DeliveryContext::default())
            .expect("create producer");
        Producer {
            inner,
            next_id: AtomicUsize::new(0),
        }
    }

    /// Sends one record and waits for its delivery report.
    pub fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Delivered {
        let rec = Rec {
            partition,
            key: key.map(|k| k.to_vec()),
            value: value.map(|v| v.to_vec()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
        };
        self.send_batch(topic, std::slice::from_ref(&rec))[0]
    }

    /// Sends one record and waits for its delivery report.
    pub fn send_rec(&self, topic: &str, rec: &Rec) -> Delivered {
        self.send_batch(topic, std::slice::from_ref(rec))[0]
    }

    /// Sends a value (no key) and waits; shorthand.
    pub fn send_value(&self, topic: &str, partition: Option<i32>, value: &str) -> Delivered {
        self.send(topic, partition, None, Some(value.as_bytes()), &[])
    }

    /// Queues every record, then waits for all delivery reports. With a lingering producer
    /// (`batching`, `with_compression`) the records of one partition travel in one batch.
    pub fn send_batch(&self, topic: &str, recs: &[Rec]) -> Vec<Delivered> {
        let ids: Vec<usize> = recs.iter().map(|r| self.enqueue(topic, r)).collect();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            {
                let reports = self.inner.context().reports.lock().unwrap();
                if ids.iter().all(|id| reports.contains_key(id)) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no delivery report within 40 s for topic {topic}"
            );
            self.inner.poll(Duration::from_millis(20));
        }
        let mut reports = self.inner.context().reports.lock().unwrap();
        ids.iter()
            .map(|id| match reports.remove(id).unwrap() {
                Ok(d) => d,
                Err(e) => panic!("produce to {topic} failed: {e}"),
            })
            .collect()
    }

    fn enqueue(&self, topic: &str, rec: &Rec) -> usize {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        loop {
            let mut r: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, id);
            if let Some(p) = rec.partition {
                r = r.partition(p);
            }
            if let Some(k) = &rec.key {
                r = r.key(k.as_slice());
            }
            if let Some(v) = &rec.value {
                r = r.payload(v.as_slice());
            }
            if !rec.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(rec.headers.len());
                for (name, value) in &rec.headers {
                    h = h.insert(Header {
                        key: name,
                        value: Some(value.as_slice()),
                    });
                }
                r = r.headers(h);
            }
            match self.inner.send(r) {
                Ok(()) => return id,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => self.inner.poll(Duration::from_millis(50)),
                Err((e, _)) => panic!("enqueue to {topic} failed: {e}"),
            }
        }
    }

    /// Transactions (for READ_COMMITTED tests): create with
    /// `with_options(b, &[("transactional.id", "t1")])`, then `init_transactions` once.
    pub fn init_transactions(&self) {
        self.inner
            .init_transactions(Duration::from_secs(20))
            .expect("init_transactions");
    }
    pub fn begin(&self) {
        self.inner.begin_transaction().expect("begin_transaction");
    }
    pub fn commit(&self) {
        self.inner
            .commit_transaction(Duration::from_secs(20))
            .expect("commit_transaction");
    }
    pub fn abort(&self) {
        self.inner
            .abort_transaction(Duration::from_secs(20))
            .expect("abort_transaction");
    }

    /// Low and high watermarks of a partition, as the broker reports them (ListOffsets).
    pub fn watermarks(&self, topic: &str, partition: i32) -> (i64, i64) {
        self.inner
            .client()
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks")
    }
}

/// A record read back by `read_back`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Reads `n` records of `topic` (all partitions, from the beginning, READ_COMMITTED) with an
/// rdkafka `BaseConsumer`; for checking the harness and the broker, not the server.
pub fn read_back(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "harness-read-back")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("client.id", "harness-direct-consumer")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < n && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| k.to_vec()),
                value: m.payload().map(|v| v.to_vec()),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or(b"").to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}
