//! Record batches compressed with each codec Kafka defines reach SSE clients intact.
//!
//! The producer lingers so that each `send_batch` call becomes one multi-record batch per
//! partition: compression then really applies to several records at once (with tansu, the
//! batches are stored and served as produced).

mod common;
use common::*;

fn codec_round_trip(codec: &str) {
    let broker = Broker::with_empty_topic("events", 3);
    let producer = Producer::with_compression(&broker.bootstrap(), codec);
    let server = Zilla::any_topic(&broker.bootstrap()).start(&[]);

    let batch = |tag: &str| -> Vec<Rec> {
        (0..40)
            .map(|i| {
                // Compressible, distinct values of varied sizes; keys spread the records over
                // the three partitions; headers ride along.
                Rec::value(format!("{codec}-{tag}{i:03}:{}", "abcdefgh".repeat(i * 13)))
                    .key(format!("key-{}", i % 7))
                    .header("seq", i.to_string())
            })
            .collect()
    };
    let first = batch("a");
    let first_at = producer.send_batch("events", &first);

    // Records produced before the stream opened: replayed from the earliest offset.
    let sse = Sse::open(&server.url("/events"));
    assert_eq!(sse.status(WAIT), Some(200));
    let mut events = sse.expect(first.len(), WAIT);

    // Records produced while the stream is open: delivered live.
    let second = batch("b");
    let second_at = producer.send_batch("events", &second);
    events.extend(sse.expect(second.len(), WAIT));
    sse.expect_no_more(std::time::Duration::from_millis(300));

    let produced: Vec<(String, Delivered)> = first
        .iter()
        .zip(&first_at)
        .chain(second.iter().zip(&second_at))
        .map(|(r, d)| (String::from_utf8(r.value.clone().unwrap()).unwrap(), *d))
        .collect();
    assert_exactly_once(&events, &produced);
}

#[test]
fn uncompressed_batches() {
    codec_round_trip("none");
}

#[test]
fn gzip_batches() {
    codec_round_trip("gzip");
}

#[test]
fn snappy_batches() {
    codec_round_trip("snappy");
}

#[test]
fn lz4_batches() {
    codec_round_trip("lz4");
}

#[test]
fn zstd_batches() {
    codec_round_trip("zstd");
}
