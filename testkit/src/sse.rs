//! SSE: the event parser and a streaming client on curl.
use std::collections::VecDeque;
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// One SSE event as an EventSource would see it. `data` lines are joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `id:` field of this event, if it had one.
    pub id: Option<String>,
    /// The `event:` field, if any (`None` = default "message").
    pub event: Option<String>,
    pub data: String,
}

/// What the parser emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    Event(Event),
    Comment(String),
}

/// Parses a complete SSE body into (events, number of comment lines).
pub fn parse_sse(body: &[u8]) -> (Vec<Event>, usize) {
    let mut items = Vec::new();
    SseParser::default().feed(body, &mut items);
    let mut events = Vec::new();
    let mut comments = 0;
    for i in items {
        match i {
            SseItem::Event(e) => events.push(e),
            SseItem::Comment(_) => comments += 1,
        }
    }
    (events, comments)
}

/// An incremental SSE parser following the WHATWG rules: lines end at CRLF, LF or CR (also
/// across `feed` calls); `field:value` with one optional space after the colon; each `data`
/// line appends value + LF to the data buffer and the last LF is removed at dispatch; comments
/// start with `:`. Test-oriented difference: a block with any field is reported even if it has
/// no `data` (a browser would not dispatch it), so that `event:delete` without data is visible.
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    last_cr: bool,
    id: Option<String>,
    event: Option<String>,
    /// Data buffer as in the WHATWG algorithm: every data line appends value + '\n'.
    data: String,
    any: bool,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseItem>) {
        for &b in bytes {
            match b {
                b'\n' if self.last_cr => self.last_cr = false,
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.end_line(out);
                    self.last_cr = true;
                }
                _ => {
                    self.last_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<SseItem>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            if self.any {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseItem::Event(Event {
                    id: self.id.take(),
                    event: self.event.take(),
                    data,
                }));
            }
            self.any = false;
            self.id = None;
            self.event = None;
            self.data.clear();
            return;
        }
        if let Some(c) = line.strip_prefix(':') {
            out.push(SseItem::Comment(c.to_string()));
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.any = true;
            }
            "id" => {
                if !value.contains('\0') {
                    self.id = Some(value.to_string());
                }
                self.any = true;
            }
            "event" => {
                self.event = Some(value.to_string());
                self.any = true;
            }
            _ => {}
        }
    }
}

#[derive(Default)]
pub(crate) struct SseState {
    head: Vec<u8>,
    head_done: bool,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    pending: VecDeque<Event>,
    received: Vec<Event>,
    comments: usize,
    eof: bool,
    parser: SseParser,
}

impl SseState {
    fn feed(&mut self, mut bytes: &[u8]) {
        if !self.head_done {
            self.head.extend_from_slice(bytes);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.head[..end]).into_owned();
            let rest = self.head[end + 4..].to_vec();
            self.head_done = true;
            let mut lines = head.split("\r\n");
            self.status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok());
            for l in lines {
                if let Some((n, v)) = l.split_once(':') {
                    self.headers
                        .push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            self.feed_body(&rest);
            bytes = &[];
        }
        self.feed_body(bytes);
    }

    fn feed_body(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.body.extend_from_slice(bytes);
        let mut items = Vec::new();
        self.parser.feed(bytes, &mut items);
        for i in items {
            match i {
                SseItem::Event(e) => {
                    self.received.push(e.clone());
                    self.pending.push_back(e);
                }
                SseItem::Comment(_) => self.comments += 1,
            }
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An SSE stream read by a real `curl` (`curl -sS -N --no-buffer -i --http1.1 ...`), parsed by
/// a reader thread. curl is killed on drop.
pub struct Sse {
    child: Child,
    state: Arc<(Mutex<SseState>, Condvar)>,
    pub url: String,
    stderr: Arc<Lines>,
}

impl Sse {
    /// `GET url` with `Accept: text/event-stream`.
    pub fn open(url: &str) -> Sse {
        Sse::open_args(url, &[])
    }

    /// With a `Last-Event-ID` header.
    pub fn resume(url: &str, last_event_id: &str) -> Sse {
        Sse::open_args(url, &["-H", &format!("Last-Event-ID: {last_event_id}")])
    }

    /// Extra curl arguments (headers, `-X POST`, ...).
    pub fn open_args(url: &str, extra: &[&str]) -> Sse {
        let mut cmd = command("curl");
        cmd.args([
            "-sS",
            "-N",
            "--no-buffer",
            // `-D -` writes the head to stdout as it arrives; `-i` holds it until the first
            // body byte (curl 7.88), which would hide a head sent before any event.
            "-D",
            "-",
            "--http1.1",
            "-H",
            "Accept: text/event-stream",
        ])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn curl (is curl installed?)");
        let state: Arc<(Mutex<SseState>, Condvar)> = Arc::default();
        let stderr = Arc::new(Lines::default());
        stderr.spawn_reader(child.stderr.take().unwrap(), None);
        let mut stdout = child.stdout.take().unwrap();
        let st = state.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (lock, cv) = &*st;
                let mut s = lock.lock().unwrap();
                if n == 0 {
                    s.eof = true;
                    cv.notify_all();
                    return;
                }
                s.feed(&buf[..n]);
                cv.notify_all();
            }
        });
        Sse {
            child,
            state,
            url: url.to_string(),
            stderr,
        }
    }

    fn wait<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&mut SseState) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(v) = f(&mut s) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline || s.eof {
                return f(&mut s);
            }
            s = cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    /// The HTTP status, once the response head arrived (None: no head within `timeout`).
    pub fn status(&self, timeout: Duration) -> Option<u16> {
        self.wait(timeout, |s| if s.head_done { s.status } else { None })
    }

    /// A response header (case-insensitive name), once the head arrived.
    pub fn header(&self, name: &str) -> Option<String> {
        self.wait(WAIT, |s| s.head_done.then_some(()))?;
        let s = self.state.0.lock().unwrap();
        s.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// The next event not yet taken.
    pub fn next(&self, timeout: Duration) -> Option<Event> {
        self.wait(timeout, |s| s.pending.pop_front())
    }

    /// Takes up to `n` events, waiting at most `timeout` in total.
    pub fn collect(&self, n: usize, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Takes exactly `n` events or panics with what arrived (and curl's stderr).
    pub fn expect(&self, n: usize, timeout: Duration) -> Vec<Event> {
        let got = self.collect(n, timeout);
        if got.len() < n {
            panic!(
                "{}: expected {n} events within {timeout:?}, got {}: {:?}\nstatus {:?}, eof {}, curl: {}\nbody so far: {:?}",
                self.url,
                got.len(),
                got.iter().map(|e| &e.data).collect::<Vec<_>>(),
                self.status(Duration::ZERO),
                self.is_eof(),
                self.stderr.text(),
                String::from_utf8_lossy(&self.body()).chars().take(2000).collect::<String>()
            );
        }
        got
    }

    /// Asserts no further event arrives within `quiet` (a negative check: keep it short).
    pub fn expect_no_more(&self, quiet: Duration) {
        if let Some(e) = self.next(quiet) {
            panic!("{}: unexpected extra event {e:?}", self.url);
        }
    }

    /// All events received so far (taken or not).
    pub fn received(&self) -> Vec<Event> {
        self.state.0.lock().unwrap().received.clone()
    }

    /// The response body bytes so far (curl has removed the chunked framing).
    pub fn body(&self) -> Vec<u8> {
        self.state.0.lock().unwrap().body.clone()
    }

    /// Waits until the body satisfies `pred`.
    pub fn wait_body(&self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        self.wait(timeout, |s| pred(&s.body).then_some(()))
            .is_some()
    }

    /// Number of `:` comment lines received.
    pub fn comments(&self) -> usize {
        self.state.0.lock().unwrap().comments
    }

    /// Waits until the server ends the response (curl exits).
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.eof.then_some(())).is_some()
    }

    pub fn is_eof(&self) -> bool {
        self.state.0.lock().unwrap().eof
    }

    /// curl's stderr (transfer errors).
    pub fn curl_errors(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
    }
}
