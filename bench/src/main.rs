//! `sse-kafka-bench`: the benchmark harness of sse-kafka. See bench/README.md.

#![deny(clippy::undocumented_unsafe_blocks)]

mod client;
mod feed;
mod h2;
mod mock;
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
    sse-kafka-bench mock-cluster [--brokers N]   (helper: librdkafka's mock cluster; prints
                           `bootstrap HOST:PORT`, `topic NAME P` on stdin creates a topic,
                           stops when stdin closes)

SCENARIOS (each starts tansu, the server, the baselines and the clients it needs):
    fanout      1 topic, 256-byte records, the saturating loads: 1,000 streams × 1,000 records/s
                and 10,000 × 100/s (1,000,000 deliveries/s each), HTTP/1.1 and h2, tansu (baseline: raw)
    keyed       10,000 keys, one key per stream (route /{topic}/{key})      (no baseline)
    idle        19,000 idle streams: bytes per stream                       (baseline: raw)
    latency     librdkafka's mock cluster, fetch wait 2 ms (server and broker floor alike):
                100 then 1,000 streams × 1,000 records/s                    (baseline: raw)
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
    --fetch-max-wait-ms MS tansu scenarios: put a relay in front of tansu that caps every Fetch's
                           max_wait_ms at MS (tansu 0.6 holds each Fetch for about half its max wait
                           even when data is there; real Kafka answers at once). latency: the fetch
                           wait of the server (--fetch-max-wait-ms) and of the broker-floor consumer
                           on the mock cluster (default 2). Scenario labels get `-fwMS`.
    --behind-margin-ms MS|off
                           fanout and latency: a run whose server-added p99 (ours − broker floor)
                           exceeds the raw floor's p99 by more than MS fell behind (exit status 4);
                           default 50 (fanout), 5 (latency); `off` only reports
    --server PATH          sse-kafka binary (default target/release/sse-kafka, built when missing)
    --server-arg ARG       extra server argument (repeatable), e.g. --server-arg=--stream-budget=4194304
    --results FILE         JSON lines file (default bench/results/results.jsonl)
    --svg FILE             latency plot (default: latency.svg next to the results)
    --tag TEXT             free text stored in each record
    --raw-burst-ms MS      raw floor releases events in batches every MS (mimics a broker's fetch
                           cadence; default 0 = one by one as they are due)
    --keep                 keep the run directory (logs, configs) even on success
    --proto h1|h2|h1,h2    protocols our server's clients speak, one run each (default: h1,h2 for
                           fanout, h1 otherwise); h2 = prior knowledge, cleartext, several streams
                           per connection; labels get `-h2`. Baselines stay HTTP/1.1
    --http2                same as --proto h2
    --streams-per-conn N   HTTP/2: streams per connection (default 10)
    --drop-one             fault injection: client drops one event (must report exactly 1 lost)
    --dup-one              fault injection: client counts one event twice (1 duplicate)

Exit status: 0 when every run delivered exactly once and kept up, 3 when a run lost,
duplicated or reordered events (or streams failed), 4 when every event arrived but a run fell
behind (see --behind-margin-ms), 1 on errors, 130 on Ctrl-C.
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
    protos: Option<Vec<client::Proto>>,
    streams_per_conn: usize,
    /// None: the scenario's default; Some(None): `off`.
    behind_margin_ms: Option<Option<f64>>,
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
        protos: None,
        streams_per_conn: 10,
        behind_margin_ms: None,
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
            "--http2" => o.protos = Some(vec![client::Proto::Http2]),
            "--proto" => {
                let mut list = Vec::new();
                for p in v()?.split(',') {
                    let p = match p.trim() {
                        "h2" | "http2" | "2" => client::Proto::Http2,
                        "h1" | "http1" | "1.1" => client::Proto::Http1,
                        other => return Err(format!("--proto {other}: h1, h2 or h1,h2")),
                    };
                    if !list.contains(&p) {
                        list.push(p);
                    }
                }
                o.protos = Some(list);
            }
            "--behind-margin-ms" => {
                o.behind_margin_ms = Some(match v()?.as_str() {
                    "off" | "none" => None,
                    s => Some(num::<f64>(&name, s.to_string())?),
                })
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
        Some("mock-cluster") => match mock::run(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mock-cluster: {e}");
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
                    Ok(Verdict::Ok) => 0,
                    Ok(Verdict::Integrity) => 3,
                    Ok(Verdict::Behind) => 4,
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

/// How a whole invocation went (the exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Every event arrived exactly once, but a run's server-added p99 went past its limit.
    Behind,
    /// A run lost, duplicated or reordered events (or streams failed).
    Integrity,
}

/// Shared for one invocation: the broker, the binaries, the run directory.
struct Env {
    opts: Opts,
    dir: PathBuf,
    exe: PathBuf,
    server_bin: PathBuf,
    /// Started on first use (the latency scenario runs on the mock cluster instead).
    tansu: Option<targets::Tansu>,
    runs: usize,
    records: Vec<Value>,
    integrity_ok: bool,
    behind: bool,
}

/// The Kafka a scenario's feed goes through.
struct KafkaSide {
    bootstrap: String,
    /// The broker's process (its CPU is reported), when the harness started it.
    pid: Option<u32>,
    /// "tansu", "mock-cluster" or "kafka" (given with --kafka).
    name: &'static str,
    /// Fetch wait of the broker-floor consumer (ms).
    floor_wait_ms: i32,
    /// Extra server arguments this broker needs (the mock cluster's short fetch wait).
    server_args: Vec<String>,
    mock: Option<mock::MockClusterProc>,
}

impl KafkaSide {
    fn create_topic(&mut self, name: &str, partitions: i32) -> Result<(), String> {
        match &mut self.mock {
            Some(m) => m.create_topic(name, partitions),
            None => targets::create_topic(&self.bootstrap, name, partitions),
        }
    }
}

/// The default fetch wait on the mock cluster (server and broker floor alike): the mock
/// cluster, like tansu, does not answer a long poll when data arrives, so a short wait keeps
/// its own share of the latency to a couple of milliseconds.
const MOCK_FETCH_WAIT_MS: i32 = 2;

fn harness(opts: Opts) -> Result<Verdict, String> {
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
    eprintln!(
        "==> run directory {}; server {}",
        dir.display(),
        server_bin.display()
    );
    let mut env = Env {
        opts,
        dir: dir.clone(),
        exe,
        server_bin,
        tansu: None,
        runs: 0,
        records: Vec::new(),
        integrity_ok: true,
        behind: false,
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
        let v = report::verdicts(&env.records);
        if !v.is_empty() {
            println!("== keeping up (server-added p99 vs raw floor p99 + margin) ==\n{v}");
        }
        report::write_svg(&env.opts.results, &svg)?;
        println!(
            "results appended to {}; plot {}",
            env.opts.results.display(),
            svg.display()
        );
    }
    drop(env.tansu.take());
    let verdict = if !env.integrity_ok {
        Verdict::Integrity
    } else if env.behind {
        Verdict::Behind
    } else {
        Verdict::Ok
    };
    let keep = env.opts.keep || result.is_err() || verdict != Verdict::Ok;
    if keep {
        eprintln!("logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| verdict)
}

/// The broker a scenario uses: the mock cluster for `latency` (unless --kafka), else tansu
/// (started once, on first use) or the --kafka cluster.
fn kafka_for(env: &mut Env, name: &str) -> Result<KafkaSide, String> {
    let o = &env.opts;
    if let Some(k) = &o.kafka {
        if o.fetch_max_wait_ms.is_some() && name != "latency" {
            return Err("--fetch-max-wait-ms needs the harness's own tansu (drop --kafka)".into());
        }
        return Ok(KafkaSide {
            bootstrap: k.clone(),
            pid: None,
            name: "kafka",
            floor_wait_ms: o.fetch_max_wait_ms.unwrap_or(500),
            server_args: o
                .fetch_max_wait_ms
                .map(|ms| vec![format!("--fetch-max-wait-ms={ms}")])
                .unwrap_or_default(),
            mock: None,
        });
    }
    if name == "latency" {
        let wait = o.fetch_max_wait_ms.unwrap_or(MOCK_FETCH_WAIT_MS);
        let m = mock::MockClusterProc::start(&env.dir)?;
        eprintln!("==> mock cluster {} (fetch wait {wait} ms)", m.bootstrap);
        return Ok(KafkaSide {
            bootstrap: m.bootstrap.clone(),
            pid: Some(m.proc.pid()),
            name: "mock-cluster",
            floor_wait_ms: wait,
            server_args: vec![format!("--fetch-max-wait-ms={wait}")],
            mock: Some(m),
        });
    }
    if env.tansu.is_none() {
        let t = targets::start_tansu(&env.dir, o.fetch_max_wait_ms)?;
        eprintln!("==> tansu {}", t.bootstrap);
        env.tansu = Some(t);
    }
    let t = env.tansu.as_ref().unwrap();
    Ok(KafkaSide {
        bootstrap: t.bootstrap.clone(),
        pid: Some(t.proc.pid()),
        name: "tansu",
        // The relay (if any) caps it for the floor as for the server.
        floor_wait_ms: 500,
        server_args: Vec::new(),
        mock: None,
    })
}

/// The margin past which a run fell behind: --behind-margin-ms, else the scenario's default;
/// None when the scenario has no such check (or `off`).
fn behind_margin_ms(o: &Opts, name: &str) -> Option<f64> {
    let default = match name {
        // tansu answers in 250–500 ms batches; 50 ms is well above the noise of its p99
        // between two consumers over 20 s, and far below a stream falling seconds behind.
        "fanout" => 50.0,
        // Trading-feed target: the server adds at most a millisecond at p99; 5 ms over the
        // raw floor's p99 is a stream that fell behind.
        "latency" => 5.0,
        _ => return None,
    };
    o.behind_margin_ms.unwrap_or(Some(default))
}

/// Stream counts, feed and baselines of a scenario, with the options applied.
fn scenario(env: &mut Env, name: &str) -> Result<(), String> {
    let o = env.opts.clone();
    type Defaults = (Vec<usize>, Box<dyn Fn(usize) -> f64>, f64, Vec<Kind>);
    let (sizes, default_rate, default_duration, baselines): Defaults = match name {
        // The saturating loads: 1,000,000 deliveries/s at each size, so that a stream's own
        // rate (1,000/s, then 100/s) is what changes.
        "fanout" => (
            vec![1_000, 10_000],
            Box::new(|n| (1_000_000.0 / n as f64).max(1.0)),
            20.0,
            vec![Kind::Raw],
        ),
        "keyed" => (vec![10_000], Box::new(|_| 2_000.0), 20.0, vec![]),
        "idle" => (vec![19_000], Box::new(|_| 0.0), 0.0, vec![Kind::Raw]),
        "latency" => (
            vec![100, 1_000],
            Box::new(|_| 1_000.0),
            20.0,
            vec![Kind::Raw],
        ),
        "reconnect" => (vec![1_000], Box::new(|_| 200.0), 20.0, vec![]),
        "soak" => (vec![19_000], Box::new(|_| 5.0), 1800.0, vec![]),
        _ => unreachable!(),
    };
    let protos = o.protos.clone().unwrap_or_else(|| {
        if name == "fanout" {
            vec![client::Proto::Http1, client::Proto::Http2]
        } else {
            vec![client::Proto::Http1]
        }
    });
    let sizes = o.streams.clone().unwrap_or(sizes);
    let baselines = o.baselines.clone().unwrap_or(baselines);
    let margin = behind_margin_ms(&o, name);
    let mut kafka = kafka_for(env, name)?;
    let mut records_here = Vec::new();
    for streams in sizes {
        // Runs of one group (same load) are compared with each other: ours over each protocol
        // and the baselines.
        let mut group = if matches!(name, "fanout" | "latency") {
            format!("{name}-{streams}")
        } else {
            name.to_string()
        };
        if let Some(ms) = o
            .fetch_max_wait_ms
            .or(kafka.mock.as_ref().map(|_| kafka.floor_wait_ms))
        {
            group += &format!("-fw{ms}");
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
        let mut runs: Vec<(Kind, client::Proto)> =
            protos.iter().map(|p| (Kind::Ours, *p)).collect();
        runs.extend(baselines.iter().map(|k| (*k, client::Proto::Http1)));
        let mut group_records = Vec::new();
        for (kind, proto) in runs {
            procs::check_interrupt()?;
            let label = if kind == Kind::Ours && proto == client::Proto::Http2 {
                format!("{group}-h2")
            } else {
                group.clone()
            };
            let run = RunOf {
                name,
                label: &label,
                kind,
                proto,
                streams,
                feed,
            };
            match one_run(env, &run, &mut kafka) {
                Ok(Some(mut rec)) => {
                    rec["group"] = Value::String(group.clone());
                    rec["broker"] = Value::String(kafka.name.into());
                    rec["broker_floor_fetch_wait_ms"] = serde_json::json!(kafka.floor_wait_ms);
                    rec["server_added_us"] = report::server_added(&rec);
                    print!("{}", report::summary(&rec));
                    if rec["delivery"]["integrity_ok"].as_bool() != Some(true) {
                        env.integrity_ok = false;
                    }
                    group_records.push(rec);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("{label} / {}: {e}", kind.name())),
            }
        }
        // Whether ours kept up, now that the raw floor of the same load is known.
        report::judge(&mut group_records, margin);
        for rec in group_records {
            if rec["verdict"]["fell_behind"].as_bool() == Some(true) {
                env.behind = true;
            }
            report::append(&env.opts.results, &rec)?;
            records_here.push(rec.clone());
            env.records.push(rec);
        }
    }
    let r = report::ratios(&records_here);
    if !r.is_empty() {
        print!("{r}");
    }
    let v = report::verdicts(&records_here);
    if !v.is_empty() {
        print!("{v}");
    }
    Ok(())
}

/// One run of a scenario: what and against whom.
struct RunOf<'a> {
    name: &'a str,
    label: &'a str,
    kind: Kind,
    proto: client::Proto,
    streams: usize,
    feed: Option<FeedSpec>,
}

fn one_run(env: &mut Env, run: &RunOf, kafka: &mut KafkaSide) -> Result<Option<Value>, String> {
    let RunOf {
        name,
        label,
        kind,
        proto,
        streams,
        feed,
    } = *run;
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
    let floor_wait_ms = kafka.floor_wait_ms;
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
        settle: Duration::from_millis(if name == "idle" { 5000 } else { 1000 }),
        workers: o.workers,
        raw_burst_ms: o.raw_burst_ms,
        proto,
        streams_per_conn: o.streams_per_conn,
        floor_wait_ms,
    };
    let http2 = proto == client::Proto::Http2;
    let mut server_args = o.server_args.clone();
    let mut rec = match kind {
        Kind::Ours => {
            let topic = format!("bench-{label}-{}", env.runs);
            kafka.create_topic(&topic, o.partitions as i32)?;
            server_args = kafka.server_args.clone();
            server_args.extend(o.server_args.iter().cloned());
            let mut server = targets::start_ours(
                &env.server_bin,
                &dir,
                &kafka.bootstrap,
                o.workers,
                keyed,
                http2,
                &server_args,
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
                broker_pid: kafka.pid,
                metrics: server.metrics,
                publisher: Publisher::Kafka {
                    bootstrap: &kafka.bootstrap,
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
    rec["server_args"] = serde_json::json!(server_args);
    rec["fetch_max_wait_ms"] = serde_json::json!(o.fetch_max_wait_ms);
    Ok(Some(rec))
}
