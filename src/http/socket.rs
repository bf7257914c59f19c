//! Ending a connection's socket in both directions (to wake the task blocked on its other half)
//! while the descriptor provably still names that connection.
//!
//! A raw descriptor number outlives the socket it named: once both halves of a split stream are
//! dropped the descriptor is closed, and the kernel hands the same number to the next socket
//! any worker thread accepts. A `shutdown(2)` on a remembered number after that would cut an
//! unrelated connection. So the shutdown here borrows the write half: while it is borrowed,
//! the stream it shares with the read half cannot be dropped, and the descriptor stays open.

use std::os::fd::RawFd;

use monoio::io::{AsyncWriteRent, OwnedWriteHalf};

/// `shutdown(fd, SHUT_RDWR)`, where `fd` is the socket under `owner`'s stream. The descriptor
/// is not closed (dropping the halves does that).
pub fn shutdown_both<S: AsyncWriteRent>(_owner: &OwnedWriteHalf<S>, fd: RawFd) {
    // SAFETY: `fd` is the descriptor of the socket inside `_owner`'s stream (the callers take
    // both from the same accepted connection), and `_owner` is borrowed for this call, so that
    // stream — and with it the descriptor — is open: `fd` cannot name another connection's
    // socket. shutdown(2) only ends the directions; it takes no pointer and closes nothing.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}
