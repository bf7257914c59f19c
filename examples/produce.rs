//! Produces a few JSON records to a Kafka topic, for the demo (`scripts/example`).
//!
//! ```text
//! cargo run --example produce -- --brokers HOST:PORT --topic TOPIC [--count N] [--interval-ms M]
//! ```
//!
//! Each record has a key (`sensor-0` … `sensor-2`), a JSON value and an `etag` header, and is
//! printed with the partition and offset it landed at once the broker has it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

struct Printer;

impl ClientContext for Printer {}

impl ProducerContext for Printer {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => println!(
                "produced to {} partition {} offset {}: {}",
                m.topic(),
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default())
            ),
            Err((e, m)) => eprintln!("failed to produce to {}: {e}", m.topic()),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: produce --brokers HOST:PORT --topic TOPIC [--count N] [--interval-ms M]");
    std::process::exit(2)
}

fn main() {
    let mut brokers = None;
    let mut topic = None;
    let mut count: u64 = 5;
    let mut interval_ms: u64 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--brokers" => brokers = Some(value()),
            "--topic" => topic = Some(value()),
            "--count" => count = value().parse().unwrap_or_else(|_| usage()),
            "--interval-ms" => interval_ms = value().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
    }
    let (Some(brokers), Some(topic)) = (brokers, topic) else {
        usage()
    };

    let producer: BaseProducer<Printer> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "15000")
        .create_with_context(Printer)
        .unwrap_or_else(|e| {
            eprintln!("cannot create a producer for {brokers}: {e}");
            std::process::exit(1)
        });

    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for i in 0..count {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let key = format!("sensor-{}", i % 3);
        let value = format!(
            r#"{{"sensor":"{key}","reading":{},"seq":{i},"at":{at}}}"#,
            20 + (i * 7) % 13
        );
        let etag = format!("{run}-{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "etag",
            value: Some(etag.as_str()),
        });
        let record = BaseRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        if let Err((e, _)) = producer.send(record) {
            eprintln!("cannot queue a record: {e}");
            std::process::exit(1);
        }
        producer.poll(Duration::ZERO);
        if interval_ms > 0 && i + 1 < count {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
        producer.poll(Duration::ZERO);
    }
    if let Err(e) = producer.flush(Duration::from_secs(15)) {
        eprintln!("not every record was delivered: {e}");
        std::process::exit(1);
    }
}
