//! TLS through the zilla.yaml `tls` binding with a `filesystem` vault holding a PKCS#12
//! keystore whose password comes from `${{env.KEYSTORE_PASSWORD}}` (Zilla's example shape):
//! HTTP/2 and HTTP/1.1 by ALPN; a client speaking plain HTTP, or garbage, to the TLS port is
//! closed without touching an open stream.

mod common;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::secure::{openssl_in, self_signed};
use common::*;

fn config(port: u16, kafka: &str, store: &str) -> String {
    format!(
        r#"name: tls-test
vaults:
  my_servers:
    type: filesystem
    options:
      keys:
        store: {store}
        type: pkcs12
        password: "${{{{env.KEYSTORE_PASSWORD}}}}"
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options: {{ host: 127.0.0.1, port: {port} }}
    exit: north_tls_server
  north_tls_server:
    type: tls
    kind: server
    vault: my_servers
    options: {{ keys: [ localhost ], sni: [ localhost ], alpn: [ h2, http/1.1 ] }}
    exit: north_http_server
  north_http_server:
    type: http
    kind: server
    routes:
      - when: [ {{ headers: {{ ":scheme": https, ":path": "/events" }} }} ]
        exit: north_sse_server
  north_sse_server: {{ type: sse, kind: server, exit: north_sse_kafka_mapping }}
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [ {{ path: /events }} ]
        exit: south_kafka_client
        with: {{ topic: events }}
  south_kafka_client: {{ type: kafka, kind: client, options: {{ servers: [ "{kafka}" ] }}, exit: south_tcp_client }}
  south_tcp_client: {{ type: tcp, kind: client }}
"#
    )
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl").args(args).output().expect("curl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_binding_with_a_pkcs12_vault_serves_both_versions_and_refuses_plain_http() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "before");

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let store = dir.path().join("localhost.p12");
    let (key, cert, store) = (
        key.to_str().unwrap(),
        cert.to_str().unwrap(),
        store.to_str().unwrap(),
    );
    self_signed(
        None,
        key,
        cert,
        "/CN=localhost",
        &["subjectAltName=DNS:localhost"],
    );
    openssl_in(
        None,
        &[
            "pkcs12",
            "-export",
            "-in",
            cert,
            "-inkey",
            key,
            "-name",
            "localhost",
            "-out",
            store,
            "-passout",
            "pass:s3cret",
        ],
    );

    let port = free_port();
    let server = Server::builder(port)
        .config(&config(port, &broker.bootstrap(), store))
        .env("KEYSTORE_PASSWORD", "s3cret")
        .start();
    let url = format!("https://localhost:{port}/events");
    let resolve = format!("localhost:{port}:127.0.0.1");

    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (out, err) = curl(&[
            "-sS",
            "-N",
            "-m",
            "2",
            "--cacert",
            cert,
            "--resolve",
            &resolve,
            flag,
            "-w",
            "\nversion=%{http_version} status=%{http_code}\n",
            &url,
        ]);
        assert!(out.contains("data:before"), "{flag}: {out}\n{err}");
        assert!(
            out.contains(&format!("version={version} status=200")),
            "{flag}: {out}"
        );
    }

    // An open HTTP/2 stream over TLS, to check nothing else is touched.
    let open = Sse::open_args(&url, &["--cacert", cert, "--resolve", &resolve, "--http2"]);
    assert_eq!(open.expect(1, WAIT)[0].data, "before");

    // Plain HTTP, then garbage, to the TLS port: each connection is closed.
    for bytes in [
        &b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        &[0x16, 0x03, 0xff, 0xff, 0, 1, 2, 3][..],
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut buf = [0u8; 256];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(_) => continue, // a TLS alert may come first
            }
        };
        assert!(closed, "the connection was not closed");
    }

    producer.send_value("events", Some(0), "after");
    assert_eq!(
        open.expect(1, WAIT)[0].data,
        "after",
        "the open stream kept streaming"
    );
    let _ = server;
}
