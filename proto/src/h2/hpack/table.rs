//! The static table (RFC 7541 Appendix A) and the bounded dynamic table (§2.3.2, §4).

use std::collections::VecDeque;

/// RFC 7541 Appendix A; index `i` of the RFC is `STATIC_TABLE[i - 1]`.
pub static STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Static table entry at RFC index `index` (1..=61).
pub fn static_entry(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    let (name, value) = STATIC_TABLE.get(index.checked_sub(1)?)?;
    Some((name.as_bytes(), value.as_bytes()))
}

/// Size an entry counts for (§4.1).
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Offset of the name in the arena; the value follows it.
    start: usize,
    name_len: usize,
    value_len: usize,
}

/// The dynamic table, all memory allocated up front for `capacity` (the largest size our
/// SETTINGS allow): entries' octets live in an arena of twice that, appended in insertion
/// order and compacted when the end is reached, so every entry stays one contiguous slice.
#[derive(Debug)]
pub(crate) struct DynamicTable {
    arena: Vec<u8>,
    arena_cap: usize,
    /// Oldest at the front, newest (index 1) at the back.
    entries: VecDeque<Entry>,
    /// Sum of entry sizes.
    size: usize,
    /// Current maximum, set by size updates; at most `capacity`.
    max_size: usize,
    capacity: usize,
}

impl DynamicTable {
    pub fn new(capacity: usize) -> DynamicTable {
        DynamicTable {
            arena: Vec::with_capacity(2 * capacity),
            arena_cap: 2 * capacity,
            entries: VecDeque::with_capacity(capacity / 32 + 1),
            size: 0,
            max_size: capacity,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Largest maximum size the table's memory allows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entry at dynamic index `index` (1 = newest).
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let i = self.entries.len().checked_sub(index)?;
        let e = self.entries.get(i)?;
        let name_end = e.start + e.name_len;
        Some((
            &self.arena[e.start..name_end],
            &self.arena[name_end..name_end + e.value_len],
        ))
    }

    /// Sets the maximum size (at most `capacity`), evicting as needed.
    pub fn set_max_size(&mut self, max_size: usize) {
        debug_assert!(max_size <= self.capacity);
        self.max_size = max_size.min(self.capacity);
        self.evict_to(self.max_size);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_front() {
                Some(e) => self.size -= e.name_len + e.value_len + 32,
                None => break,
            }
        }
        if self.entries.is_empty() {
            self.arena.clear();
        }
    }

    /// Adds an entry, evicting the oldest ones to make room; an entry larger than the maximum
    /// size empties the table and is not added (§4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        let len = name.len() + value.len();
        if self.arena.len() + len > self.arena_cap {
            self.compact();
        }
        // Live octets are at most max_size - 32 per entry, and so is the new entry: after
        // compaction both fit in 2 * capacity, without the arena ever reallocating.
        debug_assert!(self.arena.len() + len <= self.arena_cap);
        let start = self.arena.len();
        self.arena.extend_from_slice(name);
        self.arena.extend_from_slice(value);
        self.entries.push_back(Entry {
            start,
            name_len: name.len(),
            value_len: value.len(),
        });
        self.size += size;
    }

    /// Moves the live octets to the start of the arena.
    fn compact(&mut self) {
        let Some(first) = self.entries.front().map(|e| e.start) else {
            self.arena.clear();
            return;
        };
        self.arena.copy_within(first.., 0);
        self.arena.truncate(self.arena.len() - first);
        for e in &mut self.entries {
            e.start -= first;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(t: &DynamicTable) -> Vec<(String, String)> {
        (1..=t.len())
            .map(|i| {
                let (n, v) = t.get(i).unwrap();
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn static_table() {
        assert_eq!(static_entry(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(static_entry(8), Some((&b":status"[..], &b"200"[..])));
        assert_eq!(static_entry(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(static_entry(0), None);
        assert_eq!(static_entry(62), None);
    }

    #[test]
    fn eviction_order_and_sizes() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"2"); // 34
        assert_eq!(t.size(), 68);
        assert_eq!(
            entries(&t),
            [("b".into(), "2".into()), ("a".into(), "1".into())]
        );
        t.insert(b"cc", b"33"); // 36: evicts "a"
        assert_eq!(t.size(), 70);
        assert_eq!(
            entries(&t),
            [("cc".into(), "33".into()), ("b".into(), "2".into())]
        );
        assert_eq!(t.get(3), None);
        assert_eq!(t.get(0), None);
        // Larger than the maximum: empties the table.
        t.insert(&[b'x'; 60], b"123456789");
        assert_eq!((t.len(), t.size()), (0, 0));
        // Exactly the maximum fits.
        t.insert(&[b'x'; 60], b"yyyyyyyy");
        assert_eq!((t.len(), t.size()), (1, 100));
        t.set_max_size(50);
        assert_eq!((t.len(), t.size(), t.max_size()), (0, 0, 50));
    }

    #[test]
    fn arena_never_reallocates() {
        let mut t = DynamicTable::new(4096);
        let cap = t.arena.capacity();
        for i in 0..10_000usize {
            let name = format!("name-{}", i % 7);
            let value = "v".repeat(i % 300);
            t.insert(name.as_bytes(), value.as_bytes());
            assert!(t.size() <= 4096);
            let (n, v) = t.get(1).unwrap();
            assert_eq!((n, v), (name.as_bytes(), value.as_bytes()));
        }
        assert_eq!(t.arena.capacity(), cap);
        // A name taken from the table itself (copied by the caller) evicting its own source.
        let mut small = DynamicTable::new(64);
        small.insert(b"k", b"v");
        let (n, v) = small.get(1).unwrap();
        let (n, v) = (n.to_vec(), [v, b"w"].concat());
        small.insert(&n, &v);
        assert_eq!(entries(&small), [("k".into(), "vw".into())]);
    }

    #[test]
    fn zero_capacity() {
        let mut t = DynamicTable::new(0);
        t.insert(b"", b"");
        assert_eq!(t.len(), 0);
    }
}
