//! `kafka` bindings (`cache_client` → `cache_server` → `client`, or `client` alone) resolved
//! into one [`KafkaCluster`] per kafka client binding.

use std::sync::Arc;

use super::loader::{Kind, Loader};
use super::pattern::Glob;
use super::plan::{
    DefaultOffset, KafkaCluster, ModelConfig, SaslPlan, TlsClientPlan, TopicOptions,
};
use super::yaml::{Key, Map, Node};

/// One kafka binding, read once.
#[derive(Clone, Debug)]
pub(super) struct KafkaNode {
    kind: Kind,
    /// The exit binding (kind checked).
    next: Option<usize>,
    /// Topic globs of the routes; `None`: every topic (a binding exit or a route without `when`).
    allowed: Option<Vec<Glob>>,
    /// cache_server `options.bootstrap`.
    bootstrap: Vec<String>,
    /// cache_server `options.topics`.
    topics: Vec<TopicOptions>,
    /// client `options.servers` (or the tcp client's `host:port`).
    servers: Vec<String>,
    /// client `options.authorization` / `options.sasl`.
    sasl: Option<Arc<SaslPlan>>,
    /// client exit through a `tls` client binding.
    tls: Option<Arc<TlsClientPlan>>,
}

/// Zilla's kafka options, shared by all kinds in its schema; each kind reads its own.
const KAFKA_OPTIONS: [&str; 7] = [
    "bootstrap",
    "topics",
    "servers",
    "sasl",
    "authorization",
    "merged",
    "catalog",
];

fn options_spec(kind: Kind) -> Vec<(&'static str, Key)> {
    KAFKA_OPTIONS
        .iter()
        .map(|&key| {
            let rule = match (kind, key) {
                (Kind::KafkaCacheClient, "topics")
                | (Kind::KafkaCacheServer, "bootstrap" | "topics")
                | (Kind::KafkaClient, "servers" | "sasl" | "authorization") => Key::Known,
                _ => Key::NotSupported,
            };
            (key, rule)
        })
        .collect()
}

impl<'y, 'e> Loader<'y, 'e> {
    /// A kafka binding of any kind, read once (with everything after it in its chain).
    pub fn kafka_node(&mut self, idx: usize) -> Option<KafkaNode> {
        self.memoized(idx, |memo| &mut memo.kafka_nodes, Self::build_kafka_node)
    }

    fn build_kafka_node(&mut self, idx: usize) -> Option<KafkaNode> {
        let kind = self.bindings[idx].kind?;
        let options = self.options(idx, &options_spec(kind));
        let mut node = KafkaNode {
            kind,
            next: None,
            allowed: None,
            bootstrap: Vec::new(),
            topics: Vec::new(),
            servers: Vec::new(),
            sasl: None,
            tls: None,
        };
        if let Some(options) = &options {
            self.read_kafka_options(idx, kind, options, &mut node);
        }
        let (allowed, next) = self.kafka_routes(idx, kind);
        node.allowed = allowed;
        node.next = next;
        match (kind, node.next) {
            (Kind::KafkaClient, next) => {
                let fallback = self.kafka_client_transport(next, &mut node);
                let servers_given = options.as_ref().is_some_and(|o| o.get("servers").is_some());
                if node.servers.is_empty() {
                    match fallback {
                        Some(server) => node.servers.push(server),
                        None if servers_given => {}
                        None => {
                            let path = format!("{}.options.servers", self.bindings[idx].path);
                            self.cx.error(&path, "required");
                        }
                    }
                }
            }
            (_, Some(next)) => {
                self.kafka_node(next);
            }
            (_, None) => {}
        }
        Some(node)
    }

    /// `options.topics`, `bootstrap`, `servers`, and a client's `sasl`.
    fn read_kafka_options(
        &mut self,
        idx: usize,
        kind: Kind,
        options: &Map<'y>,
        node: &mut KafkaNode,
    ) {
        if let Some(topics) = options.get("topics") {
            node.topics = self.kafka_topics(kind, &topics);
        }
        if let Some(bootstrap) = options.get("bootstrap") {
            node.bootstrap = bootstrap.strings(&mut self.cx).unwrap_or_default();
        }
        if let Some(servers) = options.get("servers") {
            node.servers = read_servers(self, &servers);
        }
        if kind == Kind::KafkaClient {
            node.sasl = self.kafka_sasl(idx, options);
        }
    }

    /// The routes: the topics they allow (`None`: every topic, when there are no routes or a
    /// route, or the binding exit, has no `when`; else the union of their topics) and the one
    /// binding they all lead to.
    fn kafka_routes(&mut self, idx: usize, kind: Kind) -> (Option<Vec<Glob>>, Option<usize>) {
        let specs = self.routes(
            idx,
            &[
                ("guarded", Key::NotSupportedYet),
                ("with", Key::NotSupported),
            ],
            kind != Kind::KafkaClient,
        );
        let wanted: &[Kind] = match kind {
            Kind::KafkaCacheClient => &[Kind::KafkaCacheServer],
            Kind::KafkaCacheServer => &[Kind::KafkaClient],
            _ => &[Kind::TcpClient, Kind::TlsClient],
        };
        let mut allowed = (!specs.is_empty()).then(Vec::new);
        let mut next: Option<(usize, String)> = None;
        for spec in &specs {
            let globs = self.topic_conditions(&spec.when);
            match (&mut allowed, spec.when.is_empty()) {
                (_, true) => allowed = None,
                (Some(all), false) => all.extend(globs),
                (None, false) => {}
            }
            let Some(exit) = &spec.exit else { continue };
            let Some(target) = self.exit(idx, exit, wanted) else {
                continue;
            };
            match &next {
                None => next = Some((target, exit.path.clone())),
                Some((first, _)) if *first == target => {}
                Some((_, first_path)) => {
                    let message = format!(
                        "not supported: routes of one kafka binding must share one exit (see \
                         {first_path})"
                    );
                    self.cx.error(&exit.path, message);
                }
            }
        }
        (allowed, next.map(|(target, _)| target))
    }

    /// A route's `when: [{ topic }]`, as globs.
    fn topic_conditions(&mut self, when: &[Node<'y>]) -> Vec<Glob> {
        let mut globs = Vec::new();
        for condition in when {
            let Some(map) = condition.map(&mut self.cx) else {
                continue;
            };
            map.check(&mut self.cx, &[("topic", Key::Known)], "unknown key");
            if let Some(topic) = map
                .require(&mut self.cx, "topic")
                .and_then(|n| n.string(&mut self.cx))
            {
                globs.push(Glob::new(&topic));
            }
        }
        globs
    }

    /// A kafka client's tcp or tls client: the tls plan goes into `node`; returns the broker
    /// address the tcp client names, if any (the servers when `options.servers` is absent).
    fn kafka_client_transport(
        &mut self,
        next: Option<usize>,
        node: &mut KafkaNode,
    ) -> Option<String> {
        match next {
            Some(n) if self.bindings[n].kind == Some(Kind::TlsClient) => {
                let tls = self.tls_client(n);
                node.tls = tls.as_ref().map(|t| t.plan.clone());
                tls.and_then(|t| t.server)
            }
            Some(n) => self.tcp_client(n).and_then(|tcp| tcp.server),
            None => None,
        }
    }

    /// `options.topics`: `[{ name, defaultOffset, ... }]`; only the cache_server reads
    /// `defaultOffset`.
    fn kafka_topics(&mut self, kind: Kind, node: &Node<'y>) -> Vec<TopicOptions> {
        let server = kind == Kind::KafkaCacheServer;
        let known_on_server = if server {
            Key::Known
        } else {
            Key::NotSupported
        };
        let spec = [
            ("name", Key::Known),
            ("defaultOffset", known_on_server),
            ("deltaType", known_on_server),
            ("transforms", Key::NotSupported),
            ("key", Key::Known),
            ("value", Key::Known),
        ];
        let mut topics: Vec<TopicOptions> = Vec::new();
        for item in node.list(&mut self.cx).unwrap_or_default() {
            let Some(map) = item.map(&mut self.cx) else {
                continue;
            };
            map.check(&mut self.cx, &spec, "unknown option");
            let Some(name) = map
                .require(&mut self.cx, "name")
                .and_then(|n| n.string(&mut self.cx))
            else {
                continue;
            };
            let default_offset = if server {
                self.cache_server_topic_options(&map)
            } else {
                DefaultOffset::Historical
            };
            let key = self.topic_model(&map, "key", server);
            let value = self.topic_model(&map, "value", server);
            if topics.iter().any(|t| t.name == name) {
                self.cx
                    .error(&item.path, format!("topic {name:?} listed twice"));
                continue;
            }
            topics.push(TopicOptions {
                name,
                default_offset,
                key,
                value,
            });
        }
        topics
    }

    /// A cache_server topic's `defaultOffset` (historical unless `live`) and `deltaType`
    /// (none only).
    fn cache_server_topic_options(&mut self, map: &Map<'y>) -> DefaultOffset {
        let mut default_offset = DefaultOffset::Historical;
        if let Some(offset) = map.get("defaultOffset") {
            match offset.string(&mut self.cx).as_deref() {
                Some("historical") => {}
                Some("live") => default_offset = DefaultOffset::Live,
                Some(other) => self.cx.error(
                    &offset.path,
                    format!("unknown defaultOffset {other:?}: expected live or historical"),
                ),
                None => {}
            }
        }
        if let Some(delta) = map.get("deltaType") {
            match delta.string(&mut self.cx).as_deref() {
                Some("none") | None => {}
                Some("json_patch") => self.cx.error(&delta.path, "not supported"),
                Some(other) => self.cx.error(
                    &delta.path,
                    format!("unknown deltaType {other:?}: expected none or json_patch"),
                ),
            }
        }
        default_offset
    }

    /// A topic's `key` or `value` model.
    fn topic_model(&mut self, map: &Map<'y>, field: &str, server: bool) -> Option<ModelConfig> {
        let node = map.get(field)?;
        let catalogs = self.catalogs.clone();
        let model = super::catalog::read_model(&mut self.cx, &node, &catalogs)?;
        if !server {
            self.cx.warn(
                &node.path,
                "a cache_client's models apply to produce only (as in Zilla); fetched \
                 records are converted by the cache_server's topics",
            );
        }
        Some(model)
    }

    /// The cluster behind an sse-kafka route exit (a cache_client or a client), shared by every
    /// chain that ends at the same kafka client binding.
    pub fn kafka_chain(&mut self, start: usize) -> Option<Arc<KafkaCluster>> {
        // Not `memoized`: a chain is not a binding being read (the nodes are, below).
        if let Some(done) = self.memo.kafka_chains.get(&start) {
            return done.clone();
        }
        let built = self.build_kafka_chain(start);
        self.memo.kafka_chains.insert(start, built.clone());
        built
    }

    fn build_kafka_chain(&mut self, start: usize) -> Option<Arc<KafkaCluster>> {
        let first = self.kafka_node(start)?;
        let mut allowed = vec![first.allowed.clone()];
        let (client, bootstrap, topics) = match first.kind {
            Kind::KafkaCacheClient => {
                let server = self.kafka_node(first.next?)?;
                allowed.push(server.allowed.clone());
                (server.next?, server.bootstrap, server.topics)
            }
            Kind::KafkaClient => (start, Vec::new(), Vec::new()),
            _ => return None,
        };
        let client_node = self.kafka_node(client)?;
        if client != start {
            allowed.push(client_node.allowed.clone());
        }
        let start_path = self.bindings[start].path.clone();
        let allowed_topics = match intersect_all(allowed) {
            Ok(globs) => globs,
            Err(message) => {
                self.cx.error(&start_path, message);
                return None;
            }
        };
        let cluster = KafkaCluster {
            binding: self.bindings[client].name.clone(),
            servers: client_node.servers,
            bootstrap,
            topics,
            allowed_topics,
            sasl: client_node.sasl,
            tls: client_node.tls,
        };
        if let Some((_, known)) = self.memo.clusters.iter().find(|(c, _)| *c == client) {
            if same_cluster(known, &cluster) {
                return Some(known.clone());
            }
            let message = format!(
                "not supported: reaches kafka client {:?} with other cache options or topic \
                 routes than another chain to it",
                cluster.binding
            );
            self.cx.error(&start_path, message);
            return None;
        }
        let cluster = Arc::new(cluster);
        self.memo.clusters.push((client, cluster.clone()));
        Some(cluster)
    }
}

/// `servers: [host:port, ...]`; an entry may hold several comma-separated servers (as a
/// `KAFKA_BOOTSTRAP_SERVER` variable often does).
fn read_servers(loader: &mut Loader, node: &Node) -> Vec<String> {
    let mut servers = Vec::new();
    let mut reported = false;
    let Some(items) = node.list(&mut loader.cx) else {
        return servers;
    };
    for item in items {
        let Some(text) = item.string(&mut loader.cx) else {
            reported = true;
            continue;
        };
        for server in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let valid = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if valid {
                servers.push(server.to_owned());
            } else {
                loader
                    .cx
                    .error(&item.path, format!("expected host:port, found {server:?}"));
                reported = true;
            }
        }
    }
    if servers.is_empty() && !reported {
        loader.cx.error(&node.path, "expected at least one server");
    }
    servers
}

/// The topics every restriction allows; `Ok(empty)` means every topic.
fn intersect_all(restrictions: Vec<Option<Vec<Glob>>>) -> Result<Vec<Glob>, String> {
    let mut acc: Option<Vec<Glob>> = None;
    for restriction in restrictions.into_iter().flatten() {
        acc = Some(match acc {
            None => restriction,
            Some(current) => intersect(&current, &restriction)?,
        });
        if acc.as_ref().is_some_and(Vec::is_empty) {
            return Err(
                "no topic is allowed by the topic routes of every kafka binding of this chain"
                    .into(),
            );
        }
    }
    Ok(acc.unwrap_or_default())
}

fn intersect(a: &[Glob], b: &[Glob]) -> Result<Vec<Glob>, String> {
    let mut out: Vec<Glob> = Vec::new();
    for x in a {
        for y in b {
            let both = if x.as_str() == y.as_str() || y.as_str() == "*" {
                Some(x)
            } else if x.as_str() == "*" {
                Some(y)
            } else if x.is_literal() {
                y.matches(x.as_str()).then_some(x)
            } else if y.is_literal() {
                x.matches(y.as_str()).then_some(y)
            } else {
                return Err(format!(
                    "not supported: topic routes {:?} and {:?} on two kafka bindings of this \
                     chain cannot be combined",
                    x.as_str(),
                    y.as_str()
                ));
            };
            if let Some(glob) = both {
                if !out.iter().any(|g| g.as_str() == glob.as_str()) {
                    out.push(glob.clone());
                }
            }
        }
    }
    Ok(out)
}

fn same_cluster(a: &KafkaCluster, b: &KafkaCluster) -> bool {
    type TopicKey = (
        String,
        DefaultOffset,
        Option<ModelConfig>,
        Option<ModelConfig>,
    );
    let topics = |c: &KafkaCluster| -> Vec<TopicKey> {
        c.topics
            .iter()
            .map(|t| {
                let (key, value) = (t.key.clone(), t.value.clone());
                (t.name.clone(), t.default_offset, key, value)
            })
            .collect()
    };
    a.servers == b.servers
        && a.bootstrap == b.bootstrap
        && topics(a) == topics(b)
        && a.allowed_topics == b.allowed_topics
}
