//! Records converted per second on one core, per model, against walking the same records with
//! no model (what delivery does anyway). Release mode:
//! `cargo test --release --bin sse-kafka models_throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::schema::{compile, Compiled};
use super::*;
use crate::config::{Catalog, Schema, SchemaSelector, Subject};
use crate::kafka::chunk::Chunk;

const RECORDS: usize = 1000;
const ROUNDS: usize = 200;

fn chunk(value: &[u8]) -> Chunk {
    let records: Vec<crate::testing::KeyValue<'_>> = (0..RECORDS)
        .map(|_| (Some(&b"key"[..]), Some(value)))
        .collect();
    let bytes = Bytes::from(crate::testing::batch(0, &records));
    Chunk::decode(0, 0, RECORDS as i64, &bytes, &[]).expect("chunk")
}

fn model(kind: ModelKind, text: &str) -> (ModelConfig, Arc<Compiled>) {
    let catalog = Arc::new(Catalog {
        name: "c".into(),
        kind: CatalogKind::Inline(vec![Subject {
            subject: "s".into(),
            version: "latest".into(),
            schema: Schema::new(text),
        }]),
    });
    let config = ModelConfig {
        model: kind,
        view_json: kind != ModelKind::Json,
        catalog,
        selector: SchemaSelector::Subject {
            subject: "s".into(),
            version: "latest".into(),
        },
        record: None,
        path: "bench".into(),
    };
    (config, Arc::new(compile(kind, text, None).expect("schema")))
}

/// Records per second through `f` over `ROUNDS` passes of the chunk.
fn rate(chunk: &Chunk, mut f: impl FnMut(&Chunk) -> usize) -> f64 {
    let mut kept = 0;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        kept += f(chunk);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(kept, RECORDS * ROUNDS, "every record valid");
    (RECORDS * ROUNDS) as f64 / secs
}

fn converted(chunk: &Chunk, config: &ModelConfig, compiled: &Compiled) -> usize {
    let mut indexes = Vec::new();
    let (out, skipped) = chunk.rewrite(|rec, _, value| match rec.value {
        Some(bytes) => match convert_field(config, compiled, bytes, &mut indexes, value) {
            Ok(replaced) => Rewrite::Keep {
                key_replaced: false,
                value_replaced: replaced,
            },
            Err(_) => Rewrite::Skip,
        },
        None => Rewrite::Skip,
    });
    assert_eq!(skipped, 0);
    out.records().len()
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn models_throughput() {
    let json = br#"{"id":123,"name":"Hello World!","status":"positive","tags":["a","b"]}"#;
    let json_schema = r#"{"type":"object","properties":{"id":{"type":"integer","minimum":0},"name":{"type":"string"},"status":{"enum":["positive","negative"]},"tags":{"type":"array","items":{"type":"string"}}},"required":["id","name"]}"#;
    let avro_schema = r#"{"type":"record","name":"Item","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"status","type":{"type":"enum","name":"Status","symbols":["positive","negative"]}},{"name":"tags","type":{"type":"array","items":"string"}}]}"#;
    // id 123, "Hello World!", positive, ["a", "b"].
    let mut avro = vec![0xf6, 0x01, 24];
    avro.extend_from_slice(b"Hello World!");
    avro.extend_from_slice(&[0, 4, 2, b'a', 2, b'b', 0]);
    let proto_schema = "syntax = \"proto3\"; message Item { int64 id = 1; string name = 2; Status status = 3; repeated string tags = 4; } enum Status { NEGATIVE = 0; POSITIVE = 1; }";
    let mut proto = vec![0x08, 123, 0x12, 12];
    proto.extend_from_slice(b"Hello World!");
    proto.extend_from_slice(&[0x18, 1, 0x22, 1, b'a', 0x22, 1, b'b']);

    let plain = chunk(json);
    let baseline = rate(&plain, |c| {
        c.records()
            .iter()
            .filter_map(|r| c.record(r))
            .filter(|r| r.value.is_some())
            .count()
    });
    println!("no model (walk each record): {baseline:>12.0} records/s");
    for (name, kind, schema, value) in [
        ("json validate", ModelKind::Json, json_schema, &json[..]),
        ("avro -> json", ModelKind::Avro, avro_schema, &avro[..]),
        (
            "protobuf -> json",
            ModelKind::Protobuf,
            proto_schema,
            &proto[..],
        ),
    ] {
        let (config, compiled) = model(kind, schema);
        let c = chunk(value);
        let mut sample = Vec::new();
        convert_field(&config, &compiled, value, &mut Vec::new(), &mut sample).expect("valid");
        let r = rate(&c, |c| converted(c, &config, &compiled));
        println!(
            "{name:<16} {r:>12.0} records/s ({:.1}x the no-model walk); output {:?}",
            baseline / r,
            if sample.is_empty() {
                "as is".into()
            } else {
                String::from_utf8_lossy(&sample).into_owned()
            }
        );
    }
}
