//! `sse-kafka-bench mock-cluster`: librdkafka's mock cluster (the `rdkafka` crate's
//! `MockCluster`) in a helper process of its own, so that its threads are measured apart from
//! the harness and the server. It prints `bootstrap HOST:PORT` on stdout, then reads commands on
//! stdin — `topic NAME PARTITIONS` creates a topic and answers `ok` (or `error …`) — and stops
//! when stdin closes (the harness exits or drops it).

use std::io::{BufRead, Write};

use rdkafka::mocking::MockCluster;

use crate::procs::{command, Proc};

pub fn run(args: &[String]) -> Result<(), String> {
    let mut brokers = 1i32;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--brokers" => {
                brokers = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or("--brokers needs a number >= 1")?
            }
            other => return Err(format!("mock-cluster: unknown argument {other}")),
        }
    }
    let mock = MockCluster::new(brokers).map_err(|e| format!("mock cluster: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "bootstrap {}", mock.bootstrap_servers()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["topic", name, partitions] => match partitions.parse::<i32>() {
                Ok(p) if p >= 1 => match mock.create_topic(name, p, 1) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error {e}"),
                },
                _ => format!("error bad partition count {partitions}"),
            },
            [] => continue,
            _ => format!("error unknown command: {line}"),
        };
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The helper process, seen from the harness.
pub struct MockClusterProc {
    pub proc: Proc,
    pub bootstrap: String,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl MockClusterProc {
    pub fn start(dir: &std::path::Path) -> Result<MockClusterProc, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log = dir.join("mock-cluster.log");
        let f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut cmd = command(exe, libc::SIGKILL);
        cmd.arg("mock-cluster")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(f);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start mock-cluster: {e}"))?;
        let stdin = child.stdin.take().ok_or("mock-cluster: no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("mock-cluster: no stdout")?);
        let mut m = MockClusterProc {
            proc: Proc {
                name: "mock-cluster".into(),
                child,
                stop_signal: libc::SIGKILL,
                log: Some(log),
            },
            bootstrap: String::new(),
            stdin,
            stdout,
        };
        let line = m.read_line()?;
        m.bootstrap = line
            .strip_prefix("bootstrap ")
            .ok_or_else(|| format!("mock-cluster said {line:?}{}", m.proc.log_tail(20)))?
            .trim()
            .to_string();
        Ok(m)
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(format!("mock-cluster exited{}", self.proc.log_tail(20))),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("mock-cluster: {e}")),
        }
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<(), String> {
        writeln!(self.stdin, "topic {name} {partitions}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        match self.read_line()? {
            l if l == "ok" => Ok(()),
            l => Err(format!("mock-cluster: create topic {name}: {l}")),
        }
    }
}
