//! `type: asyncapi` bindings (`kind: server | proxy | client`) are a configuration generator, as
//! in Zilla: before the plan is built, each one reads its AsyncAPI documents from the catalogs
//! and is replaced in the YAML tree by the ordinary bindings it stands for (tcp → http → sse for
//! a server, sse-kafka for a proxy, kafka cache_client → cache_server → client → tcp for a
//! client), plus an inline catalog with the message payload schemas. The expanded tree is then
//! read like any hand-written `zilla.yaml`, so there is no second runtime path, and
//! `sse-kafka check --expand` prints it.
//!
//! Generated names are `<binding>/<spec label>/<zilla's composite name>` (`<binding>/...` for a
//! proxy). The SSE message schema is applied on the Kafka topic's JSON model, together with
//! the Kafka message schema (`allOf`): an invalid record is never sent and is counted in
//! `sse_kafka_records_invalid_total`.

use std::path::Path;

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

use super::asyncapi_doc::{self, Document};
use super::plan::ConfigError;
use super::yaml::{Cx, Key, Node};

/// The tree with every asyncapi binding expanded, and the warnings of the expansion; `None`
/// when there is no asyncapi binding (the tree is used as it is).
pub(super) fn expand(
    root: &Yaml,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Yaml, Vec<ConfigError>)>, Vec<ConfigError>> {
    let Yaml::Hash(top_hash) = root else {
        return Ok(None);
    };
    let Some(Yaml::Hash(bindings)) = top_hash.get(&s("bindings")) else {
        return Ok(None);
    };
    let is_asyncapi =
        |v: &Yaml| matches!(v, Yaml::Hash(h) if h.get(&s("type")) == Some(&s("asyncapi")));
    if !bindings.values().any(is_asyncapi) {
        return Ok(None);
    }
    let mut cx = Cx::new(env);
    // Catalogs are read again (and reported) when the expanded tree is loaded.
    let catalogs = {
        let mut quiet = Cx::new(env);
        let top = Node::root(root).map(&mut quiet);
        top.map(|top| super::catalog::read_catalogs(&mut quiet, &top, base_dir))
            .unwrap_or_default()
    };
    let top = Node::root(root)
        .map(&mut cx)
        .expect("checked to be a mapping");
    let bindings_map = top
        .get("bindings")
        .and_then(|n| n.map(&mut cx))
        .expect("checked to be a mapping");

    // First pass: read every asyncapi binding and its specs.
    let mut apis = Vec::new();
    for (name, node) in bindings_map.entries(&mut cx) {
        if !is_asyncapi(node.yaml) {
            continue;
        }
        if let Some(api) = read_binding(&mut cx, &catalogs, &name, &node) {
            apis.push(api);
        }
    }
    let mut g = Gen {
        bindings: Hash::new(),
        catalogs: Hash::new(),
        topic_schemas: Vec::new(),
        entries: apis
            .iter()
            .map(|a| (a.name.clone(), entry_name(a)))
            .collect(),
    };
    for api in apis.iter().filter(|a| a.kind == ApiKind::Server) {
        g.server(&mut cx, api);
    }
    for api in apis.iter().filter(|a| a.kind == ApiKind::Proxy) {
        g.proxy(&mut cx, api);
    }
    for api in apis.iter().filter(|a| a.kind == ApiKind::Client) {
        g.client(&mut cx, api);
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }

    // The new tree: asyncapi bindings replaced in place by what they generate.
    let mut out_top = Hash::new();
    for (k, v) in top_hash {
        if k == &s("bindings") {
            let mut out = Hash::new();
            for (name, binding) in bindings {
                if is_asyncapi(binding) {
                    let prefix = format!("{}/", name.as_str().unwrap_or_default());
                    for (gk, gv) in &g.bindings {
                        if gk.as_str().is_some_and(|n| n.starts_with(&prefix)) {
                            out.insert(gk.clone(), gv.clone());
                        }
                    }
                } else {
                    out.insert(name.clone(), binding.clone());
                }
            }
            out_top.insert(k.clone(), Yaml::Hash(out));
        } else if k == &s("catalogs") {
            let mut out = match v {
                Yaml::Hash(h) => h.clone(),
                _ => Hash::new(),
            };
            out.extend(g.catalogs.clone());
            out_top.insert(k.clone(), Yaml::Hash(out));
        } else {
            out_top.insert(k.clone(), v.clone());
        }
    }
    if !out_top.contains_key(&s("catalogs")) && !g.catalogs.is_empty() {
        out_top.insert(s("catalogs"), Yaml::Hash(g.catalogs.clone()));
    }
    Ok(Some((Yaml::Hash(out_top), cx.warnings)))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ApiKind {
    Server,
    Proxy,
    Client,
}

/// One asyncapi binding, read.
struct Api<'y> {
    name: String,
    path: String,
    kind: ApiKind,
    vault: Option<String>,
    specs: Vec<Spec>,
    routes: Vec<ProxyRoute>,
    exit: Option<String>,
    _node: Node<'y>,
}

/// `options.specs.<label>`.
struct Spec {
    label: String,
    path: String,
    doc: Document,
    /// Deployment addresses: the zilla.yaml `servers` (2.x), else the document's (1.x).
    servers: Vec<Url>,
    /// `security`: scheme name → guard name, in file order.
    security: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct Url {
    scheme: String,
    host: String,
    port: u16,
}

/// A proxy (or server) route: `when` conditions (ORed), `with`, `exit`.
struct ProxyRoute {
    when: Vec<Condition>,
    with_spec: Option<String>,
    with_operation: Option<String>,
    exit: Option<String>,
}

#[derive(Default)]
struct Condition {
    spec: Option<String>,
    operation: Option<String>,
    tag: Option<String>,
    /// `servers[].name` / `.url`.
    servers: Vec<(Option<String>, Option<String>)>,
}

fn entry_name(api: &Api) -> String {
    let label = api.specs.first().map_or("", |s| s.label.as_str());
    match api.kind {
        ApiKind::Server => format!("{}/{label}/tcp_server0", api.name),
        ApiKind::Proxy => format!("{}/sse_kafka_proxy0", api.name),
        ApiKind::Client => format!("{}/{label}/kafka_cache_client0", api.name),
    }
}

fn read_binding<'y>(
    cx: &mut Cx,
    catalogs: &[std::sync::Arc<super::catalog::Catalog>],
    name: &str,
    node: &Node<'y>,
) -> Option<Api<'y>> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[
            ("type", Key::Known),
            ("kind", Key::Known),
            ("vault", Key::Known),
            ("options", Key::Known),
            ("routes", Key::Known),
            ("exit", Key::Known),
            ("telemetry", Key::Known),
            ("catalog", Key::NotSupported),
            ("entry", Key::NotSupported),
        ],
        "unknown key",
    );
    let kind = match map.require(cx, "kind")?.string(cx)?.as_str() {
        "server" => ApiKind::Server,
        "proxy" => ApiKind::Proxy,
        "client" => ApiKind::Client,
        other => {
            cx.error(
                &map.key_path("kind"),
                format!("kind {other:?} not supported for binding type \"asyncapi\""),
            );
            return None;
        }
    };
    let vault = map.get("vault").and_then(|n| n.string(cx));
    let exit = map.get("exit").and_then(|n| n.string(cx));
    if kind == ApiKind::Client && exit.is_some() {
        cx.error(&map.key_path("exit"), "not allowed on an asyncapi client");
    }
    let options = map.require(cx, "options")?.map(cx)?;
    options.check(cx, &[("specs", Key::Known)], "unknown option");
    let specs_map = options.require(cx, "specs")?.map(cx)?;
    let mut specs = Vec::new();
    for (label, spec_node) in specs_map.entries(cx) {
        if let Some(spec) = read_spec(cx, catalogs, &label, &spec_node) {
            specs.push(spec);
        }
    }
    let mut routes = Vec::new();
    if let Some(list) = map.get("routes").and_then(|n| n.list(cx)) {
        if kind == ApiKind::Client {
            cx.error(&map.key_path("routes"), "not allowed on an asyncapi client");
        }
        for route in list {
            if let Some(r) = read_route(cx, kind, &route) {
                routes.push(r);
            }
        }
    }
    if kind == ApiKind::Server && exit.is_none() && routes.is_empty() {
        cx.error(&map.key_path("exit"), "required");
    }
    Some(Api {
        name: name.to_owned(),
        path: node.path.clone(),
        kind,
        vault,
        specs,
        routes,
        exit,
        _node: node.clone(),
    })
}

fn read_route(cx: &mut Cx, kind: ApiKind, node: &Node) -> Option<ProxyRoute> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[
            ("when", Key::Known),
            ("with", Key::Known),
            ("exit", Key::Known),
            ("guarded", Key::NotSupportedYet),
        ],
        "unknown key",
    );
    let mut when = Vec::new();
    for cond in map.get("when").and_then(|n| n.list(cx)).unwrap_or_default() {
        let Some(c) = cond.map(cx) else { continue };
        c.check(
            cx,
            &[
                ("spec", Key::Known),
                ("operation", Key::Known),
                ("tag", Key::Known),
                ("servers", Key::Known),
                ("api-id", Key::Known),
                ("operation-id", Key::Known),
            ],
            "unknown key",
        );
        let text = |cx: &mut Cx, k: &str| c.get(k).and_then(|n| n.string(cx));
        let mut servers = Vec::new();
        for server in c
            .get("servers")
            .and_then(|n| n.list(cx))
            .unwrap_or_default()
        {
            if let Some(m) = server.map(cx) {
                servers.push((
                    m.get("name").and_then(|n| n.string(cx)),
                    m.get("url").and_then(|n| n.string(cx)),
                ));
            }
        }
        when.push(Condition {
            spec: text(cx, "spec").or_else(|| text(cx, "api-id")),
            operation: text(cx, "operation").or_else(|| text(cx, "operation-id")),
            tag: text(cx, "tag"),
            servers,
        });
    }
    let (mut with_spec, mut with_operation) = (None, None);
    if let Some(with) = map.get("with") {
        if kind != ApiKind::Proxy {
            cx.error(&with.path, "only an asyncapi proxy route has `with`");
        } else if let Some(w) = with.map(cx) {
            w.check(
                cx,
                &[
                    ("spec", Key::Known),
                    ("operation", Key::Known),
                    ("api-id", Key::Known),
                    ("operation-id", Key::Known),
                ],
                "unknown key",
            );
            let text = |cx: &mut Cx, k: &str| w.get(k).and_then(|n| n.string(cx));
            with_spec = text(cx, "spec").or_else(|| text(cx, "api-id"));
            with_operation = text(cx, "operation").or_else(|| text(cx, "operation-id"));
            if with_spec.is_none() {
                cx.error(&w.key_path("spec"), "required");
            }
        }
    } else if kind == ApiKind::Proxy {
        cx.error(&map.key_path("with"), "required");
    }
    Some(ProxyRoute {
        when,
        with_spec,
        with_operation,
        exit: map.get("exit").and_then(|n| n.string(cx)),
    })
}

fn read_spec(
    cx: &mut Cx,
    catalogs: &[std::sync::Arc<super::catalog::Catalog>],
    label: &str,
    node: &Node,
) -> Option<Spec> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[
            ("servers", Key::Known),
            ("catalog", Key::Known),
            ("security", Key::Known),
            ("store", Key::NotSupported),
            ("overlay", Key::NotSupportedYet),
        ],
        "unknown key",
    );
    let catalog_map = map.require(cx, "catalog")?.map(cx)?;
    let entries = catalog_map.entries(cx);
    let Some((catalog_name, selector)) = entries.first() else {
        cx.error(&catalog_map.path, "expected one catalog");
        return None;
    };
    if entries.len() > 1 {
        cx.error(
            &catalog_map.path,
            "more than one catalog: not supported yet",
        );
    }
    let sel = selector.map(cx)?;
    sel.check(
        cx,
        &[
            ("subject", Key::Known),
            ("version", Key::Known),
            ("overlay", Key::NotSupportedYet),
        ],
        "unknown key",
    );
    let subject = sel.require(cx, "subject")?.string(cx)?;
    let version = sel
        .get("version")
        .and_then(|n| n.string(cx))
        .unwrap_or_else(|| "latest".to_owned());
    let Some(catalog) = catalogs.iter().find(|c| &c.name == catalog_name) else {
        cx.error(&selector.path, format!("unknown catalog {catalog_name:?}"));
        return None;
    };
    let Some(schema) = catalog.local(&subject, &version) else {
        let message = match catalog.kind {
            super::catalog::CatalogKind::SchemaRegistry(_) => {
                "AsyncAPI documents from a schema-registry catalog: not supported yet".to_owned()
            }
            _ => format!("subject {subject:?} not found in catalog {catalog_name:?}"),
        };
        cx.error(&sel.key_path("subject"), message);
        return None;
    };
    let doc_name = format!("{catalog_name}/{subject}");
    let doc = match asyncapi_doc::read(&doc_name, &schema.text) {
        Ok(doc) => doc,
        Err(message) => {
            cx.error(&sel.key_path("subject"), message);
            return None;
        }
    };
    for w in &doc.warnings {
        cx.warn(&sel.key_path("subject"), w.clone());
    }
    let mut security = Vec::new();
    if let Some(sec) = map.get("security").and_then(|n| n.map(cx)) {
        for (scheme, guard) in sec.entries(cx) {
            let Some(scheme) = cx.substitute(&guard.path, &scheme) else {
                continue;
            };
            if let Some(guard) = guard.string(cx) {
                security.push((scheme, guard));
            }
        }
    }
    let mut servers = Vec::new();
    match map.get("servers").and_then(|n| n.list(cx)) {
        Some(list) => {
            for item in list {
                match item.yaml {
                    Yaml::Hash(_) => {
                        // 1.x: objects selecting servers of the document.
                        let m = item.map(cx)?;
                        let url = m.get("url").and_then(|n| n.string(cx));
                        let host = m.get("host").and_then(|n| n.string(cx));
                        servers.extend(
                            doc_servers(&doc)
                                .into_iter()
                                .filter(|(u, text)| {
                                    url.as_ref().is_none_or(|want| want == text)
                                        && host.as_ref().is_none_or(|want| {
                                            *want == format!("{}:{}", u.host, u.port)
                                        })
                                })
                                .map(|(u, _)| u),
                        );
                    }
                    _ => {
                        let text = item.string(cx)?;
                        match parse_url(&text) {
                            Some(url) => servers.push(url),
                            None => cx.error(
                                &item.path,
                                format!("expected a URL scheme://host:port, found {text:?}"),
                            ),
                        }
                    }
                }
            }
        }
        None => servers = doc_servers(&doc).into_iter().map(|(u, _)| u).collect(),
    }
    Some(Spec {
        label: label.to_owned(),
        path: node.path.clone(),
        doc,
        servers,
        security,
    })
}

fn parse_url(text: &str) -> Option<Url> {
    let (scheme, rest) = text.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some(Url {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_owned(),
        port: port.parse().ok()?,
    })
}

/// The document's servers as URLs (`protocol://host`), with the text they compare against.
fn doc_servers(doc: &Document) -> Vec<(Url, String)> {
    let Some(servers) = doc.resolved.get("servers").and_then(Value::as_object) else {
        return Vec::new();
    };
    servers
        .values()
        .filter_map(|server| {
            let text = match server.get("url").and_then(Value::as_str) {
                Some(url) => url.to_owned(),
                None => format!(
                    "{}://{}{}",
                    server.get("protocol")?.as_str()?,
                    server.get("host")?.as_str()?,
                    server.get("pathname").and_then(Value::as_str).unwrap_or("")
                ),
            };
            Some((parse_url(&text)?, text))
        })
        .collect()
}

/// An operation of a document, with the names its references carry.
struct Operation<'d> {
    id: &'d str,
    op: &'d Value,
    raw: &'d Value,
    channel_key: String,
    address: String,
}

fn operations(doc: &Document) -> Vec<Operation<'_>> {
    let Some(ops) = doc.resolved.get("operations").and_then(Value::as_object) else {
        return Vec::new();
    };
    ops.iter()
        .map(|(id, op)| {
            let raw = &doc.raw["operations"][id];
            let channel_key = asyncapi_doc::ref_name(&raw["channel"])
                .unwrap_or(id)
                .to_owned();
            let address = op["channel"]["address"]
                .as_str()
                .unwrap_or(&channel_key)
                .to_owned();
            Operation {
                id,
                op,
                raw,
                channel_key,
                address,
            }
        })
        .collect()
}

impl Operation<'_> {
    fn is_sse(&self, doc: &Document) -> bool {
        self.op["bindings"].get("x-zilla-sse").is_some()
            // 0.9.x documents: a server with `protocol: sse`.
            || doc_servers(doc).iter().any(|(u, _)| u.scheme == "sse")
    }

    /// (message key, payload schema) of the operation's messages, else its channel's.
    fn messages(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        if let (Some(list), Some(raw)) = (
            self.op["messages"].as_array(),
            self.raw["messages"].as_array(),
        ) {
            for (m, r) in list.iter().zip(raw) {
                if m.get("$ref").is_none() {
                    let key = asyncapi_doc::ref_name(r).unwrap_or("message").to_owned();
                    out.push((key, m));
                }
            }
        }
        if out.is_empty() {
            if let Some(map) = self.op["channel"]["messages"].as_object() {
                for (k, m) in map {
                    if m.get("$ref").is_none() {
                        out.push((k.clone(), m));
                    }
                }
            }
        }
        out
    }

    /// Security scheme names the operation requires.
    fn security_schemes(&self) -> Vec<String> {
        let raw = self.raw["security"].as_array().cloned().unwrap_or_default();
        raw.iter()
            .filter_map(|r| asyncapi_doc::ref_name(r).map(str::to_owned))
            .collect()
    }

    fn tags(&self) -> Vec<&str> {
        self.op["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// `{p}` segments → `*` (the http and sse route globs).
fn glob_of(address: &str) -> String {
    let mut out = String::new();
    let mut rest = address;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push('*');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The path prefix of a spec's http servers (their `pathname`), `""` when none.
fn prefix(doc: &Document) -> String {
    doc.resolved["servers"]
        .as_object()
        .and_then(|servers| {
            servers
                .values()
                .filter_map(|s| s["pathname"].as_str())
                .next()
        })
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned()
}

fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&n| tail.is_char_boundary(n))
                .any(|n| glob_match(rest, &tail[n..]))
        }
    }
}

fn condition_matches(c: &Condition, spec: &Spec, op: &Operation) -> bool {
    c.spec.as_ref().is_none_or(|s| *s == spec.label)
        && c.operation.as_ref().is_none_or(|o| glob_match(o, op.id))
        && c.tag
            .as_ref()
            .is_none_or(|t| op.tags().contains(&t.as_str()))
        && (c.servers.is_empty()
            || c.servers.iter().any(|(name, url)| {
                let servers = spec.doc.resolved["servers"].as_object();
                servers.is_some_and(|servers| {
                    servers
                        .iter()
                        .any(|(n, _)| name.as_ref().is_none_or(|want| want == n))
                }) && url.as_ref().is_none_or(|want| {
                    doc_servers(&spec.doc).iter().any(|(_, text)| text == want)
                        || spec
                            .servers
                            .iter()
                            .any(|u| format!("{}://{}:{}", u.scheme, u.host, u.port) == *want)
                })
            }))
}

struct Gen {
    bindings: Hash,
    catalogs: Hash,
    /// (client entry binding, topic, SSE payload schemas) met by proxies.
    topic_schemas: Vec<(String, String, Vec<Value>)>,
    /// asyncapi binding name → the generated binding its callers exit to.
    entries: Vec<(String, String)>,
}

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_owned())
}

fn h(pairs: Vec<(&str, Yaml)>) -> Yaml {
    let mut hash = Hash::new();
    for (k, v) in pairs {
        hash.insert(s(k), v);
    }
    Yaml::Hash(hash)
}

fn list(items: Vec<Yaml>) -> Yaml {
    Yaml::Array(items)
}

/// A JSON value as YAML (filters, schemas' scalars).
fn from_json(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(t) => s(t),
        Value::Array(a) => list(a.iter().map(from_json).collect()),
        Value::Object(o) => {
            let mut hash = Hash::new();
            for (k, v) in o {
                hash.insert(s(k), from_json(v));
            }
            Yaml::Hash(hash)
        }
    }
}

impl Gen {
    fn entry(&self, exit: &str) -> String {
        self.entries
            .iter()
            .find(|(name, _)| name == exit)
            .map_or_else(|| exit.to_owned(), |(_, entry)| entry.clone())
    }

    fn server(&mut self, cx: &mut Cx, api: &Api) {
        for spec in &api.specs {
            let ns = format!("{}/{}", api.name, spec.label);
            let http_servers: Vec<&Url> = spec
                .servers
                .iter()
                .filter(|u| matches!(u.scheme.as_str(), "http" | "https" | "sse"))
                .collect();
            if http_servers.is_empty() {
                cx.error(
                    &format!("{}.servers", spec.path),
                    "no http or https server URL: nothing to listen on",
                );
                continue;
            }
            let mut ports: Vec<u16> = http_servers.iter().map(|u| u.port).collect();
            ports.dedup();
            let tls = http_servers.iter().any(|u| u.scheme == "https");
            let mut tcp_routes = Vec::new();
            for url in &http_servers {
                let exit = if url.scheme == "https" {
                    format!("{ns}/tls_server0")
                } else {
                    format!("{ns}/http_server0")
                };
                tcp_routes.push(h(vec![
                    (
                        "when",
                        list(vec![h(vec![("port", Yaml::Integer(url.port.into()))])]),
                    ),
                    ("exit", s(&exit)),
                ]));
            }
            self.bindings.insert(
                s(&format!("{ns}/tcp_server0")),
                h(vec![
                    ("type", s("tcp")),
                    ("kind", s("server")),
                    (
                        "options",
                        h(vec![
                            ("host", s("0.0.0.0")),
                            (
                                "port",
                                list(ports.iter().map(|p| Yaml::Integer((*p).into())).collect()),
                            ),
                        ]),
                    ),
                    ("routes", list(tcp_routes)),
                ]),
            );
            if tls {
                let mut tls_binding = vec![("type", s("tls")), ("kind", s("server"))];
                match &api.vault {
                    Some(vault) => tls_binding.push(("vault", s(vault))),
                    None => cx.error(
                        &format!("{}.vault", api.path),
                        "required for an https server URL",
                    ),
                }
                tls_binding.push((
                    "options",
                    h(vec![("alpn", list(vec![s("h2"), s("http/1.1")]))]),
                ));
                tls_binding.push(("exit", s(&format!("{ns}/http_server0"))));
                self.bindings
                    .insert(s(&format!("{ns}/tls_server0")), h(tls_binding));
            }
            let prefix = prefix(&spec.doc);
            let mut http_routes = Vec::new();
            let mut sse_routes = Vec::new();
            for op in operations(&spec.doc) {
                if !op.is_sse(&spec.doc) {
                    continue;
                }
                let path = format!("{prefix}{}", glob_of(&op.address));
                let exit = api
                    .routes
                    .iter()
                    .find(|r| {
                        r.when.is_empty() || r.when.iter().any(|c| condition_matches(c, spec, &op))
                    })
                    .and_then(|r| r.exit.clone())
                    .or_else(|| api.exit.clone());
                let Some(exit) = exit else {
                    cx.warn(
                        &api.path,
                        format!(
                            "operation {:?} of spec {:?}: no route; not served",
                            op.id, spec.label
                        ),
                    );
                    continue;
                };
                http_routes.push(h(vec![
                    (
                        "when",
                        list(vec![h(vec![(
                            "headers",
                            h(vec![(":path", s(&path)), (":method", s("GET"))]),
                        )])]),
                    ),
                    ("exit", s(&format!("{ns}/sse_server0"))),
                ]));
                sse_routes.push(h(vec![
                    ("when", list(vec![h(vec![("path", s(&path))])])),
                    ("exit", s(&self.entry(&exit))),
                ]));
            }
            let mut http_options = vec![("access-control", h(vec![("policy", s("cross-origin"))]))];
            if let Some(auth) = http_authorization(cx, spec) {
                http_options.push(("authorization", auth));
            }
            self.bindings.insert(
                s(&format!("{ns}/http_server0")),
                h(vec![
                    ("type", s("http")),
                    ("kind", s("server")),
                    ("options", h(http_options)),
                    ("routes", list(http_routes)),
                ]),
            );
            self.bindings.insert(
                s(&format!("{ns}/sse_server0")),
                h(vec![
                    ("type", s("sse")),
                    ("kind", s("server")),
                    ("routes", list(sse_routes)),
                ]),
            );
        }
    }

    fn proxy(&mut self, cx: &mut Cx, api: &Api) {
        let mut routes = Vec::new();
        for when_spec in &api.specs {
            let prefix = prefix(&when_spec.doc);
            for op in operations(&when_spec.doc) {
                if !op.is_sse(&when_spec.doc) {
                    continue;
                }
                let Some(route) = api.routes.iter().find(|r| {
                    r.when.is_empty() || r.when.iter().any(|c| condition_matches(c, when_spec, &op))
                }) else {
                    continue;
                };
                let Some(with_spec) = route
                    .with_spec
                    .as_ref()
                    .and_then(|w| api.specs.iter().find(|s| &s.label == w))
                else {
                    if let Some(w) = &route.with_spec {
                        cx.error(
                            &api.path,
                            format!("with.spec {w:?}: no such spec in options.specs"),
                        );
                    }
                    continue;
                };
                if !with_spec
                    .servers
                    .iter()
                    .any(|u| u.scheme.starts_with("kafka"))
                {
                    continue;
                }
                let kafka_id = route.with_operation.as_deref().unwrap_or(op.id);
                let kafka_ops = operations(&with_spec.doc);
                let Some(kafka_op) = kafka_ops.iter().find(|k| k.id == kafka_id) else {
                    cx.warn(
                        &api.path,
                        format!(
                            "operation {:?} of spec {:?}: no operation {kafka_id:?} in spec {:?}; not served",
                            op.id, when_spec.label, with_spec.label
                        ),
                    );
                    continue;
                };
                if kafka_op.op["action"].as_str() != Some("receive") {
                    cx.warn(
                        &api.path,
                        format!("operation {kafka_id:?} of spec {:?}: action is not receive; not served", with_spec.label),
                    );
                    continue;
                }
                // Guards from the operation's security schemes mapped by this spec.
                let mut guards: Vec<(String, Vec<Value>)> = Vec::new();
                for scheme in op.security_schemes() {
                    if let Some((_, guard)) = when_spec.security.iter().find(|(s, _)| *s == scheme)
                    {
                        let scopes = when_spec.doc.resolved["components"]["securitySchemes"]
                            [&scheme]["scopes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        match guards.iter_mut().find(|(g, _)| g == guard) {
                            Some((_, roles)) => roles.extend(scopes),
                            None => guards.push((guard.clone(), scopes)),
                        }
                    }
                }
                if guards.len() > 1 {
                    cx.warn(
                        &api.path,
                        format!(
                            "operation denied ({:?} of spec {:?} requires multiple distinct guards simultaneously, which is not supported)",
                            op.id, when_spec.label
                        ),
                    );
                    continue;
                }
                let identity = guards
                    .first()
                    .map(|(g, _)| format!("${{guarded['{g}'].identity}}"));
                let subst = |v: &Value| match (v.as_str(), &identity) {
                    (Some("{identity}"), Some(id)) => s(id),
                    _ => from_json(v),
                };
                let topic = kafka_op.address.clone();
                let mut with = vec![
                    ("topic", s(&topic)),
                    ("event", h(vec![("id", s("${etag}"))])),
                ];
                if let Some(filters) = op.op["bindings"]["x-zilla-sse-kafka"]["filters"].as_array()
                {
                    let mut out = Vec::new();
                    for f in filters {
                        let mut filter = Vec::new();
                        if let Some(key) = f.get("key") {
                            filter.push(("key", subst(key)));
                        }
                        if let Some(headers) = f.get("headers").and_then(Value::as_object) {
                            let mut hh = Hash::new();
                            for (k, v) in headers {
                                hh.insert(s(k), subst(v));
                            }
                            filter.push(("headers", Yaml::Hash(hh)));
                        }
                        out.push(h(filter));
                    }
                    with.push(("filters", list(out)));
                }
                let mut r = vec![(
                    "when",
                    list(vec![h(vec![(
                        "path",
                        s(&format!("{prefix}{}", op.address)),
                    )])]),
                )];
                let exit = route.exit.clone().or_else(|| api.exit.clone());
                let Some(exit) = exit else {
                    cx.error(&api.path, "route without exit");
                    continue;
                };
                let exit = self.entry(&exit);
                r.push(("exit", s(&exit)));
                r.push(("with", h(with)));
                if let Some((guard, roles)) = guards.first() {
                    let mut g = Hash::new();
                    g.insert(s(guard), list(roles.iter().map(from_json).collect()));
                    r.push(("guarded", Yaml::Hash(g)));
                }
                routes.push(h(r));
                let schemas: Vec<Value> = op
                    .messages()
                    .into_iter()
                    .filter_map(|(_, m)| m.get("payload").cloned())
                    .collect();
                if !schemas.is_empty() {
                    self.topic_schemas.push((exit, topic, schemas));
                }
            }
        }
        self.bindings.insert(
            s(&format!("{}/sse_kafka_proxy0", api.name)),
            h(vec![
                ("type", s("sse-kafka")),
                ("kind", s("proxy")),
                ("routes", list(routes)),
            ]),
        );
    }

    fn client(&mut self, cx: &mut Cx, api: &Api) {
        for (i, spec) in api.specs.iter().enumerate() {
            let ns = format!("{}/{}", api.name, spec.label);
            let entry = format!("{ns}/kafka_cache_client0");
            let Some(server) = spec.servers.first() else {
                cx.error(
                    &format!("{}.servers", spec.path),
                    "no Kafka server: required",
                );
                continue;
            };
            if i > 0 {
                cx.warn(
                    &spec.path,
                    "only the first spec of an asyncapi client is reached by routes",
                );
            }
            let catalog_name = format!("{ns}/catalog0");
            let mut subjects = Hash::new();
            let mut bootstrap = Vec::new();
            let mut topics = Vec::new();
            let mut seen = Vec::new();
            for op in operations(&spec.doc) {
                let topic = op.address.clone();
                if topic.contains('{') || seen.contains(&topic) {
                    continue;
                }
                seen.push(topic.clone());
                bootstrap.push(s(&topic));
                let default_type = spec.doc.resolved["defaultContentType"].as_str();
                let kafka_schema = op.messages().into_iter().next().and_then(|(key, m)| {
                    let content_type = m["contentType"].as_str().or(default_type)?;
                    let json = content_type == "application/json"
                        || (content_type.starts_with("application/") && content_type.ends_with("+json"));
                    if !json {
                        if content_type.contains("avro") || content_type.contains("protobuf") {
                            cx.warn(&spec.path, format!("message contentType {content_type:?}: not supported yet; no model"));
                        }
                        return None;
                    }
                    Some((key, m.get("payload")?.clone()))
                });
                let sse: Vec<Value> = self
                    .topic_schemas
                    .iter()
                    .filter(|(e, t, _)| *e == entry && *t == topic)
                    .flat_map(|(_, _, s)| s.clone())
                    .collect();
                let mut parts = Vec::new();
                let mut subject = format!("{}-value", op.channel_key);
                if let Some((key, schema)) = kafka_schema {
                    subject = format!("{}-{key}-value", op.channel_key);
                    parts.push(schema);
                }
                match sse.len() {
                    0 => {}
                    1 => parts.push(sse[0].clone()),
                    _ => parts.push(serde_json::json!({ "anyOf": sse })),
                }
                let schema = match parts.len() {
                    0 => {
                        topics.push(h(vec![("name", s(&topic))]));
                        continue;
                    }
                    1 => parts.remove(0),
                    _ => serde_json::json!({ "allOf": parts }),
                };
                subjects.insert(
                    s(&subject),
                    h(vec![
                        ("schema", s(&schema.to_string())),
                        ("version", s("latest")),
                    ]),
                );
                topics.push(h(vec![
                    ("name", s(&topic)),
                    (
                        "value",
                        h(vec![
                            ("model", s("json")),
                            (
                                "catalog",
                                h(vec![(
                                    catalog_name.as_str(),
                                    list(vec![h(vec![
                                        ("subject", s(&subject)),
                                        ("version", s("latest")),
                                    ])]),
                                )]),
                            ),
                        ]),
                    ),
                ]));
            }
            if !subjects.is_empty() {
                self.catalogs.insert(
                    s(&catalog_name),
                    h(vec![
                        ("type", s("inline")),
                        ("options", h(vec![("subjects", Yaml::Hash(subjects))])),
                    ]),
                );
            }
            self.bindings.insert(
                s(&entry),
                h(vec![
                    ("type", s("kafka")),
                    ("kind", s("cache_client")),
                    ("exit", s(&format!("{ns}/kafka_cache_server0"))),
                ]),
            );
            self.bindings.insert(
                s(&format!("{ns}/kafka_cache_server0")),
                h(vec![
                    ("type", s("kafka")),
                    ("kind", s("cache_server")),
                    (
                        "options",
                        h(vec![
                            ("bootstrap", list(bootstrap)),
                            ("topics", list(topics)),
                        ]),
                    ),
                    ("exit", s(&format!("{ns}/kafka_client0"))),
                ]),
            );
            let secure = server.scheme == "kafka-secure";
            let mut client_options = vec![(
                "servers",
                list(vec![s(&format!("{}:{}", server.host, server.port))]),
            )];
            if let Some(auth) = kafka_authorization(spec) {
                client_options.push(("authorization", auth));
            }
            let next = if secure {
                format!("{ns}/tls_client0")
            } else {
                format!("{ns}/tcp_client0")
            };
            self.bindings.insert(
                s(&format!("{ns}/kafka_client0")),
                h(vec![
                    ("type", s("kafka")),
                    ("kind", s("client")),
                    ("options", h(client_options)),
                    ("exit", s(&next)),
                ]),
            );
            if secure {
                let mut tls = vec![("type", s("tls")), ("kind", s("client"))];
                if let Some(vault) = &api.vault {
                    tls.push(("vault", s(vault)));
                }
                tls.push(("exit", s(&format!("{ns}/tcp_client0"))));
                self.bindings
                    .insert(s(&format!("{ns}/tls_client0")), h(tls));
            }
            self.bindings.insert(
                s(&format!("{ns}/tcp_client0")),
                h(vec![("type", s("tcp")), ("kind", s("client"))]),
            );
        }
    }
}

/// The scheme object named `scheme` in the document's components.
fn scheme<'d>(spec: &'d Spec, name: &str) -> &'d Value {
    &spec.doc.resolved["components"]["securitySchemes"][name]
}

/// http `authorization` from the first mapped bearer or httpApiKey scheme.
fn http_authorization(cx: &mut Cx, spec: &Spec) -> Option<Yaml> {
    for (name, guard) in &spec.security {
        let sch = scheme(spec, name);
        if sch.is_null() {
            cx.warn(
                &format!("{}.security.{name}", spec.path),
                format!("operation denied (security scheme {name:?} in spec {:?} is not defined in components.securitySchemes)", spec.label),
            );
            continue;
        }
        let credentials = match (
            sch["type"].as_str(),
            sch["scheme"].as_str(),
            sch["in"].as_str(),
        ) {
            (Some("http"), Some(b), _) if b.eq_ignore_ascii_case("bearer") => h(vec![(
                "headers",
                h(vec![("authorization", s("Bearer {credentials}"))]),
            )]),
            (Some("httpApiKey"), _, Some(place @ ("header" | "query" | "cookie"))) => {
                let Some(n) = sch["name"].as_str() else {
                    continue;
                };
                let group = match place {
                    "header" => "headers",
                    "query" => "query",
                    _ => "cookies",
                };
                let n = if place == "header" {
                    n.to_ascii_lowercase()
                } else {
                    n.to_owned()
                };
                h(vec![(group, h(vec![(n.as_str(), s("{credentials}"))]))])
            }
            (Some("plain" | "scramSha256" | "scramSha512"), _, _) => continue,
            (t, _, _) => {
                cx.warn(
                    &format!("{}.security.{name}", spec.path),
                    format!("operation denied (security scheme {name:?} in spec {:?} has unsupported type {:?} for guard-based authorization)", spec.label, t.unwrap_or("")),
                );
                continue;
            }
        };
        return Some(h(vec![(
            guard.as_str(),
            h(vec![("credentials", credentials)]),
        )]));
    }
    None
}

/// kafka client `authorization` from the first mapped SASL scheme.
fn kafka_authorization(spec: &Spec) -> Option<Yaml> {
    spec.security.iter().find_map(|(name, guard)| {
        let mechanism = match scheme(spec, name)["type"].as_str()? {
            "plain" => "plain",
            "scramSha256" => "scram-sha-256",
            "scramSha512" => "scram-sha-512",
            _ => return None,
        };
        Some(h(vec![(
            guard.as_str(),
            h(vec![(
                "credentials",
                h(vec![
                    ("mechanism", s(mechanism)),
                    ("username", s("{identity}")),
                    ("password", s("{credentials}")),
                ]),
            )]),
        )]))
    })
}

/// The expanded tree as `zilla.yaml` text (`check --expand`).
pub(super) fn emit(root: &Yaml) -> String {
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    let _ = emitter.dump(root);
    out.push('\n');
    out
}
