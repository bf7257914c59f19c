//! `sse-kafka`: streams Kafka topics to web clients as Server-Sent Events, a drop-in for Zilla's
//! sse-kafka proxy, thread-per-core on io_uring.

#![deny(clippy::undocumented_unsafe_blocks)]

mod auth;
mod catalog;
mod cli;
mod clock;
mod config;
mod fanout;
mod head;
mod http;
mod iovecs;
mod kafka;
mod logger;
mod metrics;
mod models;
mod retry;
mod runtime;
mod sync;
#[cfg(test)]
mod testing;

#[cfg(test)]
#[global_allocator]
static ALLOC: testing::CountingAlloc = testing::CountingAlloc;

use std::path::Path;
use std::process::ExitCode;

use cli::Command;
// The server logs with `crate::info!` and friends: the `log` facade's macros (src/logger.rs).
#[allow(unused_imports)]
pub(crate) use ::log::{debug, error, info, warn};

fn main() -> ExitCode {
    logger::init();
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            // Usage errors (exit 2) and --help / --version (exit 0), as clap words them.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match command {
        Command::Describe { config } => print_asyncapi(&config),
        Command::Expand { config } => print_expanded(&config),
        Command::Check { config } => check(&config),
        Command::Run(run) => serve(&run),
    }
}

/// Config or model errors, one a line, and the usage-error exit code.
fn refuse(errors: &[impl std::fmt::Display]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    ExitCode::from(2)
}

/// `sse-kafka asyncapi`.
fn print_asyncapi(config: &Path) -> ExitCode {
    match config::load(config) {
        Ok(plan) => {
            let doc = config::describe(&plan);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(errors) => refuse(&errors),
    }
}

/// `sse-kafka check --expand`.
fn print_expanded(config: &Path) -> ExitCode {
    match config::expand_file(config) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(errors) => refuse(&errors),
    }
}

/// `sse-kafka check`: the config and its topic models.
fn check(config: &Path) -> ExitCode {
    let plan = match config::load(config) {
        Ok(plan) => plan,
        Err(errors) => return refuse(&errors),
    };
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let schema_errors = models::check(&plan);
    if !schema_errors.is_empty() {
        return refuse(&schema_errors);
    }
    println!("{}: valid", config.display());
    ExitCode::SUCCESS
}

/// Runs the server until it is stopped.
fn serve(run: &cli::RunOptions) -> ExitCode {
    let mut opts = runtime::options::worker_options(run, None);
    if run.print_settings {
        for (flag, value) in runtime::options::flag_values(&opts) {
            println!("{flag}={value}");
        }
        return ExitCode::SUCCESS;
    }
    let plan = match &run.kafka {
        Some(kafka) => config::direct(kafka, run.listen),
        None => match config::load(&run.config) {
            Ok(plan) => plan,
            Err(errors) => return refuse(&errors),
        },
    };
    log_plan(&plan);
    if let Err(errors) = models::install(&plan) {
        for e in &errors {
            error!("{e}");
        }
        return ExitCode::from(2);
    }
    if let (Some(cert), Some(key)) = (&run.tls_cert, &run.tls_key) {
        match tls_from_flags(&plan, cert, key) {
            Ok(config) => opts.tls = Some(config),
            Err(e) => {
                error!("TLS: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match runtime::worker::run(plan, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// What the plan says about itself at start: warnings, its name, the telemetry exporter.
fn log_plan(plan: &config::plan::Plan) {
    for w in &plan.warnings {
        warn!("{w}");
    }
    if let Some(name) = &plan.name {
        info!("configuration {name}");
    }
    if plan.telemetry_stdout {
        info!("telemetry exporter stdout: events are logged on stderr");
    }
}

/// `--tls-cert` / `--tls-key`: ALPN offers what the first listener speaks.
fn tls_from_flags(
    plan: &config::plan::Plan,
    cert: &Path,
    key: &Path,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let alpn: &[&str] = match plan.listeners.first().map(|l| (l.http.http1, l.http.h2)) {
        Some((true, false)) => &["http/1.1"],
        Some((false, true)) => &["h2"],
        _ => &["h2", "http/1.1"],
    };
    http::tls::pem_identity(cert, key)
        .and_then(|id| http::tls::server_config(vec![(None, id)], alpn))
}
