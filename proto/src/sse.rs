//! Server-Sent Events encoding, byte-compatible with Zilla's and parsed correctly by WHATWG
//! `EventSource`: fields `id`, `event`, `data`, each line ended by LF, no space after the
//! colon, an empty line ending the event.

/// Zilla's challenge event (no `id:` line).
pub const CHALLENGE_EVENT: &[u8] =
    b"event:challenge\ndata:{\"method\":\"POST\",\"headers\":{\"content-type\":\"application/x-challenge-response\"}}\n\n";

/// True when `field` can be written on one line: no CR, LF or NUL.
#[inline]
fn line_safe(field: &[u8]) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, field).is_none()
}

/// Appends `name` `value` `\n` when `value` fits on one line; otherwise (a caller bug)
/// debug-asserts and writes nothing.
#[inline]
fn field_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if line_safe(value) {
        out.extend_from_slice(name);
        out.extend_from_slice(value);
        out.push(b'\n');
    } else {
        debug_assert!(false, "SSE field value contains CR, LF or NUL");
    }
}

/// Index of the first CR or LF in `bytes` (SIMD through `memchr`).
#[inline]
fn find_line_break(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', bytes)
}

/// Appends one event: `["id:" id "\n"] ["event:" type "\n"]`, then `"data:" line "\n"` per
/// line of `data`, then `"\n"`.
///
/// `data: None` writes no data line; `Some(b"")` writes `data:\n`. Lines of `data` are split
/// on CR, LF and CRLF, as browsers parse them (Zilla splits on LF only); a trailing line
/// break yields a final empty `data:` line.
///
/// `id` and `event` must not contain CR, LF or NUL: such a line is a caller bug, caught by
/// `debug_assert` and skipped entirely in release builds (never a broken line).
pub fn encode_event(
    out: &mut Vec<u8>,
    id: Option<&[u8]>,
    event: Option<&[u8]>,
    data: Option<&[u8]>,
) {
    let id_len = id.map_or(0, <[u8]>::len);
    let event_len = event.map_or(0, <[u8]>::len);
    let data_len = data.map_or(0, <[u8]>::len);
    // Exact when the data has no line breaks; each break needs 6 more bytes at most.
    out.reserve(id_len + event_len + data_len + 20);
    if let Some(id) = id {
        field_line(out, b"id:", id);
    }
    if let Some(event) = event {
        field_line(out, b"event:", event);
    }
    if let Some(mut rest) = data {
        loop {
            out.extend_from_slice(b"data:");
            match find_line_break(rest) {
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    out.push(b'\n');
                    let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    rest = &rest[i + skip..];
                }
                None => {
                    out.extend_from_slice(rest);
                    out.push(b'\n');
                    break;
                }
            }
        }
    }
    out.push(b'\n');
}

/// Appends a comment event `":" text "\n\n"`. Heartbeats use `b""`. A `text` containing CR
/// or LF is left out (`":\n\n"` is written).
pub fn encode_comment(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b':');
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(b"\n\n");
}

/// Upper bound of the bytes [`encode_event`] appends for an id of `id_len` bytes, a type of
/// `event_len` bytes (pass 0 when absent) and data of `data_len` bytes (`None`: no data).
/// Every data byte may be a line break that costs `"\ndata:"`, hence `6 × data_len`.
/// Saturates instead of overflowing.
pub fn encoded_len_bound(id_len: usize, event_len: usize, data_len: Option<usize>) -> usize {
    let data = match data_len {
        Some(n) => n.saturating_mul(6).saturating_add(6),
        None => 0,
    };
    id_len
        .saturating_add(event_len)
        .saturating_add(data)
        .saturating_add(4 + 7 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&[u8]>, ty: Option<&[u8]>, data: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_event(&mut out, id, ty, data);
        let bound = encoded_len_bound(
            id.map_or(0, <[u8]>::len),
            ty.map_or(0, <[u8]>::len),
            data.map(<[u8]>::len),
        );
        assert!(out.len() <= bound, "{} > {bound}", out.len());
        out
    }

    #[test]
    fn reference_examples() {
        assert_eq!(
            event(None, None, Some(b"Hello, world")),
            b"data:Hello, world\n\n"
        );
        assert_eq!(
            event(None, Some(b"one"), Some(b"Hello, world")),
            b"event:one\ndata:Hello, world\n\n"
        );
        assert_eq!(
            event(None, Some(b""), Some(b"Hello, world")),
            b"event:\ndata:Hello, world\n\n"
        );
        assert_eq!(event(Some(b""), None, None), b"id:\n\n");
        assert_eq!(
            event(Some(b"105"), None, Some(b"Hello, world")),
            b"id:105\ndata:Hello, world\n\n"
        );
        assert_eq!(
            event(Some(b"AQQABAIC"), None, Some(b"Hello, world")),
            b"id:AQQABAIC\ndata:Hello, world\n\n"
        );
        assert_eq!(
            event(Some(b"AQQABgIC"), None, Some(b"Hello, again")),
            b"id:AQQABgIC\ndata:Hello, again\n\n"
        );
        assert_eq!(
            event(Some(b"AQQABAIC"), Some(b"delete"), Some(b"a2V5")),
            b"id:AQQABAIC\nevent:delete\ndata:a2V5\n\n"
        );
        assert_eq!(
            event(Some(b"AQQABAIC"), Some(b"delete"), None),
            b"id:AQQABAIC\nevent:delete\n\n"
        );
    }

    #[test]
    fn consecutive_events_append() {
        let mut out = Vec::new();
        encode_event(&mut out, None, None, Some(b"Hello, world"));
        encode_event(&mut out, None, None, Some(b"Hello, again"));
        assert_eq!(out, b"data:Hello, world\n\ndata:Hello, again\n\n");
    }

    #[test]
    fn multi_line_lf() {
        assert_eq!(
            event(None, None, Some(b"Hello\nworld\n")),
            b"data:Hello\ndata:world\ndata:\n\n"
        );
        assert_eq!(event(None, None, Some(b"\n")), b"data:\ndata:\n\n");
        assert_eq!(event(None, None, Some(b"\n\n")), b"data:\ndata:\ndata:\n\n");
    }

    #[test]
    fn splits_on_cr_and_crlf() {
        assert_eq!(event(None, None, Some(b"a\rb")), b"data:a\ndata:b\n\n");
        assert_eq!(event(None, None, Some(b"a\r\nb")), b"data:a\ndata:b\n\n");
        assert_eq!(event(None, None, Some(b"a\r\n")), b"data:a\ndata:\n\n");
        assert_eq!(event(None, None, Some(b"a\r")), b"data:a\ndata:\n\n");
        // LF CR is two breaks, CR CR too.
        assert_eq!(
            event(None, None, Some(b"a\n\rb")),
            b"data:a\ndata:\ndata:b\n\n"
        );
        assert_eq!(
            event(None, None, Some(b"a\r\rb")),
            b"data:a\ndata:\ndata:b\n\n"
        );
        assert_eq!(
            event(None, None, Some(b"one\r\ntwo\rthree\nfour")),
            b"data:one\ndata:two\ndata:three\ndata:four\n\n"
        );
    }

    #[test]
    fn breaks_at_every_position_of_a_word() {
        // Exercises the eight-byte scan around chunk boundaries.
        for len in 0..40 {
            for at in 0..len {
                for brk in [b'\n', b'\r'] {
                    let mut data = vec![b'x'; len];
                    data[at] = brk;
                    let mut want = b"data:".to_vec();
                    want.extend_from_slice(&data[..at]);
                    want.extend_from_slice(b"\ndata:");
                    want.extend_from_slice(&data[at + 1..]);
                    want.extend_from_slice(b"\n\n");
                    assert_eq!(event(None, None, Some(&data)), want, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn high_bytes_are_not_line_breaks() {
        let data: Vec<u8> = (0u8..=255).filter(|&b| b != b'\n' && b != b'\r').collect();
        let mut want = b"data:".to_vec();
        want.extend_from_slice(&data);
        want.extend_from_slice(b"\n\n");
        assert_eq!(event(None, None, Some(&data)), want);
    }

    #[test]
    fn empty_and_null_data() {
        assert_eq!(event(None, None, Some(b"")), b"data:\n\n");
        assert_eq!(event(None, None, None), b"\n");
    }

    #[test]
    fn large_value() {
        let data = vec![b'x'; 100 * 1024];
        let out = event(Some(b"AQIAAg=="), None, Some(&data));
        assert_eq!(out.len(), 12 + 5 + data.len() + 2);
        assert!(out.starts_with(b"id:AQIAAg==\ndata:xxx"));
        assert!(out.ends_with(b"xxx\n\n"));

        let mut lines = vec![b'y'; 100 * 1024];
        for i in (99..lines.len()).step_by(100) {
            lines[i] = b'\n';
        }
        let out = event(None, None, Some(&lines));
        let data_lines = out
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"data:"))
            .count();
        assert_eq!(data_lines, lines.len() / 100 + 1);
    }

    #[test]
    fn bound_holds_for_worst_case() {
        let data = vec![b'\n'; 1000];
        let out = event(Some(b"x"), Some(b"y"), Some(&data));
        assert_eq!(out.len(), 5 + 8 + 1001 * 6 + 1);
        assert!(encoded_len_bound(usize::MAX, 1, Some(usize::MAX)) == usize::MAX);
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "contains CR, LF or NUL"))]
    fn bad_id_line_is_skipped() {
        assert_eq!(event(Some(b"a\nb"), None, Some(b"x")), b"data:x\n\n");
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "contains CR, LF or NUL"))]
    fn bad_event_line_is_skipped() {
        assert_eq!(
            event(Some(b"1"), Some(b"a\0b"), Some(b"x")),
            b"id:1\ndata:x\n\n"
        );
    }

    #[test]
    fn comments() {
        let mut out = Vec::new();
        encode_comment(&mut out, b"");
        assert_eq!(out, b":\n\n");
        out.clear();
        encode_comment(&mut out, b"hello");
        assert_eq!(out, b":hello\n\n");
        out.clear();
        encode_comment(&mut out, b"a\nb");
        assert_eq!(out, b":\n\n");
        out.clear();
        encode_comment(&mut out, b"a\rb");
        assert_eq!(out, b":\n\n");
    }

    #[test]
    fn challenge_bytes() {
        assert_eq!(
            CHALLENGE_EVENT,
            br#"event:challenge
data:{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}

"#
        );
        let mut out = Vec::new();
        encode_event(
            &mut out,
            None,
            Some(b"challenge"),
            Some(br#"{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}"#),
        );
        assert_eq!(out, CHALLENGE_EVENT);
    }
}
