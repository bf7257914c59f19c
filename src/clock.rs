//! Every clock the server reads, in one place: a coarse monotonic clock shared by all workers
//! (cache ages, ticks) and the wall clock (token expiry, record latency). Logic that decides
//! takes the time as an input; only drivers call these.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the process started, on a monotonic clock shared by all workers.
pub fn monotonic_secs() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// Seconds since the Unix epoch.
pub fn wall_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Microseconds since the Unix epoch.
pub fn wall_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
