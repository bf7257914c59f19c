//! What routing and auth need of a request, whatever HTTP version carried it. Below both
//! `http` and `auth` (a guard reads the `authorization` header through it).

use proto::http1::Request;

pub trait Head {
    fn method(&self) -> &str;
    /// Path and query as sent (`:path`), not decoded.
    fn target(&self) -> &str;
    /// `http` or `https`.
    fn scheme(&self) -> &str;
    /// `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    fn authority(&self) -> Option<&[u8]>;
    /// A regular header by lower-case name (first occurrence).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The client asked for the connection to close after this response (HTTP/1.x only).
    fn wants_close(&self) -> bool;

    /// The target before `?`.
    fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The target after `?`.
    fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }
}

/// An HTTP/1.1 request received over TLS: `:scheme` is `https`.
pub struct Secure<'r, 'h, 'b>(pub &'r Request<'h, 'b>);

impl Head for Secure<'_, '_, '_> {
    fn method(&self) -> &str {
        self.0.method
    }
    fn target(&self) -> &str {
        self.0.target
    }
    fn scheme(&self) -> &str {
        "https"
    }
    fn authority(&self) -> Option<&[u8]> {
        Request::header(self.0, "host")
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        Request::header(self.0, name)
    }
    fn wants_close(&self) -> bool {
        Request::wants_close(self.0)
    }
}

impl Head for proto::h2::Request {
    fn method(&self) -> &str {
        proto::h2::Request::method(self)
    }
    fn target(&self) -> &str {
        proto::h2::Request::target(self)
    }
    fn scheme(&self) -> &str {
        proto::h2::Request::scheme(self)
    }
    fn authority(&self) -> Option<&[u8]> {
        proto::h2::Request::authority(self).map(str::as_bytes)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        proto::h2::Request::header(self, name)
    }
    fn wants_close(&self) -> bool {
        false
    }
}

impl Head for Request<'_, '_> {
    fn method(&self) -> &str {
        self.method
    }
    fn target(&self) -> &str {
        self.target
    }
    fn scheme(&self) -> &str {
        "http"
    }
    fn authority(&self) -> Option<&[u8]> {
        Request::header(self, "host")
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        Request::header(self, name)
    }
    fn wants_close(&self) -> bool {
        Request::wants_close(self)
    }
    fn path(&self) -> &str {
        Request::path(self)
    }
    fn query(&self) -> Option<&str> {
        Request::query(self)
    }
}
