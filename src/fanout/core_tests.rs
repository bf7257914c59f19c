//! The fan-out core driven as a state machine: inputs (a request, metadata, a subscription
//! answer, fetched chunks, drained writers, ticks) go in with the time, and what comes out is
//! checked (commands, messages, bytes for each stream). No sockets, no broker, no runtime.

use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;
use proto::event_id::IdTemplate;

use crate::auth::session::Session;
use crate::config::plan::DefaultOffset;
use crate::fanout::hub::{Command, Hub, OpenError, OpenRequest, Settings, SharedHub};
use crate::fanout::message::{Mesh, Message, PartKey, StreamKey};
use crate::fanout::stream_io::{SharedIo, Take};
use crate::fanout::view::{Opening, Start};
use crate::kafka::chunk::Chunk;
use crate::kafka::client::{PartitionMeta, TopicMeta};
use crate::testing::{batch, KeyValue};

const TOPIC: &str = "t";

fn hub(settings: Settings) -> SharedHub {
    Hub::new(
        0,
        Mesh::new(1),
        Vec::new(),
        settings,
        crate::metrics::Registry::new(1),
        Default::default(),
    )
}

fn request(start: Start) -> OpenRequest {
    OpenRequest {
        cluster: 0,
        topic: TOPIC.into(),
        filters: Vec::new(),
        template: IdTemplate::Etag,
        start,
        default_offset: DefaultOffset::Historical,
        chunked: true,
        version: 0,
        session: None,
        retry: None,
    }
}

/// `n` records from `base`, each value `v{offset}` padded to `size` bytes.
fn chunk(base: i64, n: usize, size: usize) -> Arc<Chunk> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = format!("v{}-", base + i as i64).into_bytes();
            v.resize(size.max(v.len()), b'x');
            v
        })
        .collect();
    let records: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(&v[..]))).collect();
    let bytes = Bytes::from(batch(base, &records));
    Arc::new(Chunk::decode(0, base, base + n as i64, &bytes, &[]).expect("valid batch"))
}

fn key() -> PartKey {
    PartKey {
        cluster: 0,
        topic: Arc::from(TOPIC),
        partition: 0,
    }
}

/// Runs what the hub queued for itself (one worker: every message is local) and returns the
/// commands it left for the driver.
fn turn(h: &mut Hub) -> (Vec<Command>, Vec<Message>) {
    let mut seen = Vec::new();
    while let Some((to, msg)) = h.outbox.pop_front() {
        assert_eq!(to, 0);
        match msg {
            // The owner side would start the partition; the test answers for it.
            m @ (Message::Subscribe { .. } | Message::Backfill { .. }) => seen.push(m),
            m => h.handle(m),
        }
    }
    (std::mem::take(&mut h.commands), seen)
}

/// Opens a stream on a topic of one partition whose owner answers at `head` with `snapshot`.
fn open_ready(
    h: &mut Hub,
    req: &OpenRequest,
    head: i64,
    snapshot: Vec<Arc<Chunk>>,
) -> (StreamKey, SharedIo) {
    let opening: Opening = h.begin_open(req).expect("opening");
    let (commands, _) = turn(h);
    if !commands.is_empty() {
        assert!(
            matches!(&commands[..], [Command::Resolve(_)]),
            "{commands:?}"
        );
        let meta = TopicMeta {
            partitions: vec![PartitionMeta {
                partition: 0,
                leader: 1,
            }],
        };
        h.on_metadata(&opening.vkey, &meta);
        let (_, messages) = turn(h);
        assert!(
            matches!(&messages[..], [Message::Subscribe { .. }]),
            "{messages:?}"
        );
        let earliest = snapshot.first().map_or(head, |c| c.first_offset);
        h.on_subscribed(key(), snapshot, head, earliest, head, None);
    }
    let opened = h.finish_open(&opening, req).expect("opened");
    turn(h);
    opened
}

/// Everything the stream's writer would write now (payload bytes), reporting it written.
fn drain(h: &mut Hub, key: StreamKey, io: &SharedIo) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let taken = io.borrow_mut().take(Waker::noop(), h.now, 64 * 1024);
        match taken {
            None => return out,
            Some(Take::Private(buf, start)) => {
                // Chunked framing: "len\r\n" … "\r\n".
                let body = &buf[start..];
                let at = body
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .expect("chunk line");
                out.extend_from_slice(&body[at + 2..body.len() - 2]);
            }
            Some(Take::Live(g)) => out.extend_from_slice(&g.payload()),
        }
        io.borrow_mut().written();
        h.on_drained(key);
        turn(h);
    }
}

/// The offsets carried by the events' data (`v{offset}-…`), in order.
fn offsets(bytes: &[u8]) -> Vec<i64> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|l| l.strip_prefix("data:v"))
        .map(|l| l.split('-').next().unwrap_or("").parse().expect("offset"))
        .collect()
}

#[test]
fn a_new_topic_asks_once_for_metadata_and_live_streams_share_one_encoding() {
    let hub = hub(Settings::default());
    let mut h = hub.borrow_mut();
    let req = request(Start::Default);
    let (k1, io1) = open_ready(&mut h, &req, 0, Vec::new());
    // A second stream on the same topic needs no second look-up.
    h.begin_open(&req).expect("second");
    let (commands, _) = turn(&mut h);
    assert!(commands.is_empty(), "{commands:?}");
    let (k2, io2) = open_ready(&mut h, &req, 0, Vec::new());
    assert!(h.stream(k1).is_some_and(|s| s.live));
    h.on_append(&key(), chunk(0, 10, 50));
    turn(&mut h);
    let a = drain(&mut h, k1, &io1);
    let b = drain(&mut h, k2, &io2);
    assert_eq!(offsets(&a), (0..10).collect::<Vec<_>>());
    assert_eq!(a, b, "live streams of a group get the same bytes");
    // The log is released once both cursors passed it (at the next append or tick).
    h.tick(0);
    assert_eq!(crate::fanout::live_log::worker_log_bytes(), 0);
}

#[test]
fn a_stream_past_its_budget_catches_up_from_the_cache_and_rejoins_live() {
    let hub = hub(Settings {
        stream_budget: 4096,
        ..Settings::default()
    });
    let mut h = hub.borrow_mut();
    let (fast_key, fast) = open_ready(&mut h, &request(Start::Default), 0, Vec::new());
    let (slow_key, slow) = open_ready(&mut h, &request(Start::Default), 0, Vec::new());
    let mut fast_got = Vec::new();
    // Five bursts of 20 kB each; the slow reader takes nothing meanwhile.
    for round in 0..5 {
        h.on_append(&key(), chunk(round * 100, 100, 200));
        turn(&mut h);
        fast_got.extend(drain(&mut h, fast_key, &fast));
    }
    assert_eq!(offsets(&fast_got), (0..500).collect::<Vec<_>>());
    let s = h.stream(slow_key).expect("slow stream");
    assert!(!s.live, "a stream over its budget leaves the live group");
    assert!(
        slow.borrow().pending() <= 4096,
        "its pending bytes stay within the budget"
    );
    assert!(h.metrics.streams_demoted.get() >= 1);
    // Reading again, it catches up from the cache (its own ids), then rejoins the live group.
    let got = drain(&mut h, slow_key, &slow);
    assert_eq!(
        offsets(&got),
        (0..500).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(h.stream(slow_key).is_some_and(|s| s.live));
    h.on_append(&key(), chunk(500, 3, 10));
    turn(&mut h);
    assert_eq!(offsets(&drain(&mut h, slow_key, &slow)), [500, 501, 502]);
}

#[test]
fn an_id_older_than_the_cache_asks_the_owner_for_a_backfill() {
    let hub = hub(Settings::default());
    let mut h = hub.borrow_mut();
    // The cache holds 100..110; the stream resumes at 40.
    let req = request(Start::Ids(vec![(0, 40)]));
    let opening = h.begin_open(&req).expect("opening");
    turn(&mut h);
    let meta = TopicMeta {
        partitions: vec![PartitionMeta {
            partition: 0,
            leader: 1,
        }],
    };
    h.on_metadata(&opening.vkey, &meta);
    turn(&mut h);
    h.on_subscribed(key(), vec![chunk(100, 10, 10)], 110, 0, 110, None);
    let (stream, io) = h.finish_open(&opening, &req).expect("opened");
    let (_, messages) = turn(&mut h);
    match &messages[..] {
        [Message::Backfill {
            from, stream: s, ..
        }] => {
            assert_eq!(*from, 40);
            assert_eq!(*s, stream);
        }
        other => panic!("expected one backfill, got {other:?}"),
    }
    // The owner's answer: 40..100, then the cache continues.
    h.handle(Message::BackfillData {
        key: key(),
        stream,
        chunk: chunk(40, 60, 10),
    });
    turn(&mut h);
    let got = drain(&mut h, stream, &io);
    assert_eq!(offsets(&got), (40..110).collect::<Vec<_>>());
    assert!(h.stream(stream).is_some_and(|s| s.live));
}

#[test]
fn unknown_topics_are_remembered_and_look_ups_are_capped() {
    let hub = hub(Settings::default());
    let mut h = hub.borrow_mut();
    let req = request(Start::Default);
    let opening = h.begin_open(&req).expect("opening");
    turn(&mut h);
    h.on_unresolved(&opening.vkey, OpenError::NotFound);
    // Asked again within the interval: 404 without another look-up, and no view is kept.
    assert_eq!(h.begin_open(&req).err(), Some(OpenError::NotFound));
    assert!(turn(&mut h).0.is_empty());
    assert!(h.views.is_empty());
    // New topics beyond the cap of look-ups in flight are refused at once.
    for i in 0..crate::fanout::hub::MAX_RESOLVING {
        let mut r = request(Start::Default);
        r.topic = format!("other-{i}");
        h.begin_open(&r).expect("under the cap");
    }
    let mut r = request(Start::Default);
    r.topic = "one-too-many".into();
    assert_eq!(h.begin_open(&r).err(), Some(OpenError::Unavailable));
    assert_eq!(turn(&mut h).0.len(), crate::fanout::hub::MAX_RESOLVING);
}

#[test]
fn a_guarded_stream_is_challenged_then_ended_at_expiry() {
    let hub = hub(Settings::default());
    let mut h = hub.borrow_mut();
    let mut req = request(Start::Default);
    let now = 1_000_000;
    req.session = Some(Session {
        guard: "g".into(),
        identity: Some("alice".into()),
        exp: Some(now + 10),
        roles: Vec::new(),
        attributes: Vec::new(),
        challenge: Some(3),
    });
    let (stream, io) = open_ready(&mut h, &req, 0, Vec::new());
    h.tick(now);
    assert!(drain(&mut h, stream, &io).is_empty());
    h.tick(now + 7);
    let got = drain(&mut h, stream, &io);
    assert_eq!(
        got,
        proto::sse::CHALLENGE_EVENT,
        "challenged `challenge` seconds before"
    );
    assert!(io.borrow().end.is_none());
    h.tick(now + 10);
    assert_eq!(
        io.borrow().end,
        Some(crate::fanout::stream_io::EndReason::Expiry)
    );
}
