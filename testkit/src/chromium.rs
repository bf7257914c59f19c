//! Headless Chromium for tests, with a loopback page server: `Page::start(html)` serves `html`
//! on `GET /` and keeps the body of every `POST` (a report from the page, this one or one of
//! another origin).

use std::io::Read;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::{find, find_program, wait_until, Lines};

/// Serves one page and collects what it POSTs.
pub struct Page {
    pub port: u16,
    reports: Arc<Mutex<Vec<String>>>,
}

impl Page {
    pub fn start(html: &str) -> Page {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
        let port = listener.local_addr().unwrap().port();
        let reports: Arc<Mutex<Vec<String>>> = Arc::default();
        let r = reports.clone();
        let html = html.to_string();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let (r, html) = (r.clone(), html.clone());
                thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 8192];
                    let head_end = loop {
                        if let Some(end) = find(&buf, b"\r\n\r\n") {
                            break end + 4;
                        }
                        match conn.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match conn.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    // Reports may come from a page of another origin (served by the server
                    // under test): allowed to any origin.
                    const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n";
                    if buf.starts_with(b"POST ") {
                        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]);
                        r.lock().unwrap().push(body.into_owned());
                        let _ = conn.write_all(NO_CONTENT);
                    } else if buf.starts_with(b"OPTIONS ") {
                        let _ = conn.write_all(NO_CONTENT);
                    } else {
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                            html.len()
                        );
                        let _ = conn.write_all(resp.as_bytes());
                    }
                });
            }
        });
        Page { port, reports }
    }

    /// Where a page elsewhere POSTs its report.
    pub fn report_url(&self) -> String {
        format!("http://127.0.0.1:{}/report", self.port)
    }

    pub fn url(&self, query: &str) -> String {
        format!("http://127.0.0.1:{}/?{query}", self.port)
    }

    /// Every report so far.
    pub fn reports(&self) -> Vec<String> {
        self.reports.lock().unwrap().clone()
    }

    /// Waits for a report that satisfies `pred`.
    pub fn wait_report(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.reports().into_iter().find(|r| pred(r));
            found.is_some()
        });
        found
    }
}

pub fn chromium_bin() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| find_program(n))
        .unwrap_or_else(|| panic!("chromium not found: `apt-get install chromium` (Debian)"))
}

/// Headless Chromium on `url` in a process group of its own (killed as a group on drop), with
/// a fresh profile; its stderr collected line by line (printed when a test fails).
pub struct Chromium {
    child: Child,
    lines: Arc<Lines>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub fn open(url: &str) -> Chromium {
        Chromium::open_with(url, &["--remote-debugging-port=0"])
    }

    /// With more command-line flags (e.g. `--ignore-certificate-errors` for a throwaway
    /// certificate, `--enable-logging=stderr` for the page's `console.log`).
    pub fn open_with(url: &str, flags: &[&str]) -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut cmd = Command::new(chromium_bin());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-breakpad",
            "--disable-crash-reporter",
        ])
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        // SAFETY: async-signal-safe calls only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn chromium");
        let lines = Arc::new(Lines::default());
        if let Some(stderr) = child.stderr.take() {
            lines.spawn_reader(stderr, None);
        }
        Chromium {
            child,
            lines,
            _profile: profile,
        }
    }

    /// Everything Chromium wrote to stderr so far.
    pub fn output(&self) -> String {
        self.lines.text()
    }

    /// The last `n` lines of its stderr.
    pub fn tail(&self, n: usize) -> String {
        self.lines.tail(n)
    }

    /// What the page logged (`console.log('PAGE …')`, with `--enable-logging=stderr`), in order.
    pub fn page(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter_map(|l| {
                let start = l.find("\"PAGE ")? + 6;
                let end = l.rfind("\", source:")?;
                (end >= start).then(|| l[start..end].to_string())
            })
            .collect()
    }

    /// Waits until what the page logged satisfies `cond`; fails naming `what` otherwise.
    pub fn wait_page(&self, timeout: Duration, what: &str, cond: impl Fn(&[String]) -> bool) {
        let ok = wait_until(timeout, || cond(&self.page()));
        assert!(
            ok,
            "the page did not report {what} within {timeout:?}; page: {:#?}",
            self.page()
        );
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SIGTERM lets Chromium end and reap its own helpers; whatever is left of its process
        // group after a while is killed.
        let pid = self.child.id() as i32;
        // SAFETY: plain signal sends to our own child and its process group.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let ended = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        if !ended {
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- chromium stderr (last 40 lines) ---\n{}\n---",
                self.tail(40)
            );
        }
    }
}
