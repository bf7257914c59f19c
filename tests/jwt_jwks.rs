//! A `jwt` guard whose keys are a JWKS URL (decisions.md 3.7: refreshed, not read once): the
//! keys served at start verify tokens; a key rotated in at the URL is picked up by the next
//! refresh; a refresh that fails (the URL serves garbage) keeps the last good keys. The JWKS is
//! served by Python's http.server from a temp dir, and `--jwks-refresh 1` refreshes every second.

mod common;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::jwt::{self, Chain, HmacKey, Key};
use common::*;

const ROLE: &str = "read:events";

/// `python3 -m http.server` on a free loopback port, killed on drop.
struct FileServer(Child, u16);

impl FileServer {
    fn start(dir: &std::path::Path) -> FileServer {
        let port = free_port();
        let child = spawn_listening(
            Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                ])
                .arg(dir),
            &format!("127.0.0.1:{port}"),
        );
        FileServer(child, port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn jwks(keys: &[&HmacKey]) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                r#"{{"kty":"oct","kid":"{}","alg":"HS256","k":"{}"}}"#,
                k.kid,
                jwt::b64(&k.secret)
            )
        })
        .collect();
    format!(r#"{{"keys":[{}]}}"#, entries.join(","))
}

fn status(server: &Server, key: &HmacKey) -> u16 {
    let token = key.token(&jwt::claims(Some("alice"), jwt::now() + 300, ROLE, ""));
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "2",
            "-w",
            "%{http_code}",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(server.url("/events"))
        .output()
        .expect("curl");
    // An SSE response that stays open ends with curl's time-out after the head: its code is
    // still printed.
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The guard chain of `common::jwt::Chain` with its inline key list replaced by `url`.
fn url_config(port: u16, bootstrap: &str, any_key: &HmacKey, url: &str) -> String {
    let inline = Chain::new(port, bootstrap, &[any_key]).yaml();
    let start = inline
        .find("      keys:\n")
        .expect("keys in the generated config");
    let end = start
        + inline[start..]
            .find("bindings:")
            .expect("bindings after keys");
    let rest = &inline[start..end];
    let after_keys = rest
        .lines()
        .skip(1)
        .skip_while(|l| l.starts_with("        - "))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    format!(
        "{}      keys: {url}\n{after_keys}{}",
        &inline[..start],
        &inline[end..]
    )
}

#[test]
fn keys_from_a_url_are_refreshed_and_the_last_good_set_is_kept() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "first");
    let dir = tempfile::tempdir().unwrap();
    let a = HmacKey::generate("a");
    let b = HmacKey::generate("b");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&a])).unwrap();
    let files = FileServer::start(dir.path());

    let port = free_port();
    let url = format!("http://127.0.0.1:{}/jwks.json", files.1);
    let yaml = url_config(port, &broker.bootstrap(), &a, &url);
    let server = Server::builder(port)
        .config(&yaml)
        .args(["--jwks-refresh", "1"])
        .start();

    assert_eq!(status(&server, &a), 200, "a key served at start verifies");
    assert_eq!(status(&server, &b), 403, "an unknown key is refused");

    // Rotation: b replaces a at the URL; the next refresh picks it up.
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&b])).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || status(&server, &b) == 200),
        "the rotated key was not picked up"
    );
    assert_eq!(status(&server, &a), 403, "the rotated-out key is refused");

    // A failing refresh (garbage at the URL) keeps the last good set.
    std::fs::write(dir.path().join("jwks.json"), "not json").unwrap();
    std::thread::sleep(Duration::from_millis(2500)); // two refresh intervals
    assert_eq!(status(&server, &b), 200, "the last good keys are kept");
    assert!(
        server.logs().contains("keeping the last keys"),
        "the failed refresh is logged"
    );
}

/// `tests/fixtures/jwks_server.py` (chunked `/jwks.json`, `/moved` redirecting to it) on
/// `bind`, over TLS when `tls` names a (certificate, key) pair; killed on drop.
struct JwksOrigin {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl JwksOrigin {
    fn start(bind: &str, jwks_file: &std::path::Path, tls: Option<(&str, &str)>) -> JwksOrigin {
        let port = free_port();
        let log = jwks_file.with_extension(format!("{port}.log"));
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwks_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["--bind", bind, "--port", &port.to_string(), "--file"])
            .arg(jwks_file);
        if let Some((cert, key)) = tls {
            cmd.args(["--cert", cert, "--key", key]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("origin log"))
            .spawn()
            .expect("python3 jwks_server.py");
        let addr = if bind.contains(':') {
            format!("[{bind}]:{port}")
        } else {
            format!("{bind}:{port}")
        };
        assert!(
            wait_for_port(&addr, WAIT),
            "jwks_server.py did not start on {addr}"
        );
        JwksOrigin { child, port, log }
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for JwksOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker with topic `events` holding one record, and a JWKS file serving `key`.
fn broker_and_jwks(key: &HmacKey) -> (Broker, tempfile::TempDir, std::path::PathBuf) {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "first");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[key])).unwrap();
    (broker, dir, file)
}

#[test]
fn a_jwks_url_behind_a_redirect_with_a_chunked_body_is_followed() {
    let a = HmacKey::generate("a");
    let (broker, _dir, file) = broker_and_jwks(&a);
    let origin = JwksOrigin::start("127.0.0.1", &file, None);
    let port = free_port();
    let url = format!("http://127.0.0.1:{}/moved", origin.port);
    let server = Server::builder(port)
        .config(&url_config(port, &broker.bootstrap(), &a, &url))
        .start();
    assert_eq!(
        status(&server, &a),
        200,
        "the key behind the redirect verifies"
    );
    let requests = origin.requests();
    assert!(
        requests.contains("GET /moved") && requests.contains("GET /jwks.json"),
        "the redirect was followed: {requests}"
    );
}

#[test]
fn a_jwks_url_on_an_ipv6_literal_is_read() {
    let a = HmacKey::generate("a");
    let (broker, _dir, file) = broker_and_jwks(&a);
    let origin = JwksOrigin::start("::1", &file, None);
    let port = free_port();
    let url = format!("http://[::1]:{}/jwks.json", origin.port);
    let server = Server::builder(port)
        .config(&url_config(port, &broker.bootstrap(), &a, &url))
        .start();
    assert_eq!(status(&server, &a), 200, "the key served on [::1] verifies");
    assert!(origin.requests().contains("GET /jwks.json"));
}

/// A test CA and a certificate it signs for 127.0.0.1 and localhost, made with the openssl CLI:
/// (CA certificate, server certificate, server key) paths.
fn test_ca(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (ca, ca_key, cert, key, csr, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("server.pem"),
        path("server.key"),
        path("server.csr"),
        path("server.ext"),
    );
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    jwt::openssl(
        &[
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca,
                "-days",
                "2",
                "-subj",
                "/CN=sse-kafka test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ][..],
        ]
        .concat(),
        None,
    );
    jwt::openssl(
        &[
            &["req"][..],
            &ec[..],
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"][..],
        ]
        .concat(),
        None,
    );
    jwt::openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
        None,
    );
    (ca, cert, key)
}

#[test]
fn a_jwks_url_over_https_is_verified_against_the_configured_ca() {
    let a = HmacKey::generate("a");
    let (broker, dir, file) = broker_and_jwks(&a);
    let (ca, cert, key) = test_ca(dir.path());
    let origin = JwksOrigin::start("127.0.0.1", &file, Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{}/jwks.json", origin.port);

    // With the Mozilla roots the test CA is not trusted: no keys, tokens refused.
    let port = free_port();
    let untrusted = Server::builder(port)
        .config(&url_config(port, &broker.bootstrap(), &a, &url))
        .start();
    assert_eq!(
        status(&untrusted, &a),
        403,
        "a JWKS from an untrusted CA gives no keys"
    );
    assert!(
        untrusted.logs().contains("refusing tokens until it loads"),
        "the failed read is logged: {}",
        untrusted.logs()
    );
    drop(untrusted);

    let port = free_port();
    let server = Server::builder(port)
        .config(&url_config(port, &broker.bootstrap(), &a, &url))
        .args(["--jwks-ca", &ca])
        .start();
    assert_eq!(
        status(&server, &a),
        200,
        "the key served over https verifies"
    );
}
