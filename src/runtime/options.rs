//! From the command line's plain options (src/cli.rs) to what the workers run with: the
//! fan-out's settings, the HTTP admission limits and HTTP/2 SETTINGS, the drain timings. The
//! command line knows none of these types; this is the one place that maps one to the other.
//!
//! [`flag_values`] maps them back, flag by flag, for `--print-settings`: a test holds the
//! defaults `--help` shows to what this module made of them.

use std::sync::Arc;

use super::drain::DrainSettings;
use super::worker::Options;
use crate::cli::RunOptions;
use crate::fanout::hub::Settings;
use crate::http::admission::Limits;

/// The workers' options for a command line; `tls` is built from the plan by the caller.
pub fn worker_options(run: &RunOptions, tls: Option<Arc<rustls::ServerConfig>>) -> Options {
    let h2 = proto::h2::Settings {
        max_concurrent_streams: run.h2_max_concurrent_streams,
        initial_window_size: run.h2_initial_window_size,
        max_frame_size: run.h2_max_frame_size,
        max_header_list_size: run.h2_max_header_list_size,
        ..proto::h2::Settings::default()
    };
    let settings = Settings {
        stream_budget: run.stream_budget,
        worker_budget: run.worker_budget,
        cache_bytes: run.cache_bytes,
        cache_age_secs: run.cache_age,
        heartbeat_secs: run.heartbeat,
        metadata_timeout: run.metadata_timeout(),
        stall_secs: run.stall_timeout,
        fetch_max_wait: run.fetch_max_wait(),
        h2,
        ..Settings::default()
    };
    let limits = Limits {
        max_streams: run.max_streams,
        max_streams_per_ip: run.max_streams_per_ip,
        shed_retry_ms: run.shed_retry_ms,
    };
    let drain = DrainSettings {
        grace: run.drain_grace(),
        timeout: run.drain_timeout(),
        retry_ms: run.shed_retry_ms,
    };
    Options {
        workers: run
            .workers
            .unwrap_or_else(|| super::affinity::allowed_cpus().len()),
        settings,
        limits,
        jwks_refresh: run.jwks_refresh(),
        jwks_ca: run.jwks_ca.clone(),
        tls,
        drain,
        health_listen: run.health_listen,
    }
}

/// The options as the flags that set them, each value in the flag's own unit.
pub fn flag_values(o: &Options) -> Vec<(&'static str, String)> {
    let s = &o.settings;
    vec![
        ("--workers", o.workers.to_string()),
        ("--heartbeat", s.heartbeat_secs.to_string()),
        (
            "--metadata-timeout-ms",
            s.metadata_timeout.as_millis().to_string(),
        ),
        ("--stream-budget", s.stream_budget.to_string()),
        ("--worker-budget", s.worker_budget.to_string()),
        ("--cache-bytes", s.cache_bytes.to_string()),
        ("--cache-age", s.cache_age_secs.to_string()),
        ("--stall-timeout", s.stall_secs.to_string()),
        (
            "--fetch-max-wait-ms",
            s.fetch_max_wait.as_millis().to_string(),
        ),
        (
            "--h2-max-concurrent-streams",
            s.h2.max_concurrent_streams.to_string(),
        ),
        (
            "--h2-initial-window-size",
            s.h2.initial_window_size.to_string(),
        ),
        ("--h2-max-frame-size", s.h2.max_frame_size.to_string()),
        (
            "--h2-max-header-list-size",
            s.h2.max_header_list_size.to_string(),
        ),
        ("--max-streams", o.limits.max_streams.to_string()),
        (
            "--max-streams-per-ip",
            o.limits.max_streams_per_ip.to_string(),
        ),
        ("--drain-grace", o.drain.grace.as_secs_f64().to_string()),
        ("--drain-timeout", o.drain.timeout.as_secs_f64().to_string()),
        ("--shed-retry-ms", o.drain.retry_ms.to_string()),
        ("--jwks-refresh", o.jwks_refresh.as_secs().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command};

    fn defaults() -> Options {
        match parse(Vec::<String>::new()) {
            Ok(Command::Run(run)) => worker_options(&run, None),
            other => panic!("{other:?}"),
        }
    }

    /// The command line's defaults are the defaults the fan-out, HTTP/2 and drain types carry
    /// for the code (and the unit tests) that build them without a command line.
    #[test]
    fn command_line_defaults_are_the_types_defaults() {
        let o = defaults();
        let fanout = Settings::default();
        let s = &o.settings;
        assert_eq!(s.stream_budget, fanout.stream_budget);
        assert_eq!(s.worker_budget, fanout.worker_budget);
        assert_eq!(s.cache_bytes, fanout.cache_bytes);
        assert_eq!(s.cache_age_secs, fanout.cache_age_secs);
        assert_eq!(s.heartbeat_secs, fanout.heartbeat_secs);
        assert_eq!(s.metadata_timeout, fanout.metadata_timeout);
        assert_eq!(s.view_linger_secs, fanout.view_linger_secs);
        assert_eq!(s.stall_secs, fanout.stall_secs);
        assert_eq!(s.fetch_max_wait, fanout.fetch_max_wait);
        let h2 = proto::h2::Settings::default();
        assert_eq!(s.h2.max_concurrent_streams, h2.max_concurrent_streams);
        assert_eq!(s.h2.initial_window_size, h2.initial_window_size);
        assert_eq!(s.h2.max_frame_size, h2.max_frame_size);
        assert_eq!(s.h2.max_header_list_size, h2.max_header_list_size);
        assert_eq!(s.h2.header_table_size, h2.header_table_size);
        let drain = DrainSettings::default();
        assert_eq!(o.drain.grace, drain.grace);
        assert_eq!(o.drain.timeout, drain.timeout);
        assert_eq!(o.drain.retry_ms, drain.retry_ms);
        assert_eq!(o.limits.shed_retry_ms, drain.retry_ms);
        assert_eq!(o.workers, super::super::affinity::allowed_cpus().len());
    }

    /// Every flag lands where it belongs (a value unlike its default for each).
    #[test]
    fn every_flag_reaches_its_setting() {
        let args: Vec<String> = [
            ("--workers", "3"),
            ("--heartbeat", "7"),
            ("--metadata-timeout-ms", "1234"),
            ("--stream-budget", "70000"),
            ("--worker-budget", "2000000"),
            ("--cache-bytes", "99"),
            ("--cache-age", "0"),
            ("--stall-timeout", "4"),
            ("--fetch-max-wait-ms", "5"),
            ("--h2-max-concurrent-streams", "9"),
            ("--h2-initial-window-size", "1000"),
            ("--h2-max-frame-size", "20000"),
            ("--h2-max-header-list-size", "4096"),
            ("--max-streams", "11"),
            ("--max-streams-per-ip", "2"),
            ("--drain-grace", "0.25"),
            ("--drain-timeout", "6"),
            ("--shed-retry-ms", "300"),
            ("--jwks-refresh", "2"),
        ]
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect();
        let o = match parse(&args) {
            Ok(Command::Run(run)) => worker_options(&run, None),
            other => panic!("{other:?}"),
        };
        let got: Vec<String> = flag_values(&o)
            .into_iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect();
        assert_eq!(got, args);
    }
}
