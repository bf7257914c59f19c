//! Kafka client security in zilla.yaml: SASL credentials (`options.authorization` with an
//! `inline` guard, the 1.x `options.sasl`), the `tls` client binding and vault trust stores.

use std::path::{Path, PathBuf};

use testkit::secure::{openssl_in, self_signed};

use super::plan::{KeySource, Plan, SaslMechanism};
use super::tests::{chain, env, errors, plan};

const SSE_TO_CLIENT: (&str, &str) = (
    "north_sse_kafka_mapping",
    "{ type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: south_kafka_client, with: { topic: '${params.topic}' } } ] }",
);

fn with_guards(guards: &str, client: &str, more: &[(&str, &str)]) -> String {
    let mut changes = vec![SSE_TO_CLIENT, ("south_kafka_client", client)];
    changes.extend_from_slice(more);
    format!("guards:\n{guards}\n{}", chain(&changes))
}

const INLINE: &str = "  sasl_credentials:\n    type: inline\n    options:\n      identity: alice\n      credentials: ${{env.KEYSTORE_PASSWORD}}";

#[test]
fn authorization_with_an_inline_guard_as_zilla_writes_it() {
    let text = with_guards(
        INLINE,
        "{ type: kafka, kind: client, options: { servers: [ '${{env.KAFKA_BOOTSTRAP_SERVER}}' ], authorization: { sasl_credentials: { credentials: { mechanism: scram-sha-512, username: '{identity}', password: '{credentials}' } } } }, exit: south_tcp_client }",
        &[("south_tcp_client", "{ type: tcp, kind: client }")],
    );
    let plan = plan(&text);
    let sasl = plan.clusters[0].sasl.as_ref().expect("sasl");
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(sasl.username, "alice");
    assert_eq!(sasl.secret, "generated");
    assert!(
        !format!("{plan:?}").contains("generated"),
        "the password is never printed"
    );
    // An inline guard is not a jwt guard: it adds no guard the http side could use.
    assert!(plan.guards.is_empty());

    // A literal value is used as written; oauthbearer takes a token.
    let text = with_guards(
        "  tok:\n    type: inline\n    options:\n      credentials: eyJ.x.y",
        "{ type: kafka, kind: client, options: { servers: [ 'k:1' ], authorization: { tok: { credentials: { mechanism: oauthbearer, token: '{credentials}' } } } } }",
        &[],
    );
    let plan = super::tests::plan(&text);
    let sasl = plan.clusters[0].sasl.as_ref().expect("sasl");
    assert_eq!(sasl.mechanism, SaslMechanism::OAuthBearer);
    assert_eq!(sasl.secret, "eyJ.x.y");
}

#[test]
fn the_1x_sasl_form() {
    let text = chain(&[
        SSE_TO_CLIENT,
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'k:1' ], sasl: { mechanism: scram-sha-256, username: bob, password: '${{env.KEYSTORE_PASSWORD}}' } } }",
        ),
    ]);
    let plan = plan(&text);
    let sasl = plan.clusters[0].sasl.as_ref().expect("sasl");
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha256);
    assert_eq!(
        (sasl.username.as_str(), sasl.secret.as_str()),
        ("bob", "generated")
    );
}

#[test]
fn sasl_errors_name_their_paths() {
    let guards = format!(
        "{INLINE}\n  no_identity:\n    type: inline\n    options:\n      credentials: x\n  \
         jwt0:\n    type: jwt\n    options:\n      keys: [ {{ kty: oct, kid: k, k: c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI }} ]"
    );
    let cases: [(&str, &str); 6] = [
        (
            "{ mechanism: gssapi, username: a, password: b }",
            "bindings.south_kafka_client.options.authorization.sasl_credentials.credentials.mechanism: mechanism \"gssapi\" not supported (plain, scram-sha-1, scram-sha-256, scram-sha-512, oauthbearer)",
        ),
        (
            "{ mechanism: plain, username: a }",
            "bindings.south_kafka_client.options.authorization.sasl_credentials.credentials.password: required",
        ),
        (
            "{ mechanism: oauthbearer, token: t, username: a }",
            "bindings.south_kafka_client.options.authorization.sasl_credentials.credentials.username: not used by oauthbearer (give token)",
        ),
        (
            "{ mechanism: plain, username: a, password: b, token: c }",
            "bindings.south_kafka_client.options.authorization.sasl_credentials.credentials.token: only for mechanism oauthbearer",
        ),
        (
            "{ mechanism: plain, username: a, password: b, extra: c }",
            "bindings.south_kafka_client.options.authorization.sasl_credentials.credentials.extra: unknown key",
        ),
        (
            "{ mechanism: plain, username: a, password: b }",
            "",
        ),
    ];
    for (credentials, want) in cases {
        let text = with_guards(
            &guards,
            &format!("{{ type: kafka, kind: client, options: {{ servers: [ 'k:1' ], authorization: {{ sasl_credentials: {{ credentials: {credentials} }} }} }} }}"),
            &[],
        );
        if want.is_empty() {
            plan(&text);
        } else {
            assert_eq!(errors(&text), [want], "{credentials}");
        }
    }
    let client = |guard: &str, credentials: &str| {
        format!("{{ type: kafka, kind: client, options: {{ servers: [ 'k:1' ], authorization: {{ {guard}: {{ credentials: {credentials} }} }} }} }}")
    };
    let text = with_guards(
        &guards,
        &client(
            "no_identity",
            "{ mechanism: plain, username: '{identity}', password: '{credentials}' }",
        ),
        &[],
    );
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_client.options.authorization.no_identity.credentials.username: {identity}: guard \"no_identity\" has no options.identity (it would be sent as the literal text)"]
    );
    let text = with_guards(
        &guards,
        &client("jwt0", "{ mechanism: plain, username: a, password: b }"),
        &[],
    );
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_client.options.authorization.jwt0: guard \"jwt0\" is not an inline guard: broker credentials come from an inline guard (type: inline, options.identity, options.credentials)"]
    );
    let text = with_guards(
        &guards,
        &client("nope", "{ mechanism: plain, username: a, password: b }"),
        &[],
    );
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_client.options.authorization.nope: unknown guard \"nope\""]
    );
    // 1.x has no oauthbearer.
    let text = chain(&[
        SSE_TO_CLIENT,
        (
            "south_kafka_client",
            "{ type: kafka, kind: client, options: { servers: [ 'k:1' ], sasl: { mechanism: oauthbearer, token: t } } }",
        ),
    ]);
    assert_eq!(
        errors(&text),
        ["bindings.south_kafka_client.options.sasl.mechanism: oauthbearer is not in options.sasl: use options.authorization with an inline guard and token"]
    );
    // An inline guard cannot authorize http requests.
    let text = format!(
        "guards:\n{INLINE}\n{}",
        chain(&[(
            "north_http_server",
            "{ type: http, kind: server, options: { authorization: { sasl_credentials: { credentials: { headers: { authorization: 'Bearer {credentials}' } } } } }, exit: north_sse_server }",
        )])
    );
    assert_eq!(
        errors(&text),
        ["bindings.north_http_server.options.authorization.sasl_credentials: guard \"sasl_credentials\" is an inline guard: only a kafka client's options.authorization can use it"]
    );
}

/// A test CA (PEM), and the same certificate in a PKCS#12 truststore with alias `kafka`.
fn make_ca(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let ca = dir.join("ca.pem");
    let key = dir.join("ca.key");
    let p12 = dir.join("trust.p12");
    self_signed(
        None,
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
        "/CN=test-ca",
        &[],
    );
    openssl_in(
        None,
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            ca.to_str().unwrap(),
            "-caname",
            "kafka",
            "-out",
            p12.to_str().unwrap(),
            "-passout",
            "pass:generated",
        ],
    );
    (ca, p12)
}

fn tls_chain(vault: &str, tls: &str) -> String {
    format!(
        "vaults:\n  your_clients: {vault}\n{}",
        chain(&[
            SSE_TO_CLIENT,
            (
                "south_kafka_client",
                "{ type: kafka, kind: client, options: { servers: [ 'k:1' ] }, exit: south_tls_client }",
            ),
            ("south_tls_client", tls),
            ("south_tcp_client", "{ type: tcp, kind: client }"),
        ])
    )
}

fn load_in(dir: &Path, text: &str) -> Result<Plan, Vec<String>> {
    super::parse(text, dir, &env).map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn tls_client_binding_with_vault_trust() {
    let dir = std::env::temp_dir().join(format!(
        "sse-kafka-tls-client-config-{}",
        std::process::id()
    ));
    let (_, _) = make_ca(&dir);
    // Zilla's shape with a PKCS#12 truststore: trust [kafka], sni [kafka], alpn [h2].
    let text = tls_chain(
        "{ type: filesystem, options: { trust: { store: trust.p12, type: pkcs12, password: '${{env.KEYSTORE_PASSWORD}}' } } }",
        "{ type: tls, kind: client, vault: your_clients, options: { trust: [ kafka ], sni: [ kafka ], alpn: [ h2 ] }, exit: south_tcp_client }",
    );
    let plan = load_in(&dir, &text).expect("plan");
    let tls = plan.clusters[0].tls.as_ref().expect("tls");
    assert_eq!(tls.roots.len(), 1);
    assert!(!tls.platform_roots);
    assert_eq!(tls.sni.as_deref(), Some("kafka"));
    assert_eq!(tls.alpn, ["h2"]);
    assert!(tls.identity.is_none());
    // PEM trust (our extension), platform roots added, a PEM client certificate.
    std::fs::write(dir.join("client.pem"), b"-").unwrap();
    let text = tls_chain(
        "{ type: filesystem, options: { trust: { store: ca.pem, type: pem }, keys: { store: client.pem, type: pem, key: ca.key } } }",
        "{ type: tls, kind: client, vault: your_clients, options: { trustcacerts: true, keys: [ client ] }, exit: south_tcp_client }",
    );
    let plan = load_in(&dir, &text).expect("plan");
    let tls = plan.clusters[0].tls.as_ref().expect("tls");
    assert_eq!(tls.roots.len(), 1);
    assert!(tls.platform_roots);
    assert!(matches!(tls.identity, Some(KeySource::Pem { .. })));
    // No vault: the platform's roots.
    let text = tls_chain(
        "{ type: filesystem, options: { trust: { store: ca.pem, type: pem } } }",
        "{ type: tls, kind: client, exit: south_tcp_client }",
    );
    let plan = load_in(&dir, &text).expect("plan");
    let tls = plan.clusters[0].tls.as_ref().expect("tls");
    assert!(tls.roots.is_empty() && tls.platform_roots);

    // Errors name their paths.
    let cases: [(&str, &str, String); 5] = [
        (
            "{ type: filesystem, options: { trust: { store: trust.p12, type: jks, password: x } } }",
            "{ type: tls, kind: client, vault: your_clients, exit: south_tcp_client }",
            "vaults.your_clients.options.trust.type: keystore type \"jks\" not supported: convert the store to PKCS#12 (keytool -importkeystore -srckeystore STORE.jks -destkeystore STORE.p12 -deststoretype pkcs12) and use type pkcs12, or give the certificates as PEM (type pem)".into(),
        ),
        (
            "{ type: filesystem, options: { trust: { store: trust.p12, password: generated } } }",
            "{ type: tls, kind: client, vault: your_clients, options: { trust: [ other ] }, exit: south_tcp_client }",
            format!("bindings.south_tls_client.options.trust: {}: no certificate entry named \"other\"", dir.join("trust.p12").display()),
        ),
        (
            "{ type: filesystem, options: { trust: { store: trust.p12, password: wrong } } }",
            "{ type: tls, kind: client, vault: your_clients, exit: south_tcp_client }",
            "vaults.your_clients.options.trust.store".into(),
        ),
        (
            "{ type: filesystem, options: { trust: { store: ca.pem, type: pem } } }",
            "{ type: tls, kind: client, vault: your_clients, options: { keys: [ k ] }, exit: south_tcp_client }",
            "bindings.south_tls_client.options.keys: needs a vault with a keys store".into(),
        ),
        (
            "{ type: filesystem, options: { trust: { store: ca.pem, type: pem } } }",
            "{ type: tls, kind: client, vault: your_clients, options: { version: SSLv3, signers: [ x ] }, exit: south_tcp_client }",
            "bindings.south_tls_client.options.signers: not supported".into(),
        ),
    ];
    for (vault, tls, want) in cases {
        let got = load_in(&dir, &tls_chain(vault, tls)).expect_err("errors");
        assert!(
            got.iter().any(|e| e.starts_with(&want)),
            "{tls}: want {want}, got {got:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
