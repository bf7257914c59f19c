//! Bounds of a partition's cache of recent chunks, shared by the owner's cache and every
//! worker's mirror of it: total bytes (the newest chunk is always kept, even when larger) and
//! age since fetch.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::kafka::chunk::Chunk;

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub bytes: usize,
    /// Seconds a chunk stays after it was fetched; 0 = no age bound.
    pub age_secs: u64,
}

/// Seconds since the process started, on a monotonic clock shared by all workers.
pub fn clock_secs() -> u64 {
    crate::clock::monotonic_secs()
}

/// Drops the oldest chunks beyond the bounds; returns the bytes released.
pub fn evict(chunks: &mut VecDeque<Arc<Chunk>>, held: &mut usize, bounds: Bounds) -> usize {
    let now = clock_secs();
    let mut released = 0;
    while let Some(front) = chunks.front() {
        let too_big = *held > bounds.bytes && chunks.len() > 1;
        let too_old = bounds.age_secs > 0 && now >= front.fetched_at + bounds.age_secs;
        if !(too_big || too_old) {
            break;
        }
        if let Some(c) = chunks.pop_front() {
            *held -= c.size;
            released += c.size;
        }
    }
    released
}
