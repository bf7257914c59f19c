//! Drain on SIGTERM/SIGINT, per worker. Readiness turns false at once (the signal thread marks
//! the admission draining, so every new stream is shed with `retry:`); the listeners keep
//! accepting for `grace` so a load balancer that still sends requests here gets an answer
//! instead of a refused connection, then stop. Open streams are ended evenly over the first
//! three quarters of what is left of `timeout` (each with a jittered `retry:` line and its clean
//! end, fanout/drain.rs), so their clients do not all reconnect in the same instant; the last
//! quarter lets the last bytes leave. The worker returns when its last stream has ended or at
//! the timeout.

use std::time::{Duration, Instant};

use crate::fanout::hub::SharedHub;
use crate::sync::Signal;

#[derive(Debug, Clone, Copy)]
pub struct DrainSettings {
    /// How long listeners keep accepting after the signal.
    pub grace: Duration,
    /// When the worker stops at the latest, counted from the signal.
    pub timeout: Duration,
    /// Base of the jittered `retry:` delay given to each ended stream.
    pub retry_ms: u64,
}

impl Default for DrainSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(1),
            timeout: Duration::from_secs(20),
            retry_ms: 2000,
        }
    }
}

/// Pacing step of the spread.
const STEP: Duration = Duration::from_millis(20);

/// How many of `total` streams should have ended `elapsed` into a spread over `window`.
pub fn due(total: usize, elapsed: Duration, window: Duration) -> usize {
    if window.is_zero() || elapsed >= window {
        return total;
    }
    let f = elapsed.as_secs_f64() / window.as_secs_f64();
    ((total as f64 * f).ceil() as usize).min(total)
}

/// Waits for the shutdown request, then drains this worker's streams (see the module doc).
pub async fn run(hub: SharedHub, stop_accepting: Signal<()>, cfg: DrainSettings) {
    let shutdown = hub.borrow().shutdown.clone();
    shutdown.wait().await;
    let start = Instant::now();
    let deadline = start + cfg.timeout;
    let grace_end = (start + cfg.grace).min(deadline);
    monoio::time::sleep(grace_end.saturating_duration_since(Instant::now())).await;
    stop_accepting.set(());
    let spread_start = Instant::now();
    let window = deadline.saturating_duration_since(spread_start) * 3 / 4;
    let total = hub.borrow().open_not_ended();
    let mut ended = 0;
    crate::debug!(
        "drain: ending {total} streams over {} ms",
        window.as_millis()
    );
    loop {
        let target = due(total, spread_start.elapsed(), window);
        let left = hub
            .borrow_mut()
            .end_for_drain(target.saturating_sub(ended), cfg.retry_ms);
        ended = target;
        if left == 0 || Instant::now() >= deadline {
            break;
        }
        if ended >= total {
            // Streams that opened meanwhile (an open already past admission): end them now.
            hub.borrow_mut().end_for_drain(usize::MAX, cfg.retry_ms);
        }
        monoio::time::sleep(STEP).await;
    }
    while hub.borrow().stream_count() > 0 && Instant::now() < deadline {
        monoio::time::sleep(STEP).await;
    }
    // Let the last frames (END_STREAM, GOAWAY, last chunks) written by ending streams leave.
    monoio::time::sleep(Duration::from_millis(50)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_even_and_complete() {
        let w = Duration::from_secs(10);
        assert_eq!(due(100, Duration::ZERO, w), 0);
        assert_eq!(due(100, Duration::from_secs(1), w), 10);
        assert_eq!(due(100, Duration::from_secs(5), w), 50);
        assert_eq!(due(100, w, w), 100);
        assert_eq!(
            due(3, Duration::from_millis(1), w),
            1,
            "the first goes early"
        );
        assert_eq!(due(5, Duration::ZERO, Duration::ZERO), 5);
    }
}
