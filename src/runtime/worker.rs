//! Starting and stopping the workers.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use super::drain::DrainSettings;
use super::listener::bind_reuseport;
use crate::auth::keys::Keys;
use crate::config::plan::{DefaultOffset, HttpService, Plan};
use crate::fanout::hub::SharedHub;
use crate::fanout::hub::{flush, Hub, Settings};
use crate::fanout::message::{Mesh, Message, StartHint};
use crate::fanout::owner::bootstrap_topic;
use crate::http::admission::{Admission, Limits};
use crate::http::conn::serve;
use crate::http::h2::serve_h2;
use crate::http::health::Health;
use crate::http::tls::TlsServer;
use crate::kafka::client::ClusterClient;
use crate::metrics::Registry;
use crate::sync::Signal;

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
    start_metrics_and_health(&plan, &opts, &registry, &health)?;
    let per_worker = bind_listeners(&plan, &opts, workers)?;
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
    let clusters = plan
        .clusters
        .iter()
        .map(|c| cluster_spec(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut threads = Vec::new();
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let shared = Shared {
            mesh: mesh.clone(),
            registry: registry.clone(),
            admission: admission.clone(),
            keys: keys.clone(),
            health: health.clone(),
            drain: opts.drain,
        };
        let work = WorkerStart {
            id,
            cpu: pins[id],
            listeners,
            clusters: clusters.clone(),
            settings: opts.settings.clone(),
        };
        threads.push(spawn_worker(work, shared)?);
    }
    for t in threads {
        let _ = t.join();
    }
    crate::info!("stopped");
    Ok(())
}

/// The prometheus exporters of the plan and `--health-listen`.
fn start_metrics_and_health(
    plan: &Plan,
    opts: &Options,
    registry: &Arc<Registry>,
    health: &Arc<Health>,
) -> Result<(), String> {
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
    Ok(())
}

/// Binds every listener once per worker (SO_REUSEPORT), up front so a busy port is reported
/// before anything starts. Port 0 is resolved by the first bind so every worker shares it.
fn bind_listeners(
    plan: &Plan,
    opts: &Options,
    workers: usize,
) -> Result<Vec<Vec<WorkerListener>>, String> {
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
        crate::info!(
            "{} ({}): listening on {addr} ({}), {workers} workers",
            l.binding,
            l.http.binding,
            versions(l.http.http1, l.http.h2, tls.is_some())
        );
    }
    Ok(per_worker)
}

/// What a listener speaks, for its start-up line.
fn versions(http1: bool, h2: bool, tls: bool) -> &'static str {
    match (http1, h2, tls) {
        (true, true, false) => "http/1.1, h2",
        (true, false, false) => "http/1.1",
        (_, _, false) => "h2",
        (true, true, true) => "TLS, http/1.1, h2",
        (true, false, true) => "TLS, http/1.1",
        (_, _, true) => "TLS, h2",
    }
}

/// What the workers need of a configured cluster.
fn cluster_spec(c: &crate::config::plan::KafkaCluster) -> Result<ClusterSpec, String> {
    Ok(ClusterSpec {
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
    })
}

/// What one worker starts with, besides the handles every worker shares.
struct WorkerStart {
    id: usize,
    cpu: usize,
    listeners: Vec<WorkerListener>,
    clusters: Vec<ClusterSpec>,
    settings: Settings,
}

/// A worker's thread: pinned, with its own monoio runtime, running [`worker_main`].
fn spawn_worker(work: WorkerStart, shared: Shared) -> Result<std::thread::JoinHandle<()>, String> {
    let id = work.id;
    std::thread::Builder::new()
        .name(format!("worker-{id}"))
        .spawn(move || {
            if let Err(e) = super::affinity::pin_current_thread(work.cpu) {
                crate::warn!("worker {id}: cannot pin to CPU {}: {e}", work.cpu);
            }
            let mut rt = match build_runtime(id) {
                Ok(rt) => rt,
                Err(e) => {
                    crate::error!("worker {id}: cannot start runtime: {e}");
                    return;
                }
            };
            rt.block_on(worker_main(work, shared));
        })
        .map_err(|e| format!("spawn worker: {e}"))
}

/// io_uring with the epoll fallback, or epoll alone when SSE_KAFKA_IO_DRIVER=epoll (tests of
/// the epoll path). Worker 0 says which driver runs.
fn build_runtime(
    id: usize,
) -> std::io::Result<
    monoio::FusionRuntime<
        monoio::time::TimeDriver<monoio::IoUringDriver>,
        monoio::time::TimeDriver<monoio::LegacyDriver>,
    >,
> {
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
    if id == 0 && built.is_ok() {
        if epoll {
            crate::info!("epoll driver (SSE_KAFKA_IO_DRIVER=epoll)");
        } else if monoio::utils::detect_uring() {
            crate::info!("io_uring driver");
        } else {
            crate::warn!("io_uring unavailable: using the epoll driver");
        }
    }
    built
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

/// A worker: its hub, the bootstrap topics, the inbox and the clock tick, its listeners; then
/// it waits for the drain to end.
async fn worker_main(work: WorkerStart, shared: Shared) {
    let WorkerStart {
        id,
        listeners,
        clusters,
        settings,
        ..
    } = work;
    let clients = clusters
        .iter()
        .map(|c| {
            ClusterClient::new(
                c.name.clone(),
                c.servers.clone(),
                c.security.clone(),
                shared.registry.workers[id].clone(),
            )
        })
        .collect();
    let metadata_timeout = settings.metadata_timeout;
    let hub = Hub::new(
        id,
        shared.mesh.clone(),
        clients,
        settings,
        shared.registry.clone(),
        shared.keys.clone(),
    );
    if id == 0 {
        let clients = hub.borrow().clusters.clone();
        monoio::spawn(crate::http::health::probe(
            shared.health.clone(),
            clients,
            metadata_timeout,
        ));
    }
    for (index, c) in clusters.iter().enumerate() {
        for (topic, hint) in &c.bootstrap {
            monoio::spawn(bootstrap_topic(hub.clone(), index, topic.clone(), *hint));
        }
    }
    monoio::spawn(inbox_loop(id, hub.clone(), shared.mesh.clone()));
    monoio::spawn(tick_loop(hub.clone()));
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
        let tls = l.tls.clone().map(|config| Rc::new(TlsServer::new(config)));
        let accept = Accept {
            listener,
            addr: l.addr,
            http: l.http,
            tls,
            hub: hub.clone(),
            admission: shared.admission.clone(),
        };
        monoio::spawn(accept_loop(accept, shutdown.clone()));
    }
    shared.health.worker_listening();
    super::drain::run(hub, shutdown, shared.drain).await;
}

/// Messages from other workers, handled in arrival order: one turn per wake-up, every message
/// handled, then one flush.
async fn inbox_loop(id: usize, hub: SharedHub, mesh: Arc<Mesh>) {
    let mut batch = Vec::with_capacity(256);
    loop {
        mesh.recv_all(id, &mut batch).await;
        for m in batch.drain(..) {
            hub.borrow_mut().handle(m);
        }
        flush(&hub);
    }
}

/// The clock tick: heartbeats and idle views.
async fn tick_loop(hub: SharedHub) {
    loop {
        monoio::time::sleep(Duration::from_secs(1)).await;
        hub.borrow_mut().tick(crate::clock::wall_secs());
        flush(&hub);
    }
}

/// One listener of one worker.
struct Accept {
    listener: TcpListener,
    addr: SocketAddr,
    http: Arc<HttpService>,
    tls: Option<Rc<TlsServer>>,
    hub: SharedHub,
    admission: Arc<Admission>,
}

/// Accepts until `shutdown` is set; each connection is served on its own task.
async fn accept_loop(a: Accept, shutdown: Signal<()>) {
    loop {
        monoio::select! {
            _ = shutdown.wait() => return,
            accepted = a.listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_connection(&a, stream, peer),
                Err(e) => {
                    crate::warn!("accept on {}: {e}", a.addr);
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

fn spawn_connection(a: &Accept, stream: monoio::net::TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let (http, hub, admission) = (a.http.clone(), a.hub.clone(), a.admission.clone());
    match &a.tls {
        None => {
            monoio::spawn(serve(stream, fd, false, peer, http, hub, admission));
        }
        Some(tls) => {
            monoio::spawn(serve_tls(
                tls.clone(),
                stream,
                fd,
                peer,
                http,
                hub,
                admission,
            ));
        }
    }
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
