//! `sse-kafka-bench`: the benchmark harness of sse-kafka. See bench/README.md.

mod client;
mod feed;
mod h2;
mod net;
mod payload;
mod procs;
mod raw;
mod relay;
mod report;
mod run;
mod soak;
mod sse;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use feed::{FeedSpec, Mode};
use run::{Kind, Publisher, RunSpec, Target};

const HELP: &str = "\
sse-kafka-bench: load generator, baselines and reports for sse-kafka

USAGE:
    sse-kafka-bench <SCENARIO> [OPTIONS]
    sse-kafka-bench plot [--results FILE] [--svg FILE]

SCENARIOS (each starts tansu, the server, the baselines and the clients it needs):
    fanout      1 topic, 1,000 then 10,000 streams, 256-byte records       (baselines: raw, nchan)
    keyed       10,000 keys, one key per stream (route /{topic}/{key})      (no baseline)
    idle        19,000 idle streams: bytes per stream                       (baseline: raw)
    latency     100 streams, 1,000 records/s                                (baselines: raw, nchan)
    reconnect   1,000 streams dropped and resumed by Last-Event-ID under load (no baseline)
    all         every scenario above, in that order
    soak        19,000 streams, 5 records/s for 30 min: RSS, events and latency percentiles per
                minute (--duration SECS to shorten; not part of `all`)

OPTIONS:
    --streams N[,N…]       stream counts (one run per count)
    --records N            records to publish (default: rate × duration)
    --rate R               records per second
    --duration SECS        feed duration when --records is not given
    --record-size B        value size in bytes (default 256)
    --partitions P         topic partitions (default 1)
    --keys K               keyed: number of keys (default: the stream count)
    --workers N            server / raw / nginx workers (default: cores)
    --client-procs N       load client processes (default: one per 9,500 streams)
    --client-threads N     threads per client process (default 1)
    --src-addrs N          source addresses 127.0.0.2… (default 8)
    --reconnect-ms MS      reconnect: mean time between deliberate drops per stream (default 2000)
    --drain-ms MS          how long clients may take to receive everything after the feed (default 15000)
    --baselines LIST       raw,nchan | raw | nchan | none (default: per scenario)
    --no-install           do not apt-get install nginx/Nchan when missing (skip that baseline)
    --kafka HOST:PORT      use this Kafka instead of starting tansu
    --fetch-max-wait-ms MS put a relay in front of tansu that caps every Fetch's max_wait_ms at MS
                           (tansu 0.6 holds each Fetch for about half its max wait even when data
                           is there; real Kafka answers at once). Scenario labels get `-fwMS`.
    --server PATH          sse-kafka binary (default target/release/sse-kafka, built when missing)
    --server-arg ARG       extra server argument (repeatable), e.g. --server-arg=--stream-budget=4194304
    --results FILE         JSON lines file (default bench/results/results.jsonl)
    --svg FILE             latency plot (default: latency.svg next to the results)
    --tag TEXT             free text stored in each record
    --raw-burst-ms MS      raw floor releases events in batches every MS (mimics a broker's fetch
                           cadence; default 0 = one by one as they are due)
    --keep                 keep the run directory (logs, configs) even on success
    --http2, --proto h2    our server's clients speak HTTP/2 (prior knowledge, cleartext), several
                           streams per connection; labels get `-h2`. Baselines stay HTTP/1.1
    --streams-per-conn N   HTTP/2: streams per connection (default 10)
    --drop-one             fault injection: client drops one event (must report exactly 1 lost)
    --dup-one              fault injection: client counts one event twice (1 duplicate)

Exit status: 0 when every run delivered exactly once, 3 when a run lost, duplicated or
reordered events (or streams failed), 1 on errors, 130 on Ctrl-C.
";

#[derive(Debug, Clone)]
struct Opts {
    scenario: String,
    streams: Option<Vec<usize>>,
    records: Option<u64>,
    rate: Option<f64>,
    duration: Option<f64>,
    record_size: usize,
    partitions: u32,
    keys: Option<u64>,
    workers: usize,
    client_procs: Option<usize>,
    client_threads: usize,
    src_addrs: usize,
    reconnect_ms: u64,
    drain_ms: u64,
    baselines: Option<Vec<Kind>>,
    install: bool,
    kafka: Option<String>,
    fetch_max_wait_ms: Option<i32>,
    server: Option<PathBuf>,
    server_args: Vec<String>,
    results: PathBuf,
    svg: Option<PathBuf>,
    tag: Option<String>,
    keep: bool,
    raw_burst_ms: u64,
    drop_one: bool,
    dup_one: bool,
    http2: bool,
    streams_per_conn: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        scenario: String::new(),
        streams: None,
        records: None,
        rate: None,
        duration: None,
        record_size: 256,
        partitions: 1,
        keys: None,
        workers: net::cores(),
        client_procs: None,
        client_threads: 1,
        src_addrs: 8,
        reconnect_ms: 2000,
        drain_ms: 15_000,
        baselines: None,
        install: true,
        kafka: None,
        fetch_max_wait_ms: None,
        server: None,
        server_args: Vec::new(),
        results: report::default_results(),
        svg: None,
        tag: None,
        keep: false,
        raw_burst_ms: 0,
        drop_one: false,
        dup_one: false,
        http2: false,
        streams_per_conn: 10,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut v = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T: std::str::FromStr>(name: &str, s: String) -> Result<T, String> {
            s.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: not a number: {s}"))
        }
        match name.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--streams" => {
                o.streams = Some(
                    v()?.split(',')
                        .map(|s| num::<usize>("--streams", s.to_string()))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--records" => o.records = Some(num(&name, v()?)?),
            "--rate" => o.rate = Some(num(&name, v()?)?),
            "--duration" => o.duration = Some(num(&name, v()?)?),
            "--record-size" => o.record_size = num(&name, v()?)?,
            "--partitions" => o.partitions = num::<u32>(&name, v()?)?.max(1),
            "--keys" => o.keys = Some(num(&name, v()?)?),
            "--workers" => o.workers = num::<usize>(&name, v()?)?.max(1),
            "--client-procs" => o.client_procs = Some(num::<usize>(&name, v()?)?.max(1)),
            "--client-threads" => o.client_threads = num::<usize>(&name, v()?)?.max(1),
            "--src-addrs" => o.src_addrs = num::<usize>(&name, v()?)?.clamp(1, 250),
            "--reconnect-ms" => o.reconnect_ms = num(&name, v()?)?,
            "--drain-ms" => o.drain_ms = num(&name, v()?)?,
            "--baselines" => {
                let list = v()?;
                let mut b = Vec::new();
                for s in list.split(',') {
                    match s.trim() {
                        "raw" => b.push(Kind::Raw),
                        "nchan" => b.push(Kind::Nchan),
                        "none" | "" => {}
                        other => return Err(format!("--baselines: unknown {other}")),
                    }
                }
                o.baselines = Some(b);
            }
            "--no-install" => o.install = false,
            "--kafka" => o.kafka = Some(v()?),
            "--fetch-max-wait-ms" => o.fetch_max_wait_ms = Some(num(&name, v()?)?),
            "--server" => o.server = Some(PathBuf::from(v()?)),
            "--server-arg" => o.server_args.push(v()?),
            "--results" => o.results = PathBuf::from(v()?),
            "--svg" => o.svg = Some(PathBuf::from(v()?)),
            "--tag" => o.tag = Some(v()?),
            "--keep" => o.keep = true,
            "--raw-burst-ms" => o.raw_burst_ms = num(&name, v()?)?,
            "--drop-one" => o.drop_one = true,
            "--dup-one" => o.dup_one = true,
            "--http2" => o.http2 = true,
            "--proto" => {
                o.http2 = match v()?.as_str() {
                    "h2" | "http2" | "2" => true,
                    "h1" | "http1" | "1.1" => false,
                    other => return Err(format!("--proto {other}: h1 or h2")),
                }
            }
            "--streams-per-conn" => o.streams_per_conn = num::<usize>(&name, v()?)?.max(1),
            s if !s.starts_with('-') && o.scenario.is_empty() => o.scenario = s.to_string(),
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("client") => match client::ClientArgs::parse(&args[1..]).and_then(client::run) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("client: {e}");
                1
            }
        },
        Some("raw-server") => match raw::run(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("raw-server: {e}");
                1
            }
        },
        None | Some("-h") | Some("--help") | Some("help") => {
            print!("{HELP}");
            0
        }
        Some(_) => match parse(&args) {
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
            Ok(o) if o.scenario == "plot" => {
                let svg = o
                    .svg
                    .clone()
                    .unwrap_or_else(|| o.results.with_file_name("latency.svg"));
                match report::write_svg(&o.results, &svg) {
                    Ok(()) => {
                        println!("{}", svg.display());
                        0
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                }
            }
            Ok(o) => {
                procs::install_signal_handlers();
                match harness(o) {
                    Ok(true) => 0,
                    Ok(false) => 3,
                    Err(e) if procs::interrupted() => {
                        eprintln!("interrupted ({e}); everything stopped");
                        130
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                }
            }
        },
    };
    std::process::exit(code);
}

/// Shared for one invocation: the broker, the binaries, the run directory.
struct Env {
    opts: Opts,
    dir: PathBuf,
    exe: PathBuf,
    server_bin: PathBuf,
    tansu: Option<targets::Tansu>,
    kafka: String,
    runs: usize,
    records: Vec<Value>,
    all_ok: bool,
}

fn harness(opts: Opts) -> Result<bool, String> {
    const ALL: [&str; 5] = ["fanout", "keyed", "idle", "latency", "reconnect"];
    let scenarios: Vec<&'static str> = match opts.scenario.as_str() {
        "all" => ALL.to_vec(),
        s if ALL.contains(&s) => ALL.iter().copied().filter(|a| *a == s).collect(),
        "soak" => vec!["soak"],
        "" => return Err("no scenario given (see --help)".into()),
        other => return Err(format!("unknown scenario {other} (see --help)")),
    };
    let dir = std::env::temp_dir().join(format!(
        "sse-kafka-bench-{}-{}",
        std::process::id(),
        payload::mono_ns() / 1_000_000
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let server_bin = targets::server_binary(opts.server.as_deref())?;
    let (tansu, kafka) = match &opts.kafka {
        Some(_) if opts.fetch_max_wait_ms.is_some() => {
            return Err("--fetch-max-wait-ms needs the harness's own tansu (drop --kafka)".into())
        }
        Some(k) => (None, k.clone()),
        None => {
            let t = targets::start_tansu(&dir, opts.fetch_max_wait_ms)?;
            let b = t.bootstrap.clone();
            (Some(t), b)
        }
    };
    eprintln!(
        "==> run directory {}; server {}; kafka {kafka}",
        dir.display(),
        server_bin.display()
    );
    let mut env = Env {
        opts,
        dir: dir.clone(),
        exe,
        server_bin,
        tansu,
        kafka,
        runs: 0,
        records: Vec::new(),
        all_ok: true,
    };
    let result = (|| {
        for s in scenarios {
            scenario(&mut env, s)?;
        }
        Ok::<(), String>(())
    })();
    let svg = env
        .opts
        .svg
        .clone()
        .unwrap_or_else(|| env.opts.results.with_file_name("latency.svg"));
    if !env.records.is_empty() {
        let r = report::ratios(&env.records);
        if !r.is_empty() {
            println!("\n== ratios (same run) ==\n{r}");
        }
        report::write_svg(&env.opts.results, &svg)?;
        println!(
            "results appended to {}; plot {}",
            env.opts.results.display(),
            svg.display()
        );
    }
    drop(env.tansu.take());
    let keep = env.opts.keep || result.is_err() || !env.all_ok;
    if keep {
        eprintln!("logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| env.all_ok)
}

/// Stream counts, feed and baselines of a scenario, with the options applied.
fn scenario(env: &mut Env, name: &str) -> Result<(), String> {
    let o = env.opts.clone();
    type Defaults = (Vec<usize>, Box<dyn Fn(usize) -> f64>, f64, Vec<Kind>);
    let (sizes, default_rate, default_duration, baselines): Defaults = match name {
        // Rates chosen so that each fan-out size delivers about 200,000 events/s.
        "fanout" => (
            vec![1_000, 10_000],
            Box::new(|n| (200_000.0 / n as f64).max(1.0)),
            20.0,
            vec![Kind::Raw, Kind::Nchan],
        ),
        "keyed" => (vec![10_000], Box::new(|_| 2_000.0), 20.0, vec![]),
        "idle" => (vec![19_000], Box::new(|_| 0.0), 0.0, vec![Kind::Raw]),
        "latency" => (
            vec![100],
            Box::new(|_| 1_000.0),
            30.0,
            vec![Kind::Raw, Kind::Nchan],
        ),
        "reconnect" => (vec![1_000], Box::new(|_| 200.0), 20.0, vec![]),
        "soak" => (vec![19_000], Box::new(|_| 5.0), 1800.0, vec![]),
        _ => unreachable!(),
    };
    let sizes = o.streams.clone().unwrap_or(sizes);
    let baselines = o.baselines.clone().unwrap_or(baselines);
    let mut records_here = Vec::new();
    for streams in sizes {
        let mut label = if matches!(name, "fanout") {
            format!("{name}-{streams}")
        } else {
            name.to_string()
        };
        if let Some(ms) = o.fetch_max_wait_ms {
            label += &format!("-fw{ms}");
        }
        if o.http2 {
            label += "-h2";
        }
        let feed = if name == "idle" {
            None
        } else {
            let rate = o.rate.unwrap_or_else(|| default_rate(streams));
            let records = o
                .records
                .unwrap_or_else(|| (rate * o.duration.unwrap_or(default_duration)).round() as u64);
            let mode = if name == "keyed" {
                Mode::Keys {
                    keys: o.keys.unwrap_or(streams as u64),
                    partitions: o.partitions,
                }
            } else {
                Mode::Partitions(o.partitions)
            };
            Some(FeedSpec {
                records,
                rate,
                size: o.record_size,
                mode,
            })
        };
        let mut kinds = vec![Kind::Ours];
        kinds.extend(baselines.iter().copied());
        for kind in kinds {
            procs::check_interrupt()?;
            match one_run(env, name, &label, kind, streams, feed) {
                Ok(Some(rec)) => {
                    print!("{}", report::summary(&rec));
                    if rec["delivery"]["integrity_ok"].as_bool() != Some(true) {
                        env.all_ok = false;
                    }
                    report::append(&env.opts.results, &rec)?;
                    records_here.push(rec.clone());
                    env.records.push(rec);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("{label} / {}: {e}", kind.name())),
            }
        }
    }
    let r = report::ratios(&records_here);
    if !r.is_empty() {
        print!("{r}");
    }
    Ok(())
}

fn one_run(
    env: &mut Env,
    name: &str,
    label: &str,
    kind: Kind,
    streams: usize,
    feed: Option<FeedSpec>,
) -> Result<Option<Value>, String> {
    env.runs += 1;
    let o = env.opts.clone();
    let dir = run::run_dir(
        &env.dir,
        &format!("{:02}-{label}-{}", env.runs, kind.name()),
    )?;
    let keyed = name == "keyed";
    // Baselines carry one sequence (no partitions, no keys).
    let feed_for = |k: Kind| -> Option<FeedSpec> {
        feed.map(|f| {
            if k == Kind::Ours {
                f
            } else {
                FeedSpec {
                    mode: Mode::Partitions(1),
                    ..f
                }
            }
        })
    };
    let spec = |path: String| RunSpec {
        scenario: label.to_string(),
        kind,
        streams,
        path,
        feed: feed_for(kind),
        keyed: keyed && kind == Kind::Ours,
        reconnect_ms: if name == "reconnect" {
            o.reconnect_ms
        } else {
            0
        },
        drop_one: o.drop_one,
        dup_one: o.dup_one,
        client_procs: o
            .client_procs
            .unwrap_or_else(|| run::default_client_procs(streams)),
        client_threads: o.client_threads,
        src_addrs: o.src_addrs,
        drain: Duration::from_millis(o.drain_ms),
        settle: Duration::from_millis(if name == "idle" { 3000 } else { 1000 }),
        workers: o.workers,
        raw_burst_ms: o.raw_burst_ms,
        proto: if o.http2 && kind == Kind::Ours {
            client::Proto::Http2
        } else {
            client::Proto::Http1
        },
        streams_per_conn: o.streams_per_conn,
    };
    let mut rec = match kind {
        Kind::Ours => {
            let topic = format!("bench-{label}-{}", env.runs);
            targets::create_topic(&env.kafka, &topic, o.partitions as i32)?;
            let mut server = targets::start_ours(
                &env.server_bin,
                &dir,
                &env.kafka,
                o.workers,
                keyed,
                o.http2,
                &o.server_args,
            )?;
            let path = if keyed {
                format!("/{topic}/k{{i}}")
            } else {
                format!("/{topic}")
            };
            let warm = if keyed {
                format!("/{topic}/warm-up")
            } else {
                format!("/{topic}")
            };
            let target = Target {
                addr: server.addr,
                pids: vec![server.proc.pid()],
                broker_pid: env.tansu.as_ref().map(|t| t.proc.pid()),
                metrics: server.metrics,
                publisher: Publisher::Kafka {
                    bootstrap: &env.kafka,
                    topic: &topic,
                },
                warm_path: Some(warm),
            };
            let monitor = server
                .metrics
                .filter(|_| name == "soak")
                .map(|m| soak::Monitor::start(m, server.proc.pid(), Duration::from_secs(60)));
            let r = run::execute(&spec(path), target, &dir, &env.exe);
            let per_minute = monitor.map(soak::Monitor::stop);
            let alive = server.proc.check_alive();
            server.proc.stop();
            let mut rec = r.map_err(|e| format!("{e}{}", server.proc.log_tail(30)))?;
            if let Err(e) = alive {
                rec["server_exited"] = Value::String(e);
            }
            if let Some(rows) = per_minute {
                rec["per_minute"] = Value::Array(rows);
            }
            rec
        }
        Kind::Raw => {
            let mut raw = targets::RawServer::start(&dir, o.workers)?;
            let pid = raw.proc.pid();
            let addr = raw.addr;
            let target = Target {
                addr,
                pids: vec![pid],
                broker_pid: None,
                metrics: None,
                publisher: Publisher::Raw(&mut raw),
                warm_path: Some("/".into()),
            };
            run::execute(&spec("/".into()), target, &dir, &env.exe)?
        }
        Kind::Nchan => {
            let nchan = match targets::Nchan::start(&dir, o.workers, o.install) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("    skipping the Nchan baseline: {e}");
                    return Ok(None);
                }
            };
            let target = Target {
                addr: nchan.addr,
                pids: nchan.pids(),
                broker_pid: None,
                metrics: None,
                publisher: Publisher::Http {
                    addr: nchan.addr,
                    path: targets::Nchan::PUB,
                },
                warm_path: None,
            };
            run::execute(&spec(targets::Nchan::SUB.into()), target, &dir, &env.exe)?
        }
    };
    rec["run_dir"] = Value::String(dir.display().to_string());
    if let Some(t) = &o.tag {
        rec["tag"] = Value::String(t.clone());
    }
    rec["faults"] = serde_json::json!({"drop_one": o.drop_one, "dup_one": o.dup_one});
    rec["server_args"] = serde_json::json!(o.server_args);
    rec["fetch_max_wait_ms"] = serde_json::json!(o.fetch_max_wait_ms);
    Ok(Some(rec))
}
