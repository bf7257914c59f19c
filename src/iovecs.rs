//! A list of iovecs being written with `writev`: the iovecs of the bytes not yet written and
//! how many bytes those are. The HTTP/1.1 gather of live bytes and the HTTP/2 batch of frames
//! both write through one; who owns the bytes the iovecs point into is theirs to keep alive.

#[derive(Default)]
pub struct IoVecs {
    iovecs: Vec<libc::iovec>,
    /// First iovec not yet fully written.
    first: usize,
    /// Bytes not yet written.
    total: usize,
}

impl IoVecs {
    /// Empties the list, keeping its capacity.
    pub fn clear(&mut self) {
        self.iovecs.clear();
        self.first = 0;
        self.total = 0;
    }

    /// Appends `len` bytes at `ptr` (nothing when `len` is 0).
    pub fn push(&mut self, ptr: *const u8, len: usize) {
        if len > 0 {
            self.iovecs.push(libc::iovec {
                iov_base: ptr as *mut libc::c_void,
                iov_len: len,
            });
            self.total += len;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.iovecs.len()
    }

    /// Bytes not yet written.
    pub fn remaining(&self) -> usize {
        self.total
    }

    /// Marks `n` more bytes written; returns whether everything is.
    pub fn advance(&mut self, mut n: usize) -> bool {
        self.total -= n.min(self.total);
        while n > 0 && self.first < self.iovecs.len() {
            let v = &mut self.iovecs[self.first];
            if n < v.iov_len {
                // SAFETY: `n` is less than the iovec's length, so the pointer stays inside the
                // bytes it describes.
                v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) } as *mut libc::c_void;
                v.iov_len -= n;
                return false;
            }
            n -= v.iov_len;
            self.first += 1;
        }
        self.total == 0
    }

    /// The iovecs of the bytes not yet written (for `IoVecBuf`).
    pub fn unwritten_ptr(&self) -> *const libc::iovec {
        // SAFETY: `first <= iovecs.len()`.
        unsafe { self.iovecs.as_ptr().add(self.first) }
    }

    pub fn unwritten_len(&self) -> usize {
        self.iovecs.len() - self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_walks_partial_and_whole_iovecs() {
        let a = *b"abc";
        let b = *b"de";
        let mut v = IoVecs::default();
        v.push(a.as_ptr(), 3);
        v.push(b.as_ptr(), 0);
        v.push(b.as_ptr(), 2);
        assert_eq!((v.len(), v.remaining()), (2, 5));
        assert!(!v.advance(2));
        assert_eq!(v.unwritten_len(), 2);
        assert!(!v.advance(2));
        assert_eq!(v.unwritten_len(), 1);
        assert!(v.advance(1));
        assert_eq!(v.unwritten_len(), 0);
    }
}
