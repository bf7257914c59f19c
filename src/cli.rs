//! Command line: `sse-kafka [run options]`, `sse-kafka check`, `--help`, `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::fanout::hub::Settings;
use crate::http::admission::Limits;
use crate::runtime::drain::DrainSettings;

pub const HELP: &str = "\
sse-kafka: streams Kafka topics to web clients as Server-Sent Events (a drop-in for Zilla's sse-kafka proxy)

USAGE:
    sse-kafka [--config FILE] [OPTIONS]          run with a zilla.yaml (default ./zilla.yaml)
    sse-kafka --kafka HOST:PORT [--listen ADDR]  run without a file: GET /{topic} streams that topic
    sse-kafka check [--config FILE]              validate a zilla.yaml; exit 0 when valid, 2 when not
    sse-kafka check --expand [--config FILE]     print the zilla.yaml with its asyncapi bindings expanded
    sse-kafka asyncapi [--config FILE]           print an AsyncAPI 3.0 document of the config's SSE routes

OPTIONS:
    -c, --config FILE            zilla.yaml to load
        --kafka HOST:PORT        bootstrap server for the no-file mode
        --listen ADDR:PORT       listen address for the no-file mode (default 0.0.0.0:7114)
        --workers N              worker threads, each pinned to one allowed CPU (default: one per CPU the process may use)
        --heartbeat SECS         idle ':' comment interval; 0 turns it off (default 15)
        --metadata-timeout-ms MS how long a request waits for topic metadata before 404 (default 5000)
        --stream-budget BYTES    outbound bytes a stream may fall behind before it leaves the live group
                                 and catches up from the cache (default 1048576)
        --worker-budget BYTES    outbound bytes a worker may hold pending for all its streams; past it
                                 the furthest-behind streams catch up from the cache (default 33554432)
        --cache-bytes BYTES      recent records kept per partition for replay (default 67108864)
        --cache-age SECS         seconds a fetched record stays in the cache (default 3600, 0 = no bound)
        --stall-timeout SECS     a stream whose client takes no bytes for this long is ended (default 10, 0 = never)
        --fetch-max-wait-ms MS   long-poll wait of the shared Kafka fetch (default 500)
        --h2-max-concurrent-streams N  HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 100)
        --h2-initial-window-size N     HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE for request bodies (default 65535)
        --h2-max-frame-size N          HTTP/2 SETTINGS_MAX_FRAME_SIZE (default 16384)
        --h2-max-header-list-size N    HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE (default 8192)
        --max-streams N          open SSE streams in the process; more get 503 (default 1000000, 0 = no cap)
        --max-streams-per-ip N   open SSE streams per client IP; more get 503 (default 0 = no cap)
        --drain-grace SECS       after SIGTERM, listeners keep accepting (and shedding) this long (default 1)
        --drain-timeout SECS     after SIGTERM, streams end spread over this long, then exit (default 20)
        --shed-retry-ms MS       base of the jittered retry: delay given to shed and drained streams (default 2000)
        --health-listen ADDR:PORT  serve GET /health/live and /health/ready on this address
        --jwks-refresh SECS      how often a guard's JWKS URL is read again (default 300)
        --jwks-ca FILE           PEM roots that https JWKS URLs are verified against (default: Mozilla's roots)
        --tls-cert FILE          serve TLS (ALPN h2, http/1.1) with this PEM certificate chain
        --tls-key FILE           and this PEM private key
    -h, --help                   this text
    -V, --version                the version

Logs go to stderr; SSE_KAFKA_LOG=off|error|warn|info|debug|trace sets the level (default info).
";

#[derive(Debug)]
pub enum Command {
    Run(Box<RunArgs>),
    Check {
        config: PathBuf,
    },
    /// `check --expand`: print the expanded zilla.yaml.
    Expand {
        config: PathBuf,
    },
    /// `asyncapi`: print an AsyncAPI document of the SSE routes.
    Describe {
        config: PathBuf,
    },
    Help,
    Version,
}

#[derive(Debug)]
pub struct RunArgs {
    pub config: PathBuf,
    pub kafka: Option<String>,
    pub listen: SocketAddr,
    pub workers: usize,
    pub settings: Settings,
    pub limits: Limits,
    pub jwks_refresh: Duration,
    pub jwks_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub drain: DrainSettings,
    pub health_listen: Option<SocketAddr>,
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().peekable();
    let mut check = false;
    let mut expand = false;
    let mut describe = false;
    if !check && it.peek().is_some_and(|a| *a == "asyncapi") {
        describe = true;
        it.next();
    }
    if it.peek().is_some_and(|a| *a == "check") {
        check = true;
        it.next();
    }
    let mut run = RunArgs {
        config: PathBuf::from("zilla.yaml"),
        kafka: None,
        listen: SocketAddr::from(([0, 0, 0, 0], 7114)),
        workers: crate::runtime::affinity::allowed_cpus().len(),
        settings: Settings::default(),
        limits: Limits {
            max_streams: 1_000_000,
            max_streams_per_ip: 0,
            shed_retry_ms: DrainSettings::default().retry_ms,
        },
        jwks_refresh: Duration::from_secs(300),
        jwks_ca: None,
        tls_cert: None,
        tls_key: None,
        drain: DrainSettings::default(),
        health_listen: None,
    };
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-c" | "--config" => run.config = PathBuf::from(value()?),
            "--expand" if check => expand = true,
            "--kafka" => run.kafka = Some(value()?),
            "--listen" => {
                let v = value()?;
                run.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: not an ADDR:PORT: {v}"))?;
            }
            "--workers" => {
                run.workers = number(name, &value()?)?;
                if run.workers == 0 || run.workers > 1024 {
                    return Err("--workers must be between 1 and 1024".into());
                }
            }
            "--heartbeat" => run.settings.heartbeat_secs = number(name, &value()?)? as u64,
            "--metadata-timeout-ms" => {
                run.settings.metadata_timeout =
                    Duration::from_millis(number(name, &value()?)? as u64)
            }
            "--stream-budget" => {
                run.settings.stream_budget = number(name, &value()?)?.max(64 * 1024)
            }
            "--worker-budget" => {
                run.settings.worker_budget = bounded(name, &value()?, 1 << 20, u32::MAX)? as usize
            }
            "--cache-bytes" => run.settings.cache_bytes = number(name, &value()?)?,
            "--cache-age" => run.settings.cache_age_secs = number(name, &value()?)? as u64,
            "--stall-timeout" => run.settings.stall_secs = number(name, &value()?)? as u64,
            "--fetch-max-wait-ms" => {
                run.settings.fetch_max_wait =
                    Duration::from_millis(number(name, &value()?)?.clamp(1, 60_000) as u64)
            }
            "--h2-max-concurrent-streams" => {
                run.settings.h2.max_concurrent_streams = bounded(name, &value()?, 1, u32::MAX)?
            }
            "--h2-initial-window-size" => {
                run.settings.h2.initial_window_size = bounded(name, &value()?, 0, (1 << 31) - 1)?
            }
            "--h2-max-frame-size" => {
                run.settings.h2.max_frame_size = bounded(name, &value()?, 1 << 14, (1 << 24) - 1)?
            }
            "--h2-max-header-list-size" => {
                run.settings.h2.max_header_list_size = bounded(name, &value()?, 1024, 1 << 20)?
            }
            "--max-streams" => run.limits.max_streams = number(name, &value()?)?,
            "--max-streams-per-ip" => run.limits.max_streams_per_ip = number(name, &value()?)?,
            "--jwks-refresh" => {
                run.jwks_refresh = Duration::from_secs(number(name, &value()?)?.max(1) as u64)
            }
            "--drain-grace" => run.drain.grace = seconds(name, &value()?)?,
            "--drain-timeout" => run.drain.timeout = seconds(name, &value()?)?,
            "--shed-retry-ms" => {
                let ms = number(name, &value()?)?.clamp(1, 3_600_000) as u64;
                run.limits.shed_retry_ms = ms;
                run.drain.retry_ms = ms;
            }
            "--health-listen" => {
                let v = value()?;
                run.health_listen = Some(
                    v.parse()
                        .map_err(|_| format!("--health-listen: not an ADDR:PORT: {v}"))?,
                );
            }
            "--jwks-ca" => run.jwks_ca = Some(PathBuf::from(value()?)),
            "--tls-cert" => run.tls_cert = Some(PathBuf::from(value()?)),
            "--tls-key" => run.tls_key = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument: {other} (see --help)")),
        }
    }
    if describe {
        return Ok(Command::Describe { config: run.config });
    }
    if expand {
        return Ok(Command::Expand { config: run.config });
    }
    if check {
        return Ok(Command::Check { config: run.config });
    }
    if run.tls_cert.is_some() != run.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(Command::Run(Box::new(run)))
}

/// A number within `lo..=hi` (RFC 9113's ranges for SETTINGS).
fn bounded(name: &str, v: &str, lo: u32, hi: u32) -> Result<u32, String> {
    let n: u64 = v
        .parse()
        .map_err(|_| format!("{name}: not a number: {v}"))?;
    if n < u64::from(lo) || n > u64::from(hi) {
        return Err(format!("{name}: {n} is outside {lo}..={hi}"));
    }
    Ok(n as u32)
}

/// Seconds, fractions allowed (`0.5`), at most a day.
fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("{name}: not a number of seconds: {v}"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{name}: {v} is outside 0..=86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn number(name: &str, v: &str) -> Result<usize, String> {
    v.parse().map_err(|_| format!("{name}: not a number: {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_run_and_check() {
        match parse(&args(&["-c", "x.yaml", "--workers", "2", "--heartbeat=0"])).unwrap() {
            Command::Run(r) => {
                assert_eq!(r.config, PathBuf::from("x.yaml"));
                assert_eq!(r.workers, 2);
                assert_eq!(r.settings.heartbeat_secs, 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&args(&["check", "--config", "y"])).unwrap(),
            Command::Check { .. }
        ));
        assert!(parse(&args(&["--bogus"])).is_err());
        assert!(parse(&args(&["--workers"])).is_err());
        assert!(parse(&args(&["--workers", "0"])).is_err());
        match parse(&args(&[
            "--drain-grace=0.5",
            "--drain-timeout",
            "3",
            "--shed-retry-ms",
            "700",
            "--health-listen",
            "127.0.0.1:9000",
        ]))
        .unwrap()
        {
            Command::Run(r) => {
                assert_eq!(r.drain.grace, Duration::from_millis(500));
                assert_eq!(r.drain.timeout, Duration::from_secs(3));
                assert_eq!((r.drain.retry_ms, r.limits.shed_retry_ms), (700, 700));
                assert!(r.health_listen.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&args(&["--drain-timeout", "-1"])).is_err());
        assert!(parse(&args(&["--health-listen", "nope"])).is_err());
    }
}
