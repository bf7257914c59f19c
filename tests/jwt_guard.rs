//! The `jwt` guard at the door (reference 1.6, 2.8, 5.4, 5.5), over HTTP/1.1 with curl: keys of
//! every kind generated per test (RSA RS256 and EC ES256 with openssl, an HMAC HS256 secret);
//! a valid token by `Authorization: Bearer` or `?access_token=` streams; no token is 401, every
//! refused token 403 (bad signature, expired, not yet valid, wrong issuer or audience, unknown
//! kid, `alg: none`, an HS256 token keyed with the RSA public key, a missing role); with the
//! guard on the sse or sse-kafka route only, both are 404; `${guarded['authn_jwt'].identity}`
//! as the topic gives each user their own topic; tokens never reach the server's log (which
//! runs at debug level here).

mod common;
use common::jwt::{self, Chain, EcKey, GuardOn, HmacKey, Key, RsaKey, AUDIENCE, ISSUER};
use common::*;

const ROLE: &str = "read:events";

struct Keys {
    _dir: tempfile::TempDir,
    rsa: RsaKey,
    ec: EcKey,
    hs: HmacKey,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    Keys {
        rsa: RsaKey::generate(dir.path(), "rsa1"),
        ec: EcKey::generate(dir.path(), "ec1"),
        hs: HmacKey::generate("hs1"),
        _dir: dir,
    }
}

struct Setup {
    broker: Broker,
    server: Server,
    keys: Keys,
}

/// A broker with topics `events`, `alice` and `bob` (one record each, named after the topic)
/// and a server guarding `/events` and `/events/mine` (the caller's own topic) with `guard_on`.
fn setup(guard_on: GuardOn) -> Setup {
    let broker = Broker::start();
    let producer = Producer::new(&broker.bootstrap());
    for topic in ["events", "alice", "bob"] {
        broker.create_topic(topic, 1);
        producer.send_value(topic, Some(0), &format!("{topic}-record"));
    }
    let keys = keys();
    let server = start(&broker, &keys, guard_on);
    Setup {
        broker,
        server,
        keys,
    }
}

fn start(broker: &Broker, keys: &Keys, guard_on: GuardOn) -> Server {
    let port = free_port();
    let yaml = Chain::new(port, &broker.bootstrap(), &[&keys.rsa, &keys.ec, &keys.hs])
        .guard_on(guard_on)
        .routes(&[
            ("/events", "events"),
            ("/events/mine", "${guarded['authn_jwt'].identity}"),
        ])
        .yaml();
    Server::builder(port)
        .config(&yaml)
        .env("SSE_KAFKA_LOG", "debug")
        .start()
}

fn valid_claims(sub: &str) -> String {
    jwt::claims(Some(sub), jwt::now() + 300, ROLE, "")
}

fn bearer(token: &str) -> Vec<String> {
    vec!["-H".into(), format!("Authorization: Bearer {token}")]
}

/// Opens a stream and returns its first event's data (asserting 200).
fn first_event(server: &Server, path: &str, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sse = Sse::open_args(&server.url(path), &args);
    assert_eq!(
        sse.status(WAIT),
        Some(200),
        "{path} {args:?}: {}",
        sse.curl_errors()
    );
    sse.expect(1, WAIT).remove(0).data
}

/// Every refusal the guard must make, as (what, token, the reason the server's debug log
/// gives, None when the token verifies and the route refuses it). Tokens are well-formed apart
/// from the one thing named.
fn refused_tokens(k: &Keys) -> Vec<(&'static str, String, Option<&'static str>)> {
    const SIGNATURE: Option<&str> = Some("token signature is invalid");
    const ALG_NONE: Option<&str> = Some("unsigned token (alg none)");
    const MISMATCH: Option<&str> = Some("key does not fit token algorithm");
    const MALFORMED: Option<&str> = Some("token is malformed");
    let now = jwt::now();
    let claims = |extra: &str| jwt::claims(Some("alice"), now + 300, ROLE, extra);
    let custom = |iss: &str, aud: &str| {
        format!(
            r#"{{"iss":"{iss}","aud":"{aud}","exp":{},"sub":"alice","scope":"{ROLE}"}}"#,
            now + 300
        )
    };
    let flip_signature = |t: String| {
        let (rest, sig) = t.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        let i = sig.len() / 2;
        sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
        format!("{rest}.{}", String::from_utf8(sig).unwrap())
    };
    let header = |alg: &str, kid: &str| format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    vec![
        (
            "RS256 bad signature",
            flip_signature(k.rsa.token(&claims(""))),
            SIGNATURE,
        ),
        (
            "ES256 bad signature",
            flip_signature(k.ec.token(&claims(""))),
            SIGNATURE,
        ),
        (
            "HS256 bad signature",
            flip_signature(k.hs.token(&claims(""))),
            SIGNATURE,
        ),
        (
            "HS256 signed with another secret",
            HmacKey::generate("hs1").token(&claims("")),
            SIGNATURE,
        ),
        (
            "another token's signature",
            {
                let a = k.rsa.token(&claims(""));
                let b = k
                    .rsa
                    .token(&jwt::claims(Some("mallory"), now + 300, ROLE, ""));
                let (head, _) = b.rsplit_once('.').unwrap();
                format!("{head}.{}", a.rsplit('.').next().unwrap())
            },
            SIGNATURE,
        ),
        (
            "expired",
            k.rsa.token(&jwt::claims(Some("alice"), now - 10, ROLE, "")),
            Some("token is expired"),
        ),
        (
            "expired (EC)",
            k.ec.token(&jwt::claims(Some("alice"), now - 10, ROLE, "")),
            Some("token is expired"),
        ),
        (
            "not yet valid (nbf)",
            k.rsa.token(&claims(&format!(r#""nbf":{}"#, now + 300))),
            Some("token is not yet valid"),
        ),
        (
            "wrong issuer",
            k.rsa.token(&custom("https://evil.example.com", AUDIENCE)),
            Some("token issuer is not accepted"),
        ),
        (
            "wrong audience",
            k.hs.token(&custom(ISSUER, "https://other.example.com")),
            Some("token audience is not accepted"),
        ),
        (
            "unknown kid",
            jwt::compact(&header("RS256", "nope"), &claims(""), |i| k.rsa.sign(i)),
            Some("no key for token kid"),
        ),
        (
            "alg none",
            jwt::compact(&header("none", "rsa1"), &claims(""), |_| Vec::new()),
            ALG_NONE,
        ),
        (
            "alg none without kid",
            jwt::compact(r#"{"alg":"none"}"#, &claims(""), |_| Vec::new()),
            ALG_NONE,
        ),
        (
            "alg None with a signature",
            jwt::compact(&header("None", "rsa1"), &claims(""), |i| k.rsa.sign(i)),
            ALG_NONE,
        ),
        (
            "HS256 keyed with the RSA public key PEM (algorithm confusion)",
            jwt::compact(&header("HS256", "rsa1"), &claims(""), |i| {
                jwt::hmac_sha256(k.rsa.public_pem.as_bytes(), i)
            }),
            MISMATCH,
        ),
        (
            "HS256 keyed with the RSA modulus (algorithm confusion)",
            jwt::compact(&header("HS256", "rsa1"), &claims(""), |i| {
                jwt::hmac_sha256(k.rsa.n.as_bytes(), i)
            }),
            MISMATCH,
        ),
        (
            "RS256 header naming the EC key",
            jwt::compact(&header("RS256", "ec1"), &claims(""), |i| k.rsa.sign(i)),
            MISMATCH,
        ),
        (
            "ES256 header naming the HMAC key",
            jwt::compact(&header("ES256", "hs1"), &claims(""), |i| k.ec.sign(i)),
            MISMATCH,
        ),
        (
            "missing role",
            k.rsa
                .token(&jwt::claims(Some("alice"), now + 300, "write:events", "")),
            None,
        ),
        (
            "no roles claim",
            k.hs.token(&format!(
                r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"sub":"alice"}}"#,
                now + 300
            )),
            None,
        ),
        ("not a token", "not-a-token".to_string(), MALFORMED),
        (
            "two segments",
            k.rsa
                .token(&claims(""))
                .rsplit_once('.')
                .unwrap()
                .0
                .to_string(),
            MALFORMED,
        ),
        (
            "over the size bound",
            k.hs.token(&claims(&format!(r#""pad":"{}""#, "x".repeat(7000)))),
            Some("token is too large"),
        ),
    ]
}

/// A complete (non-streaming) response: its status.
fn status_of(server: &Server, path: &str, args: &[String]) -> u16 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&server.url(path), &args).status
}

#[test]
fn valid_tokens_of_every_key_type_stream_by_header_and_query() {
    let s = setup(GuardOn::Http);
    let k = &s.keys;
    let tokens = [
        ("RS256", k.rsa.token(&valid_claims("alice"))),
        ("ES256", k.ec.token(&valid_claims("alice"))),
        ("HS256", k.hs.token(&valid_claims("alice"))),
    ];
    for (alg, token) in &tokens {
        assert_eq!(
            first_event(&s.server, "/events", &bearer(token)),
            "events-record",
            "{alg} by header"
        );
        assert_eq!(
            first_event(&s.server, &format!("/events?access_token={token}"), &[]),
            "events-record",
            "{alg} by query"
        );
        assert_eq!(
            first_event(
                &s.server,
                &format!("/events?x=1&access_token={token}&y=2"),
                &[]
            ),
            "events-record",
            "{alg} by query among other parameters"
        );
    }
    // Roles as a JSON array, several roles, and the role among others.
    let array = k.rsa.token(&format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"sub":"alice","scope":["other","{ROLE}"]}}"#,
        jwt::now() + 300
    ));
    assert_eq!(
        first_event(&s.server, "/events", &bearer(&array)),
        "events-record"
    );
    let many = k.hs.token(&jwt::claims(
        Some("alice"),
        jwt::now() + 300,
        &format!("a {ROLE} b"),
        "",
    ));
    assert_eq!(
        first_event(&s.server, "/events", &bearer(&many)),
        "events-record"
    );
    let all: Vec<&str> = tokens
        .iter()
        .map(|(_, t)| t.as_str())
        .chain([array.as_str(), many.as_str()])
        .collect();
    jwt::assert_not_logged(&s.server.logs(), &all);
}

#[test]
fn missing_is_401_and_every_refusal_403() {
    let s = setup(GuardOn::Http);
    let mut wrong = Vec::new();
    // Missing: no credentials at all, or none in the configured forms.
    for (what, args) in [
        ("no Authorization header", vec![]),
        (
            "another scheme",
            vec![
                "-H".to_string(),
                "Authorization: Basic YWxpY2U6cHc=".to_string(),
            ],
        ),
        (
            "lower-case bearer",
            vec!["-H".to_string(), "Authorization: bearer x.y.z".to_string()],
        ),
        ("another query parameter", vec![]),
    ] {
        let path = if what == "another query parameter" {
            "/events?token=x.y.z"
        } else {
            "/events"
        };
        let got = status_of(&s.server, path, &args);
        if got != 401 {
            wrong.push(format!("missing ({what}): {got}, expected 401"));
        }
    }
    let refused = refused_tokens(&s.keys);
    let log = s.server.log_lines();
    let refusals = |l: &str| l.contains("token refused");
    for (what, token, reason) in &refused {
        for (how, path, args) in [
            ("header", "/events".to_string(), bearer(token)),
            ("query", format!("/events?access_token={token}"), vec![]),
        ] {
            if how == "query" && token.len() > 8192 {
                continue; // a request line that long is 414 before any guard sees it
            }
            let before = log.count(refusals);
            let got = status_of(&s.server, &path, &args);
            if got != 403 {
                wrong.push(format!("{what} ({how}): {got}, expected 403"));
            }
            // Refused for the intended reason (the server logs it at debug level).
            match reason {
                Some(reason) => {
                    if !log.wait_count(before + 1, WAIT, refusals) {
                        wrong.push(format!("{what} ({how}): no refusal logged"));
                    } else {
                        let last = log.all().into_iter().rfind(|l| refusals(l)).unwrap();
                        if !last.ends_with(reason) {
                            wrong.push(format!(
                                "{what} ({how}): refused as {last:?}, expected {reason:?}"
                            ));
                        }
                    }
                }
                None => {
                    if log.count(refusals) != before {
                        wrong.push(format!("{what} ({how}): the token itself was refused"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "wrong statuses:\n{}", wrong.join("\n"));
    // The server is still serving valid tokens after all that.
    let good = s.keys.ec.token(&valid_claims("alice"));
    assert_eq!(
        first_event(&s.server, "/events", &bearer(&good)),
        "events-record"
    );
    let mut tokens: Vec<&str> = refused.iter().map(|(_, t, _)| t.as_str()).collect();
    tokens.push(&good);
    jwt::assert_not_logged(&s.server.logs(), &tokens);
}

#[test]
fn guard_only_on_the_sse_or_sse_kafka_route_answers_404() {
    let s = setup(GuardOn::Sse);
    let on_sse_kafka = start(&s.broker, &s.keys, GuardOn::SseKafka);
    let refused = refused_tokens(&s.keys);
    let good = s.keys.rsa.token(&valid_claims("alice"));
    let mut wrong = Vec::new();
    for (where_, server) in [("sse route", &s.server), ("sse-kafka route", &on_sse_kafka)] {
        let got = status_of(server, "/events", &[]);
        if got != 404 {
            wrong.push(format!("{where_}: missing: {got}, expected 404"));
        }
        for (what, token, _) in &refused {
            let got = status_of(server, "/events", &bearer(token));
            if got != 404 {
                wrong.push(format!("{where_}: {what}: {got}, expected 404"));
            }
        }
        assert_eq!(
            first_event(server, "/events", &bearer(&good)),
            "events-record",
            "{where_}"
        );
        assert_eq!(
            first_event(server, &format!("/events?access_token={good}"), &[]),
            "events-record",
            "{where_}"
        );
    }
    assert!(wrong.is_empty(), "wrong statuses:\n{}", wrong.join("\n"));
    let mut tokens: Vec<&str> = refused.iter().map(|(_, t, _)| t.as_str()).collect();
    tokens.push(&good);
    jwt::assert_not_logged(&s.server.logs(), &tokens);
    jwt::assert_not_logged(&on_sse_kafka.logs(), &tokens);
}

#[test]
fn identity_selects_the_users_own_topic() {
    let s = setup(GuardOn::Http);
    let alice = s.keys.rsa.token(&valid_claims("alice"));
    let bob = s.keys.ec.token(&valid_claims("bob"));
    let a = Sse::open_args(
        &s.server.url("/events/mine"),
        &["-H", &format!("Authorization: Bearer {alice}")],
    );
    let b = Sse::open(&s.server.url(&format!("/events/mine?access_token={bob}")));
    assert_eq!(a.expect(1, WAIT)[0].data, "alice-record");
    assert_eq!(b.expect(1, WAIT)[0].data, "bob-record");
    // Live records go to their owner only.
    let producer = Producer::new(&s.broker.bootstrap());
    producer.send_value("bob", Some(0), "for bob");
    producer.send_value("alice", Some(0), "for alice");
    producer.send_value("events", Some(0), "for everyone");
    assert_eq!(a.expect(1, WAIT)[0].data, "for alice");
    assert_eq!(b.expect(1, WAIT)[0].data, "for bob");
    a.expect_no_more(std::time::Duration::from_millis(300));
    b.expect_no_more(std::time::Duration::from_millis(100));
    // A token without the identity claim resolves no topic: 404.
    let anonymous = s
        .keys
        .hs
        .token(&jwt::claims(None, jwt::now() + 300, ROLE, ""));
    assert_eq!(
        status_of(&s.server, "/events/mine", &bearer(&anonymous)),
        404
    );
    jwt::assert_not_logged(&s.server.logs(), &[&alice, &bob, &anonymous]);
}
