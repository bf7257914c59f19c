//! Zilla's event ids (base64url of zigzag varints) and the small encodings tests need.
use std::collections::BTreeMap;

/// Base64url with `=` padding (the alphabet and padding of Zilla's event ids).
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict base64url decoding with padding required (length a multiple of 4).
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    for (i, q) in t.chunks(4).enumerate() {
        let last = i == t.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (j, &c) in q.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { val(c)? };
            n = n << 6 | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// Encodes a V1 progress id (reference section 3.1): `0x01`, zig-zag varint count, then
/// (partition, next offset) pairs, base64url with padding.
pub fn encode_id(progress: &[(i32, i64)]) -> String {
    let mut bytes = vec![1u8];
    put_varint(&mut bytes, progress.len() as i64);
    for &(p, o) in progress {
        put_varint(&mut bytes, p as i64);
        put_varint(&mut bytes, o);
    }
    b64url(&bytes)
}

/// Decodes the progress part of an event id: `<progress64>[/etag]` or
/// `["<key64>"|null,"<progress64>[/etag]"]`. Returns partition → next offset.
pub fn decode_id(id: &str) -> Option<BTreeMap<i32, i64>> {
    let progress = if id.starts_with('[') {
        let inner = id.strip_suffix("\"]")?;
        let start = inner.rfind(",\"")? + 2;
        &inner[start..]
    } else {
        id
    };
    let progress = progress.split('/').next()?;
    let bytes = b64url_decode(progress)?;
    if bytes.first() != Some(&1) {
        return None;
    }
    let mut pos = 1;
    let count = get_varint(&bytes, &mut pos)?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let p = get_varint(&bytes, &mut pos)?;
        let o = get_varint(&bytes, &mut pos)?;
        map.insert(p as i32, o);
    }
    (pos == bytes.len()).then_some(map)
}

/// Percent-encodes everything but unreserved characters (for `?lastEventId=`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
