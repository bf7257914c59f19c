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
use super::yaml::{Cx, Key, Map};

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
        let (vault, vault_ok) = match self.tls_client_vault(&map) {
            VaultRef::Absent => (None, true),
            VaultRef::Found(vault) => (Some(vault), true),
            VaultRef::Bad => (None, false),
            // Refused: its own error stands, and nothing here can be checked against it.
            VaultRef::Refused => return None,
        };
        let o = self.tls_client_options(idx, &path);
        let trust = self.trust_anchors(&path, vault.as_ref(), &o);
        let identity = self.client_identity(&path, vault.as_ref(), &o.key_aliases);
        let (exit_ok, server) = self.tls_client_exit(idx);
        let (Some((roots, platform_roots)), Ok(identity)) = (trust, identity) else {
            return None;
        };
        (vault_ok && o.ok && exit_ok).then(|| TlsClientNode {
            plan: Arc::new(TlsClientPlan {
                binding,
                roots,
                platform_roots,
                identity,
                sni: o.sni.into_iter().next(),
                alpn: o.alpn,
                version: o.version,
            }),
            server,
        })
    }

    /// `vault: NAME`, looked up among the vaults read.
    fn tls_client_vault(&mut self, map: &Map<'y>) -> VaultRef {
        let name = match map.get("vault").map(|n| n.string(&mut self.cx)) {
            None => return VaultRef::Absent,
            Some(None) => return VaultRef::Bad,
            Some(Some(name)) => name,
        };
        match self.vaults.get(&name) {
            Some(Some(vault)) => VaultRef::Found(vault.clone()),
            Some(None) => VaultRef::Refused,
            None => {
                self.cx
                    .error(&map.key_path("vault"), format!("unknown vault {name:?}"));
                VaultRef::Bad
            }
        }
    }

    /// `options`, each checked; `ok` is false when one of them was wrong (already reported).
    fn tls_client_options(&mut self, idx: usize, path: &str) -> ClientOptions {
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
        let mut ok = true;
        let mut strings = |cx: &mut Cx, key: &str| -> Option<Vec<String>> {
            let list = get(key)?.strings(cx);
            ok &= list.is_some();
            list
        };
        let trust_aliases = strings(&mut self.cx, "trust");
        let key_aliases = strings(&mut self.cx, "keys").unwrap_or_default();
        let sni = strings(&mut self.cx, "sni").unwrap_or_default();
        let alpn = strings(&mut self.cx, "alpn").unwrap_or_default();
        let trustcacerts = get("trustcacerts").map(|node| node.boolean(&mut self.cx));
        ok &= trustcacerts.is_none_or(|v| v.is_some());
        let version = get("version").map(|node| tls_version(&mut self.cx, &node));
        ok &= version.is_none_or(|v| v.is_ok());
        if sni.len() > 1 {
            self.cx.warn(
                &format!("{path}.options.sni"),
                "a client sends one server name: the first is used",
            );
        }
        ClientOptions {
            trust_aliases,
            key_aliases,
            sni,
            alpn,
            trustcacerts: trustcacerts.flatten().unwrap_or(false),
            version: version.and_then(Result::ok).flatten(),
            ok,
        }
    }

    /// Trust anchors: the certificates read from the vault's trust store and whether the
    /// platform's roots are trusted too; `None` when that failed (reported).
    fn trust_anchors(
        &mut self,
        path: &str,
        vault: Option<&Vault>,
        o: &ClientOptions,
    ) -> Option<(Vec<Vec<u8>>, bool)> {
        let trust_store = vault.and_then(|v| v.trust.as_ref());
        match (trust_store, &o.trust_aliases) {
            (Some(store), aliases) => match read_trust(store, aliases.as_deref()) {
                Ok(certs) => Some((certs, o.trustcacerts)),
                Err((at_aliases, message)) => {
                    let at = if at_aliases {
                        format!("{path}.options.trust")
                    } else {
                        store_path(store)
                    };
                    self.cx.error(&at, message);
                    None
                }
            },
            (None, Some(_)) => {
                let message = match vault {
                    Some(_) => "the vault has no trust store (options.trust)",
                    None => "needs a vault with a trust store",
                };
                self.cx.error(&format!("{path}.options.trust"), message);
                None
            }
            (None, None) => Some((Vec::new(), true)),
        }
    }

    /// The client certificate (mutual TLS) named by `options.keys`; `Err` when that failed
    /// (reported).
    fn client_identity(
        &mut self,
        path: &str,
        vault: Option<&Vault>,
        key_aliases: &[String],
    ) -> Result<Option<KeySource>, ()> {
        let refuse = |cx: &mut Cx, message: &str| {
            cx.error(&format!("{path}.options.keys"), message);
            Err(())
        };
        match (key_aliases, vault.and_then(|v| v.keys.clone())) {
            ([], _) => Ok(None),
            (_, None) => refuse(&mut self.cx, "needs a vault with a keys store"),
            ([alias], Some(Store::Pkcs12 { path, password })) => Ok(Some(KeySource::Pkcs12 {
                path,
                password,
                alias: Some(alias.clone()),
            })),
            ([_], Some(Store::Pem { cert, key })) => Ok(Some(KeySource::Pem { cert, key })),
            (_, Some(_)) => refuse(
                &mut self.cx,
                "a client presents one certificate: name one key",
            ),
        }
    }

    /// The routes to the tcp client: whether one leads there, and the broker address of its
    /// `options.host`/`port` when it names one.
    fn tls_client_exit(&mut self, idx: usize) -> (bool, Option<String>) {
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
        (exit_ok, server)
    }
}

/// A tls client binding's `vault`.
enum VaultRef {
    /// No `vault` key.
    Absent,
    Found(Vault),
    /// Not a string, or no such vault (reported here).
    Bad,
    /// A vault that was refused (reported with the vault).
    Refused,
}

/// A tls client binding's `options`, read.
struct ClientOptions {
    trust_aliases: Option<Vec<String>>,
    key_aliases: Vec<String>,
    sni: Vec<String>,
    alpn: Vec<String>,
    trustcacerts: bool,
    version: Option<u8>,
    /// Every option read was well-formed.
    ok: bool,
}

/// `options.version`: `None` for either of 1.2 and 1.3; `Err` when not one we speak (reported).
fn tls_version(cx: &mut Cx, node: &super::yaml::Node<'_>) -> Result<Option<u8>, ()> {
    match node.string(cx).as_deref() {
        Some("TLS") => Ok(None),
        Some("TLSv1.2") => Ok(Some(12)),
        Some("TLSv1.3") => Ok(Some(13)),
        Some(other) => {
            cx.error(
                &node.path,
                format!("version {other:?} not supported (TLS, TLSv1.2, TLSv1.3)"),
            );
            Err(())
        }
        None => Err(()),
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
        TrustStore::Pkcs12 { path, password, .. } => read_pkcs12_trust(path, password, aliases),
    }
}

/// The certificate entries of a PKCS#12 trust store (every one, or those named), and the
/// chains' last certificates of key entries when named.
fn read_pkcs12_trust(
    path: &Path,
    password: &str,
    aliases: Option<&[String]>,
) -> Result<Vec<Vec<u8>>, (bool, String)> {
    let bytes = std::fs::read(path).map_err(|e| (false, format!("{}: {e}", path.display())))?;
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
        missing_aliases(path, list, &found)?;
    }
    if out.is_empty() {
        return Err((false, format!("{}: no certificate entry", path.display())));
    }
    Ok(out)
}

/// An error naming the aliases of `wanted` not `found`.
fn missing_aliases(path: &Path, wanted: &[String], found: &[&str]) -> Result<(), (bool, String)> {
    let missing: Vec<String> = wanted
        .iter()
        .filter(|a| !found.contains(&a.as_str()))
        .map(|a| format!("{a:?}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err((
        true,
        format!(
            "{}: no certificate entry named {}",
            path.display(),
            missing.join(", ")
        ),
    ))
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
