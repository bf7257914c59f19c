//! HTTP/2 server side (RFC 9113) with HPACK (RFC 7541), sans-io.
//!
//! [`H2Conn`] is one server connection: the caller feeds it the bytes read from the socket
//! ([`H2Conn::recv`]), takes the [`Event`]s it queues ([`H2Conn::poll_event`]) and writes what it
//! produces: control frames ([`H2Conn::write_output`]), response heads
//! ([`H2Conn::send_headers`]) and DATA frames, whose 9-byte header
//! ([`H2Conn::data_frame_header`]) goes in front of bytes the caller writes itself, so shared
//! event bytes are never copied by this module.
//!
//! Every bound is explicit ([`Settings`], [`Limits`]): frame sizes, the header block buffer,
//! the decoded header list, the HPACK dynamic table, concurrent streams, queued control output,
//! and the rates of resets, PINGs and SETTINGS.
//!
//! ```
//! use proto::h2::{Event, H2Conn, Settings};
//!
//! let mut conn = H2Conn::new(Settings::default());
//! let mut input: Vec<u8> = Vec::new(); // read from the socket, at most recv_buffer_len()
//! let mut out: Vec<u8> = Vec::new(); // to write to the socket, in order
//! # input.extend_from_slice(proto::h2::PREFACE);
//! # input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
//! # input.extend_from_slice(&[0, 0, 3, 1, 5, 0, 0, 0, 1, 0x82, 0x87, 0x84]);
//! let now = 0; // coarse clock, seconds
//! let consumed = conn.recv(&input, now).expect("on error: write the output, then close");
//! input.drain(..consumed);
//! while let Some(event) = conn.poll_event() {
//!     if let Event::Request(req) = event {
//!         let head: &[(&str, &[u8])] = &[("content-type", b"text/event-stream")];
//!         conn.send_headers(req.stream_id, 200, head, false, &mut out);
//!     }
//! }
//! conn.write_output(&mut out);
//!
//! // An SSE event on stream 1: a DATA frame header, then the shared bytes (e.g. writev).
//! let event: &[u8] = b"id:AQIAAg==\ndata:hello\n\n";
//! let n = conn.frame_capacity(1).min(event.len());
//! let frame_head = conn.data_frame_header(1, n, false);
//! out.extend_from_slice(&frame_head);
//! out.extend_from_slice(&event[..n]);
//! ```

mod conn;
mod flow;
pub mod frame;
pub mod hpack;
mod request;
mod settings;

#[cfg(test)]
mod tests;

pub use conn::{ConnError, Event, H2Conn};
pub use request::Request;
pub use settings::{Limits, Settings};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An RFC 9113 §7 error code, as carried by RST_STREAM and GOAWAY. Codes this module does not
/// know are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The RFC name of a known code.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(self.0 as usize).copied()
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
