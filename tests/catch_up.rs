//! Streams that start behind the shared position (from the earliest record, or from an older
//! id) catch up and join the live position with no gap and no duplicate, while records keep
//! arriving (issue 2, point 4).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn late_streams_catch_up_while_records_keep_coming() {
    let broker = Broker::with_empty_topic("flow", 3);
    let bootstrap = broker.bootstrap();
    let server = Zilla::new(free_port(), &bootstrap)
        .route(Route::any_topic())
        .start(&[]);
    let url = server.url("/flow");
    let early = Sse::open(&url);
    assert_eq!(early.status(WAIT), Some(200));

    const N: usize = 300;
    let producer = std::thread::spawn(move || {
        let p = Producer::new(&bootstrap);
        (0..N)
            .map(|i| {
                let v = format!("r{i:04}");
                let d = p.send(
                    "flow",
                    Some((i % 3) as i32),
                    Some(format!("k{}", i % 11).as_bytes()),
                    Some(v.as_bytes()),
                    &[],
                );
                (v, d)
            })
            .collect::<Vec<_>>()
    });

    // A stream from the earliest record, opened while production is under way.
    let mut early_events = early.expect(N / 3, WAIT);
    let from_start = Sse::open(&url);
    // A stream resumed from an older id, also mid-way.
    early_events.extend(early.expect(N / 3, WAIT));
    let resume_at = N / 6;
    let from_id = Sse::resume(&url, early_events[resume_at - 1].id.as_deref().unwrap());

    let all = producer.join().unwrap();
    early_events.extend(early.expect(N - early_events.len(), WAIT));
    assert_exactly_once(&early_events, &all);
    let late = from_start.expect(N, WAIT);
    assert_exactly_once(&late, &all);
    let resumed = from_id.expect(N - resume_at, WAIT);
    let expected: Vec<_> = all
        .iter()
        .filter(|(v, _)| !early_events[..resume_at].iter().any(|e| &e.data == v))
        .cloned()
        .collect();
    assert_exactly_once(&resumed, &expected);
    for s in [&early, &from_start, &from_id] {
        s.expect_no_more(Duration::from_millis(200));
    }
}
