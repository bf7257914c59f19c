//! A minimal raw HTTP/2 client (prior knowledge), for what curl and nghttp cannot do on demand
//! (reset one stream, read RST_STREAM codes, keep the connection window open).
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::*;

pub use crate::h2wire::code::{CANCEL, REFUSED_STREAM};
pub use proto::h2::frame::flag::{ACK, END_HEADERS, END_STREAM};
pub use proto::h2::frame::kind::{
    CONTINUATION, DATA, GOAWAY, HEADERS, PING, RST_STREAM, SETTINGS, WINDOW_UPDATE,
};

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

use crate::h2wire::{frame, hpack_int};

fn hpack_str(out: &mut Vec<u8>, s: &str) {
    crate::h2wire::hpack_str(out, s.as_bytes());
}

/// The `:status` of a header block if it leads with one the simple way (static index or a
/// non-Huffman literal with the `:status` name index).
/// Kept independent of proto's HPACK decoder on purpose: it is the oracle that checks the
/// server's encoder (a bug shared by encoder and decoder would otherwise pass).
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
    pub fn request_with(&mut self, id: u32, method: &str, path: &str, headers: &[(&str, &str)]) {
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
            let wait = left.clamp(Duration::from_millis(1), Duration::from_millis(100));
            if !crate::h2wire::read_some(&mut self.stream, &mut self.buf, wait) {
                self.closed = true;
            }
        }
    }

    /// Handles one buffered frame; false when no whole frame is buffered.
    fn handle_one(&mut self) -> bool {
        let Some((head, payload)) = crate::h2wire::split_frame(&mut self.buf) else {
            return false;
        };
        let (kind, flags, id) = (head.kind, head.flags, head.stream_id);
        let len = head.length as usize;
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
