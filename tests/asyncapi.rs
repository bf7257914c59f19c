//! `type: asyncapi` bindings against tansu, with our own fixtures (tests/fixtures/asyncapi/)
//! in the shapes of Zilla's asyncapi.sse.kafka.proxy example: the SSE document's operations
//! become GET routes, paired by id with the Kafka document's operations; event data is
//! validated against the message schemas (an invalid record is dropped, the stream goes on);
//! x-zilla-sse-kafka header and `{identity}` filters; bearer and query-token security (404
//! without a valid token); `check --expand` prints a zilla.yaml that loads and behaves the same.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SECRET: &[u8] = b"asyncapi-fixture-hs256-secret-32b";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asyncapi")
}

fn broker() -> Broker {
    let broker = Broker::start();
    for topic in ["ticks", "alerts", "private"] {
        broker.create_topic(topic, 1);
    }
    broker
}

fn env(broker: &Broker, port: u16, scheme: &str) -> Vec<(String, String)> {
    vec![
        ("SSE_PORT".into(), port.to_string()),
        ("KAFKA_BOOTSTRAP".into(), broker.bootstrap()),
        (
            "JWT_K".into(),
            b64url(SECRET).trim_end_matches('=').to_owned(),
        ),
        ("SCHEME".into(), scheme.into()),
    ]
}

fn start(config: &Path, env: &[(String, String)], port: u16) -> Server {
    let mut b = Server::builder(port)
        .arg("--config")
        .arg(config)
        .args(["--heartbeat", "0"]);
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

fn token(sub: &str) -> String {
    let claims = jwt::claims(Some(sub), jwt::now() + 3600, "", "");
    jwt::compact(r#"{"alg":"HS256","typ":"JWT","kid":"hs1"}"#, &claims, |i| {
        jwt::hmac_sha256(SECRET, i)
    })
}

/// A valid record arrives verbatim with the reference's id; invalid ones are dropped and the
/// next valid one arrives (its id covers the skipped offsets).
fn assert_streams_and_validates(server: &Server, producer: &Producer) {
    // An EventSource sends Origin on a cross-origin request.
    let sse = Sse::open_args(
        &server.url("/events"),
        &["-H", "Origin: http://app.example"],
    );
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(
        sse.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(
        sse.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    producer.send(
        "ticks",
        Some(0),
        Some(b"1"),
        Some(br#"{"seq": 1,"label":"Hello World!"}"#),
        &[],
    );
    let first = sse.expect(1, WAIT);
    assert_eq!(first[0].data, r#"{"seq": 1,"label":"Hello World!"}"#);
    assert_eq!(first[0].id.as_deref(), Some("AQIAAg=="));
    for bad in [
        &br#"{"seq":-1,"label":"x"}"#[..],
        br#"{"seq":"a"}"#,
        b"hello",
    ] {
        producer.send("ticks", Some(0), Some(b"1"), Some(bad), &[]);
    }
    producer.send("ticks", Some(0), Some(b"1"), Some(br#"{"seq":2}"#), &[]);
    let events = sse.expect(1, WAIT);
    assert_eq!(events[0].data, r#"{"seq":2}"#);
    assert_eq!(events[0].id.as_deref(), Some(encode_id(&[(0, 5)]).as_str()));
    sse.expect_no_more(Duration::from_millis(300));
}

#[test]
fn routes_validation_filters_and_bearer_security() {
    let broker = broker();
    let producer = Producer::new(&broker.bootstrap());
    let port = free_port();
    let server = start(
        &fixtures().join("zilla.yaml"),
        &env(&broker, port, "bearer"),
        port,
    );
    assert_streams_and_validates(&server, &producer);

    // Only what the document describes is served.
    assert_eq!(curl(&server.url("/other"), &[]).status, 404);
    assert_eq!(curl(&server.url("/events/1"), &[]).status, 404);
    let post = curl(&server.url("/events"), &["-X", "POST", "-d", "x"]).status;
    assert!(post == 404 || post == 405, "POST /events: {post}");
    let q = Sse::open(&server.url("/events?x=1"));
    assert_eq!(q.status(WAIT), Some(200));

    // x-zilla-sse-kafka header filter on a parameterized channel.
    let alerts = Sse::open(&server.url("/alerts/eu"));
    assert_eq!(alerts.status(WAIT), Some(200));
    producer.send(
        "alerts",
        Some(0),
        None,
        Some(br#"{"seq":10}"#),
        &[("level", &b"low"[..])],
    );
    producer.send(
        "alerts",
        Some(0),
        None,
        Some(br#"{"seq":11}"#),
        &[("level", &b"high"[..])],
    );
    let got = alerts.expect(1, WAIT);
    assert_eq!(got[0].data, r#"{"seq":11}"#);

    // Bearer security: no or bad token 404; a valid one streams the caller's key only.
    producer.send(
        "private",
        Some(0),
        Some(b"bob"),
        Some(br#"{"seq":20}"#),
        &[],
    );
    producer.send(
        "private",
        Some(0),
        Some(b"alice"),
        Some(br#"{"seq":21}"#),
        &[],
    );
    assert_eq!(curl(&server.url("/private"), &[]).status, 404);
    let bad = format!("Authorization: Bearer {}x", token("alice"));
    assert_eq!(curl(&server.url("/private"), &["-H", &bad]).status, 404);
    let good = format!("Authorization: Bearer {}", token("alice"));
    let private = Sse::open_args(&server.url("/private"), &["-H", &good]);
    assert_eq!(private.status(WAIT), Some(200));
    let mine = private.expect(1, WAIT);
    assert_eq!(mine[0].data, r#"{"seq":21}"#);
    private.expect_no_more(Duration::from_millis(300));
}

#[test]
fn query_token_security() {
    let broker = broker();
    let producer = Producer::new(&broker.bootstrap());
    let port = free_port();
    let server = start(
        &fixtures().join("zilla.yaml"),
        &env(&broker, port, "queryToken"),
        port,
    );
    producer.send(
        "private",
        Some(0),
        Some(b"alice"),
        Some(br#"{"seq":1}"#),
        &[],
    );
    assert_eq!(curl(&server.url("/private"), &[]).status, 404);
    assert_eq!(
        curl(&server.url("/private?access_token=nope"), &[]).status,
        404
    );
    let url = server.url(&format!("/private?access_token={}", token("alice")));
    let sse = Sse::open(&url);
    assert_eq!(sse.status(WAIT), Some(200));
    assert_eq!(sse.expect(1, WAIT)[0].data, r#"{"seq":1}"#);
}

#[test]
fn check_expand_output_loads_and_behaves_the_same() {
    let broker = broker();
    let producer = Producer::new(&broker.bootstrap());
    let port = free_port();
    let vars = env(&broker, port, "bearer");
    let mut cmd = Command::new(server_bin());
    cmd.args(["check", "--expand", "--config"])
        .arg(fixtures().join("zilla.yaml"));
    for (k, v) in &vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("type: asyncapi"), "{text}");
    assert!(text.contains("type: sse-kafka"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    for f in ["sse-api.yaml", "kafka-api.yaml"] {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    let config = dir.path().join("zilla.yaml");
    std::fs::write(&config, &text).unwrap();
    let check = Command::new(server_bin())
        .args(["check", "--config"])
        .arg(&config)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let server = start(&config, &vars, port);
    assert_streams_and_validates(&server, &producer);
}

/// `sse-kafka asyncapi` describes the routes of a config (here the expanded fixture, with its
/// parameterized channel, filters and security) in a document that validates against the
/// AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs, installed by scripts/test) with python3
/// jsonschema.
#[test]
fn generated_asyncapi_document_validates_against_the_3_0_0_schema() {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/asyncapi-specs/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json");
    assert!(
        schema.exists(),
        "{} missing: run scripts/test (it installs @asyncapi/specs)",
        schema.display()
    );
    let port = free_port();
    let mut cmd = Command::new(server_bin());
    cmd.args(["asyncapi", "--config"])
        .arg(fixtures().join("zilla.yaml"));
    cmd.envs([
        ("SSE_PORT", port.to_string()),
        ("KAFKA_BOOTSTRAP", "127.0.0.1:9".to_owned()),
        ("JWT_K", b64url(SECRET).trim_end_matches('=').to_owned()),
        ("SCHEME", "bearer".to_owned()),
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "\"address\": \"/events\"",
        "\"address\": \"/alerts/{zone}\"",
        "\"zone\"",
        "\"x-zilla-sse\"",
        "\"level\": \"high\"",
        "\"scheme\": \"bearer\"",
        "#/components/securitySchemes/jwt0",
        "\"minimum\": 0",
    ] {
        assert!(doc.contains(needle), "{needle} not in:\n{doc}");
    }
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("doc.json");
    std::fs::write(&doc_path, &doc).unwrap();
    let check = |doc: &Path| {
        Command::new("python3")
            .args([
                "-c",
                "import json,sys,jsonschema\n\
                 s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n\
                 jsonschema.Draft7Validator(s).validate(d)",
            ])
            .arg(&schema)
            .arg(doc)
            .output()
            .unwrap()
    };
    let ok = check(&doc_path);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The validator does refuse a broken document (the check can fail).
    let broken = doc.replacen("\"action\": \"receive\"", "\"action\": \"listen\"", 1);
    let broken_path = dir.path().join("broken.json");
    std::fs::write(&broken_path, broken).unwrap();
    assert!(!check(&broken_path).status.success());
}
