//! `access-control` of the http binding (reference 5.3) answered the same over HTTP/1.1 and
//! HTTP/2 (`curl --http2-prior-knowledge` on the same cleartext port): `*` for any origin,
//! listed origins echoed with `Vary: origin`, credentials, exposed headers, preflight
//! `OPTIONS` answered 204 with the allowed method, headers and max-age (403 for what is not
//! allowed), and the same-origin policy's 403 for a foreign `Origin`.

mod common;
use common::*;

const TOPIC: &str = "t";
const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.com";

#[derive(Clone, Copy, Debug)]
enum Version {
    Http1,
    Http2,
}
use Version::*;

impl Version {
    /// curl arguments after the harness's `--http1.1` (the last version option wins).
    fn args(self) -> &'static [&'static str] {
        match self {
            Http1 => &["--http1.1"],
            Http2 => &["--http2-prior-knowledge"],
        }
    }
    fn curl_name(self) -> &'static str {
        match self {
            Http1 => "1.1",
            Http2 => "2",
        }
    }
}

/// A server on the harness's zilla.yaml with h2 added to the http binding's `versions` and
/// `policy_block` (its `access-control` lines, or nothing for the same-origin default) in place
/// of the harness's `policy: cross-origin`.
fn server(policy_block: &str) -> (Broker, Server) {
    let (broker, producer) = Broker::with_topic(TOPIC, 1);
    producer.send_value(TOPIC, Some(0), "hello");
    let port = free_port();
    let yaml = Zilla::new(port, &broker.bootstrap())
        .route(Route::any_topic())
        .yaml()
        .replace("        - http/1.1\n", "        - http/1.1\n        - h2\n")
        .replace(
            "      access-control:\n        policy: cross-origin\n",
            policy_block,
        );
    assert!(
        yaml.contains("- h2\n") && yaml.contains(policy_block),
        "{yaml}"
    );
    assert_eq!(
        yaml.contains("access-control"),
        !policy_block.is_empty(),
        "{yaml}"
    );
    let server = Server::builder(port).config(&yaml).start();
    (broker, server)
}

fn args<'a>(v: Version, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a: Vec<&str> = v.args().to_vec();
    a.extend_from_slice(extra);
    a
}

/// A finished request (403s, preflights), checking the HTTP version curl used.
fn request(server: &Server, v: Version, extra: &[&str]) -> CurlResponse {
    let url = server.url(&format!("/{TOPIC}"));
    let used = curl_write_out(
        std::slice::from_ref(&url),
        "%{http_version}",
        &args(v, &[&["--max-time", "5"][..], extra].concat()),
    );
    assert_eq!(used.trim(), v.curl_name(), "{v:?}: curl used HTTP/{used}");
    curl(&url, &args(v, extra))
}

/// An SSE stream: status 200 and the first record, then the response head for the checks.
fn stream(server: &Server, v: Version, extra: &[&str]) -> Sse {
    let sse = Sse::open_args(&server.url(&format!("/{TOPIC}")), &args(v, extra));
    assert_eq!(sse.status(WAIT), Some(200), "{v:?}: {}", sse.curl_errors());
    assert_eq!(sse.expect(1, WAIT)[0].data, "hello", "{v:?}");
    sse
}

fn origin(o: &str) -> String {
    format!("Origin: {o}")
}

#[test]
fn cross_origin_allows_any_origin_with_a_star() {
    let (_b, server) = server("      access-control:\n        policy: cross-origin\n");
    for v in [Http1, Http2] {
        let sse = stream(&server, v, &["-H", &origin(APP)]);
        assert_eq!(
            sse.header("access-control-allow-origin").as_deref(),
            Some("*"),
            "{v:?}"
        );
        assert_eq!(sse.header("vary"), None, "{v:?}: no Vary for `*`");
        assert_eq!(
            sse.header("access-control-allow-credentials"),
            None,
            "{v:?}"
        );
        // No Origin: no CORS headers at all.
        let plain = stream(&server, v, &[]);
        assert_eq!(plain.header("access-control-allow-origin"), None, "{v:?}");
    }
}

#[test]
fn listed_origins_are_echoed_with_vary_and_others_refused() {
    let (_b, server) = server(&format!(
        "      access-control:\n        policy: cross-origin\n        allow:\n          origins:\n            - {APP}\n            - http://other.example.com:8080\n"
    ));
    for v in [Http1, Http2] {
        let sse = stream(&server, v, &["-H", &origin(APP)]);
        assert_eq!(
            sse.header("access-control-allow-origin").as_deref(),
            Some(APP),
            "{v:?}"
        );
        assert_eq!(
            sse.header("vary")
                .map(|h| h.to_ascii_lowercase())
                .as_deref(),
            Some("origin"),
            "{v:?}"
        );
        let other = stream(&server, v, &["-H", "Origin: http://other.example.com:8080"]);
        assert_eq!(
            other.header("access-control-allow-origin").as_deref(),
            Some("http://other.example.com:8080"),
            "{v:?}"
        );
        let r = request(&server, v, &["-H", &origin(EVIL)]);
        assert_eq!(r.status, 403, "{v:?}: {:?}", r.headers);
        assert_eq!(r.header("access-control-allow-origin"), None, "{v:?}");
    }
}

#[test]
fn credentials_echo_the_origin() {
    let (_b, server) = server(
        "      access-control:\n        policy: cross-origin\n        allow:\n          credentials: true\n",
    );
    for v in [Http1, Http2] {
        let sse = stream(&server, v, &["-H", &origin(APP), "-H", "Cookie: session=1"]);
        assert_eq!(
            sse.header("access-control-allow-origin").as_deref(),
            Some(APP),
            "{v:?}"
        );
        assert_eq!(
            sse.header("access-control-allow-credentials").as_deref(),
            Some("true"),
            "{v:?}"
        );
        assert_eq!(
            sse.header("vary")
                .map(|h| h.to_ascii_lowercase())
                .as_deref(),
            Some("origin"),
            "{v:?}"
        );
    }
}

#[test]
fn exposed_headers_are_listed_on_responses() {
    let (_b, server) = server(
        "      access-control:\n        policy: cross-origin\n        expose:\n          headers:\n            - x-request-id\n            - x-trace\n",
    );
    for v in [Http1, Http2] {
        let sse = stream(&server, v, &["-H", &origin(APP)]);
        let exposed = sse
            .header("access-control-expose-headers")
            .unwrap_or_else(|| panic!("{v:?}: no Access-Control-Expose-Headers"));
        let list: Vec<String> = exposed
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        assert_eq!(list, ["x-request-id", "x-trace"], "{v:?}");
    }
}

#[test]
fn preflight_is_answered_204_with_methods_headers_and_max_age() {
    let (_b, server) = server(&format!(
        "      access-control:\n        policy: cross-origin\n        allow:\n          origins:\n            - {APP}\n          methods:\n            - GET\n          headers:\n            - last-event-id\n            - x-custom\n        max-age: 3600\n"
    ));
    for v in [Http1, Http2] {
        let o = origin(APP);
        let preflight = |method: &str, headers: Option<&str>, from: &str| {
            let mut extra = vec![
                "-X".to_string(),
                "OPTIONS".to_string(),
                "-H".to_string(),
                from.to_string(),
                "-H".to_string(),
                format!("Access-Control-Request-Method: {method}"),
            ];
            if let Some(h) = headers {
                extra.push("-H".into());
                extra.push(format!("Access-Control-Request-Headers: {h}"));
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            request(&server, v, &extra)
        };
        let r = preflight("GET", Some("last-event-id, x-custom"), &o);
        assert_eq!(r.status, 204, "{v:?}: {:?}", r.headers);
        assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{v:?}");
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET"),
            "{v:?}"
        );
        let allowed: Vec<String> = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        assert_eq!(
            allowed,
            ["last-event-id", "x-custom"],
            "{v:?}: {:?}",
            r.headers
        );
        assert_eq!(r.header("access-control-max-age"), Some("3600"), "{v:?}");
        assert!(r.body.is_empty(), "{v:?}");
        // Not allowed: a method, a header, an origin.
        assert_eq!(preflight("DELETE", None, &o).status, 403, "{v:?}");
        assert_eq!(
            preflight("GET", Some("x-forbidden"), &o).status,
            403,
            "{v:?}"
        );
        assert_eq!(preflight("GET", None, &origin(EVIL)).status, 403, "{v:?}");
    }
}

#[test]
fn same_origin_refuses_foreign_origins() {
    let (_b, server) = server("");
    for v in [Http1, Http2] {
        let r = request(&server, v, &["-H", &origin(EVIL)]);
        assert_eq!(r.status, 403, "{v:?}: {:?}", r.headers);
        // A preflight from a foreign origin is refused too.
        let r = request(
            &server,
            v,
            &[
                "-X",
                "OPTIONS",
                "-H",
                &origin(EVIL),
                "-H",
                "Access-Control-Request-Method: GET",
            ],
        );
        assert_eq!(r.status, 403, "{v:?}: {:?}", r.headers);
        // No Origin, or the server's own (scheme, host and port of the request), is served.
        stream(&server, v, &[]);
        let own = origin(&format!("http://127.0.0.1:{}", server.port));
        let sse = stream(&server, v, &["-H", &own]);
        assert_eq!(sse.header("access-control-allow-origin"), None, "{v:?}");
        // Same host, another port or scheme: foreign.
        let other_port = origin(&format!("http://127.0.0.1:{}", server.port + 1));
        assert_eq!(
            request(&server, v, &["-H", &other_port]).status,
            403,
            "{v:?}"
        );
        let other_scheme = origin(&format!("https://127.0.0.1:{}", server.port));
        assert_eq!(
            request(&server, v, &["-H", &other_scheme]).status,
            403,
            "{v:?}"
        );
    }
}
