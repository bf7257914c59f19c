//! Topic models (`kafka` `cache_server` `options.topics[].key` / `.value`): JSON Schema
//! validation, Avro and Protobuf decoded to JSON (`view: json`), with schemas from the
//! catalogs (reference B.4).
//!
//! Where: the owner of a partition converts each fetched chunk once, before it is cached and
//! sent to the workers ([`convert`], called from `fanout::owner` for live fetches and
//! backfills), so every reader sees the converted bytes: filters, key-template ids and
//! `event:delete` use the converted key, events carry the converted value. A record whose
//! key or value fails its model is left out (counted in `sse_kafka_records_invalid_total`,
//! logged at debug); its offset is still covered, so ids move past it. Tombstones bypass the
//! value model. A topic without a model costs one look-up per chunk and nothing per record.
//!
//! Schema selection (reference B.4 #4): with a `schema-registry` catalog a payload that
//! starts with the Confluent framing (byte `0`, then a 4-byte big-endian schema id; for
//! protobuf then the message index list) is decoded with that schema, the framing removed;
//! otherwise (no framing, or an inline / filesystem catalog) with the model's configured
//! `id`, `subject` or `strategy: topic` (`<topic>-key` / `<topic>-value`) schema.

mod avro;
#[cfg(test)]
mod bench;
mod protobuf;
mod schema;
mod store;

use std::sync::OnceLock;

use crate::config::{CatalogKind, ModelConfig, ModelKind, Plan, TopicOptions};
use crate::kafka::chunk::{Chunk, Rewrite};
use crate::metrics::WorkerMetrics;

use schema::Compiled;
use store::{SchemaRef, StoreKey};

/// The model options of every cluster (indexed like `Plan::clusters`).
struct Models {
    clusters: Vec<Vec<TopicOptions>>,
}

static MODELS: OnceLock<Models> = OnceLock::new();

/// Every model of the plan with the schema it names for `topic` when the topic name is
/// literal (a `{param}` name is resolved when a topic is met).
fn configured_models(plan: &Plan) -> Vec<(&ModelConfig, Option<StoreKey>)> {
    let mut out = Vec::new();
    for cluster in &plan.clusters {
        for topic in &cluster.topics {
            for (model, is_key) in [(&topic.key, true), (&topic.value, false)] {
                let Some(model) = model else { continue };
                let literal = !topic.name.contains('{');
                let key = literal.then(|| store::configured(model, &topic.name, is_key));
                out.push((model, key));
            }
        }
    }
    out
}

/// Compiles the schemas of inline and filesystem catalogs that the models name; every
/// problem with the YAML path of its model. Registries are not asked (they are asked when
/// records arrive).
pub fn check(plan: &Plan) -> Vec<String> {
    let mut errors = Vec::new();
    for (model, key) in configured_models(plan) {
        let Some(key) = key else { continue };
        if model.catalog.is_registry() {
            continue;
        }
        match store::resolve_blocking(&key, model) {
            Ok(Ok(_)) => {}
            Ok(Err(why)) | Err(why) => errors.push(format!("{}: {why}", model.path)),
        }
    }
    errors
}

/// Compiles the local schemas (see [`check`]) into the shared store and installs the models
/// for [`convert`]. Call once, before the workers start.
pub fn install(plan: &Plan) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (model, key) in configured_models(plan) {
        let Some(key) = key else { continue };
        if model.catalog.is_registry() {
            continue;
        }
        match store::resolve_blocking(&key, model) {
            Ok(Ok(compiled)) => store::insert(key, Ok(compiled)),
            Ok(Err(why)) | Err(why) => errors.push(format!("{}: {why}", model.path)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let clusters: Vec<Vec<TopicOptions>> = plan
        .clusters
        .iter()
        .map(|c| {
            c.topics
                .iter()
                .filter(|t| t.key.is_some() || t.value.is_some())
                .cloned()
                .collect()
        })
        .collect();
    if clusters.iter().any(|c| !c.is_empty()) {
        let _ = MODELS.set(Models { clusters });
    }
    Ok(())
}

/// The models of `topic` on cluster `cluster`, if any.
fn topic_models(cluster: usize, topic: &str) -> Option<&'static TopicOptions> {
    MODELS
        .get()?
        .clusters
        .get(cluster)?
        .iter()
        .find(|t| t.matches(topic))
}

/// Applies the topic's models to a fetched chunk. `None`: a schema could not be fetched now
/// (registry unreachable); the caller does not publish the chunk, so it is fetched again.
pub async fn convert(
    cluster: usize,
    topic: &str,
    chunk: Chunk,
    metrics: &WorkerMetrics,
) -> Option<Chunk> {
    let Some(models) = topic_models(cluster, topic) else {
        return Some(chunk);
    };
    if chunk.records().is_empty() {
        return Some(chunk);
    }
    let needed = schemas_needed(models, &chunk);
    let resolved = resolve_schemas(models, topic, chunk.partition, needed).await?;
    let (out, skipped) = rewrite_records(models, topic, chunk, &resolved);
    metrics.records_invalid.add(skipped as u64);
    Some(out)
}

/// The distinct schemas a chunk needs (key or value; a framed id or the configured one), so
/// that each is resolved once.
fn schemas_needed(models: &TopicOptions, chunk: &Chunk) -> Vec<Use> {
    let mut needed: Vec<Use> = Vec::new();
    for r in chunk.records() {
        let Some(rec) = chunk.record(r) else { continue };
        for (model, field, is_key) in [
            (&models.key, rec.key, true),
            (&models.value, rec.value, false),
        ] {
            let (Some(model), Some(bytes)) = (model, field) else {
                continue;
            };
            let used = (is_key, framed_id(model, bytes));
            if !needed.contains(&used) {
                needed.push(used);
            }
        }
    }
    needed
}

/// Each needed schema from the store (fetched and compiled on first use). `None` when one
/// cannot be had now: logged, and after a pause so the caller does not spin.
async fn resolve_schemas(
    models: &TopicOptions,
    topic: &str,
    partition: i32,
    needed: Vec<Use>,
) -> Option<Vec<(Use, store::Resolved)>> {
    let mut resolved: Vec<(Use, store::Resolved)> = Vec::with_capacity(needed.len());
    for (is_key, id) in needed {
        let Some(model) = (if is_key { &models.key } else { &models.value }) else {
            continue;
        };
        let key = match id {
            Some(id) => StoreKey {
                catalog: model.catalog.name.clone(),
                kind: model.model,
                record: model.record.clone(),
                schema: SchemaRef::Id(id),
            },
            None => store::configured(model, topic, is_key),
        };
        match store::get(&key, model).await {
            Ok(result) => resolved.push(((is_key, id), result)),
            Err(why) => {
                crate::warn!("topic {topic} partition {partition}: {why}; records held back");
                monoio::time::sleep(std::time::Duration::from_secs(1)).await;
                return None;
            }
        }
    }
    Some(resolved)
}

/// The chunk with every record's key and value converted by its model; a record whose key or
/// value fails is skipped (and counted: the second value).
fn rewrite_records(
    models: &TopicOptions,
    topic: &str,
    chunk: Chunk,
    resolved: &[(Use, store::Resolved)],
) -> (Chunk, usize) {
    let mut indexes = Vec::new();
    let partition = chunk.partition;
    chunk.rewrite(|rec, key_out, value_out| {
        let mut apply = |model: &ModelConfig, bytes: &[u8], is_key: bool, out: &mut Vec<u8>| {
            let used = (is_key, framed_id(model, bytes));
            let Some((_, result)) = resolved.iter().find(|(u, _)| *u == used) else {
                return Err("schema not resolved".to_owned());
            };
            let compiled: &Compiled = result.as_ref().map_err(Clone::clone)?;
            convert_field(model, compiled, bytes, &mut indexes, out)
        };
        let key_replaced = match (&models.key, rec.key) {
            (Some(model), Some(bytes)) => match apply(model, bytes, true, key_out) {
                Ok(replaced) => replaced,
                Err(why) => {
                    skip_log(topic, partition, rec, "key", &why);
                    return Rewrite::Skip;
                }
            },
            _ => false,
        };
        let value_replaced = match (&models.value, rec.value) {
            (Some(model), Some(bytes)) => match apply(model, bytes, false, value_out) {
                Ok(replaced) => replaced,
                Err(why) => {
                    skip_log(topic, partition, rec, "value", &why);
                    return Rewrite::Skip;
                }
            },
            _ => false,
        };
        Rewrite::Keep {
            key_replaced,
            value_replaced,
        }
    })
}

fn skip_log(topic: &str, partition: i32, rec: &proto::kafka::Record<'_>, what: &str, why: &str) {
    crate::debug!(
        "Skipping invalid message on topic {topic}, partition {partition}, offset delta {}: {what}: {why}",
        rec.offset_delta
    );
}

/// The Confluent framing: magic byte 0 and a 4-byte big-endian schema id.
fn framing(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Which schema a key (`true`) or value payload uses: the id of its framing with a registry
/// catalog, else (`None`) the model's configured schema.
type Use = (bool, Option<u32>);

fn framed_id(model: &ModelConfig, bytes: &[u8]) -> Option<u32> {
    match model.catalog.kind {
        CatalogKind::SchemaRegistry(_) => framing(bytes),
        _ => None,
    }
}

/// Checks (and with `view: json` converts) one key or value; `Ok(true)` when `out` holds the
/// bytes to deliver instead.
fn convert_field(
    model: &ModelConfig,
    compiled: &Compiled,
    bytes: &[u8],
    indexes: &mut Vec<i32>,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let framed = model.catalog.is_registry() && framing(bytes).is_some();
    let mut payload = if framed { &bytes[5..] } else { bytes };
    indexes.clear();
    if framed && model.model == ModelKind::Protobuf {
        let used = protobuf::read_indexes(payload, indexes)?;
        payload = &payload[used..];
    }
    let replaced = compiled.convert(payload, indexes, model.view_json, out)?;
    if !replaced && framed && model.model == ModelKind::Json {
        // The JSON delivered is the payload without its framing.
        out.extend_from_slice(payload);
        return Ok(true);
    }
    Ok(replaced)
}
