//! A worker whose inbox is full slows the fetching that feeds it and loses nothing (issue 9).
//!
//! Each partition is fetched by one owner worker, which sends every fetched chunk to each other
//! worker with streams on it through that worker's bounded inbox (`mesh::INBOX_CAPACITY`,
//! 16,384 messages). When the inbox is full the owner keeps the messages in order and its fetch
//! loops wait before fetching again (`Hub::backpressure`), counting
//! `sse_kafka_fetch_paused_total`.
//!
//! A full inbox needs a worker that does not take its messages. Both workers running, worker 1
//! drains its inbox faster than one tansu broker can feed it (tried: 21,600 records over 50 s,
//! one round at a time, and the counter stays at 0). So the test makes worker 1 stop, the way a
//! worker descheduled or stuck in a long turn would: its thread alone is stopped with ptrace
//! (`PTRACE_SEIZE` + `PTRACE_INTERRUPT`; the rest of the process runs on) while records are
//! produced to a 32-partition topic, one per partition that worker 0 fetches per round. Worker
//! 0's fetch loop fills worker 1's inbox (one message per partition per fetch), pauses (the
//! counter rises and `sse_kafka_fetch_requests_total` stands still while records keep
//! arriving), and when worker 1 runs again every stream, on either worker, gets every record of
//! every partition exactly once and in order. Small stream budgets make worker 1's streams, a
//! burst behind when it resumes, take the catch-up path as well.

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 32;
/// Streams on the topic; the kernel spreads connections over the two workers' listeners
/// (SO_REUSEPORT), so both have some (all on one: 2 in 2^12).
const STREAMS: usize = 12;
/// Produce at most this many rounds (one record per partition each) waiting for the pause.
const MAX_ROUNDS: usize = 6000;

/// The partitions of `topic` that worker 0 of 2 fetches, as src/fanout/message.rs
/// `PartKey::owner` assigns them (FNV-1a of the name and the partition, modulo the workers).
/// Only records on these fill worker 1's inbox; producing to them alone halves the test's
/// records. Were the assignment to change, half of them would still be worker 0's on average:
/// the test would only take longer.
fn fed_by_worker_0(topic: &str) -> Vec<i32> {
    (0..PARTITIONS)
        .filter(|p| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in topic.as_bytes().iter().chain(&p.to_le_bytes()) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h.is_multiple_of(2)
        })
        .collect()
}
/// Rounds produced while paused, to see the fetching stand still.
const PAUSED_ROUNDS: usize = 50;

/// A thread of another process, stopped with ptrace until dropped. All calls happen on the
/// thread that created it (ptrace's rule); a tracer that exits detaches, so the worker also
/// runs again if the test dies.
struct StoppedThread {
    tid: libc::pid_t,
}

impl StoppedThread {
    /// Stops `tid` of process `pid` while it waits in a system call (its driver's wait for I/O),
    /// not in the middle of user code that may hold a lock another thread needs (malloc's).
    fn stop_idle(pid: u32, tid: libc::pid_t) -> StoppedThread {
        let path = format!("/proc/{pid}/task/{tid}/syscall");
        let in_syscall = || {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
                .is_some_and(|n| n >= 0)
        };
        assert!(
            wait_until(WAIT, in_syscall),
            "worker thread {tid} never waits in a system call"
        );
        StoppedThread::stop(tid)
    }

    fn stop(tid: libc::pid_t) -> StoppedThread {
        // SAFETY: plain system calls on a thread id; no memory is shared with the tracee.
        unsafe {
            let rc = libc::ptrace(
                libc::PTRACE_SEIZE,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
            assert_eq!(
                rc,
                0,
                "PTRACE_SEIZE {tid}: {}",
                std::io::Error::last_os_error()
            );
            let rc = libc::ptrace(
                libc::PTRACE_INTERRUPT,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
            assert_eq!(
                rc,
                0,
                "PTRACE_INTERRUPT {tid}: {}",
                std::io::Error::last_os_error()
            );
            let mut status = 0;
            let rc = libc::waitpid(tid, &mut status, libc::__WALL);
            assert_eq!(
                rc,
                tid,
                "waitpid {tid}: {}",
                std::io::Error::last_os_error()
            );
            assert!(
                libc::WIFSTOPPED(status),
                "worker thread {tid} did not stop: {status:#x}"
            );
        }
        StoppedThread { tid }
    }
}

impl Drop for StoppedThread {
    fn drop(&mut self) {
        // SAFETY: as above; detaching a stopped tracee resumes it.
        unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                self.tid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
        }
    }
}

/// The thread id of the server's thread named `name` (workers are `worker-N`).
fn thread_id(pid: u32, name: &str) -> libc::pid_t {
    let dir = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&dir)
        .expect("read /proc/PID/task")
        .flatten()
    {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            if let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) {
                return tid;
            }
        }
    }
    panic!("no thread named {name} in {dir}");
}

/// One record per partition of `partitions` (values `w-p{partition}-{tag}`), delivered.
fn round(producer: &Producer, partitions: &[i32], tag: &str) -> Vec<(String, Delivered)> {
    let values: Vec<String> = partitions.iter().map(|p| format!("w-p{p}-{tag}")).collect();
    let recs: Vec<Rec> = partitions
        .iter()
        .zip(&values)
        .map(|(p, v)| Rec::value(v).partition(*p))
        .collect();
    values
        .into_iter()
        .zip(producer.send_batch("wide", &recs))
        .collect()
}

#[test]
fn a_full_inbox_pauses_the_fetches_feeding_it_and_nothing_is_lost() {
    let broker = Broker::start();
    broker.create_topic("wide", PARTITIONS);
    let producer = Producer::new(&broker.bootstrap());
    let metrics_port = free_port();
    let server = Zilla::new(free_port(), &broker.bootstrap())
        .route(Route::any_topic())
        .prometheus(metrics_port)
        .start(&[
            "--workers",
            "2",
            "--heartbeat",
            "0",
            // tansu answers an empty long poll at its max wait only: keep fetches frequent, so
            // that each round of records is its own chunk per partition (one message each).
            "--fetch-max-wait-ms",
            "1",
            "--stream-budget",
            "65536",
            "--worker-budget",
            "1048576",
            "--stall-timeout",
            "0",
        ]);
    let url = server.url("/wide");

    // Every stream is live with a first round (the view exists on both workers).
    let mut produced: Vec<(String, Delivered)> = Vec::new();
    let all: Vec<i32> = (0..PARTITIONS).collect();
    let streams: Vec<Sse> = (0..STREAMS).map(|_| Sse::open(&url)).collect();
    for s in &streams {
        assert_eq!(s.status(WAIT), Some(200));
    }
    produced.extend(round(&producer, &all, "first"));
    for (j, s) in streams.iter().enumerate() {
        let got = s.collect(PARTITIONS as usize, WAIT);
        assert_eq!(got.len(), PARTITIONS as usize, "stream {j}: {got:?}");
    }
    let before = scrape(metrics_port);
    assert_eq!(before.value("sse_kafka_fetch_paused_total", &[]), 0.0);

    // Worker 1 stops; rounds are produced until worker 0's fetching pauses.
    let worker1 = StoppedThread::stop_idle(server.pid(), thread_id(server.pid(), "worker-1"));
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let feeding = fed_by_worker_0("wide");
    let rounds = {
        let (stop, bootstrap) = (stop.clone(), broker.bootstrap());
        thread::spawn(move || {
            // One round at a time: rounds produced faster than worker 0 fetches would share
            // a chunk, and more producers only slow tansu down (measured).
            let producer = Producer::new(&bootstrap);
            let mut out = Vec::new();
            let mut r = 0;
            while !stop.load(Ordering::SeqCst) && r < MAX_ROUNDS {
                out.extend(round(&producer, &feeding, &r.to_string()));
                r += 1;
            }
            out
        })
    };
    // Generous: about 30 s here (tansu takes some 30 ms per round); only a failure waits it out.
    let (paused, at_pause) = wait_metrics(metrics_port, Duration::from_secs(120), |m| {
        m.value("sse_kafka_fetch_paused_total", &[]) > 0.0
    });
    stop.store(true, Ordering::SeqCst);
    produced.extend(rounds.join().expect("producer thread"));
    assert!(
        paused,
        "{} records in {:?} with worker 1 stopped, and no fetch paused (fetches: {}):\n{}",
        produced.len(),
        t0.elapsed(),
        at_pause.value("sse_kafka_fetch_requests_total", &[]),
        at_pause.raw
    );
    eprintln!(
        "paused after {} records in {:?}",
        produced.len(),
        t0.elapsed()
    );

    // Paused: records keep coming, no fetch is sent.
    for r in 0..PAUSED_ROUNDS {
        produced.extend(round(&producer, &all, &format!("paused-{r}")));
    }
    let still = scrape(metrics_port);
    assert_eq!(
        still.value("sse_kafka_fetch_requests_total", &[]),
        at_pause.value("sse_kafka_fetch_requests_total", &[]),
        "fetches went on while the inbox they feed was full"
    );

    // Worker 1 runs again: everything arrives, exactly once, in order per partition.
    drop(worker1);
    let total = produced.len();
    for (j, s) in streams.iter().enumerate() {
        let want = total - PARTITIONS as usize;
        let got = s.collect(want, Duration::from_secs(60));
        assert_eq!(
            got.len(),
            want,
            "stream {j} got {} of {want} after the pause (eof {}; curl: {})",
            got.len(),
            s.is_eof(),
            s.curl_errors()
        );
        assert_exactly_once(&s.received(), &produced);
    }
    let after = scrape(metrics_port);
    assert!(after.value("sse_kafka_fetch_paused_total", &[]) >= 1.0);
    assert!(
        after.value("sse_kafka_fetch_requests_total", &[])
            > still.value("sse_kafka_fetch_requests_total", &[]),
        "fetching resumed"
    );
    eprintln!(
        "fetch_paused {} demoted {}",
        after.value("sse_kafka_fetch_paused_total", &[]),
        after.value("sse_kafka_streams_demoted_total", &[])
    );
}
