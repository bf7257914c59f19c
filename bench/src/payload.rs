//! Record values and the clock they carry.
//!
//! A value is one line of JSON, `{"src":S,"seq":N,"ts_ns":T,"pad":"xxx…"}`, padded to the
//! record size: `src` names a sequence (a partition, or a key), `seq` counts records in that
//! sequence from 0, `ts_ns` is CLOCK_MONOTONIC when the record was handed to the producer. Every
//! process on the host reads the same monotonic clock, so the client subtracts it directly.

use std::io::Write;

/// CLOCK_MONOTONIC in nanoseconds (system-wide, comparable across processes on one host).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Writes a value of `size` bytes (or just the fields when they are longer) into `out`.
pub fn write_value(out: &mut Vec<u8>, src: u64, seq: u64, ts_ns: u64, size: usize) {
    out.clear();
    let _ = write!(out, "{{\"src\":{src},\"seq\":{seq},\"ts_ns\":{ts_ns}");
    const TAIL: &[u8] = b",\"pad\":\"\"}";
    if out.len() + TAIL.len() < size {
        let pad = size - out.len() - TAIL.len();
        out.extend_from_slice(&TAIL[..8]);
        out.resize(out.len() + pad, b'x');
        out.extend_from_slice(&TAIL[8..]);
    } else {
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trip_and_size() {
        let mut v = Vec::new();
        write_value(&mut v, 3, 42, 123_456_789, 256);
        assert_eq!(v.len(), 256);
        let info = crate::sse::parse_value(&v).unwrap();
        assert_eq!((info.src, info.seq, info.ts_ns), (3, 42, 123_456_789));
        write_value(&mut v, 1, 2, 3, 10);
        assert_eq!(v, br#"{"src":1,"seq":2,"ts_ns":3}"#);
        assert!(mono_ns() > 0);
    }
}
