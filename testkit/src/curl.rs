//! curl: one-shot requests, `--write-out` runs and fleets of streaming clients.
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// A finished HTTP exchange made by curl.
#[derive(Debug, Clone)]
pub struct CurlResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// curl's `-w` output, if asked.
    pub write_out: String,
}

impl CurlResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

/// Runs `curl -sS -i --http1.1 --max-time 15 EXTRA URL` to completion and parses the last
/// response (for non-streaming requests: static files, error statuses).
pub fn curl(url: &str, extra: &[&str]) -> CurlResponse {
    let out = command("curl")
        .args(["-sS", "-i", "--http1.1", "--max-time", "15"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let raw = out.stdout;
    let end = find(&raw, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "curl {url}: no response head: {:?} {}",
            String::from_utf8_lossy(&raw),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    CurlResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
        write_out: String::new(),
    }
}

/// Runs curl with `-w FORMAT -o /dev/null -s` over one or more URLs (one connection reused
/// when possible) and returns what `-w` printed.
pub fn curl_write_out(urls: &[String], format: &str, extra: &[&str]) -> String {
    let mut cmd = command("curl");
    cmd.args(["-sS", "--http1.1", "--max-time", "15", "-w", format])
        .args(extra);
    for u in urls {
        cmd.args(["-o", "/dev/null", u]);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Many concurrent SSE streams read by real curl in `--parallel` mode, each transfer writing to
/// its own file. curl 7.88 caps `--parallel-max` at 300, so several curl processes are used.
pub struct CurlFleet {
    children: Vec<Child>,
    dir: tempfile::TempDir,
    pub n: usize,
}

impl CurlFleet {
    /// Opens `urls.len()` streams, at most `per_process` per curl process.
    pub fn open(urls: &[String], per_process: usize) -> CurlFleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut children = Vec::new();
        for (c, chunk) in urls.chunks(per_process).enumerate() {
            let mut cfg = String::new();
            for (j, u) in chunk.iter().enumerate() {
                let i = c * per_process + j;
                cfg += &format!(
                    "url = \"{u}\"\noutput = \"{}\"\n",
                    dir.path().join(format!("{i}.out")).display()
                );
            }
            let cfg_path = dir.path().join(format!("curl-{c}.cfg"));
            std::fs::write(&cfg_path, cfg).unwrap();
            let mut child = command("curl");
            child
                .args([
                    "-sS",
                    "-N",
                    "--no-buffer",
                    "--http1.1",
                    "--parallel",
                    "--parallel-immediate",
                ])
                .args(["--parallel-max", &per_process.min(300).to_string()])
                .args(["-H", "Accept: text/event-stream", "-K"])
                .arg(&cfg_path);
            children.push(spawn_quiet(&mut child));
        }
        CurlFleet {
            children,
            dir,
            n: urls.len(),
        }
    }

    /// The events stream `i` has received so far.
    pub fn events(&self, i: usize) -> Vec<Event> {
        let body = std::fs::read(self.dir.path().join(format!("{i}.out"))).unwrap_or_default();
        parse_sse(&body).0
    }

    /// Waits until every stream has at least `n` events; Err names the laggards.
    pub fn wait_all(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut done = vec![false; self.n];
        loop {
            for (i, d) in done.iter_mut().enumerate() {
                if !*d {
                    *d = self.events(i).len() >= n;
                }
            }
            let missing: Vec<usize> = done
                .iter()
                .enumerate()
                .filter(|(_, d)| !**d)
                .map(|(i, _)| i)
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let sample: Vec<String> = missing
                    .iter()
                    .take(5)
                    .map(|&i| format!("#{i}: {} events", self.events(i).len()))
                    .collect();
                return Err(format!(
                    "{} of {} streams have fewer than {n} events, e.g. {sample:?}",
                    missing.len(),
                    self.n
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many curl processes are still running.
    pub fn running(&mut self) -> usize {
        self.children
            .iter_mut()
            .map(|c| c.try_wait())
            .filter(|r| matches!(r, Ok(None)))
            .count()
    }
}

impl Drop for CurlFleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            kill_and_wait(c);
        }
    }
}
