//! `vaults:` of type `filesystem` (the keystore a `tls` binding takes its certificates from,
//! the truststore a `tls` client checks brokers with) and `tls` server bindings (`vault`,
//! `options.keys`, `sni`, `alpn`). `tls` client bindings are in `tls_client.rs`.

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

/// A `filesystem` vault's `trust` store: the certificates a `tls` client trusts.
#[derive(Debug, Clone)]
pub(super) enum TrustStore {
    /// `type: pkcs12` (default): certificate entries, by alias (friendly name).
    Pkcs12 {
        path: std::path::PathBuf,
        password: String,
        /// `vaults.NAME.options.trust`, for errors.
        at: String,
    },
    /// `type: pem` (our extension): every certificate of the file (no aliases).
    Pem {
        path: std::path::PathBuf,
        at: String,
    },
}

/// A `filesystem` vault: its `keys` (certificates with private keys) and `trust` stores.
#[derive(Debug, Clone, Default)]
pub(super) struct Vault {
    pub keys: Option<Store>,
    pub trust: Option<TrustStore>,
}

/// Vaults by name; `None` for a vault refused (already reported).
pub(super) type Vaults = HashMap<String, Option<Vault>>;

/// `vaults: { NAME: { type: filesystem, options: { keys: {...}, trust: {...} } } }`.
pub(super) fn read_vaults(cx: &mut Cx, top: &Map, base_dir: &Path) -> Vaults {
    let mut vaults = Vaults::new();
    let Some(map) = top.get("vaults").and_then(|n| n.map(cx)) else {
        return vaults;
    };
    for (name, node) in map.entries(cx) {
        let vault = read_vault(cx, &node, base_dir);
        vaults.insert(name, vault);
    }
    vaults
}

fn readable(cx: &mut Cx, path: &Path, at: &str) -> bool {
    let ok = path.is_file();
    if !ok {
        cx.error(at, format!("{} is not a readable file", path.display()));
    }
    ok
}

fn read_vault(cx: &mut Cx, node: &super::yaml::Node, base_dir: &Path) -> Option<Vault> {
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
            ("trust", Key::Known),
            ("signers", Key::NotSupported),
        ],
        "unknown option",
    );
    if options.get("keys").is_none() && options.get("trust").is_none() {
        cx.error(&options.path, "expected keys or trust");
        return None;
    }
    let mut out = Vault::default();
    let mut ok = true;
    if options.get("keys").is_some() {
        out.keys = read_keys_store(cx, &options, base_dir);
        ok &= out.keys.is_some();
    }
    if options.get("trust").is_some() {
        out.trust = read_trust_store(cx, &options, base_dir);
        ok &= out.trust.is_some();
    }
    ok.then_some(out)
}

fn read_keys_store(cx: &mut Cx, options: &Map, base_dir: &Path) -> Option<Store> {
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
        "jks" => {
            cx.error(&keys.key_path("type"), JKS_REFUSED);
            None
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

const JKS_REFUSED: &str = "keystore type \"jks\" not supported: convert the store to PKCS#12 \
     (keytool -importkeystore -srckeystore STORE.jks -destkeystore STORE.p12 -deststoretype \
     pkcs12) and use type pkcs12, or give the certificates as PEM (type pem)";

/// `trust: { store, type: pkcs12 | pem, password }`.
fn read_trust_store(cx: &mut Cx, options: &Map, base_dir: &Path) -> Option<TrustStore> {
    let trust = options.require(cx, "trust")?.map(cx)?;
    trust.check(
        cx,
        &[
            ("store", Key::Known),
            ("type", Key::Known),
            ("password", Key::Known),
        ],
        "unknown option",
    );
    let path = base_dir.join(trust.require(cx, "store")?.string(cx)?);
    let kind = trust
        .get("type")
        .and_then(|n| n.string(cx))
        .unwrap_or_else(|| "pkcs12".to_owned());
    let at = trust.path.clone();
    match kind.as_str() {
        "pkcs12" => {
            let ok = readable(cx, &path, &trust.key_path("store"));
            let password = trust
                .get("password")
                .and_then(|n| n.string(cx))
                .unwrap_or_default();
            ok.then_some(TrustStore::Pkcs12 { path, password, at })
        }
        "pem" => {
            if trust.get("password").is_some() {
                cx.warn(&trust.key_path("password"), "not used by a pem store");
            }
            readable(cx, &path, &trust.key_path("store")).then_some(TrustStore::Pem { path, at })
        }
        "jks" => {
            cx.error(&trust.key_path("type"), JKS_REFUSED);
            None
        }
        other => {
            cx.error(
                &trust.key_path("type"),
                format!("truststore type {other:?} not supported (pkcs12, pem)"),
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
        let (aliases, alpn) = self.tls_server_options(idx, &path);
        let store = match vault_name {
            Some(name) => self.server_keys(&map, &name),
            None => None,
        };
        let http = self.tls_server_exit(idx)?;
        let identities = match store? {
            Store::Pkcs12 { path, password } => pkcs12_identities(&aliases, &path, &password),
            Store::Pem { cert, key } => {
                if aliases.len() > 1 {
                    self.cx.error(
                        &format!("{path}.options.keys"),
                        "a pem vault holds one certificate",
                    );
                }
                let source = KeySource::Pem { cert, key };
                vec![TlsIdentity { sni: None, source }]
            }
        };
        Some((
            Arc::new(TlsPlan {
                binding,
                identities,
                alpn: alpn_or_versions(alpn, &http),
            }),
            http,
        ))
    }

    /// `options`: the key aliases and the ALPN protocols (h2, http/1.1). `sni` is read (and
    /// checked as a list) but not used: the key aliases name the servers.
    fn tls_server_options(&mut self, idx: usize, path: &str) -> (Vec<String>, Vec<String>) {
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
        let _sni = strings(&mut self.cx, "sni");
        let alpn = strings(&mut self.cx, "alpn");
        for (i, p) in alpn.iter().enumerate() {
            if p != "h2" && p != "http/1.1" {
                self.cx.error(
                    &format!("{path}.options.alpn[{i}]"),
                    format!("protocol {p:?} not supported (h2, http/1.1)"),
                );
            }
        }
        (aliases, alpn)
    }

    /// The keys store of vault `name`, for serving TLS.
    fn server_keys(&mut self, map: &Map<'y>, name: &str) -> Option<Store> {
        match self.vaults.get(name) {
            Some(Some(Vault {
                keys: Some(keys), ..
            })) => Some(keys.clone()),
            Some(Some(Vault { keys: None, .. })) => {
                self.cx.error(
                    &map.key_path("vault"),
                    format!("vault {name:?} has no keys (options.keys) to serve TLS with"),
                );
                None
            }
            // Refused: its own error stands.
            Some(None) => None,
            None => {
                self.cx
                    .error(&map.key_path("vault"), format!("unknown vault {name:?}"));
                None
            }
        }
    }

    /// The http server of the first route (every route is checked).
    fn tls_server_exit(&mut self, idx: usize) -> Option<Arc<HttpService>> {
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
        http
    }
}

/// The identities of a PKCS#12 keys store. One key: served to every client (its `sni` names
/// are the names it answers). Several: each key alias is the server name it answers.
fn pkcs12_identities(
    aliases: &[String],
    path: &std::path::Path,
    password: &str,
) -> Vec<TlsIdentity> {
    let source = |alias: Option<String>| KeySource::Pkcs12 {
        path: path.to_path_buf(),
        password: password.to_owned(),
        alias,
    };
    match aliases.len() {
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
