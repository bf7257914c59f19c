//! `type: asyncapi` expansion: the plan equals the hand-written chain's; SASL from a scheme;
//! errors that name the document and its JSON pointer.

use std::path::{Path, PathBuf};

use super::parse;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asyncapi")
}

fn env(name: &str) -> Option<String> {
    Some(
        match name {
            "JWT_K" => "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
            "SSE_PORT" => "7114",
            "KAFKA_BOOTSTRAP" => "localhost:9092",
            "SCHEME" => "bearer",
            _ => return None,
        }
        .to_owned(),
    )
}

fn load(file: &str) -> super::Plan {
    let dir = fixtures();
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    parse(&text, &dir, &env).unwrap_or_else(|e| panic!("{file}: {e:?}"))
}

#[test]
fn expanded_plan_equals_the_hand_written_one() {
    let expanded = load("zilla.yaml");
    let hand = load("hand-written.yaml");
    assert_eq!(
        format!("{:#?}", expanded.listeners),
        format!("{:#?}", hand.listeners)
    );
    assert_eq!(
        format!("{:#?}", expanded.clusters),
        format!("{:#?}", hand.clusters)
    );
    assert_eq!(
        format!("{:?}", expanded.catalogs),
        format!("{:?}", hand.catalogs)
    );
    assert!(expanded.warnings.is_empty(), "{:?}", expanded.warnings);
}

const SASL: &str = r##"
catalogs:
  docs:
    type: inline
    options:
      subjects:
        web:
          schema: |
            asyncapi: 3.0.0
            info: { title: t, version: "1" }
            channels:
              c: { address: /c }
            operations:
              op: { action: receive, channel: { $ref: "#/channels/c" }, bindings: { x-zilla-sse: {} } }
        broker:
          schema: |
            {"asyncapi": "3.0.0", "info": {"title": "t", "version": "1"},
             "channels": {"c": {"address": "topic-c"}},
             "operations": {"op": {"action": "receive", "channel": {"$ref": "#/channels/c"}}},
             "components": {"securitySchemes": {"login": {"type": "MECH"}}}}
guards:
  sasl0:
    type: inline
    options: { identity: alice, credentials: secret }
bindings:
  server:
    type: asyncapi
    kind: server
    options: { specs: { web: { servers: [ "http://localhost:7114" ], catalog: { docs: { subject: web } } } } }
    exit: proxy
  proxy:
    type: asyncapi
    kind: proxy
    options:
      specs:
        web: { servers: [ "http://localhost:7114" ], catalog: { docs: { subject: web } } }
        broker: { servers: [ "kafka://localhost:9092" ], catalog: { docs: { subject: broker } } }
    routes:
      - { when: [ { spec: web, operation: "o*" } ], with: { spec: broker }, exit: client }
  client:
    type: asyncapi
    kind: client
    options:
      specs:
        broker: { servers: [ "kafka://localhost:9092" ], catalog: { docs: { subject: broker } }, security: { login: sasl0 } }
"##;

#[test]
fn sasl_from_a_security_scheme() {
    for (scheme, mechanism) in [
        ("plain", "Plain"),
        ("scramSha256", "ScramSha256"),
        ("scramSha512", "ScramSha512"),
    ] {
        let text = SASL.replace("MECH", scheme);
        let plan =
            parse(&text, Path::new("."), &|_| None).unwrap_or_else(|e| panic!("{scheme}: {e:?}"));
        let sasl = plan.clusters[0].sasl.as_ref().expect("sasl");
        assert_eq!(format!("{:?}", sasl.mechanism), mechanism);
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.secret, "secret");
        let route = &plan.listeners[0].http.routes[0];
        let super::HttpExit::Sse(sse) = &route.exit else {
            panic!("sse exit")
        };
        assert_eq!(
            format!("{:?}", sse.routes[0].exit.routes[0].topic),
            format!("{:?}", super::Template::parse("topic-c").unwrap())
        );
    }
}

#[test]
fn errors_name_the_document_and_pointer() {
    let text = SASL.replace(
        "\"#/channels/c\"}}}",
        "\"#/channels/c\"}, \"x\": {\"$ref\": \"#/operations/op/x\"}}}",
    );
    let err = parse(&text, Path::new("."), &|_| None).unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("bindings.proxy.options.specs.broker.catalog.docs.subject"),
        "{text}"
    );
    assert!(
        text.contains("document docs/broker#/operations/op/x: reference cycle"),
        "{text}"
    );
    // An unresolved reference is a warning naming document and pointer.
    let text = SASL.replace(
        "\"#/channels/c\"}}}",
        "\"#/channels/c\"}, \"x\": {\"$ref\": \"#/nowhere\"}}}",
    );
    let plan = parse(&text, Path::new("."), &|_| None).unwrap();
    let w = format!("{:?}", plan.warnings);
    assert!(
        w.contains("document docs/broker#/operations/op/x: unresolved reference"),
        "{w}"
    );
}
