//! Incremental HTTP/1.1 response decoding for SSE streams: the response head, chunked transfer
//! decoding and the SSE event parser. Everything works on borrowed slices of the read buffer;
//! the only owned buffers are a per-stream carry for a line split across reads and the last
//! event id, both reused, so parsing an event allocates nothing.

/// What the head parser found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// `Transfer-Encoding: chunked`; otherwise the body runs until the connection closes.
    pub chunked: bool,
    /// Bytes of the head, including the blank line.
    pub len: usize,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, &'static str> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 16 * 1024 {
            return Err("response head over 16 KiB");
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = trim_cr(lines.next().unwrap_or_default());
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
        return Err("not an HTTP/1.x status line");
    }
    let status = parse_u64(&status_line[9..12]).ok_or("bad status code")? as u16;
    let mut chunked = false;
    for line in lines {
        let line = trim_cr(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            && value
                .split(|&b| b == b',')
                .any(|v| trim(v).eq_ignore_ascii_case(b"chunked"))
        {
            chunked = true;
        }
    }
    Ok(Some(ResponseHead {
        status,
        chunked,
        len: end + 4,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size.
    Size,
    /// Skipping a chunk extension up to LF.
    Ext,
    /// Expecting LF after the size line's CR.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    Done,
}

/// Chunked transfer decoding, byte-exact across arbitrary read boundaries.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u8,
    at_line_start: bool,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: ChunkState::Size,
            size: 0,
            digits: 0,
            at_line_start: true,
        }
    }
}

impl Chunked {
    /// Decodes `input`, handing every piece of chunk data to `data`. Returns whether the last
    /// chunk (and its trailers) has been seen.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<bool, &'static str> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                ChunkState::Size => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            if self.digits >= 15 {
                                return Err("chunk size too large");
                            }
                            let v = (b as char).to_digit(16).unwrap() as u64;
                            self.size = self.size << 4 | v;
                            self.digits += 1;
                        }
                        b';' | b' ' | b'\t' if self.digits > 0 => self.state = ChunkState::Ext,
                        b'\r' if self.digits > 0 => self.state = ChunkState::SizeLf,
                        b'\n' if self.digits > 0 => self.end_size_line(),
                        _ => return Err("bad chunk size line"),
                    }
                }
                ChunkState::Ext => match input[i..].iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        i += p + 1;
                        self.end_size_line();
                    }
                    None => i = input.len(),
                },
                ChunkState::SizeLf => {
                    if input[i] != b'\n' {
                        return Err("CR without LF after chunk size");
                    }
                    i += 1;
                    self.end_size_line();
                }
                ChunkState::Data => {
                    let take = (self.size as usize).min(input.len() - i);
                    data(&input[i..i + take]);
                    i += take;
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                }
                ChunkState::DataCr => {
                    match input[i] {
                        b'\r' => self.state = ChunkState::DataLf,
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err("chunk data not followed by CRLF"),
                    }
                    i += 1;
                }
                ChunkState::DataLf => {
                    if input[i] != b'\n' {
                        return Err("chunk data not followed by CRLF");
                    }
                    i += 1;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        if self.at_line_start {
                            self.state = ChunkState::Done;
                            return Ok(true);
                        }
                        self.at_line_start = true;
                    } else if b != b'\r' {
                        self.at_line_start = false;
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
        Ok(self.state == ChunkState::Done)
    }

    fn end_size_line(&mut self) {
        self.digits = 0;
        if self.size == 0 {
            self.state = ChunkState::Trailer;
            self.at_line_start = true;
        } else {
            self.state = ChunkState::Data;
        }
    }
}

/// The fields of one dispatched event that the harness looks at. `data` fields are parsed as
/// the harness's record values: `{"src":S,"seq":N,"ts_ns":T,...}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventInfo {
    /// The first data line carried src, seq and ts_ns.
    pub parsed: bool,
    pub src: u64,
    pub seq: u64,
    pub ts_ns: u64,
}

/// Counters of things that are not events.
#[derive(Debug, Clone, Copy, Default)]
pub struct SseCounts {
    pub comments: u64,
    /// Events whose data did not carry the harness's fields.
    pub foreign: u64,
}

/// An incremental SSE parser (WHATWG rules: lines end with CRLF, LF or CR; one space after the
/// colon is dropped; an empty line dispatches an event if a data field was seen; `id` persists).
#[derive(Debug, Default)]
pub struct SseParser {
    /// Part of a line carried over from the previous feed.
    carry: Vec<u8>,
    /// The previous feed ended with CR: a leading LF belongs to that line ending.
    after_cr: bool,
    /// The event being assembled.
    pending: EventInfo,
    has_data: bool,
    /// The id field of the event being assembled (the "last event ID buffer").
    id_buffer: Vec<u8>,
    /// The last event id, committed when an event is dispatched (as in EventSource: this is
    /// what a reconnect sends; an id whose event was cut off by the connection is not used).
    last_id: Vec<u8>,
    pub counts: SseCounts,
}

impl SseParser {
    /// The last event id seen (empty when none).
    pub fn last_id(&self) -> &[u8] {
        &self.last_id
    }

    /// Forgets a partial line and a partial event (a new connection), keeping the last id.
    pub fn reset_connection(&mut self) {
        self.id_buffer.clear();
        self.id_buffer.extend_from_slice(&self.last_id);
        self.carry.clear();
        self.after_cr = false;
        self.pending = EventInfo::default();
        self.has_data = false;
    }

    /// Feeds body bytes; `on_event` is called once per dispatched event.
    pub fn feed(&mut self, mut input: &[u8], on_event: &mut impl FnMut(EventInfo, &[u8])) {
        if self.after_cr {
            if input.first() == Some(&b'\n') {
                input = &input[1..];
            }
            self.after_cr = false;
        }
        while !input.is_empty() {
            let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.carry.len() + input.len() > 1 << 20 {
                    // A line over 1 MiB: drop it rather than grow without bound.
                    self.carry.clear();
                } else {
                    self.carry.extend_from_slice(input);
                }
                return;
            };
            let term = input[end];
            if self.carry.is_empty() {
                self.line(&input[..end], on_event);
            } else {
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(&input[..end]);
                self.line(&carry, on_event);
                carry.clear();
                self.carry = carry;
            }
            input = &input[end + 1..];
            if term == b'\r' {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(EventInfo, &[u8])) {
        if line.is_empty() {
            // Dispatch: the id buffer becomes the last event id (also without data).
            if self.last_id != self.id_buffer {
                self.last_id.clear();
                self.last_id.extend_from_slice(&self.id_buffer);
            }
            if self.has_data {
                if !self.pending.parsed {
                    self.counts.foreign += 1;
                }
                on_event(self.pending, &self.last_id);
            }
            self.pending = EventInfo::default();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            self.counts.comments += 1;
            return;
        }
        let (name, mut value) = match line.iter().position(|&b| b == b':') {
            Some(c) => (&line[..c], &line[c + 1..]),
            None => (line, &line[line.len()..]),
        };
        if value.first() == Some(&b' ') {
            value = &value[1..];
        }
        match name {
            b"data" if !self.has_data => {
                self.has_data = true;
                if let Some(info) = parse_value(value) {
                    self.pending = info;
                }
            }
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.extend_from_slice(value);
            }
            _ => {}
        }
    }
}

/// Reads `"src":S`, `"seq":N` and `"ts_ns":T` from a record value written by
/// [`crate::payload::write_value`].
pub fn parse_value(v: &[u8]) -> Option<EventInfo> {
    Some(EventInfo {
        parsed: true,
        src: number_after(v, b"\"src\":")?,
        seq: number_after(v, b"\"seq\":")?,
        ts_ns: number_after(v, b"\"ts_ns\":")?,
    })
}

fn number_after(v: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(v, key)? + key.len();
    let digits = v[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    parse_u64(&v[at..at + digits])
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parser: &mut SseParser, body: &[u8]) -> Vec<(EventInfo, String)> {
        let mut out = Vec::new();
        parser.feed(body, &mut |e, id| {
            out.push((e, String::from_utf8_lossy(id).into_owned()))
        });
        out
    }

    #[test]
    fn head() {
        let h = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nabc";
        let r = parse_response_head(h).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert!(r.chunked);
        assert_eq!(&h[r.len..], b"abc");
        assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let r = parse_response_head(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.chunked), (503, false));
        assert!(parse_response_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_every_split() {
        let wire = b"5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..wire.len() {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let a = c
                .feed(&wire[..split], |d| out.extend_from_slice(d))
                .unwrap();
            let b = c
                .feed(&wire[split..], |d| out.extend_from_slice(d))
                .unwrap();
            assert!(!a || split == wire.len());
            assert!(b);
            assert_eq!(out, b"helloabcdefghijklmnopqrstuvwxyz");
        }
        let mut c = Chunked::default();
        assert!(c.feed(b"zz\r\n", |_| {}).is_err());
    }

    #[test]
    fn sse_fields_and_line_endings() {
        let body = b": hi\n\nid:AQ==\ndata:{\"src\":1,\"seq\":7,\"ts_ns\":99,\"pad\":\"x\"}\n\n\
                     id: 2\r\ndata: {\"src\":0,\"seq\":8,\"ts_ns\":5}\r\n\r\n\
                     event:delete\rdata:plain\r\r";
        for split in 0..body.len() {
            let mut p = SseParser::default();
            let mut ev = events(&mut p, &body[..split]);
            ev.extend(events(&mut p, &body[split..]));
            assert_eq!(ev.len(), 3, "split {split}");
            assert_eq!(
                ev[0].0,
                EventInfo {
                    parsed: true,
                    src: 1,
                    seq: 7,
                    ts_ns: 99
                }
            );
            assert_eq!(ev[0].1, "AQ==");
            assert_eq!((ev[1].0.src, ev[1].0.seq, ev[1].0.ts_ns), (0, 8, 5));
            assert_eq!(ev[1].1, "2");
            assert!(!ev[2].0.parsed);
            assert_eq!(ev[2].1, "2", "id persists");
            assert_eq!(p.counts.comments, 1);
            assert_eq!(p.counts.foreign, 1);
        }
    }

    #[test]
    fn id_of_a_cut_event_is_not_committed() {
        let mut p = SseParser::default();
        events(&mut p, b"id:1\ndata:a\n\nid:2\ndata:b");
        assert_eq!(p.last_id(), b"1");
        p.reset_connection();
        events(&mut p, b"\n\n");
        assert_eq!(p.last_id(), b"1", "the cut event's id was dropped with it");
    }

    #[test]
    fn no_data_no_event() {
        let mut p = SseParser::default();
        assert!(events(&mut p, b"id:5\n\n:comment\n\n").is_empty());
        assert_eq!(p.last_id(), b"5");
    }
}
