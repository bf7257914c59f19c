//! TLS to the broker through a `tls` client binding between the kafka client and its tcp
//! client. tansu 0.6 cannot serve TLS, so Debian's haproxy terminates it in front of tansu
//! (`mode tcp`), with tansu advertising haproxy's port; certificates come from a test CA made
//! with the openssl CLI. Trusted: the stream delivers. A CA we do not trust, a server name the
//! certificate does not carry, and (mutual TLS) no client certificate: new streams get 503 and
//! the log says why, naming the binding.

mod common;
use std::path::Path;

use common::secure::{assert_stream_refused, secured_yaml, Haproxy, TestCa};
use common::*;

/// tansu behind haproxy: (broker, haproxy, CA dir). The server certificate is for
/// `kafka.test` and `127.0.0.1`.
struct Tls {
    _broker: Broker,
    haproxy: Haproxy,
    ca: TestCa,
    _dir: tempfile::TempDir,
}

fn tls_broker(mutual: bool) -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    ca.sign("broker", "DNS:kafka.test,IP:127.0.0.1", false);
    ca.sign("client", "DNS:sse-kafka.test", true);
    let hp = free_port();
    let broker = Broker::start_on(free_port(), &format!("127.0.0.1:{hp}"));
    let client_ca = ca.cert();
    let haproxy = Haproxy::start(
        dir.path(),
        hp,
        &broker.addr(),
        &dir.path().join("broker-bundle.pem"),
        mutual.then_some(client_ca.as_path()),
    );
    broker.create_topic("events", 1);
    Tls {
        _broker: broker,
        haproxy,
        ca,
        _dir: dir,
    }
}

impl Tls {
    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.haproxy.port)
    }

    /// A librdkafka producer over TLS (with the client certificate: haproxy may require it).
    fn producer(&self) -> Producer {
        let d = &self.ca.dir;
        let p = |f: &str| d.join(f).display().to_string();
        Producer::with_options(
            &self.bootstrap(),
            &[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", &p("ca.pem")),
                ("ssl.certificate.location", &p("client.pem")),
                ("ssl.key.location", &p("client.key")),
                ("ssl.endpoint.identification.algorithm", "none"),
            ],
        )
    }

    /// Our server with `vault` (YAML under `vaults:`) and the tls client binding's `options`
    /// (YAML lines indented by 6).
    fn server(&self, vault: &str, options: &str) -> Server {
        let port = free_port();
        let tls = format!(
            "  south_tls_client:\n    type: tls\n    kind: client\n    vault: your_clients\n    options:\n{options}\n    exit: south_tcp_client"
        );
        let yaml = secured_yaml(
            port,
            &self.bootstrap(),
            "",
            "south_tls_client",
            &format!("vaults:\n  your_clients:\n{vault}"),
            &tls,
            None,
        );
        Server::builder(port)
            .config(&yaml)
            .dir(&self.ca.dir)
            .env("KEYSTORE_PASSWORD", "store-secret")
            .start()
    }
}

fn pkcs12_trust(dir: &Path, ca: &TestCa) -> String {
    ca.truststore("trust.p12", "kafka", "store-secret");
    let _ = dir;
    "    type: filesystem\n    options:\n      trust:\n        store: trust.p12\n        type: pkcs12\n        password: ${{env.KEYSTORE_PASSWORD}}".into()
}

fn assert_refused(server: &Server, why: &str) {
    assert_stream_refused(server);
    server.expect_log(&format!("expected a TLS failure naming {why:?}"), |l| {
        l.contains("TLS (bindings.south_tls_client) handshake failed") && l.contains(why)
    });
}

#[test]
fn stream_through_the_tls_client_binding_delivers() {
    let tls = tls_broker(false);
    let producer = tls.producer();
    producer.send("events", None, None, Some(b"one"), &[]);
    // Zilla's shape: a PKCS#12 truststore, `trust: [kafka]`, `sni: [kafka.test]`, alpn.
    let vault = pkcs12_trust(&tls.ca.dir, &tls.ca);
    let a = tls.server(&vault, "      trust:\n        - kafka\n      sni:\n        - kafka.test\n      alpn:\n        - h2");
    // PEM trust (our extension), no SNI option: the certificate is checked for 127.0.0.1.
    let b = tls.server(
        "    type: filesystem\n    options:\n      trust:\n        store: ca.pem\n        type: pem",
        "      trustcacerts: true",
    );
    let sa = Sse::open(&a.url("/events"));
    let sb = Sse::open(&b.url("/events"));
    assert_eq!(sa.status(WAIT), Some(200), "{}", a.logs());
    assert_eq!(sb.status(WAIT), Some(200), "{}", b.logs());
    producer.send("events", None, None, Some(b"two"), &[]);
    for (sse, server) in [(&sa, &a), (&sb, &b)] {
        let got: Vec<String> = sse.expect(2, WAIT).into_iter().map(|e| e.data).collect();
        assert_eq!(got, ["one", "two"], "{}", server.logs());
    }
}

#[test]
fn an_untrusted_ca_and_a_wrong_server_name_are_refused() {
    let tls = tls_broker(false);
    // Another CA.
    let other = TestCa::new(&tls.ca.dir, "other");
    other.truststore("other.p12", "kafka", "store-secret");
    let server = tls.server(
        "    type: filesystem\n    options:\n      trust:\n        store: other.p12\n        password: ${{env.KEYSTORE_PASSWORD}}",
        "      trust:\n        - kafka",
    );
    assert_refused(&server, "UnknownIssuer");
    drop(server);
    // The right CA, a name the certificate does not carry.
    let vault = pkcs12_trust(&tls.ca.dir, &tls.ca);
    let server = tls.server(&vault, "      sni:\n        - wrong.test");
    assert_refused(&server, "not valid for name \"wrong.test\"");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let tls = tls_broker(true);
    let producer = tls.producer();
    producer.send("events", None, None, Some(b"one"), &[]);
    tls.ca
        .keystore("client", "client.p12", "client", "store-secret");
    let both = "    type: filesystem\n    options:\n      keys:\n        store: client.p12\n        password: ${{env.KEYSTORE_PASSWORD}}\n      trust:\n        store: ca.pem\n        type: pem";
    let with_cert = tls.server(
        both,
        "      keys:\n        - client\n      sni:\n        - kafka.test",
    );
    let sse = Sse::open(&with_cert.url("/events"));
    assert_eq!(sse.status(WAIT), Some(200), "{}", with_cert.logs());
    assert_eq!(sse.expect(1, WAIT)[0].data, "one");

    let without = tls.server(both, "      sni:\n        - kafka.test");
    assert_stream_refused(&without);
    without.expect_log("no TLS handshake failure logged", |l| {
        l.contains("TLS (bindings.south_tls_client) handshake failed")
    });
}
