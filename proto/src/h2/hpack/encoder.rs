//! HPACK encoding of response heads.

use super::table::STATIC_TABLE;
use super::{encode_int, encode_string};

/// Encodes response heads with static-table references and literals without indexing
/// (strings Huffman-coded when shorter). It never adds to the dynamic table, and its first
/// block starts with a table size update to 0, so that no SETTINGS_HEADER_TABLE_SIZE the
/// peer sends later can require another update.
#[derive(Debug, Default)]
pub struct Encoder {
    started: bool,
    lower: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Starts a header block: call first for each block.
    pub fn begin_block(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.push(0x20);
            self.started = true;
        }
    }

    /// Appends `:status`, which must be three digits (100..=999).
    pub fn encode_status(&mut self, status: u16, out: &mut Vec<u8>) {
        debug_assert!(
            (100..=999).contains(&status),
            "status {status} is not 3 digits"
        );
        let index = match status {
            200 => 8,
            204 => 9,
            206 => 10,
            304 => 11,
            400 => 12,
            404 => 13,
            500 => 14,
            _ => 0,
        };
        if index != 0 {
            out.push(0x80 | index);
            return;
        }
        let status = status.clamp(100, 999);
        let digits = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        // Literal without indexing, name `:status` (index 8).
        encode_int(8, 4, 0x00, out);
        encode_string(&digits, out);
    }

    /// Appends one field; the name is lowercased (RFC 9113 §8.2.1).
    pub fn encode_field(&mut self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let name = if name.iter().any(u8::is_ascii_uppercase) {
            self.lower.clear();
            self.lower.extend(name.iter().map(u8::to_ascii_lowercase));
            &self.lower[..]
        } else {
            name
        };
        let mut name_index = 0;
        for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
            if n.as_bytes() == name {
                if v.as_bytes() == value {
                    encode_int(i + 1, 7, 0x80, out);
                    return;
                }
                if name_index == 0 {
                    name_index = i + 1;
                }
            }
        }
        encode_int(name_index, 4, 0x00, out);
        if name_index == 0 {
            encode_string(name, out);
        }
        encode_string(value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hpack::Decoder;

    fn round_trip(status: u16, fields: &[(&str, &[u8])]) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let mut enc = Encoder::new();
        let mut block = Vec::new();
        enc.begin_block(&mut block);
        enc.encode_status(status, &mut block);
        for (n, v) in fields {
            enc.encode_field(n.as_bytes(), v, &mut block);
        }
        let mut dec = Decoder::new(4096);
        let mut out = Vec::new();
        dec.decode(&block, |n, v| {
            out.push((String::from_utf8(n.to_vec()).unwrap(), v.to_vec()))
        })
        .unwrap();
        assert_eq!(dec.table_len(), 0);
        (block, out)
    }

    #[test]
    fn statuses() {
        let (block, fields) = round_trip(200, &[]);
        assert_eq!(block, [0x20, 0x88]);
        assert_eq!(fields, [(":status".to_string(), b"200".to_vec())]);
        for status in [
            100, 101, 201, 204, 206, 301, 304, 400, 401, 403, 404, 431, 500, 503, 999,
        ] {
            let (_, fields) = round_trip(status, &[]);
            assert_eq!(fields[0].1, status.to_string().as_bytes());
        }
    }

    #[test]
    fn fields() {
        let input: [(&str, &[u8]); 5] = [
            ("content-type", b"text/event-stream"),
            ("Cache-Control", b"no-cache"),
            ("x-custom", b"\x01\x02"),
            ("accept-encoding", b"gzip, deflate"),
            ("access-control-allow-origin", b"*"),
        ];
        let (block, fields) = round_trip(200, &input);
        let expected: Vec<(String, Vec<u8>)> = input
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        assert_eq!(fields[1..], expected[..]);
        // Full static match: one octet (index 16).
        assert!(block.windows(1).any(|w| w == [0x80 | 16]));
        // content-type by static name index 31: 0000 1111 then 31 - 15 = 16.
        assert_eq!(&block[2..4], &[0x0f, 0x10]);
    }

    #[test]
    fn size_update_only_in_the_first_block() {
        let mut enc = Encoder::new();
        let mut a = Vec::new();
        enc.begin_block(&mut a);
        enc.encode_status(404, &mut a);
        let mut b = Vec::new();
        enc.begin_block(&mut b);
        enc.encode_status(404, &mut b);
        assert_eq!((a, b), (vec![0x20, 0x8d], vec![0x8d]));
    }
}
