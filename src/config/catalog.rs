//! `catalogs:` at the top level of zilla.yaml, read into [`Catalog`]s, and the model options
//! (`topics[].key` / `topics[].value`) that refer to them.
//!
//! # API for other parts of the server (models, AsyncAPI)
//!
//! * [`Plan::catalogs`](super::Plan::catalogs) holds every declared catalog, in file order, as
//!   `Arc<Catalog>`; [`Plan::catalog`](super::Plan::catalog)`(name)` finds one by name.
//! * Inside the config loader (another top-level reader such as an AsyncAPI binding), the
//!   catalogs are read before the bindings: `Loader::catalogs` holds the same list.
//! * [`Catalog::local`]`(subject, version)`: the schema of an `inline` or `filesystem`
//!   catalog, in memory (no I/O after load; filesystem files are read when the config is
//!   loaded). `version` is `"latest"` or a version number as text; both catalog kinds keep one
//!   version per subject, so any version answers it. Returns a [`Schema`] (`id`, `text`).
//! * For every kind, registry included: `crate::catalog::lookup(&catalog, subject, version)`
//!   and `crate::catalog::by_id(&catalog, id)` (`src/catalog/mod.rs`) answer a [`Schema`];
//!   for a `schema-registry` they block on HTTP (`GET /subjects/{s}/versions/{v}`,
//!   `GET /schemas/ids/{id}`), cached by id, so call them at load or from a non-worker
//!   thread, never on a worker's event loop.
//!
//! Zilla's ids: `filesystem` and `inline` schemas get the CRC-32C of their text as id (Zilla
//! does so for filesystem; inline catalogs never recognise an id carried in a record, so the
//! id only names the schema); a registry gives its own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::yaml::{Cx, Key, Map, Node};

/// One entry of `catalogs:`.
#[derive(Debug)]
pub struct Catalog {
    /// The name under `catalogs:` (as models name it).
    pub name: String,
    pub kind: CatalogKind,
}

#[derive(Debug)]
pub enum CatalogKind {
    /// `type: inline`, `options.subjects.<subject>: { schema, version }`.
    Inline(Vec<Subject>),
    /// `type: filesystem`, `options.subjects.<subject>: { path }` (relative to zilla.yaml),
    /// read at load.
    Filesystem(Vec<Subject>),
    /// `type: schema-registry` (and `karapace-schema-registry`, same protocol).
    SchemaRegistry(RegistryOptions),
}

/// A schema held by an inline or filesystem catalog.
#[derive(Debug, Clone)]
pub struct Subject {
    pub subject: String,
    /// As written (`latest` when absent).
    #[allow(dead_code)] // informational: one version per subject
    pub version: String,
    pub schema: Schema,
}

/// A schema's id and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub id: u32,
    pub text: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// `url` without a trailing `/` (`http://` or `https://`).
    pub url: String,
    /// `context` (default `default`): a Confluent schema context; `default` is the registry's
    /// default context (no `:.context:` prefix on subjects).
    pub context: String,
    /// `max-age` (seconds, default 300): how long a subject's `latest` version is trusted
    /// before it is asked again. Schemas by id never expire (they are immutable).
    pub max_age: Duration,
}

impl Catalog {
    /// The schema of `subject` in an inline or filesystem catalog; `None` for a registry or
    /// an unknown subject. `version` is not compared: these catalogs hold one version each.
    pub fn local(&self, subject: &str, _version: &str) -> Option<&Schema> {
        match &self.kind {
            CatalogKind::Inline(subjects) | CatalogKind::Filesystem(subjects) => subjects
                .iter()
                .find(|s| s.subject == subject)
                .map(|s| &s.schema),
            CatalogKind::SchemaRegistry(_) => None,
        }
    }

    /// The schema with `id` in an inline or filesystem catalog.
    pub fn local_by_id(&self, id: u32) -> Option<&Schema> {
        match &self.kind {
            CatalogKind::Inline(subjects) | CatalogKind::Filesystem(subjects) => subjects
                .iter()
                .find(|s| s.schema.id == id)
                .map(|s| &s.schema),
            CatalogKind::SchemaRegistry(_) => None,
        }
    }

    /// A registry recognises a Confluent-framed record (magic byte 0 + 4-byte id).
    pub fn is_registry(&self) -> bool {
        matches!(self.kind, CatalogKind::SchemaRegistry(_))
    }
}

impl Schema {
    pub fn new(text: &str) -> Schema {
        Schema {
            id: proto::kafka::crc32c(text.as_bytes()),
            text: text.into(),
        }
    }
}

/// `catalogs: { NAME: { type, options } }`.
pub(super) fn read_catalogs(cx: &mut Cx, top: &Map, base_dir: &Path) -> Vec<Arc<Catalog>> {
    let mut out = Vec::new();
    let Some(catalogs) = top.get("catalogs").and_then(|n| n.map(cx)) else {
        return out;
    };
    for (name, node) in catalogs.entries(cx) {
        let Some(map) = node.map(cx) else { continue };
        map.check(
            cx,
            &[
                ("type", Key::Known),
                ("options", Key::Known),
                ("vault", Key::NotSupported),
            ],
            "unknown key",
        );
        let Some(type_name) = map.require(cx, "type").and_then(|n| n.string(cx)) else {
            continue;
        };
        let options = map.get("options");
        let kind = match type_name.as_str() {
            "inline" => read_inline(cx, &map, options.as_ref()).map(CatalogKind::Inline),
            "filesystem" => {
                read_filesystem(cx, &map, options.as_ref(), base_dir).map(CatalogKind::Filesystem)
            }
            "schema-registry" | "karapace-schema-registry" | "karapace" => {
                read_registry(cx, &map, options.as_ref()).map(CatalogKind::SchemaRegistry)
            }
            "apicurio-registry" | "apicurio" => {
                cx.error(
                    &map.key_path("type"),
                    "catalog type \"apicurio-registry\" not supported yet",
                );
                None
            }
            other => {
                cx.error(
                    &map.key_path("type"),
                    format!(
                        "catalog type {other:?} not supported: expected inline, filesystem or \
                         schema-registry"
                    ),
                );
                None
            }
        };
        if let Some(kind) = kind {
            out.push(Arc::new(Catalog { name, kind }));
        }
    }
    out
}

/// `options.subjects` as (subject, its mapping).
fn subjects<'y>(
    cx: &mut Cx,
    catalog: &Map<'y>,
    options: Option<&Node<'y>>,
) -> Option<Vec<(String, Map<'y>)>> {
    let Some(options) = options else {
        cx.error(&catalog.key_path("options"), "required");
        return None;
    };
    let options = options.map(cx)?;
    options.check(cx, &[("subjects", Key::Known)], "unknown option");
    let subjects = options.require(cx, "subjects")?.map(cx)?;
    let mut out = Vec::new();
    for (subject, node) in subjects.entries(cx) {
        if let Some(map) = node.map(cx) {
            out.push((subject, map));
        }
    }
    Some(out)
}

fn read_inline(cx: &mut Cx, catalog: &Map, options: Option<&Node>) -> Option<Vec<Subject>> {
    let mut out = Vec::new();
    for (subject, map) in subjects(cx, catalog, options)? {
        map.check(
            cx,
            &[("schema", Key::Known), ("version", Key::Known)],
            "unknown option",
        );
        let version = map
            .get("version")
            .and_then(|n| n.string(cx))
            .unwrap_or_else(|| "latest".to_owned());
        let Some(text) = map.require(cx, "schema").and_then(|n| n.string(cx)) else {
            continue;
        };
        out.push(Subject {
            subject,
            version,
            schema: Schema::new(&text),
        });
    }
    Some(out)
}

fn read_filesystem(
    cx: &mut Cx,
    catalog: &Map,
    options: Option<&Node>,
    base_dir: &Path,
) -> Option<Vec<Subject>> {
    let mut out = Vec::new();
    for (subject, map) in subjects(cx, catalog, options)? {
        map.check(cx, &[("path", Key::Known)], "unknown option");
        let Some(node) = map.require(cx, "path") else {
            continue;
        };
        let Some(rel) = node.string(cx) else { continue };
        let path = base_dir.join(&rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push(Subject {
                subject,
                version: "latest".to_owned(),
                schema: Schema::new(&text),
            }),
            Err(e) => cx.error(&node.path, format!("cannot read {}: {e}", path.display())),
        }
    }
    Some(out)
}

fn read_registry(cx: &mut Cx, catalog: &Map, options: Option<&Node>) -> Option<RegistryOptions> {
    let Some(options) = options else {
        cx.error(&catalog.key_path("options"), "required");
        return None;
    };
    let options = options.map(cx)?;
    options.check(
        cx,
        &[
            ("url", Key::Known),
            ("context", Key::Known),
            ("max-age", Key::Known),
            ("tls", Key::NotSupportedYet),
            ("credentials", Key::NotSupportedYet),
        ],
        "unknown option",
    );
    let url_node = options.require(cx, "url")?;
    let url = url_node.string(cx)?;
    let url = url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        cx.error(
            &url_node.path,
            format!("expected an http:// or https:// URL, found {url:?}"),
        );
        return None;
    }
    let context = options
        .get("context")
        .and_then(|n| n.string(cx))
        .unwrap_or_else(|| "default".to_owned());
    let max_age = match options.get("max-age") {
        Some(node) => Duration::from_secs(node.int_in(cx, 0..=i64::from(u32::MAX))? as u64),
        None => Duration::from_secs(300),
    };
    Some(RegistryOptions {
        url,
        context,
        max_age,
    })
}

/// `topics[].key` / `topics[].value`: a model and where its schema comes from.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub model: ModelKind,
    /// `view: json` (avro, protobuf): records are delivered as JSON text. Without it they are
    /// validated and delivered as they are.
    pub view_json: bool,
    pub catalog: Arc<Catalog>,
    /// The first schema selector of the catalog's list (Zilla uses the first).
    pub selector: SchemaSelector,
    /// protobuf `record`: the message name (default: the first message of the schema, or the
    /// one a Confluent message index names).
    pub record: Option<String>,
    /// YAML path of the model, for messages.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Json,
    Avro,
    Protobuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSelector {
    /// `id: N`.
    Id(u32),
    /// `subject: S` with `version` (default `latest`).
    Subject { subject: String, version: String },
    /// `strategy: topic`: subject `<topic>-key` / `<topic>-value`, with `version`.
    Topic { version: String },
}

impl ModelConfig {
    /// The subject this model asks for on `topic` (`None` for an `id` selector).
    pub fn subject(&self, topic: &str, is_key: bool) -> Option<(String, &str)> {
        match &self.selector {
            SchemaSelector::Id(_) => None,
            SchemaSelector::Subject { subject, version } => Some((subject.clone(), version)),
            SchemaSelector::Topic { version } => {
                let suffix = if is_key { "key" } else { "value" };
                Some((format!("{topic}-{suffix}"), version))
            }
        }
    }
}

impl PartialEq for ModelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.model == other.model
            && self.view_json == other.view_json
            && self.catalog.name == other.catalog.name
            && self.selector == other.selector
            && self.record == other.record
    }
}

/// Reads a `key` or `value` model node.
pub(super) fn read_model(
    cx: &mut Cx,
    node: &Node,
    catalogs: &[Arc<Catalog>],
) -> Option<ModelConfig> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[
            ("model", Key::Known),
            ("view", Key::Known),
            ("catalog", Key::Known),
            ("validate", Key::Known),
            ("record", Key::Known),
            ("length", Key::NotSupported),
            ("encoding", Key::NotSupported),
            ("format", Key::NotSupported),
        ],
        "unknown option",
    );
    let model = read_model_kind(cx, &map)?;
    let view_json = read_view(cx, &map, model)?;
    check_validate(cx, &map);
    let record = match map.get("record") {
        Some(n) if model == ModelKind::Protobuf => Some(n.string(cx)?),
        Some(n) => {
            cx.error(&n.path, "only for model protobuf");
            None
        }
        None => None,
    };
    let (catalog, first, name) = read_model_catalog(cx, &map, catalogs)?;
    let (selector, selector_record) = read_selector(cx, &first, model)?;
    let record = record.or(selector_record);
    if !selector_in_catalog(cx, &catalog, &selector, &first, &name) {
        return None;
    }
    Some(ModelConfig {
        model,
        view_json,
        catalog,
        selector,
        record,
        path: node.path.clone(),
    })
}

/// `model`: json, avro or protobuf (the core types are not supported yet).
fn read_model_kind(cx: &mut Cx, map: &Map<'_>) -> Option<ModelKind> {
    let model_node = map.require(cx, "model")?;
    let model = match model_node.string(cx)?.as_str() {
        "json" => ModelKind::Json,
        "avro" => ModelKind::Avro,
        "protobuf" => ModelKind::Protobuf,
        core @ ("string" | "int32" | "int64" | "float" | "double" | "boolean" | "bytes") => {
            cx.error(
                &model_node.path,
                format!("model {core:?} not supported yet"),
            );
            return None;
        }
        other => {
            cx.error(
                &model_node.path,
                format!("unknown model {other:?}: expected json, avro or protobuf"),
            );
            return None;
        }
    };
    Some(model)
}

/// `view: json` (for avro and protobuf: records are turned into JSON).
fn read_view(cx: &mut Cx, map: &Map<'_>, model: ModelKind) -> Option<bool> {
    let view_json = match map.get("view") {
        None => false,
        Some(view) => match view.string(cx)?.as_str() {
            "json" if model != ModelKind::Json => true,
            "json" => {
                cx.error(
                    &view.path,
                    "not supported for model json (its records are JSON)",
                );
                return None;
            }
            other => {
                cx.error(&view.path, format!("unknown view {other:?}: expected json"));
                return None;
            }
        },
    };
    Some(view_json)
}

/// `validate`: strict only.
fn check_validate(cx: &mut Cx, map: &Map<'_>) {
    if let Some(validate) = map.get("validate") {
        match validate.string(cx).as_deref() {
            Some("strict") => {}
            Some("lenient") => cx.error(&validate.path, "validate lenient not supported yet"),
            Some(other) => cx.error(
                &validate.path,
                format!("unknown validate {other:?}: expected strict"),
            ),
            None => {}
        }
    }
}

/// `catalog: { NAME: [selector, ...] }`: the catalog and its first selector node (and name).
fn read_model_catalog<'y>(
    cx: &mut Cx,
    map: &Map<'y>,
    catalogs: &[Arc<Catalog>],
) -> Option<(Arc<Catalog>, Node<'y>, String)> {
    let catalog_map = map.require(cx, "catalog")?.map(cx)?;
    let entries = catalog_map.entries(cx);
    let [(name, list)] = &entries[..] else {
        cx.error(&catalog_map.path, "expected exactly one catalog");
        return None;
    };
    let Some(catalog) = catalogs.iter().find(|c| &c.name == name) else {
        cx.error(&list.path, format!("unknown catalog {name:?}"));
        return None;
    };
    let items = list.list(cx)?;
    let Some(first) = items.into_iter().next() else {
        cx.error(&list.path, "expected at least one schema");
        return None;
    };
    Some((catalog.clone(), first, name.clone()))
}

/// Whether a local catalog holds the schema the selector names (a registry is asked later).
fn selector_in_catalog(
    cx: &mut Cx,
    catalog: &Catalog,
    selector: &SchemaSelector,
    first: &Node<'_>,
    name: &str,
) -> bool {
    if let SchemaSelector::Subject { subject, version } = selector {
        if !catalog.is_registry() && catalog.local(subject, version).is_none() {
            cx.error(
                &first.path,
                format!("subject {subject:?} is not in catalog {name:?}"),
            );
            return false;
        }
    }
    if let SchemaSelector::Id(id) = *selector {
        if !catalog.is_registry() && catalog.local_by_id(id).is_none() {
            cx.error(
                &first.path,
                format!("no schema with id {id} in catalog {name:?}"),
            );
            return false;
        }
    }
    true
}

/// One schema selector and its protobuf `record`.
fn read_selector(
    cx: &mut Cx,
    node: &Node,
    model: ModelKind,
) -> Option<(SchemaSelector, Option<String>)> {
    let map = node.map(cx)?;
    let record = match map.get("record") {
        Some(n) if model == ModelKind::Protobuf => Some(n.string(cx)?),
        Some(n) => {
            cx.error(&n.path, "only for model protobuf");
            return None;
        }
        None => None,
    };
    let selector = read_selector_kind(cx, &map, model)?;
    Some((selector, record))
}

fn read_selector_kind(cx: &mut Cx, map: &Map, model: ModelKind) -> Option<SchemaSelector> {
    map.check(
        cx,
        &[
            ("id", Key::Known),
            ("subject", Key::Known),
            ("strategy", Key::Known),
            ("version", Key::Known),
            ("record", Key::Known),
            ("overlay", Key::NotSupported),
        ],
        "unknown option",
    );
    let version = map
        .get("version")
        .and_then(|n| n.string(cx))
        .unwrap_or_else(|| "latest".to_owned());
    if version != "latest" && version.parse::<u32>().is_err() {
        cx.error(
            &map.key_path("version"),
            format!("expected latest or a version number, found {version:?}"),
        );
        return None;
    }
    if let Some(id) = map.get("id") {
        return Some(SchemaSelector::Id(
            id.int_in(cx, 0..=i64::from(u32::MAX))? as u32
        ));
    }
    if let Some(subject) = map.get("subject") {
        return Some(SchemaSelector::Subject {
            subject: subject.string(cx)?,
            version,
        });
    }
    if let Some(strategy) = map.get("strategy") {
        return match strategy.string(cx)?.as_str() {
            "topic" => Some(SchemaSelector::Topic { version }),
            other @ ("encoded" | "tool") if model != ModelKind::Protobuf => {
                cx.error(
                    &strategy.path,
                    format!("strategy {other:?} not supported yet (fetched records use topic)"),
                );
                None
            }
            other => {
                cx.error(&strategy.path, format!("unknown strategy {other:?}"));
                None
            }
        };
    }
    cx.error(&map.path, "expected id, subject or strategy");
    None
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const CHAIN: &str = r#"
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 7114 }, exit: http }
  http: { type: http, kind: server, exit: sse }
  sse: { type: sse, kind: server, exit: mapping }
  mapping: { type: sse-kafka, kind: proxy, routes: [ { when: [ { path: '/{topic}' } ], exit: cache_client, with: { topic: '${params.topic}' } } ] }
  cache_client: { type: kafka, kind: cache_client, exit: cache_server }
  cache_server:
    type: kafka
    kind: cache_server
    options:
      topics:
        - name: items
          key: { model: json, catalog: { local: [ { subject: items-key } ] } }
          value: { model: avro, view: json, catalog: { registry: [ { strategy: topic, version: latest } ] } }
        - name: 'orders-{region}'
          value: { model: protobuf, view: json, catalog: { files: [ { subject: order, record: Order } ] } }
    exit: client
  client: { type: kafka, kind: client, options: { servers: [ 'localhost:9092' ] } }
"#;

    fn load(catalogs: &str, chain: &str) -> Result<super::super::Plan, Vec<String>> {
        // A directory per call: the tests run in parallel.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("order.proto"),
            "syntax = \"proto3\"; message Order { string id = 1; }",
        )
        .unwrap();
        let text = format!("catalogs:\n{catalogs}{chain}");
        parse(&text, dir, &|name| {
            (name == "REGISTRY").then(|| "http://sr:8081/".to_owned())
        })
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    const CATALOGS: &str = r#"
  local:
    type: inline
    options:
      subjects:
        items-key: { schema: '{"type":"object"}', version: latest }
  files:
    type: filesystem
    options: { subjects: { order: { path: order.proto } } }
  registry:
    type: schema-registry
    options: { url: '${{env.REGISTRY}}', context: default, max-age: 60 }
"#;

    #[test]
    fn catalogs_and_models_load() {
        let plan = load(CATALOGS, CHAIN).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(plan.catalogs.len(), 3);
        let local = plan.catalog("local").unwrap();
        let schema = local.local("items-key", "latest").unwrap();
        assert_eq!(&*schema.text, r#"{"type":"object"}"#);
        assert_eq!(schema.id, proto::kafka::crc32c(br#"{"type":"object"}"#));
        assert_eq!(local.local_by_id(schema.id), Some(schema));
        let files = plan.catalog("files").unwrap();
        assert!(files
            .local("order", "1")
            .unwrap()
            .text
            .contains("message Order"));
        let CatalogKind::SchemaRegistry(options) = &plan.catalog("registry").unwrap().kind else {
            panic!("registry");
        };
        assert_eq!(options.url, "http://sr:8081");
        assert_eq!(options.max_age, Duration::from_secs(60));

        let topics = &plan.clusters[0].topics;
        let key = topics[0].key.as_ref().unwrap();
        assert_eq!(key.model, ModelKind::Json);
        assert_eq!(
            key.subject("items", true),
            Some(("items-key".to_owned(), "latest"))
        );
        let value = topics[0].value.as_ref().unwrap();
        assert!(value.view_json && value.catalog.is_registry());
        assert_eq!(
            value.subject("items", false),
            Some(("items-value".to_owned(), "latest"))
        );
        let order = topics[1].value.as_ref().unwrap();
        assert_eq!(order.record.as_deref(), Some("Order"));
        assert!(topics[1].matches("orders-eu"));
        assert!(!topics[1].matches("orders-"));
        assert!(!topics[1].matches("items"));
        assert_eq!(value.path, "bindings.cache_server.options.topics[0].value");
    }

    #[test]
    fn errors_name_their_path() {
        let bad = r#"
  a: { type: apicurio-registry, options: { url: 'http://x' } }
  b: { type: magic }
  c: { type: schema-registry, options: { url: 'ftp://x', tls: {} } }
  d: { type: filesystem, options: { subjects: { s: { path: missing.json } } } }
  e: { type: inline, options: { subjects: { s: { version: 1 } } } }
"#;
        let errors = load(bad, "bindings: {}\n").unwrap_err();
        let expect = [
            "catalogs.a.type: catalog type \"apicurio-registry\" not supported yet",
            "catalogs.b.type: catalog type \"magic\" not supported: expected inline, filesystem or schema-registry",
            "catalogs.c.options.tls: not supported yet",
            "catalogs.c.options.url: expected an http:// or https:// URL, found \"ftp://x\"",
            "catalogs.e.options.subjects.s.schema: required",
        ];
        for e in expect {
            assert!(errors.iter().any(|x| x == e), "{e} not in {errors:#?}");
        }
        assert!(errors
            .iter()
            .any(|x| x.starts_with("catalogs.d.options.subjects.s.path: cannot read")));

        let chain = CHAIN
            .replace("{ subject: items-key }", "{ subject: nope }")
            .replace("model: avro, view: json", "model: int32")
            .replace("record: Order", "record: Order, overlay: {}");
        let errors = load(CATALOGS, &chain).unwrap_err();
        assert_eq!(
            errors,
            [
                "bindings.cache_server.options.topics[0].key.catalog.local[0]: subject \"nope\" is not in catalog \"local\"",
                "bindings.cache_server.options.topics[0].value.model: model \"int32\" not supported yet",
                "bindings.cache_server.options.topics[1].value.catalog.files[0].overlay: not supported",
            ]
        );
        let chain = CHAIN.replace("catalog: { local:", "catalog: { other:");
        let errors = load(CATALOGS, &chain).unwrap_err();
        assert_eq!(
            errors,
            ["bindings.cache_server.options.topics[0].key.catalog.other: unknown catalog \"other\""]
        );
    }
}
