//! Reconnect delays for SSE clients: a base delay jittered to half to one and a half times
//! itself, so that clients told to come back together do not, and the `retry:` line that tells
//! them. Used by shedding (src/http/shed.rs) and by the drain and auth expiry in the fan-out.

use std::cell::Cell;
use std::io::Write;

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Distinct per thread even when two threads start in the same nanosecond.
    let local = 0u8;
    (nanos ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// A uniform value in `0..n` (xorshift64*; not for secrets, only for spreading delays).
fn random_below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    })
}

/// `base_ms` jittered to somewhere in `[base/2, 3*base/2]` (at least 1 ms).
pub fn jittered(base_ms: u64) -> u64 {
    let half = base_ms / 2;
    (half + random_below(base_ms + 1)).max(1)
}

/// `retry: MS\n\n` into a stack buffer; returns the bytes written.
pub fn retry_line(ms: u64, out: &mut [u8; 32]) -> usize {
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    let _ = write!(cursor, "retry: {ms}\n\n");
    cursor.position() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..10_000 {
            let v = jittered(2000);
            assert!((1000..=3000).contains(&v), "{v}");
            seen_low |= v < 1500;
            seen_high |= v > 2500;
        }
        assert!(seen_low && seen_high, "the spread covers the range");
        assert_eq!(jittered(0), 1);
    }

    #[test]
    fn retry_line_is_an_sse_field() {
        let mut buf = [0u8; 32];
        let n = retry_line(1234, &mut buf);
        assert_eq!(&buf[..n], b"retry: 1234\n\n");
    }
}
