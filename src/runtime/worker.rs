//! Starting and stopping the workers.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use super::drain::DrainSettings;
use super::listener::bind_reuseport;
use super::mesh::Mesh;
use super::signal::Signal;
use crate::auth::keys::Keys;
use crate::config::plan::{DefaultOffset, HttpService, Plan};
use crate::fanout::hub::SharedHub;
use crate::fanout::hub::{flush, Hub, Settings};
use crate::fanout::message::{Message, StartHint};
use crate::fanout::owner::bootstrap_topic;
use crate::http::admission::{Admission, Limits};
use crate::http::conn::serve;
use crate::http::h2::serve_h2;
use crate::http::health::Health;
use crate::http::tls::TlsServer;
use crate::kafka::client::ClusterClient;
use crate::metrics::Registry;

pub struct Options {
    pub workers: usize,
    pub settings: Settings,
    pub limits: Limits,
    /// How often a guard's JWKS URL is read again.
    pub jwks_refresh: Duration,
    /// Roots for https JWKS URLs instead of the Mozilla set (`--jwks-ca`).
    pub jwks_ca: Option<std::path::PathBuf>,
    /// TLS for every listener (the `--tls-cert`/`--tls-key` options).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// SIGTERM drain timings (`--drain-grace`, `--drain-timeout`, `--shed-retry-ms`).
    pub drain: DrainSettings,
    /// `--health-listen`: a listener for `/health/live` and `/health/ready` alone.
    pub health_listen: Option<SocketAddr>,
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a worker needs of a cluster (the plan itself stays on the main thread).
#[derive(Clone)]
struct ClusterSpec {
    name: String,
    servers: Vec<String>,
    bootstrap: Vec<(String, StartHint)>,
    security: Arc<crate::kafka::security::Security>,
}

struct WorkerListener {
    addr: SocketAddr,
    http: Arc<HttpService>,
    socket: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Binds every listener for every worker, starts the workers and blocks until they exit.
pub fn run(plan: Plan, opts: Options) -> Result<(), String> {
    let workers = opts.workers.max(1);
    let mesh = Mesh::new(workers);
    let registry = Registry::new(workers);
    let admission = Admission::new(opts.limits);
    let health = Health::new(
        workers,
        plan.clusters.iter().map(|c| c.binding.clone()).collect(),
        admission.clone(),
    );
    // Metrics and health first, so they answer by the time a listener says it is ready.
    for endpoint in &plan.prometheus {
        let addr = SocketAddr::from(([0, 0, 0, 0], endpoint.port));
        let bound = crate::metrics::serve::start(
            addr,
            endpoint.path.clone(),
            registry.clone(),
            health.clone(),
        )
        .map_err(|e| format!("prometheus exporter: bind {addr}: {e}"))?;
        crate::info!("metrics on http://{bound}{}", endpoint.path);
    }
    if let Some(addr) = opts.health_listen {
        let bound = crate::http::health::start(addr, health.clone())
            .map_err(|e| format!("--health-listen: bind {addr}: {e}"))?;
        crate::info!("health on http://{bound}/health/live and /health/ready");
    }
    // Bind up front so a busy port is reported before anything starts. Port 0 is resolved by
    // the first bind so every worker shares the same port.
    let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
    for l in &plan.listeners {
        let tls = match &l.tls {
            Some(plan) => Some(
                crate::http::tls::from_plan(plan)
                    .map_err(|e| format!("bindings.{}: {e}", plan.binding))?,
            ),
            None => opts.tls.clone(),
        };
        let mut addr = l.addr;
        for bucket in per_worker.iter_mut() {
            let socket =
                bind_reuseport(addr).map_err(|e| format!("{}: bind {addr}: {e}", l.binding))?;
            addr = socket.local_addr().map_err(|e| e.to_string())?;
            bucket.push(WorkerListener {
                addr,
                http: l.http.clone(),
                socket,
                tls: tls.clone(),
            });
        }
        let versions = match (l.http.http1, l.http.h2, tls.is_some()) {
            (true, true, false) => "http/1.1, h2",
            (true, false, false) => "http/1.1",
            (_, _, false) => "h2",
            (true, true, true) => "TLS, http/1.1, h2",
            (true, false, true) => "TLS, http/1.1",
            (_, _, true) => "TLS, h2",
        };
        crate::info!(
            "{} ({}): listening on {addr} ({versions}), {workers} workers",
            l.binding,
            l.http.binding
        );
    }

    let jwks = crate::auth::jwks::JwksClient::new(opts.jwks_ca.as_deref())
        .map_err(|e| format!("--jwks-ca: {e}"))?;
    let keys = Keys::start(&plan.guards, opts.jwks_refresh, &jwks)?;
    install_signals(mesh.clone(), admission.clone())?;
    let cpus = super::affinity::allowed_cpus();
    let pins: Vec<usize> = (0..workers).map(|id| cpus[id % cpus.len()]).collect();
    crate::info!(
        "{workers} workers pinned to CPUs {} (allowed: {})",
        join(&pins),
        join(&cpus)
    );
    let mut clusters: Vec<ClusterSpec> = Vec::with_capacity(plan.clusters.len());
    for c in &plan.clusters {
        clusters.push(ClusterSpec {
            security: crate::kafka::security::Security::from_plan(c)?,
            name: c.binding.clone(),
            servers: c.servers.clone(),
            bootstrap: c
                .bootstrap
                .iter()
                .map(|t| {
                    let hint = match c.default_offset(t) {
                        DefaultOffset::Historical => StartHint::Earliest,
                        DefaultOffset::Live => StartHint::Latest,
                    };
                    (t.clone(), hint)
                })
                .collect(),
        });
    }
    let mut threads = Vec::new();
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let mesh = mesh.clone();
        let clusters = clusters.clone();
        let settings = opts.settings.clone();
        let registry = registry.clone();
        let admission = admission.clone();
        let keys = keys.clone();
        let health = health.clone();
        let drain = opts.drain;
        let cpu = pins[id];
        let t = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                if let Err(e) = super::affinity::pin_current_thread(cpu) {
                    crate::warn!("worker {id}: cannot pin to CPU {cpu}: {e}");
                }
                // SSE_KAFKA_IO_DRIVER=epoll forces the fallback driver (tests of the epoll path).
                let epoll = std::env::var_os("SSE_KAFKA_IO_DRIVER").is_some_and(|v| v == "epoll");
                let built = if epoll {
                    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .build()
                        .map(Into::into)
                } else {
                    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                        .enable_timer()
                        .build()
                };
                let mut rt = match built {
                    Ok(rt) => rt,
                    Err(e) => {
                        crate::error!("worker {id}: cannot start runtime: {e}");
                        return;
                    }
                };
                if id == 0 {
                    if epoll {
                        crate::info!("epoll driver (SSE_KAFKA_IO_DRIVER=epoll)");
                    } else if monoio::utils::detect_uring() {
                        crate::info!("io_uring driver");
                    } else {
                        crate::warn!("io_uring unavailable: using the epoll driver");
                    }
                }
                let shared = Shared {
                    mesh,
                    registry,
                    admission,
                    keys,
                    health,
                    drain,
                };
                rt.block_on(worker_main(id, listeners, clusters, settings, shared));
            })
            .map_err(|e| format!("spawn worker: {e}"))?;
        threads.push(t);
    }
    for t in threads {
        let _ = t.join();
    }
    crate::info!("stopped");
    Ok(())
}

/// What every worker holds a handle to.
struct Shared {
    mesh: Arc<Mesh>,
    registry: Arc<Registry>,
    admission: Arc<Admission>,
    keys: Arc<Keys>,
    health: Arc<Health>,
    drain: DrainSettings,
}

async fn worker_main(
    id: usize,
    listeners: Vec<WorkerListener>,
    clusters: Vec<ClusterSpec>,
    settings: Settings,
    shared: Shared,
) {
    let Shared {
        mesh,
        registry,
        admission,
        keys,
        health,
        drain,
    } = shared;
    let clients = clusters
        .iter()
        .map(|c| {
            ClusterClient::new(
                c.name.clone(),
                c.servers.clone(),
                c.security.clone(),
                registry.workers[id].clone(),
            )
        })
        .collect();
    let metadata_timeout = settings.metadata_timeout;
    let hub = Hub::new(id, mesh.clone(), clients, settings, registry, keys);
    if id == 0 {
        let clients = hub.borrow().clusters.clone();
        monoio::spawn(crate::http::health::probe(
            health.clone(),
            clients,
            metadata_timeout,
        ));
    }
    for (index, c) in clusters.iter().enumerate() {
        for (topic, hint) in &c.bootstrap {
            monoio::spawn(bootstrap_topic(hub.clone(), index, topic.clone(), *hint));
        }
    }

    // Inbox: messages from other workers, handled in arrival order.
    {
        let hub = hub.clone();
        let mesh = mesh.clone();
        monoio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            loop {
                mesh.recv_all(id, &mut batch).await;
                // One turn per wake-up: every message handled, then one flush.
                for m in batch.drain(..) {
                    hub.borrow_mut().handle(m);
                }
                flush(&hub);
            }
        });
    }
    // Clock tick: heartbeats and idle views.
    {
        let hub = hub.clone();
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(Duration::from_secs(1)).await;
                hub.borrow_mut().tick(crate::clock::wall_secs());
                flush(&hub);
            }
        });
    }
    // Set by the drain once its grace has passed: the listeners stop accepting.
    let shutdown: Signal<()> = Signal::new();
    for l in listeners {
        let listener = match TcpListener::from_std(l.socket) {
            Ok(s) => s,
            Err(e) => {
                crate::error!("worker {id}: listener {}: {e}", l.addr);
                continue;
            }
        };
        let hub = hub.clone();
        let shutdown = shutdown.clone();
        let admission = admission.clone();
        let tls = l.tls.clone().map(|config| Rc::new(TlsServer::new(config)));
        monoio::spawn(async move {
            loop {
                monoio::select! {
                    _ = shutdown.wait() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            let fd = stream.as_raw_fd();
                            let (http, hub, admission) = (l.http.clone(), hub.clone(), admission.clone());
                            match &tls {
                                None => {
                                    monoio::spawn(serve(stream, fd, false, peer, http, hub, admission));
                                }
                                Some(tls) => {
                                    monoio::spawn(serve_tls(tls.clone(), stream, fd, peer, http, hub, admission));
                                }
                            }
                        }
                        Err(e) => {
                            crate::warn!("accept on {}: {e}", l.addr);
                            monoio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        });
    }
    health.worker_listening();
    super::drain::run(hub, shutdown, drain).await;
}

/// The TLS handshake, then HTTP/2 when ALPN chose it, else HTTP/1.1. A failed handshake (or a
/// client speaking plain HTTP to the TLS port) closes this connection only.
async fn serve_tls(
    tls: Rc<TlsServer>,
    stream: monoio::net::TcpStream,
    fd: std::os::fd::RawFd,
    peer: SocketAddr,
    http: Arc<HttpService>,
    hub: SharedHub,
    admission: Arc<Admission>,
) {
    match tls.accept(stream, HANDSHAKE_TIMEOUT).await {
        Ok((stream, true)) if http.h2 => {
            serve_h2(stream, fd, Vec::new(), peer, http, hub, admission).await
        }
        Ok((stream, _)) if http.http1 => serve(stream, fd, true, peer, http, hub, admission).await,
        Ok(_) => {
            crate::debug!("TLS from {peer}: ALPN chose a version this listener does not serve")
        }
        Err(e) => crate::debug!("TLS handshake with {peer}: {e}"),
    }
}

fn install_signals(mesh: Arc<Mesh>, admission: Arc<Admission>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("signals: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen > 1 {
                    crate::warn!("second signal {sig}: exiting now");
                    std::process::exit(1);
                }
                crate::info!("signal {sig}: draining");
                // Readiness false and every new stream shed, at once, in every worker.
                admission.begin_drain();
                for w in 0..mesh.workers() {
                    let mut msg = Message::Shutdown;
                    while let Err(back) = mesh.try_send(w, msg) {
                        msg = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        })
        .map_err(|e| format!("spawn signal thread: {e}"))?;
    Ok(())
}

fn join(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
