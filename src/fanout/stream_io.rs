//! The state a stream's writer (its HTTP connection task) shares with the fan-out: the bytes
//! waiting to be written and why the stream ended. Single-threaded (`Rc<RefCell<_>>`), no lock.
//!
//! The fan-out appends encoded events to `out`; the writer takes the whole buffer at each wake-up
//! and writes it in one call, so events that pile up while a write is in flight are coalesced.
//! Buffers come from a worker-local pool and go back to it once written: an idle stream holds
//! no buffer at all, and a busy one reuses pooled buffers, so steady streaming allocates nothing.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Waker;

use proto::http1::CHUNK_PREFIX_MAX;

use super::live_log::{SharedLog, Slice};
use crate::iovecs::IoVecs;

/// Buffers the pool keeps at most (the rest are freed), and the largest capacity it keeps.
const POOL_BUFFERS: usize = 4096;
const POOL_MAX_CAPACITY: usize = 64 * 1024;
/// Capacity of a fresh pooled buffer: a few typical events.
const POOL_NEW_CAPACITY: usize = 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer from this worker's pool (or a new one).
pub fn take_buffer() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(POOL_NEW_CAPACITY))
}

/// Returns a written buffer to this worker's pool.
pub fn give_buffer(mut buf: Vec<u8>) {
    if buf.capacity() > POOL_MAX_CAPACITY {
        return;
    }
    buf.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_BUFFERS {
            p.push(buf);
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client went away.
    Client,
    /// The client fell behind by more than the stream's outbound budget.
    Budget,
    /// The server is shutting down.
    Shutdown,
    /// Kafka failed in a way the stream cannot survive (e.g. the topic was deleted).
    Upstream,
    /// The token authorizing the stream expired without a challenge response.
    Expiry,
}

thread_local! {
    /// Bytes in the private buffers of this worker's streams, pending or being written.
    static PRIVATE_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bytes the calling worker's streams hold in private buffers (catch-up, heartbeats, files),
/// pending or in flight; the live logs' shared bytes are counted by `live_log`.
pub fn worker_private_bytes() -> usize {
    PRIVATE_BYTES.with(std::cell::Cell::get)
}

fn add_private(delta: isize) {
    PRIVATE_BYTES.with(|b| b.set(b.get().saturating_add_signed(delta)));
}

/// A live stream's place in its group's shared log.
struct LiveCursor {
    log: SharedLog,
    pos: u64,
}

/// A piece of an HTTP/2 DATA frame's payload, handed to the writer's batch.
pub enum Part<'a> {
    /// Bytes of the group's log, written from the log's block.
    Log(Slice),
    /// The stream's whole private buffer (give it back with `give_buffer` once written).
    Buffer(Vec<u8>),
    /// Bytes to copy (part of a private buffer a flow-control window cut).
    Copy(&'a [u8]),
}

/// What the HTTP/1.1 writer writes next.
pub enum Take {
    /// Private bytes, framed, from `.1` on; give the buffer back with `give_buffer`.
    Private(Vec<u8>, usize),
    /// Bytes of the group's log (whole events), to write with `Gather`.
    Live(Gather),
}

pub struct StreamIo {
    /// Private pending bytes (catch-up, heartbeats, challenges, files); empty (and unallocated)
    /// when there are none. With chunked framing the first `CHUNK_PREFIX_MAX` bytes are
    /// reserved for the chunk-size line, filled in by `take`. Always written before the
    /// bytes of the live log.
    out: Vec<u8>,
    /// Bytes taken by the writer and not yet reported written (`written`; HTTP/1.1).
    in_flight: usize,
    /// Private bytes already taken into DATA frames (HTTP/2, when a window cut the buffer).
    sent: usize,
    /// The rest of a live event that an HTTP/2 frame cut (written before anything else, so the
    /// live cursor always sits on an event boundary).
    tail: Option<Slice>,
    /// Set while the stream is live: its cursor in the group's shared log.
    live: Option<LiveCursor>,
    chunked: bool,
    budget: usize,
    pub end: Option<EndReason>,
    waker: Option<Waker>,
    /// Coarse tick (seconds) of the last append; the heartbeat sweep reads it.
    pub last_activity: u64,
    /// Tick at which the writer last took bytes (or bytes became pending after none were):
    /// pending bytes older than the stall timeout mean the client stopped reading.
    pub last_drain: u64,
    /// A push did not fit the budget (the fan-out clears this when it pumps the stream).
    pub full: bool,
    /// The HTTP/1.1 socket, shut down to abort a write the client never takes.
    pub abort_fd: Option<std::os::fd::RawFd>,
    /// The writer may park when idle (HTTP/1.1; an HTTP/2 connection's writer serves many).
    pub parkable: bool,
    /// The fan-out asked the idle writer to park (`wants_park`).
    park_wanted: bool,
    /// A parked writer: its task ended and its state waits here, and the next wake starts it
    /// again. An idle stream then costs this small box instead of a writer future.
    resume: Option<Box<dyn FnOnce()>>,
}

/// Seconds without a write after which an idle HTTP/1.1 writer parks (its task ends; its
/// state moves into a small box in the stream). Streams that are fed keep their task, so a
/// writer is respawned at most once per idle period, not once per burst.
pub const PARK_IDLE_SECS: u64 = 2;

pub type SharedIo = Rc<RefCell<StreamIo>>;

impl StreamIo {
    pub fn new(chunked: bool, budget: usize, now: u64) -> SharedIo {
        Rc::new(RefCell::new(StreamIo {
            out: Vec::new(),
            in_flight: 0,
            sent: 0,
            tail: None,
            live: None,
            chunked,
            budget,
            end: None,
            waker: None,
            last_activity: now,
            last_drain: now,
            full: false,
            abort_fd: None,
            parkable: false,
            park_wanted: false,
            resume: None,
        }))
    }

    fn prefix_len(&self) -> usize {
        if self.chunked {
            CHUNK_PREFIX_MAX
        } else {
            0
        }
    }

    /// Private bytes waiting to be written.
    pub fn private_pending(&self) -> usize {
        self.out.len().saturating_sub(self.prefix_len() + self.sent)
    }

    fn tail_pending(&self) -> usize {
        self.tail.as_ref().map_or(0, |t| t.to - t.from)
    }

    /// Bytes of the live log between the cursor and the head (0 when not live).
    pub fn live_pending(&self) -> usize {
        self.live
            .as_ref()
            .map_or(0, |c| (c.log.borrow().head() - c.pos) as usize)
    }

    /// Bytes waiting to be written, private and live.
    pub fn pending(&self) -> usize {
        self.tail_pending() + self.private_pending() + self.live_pending()
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The live cursor, when live.
    pub fn live_pos(&self) -> Option<u64> {
        self.live.as_ref().map(|c| c.pos)
    }

    /// Joins a group's log at its head: from now on the stream receives the group's bytes.
    pub fn join_live(&mut self, log: &SharedLog, head: u64) {
        self.live = Some(LiveCursor {
            log: log.clone(),
            pos: head,
        });
    }

    /// Leaves the live log; returns the cursor (an event boundary) it had reached.
    pub fn leave_live(&mut self) -> Option<u64> {
        self.live.take().map(|c| c.pos)
    }

    /// Appends private bytes. Returns false, appending nothing, when the stream ended or the
    /// bytes do not fit the budget (then `full` is set).
    pub fn push(&mut self, bytes: &[u8], now: u64) -> bool {
        if self.end.is_some() || self.full {
            return false;
        }
        if self.pending() + bytes.len() > self.budget {
            self.full = true;
            return false;
        }
        self.encode_with(now, |out| out.extend_from_slice(bytes));
        true
    }

    /// Appends a stream's last private bytes (a drain's `retry:` line), past the budget.
    pub fn push_final(&mut self, bytes: &[u8]) {
        let now = self.last_activity;
        self.encode_with(now, |out| out.extend_from_slice(bytes));
    }

    /// Appends private bytes written by `f` (an event encoder) and accounts for them.
    pub fn encode_with(&mut self, now: u64, f: impl FnOnce(&mut Vec<u8>)) {
        if self.pending() == 0 {
            self.last_drain = now;
        }
        let before = self.out.len();
        f(self.buffer());
        add_private((self.out.len() - before) as isize);
        self.last_activity = now;
    }

    /// Whether the client has left pending bytes untaken for `stall_secs`.
    pub fn stalled(&self, now: u64, stall_secs: u64) -> bool {
        stall_secs > 0 && self.pending() > 0 && now >= self.last_drain + stall_secs
    }

    /// Ends a stalled stream: a client that stopped reading is cut and resumes by its last id.
    /// An HTTP/1.1 write it never takes is aborted by shutting the socket down.
    pub fn cut_stalled(&mut self) {
        self.finish(EndReason::Budget);
        if let Some(fd) = self.abort_fd.take() {
            // SAFETY: the connection's socket stays open until its writer task, which this
            // wakes with an error, has finished; shutdown(2) does not close the descriptor.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    /// The private buffer, made ready for appending.
    fn buffer(&mut self) -> &mut Vec<u8> {
        if self.out.is_empty() {
            if self.out.capacity() == 0 {
                self.out = take_buffer();
            }
            if self.chunked {
                self.out.extend_from_slice(&[0; CHUNK_PREFIX_MAX]);
            }
        }
        &mut self.out
    }

    /// Registers the writer to be woken when the stream changes (bytes, end).
    pub fn register(&mut self, waker: &Waker) {
        if self.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Wakes the writer, or starts a parked one again.
    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        } else if let Some(resume) = self.resume.take() {
            resume();
        }
    }

    /// Whether the writer is waiting with nothing to write and has been idle long enough to
    /// park (`now`: the coarse tick).
    pub fn wants_park(&self, now: u64) -> bool {
        self.parkable
            && !self.park_wanted
            && self.waker.is_some()
            && self.end.is_none()
            && self.pending() == 0
            && now >= self.last_drain.max(self.last_activity) + PARK_IDLE_SECS
    }

    /// Asks the idle writer to park (it sees `take_park` on its wake-up).
    pub fn request_park(&mut self) {
        self.park_wanted = true;
        self.wake();
    }

    /// Writer side: whether to park now (asked to, and still nothing to write).
    pub fn take_park(&mut self) -> bool {
        let park = self.park_wanted && self.pending() == 0 && self.end.is_none();
        self.park_wanted = false;
        park
    }

    /// Writer side: parks, leaving `resume` (which starts the writer again) for the next wake.
    pub fn park(&mut self, resume: Box<dyn FnOnce()>) {
        self.waker = None;
        self.resume = Some(resume);
    }

    pub fn finish(&mut self, reason: EndReason) {
        if self.end.is_none() {
            self.end = Some(reason);
        }
        self.wake();
    }

    /// HTTP/2 writer side: hands exactly `min(max, pending)` bytes to `sink` (the rest of a cut
    /// event, then private bytes, then live bytes) and returns how many; with nothing pending,
    /// registers the writer's waker and returns 0. Nothing is copied but a window-cut piece of
    /// a private buffer: live bytes go as slices of the group's log, a private buffer whole. A
    /// cut inside a live event keeps the rest of that event as `tail`, so the live cursor
    /// always stays on an event boundary.
    pub fn take_frame(
        &mut self,
        max: usize,
        sink: &mut impl FnMut(Part<'_>),
        waker: &Waker,
        now: u64,
    ) -> usize {
        debug_assert!(!self.chunked);
        let mut taken = self.take_tail(max, sink);
        let private = self.private_pending();
        if taken < max && private > 0 {
            let n = private.min(max - taken);
            if n == private && self.sent == 0 {
                sink(Part::Buffer(std::mem::take(&mut self.out)));
            } else {
                // Rare: a window smaller than the private bytes (a catch-up fill).
                sink(Part::Copy(&self.out[self.sent..self.sent + n]));
                self.sent += n;
                if self.sent == self.out.len() {
                    give_buffer(std::mem::take(&mut self.out));
                    self.sent = 0;
                }
            }
            add_private(-(n as isize));
            taken += n;
        }
        if taken < max && self.private_pending() == 0 && self.tail.is_none() {
            if let Some(cursor) = self.live.as_mut() {
                let log = cursor.log.borrow();
                let (pos, rest) = log.cut(cursor.pos, max - taken, &mut |s| sink(Part::Log(s)));
                taken += (pos - cursor.pos) as usize;
                cursor.pos = rest.as_ref().map_or(pos, |r| pos + (r.to - r.from) as u64);
                drop(log);
                self.tail = rest;
            }
        }
        if taken == 0 {
            self.register(waker);
        } else {
            self.last_drain = now;
        }
        taken
    }

    /// The first `max` bytes of the cut event's rest, if there is one.
    fn take_tail(&mut self, max: usize, sink: &mut impl FnMut(Part<'_>)) -> usize {
        let Some(tail) = self.tail.as_mut() else {
            return 0;
        };
        let n = (tail.to - tail.from).min(max);
        if n == 0 {
            return 0;
        }
        if n == tail.to - tail.from {
            if let Some(whole) = self.tail.take() {
                sink(Part::Log(whole));
            }
        } else {
            sink(Part::Log(Slice {
                block: tail.block.clone(),
                from: tail.from,
                to: tail.from + n,
            }));
            tail.from += n;
        }
        n
    }

    /// HTTP/1.1 writer side: what to write next (private bytes first, framed with the
    /// chunk-size line and CRLF when chunked; else up to `max` bytes of whole live events);
    /// `None` (with the waker registered) when there is nothing to write. Call `written` once
    /// the bytes are on the socket.
    pub fn take(&mut self, waker: &Waker, now: u64, max: usize) -> Option<Take> {
        if self.private_pending() > 0 {
            self.last_drain = now;
            let mut buf = std::mem::take(&mut self.out);
            self.in_flight += buf.len() - self.prefix_len();
            let start = if self.chunked {
                let len = buf.len() - CHUNK_PREFIX_MAX;
                let mut prefix = [0u8; CHUNK_PREFIX_MAX];
                let start = proto::http1::chunk_prefix(len, &mut prefix);
                buf[..CHUNK_PREFIX_MAX].copy_from_slice(&prefix);
                buf.extend_from_slice(b"\r\n");
                start
            } else {
                0
            };
            return Some(Take::Private(buf, start));
        }
        let taken = self.live.as_mut().and_then(|cursor| {
            let log = cursor.log.borrow();
            if log.head() == cursor.pos {
                return None;
            }
            let mut gather = Gather::new(self.chunked);
            cursor.pos = log.take(cursor.pos, max, &mut gather.slices);
            Some(gather)
        });
        match taken {
            Some(mut gather) => {
                self.last_drain = now;
                gather.seal();
                Some(Take::Live(gather))
            }
            None => {
                self.register(waker);
                None
            }
        }
    }

    /// The writer wrote what it last took.
    pub fn written(&mut self) {
        add_private(-(self.in_flight as isize));
        self.in_flight = 0;
    }
}

impl Drop for StreamIo {
    fn drop(&mut self) {
        add_private(-((self.private_pending() + self.in_flight) as isize));
    }
}

/// Live bytes for one `writev`: the chunk-size line and CRLF (when chunked) around slices of
/// the log's blocks, which it keeps alive while the write is in flight.
pub struct Gather {
    slices: Vec<Slice>,
    /// The chunk-size line then CRLF, when chunked (iovecs point into this heap buffer).
    frame: Vec<u8>,
    prefix_len: usize,
    chunked: bool,
    iovecs: IoVecs,
}

/// Gathers kept per worker for reuse (their vectors keep their capacity).
const GATHER_POOL: usize = 1024;

thread_local! {
    static GATHERS: RefCell<Vec<Gather>> = const { RefCell::new(Vec::new()) };
}

/// Returns a written gather to this worker's pool (its blocks are released now).
pub fn give_gather(mut g: Gather) {
    g.slices.clear();
    g.frame.clear();
    g.iovecs.clear();
    GATHERS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < GATHER_POOL {
            p.push(g);
        }
    });
}

impl Gather {
    fn new(chunked: bool) -> Self {
        let mut g = GATHERS
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Gather {
                slices: Vec::new(),
                frame: Vec::new(),
                prefix_len: 0,
                chunked,
                iovecs: IoVecs::default(),
            });
        g.chunked = chunked;
        g.prefix_len = 0;
        g.iovecs.clear();
        g
    }

    /// The payload bytes (tests).
    #[cfg(test)]
    pub fn payload(&self) -> Vec<u8> {
        self.slices
            .iter()
            .flat_map(|s| s.bytes().to_vec())
            .collect()
    }

    /// Payload bytes (without framing).
    pub fn payload_len(&self) -> usize {
        self.slices.iter().map(|s| s.to - s.from).sum()
    }

    /// Bytes on the wire, framing included.
    pub fn total_len(&self) -> usize {
        self.iovecs.remaining()
    }

    fn seal(&mut self) {
        let payload = self.payload_len();
        if self.chunked {
            let mut prefix = [0u8; CHUNK_PREFIX_MAX];
            let start = proto::http1::chunk_prefix(payload, &mut prefix);
            self.frame.extend_from_slice(&prefix[start..]);
            self.prefix_len = self.frame.len();
            self.frame.extend_from_slice(b"\r\n");
        }
        let iovecs = &mut self.iovecs;
        iovecs.clear();
        if self.chunked {
            iovecs.push(self.frame.as_ptr(), self.prefix_len);
        }
        for s in &self.slices {
            let b = s.bytes();
            iovecs.push(b.as_ptr(), b.len());
        }
        if self.chunked {
            // The CRLF after the prefix (`frame[prefix_len..]`).
            iovecs.push(self.frame[self.prefix_len..].as_ptr(), 2);
        }
    }

    /// Marks `n` more bytes written; returns whether everything is.
    pub fn advance(&mut self, n: usize) -> bool {
        self.iovecs.advance(n)
    }
}

// SAFETY: the iovecs point into `frame` (a heap buffer that is not touched while the value is
// in the runtime's hands) and into blocks kept alive by `slices`; neither moves when the
// `Gather` itself moves, and `IoVecs` hands out only the iovecs of the remaining bytes.
unsafe impl monoio::buf::IoVecBuf for Gather {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iovecs.unwritten_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iovecs.unwritten_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::live_log::LiveLog;

    fn noop_waker() -> Waker {
        Waker::noop().clone()
    }

    /// Everything `take_frame` hands over, as bytes.
    fn frame(io: &mut StreamIo, max: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let n = io.take_frame(
            max,
            &mut |p| match p {
                Part::Log(s) => got.extend_from_slice(s.bytes()),
                Part::Buffer(b) => got.extend_from_slice(&b),
                Part::Copy(b) => got.extend_from_slice(b),
            },
            &noop_waker(),
            0,
        );
        assert_eq!(n, got.len());
        got
    }

    #[test]
    fn http2_frames_cut_events_anywhere_and_keep_the_cursor_on_a_boundary() {
        let log = LiveLog::new_shared();
        let io = StreamIo::new(false, 1 << 20, 0);
        let mut io = io.borrow_mut();
        io.join_live(&log, 0);
        {
            let mut l = log.borrow_mut();
            let mut open = l.open(&[(0, 0)], 0);
            for (i, e) in [&b"data:aaaa\n\n"[..], b"data:bb\n\n"].iter().enumerate() {
                open.buffer().extend_from_slice(e);
                open.event_written(i as i64);
            }
            l.commit(open);
        }
        // A heartbeat pushed before the frame goes first; then 7-byte frames cut the events.
        assert!(io.push(b":\n\n", 0));
        let mut wire = Vec::new();
        let mut boundaries = Vec::new();
        while io.pending() > 0 {
            wire.extend(frame(&mut io, 7));
            boundaries.push(io.live_pos());
            // A private push while a cut event's rest is pending goes after that rest.
            if wire.len() == 7 + 7 {
                assert!(io.push(b":x\n\n", 0));
            }
        }
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            ":\n\ndata:aaaa\n\n:x\n\ndata:bb\n\n"
        );
        // The cursor only ever stands at the end of a whole event.
        assert!(boundaries.iter().all(|p| matches!(p, Some(0 | 11 | 20))));
        assert_eq!(frame(&mut io, 7), b"");
    }

    #[test]
    fn an_idle_writer_parks_and_the_next_wake_resumes_it() {
        use std::cell::Cell;
        let io = StreamIo::new(true, 1 << 20, 0);
        let mut s = io.borrow_mut();
        // An HTTP/2 stream (not parkable) never parks.
        s.register(&noop_waker());
        assert!(!s.wants_park(100));
        s.parkable = true;
        assert!(
            !s.wants_park(PARK_IDLE_SECS - 1),
            "parks only after the idle time"
        );
        assert!(s.wants_park(PARK_IDLE_SECS));
        // Pending bytes keep the writer: asked to park, it writes instead.
        s.request_park();
        assert!(s.push(b":\n\n", PARK_IDLE_SECS));
        assert!(!s.take_park());
        assert!(!s.wants_park(PARK_IDLE_SECS), "pending bytes");
        let Some(Take::Private(buf, _)) = s.take(&noop_waker(), PARK_IDLE_SECS, 1024) else {
            panic!("the heartbeat is pending");
        };
        give_buffer(buf);
        s.written();
        let later = 2 * PARK_IDLE_SECS;
        // The writer finds nothing more and waits (its waker registered).
        assert!(s.take(&noop_waker(), PARK_IDLE_SECS, 1024).is_none());
        assert!(s.wants_park(later));
        s.request_park();
        assert!(s.take_park());
        let resumed = Rc::new(Cell::new(0));
        let r = resumed.clone();
        s.park(Box::new(move || r.set(r.get() + 1)));
        assert!(!s.wants_park(later * 2), "a parked writer has no waker");
        s.wake();
        s.wake();
        assert_eq!(resumed.get(), 1, "one wake resumes it, once");
    }
}
