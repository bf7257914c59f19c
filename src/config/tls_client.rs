//! `tls` client bindings (`kind: client`): the TLS a kafka client speaks to its brokers, between
//! the kafka client and its tcp client. Options `vault`, `trust`, `trustcacerts`, `keys`, `sni`,
//! `alpn`, `version`. The trust store is read here, at load, so a bad store is reported with
//! its YAML path (by `sse-kafka check` too).
//!
//! Trust, as Zilla decides it: `trust: [aliases]` → those entries of the vault's trust store;
//! no `trust` and a vault with a trust store → every entry of it; no trust store at all → the
//! platform's root certificates. `trustcacerts: true` adds the platform's roots in every case.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::loader::{Kind, Loader};
use super::plan::{KeySource, TlsClientPlan};
use super::tls::{Store, TrustStore, Vault};
use super::yaml::{Cx, Key};

/// A tls client binding read: its plan, and the broker address of its tcp client's
/// `options.host`/`port` (older configs name the bootstrap server there).
#[derive(Clone, Debug)]
pub(super) struct TlsClientNode {
    pub plan: Arc<TlsClientPlan>,
    pub server: Option<String>,
}

impl<'y, 'e> Loader<'y, 'e> {
    pub fn tls_client(&mut self, idx: usize) -> Option<TlsClientNode> {
        self.memoized(idx, |m| &mut m.tls_clients, Self::build_tls_client)
    }

    fn build_tls_client(&mut self, idx: usize) -> Option<TlsClientNode> {
        let binding = self.bindings[idx].name.clone();
        let path = self.bindings[idx].path.clone();
        let map = self.bindings[idx].map.clone()?;
        let mut ok = true;
        let vault: Option<Vault> = match map.get("vault").map(|n| n.string(&mut self.cx)) {
            None => None,
            Some(None) => {
                ok = false;
                None
            }
            Some(Some(name)) => match self.vaults.get(&name) {
                Some(Some(vault)) => Some(vault.clone()),
                Some(None) => {
                    ok = false;
                    None
                }
                None => {
                    self.cx
                        .error(&map.key_path("vault"), format!("unknown vault {name:?}"));
                    ok = false;
                    None
                }
            },
        };
        let options = self.options(
            idx,
            &[
                ("version", Key::Known),
                ("keys", Key::Known),
                ("trust", Key::Known),
                ("trustcacerts", Key::Known),
                ("sni", Key::Known),
                ("alpn", Key::Known),
                ("signers", Key::NotSupported),
                ("mutual", Key::NotSupported),
            ],
        );
        let get = |key: &str| options.as_ref().and_then(|o| o.get(key));
        let mut strings = |cx: &mut Cx, key: &str| -> Option<Vec<String>> {
            let node = get(key)?;
            let list = node.strings(cx);
            ok &= list.is_some();
            list
        };
        let trust_aliases = strings(&mut self.cx, "trust");
        let key_aliases = strings(&mut self.cx, "keys").unwrap_or_default();
        let sni = strings(&mut self.cx, "sni").unwrap_or_default();
        let alpn = strings(&mut self.cx, "alpn").unwrap_or_default();
        let trustcacerts = match get("trustcacerts") {
            Some(node) => {
                let v = node.boolean(&mut self.cx);
                ok &= v.is_some();
                v.unwrap_or(false)
            }
            None => false,
        };
        let version = match get("version") {
            Some(node) => match node.string(&mut self.cx).as_deref() {
                Some("TLS") => None,
                Some("TLSv1.2") => Some(12),
                Some("TLSv1.3") => Some(13),
                Some(other) => {
                    self.cx.error(
                        &node.path,
                        format!("version {other:?} not supported (TLS, TLSv1.2, TLSv1.3)"),
                    );
                    ok = false;
                    None
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if sni.len() > 1 {
            self.cx.warn(
                &format!("{path}.options.sni"),
                "a client sends one server name: the first is used",
            );
        }

        // Trust anchors.
        let trust_store = vault.as_ref().and_then(|v| v.trust.clone());
        let mut roots = Vec::new();
        let mut platform_roots = trustcacerts;
        match (&trust_store, &trust_aliases) {
            (Some(store), aliases) => match read_trust(store, aliases.as_deref()) {
                Ok(certs) => roots = certs,
                Err((at, message)) => {
                    let at = if at {
                        format!("{path}.options.trust")
                    } else {
                        store_path(store)
                    };
                    self.cx.error(&at, message);
                    ok = false;
                }
            },
            (None, Some(_)) => {
                let message = match &vault {
                    Some(_) => "the vault has no trust store (options.trust)",
                    None => "needs a vault with a trust store",
                };
                self.cx.error(&format!("{path}.options.trust"), message);
                ok = false;
            }
            (None, None) => platform_roots = true,
        }

        // Client certificate (mutual TLS).
        let identity = match (
            &key_aliases[..],
            vault.as_ref().and_then(|v| v.keys.clone()),
        ) {
            ([], _) => None,
            (_, None) => {
                self.cx.error(
                    &format!("{path}.options.keys"),
                    "needs a vault with a keys store",
                );
                ok = false;
                None
            }
            ([alias], Some(Store::Pkcs12 { path, password })) => Some(KeySource::Pkcs12 {
                path,
                password,
                alias: Some(alias.clone()),
            }),
            ([_], Some(Store::Pem { cert, key })) => Some(KeySource::Pem { cert, key }),
            (_, Some(_)) => {
                self.cx.error(
                    &format!("{path}.options.keys"),
                    "a client presents one certificate: name one key",
                );
                ok = false;
                None
            }
        };

        let routes = self.routes(
            idx,
            &[("guarded", Key::NotSupported), ("with", Key::NotSupported)],
            true,
        );
        let mut server = None;
        let mut exit_ok = false;
        for route in routes {
            if !route.when.is_empty() {
                self.cx.error(
                    &format!("{}.when", route.path),
                    "tls client route conditions not supported",
                );
            }
            let Some(exit) = &route.exit else { continue };
            if let Some(target) = self.exit(idx, exit, &[Kind::TcpClient]) {
                exit_ok = true;
                if let Some(tcp) = self.tcp_client(target) {
                    server = server.or(tcp.server);
                }
            }
        }
        (ok && exit_ok).then(|| TlsClientNode {
            plan: Arc::new(TlsClientPlan {
                binding,
                roots,
                platform_roots,
                identity,
                sni: sni.into_iter().next(),
                alpn,
                version,
            }),
            server,
        })
    }
}

fn store_path(store: &TrustStore) -> String {
    match store {
        TrustStore::Pkcs12 { at, .. } | TrustStore::Pem { at, .. } => format!("{at}.store"),
    }
}

/// The DER certificates of a trust store: every one, or those named by `aliases`. The error
/// says whether it is about the aliases (`true`) or the store.
fn read_trust(
    store: &TrustStore,
    aliases: Option<&[String]>,
) -> Result<Vec<Vec<u8>>, (bool, String)> {
    match store {
        TrustStore::Pem { path, .. } => {
            if aliases.is_some_and(|a| !a.is_empty()) {
                return Err((
                    true,
                    "a pem trust store has no aliases: leave options.trust out to trust every \
                     certificate of the file"
                        .into(),
                ));
            }
            let certs = read_pem_certs(path).map_err(|e| (false, e))?;
            Ok(certs)
        }
        TrustStore::Pkcs12 { path, password, .. } => {
            let bytes =
                std::fs::read(path).map_err(|e| (false, format!("{}: {e}", path.display())))?;
            let keystore = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                password,
                // Every certificate bag as its own entry: stores made by openssl carry no Java
                // "trusted" attribute, which the strict policy requires.
                p12_keystore::Pkcs12ImportPolicy::Raw,
            )
            .map_err(|e| (false, format!("{}: {e}", path.display())))?;
            let mut out = Vec::new();
            let mut found: Vec<&str> = Vec::new();
            for (alias, entry) in keystore.entries() {
                let wanted = aliases.is_none_or(|list| list.iter().any(|a| a == alias));
                if !wanted {
                    continue;
                }
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(cert) => {
                        out.push(cert.as_der().to_vec());
                        found.push(alias);
                    }
                    // A key entry's chain ends at the certificate that signed it: trusted too
                    // when named (Java truststores may hold such entries).
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) if aliases.is_some() => {
                        if let Some(last) = chain.certs().last() {
                            out.push(last.as_der().to_vec());
                            found.push(alias);
                        }
                    }
                    _ => {}
                }
            }
            if let Some(list) = aliases {
                let missing: Vec<&String> = list
                    .iter()
                    .filter(|a| !found.contains(&a.as_str()))
                    .collect();
                if !missing.is_empty() {
                    return Err((
                        true,
                        format!(
                            "{}: no certificate entry named {}",
                            path.display(),
                            missing
                                .iter()
                                .map(|a| format!("{a:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            if out.is_empty() {
                return Err((false, format!("{}: no certificate entry", path.display())));
            }
            Ok(out)
        }
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}
