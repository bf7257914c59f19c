//! Key and header filters: exact byte equality, conditions in one filter ANDed, filters ORed,
//! values taken from `{params}` of the route path or given literally.

mod common;
use common::*;
use std::time::Duration;

const TOPIC: &str = "people";

/// (value, key, headers)
type R = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

const RECORDS: &[R] = &[
    ("alice-red", Some("alice"), &[("tag", "red")]),
    ("alice-blue", Some("alice"), &[("tag", "blue")]),
    ("bob-red", Some("bob"), &[("tag", "red")]),
    ("bob-none", Some("bob"), &[]),
    ("nokey-red", None, &[("tag", "red")]),
    (
        "alice-red-eu",
        Some("alice"),
        &[("tag", "red"), ("zone", "eu")],
    ),
    ("carol-blue", Some("carol"), &[("tag", "blue")]),
    ("alicex-red", Some("alicex"), &[("tag", "red")]),
    ("alice-reddish", Some("alice"), &[("tag", "reddish")]),
    ("ali-red", Some("ali"), &[("tag", "red")]),
    ("alice-TAG-red", Some("alice"), &[("TAG", "red")]),
    (
        "alice-eu-red",
        Some("alice"),
        &[("zone", "eu"), ("tag", "red")],
    ),
];

/// A filter as the test understands it: key equality and header equalities, ANDed.
struct F {
    key: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
}

fn matches(r: &R, filters: &[F]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            f.key.is_none_or(|k| r.1 == Some(k)) && f.headers.iter().all(|h| r.2.contains(h))
        })
}

fn check(server: &Server, path: &str, filters: &[F], all: &[(R, Delivered)]) {
    let expected: Vec<(String, Delivered)> = all
        .iter()
        .filter(|(r, _)| matches(r, filters))
        .map(|(r, d)| (r.0.to_string(), *d))
        .collect();
    assert!(!expected.is_empty(), "test bug: {path} expects nothing");
    let sse = Sse::open(&server.url(path));
    assert_eq!(sse.status(WAIT), Some(200), "{path}");
    let events = sse.expect(expected.len(), WAIT);
    // One partition: the events must be exactly the expected ones, in order. The last record
    // produced for each route matches it (the fences below), so nothing unexpected can hide
    // behind the last expected event.
    assert_eq!(
        events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
        "{path}"
    );
    sse.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&events, &expected);
}

#[test]
fn key_and_header_filters() {
    let (broker, producer) = Broker::with_topic(TOPIC, 1);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::new("/key/{key}", TOPIC).filter(Filter::key("${params.key}")))
        .route(Route::new("/tag/{tag}", TOPIC).filter(Filter::header("tag", "${params.tag}")))
        .route(
            Route::new("/both/{key}/{tag}", TOPIC)
                .filter(Filter::key("${params.key}").and_header("tag", "${params.tag}")),
        )
        .route(
            Route::new("/either", TOPIC)
                .filter(Filter::key("bob"))
                .filter(Filter::header("tag", "blue")),
        )
        .route(
            Route::new("/multi", TOPIC).filter(
                Filter::key("alice")
                    .and_header("tag", "red")
                    .and_header("zone", "eu"),
            ),
        )
        .route(Route::new("/{topic}", "${params.topic}"))
        .start(&[]);

    // Fences: one last matching record per route, produced after everything else.
    let fences: &[R] = &[
        ("fence-key-alice", Some("alice"), &[]),
        ("fence-key-bob", Some("bob"), &[]),
        ("fence-tag-red", Some("zed"), &[("tag", "red")]),
        ("fence-tag-blue", None, &[("tag", "blue")]),
        (
            "fence-both",
            Some("alice"),
            &[("tag", "red"), ("zone", "eu")],
        ),
    ];
    let mut all = Vec::new();
    for r in RECORDS.iter().chain(fences) {
        let headers: Vec<(&str, &[u8])> = r.2.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let d = producer.send(
            TOPIC,
            None,
            r.1.map(str::as_bytes),
            Some(r.0.as_bytes()),
            &headers,
        );
        all.push((*r, d));
    }

    check(
        &server,
        "/key/alice",
        &[F {
            key: Some("alice"),
            headers: &[],
        }],
        &all,
    );
    check(
        &server,
        "/key/bob",
        &[F {
            key: Some("bob"),
            headers: &[],
        }],
        &all,
    );
    check(
        &server,
        "/tag/red",
        &[F {
            key: None,
            headers: &[("tag", "red")],
        }],
        &all,
    );
    check(
        &server,
        "/tag/blue",
        &[F {
            key: None,
            headers: &[("tag", "blue")],
        }],
        &all,
    );
    check(
        &server,
        "/both/alice/red",
        &[F {
            key: Some("alice"),
            headers: &[("tag", "red")],
        }],
        &all,
    );
    check(
        &server,
        "/either",
        &[
            F {
                key: Some("bob"),
                headers: &[],
            },
            F {
                key: None,
                headers: &[("tag", "blue")],
            },
        ],
        &all,
    );
    check(
        &server,
        "/multi",
        &[F {
            key: Some("alice"),
            headers: &[("tag", "red"), ("zone", "eu")],
        }],
        &all,
    );
    // No filter: everything.
    check(&server, &format!("/{TOPIC}"), &[], &all);
}

/// Filtered streams keep their place: a filtered stream resumed by the id of its last event
/// gets the later matching records only, even though many non-matching records were skipped.
#[test]
fn filtered_stream_resumes_exactly() {
    let (broker, producer) = Broker::with_topic(TOPIC, 3);
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::new("/tag/{tag}", TOPIC).filter(Filter::header("tag", "${params.tag}")))
        .start(&[]);
    let mut wanted = Vec::new();
    let mut produce = |round: usize, n: usize| {
        for i in 0..n {
            let tag = if i % 3 == 0 { "red" } else { "blue" };
            let v = format!("r{round}-{i}-{tag}");
            let d = producer.send(
                TOPIC,
                Some((i % 3) as i32),
                None,
                Some(v.as_bytes()),
                &[("tag", tag.as_bytes())],
            );
            if tag == "red" {
                wanted.push((v, d));
            }
        }
    };
    produce(1, 30);
    let a = Sse::open(&server.url("/tag/red"));
    let seen = a.expect(4, WAIT);
    drop(a);
    produce(2, 30);
    let b = Sse::resume(
        &server.url("/tag/red"),
        seen.last().unwrap().id.as_deref().unwrap(),
    );
    let rest = b.expect(wanted.len() - seen.len(), WAIT);
    b.expect_no_more(Duration::from_millis(300));
    assert_exactly_once(&seen.into_iter().chain(rest).collect::<Vec<_>>(), &wanted);
}
