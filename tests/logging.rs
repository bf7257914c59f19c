//! Logging goes through the `log` facade: other crates' messages (rustls here) come out in our
//! format, with their target, when `SSE_KAFKA_LOG` lets their level through.

mod common;
use common::*;

/// A server with TLS on its listener (no broker is needed for a handshake), at `level`.
fn tls_server(dir: &std::path::Path, level: Option<&str>) -> Server {
    let (cert, key) = h2wire::test_certificate(dir);
    let port = free_port();
    let mut builder = Server::builder(port)
        .args(["--kafka", &format!("127.0.0.1:{}", free_port())])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    if let Some(level) = level {
        builder = builder.env("SSE_KAFKA_LOG", level);
    }
    builder.start()
}

/// One TLS handshake (curl -k; the answer does not matter).
fn handshake(server: &Server) {
    let _ = curl(
        &format!("https://127.0.0.1:{}/health", server.port),
        &["-k", "-m", "5"],
    );
}

fn rustls_lines(server: &Server) -> Vec<String> {
    server
        .log_lines()
        .all()
        .into_iter()
        .filter(|l| l.contains(" rustls::"))
        .collect()
}

#[test]
fn rustls_messages_are_logged_at_debug_in_our_format() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), Some("debug"));
    handshake(&server);
    server.expect_log("no rustls debug line after a handshake", |l| {
        l.contains(" DEBUG rustls::")
    });
    for line in rustls_lines(&server) {
        // `2026-12-01T21:00:00.000Z DEBUG rustls::server::hs: decided upon suite ...`
        let mut words = line.split(' ');
        let stamp = words.next().unwrap_or("");
        assert!(
            stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "not our timestamp: {line}"
        );
        assert!(
            matches!(
                words.next(),
                Some("DEBUG" | "WARN" | "ERROR" | "INFO" | "TRACE")
            ),
            "no level: {line}"
        );
    }
}

#[test]
fn rustls_debug_messages_stay_out_at_the_default_level() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), None);
    // The handshake that logs rustls lines at debug (the test above) logs no debug line here.
    handshake(&server);
    assert!(
        !server.logs().contains(" DEBUG "),
        "debug lines at the default level:\n{}",
        server.logs()
    );
    assert!(server.logs().contains(" INFO "), "{}", server.logs());
}
