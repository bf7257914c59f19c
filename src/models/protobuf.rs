//! `model: protobuf`: a `.proto` schema text compiled at run time without `protoc`
//! (`protobuf-parse`'s pure-Rust parser, then `protobuf`'s dynamic messages), records decoded
//! and written as JSON with the proto3 JSON mapping (`protobuf-json-mapping`: lowerCamelCase
//! names, enums by name, 64-bit integers as strings, default values left out), compact.
//!
//! The message is chosen by the Confluent message index list when the record carries one,
//! else by the model's `record` (a message name), else the file's first message.

use protobuf::reflect::{FileDescriptor, MessageDescriptor};

pub struct ProtoSchema {
    /// The schema's own file (its imports are dependencies inside it).
    file: FileDescriptor,
    /// The message decoded when the record names none.
    default: MessageDescriptor,
}

/// The name the schema text is given while it is compiled.
const FILE_NAME: &str = "schema.proto";

impl ProtoSchema {
    pub fn parse(text: &str, record: Option<&str>) -> Result<ProtoSchema, String> {
        // protobuf-parse reads files: the text goes to a private temporary directory, once
        // per schema, on the schema thread or at start (never on a worker).
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).map_err(|e| format!("temporary file: {e}"))?;
        let parsed = protobuf_parse::Parser::new()
            .pure()
            .include(dir.path())
            .input(&path)
            .parse_and_typecheck()
            .map_err(|e| format!("invalid protobuf schema: {e:#}"))?;
        let files = FileDescriptor::new_dynamic_fds(parsed.file_descriptors, &[])
            .map_err(|e| format!("invalid protobuf schema: {e}"))?;
        let file = files
            .into_iter()
            .find(|f| f.proto().name() == FILE_NAME)
            .ok_or("invalid protobuf schema: not compiled")?;
        let default = match record {
            Some(name) => file
                .message_by_package_relative_name(name)
                .or_else(|| file.message_by_full_name(&format!(".{name}")))
                .or_else(|| file.message_by_full_name(name))
                .ok_or_else(|| format!("record {name:?}: no such message in the schema"))?,
            None => file
                .messages()
                .next()
                .ok_or("protobuf schema without a message")?,
        };
        Ok(ProtoSchema { file, default })
    }

    /// The message a Confluent index path names (`[]`: the default one).
    fn message(&self, indexes: &[i32]) -> Result<MessageDescriptor, String> {
        let Some((&first, rest)) = indexes.split_first() else {
            return Ok(self.default.clone());
        };
        let pick = |mut it: Box<dyn Iterator<Item = MessageDescriptor> + '_>, i: i32| {
            usize::try_from(i)
                .ok()
                .and_then(|i| it.nth(i))
                .ok_or_else(|| format!("message index {i} not in the schema"))
        };
        let mut message = pick(Box::new(self.file.messages()), first)?;
        for &i in rest {
            let next = pick(Box::new(message.nested_messages()), i)?;
            message = next;
        }
        Ok(message)
    }

    fn decode(
        &self,
        payload: &[u8],
        indexes: &[i32],
    ) -> Result<Box<dyn protobuf::MessageDyn>, String> {
        let descriptor = self.message(indexes)?;
        descriptor
            .parse_from_bytes(payload)
            .map_err(|e| format!("not protobuf {}: {e}", descriptor.full_name()))
    }

    pub fn validate(&self, payload: &[u8], indexes: &[i32]) -> Result<(), String> {
        self.decode(payload, indexes).map(|_| ())
    }

    pub fn to_json(
        &self,
        payload: &[u8],
        indexes: &[i32],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let message = self.decode(payload, indexes)?;
        let text = protobuf_json_mapping::print_to_string(&*message)
            .map_err(|e| format!("protobuf to JSON: {e}"))?;
        // The printer puts a space after `:` and `,`: written compact.
        compact(text.as_bytes(), out);
        Ok(())
    }
}

/// Copies JSON text without the whitespace outside its strings.
fn compact(json: &[u8], out: &mut Vec<u8>) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
            in_string = b == b'"';
        }
    }
}

/// Reads a Confluent protobuf message index list off the front of `payload` (after magic byte
/// and schema id) into `indexes`: a zig-zag varint count, then that many zig-zag varint
/// indexes; a count of 0 (the single byte `0`) means the first message (`[0]`). Returns the
/// bytes used.
pub fn read_indexes(payload: &[u8], indexes: &mut Vec<i32>) -> Result<usize, String> {
    let bad = || "bad Confluent message index list".to_owned();
    let (count, mut used) = proto::varint::read_i32(payload).map_err(|_| bad())?;
    if !(0..=100).contains(&count) {
        return Err(bad());
    }
    indexes.clear();
    if count == 0 {
        indexes.push(0);
        return Ok(used);
    }
    for _ in 0..count {
        let (i, n) =
            proto::varint::read_i32(payload.get(used..).ok_or_else(bad)?).map_err(|_| bad())?;
        indexes.push(i);
        used += n;
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"syntax = "proto3";
package shop;
message Item {
  string id = 1;
  int64 count = 2;
  Status status = 3;
  message Inner { bool ok = 1; }
  Inner inner = 4;
}
enum Status { UNKNOWN = 0; POSITIVE = 1; }
message Other { string name = 1; }
"#;

    #[test]
    fn decodes_default_and_indexed_messages() {
        let schema = ProtoSchema::parse(SCHEMA, None).unwrap();
        // Item { id: "id0", count: 7, status: POSITIVE, inner: { ok: true } }
        let item = [
            0x0a, 3, b'i', b'd', b'0', 0x10, 7, 0x18, 1, 0x22, 2, 0x08, 1,
        ];
        let mut out = Vec::new();
        schema.to_json(&item, &[], &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"id":"id0","count":"7","status":"POSITIVE","inner":{"ok":true}}"#
        );
        // Index [1]: Other { name: "n" }.
        out.clear();
        schema.to_json(&[0x0a, 1, b'n'], &[1], &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"name":"n"}"#);
        // Index [0, 0]: Item.Inner.
        out.clear();
        schema.to_json(&[0x08, 1], &[0, 0], &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"ok":true}"#);
        assert!(schema.validate(&[0xff, 0xff], &[]).is_err());
        assert!(schema.validate(&[], &[5]).is_err());

        let other = ProtoSchema::parse(SCHEMA, Some("Other")).unwrap();
        out.clear();
        other.to_json(&[0x0a, 1, b'n'], &[], &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"name":"n"}"#);
        let mut c = Vec::new();
        compact(br#"{"a": "x \" y, z", "b": [1, 2]}"#, &mut c);
        assert_eq!(c, br#"{"a":"x \" y, z","b":[1,2]}"#);
        assert!(ProtoSchema::parse("syntax = \"proto3\"; message {", None).is_err());
    }

    #[test]
    fn index_lists() {
        let mut idx = Vec::new();
        assert_eq!(read_indexes(&[0], &mut idx), Ok(1));
        assert_eq!(idx, [0]);
        // count 2 (zig-zag 4), indexes 1 (2) and 0 (0).
        assert_eq!(read_indexes(&[4, 2, 0, 0xaa], &mut idx), Ok(3));
        assert_eq!(idx, [1, 0]);
        assert!(read_indexes(&[4, 2], &mut idx).is_err());
        assert!(read_indexes(&[], &mut idx).is_err());
    }
}
