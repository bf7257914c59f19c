//! Bounded slow clients (`--stream-budget`): a client that stops reading while ten others read
//! on is cut once its pending outbound bytes would exceed its budget; the others receive every
//! record; the stopped one, once it reads again, finds the stream ended without the terminating
//! chunk (HTTP/1.1 close), and resumes by the id of its last whole event without loss or
//! duplicate. `sse_kafka_streams_ended_total{reason="budget"}` counts the cut.

mod common;
use common::*;
use std::net::Ipv4Addr;
use std::time::Duration;

const BUDGET: usize = 64 * 1024;
/// Records per round: ~42 KiB of events, under the budget, so a reader that keeps up never has
/// more than one round pending (the fetch never returns more than a round at once, as the next
/// round is produced only after every reader got the previous one). A pending burst larger than
/// the budget would cut every reader, however fast.
const ROUND: usize = 40;
/// ~400 KiB in all: several times what the stopped client's kernel buffers (its 4 KiB receive
/// buffer, and the server's send buffer sized from its 536-byte MSS; about 80 KB measured)
/// plus the budget can hold. (Each round costs up to one broker long-poll: tansu answers a
/// waiting Fetch at its max wait, not when a record arrives.)
const ROUNDS: usize = 10;
const VALUE_LEN: usize = 1024;

fn value(i: usize) -> String {
    let head = format!("r{i:05}-");
    format!("{head}{}", "x".repeat(VALUE_LEN - head.len()))
}

#[test]
fn a_stopped_reader_is_cut_and_resumes_while_the_others_get_everything() {
    let (broker, producer) = Broker::with_topic("feed", 1);
    let metrics_port = free_port();
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&["--stream-budget", &BUDGET.to_string(), "--heartbeat", "0"]);
    let url = server.url("/feed");

    let mut produced: Vec<(String, Delivered)> = Vec::new();
    let first = value(0);
    produced.push((first.clone(), producer.send_value("feed", Some(0), &first)));

    let readers: Vec<Sse> = (0..10).map(|_| Sse::open(&url)).collect();
    // The stopped client: a 4 KiB receive buffer and a small MSS (so the kernels on both sides
    // hold little for it), reads the response head and the first event, then never reads again.
    let mut stopped = HttpConn::from_stream(tcp_connect_with(
        &server.addr(),
        Some(Ipv4Addr::LOCALHOST),
        Some(4096),
        Some(536),
    ));
    stopped.send(&sse_request("/feed", &server.addr()));
    let head = stopped.read_head(WAIT).expect("response head");
    assert_eq!(head.status, 200);
    assert!(stopped.read_until(WAIT, |b| find(b, b"r00000-").is_some()));
    for r in &readers {
        assert_eq!(r.expect(1, WAIT)[0].data, first);
    }

    // Rounds of records; each round is read by the ten before the next is produced.
    let mut n = 1;
    for round in 0..ROUNDS {
        let recs: Vec<Rec> = (n..n + ROUND)
            .map(|i| Rec::value(value(i)).partition(0))
            .collect();
        let delivered = producer.send_batch("feed", &recs);
        for (i, d) in (n..n + ROUND).zip(delivered) {
            produced.push((value(i), d));
        }
        n += ROUND;
        for (j, r) in readers.iter().enumerate() {
            let got = r.collect(ROUND, WAIT);
            assert_eq!(
                got.len(),
                ROUND,
                "reader {j} stalled in round {round} (eof {}; curl: {})",
                r.is_eof(),
                r.curl_errors()
            );
        }
    }
    let total = produced.len();
    assert_eq!(total, 1 + ROUND * ROUNDS);

    // Every reader got every record exactly once, and none was cut.
    for (j, r) in readers.iter().enumerate() {
        assert!(!r.is_eof(), "reader {j} was cut");
        assert_exactly_once(&r.received(), &produced);
    }

    // The cut happens while the client is still stopped: it is counted and its stream is no
    // longer open, without waiting for it to read again (see also
    // `a_reader_that_never_reads_again_is_cut_all_the_same`).
    let m = expect_metrics(
        metrics_port,
        "the stopped stream is not cut while it is stopped",
        |m| m.get("sse_kafka_streams_ended_total", &[("reason", "budget")]) == Some(1.0),
    );
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        10.0
    );
    assert_eq!(
        m.value("sse_kafka_streams_ended_total", &[("reason", "client")]),
        0.0,
        "nobody else ended"
    );

    // The stopped client reads again: what the kernels held for it, then the end of the
    // connection with no terminating chunk (the bytes pending in the server are dropped at the
    // cut: the client resumes by id).
    let cut = stopped.closed_within(WAIT);
    assert!(
        cut,
        "the stopped stream was not cut; it holds {} bytes",
        stopped.buffered().len()
    );
    // A loose bound (about 85 KB measured): the server did not keep queueing for it.
    assert!(
        stopped.buffered().len() <= BUDGET + 256 * 1024,
        "the stopped client received {} bytes",
        stopped.buffered().len()
    );
    let (body, used, complete) = decode_chunks(stopped.buffered()).expect("valid chunked framing");
    assert!(!complete, "a cut stream must not end with the last chunk");
    // The cut aborts the socket (the client stopped reading), possibly in the middle of a
    // chunk: what follows the last whole chunk is a partial one, which a client discards (an
    // event only counts once its blank line arrived), so it resumes by its last whole id.
    assert!(used <= stopped.buffered().len());
    // `read_until` kept what it read in the buffer: the body from its start.
    let (events, _) = parse_sse(&body);
    assert!(
        !events.is_empty() && events.len() < total,
        "the stopped client got {} of {total} events: it should have been cut before the end",
        events.len()
    );
    assert_exactly_once(&events, &produced[..events.len()]);

    // It resumes by the id of its last whole event and gets the rest, no loss, no duplicate.
    let last_id = events.last().unwrap().id.clone().expect("events carry ids");
    let resumed = Sse::resume(&url, &last_id);
    let rest = resumed.expect(total - events.len(), WAIT);
    resumed.expect_no_more(Duration::from_millis(300));
    let union: Vec<Event> = events.into_iter().chain(rest).collect();
    assert_exactly_once(&union, &produced);

    // The ten are still live.
    let last = value(n);
    produced.push((last.clone(), producer.send_value("feed", Some(0), &last)));
    for r in &readers {
        assert_eq!(r.expect(1, WAIT)[0].data, last);
    }
}

/// The budget bounds how far a *client* falls behind, not how much Kafka returns at once: a
/// reader at the live head that reads as fast as it can is not cut when one fetch brings more
/// than its budget (here one compressed batch of 3 MiB of events against the default 1 MiB
/// budget; a consumer that restarts or a producer burst does this).
#[test]
fn a_burst_larger_than_the_budget_does_not_cut_a_reader_that_keeps_up() {
    let broker = Broker::with_empty_topic("burst", 1);
    let producer = Producer::with_compression(&broker.bootstrap(), "gzip");
    let metrics_port = free_port();
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&["--heartbeat", "0"]);
    let reader = Sse::open(&server.url("/burst"));
    let first = producer.send_batch("burst", &[Rec::value("first").partition(0)]);
    assert_eq!(reader.expect(1, WAIT)[0].data, "first");
    let recs: Vec<Rec> = (0..3000)
        .map(|i| Rec::value(value(i)).partition(0))
        .collect();
    let delivered = producer.send_batch("burst", &recs);
    let mut produced = vec![("first".to_string(), first[0])];
    produced.extend((0..3000).map(value).zip(delivered));
    let got = reader.collect(3000, WAIT);
    let m = scrape(metrics_port);
    assert_eq!(
        got.len(),
        3000,
        "the reader got {} of 3000 events (eof {}); budget ends: {}",
        got.len(),
        reader.is_eof(),
        m.value("sse_kafka_streams_ended_total", &[("reason", "budget")])
    );
    assert_exactly_once(&reader.received(), &produced);
}

/// HTTP/2: a stream whose reader stops (its stream window is never reopened, here by the raw
/// client, while the connection window is) is reset with `RST_STREAM(CANCEL)` once over its
/// budget; the other stream on the same connection receives every record; the stopped one
/// resumes by its last id on a new stream of the same connection.
#[test]
fn an_http2_stream_over_its_budget_is_reset_and_its_neighbour_continues() {
    use common::h2::{Client, CANCEL};
    let (broker, producer) = Broker::with_topic("feed", 1);
    let metrics_port = free_port();
    let server = Zilla::h2_metrics(&broker.bootstrap(), metrics_port).start(&[
        "--stream-budget",
        &BUDGET.to_string(),
        "--heartbeat",
        "0",
    ]);

    let mut produced: Vec<(String, Delivered)> = Vec::new();
    let first = value(0);
    produced.push((first.clone(), producer.send_value("feed", Some(0), &first)));
    let mut c = Client::connect(&server.addr());
    c.hold(1);
    c.request(1, "GET", "/feed");
    c.request(3, "GET", "/feed");
    assert!(c.run_until(WAIT, |c| c.events(1).len() == 1 && c.events(3).len() == 1));

    // 65,535 bytes of stream window plus a 64 KiB budget: ~130 records stop stream 1; 8 rounds
    // of 40 are 320.
    let mut n = 1;
    for round in 0..8 {
        let recs: Vec<Rec> = (n..n + ROUND)
            .map(|i| Rec::value(value(i)).partition(0))
            .collect();
        let delivered = producer.send_batch("feed", &recs);
        for (i, d) in (n..n + ROUND).zip(delivered) {
            produced.push((value(i), d));
        }
        n += ROUND;
        let want = produced.len();
        assert!(
            c.run_until(WAIT, |c| c.events(3).len() == want),
            "stream 3 stalled in round {round}: {} of {want} events, reset {:?}",
            c.events(3).len(),
            c.stream(3).reset
        );
    }
    assert!(
        c.run_until(WAIT, |c| c.stream(1).reset.is_some()),
        "stream 1 was not reset; it got {} bytes",
        c.stream(1).data.len()
    );
    assert_eq!(c.stream(1).reset, Some(CANCEL));
    assert!(c.goaway.is_none() && !c.closed, "only the stream ends");
    assert_eq!(c.stream(3).reset, None);
    assert_exactly_once(&c.events(3), &produced);
    let (ok, m) = wait_metrics(metrics_port, WAIT, |m| {
        m.get("sse_kafka_streams_ended_total", &[("reason", "budget")]) == Some(1.0)
    });
    assert!(ok, "{}", m.raw);

    // What stream 1 got is a whole prefix (within its 65,535-byte window); it resumes by the
    // id of its last whole event on a new stream.
    let got = c.events(1);
    assert!(c.stream(1).data.len() <= 65_535);
    assert!(!got.is_empty() && got.len() < produced.len());
    assert_exactly_once(&got, &produced[..got.len()]);
    let last_id = got.last().unwrap().id.clone().unwrap();
    c.request_with(5, "GET", "/feed", &[("last-event-id", &last_id)]);
    let want = produced.len() - got.len();
    assert!(
        c.run_until(WAIT, |c| c.events(5).len() >= want),
        "the resumed stream got {} of {want}",
        c.events(5).len()
    );
    assert_eq!(c.stream(5).status, Some(200));
    let union: Vec<Event> = got.into_iter().chain(c.events(5)).collect();
    assert_exactly_once(&union, &produced);
}

/// A live reader that stops for good (never reads again, never closes) with its kernel buffers
/// full: the server's write to it cannot complete, yet the stream must still be cut once it is
/// over its budget: counted, no longer open, its admission place given back. Here the budget is
/// 4 MiB so that every fetch (at most 1 MiB per partition) fits it; 8 MiB of records fill the
/// kernel buffers (a few MiB on loopback) and then the budget.
#[test]
fn a_reader_that_never_reads_again_is_cut_all_the_same() {
    let broker = Broker::with_empty_topic("feed", 1);
    let producer = Producer::batching(&broker.bootstrap());
    let metrics_port = free_port();
    let server = Zilla::any_topic(&broker.bootstrap())
        .prometheus(metrics_port)
        .start(&[
            "--stream-budget",
            &(4 << 20).to_string(),
            "--heartbeat",
            "0",
            "--max-streams-per-ip",
            "1",
        ]);
    let mut stopped = HttpConn::from_stream(tcp_connect(&server.addr(), None, Some(4096)));
    stopped.send(&sse_request("/feed", &server.addr()));
    assert_eq!(stopped.read_head(WAIT).expect("head").status, 200);
    // It reads one record, so it is live at the head; then it stops.
    producer.send_batch("feed", &[Rec::value(value(0)).partition(0)]);
    assert!(stopped.read_until(WAIT, |b| find(b, b"r00000-").is_some()));
    for chunk in 0..8 {
        let recs: Vec<Rec> = (0..1024)
            .map(|i| Rec::value(value(1 + chunk * 1024 + i)).partition(0))
            .collect();
        producer.send_batch("feed", &recs);
    }
    let m = expect_metrics(
        metrics_port,
        "a stopped reader over its budget is never cut while it does not read",
        |m| m.get("sse_kafka_streams_ended_total", &[("reason", "budget")]) == Some(1.0),
    );
    assert_eq!(
        m.value("sse_kafka_streams_open", &[("version", "http/1.1")]),
        0.0
    );
    // Its place is free again (per-IP cap 1).
    let again = Sse::open(&server.url("/feed"));
    assert_eq!(again.status(WAIT), Some(200));
    assert_eq!(again.expect(1, WAIT)[0].data, value(0));
    drop(again);
    // And the stopped connection ends (after what the kernel held).
    assert!(stopped.closed_within(WAIT));
}
