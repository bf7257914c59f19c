//! A TCP relay in front of the broker that can cut its connections and counts traffic.
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::*;

/// Connections whose first Kafka request carries a client id starting with this prefix are
/// never cut (the test's own producer uses it, so it can keep producing during an outage).
pub const EXEMPT_CLIENT_ID: &str = "harness-direct";

pub(crate) struct RelayConn {
    down: TcpStream,
    up: TcpStream,
    exempt: bool,
}

#[derive(Default)]
pub(crate) struct RelayShared {
    cut: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<RelayConn>>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    /// Traffic per Kafka client id (observation only; relaying is unchanged).
    stats: Mutex<HashMap<String, ClientTraffic>>,
}

/// What the relay saw of the connections of one Kafka client id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTraffic {
    /// Connections relayed (accepted and connected upstream).
    pub connections: usize,
    /// Requests sent to the broker, by Kafka API key (0 Produce, 1 Fetch, 2 ListOffsets,
    /// 3 Metadata, 18 ApiVersions, 32 DescribeConfigs, ...).
    pub requests: BTreeMap<i16, usize>,
    /// Bytes client → broker.
    pub bytes_up: usize,
    /// Bytes broker → client.
    pub bytes_down: usize,
}

/// A TCP relay from a loopback port to tansu. `cut()` closes every relayed connection (except
/// the test's own exempt ones) and refuses new ones (accepts, then closes) until `restore()`.
/// Start tansu advertising the relay's address so that every connection the server makes goes
/// through it.
pub struct Relay {
    pub port: u16,
    upstream: SocketAddr,
    shared: Arc<RelayShared>,
}

impl Relay {
    /// Listens on `port` and forwards to `upstream` (which may start later).
    pub fn start(port: u16, upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind relay");
        let shared = Arc::new(RelayShared::default());
        let sh = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(down) = conn else { continue };
                let sh = sh.clone();
                thread::spawn(move || relay_conn(down, upstream, sh));
            }
        });
        Relay {
            port,
            upstream,
            shared,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the relay forwards to (tansu's own address).
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Cuts all non-exempt connections and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let mut conns = self.shared.conns.lock().unwrap();
        conns.retain(|c| {
            if c.exempt {
                return true;
            }
            let _ = c.down.shutdown(Shutdown::Both);
            let _ = c.up.shutdown(Shutdown::Both);
            false
        });
    }

    /// Accepts and relays new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Non-exempt connections refused while cut (proof that a client tried to reconnect).
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections accepted and relayed so far (exempt or not).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// What the relay saw of the connections whose Kafka client id is `client_id` (the server
    /// under test uses `sse-kafka`; the harness producer `harness-producer`).
    pub fn traffic(&self, client_id: &str) -> ClientTraffic {
        self.shared
            .stats
            .lock()
            .unwrap()
            .get(client_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Currently open non-exempt relayed connections.
    pub fn active(&self) -> usize {
        self.shared
            .conns
            .lock()
            .unwrap()
            .iter()
            .filter(|c| !c.exempt)
            .count()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.cut.store(true, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.down.shutdown(Shutdown::Both);
            let _ = c.up.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(200),
        );
    }
}

/// Reads the first Kafka request header far enough to see its client id.
pub(crate) fn read_client_id(s: &mut TcpStream, seen: &mut Vec<u8>) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tmp = [0u8; 4096];
    // size(4) api_key(2) api_version(2) correlation(4) client_id_len(2)
    while seen.len() < 14 {
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&tmp[..n]);
    }
    let len = i16::from_be_bytes([seen[12], seen[13]]);
    if len < 0 {
        return Some(String::new());
    }
    let len = len as usize;
    while seen.len() < 14 + len {
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&tmp[..n]);
    }
    s.set_read_timeout(None).ok();
    Some(String::from_utf8_lossy(&seen[14..14 + len]).into_owned())
}

pub(crate) fn relay_conn(mut down: TcpStream, upstream: SocketAddr, sh: Arc<RelayShared>) {
    if sh.stop.load(Ordering::SeqCst) {
        return;
    }
    let mut seen = Vec::new();
    let Some(client_id) = read_client_id(&mut down, &mut seen) else {
        return;
    };
    let exempt = client_id.starts_with(EXEMPT_CLIENT_ID);
    if sh.cut.load(Ordering::SeqCst) && !exempt {
        sh.refused.fetch_add(1, Ordering::SeqCst);
        let _ = down.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        let _ = down.shutdown(Shutdown::Both);
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = down.set_nodelay(true);
    if up.write_all(&seen).is_err() {
        return;
    }
    sh.accepted.fetch_add(1, Ordering::SeqCst);
    sh.stats
        .lock()
        .unwrap()
        .entry(client_id.clone())
        .or_default()
        .connections += 1;
    {
        let mut conns = sh.conns.lock().unwrap();
        // Cut may have happened while connecting.
        if sh.cut.load(Ordering::SeqCst) && !exempt {
            sh.refused.fetch_add(1, Ordering::SeqCst);
            let _ = down.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
            return;
        }
        conns.push(RelayConn {
            down: down.try_clone().unwrap(),
            up: up.try_clone().unwrap(),
            exempt,
        });
    }
    let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
    let sh2 = sh.clone();
    let (id_up, id_down) = (client_id.clone(), client_id);
    // The first bytes (`seen`) already went up; the frame counter starts with them.
    thread::spawn(move || pump_up(d2, u2, sh2, id_up, seen));
    pump_with(up, down, sh, Tap::Down(id_down));
}

/// Which direction a pump observes, for `ClientTraffic`.
pub(crate) enum Tap {
    /// Client → broker: counts bytes and requests (frames: i32 size, then i16 API key).
    Up(String, KafkaFrames),
    /// Broker → client: counts bytes.
    Down(String),
}

/// Splits a client → broker byte stream into Kafka request frames.
#[derive(Default)]
pub(crate) struct KafkaFrames {
    head: Vec<u8>,
    /// Bytes of the current frame still to skip once its API key is known.
    skip: usize,
}

impl KafkaFrames {
    fn feed(&mut self, mut bytes: &[u8], mut on_request: impl FnMut(i16)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let need = 6 - self.head.len();
            let n = need.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.head.len() == 6 {
                let size = i32::from_be_bytes(self.head[..4].try_into().unwrap()).max(2) as usize;
                on_request(i16::from_be_bytes([self.head[4], self.head[5]]));
                self.skip = size - 2;
                self.head.clear();
            }
        }
    }
}

/// Client → broker: `seen` (the first bytes, already forwarded) starts the frame count.
pub(crate) fn pump_up(
    from: TcpStream,
    to: TcpStream,
    sh: Arc<RelayShared>,
    id: String,
    seen: Vec<u8>,
) {
    let mut frames = KafkaFrames::default();
    {
        let mut stats = sh.stats.lock().unwrap();
        let t = stats.entry(id.clone()).or_default();
        t.bytes_up += seen.len();
        frames.feed(&seen, |k| *t.requests.entry(k).or_default() += 1);
    }
    pump_with(from, to, sh, Tap::Up(id, frames))
}

pub(crate) fn pump_with(
    mut from: TcpStream,
    mut to: TcpStream,
    sh: Arc<RelayShared>,
    mut tap: Tap,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                {
                    let mut stats = sh.stats.lock().unwrap();
                    match &mut tap {
                        Tap::Up(id, frames) => {
                            let t = stats.entry(id.clone()).or_default();
                            t.bytes_up += n;
                            frames.feed(&buf[..n], |k| *t.requests.entry(k).or_default() += 1);
                        }
                        Tap::Down(id) => stats.entry(id.clone()).or_default().bytes_down += n,
                    }
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    // Forget closed connections.
    let local = from.local_addr().ok();
    let peer = from.peer_addr().ok();
    let mut conns = sh.conns.lock().unwrap();
    conns.retain(|c| {
        let a = (c.down.local_addr().ok(), c.down.peer_addr().ok());
        let b = (c.up.local_addr().ok(), c.up.peer_addr().ok());
        a != (local, peer) && b != (local, peer)
    });
}

/// A broker behind a relay, with one topic, and a producer through the relay that the relay
/// does not cut (client id [`EXEMPT_CLIENT_ID`]).
pub fn relayed_topic(name: &str, partitions: i32) -> (Broker, Relay, Producer) {
    let (broker, relay) = broker_behind_relay();
    broker.create_topic(name, partitions);
    let producer = Producer::with_options(&relay.addr(), &[("client.id", EXEMPT_CLIENT_ID)]);
    (broker, relay, producer)
}

/// Starts a relay and a tansu broker behind it (advertising the relay), returning both.
pub fn broker_behind_relay() -> (Broker, Relay) {
    let relay_port = free_port();
    let broker_port = free_port();
    let relay = Relay::start(relay_port, SocketAddr::from(([127, 0, 0, 1], broker_port)));
    let broker = Broker::start_on(broker_port, &format!("127.0.0.1:{relay_port}"));
    (broker, relay)
}
