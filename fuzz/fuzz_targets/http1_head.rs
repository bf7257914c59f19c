//! Arbitrary bytes as an HTTP/1.1 request head: never panics, and a parsed head is
//! consistent with the buffer and the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::http1::{parse_request, query_param, Limits, EMPTY_HEADER};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut headers = [EMPTY_HEADER; 64];
    if let Ok(Some((request, head_len))) = parse_request(data, &mut headers, &limits) {
        assert!(head_len <= data.len() && head_len <= limits.max_head);
        assert!(request.target.len() <= limits.max_target);
        assert!(request.minor_version <= 1);
        assert!(request.headers.len() <= limits.max_headers);
        let _ = request.header("last-event-id");
        let _ = request.path();
        if let Some(query) = request.query() {
            let _ = query_param(query, "lastEventId");
        }
        let _ = request.wants_close();
        let _ = request.body_framing();
    }
});
