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
use super::yaml::{Cx, Key, Map, Node};

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
    if !bindings.values().any(is_asyncapi) {
        return Ok(None);
    }
    let mut cx = Cx::new(env);
    let apis = read_apis(&mut cx, root, base_dir, env);
    let g = generate(&mut cx, &apis);
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Some((
        replace_asyncapi_bindings(top_hash, bindings, &g),
        cx.warnings,
    )))
}

fn is_asyncapi(v: &Yaml) -> bool {
    matches!(v, Yaml::Hash(h) if h.get(&s("type")) == Some(&s("asyncapi")))
}

/// First pass: every asyncapi binding and its specs, read (`root` is a mapping with a
/// `bindings` mapping).
fn read_apis<'y>(
    cx: &mut Cx,
    root: &'y Yaml,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Api<'y>> {
    // Catalogs are read again (and reported) when the expanded tree is loaded.
    let catalogs = {
        let mut quiet = Cx::new(env);
        let top = Node::root(root).map(&mut quiet);
        top.map(|top| super::catalog::read_catalogs(&mut quiet, &top, base_dir))
            .unwrap_or_default()
    };
    let Some(bindings_map) = Node::root(root)
        .map(cx)
        .and_then(|top| top.get("bindings"))
        .and_then(|n| n.map(cx))
    else {
        return Vec::new();
    };
    let mut apis = Vec::new();
    for (name, node) in bindings_map.entries(cx) {
        if !is_asyncapi(node.yaml) {
            continue;
        }
        if let Some(api) = read_binding(cx, &catalogs, &name, &node) {
            apis.push(api);
        }
    }
    apis
}

/// Second pass: what the apis generate, servers first (proxies name their entries), then
/// proxies (clients take the schemas of the SSE operations in front of them), then clients.
fn generate(cx: &mut Cx, apis: &[Api<'_>]) -> Gen {
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
        g.server(cx, api);
    }
    for api in apis.iter().filter(|a| a.kind == ApiKind::Proxy) {
        g.proxy(cx, api);
    }
    for api in apis.iter().filter(|a| a.kind == ApiKind::Client) {
        g.client(cx, api);
    }
    g
}

/// The new tree: asyncapi bindings replaced in place by what they generate, the generated
/// catalogs added.
fn replace_asyncapi_bindings(top_hash: &Hash, bindings: &Hash, g: &Gen) -> Yaml {
    let mut out_top = Hash::new();
    for (k, v) in top_hash {
        if k == &s("bindings") {
            out_top.insert(k.clone(), Yaml::Hash(expanded_bindings(bindings, g)));
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
    Yaml::Hash(out_top)
}

/// `bindings`, each asyncapi binding replaced by the bindings generated under its name.
fn expanded_bindings(bindings: &Hash, g: &Gen) -> Hash {
    let mut out = Hash::new();
    for (name, binding) in bindings {
        if !is_asyncapi(binding) {
            out.insert(name.clone(), binding.clone());
            continue;
        }
        let prefix = format!("{}/", name.as_str().unwrap_or_default());
        for (gk, gv) in &g.bindings {
            if gk.as_str().is_some_and(|n| n.starts_with(&prefix)) {
                out.insert(gk.clone(), gv.clone());
            }
        }
    }
    out
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
    let kind = read_api_kind(cx, &map)?;
    let vault = map.get("vault").and_then(|n| n.string(cx));
    let exit = map.get("exit").and_then(|n| n.string(cx));
    if kind == ApiKind::Client && exit.is_some() {
        cx.error(&map.key_path("exit"), "not allowed on an asyncapi client");
    }
    let specs = read_specs(cx, catalogs, &map)?;
    let routes = read_api_routes(cx, kind, &map);
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

/// `kind`: server, proxy or client.
fn read_api_kind(cx: &mut Cx, map: &Map<'_>) -> Option<ApiKind> {
    match map.require(cx, "kind")?.string(cx)?.as_str() {
        "server" => Some(ApiKind::Server),
        "proxy" => Some(ApiKind::Proxy),
        "client" => Some(ApiKind::Client),
        other => {
            cx.error(
                &map.key_path("kind"),
                format!("kind {other:?} not supported for binding type \"asyncapi\""),
            );
            None
        }
    }
}

/// `options.specs`, each read (a spec that fails is left out, its errors reported).
fn read_specs(
    cx: &mut Cx,
    catalogs: &[std::sync::Arc<super::catalog::Catalog>],
    map: &Map<'_>,
) -> Option<Vec<Spec>> {
    let options = map.require(cx, "options")?.map(cx)?;
    options.check(cx, &[("specs", Key::Known)], "unknown option");
    let specs_map = options.require(cx, "specs")?.map(cx)?;
    let mut specs = Vec::new();
    for (label, spec_node) in specs_map.entries(cx) {
        if let Some(spec) = read_spec(cx, catalogs, &label, &spec_node) {
            specs.push(spec);
        }
    }
    Some(specs)
}

/// `routes` (refused on a client).
fn read_api_routes(cx: &mut Cx, kind: ApiKind, map: &Map<'_>) -> Vec<ProxyRoute> {
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
    routes
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
    let when = map
        .get("when")
        .and_then(|n| n.list(cx))
        .unwrap_or_default()
        .iter()
        .filter_map(|cond| read_condition(cx, cond))
        .collect();
    let (with_spec, with_operation) = match map.get("with") {
        Some(with) if kind != ApiKind::Proxy => {
            cx.error(&with.path, "only an asyncapi proxy route has `with`");
            (None, None)
        }
        Some(with) => read_route_with(cx, &with),
        None => {
            if kind == ApiKind::Proxy {
                cx.error(&map.key_path("with"), "required");
            }
            (None, None)
        }
    };
    Some(ProxyRoute {
        when,
        with_spec,
        with_operation,
        exit: map.get("exit").and_then(|n| n.string(cx)),
    })
}

/// A `when` condition of a route.
fn read_condition(cx: &mut Cx, cond: &Node<'_>) -> Option<Condition> {
    let c = cond.map(cx)?;
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
    Some(Condition {
        spec: text(cx, "spec").or_else(|| text(cx, "api-id")),
        operation: text(cx, "operation").or_else(|| text(cx, "operation-id")),
        tag: text(cx, "tag"),
        servers,
    })
}

/// A proxy route's `with`: (spec, operation).
fn read_route_with(cx: &mut Cx, with: &Node<'_>) -> (Option<String>, Option<String>) {
    let Some(w) = with.map(cx) else {
        return (None, None);
    };
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
    let with_spec = text(cx, "spec").or_else(|| text(cx, "api-id"));
    let with_operation = text(cx, "operation").or_else(|| text(cx, "operation-id"));
    if with_spec.is_none() {
        cx.error(&w.key_path("spec"), "required");
    }
    (with_spec, with_operation)
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
    let doc = spec_document(cx, catalogs, &map)?;
    let security = spec_security(cx, &map);
    let servers = spec_servers(cx, &map, &doc)?;
    Some(Spec {
        label: label.to_owned(),
        path: node.path.clone(),
        doc,
        servers,
        security,
    })
}

/// The AsyncAPI document the spec's `catalog` selects (one catalog, a subject and a version).
fn spec_document(
    cx: &mut Cx,
    catalogs: &[std::sync::Arc<super::catalog::Catalog>],
    map: &Map<'_>,
) -> Option<Document> {
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
    Some(doc)
}

/// `security`: scheme name → guard name, in file order.
fn spec_security(cx: &mut Cx, map: &Map<'_>) -> Vec<(String, String)> {
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
    security
}

/// `servers`: URLs (2.x) or objects selecting servers of the document (1.x); without it, the
/// document's servers.
fn spec_servers(cx: &mut Cx, map: &Map<'_>, doc: &Document) -> Option<Vec<Url>> {
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
                            doc_servers(doc)
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
        None => servers = doc_servers(doc).into_iter().map(|(u, _)| u).collect(),
    }
    Some(servers)
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
            self.tcp_server_binding(&ns, &http_servers);
            if http_servers.iter().any(|u| u.scheme == "https") {
                self.tls_server_binding(cx, api, &ns);
            }
            let (http_routes, sse_routes) = self.sse_operation_routes(cx, api, spec, &ns);
            self.http_and_sse_server_bindings(cx, spec, &ns, http_routes, sse_routes);
        }
    }

    /// `{ns}/tcp_server0`: every port of the spec's http(s) servers, each to TLS or HTTP.
    fn tcp_server_binding(&mut self, ns: &str, http_servers: &[&Url]) {
        let mut ports: Vec<u16> = http_servers.iter().map(|u| u.port).collect();
        ports.dedup();
        let tcp_routes = http_servers
            .iter()
            .map(|url| {
                let next = if url.scheme == "https" {
                    "tls_server0"
                } else {
                    "http_server0"
                };
                h(vec![
                    (
                        "when",
                        list(vec![h(vec![("port", Yaml::Integer(url.port.into()))])]),
                    ),
                    ("exit", s(&format!("{ns}/{next}"))),
                ])
            })
            .collect();
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
    }

    /// `{ns}/tls_server0` for an https server URL, with the api's vault.
    fn tls_server_binding(&mut self, cx: &mut Cx, api: &Api, ns: &str) {
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

    /// The http server's and the sse server's routes for the spec's SSE operations that a
    /// route of the api (or its exit) serves.
    fn sse_operation_routes(
        &self,
        cx: &mut Cx,
        api: &Api,
        spec: &Spec,
        ns: &str,
    ) -> (Vec<Yaml>, Vec<Yaml>) {
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
        (http_routes, sse_routes)
    }

    /// `{ns}/http_server0` (cross-origin, the spec's authorization) and `{ns}/sse_server0`.
    fn http_and_sse_server_bindings(
        &mut self,
        cx: &mut Cx,
        spec: &Spec,
        ns: &str,
        http_routes: Vec<Yaml>,
        sse_routes: Vec<Yaml>,
    ) {
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

    fn proxy(&mut self, cx: &mut Cx, api: &Api) {
        let mut routes = Vec::new();
        for when_spec in &api.specs {
            for op in operations(&when_spec.doc) {
                if !op.is_sse(&when_spec.doc) {
                    continue;
                }
                let Some((route, with_spec)) = proxy_route_for(cx, api, when_spec, &op) else {
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
                let Some(topic) =
                    kafka_receive_topic(cx, api, (when_spec, &op), with_spec, kafka_id)
                else {
                    continue;
                };
                let guards = operation_guards(when_spec, &op);
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
                let Some(exit) = route.exit.clone().or_else(|| api.exit.clone()) else {
                    cx.error(&api.path, "route without exit");
                    continue;
                };
                let exit = self.entry(&exit);
                let path = format!("{}{}", prefix(&when_spec.doc), op.address);
                routes.push(sse_kafka_route(&op, &path, &exit, &topic, guards.first()));
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
            let cache = self.client_topics(cx, spec, &ns, &catalog_name);
            if !cache.subjects.is_empty() {
                self.catalogs.insert(
                    s(&catalog_name),
                    h(vec![
                        ("type", s("inline")),
                        ("options", h(vec![("subjects", Yaml::Hash(cache.subjects))])),
                    ]),
                );
            }
            self.kafka_cache_bindings(&ns, cache.bootstrap, cache.topics);
            self.kafka_client_bindings(api, spec, &ns, server);
        }
    }

    /// The cache's topics (each with its json model when the spec or the proxies in front give
    /// a schema), their catalog subjects, and the bootstrap list.
    fn client_topics(
        &self,
        cx: &mut Cx,
        spec: &Spec,
        ns: &str,
        catalog_name: &str,
    ) -> ClientTopics {
        let entry = format!("{ns}/kafka_cache_client0");
        let mut out = ClientTopics {
            subjects: Hash::new(),
            bootstrap: Vec::new(),
            topics: Vec::new(),
        };
        let mut seen = Vec::new();
        for op in operations(&spec.doc) {
            let topic = op.address.clone();
            if topic.contains('{') || seen.contains(&topic) {
                continue;
            }
            seen.push(topic.clone());
            out.bootstrap.push(s(&topic));
            let sse: Vec<Value> = self
                .topic_schemas
                .iter()
                .filter(|(e, t, _)| *e == entry && *t == topic)
                .flat_map(|(_, _, s)| s.clone())
                .collect();
            let Some((subject, schema)) = topic_schema(cx, spec, &op, sse) else {
                out.topics.push(h(vec![("name", s(&topic))]));
                continue;
            };
            out.subjects.insert(
                s(&subject),
                h(vec![
                    ("schema", s(&schema.to_string())),
                    ("version", s("latest")),
                ]),
            );
            out.topics
                .push(json_model_topic(&topic, catalog_name, &subject));
        }
        out
    }

    /// `{ns}/kafka_cache_client0` and `{ns}/kafka_cache_server0`.
    fn kafka_cache_bindings(&mut self, ns: &str, bootstrap: Vec<Yaml>, topics: Vec<Yaml>) {
        self.bindings.insert(
            s(&format!("{ns}/kafka_cache_client0")),
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
    }

    /// `{ns}/kafka_client0` to the spec's first server, through `{ns}/tls_client0` for
    /// `kafka-secure`, and `{ns}/tcp_client0`.
    fn kafka_client_bindings(&mut self, api: &Api, spec: &Spec, ns: &str, server: &Url) {
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

/// What an asyncapi client's Kafka cache is told of its topics.
struct ClientTopics {
    subjects: Hash,
    bootstrap: Vec<Yaml>,
    topics: Vec<Yaml>,
}

/// The catalog subject and the schema of a topic: the Kafka spec's own JSON payload schema
/// and the schemas the SSE operations in front of it declare (`sse`), combined; `None` when
/// there is none.
fn topic_schema(
    cx: &mut Cx,
    spec: &Spec,
    op: &Operation<'_>,
    sse: Vec<Value>,
) -> Option<(String, Value)> {
    let mut parts = Vec::new();
    let mut subject = format!("{}-value", op.channel_key);
    if let Some((key, schema)) = kafka_json_payload(cx, spec, op) {
        subject = format!("{}-{key}-value", op.channel_key);
        parts.push(schema);
    }
    match sse.len() {
        0 => {}
        1 => parts.extend(sse),
        _ => parts.push(serde_json::json!({ "anyOf": sse })),
    }
    let schema = match parts.len() {
        0 => return None,
        1 => parts.remove(0),
        _ => serde_json::json!({ "allOf": parts }),
    };
    Some((subject, schema))
}

/// The first message's payload schema when its content type is JSON (message key, schema);
/// Avro and Protobuf are warned about (no model yet).
fn kafka_json_payload(cx: &mut Cx, spec: &Spec, op: &Operation<'_>) -> Option<(String, Value)> {
    let default_type = spec.doc.resolved["defaultContentType"].as_str();
    let (key, m) = op.messages().into_iter().next()?;
    let content_type = m["contentType"].as_str().or(default_type)?;
    let json = content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"));
    if !json {
        if content_type.contains("avro") || content_type.contains("protobuf") {
            cx.warn(
                &spec.path,
                format!("message contentType {content_type:?}: not supported yet; no model"),
            );
        }
        return None;
    }
    Some((key, m.get("payload")?.clone()))
}

/// A cache topic whose values are JSON checked against `subject` of `catalog_name`.
fn json_model_topic(topic: &str, catalog_name: &str, subject: &str) -> Yaml {
    h(vec![
        ("name", s(topic)),
        (
            "value",
            h(vec![
                ("model", s("json")),
                (
                    "catalog",
                    h(vec![(
                        catalog_name,
                        list(vec![h(vec![
                            ("subject", s(subject)),
                            ("version", s("latest")),
                        ])]),
                    )]),
                ),
            ]),
        ),
    ])
}

/// The first route of a proxy that takes `op` of `when_spec`, with the spec its `with.spec`
/// names; an unknown `with.spec` is reported.
fn proxy_route_for<'a>(
    cx: &mut Cx,
    api: &'a Api,
    when_spec: &Spec,
    op: &Operation<'_>,
) -> Option<(&'a ProxyRoute, &'a Spec)> {
    let route = api.routes.iter().find(|r| {
        r.when.is_empty() || r.when.iter().any(|c| condition_matches(c, when_spec, op))
    })?;
    let with_spec = route
        .with_spec
        .as_ref()
        .and_then(|w| api.specs.iter().find(|s| &s.label == w));
    if with_spec.is_none() {
        if let Some(w) = &route.with_spec {
            cx.error(
                &api.path,
                format!("with.spec {w:?}: no such spec in options.specs"),
            );
        }
    }
    Some((route, with_spec?))
}

/// The topic of operation `kafka_id` of the Kafka spec, when it is a `receive`; else
/// warned about (the SSE operation `op` of `when_spec` is not served).
fn kafka_receive_topic(
    cx: &mut Cx,
    api: &Api,
    (when_spec, op): (&Spec, &Operation<'_>),
    with_spec: &Spec,
    kafka_id: &str,
) -> Option<String> {
    let kafka_ops = operations(&with_spec.doc);
    let Some(kafka_op) = kafka_ops.iter().find(|k| k.id == kafka_id) else {
        cx.warn(
            &api.path,
            format!(
                "operation {:?} of spec {:?}: no operation {kafka_id:?} in spec {:?}; not served",
                op.id, when_spec.label, with_spec.label
            ),
        );
        return None;
    };
    if kafka_op.op["action"].as_str() != Some("receive") {
        cx.warn(
            &api.path,
            format!(
                "operation {kafka_id:?} of spec {:?}: action is not receive; not served",
                with_spec.label
            ),
        );
        return None;
    }
    Some(kafka_op.address.clone())
}

/// Guards from the operation's security schemes mapped by this spec, each with the scopes of
/// its schemes as roles.
fn operation_guards(spec: &Spec, op: &Operation<'_>) -> Vec<(String, Vec<Value>)> {
    let mut guards: Vec<(String, Vec<Value>)> = Vec::new();
    for scheme in op.security_schemes() {
        if let Some((_, guard)) = spec.security.iter().find(|(s, _)| *s == scheme) {
            let scopes = spec.doc.resolved["components"]["securitySchemes"][&scheme]["scopes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            match guards.iter_mut().find(|(g, _)| g == guard) {
                Some((_, roles)) => roles.extend(scopes),
                None => guards.push((guard.clone(), scopes)),
            }
        }
    }
    guards
}

/// An sse-kafka proxy route: `path` to `topic` through `exit`, with the operation's filters
/// (`{identity}` standing for the guard's identity) and the guard, if any.
fn sse_kafka_route(
    op: &Operation<'_>,
    path: &str,
    exit: &str,
    topic: &str,
    guard: Option<&(String, Vec<Value>)>,
) -> Yaml {
    let identity = guard.map(|(g, _)| format!("${{guarded['{g}'].identity}}"));
    let mut with = vec![
        ("topic", s(topic)),
        ("event", h(vec![("id", s("${etag}"))])),
    ];
    if let Some(filters) = op.op["bindings"]["x-zilla-sse-kafka"]["filters"].as_array() {
        with.push((
            "filters",
            list(sse_kafka_filters(filters, identity.as_deref())),
        ));
    }
    let mut r = vec![
        ("when", list(vec![h(vec![("path", s(path))])])),
        ("exit", s(exit)),
        ("with", h(with)),
    ];
    if let Some((guard, roles)) = guard {
        let mut g = Hash::new();
        g.insert(s(guard), list(roles.iter().map(from_json).collect()));
        r.push(("guarded", Yaml::Hash(g)));
    }
    h(r)
}

/// `x-zilla-sse-kafka.filters` as route filters, `{identity}` replaced by `identity`.
fn sse_kafka_filters(filters: &[Value], identity: Option<&str>) -> Vec<Yaml> {
    let subst = |v: &Value| match (v.as_str(), identity) {
        (Some("{identity}"), Some(id)) => s(id),
        _ => from_json(v),
    };
    filters
        .iter()
        .map(|f| {
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
            h(filter)
        })
        .collect()
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
