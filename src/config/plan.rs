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
    /// `guards:`, in file order (every declared guard, used or not). Routes and http
    /// authorization hold the same `Arc`s.
    pub guards: Vec<Arc<Guard>>,
    /// `catalogs:`, in file order (see `config/catalog.rs` for the lookup API).
    #[allow(dead_code)] // API for the AsyncAPI bindings; models reach catalogs through topics
    pub catalogs: Vec<Arc<Catalog>>,
}

impl Plan {
    /// The catalog declared under `catalogs.NAME`.
    #[allow(dead_code)] // API for the AsyncAPI bindings
    pub fn catalog(&self, name: &str) -> Option<&Arc<Catalog>> {
        self.catalogs.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
pub use super::catalog::Subject;
pub use super::catalog::{
    Catalog, CatalogKind, ModelConfig, ModelKind, RegistryOptions, Schema, SchemaSelector,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    pub port: u16,
    pub path: String,
}

/// A `tls` server binding with its `filesystem` vault's keys.
#[derive(Debug)]
pub struct TlsPlan {
    pub binding: String,
    /// One identity without an SNI name (served to every client), or one per SNI name.
    pub identities: Vec<TlsIdentity>,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1`).
    pub alpn: Vec<String>,
}

#[derive(Debug)]
pub struct TlsIdentity {
    pub sni: Option<String>,
    pub source: KeySource,
}

/// Where a certificate chain and its key are read from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A PKCS#12 keystore entry (`alias`, or its only private key when `None`).
    Pkcs12 {
        path: PathBuf,
        password: String,
        alias: Option<String>,
    },
    /// PEM files (our extension of the filesystem vault: `type: pem`, `store`, `key`).
    Pem { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Listener {
    /// The tcp server binding name (e.g. `north_tcp_server`).
    pub binding: String,
    pub addr: SocketAddr,
    pub http: Arc<HttpService>,
    /// The `tls` binding between the tcp server and the http server, if any.
    pub tls: Option<Arc<TlsPlan>>,
}

/// An `http` server binding.
#[derive(Debug)]
pub struct HttpService {
    pub binding: String,
    /// `options.versions`; default both.
    pub http1: bool,
    pub h2: bool,
    pub access_control: AccessControl,
    /// `options.authorization`: the guard that authorizes requests of this binding and where
    /// their credentials are taken from. `None`: requests carry no session, so every
    /// `guarded` route behind this binding refuses them and `${guarded[...]}` is empty.
    pub authorization: Option<Authorization>,
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
    /// `guarded: { GUARD: [roles] }`; see [`SseKafkaRoute::guarded`]. A request this route
    /// matches without credentials is answered 401, with credentials refused 403
    /// (reference 2.8).
    pub guarded: Vec<(Arc<Guard>, Vec<String>)>,
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
    /// `options.retry`: a `retry:` line at the start of every stream when set (the reference
    /// parses it but never sends it).
    pub retry: Option<u32>,
}

#[derive(Debug)]
pub struct SseRoute {
    /// `when[].path` globs (`*` wildcard, no params); ORed; empty = all.
    pub when: Vec<Glob>,
    /// `guarded: { GUARD: [roles] }`; see [`SseKafkaRoute::guarded`]. Refused here → 404
    /// (reference 2.8).
    pub guarded: Vec<(Arc<Guard>, Vec<String>)>,
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
    /// `guarded: { GUARD: [roles] }`, in file order; empty = unguarded. A route is taken only
    /// when, for every entry, the request's session of that guard (from the http binding's
    /// `authorization`) holds every listed role (an empty list: any valid token). Routes are
    /// tried in order; a route refused by its guard is skipped like one whose `when` does not
    /// match (Zilla: "first route whose guard check passes and whose `when` matches"); none
    /// left → 404.
    ///
    /// Roles are kept as written: Zilla substitutes `${method}` with `GET` and `${path}` with
    /// the request path in each role before checking (`SseKafkaRouteConfig.authorized`), so
    /// a role such as `read:${path}` must be resolved per request.
    pub guarded: Vec<(Arc<Guard>, Vec<String>)>,
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
    /// `client.options.authorization` (or the 1.x `options.sasl`): SASL on every connection.
    pub sasl: Option<Arc<SaslPlan>>,
    /// A `tls` client binding between the kafka client and its tcp client.
    pub tls: Option<Arc<TlsClientPlan>>,
}

pub use proto::kafka::sasl::Mechanism as SaslMechanism;

/// SASL credentials of a kafka client binding, resolved (guard values and env substituted).
pub struct SaslPlan {
    pub mechanism: SaslMechanism,
    /// Empty for OAUTHBEARER.
    pub username: String,
    /// The password, or the token for OAUTHBEARER. Never logged.
    pub secret: String,
    /// SCRAM: the salted password of the last exchange, so that reconnects skip the PBKDF2
    /// derivation (locked once per connection, never on a per-event path).
    pub scram_cache: std::sync::Mutex<proto::kafka::scram::SaltedCache>,
}

impl std::fmt::Debug for SaslPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslPlan")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A `tls` client binding (`kind: client`) in front of the brokers.
pub struct TlsClientPlan {
    pub binding: String,
    /// Trusted certificates (DER) read from the vault's trust store at load.
    pub roots: Vec<Vec<u8>>,
    /// The platform's root certificates too (`trustcacerts`, or no trust store at all).
    pub platform_roots: bool,
    /// `options.keys`: the client certificate for mutual TLS.
    pub identity: Option<KeySource>,
    /// `options.sni[0]`: the server name sent and verified; `None`: each broker's host.
    pub sni: Option<String>,
    /// `options.alpn`, as configured (Zilla sends it; brokers ignore it).
    pub alpn: Vec<String>,
    /// `options.version`: `None` for TLS 1.2 and 1.3, else only that one (12 or 13).
    pub version: Option<u8>,
}

impl std::fmt::Debug for TlsClientPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientPlan")
            .field("binding", &self.binding)
            .field("roots", &self.roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("identity", &self.identity.is_some())
            .field("sni", &self.sni)
            .field("alpn", &self.alpn)
            .field("version", &self.version)
            .finish()
    }
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
    /// `key` model (cache_server only: a cache_client's models apply to produce, in Zilla).
    pub key: Option<ModelConfig>,
    /// `value` model (cache_server only).
    pub value: Option<ModelConfig>,
}

impl TopicOptions {
    /// `name` matches `topic` exactly, or with each `{param}` standing for one or more
    /// characters.
    pub fn matches(&self, topic: &str) -> bool {
        fn walk(pattern: &str, text: &str) -> bool {
            match pattern.find('{') {
                None => pattern == text,
                Some(open) => {
                    let Some(close) = pattern[open..].find('}').map(|c| open + c) else {
                        return pattern == text;
                    };
                    let (head, rest) = (&pattern[..open], &pattern[close + 1..]);
                    let Some(tail) = text.strip_prefix(head) else {
                        return false;
                    };
                    (1..=tail.len())
                        .filter(|&n| tail.is_char_boundary(n))
                        .any(|n| walk(rest, &tail[n..]))
                }
            }
        }
        walk(&self.name, topic)
    }
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
    #[allow(dead_code)] // named in diagnostics (Debug) and config tests
    pub root: PathBuf,
    /// `http-filesystem` routes: `when[].path` pattern and `with.path` template.
    pub routes: Vec<FileRoute>,
    /// The files under `root`, read at load and kept current.
    pub table: Arc<crate::http::file_table::LiveTable>,
}

#[derive(Debug)]
pub struct FileRoute {
    pub when: Vec<PathPattern>,
    pub path: Template,
}

pub use super::pattern::{Glob, PathPattern, Template};

/// One entry of `guards:`.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The name under `guards:` (as routes and templates name it).
    pub name: String,
    pub kind: GuardKind,
}

#[derive(Debug, Clone)]
pub enum GuardKind {
    /// `type: jwt`.
    Jwt(JwtGuard),
}

impl Guard {
    /// The JWT options (the only guard type).
    pub fn jwt(&self) -> &JwtGuard {
        match &self.kind {
            GuardKind::Jwt(jwt) => jwt,
        }
    }
}

/// `type: jwt` guard options (reference 1.6, 5.5).
#[derive(Debug, Clone)]
pub struct JwtGuard {
    /// `issuer`: when set, `iss` must equal it.
    pub issuer: Option<String>,
    /// `audience`: when set, `aud` must equal it or contain it.
    pub audience: Option<String>,
    /// `keys`, or `<issuer>/.well-known/jwks.json` when `keys` is absent.
    pub keys: JwtKeys,
    /// `challenge`: seconds before `exp` at which a stream gets `event:challenge`.
    pub challenge: Option<u64>,
    /// `roles`: dotted claim path of the roles (a JSON array or a space-separated string);
    /// default `scope`. A leading `$.` is removed.
    pub roles_claim: String,
    /// `identity`: the claim giving the identity; default `sub`. A leading `$.` is removed.
    pub identity_claim: String,
    /// `attributes`: (attribute name, dotted claim path), in file order. A leading `$.` is
    /// removed from paths (Zilla's own sample writes `$.plan`, which its dotted-path lookup
    /// never finds).
    pub attributes: Vec<(String, String)>,
}

impl JwtGuard {
    /// The claim path of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, path)| path.as_str())
    }
}

/// Where a JWT guard's verification keys come from.
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// `keys: [ {kty, kid, ...}, ... ]`, built at load.
    Inline(Arc<proto::jwt::KeySet>),
    /// `keys: https://...` (or `http://`), or implied by `issuer`: a JWKS document fetched and
    /// refreshed by the server.
    Url(String),
    /// `keys: file:PATH` (our extension): a JWKS document file, resolved against the
    /// configuration file's directory. Read and validated at load.
    File(PathBuf),
}

/// http `options.authorization: { GUARD: { credentials: {...} } }`.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub guard: Arc<Guard>,
    /// Where a request's token is looked for, first found wins, in Zilla's precedence:
    /// every cookie source, then every header source, then every query source (reference
    /// 5.4), each group in file order. Never empty.
    pub credentials: Vec<CredentialSource>,
}

/// One `credentials` entry: a pattern `PREFIX{credentials}SUFFIX` split around its
/// placeholder (`Bearer {credentials}` → prefix `Bearer `, suffix empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `cookies: { name: pattern }`: the value of cookie `name`.
    Cookie {
        name: String,
        prefix: String,
        suffix: String,
    },
    /// `headers: { name: pattern }`: the whole value of header `name` (lower-cased).
    Header {
        name: String,
        prefix: String,
        suffix: String,
    },
    /// `query: { name: pattern }`: the raw (not percent-decoded) value of query parameter
    /// `name` in `:path`.
    Query {
        name: String,
        prefix: String,
        suffix: String,
    },
}

impl CredentialSource {
    /// The cookie, header or query parameter name.
    #[cfg(test)]
    pub fn name(&self) -> &str {
        match self {
            CredentialSource::Cookie { name, .. }
            | CredentialSource::Header { name, .. }
            | CredentialSource::Query { name, .. } => name,
        }
    }

    /// The token in `value` (a cookie value, a whole header value, a query parameter value):
    /// what lies between prefix and suffix, when non-empty and free of whitespace (Zilla's
    /// `[^\s]+`; `[^&]+` for query parameters, whose value never holds `&`).
    pub fn token<'v>(&self, value: &'v str) -> Option<&'v str> {
        let (CredentialSource::Cookie { prefix, suffix, .. }
        | CredentialSource::Header { prefix, suffix, .. }
        | CredentialSource::Query { prefix, suffix, .. }) = self;
        let token = value.strip_prefix(prefix.as_str())?;
        let token = token.strip_suffix(suffix.as_str())?;
        let bad = |c: char| match self {
            CredentialSource::Query { .. } => c == '&',
            _ => c.is_whitespace(),
        };
        (!token.is_empty() && !token.contains(bad)).then_some(token)
    }
}

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
