//! The `/metrics` endpoint of the prometheus exporter (which also answers `/health/live` and
//! `/health/ready`): a small blocking HTTP/1.1 server on its own thread, off the workers (a
//! scrape never delays an event). `--health-listen` uses the same server for health alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::render::render;
use super::Registry;
use crate::http::health::Health;

/// What a handler answers: status line text, content type, body.
pub type Reply = (&'static str, &'static str, String);

pub fn start(
    addr: SocketAddr,
    path: String,
    registry: Arc<Registry>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    start_http(addr, "metrics", move |target_path| {
        if let Some(reply) = health.answer(target_path) {
            return reply;
        }
        if target_path != path.as_bytes() {
            return ("404 Not Found", "text/plain", String::new());
        }
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&registry),
        )
    })
}

/// Binds `addr` and answers each `GET` with `handler(path)` on a thread of its own.
pub fn start_http(
    addr: SocketAddr,
    name: &str,
    handler: impl Fn(&[u8]) -> Reply + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = answer(conn, &handler);
            }
        })?;
    Ok(bound)
}

fn answer(mut conn: TcpStream, handler: &dyn Fn(&[u8]) -> Reply) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_nodelay(true)?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return conn.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let line = buf[..len].split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let target_path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, content_type, body) = if method != b"GET" {
        ("405 Method Not Allowed", "text/plain", String::new())
    } else {
        handler(target_path)
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}
