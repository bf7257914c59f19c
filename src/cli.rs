//! Command line, parsed by clap: `sse-kafka [run options]`, `sse-kafka check [--expand]`,
//! `sse-kafka asyncapi`, `--help`, `--version`.
//!
//! Every option is global: it may come before or after the subcommand (`check` ignores the
//! ones it has no use for, as it always did).
//!
//! Each default lives once, in the `default_value_t` below; `--help` shows it from there. The
//! options are plain values (numbers in the unit the flag names, addresses, paths): the runtime
//! turns them into the per-worker fan-out, HTTP and drain settings (src/runtime/options.rs), and
//! the hidden `--print-settings` prints what it made of them, so a test can hold `--help` to the
//! values the server runs with. A value out of range is refused (exit 2, the flag named), never
//! clamped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "sse-kafka: streams Kafka topics to web clients as Server-Sent Events \
                     (a drop-in for Zilla's sse-kafka proxy)";

const USAGE: &str = "\
sse-kafka [--config FILE] [OPTIONS]          run with a zilla.yaml (default ./zilla.yaml)
       sse-kafka --kafka HOST:PORT [--listen ADDR]  run without a file: GET /{topic} streams that topic
       sse-kafka check [--config FILE]              validate a zilla.yaml; exit 0 when valid, 2 when not
       sse-kafka check --expand [--config FILE]     print the zilla.yaml with its asyncapi bindings expanded
       sse-kafka asyncapi [--config FILE]           print an AsyncAPI 3.0 document of the config's SSE routes";

const AFTER_HELP: &str =
    "Logs go to stderr; SSE_KAFKA_LOG=off|error|warn|info|debug|trace sets the level (default info).";

/// The longest `--jwks-refresh`, in seconds (a year).
const MAX_JWKS_REFRESH_SECS: u64 = 365 * 86_400;

/// The longest drain step a flag takes, in seconds (a day).
const MAX_DRAIN_SECS: f64 = 86_400.0;

#[derive(Parser, Debug)]
#[command(
    name = "sse-kafka",
    version,
    about = ABOUT,
    override_usage = USAGE,
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Validate a zilla.yaml: exit 0 when valid, 2 when not (each error as `<yaml.path>: <message>`)
    Check {
        /// Print the zilla.yaml with its asyncapi bindings expanded instead
        #[arg(long)]
        expand: bool,
    },
    /// Print an AsyncAPI 3.0 document (JSON) of the config's SSE routes
    Asyncapi,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<RunOptions>),
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
}

/// The server's options, as plain values; src/runtime/options.rs makes the workers' settings of
/// them.
#[derive(Args, Debug, Clone)]
pub struct RunOptions {
    /// zilla.yaml to load
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        default_value = "zilla.yaml",
        global = true
    )]
    pub config: PathBuf,
    /// Bootstrap server for the no-file mode
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub kafka: Option<String>,
    /// Listen address for the no-file mode
    #[arg(
        long,
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:7114",
        global = true
    )]
    pub listen: SocketAddr,
    /// Worker threads, each pinned to one allowed CPU [default: one per CPU the process may use]
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024), global = true, allow_negative_numbers = true)]
    pub workers: Option<usize>,
    /// Idle ':' comment interval; 0 turns it off
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 15,
        global = true,
        allow_negative_numbers = true
    )]
    pub heartbeat: u64,
    /// How long a request waits for topic metadata before 404
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5000,
        global = true,
        allow_negative_numbers = true
    )]
    pub metadata_timeout_ms: u64,
    /// Outbound bytes a stream may fall behind before it leaves the live group and catches up
    /// from the cache (65536..=4294967295)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = RangedU64ValueParser::<usize>::new().range(64 * 1024..=u64::from(u32::MAX)), global = true, allow_negative_numbers = true)]
    pub stream_budget: usize,
    /// Outbound bytes a worker may hold pending for all its streams; past it the furthest-behind
    /// streams catch up from the cache (1048576..=4294967295)
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20,
          value_parser = RangedU64ValueParser::<usize>::new().range(1 << 20..=u64::from(u32::MAX)), global = true, allow_negative_numbers = true)]
    pub worker_budget: usize,
    /// Recent records kept per partition for replay
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, global = true, allow_negative_numbers = true)]
    pub cache_bytes: usize,
    /// Seconds a fetched record stays in the cache; 0 = no bound
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 3600,
        global = true,
        allow_negative_numbers = true
    )]
    pub cache_age: u64,
    /// A stream whose client takes no bytes for this long is ended; 0 = never
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        global = true,
        allow_negative_numbers = true
    )]
    pub stall_timeout: u64,
    /// Long-poll wait of the shared Kafka fetch (1..=60000)
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=60_000), global = true, allow_negative_numbers = true)]
    pub fetch_max_wait_ms: u64,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (1..=4294967295)
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..), global = true, allow_negative_numbers = true)]
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE for request bodies (0..=2147483647)
    #[arg(long, value_name = "N", default_value_t = 65_535,
          value_parser = clap::value_parser!(u32).range(0..=(1 << 31) - 1), global = true, allow_negative_numbers = true)]
    pub h2_initial_window_size: u32,
    /// HTTP/2 SETTINGS_MAX_FRAME_SIZE (16384..=16777215)
    #[arg(long, value_name = "N", default_value_t = 1 << 14,
          value_parser = clap::value_parser!(u32).range(1 << 14..=(1 << 24) - 1), global = true, allow_negative_numbers = true)]
    pub h2_max_frame_size: u32,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE (1024..=1048576)
    #[arg(long, value_name = "N", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(1024..=1 << 20), global = true, allow_negative_numbers = true)]
    pub h2_max_header_list_size: u32,
    /// Open SSE streams in the process; more get 503; 0 = no cap
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        global = true,
        allow_negative_numbers = true
    )]
    pub max_streams: usize,
    /// Open SSE streams per client IP; more get 503; 0 = no cap
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        global = true,
        allow_negative_numbers = true
    )]
    pub max_streams_per_ip: usize,
    /// After SIGTERM, listeners keep accepting (and shedding) this long (0..=86400, fractions
    /// allowed)
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = drain_seconds,
          allow_negative_numbers = true, global = true)]
    pub drain_grace: f64,
    /// After SIGTERM, streams end spread over this long, then exit (0..=86400, fractions allowed)
    #[arg(long, value_name = "SECS", default_value_t = 20.0, value_parser = drain_seconds,
          allow_negative_numbers = true, global = true)]
    pub drain_timeout: f64,
    /// Base of the jittered retry: delay given to shed and drained streams (1..=3600000)
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000), global = true, allow_negative_numbers = true)]
    pub shed_retry_ms: u64,
    /// Serve GET /health/live and /health/ready on this address
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub health_listen: Option<SocketAddr>,
    /// How often a guard's JWKS URL is read again (1..=31536000, a year)
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=MAX_JWKS_REFRESH_SECS), global = true, allow_negative_numbers = true)]
    pub jwks_refresh: u64,
    /// PEM roots that https JWKS URLs are verified against [default: Mozilla's roots]
    #[arg(long, value_name = "FILE", global = true)]
    pub jwks_ca: Option<PathBuf>,
    /// Serve TLS (ALPN h2, http/1.1) with this PEM certificate chain
    #[arg(long, value_name = "FILE", requires = "tls_key", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// And this PEM private key
    #[arg(long, value_name = "FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Print the settings the workers would run with, one `--flag=value` a line, and exit
    /// (for tests: they hold `--help` to it)
    #[arg(long, hide = true, global = true)]
    pub print_settings: bool,
}

impl RunOptions {
    pub fn metadata_timeout(&self) -> Duration {
        Duration::from_millis(self.metadata_timeout_ms)
    }

    pub fn fetch_max_wait(&self) -> Duration {
        Duration::from_millis(self.fetch_max_wait_ms)
    }

    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs_f64(self.drain_grace)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout)
    }

    pub fn jwks_refresh(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh)
    }
}

/// Seconds, fractions allowed (`0.5`), at most a day.
fn drain_seconds(v: &str) -> Result<f64, String> {
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("not a number of seconds: {v}"))?;
    if !(0.0..=MAX_DRAIN_SECS).contains(&secs) {
        return Err(format!("{v} is outside 0..={MAX_DRAIN_SECS} seconds"));
    }
    Ok(secs)
}

/// Parses the arguments after the program name. `--help` and `--version` come back as a
/// `clap::Error` too (exit code 0): the caller prints it and exits with its code.
pub fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(
        std::iter::once("sse-kafka".into()).chain(args.into_iter().map(Into::into)),
    )?;
    let config = cli.run.config.clone();
    Ok(match cli.command {
        None => Command::Run(Box::new(cli.run)),
        Some(Sub::Check { expand: false }) => Command::Check { config },
        Some(Sub::Check { expand: true }) => Command::Expand { config },
        Some(Sub::Asyncapi) => Command::Describe { config },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run(list: &[&str]) -> RunOptions {
        match parse(list) {
            Ok(Command::Run(r)) => *r,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn refused(list: &[&str]) -> String {
        match parse(list) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{list:?}: {e}");
                e.to_string()
            }
            Ok(c) => panic!("{list:?} was accepted: {c:?}"),
        }
    }

    #[test]
    fn clap_accepts_its_own_definition() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_run_and_check() {
        let r = run(&["-c", "x.yaml", "--workers", "2", "--heartbeat=0"]);
        assert_eq!(r.config, PathBuf::from("x.yaml"));
        assert_eq!(r.workers, Some(2));
        assert_eq!(r.heartbeat, 0);
        assert!(matches!(
            parse(["check", "--config", "y"]).unwrap(),
            Command::Check { config } if config == Path::new("y")
        ));
        assert!(matches!(
            parse(["check", "--expand", "-c", "y"]).unwrap(),
            Command::Expand { config } if config == Path::new("y")
        ));
        assert!(matches!(
            parse(["asyncapi", "--config=z"]).unwrap(),
            Command::Describe { config } if config == Path::new("z")
        ));
        assert!(matches!(
            parse(["check"]).unwrap(),
            Command::Check { config } if config == Path::new("zilla.yaml")
        ));
        refused(&["--bogus"]);
        refused(&["--workers"]);
        refused(&["--expand"]);
        let r = run(&[
            "--drain-grace=0.5",
            "--drain-timeout",
            "3",
            "--shed-retry-ms",
            "700",
            "--health-listen",
            "127.0.0.1:9000",
        ]);
        assert_eq!(r.drain_grace(), Duration::from_millis(500));
        assert_eq!(r.drain_timeout(), Duration::from_secs(3));
        assert_eq!(r.shed_retry_ms, 700);
        assert!(r.health_listen.is_some());
        refused(&["--health-listen", "nope"]);
    }

    /// Out of range is refused with the flag named, never clamped (the old parser raised a
    /// stream budget below 64 KiB and clamped the fetch wait and the shed delay).
    #[test]
    fn out_of_range_values_are_refused_naming_the_flag() {
        for (flag, value) in [
            ("--workers", "0"),
            ("--workers", "1025"),
            ("--stream-budget", "1000"),
            ("--worker-budget", "1024"),
            ("--fetch-max-wait-ms", "0"),
            ("--fetch-max-wait-ms", "60001"),
            ("--shed-retry-ms", "0"),
            ("--jwks-refresh", "0"),
            ("--h2-max-frame-size", "100"),
            ("--h2-max-concurrent-streams", "0"),
            ("--h2-initial-window-size", "2147483648"),
            ("--h2-max-header-list-size", "2000000"),
            ("--drain-timeout", "-1"),
            ("--drain-grace", "86401"),
            ("--heartbeat", "soon"),
            ("--heartbeat", "-1"),
            ("--max-streams", "-5"),
        ] {
            let text = refused(&[flag, value]);
            assert!(text.contains(flag), "{flag} {value}: {text}");
        }
        let text = refused(&["--tls-cert", "c.pem"]);
        assert!(text.contains("--tls-key"), "{text}");
    }

    #[test]
    fn help_and_version_exit_zero() {
        for flag in ["--help", "-h", "--version", "-V"] {
            let e = parse([flag]).unwrap_err();
            assert_eq!(e.exit_code(), 0, "{flag}");
        }
    }
}
