//! Whole-configuration tests: Zilla-shaped configs that load, and every error class with its
//! exact path.

use std::path::Path;
use std::sync::Arc;

use proto::jwt::{mint, verify, Alg, Expect, KeySet, MAX_PAYLOAD};

use super::pattern::{Guarded, NoGuard, Params};
use super::plan::{
    AccessControl, CredentialSource, DefaultOffset, Guard, GuardKind, HttpExit, IdTemplate,
    JwtKeys, KeySource, Plan, PrometheusEndpoint, SseKafkaRoute, TlsIdentity,
};
use super::{parse, Glob};

pub(super) fn env(name: &str) -> Option<String> {
    match name {
        "KAFKA_BOOTSTRAP_SERVER" => Some("kafka.internal:29092".to_owned()),
        "KEYSTORE_PASSWORD" => Some("generated".to_owned()),
        "PORT" => Some("7200".to_owned()),
        _ => None,
    }
}

pub(super) fn load(text: &str) -> Result<Plan, Vec<String>> {
    parse(text, Path::new("/etc/zilla"), &env)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

pub(super) fn plan(text: &str) -> Plan {
    match load(text) {
        Ok(plan) => plan,
        Err(errors) => panic!("expected a plan, got errors:\n{}", errors.join("\n")),
    }
}

pub(super) fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(plan) => panic!("expected errors, got a plan: {plan:#?}"),
        Err(errors) => errors,
    }
}

/// The minimal chain, one binding per line (flow style); `changes` replace bindings by name
/// (an empty value removes one) or add new ones.
pub(super) fn chain(changes: &[(&str, &str)]) -> String {
    let mut bindings: Vec<(String, String)> = [
        (
            "north_tcp_server",
            "{ type: tcp, kind: server, options: { host: 127.0.0.1, port: 7114 }, exit: north_http_server }",
        ),
        (
            "north_http_server",
            "{ type: http, kind: server, exit: north_sse_server }",
        ),
        (
            "north_sse_server",
            "{ type: sse, kind: server, exit: north_sse_kafka_mapping }",
        ),
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: south_kafka_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'localhost:9092' ] } }",
        ),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        match bindings.iter().position(|(n, _)| n == name) {
            Some(i) if value.is_empty() => {
                bindings.remove(i);
            }
            Some(i) => bindings[i].1 = value.to_string(),
            None => bindings.push((name.to_string(), value.to_string())),
        }
    }
    let mut text = String::from("name: example\nbindings:\n");
    for (name, value) in bindings {
        text.push_str(&format!("  {name}: {value}\n"));
    }
    text
}

fn sse_kafka_routes(plan: &Plan) -> &[SseKafkaRoute] {
    let HttpExit::Sse(sse) = &plan.listeners[0].http.routes[0].exit else {
        panic!("expected an sse exit");
    };
    &sse.routes[0].exit.routes
}

fn debug<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// Reference §1.1, verbatim apart from the elided JWK.
const REFERENCE_CHAIN: &str = r#"
name: example
vaults:                                  # only needed for TLS
  my_servers: { type: filesystem, options: { keys: { store: tls/localhost.p12, type: pkcs12, password: "${{env.KEYSTORE_PASSWORD}}" } } }
guards:
  authn_jwt:
    type: jwt
    options:
      issuer: https://auth.example.com
      audience: https://api.example.com
      keys: [ { kty: RSA, n: "...", e: AQAB, alg: RS256, kid: example } ]   # or a URL string (JWKS)
      challenge: 10                       # seconds before exp to send event:challenge
bindings:
  north_tcp_server:  { type: tcp, kind: server, options: { host: 0.0.0.0, port: [7143] }, routes: [ { when: [ { port: 7143 } ], exit: north_tls_server } ] }
  north_tls_server:  { type: tls, kind: server, vault: my_servers, options: { keys: [localhost], sni: [localhost], alpn: [h2] }, exit: north_http_server }
  north_http_server:
    type: http
    kind: server
    options:
      versions: [h2]                      # default [http/1.1, h2]
      access-control: { policy: cross-origin }
      authorization:
        authn_jwt:
          credentials:
            headers: { authorization: "Bearer {credentials}" }
            query:   { access_token: "{credentials}" }
            # cookies: { access_token: "{credentials}" }
    routes:
      - when: [ { headers: { ":scheme": https, ":path": /events/* } } ]
        exit: north_sse_server
  north_sse_server:
    type: sse
    kind: server
    routes:
      - guarded: { authn_jwt: [ "proxy:stream" ] }
        exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [ { path: "/events/{key}/{tag}" } ]
        exit: north_kafka_cache_client
        with:
          topic: events
          filters:
            - key: "${params.key}"
              headers: { tag: "${params.tag}" }
          event:
            id: '["${base64(key)}","${etag}"]'
  north_kafka_cache_client: { type: kafka, kind: cache_client, exit: south_kafka_cache_server }
  south_kafka_cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [events] }, exit: south_kafka_client }
  south_kafka_client:       { type: kafka, kind: client, options: { servers: [ "${{env.KAFKA_BOOTSTRAP_SERVER}}" ] }, exit: south_tcp_client }
  south_tcp_client:         { type: tcp, kind: client }
"#;

#[test]
fn reference_chain_refuses_the_elided_key_and_a_missing_keystore_by_path() {
    assert_eq!(
        errors(REFERENCE_CHAIN),
        [
            "guards.authn_jwt.options.keys[0]: JWK member n is not base64url",
            "vaults.my_servers.options.keys.store: /etc/zilla/tls/localhost.p12 is not a readable file",
        ]
    );
}

/// Reference §1.1 without tls, guards, vaults, authorization and `guarded`.
const REFERENCE_CHAIN_PLAIN: &str = r#"
name: example
bindings:
  north_tcp_server:  { type: tcp, kind: server, options: { host: 0.0.0.0, port: [7143] }, routes: [ { when: [ { port: 7143 } ], exit: north_http_server } ] }
  north_http_server:
    type: http
    kind: server
    options:
      versions: [h2]
      access-control: { policy: cross-origin }
    routes:
      - when: [ { headers: { ":scheme": https, ":path": /events/* } } ]
        exit: north_sse_server
  north_sse_server:
    type: sse
    kind: server
    routes:
      - exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when: [ { path: "/events/{key}/{tag}" } ]
        exit: north_kafka_cache_client
        with:
          topic: events
          filters:
            - key: "${params.key}"
              headers: { tag: "${params.tag}" }
          event:
            id: '["${base64(key)}","${etag}"]'
  north_kafka_cache_client: { type: kafka, kind: cache_client, exit: south_kafka_cache_server }
  south_kafka_cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [events] }, exit: south_kafka_client }
  south_kafka_client:       { type: kafka, kind: client, options: { servers: [ "${{env.KAFKA_BOOTSTRAP_SERVER}}" ] }, exit: south_tcp_client }
  south_tcp_client:         { type: tcp, kind: client }
"#;

#[test]
fn reference_chain_without_security_loads() {
    let plan = plan(REFERENCE_CHAIN_PLAIN);
    assert_eq!(plan.name.as_deref(), Some("example"));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(plan.listeners.len(), 1);
    let listener = &plan.listeners[0];
    assert_eq!(listener.binding, "north_tcp_server");
    assert_eq!(listener.addr.to_string(), "0.0.0.0:7143");
    let http = &listener.http;
    assert_eq!(http.binding, "north_http_server");
    assert!(!http.http1 && http.h2);
    assert_eq!(
        http.access_control,
        AccessControl::CrossOrigin {
            origins: None,
            methods: None,
            headers: None,
            credentials: false,
            max_age: None,
            expose: None,
        }
    );
    let condition = &http.routes[0].when[0];
    assert_eq!(condition.headers[0].0, ":scheme");
    assert!(condition.headers[0].1.matches("https"));
    assert_eq!(condition.headers[1].0, ":path");
    assert!(condition.headers[1].1.matches("/events/a/b?x=1"));
    assert!(!condition.headers[1].1.matches("/other"));

    let routes = sse_kafka_routes(&plan);
    assert_eq!(routes.len(), 1);
    let route = &routes[0];
    let mut params = Params::new();
    assert!(route.when[0].match_path("/events/k1/t1", &mut params));
    assert_eq!(route.topic.as_static(), Some("events"));
    assert_eq!(route.filters.len(), 1);
    let filter = &route.filters[0];
    let key = filter.key.as_ref().unwrap();
    assert_eq!(key.resolve_to_string(&params, &NoGuard), "k1");
    assert_eq!(filter.headers[0].0, "tag");
    assert_eq!(
        filter.headers[0].1.resolve_to_string(&params, &NoGuard),
        "t1"
    );
    assert_eq!(
        debug(&route.event_id),
        debug(&IdTemplate::from_config(r#"["${base64(key)}","${etag}"]"#).unwrap())
    );

    let cluster = &route.cluster;
    assert_eq!(cluster.binding, "south_kafka_client");
    assert_eq!(cluster.servers, ["kafka.internal:29092"]);
    assert_eq!(cluster.bootstrap, ["events"]);
    assert!(cluster.allowed_topics.is_empty());
    assert_eq!(plan.clusters.len(), 1);
    assert!(Arc::ptr_eq(cluster, &plan.clusters[0]));
}

/// zilla `examples/sse.kafka.fanout/etc/zilla.yaml`.
const FANOUT: &str = r#"
---
name: example
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 0.0.0.0
      port:
        - 7114
    routes:
      - when:
          - port: 7114
        exit: north_http_server
  north_http_server:
    type: http
    kind: server
    options:
      access-control:
        policy: cross-origin
    routes:
      - when:
          - headers:
              :scheme: http
              :path: /events
        exit: north_sse_server
      - when:
          - headers:
              :scheme: http
        exit: east_http_filesystem_mapping
  east_http_filesystem_mapping:
    type: http-filesystem
    kind: proxy
    routes:
      - exit: east_filesystem_server
        when:
          - path: /{path}
        with:
          path: ${params.path}
  east_filesystem_server:
    type: filesystem
    kind: server
    options:
      location: www/
  north_sse_server:
    type: sse
    kind: server
    exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when:
          - path: /{topic}
        exit: north_kafka_cache_client
        with:
          topic: ${params.topic}
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    options:
      bootstrap:
        - events
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - ${{env.KAFKA_BOOTSTRAP_SERVER}}
    exit: south_tcp_client
  south_tcp_client:
    type: tcp
    kind: client
telemetry:
  exporters:
    stdout_logs_exporter:
      type: stdout
"#;

#[test]
fn fanout_example_loads_with_files_and_env() {
    let plan = plan(FANOUT);
    assert!(plan.telemetry_stdout);
    let http = &plan.listeners[0].http;
    assert_eq!(http.routes.len(), 2);
    let (sse_path, _) = &http.routes[0].when[0].headers[1];
    assert_eq!(sse_path, ":path");
    assert!(http.routes[0].when[0].headers[1]
        .1
        .matches("/events?lastEventId=x"));
    let HttpExit::Files(files) = &http.routes[1].exit else {
        panic!("expected a files exit");
    };
    assert_eq!(files.binding, "east_http_filesystem_mapping");
    assert_eq!(files.root, Path::new("/etc/zilla/www/"));
    let mut params = Params::new();
    assert!(files.routes[0].when[0].match_path("/index.html", &mut params));
    assert_eq!(
        files.routes[0].path.resolve_to_string(&params, &NoGuard),
        "index.html"
    );
    let routes = sse_kafka_routes(&plan);
    assert_eq!(routes[0].cluster.servers, ["kafka.internal:29092"]);
    // The filesystem location does not exist here: a warning, not an error.
    assert_eq!(
        plan.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["bindings.east_filesystem_server.options.location: /etc/zilla/www/ is not a directory (yet)"]
    );
}

#[test]
fn fanout_example_names_a_missing_env_variable() {
    let missing = |name: &str| (name != "KAFKA_BOOTSTRAP_SERVER").then(|| "x".to_owned());
    let errors: Vec<String> = parse(FANOUT, Path::new("/"), &missing)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        ["bindings.south_kafka_client.options.servers[0]: environment variable KAFKA_BOOTSTRAP_SERVER is not set"]
    );
}

/// The older fanout example: the kafka client has no servers, the tcp client names the broker.
#[test]
fn older_fanout_takes_the_broker_from_the_tcp_client() {
    let text = chain(&[
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, exit: south_tcp_client }",
        ),
        (
            "south_tcp_client",
            "{ type: tcp, kind: client, options: { host: kafka, port: 29092 }, routes: [ { when: [ { cidr: 0.0.0.0/0 } ] } ] }",
        ),
    ]);
    let plan = plan(&text);
    assert_eq!(plan.clusters[0].servers, ["kafka:29092"]);

    let text = chain(&[
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, exit: south_tcp_client }",
        ),
        (
            "south_tcp_client",
            "{ type: tcp, kind: client, routes: [ { when: [ { cidr: 10.0.0.0/8 } ] } ] }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.south_tcp_client.routes[0].when[0].cidr: cidr \"10.0.0.0/8\" not supported (only 0.0.0.0/0 and ::/0, which allow every broker)",
            "bindings.south_kafka_client.options.servers: required",
        ]
    );
}

#[test]
fn filters_config_events_key_tag() {
    let text = chain(&[(
        "north_sse_kafka_mapping",
        r#"{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: "/events/{key}/{tag}" } ], exit: south_kafka_client, with: { topic: events, filters: [ { key: "${params.key}", headers: { tag: "${params.tag}", "zilla:identity": static } }, { key: fixed } ] } } ] }"#,
    )]);
    let plan = plan(&text);
    let route = &sse_kafka_routes(&plan)[0];
    let mut params = Params::new();
    assert!(route.when[0].match_path("/events/a/b/c", &mut params));
    assert_eq!(params.get("key"), Some("a/b"));
    assert_eq!(params.get("tag"), Some("c"));
    let first = &route.filters[0];
    assert_eq!(
        first
            .key
            .as_ref()
            .unwrap()
            .resolve_to_string(&params, &NoGuard),
        "a/b"
    );
    assert_eq!(first.headers.len(), 2);
    assert_eq!(first.headers[1].0, "zilla:identity");
    assert_eq!(first.headers[1].1.as_static(), Some("static"));
    assert_eq!(
        route.filters[1].key.as_ref().unwrap().as_static(),
        Some("fixed")
    );
    assert!(route.filters[1].headers.is_empty());
    assert_eq!(
        debug(&route.event_id),
        debug(&IdTemplate::from_config("${etag}").unwrap())
    );
}

#[test]
fn tcp_ports_ranges_and_per_port_routes() {
    let text = chain(&[
        (
            "north_tcp_server",
            "{ type: tcp, kind: server, options: { port: [ 7114, '7200-7201', '${{env.PORT}}' ] }, routes: [ { when: [ { port: 7114 } ], exit: north_http_server }, { when: [ { port: '7200-7201' } ], exit: other_http_server } ] }",
        ),
        (
            "other_http_server",
            "{ type: http, kind: server, options: { versions: [ http/1.1 ] }, exit: north_sse_server }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_tcp_server.options.port: port 7200 listed twice",
            "bindings.north_tcp_server.options.port: 0.0.0.0:7200 is already bound by bindings.north_tcp_server",
        ]
    );

    let text = text.replace("'${{env.PORT}}'", "7300");
    assert_eq!(
        errors(&text),
        ["bindings.north_tcp_server.routes: no route for port 7300"]
    );

    let text = text.replace(
        "exit: other_http_server } ]",
        "exit: other_http_server } ], exit: north_http_server",
    );
    let plan = plan(&text);
    let summary: Vec<(String, &str, bool)> = plan
        .listeners
        .iter()
        .map(|l| (l.addr.to_string(), l.http.binding.as_str(), l.http.h2))
        .collect();
    assert_eq!(
        summary,
        [
            ("0.0.0.0:7114".to_owned(), "north_http_server", true),
            ("0.0.0.0:7200".to_owned(), "other_http_server", false),
            ("0.0.0.0:7201".to_owned(), "other_http_server", false),
            ("0.0.0.0:7300".to_owned(), "north_http_server", true),
        ]
    );
    // One sse service shared by both http bindings.
    let sse = |i: usize| match &plan.listeners[i].http.routes[0].exit {
        HttpExit::Sse(sse) => sse.clone(),
        HttpExit::Files(_) => panic!("expected sse"),
    };
    assert!(Arc::ptr_eq(&sse(0), &sse(1)));
    assert!(Arc::ptr_eq(
        &plan.listeners[1].http,
        &plan.listeners[2].http
    ));
    assert_eq!(plan.clusters.len(), 1);
}

#[test]
fn tcp_port_errors() {
    let text = chain(&[(
        "north_tcp_server",
        "{ type: tcp, kind: server, options: { host: 127.0.0.1, port: '9-3' }, routes: [ { when: [ { port: 99999 } ], exit: north_http_server } ] }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_tcp_server.options.port: expected a port (0-65535) or a range \"from-to\", found \"9-3\"",
            "bindings.north_tcp_server.routes[0].when[0].port: 99999 is out of range 0..=65535",
        ]
    );
    let text = chain(&[(
        "north_tcp_server",
        "{ type: tcp, kind: server, exit: north_http_server }",
    )]);
    assert_eq!(
        errors(&text),
        ["bindings.north_tcp_server.options.port: required"]
    );
}

#[test]
fn tcp_server_to_tls_server_with_a_filesystem_vault() {
    let dir = std::env::temp_dir().join(format!("sse-kafka-tls-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), b"-").unwrap();
    std::fs::write(dir.join("key.pem"), b"-").unwrap();
    std::fs::write(dir.join("store.p12"), b"-").unwrap();
    let tls_chain = |vault: &str, tls: &str| {
        format!(
            "vaults:\n  v: {vault}\n{}",
            chain(&[
                (
                    "north_tcp_server",
                    "{ type: tcp, kind: server, options: { port: 7143 }, exit: north_tls_server }",
                ),
                ("north_tls_server", tls),
            ])
        )
    };
    let load_in = |text: &str| {
        parse(text, &dir, &env).map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    // Zilla's shape: a PKCS#12 store, a key alias, ALPN h2.
    let text = tls_chain(
        "{ type: filesystem, options: { keys: { store: store.p12, type: pkcs12, password: secret } } }",
        "{ type: tls, kind: server, vault: v, options: { keys: [ localhost ], sni: [ localhost ], alpn: [ h2 ] }, exit: north_http_server }",
    );
    let plan = load_in(&text).expect("plan");
    let tls = plan.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(tls.alpn, ["h2"]);
    assert!(matches!(
        &tls.identities[..],
        [TlsIdentity { sni: None, source: KeySource::Pkcs12 { alias: Some(a), password, .. } }]
            if a == "localhost" && password == "secret"
    ));
    // Our PEM extension, ALPN from the http binding's versions.
    let text = tls_chain(
        "{ type: filesystem, options: { keys: { store: cert.pem, type: pem, key: key.pem } } }",
        "{ type: tls, kind: server, vault: v, exit: north_http_server }",
    );
    let plan = load_in(&text).expect("plan");
    let tls = plan.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(tls.alpn, ["h2", "http/1.1"]);
    assert!(matches!(&tls.identities[0].source, KeySource::Pem { .. }));
    // Errors name their paths.
    let text = tls_chain(
        "{ type: filesystem, options: { keys: { store: missing.p12 }, trust: { store: t.p12 } } }",
        "{ type: tls, kind: server, vault: nope, options: { alpn: [ spdy ] }, exit: north_http_server }",
    );
    assert_eq!(
        load_in(&text).unwrap_err(),
        [
            &format!(
                "vaults.v.options.keys.store: {} is not a readable file",
                dir.join("missing.p12").display()
            ),
            &format!(
                "vaults.v.options.trust.store: {} is not a readable file",
                dir.join("t.p12").display()
            ),
            "bindings.north_tls_server.options.alpn[0]: protocol \"spdy\" not supported (h2, http/1.1)",
            "bindings.north_tls_server.vault: unknown vault \"nope\"",
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_types_kinds_and_keys() {
    let text = chain(&[
        ("mqtt_server", "{ type: mqtt, kind: server }"),
        ("sse_client", "{ type: sse, kind: client }"),
        ("no_type", "{ kind: server }"),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.mqtt_server.type: binding type \"mqtt\" not supported",
            "bindings.sse_client.kind: kind \"client\" not supported for binding type \"sse\"",
            "bindings.no_type.type: required",
        ]
    );

    let text = chain(&[(
        "north_http_server",
        "{ type: http, kind: server, colour: blue, options: { overrides: { x: y }, requests: [], foo: 1 }, exit: north_sse_server }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_http_server.colour: unknown key",
            "bindings.north_http_server.options.overrides: not supported",
            "bindings.north_http_server.options.requests: not supported",
            "bindings.north_http_server.options.foo: unknown option",
        ]
    );

    let text = format!("{}catalogs: {{}}\nextra: 1\n", chain(&[]));
    assert_eq!(errors(&text), ["extra: unknown key"]);
}

#[test]
fn http_options_and_routes() {
    let text = chain(&[(
        "north_http_server",
        r#"{ type: http, kind: server, options: { versions: [ http/1.1, h3 ], access-control: { policy: same-origin, max-age: 5 } }, routes: [ { when: [ { headers: { ":path": /x }, path: /y } ], with: { headers: { overrides: {} } }, guarded: { jwt: [ read ] }, exit: north_sse_server } ] }"#,
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_http_server.options.versions[1]: unknown version \"h3\": expected http/1.1 or h2",
            "bindings.north_http_server.options.access-control.max-age: only allowed with policy cross-origin",
            "bindings.north_http_server.routes[0].with: not supported",
            "bindings.north_http_server.routes[0].when[0].path: unknown key",
            "bindings.north_http_server.routes[0].guarded.jwt: unknown guard \"jwt\"",
        ]
    );

    let text = chain(&[(
        "north_http_server",
        r#"{ type: http, kind: server, options: { access-control: { policy: cross-origin, allow: { origins: [ "https://a.example" ], methods: [ GET ], headers: [ authorization ], credentials: true }, max-age: 10, expose: { headers: [ etag ] } } }, routes: [ { when: [ { headers: { ":Authority": "*.example:443" } } ], exit: north_sse_server } ] }"#,
    )]);
    let plan = plan(&text);
    let http = &plan.listeners[0].http;
    assert_eq!(
        http.access_control,
        AccessControl::CrossOrigin {
            origins: Some(vec!["https://a.example".into()]),
            methods: Some(vec!["GET".into()]),
            headers: Some(vec!["authorization".into()]),
            credentials: true,
            max_age: Some(10),
            expose: Some(vec!["etag".into()]),
        }
    );
    assert_eq!(http.routes[0].when[0].headers[0].0, ":authority");
    assert!(http.routes[0].when[0].headers[0].1.matches("a.example:443"));
}

#[test]
fn sse_options_and_routes() {
    let text = chain(&[(
        "north_sse_server",
        "{ type: sse, kind: server, options: { retry: 2000 }, routes: [ { when: [ { path: /events/* } ], exit: north_sse_kafka_mapping } ] }",
    )]);
    let plan = plan(&text);
    let HttpExit::Sse(sse) = &plan.listeners[0].http.routes[0].exit else {
        panic!("expected sse");
    };
    assert_eq!(sse.routes[0].when, [Glob::new("/events/*")]);

    let text = chain(&[(
        "north_sse_server",
        "{ type: sse, kind: server, options: { requests: [ { path: /x } ] }, routes: [ { when: [ { path: /x } ] } ] }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_sse_server.options.requests: not supported",
            "bindings.north_sse_server.routes[0].exit: required",
        ]
    );

    let text = chain(&[("north_sse_server", "{ type: sse, kind: server }")]);
    assert_eq!(errors(&text), ["bindings.north_sse_server.exit: required"]);
}

#[test]
fn exits_unknown_wrong_kind_and_cycles() {
    let text = chain(&[(
        "north_http_server",
        "{ type: http, kind: server, routes: [ { exit: nowhere }, { exit: south_kafka_client }, { exit: north_http_server } ] }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_http_server.routes[0].exit: unknown binding \"nowhere\"",
            "bindings.north_http_server.routes[1].exit: an http server binding must exit to an sse server or an http-filesystem proxy binding, not \"south_kafka_client\" (a kafka client binding)",
            "bindings.north_http_server.routes[2].exit: cycle: north_http_server → north_http_server (an http server binding must exit to an sse server or an http-filesystem proxy binding)",
        ]
    );

    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: north_kafka_cache_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "north_kafka_cache_client",
            "{ type: kafka, kind: cache_client, exit: south_kafka_cache_server }",
        ),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server, exit: north_kafka_cache_client }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.south_kafka_cache_server.exit: cycle: north_kafka_cache_client → south_kafka_cache_server → north_kafka_cache_client (a kafka cache_server binding must exit to a kafka client binding)",
        ]
    );
}

#[test]
fn kafka_chain_must_end_at_a_client() {
    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: north_kafka_cache_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "north_kafka_cache_client",
            "{ type: kafka, kind: cache_client, exit: south_kafka_cache_server }",
        ),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_cache_server.exit: required"]
    );

    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: other_sse_server, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "other_sse_server",
            "{ type: sse, kind: server, exit: north_sse_kafka_mapping }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        ["bindings.north_sse_kafka_mapping.routes[0].exit: an sse-kafka proxy binding must exit to a kafka cache_client or a kafka client binding, not \"other_sse_server\" (an sse server binding)"]
    );

    let text = chain(&[
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'localhost:9092' ] }, exit: other_http_server }",
        ),
        (
            "other_http_server",
            "{ type: http, kind: server, exit: north_sse_server }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_client.exit: a kafka client binding must exit to a tcp client or a tls client binding, not \"other_http_server\" (an http server binding)"]
    );
}

#[test]
fn sse_kafka_route_errors() {
    let route = |with: &str| {
        chain(&[(
            "north_sse_kafka_mapping",
            &format!(
                "{{ type: sse-kafka, kind: proxy, routes: [ {{ when: [ {{ path: '/{{topic}}' }} ], exit: south_kafka_client, {with} }} ] }}"
            ),
        )])
    };
    let at = "bindings.north_sse_kafka_mapping.routes[0]";
    assert_eq!(
        errors(&route("with: { filters: [] }")),
        [format!("{at}.with.topic: required")]
    );
    assert_eq!(
        errors(&route("guarded: { jwt: [ read ] }")),
        [
            format!("{at}.guarded.jwt: unknown guard \"jwt\""),
            format!("{at}.with.topic: required"),
        ]
    );
    assert_eq!(
        errors(&route("with: { topic: t, event: { id: '${key}' } }")),
        [format!(
            "{at}.with.event.id: unsupported event id \"${{key}}\": expected \"${{etag}}\" or \"[\\\"${{base64(key)}}\\\",\\\"${{etag}}\\\"]\""
        )]
    );
    assert_eq!(
        errors(&route("with: { topic: '${params.x}-${params.topic}' }")),
        [format!(
            "{at}.with.topic: ${{params.x}} is not defined by when path \"/{{topic}}\""
        )]
    );
    assert_eq!(
        errors(&route("with: { topic: '${param.topic}' }")),
        [format!(
            "{at}.with.topic: malformed `${{param.topic}}`: expected ${{params.NAME}}, ${{guarded['GUARD'].identity}} or ${{guarded['GUARD'].attributes.NAME}}"
        )]
    );
    assert_eq!(
        errors(&route(
            "with: { topic: t, filters: [ { key: \"${guarded['jwt'].identity}\", headers: { a: '${params.nope}' }, value: x } ] }"
        )),
        [
            format!("{at}.with.filters[0].value: unknown key"),
            format!("{at}.with.filters[0].key: unknown guard \"jwt\""),
            format!("{at}.with.filters[0].headers.a: ${{params.nope}} is not defined by when path \"/{{topic}}\""),
        ]
    );

    let text = chain(&[(
        "north_sse_kafka_mapping",
        "{ type: sse-kafka, kind: proxy, options: {}, routes: [ { when: [ { path: '/{' }, { topic: x } ], exit: south_kafka_client, with: { topic: t } } ], exit: south_kafka_client }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_sse_kafka_mapping.options: not supported",
            "bindings.north_sse_kafka_mapping.routes[0].when[0].path: malformed parameter at byte 1: expected {name} with a name of letters and '_'",
            "bindings.north_sse_kafka_mapping.routes[0].when[1].topic: unknown key",
            "bindings.north_sse_kafka_mapping.routes[0].when[1].path: required",
            "bindings.north_sse_kafka_mapping.exit: not supported: an sse-kafka exit needs a route with with.topic",
        ]
    );

    let text = chain(&[(
        "north_sse_kafka_mapping",
        "{ type: sse-kafka, kind: proxy, routes: [ { exit: south_kafka_client, with: { topic: '${params.topic}' } } ] }",
    )]);
    assert_eq!(
        errors(&text),
        ["bindings.north_sse_kafka_mapping.routes[0].with.topic: ${params.topic} is not defined: the route has no when path"]
    );
}

#[test]
fn kafka_options() {
    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: north_kafka_cache_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "north_kafka_cache_client",
            "{ type: kafka, kind: cache_client, options: { topics: [ { name: a }, { name: b, value: { model: json } } ], bootstrap: [ a ] }, exit: south_kafka_cache_server }",
        ),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server, options: { bootstrap: [ a ], topics: [ { name: a, defaultOffset: live, deltaType: json_patch }, { name: b, transforms: [], key: {} }, { name: c, defaultOffset: latest }, { name: a } ] }, exit: south_kafka_client }",
        ),
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'k:1' ], sasl: { mechanism: plain }, authorization: {} } }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_kafka_cache_client.options.bootstrap: not supported",
            "bindings.north_kafka_cache_client.options.topics[1].value.catalog: required",
            "bindings.south_kafka_cache_server.options.topics[0].deltaType: not supported",
            "bindings.south_kafka_cache_server.options.topics[1].transforms: not supported",
            "bindings.south_kafka_cache_server.options.topics[1].key.model: required",
            "bindings.south_kafka_cache_server.options.topics[2].defaultOffset: unknown defaultOffset \"latest\": expected live or historical",
            "bindings.south_kafka_cache_server.options.topics[3]: topic \"a\" listed twice",
            "bindings.south_kafka_client.options.sasl: give either options.authorization or the older options.sasl, not both",
        ]
    );

    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: north_kafka_cache_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "north_kafka_cache_client",
            "{ type: kafka, kind: cache_client, routes: [ { when: [ { topic: 'items-*' }, { topic: prices } ], exit: south_kafka_cache_server } ] }",
        ),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server, options: { bootstrap: [ prices ], topics: [ { name: prices, defaultOffset: live } ] }, routes: [ { when: [ { topic: items-snapshots }, { topic: prices } ], exit: south_kafka_client } ] }",
        ),
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'k1:9092, k2:9092' ] }, exit: south_tcp_client }",
        ),
        ("south_tcp_client", "{ type: tcp, kind: client }"),
    ]);
    let plan = plan(&text);
    let cluster = &plan.clusters[0];
    assert_eq!(cluster.servers, ["k1:9092", "k2:9092"]);
    assert_eq!(
        cluster.allowed_topics,
        [Glob::new("items-snapshots"), Glob::new("prices")]
    );
    assert_eq!(cluster.default_offset("prices"), DefaultOffset::Live);
    assert_eq!(cluster.default_offset("other"), DefaultOffset::Historical);
}

#[test]
fn kafka_topic_routes_that_cannot_combine() {
    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: north_kafka_cache_client, with: { topic: '${params.topic}' } } ] }",
        ),
        (
            "north_kafka_cache_client",
            "{ type: kafka, kind: cache_client, routes: [ { when: [ { topic: 'a-*' } ], exit: south_kafka_cache_server } ] }",
        ),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server, routes: [ { when: [ { topic: '*-b' } ], exit: south_kafka_client } ] }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        ["bindings.north_kafka_cache_client: not supported: topic routes \"a-*\" and \"*-b\" on two kafka bindings of this chain cannot be combined"]
    );
}

#[test]
fn clusters_are_shared_by_client_binding() {
    let text = chain(&[
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/a/{topic}' } ], exit: cache_a, with: { topic: '${params.topic}' } }, { when: [ { path: '/b/{topic}' } ], exit: cache_b, with: { topic: '${params.topic}' } }, { when: [ { path: '/c/{topic}' } ], exit: cache_a, with: { topic: '${params.topic}' } } ] }",
        ),
        ("cache_a", "{ type: kafka, kind: cache_client, exit: south_kafka_cache_server }"),
        ("cache_b", "{ type: kafka, kind: cache_client, exit: south_kafka_cache_server }"),
        (
            "south_kafka_cache_server",
            "{ type: kafka, kind: cache_server, exit: south_kafka_client }",
        ),
    ]);
    let plan = plan(&text);
    let routes = sse_kafka_routes(&plan);
    assert_eq!(plan.clusters.len(), 1);
    for route in routes {
        assert!(Arc::ptr_eq(&route.cluster, &plan.clusters[0]));
    }

    let text = text.replace(
        "(\"cache_b\"",
        "",
    ).replace(
        "cache_b: { type: kafka, kind: cache_client, exit: south_kafka_cache_server }",
        "cache_b: { type: kafka, kind: cache_client, exit: other_cache_server }\n  other_cache_server: { type: kafka, kind: cache_server, options: { bootstrap: [ x ] }, exit: south_kafka_client }",
    );
    assert_eq!(
        errors(&text),
        ["bindings.cache_b: not supported: reaches kafka client \"south_kafka_client\" with other cache options or topic routes than another chain to it"]
    );
}

#[test]
fn http_filesystem_routes() {
    let text = chain(&[
        (
            "north_http_server",
            "{ type: http, kind: server, routes: [ { when: [ { headers: { ':path': /events/* } } ], exit: north_sse_server }, { exit: files } ] }",
        ),
        (
            "files",
            "{ type: http-filesystem, kind: proxy, routes: [ { when: [ { path: '/{path}', method: GET } ], exit: www, with: { path: '${params.path}' } }, { when: [ { path: '/x/{p}' } ], exit: www, with: { path: '${params.path}' } }, { exit: www } ] }",
        ),
        (
            "www",
            "{ type: filesystem, kind: server, options: { location: /var/www, symlinks: follow } }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        [
            "bindings.files.routes[0].when[0].method: not supported",
            "bindings.www.options.symlinks: not supported",
            "bindings.files.routes[1].with.path: ${params.path} is not defined by when path \"/x/{p}\"",
            "bindings.files.routes[2].with.path: required",
        ]
    );

    let text = chain(&[
        (
            "north_http_server",
            "{ type: http, kind: server, routes: [ { exit: files } ] }",
        ),
        (
            "files",
            "{ type: http-filesystem, kind: proxy, routes: [ { when: [ { path: '/{path}' } ], exit: www, with: { path: 'site/${params.path}' } } ] }",
        ),
        ("www", "{ type: filesystem, kind: server, options: { location: ../www } }"),
    ]);
    let plan = plan(&text);
    let HttpExit::Files(files) = &plan.listeners[0].http.routes[0].exit else {
        panic!("expected files");
    };
    assert_eq!(files.root, Path::new("/etc/zilla/../www"));
    let mut params = Params::new();
    assert!(files.routes[0].when[0].match_path("/a/b.css", &mut params));
    assert_eq!(
        files.routes[0].path.resolve_to_string(&params, &NoGuard),
        "site/a/b.css"
    );
    // The unused sse chain is reported as unreachable.
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert!(warnings.contains(
        &"bindings.north_sse_server: not reachable from any tcp server binding; ignored".to_owned()
    ));
    assert!(plan.clusters.is_empty());
}

#[test]
fn telemetry_exporters_metrics_and_attributes() {
    let text = format!(
        "{}telemetry:\n  attributes: {{ service.namespace: example }}\n  metrics: [ http.request.size, stream.active.received ]\n  exporters:\n    out: {{ type: stdout }}\n    prom: {{ type: prometheus, options: {{ endpoints: [ {{ scheme: https, port: 7190 }} ] }} }}\n    otel: {{ type: otlp }}\n",
        chain(&[])
    );
    assert_eq!(
        errors(&text),
        [
            "telemetry.exporters.prom.options.endpoints[0].scheme: scheme \"https\" not supported",
            "telemetry.exporters.otel.type: exporter type \"otlp\" not supported",
        ]
    );
    let text = text
        .replace("scheme: https, ", "scheme: http, ")
        .replace("    otel: { type: otlp }\n", "");
    let plan = plan(&text);
    assert!(plan.telemetry_stdout);
    assert_eq!(
        plan.prometheus,
        [PrometheusEndpoint {
            port: 7190,
            path: "/metrics".into()
        }]
    );
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["telemetry.metrics: every metric is exported; the list does not select them"]
    );
}

#[test]
fn qualified_exits_and_binding_telemetry() {
    let text = chain(&[(
        "north_tcp_server",
        "{ type: tcp, kind: server, telemetry: { metrics: [ stream.* ] }, options: { port: 7114 }, exit: 'example:north_http_server' }",
    )]);
    let plan = plan(&text);
    assert_eq!(plan.listeners[0].http.binding, "north_http_server");
    assert_eq!(
        plan.warnings[0].to_string(),
        "bindings.north_tcp_server.telemetry: per-binding telemetry is not collected; ignored"
    );
    let text = text.replace("example:north", "other:north");
    assert_eq!(
        errors(&text),
        ["bindings.north_tcp_server.exit: unknown binding \"other:north_http_server\""]
    );
}

#[test]
fn document_level_errors() {
    assert_eq!(
        errors("bindings: [\n"),
        ["(root): invalid YAML: while parsing a node, did not find expected node content at byte 12 line 2 column 1"]
    );
    assert_eq!(errors(""), ["(root): empty configuration"]);
    assert_eq!(
        errors("a: 1\n---\nb: 2\n"),
        ["(root): 2 YAML documents: expected exactly one"]
    );
    assert_eq!(
        errors("- 1\n"),
        ["(root): expected a mapping, found a list"]
    );
    assert_eq!(errors("name: x\n"), ["bindings: required"]);
    assert_eq!(
        errors("bindings: {}\n"),
        ["bindings: no tcp server binding: nothing to listen on"]
    );
    assert_eq!(
        errors("bindings:\n  a: { type: tcp, kind: server, options: { port: 1 }, exit: b }\n  a: {}\n"),
        ["(root): invalid YAML: String(\"a\"): duplicated key in mapping at byte 80 line 3 column 7"]
    );
}

#[test]
fn env_substitution_everywhere_and_single_pass() {
    let text = chain(&[
        (
            "north_tcp_server",
            "{ type: tcp, kind: server, options: { host: 127.0.0.1, port: '${{env.PORT}}' }, exit: north_http_server }",
        ),
        (
            "north_sse_kafka_mapping",
            "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: south_kafka_client, with: { topic: 'prefix-${{env.PORT}}-${params.topic}' } } ] }",
        ),
    ]);
    let plan = plan(&text);
    assert_eq!(plan.listeners[0].addr.to_string(), "127.0.0.1:7200");
    let route = &sse_kafka_routes(&plan)[0];
    let mut params = Params::new();
    assert!(route.when[0].match_path("/${{env.PORT}}", &mut params));
    assert_eq!(
        route.topic.resolve_to_string(&params, &NoGuard),
        "prefix-7200-${{env.PORT}}"
    );

    let text = chain(&[(
        "north_tcp_server",
        "{ type: tcp, kind: server, options: { host: '${{env.HOST}}', port: '${{ env.PORT }}' }, exit: '${{env.EXIT}}' }",
    )]);
    assert_eq!(
        errors(&text),
        [
            "bindings.north_tcp_server.options.host: environment variable HOST is not set",
            "bindings.north_tcp_server.exit: environment variable EXIT is not set",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Guards, http authorization, route `guarded`

/// zilla `examples/sse.kafka.fanout.jwt`'s RSA key: `n` in standard base64 (`+`, `/`, `=`),
/// which Zilla's JWK reader accepts.
const EXAMPLE_RSA_N: &str = "qqEu50hX+43Bx4W1UYWnAVKwFm+vDbP0kuIOSLVNa+HKQdHTf+3Sei5UCnkskn796izA29D0DdCy3ET9oaKRHIJyKbqFl0rv6f516QzOoXKC6N01sXBHBE/ovs0wwDvlaW+gFGPgkzdcfUlyrWLDnLV7LcuQymhTND2uH0oR3wJnNENN/OFgM1KGPPDOe19YsIKdLqARgxrhZVsh06OurEviZTXOBFI5r+yac7haDwOQhLHXNv+Y9MNvxs5QLWPFIM3bNUWfYrJnLrs4hGJS+y/KDM9Si+HL30QAFXy4YNO33J8DHjZ7ddG5n8/FqplOKvRtUgjcKWlxoGY4VdVaDQ==";

/// RFC 7517 appendix A.1's RSA public key (base64url), as in Zilla's `guard.yaml` spec.
const RFC_RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

/// RFC 7517 appendix A.1's EC P-256 public key, as in Zilla's `guard.yaml` spec.
const RFC_EC_X: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
const RFC_EC_Y: &str = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";

/// base64url of the 32-byte HMAC secret `secret-secret-secret-secret-secr`.
const HS256_K: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";

/// zilla `examples/sse.kafka.fanout.jwt/etc/zilla.yaml`, verbatim.
const FANOUT_JWT_EXAMPLE: &str = r#"
---
name: example
vaults:
  my_servers:
    type: filesystem
    options:
      keys:
        store: tls/localhost.p12
        type: pkcs12
        password: ${{env.KEYSTORE_PASSWORD}}
guards:
  authn_jwt:
    type: jwt
    options:
      issuer: https://auth.example.com
      audience: https://api.example.com
      keys:
        - kty: RSA
          n: qqEu50hX+43Bx4W1UYWnAVKwFm+vDbP0kuIOSLVNa+HKQdHTf+3Sei5UCnkskn796izA29D0DdCy3ET9oaKRHIJyKbqFl0rv6f516QzOoXKC6N01sXBHBE/ovs0wwDvlaW+gFGPgkzdcfUlyrWLDnLV7LcuQymhTND2uH0oR3wJnNENN/OFgM1KGPPDOe19YsIKdLqARgxrhZVsh06OurEviZTXOBFI5r+yac7haDwOQhLHXNv+Y9MNvxs5QLWPFIM3bNUWfYrJnLrs4hGJS+y/KDM9Si+HL30QAFXy4YNO33J8DHjZ7ddG5n8/FqplOKvRtUgjcKWlxoGY4VdVaDQ==
          e: AQAB
          alg: RS256
          kid: example
        - kty: EC
          crv: P-256
          x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU
          y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0
          alg: ES256
          kid: example_ec
      challenge: 10
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 0.0.0.0
      port:
        - 7143
    routes:
      - when:
          - port: 7143
        exit: north_tls_server
  north_tls_server:
    type: tls
    kind: server
    vault: my_servers
    options:
      keys:
        - localhost
      sni:
        - localhost
      alpn:
        - h2
    exit: north_http_server
  north_http_server:
    type: http
    kind: server
    options:
      versions:
        - h2
      authorization:
        authn_jwt:
          credentials:
            headers:
              authorization: Bearer {credentials}
            query:
              access_token: "{credentials}"
      access-control:
        policy: cross-origin
    routes:
      - when:
          - headers:
              :scheme: https
              :path: /events
        exit: north_sse_server
      - when:
          - headers:
              :scheme: http
        exit: east_http_filesystem_mapping
  east_http_filesystem_mapping:
    type: http-filesystem
    kind: proxy
    routes:
      - exit: east_filesystem_server
        when:
          - path: /{path}
        with:
          path: ${params.path}
  east_filesystem_server:
    type: filesystem
    kind: server
    options:
      location: /var/www/
  north_sse_server:
    type: sse
    kind: server
    routes:
      - guarded:
          authn_jwt:
            - proxy:stream
        exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when:
          - path: /{topic}
        exit: north_kafka_cache_client
        with:
          topic: ${params.topic}
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    options:
      bootstrap:
        - events
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - ${{env.KAFKA_BOOTSTRAP_SERVER}}
    exit: south_tcp_client
  south_tcp_client:
    type: tcp
    kind: client
telemetry:
  exporters:
    stdout_logs_exporter:
      type: stdout
"#;

#[test]
fn fanout_jwt_example_needs_only_its_keystore() {
    assert_eq!(
        errors(FANOUT_JWT_EXAMPLE),
        [
            // The example's keystore is not on this machine: the only error left.
            "vaults.my_servers.options.keys.store: /etc/zilla/tls/localhost.p12 is not a readable file",
        ]
    );
}

/// Shaped like zilla `examples/sse.kafka.fanout.jwt` without tls: the guard on the sse route,
/// the user's own topic from the token's identity.
fn fanout_jwt() -> String {
    format!(
        r#"
name: example
guards:
  authn_jwt:
    type: jwt
    options:
      issuer: https://auth.example.com
      audience: https://api.example.com
      keys:
        - kty: RSA
          n: {EXAMPLE_RSA_N}
          e: AQAB
          alg: RS256
          kid: example
      challenge: 30
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 0.0.0.0
      port: 7114
    routes:
      - when:
          - port: 7114
        exit: north_http_server
  north_http_server:
    type: http
    kind: server
    options:
      versions: [ http/1.1, h2 ]
      authorization:
        authn_jwt:
          credentials:
            headers:
              Authorization: Bearer {{credentials}}
            query:
              access_token: "{{credentials}}"
      access-control:
        policy: cross-origin
    routes:
      - when:
          - headers:
              :scheme: http
              :path: /events
        exit: north_sse_server
  north_sse_server:
    type: sse
    kind: server
    routes:
      - guarded:
          authn_jwt:
            - proxy:stream
        exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when:
          - path: /events
        exit: north_kafka_cache_client
        with:
          topic: "${{guarded['authn_jwt'].identity}}"
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - ${{{{env.KAFKA_BOOTSTRAP_SERVER}}}}
"#
    )
}

/// A session knowing one identity and one attribute of guard `authn_jwt`.
struct Session;

impl Guarded for Session {
    fn identity(&self, guard: &str) -> Option<&str> {
        (guard == "authn_jwt").then_some("alice")
    }

    fn attribute(&self, guard: &str, name: &str) -> Option<&str> {
        (guard == "authn_jwt" && name == "tenant").then_some("acme")
    }
}

fn inline_keys(guard: &Guard) -> &KeySet {
    match &guard.jwt().keys {
        JwtKeys::Inline(keys) => keys,
        other => panic!("expected inline keys, got {other:?}"),
    }
}

#[test]
fn fanout_jwt_loads_guard_authorization_and_guarded_route() {
    let plan = plan(&fanout_jwt());
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(plan.guards.len(), 1);
    let guard = &plan.guards[0];
    assert_eq!(guard.name, "authn_jwt");
    let GuardKind::Jwt(jwt) = &guard.kind;
    assert_eq!(jwt.issuer.as_deref(), Some("https://auth.example.com"));
    assert_eq!(jwt.audience.as_deref(), Some("https://api.example.com"));
    assert_eq!(jwt.challenge, Some(30));
    assert_eq!(jwt.roles_claim, "scope");
    assert_eq!(jwt.identity_claim, "sub");
    assert!(jwt.attributes.is_empty());
    let keys = inline_keys(guard);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.keys()[0].kid(), Some("example"));
    assert_eq!(keys.keys()[0].kty(), "RSA");
    assert_eq!(keys.keys()[0].alg(), Some(Alg::Rs256));

    let http = &plan.listeners[0].http;
    let authorization = http.authorization.as_ref().expect("authorization");
    assert!(Arc::ptr_eq(&authorization.guard, guard));
    assert_eq!(
        authorization.credentials,
        [
            CredentialSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
                suffix: String::new(),
            },
            CredentialSource::Query {
                name: "access_token".into(),
                prefix: String::new(),
                suffix: String::new(),
            },
        ]
    );
    assert!(http.routes[0].guarded.is_empty());
    let HttpExit::Sse(sse) = &http.routes[0].exit else {
        panic!("expected an sse exit");
    };
    let [(sse_guard, roles)] = &sse.routes[0].guarded[..] else {
        panic!("expected one guard on the sse route");
    };
    assert!(Arc::ptr_eq(sse_guard, guard));
    assert_eq!(roles, &["proxy:stream"]);

    let route = &sse_kafka_routes(&plan)[0];
    assert!(route.guarded.is_empty());
    let params = Params::new();
    assert_eq!(route.topic.resolve_to_string(&params, &Session), "alice");
    assert_eq!(route.topic.resolve_to_string(&params, &NoGuard), "");
}

#[test]
fn credential_sources_take_the_token_between_prefix_and_suffix() {
    let header = CredentialSource::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
        suffix: String::new(),
    };
    assert_eq!(header.name(), "authorization");
    assert_eq!(header.token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
    assert_eq!(header.token("bearer abc"), None);
    assert_eq!(header.token("Bearer "), None);
    assert_eq!(header.token("Bearer a b"), None);
    let query = CredentialSource::Query {
        name: "access_token".into(),
        prefix: String::new(),
        suffix: String::new(),
    };
    assert_eq!(query.token("abc"), Some("abc"));
    assert_eq!(query.token("a&b"), None);
    let cookie = CredentialSource::Cookie {
        name: "jwt".into(),
        prefix: "v1:".into(),
        suffix: ";".into(),
    };
    assert_eq!(cookie.token("v1:abc;"), Some("abc"));
    assert_eq!(cookie.token("v1:abc"), None);
}

/// The default chain with `guards` added and bindings changed.
fn guarded_chain(guards: &str, changes: &[(&str, &str)]) -> String {
    chain(changes).replace("bindings:\n", &format!("guards:\n{guards}bindings:\n"))
}

const RSA_GUARD: &str = "  authn_jwt: { type: jwt, options: { keys: [ { kty: RSA, kid: k1, alg: RS256, e: AQAB, n: RSA_N } ] } }\n";

fn rsa_guard() -> String {
    RSA_GUARD.replace("RSA_N", RFC_RSA_N)
}

const HTTP_WITH_AUTHORIZATION: &str = "{ type: http, kind: server, options: { authorization: { authn_jwt: { credentials: { headers: { authorization: 'Bearer {credentials}' } } } } }, exit: north_sse_server }";

#[test]
fn credentials_in_precedence_order_and_guarded_everywhere() {
    let guards = format!(
        "{}  other: {{ type: jwt, options: {{ issuer: 'https://other.example/' }} }}\n",
        rsa_guard()
    );
    let text = guarded_chain(
        &guards,
        &[
            (
                "north_http_server",
                "{ type: http, kind: server, options: { authorization: { authn_jwt: { credentials: { query: { access_token: '{credentials}', t: 'x{credentials}y' }, headers: { X-Token: '{credentials}' }, cookies: { jwt: '{credentials}' } } } } }, routes: [ { guarded: { authn_jwt: [ ] }, exit: north_sse_server } ] }",
            ),
            (
                "north_sse_server",
                "{ type: sse, kind: server, routes: [ { when: [ { path: /a } ], guarded: { authn_jwt: [ read, 'stream:${path}' ] }, exit: north_sse_kafka_mapping }, { exit: north_sse_kafka_mapping } ] }",
            ),
            (
                "north_sse_kafka_mapping",
                "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], guarded: { authn_jwt: [ '${method}:${path}' ] }, exit: south_kafka_client, with: { topic: '${params.topic}' } } ] }",
            ),
        ],
    );
    let plan = plan(&text);
    assert_eq!(plan.guards.len(), 2);
    let http = &plan.listeners[0].http;
    let authorization = http.authorization.as_ref().unwrap();
    let names: Vec<(&str, &str)> = authorization
        .credentials
        .iter()
        .map(|c| match c {
            CredentialSource::Cookie { .. } => ("cookie", c.name()),
            CredentialSource::Header { .. } => ("header", c.name()),
            CredentialSource::Query { .. } => ("query", c.name()),
        })
        .collect();
    assert_eq!(
        names,
        [
            ("cookie", "jwt"),
            ("header", "x-token"),
            ("query", "access_token"),
            ("query", "t"),
        ]
    );
    assert_eq!(
        authorization.credentials[3],
        CredentialSource::Query {
            name: "t".into(),
            prefix: "x".into(),
            suffix: "y".into()
        }
    );
    let guard = &plan.guards[0];
    let [(g, roles)] = &http.routes[0].guarded[..] else {
        panic!("expected one guard on the http route");
    };
    assert!(Arc::ptr_eq(g, guard) && roles.is_empty());
    let HttpExit::Sse(sse) = &http.routes[0].exit else {
        panic!("expected an sse exit");
    };
    assert_eq!(sse.routes[0].guarded[0].1, ["read", "stream:${path}"]);
    assert!(sse.routes[1].guarded.is_empty());
    let route = &sse_kafka_routes(&plan)[0];
    assert!(Arc::ptr_eq(&route.guarded[0].0, guard));
    assert_eq!(route.guarded[0].1, ["${method}:${path}"]);
    // `other` is declared, named nowhere.
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["guards.other: not used by any binding reachable from a tcp server"]
    );
    let GuardKind::Jwt(other) = &plan.guards[1].kind;
    assert!(
        matches!(&other.keys, JwtKeys::Url(url) if url == "https://other.example/.well-known/jwks.json")
    );
}

#[test]
fn keys_implied_by_the_issuer_and_key_urls() {
    let plan = plan(&guarded_chain(
        "  authn_jwt: { type: jwt, options: { issuer: https://auth.example.com, roles: realm_access.roles, identity: $.email, attributes: { plan: $.plan, tenant: org.tenant } } }\n  dynamic: { type: jwt, options: { keys: 'http://localhost:8080/.well-known/jwks.json' } }\n",
        &[
            ("north_http_server", HTTP_WITH_AUTHORIZATION),
            (
                "north_sse_kafka_mapping",
                r#"{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: south_kafka_client, with: { topic: "${guarded['authn_jwt'].attributes.tenant}-${params.topic}", filters: [ { key: "${guarded['authn_jwt'].identity}", headers: { plan: "${guarded['authn_jwt'].attributes.plan}" } } ] } } ] }"#,
            ),
        ],
    ));
    let jwt = plan.guards[0].jwt();
    assert!(
        matches!(&jwt.keys, JwtKeys::Url(url) if url == "https://auth.example.com/.well-known/jwks.json")
    );
    assert_eq!(jwt.roles_claim, "realm_access.roles");
    assert_eq!(jwt.identity_claim, "email");
    assert_eq!(
        jwt.attributes,
        [
            ("plan".to_owned(), "plan".to_owned()),
            ("tenant".to_owned(), "org.tenant".to_owned())
        ]
    );
    assert_eq!(jwt.attribute("tenant"), Some("org.tenant"));
    assert!(
        matches!(&plan.guards[1].jwt().keys, JwtKeys::Url(url) if url == "http://localhost:8080/.well-known/jwks.json")
    );
    let route = &sse_kafka_routes(&plan)[0];
    let mut params = Params::new();
    assert!(route.when[0].match_path("/orders", &mut params));
    assert_eq!(
        route.topic.resolve_to_string(&params, &Session),
        "acme-orders"
    );
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["guards.dynamic: not used by any binding reachable from a tcp server"]
    );

    // Plain http to another host than loopback: a warning.
    let plan = self::plan(&guarded_chain(
        "  authn_jwt: { type: jwt, options: { issuer: 'http://auth.internal:8080' } }\n",
        &[("north_http_server", HTTP_WITH_AUTHORIZATION)],
    ));
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["guards.authn_jwt.options.issuer: keys are fetched from http://auth.internal:8080/.well-known/jwks.json over plain http: they can be replaced in transit; use https"]
    );
}

#[test]
fn hs256_oct_key_from_env_verifies_a_token() {
    let text = guarded_chain(
        "  authn_jwt: { type: jwt, options: { issuer: https://auth.example.com, keys: [ { kty: oct, kid: hs, alg: HS256, k: '${{env.JWT_SECRET}}' }, '{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"EC_X\",\"y\":\"EC_Y\"}' ] } }\n",
        &[("north_http_server", HTTP_WITH_AUTHORIZATION)],
    )
    .replace("EC_X", RFC_EC_X)
    .replace("EC_Y", RFC_EC_Y);
    let env = |name: &str| (name == "JWT_SECRET").then(|| HS256_K.to_owned());
    let plan = parse(&text, Path::new("/etc/zilla"), &env).unwrap();
    let keys = inline_keys(&plan.guards[0]);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.keys()[0].kty(), "oct");
    assert_eq!(keys.keys()[1].kty(), "EC");
    assert!(keys.keys()[1].fits(Alg::Es256));

    let token = mint::hmac(
        Alg::Hs256,
        b"secret-secret-secret-secret-secr",
        r#"{"alg":"HS256","kid":"hs"}"#,
        r#"{"sub":"alice","iss":"https://auth.example.com","exp":1700000600,"scope":"proxy:stream"}"#,
    )
    .unwrap();
    let jwt = plan.guards[0].jwt();
    let expect = Expect {
        issuer: jwt.issuer.as_deref(),
        audience: jwt.audience.as_deref(),
        leeway_secs: 0,
    };
    let mut scratch = [0u8; MAX_PAYLOAD];
    let claims = verify(token.as_bytes(), keys, 1_700_000_000, &expect, &mut scratch).unwrap();
    assert!(claims.has_roles(&jwt.roles_claim, &["proxy:stream"]));
    assert_eq!(
        claims.identity(&jwt.identity_claim).unwrap().to_string(),
        "alice"
    );
}

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("sse-kafka-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn jwks_file_is_read_and_checked_at_load() {
    let dir = TempDir::new("jwks");
    let jwks = format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"r","alg":"RS256","n":"{RFC_RSA_N}","e":"AQAB"}},{{"kty":"EC","kid":"e","crv":"P-256","x":"{RFC_EC_X}","y":"{RFC_EC_Y}","use":"sig"}},{{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}]}}"#
    );
    std::fs::write(dir.0.join("jwks.json"), jwks).unwrap();
    std::fs::write(dir.0.join("empty.json"), r#"{"keys":[]}"#).unwrap();
    let load_keys = |keys: &str| {
        let text = guarded_chain(
            &format!("  authn_jwt: {{ type: jwt, options: {{ keys: '{keys}' }} }}\n"),
            &[("north_http_server", HTTP_WITH_AUTHORIZATION)],
        );
        parse(&text, &dir.0, &env)
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    let path = dir.0.join("jwks.json");
    let plan = load_keys("file:jwks.json").unwrap();
    assert!(matches!(&plan.guards[0].jwt().keys, JwtKeys::File(p) if *p == path));
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!(
            "guards.authn_jwt.options.keys: {}: key \"ed\" skipped: JWK kty is not RSA, EC or oct",
            path.display()
        )]
    );
    let absolute = format!("file://{}", path.display());
    let plan = load_keys(&absolute).unwrap();
    assert!(matches!(&plan.guards[0].jwt().keys, JwtKeys::File(p) if *p == path));

    let at = "guards.authn_jwt.options.keys";
    let missing = dir.0.join("missing.json");
    assert_eq!(
        load_keys("file:missing.json").unwrap_err(),
        [format!(
            "{at}: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )]
    );
    assert_eq!(
        load_keys("file:empty.json").unwrap_err(),
        [format!(
            "{at}: {}: JWKS holds no usable key",
            dir.0.join("empty.json").display()
        )]
    );
    assert_eq!(
        load_keys("file://host/jwks.json").unwrap_err(),
        [format!("{at}: a file:// URL must name a local absolute path (file:///PATH); use file:PATH for a path relative to the configuration")]
    );
    assert_eq!(
        load_keys("file:").unwrap_err(),
        [format!("{at}: file: names no file")]
    );
}

#[test]
fn guard_errors_name_their_paths() {
    let with_guard = |guard: &str| {
        guarded_chain(
            &format!("  g: {guard}\n"),
            &[(
                "north_http_server",
                "{ type: http, kind: server, options: { authorization: { g: { credentials: { headers: { authorization: 'Bearer {credentials}' } } } } }, exit: north_sse_server }",
            )],
        )
    };
    let at = "guards.g";
    assert_eq!(
        errors(&with_guard("{ type: oauth, options: {} }")),
        [format!("{at}.type: guard type \"oauth\" not supported")]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, vault: v }")),
        [
            format!("{at}.vault: unknown key"),
            format!("{at}.options: required")
        ]
    );
    assert_eq!(
        errors(&with_guard("{ options: {} }")),
        [format!("{at}.type: required")]
    );
    assert_eq!(
        errors(&with_guard(
            "{ type: jwt, options: { issuer: https://a.example, leeway: 5, challenge: -1, roles: 'a..b', identity: '', attributes: [ x ] } }"
        )),
        [
            format!("{at}.options.leeway: unknown option"),
            format!("{at}.options.challenge: -1 is out of range 0..=4294967295"),
            format!("{at}.options.roles: claim path \"a..b\": expected names separated by '.'"),
            format!("{at}.options.identity: claim path \"\": expected names separated by '.'"),
            format!("{at}.options.attributes: expected a mapping, found a list"),
        ]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, options: { audience: x } }")),
        [format!(
            "{at}.options.keys: required (or an issuer, whose /.well-known/jwks.json is then used)"
        )]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, options: { issuer: auth.example.com } }")),
        [format!("{at}.options.keys: required: issuer \"auth.example.com\" is not an https:// or http:// URL to take /.well-known/jwks.json from")]
    );
    assert_eq!(
        errors(&with_guard(
            "{ type: jwt, options: { keys: 'https:///jwks.json' } }"
        )),
        [format!(
            "{at}.options.keys: \"https:///jwks.json\" is not a URL with a host"
        )]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, options: { keys: jwks.json } }")),
        [format!("{at}.options.keys: expected a JWKS URL (https://... or http://...), file:PATH or a list of JWKs, found \"jwks.json\"")]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, options: { keys: 42 } }")),
        [format!("{at}.options.keys: expected a JWKS URL (https://... or http://...), file:PATH or a list of JWKs, found an integer")]
    );
    assert_eq!(
        errors(&with_guard("{ type: jwt, options: { keys: [] } }")),
        [format!("{at}.options.keys: expected at least one key")]
    );

    // Each key refused with its index and the library's reason.
    let keys = format!(
        "[ {{ kid: a, alg: RS256, n: {RFC_RSA_N}, e: AQAB }}, {{ kty: RSA, kid: b, e: AQAB }}, {{ kty: RSA, kid: c, n: AAAA, e: AQAB }}, {{ kty: EC, kid: d, crv: P-256, alg: RS256, x: {RFC_EC_X}, y: {RFC_EC_Y} }}, {{ kty: EC, kid: e, crv: P-521, x: {RFC_EC_X}, y: {RFC_EC_Y} }}, {{ kty: OKP, kid: f }}, {{ kty: oct, kid: g, alg: HS256, k: c2hvcnQ }}, {{ kty: oct, kid: h, k: 'not base64!' }}, '{{\"kty\": \"oct\"', {{ kty: [ RSA ] }}, {{ kty: RSA, kid: k, alg: XS256, n: {RFC_RSA_N}, e: AQAB }}, {{ kty: RSA, kid: l, n: {RFC_RSA_N}, e: AQAB, d: private }} ]"
    );
    let k = format!("{at}.options.keys");
    assert_eq!(
        errors(&with_guard(&format!(
            "{{ type: jwt, options: {{ keys: {keys} }} }}"
        ))),
        [
            format!("{k}[0].kty: required"),
            format!("{k}[1]: JWK member n is missing"),
            format!("{k}[2]: JWK key is too short for its algorithm"),
            format!("{k}[3]: JWK alg does not fit its key type"),
            format!("{k}[4]: JWK crv is not P-256 or P-384"),
            format!("{k}[5]: JWK kty is not RSA, EC or oct"),
            format!("{k}[6]: JWK key is too short for its algorithm"),
            format!("{k}[7]: JWK member k is not base64url"),
            format!("{k}[8]: JWK is not a well-formed JSON object"),
            format!("{k}[9].kty: expected a string, found a list"),
            format!("{k}[10]: JWK alg is not supported"),
        ]
    );
    // A private member alone is a warning: the public part is used.
    let plan = plan(&with_guard(&format!(
        "{{ type: jwt, options: {{ keys: [ {{ kty: RSA, n: {RFC_RSA_N}, e: AQAB, d: private }} ] }} }}"
    )));
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!("{k}[0].d: private key member ignored: only the public key is used (configure public keys only)")]
    );
}

#[test]
fn authorization_errors_name_their_paths() {
    let with_http = |options: &str| {
        guarded_chain(
            &rsa_guard(),
            &[(
                "north_http_server",
                &format!("{{ type: http, kind: server, options: {{ authorization: {options} }}, exit: north_sse_server }}"),
            )],
        )
    };
    let at = "bindings.north_http_server.options.authorization";
    assert_eq!(
        errors(&with_http(
            "{ nope: { credentials: { headers: { authorization: 'Bearer {credentials}' } } } }"
        )),
        [format!("{at}.nope: unknown guard \"nope\"")]
    );
    assert_eq!(
        errors(&with_http(
            "{ authn_jwt: { credentials: { query: { t: '{credentials}' } } }, nope: {} }"
        )),
        [format!("{at}: expected exactly one guard, found 2")]
    );
    assert_eq!(
        errors(&with_http("{}")),
        [format!("{at}: expected exactly one guard, found 0")]
    );
    assert_eq!(
        errors(&with_http("{ authn_jwt: { challenge: 1 } }")),
        [
            format!("{at}.authn_jwt.challenge: unknown key"),
            format!("{at}.authn_jwt.credentials: required"),
        ]
    );
    assert_eq!(
        errors(&with_http("{ authn_jwt: { credentials: {} } }")),
        [format!(
            "{at}.authn_jwt.credentials: expected at least one of headers, query, cookies"
        )]
    );
    let c = format!("{at}.authn_jwt.credentials");
    assert_eq!(
        errors(&with_http(
            "{ authn_jwt: { credentials: { headers: { authorization: 'Basic {username}:{password}', x-a: 'Bearer', x-b: '{credentials}{credentials}' }, query: [ t ], cookies: { c: '{credential}' }, body: {} } } }"
        )),
        [
            format!("{c}.body: unknown key"),
            format!("{c}.cookies.c: \"{{credential}}\": expected exactly one {{credentials}}"),
            format!("{c}.headers.authorization: \"Basic {{username}}:{{password}}\": Basic credentials ({{username}}, {{password}}) not supported"),
            format!("{c}.headers.x-a: \"Bearer\": expected exactly one {{credentials}}"),
            format!("{c}.headers.x-b: \"{{credentials}}{{credentials}}\": expected exactly one {{credentials}}"),
            format!("{c}.query: expected a mapping, found a list"),
        ]
    );
    // A guard that was itself refused: only its own error.
    let text = guarded_chain(
        "  authn_jwt: { type: jwt, options: {} }\n",
        &[("north_http_server", HTTP_WITH_AUTHORIZATION)],
    );
    assert_eq!(
        errors(&text),
        ["guards.authn_jwt.options.keys: required (or an issuer, whose /.well-known/jwks.json is then used)"]
    );
}

#[test]
fn guarded_and_template_errors_name_their_paths() {
    let text = guarded_chain(
        &rsa_guard(),
        &[
            (
                "north_http_server",
                "{ type: http, kind: server, options: { authorization: { authn_jwt: { credentials: { headers: { authorization: 'Bearer {credentials}' } } } } }, routes: [ { guarded: { nope: [ read ] }, exit: north_sse_server } ] }",
            ),
            (
                "north_sse_server",
                "{ type: sse, kind: server, routes: [ { guarded: { authn_jwt: read }, exit: north_sse_kafka_mapping } ] }",
            ),
            (
                "north_sse_kafka_mapping",
                r#"{ type: sse-kafka, kind: proxy, routes: [ { guarded: { authn_jwt: [ read ], other: [ ] }, exit: south_kafka_client, with: { topic: "${guarded['authn_jwt'].attributes.tenant}", filters: [ { key: "${guarded['other'].identity}-${guarded['other'].identity}" } ] } } ] }"#,
            ),
        ],
    );
    let sk = "bindings.north_sse_kafka_mapping.routes[0]";
    assert_eq!(
        errors(&text),
        [
            "bindings.north_http_server.routes[0].guarded.nope: unknown guard \"nope\"".to_owned(),
            "bindings.north_sse_server.routes[0].guarded.authn_jwt: expected a list, found a string".to_owned(),
            format!("{sk}.guarded.other: unknown guard \"other\""),
            format!("{sk}.with.topic: ${{guarded['authn_jwt'].attributes.tenant}}: guard \"authn_jwt\" declares no attribute \"tenant\" (Zilla would resolve it to an empty string; refused here because it can never resolve)"),
            format!("{sk}.with.filters[0].key: unknown guard \"other\""),
        ]
    );

    // http-filesystem routes stay unguarded.
    let text = guarded_chain(
        &rsa_guard(),
        &[
            ("north_http_server", "{ type: http, kind: server, exit: files }"),
            (
                "files",
                "{ type: http-filesystem, kind: proxy, routes: [ { when: [ { path: '/{p}' } ], guarded: { authn_jwt: [] }, exit: www, with: { path: '${params.p}' } } ] }",
            ),
            ("www", "{ type: filesystem, kind: server, options: { location: /nonexistent/www } }"),
        ],
    );
    assert_eq!(
        errors(&text),
        ["bindings.files.routes[0].guarded: not supported yet"]
    );
}

#[test]
fn guards_that_can_never_pass_are_warned() {
    // No authorization on the http binding: the guarded sse route refuses every request and
    // the identity template is always empty (Zilla loads this; so do we, with warnings).
    let text = guarded_chain(
        &rsa_guard(),
        &[
            (
                "north_sse_server",
                "{ type: sse, kind: server, routes: [ { guarded: { authn_jwt: [ read ] }, exit: north_sse_kafka_mapping } ] }",
            ),
            (
                "north_sse_kafka_mapping",
                r#"{ type: sse-kafka, kind: proxy, routes: [ { exit: south_kafka_client, with: { topic: t, filters: [ { headers: { user: "${guarded['authn_jwt'].identity}" } } ] } } ] }"#,
            ),
        ],
    );
    let plan = plan(&text);
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "bindings.north_sse_server.routes[0].guarded.authn_jwt: guard \"authn_jwt\" is not the authorization guard of bindings.north_http_server (it has no options.authorization): every request through it is refused",
            "bindings.north_sse_kafka_mapping.routes[0].with.filters[0].headers.user: guard \"authn_jwt\" is not the authorization guard of bindings.north_http_server (it has no options.authorization): ${guarded['authn_jwt']...} is always empty",
        ]
    );

    // Authorization with another guard.
    let guards = format!(
        "{}  other: {{ type: jwt, options: {{ issuer: https://other.example }} }}\n",
        rsa_guard()
    );
    let text = guarded_chain(
        &guards,
        &[
            (
                "north_http_server",
                "{ type: http, kind: server, options: { authorization: { other: { credentials: { cookies: { t: '{credentials}' } } } } }, routes: [ { guarded: { authn_jwt: [ ] }, exit: north_sse_server } ] }",
            ),
        ],
    );
    let plan = self::plan(&text);
    let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["bindings.north_http_server.routes[0].guarded.authn_jwt: guard \"authn_jwt\" is not the authorization guard of bindings.north_http_server (it authorizes with guard \"other\"): every request through it is refused"]
    );
}
