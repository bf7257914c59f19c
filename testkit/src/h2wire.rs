//! HTTP/2 on the wire, frame by frame, for the conformance and hardening tests: a client that
//! sends exactly the bytes a test builds (floods, oversized frames, CONTINUATION chains, HPACK
//! bombs, resets in the same write as the HEADERS they cancel), logs every frame the server
//! sends, decodes response heads (the workspace's `proto` HPACK decoder), keeps its own
//! account of the flow-control windows it granted and records every frame that breaks them.
//! Also: a throwaway self-signed certificate (openssl) and the resident memory of a process.
//!
//! Requests are encoded here, independently of the server: literals without indexing, no
//! Huffman (or, for the bomb, a literal with incremental indexing and indexed references). This
//! HPACK encoder is the oracle for the server's decoder, so it deliberately does not use
//! proto's `hpack` module: a shared bug would cancel out. The other raw HTTP/2 clients (the
//! tests' [`crate::h2::Client`] and the bench's HTTP/2 mode) encode with these functions too.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::*;

// Frame types, flags, SETTINGS identifiers and the preface: the constants of the server's own
// sans-io HTTP/2 code (the client writes its frames by hand, but names them the same way).
pub use proto::h2::frame::{flag, kind, setting};
use proto::h2::frame::{FrameHeader, HEADER_LEN};
pub use proto::h2::PREFACE;

/// Error codes (RFC 9113 §7) as plain numbers, named by proto's [`ErrorCode`].
pub mod code {
    use proto::h2::ErrorCode;

    pub const NO_ERROR: u32 = ErrorCode::NO_ERROR.0;
    pub const PROTOCOL_ERROR: u32 = ErrorCode::PROTOCOL_ERROR.0;
    pub const INTERNAL_ERROR: u32 = ErrorCode::INTERNAL_ERROR.0;
    pub const FLOW_CONTROL_ERROR: u32 = ErrorCode::FLOW_CONTROL_ERROR.0;
    pub const STREAM_CLOSED: u32 = ErrorCode::STREAM_CLOSED.0;
    pub const FRAME_SIZE_ERROR: u32 = ErrorCode::FRAME_SIZE_ERROR.0;
    pub const REFUSED_STREAM: u32 = ErrorCode::REFUSED_STREAM.0;
    pub const CANCEL: u32 = ErrorCode::CANCEL.0;
    pub const COMPRESSION_ERROR: u32 = ErrorCode::COMPRESSION_ERROR.0;
    pub const ENHANCE_YOUR_CALM: u32 = ErrorCode::ENHANCE_YOUR_CALM.0;

    /// The RFC name of `c`, or its hex value when unknown.
    pub fn name(c: u32) -> String {
        ErrorCode(c)
            .name()
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("{c:#x}"))
    }
}

/// The server's default SETTINGS_MAX_FRAME_SIZE (and the protocol's): what a DATA frame may
/// carry unless the client raises it.
pub const DEFAULT_MAX_FRAME: usize = 16_384;

// ---------------------------------------------------------------------------------------------
// Frame building
// ---------------------------------------------------------------------------------------------

/// A frame with this header and payload. The length field is the payload's length.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_head(payload.len(), kind, flags, stream).to_vec();
    f.extend_from_slice(payload);
    f
}

/// Just a 9-octet frame header (for frames whose declared length is a lie).
pub fn frame_head(len: usize, kind: u8, flags: u8, stream: u32) -> [u8; 9] {
    let s = (stream & 0x7fff_ffff).to_be_bytes();
    [
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        kind,
        flags,
        s[0],
        s[1],
        s[2],
        s[3],
    ]
}

pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

pub fn settings_ack() -> Vec<u8> {
    frame(kind::SETTINGS, flag::ACK, 0, &[])
}

pub fn ping(payload: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, 0, 0, &payload)
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn rst_stream(stream: u32, error: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &error.to_be_bytes())
}

pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    frame(
        kind::DATA,
        if end_stream { flag::END_STREAM } else { 0 },
        stream,
        bytes,
    )
}

pub fn headers(stream: u32, block: &[u8], end_stream: bool, end_headers: bool) -> Vec<u8> {
    let mut flags = 0;
    if end_stream {
        flags |= flag::END_STREAM;
    }
    if end_headers {
        flags |= flag::END_HEADERS;
    }
    frame(kind::HEADERS, flags, stream, block)
}

pub fn continuation(stream: u32, block: &[u8], end_headers: bool) -> Vec<u8> {
    frame(
        kind::CONTINUATION,
        if end_headers { flag::END_HEADERS } else { 0 },
        stream,
        block,
    )
}

pub fn goaway(last_stream: u32, error: u32) -> Vec<u8> {
    let mut p = last_stream.to_be_bytes().to_vec();
    p.extend_from_slice(&error.to_be_bytes());
    frame(kind::GOAWAY, 0, 0, &p)
}

/// Reads what arrives within `wait` onto `buf`; false when the connection is closed (or
/// failed), true otherwise (also when nothing came).
pub fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).ok();
    let mut tmp = [0u8; 65536];
    match stream.read(&mut tmp) {
        Ok(0) => false,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            true
        }
        Err(e) => e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut,
    }
}

/// Takes one whole frame off the front of `buf` (header parsed by proto's [`FrameHeader`]);
/// None while the frame is incomplete.
pub fn split_frame(buf: &mut Vec<u8>) -> Option<(FrameHeader, Vec<u8>)> {
    let head = FrameHeader::parse(buf)?;
    let end = HEADER_LEN + head.length as usize;
    if buf.len() < end {
        return None;
    }
    let payload = buf[HEADER_LEN..end].to_vec();
    buf.drain(..end);
    Some((head, payload))
}

// ---------------------------------------------------------------------------------------------
// HPACK, request side (RFC 7541), written here without the server's code
// ---------------------------------------------------------------------------------------------

/// An integer with an `n`-bit prefix; `first` holds the representation's high bits.
pub fn hpack_int(out: &mut Vec<u8>, first: u8, n: u8, v: usize) {
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

/// A string literal, not Huffman-coded.
pub fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A header block of literals without indexing (new names), in order.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0x00);
        hpack_str(&mut out, n.as_bytes());
        hpack_str(&mut out, v.as_bytes());
    }
    out
}

/// `GET path` for `authority` over `scheme`, with `extra` fields after the pseudo-headers.
pub fn get_block(authority: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    request_block("GET", "http", authority, path, extra)
}

pub fn request_block(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut fields = vec![
        (":method", method),
        (":scheme", scheme),
        (":authority", authority),
        (":path", path),
    ];
    fields.extend_from_slice(extra);
    block(&fields)
}

// ---------------------------------------------------------------------------------------------
// Received frames
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
    /// For a HEADERS frame that completes a header block (here or with its CONTINUATIONs):
    /// the decoded fields.
    pub fields: Option<Vec<(String, String)>>,
}

impl Frame {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    pub fn is(&self, kind: u8) -> bool {
        self.kind == kind
    }
    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        self.payload
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    }
    /// GOAWAY's last stream id.
    pub fn last_stream(&self) -> Option<u32> {
        (self.kind == kind::GOAWAY)
            .then(|| self.payload.get(..4))
            .flatten()
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()) & 0x7fff_ffff)
    }
    /// GOAWAY debug data as text.
    pub fn debug_text(&self) -> String {
        if self.kind == kind::GOAWAY && self.payload.len() > 8 {
            String::from_utf8_lossy(&self.payload[8..]).into_owned()
        } else {
            String::new()
        }
    }
    /// The `:status` of a decoded response head.
    pub fn status(&self) -> Option<u16> {
        self.field(":status").and_then(|s| s.parse().ok())
    }
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ]
        .get(self.kind as usize)
        .copied()
        .unwrap_or("UNKNOWN");
        write!(
            f,
            "{name}(stream {}, len {}, flags {:#x}",
            self.stream,
            self.payload.len(),
            self.flags
        )?;
        if let Some(c) = self.error_code() {
            write!(f, ", {}", code::name(c))?;
            let d = self.debug_text();
            if !d.is_empty() {
                write!(f, " {d:?}")?;
            }
        }
        if let Some(fields) = &self.fields {
            write!(f, ", {fields:?}")?;
        }
        write!(f, ")")
    }
}

/// How the connection is doing, for waits that must not hang on a dead connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Frame,
    Timeout,
    Closed,
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// One HTTP/2 connection driven by the test. Nothing is answered automatically except where
/// a method says so (`ack_settings`, `auto_window`).
pub struct Wire {
    pub stream: TcpStream,
    pub authority: String,
    buf: Vec<u8>,
    /// The read side ended (EOF or error).
    pub closed: bool,
    /// A write failed (the server closed or reset the connection).
    pub write_failed: bool,
    /// Every frame received, in order.
    pub log: Vec<Frame>,
    decoder: proto::h2::hpack::Decoder,
    /// A header block being received: (index in `log` of its HEADERS frame, fragments).
    pending_block: Option<(usize, Vec<u8>)>,
    /// Response body octets per stream.
    pub bodies: HashMap<u32, Vec<u8>>,
    /// The windows this client granted the server: the connection's and each stream's.
    pub conn_window: i64,
    pub stream_windows: HashMap<u32, i64>,
    /// SETTINGS_INITIAL_WINDOW_SIZE this client announced (65535 until it says otherwise).
    pub initial_window: i64,
    /// Largest DATA payload this client accepts (its SETTINGS_MAX_FRAME_SIZE).
    pub max_frame: usize,
    /// Return the octets of every DATA frame at once (stream and connection WINDOW_UPDATE).
    pub auto_window: bool,
    /// Acknowledge the server's SETTINGS (non-ACK) frames.
    pub ack_settings: bool,
    /// Frames that broke a rule the server must keep (flow control, frame size, empty DATA
    /// without END_STREAM), described.
    pub violations: Vec<String>,
}

impl Wire {
    /// A TCP connection; nothing sent yet.
    pub fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        // A server that stops reading must not hang a flooding test in write(2).
        stream.set_write_timeout(Some(Duration::from_secs(10))).ok();
        Wire {
            stream,
            authority: addr.to_string(),
            buf: Vec::new(),
            closed: false,
            write_failed: false,
            log: Vec::new(),
            decoder: proto::h2::hpack::Decoder::new(4096),
            pending_block: None,
            bodies: HashMap::new(),
            conn_window: 65_535,
            stream_windows: HashMap::new(),
            initial_window: 65_535,
            max_frame: DEFAULT_MAX_FRAME,
            auto_window: false,
            ack_settings: true,
            violations: Vec::new(),
        }
    }

    /// Connects, sends the preface and SETTINGS with `params`, and waits until the server's
    /// SETTINGS arrived and it acknowledged ours (so they are in force).
    pub fn handshake(addr: &str, params: &[(u16, u32)]) -> Wire {
        let mut w = Wire::connect(addr);
        for (id, v) in params {
            match *id {
                setting::INITIAL_WINDOW_SIZE => w.initial_window = *v as i64,
                setting::MAX_FRAME_SIZE => w.max_frame = *v as usize,
                _ => {}
            }
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(params));
        w.send(&hello);
        let got = w.wait_for(WAIT, |f| f.is(kind::SETTINGS) && !f.has(flag::ACK));
        assert!(got.is_some(), "no server SETTINGS: {:?}", w.log);
        let acked = w.wait_for(WAIT, |f| f.is(kind::SETTINGS) && f.has(flag::ACK));
        assert!(
            acked.is_some(),
            "our SETTINGS not acknowledged: {:?}",
            w.log
        );
        w
    }

    /// The server's first SETTINGS as (id, value) pairs.
    pub fn server_settings(&self) -> Vec<(u16, u32)> {
        let f = self
            .log
            .iter()
            .find(|f| f.is(kind::SETTINGS) && !f.has(flag::ACK))
            .expect("server SETTINGS");
        f.payload
            .chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    }

    /// Writes bytes; a write error (the server closed) is only recorded: what the server sent
    /// before closing can still be read.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.write_failed || self.stream.write_all(bytes).is_err() {
            self.write_failed = true;
        }
    }

    /// `GET path` on stream `id` (END_STREAM, END_HEADERS).
    pub fn get(&mut self, id: u32, path: &str) {
        self.get_with(id, path, &[]);
    }

    pub fn get_with(&mut self, id: u32, path: &str, extra: &[(&str, &str)]) {
        let b = get_block(&self.authority, path, extra);
        self.open_stream_window(id);
        self.send(&headers(id, &b, true, true));
    }

    /// Starts tracking the window of a stream this client opens.
    pub fn open_stream_window(&mut self, id: u32) {
        self.stream_windows.insert(id, self.initial_window);
    }

    /// Grants `n` more octets on `stream` (0: the connection) and counts them.
    pub fn grant(&mut self, stream: u32, n: u32) {
        if stream == 0 {
            self.conn_window += n as i64;
        } else if let Some(w) = self.stream_windows.get_mut(&stream) {
            *w += n as i64;
        }
        self.send(&window_update(stream, n));
    }

    /// Changes SETTINGS_INITIAL_WINDOW_SIZE; open stream windows move by the difference
    /// (RFC 9113 §6.9.2), as the server must apply it.
    pub fn set_initial_window(&mut self, v: u32) {
        let delta = v as i64 - self.initial_window;
        self.initial_window = v as i64;
        for w in self.stream_windows.values_mut() {
            *w += delta;
        }
        self.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, v)]));
    }

    /// Reads until one more frame is handled, `deadline` passes or the connection ends.
    pub fn next(&mut self, deadline: Instant) -> Next {
        loop {
            if self.take_frame() {
                return Next::Frame;
            }
            if self.closed {
                return Next::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if !read_some(&mut self.stream, &mut self.buf, wait) {
                self.closed = true;
            }
        }
    }

    /// Handles whatever frames are already readable, without waiting.
    pub fn poll_ready(&mut self) {
        while self.next(Instant::now() + Duration::from_millis(1)) == Next::Frame {}
    }

    /// Sends `chunks` one after the other (a flood), stopping early once the server sent
    /// GOAWAY or the connection is gone. Returns the octets written.
    pub fn flood(&mut self, chunks: impl IntoIterator<Item = Vec<u8>>) -> usize {
        let mut sent = 0;
        for chunk in chunks {
            if self.write_failed || self.closed || self.log.iter().any(|f| f.is(kind::GOAWAY)) {
                break;
            }
            self.send(&chunk);
            if !self.write_failed {
                sent += chunk.len();
            }
            self.poll_ready();
        }
        sent
    }

    /// Reads frames until one satisfies `pred` (returned), or `timeout` passes, or the
    /// connection ends (None). Every frame read is handled and logged.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.log.len();
        loop {
            while seen < self.log.len() {
                let f = &self.log[seen];
                seen += 1;
                if pred(f) {
                    return Some(f.clone());
                }
            }
            if self.next(deadline) != Next::Frame {
                return None;
            }
        }
    }

    /// Like `wait_for`, but also counts frames already in the log.
    pub fn seen_or_wait(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Frame) -> bool,
    ) -> Option<Frame> {
        if let Some(f) = self.log.iter().find(|f| pred(f)) {
            return Some(f.clone());
        }
        self.wait_for(timeout, pred)
    }

    /// Keeps handling frames until `cond(self)` holds; false on timeout or close.
    pub fn run_until(&mut self, timeout: Duration, cond: impl Fn(&Wire) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if self.next(deadline) != Next::Frame {
                return cond(self);
            }
        }
    }

    /// The GOAWAY the server sent (waiting for it up to `timeout`).
    pub fn goaway(&mut self, timeout: Duration) -> Option<Frame> {
        self.seen_or_wait(timeout, |f| f.is(kind::GOAWAY))
    }

    /// The RST_STREAM the server sent on `stream` (waiting up to `timeout`).
    pub fn reset_of(&mut self, stream: u32, timeout: Duration) -> Option<Frame> {
        self.seen_or_wait(timeout, |f| f.is(kind::RST_STREAM) && f.stream == stream)
    }

    /// The response head of `stream` (waiting up to `timeout`).
    pub fn response(&mut self, stream: u32, timeout: Duration) -> Option<Frame> {
        self.seen_or_wait(timeout, |f| {
            f.is(kind::HEADERS) && f.stream == stream && f.fields.is_some()
        })
    }

    /// Whether the server closes the connection within `timeout` (frames read meanwhile are
    /// handled and logged).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline) {
                Next::Closed => return true,
                Next::Timeout => return false,
                Next::Frame => {}
            }
        }
    }

    /// Sends a PING and waits for its ACK: the connection is alive and served.
    pub fn alive(&mut self, timeout: Duration) -> bool {
        let payload = *b"alive?!!";
        self.send(&ping(payload));
        self.wait_for(timeout, |f| {
            f.is(kind::PING) && f.has(flag::ACK) && f.payload == payload
        })
        .is_some()
    }

    /// SSE events received on `stream` so far.
    pub fn events(&self, stream: u32) -> Vec<Event> {
        parse_sse(self.bodies.get(&stream).map(|b| &b[..]).unwrap_or(&[])).0
    }

    /// DATA frames received on `stream`.
    pub fn data_frames(&self, stream: u32) -> Vec<&Frame> {
        self.log
            .iter()
            .filter(|f| f.is(kind::DATA) && f.stream == stream)
            .collect()
    }

    /// Frames of the log as a short text (for failure messages).
    pub fn log_text(&self) -> String {
        let n = self.log.len();
        let shown: Vec<String> = self
            .log
            .iter()
            .skip(n.saturating_sub(60))
            .map(|f| format!("{f:?}"))
            .collect();
        format!("{} frames, last {}: {}", n, shown.len(), shown.join("\n  "))
    }

    /// Parses one buffered frame, if whole, and handles it.
    fn take_frame(&mut self) -> bool {
        let Some((head, payload)) = split_frame(&mut self.buf) else {
            return false;
        };
        let frame = Frame {
            kind: head.kind,
            flags: head.flags,
            stream: head.stream_id,
            payload,
            fields: None,
        };
        self.handle(frame);
        true
    }

    fn handle(&mut self, f: Frame) {
        let idx = self.log.len();
        match f.kind {
            kind::SETTINGS if !f.has(flag::ACK) && self.ack_settings => self.send(&settings_ack()),
            kind::HEADERS => {
                let p = &f.payload[..];
                let pad = if f.has(flag::PADDED) {
                    p[0] as usize
                } else {
                    0
                };
                let mut start = if f.has(flag::PADDED) { 1 } else { 0 };
                if f.has(flag::PRIORITY) {
                    start += 5;
                }
                let fragment = p[start..p.len() - pad].to_vec();
                self.pending_block = Some((idx, fragment));
            }
            kind::CONTINUATION => {
                if let Some((_, b)) = &mut self.pending_block {
                    b.extend_from_slice(&f.payload);
                } else {
                    self.violations
                        .push(format!("CONTINUATION without HEADERS: {f:?}"));
                }
            }
            kind::DATA => {
                let p = &f.payload[..];
                let pad = if f.has(flag::PADDED) {
                    p[0] as usize + 1
                } else {
                    0
                };
                let body = &p[(pad > 0) as usize..p.len() - pad.saturating_sub(1)];
                self.bodies
                    .entry(f.stream)
                    .or_default()
                    .extend_from_slice(body);
                let n = f.payload.len();
                if n == 0 && !f.has(flag::END_STREAM) {
                    self.violations
                        .push(format!("empty DATA frame without END_STREAM: {f:?}"));
                }
                if n > self.max_frame {
                    self.violations.push(format!(
                        "DATA frame of {n} octets over the frame size {}",
                        self.max_frame
                    ));
                }
                self.conn_window -= n as i64;
                if self.conn_window < 0 {
                    self.violations.push(format!(
                        "DATA beyond the connection window ({}): {f:?}",
                        self.conn_window
                    ));
                }
                let initial = self.initial_window;
                let w = self.stream_windows.entry(f.stream).or_insert(initial);
                *w -= n as i64;
                if *w < 0 {
                    let w = *w;
                    self.violations
                        .push(format!("DATA beyond the stream window ({w}): {f:?}"));
                }
                if self.auto_window && n > 0 {
                    let mut wu = window_update(0, n as u32);
                    self.conn_window += n as i64;
                    if !f.has(flag::END_STREAM) {
                        wu.extend(window_update(f.stream, n as u32));
                        if let Some(w) = self.stream_windows.get_mut(&f.stream) {
                            *w += n as i64;
                        }
                    }
                    self.send(&wu);
                }
            }
            _ => {}
        }
        let ends_block =
            matches!(f.kind, kind::HEADERS | kind::CONTINUATION) && f.has(flag::END_HEADERS);
        self.log.push(f);
        if ends_block {
            if let Some((at, block)) = self.pending_block.take() {
                let mut fields = Vec::new();
                let r = self.decoder.decode(&block, |n, v| {
                    fields.push((
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    ))
                });
                if let Err(e) = r {
                    self.violations
                        .push(format!("undecodable response head: {e:?}"));
                }
                self.log[at].fields = Some(fields);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TLS test certificate and process memory
// ---------------------------------------------------------------------------------------------

pub use crate::secure::test_certificate;

/// Resident memory of process `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
