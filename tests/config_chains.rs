//! zilla.yaml shapes that must load unchanged and stream: Zilla's fan-out chain with the
//! cache bindings, sse-kafka straight to the kafka client, routes with `*` and `{param}`,
//! path-matched http routes, and a bootstrap list with an unreachable first server.

mod common;
use common::*;

fn stream_one(server: &Server, path: &str, expect: &str) {
    let sse = Sse::open(&server.url(path));
    assert_eq!(sse.status(WAIT), Some(200), "{path}");
    assert_eq!(sse.expect(1, WAIT)[0].data, expect, "{path}");
}

#[test]
fn fanout_chain_with_cache_and_direct_client_chain() {
    let (broker, producer) = Broker::with_topic("events", 3);
    producer.send_value("events", Some(2), "hello");
    let cached = Zilla::new(free_port(), &broker.bootstrap())
        .bootstrap_topic("events")
        .route(Route::new("/events", "events"))
        .start(&[]);
    stream_one(&cached, "/events", "hello");
    let direct = Zilla::new(free_port(), &broker.bootstrap())
        .no_cache()
        .route(Route::new("/events", "events"))
        .start(&[]);
    stream_one(&direct, "/events", "hello");
}

#[test]
fn wildcard_and_param_routes() {
    let broker = Broker::start();
    for t in ["a", "b", "fixed", "deep"] {
        broker.create_topic(t, 1);
        Producer::new(&broker.bootstrap()).send_value(t, Some(0), &format!("topic {t}"));
    }
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .http_path("/s/*")
        .route(Route::new("/s/fixed/*", "fixed"))
        .route(Route::new("/s/t/{topic}/tail", "${params.topic}"))
        .route(Route::new("/s/{topic}", "${params.topic}"))
        .start(&["--metadata-timeout-ms", "1000"]);
    stream_one(&server, "/s/fixed/anything/at/all", "topic fixed");
    stream_one(&server, "/s/t/deep/tail", "topic deep");
    stream_one(&server, "/s/a", "topic a");
    stream_one(&server, "/s/b?x=y", "topic b");
    assert_eq!(curl(&server.url("/other"), &[]).status, 404);
    // decisions.md 3.3: a path segment that looks like a template stays literal (single pass):
    // the topic `${params.topic}` does not exist, so this is a 404, not a loop or topic `a`.
    let r = curl(&server.url("/s/${params.topic}"), &["--globoff"]);
    assert_eq!(r.status, 404);
}

/// Routes are tried in order; the first match wins.
#[test]
fn first_matching_route_wins() {
    let broker = Broker::with_empty_topic("one", 1);
    broker.create_topic("two", 1);
    let p = Producer::new(&broker.bootstrap());
    p.send_value("one", Some(0), "from one");
    p.send_value("two", Some(0), "from two");
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::new("/x", "one"))
        .route(Route::new("/x", "two"))
        .route(Route::new("/{topic}", "two"))
        .start(&[]);
    stream_one(&server, "/x", "from one");
    stream_one(&server, "/y", "from two");
}

/// `servers` lists several bootstrap addresses; a dead one is skipped.
#[test]
fn dead_first_bootstrap_server_is_skipped() {
    let (broker, producer) = Broker::with_topic("events", 1);
    producer.send_value("events", Some(0), "alive");
    let port = free_port();
    let dead = format!("127.0.0.1:{}", free_port());
    let yaml = Zilla::new(port, &dead)
        .route(Route::any_topic())
        .yaml()
        .replace(
            &format!("        - '{dead}'\n"),
            &format!("        - '{dead}'\n        - '{}'\n", broker.bootstrap()),
        );
    let server = Server::builder(port).config(&yaml).start();
    stream_one(&server, "/events", "alive");
}
