//! `vaults:` of type `filesystem` (the keystore a `tls` binding takes its certificates from)
//! and `tls` server bindings (`vault`, `options.keys`, `sni`, `alpn`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::loader::{Kind, Loader};
use super::plan::{HttpService, KeySource, TlsIdentity, TlsPlan};
use super::yaml::{Cx, Key, Map};

/// A `filesystem` vault's `keys` store.
#[derive(Debug, Clone)]
pub(super) enum Store {
    /// `type: pkcs12` (Zilla's default): `store` is a PKCS#12 file, `password` opens it.
    Pkcs12 {
        path: std::path::PathBuf,
        password: String,
    },
    /// `type: pem` (our extension): `store` is a PEM certificate chain, `key` a PEM private key.
    Pem {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
}

/// Vaults by name; `None` for a vault refused (already reported).
pub(super) type Vaults = HashMap<String, Option<Store>>;

/// `vaults: { NAME: { type: filesystem, options: { keys: { store, type, password, key } } } }`.
pub(super) fn read_vaults(cx: &mut Cx, top: &Map, base_dir: &Path) -> Vaults {
    let mut vaults = Vaults::new();
    let Some(map) = top.get("vaults").and_then(|n| n.map(cx)) else {
        return vaults;
    };
    for (name, node) in map.entries(cx) {
        let store = read_vault(cx, &node, base_dir);
        vaults.insert(name, store);
    }
    vaults
}

fn read_vault(cx: &mut Cx, node: &super::yaml::Node, base_dir: &Path) -> Option<Store> {
    let vault = node.map(cx)?;
    vault.check(
        cx,
        &[("type", Key::Known), ("options", Key::Known)],
        "unknown key",
    );
    let type_name = vault.require(cx, "type")?.string(cx)?;
    if type_name != "filesystem" {
        cx.error(
            &vault.key_path("type"),
            format!("vault type {type_name:?} not supported"),
        );
        return None;
    }
    let options = vault.require(cx, "options")?.map(cx)?;
    options.check(
        cx,
        &[
            ("keys", Key::Known),
            ("trust", Key::NotSupported),
            ("signers", Key::NotSupported),
        ],
        "unknown option",
    );
    let keys = options.require(cx, "keys")?.map(cx)?;
    keys.check(
        cx,
        &[
            ("store", Key::Known),
            ("type", Key::Known),
            ("password", Key::Known),
            ("key", Key::Known),
        ],
        "unknown option",
    );
    let store = base_dir.join(keys.require(cx, "store")?.string(cx)?);
    let kind = keys
        .get("type")
        .and_then(|n| n.string(cx))
        .unwrap_or_else(|| "pkcs12".to_owned());
    let readable = |cx: &mut Cx, path: &Path, at: &str| {
        if !path.is_file() {
            cx.error(at, format!("{} is not a readable file", path.display()));
        }
    };
    match kind.as_str() {
        "pkcs12" => {
            readable(cx, &store, &keys.key_path("store"));
            if keys.get("key").is_some() {
                cx.error(&keys.key_path("key"), "only for type pem");
            }
            let password = keys
                .get("password")
                .and_then(|n| n.string(cx))
                .unwrap_or_default();
            Some(Store::Pkcs12 {
                path: store,
                password,
            })
        }
        "pem" => {
            readable(cx, &store, &keys.key_path("store"));
            let key = base_dir.join(keys.require(cx, "key")?.string(cx)?);
            readable(cx, &key, &keys.key_path("key"));
            Some(Store::Pem { cert: store, key })
        }
        other => {
            cx.error(
                &keys.key_path("type"),
                format!("keystore type {other:?} not supported"),
            );
            None
        }
    }
}

impl<'y, 'e> Loader<'y, 'e> {
    /// A tls server binding: its plan and the http service it exits to.
    pub fn tls_server(&mut self, idx: usize) -> Option<(Arc<TlsPlan>, Arc<HttpService>)> {
        self.memoized(idx, |m| &mut m.tls, Self::build_tls_server)
    }

    fn build_tls_server(&mut self, idx: usize) -> Option<(Arc<TlsPlan>, Arc<HttpService>)> {
        let binding = self.bindings[idx].name.clone();
        let path = self.bindings[idx].path.clone();
        let map = self.bindings[idx].map.clone()?;
        let vault_name = match map.get("vault") {
            Some(node) => node.string(&mut self.cx),
            None => {
                self.cx.error(&map.key_path("vault"), "required");
                None
            }
        };
        let options = self.options(
            idx,
            &[
                ("keys", Key::Known),
                ("sni", Key::Known),
                ("alpn", Key::Known),
                ("trust", Key::NotSupported),
                ("trustcacerts", Key::NotSupported),
                ("mutual", Key::NotSupported),
                ("signers", Key::NotSupported),
            ],
        );
        let strings = |cx: &mut Cx, key: &str| -> Vec<String> {
            options
                .as_ref()
                .and_then(|o| o.get(key))
                .and_then(|n| n.strings(cx))
                .unwrap_or_default()
        };
        let aliases = strings(&mut self.cx, "keys");
        let sni = strings(&mut self.cx, "sni");
        let alpn = strings(&mut self.cx, "alpn");
        for (i, p) in alpn.iter().enumerate() {
            if p != "h2" && p != "http/1.1" {
                self.cx.error(
                    &format!("{path}.options.alpn[{i}]"),
                    format!("protocol {p:?} not supported (h2, http/1.1)"),
                );
            }
        }
        let store = match vault_name.as_ref() {
            Some(name) => match self.vaults.get(name) {
                Some(store) => store.clone(),
                None => {
                    self.cx
                        .error(&map.key_path("vault"), format!("unknown vault {name:?}"));
                    None
                }
            },
            None => None,
        };
        let routes = self.routes(
            idx,
            &[("guarded", Key::NotSupported), ("with", Key::NotSupported)],
            true,
        );
        let mut http = None;
        for route in routes {
            if !route.when.is_empty() {
                self.cx.error(
                    &format!("{}.when", route.path),
                    "tls route conditions not supported",
                );
            }
            let target = route
                .exit
                .as_ref()
                .and_then(|exit| self.exit(idx, exit, &[Kind::HttpServer]))
                .and_then(|t| self.http_server(t));
            if http.is_none() {
                http = target;
            }
        }
        let http = http?;
        let store = store?;
        let source = match store {
            Store::Pkcs12 { path, password } => move |alias: Option<String>| KeySource::Pkcs12 {
                path: path.clone(),
                password: password.clone(),
                alias,
            },
            Store::Pem { cert, key } => {
                if aliases.len() > 1 {
                    self.cx.error(
                        &format!("{path}.options.keys"),
                        "a pem vault holds one certificate",
                    );
                }
                let source = KeySource::Pem { cert, key };
                return Some((
                    Arc::new(TlsPlan {
                        binding,
                        identities: vec![TlsIdentity { sni: None, source }],
                        alpn: alpn_or_versions(alpn, &http),
                    }),
                    http,
                ));
            }
        };
        // One key: served to every client (its `sni` names are the names it answers). Several:
        // each key alias is the server name it answers.
        let identities = match aliases.len() {
            0 | 1 => vec![TlsIdentity {
                sni: None,
                source: source(aliases.first().cloned()),
            }],
            _ => aliases
                .iter()
                .map(|a| TlsIdentity {
                    sni: Some(a.clone()),
                    source: source(Some(a.clone())),
                })
                .collect(),
        };
        let _ = sni;
        Some((
            Arc::new(TlsPlan {
                binding,
                identities,
                alpn: alpn_or_versions(alpn, &http),
            }),
            http,
        ))
    }
}

/// `alpn` as configured, else what the http binding's `versions` allow.
fn alpn_or_versions(alpn: Vec<String>, http: &HttpService) -> Vec<String> {
    if !alpn.is_empty() {
        return alpn;
    }
    let mut out = Vec::new();
    if http.h2 {
        out.push("h2".to_owned());
    }
    if http.http1 {
        out.push("http/1.1".to_owned());
    }
    out
}
