//! One HTTP/1.1 connection: read a bounded request head, route it, answer it. Static files and
//! errors keep the connection alive where the request allows; an SSE response turns the
//! connection into that stream's writer until the stream ends.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::Poll;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use proto::http1::{
    parse_request, write_response_head, BodyFraming, Limits, RequestError, EMPTY_HEADER,
    H2_PREFACE, LAST_CHUNK,
};

use super::admission::{Admission, Refused, Ticket};
use super::exchange::{decide, Action};
use super::h2::serve_h2;
use super::head::Secure;
use super::shed;
use super::Transport;
use crate::config::plan::HttpService;
use crate::fanout::hub::{flush, OpenError, SharedHub};
use crate::fanout::message::StreamKey;
use crate::fanout::stream_io::{
    give_buffer, give_gather, take_buffer, EndReason, Gather, SharedIo, Take,
};
use crate::fanout::view::open_stream;
use crate::metrics::WorkerMetrics;

const MAX_HEADERS: usize = 64;

/// What to do after answering a request.
enum Next {
    KeepAlive,
    Close,
}

/// Counts an HTTP/1.1 connection open for as long as it (or the SSE stream it became) lives.
struct Open(Arc<WorkerMetrics>, usize);

impl Open {
    fn new(metrics: Arc<WorkerMetrics>, version: usize) -> Self {
        metrics.connections_opened[version].inc();
        Open(metrics, version)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_closed[self.1].inc();
    }
}

pub async fn serve<S: Transport>(
    stream: S,
    fd: RawFd,
    secure: bool,
    peer: SocketAddr,
    http: Arc<HttpService>,
    hub: SharedHub,
    admission: Arc<Admission>,
) {
    let metrics = hub.borrow().metrics.clone();
    // Counted once its first request shows it is HTTP/1.1 (a preface makes it HTTP/2).
    let mut open: Option<Open> = None;
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let request = match read_request(&mut stream, &mut buf, &http, &hub, secure).await {
            Headed::Request(request) => request,
            Headed::H2Preface => {
                if http.h2 {
                    // Prior knowledge: the connection is HTTP/2 from here on.
                    monoio::spawn(serve_h2(stream, fd, buf, peer, http, hub, admission));
                }
                return;
            }
            Headed::Done => return,
        };
        open.get_or_insert_with(|| Open::new(metrics.clone(), 0));
        let Request {
            action,
            close,
            body,
            head_len,
        } = request;
        let next = match action {
            Action::Sse(plan, cors) => {
                drop(buf);
                let sse = SseStart {
                    fd,
                    peer,
                    hub,
                    admission,
                    open,
                };
                return start_sse(stream, sse, plan, cors).await;
            }
            other => answer(&mut stream, other, close).await,
        };
        if matches!(next, Next::Close) || !skip_body(&mut stream, &mut buf, body, head_len).await {
            return;
        }
    }
}

/// What reading a request head came to.
#[allow(clippy::large_enum_variant)] // short-lived, on the stack, never stored
enum Headed {
    Request(Request),
    /// The HTTP/2 connection preface (its bytes stay in the buffer).
    H2Preface,
    /// The peer closed, or an invalid head was answered: the connection ends.
    Done,
}

/// Reads until a whole head is buffered (or the peer closes, or the head is too large).
async fn read_request<S: Transport>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    http: &HttpService,
    hub: &SharedHub,
    secure: bool,
) -> Headed {
    let limits = Limits::default();
    loop {
        match examine(buf, &limits, http, hub, secure) {
            Examined::Incomplete => {}
            Examined::H2Preface => return Headed::H2Preface,
            Examined::Invalid(e) => {
                let _ = write_status(stream, e.status(), &[], true).await;
                return Headed::Done;
            }
            Examined::Complete(request) => return Headed::Request(request),
        }
        let spare = buf.capacity() - buf.len();
        if spare < 512 {
            buf.reserve(1024.min(limits.max_head + 1 - buf.len().min(limits.max_head)));
        }
        let read_into = std::mem::take(buf);
        let len = read_into.len();
        let (res, b) = stream.read(read_into.slice_mut(len..)).await;
        *buf = b.into_inner();
        match res {
            Ok(0) | Err(_) => return Headed::Done,
            Ok(_) => {}
        }
    }
}

/// Answers a request that does not become a stream (a status, a file, a challenge response).
async fn answer<S: Transport>(stream: &mut S, action: Action, close: bool) -> Next {
    let written = match action {
        Action::Status(code, cors) => {
            let close = close || code >= 400 && code != 404 && code != 405;
            let ok = write_status(stream, code, &cors, close).await.is_ok();
            return if ok && !close {
                Next::KeepAlive
            } else {
                Next::Close
            };
        }
        Action::File {
            file,
            head_only,
            not_modified,
            cors,
        } => write_file(stream, &file, head_only, not_modified, cors).await,
        // Over HTTP/1.1 the challenge response arrives on another connection than the streams
        // it would extend (the reference behaves the same): answered, no effect.
        Action::Challenge(_) => write_status(stream, 204, &[], close).await,
        Action::Sse(..) => {
            debug_assert!(false, "streams are started by start_sse");
            return Next::Close;
        }
    };
    if written.is_err() || close {
        Next::Close
    } else {
        Next::KeepAlive
    }
}

/// A static file's head and, for a 200 GET, its shared bytes (no copy).
async fn write_file<S: Transport>(
    stream: &mut S,
    file: &super::file_table::StaticFile,
    head_only: bool,
    not_modified: bool,
    cors: Vec<(&'static str, Vec<u8>)>,
) -> std::io::Result<()> {
    let (status, mut headers) = super::files::file_head(file, not_modified);
    headers.extend(cors);
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let mut head = Vec::with_capacity(256);
    write_response_head(&mut head, status, &headers);
    write_all(stream, head).await?;
    if status == 200 && !head_only && !file.body.is_empty() {
        stream.write_all(file.body.clone()).await.0?;
    }
    Ok(())
}

/// What a request that becomes a stream carries from the connection.
struct SseStart {
    fd: RawFd,
    peer: SocketAddr,
    hub: SharedHub,
    admission: Arc<Admission>,
    open: Option<Open>,
}

/// Admits the stream (or sheds it) and hands the connection to a task of its own, so this
/// request-phase future (head buffer, parser states) is freed while the stream lives.
async fn start_sse<S: Transport>(
    mut stream: S,
    c: SseStart,
    plan: super::sse::SsePlan,
    cors: Vec<(&'static str, Vec<u8>)>,
) {
    let limits = c.admission.limits();
    let ticket = match c.admission.admit(c.peer.ip()) {
        Ok(ticket) => ticket,
        Err(why) => {
            c.hub.borrow().metrics.streams_shed[why.index()].inc();
            let a = shed::answer(plan.accepts_sse, limits.shed_retry_ms);
            let _ = write_all(&mut stream, shed::http1_response(&a, &cors)).await;
            return;
        }
    };
    let held = (ticket, c.open);
    monoio::spawn(stream_sse(
        stream,
        c.fd,
        plan,
        cors,
        c.hub,
        held,
        limits.shed_retry_ms,
    ));
}

/// Drops the answered request (and a small body) from the buffer, keeping pipelined bytes;
/// false when the connection should close instead (chunked or large bodies are not consumed).
async fn skip_body<S: Transport>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    body: BodyFraming,
    head_len: usize,
) -> bool {
    let body_len = match body {
        BodyFraming::None => 0,
        BodyFraming::Length(n) if n <= 64 * 1024 => n as usize,
        _ => return false,
    };
    let consumed = head_len + body_len;
    if buf.len() >= consumed {
        buf.drain(..consumed);
        return true;
    }
    // Read the rest of the body, then drop it.
    let mut need = consumed - buf.len();
    buf.clear();
    while need > 0 {
        let (res, _) = stream.read(vec![0u8; need.min(16 * 1024)]).await;
        match res {
            Ok(0) | Err(_) => return false,
            Ok(n) => need -= n.min(need),
        }
    }
    true
}

/// A request head, examined without awaiting (so the parser's header array never lives in
/// the connection's future).
#[allow(clippy::large_enum_variant)] // short-lived, on the stack, never stored
enum Examined {
    Incomplete,
    H2Preface,
    Invalid(RequestError),
    Complete(Request),
}

struct Request {
    action: Action,
    close: bool,
    body: BodyFraming,
    head_len: usize,
}

fn examine(
    buf: &[u8],
    limits: &Limits,
    http: &HttpService,
    hub: &SharedHub,
    secure: bool,
) -> Examined {
    if buf.starts_with(H2_PREFACE) {
        return Examined::H2Preface;
    }
    if !buf.is_empty() && buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf) {
        return Examined::Incomplete;
    }
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let (req, head_len) = match parse_request(buf, &mut headers, limits) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Examined::Incomplete,
        Err(e) => return Examined::Invalid(e),
    };
    let body = match req.body_framing() {
        Ok(b) => b,
        Err(e) => return Examined::Invalid(e),
    };
    if req.minor_version == 1 && req.header("host").is_none() {
        // RFC 9112 section 3.2: an HTTP/1.1 request without Host is answered 400.
        return Examined::Invalid(RequestError::BadRequest);
    }
    Examined::Complete(Request {
        action: if secure {
            decide(http, &Secure(&req), hub, 0)
        } else {
            decide(http, &req, hub, 0)
        },
        close: req.wants_close(),
        body,
        head_len,
    })
}

async fn write_all<S: Transport>(stream: &mut S, bytes: Vec<u8>) -> std::io::Result<()> {
    let (res, _) = stream.write_all(bytes).await;
    res.map(|_| ())
}

async fn write_status<S: Transport>(
    stream: &mut S,
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
async fn stream_sse<S: Transport>(
    mut stream: S,
    fd: RawFd,
    plan: super::sse::SsePlan,
    cors: Vec<(&'static str, Vec<u8>)>,
    hub: SharedHub,
    held: (Ticket, Option<Open>),
    shed_retry_ms: u64,
) {
    let chunked = plan.open.chunked;
    let accepts_sse = plan.accepts_sse;
    let head = response_head(&plan, &cors);
    let (key, io) = match open_stream(&hub, plan.open).await {
        Ok(opened) => opened,
        Err(OpenError::ShuttingDown) => {
            // The drain began while the topic's metadata was awaited: shed like a new request.
            hub.borrow().metrics.streams_shed[Refused::Draining.index()].inc();
            let a = shed::answer(accepts_sse, shed_retry_ms);
            let _ = write_all(&mut stream, shed::http1_response(&a, &cors)).await;
            return;
        }
        Err(e) => {
            let code = match e {
                OpenError::NotFound => 404,
                OpenError::Unavailable | OpenError::ShuttingDown => 503,
            };
            let _ = write_status(&mut stream, code, &cors, true).await;
            return;
        }
    };
    let (reader, writer) = stream.into_split();
    monoio::spawn(watch_close(reader, io.clone()));
    // The writer is a task of its own too: the opening phase's state is freed.
    let writer = SseWriter {
        writer: Writer::new(writer, io, fd),
        hub,
        key,
        chunked,
        held,
    };
    monoio::spawn(run_writer(writer, Some(Take::Private(head, 0))));
}

/// What an SSE stream's writer holds between writes: all of it while its task runs, and all
/// of it again in a small box inside the stream when it parks.
struct SseWriter<S: Transport> {
    writer: Writer<S>,
    hub: SharedHub,
    key: StreamKey,
    chunked: bool,
    held: (Ticket, Option<Open>),
}

/// How a writer task ended.
enum Outcome {
    /// The stream ended: release it.
    Ended,
    /// Idle: the state parks in the stream and the next wake starts a new task.
    Park,
}

/// The writer task of an open SSE stream: writes `first`, then whatever the fan-out appends,
/// until the stream ends or the writer parks.
async fn run_writer<S: Transport>(mut w: SseWriter<S>, first: Option<Take>) {
    match write_stream(&mut w, first).await {
        Outcome::Park => park(w),
        Outcome::Ended => {
            let SseWriter {
                writer,
                hub,
                key,
                held,
                ..
            } = w;
            hub.borrow_mut().close_stream(key);
            flush(&hub);
            drop(held);
            // Dropping it wakes the close watcher, so both halves drop and the socket closes.
            drop(writer);
        }
    }
}

/// Leaves the writer's state in its stream; the stream's next wake (bytes, its end) spawns
/// the writer again. The stream holds the box and the box the stream until then: the end of
/// a stream always wakes it (`StreamIo::finish`), which ends the cycle.
fn park<S: Transport>(w: SseWriter<S>) {
    let io = w.writer.io.clone();
    io.borrow_mut().park(Box::new(move || {
        monoio::spawn(run_writer(w, None));
    }));
}

/// The write half of an SSE connection, holding its socket open. The stream's `abort_fd` (the
/// stall cut's way to abort a write) is set only while this lives: the descriptor number is
/// then this connection's, never one the kernel reused for another after a close. On drop
/// (normal end, the client gone first, or the task dropped), the socket is shut down through
/// this half before it lets go, to wake the read half.
struct Writer<S: Transport> {
    half: OwnedWriteHalf<S>,
    io: SharedIo,
    fd: RawFd,
}

impl<S: Transport> Writer<S> {
    fn new(half: OwnedWriteHalf<S>, io: SharedIo, fd: RawFd) -> Self {
        {
            let mut s = io.borrow_mut();
            s.abort_fd = Some(fd);
            s.parkable = true;
        }
        Writer { half, io, fd }
    }
}

impl<S: Transport> Drop for Writer<S> {
    fn drop(&mut self) {
        if let Ok(mut io) = self.io.try_borrow_mut() {
            io.abort_fd = None;
        }
        super::socket::shutdown_both(&self.half, self.fd);
    }
}

/// `200` with the SSE content type, chunked or close-delimited, and the CORS headers.
fn response_head(plan: &super::sse::SsePlan, cors: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let content_type: &[u8] = if plan.timestamp_ext {
        b"text/event-stream;ext=timestamp"
    } else {
        b"text/event-stream"
    };
    let mut head = Vec::with_capacity(256);
    let mut headers: Vec<(&str, &[u8])> = vec![("Content-Type", content_type)];
    if plan.open.chunked {
        headers.push(("Transfer-Encoding", b"chunked"));
    } else {
        headers.push(("Connection", b"close"));
    }
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
    write_response_head(&mut head, 200, &headers);
    head
}

/// Most live bytes one write takes (whole events; at least one).
const WRITE_MAX: usize = 256 * 1024;

/// What the writer does after a wake-up.
enum Wanted {
    Write(Take),
    Park,
    End,
}

/// The writer loop: `next` first (the head, when the stream opens), then at each wake-up
/// everything pending in one write (private bytes, or the live log's bytes as one `writev`
/// straight from its blocks), then the last chunk on a graceful end. Returns when the stream
/// ended or the fan-out asked the idle writer to park.
async fn write_stream<S: Transport>(w: &mut SseWriter<S>, mut next: Option<Take>) -> Outcome {
    let SseWriter {
        writer,
        hub,
        key,
        chunked,
        ..
    } = w;
    let io = &writer.io;
    let metrics = hub.borrow().metrics.clone();
    let mut finished = false;
    loop {
        if let Some(take) = next.take() {
            let res = write_take(&mut writer.half, take, &metrics).await;
            io.borrow_mut().written();
            if res.is_err() {
                io.borrow_mut().finish(EndReason::Client);
                return Outcome::Ended;
            }
            if finished {
                return Outcome::Ended;
            }
            hub.borrow_mut().on_drained(*key);
            flush(hub);
        }
        let now = hub.borrow().now;
        let wanted = poll_fn(|cx| {
            let mut s = io.borrow_mut();
            if matches!(
                s.end,
                Some(
                    EndReason::Client | EndReason::Budget | EndReason::Upstream | EndReason::Expiry
                )
            ) {
                return Poll::Ready(Wanted::End);
            }
            if let Some(taken) = s.take(cx.waker(), now, WRITE_MAX) {
                return Poll::Ready(Wanted::Write(taken));
            }
            if s.end.is_some() {
                Poll::Ready(Wanted::End)
            } else if s.take_park() {
                Poll::Ready(Wanted::Park)
            } else {
                Poll::Pending
            }
        })
        .await;
        next = match wanted {
            Wanted::Write(taken) => Some(taken),
            Wanted::Park => return Outcome::Park,
            Wanted::End if *chunked && io.borrow().end == Some(EndReason::Shutdown) => {
                finished = true;
                let mut last = take_buffer();
                last.extend_from_slice(LAST_CHUNK);
                Some(Take::Private(last, 0))
            }
            Wanted::End => return Outcome::Ended,
        };
    }
}

/// Writes what the stream gave the writer (private bytes, or live bytes as one `writev`) and
/// gives the buffers back to their pools.
async fn write_take<S: Transport>(
    half: &mut OwnedWriteHalf<S>,
    take: Take,
    metrics: &WorkerMetrics,
) -> std::io::Result<()> {
    match take {
        Take::Private(buf, start) => {
            metrics.bytes_sent.add((buf.len() - start) as u64);
            let (res, back) = half.write_all(buf.slice(start..)).await;
            give_buffer(back.into_inner());
            res.map(|_| ())
        }
        Take::Live(gather) => {
            metrics.bytes_sent.add(gather.total_len() as u64);
            let (res, gather) = write_gather(half, gather).await;
            give_gather(gather);
            res
        }
    }
}

/// Writes a gather of live bytes completely (`writev` until every iovec is written).
async fn write_gather<S: Transport>(
    writer: &mut OwnedWriteHalf<S>,
    mut gather: Gather,
) -> (std::io::Result<()>, Gather) {
    loop {
        let (res, back) = writer.writev(gather).await;
        gather = back;
        match res {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), gather),
            Ok(n) => {
                if gather.advance(n) {
                    return (Ok(()), gather);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), gather),
        }
    }
}

/// Reads (and discards) until the client closes; then ends the stream.
async fn watch_close<S: Transport>(mut reader: OwnedReadHalf<S>, io: SharedIo) {
    // Nothing is expected from an HTTP/1.1 SSE client: a small buffer only notices the close.
    let mut buf = vec![0u8; 16];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What an open SSE stream costs while it idles, bounded (`cargo test --bin sse-kafka
    /// idle_task_sizes -- --nocapture` prints the sizes).
    #[test]
    fn idle_task_sizes() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = monoio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let (reader, writer) = client.into_split();
            let io = crate::fanout::stream_io::StreamIo::new(true, 1 << 20, 0);
            let watch = watch_close(reader, io.clone());
            let hub = crate::fanout::hub::Hub::new(
                0,
                crate::fanout::message::Mesh::new(1),
                Vec::new(),
                Default::default(),
                crate::metrics::Registry::new(1),
                Default::default(),
            );
            let admission = Admission::new(super::super::admission::Limits {
                max_streams: 0,
                max_streams_per_ip: 0,
                shed_retry_ms: 0,
            });
            let ticket = admission
                .admit("127.0.0.1".parse().expect("ip"))
                .expect("ticket");
            let key = StreamKey {
                slot: 0,
                generation: 0,
            };
            let sse = SseWriter {
                writer: Writer::new(writer, io.clone(), 0),
                hub,
                key,
                chunked: true,
                held: (ticket, None),
            };
            let parked = std::mem::size_of::<SseWriter<monoio::net::TcpStream>>();
            let w = run_writer(sse, None);
            let io_size = std::mem::size_of::<crate::fanout::stream_io::StreamIo>();
            println!(
                "watch_close future {} B, writer future {} B, parked writer {} B, StreamIo {} B",
                std::mem::size_of_val(&watch),
                std::mem::size_of_val(&w),
                parked,
                io_size
            );
            // What an idle stream keeps: the close watcher and the parked writer's state (the
            // writer future itself ends when it parks). Bounds with some room; a growth past
            // them is a regression of idle memory.
            assert!(std::mem::size_of_val(&watch) <= 256, "close watcher grew");
            assert!(parked <= 128, "parked writer state grew");
            assert!(io_size <= 192, "StreamIo grew");
            std::mem::forget(w);
            std::mem::forget(watch);
        });
    }
}
