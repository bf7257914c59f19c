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

    /// `tansu topic create NAME --partitions N --config k=v ...` (e.g. `cleanup.policy=compact`).
    pub fn create_topic_with_config(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut cmd = command(tansu_bin());
        cmd.args([
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ]);
        for (k, v) in configs {
            cmd.arg("--config").arg(format!("{k}={v}"));
        }
        let out = cmd
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr()))
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} {configs:?} failed: {}\n{}",
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
    launcher: Vec<String>,
}

impl ServerBuilder {
    /// Starts the server through `program args... sse-kafka ...` (e.g. `taskset -c 0`), which
    /// must exec it (the pid stays the server's).
    pub fn launcher(mut self, program_and_args: &[&str]) -> Self {
        self.launcher = program_and_args.iter().map(|s| s.to_string()).collect();
        self
    }
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
        let mut cmd = match self.launcher.split_first() {
            None => command(server_bin()),
            Some((program, args)) => {
                let mut c = command(program);
                c.args(args).arg(server_bin());
                c
            }
        };
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
            launcher: Vec::new(),
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
                // A test that drops its server does not test the drain (tests/drain.rs does):
                // a second signal makes the server exit at once instead of after its grace.
                signal(&self.child, libc::SIGTERM);
                thread::sleep(Duration::from_millis(20));
                signal(&self.child, libc::SIGINT);
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
    /// `versions` of the http binding (default `[http/1.1]`).
    pub versions: Vec<String>,
    /// Port of a `prometheus` telemetry exporter serving `/metrics` (None: no telemetry).
    pub prometheus: Option<u16>,
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
            versions: vec!["http/1.1".to_string()],
            prometheus: None,
        }
    }
    /// The http binding's `versions` (e.g. `&["http/1.1", "h2"]`).
    pub fn versions(mut self, versions: &[&str]) -> Zilla {
        self.versions = versions.iter().map(|v| v.to_string()).collect();
        self
    }
    /// Adds `telemetry.exporters` with a `prometheus` exporter on `port`, path `/metrics`.
    pub fn prometheus(mut self, port: u16) -> Zilla {
        self.prometheus = Some(port);
        self
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
        let versions: String = self
            .versions
            .iter()
            .map(|v| format!("        - {v}\n"))
            .collect();
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
{versions}{cors}    routes:
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
        if let Some(port) = self.prometheus {
            y += &format!(
                "telemetry:
  exporters:
    prom:
      type: prometheus
      options:
        endpoints:
          - scheme: http
            port: {port}
            path: /metrics
"
            );
        }
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
enum Tap {
    /// Client → broker: counts bytes and requests (frames: i32 size, then i16 API key).
    Up(String, KafkaFrames),
    /// Broker → client: counts bytes.
    Down(String),
}

/// Splits a client → broker byte stream into Kafka request frames.
#[derive(Default)]
struct KafkaFrames {
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
fn pump_up(from: TcpStream, to: TcpStream, sh: Arc<RelayShared>, id: String, seen: Vec<u8>) {
    let mut frames = KafkaFrames::default();
    {
        let mut stats = sh.stats.lock().unwrap();
        let t = stats.entry(id.clone()).or_default();
        t.bytes_up += seen.len();
        frames.feed(&seen, |k| *t.requests.entry(k).or_default() += 1);
    }
    pump_with(from, to, sh, Tap::Up(id, frames))
}

fn pump_with(mut from: TcpStream, mut to: TcpStream, sh: Arc<RelayShared>, mut tap: Tap) {
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

// ---------------------------------------------------------------------------------------------
// Sockets with options curl and std cannot set
// ---------------------------------------------------------------------------------------------

/// Connects to `addr` (an IPv4 `host:port`) from `local` (e.g. 127.0.0.2; None: any) with
/// `SO_RCVBUF` set to `rcvbuf` before connecting (so the advertised window stays small).
pub fn tcp_connect(
    addr: &str,
    local: Option<std::net::Ipv4Addr>,
    rcvbuf: Option<usize>,
) -> TcpStream {
    tcp_connect_with(addr, local, rcvbuf, None)
}

/// `tcp_connect`, and with `mss` the MSS the client advertises (`TCP_MAXSEG` before connect):
/// on loopback the MSS is about 64 KiB, and the kernel sizes the *server's* send buffer from
/// it (about 20 segments), so a small MSS keeps what the server's kernel can hold for a client
/// that stopped reading small as well.
pub fn tcp_connect_with(
    addr: &str,
    local: Option<std::net::Ipv4Addr>,
    rcvbuf: Option<usize>,
    mss: Option<usize>,
) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sa: std::net::SocketAddrV4 = addr.parse().expect("IPv4 host:port");
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // Owned from here on: closed on every path.
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(size) = rcvbuf {
            let v = size as libc::c_int;
            let rc = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        }
        if let Some(mss) = mss {
            let v = mss as libc::c_int;
            let rc = libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
        }
        if let Some(ip) = local {
            let a = sockaddr(ip, 0);
            let rc = libc::bind(fd, &a as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "bind {ip}: {}", std::io::Error::last_os_error());
        }
        let a = sockaddr(*sa.ip(), sa.port());
        let rc = libc::connect(fd, &a as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        stream.set_nodelay(true).ok();
        stream
    }
}

impl HttpConn {
    /// Wraps an already connected socket (see `tcp_connect`).
    pub fn from_stream(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Whether the server has closed the connection (as far as reads have seen).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// `GET path` for an SSE stream, as a raw HTTP/1.1 request.
pub fn sse_request(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition: scrape and strict parse
// ---------------------------------------------------------------------------------------------

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct PromText {
    pub samples: Vec<PromSample>,
    /// Metric family → type (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    pub raw: String,
}

impl PromText {
    /// The value of the sample `name` with exactly these labels (any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort();
        self.samples
            .iter()
            .find(|s| {
                let mut have: Vec<(&str, &str)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                have.sort();
                s.name == name && have == want
            })
            .map(|s| s.value)
    }

    /// Like `get`, panicking (with the whole text) when the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.raw))
    }

    /// Every sample of `name`.
    pub fn all(&self, name: &str) -> Vec<&PromSample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn is_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn prom_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => {
            // Go's ParseFloat syntax: digits, '.', exponent, sign; no hex, no "inf" words.
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
                return None;
            }
            v.parse().ok()
        }
    }
}

/// The family a sample belongs to, given the declared types (`x_bucket` → `x` for histograms).
fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for (suffix, kinds) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| kinds.contains(&t.as_str())) {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// Parses Prometheus text format 0.0.4 strictly: HELP/TYPE syntax, at most one of each per
/// family and before its samples, a family's lines contiguous, metric and label names, quoted
/// label values with only `\\`, `\"`, `\n` escapes, no duplicate label names or series,
/// numeric values (and optional integer timestamps), and for histograms: `le` on every bucket,
/// buckets ascending and cumulative, a `+Inf` bucket equal to `_count`, and a `_sum`.
pub fn parse_prometheus(text: &str) -> Result<PromText, String> {
    let mut out = PromText {
        raw: text.to_string(),
        ..PromText::default()
    };
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    let mut seen_series = std::collections::HashSet::new();
    let mut finished_families = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    let mut with_samples = std::collections::HashSet::new();
    let mut enter =
        |family: &str, current: &mut Option<String>, lineno: usize| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if finished_families.contains(family) {
                    return Err(format!("line {lineno}: family {family} is not contiguous"));
                }
                if let Some(prev) = current.take() {
                    finished_families.insert(prev);
                }
                *current = Some(family.to_string());
            }
            Ok(())
        };
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            if kw != "HELP" && kw != "TYPE" {
                continue; // a plain comment
            }
            let name = parts
                .next()
                .ok_or(format!("line {lineno}: {kw} without a name"))?;
            if !is_metric_name(name) {
                return Err(format!("line {lineno}: bad metric name {name:?}"));
            }
            let arg = parts.next().unwrap_or("");
            enter(name, &mut current, lineno)?;
            if kw == "HELP" {
                let mut chars = arg.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                        return Err(format!("line {lineno}: bad escape in HELP"));
                    }
                }
                if out.help.insert(name.to_string(), arg.to_string()).is_some() {
                    return Err(format!("line {lineno}: second HELP for {name}"));
                }
            } else {
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                    return Err(format!("line {lineno}: unknown type {arg:?}"));
                }
                if with_samples.contains(name) {
                    return Err(format!("line {lineno}: TYPE for {name} after its samples"));
                }
                if out
                    .types
                    .insert(name.to_string(), arg.to_string())
                    .is_some()
                {
                    return Err(format!("line {lineno}: second TYPE for {name}"));
                }
            }
            continue;
        }
        // A sample.
        let name_end = line
            .find(|c: char| c == '{' || c == ' ')
            .ok_or(format!("line {lineno}: no value: {line:?}"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("line {lineno}: bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                // label name
                let start = match chars.peek() {
                    Some(&(_, '}')) => {
                        let (j, _) = chars.next().unwrap();
                        rest = &r[j + 1..];
                        break;
                    }
                    Some(&(j, _)) => j,
                    None => return Err(format!("line {lineno}: unterminated labels")),
                };
                let eq = r[start..]
                    .find('=')
                    .ok_or(format!("line {lineno}: label without '='"))?
                    + start;
                let lname = &r[start..eq];
                if !is_label_name(lname) {
                    return Err(format!("line {lineno}: bad label name {lname:?}"));
                }
                while chars.peek().is_some_and(|&(j, _)| j <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("line {lineno}: label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => {
                                return Err(format!(
                                    "line {lineno}: bad escape {other:?} in label value"
                                ))
                            }
                        },
                        Some((_, '\n')) | None => {
                            return Err(format!("line {lineno}: unterminated label value"))
                        }
                        Some((_, c)) => value.push(c),
                    }
                }
                if labels.iter().any(|(n, _)| n == lname) {
                    return Err(format!("line {lineno}: label {lname} twice"));
                }
                labels.push((lname.to_string(), value));
                match chars.next() {
                    Some((_, ',')) => {}
                    Some((j, '}')) => {
                        rest = &r[j + 1..];
                        break;
                    }
                    other => {
                        return Err(format!(
                            "line {lineno}: expected ',' or '}}', got {other:?}"
                        ))
                    }
                }
            }
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or(format!("line {lineno}: no space before the value"))?;
        let mut fields = rest.split(' ');
        let value_text = fields.next().unwrap_or("");
        let value =
            prom_value(value_text).ok_or(format!("line {lineno}: bad value {value_text:?}"))?;
        if let Some(ts) = fields.next() {
            if ts.parse::<i64>().is_err() {
                return Err(format!("line {lineno}: bad timestamp {ts:?}"));
            }
        }
        if fields.next().is_some() {
            return Err(format!("line {lineno}: trailing fields"));
        }
        let family = family_of(name, &out.types);
        enter(&family, &mut current, lineno)?;
        with_samples.insert(family.clone());
        let mut key: Vec<(String, String)> = labels.clone();
        key.sort();
        if !seen_series.insert((name.to_string(), key)) {
            return Err(format!("line {lineno}: duplicate series {name}{labels:?}"));
        }
        let kind = out
            .types
            .get(&family)
            .map(String::as_str)
            .unwrap_or("untyped");
        if kind == "counter" && !(value >= 0.0) {
            return Err(format!("line {lineno}: counter {name} is {value}"));
        }
        if kind == "histogram"
            && name.ends_with("_bucket")
            && !labels.iter().any(|(n, _)| n == "le")
        {
            return Err(format!("line {lineno}: histogram bucket without le"));
        }
        out.samples.push(PromSample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    // Histograms: cumulative buckets, +Inf == count, a sum.
    for (family, kind) in &out.types {
        if kind != "histogram" {
            continue;
        }
        // Group buckets by their labels other than `le`.
        let mut series: BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in out.all(&format!("{family}_bucket")) {
            let mut other: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(n, _)| n != "le")
                .cloned()
                .collect();
            other.sort();
            let le = &s.labels.iter().find(|(n, _)| n == "le").unwrap().1;
            let bound = prom_value(le).ok_or(format!("{family}: bad le {le:?}"))?;
            series.entry(other).or_default().push((bound, s.value));
        }
        if series.is_empty() {
            return Err(format!("histogram {family} has no buckets"));
        }
        for (other, buckets) in series {
            for w in buckets.windows(2) {
                if !(w[0].0 < w[1].0) {
                    return Err(format!(
                        "{family}{other:?}: bucket bounds not ascending: {buckets:?}"
                    ));
                }
                if w[0].1 > w[1].1 {
                    return Err(format!(
                        "{family}{other:?}: buckets not cumulative: {buckets:?}"
                    ));
                }
            }
            let last = buckets.last().unwrap();
            if last.0 != f64::INFINITY {
                return Err(format!("{family}{other:?}: no +Inf bucket"));
            }
            let pick = |suffix: &str| {
                out.all(&format!("{family}{suffix}")).into_iter().find(|s| {
                    let mut l = s.labels.clone();
                    l.sort();
                    l == other
                })
            };
            let count = pick("_count").ok_or(format!("{family}{other:?}: no _count"))?;
            pick("_sum").ok_or(format!("{family}{other:?}: no _sum"))?;
            if count.value != last.1 {
                return Err(format!(
                    "{family}{other:?}: _count {} differs from the +Inf bucket {}",
                    count.value, last.1
                ));
            }
        }
    }
    Ok(out)
}

/// `GET path` from the exporter on `127.0.0.1:port`: (status, content type, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String, String)> {
    // The exporter starts listening a moment after the server logs `listening on`.
    wait_for_port(&format!("127.0.0.1:{port}"), WAIT);
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let r = raw_request(&format!("127.0.0.1:{port}"), req.as_bytes(), WAIT)?;
    Some((
        r.status,
        r.header("content-type").unwrap_or("").to_string(),
        String::from_utf8_lossy(&r.body).into_owned(),
    ))
}

/// Scrapes `http://127.0.0.1:port/metrics` and parses it (panics on any error).
pub fn scrape(port: u16) -> PromText {
    let (status, content_type, body) = http_get(port, "/metrics")
        .unwrap_or_else(|| panic!("no answer from the metrics port {port}"));
    assert_eq!(status, 200, "metrics status; body: {body}");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "metrics content type {content_type:?}"
    );
    parse_prometheus(&body).unwrap_or_else(|e| panic!("bad exposition: {e}\n{body}"))
}

/// Waits until `cond` holds for a scrape; returns the last scrape either way.
pub fn wait_metrics(
    port: u16,
    timeout: Duration,
    cond: impl Fn(&PromText) -> bool,
) -> (bool, PromText) {
    let deadline = Instant::now() + timeout;
    loop {
        let m = scrape(port);
        if cond(&m) {
            return (true, m);
        }
        if Instant::now() >= deadline {
            return (false, m);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal raw HTTP/2 client (prior knowledge), for what curl and nghttp cannot do on demand
// (reset one stream, read RST_STREAM codes, keep the connection window open)
// ---------------------------------------------------------------------------------------------

pub mod h2 {
    use super::*;

    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
    pub const END_STREAM: u8 = 1;
    pub const END_HEADERS: u8 = 4;
    pub const ACK: u8 = 1;
    pub const CANCEL: u32 = 8;
    pub const REFUSED_STREAM: u32 = 7;

    /// What one stream received.
    #[derive(Debug, Clone, Default)]
    pub struct StreamState {
        /// `:status` when it was encoded as a static-table index or a plain literal.
        pub status: Option<u16>,
        pub headers_seen: bool,
        pub data: Vec<u8>,
        pub ended: bool,
        pub reset: Option<u32>,
    }

    pub struct Client {
        stream: TcpStream,
        buf: Vec<u8>,
        pub streams: BTreeMap<u32, StreamState>,
        pub goaway: Option<(u32, u32)>,
        pub closed: bool,
        authority: String,
        /// Streams whose window is not reopened (a reader that stopped reading them).
        pub held: std::collections::HashSet<u32>,
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// HPACK integer with an `n`-bit prefix whose high bits are `first`.
    fn hpack_int(out: &mut Vec<u8>, first: u8, n: u8, v: usize) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(first | v as u8);
            return;
        }
        out.push(first | max as u8);
        let mut v = v - max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    fn hpack_str(out: &mut Vec<u8>, s: &str) {
        hpack_int(out, 0, 7, s.len());
        out.extend_from_slice(s.as_bytes());
    }

    /// The `:status` of a header block if it leads with one the simple way (static index or a
    /// non-Huffman literal with the `:status` name index).
    fn status_of(mut block: &[u8]) -> Option<u16> {
        // Skip dynamic table size updates (001xxxxx, with a continued integer when all ones).
        while block.first().is_some_and(|b| b & 0xe0 == 0x20) {
            let mut n = 1;
            if block[0] & 0x1f == 0x1f {
                while block.get(n).is_some_and(|b| b & 0x80 != 0) {
                    n += 1;
                }
                n += 1;
            }
            block = block.get(n..)?;
        }
        let b = *block.first()?;
        let statuses = [
            (8, 200),
            (9, 204),
            (10, 206),
            (11, 304),
            (12, 400),
            (13, 404),
            (14, 500),
        ];
        if b & 0x80 != 0 {
            return statuses
                .iter()
                .find(|(i, _)| *i == (b & 0x7f))
                .map(|(_, s)| *s);
        }
        let idx = if b & 0xc0 == 0x40 { b & 0x3f } else { b & 0x0f };
        if idx != 8 || block.len() < 5 || block[1] & 0x80 != 0 {
            return None;
        }
        std::str::from_utf8(block.get(2..2 + (block[1] & 0x7f) as usize)?)
            .ok()?
            .parse()
            .ok()
    }

    impl Client {
        /// Connects, sends the preface and an empty SETTINGS.
        pub fn connect(addr: &str) -> Client {
            let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            stream.set_nodelay(true).ok();
            let mut c = Client {
                stream,
                buf: Vec::new(),
                streams: BTreeMap::new(),
                goaway: None,
                closed: false,
                authority: addr.to_string(),
                held: Default::default(),
            };
            let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            hello.extend(frame(SETTINGS, 0, 0, &[]));
            c.write(&hello);
            c
        }

        fn write(&mut self, bytes: &[u8]) {
            if self.stream.write_all(bytes).is_err() {
                self.closed = true;
            }
        }

        /// `method path` on stream `id` (odd, increasing), no body.
        pub fn request(&mut self, id: u32, method: &str, path: &str) {
            self.request_with(id, method, path, &[]);
        }

        /// `request` with extra (lower-case) header fields.
        pub fn request_with(
            &mut self,
            id: u32,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
        ) {
            let mut block = Vec::new();
            match method {
                "GET" => block.push(0x82),
                m => {
                    hpack_int(&mut block, 0x00, 4, 2); // :method, literal without indexing
                    hpack_str(&mut block, m);
                }
            }
            block.push(0x86); // :scheme http
            hpack_int(&mut block, 0x00, 4, 4); // :path
            hpack_str(&mut block, path);
            hpack_int(&mut block, 0x00, 4, 1); // :authority
            let authority = self.authority.clone();
            hpack_str(&mut block, &authority);
            hpack_int(&mut block, 0x00, 4, 19); // accept
            hpack_str(&mut block, "text/event-stream");
            for (name, value) in headers {
                block.push(0x00); // literal without indexing, new name
                hpack_str(&mut block, name);
                hpack_str(&mut block, value);
            }
            self.streams.entry(id).or_default();
            self.write(&frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        }

        /// Stops reopening stream `id`'s window (the connection window is still reopened).
        pub fn hold(&mut self, id: u32) {
            self.held.insert(id);
        }

        /// RST_STREAM(id, code).
        pub fn reset(&mut self, id: u32, code: u32) {
            self.write(&frame(RST_STREAM, 0, id, &code.to_be_bytes()));
        }

        /// Reads and handles frames until `cond` holds or `timeout` passes; true if it held.
        /// SETTINGS and PING are acknowledged, every DATA frame's bytes are given back at once
        /// with WINDOW_UPDATEs (stream and connection).
        pub fn run_until(&mut self, timeout: Duration, cond: impl Fn(&Client) -> bool) -> bool {
            let deadline = Instant::now() + timeout;
            loop {
                while self.handle_one() {}
                if cond(self) {
                    return true;
                }
                if self.closed || Instant::now() >= deadline {
                    return cond(self);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                self.stream
                    .set_read_timeout(Some(
                        left.clamp(Duration::from_millis(1), Duration::from_millis(100)),
                    ))
                    .ok();
                let mut tmp = [0u8; 65536];
                match self.stream.read(&mut tmp) {
                    Ok(0) => self.closed = true,
                    Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    }
                    Err(_) => self.closed = true,
                }
            }
        }

        /// Handles one buffered frame; false when no whole frame is buffered.
        fn handle_one(&mut self) -> bool {
            if self.buf.len() < 9 {
                return false;
            }
            let len =
                (self.buf[0] as usize) << 16 | (self.buf[1] as usize) << 8 | self.buf[2] as usize;
            if self.buf.len() < 9 + len {
                return false;
            }
            let kind = self.buf[3];
            let flags = self.buf[4];
            let id = u32::from_be_bytes(self.buf[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let payload: Vec<u8> = self.buf[9..9 + len].to_vec();
            self.buf.drain(..9 + len);
            match kind {
                SETTINGS if flags & ACK == 0 => self.write(&frame(SETTINGS, ACK, 0, &[])),
                PING if flags & ACK == 0 => self.write(&frame(PING, ACK, 0, &payload)),
                GOAWAY if payload.len() >= 8 => {
                    let last = u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                    let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                    self.goaway = Some((last, code));
                }
                HEADERS | CONTINUATION => {
                    let mut block = &payload[..];
                    if kind == HEADERS {
                        let pad = if flags & 0x8 != 0 {
                            block[0] as usize + 1
                        } else {
                            0
                        };
                        let prio = if flags & 0x20 != 0 { 5 } else { 0 };
                        let start = (if pad > 0 { 1 } else { 0 }) + prio;
                        block = &block[start..block.len() - pad.saturating_sub(1)];
                    }
                    let s = self.streams.entry(id).or_default();
                    if kind == HEADERS && !s.headers_seen {
                        s.headers_seen = true;
                        s.status = status_of(block);
                    }
                    if flags & END_STREAM != 0 {
                        s.ended = true;
                    }
                }
                DATA => {
                    let pad = if flags & 0x8 != 0 {
                        payload[0] as usize + 1
                    } else {
                        0
                    };
                    let body = &payload[(pad > 0) as usize..payload.len() - pad.saturating_sub(1)];
                    let s = self.streams.entry(id).or_default();
                    s.data.extend_from_slice(body);
                    if flags & END_STREAM != 0 {
                        s.ended = true;
                    }
                    if len > 0 {
                        let inc = (len as u32).to_be_bytes();
                        let mut wu = frame(WINDOW_UPDATE, 0, 0, &inc);
                        if !s.ended && s.reset.is_none() && !self.held.contains(&id) {
                            wu.extend(frame(WINDOW_UPDATE, 0, id, &inc));
                        }
                        self.write(&wu);
                    }
                }
                RST_STREAM if payload.len() >= 4 => {
                    self.streams.entry(id).or_default().reset =
                        Some(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                }
                _ => {}
            }
            true
        }

        pub fn stream(&self, id: u32) -> StreamState {
            self.streams.get(&id).cloned().unwrap_or_default()
        }

        /// The SSE events stream `id` has received so far.
        pub fn events(&self, id: u32) -> Vec<Event> {
            parse_sse(&self.stream(id).data).0
        }
    }
}

pub mod chromium;
/// Raw HTTP/2 frames for the conformance and hardening tests (tests/common/h2wire.rs).
pub mod h2wire;
pub mod models;
pub mod resumer;
pub mod secure;

// ---------------------------------------------------------------------------------------------
// JWT fixtures: keys generated per test (RSA and EC with the `openssl` CLI, HMAC secrets),
// tokens signed with them, and a zilla.yaml with a `jwt` guard
// ---------------------------------------------------------------------------------------------

pub mod jwt {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Seconds since the epoch (the server's clock for `exp` / `nbf`: the same machine).
    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    pub fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Runs `openssl ARGS` (stdin from `input`), panicking on failure; returns stdout.
    pub fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        let mut child = command("openssl")
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl (is the openssl CLI installed?)");
        if let Some(bytes) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(bytes)
                .expect("write to openssl");
        }
        let out = child.wait_with_output().expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    }

    /// `header.payload.signature` with the signature computed by `sign` over `header.payload`.
    pub fn compact(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        proto::jwt::mint::encode(header, payload, sign)
    }

    /// The claims of a token: `sub` (omitted when None), `exp`, `scope`, `iss`, `aud`, and
    /// `extra` JSON members (`"nbf":123` ...) appended as given.
    pub fn claims(sub: Option<&str>, exp: i64, scope: &str, extra: &str) -> String {
        let mut c = format!(
            r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"iat":{},"scope":"{scope}""#,
            now()
        );
        if let Some(sub) = sub {
            c += &format!(r#","sub":"{sub}""#);
        }
        if !extra.is_empty() {
            c.push(',');
            c += extra;
        }
        c.push('}');
        c
    }

    /// The issuer and audience every test guard expects.
    pub const ISSUER: &str = "https://auth.example.com";
    pub const AUDIENCE: &str = "https://api.example.com";

    /// A signing key and its public JWK.
    pub trait Key {
        fn kid(&self) -> &str;
        fn alg(&self) -> &'static str;
        /// The public JWK as a YAML flow mapping.
        fn jwk_yaml(&self) -> String;
        fn sign(&self, input: &[u8]) -> Vec<u8>;

        /// A token with header `{"alg":ALG,"typ":"JWT","kid":KID}` and `payload`.
        fn token(&self, payload: &str) -> String {
            let header = format!(
                r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
                self.alg(),
                self.kid()
            );
            compact(&header, payload, |input| self.sign(input))
        }
    }

    /// An RSA-2048 key (RS256), generated with `openssl genpkey`.
    pub struct RsaKey {
        pub kid: String,
        pem: PathBuf,
        /// base64url modulus and exponent.
        pub n: String,
        pub e: String,
        /// The SubjectPublicKeyInfo PEM text (what an algorithm-confusion attack uses as an
        /// HMAC secret).
        pub public_pem: String,
    }

    impl RsaKey {
        pub fn generate(dir: &Path, kid: &str) -> RsaKey {
            let pem = dir.join(format!("{kid}.rsa.pem"));
            let p = pem.to_str().unwrap();
            openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    p,
                ],
                None,
            );
            let modulus =
                String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"], None)).unwrap();
            let modulus = modulus
                .trim()
                .strip_prefix("Modulus=")
                .expect("openssl -modulus output");
            let public_pem =
                String::from_utf8(openssl(&["pkey", "-in", p, "-pubout"], None)).unwrap();
            RsaKey {
                kid: kid.to_string(),
                pem,
                n: b64(hex(modulus)),
                e: "AQAB".to_string(), // openssl's default public exponent, 65537
                public_pem,
            }
        }
    }

    impl Key for RsaKey {
        fn kid(&self) -> &str {
            &self.kid
        }
        fn alg(&self) -> &'static str {
            "RS256"
        }
        fn jwk_yaml(&self) -> String {
            format!(
                "{{ kty: RSA, kid: {}, alg: RS256, n: {}, e: {} }}",
                self.kid, self.n, self.e
            )
        }
        fn sign(&self, input: &[u8]) -> Vec<u8> {
            openssl(
                &[
                    "dgst",
                    "-sha256",
                    "-binary",
                    "-sign",
                    self.pem.to_str().unwrap(),
                ],
                Some(input),
            )
        }
    }

    /// An EC P-256 key (ES256), generated with `openssl genpkey`.
    pub struct EcKey {
        pub kid: String,
        pem: PathBuf,
        pub x: String,
        pub y: String,
    }

    impl EcKey {
        pub fn generate(dir: &Path, kid: &str) -> EcKey {
            let pem = dir.join(format!("{kid}.ec.pem"));
            let p = pem.to_str().unwrap();
            openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    p,
                ],
                None,
            );
            let spki = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"], None);
            // The SubjectPublicKeyInfo ends with the uncompressed point 04 || X || Y.
            let point = &spki[spki.len() - 65..];
            assert_eq!(point[0], 4, "uncompressed EC point");
            EcKey {
                kid: kid.to_string(),
                pem,
                x: b64(&point[1..33]),
                y: b64(&point[33..]),
            }
        }
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` → the 64-byte `r || s` of JWS ES256.
    fn ecdsa_der_to_jws(der: &[u8]) -> Vec<u8> {
        assert_eq!(der[0], 0x30, "DER ECDSA signature");
        let mut pos = 2;
        let mut out = Vec::new();
        for _ in 0..2 {
            assert_eq!(der[pos], 0x02);
            let len = der[pos + 1] as usize;
            let mut int = &der[pos + 2..pos + 2 + len];
            while int.len() > 32 && int[0] == 0 {
                int = &int[1..];
            }
            out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
            out.extend_from_slice(int);
            pos += 2 + len;
        }
        out
    }

    impl Key for EcKey {
        fn kid(&self) -> &str {
            &self.kid
        }
        fn alg(&self) -> &'static str {
            "ES256"
        }
        fn jwk_yaml(&self) -> String {
            format!(
                "{{ kty: EC, kid: {}, alg: ES256, crv: P-256, x: {}, y: {} }}",
                self.kid, self.x, self.y
            )
        }
        fn sign(&self, input: &[u8]) -> Vec<u8> {
            let der = openssl(
                &[
                    "dgst",
                    "-sha256",
                    "-binary",
                    "-sign",
                    self.pem.to_str().unwrap(),
                ],
                Some(input),
            );
            ecdsa_der_to_jws(&der)
        }
    }

    /// An HMAC secret (HS256): 32 random bytes.
    pub struct HmacKey {
        pub kid: String,
        pub secret: Vec<u8>,
    }

    impl HmacKey {
        pub fn generate(kid: &str) -> HmacKey {
            let mut secret = vec![0u8; 32];
            let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
            f.read_exact(&mut secret).unwrap();
            HmacKey {
                kid: kid.to_string(),
                secret,
            }
        }
    }

    impl Key for HmacKey {
        fn kid(&self) -> &str {
            &self.kid
        }
        fn alg(&self) -> &'static str {
            "HS256"
        }
        fn jwk_yaml(&self) -> String {
            format!(
                "{{ kty: oct, kid: {}, alg: HS256, k: {} }}",
                self.kid,
                b64(&self.secret)
            )
        }
        fn sign(&self, input: &[u8]) -> Vec<u8> {
            hmac_sha256(&self.secret, input)
        }
    }

    /// HMAC-SHA256 through `proto::jwt::mint` (any key bytes, e.g. an RSA public key's PEM).
    pub fn hmac_sha256(secret: &[u8], input: &[u8]) -> Vec<u8> {
        // mint::hmac signs `b64(header).b64(payload)`: recover the signature of `input` by
        // minting over the same segments.
        let text = std::str::from_utf8(input).expect("signing input is ASCII");
        let (h, p) = text.split_once('.').expect("header.payload");
        let header = URL_SAFE_NO_PAD.decode(h).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(p).unwrap();
        let token = proto::jwt::mint::hmac(
            proto::jwt::Alg::Hs256,
            secret,
            std::str::from_utf8(&header).unwrap(),
            std::str::from_utf8(&payload).unwrap(),
        )
        .unwrap();
        URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap()
    }

    /// Where the guard sits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum GuardOn {
        /// `guarded` on the http route: 401 without credentials, 403 refused.
        Http,
        /// `guarded` on the sse route only: 404 either way.
        Sse,
        /// `guarded` on the sse-kafka route only: 404 either way.
        SseKafka,
    }

    /// Zilla's `sse.kafka.fanout.jwt` chain: tcp → http (authorization from the `Authorization:
    /// Bearer` header or the `access_token` query parameter) → sse → sse-kafka → kafka cache
    /// client/server → kafka client; optionally http-filesystem + filesystem for other paths.
    #[derive(Debug, Clone)]
    pub struct Chain {
        pub port: u16,
        pub kafka: String,
        /// JWKs as YAML flow mappings.
        pub keys: Vec<String>,
        pub challenge: Option<u64>,
        pub guard_on: GuardOn,
        pub roles: Vec<String>,
        /// sse-kafka routes: (path, topic template).
        pub routes: Vec<(String, String)>,
        pub versions: Vec<String>,
        /// `:scheme` the http route to the sse binding asks for (`https` behind TLS).
        pub scheme: String,
        /// Serve other paths from this directory (http-filesystem + filesystem).
        pub files: Option<PathBuf>,
    }

    impl Chain {
        pub fn new(port: u16, kafka: &str, keys: &[&dyn Key]) -> Chain {
            Chain {
                port,
                kafka: kafka.to_string(),
                keys: keys.iter().map(|k| k.jwk_yaml()).collect(),
                challenge: None,
                guard_on: GuardOn::Http,
                roles: vec!["read:events".to_string()],
                routes: vec![("/events".to_string(), "events".to_string())],
                versions: vec!["http/1.1".to_string(), "h2".to_string()],
                scheme: "http".to_string(),
                files: None,
            }
        }
        pub fn challenge(mut self, secs: u64) -> Chain {
            self.challenge = Some(secs);
            self
        }
        pub fn guard_on(mut self, on: GuardOn) -> Chain {
            self.guard_on = on;
            self
        }
        pub fn routes(mut self, routes: &[(&str, &str)]) -> Chain {
            self.routes = routes
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect();
            self
        }
        pub fn scheme(mut self, scheme: &str) -> Chain {
            self.scheme = scheme.to_string();
            self
        }
        pub fn files(mut self, dir: &Path) -> Chain {
            self.files = Some(dir.to_path_buf());
            self
        }

        pub fn yaml(&self) -> String {
            let p = self.port;
            let keys: String = self
                .keys
                .iter()
                .map(|k| format!("        - {k}\n"))
                .collect();
            let challenge = self
                .challenge
                .map(|c| format!("      challenge: {c}\n"))
                .unwrap_or_default();
            let versions: String = self
                .versions
                .iter()
                .map(|v| format!("        - {v}\n"))
                .collect();
            let roles = self
                .roles
                .iter()
                .map(|r| q(r))
                .collect::<Vec<_>>()
                .join(", ");
            let guarded = |on: GuardOn, indent: &str| {
                if self.guard_on == on {
                    format!("{indent}guarded:\n{indent}  authn_jwt: [ {roles} ]\n")
                } else {
                    String::new()
                }
            };
            let scheme = &self.scheme;
            let mut y = format!(
                "name: jwt-test
guards:
  authn_jwt:
    type: jwt
    options:
      issuer: {ISSUER}
      audience: {AUDIENCE}
      keys:
{keys}{challenge}bindings:
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
{versions}      authorization:
        authn_jwt:
          credentials:
            headers:
              authorization: 'Bearer {{credentials}}'
            query:
              access_token: '{{credentials}}'
      access-control:
        policy: cross-origin
    routes:
      - when:
          - headers:
              :scheme: {scheme}
              :path: /events*
{}        exit: north_sse_server
",
                guarded(GuardOn::Http, "        ")
            );
            if self.files.is_some() {
                y += "      - exit: east_http_filesystem_mapping\n";
            }
            y += &format!(
                "  north_sse_server:
    type: sse
    kind: server
    routes:
      - exit: north_sse_kafka_mapping
{}  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
",
                guarded(GuardOn::Sse, "        ")
            );
            for (path, topic) in &self.routes {
                y += &format!(
                    "      - when:
          - path: {}
{}        exit: north_kafka_cache_client
        with:
          topic: {}
",
                    q(path),
                    guarded(GuardOn::SseKafka, "        "),
                    q(topic)
                );
            }
            y += &format!(
                "  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    exit: south_kafka_client
  south_kafka_client:
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
            if let Some(dir) = &self.files {
                y += &format!(
                    "  east_http_filesystem_mapping:
    type: http-filesystem
    kind: proxy
    routes:
      - when:
          - path: /{{path}}
        exit: east_filesystem_server
        with:
          path: ${{params.path}}
  east_filesystem_server:
    type: filesystem
    kind: server
    options:
      location: {}
",
                    q(&format!("{}/", dir.display()))
                );
            }
            y
        }
    }

    /// Asserts that no part of any token (payload or signature segment, or the whole token)
    /// appears in `logs`.
    pub fn assert_not_logged(logs: &str, tokens: &[&str]) {
        for token in tokens {
            assert!(
                !logs.contains(token),
                "a token appears in the server's log:\n{logs}"
            );
            for (i, segment) in token.split('.').enumerate().skip(1) {
                if segment.len() >= 16 {
                    assert!(
                        !logs.contains(segment),
                        "segment {i} of a token appears in the server's log:\n{logs}"
                    );
                }
            }
        }
    }
}
