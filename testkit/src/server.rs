//! The `sse-kafka` binary under test: spawned with args, waited for, killed on drop.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// Builds and starts an `sse-kafka` process.
pub struct ServerBuilder {
    port: u16,
    yaml: Option<String>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    listeners: usize,
    launcher: Vec<String>,
}

impl ServerBuilder {
    /// Starts the server through `program args... sse-kafka ...` (e.g. `taskset -c 0`), which
    /// must exec it (the pid stays the server's).
    pub fn launcher(mut self, program_and_args: &[&str]) -> Self {
        self.launcher = program_and_args.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Writes `yaml` to `<dir>/zilla.yaml` and passes `--config <that file>`.
    pub fn config(mut self, yaml: &str) -> Self {
        self.yaml = Some(yaml.to_string());
        self
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// The directory for the config file (and the working directory); default: a new temp dir.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }
    /// How many `listening on` lines to wait for (default 1).
    pub fn listeners(mut self, n: usize) -> Self {
        self.listeners = n;
        self
    }
    /// Starts the process and waits until it is listening.
    pub fn start(self) -> Server {
        let (tmp, dir) = match self.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let mut cmd = match self.launcher.split_first() {
            None => command(server_bin()),
            Some((program, args)) => {
                let mut c = command(program);
                c.args(args).arg(server_bin());
                c
            }
        };
        cmd.current_dir(&dir);
        let mut config_path = None;
        if let Some(yaml) = &self.yaml {
            let path = dir.join("zilla.yaml");
            std::fs::write(&path, yaml).expect("write zilla.yaml");
            cmd.arg("--config").arg(&path);
            config_path = Some(path);
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", server_bin().display()));
        let log = Arc::new(Lines::default());
        log.spawn_reader(child.stderr.take().unwrap(), echo("[sse-kafka] "));
        let stdout = Arc::new(Lines::default());
        stdout.spawn_reader(child.stdout.take().unwrap(), echo("[sse-kafka stdout] "));
        let mut server = Server {
            child,
            port: self.port,
            log,
            stdout,
            _tmp: tmp,
            dir,
            config_path,
            exited: None,
        };
        let listening = server
            .log
            .wait_count(self.listeners, WAIT, |l| l.contains("listening on"));
        if !listening {
            let status = wait_timeout(&mut server.child, Duration::from_millis(200));
            panic!(
                "sse-kafka did not log `listening on` (exit: {status:?}); yaml:\n{}\nstderr:\n{}",
                self.yaml.as_deref().unwrap_or("(none)"),
                server.log.text()
            );
        }
        assert!(
            wait_for_port(&server.addr(), WAIT),
            "sse-kafka said it listens but {} refuses connections:\n{}",
            server.addr(),
            server.log.text()
        );
        server
    }
}

/// A running `sse-kafka`; SIGTERM on drop (SIGKILL after 5 s). On a failing test its stderr is
/// printed.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Lines>,
    stdout: Arc<Lines>,
    _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    pub config_path: Option<PathBuf>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// A builder for a server that will listen on `port` (the port the config or `--listen`
    /// names; the builder does not invent it).
    pub fn builder(port: u16) -> ServerBuilder {
        ServerBuilder {
            port,
            yaml: None,
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            listeners: 1,
            launcher: Vec::new(),
        }
    }

    /// `sse-kafka --config <yaml>` listening on `port`.
    pub fn with_config(port: u16, yaml: &str) -> Server {
        Server::builder(port).config(yaml).start()
    }

    /// `sse-kafka --kafka <bootstrap> --listen 127.0.0.1:<free port> [extra...]`.
    pub fn direct(bootstrap: &str, extra: &[&str]) -> Server {
        let port = free_port();
        Server::builder(port)
            .args([
                "--kafka",
                bootstrap,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra.iter().copied())
            .start()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.log.text()
    }

    /// Waits (up to [`WAIT`]) for a log line that satisfies `pred`; fails with `what` and the
    /// log otherwise.
    pub fn expect_log(&self, what: &str, pred: impl Fn(&str) -> bool) {
        assert!(
            self.log.wait_count(1, WAIT, pred),
            "{what}:\n{}",
            self.logs()
        );
    }

    pub fn log_lines(&self) -> Arc<Lines> {
        self.log.clone()
    }

    pub fn signal(&self, sig: i32) {
        signal(&self.child, sig);
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_timeout(&mut self.child, timeout);
        }
        self.exited
    }

    /// Sends `sig` and measures how long the process takes to exit (None: not within `timeout`;
    /// it is then killed).
    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> (Option<ExitStatus>, Duration) {
        let t0 = Instant::now();
        self.signal(sig);
        let status = self.wait_exit(timeout);
        let took = t0.elapsed();
        if status.is_none() {
            kill_and_wait(&mut self.child);
        }
        (status, took)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            if let Ok(None) = self.child.try_wait() {
                // A test that drops its server does not test the drain (tests/drain.rs does):
                // a second signal makes the server exit at once instead of after its grace.
                signal(&self.child, libc::SIGTERM);
                thread::sleep(Duration::from_millis(20));
                signal(&self.child, libc::SIGINT);
                if wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
                    eprintln!(
                        "sse-kafka (pid {}) ignored SIGTERM for 5 s; killing it",
                        self.child.id()
                    );
                    kill_and_wait(&mut self.child);
                }
            }
        }
        if thread::panicking() {
            eprintln!(
                "--- sse-kafka on port {} stderr ---\n{}\n---",
                self.port,
                self.log.text()
            );
            let out = self.stdout.text();
            if !out.is_empty() {
                eprintln!("--- sse-kafka stdout ---\n{out}\n---");
            }
        }
    }
}
