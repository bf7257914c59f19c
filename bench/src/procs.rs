//! Child processes, Ctrl-C, and /proc sampling.
//!
//! Every child runs in its own process group (a terminal's Ctrl-C reaches only the harness,
//! which then stops the children in order) and gets a parent-death signal, so that nothing
//! outlives a harness that is killed outright.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::payload::mono_ns;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The value after flag `name` on a command line, or the error naming the flag.
pub fn flag_value(next: Option<&String>, name: &str) -> Result<String, String> {
    next.cloned().ok_or_else(|| format!("{name} needs a value"))
}

/// SIGINT and SIGTERM set a flag that every wait of the harness checks.
pub fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails with "interrupted" once Ctrl-C was pressed.
pub fn check_interrupt() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Sleeps in small steps, returning early (with an error) on Ctrl-C.
pub fn sleep(d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupt()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    Ok(())
}

/// A command in its own process group that receives `death_signal` when the harness dies.
pub fn command(program: impl AsRef<std::ffi::OsStr>, death_signal: i32) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0);
    // SAFETY: prctl in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, death_signal);
            Ok(())
        });
    }
    cmd
}

/// A running child, stopped (signal, then SIGKILL after a grace period) on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stop_signal: i32,
    pub log: Option<PathBuf>,
}

impl Proc {
    /// Spawns with stdout/stderr appended to `log`.
    pub fn spawn_logged(
        name: &str,
        mut cmd: Command,
        log: &Path,
        stop_signal: i32,
    ) -> Result<Proc, String> {
        let f = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("start {name}: {e} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            stop_signal,
            log: Some(log.to_path_buf()),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has exited, with the tail of its log.
    pub fn check_alive(&mut self) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!(
                "{} exited ({status}){}",
                self.name,
                self.log_tail(30)
            ));
        }
        Ok(())
    }

    pub fn log_tail(&self, n: usize) -> String {
        let Some(p) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "\n--- {} (last {} lines of {}) ---\n{}",
            self.name,
            n.min(lines.len()),
            p.display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as i32, self.stop_signal);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A load-client child: stdin to command it, stdout lines read by a thread.
pub struct ClientProc {
    pub proc: Proc,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub out: PathBuf,
}

impl ClientProc {
    pub fn spawn(
        exe: &Path,
        args: &[String],
        log: &Path,
        out: PathBuf,
    ) -> Result<ClientProc, String> {
        let f = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = command(exe, libc::SIGKILL);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(f);
        let mut child = cmd.spawn().map_err(|e| format!("start client: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ClientProc {
            proc: Proc {
                name: "client".into(),
                child,
                stop_signal: libc::SIGKILL,
                log: Some(log.to_path_buf()),
            },
            stdin,
            lines: rx,
            out,
        })
    }

    pub fn send(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// Waits for a stdout line starting with `prefix`; returns it.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let end = Instant::now() + timeout;
        loop {
            check_interrupt()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "client: no `{prefix}` within {timeout:?}{}",
                    self.proc.log_tail(20)
                ));
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("client exited{}", self.proc.log_tail(20)))
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// utime + stime of `pid` in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ')' : state(3) ppid(4) … utime(14) stime(15) → indices 11, 12
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Children of `pid` (scans /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(close) = s.rfind(')') else { continue };
        let ppid = s[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// One sample: time, then (cpu ticks, rss KiB) per group.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t_ns: u64,
    pub groups: Vec<(u64, u64)>,
}

/// Samples CPU and RSS of groups of processes every `period` on a thread.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(groups: Vec<(String, Vec<u32>)>, period: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || loop {
            let sample = Sample {
                t_ns: mono_ns(),
                groups: groups
                    .iter()
                    .map(|(_, pids)| {
                        pids.iter().fold((0, 0), |(c, r), &p| {
                            (c + cpu_ticks(p).unwrap_or(0), r + rss_kib(p).unwrap_or(0))
                        })
                    })
                    .collect(),
            };
            s2.lock().unwrap().push(sample);
            if st2.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(period);
        });
        Sampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.lock().unwrap().clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// CPU seconds used by group `g` between `from` and `to` (nearest samples).
pub fn cpu_seconds(samples: &[Sample], g: usize, from_ns: u64, to_ns: u64) -> f64 {
    let at = |t: u64| -> Option<&Sample> { samples.iter().min_by_key(|s| s.t_ns.abs_diff(t)) };
    match (at(from_ns), at(to_ns)) {
        (Some(a), Some(b)) if b.t_ns > a.t_ns => {
            b.groups[g].0.saturating_sub(a.groups[g].0) as f64 / ticks_per_sec() as f64
        }
        _ => 0.0,
    }
}

/// Peak RSS (KiB) of group `g` over the samples between `from` and `to`.
pub fn peak_rss(samples: &[Sample], g: usize, from_ns: u64, to_ns: u64) -> u64 {
    samples
        .iter()
        .filter(|s| s.t_ns >= from_ns && s.t_ns <= to_ns)
        .map(|s| s.groups[g].1)
        .max()
        .unwrap_or(0)
}
