//! Flow-control windows (RFC 9113 §6.9).

use super::frame::MAX_WINDOW_SIZE;

/// A flow-control window: at most 2^31-1; below zero only after SETTINGS_INITIAL_WINDOW_SIZE
/// shrank it (§6.9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window(i64);

/// A window change that would exceed 2^31-1, or a receive larger than the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowError;

impl Window {
    pub fn new(size: u32) -> Window {
        Window(i64::from(size.min(MAX_WINDOW_SIZE)))
    }

    /// Current size, possibly negative.
    pub fn size(self) -> i64 {
        self.0
    }

    /// Octets that may be sent now.
    pub fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(0)
    }

    /// WINDOW_UPDATE: adds `increment`, refusing to pass 2^31-1.
    pub fn increase(&mut self, increment: u32) -> Result<(), FlowError> {
        self.adjust(i64::from(increment))
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE change: adds `delta` (may be negative), refusing to pass
    /// 2^31-1.
    pub fn adjust(&mut self, delta: i64) -> Result<(), FlowError> {
        let next = self.0 + delta;
        if next > i64::from(MAX_WINDOW_SIZE) {
            return Err(FlowError);
        }
        self.0 = next;
        Ok(())
    }

    /// Receive side: takes `len` octets the peer sent, refusing more than the window holds.
    pub fn consume(&mut self, len: usize) -> Result<(), FlowError> {
        match i64::try_from(len) {
            Ok(len) if len <= self.0 => {
                self.0 -= len;
                Ok(())
            }
            _ => Err(FlowError),
        }
    }

    /// Send side: takes `len` octets the caller checked against [`Window::available`].
    pub fn debit(&mut self, len: usize) {
        debug_assert!(len <= self.available(), "debit over the window");
        self.0 -= i64::try_from(len).unwrap_or(i64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let mut w = Window::new(65_535);
        assert_eq!(w.available(), 65_535);
        assert_eq!(w.increase(MAX_WINDOW_SIZE - 65_535), Ok(()));
        assert_eq!(w.size(), i64::from(MAX_WINDOW_SIZE));
        assert_eq!(w.increase(1), Err(FlowError));
        assert_eq!(w.size(), i64::from(MAX_WINDOW_SIZE));
        assert_eq!(Window::new(u32::MAX).size(), i64::from(MAX_WINDOW_SIZE));
    }

    #[test]
    fn negative_after_settings() {
        let mut w = Window::new(3);
        w.debit(3);
        assert_eq!(w.adjust(-1), Ok(()));
        assert_eq!((w.size(), w.available()), (-1, 0));
        assert_eq!(w.increase(2), Ok(()));
        assert_eq!(w.available(), 1);
        let mut low = Window::new(0);
        assert_eq!(low.adjust(-i64::from(MAX_WINDOW_SIZE)), Ok(()));
        assert_eq!(low.adjust(2 * i64::from(MAX_WINDOW_SIZE)), Ok(()));
        assert_eq!(low.adjust(1), Err(FlowError));
    }

    #[test]
    fn consume() {
        let mut w = Window::new(10);
        assert_eq!(w.consume(4), Ok(()));
        assert_eq!(w.consume(7), Err(FlowError));
        assert_eq!(w.consume(6), Ok(()));
        assert_eq!(w.consume(0), Ok(()));
        assert_eq!(w.consume(1), Err(FlowError));
        assert_eq!(w.consume(usize::MAX), Err(FlowError));
    }
}
