//! Smoke runs of every benchmark scenario at a tiny size (seconds, not minutes): they prove the
//! harness counts correctly — exactly-once delivery is reported as such, a deliberately dropped
//! event as exactly 1 lost, a deliberately repeated one as exactly 1 duplicate — and that every
//! piece starts, feeds, measures and cleans up. No timing is asserted.
//!
//! Needs what the rest of the suite needs (tansu, see scripts/test). The Nchan smoke runs only
//! when nginx with the Nchan module is installed (Debian: nginx libnginx-mod-nchan).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sse-kafka-bench"))
}

/// The server binary next to the bench binary (cargo test --workspace builds both); built
/// with cargo when it is not there (cargo test -p sse-kafka-bench).
fn server() -> PathBuf {
    let dir = bench().parent().unwrap().to_path_buf();
    let bin = dir.join("sse-kafka");
    if !bin.is_file() {
        let profile_release = dir.ends_with("release");
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["build", "-p", "sse-kafka", "--bin", "sse-kafka"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap());
        if profile_release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "cargo build -p sse-kafka failed");
    }
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sse-kafka-bench-smoke-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Outcome {
    code: i32,
    records: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn get(&self, target: &str) -> &Value {
        self.records
            .iter()
            .find(|r| r["target"] == target)
            .unwrap_or_else(|| panic!("no {target} record\n{}", self.explain()))
    }
    /// Our run over `protocol` ("http/1.1" or "h2").
    fn ours(&self, protocol: &str) -> &Value {
        self.records
            .iter()
            .find(|r| r["target"] == "sse-kafka" && r["protocol"] == protocol)
            .unwrap_or_else(|| panic!("no sse-kafka {protocol} record\n{}", self.explain()))
    }
    fn explain(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(name: &str, args: &[&str]) -> Outcome {
    let dir = scratch(name);
    let results = dir.join("results.jsonl");
    let out = Command::new(bench())
        .args(args)
        .arg("--server")
        .arg(server())
        .arg("--results")
        .arg(&results)
        .args(["--no-install", "--drain-ms", "10000"])
        // Tiny runs on a shared machine: report whether ours kept up, never fail on it
        // (report.rs unit-tests the verdict; no timed assertion here).
        .args(["--behind-margin-ms", "off"])
        .output()
        .expect("run sse-kafka-bench");
    let records = std::fs::read_to_string(&results)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON record"))
        .collect();
    let o = Outcome {
        code: out.status.code().unwrap_or(-1),
        records,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap_or_default();
    if o.code == 0 || o.code == 3 {
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "SVG plot\n{}",
            o.explain()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    o
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Every expected event arrived exactly once, in order.
fn assert_exact(o: &Outcome, target: &str, expected: u64) {
    let r = o.get(target);
    let d = &r["delivery"];
    let ctx = || format!("{target}: {d}\n{}", o.explain());
    assert_eq!(n(&r["failed_streams"]), 0, "{}", ctx());
    assert_eq!(n(&d["expected"]), expected, "{}", ctx());
    assert_eq!(n(&d["unique"]), expected, "{}", ctx());
    assert_eq!(n(&d["lost"]), 0, "{}", ctx());
    assert_eq!(n(&d["duplicates"]), 0, "{}", ctx());
    assert_eq!(n(&d["out_of_order"]), 0, "{}", ctx());
    assert_eq!(n(&d["unexpected"]), 0, "{}", ctx());
    assert_eq!(d["integrity_ok"], true, "{}", ctx());
    if expected > 0 {
        assert_eq!(n(&r["latency"]["count"]), n(&d["events"]), "{}", ctx());
        assert!(r["latency"]["p50_us"].as_f64().unwrap() > 0.0, "{}", ctx());
    }
}

/// The fan-out scenario's defaults: ours over HTTP/1.1 and h2, then the raw floor, in one run.
#[test]
fn fanout_counts_exactly_against_ours_and_the_raw_floor() {
    let o = run(
        "fanout",
        &[
            "fanout",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "500",
            "--partitions",
            "2",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "raw-floor", 500);
    for protocol in ["http/1.1", "h2"] {
        let ours = o.ours(protocol);
        assert_eq!(ours["group"], "fanout-10", "{}", o.explain());
        assert_eq!(ours["broker"], "tansu", "{}", o.explain());
        let d = &ours["delivery"];
        assert_eq!(n(&d["unique"]), 500, "{protocol}: {d}\n{}", o.explain());
        assert_eq!(d["integrity_ok"], true, "{protocol}: {d}\n{}", o.explain());
        // The broker floor consumer saw every record; the server's /metrics was scraped and
        // parsed; what the server adds and whether it kept up are in the record.
        assert_eq!(
            n(&ours["broker_floor_latency"]["received"]),
            50,
            "{}",
            o.explain()
        );
        assert!(
            ours["server_metrics"]["events_sent_total"]
                .as_f64()
                .unwrap()
                >= 500.0,
            "{}",
            o.explain()
        );
        let added = &ours["server_added_us"];
        let (l, b) = (&ours["latency"], &ours["broker_floor_latency"]);
        assert_eq!(
            added["p99_us"].as_f64().unwrap(),
            l["p99_us"].as_f64().unwrap() - b["p99_us"].as_f64().unwrap(),
            "{}",
            o.explain()
        );
        assert!(
            ours["verdict"]["raw_floor_p99_us"].is_number(),
            "{}",
            o.explain()
        );
        assert!(n(&ours["memory"]["rss_peak_kib"]) > 0, "{}", o.explain());
    }
    assert!(
        o.stdout.contains("ours/raw-floor"),
        "ratios printed\n{}",
        o.explain()
    );
    assert!(
        o.stdout.contains("server adds (ours − broker floor)"),
        "{}",
        o.explain()
    );
}

#[test]
fn a_dropped_event_is_reported_as_exactly_one_lost() {
    let o = run(
        "drop",
        &[
            "fanout",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "500",
            "--baselines",
            "raw",
            "--proto",
            "h1",
            "--drop-one",
        ],
    );
    assert_eq!(o.code, 3, "integrity failure exit status\n{}", o.explain());
    for target in ["sse-kafka", "raw-floor"] {
        let d = &o.get(target)["delivery"];
        assert_eq!(n(&d["lost"]), 1, "{target}: {d}\n{}", o.explain());
        assert_eq!(n(&d["streams_with_loss"]), 1, "{target}: {d}");
        assert_eq!(n(&d["unique"]), 499, "{target}: {d}");
        assert_eq!(n(&d["duplicates"]), 0, "{target}: {d}");
        assert_eq!(n(&d["out_of_order"]), 0, "{target}: {d}");
        assert_eq!(d["integrity_ok"], false);
    }
    assert!(o.stdout.contains("INTEGRITY FAILURE"), "{}", o.explain());
}

#[test]
fn a_repeated_event_is_reported_as_exactly_one_duplicate() {
    let o = run(
        "dup",
        &[
            "latency",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "1000",
            "--baselines",
            "raw",
            "--dup-one",
        ],
    );
    assert_eq!(o.code, 3, "{}", o.explain());
    for target in ["sse-kafka", "raw-floor"] {
        let d = &o.get(target)["delivery"];
        assert_eq!(n(&d["duplicates"]), 1, "{target}: {d}\n{}", o.explain());
        assert_eq!(n(&d["lost"]), 0, "{target}: {d}");
        assert_eq!(n(&d["unique"]), 500, "{target}: {d}");
    }
}

/// The latency scenario runs on librdkafka's mock cluster (a helper process) with a 2 ms fetch
/// wait for the server and for the plain consumer beside it.
#[test]
fn latency_scenario_on_the_mock_cluster_counts_exactly() {
    let o = run(
        "latency",
        &[
            "latency",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "1000",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "sse-kafka", 500);
    assert_exact(&o, "raw-floor", 500);
    let ours = o.get("sse-kafka");
    assert_eq!(ours["broker"], "mock-cluster", "{}", o.explain());
    assert_eq!(ours["scenario"], "latency-10-fw2", "{}", o.explain());
    assert_eq!(ours["broker_floor_fetch_wait_ms"], 2, "{}", o.explain());
    assert!(
        ours["server_args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--fetch-max-wait-ms=2"),
        "{}",
        o.explain()
    );
    assert_eq!(
        n(&ours["broker_floor_latency"]["received"]),
        50,
        "{}",
        o.explain()
    );
    assert!(
        ours["server_added_us"]["p99_us"].is_number(),
        "{}",
        o.explain()
    );
}

#[test]
fn keyed_streams_get_only_their_key() {
    // 10 keys, 5 records each; stream i reads /{topic}/k{i}.
    let o = run(
        "keyed",
        &[
            "keyed",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "500",
            "--partitions",
            "2",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "sse-kafka", 50);
}

#[test]
fn idle_streams_are_opened_and_measured() {
    let o = run(
        "idle",
        &[
            "idle",
            "--streams",
            "40",
            "--client-procs",
            "2",
            "--baselines",
            "raw",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    for target in ["sse-kafka", "raw-floor"] {
        let r = o.get(target);
        assert_eq!(n(&r["opened"]), 40, "{}", o.explain());
        assert_eq!(n(&r["client_procs"]), 2, "{}", o.explain());
        assert!(
            r["memory"]["bytes_per_stream"].is_number(),
            "{}",
            o.explain()
        );
        assert!(
            n(&r["memory"]["rss_with_streams_kib"]) > 0,
            "{}",
            o.explain()
        );
    }
}

#[test]
fn reconnecting_streams_resume_without_loss() {
    let o = run(
        "reconnect",
        &[
            "reconnect",
            "--streams",
            "10",
            "--records",
            "300",
            "--rate",
            "200",
            "--reconnect-ms",
            "300",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "sse-kafka", 3000);
    let d = &o.get("sse-kafka")["delivery"];
    assert!(n(&d["deliberate_drops"]) > 0, "streams were dropped: {d}");
    assert!(n(&d["connects"]) > 10, "and reconnected: {d}");
}

#[test]
fn nchan_baseline_when_installed() {
    if !(Path::new("/usr/lib/nginx/modules/ngx_nchan_module.so").is_file()
        || Path::new("/usr/share/nginx/modules/ngx_nchan_module.so").is_file())
    {
        eprintln!("SKIPPED: nginx with Nchan is not installed (Debian: apt-get install nginx libnginx-mod-nchan)");
        return;
    }
    let o = run(
        "nchan",
        &[
            "fanout",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "500",
            "--baselines",
            "nchan",
            "--proto",
            "h1",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "sse-kafka", 500);
    assert_exact(&o, "nchan", 500);
    assert!(o.stdout.contains("ours/nchan"), "{}", o.explain());
}

/// HTTP/2 (prior knowledge): 20 streams, 2 and then 10 per connection, exactly once; the
/// record says which protocol the run used.
#[test]
fn fanout_over_http2_counts_exactly() {
    for per_conn in ["2", "10"] {
        let o = run(
            &format!("fanout-h2-{per_conn}"),
            &[
                "fanout",
                "--http2",
                "--streams-per-conn",
                per_conn,
                "--streams",
                "20",
                "--records",
                "50",
                "--rate",
                "500",
                "--partitions",
                "2",
                "--baselines",
                "none",
            ],
        );
        assert_eq!(o.code, 0, "{}", o.explain());
        assert_exact(&o, "sse-kafka", 1000);
        let r = o.get("sse-kafka");
        assert_eq!(r["protocol"], "h2", "{}", o.explain());
        assert_eq!(
            r["streams_per_conn"].as_u64(),
            per_conn.parse().ok(),
            "{}",
            o.explain()
        );
        assert!(
            r["scenario"].as_str().unwrap().ends_with("-h2"),
            "{}",
            o.explain()
        );
    }
}

#[test]
fn a_dropped_event_is_reported_as_exactly_one_lost_over_http2() {
    let o = run(
        "drop-h2",
        &[
            "fanout",
            "--http2",
            "--streams-per-conn",
            "5",
            "--streams",
            "10",
            "--records",
            "50",
            "--rate",
            "500",
            "--baselines",
            "none",
            "--drop-one",
        ],
    );
    assert_eq!(o.code, 3, "integrity failure exit status\n{}", o.explain());
    let d = &o.get("sse-kafka")["delivery"];
    assert_eq!(n(&d["lost"]), 1, "{d}\n{}", o.explain());
    assert_eq!(n(&d["streams_with_loss"]), 1, "{d}");
    assert_eq!(n(&d["unique"]), 499, "{d}");
    assert_eq!(n(&d["duplicates"]), 0, "{d}");
    assert_eq!(n(&d["out_of_order"]), 0, "{d}");
}

/// Streams cancelled by the client and resumed by Last-Event-ID on new HTTP/2 streams of the
/// same connection lose nothing.
#[test]
fn reconnecting_streams_resume_without_loss_over_http2() {
    let o = run(
        "reconnect-h2",
        &[
            "reconnect",
            "--http2",
            "--streams",
            "10",
            "--streams-per-conn",
            "5",
            "--records",
            "300",
            "--rate",
            "200",
            "--reconnect-ms",
            "300",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.explain());
    assert_exact(&o, "sse-kafka", 3000);
    let d = &o.get("sse-kafka")["delivery"];
    assert!(n(&d["deliberate_drops"]) > 0, "streams were dropped: {d}");
    assert!(n(&d["connects"]) > 10, "and reopened: {d}");
}
