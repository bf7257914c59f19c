//! HTTP/1.1 request heads (parsed by `httparse` under explicit limits), response heads,
//! chunked-encoding framing and query-string helpers.

/// Header slot type of the caller's array for [`parse_request`], re-exported so callers need
/// no direct `httparse` dependency.
pub use httparse::{Header, EMPTY_HEADER};

/// Size limits applied by [`parse_request`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of request line plus header lines plus the final empty line.
    pub max_head: usize,
    /// Bytes of the request target.
    pub max_target: usize,
    /// Header fields; the effective limit is also capped by the caller's array length.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16384,
            max_target: 8192,
            max_headers: 64,
        }
    }
}

/// A request head the server must refuse, with the status to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// 400: malformed syntax, bad framing headers.
    BadRequest,
    /// 414: target longer than [`Limits::max_target`].
    UriTooLong,
    /// 431: head longer than [`Limits::max_head`] or more headers than allowed.
    HeadersTooLarge,
    /// 501: unknown or overlong method, unsupported transfer coding.
    NotImplemented,
    /// 505: an `HTTP/x.y` version other than 1.0 and 1.1 (the h2 preface included).
    VersionNotSupported,
}

impl RequestError {
    /// Status code to answer.
    pub fn status(self) -> u16 {
        match self {
            RequestError::BadRequest => 400,
            RequestError::UriTooLong => 414,
            RequestError::HeadersTooLarge => 431,
            RequestError::NotImplemented => 501,
            RequestError::VersionNotSupported => 505,
        }
    }

    /// Reason phrase of [`RequestError::status`].
    pub fn reason(self) -> &'static str {
        reason_phrase(self.status())
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length` bytes (possibly 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head borrowing the caller's buffer (`'b`) and header array (`'h`).
#[derive(Debug, Clone, Copy)]
pub struct Request<'h, 'b> {
    /// Method token, e.g. `GET`; always one of the methods this module knows.
    pub method: &'b str,
    /// Request target as sent (not percent-decoded).
    pub target: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header fields in order of arrival.
    pub headers: &'h [httparse::Header<'b>],
}

/// The HTTP/2 connection preface; a server accepting prior-knowledge h2 checks for it before
/// calling [`parse_request`], which answers it with 505.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Longest method token; a longer first token is answered 501.
pub const MAX_METHOD_LEN: usize = 16;

const METHODS: [&[u8]; 9] = [
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
];

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks the request line as far as it has arrived, so the answer does not depend on how
/// the bytes were split: the method (400 for a non-token byte, 501 when unknown or longer
/// than [`MAX_METHOD_LEN`]) and the target length (414). Returns the version token so far.
fn check_request_line<'a>(line: &'a [u8], limits: &Limits) -> Result<&'a [u8], RequestError> {
    let scan = &line[..line.len().min(MAX_METHOD_LEN + 1)];
    let method_end = match scan.iter().position(|&b| !is_tchar(b)) {
        Some(i) if scan[i] == b' ' && i > 0 => i,
        Some(_) => return Err(RequestError::BadRequest),
        None if scan.len() > MAX_METHOD_LEN => return Err(RequestError::NotImplemented),
        None => return Ok(&[]),
    };
    // `PRI` goes on so that the h2 preface is answered 505 by the version check.
    let method = &line[..method_end];
    if !METHODS.contains(&method) && method != b"PRI" {
        return Err(RequestError::NotImplemented);
    }
    let rest = &line[method_end + 1..];
    let target_len = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    if target_len > limits.max_target {
        return Err(RequestError::UriTooLong);
    }
    let version = rest.get(target_len + 1..).unwrap_or(&[]);
    let version_len = version
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(version.len());
    Ok(&version[..version_len])
}

/// Parses a request head at the start of `buf` into the caller's `headers` array.
///
/// Returns `Ok(Some((request, head_len)))` when complete (the body, if any, starts at
/// `buf[head_len..]`) and `Ok(None)` when more bytes are needed. Checks, in this order,
/// each as soon as the bytes it needs have arrived:
/// 1. method: a non-token byte → 400; not one of GET HEAD POST PUT DELETE CONNECT OPTIONS
///    TRACE PATCH, or more than [`MAX_METHOD_LEN`] bytes → 501 (`PRI` waits for the version:
///    505 with `HTTP/2.0`, as for the h2 preface, else 501);
/// 2. target longer than `max_target` bytes → 414;
/// 3. syntax (httparse) → 400, except a version `HTTP/<digit>…` other than 1.0/1.1 → 505;
///    more header fields than `min(max_headers, headers.len())` → 431;
/// 4. head longer than `max_head` → 431: a complete head over it, or an incomplete one
///    with `buf.len() >= max_head` (so a `max_head`-byte buffer is always enough).
///
/// Leading empty lines are skipped (and counted in `head_len`). The target form is not
/// restricted; see [`Request::path`].
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
    limits: &Limits,
) -> Result<Option<(Request<'h, 'b>, usize)>, RequestError> {
    let line_start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let version = check_request_line(&buf[line_start..], limits)?;

    let max_headers = limits.max_headers.min(headers.len());
    let mut req = httparse::Request::new(&mut headers[..max_headers]);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > limits.max_head {
                return Err(RequestError::HeadersTooLarge);
            }
            let (Some(method), Some(target), Some(minor_version)) =
                (req.method, req.path, req.version)
            else {
                return Err(RequestError::BadRequest);
            };
            if method == "PRI" {
                return Err(RequestError::NotImplemented);
            }
            let request = Request {
                method,
                target,
                minor_version,
                headers: req.headers,
            };
            Ok(Some((request, head_len)))
        }
        Ok(httparse::Status::Partial) => {
            if buf.len() >= limits.max_head {
                Err(RequestError::HeadersTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(RequestError::HeadersTooLarge),
        Err(httparse::Error::Version)
            if version.len() > 5
                && version.starts_with(b"HTTP/")
                && version[5].is_ascii_digit() =>
        {
            Err(RequestError::VersionNotSupported)
        }
        Err(_) => Err(RequestError::BadRequest),
    }
}

/// Splits a comma-separated header value into trimmed, non-empty elements.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl<'h, 'b> Request<'h, 'b> {
    /// Value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Values of every header named `name`.
    fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Path part of the target: before the first `?`. For an absolute-form target
    /// (`http://host/p?q`) the scheme and authority are dropped (`/p`, or `/` when the path
    /// is empty); other forms (`*`, authority-form) are returned as they are.
    pub fn path(&self) -> &'b str {
        let target = self.target;
        let without_query = target.split_once('?').map_or(target, |(p, _)| p);
        if without_query.starts_with('/') {
            return without_query;
        }
        match without_query.split_once("://") {
            Some((_, after_scheme)) => match after_scheme.find('/') {
                Some(i) => &after_scheme[i..],
                None => "/",
            },
            None => without_query,
        }
    }

    /// Raw query string: after the first `?` (possibly empty); `None` without `?`.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// True when the connection must close after this exchange: a `Connection: close`
    /// token (case-insensitive, in any comma list of any `Connection` header), or HTTP/1.0
    /// without a `keep-alive` token.
    pub fn wants_close(&self) -> bool {
        let mut close = false;
        let mut keep_alive = false;
        for value in self.headers_named("connection") {
            for token in list_elements(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
        close || (self.minor_version == 0 && !keep_alive)
    }

    /// Body framing (RFC 9112 §6), refusing what could smuggle a request:
    /// * `Transfer-Encoding` with `Content-Length`, or in an HTTP/1.0 request → 400;
    /// * `Transfer-Encoding`: exactly one `chunked` element → `Chunked`; no element,
    ///   `chunked` repeated or not last → 400; any other coding → 501;
    /// * `Content-Length`: every element of every such header must be digits only, fit
    ///   `u64`, and all be equal → `Length`; anything else → 400.
    pub fn body_framing(&self) -> Result<BodyFraming, RequestError> {
        let has_te = self.headers_named("transfer-encoding").next().is_some();
        let has_cl = self.headers_named("content-length").next().is_some();
        if has_te {
            if has_cl || self.minor_version == 0 {
                return Err(RequestError::BadRequest);
            }
            let mut count = 0usize;
            let mut chunked = 0usize;
            let mut last_is_chunked = false;
            for value in self.headers_named("transfer-encoding") {
                for coding in list_elements(value) {
                    count += 1;
                    last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if last_is_chunked {
                        chunked += 1;
                    }
                }
            }
            return match (count, chunked) {
                (0, _) => Err(RequestError::BadRequest),
                (1, 1) => Ok(BodyFraming::Chunked),
                (_, 0) => Err(RequestError::NotImplemented),
                (_, 1) if last_is_chunked => Err(RequestError::NotImplemented),
                _ => Err(RequestError::BadRequest),
            };
        }
        if has_cl {
            let mut length: Option<u64> = None;
            for value in self.headers_named("content-length") {
                let mut any = false;
                for element in value.split(|&b| b == b',').map(trim_ows) {
                    let n = parse_decimal(element).ok_or(RequestError::BadRequest)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(RequestError::BadRequest);
                    }
                    length = Some(n);
                    any = true;
                }
                if !any {
                    return Err(RequestError::BadRequest);
                }
            }
            return length
                .map(BodyFraming::Length)
                .ok_or(RequestError::BadRequest);
        }
        Ok(BodyFraming::None)
    }
}

/// `1*DIGIT` as `u64`; `None` when empty, not all digits, or overflowing.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Appends `HTTP/1.1 <status> <reason>\r\n`, each `Name: value\r\n`, then `\r\n`.
///
/// A header whose name or value contains CR, LF or NUL (a caller bug) is caught by
/// `debug_assert` and skipped in release builds.
pub fn write_response_head(out: &mut Vec<u8>, status: u16, headers: &[(&str, &[u8])]) {
    debug_assert!((100..=999).contains(&status), "status {status}");
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for &(name, value) in headers {
        let breaks_line = |b: &u8| matches!(*b, b'\r' | b'\n' | 0);
        if name.as_bytes().iter().any(breaks_line) || value.iter().any(breaks_line) {
            debug_assert!(false, "response header {name} contains CR, LF or NUL");
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Reason phrase of `status` (RFC 9110); `""` for codes without one here (an empty reason
/// is valid HTTP/1.1).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Room for a chunk-size line: up to 8 hex digits and CRLF.
pub const CHUNK_PREFIX_MAX: usize = 10;

/// The last chunk with no trailers, ending a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes `"<hex len>\r\n"` (lowercase, no leading zeros) right-aligned at the end of `buf`
/// and returns its start index: send `buf[start..]`, the payload, then `"\r\n"`.
///
/// `len` must fit 32 bits (callers split larger payloads); a larger value is caught by
/// `debug_assert` and its low 32 bits are written in release builds.
pub fn chunk_prefix(len: usize, buf: &mut [u8; CHUNK_PREFIX_MAX]) -> usize {
    debug_assert!(len <= 0xffff_ffff, "chunk of {len} bytes");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = (len as u64) & 0xffff_ffff;
    let mut i = CHUNK_PREFIX_MAX - 2;
    buf[i] = b'\r';
    buf[i + 1] = b'\n';
    loop {
        i -= 1;
        buf[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return i;
        }
    }
}

/// Raw value of the first `name=` parameter of a raw query string (`a=1&b=2`), as Zilla's
/// `(\?|&)name=([^&]*)` finds it; a parameter without `=` does not match.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|param| {
        param
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// Appends the form-decoding of `s` to `out`: `%XY` (hex, either case) becomes that byte,
/// `+` becomes a space; an invalid escape is kept literally. The server applies it to a
/// `lastEventId` value only when it contains `%`, as Zilla does.
pub fn percent_decode_form(s: &str, out: &mut Vec<u8>) {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: Header<'static> = EMPTY_HEADER;

    /// Owned copy of a parse result: (method, target, minor, headers, head length).
    type Parsed = (String, String, u8, Vec<(String, Vec<u8>)>, usize);

    /// Parses `buf` with default limits.
    fn parse(buf: &[u8]) -> Result<Option<Parsed>, RequestError> {
        parse_with(buf, &Limits::default())
    }

    fn parse_with(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, RequestError> {
        let mut headers = [EMPTY; 64];
        let parsed = parse_request(buf, &mut headers, limits)?;
        Ok(parsed.map(|(r, len)| {
            (
                r.method.to_string(),
                r.target.to_string(),
                r.minor_version,
                r.headers
                    .iter()
                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                    .collect(),
                len,
            )
        }))
    }

    fn err(buf: &[u8]) -> RequestError {
        parse(buf).unwrap_err()
    }

    /// Runs `f` on the request parsed from `buf`.
    fn with_request<T>(buf: &[u8], f: impl FnOnce(&Request) -> T) -> T {
        let mut headers = [EMPTY; 64];
        let (r, _) = parse_request(buf, &mut headers, &Limits::default())
            .unwrap()
            .unwrap();
        f(&r)
    }

    fn framing(head: &str) -> Result<BodyFraming, RequestError> {
        with_request(head.as_bytes(), |r| r.body_framing())
    }

    #[test]
    fn valid_get() {
        let buf = b"GET /events/items?lastEventId=AQIAAg%3D%3D&x=1 HTTP/1.1\r\n\
                    Host: localhost:7114\r\n\
                    Accept: text/event-stream\r\n\
                    Last-Event-ID: AQQABAIC\r\n\
                    \r\n\
                    body";
        let (method, target, minor, headers, len) = parse(buf).unwrap().unwrap();
        assert_eq!(method, "GET");
        assert_eq!(target, "/events/items?lastEventId=AQIAAg%3D%3D&x=1");
        assert_eq!(minor, 1);
        assert_eq!(headers.len(), 3);
        assert_eq!(
            headers[1],
            ("Accept".to_string(), b"text/event-stream".to_vec())
        );
        assert_eq!(&buf[len..], b"body");
        with_request(buf, |r| {
            assert_eq!(r.header("last-event-id"), Some(&b"AQQABAIC"[..]));
            assert_eq!(r.header("HOST"), Some(&b"localhost:7114"[..]));
            assert_eq!(r.header("cookie"), None);
            assert_eq!(r.path(), "/events/items");
            assert_eq!(r.query(), Some("lastEventId=AQIAAg%3D%3D&x=1"));
            assert!(!r.wants_close());
            assert_eq!(r.body_framing(), Ok(BodyFraming::None));
        });
    }

    #[test]
    fn http10_and_bare_lf_and_leading_empty_lines() {
        let buf = b"\r\n\r\nGET / HTTP/1.0\nHost: a\n\n";
        let (_, target, minor, headers, len) = parse(buf).unwrap().unwrap();
        assert_eq!(
            (target.as_str(), minor, headers.len(), len),
            ("/", 0, 1, buf.len())
        );
    }

    #[test]
    fn first_header_wins() {
        with_request(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n", |r| {
            assert_eq!(r.header("x-a"), Some(&b"1"[..]));
        });
    }

    #[test]
    fn incomplete() {
        let full = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n]), Ok(None), "prefix {n}");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn bad_requests() {
        for buf in [
            &b"GET  / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1 \r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET /\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b" GET / HTTP/1.1\r\n\r\n",
            b"G\x00T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(buf),
                Err(RequestError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn not_implemented_methods() {
        assert_eq!(err(b"FOO / HTTP/1.1\r\n\r\n"), RequestError::NotImplemented);
        assert_eq!(err(b"get / HTTP/1.1\r\n\r\n"), RequestError::NotImplemented);
        // Decided as soon as the method token ends or grows too long.
        assert_eq!(err(b"FOO "), RequestError::NotImplemented);
        assert_eq!(err(b"ABCDEFGHIJKLMNOPQ"), RequestError::NotImplemented);
        assert_eq!(parse(b"ABCDEFGHIJKLMNOP"), Ok(None));
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ] {
            let buf = format!("{m} / HTTP/1.1\r\n\r\n");
            assert_eq!(parse(buf.as_bytes()).unwrap().unwrap().0, m);
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            err(b"GET / HTTP/2.0\r\n\r\n"),
            RequestError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/1.2\r\n\r\n"),
            RequestError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/0.9\r\n\r\n"),
            RequestError::VersionNotSupported
        );
        assert_eq!(err(b"GET / HTTP/3"), RequestError::VersionNotSupported);
        assert_eq!(parse(b"GET / HTTP/"), Ok(None));
        assert_eq!(err(b"GET / HTTX"), RequestError::BadRequest);
        // The h2 preface, whole or as a request line, when not intercepted by the caller.
        assert_eq!(err(H2_PREFACE), RequestError::VersionNotSupported);
        assert_eq!(
            err(b"PRI * HTTP/2.0\r\n"),
            RequestError::VersionNotSupported
        );
        assert_eq!(parse(b"PRI * HTTP/"), Ok(None));
        // PRI with an HTTP/1.x version is an unknown method.
        assert_eq!(err(b"PRI * HTTP/1.1\r\n\r\n"), RequestError::NotImplemented);
    }

    #[test]
    fn uri_too_long() {
        let limits = Limits::default();
        let target = format!("/{}", "a".repeat(limits.max_target - 1));
        let ok = format!("GET {target} HTTP/1.1\r\n\r\n");
        assert!(parse(ok.as_bytes()).unwrap().is_some());
        let long = format!("GET {target}a HTTP/1.1\r\n\r\n");
        assert_eq!(err(long.as_bytes()), RequestError::UriTooLong);
        // Decided before the line ends, and before the head limit.
        let partial = format!("GET {target}a");
        assert_eq!(err(partial.as_bytes()), RequestError::UriTooLong);
        assert_eq!(parse(&partial.as_bytes()[..partial.len() - 1]), Ok(None));
        let huge = format!("GET /{}", "a".repeat(20000));
        assert_eq!(err(huge.as_bytes()), RequestError::UriTooLong);
    }

    #[test]
    fn head_too_large() {
        let limits = Limits {
            max_head: 100,
            max_target: 50,
            max_headers: 64,
        };
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() < 98 {
            head.extend_from_slice(b"X: y\r\n");
        }
        head.truncate(98);
        // 98 bytes, incomplete: wait.
        assert_eq!(parse_with(&head, &limits), Ok(None));
        // 100 bytes and still incomplete: refuse.
        let mut over = head.clone();
        over.extend_from_slice(b"zz");
        assert_eq!(
            parse_with(&over, &limits),
            Err(RequestError::HeadersTooLarge)
        );
        // A complete head of exactly max_head passes; one byte more does not.
        let mut exact = b"GET / HTTP/1.1\r\nX: ".to_vec();
        exact.resize(100 - 4, b'v');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), 100);
        assert!(parse_with(&exact, &limits).unwrap().is_some());
        let mut exact_plus = exact.clone();
        exact_plus.insert(20, b'v');
        assert_eq!(
            parse_with(&exact_plus, &limits),
            Err(RequestError::HeadersTooLarge)
        );
        // Endless empty lines before the request line.
        assert_eq!(
            parse_with(&[b'\n'; 100], &limits),
            Err(RequestError::HeadersTooLarge)
        );
    }

    #[test]
    fn header_count_limit() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..64 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        let mut ok = head.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(parse(&ok).unwrap().unwrap().3.len(), 64);
        head.extend_from_slice(b"X-64: v\r\n\r\n");
        assert_eq!(err(&head), RequestError::HeadersTooLarge);

        // The caller's array caps the limit too.
        let mut small = [EMPTY; 2];
        let buf = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse_request(buf, &mut small, &Limits::default()).map(|r| r.is_some()),
            Err(RequestError::HeadersTooLarge)
        );
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let mut big = [EMPTY; 64];
        assert_eq!(
            parse_request(buf, &mut big, &limits).map(|r| r.is_some()),
            Err(RequestError::HeadersTooLarge)
        );
    }

    #[test]
    fn error_status_and_reason() {
        let cases = [
            (RequestError::BadRequest, 400, "Bad Request"),
            (RequestError::UriTooLong, 414, "URI Too Long"),
            (
                RequestError::HeadersTooLarge,
                431,
                "Request Header Fields Too Large",
            ),
            (RequestError::NotImplemented, 501, "Not Implemented"),
            (
                RequestError::VersionNotSupported,
                505,
                "HTTP Version Not Supported",
            ),
        ];
        for (e, status, reason) in cases {
            assert_eq!((e.status(), e.reason()), (status, reason));
        }
    }

    #[test]
    fn body_framing_cases() {
        let get = "GET / HTTP/1.1\r\n";
        let f = |headers: &str| framing(&format!("{get}{headers}\r\n"));
        assert_eq!(f(""), Ok(BodyFraming::None));
        assert_eq!(f("Content-Length: 0\r\n"), Ok(BodyFraming::Length(0)));
        assert_eq!(f("Content-Length: 42\r\n"), Ok(BodyFraming::Length(42)));
        assert_eq!(f("Content-Length:  42 \r\n"), Ok(BodyFraming::Length(42)));
        assert_eq!(f("Content-Length: 42, 42\r\n"), Ok(BodyFraming::Length(42)));
        assert_eq!(
            f("Content-Length: 42\r\ncontent-length: 42\r\n"),
            Ok(BodyFraming::Length(42))
        );
        assert_eq!(
            f("Content-Length: 18446744073709551615\r\n"),
            Ok(BodyFraming::Length(u64::MAX))
        );
        assert_eq!(
            f("Transfer-Encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            f("Transfer-Encoding: Chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            f("Transfer-Encoding:  chunked ,\r\n"),
            Ok(BodyFraming::Chunked)
        );

        let bad = RequestError::BadRequest;
        for headers in [
            "Content-Length: 42\r\nContent-Length: 43\r\n",
            "Content-Length: 42, 43\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +1\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 1 2\r\n",
            "Content-Length: \r\n",
            "Content-Length: 42,\r\n",
            "Content-Length: 18446744073709551616\r\n",
            // Smuggling: both framings.
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
            // chunked twice, or not last.
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "Transfer-Encoding: \r\n",
            "Transfer-Encoding: ,\r\n",
        ] {
            assert_eq!(f(headers), Err(bad), "{headers:?}");
        }
        let nyi = RequestError::NotImplemented;
        for headers in [
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: identity\r\n",
            "Transfer-Encoding: xchunked\r\n",
            "Transfer-Encoding: chunked;q=1\r\n",
        ] {
            assert_eq!(f(headers), Err(nyi), "{headers:?}");
        }
        // Transfer-Encoding in HTTP/1.0 is faulty framing.
        assert_eq!(
            framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(bad)
        );
    }

    #[test]
    fn connection_close() {
        let close = |head: &str| with_request(head.as_bytes(), |r| r.wants_close());
        assert!(!close("GET / HTTP/1.1\r\n\r\n"));
        assert!(close("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(close(
            "GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n"
        ));
        assert!(close(
            "GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
        ));
        assert!(!close("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"));
        assert!(close("GET / HTTP/1.0\r\n\r\n"));
        assert!(!close("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(close(
            "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn path_and_query_forms() {
        let pq = |target: &str| {
            let head = format!("GET {target} HTTP/1.1\r\n\r\n");
            with_request(head.as_bytes(), |r| {
                (r.path().to_string(), r.query().map(str::to_string))
            })
        };
        assert_eq!(pq("/a/b"), ("/a/b".into(), None));
        assert_eq!(pq("/a?"), ("/a".into(), Some(String::new())));
        assert_eq!(pq("/a?x=1?y"), ("/a".into(), Some("x=1?y".into())));
        assert_eq!(pq("http://h:80/p/q?x"), ("/p/q".into(), Some("x".into())));
        assert_eq!(pq("http://h:80"), ("/".into(), None));
        assert_eq!(pq("http://h?x=1"), ("/".into(), Some("x=1".into())));
        assert_eq!(pq("*"), ("*".into(), None));
        assert_eq!(pq("/%2e%2E/x%20y"), ("/%2e%2E/x%20y".into(), None));
    }

    #[test]
    fn response_heads() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            &[
                ("Content-Type", b"text/event-stream"),
                ("Transfer-Encoding", b"chunked"),
            ],
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        out.clear();
        write_response_head(&mut out, 404, &[("Connection", b"close")]);
        assert_eq!(out, b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        out.clear();
        write_response_head(&mut out, 299, &[]);
        assert_eq!(out, b"HTTP/1.1 299 \r\n\r\n");
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "contains CR, LF or NUL"))]
    fn response_header_with_crlf_is_skipped() {
        let mut out = Vec::new();
        write_response_head(&mut out, 204, &[("X", b"a\r\nInjected: 1"), ("Y", b"b")]);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nY: b\r\n\r\n");
    }

    #[test]
    fn reason_phrases() {
        for (status, reason) in [
            (200, "OK"),
            (204, "No Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (299, ""),
        ] {
            assert_eq!(reason_phrase(status), reason);
        }
    }

    #[test]
    fn chunk_prefixes() {
        let prefix = |len: usize| {
            let mut buf = [0xaa; CHUNK_PREFIX_MAX];
            let start = chunk_prefix(len, &mut buf);
            buf[start..].to_vec()
        };
        assert_eq!(prefix(0), b"0\r\n");
        assert_eq!(prefix(1), b"1\r\n");
        assert_eq!(prefix(15), b"f\r\n");
        assert_eq!(prefix(16), b"10\r\n");
        assert_eq!(prefix(0xabc), b"abc\r\n");
        assert_eq!(prefix(100 * 1024), b"19000\r\n");
        assert_eq!(prefix(0xffff_fffe), b"fffffffe\r\n");
        assert_eq!(prefix(0xffff_ffff), b"ffffffff\r\n");
        let mut buf = [0; CHUNK_PREFIX_MAX];
        assert_eq!(chunk_prefix(0xffff_ffff, &mut buf), 0);
        assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
    }

    #[test]
    fn query_params() {
        let q = "lastEventId=AQIAAg%3D%3D&x=1&lastEventId=2";
        assert_eq!(query_param(q, "lastEventId"), Some("AQIAAg%3D%3D"));
        assert_eq!(query_param(q, "x"), Some("1"));
        assert_eq!(query_param(q, "y"), None);
        assert_eq!(query_param("a&lastEventId=&b", "lastEventId"), Some(""));
        assert_eq!(query_param("lastEventId", "lastEventId"), None);
        assert_eq!(
            query_param("xlastEventId=1&lastEventId=2", "lastEventId"),
            Some("2")
        );
        assert_eq!(query_param("lastEventIdx=1", "lastEventId"), None);
        assert_eq!(query_param("LASTEVENTID=1", "lastEventId"), None);
        assert_eq!(query_param("a=b=c", "a"), Some("b=c"));
        assert_eq!(query_param("&&a=1", "a"), Some("1"));
        assert_eq!(query_param("", "a"), None);
    }

    #[test]
    fn form_decoding() {
        let decode = |s: &str| {
            let mut out = b">".to_vec();
            percent_decode_form(s, &mut out);
            out
        };
        assert_eq!(decode("AQIAAg%3D%3D"), b">AQIAAg==");
        assert_eq!(decode("%5b%22a%22%5D"), b">[\"a\"]");
        assert_eq!(decode("a+b%20c"), b">a b c");
        assert_eq!(decode("100%"), b">100%");
        assert_eq!(decode("%4"), b">%4");
        assert_eq!(decode("%zz%41"), b">%zzA");
        assert_eq!(decode("%%41"), b">%A");
        assert_eq!(decode("%F0%9F%98%80"), ">😀".as_bytes());
        assert_eq!(decode(""), b">");
    }
}
