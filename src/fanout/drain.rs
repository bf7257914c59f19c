//! The fan-out side of a drain (SIGTERM): streams are ended a few at a time, each with a
//! `retry:` line (a jittered delay) after the last whole event it was given, then its clean end
//! (chunked terminator, close, or END_STREAM), so that clients resume by id elsewhere without
//! all coming back in the same instant. The pacing lives in `runtime::drain`.

use super::hub::Hub;
use super::stream_io::EndReason;
use crate::retry::{jittered, retry_line};

impl Hub {
    /// Ends up to `max` streams that have not ended yet, each after a `retry:` line with a delay
    /// jittered around `retry_base_ms`; returns how many are still open and not ended.
    pub fn end_for_drain(&mut self, max: usize, retry_base_ms: u64) -> usize {
        let mut ending = Vec::new();
        let mut left = 0;
        for (slot, s) in self.streams.iter() {
            if s.io.borrow().end.is_some() {
                continue;
            }
            if ending.len() == max {
                left += 1;
                continue;
            }
            let mut line = [0u8; 32];
            let n = retry_line(jittered(retry_base_ms), &mut line);
            // The stream leaves its live group (what it was not yet given, it resumes by id
            // elsewhere); its private bytes hold whole events, so the line starts at an event
            // boundary and is written after them.
            let mut io = s.io.borrow_mut();
            io.leave_live();
            io.push_final(&line[..n]);
            io.finish(EndReason::Shutdown);
            ending.push((slot, s.view.clone(), s.group));
        }
        for (slot, vkey, group) in ending {
            if let Some(s) = self.streams.get_mut(slot) {
                s.live = false;
            }
            if let Some(view) = self.views.get_mut(&vkey) {
                view.detach(slot, group);
            }
        }
        left
    }

    /// Streams not yet ended.
    pub fn open_not_ended(&self) -> usize {
        self.streams
            .iter()
            .filter(|(_, s)| s.io.borrow().end.is_none())
            .count()
    }
}
