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
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        assert!(
            wait_for_port(&format!("127.0.0.1:{port}"), WAIT),
            "http.server did not start"
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

#[test]
fn keys_from_a_url_are_refreshed_and_the_last_good_set_is_kept() {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    Producer::new(&broker.bootstrap()).send_value("events", Some(0), "first");
    let dir = tempfile::tempdir().unwrap();
    let a = HmacKey::generate("a");
    let b = HmacKey::generate("b");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&a])).unwrap();
    let files = FileServer::start(dir.path());

    let port = free_port();
    let url = format!("http://127.0.0.1:{}/jwks.json", files.1);
    let inline = Chain::new(port, &broker.bootstrap(), &[&a]).yaml();
    // Replace the inline key list with the URL.
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
    let yaml = format!(
        "{}      keys: {url}\n{after_keys}{}",
        &inline[..start],
        &inline[end..]
    );
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
