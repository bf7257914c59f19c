//! Continuous authorization in a real browser, as Zilla's `sse.kafka.fanout.jwt` example page
//! does it: headless Chromium loads an HTTPS page (served by the server's filesystem binding
//! on its TLS listener, ALPN h2) that opens `new EventSource('/events?access_token=' + token)`,
//! answers the `challenge` event with `fetch` (POST, `content-type:
//! application/x-challenge-response`, `authorization: Bearer <fresh token>`) and keeps receiving
//! records produced after the first token's expiry. The page is written into a temp dir per
//! run; once Chromium is up the test mints the tokens and drops them next to the page as
//! `go.json`, which the page polls for (so a slow browser start cannot eat the token's life).
//! The page reports what it sees through `console.log`, which Chromium writes to its stderr
//! (`--enable-logging=stderr`), and in the DOM / title for a human. A curl stream with the same
//! first token that does not answer is the control: it is cut at the first expiry.

mod common;
use common::chromium::Chromium;
use common::h2wire::test_certificate;
use common::jwt::{self, Chain, Key, RsaKey};
use common::*;
use std::time::Duration;

/// The first token's lifetime (the guard's `challenge` is 3 s): the page has 5 s to open its
/// stream before the challenge is due.
const LIFETIME: i64 = 8;
/// Chromium's first start in a fresh profile takes a few seconds on a loaded machine.
const BROWSER_WAIT: Duration = Duration::from_secs(60);

/// The page: once Chromium is up, the test writes `go.json` (the token and the fresh token)
/// next to it; the page polls for it, then does what Zilla's example page does.
const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>connecting</title></head>
<body>
<ul id="log"></ul>
<script>
const log = document.getElementById('log');
let messages = 0;
function show(line) {
  console.log('PAGE ' + line);
  const li = document.createElement('li');
  li.textContent = line;
  log.appendChild(li);
  document.title = messages + ' messages';
}
const nav = performance.getEntriesByType('navigation')[0];
show('protocol ' + (nav ? nav.nextHopProtocol : 'unknown'));
show('waiting');

async function tokens() {
  for (;;) {
    const response = await fetch('/go.json', { cache: 'no-store' });
    if (response.ok) {
      return response.json();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

tokens().then(({ token, freshToken }) => {
  const eventSource = new EventSource('/events?access_token=' + token);
  eventSource.onopen = () => show('open');
  eventSource.onerror = () => show('error ' + eventSource.readyState);
  eventSource.onmessage = (event) => {
    messages++;
    show('message ' + event.data);
  };
  eventSource.addEventListener('challenge', (event) => {
    show('challenge ' + event.data);
    const challenge = JSON.parse(event.data);
    fetch('/events', {
      method: challenge.method,
      headers: {
        ...challenge.headers,
        'authorization': 'Bearer ' + freshToken,
      },
    })
      .then((response) => show('answered ' + response.status))
      .catch((error) => show('answer failed ' + error));
  });
});
</script>
</body>
</html>
"#;

#[test]
fn browser_answers_the_challenge_and_keeps_streaming_past_expiry() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "r1");

    let dir = tempfile::tempdir().unwrap();
    let (cert, key_pem) = test_certificate(dir.path());
    let key = RsaKey::generate(dir.path(), "example");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();

    let port = free_port();
    let yaml = Chain::new(port, &broker.bootstrap(), &[&key])
        .challenge(3)
        .scheme("https")
        .files(&www)
        .yaml();
    let server = Server::builder(port)
        .config(&yaml)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key_pem)
        .args(["--workers", "1"])
        .env("SSE_KAFKA_LOG", "debug")
        .start();

    let browser = Chromium::open_with(
        &format!("https://127.0.0.1:{port}/index.html"),
        &[
            "--ignore-certificate-errors",
            "--enable-logging=stderr",
            "--v=0",
        ],
    );
    browser.wait_page(BROWSER_WAIT, "that it is waiting for its tokens", |p| {
        p.iter().any(|l| l == "waiting")
    });

    // The tokens, from now on: the page picks them up within a poll.
    let exp1 = jwt::now() + LIFETIME;
    let token = key.token(&jwt::claims(Some("alice"), exp1, "read:events", ""));
    let fresh = key.token(&jwt::claims(Some("alice"), exp1 + 120, "read:events", ""));
    let go = dir.path().join("go.json.tmp");
    std::fs::write(
        &go,
        format!(r#"{{"token":"{token}","freshToken":"{fresh}"}}"#),
    )
    .unwrap();
    std::fs::rename(&go, www.join("go.json")).unwrap();

    // A control stream with the first token that never answers (curl, HTTP/1.1 over TLS).
    let control = Sse::open_args(
        &format!("https://127.0.0.1:{port}/events"),
        &["-k", "-H", &format!("Authorization: Bearer {token}")],
    );
    assert_eq!(control.status(WAIT), Some(200), "{}", control.curl_errors());

    browser.wait_page(WAIT, "the first record", |p| {
        p.iter().any(|l| l == "message r1")
    });
    assert!(
        jwt::now() < exp1 - 3,
        "the stream opened after the challenge was due; the machine is too slow for this test"
    );
    browser.wait_page(WAIT, "a challenge and its 204", |p| {
        p.iter().any(|l| l == "answered 204")
    });

    // The control stream (no answer) is cut at the first expiry; with one worker, the
    // browser's stream would have been cut by that same timer tick had its answer not
    // extended it.
    assert!(
        control.wait_eof(WAIT),
        "the control stream was not cut at the first expiry"
    );
    assert!(
        jwt::now() >= exp1,
        "the control stream ended before the first expiry"
    );
    let seen: Vec<_> = control
        .received()
        .into_iter()
        .map(|e| (e.event, e.data))
        .collect();
    assert_eq!(seen.len(), 2, "control stream: {seen:?}");
    assert_eq!(seen[0], (None, "r1".to_string()));
    assert_eq!(seen[1].0.as_deref(), Some("challenge"));

    producer.send_value("events", Some(0), "r2");
    producer.send_value("events", Some(0), "r3");
    browser.wait_page(WAIT, "the records produced after the first expiry", |p| {
        p.iter().any(|l| l == "message r3")
    });

    let page = browser.page();
    let challenge = r#"challenge {"method":"POST","headers":{"content-type":"application/x-challenge-response"}}"#;
    assert_eq!(
        page,
        [
            "protocol h2",
            "waiting",
            "open",
            "message r1",
            challenge,
            "answered 204",
            "message r2",
            "message r3"
        ],
        "the page saw (no error, no reconnect, one challenge): {page:#?}"
    );
    jwt::assert_not_logged(&server.logs(), &[&token, &fresh]);
}
