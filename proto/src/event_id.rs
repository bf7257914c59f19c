//! Zilla-compatible V1 event ids: per-partition progress, encoded as base64url text.
//!
//! Binary progress: `0x01`, zig-zag varint32 entry count, then for each entry a zig-zag
//! varint32 partition id and a zig-zag varint64 next offset. Text form: base64url
//! (`A-Z a-z 0-9 - _`) with `=` padding. Ids written here resume in Zilla and Zilla's
//! ids resume here.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::Engine;

use crate::varint;

/// Longest `Last-Event-ID` accepted, in bytes; a longer one is answered with 400.
pub const MAX_LAST_EVENT_ID: usize = 254;

/// Most entries a decoded id may declare.
pub const MAX_PARTITIONS: usize = 1024;

/// Version byte of the V1 progress encoding.
const V1: u8 = 0x01;

/// Decoded bytes of the longest acceptable progress text (254 chars → at most 189 bytes).
const MAX_DECODED: usize = MAX_LAST_EVENT_ID / 4 * 3 + 3;

/// base64url with `=` padding on output. Decoding tolerates non-zero unused bits in the
/// last symbol, as Java's decoder (Zilla's) does.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// How the `id:` text of an event is built (sse-kafka `event.id` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTemplate {
    /// `${etag}` (the default): `<progress64>` or `<progress64>/<etag>`.
    #[default]
    Etag,
    /// `["${base64(key)}","${etag}"]`: `["<base64url(key)>","<progress64>[/<etag>]"]`.
    KeyAndEtag,
}

impl IdTemplate {
    /// Template for a configured `event.id` value; `None` for anything but the two literal
    /// templates Zilla knows.
    pub fn from_config(s: &str) -> Option<IdTemplate> {
        match s {
            "${etag}" => Some(IdTemplate::Etag),
            r#"["${base64(key)}","${etag}"]"# => Some(IdTemplate::KeyAndEtag),
            _ => None,
        }
    }
}

/// Appends the base64url text (with `=` padding) of the V1 progress `progress`, entries in
/// the given order.
///
/// Allocates nothing beyond growing `out`: the binary form is written to the end of `out`,
/// encoded behind itself, then moved into place.
pub fn encode_progress(progress: &[(i32, i64)], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(V1);
    varint::write_i32(i32::try_from(progress.len()).unwrap_or(i32::MAX), out);
    for &(partition, offset) in progress {
        varint::write_i32(partition, out);
        varint::write_i64(offset, out);
    }
    let binary_len = out.len() - start;
    let text_len = binary_len.div_ceil(3) * 4;
    out.resize(start + binary_len + text_len, 0);
    let (binary, text) = out[start..].split_at_mut(binary_len);
    match B64.encode_slice(binary, text) {
        Ok(written) => {
            debug_assert_eq!(written, text_len);
            out.copy_within(start + binary_len.., start);
            out.truncate(start + text_len);
        }
        Err(_) => {
            debug_assert!(false, "base64 output sized by encoded length");
            out.truncate(start);
        }
    }
}

/// Appends base64url (with `=` padding) of `bytes`.
fn encode_b64(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let text_len = bytes.len().div_ceil(3) * 4;
    out.resize(start + text_len, 0);
    if B64.encode_slice(bytes, &mut out[start..]).is_err() {
        debug_assert!(false, "base64 output sized by encoded length");
        out.truncate(start);
    }
}

/// True when `etag` may go into an id line: no CR, LF or NUL (decisions.md 3.2), and, inside
/// the JSON of the key template, no `"` or `\` (they would break the string; Zilla inserts
/// them raw). An etag that fails is left out, as if the record had none.
fn etag_allowed(etag: &[u8], in_json: bool) -> bool {
    etag.iter().all(|&b| match b {
        b'\r' | b'\n' | 0 => false,
        b'"' | b'\\' => !in_json,
        _ => true,
    })
}

/// Appends the whole id text (without `id:`) of a record.
///
/// * `Etag`: `<progress64>` or `<progress64>/<etag>`.
/// * `KeyAndEtag`: `["<base64url(key)>","<progress64>[/<etag>]"]`, or `[null,"…"]` for a
///   null key.
///
/// `etag` is the raw value of the record header named exactly `etag`. It is left out when it
/// contains CR, LF or NUL; with `KeyAndEtag` also when it contains `"` or `\` (a choice of
/// ours: Zilla would write them raw and produce broken JSON). An empty etag is kept
/// (`<progress64>/`), as Zilla does.
pub fn encode_event_id(
    template: IdTemplate,
    key: Option<&[u8]>,
    progress: &[(i32, i64)],
    etag: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let in_json = template == IdTemplate::KeyAndEtag;
    let etag = etag.filter(|e| etag_allowed(e, in_json));
    if in_json {
        out.push(b'[');
        match key {
            Some(key) => {
                out.push(b'"');
                encode_b64(key, out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"");
    }
    encode_progress(progress, out);
    if let Some(etag) = etag {
        out.push(b'/');
        out.extend_from_slice(etag);
    }
    if in_json {
        out.extend_from_slice(b"\"]");
    }
}

/// Why a `Last-Event-ID` was refused. The server answers 400 for [`IdError::TooLong`] and
/// otherwise replays from the default position, as Zilla does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Longer than [`MAX_LAST_EVENT_ID`] bytes.
    TooLong,
    /// No progress text found (empty, or a key-template id without its progress string).
    NoProgress,
    /// Progress text is not padded base64url.
    BadBase64,
    /// Version byte is not `0x01`.
    BadVersion,
    /// Binary progress ends early, holds a malformed varint or a negative count.
    Truncated,
    /// Declares more than [`MAX_PARTITIONS`] entries.
    TooManyPartitions,
}

/// Locates the progress text of an id: `progress64[/etag]`, or
/// `[<key>,"progress64[/etag]"]` (the key part being `"<base64url>"` or `null`). The
/// progress ends at the first `/` or `"`. Unlike Zilla, the key form without etag works.
fn find_progress(id: &[u8]) -> Result<&[u8], IdError> {
    let text = if id.first() == Some(&b'[') {
        let comma = id
            .iter()
            .position(|&b| b == b',')
            .ok_or(IdError::NoProgress)?;
        let after_comma = &id[comma + 1..];
        let quote = after_comma
            .iter()
            .position(|&b| b == b'"')
            .ok_or(IdError::NoProgress)?;
        let inner = &after_comma[quote + 1..];
        // The string must be terminated: by the closing quote, or by an etag's '/'.
        let end = inner
            .iter()
            .position(|&b| b == b'"' || b == b'/')
            .ok_or(IdError::NoProgress)?;
        &inner[..end]
    } else {
        let end = id.iter().position(|&b| b == b'/').unwrap_or(id.len());
        &id[..end]
    };
    if text.is_empty() {
        return Err(IdError::NoProgress);
    }
    Ok(text)
}

/// Checks the rules Zilla applies before decoding: length a multiple of 4, only base64url
/// symbols, `=` only as trailing padding (at most two). Standard base64 (`+`, `/`) and
/// unpadded text are refused.
fn validate_b64(text: &[u8]) -> Result<(), IdError> {
    if !text.len().is_multiple_of(4) {
        return Err(IdError::BadBase64);
    }
    let data_len = text.iter().position(|&b| b == b'=').unwrap_or(text.len());
    let (data, padding) = text.split_at(data_len);
    if padding.len() > 2 || padding.iter().any(|&b| b != b'=') {
        return Err(IdError::BadBase64);
    }
    if !data
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadBase64);
    }
    Ok(())
}

/// Parses a `Last-Event-ID` (header or `lastEventId` query value) written by us or by Zilla,
/// in either template form, into `out` (cleared first) as `(partition, next offset)` pairs.
///
/// The etag and the key are ignored. Values are returned as decoded (`-2` historical, `-1`
/// live: the caller interprets them). A partition listed twice keeps its last offset, at
/// the position of its first appearance. Bytes after the declared entries are ignored, as
/// Zilla does. On error `out` is empty.
pub fn decode_last_event_id(id: &[u8], out: &mut Vec<(i32, i64)>) -> Result<(), IdError> {
    out.clear();
    if id.len() > MAX_LAST_EVENT_ID {
        return Err(IdError::TooLong);
    }
    let text = find_progress(id)?;
    validate_b64(text)?;
    let mut buf = [0u8; MAX_DECODED];
    let len = B64
        .decode_slice(text, &mut buf)
        .map_err(|_| IdError::BadBase64)?;
    let result = decode_binary(&buf[..len], out);
    if result.is_err() {
        out.clear();
    }
    result
}

fn decode_binary(bin: &[u8], out: &mut Vec<(i32, i64)>) -> Result<(), IdError> {
    let (&version, mut rest) = bin.split_first().ok_or(IdError::Truncated)?;
    if version != V1 {
        return Err(IdError::BadVersion);
    }
    let (count, n) = varint::read_i32(rest).map_err(|_| IdError::Truncated)?;
    rest = &rest[n..];
    let count = usize::try_from(count).map_err(|_| IdError::Truncated)?;
    if count > MAX_PARTITIONS {
        return Err(IdError::TooManyPartitions);
    }
    for _ in 0..count {
        let (partition, n) = varint::read_i32(rest).map_err(|_| IdError::Truncated)?;
        rest = &rest[n..];
        let (offset, n) = varint::read_i64(rest).map_err(|_| IdError::Truncated)?;
        rest = &rest[n..];
        match out.iter_mut().find(|(p, _)| *p == partition) {
            Some(entry) => entry.1 = offset,
            None => out.push((partition, offset)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(p: &[(i32, i64)]) -> String {
        let mut out = Vec::new();
        encode_progress(p, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn id(
        template: IdTemplate,
        key: Option<&[u8]>,
        p: &[(i32, i64)],
        etag: Option<&[u8]>,
    ) -> String {
        let mut out = Vec::new();
        encode_event_id(template, key, p, etag, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn decode(id: &str) -> Result<Vec<(i32, i64)>, IdError> {
        let mut out = vec![(99, 99)];
        decode_last_event_id(id.as_bytes(), &mut out).map(|()| out)
    }

    const VECTORS: &[(&[(i32, i64)], &str)] = &[
        (&[(0, 2), (1, 1)], "AQQABAIC"),
        (&[(0, 3), (1, 1)], "AQQABgIC"),
        (&[(0, 1)], "AQIAAg=="),
        (&[(0, 5), (1, -2), (2, 10)], "AQYACgIDBBQ="),
        (&[], "AQA="),
    ];

    #[test]
    fn reference_vectors_encode() {
        for (p, text) in VECTORS {
            assert_eq!(progress(p), *text);
        }
    }

    #[test]
    fn reference_vectors_decode() {
        for (p, text) in VECTORS {
            assert_eq!(decode(text).unwrap(), p.to_vec(), "{text}");
        }
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut out = b"id:".to_vec();
        encode_progress(&[(0, 2), (1, 1)], &mut out);
        assert_eq!(out, b"id:AQQABAIC");
    }

    #[test]
    fn template_from_config() {
        assert_eq!(IdTemplate::from_config("${etag}"), Some(IdTemplate::Etag));
        assert_eq!(
            IdTemplate::from_config(r#"["${base64(key)}","${etag}"]"#),
            Some(IdTemplate::KeyAndEtag)
        );
        assert_eq!(IdTemplate::from_config("${key}"), None);
        assert_eq!(
            IdTemplate::from_config(r#"[ "${base64(key)}","${etag}"]"#),
            None
        );
        assert_eq!(IdTemplate::from_config(""), None);
    }

    #[test]
    fn etag_template_examples() {
        let p = &[(0, 2), (1, 1)];
        assert_eq!(id(IdTemplate::Etag, Some(b"key"), p, None), "AQQABAIC");
        assert_eq!(
            id(IdTemplate::Etag, Some(b"key"), p, Some(b"revision=42")),
            "AQQABAIC/revision=42"
        );
        assert_eq!(
            id(
                IdTemplate::Etag,
                None,
                &[(0, 3), (1, 1)],
                Some(b"revision=43")
            ),
            "AQQABgIC/revision=43"
        );
        assert_eq!(id(IdTemplate::Etag, None, p, Some(b"")), "AQQABAIC/");
    }

    #[test]
    fn key_template_examples() {
        let p = &[(0, 2), (1, 1)];
        assert_eq!(
            id(
                IdTemplate::KeyAndEtag,
                Some(b"key"),
                p,
                Some(b"revision=42")
            ),
            r#"["a2V5","AQQABAIC/revision=42"]"#
        );
        assert_eq!(
            id(IdTemplate::KeyAndEtag, None, p, None),
            r#"[null,"AQQABAIC"]"#
        );
        assert_eq!(
            id(IdTemplate::KeyAndEtag, Some(b"key"), p, None),
            r#"["a2V5","AQQABAIC"]"#
        );
        assert_eq!(
            id(IdTemplate::KeyAndEtag, Some(b""), &[(0, 1)], None),
            r#"["","AQIAAg=="]"#
        );
        // base64url alphabet and padding for the key.
        assert_eq!(
            id(IdTemplate::KeyAndEtag, Some(&[0xfb, 0xff]), &[], None),
            r#"["-_8=","AQA="]"#
        );
    }

    #[test]
    fn unsafe_etags_are_left_out() {
        let p = &[(0, 2), (1, 1)];
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\r\n"] {
            assert_eq!(id(IdTemplate::Etag, None, p, Some(bad)), "AQQABAIC");
            assert_eq!(
                id(IdTemplate::KeyAndEtag, None, p, Some(bad)),
                r#"[null,"AQQABAIC"]"#
            );
        }
        for json_bad in [&br#"a"b"#[..], br"a\b"] {
            assert_eq!(
                id(IdTemplate::KeyAndEtag, None, p, Some(json_bad)),
                r#"[null,"AQQABAIC"]"#
            );
            let kept = id(IdTemplate::Etag, None, p, Some(json_bad));
            assert_eq!(kept.as_bytes(), [b"AQQABAIC/", json_bad].concat());
        }
    }

    #[test]
    fn decodes_every_id_form() {
        let want = vec![(0, 2), (1, 1)];
        for text in [
            "AQQABAIC",
            "AQQABAIC/revision=42",
            "AQQABAIC/",
            "AQQABAIC/a/b,\"c\"",
            r#"["a2V5","AQQABAIC/revision=42"]"#,
            r#"["a2V5","AQQABAIC"]"#,
            r#"[null,"AQQABAIC"]"#,
            r#"[null,"AQQABAIC/revision=42"]"#,
            r#"["","AQQABAIC"]"#,
        ] {
            assert_eq!(decode(text), Ok(want.clone()), "{text}");
        }
        assert_eq!(decode(r#"[null,"AQIAAg=="]"#), Ok(vec![(0, 1)]));
        assert_eq!(decode(r#"["a2V5","AQIAAg=="]"#), Ok(vec![(0, 1)]));
    }

    #[test]
    fn rejects_reference_invalid_ids() {
        assert_eq!(decode("AQQA"), Err(IdError::Truncated));
        assert_eq!(decode("AQQABAIC==="), Err(IdError::BadBase64));
        assert_eq!(decode("AQQABAI^"), Err(IdError::BadBase64));
        assert_eq!(decode("AQQABAIC==^="), Err(IdError::BadBase64));
    }

    #[test]
    fn rejects_other_malformed_ids() {
        // Standard base64 symbols: '/' cuts the progress, '+' is refused.
        assert_eq!(decode("AQQA+AIC"), Err(IdError::BadBase64));
        assert_eq!(decode("+/8="), Err(IdError::BadBase64));
        assert_eq!(decode("AQQAB/IC"), Err(IdError::BadBase64));
        // Unpadded.
        assert_eq!(decode("AQIAAg"), Err(IdError::BadBase64));
        // Three padding symbols, padding in the middle.
        assert_eq!(decode("AQ==AQ=="), Err(IdError::BadBase64));
        assert_eq!(decode("A==="), Err(IdError::BadBase64));
        assert_eq!(decode(""), Err(IdError::NoProgress));
        assert_eq!(decode("/etag"), Err(IdError::NoProgress));
        assert_eq!(decode("[null]"), Err(IdError::NoProgress));
        assert_eq!(decode(r#"[null,"AQQABAIC"#), Err(IdError::NoProgress));
        assert_eq!(decode(r#"[null,""]"#), Err(IdError::NoProgress));
        // Version byte 0x02.
        assert_eq!(decode("AgA="), Err(IdError::BadVersion));
        // 0x01 alone: count missing.
        assert_eq!(decode("AQ=="), Err(IdError::Truncated));
        // Negative count (zig-zag 1 = -1).
        assert_eq!(decode("AQE="), Err(IdError::Truncated));
        // Count 1025 (zig-zag 2050 = 0x82 0x10).
        assert_eq!(decode("AYIQ"), Err(IdError::TooManyPartitions));
        // Count 1024 passes the bound and then runs out of bytes.
        assert_eq!(decode("AYAQ"), Err(IdError::Truncated));
    }

    #[test]
    fn length_limit() {
        let ok = format!("AQQABAIC/{}", "x".repeat(MAX_LAST_EVENT_ID - 9));
        assert_eq!(ok.len(), MAX_LAST_EVENT_ID);
        assert_eq!(decode(&ok), Ok(vec![(0, 2), (1, 1)]));
        let long = format!("{ok}x");
        assert_eq!(decode(&long), Err(IdError::TooLong));
    }

    #[test]
    fn error_leaves_out_empty() {
        let mut out = vec![(1, 1)];
        assert!(decode_last_event_id(b"AQQA", &mut out).is_err());
        assert!(out.is_empty());
        // Truncated after one complete entry.
        let mut bin = vec![V1];
        varint::write_i32(2, &mut bin);
        varint::write_i32(0, &mut bin);
        varint::write_i64(7, &mut bin);
        let mut text = Vec::new();
        encode_b64(&bin, &mut text);
        assert_eq!(
            decode_last_event_id(&text, &mut out),
            Err(IdError::Truncated)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn duplicates_keep_the_last_offset() {
        let text = progress(&[(0, 1), (1, 5), (0, 9)]);
        assert_eq!(decode(&text), Ok(vec![(0, 9), (1, 5)]));
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        // {0→1} followed by one extra byte: 01 02 00 02 ff.
        let mut text = Vec::new();
        encode_b64(&[1, 2, 0, 2, 0xff], &mut text);
        assert_eq!(decode_last_event_id(&text, &mut Vec::new()), Ok(()));
        assert_eq!(
            decode(std::str::from_utf8(&text).unwrap()),
            Ok(vec![(0, 1)])
        );
    }

    #[test]
    fn non_canonical_trailing_bits_are_accepted() {
        // "AQB=" decodes to 01 00 with a non-zero unused bit, as Java's decoder allows.
        assert_eq!(decode("AQB="), Ok(vec![]));
    }

    #[test]
    fn round_trips_extremes() {
        let p = [
            (i32::MAX, i64::MAX),
            (i32::MIN, i64::MIN),
            (-1, -1),
            (0, -2),
            (7, 1 << 40),
        ];
        let text = progress(&p);
        assert_eq!(decode(&text), Ok(p.to_vec()));
    }

    #[test]
    fn many_partitions_round_trip_below_the_length_limit() {
        let p: Vec<(i32, i64)> = (0..40).map(|i| (i, i64::from(i) * 3)).collect();
        let text = progress(&p);
        assert!(text.len() <= MAX_LAST_EVENT_ID);
        assert_eq!(decode(&text), Ok(p));
    }

    #[test]
    fn encode_does_not_truncate_large_progress() {
        let p: Vec<(i32, i64)> = (0..2000).map(|i| (i, 1_000_000)).collect();
        let mut out = Vec::new();
        encode_progress(&p, &mut out);
        let mut bin = [0u8; 2000 * 5 + 8];
        let n = B64.decode_slice(&out, &mut bin).unwrap();
        let mut got = Vec::new();
        // Decode the binary directly (the text is beyond MAX_LAST_EVENT_ID).
        assert_eq!(
            decode_binary(&bin[..n], &mut got),
            Err(IdError::TooManyPartitions)
        );
        assert_eq!(&bin[..3], &[1, 0xa0, 0x1f]);
    }
}
