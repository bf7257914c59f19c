//! Loopback ports: free ones handed out once per process, and waiting for one to listen.
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Generous upper bound for anything a test waits for (events, statuses, process start). Only
/// reached when something is broken; the happy path never waits for it.
pub const WAIT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range: a port taken from inside
/// that range could be grabbed by any outgoing connection (curl, the producer, the server's own
/// Kafka connections) before the listener that wants it binds. Ports handed out by this process
/// are never handed out twice, so tests running in parallel in one binary do not collide; the
/// start point is random so that concurrent test runs on one machine rarely meet.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<std::collections::HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u32>().ok())
        })
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.min(65_535));
    if high > low + 2_000 {
        let span = high - low;
        let seed = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        );
        for i in 0..span {
            let port = (low + (seed.wrapping_add(i.wrapping_mul(7_919)) % span)) as u16;
            if given.lock().unwrap().contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.lock().unwrap().insert(port);
                return port;
            }
        }
    }
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free port found");
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a TCP connection to `addr` succeeds.
pub fn wait_for_port(addr: &str, timeout: Duration) -> bool {
    let sa: SocketAddr = addr.parse().expect("socket address");
    wait_until(timeout, || {
        TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok()
    })
}
