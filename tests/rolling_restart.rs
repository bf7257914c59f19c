//! Scale-out proved (issue 12, point 6): two instances behind Debian's haproxy (round robin,
//! HTTP mode, health checks on `/health/ready`), clients reading a 3-partition topic while
//! records keep coming. One instance drains (SIGTERM) and restarts, then the other; every
//! client resumes by id on whichever instance it reaches. Checked per client and per partition:
//! the sequence numbers in the record values are exactly 0, 1, 2, … with nothing lost,
//! repeated or reordered.

mod common;
use common::resumer::Resumer;
use common::*;
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const TOPIC: &str = "roll";
const PARTITIONS: i32 = 3;
const CLIENTS: usize = 6;

struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(front: u16, backends: &[(u16, u16)]) -> Haproxy {
        let bin = find_program("haproxy")
            .or_else(|| {
                Some("/usr/sbin/haproxy".into()).filter(|p: &std::path::PathBuf| p.exists())
            })
            .expect("haproxy not found: `apt-get install haproxy` (Debian)");
        let dir = tempfile::tempdir().unwrap();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, (port, health))| {
                format!("    server s{i} 127.0.0.1:{port} check port {health}\n")
            })
            .collect();
        // SSE-friendly: idle timeouts well above the heartbeat (15 s), no buffering of the
        // response, a failed connect retried on the other server.
        let cfg = format!(
            "global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:{front}
    default_backend sse
backend sse
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = spawn_listening(
            Command::new(bin).arg("-db").arg("-f").arg(&path),
            &format!("127.0.0.1:{front}"),
        );
        Haproxy { child, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Instance {
    port: u16,
    health: u16,
    kafka: String,
}

impl Instance {
    fn start(&self) -> Server {
        let server = Server::builder(self.port)
            .args([
                "--kafka",
                &self.kafka,
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--health-listen",
                &format!("127.0.0.1:{}", self.health),
                "--workers",
                "2",
                "--drain-grace",
                "1",
                "--drain-timeout",
                "4",
                "--shed-retry-ms",
                "300",
            ])
            .start();
        assert!(
            wait_until(WAIT, || http_get(self.health, "/health/ready")
                .is_some_and(|r| r.0 == 200)),
            "instance on {} never ready",
            self.port
        );
        server
    }
}

/// (partition, seq) from a `{"src":P,"seq":N}` value.
fn src_seq(data: &str) -> (i32, u64) {
    let num = |key: &str| -> u64 {
        let at = data.find(key).unwrap_or_else(|| panic!("{key} in {data}")) + key.len();
        data[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (num("\"src\":") as i32, num("\"seq\":"))
}

#[test]
fn clients_resume_across_a_rolling_restart_behind_haproxy() {
    let broker = Broker::with_empty_topic(TOPIC, PARTITIONS);
    let instances = [
        Instance {
            port: free_port(),
            health: free_port(),
            kafka: broker.bootstrap(),
        },
        Instance {
            port: free_port(),
            health: free_port(),
            kafka: broker.bootstrap(),
        },
    ];
    let mut servers: Vec<Server> = instances.iter().map(Instance::start).collect();
    let front = free_port();
    let _lb = Haproxy::start(
        front,
        &instances
            .iter()
            .map(|i| (i.port, i.health))
            .collect::<Vec<_>>(),
    );
    let lb = format!("127.0.0.1:{front}");

    // Steady traffic: one record per partition every 20 ms, per-partition sequence numbers.
    let stop = Arc::new(AtomicBool::new(false));
    let produced: Arc<Mutex<[u64; PARTITIONS as usize]>> = Arc::default();
    let producer = {
        let (stop, produced, bootstrap) = (stop.clone(), produced.clone(), broker.bootstrap());
        thread::spawn(move || {
            let producer = Producer::new(&bootstrap);
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for p in 0..PARTITIONS {
                    producer.send_value(TOPIC, Some(p), &format!("{{\"src\":{p},\"seq\":{seq}}}"));
                    produced.lock().unwrap()[p as usize] = seq + 1;
                }
                seq += 1;
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let clients: Vec<Resumer> = (0..CLIENTS)
        .map(|_| Resumer::start(&lb, &format!("/{TOPIC}")))
        .collect();
    let progress = |clients: &[Resumer], at_least: &[usize]| {
        wait_until(WAIT + WAIT, || {
            clients.iter().zip(at_least).all(|(c, &n)| c.count() > n)
        })
    };
    assert!(
        progress(&clients, &[30; CLIENTS]),
        "clients are not streaming"
    );

    for (i, instance) in instances.iter().enumerate() {
        let before: Vec<usize> = clients.iter().map(Resumer::count).collect();
        let (status, took) = servers[i].stop_with(libc::SIGTERM, WAIT);
        let status = status.unwrap_or_else(|| panic!("instance {i} did not exit"));
        assert!(status.success(), "instance {i} exit status {status}");
        eprintln!("instance {i} drained in {took:?}");
        servers[i] = instance.start();
        // Everyone streams again (those that were on the drained instance moved).
        let moved: Vec<usize> = clients.iter().map(Resumer::count).collect();
        assert!(
            progress(&clients, &moved),
            "clients stalled after restarting instance {i} (counts before the drain {before:?})"
        );
    }

    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    let totals = *produced.lock().unwrap();
    let want: usize = totals.iter().sum::<u64>() as usize;
    assert!(
        wait_until(WAIT + WAIT, || clients.iter().all(|c| c.count() >= want)),
        "not every client caught up to {want}: {:?}",
        clients.iter().map(Resumer::count).collect::<Vec<_>>()
    );
    thread::sleep(Duration::from_millis(300)); // a duplicate would arrive now
    let mut connects = 0;
    for (n, c) in clients.iter().enumerate() {
        let mut per: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
        for (_, data) in c.events() {
            let (p, seq) = src_seq(&data);
            per.entry(p).or_default().push(seq);
        }
        for p in 0..PARTITIONS {
            let got = per.remove(&p).unwrap_or_default();
            let expected: Vec<u64> = (0..totals[p as usize]).collect();
            assert!(
                got == expected,
                "client {n} partition {p}: {} events, want {}; first difference at {:?}",
                got.len(),
                expected.len(),
                got.iter().zip(&expected).position(|(a, b)| a != b)
            );
        }
        assert!(per.is_empty(), "client {n}: unknown partitions {per:?}");
        assert!(
            c.connects() >= 2,
            "client {n} never moved ({} connects)",
            c.connects()
        );
        connects += c.connects();
    }
    eprintln!(
        "{CLIENTS} clients, {want} events each, exactly once and in order; {connects} connections in all"
    );
}
