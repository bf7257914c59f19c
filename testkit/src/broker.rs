//! The tansu broker: one process per test, memory storage, on its own loopback port.
use std::io::Read;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::*;

/// A `tansu` broker with memory storage, on its own loopback port, killed on drop.
pub struct Broker {
    child: Child,
    /// Where tansu listens.
    pub port: u16,
    /// What tansu advertises in metadata (`host:port`): itself, or a relay in front of it.
    pub advertised: String,
    log: Arc<Lines>,
}

pub fn tansu_bin() -> PathBuf {
    find_program("tansu").unwrap_or_else(|| {
        panic!("tansu not found on PATH or in ~/.cargo/bin: run scripts/test, or `cargo install tansu --features dynostore`")
    })
}

impl Broker {
    /// Starts tansu on a free port, advertising itself.
    pub fn start() -> Broker {
        let port = free_port();
        Broker::start_on(port, &format!("127.0.0.1:{port}"))
    }

    /// Starts tansu listening on `port` and advertising `advertised` (`host:port`).
    pub fn start_on(port: u16, advertised: &str) -> Broker {
        let mut cmd =
            tansu_broker_command(&format!("127.0.0.1:{port}"), advertised, "memory://tansu/");
        let mut child = cmd.spawn().expect("spawn tansu");
        let log = Arc::new(Lines::default());
        log.read_child(&mut child, "[tansu] ");
        let mut broker = Broker {
            child,
            port,
            advertised: advertised.to_string(),
            log,
        };
        let addr = broker.addr();
        wait_tansu_ready(&mut broker.child, &broker.log, &addr);
        broker
    }

    /// `127.0.0.1:port`, where tansu itself listens.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The bootstrap address clients should use (the advertised one).
    pub fn bootstrap(&self) -> String {
        self.advertised.clone()
    }

    /// `tansu topic create NAME --partitions N --broker tcp://127.0.0.1:P`.
    /// A broker with one topic created.
    pub fn with_empty_topic(name: &str, partitions: i32) -> Broker {
        let broker = Broker::start();
        broker.create_topic(name, partitions);
        broker
    }

    /// A broker with one topic created, and a producer on it: the start of most tests.
    pub fn with_topic(name: &str, partitions: i32) -> (Broker, Producer) {
        let broker = Broker::start();
        broker.create_topic(name, partitions);
        let producer = Producer::new(&broker.bootstrap());
        (broker, producer)
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with_config(name, partitions, &[]);
    }

    /// `tansu topic create NAME --partitions N --config k=v ...` (e.g. `cleanup.policy=compact`).
    pub fn create_topic_with_config(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let partitions = partitions.to_string();
        let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["topic", "create", name, "--partitions", &partitions];
        for c in &configs {
            args.extend(["--config", c]);
        }
        tansu_cli(None, &self.addr(), &args);
    }

    pub fn logs(&self) -> String {
        self.log.text()
    }
}

/// `tansu broker` listening on `listen`, advertising `advertised` (both `host:port`), with
/// this storage engine; tansu's environment variables removed, output piped.
pub fn tansu_broker_command(listen: &str, advertised: &str, storage: &str) -> Command {
    let mut cmd = command(tansu_bin());
    cmd.arg("broker")
        .args(["--listener-url", &format!("tcp://{listen}")])
        .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
        .args(["--storage-engine", storage])
        .env_remove("LISTENER_URL")
        .env_remove("ADVERTISED_LISTENER_URL")
        .env_remove("STORAGE_ENGINE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits until the tansu process `child` answers ApiVersions on `addr`; fails with its log
/// when it exits first or does not answer.
pub fn wait_tansu_ready(child: &mut Child, log: &Lines, addr: &str) {
    let ready = wait_until(WAIT, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tansu exited early ({status}):\n{}", log.text());
        }
        api_versions_ok(addr)
    });
    assert!(
        ready,
        "tansu did not answer ApiVersions on {addr}:\n{}",
        log.text()
    );
}

/// Runs `tansu ARGS --broker tcp://ADDR` (in `dir` when given) to completion; fails the test
/// with tansu's output when it fails.
pub fn tansu_cli(dir: Option<&Path>, addr: &str, args: &[&str]) {
    let mut cmd = command(tansu_bin());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .arg("--broker")
        .arg(format!("tcp://{addr}"))
        .output()
        .expect("run tansu");
    assert!(
        out.status.success(),
        "tansu {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Broker {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "--- tansu on port {} (last 40 lines) ---\n{}\n---",
                self.port,
                self.log.tail(40)
            );
        }
    }
}

/// Sends a raw ApiVersions v0 request and checks for a well-formed, error-free answer.
pub fn api_versions_ok(addr: &str) -> bool {
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let client_id = b"harness";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    if s.write_all(&frame).is_err() {
        return false;
    }
    let mut head = [0u8; 10];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    let correlation = i32::from_be_bytes(head[4..8].try_into().unwrap());
    let error = i16::from_be_bytes(head[8..10].try_into().unwrap());
    correlation == 7 && error == 0
}
