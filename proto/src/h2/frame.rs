//! HTTP/2 frames (RFC 9113 §4.1, §6): the 9-octet frame header and one small type per frame
//! kind. `decode` borrows a complete payload and checks what the frame alone can tell (stream
//! 0 or not, lengths, padding); `encode` appends the whole frame to a caller buffer.

use super::ErrorCode;

/// Octets in a frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE initial value and lower bound.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;
/// SETTINGS_MAX_FRAME_SIZE upper bound.
pub const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;
/// Largest flow-control window.
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// Initial flow-control window of the connection and, until SETTINGS change it, of streams.
pub const DEFAULT_WINDOW_SIZE: u32 = 65_535;

const STREAM_ID_MASK: u32 = (1 << 31) - 1;

/// Frame type octets.
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Flag bits.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameter identifiers.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// The 9-octet frame header. The reserved bit of the stream id is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type, see [`kind`].
    pub kind: u8,
    pub flags: u8,
    pub stream_id: u32,
}

impl FrameHeader {
    /// Parses the header at the start of `bytes`; `None` when fewer than 9 bytes.
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let b: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & STREAM_ID_MASK,
        })
    }

    /// The header's wire form; `length` must fit 24 bits.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        debug_assert!(
            self.length <= MAX_FRAME_SIZE_LIMIT,
            "frame length over 24 bits"
        );
        let len = self.length.to_be_bytes();
        let id = (self.stream_id & STREAM_ID_MASK).to_be_bytes();
        [
            len[1], len[2], len[3], self.kind, self.flags, id[0], id[1], id[2], id[3],
        ]
    }

    /// True when every bit of `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// Whether a frame error ends the connection or only the frame's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Connection,
    Stream,
}

/// Why a frame is invalid, with the RFC 9113 error code and scope it calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub scope: Scope,
    pub reason: &'static str,
}

fn conn_error(code: ErrorCode, reason: &'static str) -> FrameError {
    FrameError {
        code,
        scope: Scope::Connection,
        reason,
    }
}

fn stream_error(code: ErrorCode, reason: &'static str) -> FrameError {
    FrameError {
        code,
        scope: Scope::Stream,
        reason,
    }
}

fn on_stream(head: &FrameHeader, reason: &'static str) -> Result<(), FrameError> {
    if head.stream_id == 0 {
        return Err(conn_error(ErrorCode::PROTOCOL_ERROR, reason));
    }
    Ok(())
}

fn on_connection(head: &FrameHeader, reason: &'static str) -> Result<(), FrameError> {
    if head.stream_id != 0 {
        return Err(conn_error(ErrorCode::PROTOCOL_ERROR, reason));
    }
    Ok(())
}

/// Strips the padding of a PADDED frame whose content starts with `fixed` mandatory octets.
/// Returns the content (fixed octets included) and the pad length.
fn unpad<'a>(
    head: &FrameHeader,
    payload: &'a [u8],
    fixed: usize,
) -> Result<(&'a [u8], Option<u8>), FrameError> {
    let too_short = || conn_error(ErrorCode::FRAME_SIZE_ERROR, "frame too short");
    if !head.has(flag::PADDED) {
        if payload.len() < fixed {
            return Err(too_short());
        }
        return Ok((payload, None));
    }
    let (&pad, rest) = payload.split_first().ok_or_else(too_short)?;
    if rest.len() < fixed {
        return Err(too_short());
    }
    if usize::from(pad) > rest.len() - fixed {
        return Err(conn_error(
            ErrorCode::PROTOCOL_ERROR,
            "padding exceeds frame payload",
        ));
    }
    Ok((&rest[..rest.len() - usize::from(pad)], Some(pad)))
}

fn write_head(out: &mut Vec<u8>, kind: u8, flags: u8, stream_id: u32, length: usize) {
    debug_assert!(
        length <= MAX_FRAME_SIZE_LIMIT as usize,
        "frame payload too long"
    );
    let head = FrameHeader {
        length: length as u32,
        kind,
        flags,
        stream_id,
    };
    out.extend_from_slice(&head.encode());
}

/// Writes `[pad length] content [padding]` for an optionally padded frame.
fn write_padded(
    out: &mut Vec<u8>,
    kind: u8,
    flags: u8,
    stream_id: u32,
    pad_len: Option<u8>,
    parts: &[&[u8]],
) {
    let content: usize = parts.iter().map(|p| p.len()).sum();
    let (flags, extra) = match pad_len {
        Some(pad) => (flags | flag::PADDED, 1 + usize::from(pad)),
        None => (flags, 0),
    };
    write_head(out, kind, flags, stream_id, content + extra);
    if let Some(pad) = pad_len {
        out.push(pad);
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    if let Some(pad) = pad_len {
        out.resize(out.len() + usize::from(pad), 0);
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// DATA (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    pub stream_id: u32,
    pub end_stream: bool,
    pub data: &'a [u8],
    pub pad_len: Option<u8>,
}

impl<'a> Data<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_stream(head, "DATA on stream 0")?;
        let (data, pad_len) = unpad(head, payload, 0)?;
        Ok(Data {
            stream_id: head.stream_id,
            end_stream: head.has(flag::END_STREAM),
            data,
            pad_len,
        })
    }

    /// Octets counted by flow control: the whole payload, padding included.
    pub fn flow_len(&self) -> usize {
        self.data.len() + self.pad_len.map_or(0, |p| 1 + usize::from(p))
    }

    /// Header of an unpadded DATA frame carrying `len` octets.
    pub fn header(stream_id: u32, len: usize, end_stream: bool) -> [u8; HEADER_LEN] {
        debug_assert!(len <= MAX_FRAME_SIZE_LIMIT as usize, "DATA frame too long");
        FrameHeader {
            length: len as u32,
            kind: kind::DATA,
            flags: if end_stream { flag::END_STREAM } else { 0 },
            stream_id,
        }
        .encode()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = if self.end_stream { flag::END_STREAM } else { 0 };
        write_padded(
            out,
            kind::DATA,
            flags,
            self.stream_id,
            self.pad_len,
            &[self.data],
        );
    }
}

/// Stream dependency and weight of PRIORITY and of HEADERS with the PRIORITY flag (§5.3.2,
/// deprecated by RFC 9113 but still parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrioritySpec {
    pub dependency: u32,
    pub exclusive: bool,
    pub weight: u8,
}

impl PrioritySpec {
    fn parse(b: &[u8]) -> PrioritySpec {
        let dep = be32(b);
        PrioritySpec {
            dependency: dep & STREAM_ID_MASK,
            exclusive: dep & !STREAM_ID_MASK != 0,
            weight: b[4],
        }
    }

    fn to_bytes(self) -> [u8; 5] {
        let dep = (self.dependency & STREAM_ID_MASK) | if self.exclusive { 1 << 31 } else { 0 };
        let d = dep.to_be_bytes();
        [d[0], d[1], d[2], d[3], self.weight]
    }
}

/// HEADERS (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    pub stream_id: u32,
    pub end_stream: bool,
    pub end_headers: bool,
    pub priority: Option<PrioritySpec>,
    /// Field block fragment.
    pub fragment: &'a [u8],
    pub pad_len: Option<u8>,
}

impl<'a> Headers<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_stream(head, "HEADERS on stream 0")?;
        let has_priority = head.has(flag::PRIORITY);
        let (content, pad_len) = unpad(head, payload, if has_priority { 5 } else { 0 })?;
        let (priority, fragment) = if has_priority {
            (Some(PrioritySpec::parse(content)), &content[5..])
        } else {
            (None, content)
        };
        Ok(Headers {
            stream_id: head.stream_id,
            end_stream: head.has(flag::END_STREAM),
            end_headers: head.has(flag::END_HEADERS),
            priority,
            fragment,
            pad_len,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.end_stream {
            flags |= flag::END_STREAM;
        }
        if self.end_headers {
            flags |= flag::END_HEADERS;
        }
        let prio;
        let mut parts: [&[u8]; 2] = [&[], self.fragment];
        if let Some(p) = self.priority {
            flags |= flag::PRIORITY;
            prio = p.to_bytes();
            parts[0] = &prio;
        }
        write_padded(
            out,
            kind::HEADERS,
            flags,
            self.stream_id,
            self.pad_len,
            &parts,
        );
    }
}

/// PRIORITY (§6.3): accepted and ignored once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub stream_id: u32,
    pub spec: PrioritySpec,
}

impl Priority {
    /// Stream 0 is a connection error; a length other than 5 (FRAME_SIZE_ERROR) and a
    /// dependency on itself (PROTOCOL_ERROR) are stream errors.
    pub fn decode(head: &FrameHeader, payload: &[u8]) -> Result<Self, FrameError> {
        on_stream(head, "PRIORITY on stream 0")?;
        if payload.len() != 5 {
            return Err(stream_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "PRIORITY length is not 5",
            ));
        }
        let spec = PrioritySpec::parse(payload);
        if spec.dependency == head.stream_id {
            return Err(stream_error(
                ErrorCode::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        Ok(Priority {
            stream_id: head.stream_id,
            spec,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        write_head(out, kind::PRIORITY, 0, self.stream_id, 5);
        out.extend_from_slice(&self.spec.to_bytes());
    }
}

/// RST_STREAM (§6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    pub stream_id: u32,
    pub code: ErrorCode,
}

impl RstStream {
    pub fn decode(head: &FrameHeader, payload: &[u8]) -> Result<Self, FrameError> {
        on_stream(head, "RST_STREAM on stream 0")?;
        if payload.len() != 4 {
            return Err(conn_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "RST_STREAM length is not 4",
            ));
        }
        Ok(RstStream {
            stream_id: head.stream_id,
            code: ErrorCode(be32(payload)),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        write_head(out, kind::RST_STREAM, 0, self.stream_id, 4);
        out.extend_from_slice(&self.code.0.to_be_bytes());
    }
}

/// SETTINGS (§6.5): an ACK, or parameters read with [`Settings::params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings<'a> {
    pub ack: bool,
    payload: &'a [u8],
}

impl<'a> Settings<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_connection(head, "SETTINGS on a stream")?;
        let ack = head.has(flag::ACK);
        if ack && !payload.is_empty() {
            return Err(conn_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS ACK with a payload",
            ));
        }
        if !payload.len().is_multiple_of(6) {
            return Err(conn_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS length is not a multiple of 6",
            ));
        }
        Ok(Settings { ack, payload })
    }

    /// Parameters `(identifier, value)` in order of appearance.
    pub fn params(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        self.payload
            .chunks_exact(6)
            .map(|p| (u16::from_be_bytes([p[0], p[1]]), be32(&p[2..])))
    }

    /// Appends a SETTINGS frame carrying `params`.
    pub fn encode_params(params: &[(u16, u32)], out: &mut Vec<u8>) {
        write_head(out, kind::SETTINGS, 0, 0, params.len() * 6);
        for (id, value) in params {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
    }

    /// Appends a SETTINGS ACK.
    pub fn encode_ack(out: &mut Vec<u8>) {
        write_head(out, kind::SETTINGS, flag::ACK, 0, 0);
    }
}

/// PUSH_PROMISE (§6.6): only servers send it; this module decodes it to name it in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPromise<'a> {
    pub stream_id: u32,
    pub promised_id: u32,
    pub end_headers: bool,
    pub fragment: &'a [u8],
}

impl<'a> PushPromise<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_stream(head, "PUSH_PROMISE on stream 0")?;
        let (content, _) = unpad(head, payload, 4)?;
        Ok(PushPromise {
            stream_id: head.stream_id,
            promised_id: be32(content) & STREAM_ID_MASK,
            end_headers: head.has(flag::END_HEADERS),
            fragment: &content[4..],
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = if self.end_headers {
            flag::END_HEADERS
        } else {
            0
        };
        write_head(
            out,
            kind::PUSH_PROMISE,
            flags,
            self.stream_id,
            4 + self.fragment.len(),
        );
        out.extend_from_slice(&(self.promised_id & STREAM_ID_MASK).to_be_bytes());
        out.extend_from_slice(self.fragment);
    }
}

/// PING (§6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    pub ack: bool,
    pub payload: [u8; 8],
}

impl Ping {
    pub fn decode(head: &FrameHeader, payload: &[u8]) -> Result<Self, FrameError> {
        on_connection(head, "PING on a stream")?;
        let payload: [u8; 8] = payload
            .try_into()
            .map_err(|_| conn_error(ErrorCode::FRAME_SIZE_ERROR, "PING length is not 8"))?;
        Ok(Ping {
            ack: head.has(flag::ACK),
            payload,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = if self.ack { flag::ACK } else { 0 };
        write_head(out, kind::PING, flags, 0, 8);
        out.extend_from_slice(&self.payload);
    }
}

/// GOAWAY (§6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway<'a> {
    pub last_stream_id: u32,
    pub code: ErrorCode,
    pub debug: &'a [u8],
}

impl<'a> GoAway<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_connection(head, "GOAWAY on a stream")?;
        if payload.len() < 8 {
            return Err(conn_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "GOAWAY shorter than 8",
            ));
        }
        Ok(GoAway {
            last_stream_id: be32(payload) & STREAM_ID_MASK,
            code: ErrorCode(be32(&payload[4..])),
            debug: &payload[8..],
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        write_head(out, kind::GOAWAY, 0, 0, 8 + self.debug.len());
        out.extend_from_slice(&(self.last_stream_id & STREAM_ID_MASK).to_be_bytes());
        out.extend_from_slice(&self.code.0.to_be_bytes());
        out.extend_from_slice(self.debug);
    }
}

/// WINDOW_UPDATE (§6.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// 0 for the connection window.
    pub stream_id: u32,
    pub increment: u32,
}

impl WindowUpdate {
    /// A length other than 4 is a connection error; an increment of 0 is a PROTOCOL_ERROR of
    /// the connection (stream 0) or of the stream.
    pub fn decode(head: &FrameHeader, payload: &[u8]) -> Result<Self, FrameError> {
        if payload.len() != 4 {
            return Err(conn_error(
                ErrorCode::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE length is not 4",
            ));
        }
        let increment = be32(payload) & STREAM_ID_MASK;
        if increment == 0 {
            let reason = "WINDOW_UPDATE increment of 0";
            return Err(if head.stream_id == 0 {
                conn_error(ErrorCode::PROTOCOL_ERROR, reason)
            } else {
                stream_error(ErrorCode::PROTOCOL_ERROR, reason)
            });
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        write_head(out, kind::WINDOW_UPDATE, 0, self.stream_id, 4);
        out.extend_from_slice(&(self.increment & STREAM_ID_MASK).to_be_bytes());
    }
}

/// CONTINUATION (§6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation<'a> {
    pub stream_id: u32,
    pub end_headers: bool,
    pub fragment: &'a [u8],
}

impl<'a> Continuation<'a> {
    pub fn decode(head: &FrameHeader, payload: &'a [u8]) -> Result<Self, FrameError> {
        on_stream(head, "CONTINUATION on stream 0")?;
        Ok(Continuation {
            stream_id: head.stream_id,
            end_headers: head.has(flag::END_HEADERS),
            fragment: payload,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = if self.end_headers {
            flag::END_HEADERS
        } else {
            0
        };
        write_head(
            out,
            kind::CONTINUATION,
            flags,
            self.stream_id,
            self.fragment.len(),
        );
        out.extend_from_slice(self.fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an encoded frame into its header and payload, checking the length field.
    fn split(bytes: &[u8]) -> (FrameHeader, &[u8]) {
        let head = FrameHeader::parse(bytes).unwrap();
        assert_eq!(head.length as usize, bytes.len() - HEADER_LEN);
        (head, &bytes[HEADER_LEN..])
    }

    fn head(kind: u8, flags: u8, stream_id: u32, length: usize) -> FrameHeader {
        FrameHeader {
            length: length as u32,
            kind,
            flags,
            stream_id,
        }
    }

    fn conn(code: ErrorCode) -> impl Fn(FrameError) -> bool {
        move |e| e.code == code && e.scope == Scope::Connection
    }

    fn stream(code: ErrorCode) -> impl Fn(FrameError) -> bool {
        move |e| e.code == code && e.scope == Scope::Stream
    }

    #[test]
    fn header_round_trip() {
        let h = head(kind::HEADERS, 0x25, 0x7fff_ffff, 0xff_ffff);
        let bytes = h.encode();
        assert_eq!(bytes, [0xff, 0xff, 0xff, 1, 0x25, 0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(FrameHeader::parse(&bytes), Some(h));
        // The reserved bit is ignored.
        let mut r = bytes;
        r[5] |= 0x80;
        assert_eq!(FrameHeader::parse(&r).unwrap().stream_id, 0x7fff_ffff);
        assert_eq!(FrameHeader::parse(&bytes[..8]), None);
        assert!(h.has(flag::END_STREAM | flag::END_HEADERS));
        assert!(!h.has(flag::PADDED));
    }

    #[test]
    fn data() {
        for (pad_len, end_stream) in [(None, false), (Some(0), true), (Some(3), false)] {
            let frame = Data {
                stream_id: 5,
                end_stream,
                data: b"hello",
                pad_len,
            };
            let mut out = Vec::new();
            frame.encode(&mut out);
            let (h, payload) = split(&out);
            assert_eq!(Data::decode(&h, payload), Ok(frame));
            assert_eq!(frame.flow_len(), payload.len());
        }
        assert_eq!(
            Data::header(3, 0x1234, true),
            [0, 0x12, 0x34, 0, 1, 0, 0, 0, 3]
        );
        let h = head(kind::DATA, 0, 0, 1);
        assert!(Data::decode(&h, b"x").is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        // Pad length equal to the payload length (pad octet included) is an error.
        let h = head(kind::DATA, flag::PADDED, 1, 5);
        assert!(Data::decode(&h, b"\x05abcd").is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        assert!(Data::decode(&h, b"\x04abcd").is_ok_and(|d| d.data.is_empty()));
        let h = head(kind::DATA, flag::PADDED, 1, 0);
        assert!(Data::decode(&h, b"").is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
    }

    #[test]
    fn headers() {
        let prio = PrioritySpec {
            dependency: 3,
            exclusive: true,
            weight: 200,
        };
        for (priority, pad_len) in [(None, None), (Some(prio), None), (Some(prio), Some(2))] {
            let frame = Headers {
                stream_id: 7,
                end_stream: true,
                end_headers: false,
                priority,
                fragment: b"\x82\x84",
                pad_len,
            };
            let mut out = Vec::new();
            frame.encode(&mut out);
            let (h, payload) = split(&out);
            assert_eq!(Headers::decode(&h, payload), Ok(frame));
        }
        let h = head(kind::HEADERS, 0, 0, 1);
        assert!(Headers::decode(&h, b"\x82").is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        // PRIORITY flag without its 5 octets.
        let h = head(kind::HEADERS, flag::PRIORITY, 1, 4);
        assert!(Headers::decode(&h, b"\0\0\0\0").is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        // Padding longer than what follows the priority fields.
        let h = head(kind::HEADERS, flag::PRIORITY | flag::PADDED, 1, 7);
        assert!(Headers::decode(&h, b"\x02\0\0\0\x03\x10\x82")
            .is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        assert!(Headers::decode(&h, b"\x01\0\0\0\x03\x10\x82")
            .is_ok_and(|f| f.fragment.is_empty() && f.priority.unwrap().dependency == 3));
    }

    #[test]
    fn priority() {
        let frame = Priority {
            stream_id: 9,
            spec: PrioritySpec {
                dependency: 1,
                exclusive: false,
                weight: 15,
            },
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        let (h, payload) = split(&out);
        assert_eq!(Priority::decode(&h, payload), Ok(frame));
        assert!(Priority::decode(&h, &payload[..4]).is_err_and(stream(ErrorCode::FRAME_SIZE_ERROR)));
        let h0 = head(kind::PRIORITY, 0, 0, 5);
        assert!(Priority::decode(&h0, payload).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        let self_dep = head(kind::PRIORITY, 0, 1, 5);
        assert!(Priority::decode(&self_dep, payload).is_err_and(stream(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn rst_stream() {
        let frame = RstStream {
            stream_id: 3,
            code: ErrorCode::CANCEL,
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, [0, 0, 4, 3, 0, 0, 0, 0, 3, 0, 0, 0, 8]);
        let (h, payload) = split(&out);
        assert_eq!(RstStream::decode(&h, payload), Ok(frame));
        assert!(RstStream::decode(&h, &payload[..3]).is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        let h0 = head(kind::RST_STREAM, 0, 0, 4);
        assert!(RstStream::decode(&h0, payload).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn settings() {
        let mut out = Vec::new();
        Settings::encode_params(
            &[(setting::MAX_CONCURRENT_STREAMS, 100), (0xff, 7)],
            &mut out,
        );
        let (h, payload) = split(&out);
        let s = Settings::decode(&h, payload).unwrap();
        assert!(!s.ack);
        assert_eq!(
            s.params().collect::<Vec<_>>(),
            [(setting::MAX_CONCURRENT_STREAMS, 100), (0xff, 7)]
        );
        assert!(Settings::decode(&h, &payload[..7]).is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        out.clear();
        Settings::encode_ack(&mut out);
        assert_eq!(out, [0, 0, 0, 4, 1, 0, 0, 0, 0]);
        let (h, payload) = split(&out);
        assert!(Settings::decode(&h, payload).unwrap().ack);
        assert!(Settings::decode(&h, b"\0").is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        let h1 = head(kind::SETTINGS, 0, 1, 0);
        assert!(Settings::decode(&h1, b"").is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn push_promise() {
        let frame = PushPromise {
            stream_id: 1,
            promised_id: 2,
            end_headers: true,
            fragment: b"\x82",
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        let (h, payload) = split(&out);
        assert_eq!(PushPromise::decode(&h, payload), Ok(frame));
        assert!(
            PushPromise::decode(&h, &payload[..3]).is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR))
        );
    }

    #[test]
    fn ping() {
        let frame = Ping {
            ack: true,
            payload: *b"h2spec\0\0",
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        let (h, payload) = split(&out);
        assert_eq!(Ping::decode(&h, payload), Ok(frame));
        assert!(Ping::decode(&h, &payload[..6]).is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        let h1 = head(kind::PING, 0, 1, 8);
        assert!(Ping::decode(&h1, payload).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn goaway() {
        let frame = GoAway {
            last_stream_id: 41,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: b"too many resets",
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        let (h, payload) = split(&out);
        assert_eq!(GoAway::decode(&h, payload), Ok(frame));
        assert!(GoAway::decode(&h, &payload[..7]).is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        let h1 = head(kind::GOAWAY, 0, 1, 8);
        assert!(GoAway::decode(&h1, &payload[..8]).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn window_update() {
        for stream_id in [0, 5] {
            let frame = WindowUpdate {
                stream_id,
                increment: MAX_WINDOW_SIZE,
            };
            let mut out = Vec::new();
            frame.encode(&mut out);
            let (h, payload) = split(&out);
            assert_eq!(WindowUpdate::decode(&h, payload), Ok(frame));
            assert!(WindowUpdate::decode(&h, &payload[..3])
                .is_err_and(conn(ErrorCode::FRAME_SIZE_ERROR)));
        }
        let zero =
            |id| WindowUpdate::decode(&head(kind::WINDOW_UPDATE, 0, id, 4), &[0x80, 0, 0, 0]);
        assert!(zero(0).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
        assert!(zero(1).is_err_and(stream(ErrorCode::PROTOCOL_ERROR)));
    }

    #[test]
    fn continuation() {
        let frame = Continuation {
            stream_id: 1,
            end_headers: true,
            fragment: b"\x84",
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        let (h, payload) = split(&out);
        assert_eq!(Continuation::decode(&h, payload), Ok(frame));
        let h0 = head(kind::CONTINUATION, 0, 0, 1);
        assert!(Continuation::decode(&h0, payload).is_err_and(conn(ErrorCode::PROTOCOL_ERROR)));
    }
}
