//! One HTTP/2 connection: the sans-io `proto::h2::H2Conn` driven by two tasks. The reader feeds
//! it socket bytes and acts on its events (requests, resets, window updates); the writer, at
//! each wake-up, gathers control frames and, for every stream with pending event bytes, DATA
//! frames as large as the flow-control windows allow, and writes them all with one `writev`
//! (`h2_batch`): frame headers are the only bytes it copies; payloads point into the group's
//! shared live log, a stream's private buffer or a file's body. Events that piled up for a
//! stream are thereby coalesced into large frames, never a flood of small ones.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf};
use proto::h2::{ErrorCode, Event, H2Conn};

use super::admission::{Admission, Refused, Ticket};
use super::exchange::{decide, Action, Cors};
use super::h2_batch::{Batch, Borrowed};
use super::Transport;
use crate::config::plan::HttpService;
use crate::fanout::hub::{flush, OpenError, SharedHub};
use crate::fanout::message::StreamKey;
use crate::fanout::stream_io::{EndReason, Part, SharedIo};
use crate::fanout::view::open_stream;

/// Index of HTTP/2 in `metrics::HTTP_VERSIONS`.
const VERSION: usize = 1;

/// A response body being sent on one stream: an SSE stream fed by the fan-out, or a file.
enum Body {
    Sse {
        io: SharedIo,
        /// The fan-out stream behind the response.
        key: StreamKey,
        _ticket: Ticket,
    },
    /// A fixed body (a static file, a shed answer): sent, then END_STREAM.
    Fixed { rest: Bytes },
}

impl Body {
    fn key(&self) -> Option<StreamKey> {
        match self {
            Body::Sse { key, .. } => Some(*key),
            Body::Fixed { .. } => None,
        }
    }

    /// The fan-out side learns that the client went away.
    fn client_gone(&self) {
        if let Body::Sse { io, .. } = self {
            io.borrow_mut().finish(EndReason::Client);
        }
    }
}

struct State {
    h2: H2Conn,
    bodies: BTreeMap<u32, Body>,
    /// Streams whose SSE open is in flight (a reset meanwhile removes the id).
    opening: Vec<u32>,
    /// Response heads and other frames produced outside the writer, in order.
    out: Vec<u8>,
    writer: Option<Waker>,
    /// The reader is done (peer closed, or a connection error): write what is left, then stop.
    closing: bool,
    goaway_sent: bool,
}

type Shared = Rc<RefCell<State>>;

impl State {
    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// Serves an HTTP/2 connection whose first bytes (the preface, maybe more) are in `read`.
pub async fn serve_h2<S: Transport>(
    stream: S,
    fd: RawFd,
    read: Vec<u8>,
    peer: SocketAddr,
    http: Arc<HttpService>,
    hub: SharedHub,
    admission: Arc<Admission>,
) {
    use monoio::io::Splitable;
    let state: Shared = Rc::new(RefCell::new(State {
        h2: H2Conn::new(hub.borrow().settings.h2),
        bodies: BTreeMap::new(),
        opening: Vec::new(),
        out: Vec::new(),
        writer: None,
        closing: false,
        goaway_sent: false,
    }));
    let (reader, writer) = stream.into_split();
    monoio::spawn(write_loop(writer, state.clone(), hub.clone(), fd));
    read_loop(
        reader,
        read,
        state.clone(),
        peer,
        http,
        hub.clone(),
        admission,
    )
    .await;
    let keys: Vec<StreamKey> = {
        let mut st = state.borrow_mut();
        st.closing = true;
        st.wake_writer();
        let keys = st.bodies.values().filter_map(Body::key).collect();
        for b in st.bodies.values() {
            b.client_gone();
        }
        keys
    };
    let mut h = hub.borrow_mut();
    for key in keys {
        h.close_stream(key);
    }
    drop(h);
    flush(&hub);
}

async fn read_loop<S: Transport>(
    mut reader: OwnedReadHalf<S>,
    mut buf: Vec<u8>,
    state: Shared,
    peer: SocketAddr,
    http: Arc<HttpService>,
    hub: SharedHub,
    admission: Arc<Admission>,
) {
    let want = state.borrow().h2.recv_buffer_len();
    buf.reserve(want.saturating_sub(buf.len()));
    loop {
        if !buf.is_empty() {
            let now = hub.borrow().now;
            let result = {
                let mut st = state.borrow_mut();
                let r = st.h2.recv(&buf, now);
                st.wake_writer();
                r
            };
            match result {
                Ok(consumed) => {
                    buf.drain(..consumed);
                }
                Err(e) => {
                    crate::debug!("HTTP/2 connection error from {peer}: {e}");
                    return; // the GOAWAY is queued; the writer sends it
                }
            }
            handle_events(&state, &http, &hub, &admission, peer);
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(want);
        }
        let len = buf.len();
        let (res, b) = reader.read(buf.slice_mut(len..)).await;
        buf = b.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn handle_events(
    state: &Shared,
    http: &Arc<HttpService>,
    hub: &SharedHub,
    admission: &Arc<Admission>,
    peer: SocketAddr,
) {
    loop {
        let event = state.borrow_mut().h2.poll_event();
        let Some(event) = event else { break };
        match event {
            Event::Request(req) => on_request(state, http, hub, admission, peer, &req),
            Event::Reset { stream_id, .. } => {
                let body = {
                    let mut st = state.borrow_mut();
                    st.opening.retain(|&i| i != stream_id);
                    st.bodies.remove(&stream_id)
                };
                if let Some(body) = body {
                    body.client_gone();
                    if let Some(key) = body.key() {
                        hub.borrow_mut().close_stream(key);
                        flush(hub);
                    }
                }
            }
            Event::WindowOpened { .. } | Event::Data { .. } | Event::GoAway { .. } => {}
        }
    }
    state.borrow_mut().wake_writer();
}

/// A request on a new stream: answered at once (status, file, challenge, shed) or opened as an
/// SSE stream once the topic's metadata is known.
fn on_request(
    state: &Shared,
    http: &Arc<HttpService>,
    hub: &SharedHub,
    admission: &Arc<Admission>,
    peer: SocketAddr,
    req: &proto::h2::Request,
) {
    let id = req.stream_id;
    match decide(http, req, hub, VERSION) {
        Action::Status(code, cors) => respond_status(state, id, code, &cors),
        Action::File {
            file,
            head_only,
            not_modified,
            cors,
        } => {
            let (status, mut headers) = super::files::file_head(&file, not_modified);
            headers.extend(cors);
            let body = if status == 200 && !head_only {
                file.body.clone()
            } else {
                Bytes::new()
            };
            respond_fixed(state, id, status, &headers, body)
        }
        Action::Challenge(session) => {
            if let Some(new) = session {
                let keys: Vec<StreamKey> = state
                    .borrow()
                    .bodies
                    .values()
                    .filter_map(Body::key)
                    .collect();
                let mut h = hub.borrow_mut();
                let extended = keys.into_iter().filter(|&k| h.reauthorize(k, &new)).count();
                crate::debug!("challenge response extended {extended} streams");
            }
            respond_status(state, id, 204, &Vec::new());
        }
        Action::Sse(plan, cors) => match admission.admit(peer.ip()) {
            Err(why) => {
                // Over a stream cap or draining: refused before any per-stream
                // state exists (REFUSED_STREAM is only for streams beyond
                // MAX_CONCURRENT_STREAMS).
                hub.borrow().metrics.streams_shed[why.index()].inc();
                let retry_ms = admission.limits().shed_retry_ms;
                respond_shed(state, id, plan.accepts_sse, retry_ms, &cors);
            }
            Ok(ticket) => {
                state.borrow_mut().opening.push(id);
                let retry_ms = admission.limits().shed_retry_ms;
                monoio::spawn(open_sse(
                    state.clone(),
                    hub.clone(),
                    id,
                    plan,
                    (cors, retry_ms),
                    ticket,
                ));
            }
        },
    }
}

fn respond_status(state: &Shared, id: u32, code: u16, cors: &Cors) {
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(cors.len() + 1);
    if code != 204 {
        headers.push(("content-length", b"0"));
    }
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
    let mut st = state.borrow_mut();
    let State { h2, out, .. } = &mut *st;
    h2.send_headers(id, code, &headers, true, out);
    st.wake_writer();
}

/// A response with a fixed body (shared, never copied), sent as flow control allows.
fn respond_fixed(state: &Shared, id: u32, status: u16, headers: &Cors, body: Bytes) {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let empty = body.is_empty();
    let mut st = state.borrow_mut();
    {
        let State { h2, out, .. } = &mut *st;
        h2.send_headers(id, status, &headers, empty, out);
    }
    if !empty {
        st.bodies.insert(id, Body::Fixed { rest: body });
    }
    st.wake_writer();
}

/// A shed stream: `200` with a `retry:` line and END_STREAM for an EventSource, else `503` with
/// `retry-after`.
fn respond_shed(state: &Shared, id: u32, accepts_sse: bool, base_ms: u64, cors: &Cors) {
    let a = super::shed::answer(accepts_sse, base_ms);
    if a.status == 200 {
        let mut headers: Cors = vec![("content-type", b"text/event-stream".to_vec())];
        headers.extend(cors.iter().cloned());
        respond_fixed(state, id, 200, &headers, Bytes::from(a.body));
        return;
    }
    let mut headers: Vec<(&str, &[u8])> = vec![("content-length", b"0")];
    if let Some(ra) = &a.retry_after {
        headers.push(("retry-after", ra));
    }
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
    let mut st = state.borrow_mut();
    let State { h2, out, .. } = &mut *st;
    h2.send_headers(id, a.status, &headers, true, out);
    st.wake_writer();
}

/// Waits for the topic's metadata, then answers the stream's head and registers its body.
async fn open_sse(
    state: Shared,
    hub: SharedHub,
    id: u32,
    plan: super::sse::SsePlan,
    (cors, shed_retry_ms): (Cors, u64),
    ticket: Ticket,
) {
    let accepts_sse = plan.accepts_sse;
    let content_type: &[u8] = if plan.timestamp_ext {
        b"text/event-stream;ext=timestamp"
    } else {
        b"text/event-stream"
    };
    let opened = open_stream(&hub, plan.open).await;
    let mut st = state.borrow_mut();
    let still_wanted = st.opening.contains(&id) && !st.closing;
    st.opening.retain(|&i| i != id);
    match opened {
        Ok((key, io)) if still_wanted => {
            let mut headers: Vec<(&str, &[u8])> = vec![("content-type", content_type)];
            headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
            {
                let State { h2, out, .. } = &mut *st;
                h2.send_headers(id, 200, &headers, false, out);
            }
            st.bodies.insert(
                id,
                Body::Sse {
                    io,
                    key,
                    _ticket: ticket,
                },
            );
            st.wake_writer();
        }
        Ok((key, _)) => {
            drop(st);
            hub.borrow_mut().close_stream(key);
            flush(&hub);
        }
        Err(OpenError::ShuttingDown) if still_wanted => {
            // The drain began while the topic's metadata was awaited: shed like a new request.
            drop(st);
            hub.borrow().metrics.streams_shed[Refused::Draining.index()].inc();
            respond_shed(&state, id, accepts_sse, shed_retry_ms, &cors);
        }
        Err(e) if still_wanted => {
            let code = match e {
                OpenError::NotFound => 404,
                OpenError::Unavailable | OpenError::ShuttingDown => 503,
            };
            drop(st);
            respond_status(&state, id, code, &cors);
        }
        Err(_) => {}
    }
}

/// What ended a stream on this wake-up, to tell the fan-out after the connection is released.
struct Ended {
    key: Option<StreamKey>,
}

async fn write_loop<S: Transport>(
    mut writer: OwnedWriteHalf<S>,
    state: Shared,
    hub: SharedHub,
    fd: RawFd,
) {
    let metrics = hub.borrow().metrics.clone();
    metrics.connections_opened[VERSION].inc();
    let mut ended: Vec<Ended> = Vec::new();
    let mut drained: Vec<StreamKey> = Vec::new();
    let mut batch = Batch::default();
    loop {
        let more = poll_fn(|cx| {
            let (shutting_down, now) = {
                let h = hub.borrow();
                (h.shutting_down, h.now)
            };
            let mut st = state.borrow_mut();
            let mut turn = Turn {
                batch: &mut batch,
                waker: cx.waker(),
                ended: &mut ended,
                drained: &mut drained,
                now,
            };
            gather(&mut st, &mut turn, shutting_down);
            if !batch.is_empty() {
                return Poll::Ready(true);
            }
            if st.closing || (st.goaway_sent && st.bodies.is_empty() && st.opening.is_empty()) {
                return Poll::Ready(false);
            }
            st.writer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let mut failed = false;
        if more {
            metrics.bytes_sent.add(batch.len() as u64);
            batch.seal();
            let (res, back) = write_batch(&mut writer, batch).await;
            batch = back;
            batch.clear();
            failed = res.is_err();
        }
        // Streams ended in this batch are released once their last frames are written (the
        // shutdown drain waits for the stream count to reach zero).
        for e in ended.drain(..) {
            if let Some(key) = e.key {
                hub.borrow_mut().close_stream(key);
            }
        }
        for key in drained.drain(..) {
            hub.borrow_mut().on_drained(key);
        }
        flush(&hub);
        if failed || !more {
            break;
        }
    }
    metrics.connections_closed[VERSION].inc();
    // Ends both directions (waking the reader) through the write half, which keeps the
    // descriptor open until this function returns.
    super::socket::shutdown_both(&writer, fd);
}

/// Writes a sealed batch whole (`writev` until every byte is on the socket).
async fn write_batch<S: Transport>(
    writer: &mut OwnedWriteHalf<S>,
    mut batch: Batch,
) -> (std::io::Result<()>, Batch) {
    loop {
        let (res, back) = writer.writev(batch).await;
        batch = back;
        match res {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), batch),
            Ok(n) => {
                if batch.advance(n) {
                    return (Ok(()), batch);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), batch),
        }
    }
}

/// One writer wake-up: the batch being filled and what the wake-up ended or drained.
struct Turn<'a> {
    batch: &'a mut Batch,
    waker: &'a Waker,
    ended: &'a mut Vec<Ended>,
    drained: &'a mut Vec<StreamKey>,
    now: u64,
}

/// Fills the batch with control frames, then DATA frames per stream with pending bytes and
/// window; ends streams whose fan-out side ended. Registers the waker on idle streams.
fn gather(st: &mut State, turn: &mut Turn<'_>, shutting_down: bool) {
    let own = turn.batch.own();
    own.append(&mut st.out);
    st.h2.write_output(own);
    let State {
        h2,
        bodies,
        goaway_sent,
        ..
    } = st;
    let mut finished: Vec<u32> = Vec::new();
    for (&id, body) in bodies.iter_mut() {
        let done = match body {
            Body::Sse { io, key, .. } => sse_frames(h2, id, io, *key, turn),
            Body::Fixed { rest } => fixed_frames(h2, id, rest, turn.batch),
        };
        if done {
            finished.push(id);
        }
    }
    for id in finished {
        if let Some(body) = bodies.remove(&id) {
            turn.ended.push(Ended { key: body.key() });
        }
    }
    if shutting_down && !*goaway_sent {
        let last = h2.last_stream_id();
        h2.goaway(last, ErrorCode::NO_ERROR, turn.batch.own());
        *goaway_sent = true;
    }
}

/// DATA frames of an SSE stream as the windows allow, or its end; returns whether it ended.
fn sse_frames(
    h2: &mut H2Conn,
    id: u32,
    io: &SharedIo,
    key: StreamKey,
    turn: &mut Turn<'_>,
) -> bool {
    let mut io = io.borrow_mut();
    let reset = match io.end {
        Some(EndReason::Client) => return true,
        Some(EndReason::Budget) => Some(ErrorCode::CANCEL),
        Some(EndReason::Upstream) => Some(ErrorCode::INTERNAL_ERROR),
        // The token expired unanswered: RST_STREAM(NO_ERROR), as the reference does.
        Some(EndReason::Expiry) => Some(ErrorCode::NO_ERROR),
        Some(EndReason::Shutdown) | None => None,
    };
    if let Some(code) = reset {
        h2.reset_stream(id, code, turn.batch.own());
        return true;
    }
    let had = io.pending();
    // Woken on new bytes and on the stream's end, also while its window is closed.
    io.register(turn.waker);
    let batch = &mut *turn.batch;
    let mut sink = |part: Part<'_>| match part {
        Part::Log(s) => batch.push(Borrowed::Log(s)),
        Part::Buffer(b) => batch.push(Borrowed::Buffer(b)),
        Part::Copy(b) => batch.own().extend_from_slice(b),
    };
    loop {
        let n = h2.frame_capacity(id).min(io.pending());
        if n == 0 {
            break;
        }
        let head = h2.data_frame_header(id, n, false);
        sink(Part::Copy(&head[..]));
        let taken = io.take_frame(n, &mut sink, turn.waker, turn.now);
        debug_assert_eq!(taken, n, "a frame's payload is what its header says");
    }
    if io.pending() > 0 {
        return false;
    }
    // Nothing left: register for the next bytes, and end the stream if it is done.
    io.take_frame(0, &mut sink, turn.waker, turn.now);
    if io.end == Some(EndReason::Shutdown) {
        let head = h2.data_frame_header(id, 0, true);
        sink(Part::Copy(&head[..]));
        return true;
    }
    if had > 0 {
        turn.drained.push(key);
    }
    false
}

/// DATA frames of a fixed body as the windows allow, END_STREAM on the last; returns whether
/// the body is all sent.
fn fixed_frames(h2: &mut H2Conn, id: u32, rest: &mut Bytes, batch: &mut Batch) -> bool {
    loop {
        let n = h2.frame_capacity(id).min(rest.len());
        if n == 0 {
            return false;
        }
        let last = n == rest.len();
        let head = h2.data_frame_header(id, n, last);
        batch.own().extend_from_slice(&head);
        batch.push(Borrowed::Shared(rest.split_to(n)));
        if last {
            return true;
        }
    }
}
