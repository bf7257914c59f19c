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

pub struct StreamIo {
    /// Pending bytes; empty (and unallocated) when there are none. With chunked framing the first
    /// `CHUNK_PREFIX_MAX` bytes are reserved for the chunk-size line, filled in by `take`.
    out: Vec<u8>,
    chunked: bool,
    budget: usize,
    pub end: Option<EndReason>,
    waker: Option<Waker>,
    /// Coarse tick (seconds) of the last append; the heartbeat sweep reads it.
    pub last_activity: u64,
    /// Tick at which the writer last took bytes (or bytes became pending after none were):
    /// pending bytes older than the stall timeout mean the client stopped reading.
    pub last_drain: u64,
    /// A live push did not fit the budget: the stream leaves the live group and catches up
    /// from the cache (the fan-out clears this when it pumps the stream).
    pub full: bool,
    /// The HTTP/1.1 socket, shut down to abort a write the client never takes.
    pub abort_fd: Option<std::os::fd::RawFd>,
    /// HTTP/2: bytes of `out` already moved to the connection by `take_into` (a read offset,
    /// so a frame taken from a large backlog does not shift the rest down).
    taken: usize,
}

pub type SharedIo = Rc<RefCell<StreamIo>>;

impl StreamIo {
    pub fn new(chunked: bool, budget: usize, now: u64) -> SharedIo {
        Rc::new(RefCell::new(StreamIo {
            out: Vec::new(),
            chunked,
            budget,
            end: None,
            waker: None,
            last_activity: now,
            last_drain: now,
            full: false,
            abort_fd: None,
            taken: 0,
        }))
    }

    fn prefix_len(&self) -> usize {
        if self.chunked {
            CHUNK_PREFIX_MAX
        } else {
            0
        }
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out
            .len()
            .saturating_sub(self.prefix_len() + self.taken)
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Appends encoded event bytes. Returns false, appending nothing, when the stream ended or
    /// the bytes do not fit the budget (then `full` is set: the fan-out moves the stream from the
    /// live group to catching up from the cache, within its budget).
    pub fn push(&mut self, bytes: &[u8], now: u64) -> bool {
        if self.end.is_some() || self.full {
            return false;
        }
        if self.pending() + bytes.len() > self.budget {
            self.full = true;
            return false;
        }
        if self.pending() == 0 {
            self.last_drain = now;
        }
        self.buffer().extend_from_slice(bytes);
        self.last_activity = now;
        true
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
            // SAFETY: `abort_fd` is set only while the connection's write half lives (its
            // `Writer` in src/http/conn.rs sets it and clears it before it lets the half go),
            // and that half keeps the socket open: `fd` still names this stream's socket, not
            // a reused number. shutdown(2) wakes the writer with an error; it closes nothing.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    /// The pending buffer, made ready for appending (the encoder writes into it directly).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
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

    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn finish(&mut self, reason: EndReason) {
        if self.end.is_none() {
            self.end = Some(reason);
        }
        self.wake();
    }

    /// HTTP/2 writer side: moves up to `max` pending bytes to the end of `out` (the connection's
    /// write buffer, after the DATA frame header) and returns how many; with nothing pending,
    /// registers the writer's waker and returns 0.
    pub fn take_into(&mut self, max: usize, out: &mut Vec<u8>, waker: &Waker, now: u64) -> usize {
        debug_assert!(!self.chunked);
        let n = self.pending().min(max);
        if n == 0 {
            if self.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
                self.waker = Some(waker.clone());
            }
            return 0;
        }
        let from = self.taken;
        out.extend_from_slice(&self.out[from..from + n]);
        self.last_drain = now;
        self.taken += n;
        if self.taken == self.out.len() {
            self.taken = 0;
            give_buffer(std::mem::take(&mut self.out));
        } else if self.taken >= self.out.len() - self.taken {
            // At most as many bytes remain as were taken since the last move: moving them to
            // the front costs no more than one copy of each byte taken (amortised O(1)), where
            // shifting after every frame cost the whole backlog per frame.
            self.out.copy_within(self.taken.., 0);
            self.out.truncate(self.out.len() - self.taken);
            self.taken = 0;
        }
        n
    }

    /// Writer side: takes the pending bytes, framed (chunk-size line and CRLF when chunked), and
    /// the offset where the bytes to write start; `None` (with the waker registered) when there
    /// is nothing to write. Give the buffer back with `give_buffer` once written.
    pub fn take(&mut self, waker: &Waker, now: u64) -> Option<(Vec<u8>, usize)> {
        debug_assert_eq!(
            self.taken, 0,
            "take_into (HTTP/2) and take (HTTP/1.1) mixed"
        );
        if self.pending() == 0 {
            if self.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
                self.waker = Some(waker.clone());
            }
            return None;
        }
        self.last_drain = now;
        let mut buf = std::mem::take(&mut self.out);
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
        Some((buf, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames taken from a backlog, while more bytes arrive, come out whole and in order, and
    /// the buffer never holds more than the backlog plus what was taken since the last move.
    #[test]
    fn take_into_hands_out_every_byte_once_in_order() {
        let io = StreamIo::new(false, 1 << 20, 0);
        let mut io = io.borrow_mut();
        let waker = Waker::noop();
        let mut pushed = Vec::new();
        let mut got = Vec::new();
        let mut x = 1u32;
        for round in 0..200u32 {
            let chunk: Vec<u8> = (0..(round % 7 + 1) * 300)
                .map(|i| (i ^ round) as u8)
                .collect();
            assert!(io.push(&chunk, 0));
            pushed.extend_from_slice(&chunk);
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let frames = x % 4;
            for _ in 0..frames {
                let before = got.len();
                let n = io.take_into(1000, &mut got, waker, 0);
                assert_eq!(got.len() - before, n);
                assert!(io.out.len() <= 2 * (io.pending() + 1000));
            }
            assert_eq!(io.pending(), pushed.len() - got.len());
        }
        while io.take_into(16_384, &mut got, waker, 0) > 0 {}
        assert_eq!(got, pushed);
        assert_eq!(io.pending(), 0);
        assert_eq!(
            io.out.capacity(),
            0,
            "the drained buffer went back to the pool"
        );
    }
}
