//! zilla.yaml: the one builder for the configurations the tests, the bench and the config unit
//! tests run. [`Zilla`] emits Zilla's `sse.kafka.fanout` chain binding by binding (tcp → [tls →]
//! http → sse → sse-kafka → kafka cache_client → cache_server → client → tcp client), with the
//! options the tests vary: http versions, CORS, the `:scheme`/`:path` of the http route, a jwt
//! guard on one of the routes and the http authorization, static files through
//! `http-filesystem` + `filesystem`, cache_server bootstrap and topics, kafka client options,
//! top-level sections (guards, vaults, catalogs) and a prometheus exporter.
use crate::*;

/// A `sse-kafka` route (`routes[]` of the `sse-kafka` proxy binding).
#[derive(Debug, Clone)]
pub struct Route {
    pub path: String,
    pub topic: String,
    pub filters: Vec<Filter>,
    pub event_id: Option<String>,
}

/// One filter: key and header conditions ANDed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Filter {
    pub fn key(k: &str) -> Filter {
        Filter {
            key: Some(k.to_string()),
            headers: Vec::new(),
        }
    }
    pub fn header(name: &str, v: &str) -> Filter {
        Filter {
            key: None,
            headers: vec![(name.to_string(), v.to_string())],
        }
    }
    pub fn and_header(mut self, name: &str, v: &str) -> Filter {
        self.headers.push((name.to_string(), v.to_string()));
        self
    }
}

impl Route {
    pub fn new(path: &str, topic: &str) -> Route {
        Route {
            path: path.to_string(),
            topic: topic.to_string(),
            filters: Vec::new(),
            event_id: None,
        }
    }
    /// `/{topic}` → `${params.topic}`: any topic by name.
    pub fn any_topic() -> Route {
        Route::new("/{topic}", "${params.topic}")
    }
    pub fn filter(mut self, f: Filter) -> Route {
        self.filters.push(f);
        self
    }
    pub fn event_id(mut self, template: &str) -> Route {
        self.event_id = Some(template.to_string());
        self
    }
}

/// Single-quoted YAML scalar.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Where a jwt guard sits in the chain (`guarded:` on that binding's route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardOn {
    /// `guarded` on the http route: 401 without credentials, 403 refused.
    Http,
    /// `guarded` on the sse route only: 404 either way.
    Sse,
    /// `guarded` on the sse-kafka route only: 404 either way.
    SseKafka,
}

/// A guard used by the chain: its name, the binding whose route it guards, the roles asked for.
#[derive(Debug, Clone)]
pub struct Guarded {
    pub guard: String,
    pub on: GuardOn,
    pub roles: Vec<String>,
}

/// Static files: `http-filesystem` + `filesystem` for what the http route to sse does not take.
#[derive(Debug, Clone)]
pub struct Files {
    /// `filesystem.options.location`.
    pub location: String,
    /// Also map `/` to `index.html`.
    pub index: bool,
}

/// Zilla's `sse.kafka.fanout` chain (tcp → http → sse → sse-kafka → kafka cache_client →
/// cache_server → client → tcp client), or sse-kafka straight to the kafka client binding.
#[derive(Debug, Clone)]
pub struct Zilla {
    /// The config's `name`.
    pub name: String,
    pub port: u16,
    /// The kafka client's `servers` entry (may be `${{env.X}}`).
    pub kafka: String,
    pub routes: Vec<Route>,
    /// Use the cache_client/cache_server pair (Zilla's fan-out example); false: direct client.
    pub cache: bool,
    /// `cache_server.options.bootstrap`.
    pub bootstrap: Vec<String>,
    /// `cache_server.options.topics`: (name, defaultOffset).
    pub topics: Vec<(String, String)>,
    /// The http route's `:path` pattern to the sse binding (default `/*`).
    pub http_path: String,
    /// The http route's `:scheme` (default `http`; `https` behind TLS).
    pub scheme: String,
    /// `access-control.policy` of the http binding (default `cross-origin`, as in Zilla's
    /// fan-out example); None leaves the option out (Zilla's default: same-origin).
    pub access_control: Option<String>,
    /// `versions` of the http binding (default `[http/1.1]`; empty: left out).
    pub versions: Vec<String>,
    /// Port of a `prometheus` telemetry exporter serving `/metrics` (None: no telemetry).
    pub prometheus: Option<u16>,
    /// Top-level sections before `bindings:` (`guards:`, `vaults:`, `catalogs:`), as YAML text.
    pub sections: String,
    /// The http binding's `authorization` from this guard (credentials from `Authorization:
    /// Bearer` and the `access_token` query parameter).
    pub authorization: Option<String>,
    pub guarded: Option<Guarded>,
    pub files: Option<Files>,
    /// More lines of the kafka client's `options` after `servers` (YAML indented by 6).
    pub kafka_options: String,
    /// The kafka client's exit (default `south_tcp_client`).
    pub kafka_exit: String,
    /// More bindings before `south_tcp_client` (YAML indented by 2).
    pub more_bindings: String,
}

/// Appends YAML text, ending it with a line break.
fn push_lines(to: &mut String, yaml: &str) {
    if !yaml.trim().is_empty() {
        to.push_str(yaml);
        if !yaml.ends_with('\n') {
            to.push('\n');
        }
    }
}

/// Appends YAML lines, each `indent` levels of two spaces deep.
struct Out(String);

impl Out {
    fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.0.push_str("  ");
        }
        self.0.push_str(text);
        self.0.push('\n');
    }
    /// `name:` with `type` and `kind`, at binding depth.
    fn binding(&mut self, name: &str, ty: &str, kind: &str) {
        self.line(1, &format!("{name}:"));
        self.line(2, &format!("type: {ty}"));
        self.line(2, &format!("kind: {kind}"));
    }
    fn list(&mut self, indent: usize, key: &str, items: &[String]) {
        self.line(indent, &format!("{key}:"));
        for i in items {
            self.line(indent + 1, &format!("- {i}"));
        }
    }
}

impl Zilla {
    pub fn new(port: u16, kafka: &str) -> Zilla {
        Zilla {
            name: "test".to_string(),
            port,
            kafka: kafka.to_string(),
            routes: Vec::new(),
            cache: true,
            bootstrap: Vec::new(),
            topics: Vec::new(),
            http_path: "/*".to_string(),
            scheme: "http".to_string(),
            access_control: Some("cross-origin".to_string()),
            versions: vec!["http/1.1".to_string()],
            prometheus: None,
            sections: String::new(),
            authorization: None,
            guarded: None,
            files: None,
            kafka_options: String::new(),
            kafka_exit: "south_tcp_client".to_string(),
            more_bindings: String::new(),
        }
    }
    /// On a free port, `/{topic}` to any topic by name: what most tests run.
    pub fn any_topic(kafka: &str) -> Zilla {
        Zilla::new(free_port(), kafka).route(Route::any_topic())
    }
    /// HTTP/1.1 and HTTP/2 (`versions: [http/1.1, h2]`).
    pub fn h2(self) -> Zilla {
        self.versions(&["http/1.1", "h2"])
    }
    /// [`Zilla::any_topic`] over HTTP/1.1 and HTTP/2 with a prometheus exporter on `metrics`.
    pub fn h2_metrics(kafka: &str, metrics: u16) -> Zilla {
        Zilla::any_topic(kafka).h2().prometheus(metrics)
    }
    /// The config's `name` (default `test`).
    pub fn named(mut self, name: &str) -> Zilla {
        self.name = name.to_string();
        self
    }
    /// The http binding's `versions` (e.g. `&["http/1.1", "h2"]`; `&[]` leaves them out).
    pub fn versions(mut self, versions: &[&str]) -> Zilla {
        self.versions = versions.iter().map(|v| v.to_string()).collect();
        self
    }
    /// Adds `telemetry.exporters` with a `prometheus` exporter on `port`, path `/metrics`.
    pub fn prometheus(mut self, port: u16) -> Zilla {
        self.prometheus = Some(port);
        self
    }
    pub fn route(mut self, r: Route) -> Zilla {
        self.routes.push(r);
        self
    }
    pub fn no_cache(mut self) -> Zilla {
        self.cache = false;
        self
    }
    pub fn bootstrap_topic(mut self, t: &str) -> Zilla {
        self.bootstrap.push(t.to_string());
        self
    }
    /// Leaves `access-control` out: the same-origin default applies.
    pub fn same_origin(mut self) -> Zilla {
        self.access_control = None;
        self
    }
    pub fn http_path(mut self, pattern: &str) -> Zilla {
        self.http_path = pattern.to_string();
        self
    }
    /// The http route's `:scheme` (`https` behind TLS).
    pub fn scheme(mut self, scheme: &str) -> Zilla {
        self.scheme = scheme.to_string();
        self
    }
    pub fn topic_offset(mut self, t: &str, default_offset: &str) -> Zilla {
        self.topics
            .push((t.to_string(), default_offset.to_string()));
        self
    }
    /// A top-level section (`guards:`, `vaults:`, `catalogs:` with its body), as YAML text.
    pub fn section(mut self, yaml: &str) -> Zilla {
        push_lines(&mut self.sections, yaml);
        self
    }
    /// A `jwt` guard `name` in `guards:` (keys as YAML flow mappings, `challenge` seconds).
    pub fn jwt_guard(
        mut self,
        name: &str,
        issuer: &str,
        audience: &str,
        keys: &[String],
        challenge: Option<u64>,
    ) -> Zilla {
        let mut y = Out(String::new());
        y.line(0, "guards:");
        y.line(1, &format!("{name}:"));
        y.line(2, "type: jwt");
        y.line(2, "options:");
        y.line(3, &format!("issuer: {issuer}"));
        y.line(3, &format!("audience: {audience}"));
        y.list(3, "keys", keys);
        if let Some(c) = challenge {
            y.line(3, &format!("challenge: {c}"));
        }
        self.sections.push_str(&y.0);
        self
    }
    /// The http binding takes credentials for `guard` (Bearer header, `access_token` query).
    pub fn authorization(mut self, guard: &str) -> Zilla {
        self.authorization = Some(guard.to_string());
        self
    }
    /// `guarded: { guard: roles }` on the route of the binding `on`.
    pub fn guarded(mut self, guard: &str, on: GuardOn, roles: &[&str]) -> Zilla {
        self.guarded = Some(Guarded {
            guard: guard.to_string(),
            on,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
        self
    }
    /// Other requests are files under `location`; `/` is `index.html`.
    pub fn files(mut self, location: &str) -> Zilla {
        self.files = Some(Files {
            location: location.to_string(),
            index: true,
        });
        self
    }
    /// Other requests are files under `location`, `/{path}` only.
    pub fn files_without_index(mut self, location: &str) -> Zilla {
        self.files = Some(Files {
            location: location.to_string(),
            index: false,
        });
        self
    }
    /// More lines of the kafka client's `options` (indented by 6: `      sasl:` ...).
    pub fn kafka_options(mut self, yaml: &str) -> Zilla {
        push_lines(&mut self.kafka_options, yaml);
        self
    }
    /// The kafka client exits to `exit`, a binding given with [`Zilla::more_bindings`].
    pub fn kafka_exit(mut self, exit: &str) -> Zilla {
        self.kafka_exit = exit.to_string();
        self
    }
    /// Bindings (indented by 2) added before `south_tcp_client`.
    pub fn more_bindings(mut self, yaml: &str) -> Zilla {
        push_lines(&mut self.more_bindings, yaml);
        self
    }

    fn guard_lines(&self, y: &mut Out, on: GuardOn, indent: usize) {
        if let Some(g) = self.guarded.as_ref().filter(|g| g.on == on) {
            let roles: Vec<String> = g.roles.iter().map(|r| q(r)).collect();
            y.line(indent, "guarded:");
            y.line(
                indent + 1,
                &format!("{}: [ {} ]", g.guard, roles.join(", ")),
            );
        }
    }

    pub fn yaml(&self) -> String {
        let mut y = Out(format!("name: {}\n", self.name));
        y.0.push_str(&self.sections);
        y.line(0, "bindings:");
        self.tcp_server(&mut y);
        self.http_server(&mut y);
        self.sse_server(&mut y);
        self.sse_kafka(&mut y);
        if self.cache {
            self.kafka_cache(&mut y);
        }
        self.kafka_client(&mut y);
        if let Some(files) = &self.files {
            Self::filesystem(&mut y, files);
        }
        y.0.push_str(&self.more_bindings);
        y.binding("south_tcp_client", "tcp", "client");
        if let Some(port) = self.prometheus {
            y.line(0, "telemetry:");
            y.line(1, "exporters:");
            y.line(2, "prom:");
            y.line(3, "type: prometheus");
            y.line(3, "options:");
            y.line(4, "endpoints:");
            y.line(5, "- scheme: http");
            y.line(6, &format!("port: {port}"));
            y.line(6, "path: /metrics");
        }
        y.0
    }

    fn tcp_server(&self, y: &mut Out) {
        let p = self.port;
        y.binding("north_tcp_server", "tcp", "server");
        y.line(2, "options:");
        y.line(3, "host: 127.0.0.1");
        y.list(3, "port", &[p.to_string()]);
        y.line(2, "routes:");
        y.line(3, "- when:");
        y.line(5, &format!("- port: {p}"));
        y.line(4, "exit: north_http_server");
    }

    fn http_server(&self, y: &mut Out) {
        y.binding("north_http_server", "http", "server");
        y.line(2, "options:");
        if !self.versions.is_empty() {
            y.list(3, "versions", &self.versions);
        }
        if let Some(guard) = &self.authorization {
            y.line(3, "authorization:");
            y.line(4, &format!("{guard}:"));
            y.line(5, "credentials:");
            y.line(6, "headers:");
            y.line(7, "authorization: 'Bearer {credentials}'");
            y.line(6, "query:");
            y.line(7, "access_token: '{credentials}'");
        }
        if let Some(policy) = &self.access_control {
            y.line(3, "access-control:");
            y.line(4, &format!("policy: {policy}"));
        }
        if y.0.ends_with("    options:\n") {
            y.0.truncate(y.0.len() - "    options:\n".len());
        }
        y.line(2, "routes:");
        y.line(3, "- when:");
        y.line(5, "- headers:");
        y.line(7, &format!(":scheme: {}", self.scheme));
        y.line(7, &format!(":path: {}", q(&self.http_path)));
        self.guard_lines(y, GuardOn::Http, 4);
        y.line(4, "exit: north_sse_server");
        if self.files.is_some() {
            y.line(3, "- when:");
            y.line(5, "- headers:");
            y.line(7, &format!(":scheme: {}", self.scheme));
            y.line(4, "exit: east_http_filesystem_mapping");
        }
    }

    fn sse_server(&self, y: &mut Out) {
        y.binding("north_sse_server", "sse", "server");
        if self.guarded.as_ref().is_some_and(|g| g.on == GuardOn::Sse) {
            y.line(2, "routes:");
            y.line(3, "- exit: north_sse_kafka_mapping");
            self.guard_lines(y, GuardOn::Sse, 4);
        } else {
            y.line(2, "exit: north_sse_kafka_mapping");
        }
    }

    fn sse_kafka(&self, y: &mut Out) {
        y.binding("north_sse_kafka_mapping", "sse-kafka", "proxy");
        y.line(2, "routes:");
        let exit = if self.cache {
            "north_kafka_cache_client"
        } else {
            "south_kafka_client"
        };
        for r in &self.routes {
            y.line(3, "- when:");
            y.line(5, &format!("- path: {}", q(&r.path)));
            self.guard_lines(y, GuardOn::SseKafka, 4);
            y.line(4, &format!("exit: {exit}"));
            y.line(4, "with:");
            y.line(5, &format!("topic: {}", q(&r.topic)));
            if !r.filters.is_empty() {
                y.line(5, "filters:");
                for f in &r.filters {
                    Self::filter(y, f);
                }
            }
            if let Some(id) = &r.event_id {
                y.line(5, "event:");
                y.line(6, &format!("id: {}", q(id)));
            }
        }
    }

    /// One `filters` entry: `key` and `headers`, the first under the list dash.
    fn filter(y: &mut Out, f: &Filter) {
        let mut lead = "- ";
        if let Some(k) = &f.key {
            y.line(6, &format!("{lead}key: {}", q(k)));
            lead = "  ";
        }
        if !f.headers.is_empty() {
            y.line(6, &format!("{lead}headers:"));
            for (n, v) in &f.headers {
                y.line(8, &format!("{}: {}", q(n), q(v)));
            }
        }
    }

    fn kafka_cache(&self, y: &mut Out) {
        y.binding("north_kafka_cache_client", "kafka", "cache_client");
        y.line(2, "exit: south_kafka_cache_server");
        y.binding("south_kafka_cache_server", "kafka", "cache_server");
        if !self.bootstrap.is_empty() || !self.topics.is_empty() {
            y.line(2, "options:");
            if !self.bootstrap.is_empty() {
                let names: Vec<String> = self.bootstrap.iter().map(|t| q(t)).collect();
                y.list(3, "bootstrap", &names);
            }
            if !self.topics.is_empty() {
                y.line(3, "topics:");
                for (t, o) in &self.topics {
                    y.line(4, &format!("- name: {}", q(t)));
                    y.line(5, &format!("defaultOffset: {o}"));
                }
            }
        }
        y.line(2, "exit: south_kafka_client");
    }

    fn kafka_client(&self, y: &mut Out) {
        y.binding("south_kafka_client", "kafka", "client");
        y.line(2, "options:");
        y.list(3, "servers", &[q(&self.kafka)]);
        y.0.push_str(&self.kafka_options);
        y.line(2, &format!("exit: {}", self.kafka_exit));
    }

    fn filesystem(y: &mut Out, files: &Files) {
        y.binding("east_http_filesystem_mapping", "http-filesystem", "proxy");
        y.line(2, "routes:");
        if files.index {
            y.line(3, "- when:");
            y.line(5, "- path: /");
            y.line(4, "exit: east_filesystem_server");
            y.line(4, "with:");
            y.line(5, "path: index.html");
        }
        y.line(3, "- when:");
        y.line(5, "- path: /{path}");
        y.line(4, "exit: east_filesystem_server");
        y.line(4, "with:");
        y.line(5, "path: ${params.path}");
        y.binding("east_filesystem_server", "filesystem", "server");
        y.line(2, "options:");
        y.line(3, &format!("location: {}", q(&files.location)));
    }

    /// Starts a server on this config with extra CLI arguments.
    pub fn start(&self, extra: &[&str]) -> Server {
        Server::builder(self.port)
            .config(&self.yaml())
            .args(extra.iter().copied())
            .start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Chain, HmacKey};
    use std::process::Command;

    /// `sse-kafka check` accepts the config (it needs no broker).
    fn assert_valid(yaml: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zilla.yaml");
        std::fs::write(&path, yaml).expect("write zilla.yaml");
        std::fs::create_dir_all(dir.path().join("www")).expect("www");
        let out = Command::new(server_bin())
            .current_dir(dir.path())
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run sse-kafka check");
        assert!(
            out.status.success(),
            "sse-kafka check refused:\n{yaml}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn every_shape_the_builder_emits_loads() {
        let kafka = "127.0.0.1:9092";
        assert_valid(&Zilla::any_topic(kafka).yaml());
        assert_valid(&Zilla::h2_metrics(kafka, 9100).bootstrap_topic("t").yaml());
        assert_valid(
            &Zilla::new(7000, kafka)
                .named("files")
                .versions(&[])
                .http_path("/events")
                .files("www/")
                .route(Route::new("/events", "events"))
                .topic_offset("events", "historical")
                .yaml(),
        );
        assert_valid(
            &Zilla::new(7000, kafka)
                .no_cache()
                .same_origin()
                .route(
                    Route::new("/{topic}/{key}", "${params.topic}")
                        .filter(Filter::key("${params.key}").and_header("tag", "a"))
                        .event_id("[\"${base64(key)}\",\"${etag}\"]"),
                )
                .yaml(),
        );
        let key = HmacKey::generate("k1");
        for on in [GuardOn::Http, GuardOn::Sse, GuardOn::SseKafka] {
            let chain = Chain::new(7000, kafka, &[&key]).guard_on(on).challenge(3);
            assert_valid(&chain.yaml());
        }
    }
}
