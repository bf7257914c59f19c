//! The top level of `zilla.yaml`: `name`, `bindings`, `guards`, `vaults`, `telemetry`.

use std::path::Path;

use yaml_rust2::Yaml;

use super::guard;
use super::loader::Loader;
use super::plan::{ConfigError, Plan, PrometheusEndpoint};
use super::yaml::{Cx, Key, Map, Node};

/// Reads one parsed YAML document into a plan, or every problem found.
pub(super) fn read(
    root: &Yaml,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<ConfigError>> {
    let mut cx = Cx::new(env);
    let Some(top) = Node::root(root).map(&mut cx) else {
        return Err(cx.errors);
    };
    top.check(
        &mut cx,
        &[
            ("name", Key::Known),
            ("bindings", Key::Known),
            ("guards", Key::Known),
            ("vaults", Key::Known),
            ("telemetry", Key::Known),
            ("catalogs", Key::Known),
        ],
        "unknown key",
    );
    let name = top.get("name").and_then(|n| n.string(&mut cx));
    let guards = guard::read_guards(&mut cx, &top, base_dir);
    let plan_guards = guards.built.clone();
    let catalogs = super::catalog::read_catalogs(&mut cx, &top, base_dir);
    let vaults = super::tls::read_vaults(&mut cx, &top, base_dir);
    let telemetry = top
        .get("telemetry")
        .map(|node| read_telemetry(&mut cx, &node))
        .unwrap_or_default();

    let Some(bindings) = top
        .require(&mut cx, "bindings")
        .and_then(|n| n.map(&mut cx))
    else {
        return Err(cx.errors);
    };
    let mut loader = Loader::new(
        cx,
        base_dir.to_owned(),
        name.clone(),
        guards,
        vaults,
        &bindings,
    );
    loader.catalogs = catalogs.clone();
    let resolved = loader.resolve(&bindings.path);
    let mut cx = loader.cx;
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    guard::check_guard_use(&mut cx, &resolved.listeners, &plan_guards);
    Ok(Plan {
        name,
        listeners: resolved.listeners,
        clusters: resolved.clusters,
        telemetry_stdout: telemetry.stdout,
        prometheus: telemetry.prometheus,
        warnings: cx.warnings,
        guards: plan_guards,
        catalogs,
    })
}

#[derive(Default)]
struct Telemetry {
    stdout: bool,
    prometheus: Vec<PrometheusEndpoint>,
}

/// `telemetry: { attributes, metrics, exporters }`.
fn read_telemetry(cx: &mut Cx, node: &Node) -> Telemetry {
    let mut telemetry = Telemetry::default();
    let Some(map) = node.map(cx) else {
        return telemetry;
    };
    map.check(
        cx,
        &[
            ("attributes", Key::Known),
            ("metrics", Key::Known),
            ("exporters", Key::Known),
        ],
        "unknown key",
    );
    if let Some(attributes) = map.get("attributes").and_then(|n| n.map(cx)) {
        for (_, value) in attributes.entries(cx) {
            value.string(cx);
        }
    }
    if let Some(metrics) = map.get("metrics") {
        if metrics.strings(cx).is_some() {
            cx.warn(
                &metrics.path,
                "every metric is exported; the list does not select them",
            );
        }
    }
    let Some(exporters) = map.get("exporters").and_then(|n| n.map(cx)) else {
        return telemetry;
    };
    for (_, exporter) in exporters.entries(cx) {
        let Some(exporter_map) = exporter.map(cx) else {
            continue;
        };
        exporter_map.check(
            cx,
            &[("type", Key::Known), ("options", Key::Known)],
            "unknown key",
        );
        let Some(type_name) = exporter_map.require(cx, "type").and_then(|n| n.string(cx)) else {
            continue;
        };
        match type_name.as_str() {
            "stdout" => {
                telemetry.stdout = true;
                if let Some(options) = exporter_map.get("options") {
                    cx.warn(&options.path, "stdout exporter options are ignored");
                }
            }
            "prometheus" => read_prometheus(cx, &exporter_map, &mut telemetry.prometheus),
            other => cx.error(
                &exporter_map.key_path("type"),
                format!("exporter type {other:?} not supported"),
            ),
        }
    }
    telemetry
}

/// `options.endpoints: [{ scheme: http, port, path (default /metrics) }]`.
fn read_prometheus(cx: &mut Cx, exporter: &Map, out: &mut Vec<PrometheusEndpoint>) {
    let Some(options) = exporter.require(cx, "options").and_then(|n| n.map(cx)) else {
        return;
    };
    options.check(cx, &[("endpoints", Key::Known)], "unknown option");
    let Some(endpoints) = options.require(cx, "endpoints").and_then(|n| n.list(cx)) else {
        return;
    };
    for endpoint in endpoints {
        let Some(e) = endpoint.map(cx) else { continue };
        e.check(
            cx,
            &[
                ("scheme", Key::Known),
                ("port", Key::Known),
                ("path", Key::Known),
            ],
            "unknown option",
        );
        if let Some(scheme) = e.get("scheme").and_then(|n| n.string(cx)) {
            if scheme != "http" {
                cx.error(
                    &e.key_path("scheme"),
                    format!("scheme {scheme:?} not supported"),
                );
            }
        }
        let port = e.require(cx, "port").and_then(|n| n.int_in(cx, 1..=65535));
        let path = e
            .get("path")
            .and_then(|n| n.string(cx))
            .unwrap_or_else(|| "/metrics".to_owned());
        if let Some(port) = port {
            out.push(PrometheusEndpoint {
                port: port as u16,
                path,
            });
        }
    }
}
