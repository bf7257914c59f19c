//! Delivery to live streams performs no allocation per event once warm.

use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;

use super::*;
use crate::fanout::hub::{Hub, OpenRequest, Settings};
use crate::fanout::message::Mesh;
use crate::fanout::stream_io::Take;
use crate::kafka::chunk::Chunk;
use crate::testing::{allocations, batch, KeyValue};

const STREAMS: usize = 1_000;
const RECORDS_PER_CHUNK: usize = 100;

fn chunk(base: i64) -> Chunk {
    let value = [b'x'; 200];
    let records: Vec<KeyValue<'_>> = (0..RECORDS_PER_CHUNK)
        .map(|_| (Some(&b"key"[..]), Some(&value[..])))
        .collect();
    let bytes = Bytes::from(batch(base, &records));
    Chunk::decode(0, base, base + RECORDS_PER_CHUNK as i64, &bytes, &[]).expect("valid batch")
}

#[test]
fn live_delivery_allocates_nothing_per_event() {
    let hub = Hub::new(
        0,
        Mesh::new(1),
        Vec::new(),
        Settings::default(),
        crate::metrics::Registry::new(1),
        Default::default(),
    );
    let mut h = hub.borrow_mut();
    let topic: Arc<str> = h.intern("t");
    let vkey: ViewKey = (0, topic.clone());
    let mut view = TopicView {
        cluster: 0,
        topic,
        state: ViewState::Ready,
        hint: StartHint::Earliest,
        parts: vec![PartView {
            mirror: VecDeque::new(),
            bytes: 0,
            head: 0,
            earliest: 0,
            latest: 0,
            ready: true,
            index: None,
        }],
        progress: vec![(0, 0)],
        groups: Vec::new(),
        waiting: Vec::new(),
        catching_up: Vec::new(),
        members: 0,
        idle_since: None,
        meta: Signal::new(),
        pinned: false,
    };
    let group = view.group_for(&[], IdTemplate::Etag);
    h.views.insert(vkey.clone(), view);
    let req = OpenRequest {
        cluster: 0,
        topic: "t".into(),
        filters: Vec::new(),
        template: IdTemplate::Etag,
        start: Start::Default,
        default_offset: DefaultOffset::Historical,
        chunked: true,
        version: 0,
        session: None,
        retry: None,
    };
    let mut ios = Vec::new();
    for _ in 0..STREAMS {
        let (key, io) = h.insert_stream(&req, vkey.clone(), group);
        h.start_stream(key.slot);
        ios.push(io);
    }
    let key = PartKey {
        cluster: 0,
        topic: vkey.1.clone(),
        partition: 0,
    };
    let waker = Waker::noop();
    let rounds = 1_000_000 / (STREAMS * RECORDS_PER_CHUNK) + 10;
    let chunks: Vec<Arc<Chunk>> = (0..rounds)
        .map(|r| Arc::new(chunk((r * RECORDS_PER_CHUNK) as i64)))
        .collect();
    // Writer side: take the pending bytes as the connection task would, then recycle the buffer.
    let drain = |ios: &mut Vec<SharedIo>| {
        let mut expected = 0;
        for io in ios.iter() {
            let taken = io.borrow_mut().take(waker, 0, usize::MAX);
            match taken.expect("every live stream receives every record") {
                Take::Live(g) => {
                    // Every stream takes the same bytes: one chunk's worth of events.
                    if expected == 0 {
                        expected = g.payload_len();
                    }
                    assert!(expected > RECORDS_PER_CHUNK * 200);
                    assert_eq!(g.payload_len(), expected);
                    crate::fanout::stream_io::give_gather(g);
                }
                Take::Private(..) => panic!("a live stream's events come from the shared log"),
            }
            io.borrow_mut().written();
        }
    };
    let mut chunks = chunks.into_iter();
    for c in chunks.by_ref().take(10) {
        h.on_append(&key, c);
        drain(&mut ios);
    }
    let before = allocations();
    let mut events = 0u64;
    for c in chunks {
        h.on_append(&key, c);
        drain(&mut ios);
        events += (STREAMS * RECORDS_PER_CHUNK) as u64;
    }
    let made = allocations() - before;
    eprintln!("{events} events to {STREAMS} streams: {made} allocations");
    assert!(events >= 1_000_000);
    // The mirror's VecDeque may still double a few times; nothing may scale with events.
    assert!(
        made < 64,
        "{made} allocations for {events} delivered events"
    );
}
