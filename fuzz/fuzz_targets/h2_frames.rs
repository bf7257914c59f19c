//! Arbitrary bytes after a valid client preface into `H2Conn::recv`, split into chunks of a
//! size the first byte picks, with a server that answers requests and sends DATA as windows
//! allow: never panics, consumes whole frames only, and writes only complete frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::h2::frame::{FrameHeader, HEADER_LEN};
use proto::h2::{ErrorCode, Event, H2Conn, Limits, Settings, PREFACE};

/// The output is a sequence of complete frames.
fn check_frames(mut out: &[u8]) {
    while let Some(head) = FrameHeader::parse(out) {
        let end = HEADER_LEN + head.length as usize;
        assert!(end <= out.len(), "partial frame written");
        out = &out[end..];
    }
    assert!(out.is_empty(), "partial frame header written");
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let chunk = match pick % 8 {
        0 => usize::MAX,
        n => usize::from(n) * 7,
    };
    let settings = Settings {
        max_concurrent_streams: 4,
        initial_window_size: if pick & 0x80 != 0 { 0 } else { 65_535 },
        max_header_list_size: 1024,
        header_table_size: if pick & 0x40 != 0 { 0 } else { 4096 },
        ..Settings::default()
    };
    let limits = Limits {
        reset_burst: 20,
        control_burst: 20,
        max_queued_output: 4096,
        ..Limits::default()
    };
    let mut conn = H2Conn::with_limits(settings, limits);
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    if pick & 0x20 != 0 {
        // Two requests to start from: POST / on stream 1 (body follows), GET / on stream 3.
        input.extend_from_slice(&[0, 0, 3, 1, 0x04, 0, 0, 0, 1, 0x83, 0x87, 0x84]);
        input.extend_from_slice(&[0, 0, 3, 1, 0x05, 0, 0, 0, 3, 0x82, 0x87, 0x84]);
    }
    input.extend_from_slice(data);

    let mut buf = Vec::new();
    let mut out = Vec::new();
    let event_bytes = [b'x'; 300];
    for (tick, piece) in input.chunks(chunk.min(input.len().max(1))).enumerate() {
        buf.extend_from_slice(piece);
        match conn.recv(&buf, tick as u64 / 8) {
            Ok(n) => {
                assert!(n <= buf.len());
                buf.drain(..n);
                assert!(
                    buf.len() < conn.recv_buffer_len(),
                    "a complete frame was left"
                );
            }
            Err(e) => {
                assert_eq!(conn.error(), Some(e));
                conn.write_output(&mut out);
                check_frames(&out);
                return;
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Request(r) => {
                    let id = r.stream_id;
                    let _ = (
                        r.method(),
                        r.path(),
                        r.query(),
                        r.authority(),
                        r.headers().count(),
                    );
                    match id % 4 {
                        1 => {
                            conn.send_headers(
                                id,
                                200,
                                &[("content-type", b"text/event-stream")],
                                false,
                                &mut out,
                            );
                            let n = conn.frame_capacity(id).min(event_bytes.len());
                            if n > 0 {
                                out.extend_from_slice(&conn.data_frame_header(id, n, false));
                                out.extend_from_slice(&event_bytes[..n]);
                            }
                        }
                        3 if id % 8 == 3 => {
                            conn.reset_stream(id, ErrorCode::CANCEL, &mut out);
                        }
                        _ => {
                            conn.send_headers(id, 404, &[], true, &mut out);
                        }
                    }
                }
                Event::WindowOpened { stream_id } if stream_id != 0 => {
                    conn.send_data(stream_id, &event_bytes, stream_id % 3 == 0, &mut out);
                }
                Event::GoAway { .. } => {
                    let last = conn.last_stream_id();
                    conn.goaway(last, ErrorCode::NO_ERROR, &mut out);
                }
                _ => {}
            }
        }
        conn.write_output(&mut out);
        check_frames(&out);
        out.clear();
    }
});
