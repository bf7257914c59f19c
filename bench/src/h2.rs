//! The HTTP/2 mode of the load generator: one connection task per `--streams-per-conn` streams,
//! by prior knowledge on the cleartext port. Frames are read in place from one reusable read
//! buffer and answered from one reusable write buffer (flushed once per read); DATA payloads go
//! to the same SSE parser and sequence accounting as HTTP/1.1 ([`on_bytes`]), so nothing is
//! allocated per event. Requests are HPACK literals without indexing and without Huffman
//! (encoded with the test kit's `h2wire` functions);
//! responses are decoded with the workspace's HPACK decoder (its dynamic table must follow the
//! server's even though only `:status` is looked at).
//!
//! Flow control: SETTINGS_INITIAL_WINDOW_SIZE = [`STREAM_WINDOW`] and a connection window of
//! `STREAM_WINDOW` × streams; credit is returned with WINDOW_UPDATE once half a window has been
//! consumed (stream and connection separately). PING and SETTINGS are acknowledged. A stream
//! the server ends (END_STREAM, RST_STREAM) is reopened on the same connection with its
//! Last-Event-ID, as the HTTP/1.1 path reconnects; GOAWAY or a closed connection reconnects the
//! whole connection, every unfinished stream resuming by id.

use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::client::{finishing, mark_failed, on_bytes, on_opened, so_error, Ctx, Flow};
use crate::payload::mono_ns;

/// SETTINGS_INITIAL_WINDOW_SIZE announced: what each stream may receive before credit returns.
pub const STREAM_WINDOW: u32 = 1 << 20;
const DEFAULT_WINDOW: u32 = proto::h2::frame::DEFAULT_WINDOW_SIZE;

use proto::h2::frame::flag::{ACK, END_HEADERS, END_STREAM, PADDED, PRIORITY};
use proto::h2::frame::kind::{
    CONTINUATION, DATA, GOAWAY, HEADERS, PING, RST_STREAM, SETTINGS, WINDOW_UPDATE,
};
use proto::h2::frame::setting::{
    ENABLE_PUSH as SETTINGS_ENABLE_PUSH, INITIAL_WINDOW_SIZE as SETTINGS_INITIAL_WINDOW_SIZE,
};
use testkit::h2wire::code::CANCEL;
use testkit::h2wire::hpack_str;

/// Give up reopening a stream after this many consecutive non-200 answers.
const MAX_FAILS: u32 = 5;

/// One stream of a connection task.
struct Sub {
    slot: usize,
    path: String,
    /// Current stream id (0: none).
    id: u32,
    /// The current stream answered 200.
    open: bool,
    /// A response head is awaited on the current stream.
    head_pending: bool,
    /// Consecutive attempts without a 200.
    fails: u32,
    /// Nothing more to do (complete while finishing, or failed).
    finished: bool,
    /// DATA octets not yet credited back on the current stream.
    consumed: u32,
}

fn frame_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&testkit::h2wire::frame_head(len, kind, flags, stream));
}

fn window_update(out: &mut Vec<u8>, stream: u32, n: u32) {
    frame_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&n.to_be_bytes());
}

fn rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    frame_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

/// A literal field without indexing, new name, no Huffman.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_str(out, name);
    hpack_str(out, value);
}

/// `GET path` on stream `id` (END_STREAM, END_HEADERS), with Last-Event-ID when resuming.
pub fn request(out: &mut Vec<u8>, id: u32, authority: &str, path: &str, last_id: &[u8]) {
    let start = out.len();
    frame_head(out, 0, HEADERS, END_STREAM | END_HEADERS, id);
    literal(out, b":method", b"GET");
    literal(out, b":scheme", b"http");
    literal(out, b":authority", authority.as_bytes());
    literal(out, b":path", path.as_bytes());
    literal(out, b"accept", b"text/event-stream");
    literal(out, b"cache-control", b"no-cache");
    if !last_id.is_empty() {
        literal(out, b"last-event-id", last_id);
    }
    let len = out.len() - start - 9;
    out[start] = (len >> 16) as u8;
    out[start + 1] = (len >> 8) as u8;
    out[start + 2] = len as u8;
}

/// The client preface, our SETTINGS and the connection window.
fn hello(out: &mut Vec<u8>, conn_window: u32) {
    out.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    frame_head(out, 12, SETTINGS, 0, 0);
    out.extend_from_slice(&SETTINGS_ENABLE_PUSH.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes());
    out.extend_from_slice(&STREAM_WINDOW.to_be_bytes());
    window_update(out, 0, conn_window - DEFAULT_WINDOW);
}

pub async fn h2_conn_task(ctx: Rc<Ctx>, slots: Vec<usize>) {
    let args = ctx.args.clone();
    let first_index = ctx.streams[slots[0]].borrow().index;
    let src = args.src_addrs[first_index % args.src_addrs.len()];
    let mut subs: Vec<Sub> = slots
        .iter()
        .map(|&slot| Sub {
            slot,
            path: args
                .path
                .replace("{i}", &ctx.streams[slot].borrow().index.to_string()),
            id: 0,
            open: false,
            head_pending: false,
            fails: 0,
            finished: false,
            consumed: 0,
        })
        .collect();
    let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut block: Vec<u8> = Vec::with_capacity(1024);
    let mut attempts = 0u32;
    loop {
        if subs.iter().all(|s| s.finished) {
            return;
        }
        ctx.acquire().await;
        let stream = match connect(&ctx, src).await {
            Ok(s) => s,
            Err(what) => {
                ctx.release();
                ctx.error(&what);
                attempts += 1;
                let any_opened = subs.iter().any(|s| ctx.streams[s.slot].borrow().opened);
                if attempts >= 5 && !any_opened {
                    for s in subs.iter_mut().filter(|s| !s.finished) {
                        s.finished = true;
                        mark_failed(&ctx, s.slot);
                    }
                    return;
                }
                let f = finishing();
                if f != 0 && mono_ns() > f {
                    return;
                }
                monoio::time::sleep(Duration::from_millis(50 * attempts.min(20) as u64)).await;
                continue;
            }
        };
        attempts = 0;
        let (r, w, b) = session(&ctx, stream, &mut subs, rbuf, wbuf, block).await;
        (rbuf, wbuf, block) = (r, w, b);
        if subs.iter().all(|s| s.finished) {
            return;
        }
        // The connection ended (closed, GOAWAY, protocol error): every open stream counts
        // as closed by the server and resumes with its last id on a new connection.
        for s in subs.iter_mut().filter(|s| !s.finished) {
            if s.open {
                let mut st = ctx.streams[s.slot].borrow_mut();
                st.server_closes += 1;
                let f = finishing();
                if st.complete && f != 0 {
                    s.finished = true;
                }
            }
            s.open = false;
            s.id = 0;
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(ctx: &Ctx, src: Ipv4Addr) -> Result<TcpStream, String> {
    let std_stream = crate::net::start_connect(src, ctx.args.target)
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let stream = TcpStream::from_std(std_stream).map_err(|e| format!("register: {}", e.kind()))?;
    stream
        .writable(false)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    if let Some(e) = so_error(&stream) {
        return Err(format!("connect: {}", e.kind()));
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Opens (or reopens) `sub` on stream `*next_id`.
fn open_stream(ctx: &Ctx, sub: &mut Sub, next_id: &mut u32, wbuf: &mut Vec<u8>) {
    let mut st = ctx.streams[sub.slot].borrow_mut();
    st.connects += 1;
    sub.id = *next_id;
    *next_id += 2;
    sub.open = false;
    sub.head_pending = true;
    sub.consumed = 0;
    request(wbuf, sub.id, &ctx.host, &sub.path, st.parser.last_id());
}

/// The server ended `sub`'s stream (END_STREAM or RST_STREAM): reopen it unless it is done.
fn stream_ended(ctx: &Ctx, sub: &mut Sub, next_id: &mut u32, wbuf: &mut Vec<u8>) {
    sub.id = 0;
    if sub.open {
        sub.open = false;
        let mut st = ctx.streams[sub.slot].borrow_mut();
        st.server_closes += 1;
        if st.complete && finishing() != 0 {
            sub.finished = true;
            return;
        }
    } else {
        sub.fails += 1;
        if sub.fails >= MAX_FAILS {
            sub.finished = true;
            if !ctx.streams[sub.slot].borrow().opened {
                mark_failed(ctx, sub.slot);
            } else {
                ctx.error("h2: stream given up after repeated non-200 answers");
            }
            return;
        }
    }
    open_stream(ctx, sub, next_id, wbuf);
}

/// One connection: handshake, requests, then frames until it ends or every stream is done.
async fn session(
    ctx: &Ctx,
    mut stream: TcpStream,
    subs: &mut [Sub],
    mut rbuf: Vec<u8>,
    mut wbuf: Vec<u8>,
    mut block: Vec<u8>,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut permit = true;
    let live = subs.iter().filter(|s| !s.finished).count().max(1) as u32;
    let conn_window = STREAM_WINDOW.saturating_mul(live).min(i32::MAX as u32);
    let mut conn_consumed = 0u32;
    let mut decoder = proto::h2::hpack::Decoder::new(4096);
    let mut next_id = 1u32;
    rbuf.clear();
    wbuf.clear();
    block.clear();
    hello(&mut wbuf, conn_window);
    for s in subs.iter_mut().filter(|s| !s.finished) {
        open_stream(ctx, s, &mut next_id, &mut wbuf);
    }
    // Header block in progress: (stream, END_STREAM of its HEADERS).
    let mut in_block: Option<(u32, bool)> = None;
    let mut goaway = false;
    macro_rules! give_back {
        () => {
            if permit {
                permit = false;
                ctx.release();
            }
        };
    }
    loop {
        if !wbuf.is_empty() {
            let (res, w) = stream.write_all(wbuf).await;
            wbuf = w;
            wbuf.clear();
            if let Err(e) = res {
                ctx.error(&format!("h2 write: {}", e.kind()));
                break;
            }
        }
        if permit && !subs.iter().any(|s| s.head_pending) {
            give_back!();
        }
        if goaway || subs.iter().all(|s| s.finished) {
            break;
        }
        if rbuf.len() == rbuf.capacity() {
            rbuf.reserve(16 * 1024);
        }
        let len = rbuf.len();
        let (res, b) = stream.read(crate::client::slice_from(rbuf, len)).await;
        rbuf = b.into_inner();
        match res {
            Ok(0) => break,
            Err(e) => {
                ctx.error(&format!("h2 read: {}", e.kind()));
                break;
            }
            Ok(_) => {}
        }
        let now = mono_ns();
        let mut pos = 0usize;
        let mut fatal: Option<&'static str> = None;
        while rbuf.len() - pos >= 9 {
            let h = &rbuf[pos..pos + 9];
            let flen = (h[0] as usize) << 16 | (h[1] as usize) << 8 | h[2] as usize;
            let (kind, flags) = (h[3], h[4]);
            let sid = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            if rbuf.len() - pos < 9 + flen {
                if 9 + flen > rbuf.capacity() {
                    rbuf.reserve(9 + flen);
                }
                break;
            }
            let payload = &rbuf[pos + 9..pos + 9 + flen];
            pos += 9 + flen;
            if in_block.is_some() && kind != CONTINUATION {
                fatal = Some("h2: frame inside a header block");
                break;
            }
            match kind {
                DATA => {
                    conn_consumed += flen as u32;
                    let data = match strip_padding(payload, flags) {
                        Some(d) => d,
                        None => {
                            fatal = Some("h2: bad padding");
                            break;
                        }
                    };
                    if let Some(sub) = subs.iter_mut().find(|s| s.id == sid && sid != 0) {
                        sub.consumed += flen as u32;
                        let mut flow = Flow::Continue;
                        if sub.open && !data.is_empty() {
                            flow = on_bytes(ctx, sub.slot, data, false, now);
                        }
                        match flow {
                            Flow::Continue | Flow::ServerEnded => {
                                if flags & END_STREAM != 0 {
                                    stream_ended(ctx, sub, &mut next_id, &mut wbuf);
                                } else if sub.consumed >= STREAM_WINDOW / 2 {
                                    window_update(&mut wbuf, sid, sub.consumed);
                                    sub.consumed = 0;
                                }
                            }
                            Flow::Drop => {
                                // Reconnect scenario: cancel and resume by id on a new stream.
                                rst_stream(&mut wbuf, sid, CANCEL);
                                open_stream(ctx, sub, &mut next_id, &mut wbuf);
                            }
                            Flow::Done => {
                                rst_stream(&mut wbuf, sid, CANCEL);
                                sub.id = 0;
                                sub.open = false;
                                sub.finished = true;
                            }
                        }
                    }
                    if conn_consumed >= conn_window / 2 {
                        window_update(&mut wbuf, 0, conn_consumed);
                        conn_consumed = 0;
                    }
                }
                HEADERS | CONTINUATION => {
                    let (fragment, end_stream) = if kind == HEADERS {
                        let mut p = match strip_padding(payload, flags) {
                            Some(d) => d,
                            None => {
                                fatal = Some("h2: bad padding");
                                break;
                            }
                        };
                        if flags & PRIORITY != 0 {
                            if p.len() < 5 {
                                fatal = Some("h2: short HEADERS");
                                break;
                            }
                            p = &p[5..];
                        }
                        block.clear();
                        (p, flags & END_STREAM != 0)
                    } else {
                        match in_block {
                            Some((s, es)) if s == sid => (payload, es),
                            _ => {
                                fatal = Some("h2: stray CONTINUATION");
                                break;
                            }
                        }
                    };
                    block.extend_from_slice(fragment);
                    if flags & END_HEADERS == 0 {
                        in_block = Some((sid, end_stream));
                        continue;
                    }
                    in_block = None;
                    let mut status = 0u16;
                    let decoded = decoder.decode(&block, |n, v| {
                        if n == b":status" {
                            status = std::str::from_utf8(v)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                        }
                    });
                    if decoded.is_err() {
                        fatal = Some("h2: HPACK decoding error");
                        break;
                    }
                    let Some(sub) = subs.iter_mut().find(|s| s.id == sid && sid != 0) else {
                        continue;
                    };
                    if sub.head_pending {
                        sub.head_pending = false;
                        *ctx.statuses.borrow_mut().entry(status).or_default() += 1;
                        if status == 200 {
                            sub.open = true;
                            sub.fails = 0;
                            on_opened(ctx, sub.slot);
                        } else {
                            ctx.error(&format!("status {status}"));
                        }
                    }
                    if end_stream {
                        stream_ended(ctx, sub, &mut next_id, &mut wbuf);
                    }
                }
                RST_STREAM => {
                    let code = payload
                        .get(..4)
                        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
                        .unwrap_or(0);
                    if let Some(sub) = subs.iter_mut().find(|s| s.id == sid && sid != 0) {
                        ctx.error(&format!("h2: RST_STREAM {code:#x}"));
                        sub.head_pending = false;
                        stream_ended(ctx, sub, &mut next_id, &mut wbuf);
                    }
                }
                SETTINGS if flags & ACK == 0 => frame_head(&mut wbuf, 0, SETTINGS, ACK, 0),
                PING if flags & ACK == 0 && flen == 8 => {
                    frame_head(&mut wbuf, 8, PING, ACK, 0);
                    wbuf.extend_from_slice(payload);
                }
                GOAWAY => {
                    let code = payload
                        .get(4..8)
                        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
                        .unwrap_or(0);
                    ctx.error(&format!("h2: GOAWAY {code:#x}"));
                    goaway = true;
                }
                _ => {} // ACKs, WINDOW_UPDATE, PRIORITY, unknown: nothing to do.
            }
        }
        if let Some(what) = fatal {
            ctx.error(what);
            break;
        }
        // Keep the partial frame at the front.
        let rest = rbuf.len() - pos;
        if pos > 0 {
            rbuf.copy_within(pos.., 0);
            rbuf.truncate(rest);
        }
        // Streams still owed a head keep the permit; once all answered, let others connect.
    }
    give_back!();
    let _ = permit;
    (rbuf, wbuf, block)
}

fn strip_padding(payload: &[u8], flags: u8) -> Option<&[u8]> {
    if flags & PADDED == 0 {
        return Some(payload);
    }
    let pad = *payload.first()? as usize;
    if pad + 1 > payload.len() {
        return None;
    }
    Some(&payload[1..payload.len() - pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_block_decodes_with_the_proto_decoder() {
        let mut out = Vec::new();
        request(&mut out, 3, "127.0.0.1:1", "/t", b"42");
        let len = (out[0] as usize) << 16 | (out[1] as usize) << 8 | out[2] as usize;
        assert_eq!(len, out.len() - 9);
        assert_eq!((out[3], out[4]), (HEADERS, END_STREAM | END_HEADERS));
        assert_eq!(u32::from_be_bytes(out[5..9].try_into().unwrap()), 3);
        let mut d = proto::h2::hpack::Decoder::new(4096);
        let mut fields = Vec::new();
        d.decode(&out[9..], |n, v| fields.push((n.to_vec(), v.to_vec())))
            .unwrap();
        assert_eq!(fields[0], (b":method".to_vec(), b"GET".to_vec()));
        assert_eq!(fields[3], (b":path".to_vec(), b"/t".to_vec()));
        assert_eq!(fields[6], (b"last-event-id".to_vec(), b"42".to_vec()));
    }

    #[test]
    fn padding_is_stripped() {
        assert_eq!(strip_padding(&[2, b'a', 0, 0], PADDED), Some(&b"a"[..]));
        assert_eq!(strip_padding(&[5, b'a'], PADDED), None);
        assert_eq!(strip_padding(b"ab", 0), Some(&b"ab"[..]));
    }
}
