//! `http` server bindings: versions, access control (CORS) and header-condition routes.

use std::sync::Arc;

use super::loader::{Kind, Loader};
use super::pattern::Glob;
use super::plan::{AccessControl, HttpCondition, HttpExit, HttpRoute, HttpService};
use super::yaml::{Cx, Key, Map, Node};

impl<'y, 'e> Loader<'y, 'e> {
    /// An http server binding, read once and shared by every listener that reaches it.
    pub fn http_server(&mut self, idx: usize) -> Option<Arc<HttpService>> {
        self.memoized(idx, |memo| &mut memo.http, Self::build_http_server)
    }

    fn build_http_server(&mut self, idx: usize) -> Option<Arc<HttpService>> {
        let options = self.options(
            idx,
            &[
                ("versions", Key::Known),
                ("access-control", Key::Known),
                ("authorization", Key::Known),
                ("overrides", Key::NotSupported),
                ("requests", Key::NotSupported),
            ],
        );
        let (mut http1, mut h2) = (true, true);
        let mut access_control = AccessControl::SameOrigin;
        let mut authorization = None;
        if let Some(options) = &options {
            if let Some(node) = options.get("authorization") {
                authorization = self.authorization(&node);
            }
            if let Some(node) = options.get("versions") {
                if let Some((v1, v2)) = read_versions(&mut self.cx, &node) {
                    (http1, h2) = (v1, v2);
                }
            }
            if let Some(node) = options.get("access-control") {
                if let Some(policy) = read_access_control(&mut self.cx, &node) {
                    access_control = policy;
                }
            }
        }

        let specs = self.routes(
            idx,
            &[("guarded", Key::Known), ("with", Key::NotSupported)],
            true,
        );
        let mut routes = Vec::with_capacity(specs.len());
        for spec in specs {
            let when: Vec<HttpCondition> = spec
                .when
                .iter()
                .filter_map(|condition| read_condition(&mut self.cx, condition))
                .collect();
            let guarded = self.guarded(spec.guarded.as_ref());
            let exit = spec.exit.as_ref().and_then(|exit| {
                let target = self.exit(idx, exit, &[Kind::SseServer, Kind::HttpFilesystemProxy])?;
                match self.bindings[target].kind {
                    Some(Kind::SseServer) => self.sse_server(target).map(HttpExit::Sse),
                    _ => self.http_filesystem_proxy(target).map(HttpExit::Files),
                }
            });
            if let Some(exit) = exit {
                routes.push(HttpRoute {
                    when,
                    guarded,
                    exit,
                });
            }
        }
        Some(Arc::new(HttpService {
            binding: self.bindings[idx].name.clone(),
            http1,
            h2,
            access_control,
            authorization,
            routes,
        }))
    }
}

/// `versions: [http/1.1, h2]` → (http1, h2).
fn read_versions(cx: &mut Cx, node: &Node) -> Option<(bool, bool)> {
    let items = node.list(cx)?;
    let (mut http1, mut h2) = (false, false);
    for item in &items {
        match item.string(cx)?.as_str() {
            "http/1.1" => http1 = true,
            "h2" => h2 = true,
            other => {
                cx.error(
                    &item.path,
                    format!("unknown version {other:?}: expected http/1.1 or h2"),
                );
                return None;
            }
        }
    }
    if items.is_empty() {
        cx.error(&node.path, "expected at least one of http/1.1, h2");
        return None;
    }
    Some((http1, h2))
}

/// `access-control: { policy: same-origin | cross-origin, allow, max-age, expose }`.
fn read_access_control(cx: &mut Cx, node: &Node) -> Option<AccessControl> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[
            ("policy", Key::Known),
            ("allow", Key::Known),
            ("max-age", Key::Known),
            ("expose", Key::Known),
        ],
        "unknown option",
    );
    let policy = map.require(cx, "policy")?;
    match policy.string(cx)?.as_str() {
        "same-origin" => {
            for key in ["allow", "max-age", "expose"] {
                if map.get(key).is_some() {
                    cx.error(&map.key_path(key), "only allowed with policy cross-origin");
                }
            }
            Some(AccessControl::SameOrigin)
        }
        "cross-origin" => read_cross_origin(cx, &map),
        other => {
            cx.error(
                &policy.path,
                format!("unknown policy {other:?}: expected same-origin or cross-origin"),
            );
            None
        }
    }
}

fn read_cross_origin(cx: &mut Cx, map: &Map) -> Option<AccessControl> {
    let (mut origins, mut methods, mut headers, mut credentials) = (None, None, None, false);
    if let Some(allow) = map.get("allow").and_then(|n| n.map(cx)) {
        allow.check(
            cx,
            &[
                ("origins", Key::Known),
                ("methods", Key::Known),
                ("headers", Key::Known),
                ("credentials", Key::Known),
            ],
            "unknown option",
        );
        origins = allow.get("origins").and_then(|n| n.strings(cx));
        methods = allow.get("methods").and_then(|n| n.strings(cx));
        headers = allow.get("headers").and_then(|n| n.strings(cx));
        credentials = allow
            .get("credentials")
            .and_then(|n| n.boolean(cx))
            .unwrap_or(false);
    }
    let max_age = map
        .get("max-age")
        .and_then(|n| n.int_in(cx, 0..=i64::from(u32::MAX)))
        .map(|v| v as u32);
    let mut expose = None;
    if let Some(node) = map.get("expose").and_then(|n| n.map(cx)) {
        node.check(cx, &[("headers", Key::Known)], "unknown option");
        expose = node.get("headers").and_then(|n| n.strings(cx));
    }
    Some(AccessControl::CrossOrigin {
        origins,
        methods,
        headers,
        credentials,
        max_age,
        expose,
    })
}

/// `{ headers: { name: pattern, ... } }`; `:path` patterns tolerate a query string.
fn read_condition(cx: &mut Cx, node: &Node) -> Option<HttpCondition> {
    let map = node.map(cx)?;
    map.check(cx, &[("headers", Key::Known)], "unknown key");
    let mut headers = Vec::new();
    if let Some(map) = map.get("headers").and_then(|n| n.map(cx)) {
        for (name, value) in map.entries(cx) {
            let Some(pattern) = value.string(cx) else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            let glob = if name == ":path" {
                Glob::path(&pattern)
            } else {
                Glob::new(&pattern)
            };
            headers.push((name, glob));
        }
    }
    Some(HttpCondition { headers })
}
