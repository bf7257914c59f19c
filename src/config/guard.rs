//! `guards:` (the `jwt` guard and its keys, the `inline` guard's static credentials), http `options.authorization`, route `guarded`, and
//! the checks that tie them together: every guard named must be declared, every
//! `${guarded['GUARD'].attributes.NAME}` must name a declared attribute, and a guard that no
//! http binding authorizes with (so that it can never pass) is reported as a warning.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::jwt::{Jwk, JwkParams, KeySet};
use yaml_rust2::Yaml;

use super::loader::Loader;
use super::plan::{
    Authorization, CredentialSource, Guard, GuardKind, HttpExit, HttpService, JwtGuard, JwtKeys,
    Listener, Template,
};
use super::yaml::{describe, Cx, Key, Map, Node};

/// The guards of a document: every declared name, and the guards that were read without error.
#[derive(Default)]
pub(super) struct Guards {
    /// Every name under `guards:`, refused ones included (references to those stay silent:
    /// the guard's own error stands).
    pub declared: Vec<String>,
    pub built: Vec<Arc<Guard>>,
    /// `type: inline` guards: credentials a kafka client binding authenticates to brokers with.
    pub inline: Vec<(String, InlineGuard)>,
}

/// `type: inline` (`options.identity`, `options.credentials`): static values a kafka client's
/// `options.authorization` names as `{identity}` and `{credentials}`.
#[derive(Clone)]
pub(super) struct InlineGuard {
    pub identity: Option<String>,
    pub credentials: Option<String>,
}

enum ReadGuard {
    Jwt(GuardKind),
    Inline(InlineGuard),
}

/// JWK members read for the key itself.
const JWK_MEMBERS: [&str; 10] = ["kty", "kid", "alg", "use", "n", "e", "crv", "x", "y", "k"];
/// Private-key members of RSA and EC JWKs: never used, reported.
const JWK_PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// `guards: { NAME: { type: jwt, options: {...} } }`.
pub(super) fn read_guards(cx: &mut Cx, top: &Map, base_dir: &Path) -> Guards {
    let mut guards = Guards::default();
    let Some(map) = top.get("guards").and_then(|n| n.map(cx)) else {
        return guards;
    };
    for (name, node) in map.entries(cx) {
        guards.declared.push(name.clone());
        match read_guard(cx, &node, base_dir) {
            Some(ReadGuard::Jwt(kind)) => guards.built.push(Arc::new(Guard { name, kind })),
            Some(ReadGuard::Inline(inline)) => guards.inline.push((name, inline)),
            None => {}
        }
    }
    guards
}

fn read_guard(cx: &mut Cx, node: &Node, base_dir: &Path) -> Option<ReadGuard> {
    let map = node.map(cx)?;
    map.check(
        cx,
        &[("type", Key::Known), ("options", Key::Known)],
        "unknown key",
    );
    let type_node = map.require(cx, "type")?;
    let type_name = type_node.string(cx)?;
    if type_name == "inline" {
        let options = map.require(cx, "options")?.map(cx)?;
        return read_inline(cx, &options).map(ReadGuard::Inline);
    }
    if type_name != "jwt" {
        cx.error(
            &type_node.path,
            format!("guard type {type_name:?} not supported"),
        );
        return None;
    }
    let options = map.require(cx, "options")?.map(cx)?;
    read_jwt(cx, &options, base_dir).map(|jwt| ReadGuard::Jwt(GuardKind::Jwt(jwt)))
}

/// `options` of an `inline` guard: `identity`, `credentials` (strings, `${{env.X}}` allowed),
/// `format` (accepted, not used).
fn read_inline(cx: &mut Cx, options: &Map) -> Option<InlineGuard> {
    options.check(
        cx,
        &[
            ("identity", Key::Known),
            ("credentials", Key::Known),
            ("format", Key::Known),
        ],
        "unknown option",
    );
    let mut ok = true;
    let mut value = |cx: &mut Cx, key: &str| match options.get(key) {
        Some(node) => {
            let value = node.string(cx);
            ok &= value.is_some();
            value
        }
        None => None,
    };
    let identity = value(cx, "identity");
    let credentials = value(cx, "credentials");
    if let Some(format) = options.get("format") {
        if format.string(cx).is_some() {
            cx.warn(&format.path, "not used: the values are sent as they are");
        }
    }
    ok.then_some(InlineGuard {
        identity,
        credentials,
    })
}

/// `options` of a `jwt` guard.
fn read_jwt(cx: &mut Cx, options: &Map, base_dir: &Path) -> Option<JwtGuard> {
    options.check(
        cx,
        &[
            ("issuer", Key::Known),
            ("audience", Key::Known),
            ("keys", Key::Known),
            ("challenge", Key::Known),
            ("roles", Key::Known),
            ("identity", Key::Known),
            ("attributes", Key::Known),
        ],
        "unknown option",
    );
    let mut ok = true;
    let mut optional = |cx: &mut Cx, key: &str| match options.get(key) {
        Some(node) => {
            let value = node.string(cx);
            ok &= value.is_some();
            value
        }
        None => None,
    };
    let issuer = optional(cx, "issuer");
    let audience = optional(cx, "audience");
    let challenge = match options.get("challenge") {
        Some(node) => {
            let value = node.int_in(cx, 0..=i64::from(u32::MAX));
            ok &= value.is_some();
            value.map(|v| v as u64)
        }
        None => None,
    };
    let roles_claim = claim_path(cx, options.get("roles"), "scope");
    let identity_claim = claim_path(cx, options.get("identity"), "sub");
    let mut attributes = Vec::new();
    if let Some(map) = options.get("attributes").and_then(|n| n.map(cx)) {
        for (name, node) in map.entries(cx) {
            match claim_path(cx, Some(node), "") {
                Some(path) => attributes.push((name, path)),
                None => ok = false,
            }
        }
    } else if options.get("attributes").is_some() {
        ok = false;
    }
    let keys = match options.get("keys") {
        Some(node) => read_keys(cx, &node, base_dir),
        None => implicit_keys(cx, options, issuer.as_deref()),
    };
    let (keys, roles_claim, identity_claim) = (keys?, roles_claim?, identity_claim?);
    ok.then_some(JwtGuard {
        issuer,
        audience,
        keys,
        challenge,
        roles_claim,
        identity_claim,
        attributes,
    })
}

/// A dotted claim path (`realm_access.roles`); a JSONPath-style `$.` in front is removed.
fn claim_path(cx: &mut Cx, node: Option<Node>, default: &str) -> Option<String> {
    let Some(node) = node else {
        return Some(default.to_owned());
    };
    let text = node.string(cx)?;
    let path = text.strip_prefix("$.").unwrap_or(&text);
    if path.is_empty() || path.split('.').any(str::is_empty) {
        cx.error(
            &node.path,
            format!("claim path {text:?}: expected names separated by '.'"),
        );
        return None;
    }
    Some(path.to_owned())
}

/// `keys` absent: `<issuer>/.well-known/jwks.json`, as Zilla.
fn implicit_keys(cx: &mut Cx, options: &Map, issuer: Option<&str>) -> Option<JwtKeys> {
    let Some(issuer) = issuer else {
        cx.error(
            &options.key_path("keys"),
            "required (or an issuer, whose /.well-known/jwks.json is then used)",
        );
        return None;
    };
    if url_scheme(issuer).is_none() {
        cx.error(
            &options.key_path("keys"),
            format!(
                "required: issuer {issuer:?} is not an https:// or http:// URL to take \
                 /.well-known/jwks.json from"
            ),
        );
        return None;
    }
    let url = if issuer.ends_with('/') {
        format!("{issuer}.well-known/jwks.json")
    } else {
        format!("{issuer}/.well-known/jwks.json")
    };
    check_url(cx, &options.key_path("issuer"), &url)?;
    Some(JwtKeys::Url(url))
}

/// `https` or `http` when `text` starts with `https://` or `http://`.
fn url_scheme(text: &str) -> Option<&'static str> {
    if text.starts_with("https://") {
        Some("https")
    } else if text.starts_with("http://") {
        Some("http")
    } else {
        None
    }
}

/// A JWKS URL: a host, no whitespace; plain http to another host than loopback is a warning.
fn check_url(cx: &mut Cx, path: &str, url: &str) -> Option<()> {
    let scheme = url_scheme(url)?;
    let rest = &url[scheme.len() + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    if host.is_empty() || url.contains(char::is_whitespace) {
        cx.error(path, format!("{url:?} is not a URL with a host"));
        return None;
    }
    let loopback = host == "localhost"
        || host == "::1"
        || host.starts_with("127.")
        || host.ends_with(".localhost");
    if scheme == "http" && !loopback {
        cx.warn(
            path,
            format!(
                "keys are fetched from {url} over plain http: they can be replaced in transit; \
                 use https"
            ),
        );
    }
    Some(())
}

/// `keys`: a JWKS URL, `file:PATH`, or a list of JWKs.
fn read_keys(cx: &mut Cx, node: &Node, base_dir: &Path) -> Option<JwtKeys> {
    match node.yaml {
        Yaml::Array(_) => read_inline_keys(cx, node),
        Yaml::String(_) => {
            let text = node.string(cx)?;
            if url_scheme(&text).is_some() {
                check_url(cx, &node.path, &text)?;
                return Some(JwtKeys::Url(text));
            }
            if let Some(file) = text.strip_prefix("file:") {
                return read_keys_file(cx, node, base_dir, file);
            }
            cx.error(
                &node.path,
                format!(
                    "expected a JWKS URL (https://... or http://...), file:PATH or a list of \
                     JWKs, found {text:?}"
                ),
            );
            None
        }
        other => {
            cx.error(
                &node.path,
                format!(
                    "expected a JWKS URL (https://... or http://...), file:PATH or a list of \
                     JWKs, found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// `keys: file:PATH` (relative to the configuration file's directory) or `file:///PATH`.
fn read_keys_file(cx: &mut Cx, node: &Node, base_dir: &Path, file: &str) -> Option<JwtKeys> {
    let file = match file.strip_prefix("//") {
        Some(url_path) => match url_path.strip_prefix("localhost").unwrap_or(url_path) {
            absolute if absolute.starts_with('/') => absolute,
            _ => {
                cx.error(
                    &node.path,
                    "a file:// URL must name a local absolute path (file:///PATH); use \
                     file:PATH for a path relative to the configuration",
                );
                return None;
            }
        },
        None => file,
    };
    if file.is_empty() {
        cx.error(&node.path, "file: names no file");
        return None;
    }
    let path: PathBuf = base_dir.join(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            cx.error(&node.path, format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    let set = match KeySet::from_jwks(&text) {
        Ok(set) => set,
        Err(e) => {
            cx.error(&node.path, format!("{}: {e}", path.display()));
            return None;
        }
    };
    for (kid, reason) in set.skipped() {
        let which = kid
            .as_ref()
            .map_or_else(|| "a key without kid".to_owned(), |k| format!("key {k:?}"));
        cx.warn(
            &node.path,
            format!("{}: {which} skipped: {reason}", path.display()),
        );
    }
    Some(JwtKeys::File(path))
}

/// `keys: [ { kty, kid, alg, n, e, ... }, '{"kty": ...}' ]`.
fn read_inline_keys(cx: &mut Cx, node: &Node) -> Option<JwtKeys> {
    let items = node.list(cx)?;
    if items.is_empty() {
        cx.error(&node.path, "expected at least one key");
        return None;
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in &items {
        let key = match item.yaml {
            Yaml::String(_) => item.string(cx).and_then(|text| {
                Jwk::from_json(&text)
                    .map_err(|e| cx.error(&item.path, e.to_string()))
                    .ok()
            }),
            _ => read_jwk(cx, item),
        };
        match key {
            Some(key) => keys.push(key),
            None => ok = false,
        }
    }
    ok.then(|| JwtKeys::Inline(Arc::new(KeySet::new(keys))))
}

/// One JWK written as a YAML mapping.
fn read_jwk(cx: &mut Cx, node: &Node) -> Option<Jwk> {
    let map = node.map(cx)?;
    let mut values: [Option<String>; JWK_MEMBERS.len()] = Default::default();
    let mut ok = true;
    for (name, member) in map.entries(cx) {
        if let Some(i) = JWK_MEMBERS.iter().position(|m| *m == name) {
            let value = member.string(cx);
            ok &= value.is_some();
            // Standard base64 (`+`, `/`), as in Zilla's own sample keys, read as base64url.
            values[i] = value.map(|v| match name.as_str() {
                "n" | "e" | "x" | "y" | "k" => v.replace('+', "-").replace('/', "_"),
                _ => v,
            });
        } else if JWK_PRIVATE_MEMBERS.contains(&name.as_str()) {
            cx.warn(
                &member.path,
                "private key member ignored: only the public key is used (configure public \
                 keys only)",
            );
        }
    }
    if values[0].is_none() {
        if map.get("kty").is_none() {
            cx.error(&map.key_path("kty"), "required");
        }
        return None;
    }
    if !ok {
        return None;
    }
    let get = |i: usize| values[i].as_deref();
    let params = JwkParams {
        kty: get(0).unwrap_or_default(),
        kid: get(1),
        alg: get(2),
        n: get(4),
        e: get(5),
        crv: get(6),
        x: get(7),
        y: get(8),
        k: get(9),
    };
    Jwk::from_params(&params)
        .map_err(|e| cx.error(&node.path, e.to_string()))
        .ok()
}

impl<'y, 'e> Loader<'y, 'e> {
    /// The guard `name`, reported at `path` when not declared. `None` also for a declared
    /// guard that was refused (its own error stands).
    pub fn guard(&mut self, path: &str, name: &str) -> Option<Arc<Guard>> {
        if let Some(guard) = self.guards.iter().find(|g| g.name == name) {
            return Some(guard.clone());
        }
        if self.inline_guards.iter().any(|(n, _)| n == name) {
            self.cx.error(
                path,
                format!(
                    "guard {name:?} is an inline guard: only a kafka client's \
                     options.authorization can use it"
                ),
            );
            return None;
        }
        if !self.guard_names.iter().any(|n| n == name) {
            self.cx.error(path, format!("unknown guard {name:?}"));
        }
        None
    }

    /// A route's `guarded: { GUARD: [roles] }` (absent: unguarded).
    pub fn guarded(&mut self, node: Option<&Node<'y>>) -> Vec<(Arc<Guard>, Vec<String>)> {
        let Some(map) = node.and_then(|n| n.map(&mut self.cx)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, roles_node) in map.entries(&mut self.cx) {
            let guard = self.guard(&roles_node.path, &name);
            let roles = roles_node.strings(&mut self.cx);
            if let (Some(guard), Some(roles)) = (guard, roles) {
                out.push((guard, roles));
            }
        }
        out
    }

    /// `${guarded['GUARD']...}` in a template: the guard must be declared and, for
    /// `.attributes.NAME`, declare that attribute. False when refused (reported at `path`).
    pub fn check_template_guards(&mut self, path: &str, template: &Template) -> bool {
        let mut ok = true;
        let mut seen: Vec<&str> = Vec::new();
        for name in template.guard_names() {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            ok &= self.guard(path, name).is_some();
        }
        for (name, attribute) in template.guard_attributes() {
            let Some(guard) = self.guards.iter().find(|g| g.name == name) else {
                continue;
            };
            if guard.jwt().attribute(attribute).is_none() {
                self.cx.error(
                    path,
                    format!(
                        "${{guarded['{name}'].attributes.{attribute}}}: guard {name:?} declares \
                         no attribute {attribute:?} (Zilla would resolve it to an empty string; \
                         refused here because it can never resolve)"
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    /// http `options.authorization: { GUARD: { credentials: { headers, query, cookies } } }`.
    pub fn authorization(&mut self, node: &Node<'y>) -> Option<Authorization> {
        let map = node.map(&mut self.cx)?;
        let entries = map.entries(&mut self.cx);
        let [(name, entry)] = &entries[..] else {
            self.cx.error(
                &node.path,
                format!("expected exactly one guard, found {}", entries.len()),
            );
            return None;
        };
        let guard = self.guard(&entry.path, name);
        let credentials = read_credentials(&mut self.cx, entry);
        Some(Authorization {
            guard: guard?,
            credentials: credentials?,
        })
    }
}

/// `{ credentials: { cookies, headers, query } }`, in Zilla's precedence order.
fn read_credentials(cx: &mut Cx, entry: &Node) -> Option<Vec<CredentialSource>> {
    let map = entry.map(cx)?;
    map.check(cx, &[("credentials", Key::Known)], "unknown key");
    let credentials = map.require(cx, "credentials")?.map(cx)?;
    credentials.check(
        cx,
        &[
            ("headers", Key::Known),
            ("query", Key::Known),
            ("cookies", Key::Known),
        ],
        "unknown key",
    );
    let mut out = Vec::new();
    let mut ok = true;
    for source in ["cookies", "headers", "query"] {
        let Some(node) = credentials.get(source) else {
            continue;
        };
        let Some(names) = node.map(cx) else {
            ok = false;
            continue;
        };
        for (name, pattern_node) in names.entries(cx) {
            let Some(pattern) = pattern_node.string(cx) else {
                ok = false;
                continue;
            };
            let Some((prefix, suffix)) = split_pattern(cx, &pattern_node.path, &pattern) else {
                ok = false;
                continue;
            };
            out.push(match source {
                "cookies" => CredentialSource::Cookie {
                    name,
                    prefix,
                    suffix,
                },
                "headers" => CredentialSource::Header {
                    name: name.to_ascii_lowercase(),
                    prefix,
                    suffix,
                },
                _ => CredentialSource::Query {
                    name,
                    prefix,
                    suffix,
                },
            });
        }
    }
    if ok && out.is_empty() {
        cx.error(
            &credentials.path,
            "expected at least one of headers, query, cookies",
        );
        return None;
    }
    ok.then_some(out)
}

/// `PREFIX{credentials}SUFFIX` → (prefix, suffix).
fn split_pattern(cx: &mut Cx, path: &str, pattern: &str) -> Option<(String, String)> {
    if pattern.contains("{username}") || pattern.contains("{password}") {
        cx.error(
            path,
            format!("{pattern:?}: Basic credentials ({{username}}, {{password}}) not supported"),
        );
        return None;
    }
    let mut parts = pattern.split("{credentials}");
    match (parts.next(), parts.next(), parts.next()) {
        (Some(prefix), Some(suffix), None) => Some((prefix.to_owned(), suffix.to_owned())),
        _ => {
            cx.error(
                path,
                format!("{pattern:?}: expected exactly one {{credentials}}"),
            );
            None
        }
    }
}

/// After a successful load: a guard named on a route or in a template behind an http binding
/// that does not authorize with it never passes (every request refused, or an empty value):
/// warned, as Zilla loads such a configuration. Guards no reachable binding names are warned
/// too.
pub(super) fn check_guard_use(cx: &mut Cx, listeners: &[Listener], guards: &[Arc<Guard>]) {
    let mut check = UseCheck {
        cx,
        used: HashSet::new(),
        reported: HashSet::new(),
    };
    let mut seen: HashSet<*const HttpService> = HashSet::new();
    for listener in listeners {
        let http = &listener.http;
        if seen.insert(Arc::as_ptr(http)) {
            check.http(http);
        }
    }
    for guard in guards {
        if !check.used.contains(guard.name.as_str()) {
            check.cx.warn(
                &format!("guards.{}", guard.name),
                "not used by any binding reachable from a tcp server",
            );
        }
    }
}

struct UseCheck<'c, 'e, 'p> {
    cx: &'c mut Cx<'e>,
    used: HashSet<&'p str>,
    reported: HashSet<(String, String)>,
}

impl<'p> UseCheck<'_, '_, 'p> {
    fn http(&mut self, http: &'p HttpService) {
        if let Some(authorization) = &http.authorization {
            self.used.insert(&authorization.guard.name);
        }
        for (i, route) in http.routes.iter().enumerate() {
            let at = format!("bindings.{}.routes[{i}]", http.binding);
            self.guarded(http, &at, &route.guarded);
            match &route.exit {
                HttpExit::Sse(sse) => {
                    for (j, sse_route) in sse.routes.iter().enumerate() {
                        let at = format!("bindings.{}.routes[{j}]", sse.binding);
                        self.guarded(http, &at, &sse_route.guarded);
                        let sse_kafka = &sse_route.exit;
                        for (k, route) in sse_kafka.routes.iter().enumerate() {
                            let at = format!("bindings.{}.routes[{k}]", sse_kafka.binding);
                            self.guarded(http, &at, &route.guarded);
                            self.template(http, &format!("{at}.with.topic"), &route.topic);
                            for (f, filter) in route.filters.iter().enumerate() {
                                let at = format!("{at}.with.filters[{f}]");
                                if let Some(key) = &filter.key {
                                    self.template(http, &format!("{at}.key"), key);
                                }
                                for (name, value) in &filter.headers {
                                    self.template(http, &format!("{at}.headers.{name}"), value);
                                }
                            }
                        }
                    }
                }
                HttpExit::Files(files) => {
                    for (k, route) in files.routes.iter().enumerate() {
                        let at = format!("bindings.{}.routes[{k}].with.path", files.binding);
                        self.template(http, &at, &route.path);
                    }
                }
            }
        }
    }

    /// Why `guard` never passes behind `http`, or `None` when it is `http`'s authorization.
    fn mismatch(http: &HttpService, guard: &str) -> Option<String> {
        match &http.authorization {
            Some(authorization) if authorization.guard.name == guard => None,
            Some(authorization) => Some(format!(
                "guard {guard:?} is not the authorization guard of bindings.{} (it authorizes \
                 with guard {:?})",
                http.binding, authorization.guard.name
            )),
            None => Some(format!(
                "guard {guard:?} is not the authorization guard of bindings.{} (it has no \
                 options.authorization)",
                http.binding
            )),
        }
    }

    fn guarded(&mut self, http: &HttpService, at: &str, guarded: &'p [(Arc<Guard>, Vec<String>)]) {
        for (guard, _) in guarded {
            self.used.insert(&guard.name);
            if let Some(why) = Self::mismatch(http, &guard.name) {
                self.warn(
                    format!("{at}.guarded.{}", guard.name),
                    format!("{why}: every request through it is refused"),
                );
            }
        }
    }

    fn template(&mut self, http: &HttpService, at: &str, template: &'p Template) {
        for guard in template.guard_names() {
            self.used.insert(guard);
            if let Some(why) = Self::mismatch(http, guard) {
                self.warn(
                    at.to_owned(),
                    format!("{why}: ${{guarded['{guard}']...}} is always empty"),
                );
            }
        }
    }

    fn warn(&mut self, path: String, message: String) {
        if !self.reported.contains(&(path.clone(), message.clone())) {
            self.cx.warn(&path, message.clone());
            self.reported.insert((path, message));
        }
    }
}
