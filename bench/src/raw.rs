//! The raw floor (`sse-kafka-bench raw-server …`): the least an SSE server can do on this
//! runtime. Thread-per-core monoio workers with SO_REUSEPORT listeners read a request head
//! (no parsing beyond finding its end), answer a fixed chunked 200 head, and write to every
//! connection the same pre-encoded events (chunk framing included, encoded once per worker)
//! at the rate the harness asks for. No Kafka, no routing, no ids to resume.
//!
//! Control on stdin: `go RATE COUNT SIZE [BURST_MS]` starts emitting COUNT events of SIZE-byte
//! values at RATE per second (every worker emits the same sequence `src 0, seq 0..COUNT`,
//! stamped when it is encoded); with BURST_MS > 0 events are stamped at their scheduled time
//! but released only every BURST_MS, in one batch (to mimic a broker that answers fetches at a
//! fixed cadence); `quit` exits. A connection whose client falls more than [`WINDOW`] events
//! behind is closed (a bounded budget, as the real server has).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::BufRead;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::payload::{mono_ns, write_value};

/// Events kept per worker for connections that are behind.
const WINDOW: usize = 4096;

const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

#[derive(Default)]
struct Go {
    rate: AtomicU64,
    count: AtomicU64,
    size: AtomicU64,
    burst_ms: AtomicU64,
    started: AtomicBool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut listen: SocketAddr = "127.0.0.1:7200".parse().unwrap();
    let mut workers = crate::net::cores();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || crate::procs::flag_value(it.next(), a);
        match a.as_str() {
            "--listen" => listen = v()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--workers" => workers = v()?.parse().map_err(|e| format!("--workers: {e}"))?,
            other => return Err(format!("raw-server: unknown argument {other}")),
        }
    }
    let go = Arc::new(Go::default());
    let cores = crate::net::cores();
    for id in 0..workers.max(1) {
        let listener = crate::net::listen_reuseport(listen, 4096)
            .map_err(|e| format!("bind {listen}: {e}"))?;
        let go = go.clone();
        std::thread::Builder::new()
            .name(format!("raw-{id}"))
            .spawn(move || {
                crate::net::pin_to_core(id % cores);
                let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .with_entries(4096)
                    .enable_timer()
                    .build()
                    .expect("runtime");
                rt.block_on(worker(listener, go));
            })
            .map_err(|e| format!("spawn: {e}"))?;
    }
    eprintln!("raw-server listening on {listen} with {workers} workers");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let p: Vec<&str> = line.split_whitespace().collect();
        match p.as_slice() {
            ["go", rate, count, size, burst @ ..] => {
                go.rate
                    .store(rate.parse().unwrap_or(1000), Ordering::SeqCst);
                go.count.store(count.parse().unwrap_or(0), Ordering::SeqCst);
                go.size.store(size.parse().unwrap_or(256), Ordering::SeqCst);
                let b = burst.first().and_then(|b| b.parse().ok()).unwrap_or(0);
                go.burst_ms.store(b, Ordering::SeqCst);
                go.started.store(true, Ordering::SeqCst);
            }
            ["quit"] => break,
            _ => eprintln!("raw-server: unknown command {line:?}"),
        }
    }
    std::process::exit(0);
}

/// One worker's events: a window of encoded chunks and the connections waiting for more.
struct Feed {
    /// seq of `events[0]`.
    base: u64,
    events: VecDeque<Bytes>,
    waiters: Vec<Waker>,
}

impl Feed {
    fn end(&self) -> u64 {
        self.base + self.events.len() as u64
    }
}

async fn worker(listener: std::net::TcpListener, go: Arc<Go>) {
    let listener = TcpListener::from_std(listener).expect("listener");
    let feed = Rc::new(RefCell::new(Feed {
        base: 0,
        events: VecDeque::with_capacity(WINDOW),
        waiters: Vec::new(),
    }));
    monoio::spawn(generate(feed.clone(), go));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                monoio::spawn(connection(stream, feed.clone()));
            }
            Err(_) => monoio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn generate(feed: Rc<RefCell<Feed>>, go: Arc<Go>) {
    while !go.started.load(Ordering::SeqCst) {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = go.rate.load(Ordering::SeqCst).max(1);
    let count = go.count.load(Ordering::SeqCst);
    let size = go.size.load(Ordering::SeqCst) as usize;
    let burst_ns = go.burst_ms.load(Ordering::SeqCst) * 1_000_000;
    let start = mono_ns();
    let mut value = Vec::with_capacity(size + 64);
    let mut seq = 0u64;
    while seq < count {
        let now = mono_ns();
        let due = start + seq * 1_000_000_000 / rate;
        let release = if burst_ns > 0 {
            start + (due - start).div_ceil(burst_ns) * burst_ns
        } else {
            due
        };
        if now < release {
            monoio::time::sleep(Duration::from_nanos(release - now)).await;
            continue;
        }
        // Everything due now, each stamped as it is encoded.
        let mut f = feed.borrow_mut();
        while seq < count && start + seq * 1_000_000_000 / rate <= now {
            let stamp = if burst_ns > 0 {
                start + seq * 1_000_000_000 / rate
            } else {
                mono_ns()
            };
            write_value(&mut value, 0, seq, stamp, size);
            let body_len = 3 + digits(seq) + 6 + value.len() + 2;
            let mut ev = Vec::with_capacity(body_len + 16);
            ev.extend_from_slice(format!("{body_len:x}\r\nid:{seq}\ndata:").as_bytes());
            ev.extend_from_slice(&value);
            ev.extend_from_slice(b"\n\n\r\n");
            if f.events.len() == WINDOW {
                f.events.pop_front();
                f.base += 1;
            }
            f.events.push_back(Bytes::from(ev));
            seq += 1;
        }
        for w in f.waiters.drain(..) {
            w.wake();
        }
    }
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

async fn connection(mut stream: TcpStream, feed: Rc<RefCell<Feed>>) {
    // Read until the end of the request head; nothing in it is looked at.
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= 8192 {
            return;
        }
        if buf.len() == buf.capacity() {
            buf.reserve(1024);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let (res, b) = stream
            .read(monoio::buf::IoBufMut::slice_mut(buf, len..cap))
            .await;
        buf = b.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    drop(buf);
    let (res, _) = stream.write_all(HEAD).await;
    if res.is_err() {
        return;
    }
    let mut next = feed.borrow().base;
    let mut batch: Vec<u8> = Vec::new();
    loop {
        let pending = poll_fn(|cx| {
            let mut f = feed.borrow_mut();
            if next < f.base {
                return Poll::Ready(None); // too far behind: cut
            }
            if next < f.end() {
                let from = (next - f.base) as usize;
                let n = f.events.len() - from;
                let out = if n == 1 {
                    Ok(f.events[from].clone())
                } else {
                    // Behind by several: coalesce them into one write.
                    let mut b = std::mem::take(&mut batch);
                    b.clear();
                    for e in f.events.range(from..) {
                        b.extend_from_slice(e);
                    }
                    Err(b)
                };
                next = f.end();
                return Poll::Ready(Some(out));
            }
            f.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let res = match pending {
            None => return,
            Some(Ok(one)) => stream.write_all(one).await.0,
            Some(Err(many)) => {
                let (res, back) = stream.write_all(many).await;
                batch = back;
                if batch.capacity() > 64 * 1024 {
                    batch = Vec::new();
                }
                res
            }
        };
        if res.is_err() {
            return;
        }
    }
}
