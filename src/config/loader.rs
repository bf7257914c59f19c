//! The binding table and chain resolution shared by every binding type: kinds, exits (unknown
//! names, wrong kinds, cycles), routes, memoisation (a binding is read once, its errors reported
//! once, its service shared by every chain that reaches it) and reachability from tcp servers.
//! The per-type readers live in `tcp.rs`, `tls.rs`, `tls_client.rs`, `http.rs`, `sse.rs`,
//! `kafka.rs`, `kafka_security.rs` and `files.rs`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::files::FilesystemRoot;
use super::kafka::KafkaNode;
use super::plan::{
    FileService, Guard, HttpService, KafkaCluster, Listener, SseKafkaService, SseService, TlsPlan,
};
use super::tcp::TcpClient;
use super::yaml::{Cx, Key, Map, Node};

/// A supported binding type and kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    TcpServer,
    TcpClient,
    /// A `tls` server binding.
    Tls,
    /// A `tls` client binding (between a kafka client and its tcp client).
    TlsClient,
    HttpServer,
    SseServer,
    SseKafkaProxy,
    KafkaCacheClient,
    KafkaCacheServer,
    KafkaClient,
    HttpFilesystemProxy,
    FilesystemServer,
}

impl Kind {
    /// The kinds accepted for each binding type; `None`: the type is not supported.
    fn kinds_of(type_name: &str) -> Option<&'static [(&'static str, Kind)]> {
        Some(match type_name {
            "tcp" => &[("server", Kind::TcpServer), ("client", Kind::TcpClient)],
            "tls" => &[("server", Kind::Tls), ("client", Kind::TlsClient)],
            "http" => &[("server", Kind::HttpServer)],
            "sse" => &[("server", Kind::SseServer)],
            "sse-kafka" => &[("proxy", Kind::SseKafkaProxy)],
            "kafka" => &[
                ("cache_client", Kind::KafkaCacheClient),
                ("cache_server", Kind::KafkaCacheServer),
                ("client", Kind::KafkaClient),
            ],
            "http-filesystem" => &[("proxy", Kind::HttpFilesystemProxy)],
            "filesystem" => &[("server", Kind::FilesystemServer)],
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::TcpServer => "a tcp server",
            Kind::TcpClient => "a tcp client",
            Kind::Tls => "a tls server",
            Kind::TlsClient => "a tls client",
            Kind::HttpServer => "an http server",
            Kind::SseServer => "an sse server",
            Kind::SseKafkaProxy => "an sse-kafka proxy",
            Kind::KafkaCacheClient => "a kafka cache_client",
            Kind::KafkaCacheServer => "a kafka cache_server",
            Kind::KafkaClient => "a kafka client",
            Kind::HttpFilesystemProxy => "an http-filesystem proxy",
            Kind::FilesystemServer => "a filesystem server",
        }
    }

    /// How `options`, `routes` and `exit` are treated at the binding level.
    fn binding_keys(self) -> [(&'static str, Key); 3] {
        use Key::{Known, NotSupported};
        let (options, routes, exit) = match self {
            Kind::SseKafkaProxy | Kind::HttpFilesystemProxy => (NotSupported, Known, Known),
            Kind::TcpClient => (Known, Known, NotSupported),
            Kind::FilesystemServer => (Known, NotSupported, NotSupported),
            _ => (Known, Known, Known),
        };
        [("options", options), ("routes", routes), ("exit", exit)]
    }
}

/// One entry of `bindings:`.
pub(super) struct Binding<'y> {
    pub name: String,
    /// `bindings.NAME`.
    pub path: String,
    /// `None` when the type or kind was refused (already reported).
    pub kind: Option<Kind>,
    pub map: Option<Map<'y>>,
}

/// A route of any binding, or the binding-level `exit` as a last route matching everything.
pub(super) struct RouteSpec<'y> {
    /// `bindings.NAME.routes[i]`, or `bindings.NAME` for the binding-level exit.
    pub path: String,
    /// The `when` conditions (ORed); empty matches everything.
    pub when: Vec<Node<'y>>,
    pub exit: Option<Node<'y>>,
    pub with: Option<Node<'y>>,
    /// `guarded: { GUARD: [roles] }`, when the route has it.
    pub guarded: Option<Node<'y>>,
    /// The binding-level `exit`.
    pub is_binding_exit: bool,
}

/// A tls server binding read: its plan and the http service it exits to.
pub(super) type TlsExit = (Arc<TlsPlan>, Arc<HttpService>);

/// Everything read so far, by binding index: each binding is read once.
#[derive(Default)]
pub(super) struct Memo {
    pub http: HashMap<usize, Option<Arc<HttpService>>>,
    pub sse: HashMap<usize, Option<Arc<SseService>>>,
    pub sse_kafka: HashMap<usize, Option<Arc<SseKafkaService>>>,
    pub files: HashMap<usize, Option<Arc<FileService>>>,
    pub filesystems: HashMap<usize, Option<FilesystemRoot>>,
    pub kafka_nodes: HashMap<usize, Option<KafkaNode>>,
    pub kafka_chains: HashMap<usize, Option<Arc<KafkaCluster>>>,
    pub tcp_clients: HashMap<usize, Option<TcpClient>>,
    pub tls: HashMap<usize, Option<TlsExit>>,
    pub tls_clients: HashMap<usize, Option<super::tls_client::TlsClientNode>>,
    /// Deduplicated by kafka client binding index.
    pub clusters: Vec<(usize, Arc<KafkaCluster>)>,
}

pub(super) struct Loader<'y, 'e> {
    pub cx: Cx<'e>,
    /// Relative paths (filesystem `location`) are resolved against this.
    pub base_dir: PathBuf,
    /// Top-level `name:`; exits may be qualified as `NAME:binding`.
    namespace: Option<String>,
    pub bindings: Vec<Binding<'y>>,
    index: HashMap<String, usize>,
    /// Every name declared under `guards:`, refused ones included.
    pub guard_names: Vec<String>,
    /// The guards read without error.
    pub guards: Vec<Arc<Guard>>,
    /// The `inline` guards read without error (kafka client credentials).
    pub inline_guards: Vec<(String, super::guard::InlineGuard)>,
    /// `vaults:` by name.
    pub vaults: super::tls::Vaults,
    /// `catalogs:`, read before the bindings (models name them).
    pub catalogs: Vec<Arc<super::catalog::Catalog>>,
    /// Bindings being read, outermost first: an exit back into this list is a cycle.
    building: Vec<usize>,
    /// Bindings read so far.
    visited: HashSet<usize>,
    pub memo: Memo,
}

/// What the binding table resolves to.
pub(super) struct Resolved {
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Arc<KafkaCluster>>,
}

impl<'y, 'e> Loader<'y, 'e> {
    /// Reads the binding table (types, kinds, binding-level keys) without following exits.
    pub fn new(
        mut cx: Cx<'e>,
        base_dir: PathBuf,
        namespace: Option<String>,
        guards: super::guard::Guards,
        vaults: super::tls::Vaults,
        bindings: &Map<'y>,
    ) -> Loader<'y, 'e> {
        let mut table = Vec::new();
        let mut index = HashMap::new();
        for (name, node) in bindings.entries(&mut cx) {
            let map = node.map(&mut cx);
            let kind = map
                .as_ref()
                .and_then(|map| read_kind(&mut cx, &node.path, map));
            if let (Some(kind), Some(map)) = (kind, &map) {
                check_binding_keys(&mut cx, kind, map);
            }
            index.insert(name.clone(), table.len());
            table.push(Binding {
                name,
                path: node.path,
                kind,
                map,
            });
        }
        Loader {
            cx,
            base_dir,
            namespace,
            bindings: table,
            index,
            guard_names: guards.declared,
            guards: guards.built,
            inline_guards: guards.inline,
            vaults,
            catalogs: Vec::new(),
            building: Vec::new(),
            visited: HashSet::new(),
            memo: Memo::default(),
        }
    }

    /// Follows every chain from the tcp servers, then reads the bindings no listener reaches
    /// (their errors count; they are reported as warnings for being unreachable).
    pub fn resolve(&mut self, bindings_path: &str) -> Resolved {
        let mut listeners: Vec<Listener> = Vec::new();
        let mut servers = 0;
        for idx in 0..self.bindings.len() {
            if self.bindings[idx].kind == Some(Kind::TcpServer) {
                servers += 1;
                self.visited.insert(idx);
                for listener in self.tcp_server(idx) {
                    if let Some(other) = listeners.iter().find(|l| l.addr == listener.addr) {
                        let path = format!("{}.options.port", self.bindings[idx].path);
                        self.cx.error(
                            &path,
                            format!(
                                "{} is already bound by bindings.{}",
                                listener.addr, other.binding
                            ),
                        );
                    } else {
                        listeners.push(listener);
                    }
                }
            }
        }
        let reached = self.visited.clone();
        for idx in 0..self.bindings.len() {
            let Some(kind) = self.bindings[idx].kind else {
                continue;
            };
            if reached.contains(&idx) {
                continue;
            }
            self.read_unreachable(idx, kind);
            let path = self.bindings[idx].path.clone();
            self.cx
                .warn(&path, "not reachable from any tcp server binding; ignored");
        }
        if servers == 0 && self.cx.errors.is_empty() {
            self.cx
                .error(bindings_path, "no tcp server binding: nothing to listen on");
        }
        let clusters = self
            .memo
            .clusters
            .iter()
            .filter(|(client, _)| reached.contains(client))
            .map(|(_, cluster)| cluster.clone())
            .collect();
        Resolved {
            listeners,
            clusters,
        }
    }

    fn read_unreachable(&mut self, idx: usize, kind: Kind) {
        match kind {
            Kind::TcpServer => {}
            Kind::Tls => {
                self.tls_server(idx);
            }
            Kind::TlsClient => {
                self.tls_client(idx);
            }
            Kind::TcpClient => {
                self.tcp_client(idx);
            }
            Kind::HttpServer => {
                self.http_server(idx);
            }
            Kind::SseServer => {
                self.sse_server(idx);
            }
            Kind::SseKafkaProxy => {
                self.sse_kafka_proxy(idx);
            }
            Kind::KafkaCacheClient | Kind::KafkaCacheServer | Kind::KafkaClient => {
                self.kafka_node(idx);
            }
            Kind::HttpFilesystemProxy => {
                self.http_filesystem_proxy(idx);
            }
            Kind::FilesystemServer => {
                self.filesystem_server(idx);
            }
        }
    }

    /// Reads binding `idx` once with `build`; later calls return the same result.
    pub fn memoized<T: Clone>(
        &mut self,
        idx: usize,
        table: fn(&mut Memo) -> &mut HashMap<usize, Option<T>>,
        build: fn(&mut Self, usize) -> Option<T>,
    ) -> Option<T> {
        self.visited.insert(idx);
        if let Some(done) = table(&mut self.memo).get(&idx) {
            return done.clone();
        }
        self.building.push(idx);
        let built = build(self, idx);
        self.building.pop();
        table(&mut self.memo).insert(idx, built.clone());
        built
    }

    /// The binding named by an `exit` (`name` or `NAMESPACE:name`).
    fn lookup(&self, name: &str) -> Option<usize> {
        if let Some(&idx) = self.index.get(name) {
            return Some(idx);
        }
        let (namespace, local) = name.split_once(':')?;
        (self.namespace.as_deref() == Some(namespace))
            .then(|| self.index.get(local).copied())
            .flatten()
    }

    /// Resolves an `exit` node to a binding of one of the `wanted` kinds, reporting unknown
    /// names, cycles and wrong kinds at the exit's path. `None` also for exits into bindings
    /// already refused (their own error stands).
    pub fn exit(&mut self, from: usize, exit: &Node<'y>, wanted: &[Kind]) -> Option<usize> {
        let name = exit.string(&mut self.cx)?;
        let Some(idx) = self.lookup(&name) else {
            self.cx
                .error(&exit.path, format!("unknown binding {name:?}"));
            return None;
        };
        let kind = self.bindings[idx].kind;
        let from_kind = self.bindings[from].kind.map_or("this", Kind::describe);
        let wanted_text: Vec<&str> = wanted.iter().map(|k| k.describe()).collect();
        let wanted_text = wanted_text.join(" or ");
        if let Some(at) = self.building.iter().position(|&b| b == idx) {
            let mut cycle: Vec<&str> = self.building[at..]
                .iter()
                .map(|&b| self.bindings[b].name.as_str())
                .collect();
            cycle.push(&self.bindings[idx].name);
            let mut message = format!("cycle: {}", cycle.join(" → "));
            if kind.is_some_and(|kind| !wanted.contains(&kind)) {
                message.push_str(&format!(
                    " ({from_kind} binding must exit to {wanted_text} binding)"
                ));
            }
            self.cx.error(&exit.path, message);
            return None;
        }
        let kind = kind?;
        if !wanted.contains(&kind) {
            self.cx.error(
                &exit.path,
                format!(
                    "{from_kind} binding must exit to {wanted_text} binding, not {name:?} ({} \
                     binding)",
                    kind.describe()
                ),
            );
            return None;
        }
        Some(idx)
    }

    /// The binding's `routes` in order, then its binding-level `exit` as a last route that
    /// matches everything. `route_keys` lists the keys a route may have besides `when` and
    /// `exit`. Reports a missing exit (`PATH.exit: required`) when `exit_required`.
    pub fn routes(
        &mut self,
        idx: usize,
        route_keys: &[(&str, Key)],
        exit_required: bool,
    ) -> Vec<RouteSpec<'y>> {
        let Some(map) = self.bindings[idx].map.clone() else {
            return Vec::new();
        };
        let mut keys = vec![("when", Key::Known), ("exit", Key::Known)];
        keys.extend_from_slice(route_keys);
        let mut out = Vec::new();
        if let Some(routes) = map.get("routes").and_then(|n| n.list(&mut self.cx)) {
            for route in routes {
                let Some(route_map) = route.map(&mut self.cx) else {
                    continue;
                };
                route_map.check(&mut self.cx, &keys, "unknown key");
                let when = match route_map.get("when") {
                    Some(node) => node.list(&mut self.cx).unwrap_or_default(),
                    None => Vec::new(),
                };
                let exit = if exit_required {
                    route_map.require(&mut self.cx, "exit")
                } else {
                    route_map.get("exit")
                };
                out.push(RouteSpec {
                    path: route.path.clone(),
                    when,
                    exit,
                    with: route_map.get("with"),
                    guarded: route_map.get("guarded"),
                    is_binding_exit: false,
                });
            }
        }
        if let Some(exit) = map.get("exit") {
            out.push(RouteSpec {
                path: map.path.clone(),
                when: Vec::new(),
                exit: Some(exit),
                with: None,
                guarded: None,
                is_binding_exit: true,
            });
        } else if exit_required && map.get("routes").is_none() {
            self.cx.error(&map.key_path("exit"), "required");
        }
        out
    }

    /// The binding's `options` mapping, checked against `spec` (`unknown option` otherwise).
    pub fn options(&mut self, idx: usize, spec: &[(&str, Key)]) -> Option<Map<'y>> {
        let node = self.bindings[idx].map.as_ref()?.get("options")?;
        let map = node.map(&mut self.cx)?;
        map.check(&mut self.cx, spec, "unknown option");
        Some(map)
    }
}

/// `type` and `kind` of a binding; reports unsupported ones.
fn read_kind(cx: &mut Cx, path: &str, map: &Map) -> Option<Kind> {
    let type_name = map.require(cx, "type")?.string(cx)?;
    let _ = path;
    let Some(kinds) = Kind::kinds_of(&type_name) else {
        cx.error(
            &map.key_path("type"),
            format!("binding type {type_name:?} not supported"),
        );
        return None;
    };
    let kind_name = map.require(cx, "kind")?.string(cx)?;
    match kinds.iter().find(|(name, _)| *name == kind_name) {
        Some(&(_, kind)) => Some(kind),
        None => {
            cx.error(
                &map.key_path("kind"),
                format!("kind {kind_name:?} not supported for binding type {type_name:?}"),
            );
            None
        }
    }
}

/// The keys a binding itself may have.
fn check_binding_keys(cx: &mut Cx, kind: Kind, map: &Map) {
    let vault = if matches!(kind, Kind::Tls | Kind::TlsClient) {
        Key::Known
    } else {
        Key::NotSupported
    };
    let mut spec = vec![
        ("type", Key::Known),
        ("kind", Key::Known),
        ("telemetry", Key::Known),
        ("vault", vault),
        ("catalog", Key::NotSupported),
        ("entry", Key::NotSupported),
    ];
    spec.extend(kind.binding_keys());
    map.check(cx, &spec, "unknown key");
    if let Some(telemetry) = map.get("telemetry") {
        cx.warn(
            &telemetry.path,
            "per-binding telemetry is not collected; ignored",
        );
    }
}
