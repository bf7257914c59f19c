//! Several workers: every topic-partition is fetched by one worker and shared with the
//! streams of the others (issue 2, point 4). With `--workers 2`, 4 partitions and 40
//! connections spread by SO_REUSEPORT, streams whose partitions are owned by the other worker
//! are all but certain (every one of 40 connections landing on one worker has a chance of
//! about 2^-39).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn many_streams_over_two_workers_get_everything() {
    let (broker, producer) = Broker::with_topic("spread", 4);
    let server = Zilla::any_topic(&broker.bootstrap()).start(&["--workers", "2"]);
    let before = produce_spread(&producer, "spread", 4, 3, "before");
    let urls: Vec<String> = (0..40).map(|_| server.url("/spread")).collect();
    let fleet = CurlFleet::open(&urls, 40);
    fleet.wait_all(before.len(), WAIT).unwrap();
    let after = produce_spread(&producer, "spread", 4, 3, "after");
    let all: Vec<_> = before.into_iter().chain(after).collect();
    fleet.wait_all(all.len(), WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // let any duplicate show up
    for i in 0..fleet.n {
        assert_exactly_once(&fleet.events(i), &all);
    }
    assert!(server.logs().contains("listening on"));
}

/// `--workers 1` works too (everything on one thread).
#[test]
fn one_worker() {
    let (broker, producer) = Broker::with_topic("solo", 2);
    let server = Server::direct(&broker.bootstrap(), &["--workers", "1"]);
    let all = produce_spread(&producer, "solo", 2, 3, "v");
    let a = Sse::open(&server.url("/solo"));
    let b = Sse::open(&server.url("/solo"));
    assert_exactly_once(&a.expect(all.len(), WAIT), &all);
    assert_exactly_once(&b.expect(all.len(), WAIT), &all);
}

/// The CPUs this test process may use (`sched_getaffinity`), in increasing order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t sized as the kernel expects; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// (thread name, Cpus_allowed_list) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task") {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        out.push((field("Name:"), field("Cpus_allowed_list:")));
    }
    out
}

/// Under `taskset -c CPU` the server starts one worker (the default is one per allowed CPU)
/// pinned to that CPU: the one it may use, not CPU `worker id % cores`.
#[test]
fn one_worker_per_allowed_cpu_pinned_to_it() {
    let last = *allowed_cpus().last().expect("some CPU");
    let mut cpus = vec![0];
    if last != 0 {
        cpus.push(last);
    }
    for cpu in cpus {
        let port = free_port();
        let server = Server::builder(port)
            .launcher(&["taskset", "-c", &cpu.to_string()])
            .args(["--kafka", &format!("127.0.0.1:{}", free_port())])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .start();
        let line = format!("1 workers pinned to CPUs {cpu} (allowed: {cpu})");
        server.expect_log(&format!("taskset -c {cpu}"), |l| l.contains(&line));
        let logs = server.logs();
        assert!(!logs.contains("cannot pin"), "{logs}");
        // The workers start after the listeners are bound and logged.
        let mut threads = Vec::new();
        wait_until(WAIT, || {
            threads = self::threads(server.pid());
            threads.iter().any(|(n, _)| n.starts_with("worker-"))
        });
        let workers: Vec<&(String, String)> = threads
            .iter()
            .filter(|(n, _)| n.starts_with("worker-"))
            .collect();
        assert_eq!(workers.len(), 1, "taskset -c {cpu}: {threads:?}");
        assert_eq!(
            workers[0].1,
            cpu.to_string(),
            "worker-0 pinned to CPU {cpu}"
        );
    }
}
