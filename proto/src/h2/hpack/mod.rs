//! HPACK (RFC 7541): a decoder with a bounded dynamic table and Huffman decoding, and an
//! encoder for response heads that uses the static table and never the dynamic one.

mod decoder;
mod encoder;
pub mod huffman;
mod table;

#[cfg(test)]
mod rfc7541_tests;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use table::{static_entry, STATIC_TABLE};

/// Why a header block cannot be decoded. Each is a COMPRESSION_ERROR of the connection
/// (RFC 9113 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer above 2^32-1, or encoded in more octets than such a value needs.
    IntegerOverflow,
    /// Index 0, or beyond the static and dynamic tables.
    InvalidIndex,
    /// A Huffman string holding EOS or badly padded.
    Huffman,
    /// A dynamic table size update above the size our SETTINGS allow.
    TableSizeTooLarge,
    /// A dynamic table size update after the first field representation of the block.
    TableSizeUpdateLate,
    /// Our SETTINGS lowered the table size and the block does not start with the size
    /// update the peer owes (RFC 7541 §4.2).
    TableSizeUpdateMissing,
}

/// Decodes an integer with an `prefix_bits`-bit prefix (RFC 7541 §5.1) at the start of
/// `buf`: `(value, octets used)`. Values above 2^32-1 are refused.
pub fn decode_int(buf: &[u8], prefix_bits: u8) -> Result<(usize, usize), DecodeError> {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mask = (1u16 << prefix_bits) - 1;
    let first = u16::from(*buf.first().ok_or(DecodeError::Truncated)?) & mask;
    if first < mask {
        return Ok((usize::from(first), 1));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    for (i, &b) in buf[1..].iter().enumerate() {
        value += u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let value = u32::try_from(value).map_err(|_| DecodeError::IntegerOverflow)?;
            return Ok((value as usize, i + 2));
        }
        shift += 7;
        if shift > 28 {
            return Err(DecodeError::IntegerOverflow);
        }
    }
    Err(DecodeError::Truncated)
}

/// Appends `value` with an `prefix_bits`-bit prefix; `first` holds the representation's high
/// bits of the first octet.
pub fn encode_int(value: usize, prefix_bits: u8, first: u8, out: &mut Vec<u8>) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mask = (1usize << prefix_bits) - 1;
    if value < mask {
        out.push(first | value as u8);
        return;
    }
    out.push(first | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Decodes a string literal (RFC 7541 §5.2) at the start of `buf`, appending its octets to
/// `out`; returns the octets of `buf` used.
pub fn decode_string(buf: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let huffman = buf.first().is_some_and(|&b| b & 0x80 != 0);
    let (len, n) = decode_int(buf, 7)?;
    let raw = buf
        .get(n..)
        .and_then(|rest| rest.get(..len))
        .ok_or(DecodeError::Truncated)?;
    if huffman {
        huffman::decode(raw, out).map_err(|_| DecodeError::Huffman)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(n + len)
}

/// Appends `s` as a string literal, Huffman-coded when that is shorter.
pub fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    let huffman_len = huffman::encoded_len(s);
    if huffman_len < s.len() {
        encode_int(huffman_len, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        encode_int(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_the_rfc() {
        // C.1.1 - C.1.3.
        let mut out = Vec::new();
        encode_int(10, 5, 0, &mut out);
        assert_eq!(out, [0b01010]);
        out.clear();
        encode_int(1337, 5, 0xe0, &mut out);
        assert_eq!(out, [0b1111_1111, 0b1001_1010, 0b0000_1010]);
        assert_eq!(decode_int(&out, 5), Ok((1337, 3)));
        out.clear();
        encode_int(42, 8, 0, &mut out);
        assert_eq!(out, [42]);
        assert_eq!(decode_int(&[0b0000_1010], 5), Ok((10, 1)));
        assert_eq!(decode_int(&[42, 0xff], 8), Ok((42, 1)));
    }

    #[test]
    fn integer_limits() {
        for prefix in 1..=8 {
            for value in [0, 1, 30, 31, 127, 128, 255, 256, 1 << 20, u32::MAX as usize] {
                let mut out = Vec::new();
                encode_int(value, prefix, 0, &mut out);
                assert_eq!(decode_int(&out, prefix), Ok((value, out.len())));
                assert_eq!(
                    decode_int(&out[..out.len() - 1], prefix),
                    Err(DecodeError::Truncated)
                );
            }
        }
        let mut over = Vec::new();
        encode_int(u32::MAX as usize + 1, 5, 0, &mut over);
        assert_eq!(decode_int(&over, 5), Err(DecodeError::IntegerOverflow));
        // Endless continuation octets are refused after five.
        let padded = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(decode_int(&padded, 5), Err(DecodeError::IntegerOverflow));
        assert_eq!(
            decode_int(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Ok((31, 6))
        );
        assert_eq!(decode_int(&[], 5), Err(DecodeError::Truncated));
        assert_eq!(decode_int(&[0x1f], 5), Err(DecodeError::Truncated));
    }

    #[test]
    fn strings() {
        let mut out = Vec::new();
        encode_string(b"custom-key", &mut out);
        assert_eq!(out[0], 0x88, "Huffman, 8 octets");
        let mut back = Vec::new();
        assert_eq!(decode_string(&out, &mut back), Ok(out.len()));
        assert_eq!(back, b"custom-key");
        // Not shorter with Huffman: raw.
        out.clear();
        encode_string(b"\x00\x01", &mut out);
        assert_eq!(out, [0x02, 0, 1]);
        out.clear();
        encode_string(b"", &mut out);
        assert_eq!(out, [0]);
        back.clear();
        assert_eq!(
            decode_string(&[0x03, b'a', b'b'], &mut back),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_string(&[0x81, 0xff], &mut back),
            Err(DecodeError::Huffman)
        );
        assert_eq!(decode_string(&[], &mut back), Err(DecodeError::Truncated));
    }
}
