//! `sse-kafka`: streams Kafka topics to web clients as Server-Sent Events, a drop-in for Zilla's
//! sse-kafka proxy, thread-per-core on io_uring.

#![deny(clippy::undocumented_unsafe_blocks)]

mod auth;
mod catalog;
mod cli;
mod clock;
mod config;
mod fanout;
mod http;
mod kafka;
mod logger;
mod metrics;
mod models;
mod runtime;
#[cfg(test)]
mod testing;

#[cfg(test)]
#[global_allocator]
static ALLOC: testing::CountingAlloc = testing::CountingAlloc;

use std::process::ExitCode;

use cli::Command;
// The server logs with `crate::info!` and friends: the `log` facade's macros (src/logger.rs).
#[allow(unused_imports)]
pub(crate) use ::log::{debug, error, info, warn};

fn main() -> ExitCode {
    logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sse-kafka: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::HELP);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("sse-kafka {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Describe { config } => match config::load(&config) {
            Ok(plan) => {
                let doc = config::describe(&plan);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                ExitCode::from(2)
            }
        },
        Command::Expand { config } => match config::expand_file(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                ExitCode::from(2)
            }
        },
        Command::Check { config } => match config::load(&config) {
            Ok(plan) => {
                for w in &plan.warnings {
                    eprintln!("warning: {w}");
                }
                let schema_errors = models::check(&plan);
                if !schema_errors.is_empty() {
                    for e in &schema_errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(2);
                }
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                ExitCode::from(2)
            }
        },
        Command::Run(run) => {
            let plan = match &run.kafka {
                Some(kafka) => config::direct(kafka, run.listen),
                None => match config::load(&run.config) {
                    Ok(plan) => plan,
                    Err(errors) => {
                        for e in &errors {
                            eprintln!("{e}");
                        }
                        return ExitCode::from(2);
                    }
                },
            };
            for w in &plan.warnings {
                warn!("{w}");
            }
            if let Some(name) = &plan.name {
                info!("configuration {name}");
            }
            if plan.telemetry_stdout {
                info!("telemetry exporter stdout: events are logged on stderr");
            }
            if let Err(errors) = models::install(&plan) {
                for e in &errors {
                    error!("{e}");
                }
                return ExitCode::from(2);
            }
            let tls = match (&run.tls_cert, &run.tls_key) {
                (Some(cert), Some(key)) => {
                    let alpn: &[&str] =
                        match plan.listeners.first().map(|l| (l.http.http1, l.http.h2)) {
                            Some((true, false)) => &["http/1.1"],
                            Some((false, true)) => &["h2"],
                            _ => &["h2", "http/1.1"],
                        };
                    match http::tls::pem_identity(cert, key)
                        .and_then(|id| http::tls::server_config(vec![(None, id)], alpn))
                    {
                        Ok(config) => Some(config),
                        Err(e) => {
                            error!("TLS: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
                _ => None,
            };
            let opts = runtime::worker::Options {
                workers: run.workers,
                settings: run.settings,
                limits: run.limits,
                jwks_refresh: run.jwks_refresh,
                jwks_ca: run.jwks_ca,
                tls,
                drain: run.drain,
                health_listen: run.health_listen,
            };
            match runtime::worker::run(plan, opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
