//! `access-control` of the http binding (reference 5.3): `cross-origin` answers with
//! `Access-Control-Allow-Origin`, the default `same-origin` refuses foreign origins with 403.

mod common;
use common::*;

fn setup(z: impl FnOnce(Zilla) -> Zilla) -> (Broker, Server) {
    let (broker, producer) = Broker::with_topic("t", 1);
    producer.send_value("t", Some(0), "hello");
    let server =
        z(Zilla::new(free_port(), &broker.bootstrap()).route(Route::any_topic())).start(&[]);
    (broker, server)
}

#[test]
fn cross_origin_allows_any_origin() {
    let (_b, server) = setup(|z| z);
    let sse = Sse::open_args(&server.url("/t"), &["-H", "Origin: http://app.example.com"]);
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(
        sse.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(sse.expect(1, WAIT)[0].data, "hello");
}

#[test]
fn cross_origin_preflight() {
    let (_b, server) = setup(|z| z);
    let r = curl(
        &server.url("/t"),
        &[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: http://app.example.com",
            "-H",
            "Access-Control-Request-Method: GET",
            "-H",
            "Access-Control-Request-Headers: last-event-id",
        ],
    );
    assert_eq!(r.status, 204, "{:?}", r.headers);
    assert!(
        r.header("access-control-allow-origin").is_some(),
        "{:?}",
        r.headers
    );
    assert!(
        r.header("access-control-allow-methods").is_some(),
        "{:?}",
        r.headers
    );
}

#[test]
fn same_origin_refuses_foreign_origins() {
    let (_b, server) = setup(|z| z.same_origin());
    assert_eq!(
        curl(
            &server.url("/t"),
            &["-H", "Origin: http://evil.example.com"]
        )
        .status,
        403
    );
    // No Origin (curl, server-side clients) or the server's own origin: allowed.
    let sse = Sse::open(&server.url("/t"));
    assert_eq!(sse.status(WAIT), Some(200));
    let own = format!("Origin: http://127.0.0.1:{}", server.port);
    let sse = Sse::open_args(&server.url("/t"), &["-H", &own]);
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(sse.expect(1, WAIT)[0].data, "hello");
}
