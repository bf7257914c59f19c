//! A client that behaves like an EventSource: it reads a stream, and whenever the stream ends
//! (a drain, a shed answer, a lost connection) it reconnects after the `retry:` delay it was
//! given with `Last-Event-ID` set to the last id it saw. Used through a load balancer to prove
//! that a client moving between instances loses and repeats nothing.

use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

#[derive(Default)]
pub struct Seen {
    /// (id, data) of every event, in arrival order.
    pub events: Mutex<Vec<(String, String)>>,
    /// Connections made (the first included).
    pub connects: AtomicUsize,
    /// Responses that were not `200`.
    pub refused: AtomicUsize,
    /// `retry:` delays received.
    pub retries: Mutex<Vec<u64>>,
}

pub struct Resumer {
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Resumer {
    /// Starts reading `path` through `addr` (close-delimited HTTP/1.1, so each response is one
    /// connection, as a load balancer balances them).
    pub fn start(addr: &str, path: &str) -> Resumer {
        let seen: Arc<Seen> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, addr, path) = (
            seen.clone(),
            stop.clone(),
            addr.to_string(),
            path.to_string(),
        );
        let thread = thread::spawn(move || run(&addr, &path, &s, &st));
        Resumer {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> usize {
        self.seen.events.lock().unwrap().len()
    }

    pub fn events(&self) -> Vec<(String, String)> {
        self.seen.events.lock().unwrap().clone()
    }

    pub fn connects(&self) -> usize {
        self.seen.connects.load(Ordering::SeqCst)
    }
}

impl Drop for Resumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(addr: &str, path: &str, seen: &Seen, stop: &AtomicBool) {
    let mut last_id: Option<String> = None;
    let mut retry_ms: u64 = 200;
    while !stop.load(Ordering::SeqCst) {
        read_once(addr, path, seen, stop, &mut last_id, &mut retry_ms);
        // Wait the delay the server asked for (a connection error waits the same).
        let mut waited = 0;
        while waited < retry_ms && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
            waited += 10;
        }
    }
}

fn read_once(
    addr: &str,
    path: &str,
    seen: &Seen,
    stop: &AtomicBool,
    last_id: &mut Option<String>,
    retry_ms: &mut u64,
) {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return;
    };
    seen.connects.fetch_add(1, Ordering::SeqCst);
    conn.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let id_header = last_id
        .as_ref()
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{id_header}Connection: close\r\n\r\n"
    );
    if conn.write_all(req.as_bytes()).is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut tmp = [0u8; 16384];
    // Field state of the event being parsed.
    let mut id: Option<String> = None;
    let mut data: Vec<String> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn.read(&mut tmp) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        if !head_done {
            let Some(end) = crate::find(&buf, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            head_done = true;
            if !head.starts_with("HTTP/1.1 200") {
                seen.refused.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        // Whole lines only; a partial line waits for more bytes.
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..nl]).into_owned();
            buf.drain(..=nl);
            if line.is_empty() {
                if !data.is_empty() {
                    let event_id = id.clone().unwrap_or_default();
                    seen.events
                        .lock()
                        .unwrap()
                        .push((event_id.clone(), data.join("\n")));
                    data.clear();
                }
                if let Some(i) = id.take() {
                    *last_id = Some(i);
                }
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "id" => id = Some(value),
                "data" => data.push(value),
                "retry" => {
                    if let Ok(ms) = value.parse() {
                        *retry_ms = ms;
                        seen.retries.lock().unwrap().push(ms);
                    }
                }
                _ => {}
            }
        }
    }
}
