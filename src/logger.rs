//! Logging through the `log` facade: one line per message on stderr, UTC timestamp, level, and
//! for messages of other crates (rustls, ureq, ...) their target. Nothing on the per-event path
//! logs. `SSE_KAFKA_LOG` sets the level: `error`, `warn`, `info` (default), `debug`, `trace` or
//! `off`.
//!
//! The server logs with `crate::info!`, `crate::warn!`, `crate::error!` and `crate::debug!`,
//! which are the `log` crate's macros re-exported at the crate root.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Our own messages carry no target; other crates' do.
const OWN_TARGET: &str = "sse_kafka";

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let target = record.target();
        let line = if target == OWN_TARGET || target.starts_with("sse_kafka::") {
            format!("{} {level} {}\n", timestamp(), record.args())
        } else {
            format!("{} {level} {target}: {}\n", timestamp(), record.args())
        };
        // One write per line, so lines of different threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// The level `SSE_KAFKA_LOG` asks for (`info` when unset; an unknown value is reported).
fn level_from_env() -> (LevelFilter, Option<String>) {
    match std::env::var("SSE_KAFKA_LOG") {
        Err(_) => (LevelFilter::Info, None),
        Ok(v) => match v.trim().parse::<LevelFilter>() {
            Ok(level) => (level, None),
            Err(_) => (
                LevelFilter::Info,
                Some(format!(
                    "SSE_KAFKA_LOG={v}: not one of off, error, warn, info, debug, trace; using info"
                )),
            ),
        },
    }
}

/// Installs the logger (once, before anything logs).
pub fn init() {
    let (level, problem) = level_from_env();
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    if let Some(problem) = problem {
        log::warn!("{problem}");
    }
}

/// `2026-11-24T10:00:00.123Z`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = civil_from_days((secs / 86400) as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
