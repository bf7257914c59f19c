//! The command line: `--help`, `--version`, `check --config FILE` (exit 0 valid, 2 invalid,
//! each error as `<yaml.path>: <message>`), and a bad config at start.

mod common;
use common::*;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(server_bin())
        .args(args)
        .output()
        .expect("run sse-kafka")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &tempfile::TempDir, yaml: &str) -> String {
    let p = dir.path().join("zilla.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for word in [
        "--config",
        "check",
        "--kafka",
        "--listen",
        "--workers",
        "--heartbeat",
        "--metadata-timeout-ms",
    ] {
        assert!(t.contains(word), "--help does not mention {word}:\n{t}");
    }
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(text(&o).contains(env!("CARGO_PKG_VERSION")), "{}", text(&o));
}

#[test]
fn unknown_flag_fails() {
    let o = run(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--no-such-flag"),
        "the error names the flag: {}",
        text(&o)
    );
}

/// A value out of range is refused with exit 2 and the flag named, never clamped: the server
/// does not start with something other than what it was told.
#[test]
fn bad_flag_value_exits_2_naming_the_flag() {
    for args in [
        &["--stream-budget", "1000"][..],
        &["--fetch-max-wait-ms=0"],
        &["--workers", "0"],
        &["--shed-retry-ms", "99999999"],
        &["--heartbeat", "soon"],
        &["--drain-timeout", "-1"],
        &["--listen", "nowhere"],
        &["check", "--h2-max-frame-size", "1"],
    ] {
        let o = run(args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        let flag = args
            .iter()
            .find(|a| a.starts_with("--"))
            .map(|a| a.split('=').next().unwrap_or(a))
            .unwrap();
        assert!(t.contains(flag), "{args:?}: the error names {flag}: {t}");
        assert!(!t.contains("listening on"), "{t}");
    }
}

/// The defaults `--help` shows, flag by flag, against what the server makes of an empty command
/// line (`--print-settings`, hidden: the per-worker settings after the runtime's conversion,
/// mapped back to flags). Every printed setting has its default in `--help` (the worker count
/// aside: one per CPU the process may use, compared with `sched_getaffinity` here).
#[test]
fn help_shows_the_defaults_the_server_uses() {
    let help = text(&run(&["--help"]));
    let mut shown = std::collections::BTreeMap::new();
    let mut flag = None;
    for line in help.lines() {
        let line = line.trim_start();
        if line.starts_with('-') {
            flag = line
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(str::to_owned);
        }
        if let (Some(f), Some(at)) = (&flag, line.find("[default: ")) {
            let rest = &line[at + "[default: ".len()..];
            let value = &rest[..rest.find(']').expect("closing ]")];
            shown.insert(f.clone(), value.to_owned());
        }
    }
    assert!(
        shown.len() >= 20,
        "defaults found in --help: {shown:?}\n{help}"
    );

    let printed = run(&["--print-settings"]);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    let mut compared = 0;
    for line in printed.lines() {
        let (flag, value) = line.split_once('=').expect("--flag=value");
        if flag == "--workers" {
            assert_eq!(value, allowed_cpus().to_string(), "{printed}");
            continue;
        }
        let in_help = shown
            .get(flag)
            .unwrap_or_else(|| panic!("--help shows no default for {flag}:\n{help}"));
        assert_eq!(
            in_help, value,
            "{flag}: --help says {in_help}, the server uses {value}"
        );
        compared += 1;
    }
    assert!(compared >= 18, "{printed}");

    // A flag given changes what the server uses (the comparison above can fail).
    let o = run(&["--print-settings", "--heartbeat", "7", "--drain-grace=0.5"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.lines().any(|l| l == "--heartbeat=7"), "{t}");
    assert!(t.lines().any(|l| l == "--drain-grace=0.5"), "{t}");
}

/// CPUs this process may run on, as the server counts them for its default worker count.
fn allowed_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size.
    let (rc, set) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (rc, set)
    };
    assert_eq!(rc, 0, "sched_getaffinity");
    // SAFETY: CPU_COUNT only reads the set.
    (unsafe { libc::CPU_COUNT(&set) }) as usize
}

#[test]
fn check_accepts_the_fanout_example() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = Zilla::new(7114, "${{env.KAFKA_BOOTSTRAP_SERVER}}")
        .route(
            Route::new("/events/{key}/{tag}", "events")
                .filter(Filter::key("${params.key}").and_header("tag", "${params.tag}"))
                .event_id(r#"["${base64(key)}","${etag}"]"#),
        )
        .route(Route::any_topic())
        .bootstrap_topic("events")
        .topic_offset("events", "live")
        .yaml();
    let path = write(&dir, &yaml);
    let o = Command::new(server_bin())
        .args(["check", "--config", &path])
        .env("KAFKA_BOOTSTRAP_SERVER", "localhost:9092")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{yaml}", text(&o));
    let o = Command::new(server_bin())
        .args(["check", "-c", &path])
        .env("KAFKA_BOOTSTRAP_SERVER", "x:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "-c is --config: {}", text(&o));
    // The same shape straight to the kafka client binding.
    let path = write(
        &dir,
        &Zilla::new(7114, "localhost:9092")
            .no_cache()
            .route(Route::any_topic())
            .yaml(),
    );
    let o = run(&["check", "--config", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn check_reports_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let base = Zilla::new(7114, "localhost:9092")
        .route(Route::any_topic())
        .yaml();
    // 1. an option we do not implement (decisions.md's own example);
    let yaml = base.replace(
        "      access-control:\n        policy: cross-origin\n",
        "      access-control:\n        policy: cross-origin\n      overrides:\n        x-a: b\n",
    );
    // 2. a tls binding missing its vault, 3. an unknown binding type.
    let yaml = yaml
        + "  north_tls_server:\n    type: tls\n    kind: server\n    options:\n      keys:\n        - localhost\n    exit: north_http_server\n"
        + "  weird_binding:\n    type: no-such-type\n    kind: server\n";
    let path = write(&dir, &yaml);
    let o = run(&["check", "--config", &path]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}\n{yaml}");
    let lines: Vec<&str> = t.lines().collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(has("bindings.north_http_server.options.overrides:"), "{t}");
    // A tls binding without its vault (the tls binding itself is supported now).
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bindings.north_tls_server.vault: required")),
        "{t}"
    );
    assert!(has("bindings.weird_binding"), "{t}");
}

#[test]
fn check_refuses_broken_references_and_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = Zilla::new(7114, "localhost:9092")
        .route(Route::any_topic())
        .yaml()
        .replace("    exit: north_sse_kafka_mapping\n", "    exit: nowhere\n");
    let path = write(&dir, &yaml);
    let o = run(&["check", "--config", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o)
            .lines()
            .any(|l| l.starts_with("bindings.north_sse_server")),
        "{}",
        text(&o)
    );

    let path = write(&dir, "bindings: [unclosed\n  - : :\n");
    let o = run(&["check", "--config", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).trim().is_empty());

    // A file that is not there: an error naming it, and a failing exit code.
    let missing = dir.path().join("missing.yaml");
    let o = run(&["check", "--config", &missing.to_string_lossy()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("missing.yaml"), "{}", text(&o));
}

/// Running with an invalid config fails at start with the same errors, without listening.
#[test]
fn run_with_invalid_config_exits() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = Zilla::new(free_port(), "localhost:9092")
        .route(Route::any_topic())
        .yaml()
        + "  weird_binding:\n    type: no-such-type\n    kind: server\n";
    let path = write(&dir, &yaml);
    let mut child = Command::new(server_bin())
        .args(["--config", &path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(WAIT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(exited, "sse-kafka kept running with an invalid config");
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.lines().any(
            |l| l.starts_with("bindings.weird_binding") || l.contains("bindings.weird_binding")
        ),
        "{t}"
    );
    assert!(!t.contains("listening on"), "{t}");
}

/// `${{env.NAME}}` is substituted when the server runs (decisions.md 2).
#[test]
fn env_substitution_at_run_time() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "via env");
    let port = free_port();
    let yaml = Zilla::new(port, "${{env.KAFKA_BOOTSTRAP_SERVER}}")
        .route(Route::any_topic())
        .yaml();
    let server = Server::builder(port)
        .config(&yaml)
        .env("KAFKA_BOOTSTRAP_SERVER", &broker.bootstrap())
        .start();
    assert_eq!(
        Sse::open(&server.url("/events")).expect(1, WAIT)[0].data,
        "via env"
    );
}
