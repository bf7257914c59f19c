//! What the load is aimed at, started and stopped by the harness: the tansu broker, our server
//! (with a generated zilla.yaml), the raw floor, and nginx + Nchan.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::procs::{check_interrupt, command, Proc};
use testkit::{find_program, Filter, Route, Zilla};

/// Waits until `addr` accepts a TCP connection, failing early if `proc` exits.
pub fn wait_port(addr: SocketAddr, timeout: Duration, proc: &mut Proc) -> Result<(), String> {
    let end = Instant::now() + timeout;
    loop {
        check_interrupt()?;
        proc.check_alive()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!(
                "{} did not listen on {addr} within {timeout:?}{}",
                proc.name,
                proc.log_tail(30)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens one SSE request and waits for its response head (a warm-up: metadata, fetch, caches).
pub fn warm_up(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("warm-up connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .map_err(|e| format!("warm-up: {e}"))?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 2048];
    loop {
        if let Ok(Some(h)) = crate::sse::parse_response_head(&buf) {
            return Ok(h.status);
        }
        let n = s.read(&mut tmp).map_err(|e| format!("warm-up read: {e}"))?;
        if n == 0 {
            return Err("warm-up: closed before a response".into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------

pub struct Tansu {
    pub proc: Proc,
    /// Where clients connect: tansu itself, or the relay in front of it.
    pub bootstrap: String,
    /// Kept for as long as tansu runs (dropping it stops relaying).
    _relay: Option<crate::relay::KafkaRelay>,
}

/// Starts tansu; with `fetch_max_wait_ms`, behind a relay that shortens Fetch long polls (and
/// advertising the relay, so that every connection goes through it).
pub fn start_tansu(dir: &Path, fetch_max_wait_ms: Option<i32>) -> Result<Tansu, String> {
    let bin = find_program("tansu").ok_or(
        "tansu not found (PATH or ~/.cargo/bin): `cargo install tansu --version 0.6.0 --features dynostore`, or pass --kafka HOST:PORT",
    )?;
    let port = crate::net::free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let relay = match fetch_max_wait_ms {
        Some(ms) => {
            let relay_port = crate::net::free_port();
            let listen: SocketAddr = format!("127.0.0.1:{relay_port}").parse().unwrap();
            let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            Some(crate::relay::KafkaRelay::start(listen, upstream, ms)?)
        }
        None => None,
    };
    let advertised = match &relay {
        Some(r) => format!("tcp://{}", r.addr),
        None => url.clone(),
    };
    let mut cmd = command(bin, libc::SIGTERM);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &advertised,
    ])
    .args(["--storage-engine", "memory://tansu/"])
    .env_remove("LISTENER_URL")
    .env_remove("ADVERTISED_LISTENER_URL")
    .env_remove("STORAGE_ENGINE");
    let mut proc = Proc::spawn_logged("tansu", cmd, &dir.join("tansu.log"), libc::SIGTERM)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, Duration::from_secs(30), &mut proc)?;
    Ok(Tansu {
        proc,
        bootstrap: match &relay {
            Some(r) => r.addr.to_string(),
            None => format!("127.0.0.1:{port}"),
        },
        _relay: relay,
    })
}

/// Runs a future to completion on this thread (the admin client's futures are channel-based
/// and need no runtime).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Creates a topic through the Kafka admin API (works with tansu and real Kafka).
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&topic], &opts))
        .map_err(|e| format!("create topic {name}: {e}"))?;
    for r in results {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Our server
// ---------------------------------------------------------------------------------------------

/// The workspace root (the bench crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `$CARGO_TARGET_DIR/release/sse-kafka` or `<workspace>/target/release/sse-kafka`; built
/// with `cargo build --release` when missing.
pub fn server_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--server {}: no such file", p.display()))
        };
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("release/sse-kafka");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "==> {} missing: cargo build --release -p sse-kafka",
        bin.display()
    );
    let status =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "sse-kafka",
                "--bin",
                "sse-kafka",
            ])
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !bin.is_file() {
        return Err(format!("cargo build --release failed ({status})"));
    }
    Ok(bin)
}

/// A zilla.yaml: `/{topic}` (or `/{topic}/{key}` with a key filter) to the Kafka cluster through
/// the cache pair, plus a prometheus endpoint.
pub fn zilla_yaml(port: u16, metrics_port: u16, kafka: &str, keyed: bool, http2: bool) -> String {
    let route = if keyed {
        Route::new("/{topic}/{key}", "${params.topic}").filter(Filter::key("${params.key}"))
    } else {
        Route::any_topic()
    };
    let versions: &[&str] = if http2 {
        &["http/1.1", "h2"]
    } else {
        &["http/1.1"]
    };
    Zilla::new(port, kafka)
        .named("bench")
        .same_origin()
        .versions(versions)
        .route(route)
        .prometheus(metrics_port)
        .yaml()
}

pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

pub fn start_ours(
    bin: &Path,
    dir: &Path,
    kafka: &str,
    workers: usize,
    keyed: bool,
    http2: bool,
    extra: &[String],
) -> Result<Server, String> {
    let port = crate::net::free_port();
    let metrics_port = crate::net::free_port();
    let yaml = dir.join(if keyed {
        "zilla-keyed.yaml"
    } else {
        "zilla.yaml"
    });
    std::fs::write(&yaml, zilla_yaml(port, metrics_port, kafka, keyed, http2))
        .map_err(|e| e.to_string())?;
    let mut cmd = command(bin, libc::SIGTERM);
    cmd.arg("-c")
        .arg(&yaml)
        .args(["--workers", &workers.to_string()])
        .args(extra);
    let mut proc = Proc::spawn_logged("sse-kafka", cmd, &dir.join("sse-kafka.log"), libc::SIGTERM)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, Duration::from_secs(20), &mut proc)?;
    Ok(Server {
        proc,
        addr,
        metrics: Some(format!("127.0.0.1:{metrics_port}").parse().unwrap()),
    })
}

/// GETs the Prometheus text and sums samples by metric name + labels.
pub fn scrape(addr: SocketAddr) -> Result<Vec<(String, f64)>, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("scrape: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("scrape: {e}"))?;
    let text = body.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Raw floor
// ---------------------------------------------------------------------------------------------

pub struct RawServer {
    pub proc: Proc,
    stdin: ChildStdin,
    pub addr: SocketAddr,
}

impl RawServer {
    pub fn start(dir: &Path, workers: usize) -> Result<RawServer, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let port = crate::net::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.join("raw.log")).map_err(|e| e.to_string())?;
        let mut cmd = command(exe, libc::SIGKILL);
        cmd.args([
            "raw-server",
            "--listen",
            &addr.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let mut child = cmd.spawn().map_err(|e| format!("start raw-server: {e}"))?;
        let stdin = child.stdin.take().unwrap();
        let mut proc = Proc {
            name: "raw-server".into(),
            child,
            stop_signal: libc::SIGKILL,
            log: Some(dir.join("raw.log")),
        };
        wait_port(addr, Duration::from_secs(10), &mut proc)?;
        Ok(RawServer { proc, stdin, addr })
    }

    pub fn go(&mut self, rate: f64, count: u64, size: usize, burst_ms: u64) -> Result<(), String> {
        writeln!(
            self.stdin,
            "go {} {count} {size} {burst_ms}",
            rate.round().max(1.0) as u64
        )
        .map_err(|e| format!("raw-server: {e}"))?;
        self.stdin.flush().map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// nginx + Nchan
// ---------------------------------------------------------------------------------------------

/// Debian packages that provide the Nchan baseline.
pub const NCHAN_PACKAGES: &[&str] = &["nginx", "libnginx-mod-nchan"];

const NCHAN_MODULE_DIRS: &[&str] = &[
    "/usr/lib/nginx/modules",
    "/usr/share/nginx/modules",
    "/usr/lib64/nginx/modules",
];

/// (nginx binary, nchan module) when both are installed.
pub fn nchan_installed() -> Option<(PathBuf, PathBuf)> {
    let nginx = find_program("nginx")?;
    let module = NCHAN_MODULE_DIRS
        .iter()
        .map(|d| Path::new(d).join("ngx_nchan_module.so"))
        .find(|p| p.is_file())?;
    Some((nginx, module))
}

/// Installs nginx + Nchan with apt-get when missing (root or sudo).
pub fn ensure_nchan(install: bool) -> Result<(PathBuf, PathBuf), String> {
    if let Some(found) = nchan_installed() {
        return Ok(found);
    }
    if !install {
        return Err(format!(
            "nginx with Nchan is not installed (apt-get install {})",
            NCHAN_PACKAGES.join(" ")
        ));
    }
    eprintln!("==> installing {} with apt-get", NCHAN_PACKAGES.join(" "));
    // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| -> Result<(), String> {
        let mut cmd = if root {
            std::process::Command::new(args[0])
        } else {
            let mut c = std::process::Command::new("sudo");
            c.arg(args[0]);
            c
        };
        cmd.args(&args[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        let st = cmd.status().map_err(|e| format!("{}: {e}", args[0]))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("{} failed ({st})", args.join(" ")))
        }
    };
    run(&["apt-get", "update"])?;
    let mut args = vec!["apt-get", "install", "-y", "--no-install-recommends"];
    args.extend(NCHAN_PACKAGES);
    run(&args)?;
    nchan_installed().ok_or_else(|| "nginx/Nchan still not found after apt-get install".into())
}

pub struct Nchan {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Nchan {
    pub const SUB: &'static str = "/sub";
    pub const PUB: &'static str = "/pub";

    pub fn start(dir: &Path, workers: usize, install: bool) -> Result<Nchan, String> {
        let (nginx, module) = ensure_nchan(install)?;
        let port = crate::net::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let root = dir.join("nginx");
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
        let conf = root.join("nginx.conf");
        // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let text = format!(
            "load_module {module};
{user}daemon off;
master_process on;
worker_processes {workers};
worker_cpu_affinity auto;
worker_rlimit_nofile 20000;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
    worker_connections 20000;
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    keepalive_requests 100000000;
    nchan_shared_memory_size 256M;
    server {{
        listen {addr} reuseport backlog=4096;
        location = {sub} {{
            nchan_subscriber eventsource;
            nchan_channel_id bench;
        }}
        location = {pub_} {{
            nchan_publisher;
            nchan_channel_id bench;
            nchan_message_buffer_length 10000;
            nchan_message_timeout 10m;
        }}
    }}
}}
",
            module = module.display(),
            root = root.display(),
            sub = Self::SUB,
            pub_ = Self::PUB,
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let mut cmd = command(nginx, libc::SIGTERM);
        cmd.arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&root)
            .arg("-e")
            .arg(root.join("error.log"));
        let mut proc = Proc::spawn_logged("nginx", cmd, &dir.join("nginx.log"), libc::SIGTERM)?;
        if let Err(e) = wait_port(addr, Duration::from_secs(10), &mut proc) {
            let err = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
            return Err(format!("{e}\n{err}"));
        }
        Ok(Nchan { proc, addr })
    }

    /// The master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut p = vec![self.proc.pid()];
        p.extend(crate::procs::children_of(self.proc.pid()));
        p
    }
}
