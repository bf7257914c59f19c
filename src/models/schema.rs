//! A schema compiled once for its model (JSON Schema validator, Avro schema, Protobuf
//! descriptors) and how one payload is checked and converted with it.

use crate::config::ModelKind;

use super::{avro, protobuf};

/// A compiled schema. Shared by every worker (`Arc`); compiled off the worker threads.
pub enum Compiled {
    Json(jsonschema::Validator),
    Avro(avro::AvroSchema),
    Protobuf(protobuf::ProtoSchema),
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compiled::Json(_) => "Compiled::Json",
            Compiled::Avro(_) => "Compiled::Avro",
            Compiled::Protobuf(_) => "Compiled::Protobuf",
        })
    }
}

/// Compiles schema `text` for `kind`; `record` names the protobuf message to decode by
/// default (else the file's first message).
pub fn compile(kind: ModelKind, text: &str, record: Option<&str>) -> Result<Compiled, String> {
    match kind {
        ModelKind::Json => {
            let schema: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("JSON Schema is not JSON: {e}"))?;
            jsonschema::validator_for(&schema)
                .map(Compiled::Json)
                .map_err(|e| format!("invalid JSON Schema: {e}"))
        }
        ModelKind::Avro => avro::AvroSchema::parse(text).map(Compiled::Avro),
        ModelKind::Protobuf => protobuf::ProtoSchema::parse(text, record).map(Compiled::Protobuf),
    }
}

/// Why a payload was refused.
pub type Invalid = String;

impl Compiled {
    /// Checks `payload` (framing already removed; `indexes` is a Confluent protobuf message
    /// index path, empty for the default message). With `view_json`, writes the JSON text to
    /// `out` and returns `true`; otherwise only validates and returns `false` (the payload is
    /// delivered as it is).
    pub fn convert(
        &self,
        payload: &[u8],
        indexes: &[i32],
        view_json: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, Invalid> {
        match self {
            Compiled::Json(validator) => {
                let value: serde_json::Value =
                    serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
                if validator.is_valid(&value) {
                    Ok(false)
                } else {
                    let why = validator
                        .iter_errors(&value)
                        .next()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "invalid".to_owned());
                    Err(format!("schema violation: {why}"))
                }
            }
            Compiled::Avro(schema) => {
                if view_json {
                    schema.to_json(payload, out)?;
                    Ok(true)
                } else {
                    schema.validate(payload)?;
                    Ok(false)
                }
            }
            Compiled::Protobuf(schema) => {
                if view_json {
                    schema.to_json(payload, indexes, out)?;
                    Ok(true)
                } else {
                    schema.validate(payload, indexes)?;
                    Ok(false)
                }
            }
        }
    }
}
