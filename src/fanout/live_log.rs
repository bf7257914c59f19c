//! A live group's shared log of encoded events: encode once, write many.
//!
//! Every live stream of a group (same filters, same id template) receives the same bytes, so the
//! fan-out encodes each record once into the group's log and every live stream keeps only a
//! byte cursor into it. A stream's writer takes the bytes between its cursor and the head
//! straight from the log's blocks (one `writev` of slices, on HTTP/1.1 and HTTP/2 alike): the bytes exist once per worker however many streams read them, and a burst costs
//! the fan-out O(records + streams), not O(records x streams).
//!
//! A block holds the events one fetched chunk contributed to the group, with the end of each
//! event and the Kafka positions it leaves behind, so a cursor that sits on an event boundary
//! maps back to the stream's id (what a stream that leaves the live group continues from).
//! Blocks are dropped from the front once every live cursor has passed them; a stream that
//! falls further behind than the group's retention leaves the group first (the fan-out demotes
//! it to catching up from the record cache). Block buffers are recycled, so steady streaming
//! allocates nothing.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Blocks kept for reuse per log.
const SPARE_BLOCKS: usize = 8;
/// Largest buffer a recycled block keeps.
const SPARE_MAX_CAPACITY: usize = 1 << 20;

thread_local! {
    /// Bytes held by every live log of this worker (a worker is one thread).
    static LOG_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Bytes the live logs of the calling worker hold.
pub fn worker_log_bytes() -> usize {
    LOG_BYTES.with(Cell::get)
}

fn add_log_bytes(delta: isize) {
    LOG_BYTES.with(|b| b.set(b.get().saturating_add_signed(delta)));
}

/// One event's end within its block and the record offset it carries.
#[derive(Debug, Clone, Copy)]
struct Mark {
    end: u32,
    offset: i64,
}

/// The events one chunk contributed to a group, immutable once appended.
#[derive(Debug, Default)]
pub struct Block {
    /// Byte position of `data[0]` in the log.
    start: u64,
    data: Vec<u8>,
    marks: Vec<Mark>,
    /// The ids' positions (partition, next offset) before the block's first event.
    base: Vec<(i32, i64)>,
    /// Index in `base` of the partition the block's records come from.
    part: usize,
}

impl Block {
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// The end (log position) of the last whole event that ends at or before `limit`, or of the
    /// first event after `from` when even that one is longer (a take is never empty).
    fn boundary_at_or_before(&self, from: u64, limit: u64) -> u64 {
        if limit >= self.end() {
            return self.end();
        }
        let rel = (limit - self.start) as u32;
        let i = self.marks.partition_point(|m| m.end <= rel);
        if i > 0 {
            let end = self.start + u64::from(self.marks[i - 1].end);
            if end > from {
                return end;
            }
        }
        // Not even one event fits: take the first one that ends after `from`.
        let rel_from = (from - self.start) as u32;
        let j = self.marks.partition_point(|m| m.end <= rel_from);
        self.marks
            .get(j)
            .map_or(self.end(), |m| self.start + u64::from(m.end))
    }

    /// Writes the positions of a cursor at `pos` (an event boundary inside or at the end of
    /// this block) into `out`.
    fn positions_at(&self, pos: u64, out: &mut Vec<(i32, i64)>) {
        out.clear();
        out.extend_from_slice(&self.base);
        let rel = (pos - self.start) as u32;
        let written = self.marks.partition_point(|m| m.end <= rel);
        if written > 0 {
            out[self.part].1 = self.marks[written - 1].offset + 1;
        }
    }
}

/// Where an appended chunk's events are being written until `LiveLog::commit`.
pub struct Open(Block);

impl Open {
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.0.data
    }

    /// Marks the end of the event just encoded into `buffer` (the record at `offset`).
    pub fn event_written(&mut self, offset: i64) {
        let end = self.0.data.len() as u32;
        self.0.marks.push(Mark { end, offset });
    }

    pub fn is_empty(&self) -> bool {
        self.0.marks.is_empty()
    }
}

#[derive(Default)]
pub struct LiveLog {
    blocks: VecDeque<Rc<Block>>,
    /// Log position after the last appended byte.
    head: u64,
    spare: Vec<Block>,
}

pub type SharedLog = Rc<RefCell<LiveLog>>;

impl LiveLog {
    pub fn new_shared() -> SharedLog {
        Rc::new(RefCell::new(LiveLog::default()))
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    /// Log position of the oldest byte still held.
    pub fn base(&self) -> u64 {
        self.blocks.front().map_or(self.head, |b| b.start)
    }

    pub fn held(&self) -> usize {
        (self.head - self.base()) as usize
    }

    /// Starts a block for a chunk of partition index `part`; `base` are the ids' positions
    /// before its first record.
    pub fn open(&mut self, base: &[(i32, i64)], part: usize) -> Open {
        let mut b = self.spare.pop().unwrap_or_default();
        b.start = self.head;
        b.data.clear();
        b.marks.clear();
        b.base.clear();
        b.base.extend_from_slice(base);
        b.part = part;
        Open(b)
    }

    /// Appends an opened block (an empty one is recycled).
    pub fn commit(&mut self, open: Open) {
        let block = open.0;
        if block.marks.is_empty() {
            self.recycle(block);
            return;
        }
        debug_assert_eq!(block.start, self.head);
        self.head = block.end();
        add_log_bytes(block.data.len() as isize);
        self.blocks.push_back(Rc::new(block));
    }

    fn recycle(&mut self, block: Block) {
        if self.spare.len() < SPARE_BLOCKS && block.data.capacity() <= SPARE_MAX_CAPACITY {
            self.spare.push(block);
        }
    }

    /// Drops the blocks that end at or before `pos` (every live cursor is past them).
    pub fn release_before(&mut self, pos: u64) {
        while self.blocks.front().is_some_and(|b| b.end() <= pos) {
            let Some(b) = self.blocks.pop_front() else {
                break;
            };
            add_log_bytes(-(b.data.len() as isize));
            // A writer may still hold the block for a write in flight; it is freed after that.
            if let Ok(block) = Rc::try_unwrap(b) {
                self.recycle(block);
            }
        }
    }

    fn block_index(&self, pos: u64) -> Option<usize> {
        let i = self.blocks.partition_point(|b| b.end() <= pos);
        (i < self.blocks.len()).then_some(i)
    }

    /// The ids' positions of a cursor at `pos` (an event boundary), or `None` when `pos` is the
    /// head (the cursor is then at the group's current progress).
    pub fn positions_at(&self, pos: u64, out: &mut Vec<(i32, i64)>) -> bool {
        match self.block_index(pos) {
            Some(i) => {
                self.blocks[i].positions_at(pos, out);
                true
            }
            None => false,
        }
    }

    /// The blocks and byte ranges of a take from `from` of at most `max` bytes (whole events;
    /// at least one event when any is pending), pushed onto `parts`; returns the new cursor.
    pub fn take(&self, from: u64, max: usize, parts: &mut Vec<Slice>) -> u64 {
        debug_assert!(from >= self.base(), "cursor {from} below the log base");
        let limit = from.saturating_add(max as u64).min(self.head);
        let mut pos = from;
        let Some(first) = self.block_index(pos) else {
            return pos;
        };
        for b in self.blocks.range(first..) {
            if pos >= limit && pos > from {
                break;
            }
            let end = b.boundary_at_or_before(pos, limit.max(pos + 1));
            parts.push(Slice {
                block: b.clone(),
                from: (pos - b.start) as usize,
                to: (end - b.start) as usize,
            });
            pos = end;
            if end < b.end() {
                break;
            }
        }
        pos
    }

    /// Slices of up to `max` bytes from `from`, cutting anywhere (HTTP/2 frames), pushed onto
    /// `parts`; returns the new position and the rest of the event the cut fell in, if it did
    /// (an event lies within one block, so the rest is one slice).
    pub fn cut(
        &self,
        from: u64,
        max: usize,
        parts: &mut impl FnMut(Slice),
    ) -> (u64, Option<Slice>) {
        let limit = from.saturating_add(max as u64).min(self.head);
        let mut pos = from;
        let Some(first) = self.block_index(pos) else {
            return (pos, None);
        };
        for b in self.blocks.range(first..) {
            if pos >= limit {
                break;
            }
            let end = limit.min(b.end());
            parts(Slice {
                block: b.clone(),
                from: (pos - b.start) as usize,
                to: (end - b.start) as usize,
            });
            pos = end;
        }
        let rest = match self.block_index(pos) {
            Some(i) if pos > self.blocks[i].start => {
                let b = &self.blocks[i];
                let event_end = b.boundary_at_or_before(pos - 1, pos);
                (event_end > pos).then(|| Slice {
                    block: b.clone(),
                    from: (pos - b.start) as usize,
                    to: (event_end - b.start) as usize,
                })
            }
            _ => None,
        };
        (pos, rest)
    }
}

impl Drop for LiveLog {
    fn drop(&mut self) {
        add_log_bytes(-(self.held() as isize));
    }
}

/// A range of one block, kept alive for a write in flight.
pub struct Slice {
    pub block: Rc<Block>,
    pub from: usize,
    pub to: usize,
}

impl Slice {
    pub fn bytes(&self) -> &[u8] {
        &self.block.data[self.from..self.to]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(log: &mut LiveLog, part: usize, base: &[(i32, i64)], events: &[(i64, &[u8])]) {
        let mut open = log.open(base, part);
        for (offset, bytes) in events {
            open.buffer().extend_from_slice(bytes);
            open.event_written(*offset);
        }
        log.commit(open);
    }

    #[test]
    fn takes_whole_events_and_maps_cursors_to_positions() {
        let mut log = LiveLog::default();
        append(
            &mut log,
            0,
            &[(0, 10), (1, 5)],
            &[(10, b"aaaa"), (11, b"bbbbbb")],
        );
        append(&mut log, 1, &[(0, 12), (1, 5)], &[(5, b"cc")]);
        assert_eq!(log.head(), 12);

        let mut parts = Vec::new();
        // 5 bytes allow only the first event.
        assert_eq!(log.take(0, 5, &mut parts), 4);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].bytes(), b"aaaa");
        parts.clear();
        // 1 byte still takes one whole event.
        assert_eq!(log.take(4, 1, &mut parts), 10);
        assert_eq!(parts[0].bytes(), b"bbbbbb");
        parts.clear();
        assert_eq!(log.take(0, 100, &mut parts), 12);
        let all: Vec<u8> = parts.iter().flat_map(|s| s.bytes().to_vec()).collect();
        assert_eq!(all, b"aaaabbbbbbcc");

        let mut at = Vec::new();
        assert!(log.positions_at(0, &mut at));
        assert_eq!(at, [(0, 10), (1, 5)]);
        assert!(log.positions_at(4, &mut at));
        assert_eq!(at, [(0, 11), (1, 5)]);
        assert!(log.positions_at(10, &mut at));
        assert_eq!(at, [(0, 12), (1, 5)]);
        assert!(!log.positions_at(12, &mut at));
    }

    #[test]
    fn cut_anywhere_and_reports_the_rest_of_the_event() {
        let mut log = LiveLog::default();
        append(&mut log, 0, &[(0, 0)], &[(0, b"aaaa"), (1, b"bbbb")]);
        append(&mut log, 0, &[(0, 2)], &[(2, b"cc")]);
        let mut out = Vec::new();
        let (pos, rest) = log.cut(0, 6, &mut |s| out.extend_from_slice(s.bytes()));
        assert_eq!((pos, out.as_slice()), (6, &b"aaaabb"[..]));
        assert_eq!(rest.map(|r| r.bytes().to_vec()), Some(b"bb".to_vec()));
        out.clear();
        let (pos, rest) = log.cut(0, 4, &mut |s| out.extend_from_slice(s.bytes()));
        assert_eq!((pos, rest.is_none()), (4, true));
        out.clear();
        // Across blocks, ending on the head.
        let (pos, rest) = log.cut(6, 100, &mut |s| out.extend_from_slice(s.bytes()));
        assert_eq!(
            (pos, out.as_slice(), rest.is_none()),
            (10, &b"bbcc"[..], true)
        );
    }

    #[test]
    fn released_blocks_are_recycled_and_accounted() {
        let before = worker_log_bytes();
        let mut log = LiveLog::default();
        append(&mut log, 0, &[(0, 0)], &[(0, b"aaaa")]);
        append(&mut log, 0, &[(0, 1)], &[(1, b"bbbb")]);
        assert_eq!(worker_log_bytes() - before, 8);
        log.release_before(4);
        assert_eq!(log.base(), 4);
        assert_eq!(worker_log_bytes() - before, 4);
        assert_eq!(log.spare.len(), 1);
        drop(log);
        assert_eq!(worker_log_bytes(), before);
    }
}
