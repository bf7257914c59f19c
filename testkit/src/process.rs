//! Child processes: finding programs, commands that die with the test, collected output.
use std::io::BufRead;
use std::io::{BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// Finds an executable: `$PATH` first, then `/usr/sbin` (haproxy, nginx), then `~/.cargo/bin`
/// (or `$CARGO_HOME/bin`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/sbin"));
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The `sse-kafka` binary under test: `SSE_KAFKA_BIN` when set, else `sse-kafka` in the target
/// directory the running test binary was built into (`target/<profile>/deps/<test>` next to
/// `target/<profile>/sse-kafka`; cargo builds the binary before the integration tests).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SSE_KAFKA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let found = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("sse-kafka"))
        .find(|p| p.is_file());
    match found {
        Some(p) => p,
        None => panic!(
            "SSE_KAFKA_BIN is not set and no sse-kafka binary next to {}",
            exe.display()
        ),
    }
}

/// A command whose process is killed when the spawning thread's process dies (so that a killed
/// test run leaves no broker or server behind). Note: PR_SET_PDEATHSIG fires when the *thread*
/// that spawned the child exits, so spawn from the test's own thread (all harness types do).
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Spawns `cmd` with stdin closed and stdout/stderr as given; fails the test naming the program.
pub fn spawn_with(cmd: &mut Command, stdout: Stdio, stderr: Stdio) -> Child {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"))
}

/// Spawns `cmd` with stdin closed and its output dropped.
pub fn spawn_quiet(cmd: &mut Command) -> Child {
    spawn_with(cmd, Stdio::null(), Stdio::null())
}

/// [`spawn_quiet`], then waits (up to [`WAIT`]) until something listens on `addr`.
pub fn spawn_listening(cmd: &mut Command, addr: &str) -> Child {
    let child = spawn_quiet(cmd);
    assert!(
        wait_for_port(addr, WAIT),
        "{} does not listen on {addr}",
        cmd.get_program().to_string_lossy()
    );
    child
}

/// Lines of a child's output, collected by a reader thread.
#[derive(Default)]
pub struct Lines {
    lines: Mutex<Vec<String>>,
    cv: Condvar,
    closed: AtomicBool,
}

impl Lines {
    /// Collects both stdout and stderr of `child` (those that are piped), echoed with `prefix`
    /// when `HARNESS_ECHO` is set.
    pub fn read_child(self: &Arc<Self>, child: &mut Child, prefix: &'static str) {
        if let Some(out) = child.stdout.take() {
            self.spawn_reader(out, echo(prefix));
        }
        if let Some(err) = child.stderr.take() {
            self.spawn_reader(err, echo(prefix));
        }
    }

    pub fn spawn_reader(
        self: &Arc<Self>,
        r: impl Read + Send + 'static,
        echo: Option<&'static str>,
    ) {
        let me = self.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        if let Some(prefix) = echo {
                            eprintln!("{prefix}{line}");
                        }
                        me.lines.lock().unwrap().push(line);
                        me.cv.notify_all();
                    }
                }
            }
            me.closed.store(true, Ordering::SeqCst);
            me.cv.notify_all();
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    pub fn tail(&self, n: usize) -> String {
        let l = self.lines.lock().unwrap();
        l[l.len().saturating_sub(n)..].join("\n")
    }

    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Waits until `n` lines satisfy `pred`; false on timeout or when the stream closed first.
    pub fn wait_count(&self, n: usize, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lines.lock().unwrap();
        loop {
            if guard.iter().filter(|l| pred(l)).count() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.closed.load(Ordering::SeqCst) {
                return false;
            }
            guard = self
                .cv
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(100)))
                .unwrap()
                .0;
        }
    }
}

/// Set `HARNESS_ECHO=1` to echo broker and server output live while a test runs.
pub(crate) fn echo(prefix: &'static str) -> Option<&'static str> {
    std::env::var_os("HARNESS_ECHO").map(|_| prefix)
}

pub(crate) fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
