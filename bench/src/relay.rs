//! An optional Kafka relay between everyone and tansu that rewrites the `max_wait_ms` of Fetch
//! requests (`--fetch-max-wait-ms`).
//!
//! Why: tansu 0.6 answers every Fetch only after sleeping about half of its `max_wait_ms`
//! (its fetch loop sleeps before checking whether it already has data), so with the server's
//! 500 ms long poll every record waits 250–500 ms in the broker, whatever the server does. Real
//! Kafka answers a long poll as soon as `min_bytes` are there. Shortening the wait in flight
//! (for the server, the producer and the broker-floor consumer alike) shows the latency that
//! is ours, at the price of more (mostly empty) fetches per second.
//!
//! Tansu is started advertising the relay, so every connection (metadata, fetch, produce) goes
//! through it. Responses are copied unchanged.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const FETCH: i16 = 1;

pub struct KafkaRelay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl KafkaRelay {
    /// Listens on `listen` and relays to `upstream` (which may start later).
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        max_wait_ms: i32,
    ) -> Result<KafkaRelay, String> {
        let listener =
            TcpListener::bind(listen).map_err(|e| format!("relay bind {listen}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::Builder::new()
            .name("kafka-relay".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(down) = conn else { continue };
                    std::thread::spawn(move || {
                        let _ = relay(down, upstream, max_wait_ms);
                    });
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(KafkaRelay { addr: listen, stop })
    }
}

impl Drop for KafkaRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(mut down: TcpStream, upstream: SocketAddr, max_wait_ms: i32) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream)?;
    down.set_nodelay(true)?;
    up.set_nodelay(true)?;
    let (mut up_r, mut down_w) = (up.try_clone()?, down.try_clone()?);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match up_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if down_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = down_w.shutdown(Shutdown::Both);
        let _ = up_r.shutdown(Shutdown::Both);
    });
    // Requests: whole frames, Fetch rewritten.
    let mut frame = Vec::with_capacity(64 * 1024);
    loop {
        let mut size = [0u8; 4];
        if down.read_exact(&mut size).is_err() {
            break;
        }
        let len = i32::from_be_bytes(size);
        if !(0..=256 << 20).contains(&len) {
            break;
        }
        frame.clear();
        frame.resize(len as usize, 0);
        if down.read_exact(&mut frame).is_err() {
            break;
        }
        rewrite_fetch(&mut frame, max_wait_ms);
        up.write_all(&size)?;
        up.write_all(&frame)?;
    }
    let _ = up.shutdown(Shutdown::Both);
    let _ = down.shutdown(Shutdown::Both);
    Ok(())
}

/// Reads an unsigned varint at `pos`.
fn uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Sets `max_wait_ms` of a Fetch request (header v1 before Fetch v12, v2 with tagged fields
/// from v12; `replica_id` leaves the body in v15). Leaves anything else untouched.
pub fn rewrite_fetch(frame: &mut [u8], max_wait_ms: i32) -> bool {
    if frame.len() < 10 {
        return false;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    if api_key != FETCH {
        return false;
    }
    let mut pos = 8;
    let id_len = i16::from_be_bytes([frame[pos], frame[pos + 1]]);
    pos += 2 + id_len.max(0) as usize;
    if version >= 12 {
        let Some(tags) = uvarint(frame, &mut pos) else {
            return false;
        };
        for _ in 0..tags {
            let (Some(_tag), Some(size)) = (uvarint(frame, &mut pos), uvarint(frame, &mut pos))
            else {
                return false;
            };
            pos += size as usize;
        }
    }
    if version < 15 {
        pos += 4; // replica_id
    }
    if pos + 4 > frame.len() {
        return false;
    }
    let current = i32::from_be_bytes(frame[pos..pos + 4].try_into().unwrap());
    if current > max_wait_ms {
        frame[pos..pos + 4].copy_from_slice(&max_wait_ms.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::rewrite_fetch;

    #[test]
    fn rewrites_max_wait_of_fetch_v11_and_v12() {
        // Fetch v11: key 1, version 11, correlation 7, client id "ab", replica -1, max wait 500.
        let mut f = vec![0, 1, 0, 11, 0, 0, 0, 7, 0, 2, b'a', b'b'];
        f.extend_from_slice(&(-1i32).to_be_bytes());
        f.extend_from_slice(&500i32.to_be_bytes());
        f.extend_from_slice(&1i32.to_be_bytes());
        assert!(rewrite_fetch(&mut f, 5));
        assert_eq!(&f[16..20], &5i32.to_be_bytes());
        assert_eq!(&f[20..24], &1i32.to_be_bytes(), "min_bytes untouched");
        // v12: header tagged fields (none) after the client id.
        let mut g = vec![0, 1, 0, 12, 0, 0, 0, 7, 0, 2, b'a', b'b', 0];
        g.extend_from_slice(&(-1i32).to_be_bytes());
        g.extend_from_slice(&500i32.to_be_bytes());
        assert!(rewrite_fetch(&mut g, 5));
        assert_eq!(&g[17..21], &5i32.to_be_bytes());
        // Not a fetch: untouched.
        let mut p = vec![0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 1, 2, 3, 4];
        let copy = p.clone();
        assert!(!rewrite_fetch(&mut p, 5));
        assert_eq!(p, copy);
    }
}
