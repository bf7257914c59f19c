//! Token expiry of streams: a hashed timer wheel with one-second slots, so scheduling and
//! firing cost O(1) per stream however many there are (100,000 streams with staggered
//! expiries cost one bucket visit per second). Entries are (deadline, stream); a stream whose
//! schedule changed (re-authorization) leaves its old entry behind, recognised and dropped when
//! it fires.

use super::message::StreamKey;

const SLOTS: usize = 4096;

pub struct Wheel {
    buckets: Vec<Vec<(i64, StreamKey)>>,
    /// The last second whose bucket was processed.
    cursor: Option<i64>,
}

impl Default for Wheel {
    fn default() -> Self {
        Self {
            buckets: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: None,
        }
    }
}

impl Wheel {
    pub fn schedule(&mut self, deadline: i64, stream: StreamKey) {
        // A deadline already due (or due this second) goes in the next bucket visited, not in
        // one the cursor has passed (it would wait a whole turn of the wheel).
        let at = match self.cursor {
            Some(c) if deadline <= c => c + 1,
            _ => deadline,
        };
        let slot = at.rem_euclid(SLOTS as i64) as usize;
        self.buckets[slot].push((deadline, stream));
    }

    /// Moves every entry due at or before `now` into `due`.
    pub fn advance(&mut self, now: i64, due: &mut Vec<(i64, StreamKey)>) {
        let start = match self.cursor {
            Some(c) if c < now => c + 1,
            Some(_) => return,
            // First call: look one rotation back so nothing scheduled before is missed.
            None => now - SLOTS as i64 + 1,
        };
        // After a long pause visit each bucket once, not once per missed second.
        let start = start.max(now - SLOTS as i64 + 1);
        for second in start..=now {
            let bucket = &mut self.buckets[second.rem_euclid(SLOTS as i64) as usize];
            let mut i = 0;
            while i < bucket.len() {
                if bucket[i].0 <= now {
                    due.push(bucket.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.cursor = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(slot: usize) -> StreamKey {
        StreamKey {
            slot,
            generation: 1,
        }
    }

    #[test]
    fn fires_at_the_deadline_and_not_before() {
        let mut w = Wheel::default();
        w.schedule(1_000, key(1));
        w.schedule(1_000 + SLOTS as i64, key(2)); // same bucket, next rotation
        w.schedule(1_002, key(3));
        let mut due = Vec::new();
        w.advance(999, &mut due);
        assert!(due.is_empty());
        w.advance(1_001, &mut due);
        assert_eq!(due, [(1_000, key(1))]);
        due.clear();
        w.advance(1_010, &mut due);
        assert_eq!(due, [(1_002, key(3))]);
        due.clear();
        w.advance(1_000 + SLOTS as i64, &mut due);
        assert_eq!(due, [(1_000 + SLOTS as i64, key(2))]);
    }

    #[test]
    fn deadlines_already_due_fire_at_the_next_advance() {
        let mut w = Wheel::default();
        let mut due = Vec::new();
        w.advance(2_000, &mut due);
        w.schedule(1_990, key(1)); // in the past
        w.schedule(2_000, key(2)); // this very second, already processed
        w.advance(2_001, &mut due);
        due.sort_by_key(|d| d.0);
        assert_eq!(due, [(1_990, key(1)), (2_000, key(2))]);
    }
}
