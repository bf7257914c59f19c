//! Raw HTTP/1.1 over a TcpStream, for requests curl cannot send.
use std::io::ErrorKind;
use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::*;

/// A response read from a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// The head as text, status line included, without the final CRLFCRLF.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the whole body arrived (false: the deadline passed first; `body` is partial).
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

/// The first value of header `name` (any case) in `headers`.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One HTTP/1.1 connection driven byte by byte.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl HttpConn {
    pub fn connect(addr: &str) -> HttpConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        HttpConn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        // The server may answer and close before reading everything (e.g. 431): ignore EPIPE.
        let _ = self.stream.write_all(bytes);
    }

    /// Reads more bytes into the buffer; false on EOF/error/timeout.
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok();
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => false,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    /// Reads the response head (status line and headers); the body stays in the buffer.
    pub fn read_head(&mut self, timeout: Duration) -> Option<RawResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let status = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Some(RawResponse {
                    status,
                    head,
                    headers,
                    body: Vec::new(),
                    complete: false,
                });
            }
            if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                return None;
            }
        }
    }

    /// Reads one whole response: head, then a Content-Length body, a chunked body (decoded) or,
    /// with neither, everything until the server closes. None if no head arrived; a response
    /// whose body did not end by the deadline comes back with `complete: false`.
    pub fn read_response(&mut self, timeout: Duration) -> Option<RawResponse> {
        let deadline = Instant::now() + timeout;
        let mut r = self.read_head(timeout)?;
        if let Some(len) = r
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < len {
                if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                    r.body = std::mem::take(&mut self.buf);
                    return Some(r);
                }
            }
            r.body = self.buf.drain(..len).collect();
            r.complete = true;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                match decode_chunks(&self.buf) {
                    Some((body, used, true)) => {
                        r.body = body;
                        self.buf.drain(..used);
                        r.complete = true;
                        break;
                    }
                    partial => {
                        if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                            r.body = partial.map(|(b, _, _)| b).unwrap_or_default();
                            return Some(r);
                        }
                    }
                }
            }
        } else if !(100..200).contains(&r.status) && r.status != 204 && r.status != 304 {
            while self.fill(deadline) {}
            r.body = std::mem::take(&mut self.buf);
            r.complete = self.closed;
        } else {
            r.complete = true;
        }
        Some(r)
    }

    /// Keeps reading until `pred(buffered bytes)` holds.
    pub fn read_until(&mut self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.buf) {
                return true;
            }
            if !self.fill(deadline) && (self.closed || Instant::now() >= deadline) {
                return pred(&self.buf);
            }
        }
    }

    /// Bytes received after the last parsed head/response.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the server closes the connection within `timeout` (reading and buffering
    /// anything it still sends).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            self.fill(deadline);
        }
        self.closed
    }
}

/// Decodes chunked framing from the start of `bytes`: (body so far, bytes used, complete).
pub fn decode_chunks(bytes: &[u8]) -> Option<(Vec<u8>, usize, bool)> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(rel) = find(&bytes[pos..], b"\r\n") else {
            return Some((body, pos, false));
        };
        let line_end = pos + rel;
        let size_text = std::str::from_utf8(&bytes[pos..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data_start = line_end + 2;
        if size == 0 {
            // Last chunk; no trailers expected.
            if bytes.len() >= data_start + 2 && &bytes[data_start..data_start + 2] == b"\r\n" {
                return Some((body, data_start + 2, true));
            }
            return Some((body, pos, false));
        }
        if bytes.len() < data_start + size + 2 {
            return Some((body, pos, false));
        }
        body.extend_from_slice(&bytes[data_start..data_start + size]);
        if &bytes[data_start + size..data_start + size + 2] != b"\r\n" {
            return None;
        }
        pos = data_start + size + 2;
    }
}

/// Sends `request` on a new connection and reads one response.
pub fn raw_request(addr: &str, request: &[u8], timeout: Duration) -> Option<RawResponse> {
    let mut c = HttpConn::connect(addr);
    c.send(request);
    c.read_response(timeout)
}

/// Connects to `addr` (an IPv4 `host:port`) from `local` (e.g. 127.0.0.2; None: any) with
/// `SO_RCVBUF` set to `rcvbuf` before connecting (so the advertised window stays small).
pub fn tcp_connect(
    addr: &str,
    local: Option<std::net::Ipv4Addr>,
    rcvbuf: Option<usize>,
) -> TcpStream {
    tcp_connect_with(addr, local, rcvbuf, None)
}

/// `tcp_connect`, and with `mss` the MSS the client advertises (`TCP_MAXSEG` before connect):
/// on loopback the MSS is about 64 KiB, and the kernel sizes the *server's* send buffer from
/// it (about 20 segments), so a small MSS keeps what the server's kernel can hold for a client
/// that stopped reading small as well.
pub fn tcp_connect_with(
    addr: &str,
    local: Option<std::net::Ipv4Addr>,
    rcvbuf: Option<usize>,
    mss: Option<usize>,
) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sa: std::net::SocketAddrV4 = addr.parse().expect("IPv4 host:port");
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // Owned from here on: closed on every path.
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(size) = rcvbuf {
            let v = size as libc::c_int;
            let rc = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        }
        if let Some(mss) = mss {
            let v = mss as libc::c_int;
            let rc = libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
        }
        if let Some(ip) = local {
            let a = sockaddr(ip, 0);
            let rc = libc::bind(fd, &a as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "bind {ip}: {}", std::io::Error::last_os_error());
        }
        let a = sockaddr(*sa.ip(), sa.port());
        let rc = libc::connect(fd, &a as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        stream.set_nodelay(true).ok();
        stream
    }
}

impl HttpConn {
    /// Wraps an already connected socket (see `tcp_connect`).
    pub fn from_stream(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Whether the server has closed the connection (as far as reads have seen).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// `GET path` for an SSE stream, as a raw HTTP/1.1 request.
pub fn sse_request(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").into_bytes()
}
