//! Health for orchestrators and load balancers: `GET /health/live` (200 while the process
//! runs, draining included) and `GET /health/ready` (200 when every listener accepts, every
//! Kafka cluster answered metadata within the timeout at its last probe, and the process is not
//! draining; else 503), each with a short JSON body saying why. Served on `--health-listen` and
//! on the prometheus exporter's listener.
//!
//! The state is a handful of atomics written by the workers (listeners up, probe results) and
//! the signal thread (draining); the health threads only read them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::admission::Admission;
use crate::kafka::client::ClusterClient;
use crate::metrics::serve::{start_http, Reply};

/// How often a cluster is probed (one Metadata request without topics).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

const UNKNOWN: u8 = 0;
const REACHABLE: u8 = 1;
const UNREACHABLE: u8 = 2;

pub struct Health {
    workers: usize,
    listening: AtomicUsize,
    clusters: Vec<(String, AtomicU8)>,
    admission: Arc<Admission>,
}

impl Health {
    pub fn new(workers: usize, clusters: Vec<String>, admission: Arc<Admission>) -> Arc<Self> {
        Arc::new(Self {
            workers,
            listening: AtomicUsize::new(0),
            clusters: clusters
                .into_iter()
                .map(|c| (c, AtomicU8::new(UNKNOWN)))
                .collect(),
            admission,
        })
    }

    /// A worker's listeners are accepting.
    pub fn worker_listening(&self) {
        self.listening.fetch_add(1, Ordering::AcqRel);
    }

    pub fn set_reachable(&self, cluster: usize, reachable: bool) {
        if let Some((_, state)) = self.clusters.get(cluster) {
            state.store(
                if reachable { REACHABLE } else { UNREACHABLE },
                Ordering::Release,
            );
        }
    }

    /// `Ok` when ready, else why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.admission.draining() {
            return Err("draining".into());
        }
        if self.listening.load(Ordering::Acquire) < self.workers {
            return Err("starting: listeners not up yet".into());
        }
        for (name, state) in &self.clusters {
            match state.load(Ordering::Acquire) {
                REACHABLE => {}
                UNKNOWN => return Err(format!("starting: kafka cluster {name} not reached yet")),
                _ => return Err(format!("kafka cluster {name} unreachable")),
            }
        }
        Ok(())
    }

    /// The answer to a health path, or `None` for any other path.
    pub fn answer(&self, path: &[u8]) -> Option<Reply> {
        const JSON: &str = "application/json";
        match path {
            b"/health/live" => Some((
                "200 OK",
                JSON,
                if self.admission.draining() {
                    "{\"status\":\"live\",\"draining\":true}\n".into()
                } else {
                    "{\"status\":\"live\"}\n".into()
                },
            )),
            b"/health/ready" => Some(match self.ready() {
                Ok(()) => ("200 OK", JSON, "{\"status\":\"ready\"}\n".into()),
                Err(why) => (
                    "503 Service Unavailable",
                    JSON,
                    format!(
                        "{{\"status\":\"not ready\",\"reason\":{}}}\n",
                        json_string(&why)
                    ),
                ),
            }),
            _ => None,
        }
    }
}

/// A JSON string literal (reasons hold binding names from the config).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--health-listen` listener.
pub fn start(addr: SocketAddr, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    start_http(addr, "health", move |path| {
        health
            .answer(path)
            .unwrap_or(("404 Not Found", "text/plain", String::new()))
    })
}

/// Probes every cluster, forever (run by one worker): a cluster is reachable when it answers
/// metadata within `timeout`.
pub async fn probe(
    health: Arc<Health>,
    clients: Vec<std::rc::Rc<ClusterClient>>,
    timeout: Duration,
) {
    loop {
        for (i, client) in clients.iter().enumerate() {
            let ok = matches!(
                monoio::time::timeout(timeout, client.probe()).await,
                Ok(Ok(()))
            );
            health.set_reachable(i, ok);
        }
        monoio::time::sleep(PROBE_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::admission::Limits;

    #[test]
    fn readiness_in_each_state() {
        let admission = Admission::new(Limits {
            max_streams: 0,
            max_streams_per_ip: 0,
            shed_retry_ms: 1000,
        });
        let h = Health::new(2, vec!["k".into()], admission.clone());
        assert!(h.ready().unwrap_err().starts_with("starting"));
        h.worker_listening();
        h.worker_listening();
        assert!(h.ready().unwrap_err().contains("not reached yet"));
        h.set_reachable(0, false);
        assert_eq!(h.ready().unwrap_err(), "kafka cluster k unreachable");
        h.set_reachable(0, true);
        assert_eq!(h.ready(), Ok(()));
        assert_eq!(h.answer(b"/health/ready").unwrap().0, "200 OK");
        admission.begin_drain();
        assert_eq!(h.ready().unwrap_err(), "draining");
        let (status, _, body) = h.answer(b"/health/ready").unwrap();
        assert_eq!(status, "503 Service Unavailable");
        assert_eq!(body, "{\"status\":\"not ready\",\"reason\":\"draining\"}\n");
        assert_eq!(h.answer(b"/health/live").unwrap().0, "200 OK");
        assert!(h.answer(b"/other").is_none());
    }
}
