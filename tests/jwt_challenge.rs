//! Continuous authorization (reference 2.6): a stream authorized by a 6-second token under a
//! guard with `challenge: 3` gets `event:challenge` at about exp - 3; a challenge response
//! (`POST`, `content-type: application/x-challenge-response`, a fresh token) on the same HTTP/2
//! connection answers 204 and extends the streams of that identity on that connection, which
//! keep receiving records produced after the first expiry; unanswered streams end at expiry
//! with RST_STREAM(NO_ERROR) on HTTP/2 and a connection closed without the last chunk on
//! HTTP/1.1; answers with another identity, an earlier expiry, narrower roles or a bad token
//! are answered 204 and extend nothing; deadlines already due when scheduled (a stream opened
//! inside its challenge window, a late answer) still fire.
//!
//! Timing assertions only bound events from below by the token's own clock (a challenge is
//! never seen before exp - 3, a cut never before exp), which a correct server always satisfies.

mod common;
use common::h2wire::{self, code, kind, Wire};
use common::jwt::{self, Chain, HmacKey, Key};
use common::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reference 2.6: the exact bytes of a challenge.
const CHALLENGE: &[u8] =
    b"event:challenge\ndata:{\"method\":\"POST\",\"headers\":{\"content-type\":\"application/x-challenge-response\"}}\n\n";

const LIFETIME: i64 = 6;
const LEAD: i64 = 3;
const ROLES: &str = "read:events";

struct Setup {
    _broker: Broker,
    producer: Producer,
    server: Server,
    key: HmacKey,
}

fn setup() -> Setup {
    let (broker, producer) = Broker::with_topic("events", 1);
    let key = HmacKey::generate("hs1");
    let port = free_port();
    let yaml = Chain::new(port, &broker.bootstrap(), &[&key])
        .challenge(LEAD as u64)
        .yaml();
    let server = Server::builder(port)
        .config(&yaml)
        .env("SSE_KAFKA_LOG", "debug")
        .start();
    Setup {
        _broker: broker,
        producer,
        server,
        key,
    }
}

fn now_f() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn token(key: &HmacKey, sub: &str, exp: i64, scope: &str) -> String {
    key.token(&jwt::claims(Some(sub), exp, scope, ""))
}

fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn body(w: &Wire, id: u32) -> &[u8] {
    w.bodies.get(&id).map_or(&[][..], |b| &b[..])
}

fn challenges(w: &Wire, id: u32) -> usize {
    occurrences(body(w, id), CHALLENGE)
}

fn reset_code(w: &Wire, id: u32) -> Option<u32> {
    w.log
        .iter()
        .find(|f| f.is(kind::RST_STREAM) && f.stream == id)
        .and_then(|f| f.error_code())
}

fn status(w: &Wire, id: u32) -> Option<u16> {
    w.log
        .iter()
        .find(|f| f.is(kind::HEADERS) && f.stream == id && f.fields.is_some())
        .and_then(|f| f.status())
}

fn has_record(w: &Wire, id: u32, value: &str) -> bool {
    w.events(id)
        .iter()
        .any(|e| e.event.is_none() && e.data == value)
}

/// Opens the SSE stream `id` with `token` in the `Authorization` header.
fn open(w: &mut Wire, id: u32, token: &str) {
    w.get_with(
        id,
        "/events",
        &[
            ("accept", "text/event-stream"),
            ("authorization", &format!("Bearer {token}")),
        ],
    );
}

/// The challenge response, as reference 2.6 (END_STREAM on HEADERS), on stream `id`.
fn answer(w: &mut Wire, id: u32, token: &str) {
    let authority = w.authority.clone();
    let block = h2wire::request_block(
        "POST",
        "http",
        &authority,
        "/events",
        &[
            ("content-type", "application/x-challenge-response"),
            ("authorization", &format!("Bearer {token}")),
        ],
    );
    w.open_stream_window(id);
    w.send(&h2wire::headers(id, &block, true, true));
}

fn connect(s: &Setup) -> Wire {
    let mut w = Wire::handshake(&s.server.addr(), &[]);
    w.auto_window = true;
    w
}

/// Reads every connection until `done` holds; returns the wall-clock time it was first seen
/// to hold. Panics (with the frame logs) after `timeout`.
fn pump(conns: &mut [Wire], timeout: Duration, what: &str, done: impl Fn(&[Wire]) -> bool) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        if done(conns) {
            return now_f();
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = conns.iter().map(|w| w.log_text()).collect();
            panic!("{what}: not within {timeout:?}\n{}", logs.join("\n\n"));
        }
        let mut all_closed = true;
        for w in conns.iter_mut() {
            all_closed &= w.closed;
            w.run_until(Duration::from_millis(5), |_| false);
        }
        if all_closed {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The challenge is its own event: the bytes before it end an event (or the body starts
/// with it).
fn assert_challenge_framing(b: &[u8]) {
    let mut from = 0;
    while let Some(at) = find(&b[from..], CHALLENGE) {
        let at = from + at;
        let before = &b[..at];
        assert!(
            before.is_empty() || before.ends_with(b"\n\n"),
            "challenge not at an event boundary: {:?}",
            String::from_utf8_lossy(b)
        );
        from = at + CHALLENGE.len();
    }
}

/// (a) + (b): on connection A, alice's stream answers its challenge and lives on past the
/// first expiry (until the second token's expiry, after a second challenge); bob's stream on
/// the same connection and alice's stream on connection B, unanswered, are cut at the first
/// expiry with RST_STREAM(NO_ERROR).
#[test]
fn answered_challenge_extends_the_stream_on_its_connection() {
    let s = setup();
    s.producer.send_value("events", Some(0), "before");
    let exp1 = jwt::now() + LIFETIME;
    let alice1 = token(&s.key, "alice", exp1, ROLES);
    let bob1 = token(&s.key, "bob", exp1, ROLES);
    let exp2 = exp1 + 4;
    let alice2 = token(&s.key, "alice", exp2, ROLES);

    let mut conns = vec![connect(&s), connect(&s)];
    open(&mut conns[0], 1, &alice1);
    open(&mut conns[0], 3, &bob1);
    open(&mut conns[1], 1, &alice1);
    let streams = [(0usize, 1u32), (0, 3), (1, 1)];
    pump(
        &mut conns,
        WAIT,
        "the record produced before reaches every stream",
        |c| {
            streams
                .iter()
                .all(|&(i, id)| has_record(&c[i], id, "before"))
        },
    );
    for &(i, id) in &streams {
        assert_eq!(status(&conns[i], id), Some(200), "conn {i} stream {id}");
    }

    // Every stream is challenged, never before exp - 3.
    for &(i, id) in &streams {
        let at = pump(&mut conns, WAIT, "challenge", |c| {
            challenges(&c[i], id) >= 1
        });
        assert!(
            at >= (exp1 - LEAD) as f64,
            "conn {i} stream {id}: challenged at {at:.3}, before exp - {LEAD} = {}",
            exp1 - LEAD
        );
    }
    assert!(
        jwt::now() < exp1,
        "challenges arrived only after the token expired; the test cannot answer in time"
    );
    for &(i, id) in &streams {
        assert_eq!(
            reset_code(&conns[i], id),
            None,
            "conn {i} stream {id} cut before expiry"
        );
    }

    // Alice answers on connection A.
    answer(&mut conns[0], 5, &alice2);
    pump(&mut conns, WAIT, "the answer's response", |c| {
        status(&c[0], 5).is_some()
    });
    assert_eq!(status(&conns[0], 5), Some(204), "{}", conns[0].log_text());
    let head = conns[0]
        .log
        .iter()
        .find(|f| f.is(kind::HEADERS) && f.stream == 5)
        .unwrap();
    assert!(
        head.has(h2wire::flag::END_STREAM),
        "204 ends the stream: {head:?}"
    );

    // Bob (same connection, no answer of his own) and alice on connection B are cut at exp1.
    for &(i, id) in &[(0usize, 3u32), (1, 1)] {
        let at = pump(&mut conns, WAIT, "cut at the first expiry", |c| {
            reset_code(&c[i], id).is_some()
        });
        assert_eq!(
            reset_code(&conns[i], id),
            Some(code::NO_ERROR),
            "conn {i} stream {id}: {}",
            conns[i].log_text()
        );
        assert!(
            at >= exp1 as f64,
            "conn {i} stream {id} cut at {at:.3}, before exp {exp1}"
        );
    }
    assert_eq!(
        reset_code(&conns[0], 1),
        None,
        "the answered stream was cut at the first expiry: {}",
        conns[0].log_text()
    );

    // Past the first expiry, alice on A still receives what is produced.
    s.producer.send_value("events", Some(0), "after");
    pump(
        &mut conns,
        WAIT,
        "a record produced after the first expiry",
        |c| has_record(&c[0], 1, "after"),
    );
    assert!(!has_record(&conns[0], 3, "after"));
    assert!(!has_record(&conns[1], 1, "after"));

    // The second token is challenged in its turn (once), then, unanswered, cut at its expiry.
    let at = pump(&mut conns, WAIT, "second challenge", |c| {
        challenges(&c[0], 1) >= 2
    });
    assert!(
        at >= (exp2 - LEAD) as f64,
        "second challenge at {at:.3}, before {}",
        exp2 - LEAD
    );
    let at = pump(&mut conns, WAIT, "cut at the second expiry", |c| {
        reset_code(&c[0], 1).is_some()
    });
    assert!(
        at >= exp2 as f64,
        "cut at {at:.3}, before the second expiry {exp2}"
    );
    assert_eq!(reset_code(&conns[0], 1), Some(code::NO_ERROR));

    // One challenge per expiry, each its own event, records in order around them.
    for &(i, id) in &streams {
        assert_challenge_framing(body(&conns[i], id));
    }
    assert_eq!(challenges(&conns[0], 1), 2);
    assert_eq!(challenges(&conns[0], 3), 1);
    assert_eq!(challenges(&conns[1], 1), 1);
    let seen: Vec<(Option<String>, String)> = conns[0]
        .events(1)
        .into_iter()
        .map(|e| (e.event, e.data))
        .collect();
    let challenge_data =
        r#"{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}"#;
    let ch = (Some("challenge".to_string()), challenge_data.to_string());
    assert_eq!(
        seen,
        [
            (None, "before".to_string()),
            ch.clone(),
            (None, "after".to_string()),
            ch
        ]
    );
    // Cutting streams leaves the connection in service.
    assert!(conns[0].goaway(Duration::ZERO).is_none());
    assert!(conns[0].alive(WAIT), "connection A no longer served");
    assert!(conns[1].alive(WAIT), "connection B no longer served");
    jwt::assert_not_logged(&s.server.logs(), &[&alice1, &bob1, &alice2]);
}

/// (d): answers that do not qualify are answered 204 and extend nothing: another identity,
/// an earlier expiry, narrower roles, a token that does not verify.
#[test]
fn answers_that_do_not_qualify_do_not_extend() {
    let s = setup();
    s.producer.send_value("events", Some(0), "before");
    let exp1 = jwt::now() + LIFETIME;
    let scope = "read:events write:events";
    let alice1 = token(&s.key, "alice", exp1, scope);
    let answers = [
        ("another identity", token(&s.key, "carol", exp1 + 30, scope)),
        ("an earlier expiry", token(&s.key, "alice", exp1 - 1, scope)),
        ("narrower roles", token(&s.key, "alice", exp1 + 30, ROLES)),
        ("a bad signature", {
            let good = token(&s.key, "alice", exp1 + 30, scope);
            let (rest, sig) = good.rsplit_once('.').unwrap();
            let mut sig = sig.as_bytes().to_vec();
            sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
            format!("{rest}.{}", String::from_utf8(sig).unwrap())
        }),
    ];
    let mut conns: Vec<Wire> = answers.iter().map(|_| connect(&s)).collect();
    for w in conns.iter_mut() {
        open(w, 1, &alice1);
    }
    pump(&mut conns, WAIT, "challenges", |c| {
        c.iter()
            .all(|w| has_record(w, 1, "before") && challenges(w, 1) == 1)
    });
    let answered_at = jwt::now();
    for (w, (_, t)) in conns.iter_mut().zip(&answers) {
        answer(w, 3, t);
    }
    pump(&mut conns, WAIT, "204 to every answer", |c| {
        c.iter().all(|w| status(w, 3).is_some())
    });
    for (w, (why, _)) in conns.iter().zip(&answers) {
        assert_eq!(status(w, 3), Some(204), "answer with {why}");
    }
    if answered_at >= exp1 - 1 {
        eprintln!("note: the earlier-expiry answer was sent after its own expiry (slow machine)");
    }
    let at = pump(
        &mut conns,
        WAIT,
        "every stream cut at the first expiry",
        |c| c.iter().all(|w| reset_code(w, 1).is_some()),
    );
    for (w, (why, _)) in conns.iter().zip(&answers) {
        assert_eq!(
            reset_code(w, 1),
            Some(code::NO_ERROR),
            "answer with {why}: {}",
            w.log_text()
        );
        assert_eq!(challenges(w, 1), 1);
    }
    assert!(at >= exp1 as f64, "cut at {at:.3}, before exp {exp1}");
    let mut tokens: Vec<&str> = answers.iter().map(|(_, t)| t.as_str()).collect();
    tokens.push(&alice1);
    jwt::assert_not_logged(&s.server.logs(), &tokens);
}

/// (c): over HTTP/1.1 the stream is challenged (when its token has a subject) and the
/// connection is closed at expiry without the terminating chunk; a challenge response on
/// another connection is answered 204 and changes nothing (reference 2.6). curl reports the
/// truncated transfer.
#[test]
fn http1_stream_is_cut_at_expiry() {
    let s = setup();
    s.producer.send_value("events", Some(0), "before");
    let exp1 = jwt::now() + LIFETIME;
    let alice1 = token(&s.key, "alice", exp1, ROLES);
    let anonymous = s.key.token(&jwt::claims(None, exp1, ROLES, ""));
    let alice2 = token(&s.key, "alice", exp1 + 30, ROLES);

    let request = |t: &str| {
        format!(
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {t}\r\n\r\n",
            s.server.addr()
        )
    };
    let mut with_sub = HttpConn::connect(&s.server.addr());
    with_sub.send(request(&alice1).as_bytes());
    let mut without_sub = HttpConn::connect(&s.server.addr());
    without_sub.send(request(&anonymous).as_bytes());
    let curl = Sse::open_args(
        &s.server.url("/events"),
        &["-H", &format!("Authorization: Bearer {alice1}")],
    );
    for c in [&mut with_sub, &mut without_sub] {
        let head = c.read_head(WAIT).expect("response head");
        assert_eq!(head.status, 200, "{}", head.head);
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    }
    assert_eq!(curl.status(WAIT), Some(200));
    let decoded = |b: &[u8]| {
        decode_chunks(b)
            .map(|(body, _, _)| body)
            .unwrap_or_default()
    };

    assert!(with_sub.read_until(WAIT, |b| find(&decoded(b), CHALLENGE).is_some()));
    let at = now_f();
    assert!(
        at >= (exp1 - LEAD) as f64,
        "challenged at {at:.3}, before {}",
        exp1 - LEAD
    );
    let events = curl.expect(2, WAIT);
    assert_eq!(events[0].data, "before");
    assert_eq!(events[1].event.as_deref(), Some("challenge"));

    // The answer travels on another connection: 204, no effect.
    let answer = format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-challenge-response\r\nAuthorization: Bearer {alice2}\r\nContent-Length: 0\r\n\r\n",
        s.server.addr()
    );
    let r = raw_request(&s.server.addr(), answer.as_bytes(), WAIT).expect("answer response");
    assert_eq!(r.status, 204, "{}", r.head);

    for (name, c) in [
        ("with sub", &mut with_sub),
        ("without sub", &mut without_sub),
    ] {
        assert!(
            c.closed_within(WAIT),
            "{name}: connection not closed at expiry"
        );
        let closed_at = now_f();
        assert!(
            closed_at >= exp1 as f64,
            "{name}: closed at {closed_at:.3}, before exp {exp1}"
        );
        let raw = c.buffered().to_vec();
        let (body, _, complete) = decode_chunks(&raw).expect("valid chunked framing");
        assert!(
            !complete,
            "{name}: the body ended with the last chunk: {:?}",
            String::from_utf8_lossy(&raw)
        );
        assert!(
            !raw.ends_with(b"0\r\n\r\n"),
            "{name}: terminating chunk sent"
        );
        let events = parse_sse(&body).0;
        assert_eq!(
            events.first().map(|e| e.data.as_str()),
            Some("before"),
            "{name}"
        );
        let expected_challenges = usize::from(name == "with sub");
        assert_eq!(occurrences(&body, CHALLENGE), expected_challenges, "{name}");
        assert_challenge_framing(&body);
    }
    assert!(curl.wait_eof(WAIT), "curl still reading after expiry");
    assert!(
        curl.curl_errors()
            .contains("transfer closed with outstanding read data remaining"),
        "curl should report the truncated transfer: {:?}",
        curl.curl_errors()
    );
    jwt::assert_not_logged(&s.server.logs(), &[&alice1, &anonymous, &alice2]);
}

/// Deadlines already past when they are scheduled: a stream opened when its token is already
/// inside the challenge window (exp - 3 has passed) is challenged at once and still cut at
/// expiry, over HTTP/2 and HTTP/1.1; a late answer whose new token is itself already inside
/// its challenge window gets that challenge at once and is cut at the new expiry.
#[test]
fn deadlines_already_due_when_scheduled_still_fire() {
    let s = setup();
    s.producer.send_value("events", Some(0), "before");
    // Let the server's one-second timer run for a while first, so that the seconds in which
    // these deadlines fall have already been processed when they are scheduled.
    let started = jwt::now();
    assert!(wait_until(WAIT, || jwt::now() >= started + 3));
    let t0 = jwt::now();
    let exp = t0 + 2; // challenge due at t0 - 1: already past
    let alice = token(&s.key, "alice", exp, ROLES);
    let exp_a = t0 + 4; // challenge due at t0 + 1
    let bob_a = token(&s.key, "bob", exp_a, ROLES);
    let exp_b = exp_a + 1; // answered at exp_a - 1 or later: challenge due at exp_a - 2, past
    let bob_b = token(&s.key, "bob", exp_b, ROLES);

    let mut conns = vec![connect(&s)];
    open(&mut conns[0], 1, &alice);
    open(&mut conns[0], 3, &bob_a);
    let mut h1 = HttpConn::connect(&s.server.addr());
    h1.send(
        format!(
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {alice}\r\n\r\n",
            s.server.addr()
        )
        .as_bytes(),
    );
    pump(&mut conns, WAIT, "the record produced before", |c| {
        has_record(&c[0], 1, "before") && has_record(&c[0], 3, "before")
    });
    assert_eq!(h1.read_head(WAIT).map(|r| r.status), Some(200));

    // Bob answers his challenge late, with a token already inside its own challenge window.
    pump(&mut conns, WAIT, "bob's challenge", |c| {
        challenges(&c[0], 3) == 1
    });
    pump(&mut conns, WAIT, "a second before bob's expiry", |_| {
        jwt::now() >= exp_a - 1
    });
    assert!(jwt::now() < exp_a, "too late to answer");
    answer(&mut conns[0], 5, &bob_b);
    pump(&mut conns, WAIT, "the answer's response", |c| {
        status(&c[0], 5) == Some(204)
    });

    let at = pump(
        &mut conns,
        WAIT,
        "alice's HTTP/2 stream cut at expiry",
        |c| reset_code(&c[0], 1).is_some(),
    );
    assert!(at >= exp as f64, "cut at {at:.3}, before exp {exp}");
    assert_eq!(reset_code(&conns[0], 1), Some(code::NO_ERROR));
    assert_eq!(
        challenges(&conns[0], 1),
        1,
        "challenged once before the cut"
    );
    assert!(
        h1.closed_within(WAIT),
        "the HTTP/1.1 stream was not cut at expiry"
    );
    let (body, _, complete) = decode_chunks(h1.buffered()).expect("chunked framing");
    assert!(!complete);
    assert_eq!(occurrences(&body, CHALLENGE), 1);

    let at = pump(
        &mut conns,
        WAIT,
        "bob's stream cut at the new expiry",
        |c| reset_code(&c[0], 3).is_some(),
    );
    assert!(
        at >= exp_b as f64,
        "cut at {at:.3}, before the new exp {exp_b}"
    );
    assert_eq!(reset_code(&conns[0], 3), Some(code::NO_ERROR));
    assert_eq!(challenges(&conns[0], 3), 2, "one challenge per token");
    jwt::assert_not_logged(&s.server.logs(), &[&alice, &bob_a, &bob_b]);
}
