//! One HTTP/1.1 connection: read a bounded request head, route it, answer it. Static files and
//! errors keep the connection alive where the request allows; an SSE response turns the
//! connection into that stream's writer until the stream ends.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::Poll;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, Splitable};
use monoio::net::TcpStream;
use proto::http1::{
    parse_request, write_response_head, BodyFraming, Limits, EMPTY_HEADER, H2_PREFACE, LAST_CHUNK,
};

use super::admission::Admission;
use super::files::{answer, FileAnswer};
use super::head::Head;
use super::route::{route, Exit, Routed};
use super::sse::{plan_sse, Reject};
use crate::config::plan::HttpService;
use crate::fanout::hub::{flush, OpenError, SharedHub};
use crate::fanout::stream_io::{EndReason, SharedIo};
use crate::fanout::view::open_stream;
use crate::metrics::WorkerMetrics;

const MAX_HEADERS: usize = 64;
/// Buffers larger than this are not kept between writes.
const KEEP_BUFFER: usize = 64 * 1024;

/// What to do after answering a request.
enum Next {
    KeepAlive,
    Close,
}

/// Counts a connection open for as long as it lives.
struct Open(Arc<WorkerMetrics>, usize);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_closed[self.1].inc();
    }
}

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    http: Arc<HttpService>,
    hub: SharedHub,
    admission: Arc<Admission>,
) {
    let metrics = hub.borrow().metrics.clone();
    metrics.connections_opened[0].inc();
    let _open = Open(metrics.clone(), 0);
    let limits = Limits::default();
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // Read until a whole head is buffered (or the peer closes / the head is too large).
        let head = loop {
            if buf.starts_with(H2_PREFACE)
                || (buf.len() < H2_PREFACE.len() && !buf.is_empty() && H2_PREFACE.starts_with(&buf))
            {
                if buf.len() >= H2_PREFACE.len() {
                    // HTTP/2 prior knowledge arrives with the HTTP/2 issue; say so and close.
                    crate::debug!("HTTP/2 preface received: not supported yet, closing");
                    return;
                }
            } else {
                let mut headers = [EMPTY_HEADER; MAX_HEADERS];
                match parse_request(&buf, &mut headers, &limits) {
                    Ok(Some(_)) => break Ok(()),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            }
            let spare = buf.capacity() - buf.len();
            if spare < 512 {
                buf.reserve(1024.min(limits.max_head + 1 - buf.len().min(limits.max_head)));
            }
            let read_into = std::mem::take(&mut buf);
            let len = read_into.len();
            let (res, b) = stream.read(read_into.slice_mut(len..)).await;
            buf = b.into_inner();
            match res {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        if let Err(e) = head {
            let _ = write_status(&mut stream, e.status(), &[], true).await;
            return;
        }
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(Some((req, head_len))) = parse_request(&buf, &mut headers, &limits) else {
            return;
        };
        let action = decide(&http, &req, &hub);
        let close = req.wants_close();
        let body = match req.body_framing() {
            Ok(b) => b,
            Err(e) => {
                let _ = write_status(&mut stream, e.status(), &[], true).await;
                return;
            }
        };
        let next = match action {
            Action::Status(code, cors) => {
                let close = close || code >= 400 && code != 404 && code != 405;
                if write_status(&mut stream, code, &cors, close).await.is_err() || close {
                    Next::Close
                } else {
                    Next::KeepAlive
                }
            }
            Action::File(response) => {
                if write_all(&mut stream, response).await.is_err() || close {
                    Next::Close
                } else {
                    Next::KeepAlive
                }
            }
            Action::Sse(plan, cors) => {
                let Some(ticket) = admission.admit(peer.ip()) else {
                    let _ = write_status(&mut stream, 503, &cors, true).await;
                    return;
                };
                stream_sse(stream, plan, cors, hub).await;
                drop(ticket);
                return;
            }
        };
        if matches!(next, Next::Close) {
            return;
        }
        // Drop the answered request (and a small body) from the buffer; keep pipelined bytes.
        let body_len = match body {
            BodyFraming::None => 0,
            BodyFraming::Length(n) if n <= 64 * 1024 => n as usize,
            _ => return, // chunked or large bodies are not consumed: close instead
        };
        let consumed = head_len + body_len;
        if buf.len() < consumed {
            // Read the rest of the body, then drop it.
            let mut need = consumed - buf.len();
            buf.clear();
            while need > 0 {
                let (res, b) = stream.read(vec![0u8; need.min(16 * 1024)]).await;
                match res {
                    Ok(0) | Err(_) => return,
                    Ok(n) => need -= n.min(need),
                }
                drop(b);
            }
        } else {
            buf.drain(..consumed);
        }
    }
}

enum Action {
    Status(u16, Vec<(&'static str, Vec<u8>)>),
    File(Vec<u8>),
    Sse(super::sse::SsePlan, Vec<(&'static str, Vec<u8>)>),
}

fn decide(http: &HttpService, req: &dyn Head, hub: &SharedHub) -> Action {
    match route(http, req) {
        Routed::NotFound => Action::Status(404, Vec::new()),
        Routed::Forbidden => Action::Status(403, Vec::new()),
        Routed::Preflight(cors) => Action::Status(204, cors),
        Routed::Exit(Exit::Files(svc), cors) => match answer(&svc, req) {
            FileAnswer::Status(code) => Action::Status(code, cors),
            FileAnswer::Ok {
                content_type,
                body,
                head_only,
            } => {
                let mut out = Vec::with_capacity(body.len() + 256);
                let len = body.len().to_string();
                let mut headers: Vec<(&str, &[u8])> = vec![
                    ("Content-Type", content_type.as_bytes()),
                    ("Content-Length", len.as_bytes()),
                ];
                headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
                write_response_head(&mut out, 200, &headers);
                if !head_only {
                    out.extend_from_slice(&body);
                }
                Action::File(out)
            }
        },
        Routed::Exit(Exit::Sse(svc), cors) => {
            let clusters: Vec<String> = hub
                .borrow()
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect();
            match plan_sse(&svc, req, &clusters) {
                Ok(plan) => {
                    if plan.malformed_id {
                        hub.borrow().metrics.malformed_ids.inc();
                    }
                    Action::Sse(plan, cors)
                }
                Err(Reject(code)) => Action::Status(code, cors),
            }
        }
    }
}

async fn write_all(stream: &mut TcpStream, bytes: Vec<u8>) -> std::io::Result<()> {
    let (res, _) = stream.write_all(bytes).await;
    res.map(|_| ())
}

async fn write_status(
    stream: &mut TcpStream,
    code: u16,
    extra: &[(&'static str, Vec<u8>)],
    close: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(128);
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(extra.len() + 2);
    if code != 204 {
        headers.push(("Content-Length", b"0"));
    }
    if close {
        headers.push(("Connection", b"close"));
    }
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_slice())));
    write_response_head(&mut out, code, &headers);
    write_all(stream, out).await
}

/// Opens the stream in the fan-out, sends the 200 head, then writes whatever the fan-out
/// appends until the stream ends or the client goes away.
async fn stream_sse(
    mut stream: TcpStream,
    plan: super::sse::SsePlan,
    cors: Vec<(&'static str, Vec<u8>)>,
    hub: SharedHub,
) {
    let chunked = plan.open.chunked;
    let (key, io) = match open_stream(&hub, plan.open).await {
        Ok(opened) => opened,
        Err(e) => {
            let code = match e {
                OpenError::NotFound => 404,
                OpenError::Unavailable | OpenError::ShuttingDown => 503,
            };
            let _ = write_status(&mut stream, code, &cors, true).await;
            return;
        }
    };
    let content_type: &[u8] = if plan.timestamp_ext {
        b"text/event-stream;ext=timestamp"
    } else {
        b"text/event-stream"
    };
    let mut head = Vec::with_capacity(256);
    let mut headers: Vec<(&str, &[u8])> = vec![("Content-Type", content_type)];
    if chunked {
        headers.push(("Transfer-Encoding", b"chunked"));
    } else {
        headers.push(("Connection", b"close"));
    }
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
    write_response_head(&mut head, 200, &headers);

    let metrics = hub.borrow().metrics.clone();
    let fd = stream.as_raw_fd();
    let (reader, mut writer) = stream.into_split();
    monoio::spawn(watch_close(reader, io.clone()));

    let (res, mut spare) = writer.write_all(head).await;
    if res.is_ok() {
        spare.clear();
        loop {
            let next = poll_fn(|cx| {
                let mut s = io.borrow_mut();
                if matches!(
                    s.end,
                    Some(EndReason::Client | EndReason::Budget | EndReason::Upstream)
                ) {
                    return Poll::Ready(None);
                }
                if let Some(start) = s.take(&mut spare, cx.waker()) {
                    return Poll::Ready(Some(start));
                }
                if s.end.is_some() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            })
            .await;
            let Some(start) = next else { break };
            metrics.bytes_sent.add((spare.len() - start) as u64);
            let (res, back) = writer.write_all(spare.slice(start..)).await;
            spare = back.into_inner();
            spare.clear();
            if spare.capacity() > KEEP_BUFFER {
                spare = Vec::new();
            }
            if res.is_err() {
                io.borrow_mut().finish(EndReason::Client);
                break;
            }
            hub.borrow_mut().on_drained(key);
            flush(&hub);
        }
        if chunked && io.borrow().end == Some(EndReason::Shutdown) {
            let _ = writer.write_all(LAST_CHUNK.to_vec()).await;
        }
    }
    hub.borrow_mut().close_stream(key);
    flush(&hub);
    // Wake the close watcher so both halves drop and the socket closes.
    // SAFETY: `fd` belongs to this connection's socket, still open while `writer` lives here;
    // shutdown(2) does not close the descriptor, it only ends both directions.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Reads (and discards) until the client closes; then ends the stream.
async fn watch_close(mut reader: OwnedReadHalf<TcpStream>, io: SharedIo) {
    let mut buf = vec![0u8; 64];
    loop {
        let (res, b) = reader.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => {
                io.borrow_mut().finish(EndReason::Client);
                return;
            }
            Ok(_) => {}
        }
    }
}
