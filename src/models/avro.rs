//! `model: avro`: binary Avro decoded with `apache-avro` and written as compact JSON the way
//! Zilla's `view: json` writes it (reference B.4 #3): records as objects in field order,
//! `bytes` and `fixed` as base64 strings, enums as their symbol, maps as objects, arrays as
//! arrays; a union as `{"<branch>": value}`, except a two-branch union with `null`, written
//! bare (`null` or the value); logical types as their underlying type (a decimal as its
//! base64 bytes, a uuid as its string, dates and times as numbers); longs keep every digit.

use std::collections::HashMap;

use apache_avro::schema::{Name, ResolvedSchema, Schema, UnionSchema};
use apache_avro::types::Value;
use base64::Engine;

pub struct AvroSchema {
    schema: Schema,
    /// Named types by full name, for `Ref`s.
    names: HashMap<Name, Schema>,
}

impl AvroSchema {
    pub fn parse(text: &str) -> Result<AvroSchema, String> {
        let schema = Schema::parse_str(text).map_err(|e| format!("invalid Avro schema: {e}"))?;
        let names = ResolvedSchema::try_from(&schema)
            .map_err(|e| format!("invalid Avro schema: {e}"))?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(AvroSchema { schema, names })
    }

    fn decode(&self, payload: &[u8]) -> Result<Value, String> {
        let mut reader = payload;
        let value = apache_avro::from_avro_datum(&self.schema, &mut reader, None)
            .map_err(|e| format!("not Avro of this schema: {e}"))?;
        if !reader.is_empty() {
            return Err(format!(
                "not Avro of this schema: {} bytes left after the datum",
                reader.len()
            ));
        }
        Ok(value)
    }

    pub fn validate(&self, payload: &[u8]) -> Result<(), String> {
        self.decode(payload).map(|_| ())
    }

    pub fn to_json(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let value = self.decode(payload)?;
        self.write(&self.schema, &value, out)
    }

    fn resolve<'s>(&'s self, schema: &'s Schema) -> Result<&'s Schema, String> {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(name)
                .ok_or_else(|| format!("unknown Avro type {}", name.fullname(None))),
            other => Ok(other),
        }
    }

    fn write(&self, schema: &Schema, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        match (schema, value) {
            (_, Value::Null) => out.extend_from_slice(b"null"),
            (_, Value::Boolean(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            (_, Value::Int(v) | Value::Date(v) | Value::TimeMillis(v)) => {
                out.extend_from_slice(v.to_string().as_bytes())
            }
            (
                _,
                Value::Long(v)
                | Value::TimeMicros(v)
                | Value::TimestampMillis(v)
                | Value::TimestampMicros(v)
                | Value::TimestampNanos(v)
                | Value::LocalTimestampMillis(v)
                | Value::LocalTimestampMicros(v)
                | Value::LocalTimestampNanos(v),
            ) => out.extend_from_slice(v.to_string().as_bytes()),
            (_, Value::Float(v)) => number(f64::from(*v), out),
            (_, Value::Double(v)) => number(*v, out),
            (_, Value::Bytes(b) | Value::Fixed(_, b)) => base64_string(b, out),
            (_, Value::String(s)) => string(s, out),
            (_, Value::Uuid(u)) => string(&u.to_string(), out),
            (_, Value::Enum(_, symbol)) => string(symbol, out),
            (_, Value::Decimal(d)) => {
                let bytes: Vec<u8> = d.try_into().map_err(|e| format!("decimal: {e}"))?;
                base64_string(&bytes, out)
            }
            (_, Value::BigDecimal(d)) => string(&d.to_string(), out),
            (_, Value::Duration(d)) => {
                let bytes: [u8; 12] = (*d).into();
                base64_string(&bytes, out)
            }
            (Schema::Array(array), Value::Array(items)) => {
                self.write_array(&array.items, items, out)?
            }
            (Schema::Map(map), Value::Map(entries)) => self.write_map(&map.types, entries, out)?,
            (Schema::Record(record), Value::Record(fields)) => {
                self.write_record(&record.fields, fields, out)?
            }
            (Schema::Union(union), Value::Union(index, inner)) => {
                self.write_union(union, *index, inner, out)?
            }
            (schema, value) => {
                return Err(format!(
                    "Avro value {value:?} does not fit schema {:?}",
                    schema_name(schema)
                ))
            }
        }
        Ok(())
    }

    /// `[item, ...]`.
    fn write_array(
        &self,
        items_schema: &Schema,
        items: &[Value],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write(items_schema, item, out)?;
        }
        out.push(b']');
        Ok(())
    }

    /// `{"key": value, ...}`.
    fn write_map(
        &self,
        values_schema: &Schema,
        entries: &std::collections::HashMap<String, Value>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.push(b'{');
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(k, out);
            out.push(b':');
            self.write(values_schema, v, out)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// `{"field": value, ...}` in the schema's field order.
    fn write_record(
        &self,
        fields_schema: &[apache_avro::schema::RecordField],
        fields: &[(String, Value)],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.push(b'{');
        for (i, ((name, v), field)) in fields.iter().zip(fields_schema).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(name, out);
            out.push(b':');
            self.write(&field.schema, v, out)?;
        }
        out.push(b'}');
        Ok(())
    }

    fn write_union(
        &self,
        union: &UnionSchema,
        index: u32,
        inner: &Value,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let variants = union.variants();
        let branch = variants
            .get(index as usize)
            .ok_or_else(|| format!("union branch {index} out of range"))?;
        let nullable = variants.len() == 2 && variants.iter().any(|v| matches!(v, Schema::Null));
        if nullable || matches!(branch, Schema::Null) {
            return self.write(branch, inner, out);
        }
        out.push(b'{');
        string(&self.branch_name(branch), out);
        out.push(b':');
        self.write(branch, inner, out)?;
        out.push(b'}');
        Ok(())
    }

    /// A union branch's name in Avro's JSON encoding: the type name, or the full name of a
    /// named type.
    fn branch_name(&self, schema: &Schema) -> String {
        match schema {
            Schema::Record(r) => r.name.fullname(None),
            Schema::Enum(e) => e.name.fullname(None),
            Schema::Fixed(f) => f.name.fullname(None),
            Schema::Ref { name } => name.fullname(None),
            other => schema_name(other).to_owned(),
        }
    }
}

/// The primitive (or underlying) type name of a schema.
fn schema_name(schema: &Schema) -> &'static str {
    match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes | Schema::Decimal(_) | Schema::BigDecimal => "bytes",
        Schema::String | Schema::Uuid => "string",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Union(_) => "union",
        Schema::Record(_) => "record",
        Schema::Enum(_) => "enum",
        Schema::Fixed(_) | Schema::Duration => "fixed",
        Schema::Ref { .. } => "ref",
    }
}

fn number(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        // serde_json writes the shortest text that reads back as the same number.
        out.extend_from_slice(
            serde_json::Number::from_f64(v)
                .map_or("0".into(), |n| n.to_string())
                .as_bytes(),
        );
    } else {
        // JSON has no NaN or infinity; written as strings, as Jackson does with quoting on.
        string(&v.to_string(), out);
    }
}

fn base64_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .as_bytes(),
    );
    out.push(b'"');
}

fn string(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping of a string cannot fail on a Vec.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::to_avro_datum;

    const SCHEMA: &str = r#"{"type":"record","name":"Item","namespace":"shop","fields":[
        {"name":"id","type":"string"},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["positive","negative"]}},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"price","type":["int","double","null"]},
        {"name":"big","type":"long"},
        {"name":"raw","type":"bytes"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"dims","type":{"type":"map","values":"int"}},
        {"name":"ratio","type":"float"}
    ]}"#;

    #[test]
    fn renders_like_zilla() {
        let schema = AvroSchema::parse(SCHEMA).unwrap();
        let mut record = apache_avro::types::Record::new(&schema.schema).unwrap();
        record.put("id", "id0");
        record.put("status", Value::Enum(0, "positive".into()));
        record.put(
            "note",
            Value::Union(1, Box::new(Value::String("hi".into()))),
        );
        record.put("price", Value::Union(1, Box::new(Value::Double(2.5))));
        record.put("big", Value::Long(9_007_199_254_740_993));
        record.put("raw", Value::Bytes(vec![0, 1, 2, 255]));
        record.put("tags", Value::Array(vec![Value::String("a".into())]));
        record.put(
            "dims",
            Value::Map([("w".to_owned(), Value::Int(3))].into_iter().collect()),
        );
        record.put("ratio", Value::Float(0.5));
        let bytes = to_avro_datum(&schema.schema, record).unwrap();
        let mut out = Vec::new();
        schema.to_json(&bytes, &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"id":"id0","status":"positive","note":"hi","price":{"double":2.5},"big":9007199254740993,"raw":"AAEC/w==","tags":["a"],"dims":{"w":3},"ratio":0.5}"#
        );
        // Trailing bytes and truncated data are refused.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(schema.validate(&longer).is_err());
        assert!(schema.validate(&bytes[..3]).is_err());
    }
}
