//! Static files through `http-filesystem` + `filesystem` (Zilla's sse.kafka.fanout example
//! serves its web page this way): GET only, no path traversal, keep-alive between requests.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const INDEX: &str = "<!doctype html><title>sse</title><p>index page</p>\n";
const APP_JS: &str = "new EventSource('/events').onmessage = e => console.log(e.data);\n";
const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT\n";

/// Zilla's fan-out example shape: `/events` to the SSE chain, everything else to files.
fn yaml(port: u16, kafka: &str) -> String {
    Zilla::new(port, kafka)
        .named("static-example")
        .versions(&[])
        .http_path("/events")
        .files("www/")
        .route(Route::new("/events", "events"))
        .bootstrap_topic("events")
        .yaml()
}

struct Setup {
    _broker: Broker,
    server: Server,
    _dir: tempfile::TempDir,
}

/// The size of `www/big.bin`.
const BIG: usize = 10 << 20;

fn big_file() -> Vec<u8> {
    (0..BIG).map(|i| (i * 7 % 251) as u8).collect()
}

fn setup() -> Setup {
    setup_with(&[])
}

fn setup_with(args: &[&str]) -> Setup {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "from kafka");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("www/sub")).unwrap();
    std::fs::write(root.join("www/index.html"), INDEX).unwrap();
    std::fs::write(root.join("www/app.js"), APP_JS).unwrap();
    std::fs::write(root.join("www/sub/page.txt"), "sub page\n").unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("www/big.bin"), big_file()).unwrap();
    let port = free_port();
    let server = Server::builder(port)
        .args(args.iter().copied())
        .dir(root)
        .config(&yaml(port, &broker.bootstrap()))
        .start();
    Setup {
        _broker: broker,
        server,
        _dir: dir,
    }
}

#[test]
fn serves_files_and_the_event_stream_side_by_side() {
    let s = setup();
    let r = curl(&s.server.url("/"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(String::from_utf8_lossy(&r.body), INDEX);
    // A content type from the extension, as a browser needs for a page and a script.
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{:?}",
        r.headers
    );
    let r = curl(&s.server.url("/index.html"), &[]);
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        (200, INDEX.to_string())
    );
    let r = curl(&s.server.url("/app.js"), &[]);
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        (200, APP_JS.to_string())
    );
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.contains("javascript")),
        "{:?}",
        r.headers
    );
    let r = curl(&s.server.url("/sub/page.txt"), &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"sub page\n"[..]));
    assert_eq!(curl(&s.server.url("/missing.txt"), &[]).status, 404);
    assert_eq!(
        curl(&s.server.url("/sub"), &[]).status,
        404,
        "a directory is not a file"
    );

    let sse = Sse::open(&s.server.url("/events"));
    assert_eq!(sse.expect(1, WAIT)[0].data, "from kafka");
}

#[test]
fn keep_alive_between_file_requests() {
    let s = setup();
    // curl reuses one connection for several URLs when the server keeps it open.
    let urls: Vec<String> = [
        "/",
        "/app.js",
        "/sub/page.txt",
        "/missing.txt",
        "/index.html",
    ]
    .iter()
    .map(|p| s.server.url(p))
    .collect();
    let connects = curl_write_out(&urls, "%{num_connects} ", &[]);
    assert_eq!(
        connects.trim(),
        "1 0 0 0 0",
        "connections opened per request"
    );

    // The same by hand, with the two requests written back to back (pipelined).
    let mut c = HttpConn::connect(&s.server.addr());
    c.send(b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\nGET /sub/page.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let a = c.read_response(WAIT).expect("first response");
    let b = c.read_response(WAIT).expect("second response");
    assert_eq!(
        (a.status, String::from_utf8_lossy(&a.body).into_owned()),
        (200, APP_JS.to_string())
    );
    assert_eq!((b.status, b.body.as_slice()), (200, &b"sub page\n"[..]));
    assert!(
        !c.closed_within(Duration::from_millis(300)),
        "keep-alive connection closed early"
    );
    c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let last = c.read_response(WAIT).expect("third response");
    assert_eq!(last.status, 200);
    assert!(
        c.closed_within(WAIT),
        "Connection: close must close after the response"
    );
}

/// GET only: other methods are refused and change nothing. 405 is what a user expects for a
/// method a resource does not allow.
#[test]
fn files_are_get_only() {
    let s = setup();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = curl(
            &s.server.url("/index.html"),
            &["-X", method, "-d", "overwritten"],
        );
        assert_eq!(r.status, 405, "{method}");
        assert!(!String::from_utf8_lossy(&r.body).contains("index page"));
    }
    assert_eq!(
        std::fs::read_to_string(s.server.dir.join("www/index.html")).unwrap(),
        INDEX
    );
}

#[test]
fn no_path_traversal() {
    let s = setup();
    assert!(Path::new("/etc/passwd").exists());
    let attempts = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/./../secret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%252e%252e/secret.txt",
        "//etc/passwd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/sub/..%00/secret.txt",
        "/%00../secret.txt",
    ];
    for path in attempts {
        // Raw bytes: curl would normalise the dot segments away.
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let r = raw_request(&s.server.addr(), req.as_bytes(), WAIT);
        let Some(r) = r else { continue }; // closing without an answer is a refusal too
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("TOP-SECRET") && !body.contains("root:"),
            "{path} leaked a file outside the root: {} {body:?}",
            r.status
        );
        assert!(
            [400, 403, 404].contains(&r.status),
            "{path}: status {}",
            r.status
        );
    }
    // A dot segment that stays inside the root is harmless either way, but must not crash.
    let r = raw_request(
        &s.server.addr(),
        b"GET /sub/../index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        WAIT,
    )
    .unwrap();
    assert!([200, 400, 404].contains(&r.status));
    // The server survived all of it.
    assert_eq!(curl(&s.server.url("/app.js"), &[]).status, 200);
}

/// `ETag` and `Last-Modified` on every file; `If-None-Match` (which wins over
/// `If-Modified-Since`) and `If-Modified-Since` answered `304` with no body, over HTTP/1.1 and
/// HTTP/2.
#[test]
fn conditional_get_answers_304() {
    let s = setup();
    let url = s.server.url("/app.js");
    let r = curl(&url, &[]);
    assert_eq!(r.status, 200);
    let etag = r.header("etag").expect("an ETag").to_string();
    let modified = r
        .header("last-modified")
        .expect("a Last-Modified")
        .to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(modified.ends_with(" GMT"), "{modified}");
    let inm = format!("If-None-Match: {etag}");
    let ims = format!("If-Modified-Since: {modified}");
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let r = curl(&url, &[version, "-H", &inm]);
        assert_eq!(
            (r.status, r.body.len()),
            (304, 0),
            "{version} If-None-Match"
        );
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        let r = curl(
            &url,
            &[version, "-H", &format!("If-None-Match: W/\"x\", {etag}")],
        );
        assert_eq!(r.status, 304, "{version} a list with a weak tag");
        let r = curl(&url, &[version, "-H", &ims]);
        assert_eq!(
            (r.status, r.body.len()),
            (304, 0),
            "{version} If-Modified-Since"
        );
        let r = curl(
            &url,
            &[version, "-H", "If-None-Match: \"other\"", "-H", &ims],
        );
        assert_eq!(
            (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            (200, APP_JS.to_string()),
            "{version}: If-None-Match wins over If-Modified-Since"
        );
        let r = curl(
            &url,
            &[
                version,
                "-H",
                "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
            ],
        );
        assert_eq!(r.status, 200, "{version}: modified since 1970");
    }
    // Another file has another tag.
    let other = curl(&s.server.url("/index.html"), &[]);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
}

/// A 10 MiB file downloaded slowly (curl --limit-rate) from the one worker that also serves an
/// SSE stream: the stream receives every event produced while the download is still going, and
/// the download completes with every byte.
#[test]
fn a_large_file_download_does_not_hold_up_streams() {
    let s = setup_with(&["--workers", "1"]);
    let sse = Sse::open(&s.server.url("/events"));
    assert_eq!(sse.expect(1, WAIT)[0].data, "from kafka");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let mut download = std::process::Command::new("curl")
        .args(["-sS", "--limit-rate", "1M", "-o"])
        .arg(&out)
        .arg(s.server.url("/big.bin"))
        .spawn()
        .expect("curl");
    let producer = Producer::new(&s._broker.bootstrap());
    for i in 1..=3 {
        producer.send_value("events", Some(0), &format!("during {i}"));
        assert_eq!(sse.expect(1, WAIT)[0].data, format!("during {i}"));
    }
    assert!(
        download.try_wait().unwrap().is_none(),
        "the download (about 10 s at 1 MiB/s) was still going while the events arrived"
    );
    let status = download.wait().unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(&out).unwrap() == big_file(),
        "every byte of the file"
    );
}

/// Files written or changed after start are served after the next rescan, with a new `ETag`.
#[test]
fn files_written_after_start_are_served() {
    let s = setup();
    let late = s.server.dir.join("www/late.txt");
    let url = s.server.url("/late.txt");
    assert_eq!(curl(&url, &[]).status, 404);
    std::fs::write(&late, "first\n").unwrap();
    assert!(
        wait_until(WAIT, || curl(&url, &[]).body == b"first\n"),
        "a file written after start is served"
    );
    let first = curl(&url, &[]).header("etag").map(str::to_owned);
    std::fs::write(&late, "second, longer\n").unwrap();
    assert!(
        wait_until(WAIT, || curl(&url, &[]).body == b"second, longer\n"),
        "a changed file is served as it is now"
    );
    assert_ne!(curl(&url, &[]).header("etag").map(str::to_owned), first);
}
