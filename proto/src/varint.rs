//! Zig-zag LEB128 varints, as used by Kafka record batches (v2) and by Zilla's event ids.

/// Largest encoding of a 64-bit varint.
pub const MAX_LEN_64: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More continuation bytes than the type can hold.
    Overflow,
}

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes; returns it and the bytes used.
#[inline]
fn read_unsigned(buf: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i == max_bytes {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_bytes {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Decodes a zig-zag varint32; returns the value and the number of bytes read.
#[inline]
pub fn read_i32(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, n) = read_unsigned(buf, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(VarintError::Overflow);
    }
    let raw = raw as u32;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), n))
}

/// Decodes a zig-zag varint64; returns the value and the number of bytes read.
#[inline]
pub fn read_i64(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, n) = read_unsigned(buf, MAX_LEN_64)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), n))
}

/// Decodes an unsigned (not zig-zag) varint32, as used by Kafka's compact types.
#[inline]
pub fn read_u32(buf: &[u8]) -> Result<(u32, usize), VarintError> {
    let (raw, n) = read_unsigned(buf, 5)?;
    u32::try_from(raw)
        .map(|v| (v, n))
        .map_err(|_| VarintError::Overflow)
}

/// Appends the zig-zag varint encoding of `v` (a varint32 when it fits, same bytes).
#[inline]
pub fn write_i64(v: i64, out: &mut Vec<u8>) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends the zig-zag varint32 encoding of `v`.
#[inline]
pub fn write_i32(v: i32, out: &mut Vec<u8>) {
    let mut raw = ((v << 1) ^ (v >> 31)) as u32;
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_examples_from_the_reference() {
        // {0→5, 1→-2, 2→10} encodes as 00 0a 02 03 04 14.
        let mut out = Vec::new();
        for (p, o) in [(0i32, 5i64), (1, -2), (2, 10)] {
            write_i32(p, &mut out);
            write_i64(o, &mut out);
        }
        assert_eq!(out, [0x00, 0x0a, 0x02, 0x03, 0x04, 0x14]);
    }

    #[test]
    fn round_trips_extremes() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_i64(v, &mut out);
            assert_eq!(read_i64(&out), Ok((v, out.len())));
        }
        for v in [0i32, 1, -1, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_i32(v, &mut out);
            assert_eq!(read_i32(&out), Ok((v, out.len())));
        }
    }

    #[test]
    fn refuses_truncated_and_overlong() {
        assert_eq!(read_i64(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read_i32(&[0xff; 6]), Err(VarintError::Overflow));
        assert_eq!(read_i64(&[0xff; 11]), Err(VarintError::Overflow));
        assert_eq!(read_i32(&[]), Err(VarintError::Truncated));
    }
}
