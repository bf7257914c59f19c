//! Request heads of HTTP/2 streams, checked as RFC 9113 §8.1-8.3 require before the server
//! sees them.

/// A range of [`Request`]'s buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// A request head: pseudo-header fields and regular fields, owned (one buffer per request).
///
/// Field names are lowercase, free of control characters, spaces, colons and non-ASCII;
/// values hold no NUL, CR or LF and no leading or trailing space or tab; pseudo-header
/// values are visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub stream_id: u32,
    /// The request has no body (HEADERS carried END_STREAM).
    pub end_stream: bool,
    buf: Vec<u8>,
    method: Span,
    scheme: Span,
    path: Span,
    authority: Option<Span>,
    fields: Vec<(Span, Span)>,
    content_length: Option<u64>,
}

fn text(buf: &[u8], span: Span) -> &str {
    // Spans of text are checked ASCII when stored.
    std::str::from_utf8(bytes(buf, span)).unwrap_or("")
}

fn bytes(buf: &[u8], span: Span) -> &[u8] {
    buf.get(span.start as usize..span.end as usize)
        .unwrap_or(&[])
}

impl Request {
    /// `:method`, e.g. `GET`.
    pub fn method(&self) -> &str {
        text(&self.buf, self.method)
    }

    /// `:scheme`, e.g. `https`; empty for CONNECT.
    pub fn scheme(&self) -> &str {
        text(&self.buf, self.scheme)
    }

    /// `:authority` when present.
    pub fn authority(&self) -> Option<&str> {
        self.authority.map(|s| text(&self.buf, s))
    }

    /// `:path` as sent: path and query, `*` for `OPTIONS *`, empty for CONNECT.
    pub fn target(&self) -> &str {
        text(&self.buf, self.path)
    }

    /// Path part of `:path`: before the first `?`.
    pub fn path(&self) -> &str {
        let target = self.target();
        target.split_once('?').map_or(target, |(p, _)| p)
    }

    /// Raw query string: after the first `?` (possibly empty); `None` without `?`.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// Value of the first regular field named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Values of every regular field named `name` (lowercase), in order. A `cookie` may come
    /// split into several fields (RFC 9113 §8.2.3): join them with `"; "`.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Regular fields in order of arrival.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields
            .iter()
            .map(|&(n, v)| (text(&self.buf, n), bytes(&self.buf, v)))
    }

    /// The `content-length` field, when present.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }
}

/// What a header block turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Request(Request),
    /// Valid trailers: discarded.
    Trailers,
    /// Over SETTINGS_MAX_HEADER_LIST_SIZE: answered 431.
    TooLarge,
    /// Malformed (§8.1.1): a stream error of type PROTOCOL_ERROR.
    Malformed(&'static str),
}

/// Gathers and checks the fields of one header block as the HPACK decoder emits them. Past
/// the list size limit or the first error it only counts, so a block that decodes to far
/// more than the limit (an HPACK bomb) costs no memory.
#[derive(Debug)]
pub(crate) struct Collector {
    trailers: bool,
    max_list: usize,
    list_size: usize,
    error: Option<&'static str>,
    regular_seen: bool,
    buf: Vec<u8>,
    fields: Vec<(Span, Span)>,
    method: Option<Span>,
    scheme: Option<Span>,
    path: Option<Span>,
    authority: Option<Span>,
    host: Option<Span>,
    content_length: Option<u64>,
}

/// RFC 9113 §8.2.1: no 0x00-0x20, 0x41-0x5a, 0x7f-0xff; no colon outside pseudo-headers.
fn valid_name_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x40 | 0x5b..=0x7e) && b != b':'
}

fn valid_value(v: &[u8]) -> bool {
    let edge_ok = |b: Option<&u8>| !matches!(b, Some(b' ' | b'\t'));
    !v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && edge_ok(v.first())
        && edge_ok(v.last())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// `host` and `:authority` name the same origin: equal ignoring ASCII case and the scheme's
/// default port (RFC 3986 §6.2.3).
fn same_authority(scheme: &[u8], a: &[u8], b: &[u8]) -> bool {
    let default_port: &[u8] = match scheme {
        b"http" => b":80",
        b"https" => b":443",
        _ => b"",
    };
    let strip = |s: &'_ [u8]| -> Vec<u8> {
        let s = if !default_port.is_empty() && s.ends_with(default_port) {
            &s[..s.len() - default_port.len()]
        } else {
            s
        };
        s.to_ascii_lowercase()
    };
    strip(a) == strip(b)
}

impl Collector {
    /// Collects a request head.
    pub fn request(max_list: usize) -> Collector {
        Collector::new(false, max_list)
    }

    /// Checks trailers, keeping nothing.
    pub fn trailers(max_list: usize) -> Collector {
        Collector::new(true, max_list)
    }

    fn new(trailers: bool, max_list: usize) -> Collector {
        Collector {
            trailers,
            max_list,
            list_size: 0,
            error: None,
            regular_seen: false,
            buf: Vec::new(),
            fields: Vec::new(),
            method: None,
            scheme: None,
            path: None,
            authority: None,
            host: None,
            content_length: None,
        }
    }

    /// Takes one decoded field.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        self.list_size = self.list_size.saturating_add(name.len() + value.len() + 32);
        if self.list_size > self.max_list || self.error.is_some() {
            return;
        }
        if let Err(reason) = self.check(name, value) {
            self.error = Some(reason);
        }
    }

    fn store(&mut self, s: &[u8]) -> Span {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(s);
        Span {
            start,
            end: self.buf.len() as u32,
        }
    }

    fn check(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        if !valid_value(value) {
            return Err("invalid field value");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.trailers {
                return Err("pseudo-header field in trailers");
            }
            if self.regular_seen {
                return Err("pseudo-header field after a regular field");
            }
            let present = match pseudo {
                b"method" => self.method.is_some(),
                b"scheme" => self.scheme.is_some(),
                b"path" => self.path.is_some(),
                b"authority" => self.authority.is_some(),
                _ => return Err("unknown pseudo-header field"),
            };
            if present {
                return Err("repeated pseudo-header field");
            }
            if !value.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
                return Err("invalid pseudo-header value");
            }
            let span = Some(self.store(value));
            match pseudo {
                b"method" => self.method = span,
                b"scheme" => self.scheme = span,
                b"path" => self.path = span,
                _ => self.authority = span,
            }
            return Ok(());
        }
        self.regular_seen = true;
        if name.is_empty() || !name.iter().all(|&b| valid_name_byte(b)) {
            return Err("invalid field name");
        }
        match name {
            b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding"
            | b"upgrade" => return Err("connection-specific field"),
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                return Err("te other than trailers")
            }
            b"content-length" if !self.trailers => {
                let n = parse_digits(value).ok_or("invalid content-length")?;
                if self.content_length.is_some_and(|m| m != n) {
                    return Err("conflicting content-length");
                }
                self.content_length = Some(n);
            }
            _ => {}
        }
        if !self.trailers {
            let n = self.store(name);
            let v = self.store(value);
            if name == b"host" {
                self.host = Some(v);
            }
            self.fields.push((n, v));
        }
        Ok(())
    }

    /// Ends the block. `end_stream`: the HEADERS frame carried END_STREAM.
    pub fn finish(self, stream_id: u32, end_stream: bool) -> Outcome {
        if self.list_size > self.max_list {
            return Outcome::TooLarge;
        }
        if let Some(reason) = self.error {
            return Outcome::Malformed(reason);
        }
        if self.trailers {
            return Outcome::Trailers;
        }
        let Some(method) = self.method else {
            return Outcome::Malformed("missing :method");
        };
        let method_bytes = bytes(&self.buf, method);
        if !method_bytes.iter().all(|&b| is_tchar(b)) {
            return Outcome::Malformed("invalid :method");
        }
        let (scheme, path) = if method_bytes == b"CONNECT" {
            if self.authority.is_none() {
                return Outcome::Malformed("CONNECT without :authority");
            }
            if self.scheme.is_some() || self.path.is_some() {
                return Outcome::Malformed("CONNECT with :scheme or :path");
            }
            (Span::default(), Span::default())
        } else {
            let (Some(scheme), Some(path)) = (self.scheme, self.path) else {
                return Outcome::Malformed("missing :scheme or :path");
            };
            let p = bytes(&self.buf, path);
            if !(p.starts_with(b"/") || (p == b"*" && method_bytes == b"OPTIONS")) {
                return Outcome::Malformed("invalid :path");
            }
            (scheme, path)
        };
        if let (Some(a), Some(h)) = (self.authority, self.host) {
            let scheme = bytes(&self.buf, scheme);
            if !same_authority(scheme, bytes(&self.buf, a), bytes(&self.buf, h)) {
                return Outcome::Malformed("host differs from :authority");
            }
        }
        if end_stream && self.content_length.is_some_and(|n| n != 0) {
            return Outcome::Malformed("content-length without a body");
        }
        Outcome::Request(Request {
            stream_id,
            end_stream,
            buf: self.buf,
            method,
            scheme,
            path,
            authority: self.authority,
            fields: self.fields,
            content_length: self.content_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/events?lastEventId=AQ%3D%3D"),
        (":authority", "example.com"),
    ];

    fn collect(fields: &[(&str, &str)], end_stream: bool) -> Outcome {
        let mut c = Collector::request(8192);
        for (n, v) in fields {
            c.field(n.as_bytes(), v.as_bytes());
        }
        c.finish(1, end_stream)
    }

    fn with(extra: &[(&str, &str)]) -> Outcome {
        let mut fields = BASE.to_vec();
        fields.extend_from_slice(extra);
        collect(&fields, true)
    }

    fn malformed(o: Outcome) -> bool {
        matches!(o, Outcome::Malformed(_))
    }

    #[test]
    fn accessors() {
        let Outcome::Request(r) = with(&[
            ("accept", "text/event-stream"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("content-length", "0"),
        ]) else {
            panic!()
        };
        assert_eq!((r.stream_id, r.end_stream), (1, true));
        assert_eq!(r.method(), "GET");
        assert_eq!(r.scheme(), "https");
        assert_eq!(r.authority(), Some("example.com"));
        assert_eq!(r.target(), "/events?lastEventId=AQ%3D%3D");
        assert_eq!(r.path(), "/events");
        assert_eq!(r.query(), Some("lastEventId=AQ%3D%3D"));
        assert_eq!(r.header("accept"), Some(&b"text/event-stream"[..]));
        assert_eq!(r.header("cookie"), Some(&b"a=1"[..]));
        assert_eq!(r.headers_named("cookie").count(), 2);
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.headers().count(), 4);
        assert_eq!(r.content_length(), Some(0));
    }

    #[test]
    fn minimal_requests() {
        let Outcome::Request(r) = collect(
            &[(":method", "GET"), (":scheme", "http"), (":path", "/")],
            false,
        ) else {
            panic!()
        };
        assert_eq!(
            (r.authority(), r.query(), r.end_stream),
            (None, None, false)
        );
        assert!(matches!(
            collect(
                &[(":method", "OPTIONS"), (":scheme", "http"), (":path", "*")],
                true
            ),
            Outcome::Request(_)
        ));
        let Outcome::Request(c) = collect(&[(":method", "CONNECT"), (":authority", "h:443")], true)
        else {
            panic!()
        };
        assert_eq!((c.method(), c.target(), c.scheme()), ("CONNECT", "", ""));
    }

    #[test]
    fn malformed_pseudo_headers() {
        for fields in [
            &[(":scheme", "http"), (":path", "/")][..],
            &[(":method", "GET"), (":path", "/")],
            &[(":method", "GET"), (":scheme", "http")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "")],
            &[(":method", "GET"), (":scheme", "http"), (":path", "*")],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "http://h/"),
            ],
            &[(":method", "G T"), (":scheme", "http"), (":path", "/")],
            &[
                (":method", "GET"),
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":status", "200"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":protocol", "ws"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                ("a", "b"),
                (":path", "/"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/\u{e9}"),
            ],
            &[
                (":method", "CONNECT"),
                (":scheme", "https"),
                (":authority", "h:443"),
            ],
            &[
                (":method", "CONNECT"),
                (":path", "/"),
                (":authority", "h:443"),
            ],
            &[(":method", "CONNECT")],
        ] {
            assert!(malformed(collect(fields, true)), "{fields:?}");
        }
    }

    #[test]
    fn malformed_fields() {
        for extra in [
            ("UPPERCASE", "oh no"),
            ("space force", "oh no"),
            ("\x01invalid", "oh no"),
            ("\x7finvalid", "oh no"),
            ("inv\u{e1}lid", "oh no"),
            ("invalid:field", "oh no"),
            ("", "x"),
            ("invalid-value", "oh\nno"),
            ("invalid-value", "oh\rno"),
            ("invalid-value", "oh\0no"),
            ("invalid-value", " oh no"),
            ("invalid-value", "oh no\t"),
            ("connection", "keep-alive"),
            ("proxy-connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("te", "not-trailers"),
            ("content-length", "x"),
            ("content-length", "-1"),
            ("content-length", "99999999999999999999"),
            ("host", "example.com.different"),
        ] {
            assert!(malformed(with(&[extra])), "{extra:?}");
        }
        assert!(malformed(with(&[
            ("content-length", "1"),
            ("content-length", "2")
        ])));
        // Content-length 1 with END_STREAM on HEADERS: no body can follow.
        assert!(malformed(with(&[("content-length", "1")])));
    }

    #[test]
    fn valid_fields() {
        for extra in [
            ("te", "trailers"),
            ("te", "Trailers"),
            ("x-empty", ""),
            ("x-inner-space", "a b"),
            ("x-symbols", "!#$%&'*+-.^_`|~\"(),/;<=>?@[\\]{}"),
            ("host", "EXAMPLE.com"),
            ("host", "example.com:443"),
        ] {
            assert!(matches!(with(&[extra]), Outcome::Request(_)), "{extra:?}");
        }
        // Default ports on either side.
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "h:80"),
            ("host", "h"),
        ];
        assert!(matches!(collect(&fields, true), Outcome::Request(_)));
        let mut other_port = fields;
        other_port[4] = ("host", "h:8080");
        assert!(malformed(collect(&other_port, true)));
    }

    #[test]
    fn list_size_limit() {
        let mut c = Collector::request(100);
        c.field(b":method", b"GET"); // 42
        c.field(b":path", b"/"); // 38: 80
        c.field(b":scheme", b"h"); // 40: 120
        assert_eq!(c.finish(1, true), Outcome::TooLarge);
        // Past the limit nothing more is stored.
        let mut bomb = Collector::request(1000);
        for _ in 0..100_000 {
            bomb.field(b"x-bomb", &[b'a'; 4000]);
        }
        assert!(bomb.buf.len() < 1000);
        assert_eq!(bomb.finish(1, true), Outcome::TooLarge);
    }

    #[test]
    fn trailers() {
        let mut t = Collector::trailers(8192);
        t.field(b"x-checksum", b"abc");
        assert_eq!(t.finish(1, true), Outcome::Trailers);
        let mut p = Collector::trailers(8192);
        p.field(b":method", b"POST");
        assert!(malformed(p.finish(1, true)));
    }
}
