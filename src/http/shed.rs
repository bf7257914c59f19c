//! Shedding that browsers survive. An EventSource given any answer but `200 text/event-stream`
//! stops for good (WHATWG HTML, "fail the connection"), so a stream refused for capacity or
//! during a drain is answered `200` with a `retry:` line and an immediate end when the client
//! accepts `text/event-stream`: the browser comes back after that delay by itself. Other
//! clients get `503` with `Retry-After`.
//!
//! Delays are jittered (src/retry.rs: half to one and a half times the base) so that clients
//! refused together do not come back together.

use super::admission::Refused;
use super::head::Head;
use crate::retry::{jittered, retry_line};

impl Refused {
    /// The index of the reason in `metrics::SHED_REASONS` (the `streams_shed_total` labels).
    pub fn index(self) -> usize {
        match self {
            Refused::Global => 0,
            Refused::PerIp => 1,
            Refused::Draining => 2,
        }
    }
}

/// Whether the request's `Accept` names `text/event-stream` (an EventSource always sends it).
pub fn accepts_event_stream(req: &dyn Head) -> bool {
    req.header("accept").is_some_and(|a| {
        a.windows(17)
            .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
    })
}

/// `Retry-After` seconds for a jittered delay in milliseconds (rounded up, at least 1).
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// What a refused request is answered, whatever the HTTP version.
pub struct ShedAnswer {
    /// 200 (with `retry:` and an immediate end) or 503.
    pub status: u16,
    /// The `retry:` line for a 200; empty for a 503.
    pub body: Vec<u8>,
    /// The `Retry-After` value of a 503.
    pub retry_after: Option<Vec<u8>>,
}

/// Decides the answer to a request refused a stream.
pub fn answer(accepts_sse: bool, base_ms: u64) -> ShedAnswer {
    let ms = jittered(base_ms);
    if accepts_sse {
        let mut line = [0u8; 32];
        let n = retry_line(ms, &mut line);
        ShedAnswer {
            status: 200,
            body: line[..n].to_vec(),
            retry_after: None,
        }
    } else {
        ShedAnswer {
            status: 503,
            body: Vec::new(),
            retry_after: Some(retry_after_secs(ms).to_string().into_bytes()),
        }
    }
}

/// The whole HTTP/1.1 response to a shed request (the connection closes after it).
pub fn http1_response(a: &ShedAnswer, cors: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let len = a.body.len().to_string();
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(cors.len() + 4);
    if a.status == 200 {
        headers.push(("Content-Type", b"text/event-stream"));
        headers.push(("Cache-Control", b"no-store"));
    }
    if let Some(ra) = &a.retry_after {
        headers.push(("Retry-After", ra));
    }
    headers.push(("Content-Length", len.as_bytes()));
    headers.push(("Connection", b"close"));
    headers.extend(cors.iter().map(|(n, v)| (*n, v.as_slice())));
    proto::http1::write_response_head(&mut out, a.status, &headers);
    out.extend_from_slice(&a.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }
}
