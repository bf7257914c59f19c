//! The typed plan that `zilla.yaml` is read into once at start. The server only ever sees this;
//! nothing downstream looks at YAML. Every binding chain is resolved here, so a listener holds the
//! whole path from socket to Kafka cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `name:` at the top of zilla.yaml (informational).
    pub name: Option<String>,
    /// One entry per (tcp server binding, port).
    pub listeners: Vec<Listener>,
    /// Every kafka `client` binding reachable from a listener, deduplicated by binding name.
    pub clusters: Vec<Arc<KafkaCluster>>,
    /// `telemetry.exporters` of type `stdout` present.
    pub telemetry_stdout: bool,
    /// `telemetry.exporters` of type `prometheus`: where to serve the metrics.
    pub prometheus: Vec<PrometheusEndpoint>,
    /// Non-fatal remarks (cosmetic options accepted but ignored), each with its YAML path.
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    pub port: u16,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Listener {
    /// The tcp server binding name (e.g. `north_tcp_server`).
    pub binding: String,
    pub addr: SocketAddr,
    pub http: Arc<HttpService>,
}

/// An `http` server binding.
#[derive(Debug)]
pub struct HttpService {
    pub binding: String,
    /// `options.versions`; default both.
    pub http1: bool,
    pub h2: bool,
    pub access_control: AccessControl,
    /// In order; the first whose condition matches wins.
    pub routes: Vec<HttpRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessControl {
    /// Default: a request whose `Origin` is not the request's own origin is refused with 403.
    SameOrigin,
    CrossOrigin {
        /// `allow.origins`; `None` means any origin (`*`).
        origins: Option<Vec<String>>,
        /// `allow.methods`; `None` means any.
        methods: Option<Vec<String>>,
        /// `allow.headers`; `None` means any.
        headers: Option<Vec<String>>,
        credentials: bool,
        max_age: Option<u32>,
        /// `expose.headers`; `None` means none listed.
        expose: Option<Vec<String>>,
    },
}

#[derive(Debug)]
pub struct HttpRoute {
    /// ORed; an empty list matches every request.
    pub when: Vec<HttpCondition>,
    pub exit: HttpExit,
}

/// `when: [{ headers: { name: pattern, ... } }]`: every header condition must match (AND).
#[derive(Debug, Clone)]
pub struct HttpCondition {
    /// Lower-cased names; pseudo headers `:path`, `:method`, `:scheme`, `:authority` allowed.
    pub headers: Vec<(String, Glob)>,
}

#[derive(Debug)]
pub enum HttpExit {
    Sse(Arc<SseService>),
    Files(Arc<FileService>),
}

/// An `sse` server binding.
#[derive(Debug)]
pub struct SseService {
    #[allow(dead_code)] // named in diagnostics (Debug)
    pub binding: String,
    /// In order; the first whose path matches wins (empty `when` matches all).
    pub routes: Vec<SseRoute>,
}

#[derive(Debug)]
pub struct SseRoute {
    /// `when[].path` globs (`*` wildcard, no params); ORed; empty = all.
    pub when: Vec<Glob>,
    pub exit: Arc<SseKafkaService>,
}

/// An `sse-kafka` proxy binding.
#[derive(Debug)]
pub struct SseKafkaService {
    #[allow(dead_code)] // named in diagnostics (Debug)
    pub binding: String,
    pub routes: Vec<SseKafkaRoute>,
}

#[derive(Debug)]
pub struct SseKafkaRoute {
    /// `when[].path` patterns with `{param}` and `*`; ORed; empty = all.
    pub when: Vec<PathPattern>,
    pub topic: Template,
    /// ORed; each filter ANDs its key and header conditions. Empty = every record.
    pub filters: Vec<FilterTemplate>,
    pub event_id: IdTemplate,
    pub cluster: Arc<KafkaCluster>,
}

#[derive(Debug, Clone)]
pub struct FilterTemplate {
    pub key: Option<Template>,
    /// Header name (literal) and value template.
    pub headers: Vec<(String, Template)>,
}

pub use proto::event_id::IdTemplate;

/// The kafka chain behind a route: `cache_client` → `cache_server` → `client`, or `client` alone.
#[derive(Debug)]
pub struct KafkaCluster {
    /// The kafka `client` binding name.
    pub binding: String,
    /// `client.options.servers` (`host:port`), after env substitution.
    pub servers: Vec<String>,
    /// `cache_server.options.bootstrap`: topics fetched from startup.
    pub bootstrap: Vec<String>,
    /// `cache_server.options.topics[]` with their `defaultOffset`.
    pub topics: Vec<TopicOptions>,
    /// Topic globs from the kafka bindings' `routes[].when[].topic`; empty = every topic allowed.
    pub allowed_topics: Vec<Glob>,
}

impl KafkaCluster {
    pub fn default_offset(&self, topic: &str) -> DefaultOffset {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .map(|t| t.default_offset)
            .unwrap_or(DefaultOffset::Historical)
    }
}

#[derive(Debug, Clone)]
pub struct TopicOptions {
    pub name: String,
    pub default_offset: DefaultOffset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultOffset {
    /// Earliest retained record (Zilla's default).
    Historical,
    /// End of the topic: only records produced after the client subscribed.
    Live,
}

/// `http-filesystem` proxy + `filesystem` server: static files.
#[derive(Debug)]
pub struct FileService {
    #[allow(dead_code)] // named in diagnostics (Debug)
    pub binding: String,
    /// `filesystem.options.location`, resolved against the config file's directory.
    pub root: PathBuf,
    /// `http-filesystem` routes: `when[].path` pattern and `with.path` template.
    pub routes: Vec<FileRoute>,
}

#[derive(Debug)]
pub struct FileRoute {
    pub when: Vec<PathPattern>,
    pub path: Template,
}

pub use super::pattern::{Glob, PathPattern, Template};

/// A configuration problem, naming the YAML path, e.g.
/// `bindings.north_http_server.options.overrides: not supported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
