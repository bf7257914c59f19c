//! The state a stream's writer (its HTTP connection task) shares with the fan-out: the bytes
//! waiting to be written and why the stream ended. Single-threaded (`Rc<RefCell<_>>`), no lock.
//!
//! The fan-out appends encoded events to `out`; the writer takes the whole buffer at each wake-up
//! and writes it in one call, so events that pile up while a write is in flight are coalesced.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Waker;

use proto::http1::CHUNK_PREFIX_MAX;

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
}

pub struct StreamIo {
    /// Pending bytes. With chunked framing the first `CHUNK_PREFIX_MAX` bytes are reserved for the
    /// chunk-size line, filled in by the writer.
    out: Vec<u8>,
    chunked: bool,
    budget: usize,
    pub end: Option<EndReason>,
    waker: Option<Waker>,
    /// Coarse tick (seconds) of the last append; the heartbeat sweep reads it.
    pub last_activity: u64,
}

pub type SharedIo = Rc<RefCell<StreamIo>>;

impl StreamIo {
    pub fn new(chunked: bool, budget: usize, now: u64) -> SharedIo {
        let mut io = StreamIo {
            out: Vec::new(),
            chunked,
            budget,
            end: None,
            waker: None,
            last_activity: now,
        };
        io.reset_prefix();
        Rc::new(RefCell::new(io))
    }

    fn prefix_len(&self) -> usize {
        if self.chunked {
            CHUNK_PREFIX_MAX
        } else {
            0
        }
    }

    fn reset_prefix(&mut self) {
        self.out.clear();
        if self.chunked {
            self.out.extend_from_slice(&[0; CHUNK_PREFIX_MAX]);
        }
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.prefix_len()
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Appends encoded event bytes. Returns false (and ends the stream) when they do not fit the
    /// budget: a client that far behind is cut and resumes by its last id.
    pub fn push(&mut self, bytes: &[u8], now: u64) -> bool {
        if self.end.is_some() {
            return false;
        }
        if self.pending() + bytes.len() > self.budget {
            self.finish(EndReason::Budget);
            return false;
        }
        self.out.extend_from_slice(bytes);
        self.last_activity = now;
        true
    }

    /// Lets the encoder write straight into the pending buffer (then call `commit`).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
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

    /// Writer side: swaps the pending bytes with `spare` (an empty buffer whose capacity is
    /// reused) when there is something to write; otherwise registers the writer's waker.
    /// Returns the chunk-size prefix start within the taken buffer (0 when not chunked).
    pub fn take(&mut self, spare: &mut Vec<u8>, waker: &Waker) -> Option<usize> {
        if self.pending() == 0 {
            if self.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
                self.waker = Some(waker.clone());
            }
            return None;
        }
        std::mem::swap(&mut self.out, spare);
        let start = if self.chunked {
            let len = spare.len() - CHUNK_PREFIX_MAX;
            let mut prefix = [0u8; CHUNK_PREFIX_MAX];
            let start = proto::http1::chunk_prefix(len, &mut prefix);
            spare[..CHUNK_PREFIX_MAX].copy_from_slice(&prefix);
            spare.extend_from_slice(b"\r\n");
            start
        } else {
            0
        };
        // `out` now holds the old spare: make it a fresh pending buffer.
        self.reset_prefix();
        Some(start)
    }
}
