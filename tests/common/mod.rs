//! Shared harness for the black-box integration tests.
//!
//! Every test starts its own processes on its own loopback ports: a `tansu` broker (memory
//! storage), the built `sse-kafka` binary, real `curl` clients, and, where needed, a TCP relay
//! that can cut the broker connections. Everything is killed on drop, also when a test panics;
//! a failing test prints the server's stderr and the tail of the broker's log.
//!
//! Each test file does `mod common;` and uses what it needs, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Generous upper bound for anything a test waits for (events, statuses, process start). Only
/// reached when something is broken; the happy path never waits for it.
pub const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

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

/// Base64url with `=` padding (the alphabet and padding of Zilla's event ids).
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict base64url decoding with padding required (length a multiple of 4).
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    for (i, q) in t.chunks(4).enumerate() {
        let last = i == t.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (j, &c) in q.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { val(c)? };
            n = n << 6 | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// Encodes a V1 progress id (reference section 3.1): `0x01`, zig-zag varint count, then
/// (partition, next offset) pairs, base64url with padding.
pub fn encode_id(progress: &[(i32, i64)]) -> String {
    let mut bytes = vec![1u8];
    put_varint(&mut bytes, progress.len() as i64);
    for &(p, o) in progress {
        put_varint(&mut bytes, p as i64);
        put_varint(&mut bytes, o);
    }
    b64url(&bytes)
}

/// Decodes the progress part of an event id: `<progress64>[/etag]` or
/// `["<key64>"|null,"<progress64>[/etag]"]`. Returns partition → next offset.
pub fn decode_id(id: &str) -> Option<BTreeMap<i32, i64>> {
    let progress = if id.starts_with('[') {
        let inner = id.strip_suffix("\"]")?;
        let start = inner.rfind(",\"")? + 2;
        &inner[start..]
    } else {
        id
    };
    let progress = progress.split('/').next()?;
    let bytes = b64url_decode(progress)?;
    if bytes.first() != Some(&1) {
        return None;
    }
    let mut pos = 1;
    let count = get_varint(&bytes, &mut pos)?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let p = get_varint(&bytes, &mut pos)?;
        let o = get_varint(&bytes, &mut pos)?;
        map.insert(p as i32, o);
    }
    (pos == bytes.len()).then_some(map)
}

/// Percent-encodes everything but unreserved characters (for `?lastEventId=`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Finds an executable: `$PATH` first, then `~/.cargo/bin` (or `$CARGO_HOME/bin`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The `sse-kafka` binary under test (`SSE_KAFKA_BIN` overrides, for harness development).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SSE_KAFKA_BIN") {
        return PathBuf::from(p);
    }
    match option_env!("CARGO_BIN_EXE_sse-kafka") {
        Some(p) => PathBuf::from(p),
        None => panic!("SSE_KAFKA_BIN is not set and this is not the sse-kafka package"),
    }
}

/// A command whose process is killed when the spawning thread's process dies (so that a killed
/// test run leaves no broker or server behind). Note: PR_SET_PDEATHSIG fires when the *thread*
/// that spawned the child exits, so spawn from the test's own thread (all harness types do).
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Lines of a child's output, collected by a reader thread.
#[derive(Default)]
pub struct Lines {
    lines: Mutex<Vec<String>>,
    cv: Condvar,
    closed: AtomicBool,
}

impl Lines {
    fn spawn_reader(self: &Arc<Self>, r: impl Read + Send + 'static, echo: Option<&'static str>) {
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
fn echo(prefix: &'static str) -> Option<&'static str> {
    std::env::var_os("HARNESS_ECHO").map(|_| prefix)
}

fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

// ---------------------------------------------------------------------------------------------
// Broker: tansu
// ---------------------------------------------------------------------------------------------

/// A `tansu` broker with memory storage, on its own loopback port, killed on drop.
pub struct Broker {
    child: Child,
    /// Where tansu listens.
    pub port: u16,
    /// What tansu advertises in metadata (`host:port`): itself, or a relay in front of it.
    pub advertised: String,
    log: Arc<Lines>,
}

pub fn tansu_bin() -> PathBuf {
    find_program("tansu").unwrap_or_else(|| {
        panic!("tansu not found on PATH or in ~/.cargo/bin: run scripts/test, or `cargo install tansu --features dynostore`")
    })
}

impl Broker {
    /// Starts tansu on a free port, advertising itself.
    pub fn start() -> Broker {
        let port = free_port();
        Broker::start_on(port, &format!("127.0.0.1:{port}"))
    }

    /// Starts tansu listening on `port` and advertising `advertised` (`host:port`).
    pub fn start_on(port: u16, advertised: &str) -> Broker {
        let mut cmd = command(tansu_bin());
        cmd.args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tansu");
        let log = Arc::new(Lines::default());
        log.spawn_reader(child.stdout.take().unwrap(), echo("[tansu] "));
        log.spawn_reader(child.stderr.take().unwrap(), echo("[tansu] "));
        let mut broker = Broker {
            child,
            port,
            advertised: advertised.to_string(),
            log,
        };
        let addr = broker.addr();
        let ready = wait_until(WAIT, || {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited early ({status}):\n{}", broker.log.text());
            }
            api_versions_ok(&addr)
        });
        assert!(
            ready,
            "tansu did not answer ApiVersions on {addr}:\n{}",
            broker.log.text()
        );
        broker
    }

    /// `127.0.0.1:port`, where tansu itself listens.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The bootstrap address clients should use (the advertised one).
    pub fn bootstrap(&self) -> String {
        self.advertised.clone()
    }

    /// `tansu topic create NAME --partitions N --broker tcp://127.0.0.1:P`.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let out = command(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
            ])
            .arg(format!("tcp://{}", self.addr()))
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn logs(&self) -> String {
        self.log.text()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "--- tansu on port {} (last 40 lines) ---\n{}\n---",
                self.port,
                self.log.tail(40)
            );
        }
    }
}

/// Sends a raw ApiVersions v0 request and checks for a well-formed, error-free answer.
pub fn api_versions_ok(addr: &str) -> bool {
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let client_id = b"harness";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    if s.write_all(&frame).is_err() {
        return false;
    }
    let mut head = [0u8; 10];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    let correlation = i32::from_be_bytes(head[4..8].try_into().unwrap());
    let error = i16::from_be_bytes(head[8..10].try_into().unwrap());
    correlation == 7 && error == 0
}

// ---------------------------------------------------------------------------------------------
// Producer: rdkafka BaseProducer, no async runtime
// ---------------------------------------------------------------------------------------------

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// One record to produce.
#[derive(Debug, Clone, Default)]
pub struct Rec {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Rec {
    /// A record with this value (no key, partition chosen by the client).
    pub fn value(v: impl AsRef<[u8]>) -> Rec {
        Rec {
            value: Some(v.as_ref().to_vec()),
            ..Rec::default()
        }
    }
    /// A tombstone (null value).
    pub fn tombstone() -> Rec {
        Rec::default()
    }
    pub fn key(mut self, k: impl AsRef<[u8]>) -> Rec {
        self.key = Some(k.as_ref().to_vec());
        self
    }
    pub fn partition(mut self, p: i32) -> Rec {
        self.partition = Some(p);
        self
    }
    pub fn header(mut self, name: &str, v: impl AsRef<[u8]>) -> Rec {
        self.headers.push((name.to_string(), v.as_ref().to_vec()));
        self
    }
}

type Report = Result<Delivered, String>;

#[derive(Default)]
pub struct DeliveryContext {
    reports: Mutex<HashMap<usize, Report>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let report = match result {
            Ok(m) => Ok(Delivered {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, _)) => Err(e.to_string()),
        };
        self.reports.lock().unwrap().insert(id, report);
    }
}

/// A Kafka producer for tests. `send` waits for the delivery report, so when it returns the
/// record is committed and its partition and offset are known; by default every `send` is its
/// own record batch (linger.ms 0, one record in flight). `send_batch` puts all its records into
/// one batch per partition (they are queued together and released after a short linger).
pub struct Producer {
    inner: BaseProducer<DeliveryContext>,
    next_id: AtomicUsize,
}

/// The linger used by batching producers: long enough for `send_batch` to queue every record
/// before the batch leaves.
const BATCH_LINGER_MS: &str = "200";

impl Producer {
    /// An uncompressed producer, one batch per `send`.
    pub fn new(bootstrap: &str) -> Producer {
        Producer::with_options(bootstrap, &[])
    }

    /// A producer that compresses with `codec` (`gzip`, `snappy`, `lz4`, `zstd` or `none`);
    /// lingers so that `send_batch` makes multi-record compressed batches.
    pub fn with_compression(bootstrap: &str, codec: &str) -> Producer {
        Producer::with_options(
            bootstrap,
            &[("compression.type", codec), ("linger.ms", BATCH_LINGER_MS)],
        )
    }

    /// An uncompressed producer that lingers (for `send_batch`).
    pub fn batching(bootstrap: &str) -> Producer {
        Producer::with_options(bootstrap, &[("linger.ms", BATCH_LINGER_MS)])
    }

    /// Any librdkafka producer properties on top of the defaults.
    pub fn with_options(bootstrap: &str, options: &[(&str, &str)]) -> Producer {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .set("batch.num.messages", "100000")
            .set("batch.size", "4000000")
            .set("message.max.bytes", "4000000")
            .set("message.timeout.ms", "30000")
            .set("socket.timeout.ms", "10000")
            .set("enable.idempotence", "false")
            .set("client.id", "harness-producer");
        for (k, v) in options {
            cfg.set(*k, *v);
        }
        let inner = cfg
            .create_with_context(DeliveryContext::default())
            .expect("create producer");
        Producer {
            inner,
            next_id: AtomicUsize::new(0),
        }
    }

    /// Sends one record and waits for its delivery report.
    pub fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Delivered {
        let rec = Rec {
            partition,
            key: key.map(|k| k.to_vec()),
            value: value.map(|v| v.to_vec()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
        };
        self.send_batch(topic, std::slice::from_ref(&rec))[0]
    }

    /// Sends one record and waits for its delivery report.
    pub fn send_rec(&self, topic: &str, rec: &Rec) -> Delivered {
        self.send_batch(topic, std::slice::from_ref(rec))[0]
    }

    /// Sends a value (no key) and waits; shorthand.
    pub fn send_value(&self, topic: &str, partition: Option<i32>, value: &str) -> Delivered {
        self.send(topic, partition, None, Some(value.as_bytes()), &[])
    }

    /// Queues every record, then waits for all delivery reports. With a lingering producer
    /// (`batching`, `with_compression`) the records of one partition travel in one batch.
    pub fn send_batch(&self, topic: &str, recs: &[Rec]) -> Vec<Delivered> {
        let ids: Vec<usize> = recs.iter().map(|r| self.enqueue(topic, r)).collect();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            {
                let reports = self.inner.context().reports.lock().unwrap();
                if ids.iter().all(|id| reports.contains_key(id)) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no delivery report within 40 s for topic {topic}"
            );
            self.inner.poll(Duration::from_millis(20));
        }
        let mut reports = self.inner.context().reports.lock().unwrap();
        ids.iter()
            .map(|id| match reports.remove(id).unwrap() {
                Ok(d) => d,
                Err(e) => panic!("produce to {topic} failed: {e}"),
            })
            .collect()
    }

    fn enqueue(&self, topic: &str, rec: &Rec) -> usize {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        loop {
            let mut r: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, id);
            if let Some(p) = rec.partition {
                r = r.partition(p);
            }
            if let Some(k) = &rec.key {
                r = r.key(k.as_slice());
            }
            if let Some(v) = &rec.value {
                r = r.payload(v.as_slice());
            }
            if !rec.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(rec.headers.len());
                for (name, value) in &rec.headers {
                    h = h.insert(Header {
                        key: name,
                        value: Some(value.as_slice()),
                    });
                }
                r = r.headers(h);
            }
            match self.inner.send(r) {
                Ok(()) => return id,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => self.inner.poll(Duration::from_millis(50)),
                Err((e, _)) => panic!("enqueue to {topic} failed: {e}"),
            }
        }
    }

    /// Transactions (for READ_COMMITTED tests): create with
    /// `with_options(b, &[("transactional.id", "t1")])`, then `init_transactions` once.
    pub fn init_transactions(&self) {
        self.inner
            .init_transactions(Duration::from_secs(20))
            .expect("init_transactions");
    }
    pub fn begin(&self) {
        self.inner.begin_transaction().expect("begin_transaction");
    }
    pub fn commit(&self) {
        self.inner
            .commit_transaction(Duration::from_secs(20))
            .expect("commit_transaction");
    }
    pub fn abort(&self) {
        self.inner
            .abort_transaction(Duration::from_secs(20))
            .expect("abort_transaction");
    }

    /// Low and high watermarks of a partition, as the broker reports them (ListOffsets).
    pub fn watermarks(&self, topic: &str, partition: i32) -> (i64, i64) {
        self.inner
            .client()
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks")
    }
}

/// A record read back by `read_back`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Reads `n` records of `topic` (all partitions, from the beginning, READ_COMMITTED) with an
/// rdkafka `BaseConsumer`; for checking the harness and the broker, not the server.
pub fn read_back(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "harness-read-back")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("client.id", "harness-direct-consumer")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < n && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| k.to_vec()),
                value: m.payload().map(|v| v.to_vec()),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or(b"").to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Server: the sse-kafka binary
// ---------------------------------------------------------------------------------------------

/// Builds and starts an `sse-kafka` process.
pub struct ServerBuilder {
    port: u16,
    yaml: Option<String>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    listeners: usize,
}

impl ServerBuilder {
    /// Writes `yaml` to `<dir>/zilla.yaml` and passes `--config <that file>`.
    pub fn config(mut self, yaml: &str) -> Self {
        self.yaml = Some(yaml.to_string());
        self
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// The directory for the config file (and the working directory); default: a new temp dir.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }
    /// How many `listening on` lines to wait for (default 1).
    pub fn listeners(mut self, n: usize) -> Self {
        self.listeners = n;
        self
    }
    /// Starts the process and waits until it is listening.
    pub fn start(self) -> Server {
        let (tmp, dir) = match self.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let mut cmd = command(server_bin());
        cmd.current_dir(&dir);
        let mut config_path = None;
        if let Some(yaml) = &self.yaml {
            let path = dir.join("zilla.yaml");
            std::fs::write(&path, yaml).expect("write zilla.yaml");
            cmd.arg("--config").arg(&path);
            config_path = Some(path);
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", server_bin().display()));
        let log = Arc::new(Lines::default());
        log.spawn_reader(child.stderr.take().unwrap(), echo("[sse-kafka] "));
        let stdout = Arc::new(Lines::default());
        stdout.spawn_reader(child.stdout.take().unwrap(), echo("[sse-kafka stdout] "));
        let mut server = Server {
            child,
            port: self.port,
            log,
            stdout,
            _tmp: tmp,
            dir,
            config_path,
            exited: None,
        };
        let listening = server
            .log
            .wait_count(self.listeners, WAIT, |l| l.contains("listening on"));
        if !listening {
            let status = wait_timeout(&mut server.child, Duration::from_millis(200));
            panic!(
                "sse-kafka did not log `listening on` (exit: {status:?}); yaml:\n{}\nstderr:\n{}",
                self.yaml.as_deref().unwrap_or("(none)"),
                server.log.text()
            );
        }
        assert!(
            wait_for_port(&server.addr(), WAIT),
            "sse-kafka said it listens but {} refuses connections:\n{}",
            server.addr(),
            server.log.text()
        );
        server
    }
}

/// A running `sse-kafka`; SIGTERM on drop (SIGKILL after 5 s). On a failing test its stderr is
/// printed.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Lines>,
    stdout: Arc<Lines>,
    _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    pub config_path: Option<PathBuf>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// A builder for a server that will listen on `port` (the port the config or `--listen`
    /// names; the builder does not invent it).
    pub fn builder(port: u16) -> ServerBuilder {
        ServerBuilder {
            port,
            yaml: None,
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            listeners: 1,
        }
    }

    /// `sse-kafka --config <yaml>` listening on `port`.
    pub fn with_config(port: u16, yaml: &str) -> Server {
        Server::builder(port).config(yaml).start()
    }

    /// `sse-kafka --kafka <bootstrap> --listen 127.0.0.1:<free port> [extra...]`.
    pub fn direct(bootstrap: &str, extra: &[&str]) -> Server {
        let port = free_port();
        Server::builder(port)
            .args([
                "--kafka",
                bootstrap,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra.iter().copied())
            .start()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.log.text()
    }

    pub fn log_lines(&self) -> Arc<Lines> {
        self.log.clone()
    }

    pub fn signal(&self, sig: i32) {
        signal(&self.child, sig);
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_timeout(&mut self.child, timeout);
        }
        self.exited
    }

    /// Sends `sig` and measures how long the process takes to exit (None: not within `timeout`;
    /// it is then killed).
    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> (Option<ExitStatus>, Duration) {
        let t0 = Instant::now();
        self.signal(sig);
        let status = self.wait_exit(timeout);
        let took = t0.elapsed();
        if status.is_none() {
            kill_and_wait(&mut self.child);
        }
        (status, took)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            if let Ok(None) = self.child.try_wait() {
                signal(&self.child, libc::SIGTERM);
                if wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
                    eprintln!(
                        "sse-kafka (pid {}) ignored SIGTERM for 5 s; killing it",
                        self.child.id()
                    );
                    kill_and_wait(&mut self.child);
                }
            }
        }
        if thread::panicking() {
            eprintln!(
                "--- sse-kafka on port {} stderr ---\n{}\n---",
                self.port,
                self.log.text()
            );
            let out = self.stdout.text();
            if !out.is_empty() {
                eprintln!("--- sse-kafka stdout ---\n{out}\n---");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// zilla.yaml generation
// ---------------------------------------------------------------------------------------------

/// A `sse-kafka` route (`routes[]` of the `sse-kafka` proxy binding).
#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    pub topic: String,
    pub filters: Vec<Filter>,
    pub event_id: Option<String>,
}

/// One filter: key and header conditions ANDed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Filter {
    pub fn key(k: &str) -> Filter {
        Filter {
            key: Some(k.to_string()),
            headers: Vec::new(),
        }
    }
    pub fn header(name: &str, v: &str) -> Filter {
        Filter {
            key: None,
            headers: vec![(name.to_string(), v.to_string())],
        }
    }
    pub fn and_header(mut self, name: &str, v: &str) -> Filter {
        self.headers.push((name.to_string(), v.to_string()));
        self
    }
}

impl Route {
    pub fn new(path: &str, topic: &str) -> Route {
        Route {
            path: path.to_string(),
            topic: topic.to_string(),
            filters: Vec::new(),
            event_id: None,
        }
    }
    /// `/{topic}` → `${params.topic}`: any topic by name.
    pub fn any_topic() -> Route {
        Route::new("/{topic}", "${params.topic}")
    }
    pub fn filter(mut self, f: Filter) -> Route {
        self.filters.push(f);
        self
    }
    pub fn event_id(mut self, template: &str) -> Route {
        self.event_id = Some(template.to_string());
        self
    }
}

/// Single-quoted YAML scalar.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Zilla's `sse.kafka.fanout` chain (tcp → http → sse → sse-kafka → kafka cache_client →
/// cache_server → client → tcp client), or sse-kafka straight to the kafka client binding.
#[derive(Debug, Clone)]
pub struct Zilla {
    pub port: u16,
    /// The kafka client's `servers` entry (may be `${{env.X}}`).
    pub kafka: String,
    pub routes: Vec<Route>,
    /// Use the cache_client/cache_server pair (Zilla's fan-out example); false: direct client.
    pub cache: bool,
    /// `cache_server.options.bootstrap`.
    pub bootstrap: Vec<String>,
    /// `cache_server.options.topics`: (name, defaultOffset).
    pub topics: Vec<(String, String)>,
    /// The http route's `:path` pattern to the sse binding (default `/*`).
    pub http_path: String,
    /// `access-control.policy` of the http binding (default `cross-origin`, as in Zilla's
    /// fan-out example); None leaves the option out (Zilla's default: same-origin).
    pub access_control: Option<String>,
}

impl Zilla {
    pub fn new(port: u16, kafka: &str) -> Zilla {
        Zilla {
            port,
            kafka: kafka.to_string(),
            routes: Vec::new(),
            cache: true,
            bootstrap: Vec::new(),
            topics: Vec::new(),
            http_path: "/*".to_string(),
            access_control: Some("cross-origin".to_string()),
        }
    }
    pub fn route(mut self, r: Route) -> Zilla {
        self.routes.push(r);
        self
    }
    pub fn no_cache(mut self) -> Zilla {
        self.cache = false;
        self
    }
    pub fn bootstrap_topic(mut self, t: &str) -> Zilla {
        self.bootstrap.push(t.to_string());
        self
    }
    /// Leaves `access-control` out: the same-origin default applies.
    pub fn same_origin(mut self) -> Zilla {
        self.access_control = None;
        self
    }
    pub fn http_path(mut self, pattern: &str) -> Zilla {
        self.http_path = pattern.to_string();
        self
    }
    pub fn topic_offset(mut self, t: &str, default_offset: &str) -> Zilla {
        self.topics
            .push((t.to_string(), default_offset.to_string()));
        self
    }

    pub fn yaml(&self) -> String {
        let mut y = String::new();
        let p = self.port;
        let path = q(&self.http_path);
        let cors = match &self.access_control {
            Some(policy) => format!("      access-control:\n        policy: {policy}\n"),
            None => String::new(),
        };
        y += &format!(
            "name: test
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 127.0.0.1
      port:
        - {p}
    routes:
      - when:
          - port: {p}
        exit: north_http_server
  north_http_server:
    type: http
    kind: server
    options:
      versions:
        - http/1.1
{cors}    routes:
      - when:
          - headers:
              :scheme: http
              :path: {path}
        exit: north_sse_server
  north_sse_server:
    type: sse
    kind: server
    exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
"
        );
        let exit = if self.cache {
            "north_kafka_cache_client"
        } else {
            "south_kafka_client"
        };
        for r in &self.routes {
            y += &format!("      - when:\n          - path: {}\n        exit: {exit}\n        with:\n          topic: {}\n", q(&r.path), q(&r.topic));
            if !r.filters.is_empty() {
                y += "          filters:\n";
                for f in &r.filters {
                    let mut first = true;
                    let mut lead = || {
                        let l = if first {
                            "            - "
                        } else {
                            "              "
                        };
                        first = false;
                        l
                    };
                    if let Some(k) = &f.key {
                        y += &format!("{}key: {}\n", lead(), q(k));
                    }
                    if !f.headers.is_empty() {
                        y += &format!("{}headers:\n", lead());
                        for (n, v) in &f.headers {
                            y += &format!("                {}: {}\n", q(n), q(v));
                        }
                    }
                }
            }
            if let Some(id) = &r.event_id {
                y += &format!("          event:\n            id: {}\n", q(id));
            }
        }
        if self.cache {
            y += "  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
";
            if !self.bootstrap.is_empty() || !self.topics.is_empty() {
                y += "    options:\n";
                if !self.bootstrap.is_empty() {
                    y += "      bootstrap:\n";
                    for t in &self.bootstrap {
                        y += &format!("        - {}\n", q(t));
                    }
                }
                if !self.topics.is_empty() {
                    y += "      topics:\n";
                    for (t, o) in &self.topics {
                        y += &format!("        - name: {}\n          defaultOffset: {o}\n", q(t));
                    }
                }
            }
            y += "    exit: south_kafka_client\n";
        }
        y += &format!(
            "  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - {}
    exit: south_tcp_client
  south_tcp_client:
    type: tcp
    kind: client
",
            q(&self.kafka)
        );
        y
    }

    /// Starts a server on this config with extra CLI arguments.
    pub fn start(&self, extra: &[&str]) -> Server {
        Server::builder(self.port)
            .config(&self.yaml())
            .args(extra.iter().copied())
            .start()
    }
}

// ---------------------------------------------------------------------------------------------
// SSE client: real curl
// ---------------------------------------------------------------------------------------------

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
struct SseState {
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
                "{}: expected {n} events within {timeout:?}, got {}: {:?}\nstatus {:?}, curl: {}\nbody so far: {:?}",
                self.url,
                got.len(),
                got.iter().map(|e| &e.data).collect::<Vec<_>>(),
                self.status(Duration::ZERO),
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
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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
            let child = command("curl")
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
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn curl");
            children.push(child);
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

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TcpStream (for requests curl cannot send)
// ---------------------------------------------------------------------------------------------

/// A response read from a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// The head as text, status line included, without the final CRLFCRLF.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the whole body arrived (false: the deadline passed first; `body` is partial).
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 connection driven byte by byte.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl HttpConn {
    pub fn connect(addr: &str) -> HttpConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        HttpConn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        // The server may answer and close before reading everything (e.g. 431): ignore EPIPE.
        let _ = self.stream.write_all(bytes);
    }

    /// Reads more bytes into the buffer; false on EOF/error/timeout.
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok();
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => false,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    /// Reads the response head (status line and headers); the body stays in the buffer.
    pub fn read_head(&mut self, timeout: Duration) -> Option<RawResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
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
                return Some(RawResponse {
                    status,
                    head,
                    headers,
                    body: Vec::new(),
                    complete: false,
                });
            }
            if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                return None;
            }
        }
    }

    /// Reads one whole response: head, then a Content-Length body, a chunked body (decoded) or,
    /// with neither, everything until the server closes. None if no head arrived; a response
    /// whose body did not end by the deadline comes back with `complete: false`.
    pub fn read_response(&mut self, timeout: Duration) -> Option<RawResponse> {
        let deadline = Instant::now() + timeout;
        let mut r = self.read_head(timeout)?;
        if let Some(len) = r
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < len {
                if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                    r.body = std::mem::take(&mut self.buf);
                    return Some(r);
                }
            }
            r.body = self.buf.drain(..len).collect();
            r.complete = true;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                match decode_chunks(&self.buf) {
                    Some((body, used, true)) => {
                        r.body = body;
                        self.buf.drain(..used);
                        r.complete = true;
                        break;
                    }
                    partial => {
                        if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                            r.body = partial.map(|(b, _, _)| b).unwrap_or_default();
                            return Some(r);
                        }
                    }
                }
            }
        } else if !(100..200).contains(&r.status) && r.status != 204 && r.status != 304 {
            while self.fill(deadline) {}
            r.body = std::mem::take(&mut self.buf);
            r.complete = self.closed;
        } else {
            r.complete = true;
        }
        Some(r)
    }

    /// Keeps reading until `pred(buffered bytes)` holds.
    pub fn read_until(&mut self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.buf) {
                return true;
            }
            if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                return pred(&self.buf);
            }
        }
    }

    /// Bytes received after the last parsed head/response.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the server closes the connection within `timeout` (reading and buffering
    /// anything it still sends).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            self.fill(deadline);
        }
        self.closed
    }
}

/// Decodes chunked framing from the start of `bytes`: (body so far, bytes used, complete).
pub fn decode_chunks(bytes: &[u8]) -> Option<(Vec<u8>, usize, bool)> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(rel) = find(&bytes[pos..], b"\r\n") else {
            return Some((body, pos, false));
        };
        let line_end = pos + rel;
        let size_text = std::str::from_utf8(&bytes[pos..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data_start = line_end + 2;
        if size == 0 {
            // Last chunk; no trailers expected.
            if bytes.len() >= data_start + 2 && &bytes[data_start..data_start + 2] == b"\r\n" {
                return Some((body, data_start + 2, true));
            }
            return Some((body, pos, false));
        }
        if bytes.len() < data_start + size + 2 {
            return Some((body, pos, false));
        }
        body.extend_from_slice(&bytes[data_start..data_start + size]);
        if &bytes[data_start + size..data_start + size + 2] != b"\r\n" {
            return None;
        }
        pos = data_start + size + 2;
    }
}

/// Sends `request` on a new connection and reads one response.
pub fn raw_request(addr: &str, request: &[u8], timeout: Duration) -> Option<RawResponse> {
    let mut c = HttpConn::connect(addr);
    c.send(request);
    c.read_response(timeout)
}

// ---------------------------------------------------------------------------------------------
// Relay: a TCP relay that can cut the broker connections
// ---------------------------------------------------------------------------------------------

/// Connections whose first Kafka request carries a client id starting with this prefix are
/// never cut (the test's own producer uses it, so it can keep producing during an outage).
pub const EXEMPT_CLIENT_ID: &str = "harness-direct";

struct RelayConn {
    down: TcpStream,
    up: TcpStream,
    exempt: bool,
}

#[derive(Default)]
struct RelayShared {
    cut: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<RelayConn>>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
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
fn read_client_id(s: &mut TcpStream, seen: &mut Vec<u8>) -> Option<String> {
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

fn relay_conn(mut down: TcpStream, upstream: SocketAddr, sh: Arc<RelayShared>) {
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
    thread::spawn(move || pump(d2, u2, sh2));
    pump(up, down, sh);
}

fn pump(mut from: TcpStream, mut to: TcpStream, sh: Arc<RelayShared>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
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

/// Starts a relay and a tansu broker behind it (advertising the relay), returning both.
pub fn broker_behind_relay() -> (Broker, Relay) {
    let relay_port = free_port();
    let broker_port = free_port();
    let relay = Relay::start(relay_port, SocketAddr::from(([127, 0, 0, 1], broker_port)));
    let broker = Broker::start_on(broker_port, &format!("127.0.0.1:{relay_port}"));
    (broker, relay)
}

// ---------------------------------------------------------------------------------------------
// Assertions over delivered events
// ---------------------------------------------------------------------------------------------

/// Checks that `events` carry exactly the values of `produced` (value → where it landed), each
/// once, in per-partition offset order, and that each event's id decodes to a progress whose
/// entry for the event's own partition is offset + 1.
pub fn assert_exactly_once(events: &[Event], produced: &[(String, Delivered)]) {
    let by_value: HashMap<&str, Delivered> =
        produced.iter().map(|(v, d)| (v.as_str(), *d)).collect();
    assert_eq!(
        by_value.len(),
        produced.len(),
        "test bug: produced values must be unique"
    );
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let d = by_value.get(e.data.as_str()).unwrap_or_else(|| {
            panic!(
                "event #{i} has unexpected data {:?} (id {:?})",
                e.data, e.id
            )
        });
        *seen.entry(e.data.as_str()).or_default() += 1;
        if let Some(prev) = last_offset.insert(d.partition, d.offset) {
            assert!(
                d.offset > prev,
                "partition {} order broken at event #{i}: offset {} after {prev}",
                d.partition,
                d.offset
            );
        }
        let id =
            e.id.as_deref()
                .unwrap_or_else(|| panic!("event #{i} ({}) has no id", e.data));
        let progress =
            decode_id(id).unwrap_or_else(|| panic!("event #{i}: id {id:?} does not decode"));
        assert_eq!(
            progress.get(&d.partition),
            Some(&(d.offset + 1)),
            "event #{i} ({}) at partition {} offset {}: id {id} decodes to {progress:?}",
            e.data,
            d.partition,
            d.offset
        );
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated events: {dups:?}");
    let missing: Vec<_> = produced
        .iter()
        .filter(|(v, _)| !seen.contains_key(v.as_str()))
        .map(|(v, _)| v)
        .collect();
    assert!(missing.is_empty(), "missing events: {missing:?}");
}

/// Produces `per_partition` records to each of `partitions` partitions, interleaved, with values
/// `{tag}-p{partition}-{i}`; returns (value, where it landed).
pub fn produce_spread(
    producer: &Producer,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    tag: &str,
) -> Vec<(String, Delivered)> {
    let mut out = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let v = format!("{tag}-p{p}-{i}");
            let d = producer.send(
                topic,
                Some(p),
                Some(format!("k{i}").as_bytes()),
                Some(v.as_bytes()),
                &[],
            );
            assert_eq!(d.partition, p);
            out.push((v, d));
        }
    }
    out
}
