//! The server connection and its streams (RFC 9113 §3.4, §5, §6, §8).

use std::collections::{HashMap, VecDeque};

use super::flow::Window;
use super::frame::{
    self, flag, kind, setting, FrameError, FrameHeader, Scope, DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_WINDOW_SIZE, HEADER_LEN, MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE,
};
use super::hpack;
use super::request::{Collector, Outcome, Request};
use super::settings::{Bucket, Limits, Settings};
use super::{ErrorCode, PREFACE};

/// What the server has to act on, in order of arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request: answer it with [`H2Conn::send_headers`] or [`H2Conn::reset_stream`].
    Request(Request),
    /// Request body octets, counted and discarded (their flow-control credit is returned
    /// here), or the end of the body (`len` 0 with `end_stream`, e.g. after trailers).
    Data {
        stream_id: u32,
        len: usize,
        end_stream: bool,
    },
    /// The stream ended without the server ending it: RST_STREAM from the client (`remote`),
    /// or a stream error found here (`code` is what we sent). Drop the stream.
    Reset {
        stream_id: u32,
        code: ErrorCode,
        remote: bool,
    },
    /// Send capacity may have grown: of `stream_id`, or of every stream when 0 (connection
    /// window, or a larger SETTINGS_INITIAL_WINDOW_SIZE).
    WindowOpened { stream_id: u32 },
    /// The client sent GOAWAY: it opens no more streams; the open ones go on.
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
    },
}

/// A connection error: GOAWAY with `code` is queued; write the output, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnError {
    pub code: ErrorCode,
    pub reason: &'static str,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ConnError {}

fn conn_error(code: ErrorCode, reason: &'static str) -> ConnError {
    ConnError { code, reason }
}

fn calm(reason: &'static str) -> ConnError {
    conn_error(ErrorCode::ENHANCE_YOUR_CALM, reason)
}

impl From<FrameError> for ConnError {
    fn from(e: FrameError) -> ConnError {
        conn_error(e.code, e.reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client connection preface.
    Preface,
    /// Preface received; the next frame must be SETTINGS.
    FirstSettings,
    Open,
    Failed(ConnError),
}

/// How a recently closed stream ended, for frames that arrive after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// We sent RST_STREAM: frames in flight are ignored.
    ResetByUs,
    /// Both sides ended it, or the client reset it: more frames are errors (STREAM_CLOSED).
    Done,
}

/// Closed streams remembered to answer late frames precisely.
const CLOSED_MEMORY: usize = 64;
/// HPACK table size before our SETTINGS are acknowledged.
const DEFAULT_HEADER_TABLE_SIZE: usize = 4096;

/// A stream the server has not closed: open or half-closed (remote).
#[derive(Debug)]
struct Stream {
    send: Window,
    recv: Window,
    /// The client sent END_STREAM (half-closed (remote)).
    remote_closed: bool,
    headers_sent: bool,
    /// Body octets still announced by content-length.
    remaining: Option<u64>,
}

/// A header block being received across HEADERS and CONTINUATION frames.
#[derive(Debug, Clone, Copy)]
struct PendingBlock {
    stream_id: u32,
    end_stream: bool,
    self_dependent: bool,
    continuations: u32,
}

/// One HTTP/2 server connection, sans-io.
///
/// The caller reads socket bytes into a buffer able to hold [`H2Conn::recv_buffer_len`]
/// octets, passes them to [`H2Conn::recv`] and keeps what was not consumed, takes the events
/// with [`H2Conn::poll_event`], and writes [`H2Conn::write_output`]'s frames. Response
/// HEADERS, DATA, RST_STREAM and GOAWAY are written by the `send_*`, `reset_stream` and
/// `goaway` methods, each first appending the pending control output so the wire order
/// stays right. Stop reading while the socket's write side is backed up: control frames
/// queued but not taken past [`Limits::max_queued_output`] end the connection.
#[derive(Debug)]
pub struct H2Conn {
    settings: Settings,
    limits: Limits,
    state: State,
    /// The client acknowledged our SETTINGS.
    acked: bool,
    peer_initial_window: u32,
    peer_max_frame_size: u32,
    streams: HashMap<u32, Stream>,
    /// Highest stream id the client used in a HEADERS frame.
    highest_id: u32,
    /// Highest stream id processed (answered or passed to the server), for GOAWAY.
    last_processed: u32,
    closed: VecDeque<(u32, Closed)>,
    send_window: Window,
    recv_window: Window,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    /// Header block accumulation, at most `block_cap` octets, reused.
    pub(super) block: Vec<u8>,
    block_cap: usize,
    pending: Option<PendingBlock>,
    events: VecDeque<Event>,
    out: Vec<u8>,
    head_block: Vec<u8>,
    goaway_sent: Option<u32>,
    now: u64,
    resets: Bucket,
    control: Bucket,
}

/// Tops `window` up to `target` with a WINDOW_UPDATE once half of it is used.
fn replenish(out: &mut Vec<u8>, stream_id: u32, window: &mut Window, target: u32) {
    let deficit = i64::from(target) - window.size();
    if deficit >= (i64::from(target) / 2).max(1) {
        let increment = u32::try_from(deficit.min(i64::from(MAX_WINDOW_SIZE))).unwrap_or(0);
        if window.increase(increment).is_ok() {
            frame::WindowUpdate {
                stream_id,
                increment,
            }
            .encode(out);
        }
    }
}

impl H2Conn {
    /// A connection with our `settings` and default [`Limits`]; our SETTINGS frame (the
    /// server preface) is queued at once.
    pub fn new(settings: Settings) -> H2Conn {
        H2Conn::with_limits(settings, Limits::default())
    }

    pub fn with_limits(settings: Settings, limits: Limits) -> H2Conn {
        let settings = settings.clamped();
        let table = settings.header_table_size as usize;
        let mut out = Vec::with_capacity(256);
        settings.encode(&mut out);
        H2Conn {
            settings,
            limits,
            state: State::Preface,
            acked: false,
            peer_initial_window: DEFAULT_WINDOW_SIZE,
            peer_max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            streams: HashMap::new(),
            highest_id: 0,
            last_processed: 0,
            closed: VecDeque::with_capacity(CLOSED_MEMORY),
            send_window: Window::new(DEFAULT_WINDOW_SIZE),
            recv_window: Window::new(DEFAULT_WINDOW_SIZE),
            decoder: hpack::Decoder::with_capacity(
                table.max(DEFAULT_HEADER_TABLE_SIZE),
                DEFAULT_HEADER_TABLE_SIZE,
            ),
            encoder: hpack::Encoder::new(),
            block: Vec::new(),
            block_cap: 2 * settings.max_header_list_size as usize,
            pending: None,
            events: VecDeque::new(),
            out,
            head_block: Vec::new(),
            goaway_sent: None,
            now: 0,
            resets: Bucket::new(limits.reset_burst),
            control: Bucket::new(limits.control_burst),
        }
    }

    /// Octets the caller's read buffer must be able to hold: one frame of our
    /// SETTINGS_MAX_FRAME_SIZE with its header.
    pub fn recv_buffer_len(&self) -> usize {
        HEADER_LEN + self.settings.max_frame_size as usize
    }

    /// Processes the complete frames at the start of `input` (the client preface first),
    /// returning the octets consumed; a partial frame is left for the next call. `now` is a
    /// coarse clock in seconds for the rate limits of [`Limits`].
    ///
    /// On error the connection is dead: GOAWAY is queued, every later call returns the same
    /// error, and the caller writes the output and closes.
    pub fn recv(&mut self, input: &[u8], now: u64) -> Result<usize, ConnError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        self.now = now;
        let mut pos = 0;
        if self.state == State::Preface {
            let n = input.len().min(PREFACE.len());
            if input[..n] != PREFACE[..n] {
                return Err(self.fail(conn_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "invalid connection preface",
                )));
            }
            if n < PREFACE.len() {
                return Ok(0);
            }
            pos = n;
            self.state = State::FirstSettings;
        }
        while let Some(head) = FrameHeader::parse(&input[pos..]) {
            if head.length > self.settings.max_frame_size {
                return Err(self.fail(conn_error(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                )));
            }
            let end = pos + HEADER_LEN + head.length as usize;
            let Some(payload) = input.get(pos + HEADER_LEN..end) else {
                break;
            };
            pos = end;
            if let Err(e) = self.on_frame(head, payload) {
                return Err(self.fail(e));
            }
            if self.out.len() > self.limits.max_queued_output {
                return Err(self.fail(calm("control output not drained")));
            }
        }
        Ok(pos)
    }

    /// Next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True when control frames wait for [`H2Conn::write_output`].
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Appends the queued control frames (SETTINGS and its ACKs, PING ACK, WINDOW_UPDATE,
    /// RST_STREAM, GOAWAY, 431 answers) to `out`.
    pub fn write_output(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.out);
        self.out.clear();
    }

    /// The connection error that ended the connection, if any.
    pub fn error(&self) -> Option<ConnError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Highest stream id processed so far: the `last_stream_id` of a graceful GOAWAY.
    pub fn last_stream_id(&self) -> u32 {
        self.last_processed
    }

    /// True while the server may send on `stream_id` (it has not ended or reset it).
    pub fn is_open(&self, stream_id: u32) -> bool {
        self.streams.contains_key(&stream_id)
    }

    /// Streams the server has not closed; at most SETTINGS_MAX_CONCURRENT_STREAMS.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// True once the client acknowledged our SETTINGS (a caller may end a connection whose
    /// client never does with GOAWAY(SETTINGS_TIMEOUT)).
    pub fn settings_acked(&self) -> bool {
        self.acked
    }

    /// True once [`H2Conn::goaway`] was called.
    pub fn goaway_sent(&self) -> bool {
        self.goaway_sent.is_some()
    }

    /// Octets of DATA the server may send on `stream_id` now: the smaller of the stream and
    /// connection windows; 0 for a stream that is not open or has no response head yet.
    pub fn send_capacity(&self, stream_id: u32) -> usize {
        if self.error().is_some() {
            return 0;
        }
        match self.streams.get(&stream_id) {
            Some(s) if s.headers_sent => s.send.available().min(self.send_window.available()),
            _ => 0,
        }
    }

    /// Largest DATA payload the client accepts in one frame (its SETTINGS_MAX_FRAME_SIZE).
    pub fn max_frame_len(&self) -> usize {
        self.peer_max_frame_size as usize
    }

    /// [`H2Conn::send_capacity`] limited to one frame.
    pub fn frame_capacity(&self, stream_id: u32) -> usize {
        self.send_capacity(stream_id).min(self.max_frame_len())
    }

    /// Sends the response head of `stream_id`: `:status` then `headers` (names are
    /// lowercased; connection-specific ones such as `transfer-encoding` are left out, as are
    /// values with CR, LF or NUL), in HEADERS and CONTINUATION frames appended to `out`
    /// after the pending control output. With `end_stream` the response ends here; a request
    /// body still arriving is then cancelled with RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
    ///
    /// Returns false, writing only the control output, when the stream is no longer open
    /// (the client reset it: its [`Event::Reset`] is queued) or already has its head.
    pub fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&str, &[u8])],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        self.write_output(out);
        if self.error().is_some() {
            return false;
        }
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return false;
        };
        if stream.headers_sent {
            debug_assert!(false, "response head sent twice on stream {stream_id}");
            return false;
        }
        stream.headers_sent = true;
        self.encode_head(stream_id, status, headers, end_stream, out);
        if end_stream {
            self.end_local(stream_id, out);
        }
        true
    }

    /// The 9-octet header of a DATA frame of `len` octets on `stream_id`, debiting both
    /// windows; the caller writes it, then the `len` payload octets. `len` must be at most
    /// [`H2Conn::frame_capacity`], and 0 only with `end_stream` (debug assertions).
    ///
    /// With `end_stream` the stream closes; if the request body was still arriving, an
    /// RST_STREAM(NO_ERROR) is queued for [`H2Conn::write_output`]: write this frame before
    /// the output taken after this call.
    pub fn data_frame_header(
        &mut self,
        stream_id: u32,
        len: usize,
        end_stream: bool,
    ) -> [u8; HEADER_LEN] {
        debug_assert!(len > 0 || end_stream, "empty DATA frame without END_STREAM");
        debug_assert!(
            len <= self.frame_capacity(stream_id),
            "DATA frame beyond the flow-control windows or the frame size"
        );
        let len = len.min(MAX_FRAME_SIZE_LIMIT as usize);
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            debug_assert!(stream.headers_sent, "DATA before the response head");
            let debit = len.min(stream.send.available());
            stream.send.debit(debit);
            let debit = len.min(self.send_window.available());
            self.send_window.debit(debit);
            if end_stream {
                let mut out = std::mem::take(&mut self.out);
                self.end_local(stream_id, &mut out);
                self.out = out;
            }
        }
        frame::Data::header(stream_id, len, end_stream)
    }

    /// Copies as much of `data` as the windows allow into DATA frames appended to `out`
    /// (after the pending control output); END_STREAM goes on the last frame when
    /// `end_stream` and all of `data` fits, or alone when `data` is empty. Returns the octets
    /// of `data` written.
    pub fn send_data(
        &mut self,
        stream_id: u32,
        data: &[u8],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        self.write_output(out);
        let mut sent = 0;
        while self.is_open(stream_id) {
            let rest = &data[sent..];
            let n = rest.len().min(self.frame_capacity(stream_id));
            let last = n == rest.len();
            if n == 0 && !(last && end_stream) {
                break;
            }
            let head = self.data_frame_header(stream_id, n, end_stream && last);
            out.extend_from_slice(&head);
            out.extend_from_slice(&rest[..n]);
            sent += n;
            if last {
                break;
            }
        }
        sent
    }

    /// Ends `stream_id` with RST_STREAM(`code`) appended to `out` after the pending control
    /// output (e.g. NO_ERROR when credentials expire, CANCEL when a slow client is cut).
    /// Returns false when the stream was not open.
    pub fn reset_stream(&mut self, stream_id: u32, code: ErrorCode, out: &mut Vec<u8>) -> bool {
        self.write_output(out);
        if self.streams.remove(&stream_id).is_none() {
            return false;
        }
        frame::RstStream { stream_id, code }.encode(out);
        self.remember(stream_id, Closed::ResetByUs);
        true
    }

    /// Appends GOAWAY (after the pending control output). Graceful shutdown: `NO_ERROR` with
    /// [`H2Conn::last_stream_id`] (or first 2^31-1, then the real id a round trip later).
    /// Streams above `last_stream_id` opened later are refused (REFUSED_STREAM); the open
    /// ones go on until the server ends them. A later GOAWAY never raises the id.
    pub fn goaway(&mut self, last_stream_id: u32, code: ErrorCode, out: &mut Vec<u8>) {
        self.write_output(out);
        let last = self
            .goaway_sent
            .map_or(last_stream_id, |prev| prev.min(last_stream_id));
        frame::GoAway {
            last_stream_id: last,
            code,
            debug: &[],
        }
        .encode(out);
        self.goaway_sent = Some(last);
    }

    /// Closed streams remembered (for tests of the memory bound).
    #[cfg(test)]
    pub(super) fn closed_len(&self) -> usize {
        self.closed.len()
    }

    // ---- receiving

    fn fail(&mut self, e: ConnError) -> ConnError {
        if let State::Failed(first) = self.state {
            return first;
        }
        frame::GoAway {
            last_stream_id: self.last_processed,
            code: e.code,
            debug: e.reason.as_bytes(),
        }
        .encode(&mut self.out);
        self.state = State::Failed(e);
        self.pending = None;
        e
    }

    /// Stream ids the client has not used: even ones (we never push) and those above the
    /// highest it opened.
    fn is_idle(&self, stream_id: u32) -> bool {
        stream_id.is_multiple_of(2) || stream_id > self.highest_id
    }

    fn remember(&mut self, stream_id: u32, how: Closed) {
        if self.closed.len() == CLOSED_MEMORY {
            self.closed.pop_front();
        }
        self.closed.push_back((stream_id, how));
    }

    fn closed_as(&self, stream_id: u32) -> Option<Closed> {
        self.closed
            .iter()
            .rev()
            .find(|(id, _)| *id == stream_id)
            .map(|&(_, how)| how)
    }

    /// A stream error (RFC 9113 §5.4.2): RST_STREAM, and the stream is gone. Counted against
    /// [`Limits::reset_burst`].
    fn stream_error(&mut self, stream_id: u32, code: ErrorCode) -> Result<(), ConnError> {
        frame::RstStream { stream_id, code }.encode(&mut self.out);
        if self.streams.remove(&stream_id).is_some() {
            self.events.push_back(Event::Reset {
                stream_id,
                code,
                remote: false,
            });
        }
        self.remember(stream_id, Closed::ResetByUs);
        self.charge_reset("too many stream errors")
    }

    fn charge_reset(&mut self, reason: &'static str) -> Result<(), ConnError> {
        let limits = self.limits;
        if self
            .resets
            .take(self.now, limits.reset_burst, limits.resets_per_sec)
        {
            Ok(())
        } else {
            Err(calm(reason))
        }
    }

    fn charge_control(&mut self, reason: &'static str) -> Result<(), ConnError> {
        let limits = self.limits;
        if self
            .control
            .take(self.now, limits.control_burst, limits.control_per_sec)
        {
            Ok(())
        } else {
            Err(calm(reason))
        }
    }

    /// A frame error: of the connection, or of the frame's stream (of the connection when
    /// that stream is idle, as RST_STREAM may not be sent on idle streams).
    fn frame_error(&mut self, head: &FrameHeader, e: FrameError) -> Result<(), ConnError> {
        if e.scope == Scope::Stream && !self.is_idle(head.stream_id) {
            self.stream_error(head.stream_id, e.code)
        } else {
            Err(e.into())
        }
    }

    fn refuse(&mut self, stream_id: u32) {
        frame::RstStream {
            stream_id,
            code: ErrorCode::REFUSED_STREAM,
        }
        .encode(&mut self.out);
        self.remember(stream_id, Closed::ResetByUs);
    }

    /// Our side of the stream ends: the stream closes, with RST_STREAM(NO_ERROR) when the
    /// client is still sending.
    fn end_local(&mut self, stream_id: u32, out: &mut Vec<u8>) {
        if let Some(stream) = self.streams.remove(&stream_id) {
            if stream.remote_closed {
                self.remember(stream_id, Closed::Done);
            } else {
                frame::RstStream {
                    stream_id,
                    code: ErrorCode::NO_ERROR,
                }
                .encode(out);
                self.remember(stream_id, Closed::ResetByUs);
            }
        }
    }

    /// Request-body window kept open on each stream.
    fn recv_target(&self) -> u32 {
        self.settings.initial_window_size.max(DEFAULT_WINDOW_SIZE)
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE in force on our side.
    fn local_initial_window(&self) -> u32 {
        if self.acked {
            self.settings.initial_window_size
        } else {
            DEFAULT_WINDOW_SIZE
        }
    }

    fn on_frame(&mut self, head: FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        if let Some(p) = self.pending {
            if head.kind != kind::CONTINUATION || head.stream_id != p.stream_id {
                return Err(conn_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "header block interrupted",
                ));
            }
        }
        if self.state == State::FirstSettings {
            if head.kind != kind::SETTINGS || head.has(flag::ACK) {
                return Err(conn_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "preface not followed by SETTINGS",
                ));
            }
            self.state = State::Open;
        }
        match head.kind {
            kind::DATA => self.on_data(&head, payload),
            kind::HEADERS => self.on_headers(&head, payload),
            kind::PRIORITY => match frame::Priority::decode(&head, payload) {
                Ok(_) => Ok(()),
                Err(e) => self.frame_error(&head, e),
            },
            kind::RST_STREAM => self.on_rst_stream(&head, payload),
            kind::SETTINGS => self.on_settings(&head, payload),
            kind::PUSH_PROMISE => Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "PUSH_PROMISE from a client",
            )),
            kind::PING => self.on_ping(&head, payload),
            kind::GOAWAY => {
                let g = frame::GoAway::decode(&head, payload)?;
                self.events.push_back(Event::GoAway {
                    last_stream_id: g.last_stream_id,
                    code: g.code,
                });
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(&head, payload),
            kind::CONTINUATION => self.on_continuation(&head, payload),
            _ => Ok(()),
        }
    }

    fn on_data(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let data = match frame::Data::decode(head, payload) {
            Ok(d) => d,
            Err(e) => return self.frame_error(head, e),
        };
        let stream_id = data.stream_id;
        if self.is_idle(stream_id) {
            return Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "DATA on an idle stream",
            ));
        }
        let flow = data.flow_len();
        if self.recv_window.consume(flow).is_err() {
            return Err(conn_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        replenish(&mut self.out, 0, &mut self.recv_window, DEFAULT_WINDOW_SIZE);
        if flow == 0 && !data.end_stream {
            self.charge_control("too many empty DATA frames")?;
        }
        let target = self.recv_target();
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return match self.closed_as(stream_id) {
                Some(Closed::ResetByUs) => Ok(()),
                _ => self.stream_error(stream_id, ErrorCode::STREAM_CLOSED),
            };
        };
        if stream.remote_closed {
            return self.stream_error(stream_id, ErrorCode::STREAM_CLOSED);
        }
        if stream.recv.consume(flow).is_err() {
            return self.stream_error(stream_id, ErrorCode::FLOW_CONTROL_ERROR);
        }
        let len = data.data.len();
        if let Some(remaining) = &mut stream.remaining {
            let n = len as u64;
            if n > *remaining || (data.end_stream && n != *remaining) {
                return self.stream_error(stream_id, ErrorCode::PROTOCOL_ERROR);
            }
            *remaining -= n;
        }
        if data.end_stream {
            stream.remote_closed = true;
        } else {
            replenish(&mut self.out, stream_id, &mut stream.recv, target);
        }
        self.events.push_back(Event::Data {
            stream_id,
            len,
            end_stream: data.end_stream,
        });
        Ok(())
    }

    fn append_block(&mut self, fragment: &[u8]) -> Result<(), ConnError> {
        if self.block.len() + fragment.len() > self.block_cap {
            return Err(calm("header block too large"));
        }
        self.block.extend_from_slice(fragment);
        Ok(())
    }

    fn on_headers(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let h = frame::Headers::decode(head, payload)?;
        if h.stream_id.is_multiple_of(2) {
            return Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on an even stream id",
            ));
        }
        self.block.clear();
        self.append_block(h.fragment)?;
        self.pending = Some(PendingBlock {
            stream_id: h.stream_id,
            end_stream: h.end_stream,
            self_dependent: h.priority.is_some_and(|p| p.dependency == h.stream_id),
            continuations: 0,
        });
        if h.end_headers {
            self.finish_block()
        } else {
            Ok(())
        }
    }

    fn on_continuation(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let Some(pending) = &mut self.pending else {
            return Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        pending.continuations += 1;
        if pending.continuations > self.limits.max_continuations {
            return Err(calm("too many CONTINUATION frames"));
        }
        let c = frame::Continuation::decode(head, payload)?;
        self.append_block(c.fragment)?;
        if c.end_headers {
            self.finish_block()
        } else {
            Ok(())
        }
    }

    /// A complete header block: decoded always (the HPACK state is shared by the
    /// connection), then a new request, trailers, or a late block on a closed stream.
    fn finish_block(&mut self) -> Result<(), ConnError> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let id = p.stream_id;
        let is_new = id > self.highest_id;
        let max_list = self.settings.max_header_list_size as usize;
        let mut collector = if is_new {
            Collector::request(max_list)
        } else {
            Collector::trailers(max_list)
        };
        let block = std::mem::take(&mut self.block);
        let decoded = self.decoder.decode(&block, |n, v| collector.field(n, v));
        self.block = block;
        if decoded.is_err() {
            return Err(conn_error(
                ErrorCode::COMPRESSION_ERROR,
                "invalid header block",
            ));
        }
        if is_new {
            self.highest_id = id;
            return self.new_stream(p, collector);
        }
        let Some(stream) = self.streams.get(&id) else {
            return match self.closed_as(id) {
                Some(Closed::ResetByUs) => Ok(()),
                Some(Closed::Done) => Err(conn_error(
                    ErrorCode::STREAM_CLOSED,
                    "HEADERS on a closed stream",
                )),
                None => Err(conn_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "HEADERS on a stream id lower than a previous one",
                )),
            };
        };
        // Trailers.
        if stream.remote_closed {
            return self.stream_error(id, ErrorCode::STREAM_CLOSED);
        }
        let body_left = stream.remaining.is_some_and(|n| n != 0);
        let outcome = collector.finish(id, p.end_stream);
        let valid = matches!(outcome, Outcome::Trailers | Outcome::TooLarge);
        if p.self_dependent || !p.end_stream || !valid || body_left {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR);
        }
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.remote_closed = true;
        }
        self.events.push_back(Event::Data {
            stream_id: id,
            len: 0,
            end_stream: true,
        });
        Ok(())
    }

    fn new_stream(&mut self, p: PendingBlock, collector: Collector) -> Result<(), ConnError> {
        let id = p.stream_id;
        if p.self_dependent {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR);
        }
        let over_limit = self.streams.len() >= self.settings.max_concurrent_streams as usize;
        if over_limit || self.goaway_sent.is_some_and(|last| id > last) {
            self.refuse(id);
            return Ok(());
        }
        match collector.finish(id, p.end_stream) {
            Outcome::Request(request) => {
                self.last_processed = id;
                let mut stream = Stream {
                    send: Window::new(self.peer_initial_window),
                    recv: Window::new(self.local_initial_window()),
                    remote_closed: p.end_stream,
                    headers_sent: false,
                    remaining: request.content_length(),
                };
                if !p.end_stream {
                    let target = self.recv_target();
                    replenish(&mut self.out, id, &mut stream.recv, target);
                }
                self.streams.insert(id, stream);
                self.events.push_back(Event::Request(request));
                Ok(())
            }
            Outcome::TooLarge => {
                // RFC 9113 §10.5.1: answered 431 (a request the server never sees).
                self.last_processed = id;
                let mut out = std::mem::take(&mut self.out);
                self.encode_head(id, 431, &[], true, &mut out);
                if p.end_stream {
                    self.remember(id, Closed::Done);
                } else {
                    frame::RstStream {
                        stream_id: id,
                        code: ErrorCode::NO_ERROR,
                    }
                    .encode(&mut out);
                    self.remember(id, Closed::ResetByUs);
                }
                self.out = out;
                Ok(())
            }
            Outcome::Malformed(_) | Outcome::Trailers => {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR)
            }
        }
    }

    fn on_rst_stream(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let r = frame::RstStream::decode(head, payload)?;
        if self.is_idle(r.stream_id) {
            return Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        if let Some(stream) = self.streams.remove(&r.stream_id) {
            self.remember(r.stream_id, Closed::Done);
            self.events.push_back(Event::Reset {
                stream_id: r.stream_id,
                code: r.code,
                remote: true,
            });
            if !stream.headers_sent {
                // Rapid reset: a stream cancelled before the server answered it.
                self.charge_reset("too many streams reset by the client")?;
            }
        }
        Ok(())
    }

    fn on_settings(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let s = frame::Settings::decode(head, payload)?;
        self.charge_control("too many SETTINGS frames")?;
        if s.ack {
            if !self.acked {
                self.our_settings_acked();
            }
            return Ok(());
        }
        let mut opened = false;
        for (id, value) in s.params() {
            match id {
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(conn_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "SETTINGS_ENABLE_PUSH not 0 or 1",
                    ));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW_SIZE {
                        return Err(conn_error(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    let delta = i64::from(value) - i64::from(self.peer_initial_window);
                    for stream in self.streams.values_mut() {
                        stream.send.adjust(delta).map_err(|_| {
                            conn_error(
                                ErrorCode::FLOW_CONTROL_ERROR,
                                "SETTINGS_INITIAL_WINDOW_SIZE overflows a window",
                            )
                        })?;
                    }
                    self.peer_initial_window = value;
                    opened |= delta > 0;
                }
                setting::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&value) {
                        return Err(conn_error(
                            ErrorCode::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    self.peer_max_frame_size = value;
                }
                // HEADER_TABLE_SIZE: our encoder keeps its table empty (size 0).
                _ => {}
            }
        }
        frame::Settings::encode_ack(&mut self.out);
        if opened {
            self.events.push_back(Event::WindowOpened { stream_id: 0 });
        }
        Ok(())
    }

    /// Our SETTINGS apply from now on: request-body windows and the HPACK table size.
    fn our_settings_acked(&mut self) {
        self.acked = true;
        let delta = i64::from(self.settings.initial_window_size) - i64::from(DEFAULT_WINDOW_SIZE);
        let target = self.recv_target();
        for (&id, stream) in self.streams.iter_mut() {
            // Both values are at most 2^31-1: the window stays in range.
            let _ = stream.recv.adjust(delta);
            if !stream.remote_closed {
                replenish(&mut self.out, id, &mut stream.recv, target);
            }
        }
        self.decoder
            .set_max_allowed(self.settings.header_table_size as usize);
    }

    fn on_ping(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let ping = frame::Ping::decode(head, payload)?;
        if ping.ack {
            return Ok(());
        }
        self.charge_control("too many PING frames")?;
        frame::Ping {
            ack: true,
            payload: ping.payload,
        }
        .encode(&mut self.out);
        Ok(())
    }

    fn on_window_update(&mut self, head: &FrameHeader, payload: &[u8]) -> Result<(), ConnError> {
        let w = match frame::WindowUpdate::decode(head, payload) {
            Ok(w) => w,
            Err(e) => return self.frame_error(head, e),
        };
        if w.stream_id == 0 {
            self.send_window.increase(w.increment).map_err(|_| {
                conn_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                )
            })?;
            self.events.push_back(Event::WindowOpened { stream_id: 0 });
            return Ok(());
        }
        if self.is_idle(w.stream_id) {
            return Err(conn_error(
                ErrorCode::PROTOCOL_ERROR,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&w.stream_id) else {
            return Ok(());
        };
        if stream.send.increase(w.increment).is_err() {
            return self.stream_error(w.stream_id, ErrorCode::FLOW_CONTROL_ERROR);
        }
        self.events.push_back(Event::WindowOpened {
            stream_id: w.stream_id,
        });
        Ok(())
    }

    // ---- sending

    /// Encodes a response head into HEADERS and CONTINUATION frames of at most the peer's
    /// frame size, appended to `out`.
    fn encode_head(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&str, &[u8])],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) {
        let mut block = std::mem::take(&mut self.head_block);
        block.clear();
        self.encoder.begin_block(&mut block);
        self.encoder.encode_status(status, &mut block);
        for (name, value) in headers {
            let connection_specific = [
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
                "upgrade",
            ]
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c));
            let bad_value = value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
            debug_assert!(!bad_value, "response header value contains CR, LF or NUL");
            if connection_specific || bad_value || name.is_empty() {
                continue;
            }
            self.encoder
                .encode_field(name.as_bytes(), value, &mut block);
        }
        let max = self.peer_max_frame_size as usize;
        let mut chunks = block.chunks(max).peekable();
        let mut first = true;
        while let Some(fragment) = chunks.next() {
            let end_headers = chunks.peek().is_none();
            if first {
                frame::Headers {
                    stream_id,
                    end_stream,
                    end_headers,
                    priority: None,
                    fragment,
                    pad_len: None,
                }
                .encode(out);
                first = false;
            } else {
                frame::Continuation {
                    stream_id,
                    end_headers,
                    fragment,
                }
                .encode(out);
            }
        }
        self.head_block = block;
    }
}
