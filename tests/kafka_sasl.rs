//! SASL to the broker: tansu with `--authentication` (users in its sqlite storage, created
//! before the restart with authentication on), a librdkafka producer authenticating with
//! SCRAM, our server authenticating with the `kafka` client binding's credentials (2.x
//! `options.authorization` with an `inline` guard, or the 1.x `options.sasl`). Wrong
//! credentials: new streams get 503, one log line names the binding and the mechanism (never
//! the password), a metric counts the refusals; the right credentials bring delivery back.
//! (tansu refuses PLAIN even with the right password: PLAIN's bytes are unit-tested in
//! proto::kafka::sasl.)

mod common;
use std::time::Duration;

use common::secure::{assert_stream_refused, secured_yaml, SaslBroker};
use common::*;

const INLINE_GUARD: &str = "guards:
  sasl_credentials:
    type: inline
    options:
      identity: ${{env.SASL_USERNAME}}
      credentials: ${{env.SASL_PASSWORD}}";

/// 2.x: `authorization` naming the inline guard's `{identity}` / `{credentials}`.
fn authorization(mechanism: &str) -> String {
    format!(
        "      authorization:
        sasl_credentials:
          credentials:
            mechanism: {mechanism}
            username: \"{{identity}}\"
            password: \"{{credentials}}\""
    )
}

fn server(
    broker: &SaslBroker,
    mechanism: &str,
    user: &str,
    password: &str,
    prom: Option<u16>,
) -> Server {
    let port = free_port();
    let yaml = secured_yaml(
        port,
        &broker.addr(),
        &authorization(mechanism),
        "south_tcp_client",
        INLINE_GUARD,
        "",
        prom,
    );
    Server::builder(port)
        .config(&yaml)
        .env("SASL_USERNAME", user)
        .env("SASL_PASSWORD", password)
        .start()
}

fn values(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.data.clone()).collect()
}

#[test]
fn scram_sha_256_and_512_streams_deliver_every_record() {
    let broker = SaslBroker::start(
        &[
            ("alice", "alice-secret", "scram256"),
            ("bob", "bob-secret", "scram512"),
        ],
        &[("events", 2)],
    );
    let producer = broker.producer("SCRAM-SHA-512", "bob", "bob-secret");
    let before: Vec<String> = (0..10).map(|i| format!("before-{i}")).collect();
    for (i, v) in before.iter().enumerate() {
        producer.send(
            "events",
            Some((i % 2) as i32),
            None,
            Some(v.as_bytes()),
            &[],
        );
    }

    // SCRAM-SHA-256 through 2.x authorization; SCRAM-SHA-512 through the 1.x `sasl` form.
    let s256 = server(&broker, "scram-sha-256", "alice", "alice-secret", None);
    let port = free_port();
    let yaml = secured_yaml(
        port,
        &broker.addr(),
        "      sasl:\n        mechanism: scram-sha-512\n        username: bob\n        password: ${{env.SASL_PASSWORD}}",
        "south_tcp_client",
        "",
        "",
        None,
    );
    let s512 = Server::builder(port)
        .config(&yaml)
        .env("SASL_PASSWORD", "bob-secret")
        .start();

    let a = Sse::open(&s256.url("/events"));
    let b = Sse::open(&s512.url("/events"));
    assert_eq!(a.status(WAIT), Some(200), "{}", s256.logs());
    assert_eq!(b.status(WAIT), Some(200), "{}", s512.logs());
    let after: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
    for (i, v) in after.iter().enumerate() {
        producer.send(
            "events",
            Some((i % 2) as i32),
            None,
            Some(v.as_bytes()),
            &[],
        );
    }
    let mut want: Vec<String> = before.iter().chain(&after).cloned().collect();
    want.sort();
    for (sse, server) in [(&a, &s256), (&b, &s512)] {
        let mut got = values(&sse.expect(20, WAIT));
        got.sort();
        assert_eq!(got, want, "{}", server.logs());
        sse.expect_no_more(Duration::from_millis(500));
        assert!(
            !server.logs().contains("authentication failed"),
            "{}",
            server.logs()
        );
    }
}

#[test]
fn wrong_password_is_refused_with_503_and_the_right_one_brings_delivery_back() {
    let broker = SaslBroker::start(&[("carol", "carol-secret", "scram512")], &[("events", 1)]);
    let producer = broker.producer("SCRAM-SHA-512", "carol", "carol-secret");
    producer.send("events", None, None, Some(b"one"), &[]);

    let prom = free_port();
    let wrong = server(
        &broker,
        "scram-sha-512",
        "carol",
        "not-the-password",
        Some(prom),
    );
    // New streams: 503, quickly (not after the metadata timeout), every time.
    for _ in 0..3 {
        assert_stream_refused(&wrong);
    }
    wrong.expect_log("no authentication failure logged", |l| {
        l.contains("authentication failed")
    });
    let logs = wrong.log_lines();
    let failures: Vec<String> = logs
        .all()
        .into_iter()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one line, not one per retry: {failures:?}"
    );
    let line = &failures[0];
    assert!(line.contains("bindings.south_kafka_client"), "{line}");
    assert!(line.contains("SCRAM-SHA-512"), "{line}");
    assert!(line.contains("carol"), "{line}");
    assert!(
        !wrong.logs().contains("not-the-password"),
        "the password is never logged"
    );
    let text = scrape(prom);
    assert!(text.value("sse_kafka_sasl_failures_total", &[]) >= 1.0);
    drop(wrong);

    // The same configuration with the right password.
    let right = server(&broker, "scram-sha-512", "carol", "carol-secret", None);
    let sse = Sse::open(&right.url("/events"));
    assert_eq!(sse.status(WAIT), Some(200), "{}", right.logs());
    producer.send("events", None, None, Some(b"two"), &[]);
    assert_eq!(values(&sse.expect(2, WAIT)), ["one", "two"]);
}

/// KIP-368: tansu grants 60 s sessions. The long-poll fetch connection re-authenticates (or,
/// as tansu refuses a second handshake on a connection, is replaced) when 85% of that has
/// passed; records produced across that moment are all delivered, once, in order.
#[test]
fn a_stream_outlives_the_sasl_session_lifetime() {
    let broker = SaslBroker::start(&[("dave", "dave-secret", "scram512")], &[("events", 1)]);
    let producer = broker.producer("SCRAM-SHA-512", "dave", "dave-secret");
    let port = free_port();
    let yaml = secured_yaml(
        port,
        &broker.addr(),
        &authorization("scram-sha-512"),
        "south_tcp_client",
        INLINE_GUARD,
        "",
        None,
    );
    let server = Server::builder(port)
        .config(&yaml)
        .env("SASL_USERNAME", "dave")
        .env("SASL_PASSWORD", "dave-secret")
        .env("SSE_KAFKA_LOG", "debug")
        .start();
    let sse = Sse::open(&server.url("/events"));
    assert_eq!(sse.status(WAIT), Some(200), "{}", server.logs());
    let mut want = Vec::new();
    // 14 records over 65 s: past the 51 s re-authentication point.
    for i in 0..14 {
        let v = format!("r{i}");
        producer.send("events", None, None, Some(v.as_bytes()), &[]);
        want.push(v);
        std::thread::sleep(Duration::from_secs(5));
    }
    assert_eq!(values(&sse.expect(14, WAIT)), want, "{}", server.logs());
    sse.expect_no_more(Duration::from_millis(500));
    assert!(
        server.logs().contains("re-authenticat"),
        "no re-authentication happened:\n{}",
        server.logs()
    );
    // tansu refuses the second handshake: the connection is replaced without an error line.
    assert!(!server.logs().contains(" ERROR "), "{}", server.logs());
}
