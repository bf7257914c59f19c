//! Our SETTINGS (RFC 9113 §6.5.2) and the hardening limits of a connection.

use super::frame::{self, setting, DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE};

/// The settings the server advertises and enforces. [`super::H2Conn::new`] clamps each to the
/// range noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the server has not closed; a new stream past
    /// it gets RST_STREAM(REFUSED_STREAM). Default 100.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE for request bodies, at most 2^31-1. Default 65535. With a
    /// smaller value (Zilla advertises 0) a request with a body is granted up to 65535 octets
    /// by WINDOW_UPDATE as soon as it arrives.
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: largest frame payload accepted, 2^14..=2^24-1. Default 2^14.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (sizes as in §6.5.2: name + value + 32 per field),
    /// 1 KiB..=1 MiB. Default 8192 (Zilla's). A larger request head is answered 431; header
    /// blocks longer than twice this are refused before decoding.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK decoder's dynamic table, at most 64 KiB.
    /// Default 4096.
    pub header_table_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_concurrent_streams: 100,
            initial_window_size: frame::DEFAULT_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 8192,
            header_table_size: 4096,
        }
    }
}

/// Largest accepted `header_table_size`.
pub(crate) const MAX_HEADER_TABLE_SIZE: u32 = 1 << 16;

impl Settings {
    pub(crate) fn clamped(self) -> Settings {
        Settings {
            max_concurrent_streams: self.max_concurrent_streams,
            initial_window_size: self.initial_window_size.min(MAX_WINDOW_SIZE),
            max_frame_size: self
                .max_frame_size
                .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
            max_header_list_size: self.max_header_list_size.clamp(1 << 10, 1 << 20),
            header_table_size: self.header_table_size.min(MAX_HEADER_TABLE_SIZE),
        }
    }

    /// Appends our SETTINGS frame: MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE and
    /// MAX_HEADER_LIST_SIZE always (as Zilla does), MAX_FRAME_SIZE and HEADER_TABLE_SIZE when
    /// they differ from the protocol defaults.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut params = [(0u16, 0u32); 5];
        let mut n = 0;
        let mut push = |id, value| {
            params[n] = (id, value);
            n += 1;
        };
        push(setting::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams);
        push(setting::INITIAL_WINDOW_SIZE, self.initial_window_size);
        push(setting::MAX_HEADER_LIST_SIZE, self.max_header_list_size);
        if self.max_frame_size != DEFAULT_MAX_FRAME_SIZE {
            push(setting::MAX_FRAME_SIZE, self.max_frame_size);
        }
        if self.header_table_size != 4096 {
            push(setting::HEADER_TABLE_SIZE, self.header_table_size);
        }
        frame::Settings::encode_params(&params[..n], out);
    }
}

/// Flood and abuse limits of one connection. Rates count in the `now` ticks (seconds) the
/// caller passes to [`super::H2Conn::recv`]; each budget is a token bucket holding at most
/// its burst. Exceeding any of them ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Streams the client makes the server reset (rapid reset, CVE-2023-44487): RST_STREAM
    /// from the client on a stream not yet answered, and stream errors the client causes.
    /// Default burst 200, refilled 20 per second.
    pub reset_burst: u32,
    pub resets_per_sec: u32,
    /// PING and SETTINGS frames, and empty DATA frames without END_STREAM. Default burst 200,
    /// refilled 20 per second.
    pub control_burst: u32,
    pub control_per_sec: u32,
    /// Octets of control frames queued by `recv` (ACKs, WINDOW_UPDATE, RST_STREAM) and not
    /// yet taken by `write_output`. Default 64 KiB.
    pub max_queued_output: usize,
    /// CONTINUATION frames in one header block (CONTINUATION flood, CVE-2024-27316).
    /// Default 32.
    pub max_continuations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reset_burst: 200,
            resets_per_sec: 20,
            control_burst: 200,
            control_per_sec: 20,
            max_queued_output: 64 << 10,
            max_continuations: 32,
        }
    }
}

/// A token bucket: at most `burst` tokens, `rate` more per tick.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: u32,
    last: u64,
}

impl Bucket {
    pub fn new(burst: u32) -> Bucket {
        Bucket {
            tokens: burst,
            last: 0,
        }
    }

    /// Takes a token at tick `now`; false when none is left.
    pub fn take(&mut self, now: u64, burst: u32, rate: u32) -> bool {
        if now > self.last {
            let refill = (now - self.last).saturating_mul(u64::from(rate));
            let tokens = u64::from(self.tokens).saturating_add(refill);
            self.tokens = u32::try_from(tokens.min(u64::from(burst))).unwrap_or(burst);
            self.last = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::frame::FrameHeader;

    #[test]
    fn zilla_compatible_preface() {
        let settings = Settings {
            max_concurrent_streams: 100,
            initial_window_size: 0,
            ..Settings::default()
        };
        let mut out = Vec::new();
        settings.encode(&mut out);
        // Reference section 5.2, `connection.established`.
        assert_eq!(
            out,
            [
                0x00, 0x00, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, //
                0x00, 0x03, 0x00, 0x00, 0x00, 0x64, //
                0x00, 0x04, 0x00, 0x00, 0x00, 0x00, //
                0x00, 0x06, 0x00, 0x00, 0x20, 0x00,
            ]
        );
    }

    #[test]
    fn optional_settings() {
        let settings = Settings {
            max_frame_size: 1 << 20,
            header_table_size: 0,
            ..Settings::default()
        };
        let mut out = Vec::new();
        settings.encode(&mut out);
        let head = FrameHeader::parse(&out).unwrap();
        let frame = frame::Settings::decode(&head, &out[9..]).unwrap();
        let params: Vec<_> = frame.params().collect();
        assert_eq!(
            params,
            [
                (setting::MAX_CONCURRENT_STREAMS, 100),
                (setting::INITIAL_WINDOW_SIZE, 65_535),
                (setting::MAX_HEADER_LIST_SIZE, 8192),
                (setting::MAX_FRAME_SIZE, 1 << 20),
                (setting::HEADER_TABLE_SIZE, 0),
            ]
        );
    }

    #[test]
    fn clamping() {
        let s = Settings {
            max_concurrent_streams: u32::MAX,
            initial_window_size: u32::MAX,
            max_frame_size: 1,
            max_header_list_size: u32::MAX,
            header_table_size: u32::MAX,
        }
        .clamped();
        assert_eq!(s.max_concurrent_streams, u32::MAX);
        assert_eq!(s.initial_window_size, MAX_WINDOW_SIZE);
        assert_eq!(s.max_frame_size, DEFAULT_MAX_FRAME_SIZE);
        assert_eq!(s.max_header_list_size, 1 << 20);
        assert_eq!(s.header_table_size, MAX_HEADER_TABLE_SIZE);
        let big = Settings {
            max_frame_size: u32::MAX,
            ..Settings::default()
        };
        assert_eq!(big.clamped().max_frame_size, MAX_FRAME_SIZE_LIMIT);
    }

    #[test]
    fn bucket() {
        let mut b = Bucket::new(3);
        let now = 1000;
        assert!((0..3).all(|_| b.take(now, 3, 2)));
        assert!(!b.take(now, 3, 2));
        // One tick refills `rate`, never past `burst`.
        assert!(b.take(now + 1, 3, 2));
        assert!(b.take(now + 1, 3, 2));
        assert!(!b.take(now + 1, 3, 2));
        assert!((0..3).all(|_| b.take(now + 100, 3, 2)));
        assert!(!b.take(now + 100, 3, 2));
        // A clock going backwards refills nothing.
        assert!(!b.take(now, 3, 2));
        let mut huge = Bucket::new(u32::MAX);
        assert!(huge.take(u64::MAX, u32::MAX, u32::MAX));
    }
}
