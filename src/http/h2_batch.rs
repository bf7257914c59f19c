//! The bytes of one HTTP/2 write, in wire order: owned bytes (control frames, frame headers,
//! the rare copied piece) and borrowed pieces (slices of a group's shared live log, a stream's
//! whole private buffer, a static file's body), written with one `writev`.
//!
//! Live event bytes exist once per worker in the group's log; a DATA frame's payload is an
//! iovec pointing into that log, not a copy in a per-connection buffer. So the memory an
//! HTTP/2 connection holds while a write is in flight is the frame headers and a few iovecs
//! per stream, whatever the flow-control windows allow.

use bytes::Bytes;

use crate::fanout::live_log::Slice;
use crate::fanout::stream_io::give_buffer;
use crate::iovecs::IoVecs;

/// Owned bytes a batch keeps between writes; a larger buffer (after a big control burst) is
/// freed rather than kept for the connection's life.
const OWN_KEEP_CAPACITY: usize = 64 * 1024;

/// A piece of bytes the batch holds without copying.
pub enum Borrowed {
    /// Bytes of a live log's block (the block stays alive while the write is in flight).
    Log(Slice),
    /// A stream's private buffer taken whole; it goes back to the worker's pool once written.
    Buffer(Vec<u8>),
    /// Part of a file body (or another shared immutable buffer).
    Shared(Bytes),
}

impl Borrowed {
    fn bytes(&self) -> &[u8] {
        match self {
            Borrowed::Log(s) => s.bytes(),
            Borrowed::Buffer(b) => b,
            Borrowed::Shared(b) => b,
        }
    }
}

/// A borrowed piece and where it goes: after the first `at` owned bytes.
struct Piece {
    at: usize,
    what: Borrowed,
}

#[derive(Default)]
pub struct Batch {
    own: Vec<u8>,
    pieces: Vec<Piece>,
    /// The iovecs of the bytes not yet written (after `seal`).
    iovecs: IoVecs,
    sealed: bool,
}

impl Batch {
    /// The owned bytes, for appending (frame headers, control frames).
    pub fn own(&mut self) -> &mut Vec<u8> {
        debug_assert!(!self.sealed, "a sealed batch is being written");
        &mut self.own
    }

    /// Appends a borrowed piece after the owned bytes appended so far.
    pub fn push(&mut self, what: Borrowed) {
        debug_assert!(!self.sealed, "a sealed batch is being written");
        if what.bytes().is_empty() {
            return;
        }
        self.pieces.push(Piece {
            at: self.own.len(),
            what,
        });
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.own.len()
            + self
                .pieces
                .iter()
                .map(|p| p.what.bytes().len())
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.pieces.is_empty()
    }

    /// Builds the iovecs; the batch is not appended to again until `clear`.
    pub fn seal(&mut self) {
        let iovecs = &mut self.iovecs;
        iovecs.clear();
        let mut own_from = 0;
        for p in &self.pieces {
            // `own_from <= p.at <= own.len()`: pieces are pushed in order of `at`, each at the
            // owned length of its time, and owned bytes are only appended.
            iovecs.push(self.own[own_from..p.at].as_ptr(), p.at - own_from);
            let b = p.what.bytes();
            iovecs.push(b.as_ptr(), b.len());
            own_from = p.at;
        }
        iovecs.push(self.own[own_from..].as_ptr(), self.own.len() - own_from);
        self.sealed = true;
    }

    /// Marks `n` more bytes written; returns whether everything is.
    pub fn advance(&mut self, n: usize) -> bool {
        self.iovecs.advance(n)
    }

    /// Empties the batch after a write: blocks are released, private buffers go back to the
    /// pool; capacity is kept for the next write.
    pub fn clear(&mut self) {
        for p in self.pieces.drain(..) {
            if let Borrowed::Buffer(b) = p.what {
                give_buffer(b);
            }
        }
        self.own.clear();
        if self.own.capacity() > OWN_KEEP_CAPACITY {
            self.own = Vec::new();
        }
        self.iovecs.clear();
        self.sealed = false;
    }

    /// The bytes in order (tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut own_from = 0;
        for p in &self.pieces {
            v.extend_from_slice(&self.own[own_from..p.at]);
            v.extend_from_slice(p.what.bytes());
            own_from = p.at;
        }
        v.extend_from_slice(&self.own[own_from..]);
        v
    }
}

// SAFETY: after `seal`, the iovecs point into `own` (not touched until `clear`) and into the
// heap bytes of the pieces (a block's data, a buffer, a `Bytes`), which do not move when the
// batch moves and live as long as the batch holds them; `IoVecs` hands out only the iovecs
// of the bytes not yet written.
unsafe impl monoio::buf::IoVecBuf for Batch {
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

    #[test]
    fn pieces_interleave_with_owned_bytes_in_order() {
        let mut b = Batch::default();
        b.own().extend_from_slice(b"ab");
        b.push(Borrowed::Shared(Bytes::from_static(b"CD")));
        b.push(Borrowed::Buffer(b"EF".to_vec()));
        b.own().extend_from_slice(b"gh");
        b.push(Borrowed::Shared(Bytes::new()));
        assert_eq!(b.to_vec(), b"abCDEFgh");
        assert_eq!(b.len(), 8);
        b.seal();
        assert_eq!(b.iovecs.len(), 4);
        assert!(!b.advance(3));
        assert!(!b.advance(4));
        assert!(b.advance(1));
        b.clear();
        assert!(b.is_empty());
    }
}
