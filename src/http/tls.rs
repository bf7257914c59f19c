//! TLS for the `tls` server binding: rustls on the ring provider (no aws-lc), TLS 1.2 and 1.3,
//! ALPN `h2` / `http/1.1`, certificates from PEM files or a PKCS#12 keystore (the `filesystem`
//! vault of Zilla's examples), several certificates chosen by SNI.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ResolvesServerCertUsingSni;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::plan::{KeySource, TlsPlan};

/// A certificate chain and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn pem_identity(cert: &Path, key: &Path) -> Result<Identity, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Identity { chain, key })
}

/// Reads the private-key entry `alias` (or the only one, when `alias` is `None`) of a PKCS#12
/// keystore.
pub fn pkcs12_identity(
    store: &Path,
    password: &str,
    alias: Option<&str>,
) -> Result<Identity, String> {
    let bytes = std::fs::read(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let keystore = p12_keystore::KeyStore::from_pkcs12(
        &bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::default(),
    )
    .map_err(|e| format!("{}: {e}", store.display()))?;
    let mut found = None;
    for (name, entry) in keystore.entries() {
        if let p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) = entry {
            if alias.is_none_or(|a| a == name) {
                found = Some(chain);
                if alias.is_some() {
                    break;
                }
            }
        }
    }
    let chain = found.ok_or_else(|| match alias {
        Some(a) => format!("{}: no private key entry named {a:?}", store.display()),
        None => format!("{}: no private key entry", store.display()),
    })?;
    Ok(Identity {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

/// A server config: with one identity and no SNI names it is served to every client; with SNI
/// names each identity answers its name (a client naming none gets the handshake refused).
pub fn server_config(
    identities: Vec<(Option<String>, Identity)>,
    alpn: &[&str],
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
    let mut config = if identities.len() == 1 && identities[0].0.is_none() {
        let Some((_, id)) = identities.into_iter().next() else {
            return Err("no certificate".into());
        };
        builder
            .with_single_cert(id.chain, id.key)
            .map_err(|e| e.to_string())?
    } else {
        let mut sni = ResolvesServerCertUsingSni::new();
        for (name, id) in identities {
            let name = name.ok_or("several certificates need an SNI name each")?;
            let key = provider
                .key_provider
                .load_private_key(id.key)
                .map_err(|e| format!("{name}: {e}"))?;
            sni.add(&name, CertifiedKey::new(id.chain, key))
                .map_err(|e| format!("{name}: {e}"))?;
        }
        builder.with_cert_resolver(Arc::new(sni))
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The rustls config of a `tls` binding: each identity read from its vault.
pub fn from_plan(plan: &TlsPlan) -> Result<Arc<ServerConfig>, String> {
    let mut identities = Vec::with_capacity(plan.identities.len());
    for id in &plan.identities {
        let identity = match &id.source {
            KeySource::Pkcs12 {
                path,
                password,
                alias,
            } => pkcs12_identity(path, password, alias.as_deref())?,
            KeySource::Pem { cert, key } => pem_identity(cert, key)?,
        };
        identities.push((id.sni.clone(), identity));
    }
    let alpn: Vec<&str> = plan.alpn.iter().map(String::as_str).collect();
    server_config(identities, &alpn)
}

/// A listener's TLS side.
pub struct TlsServer {
    acceptor: monoio_rustls::TlsAcceptor,
}

impl TlsServer {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            acceptor: monoio_rustls::TlsAcceptor::from(config),
        }
    }

    /// The handshake, at most `timeout`; returns the stream and whether ALPN chose `h2`.
    pub async fn accept(
        &self,
        stream: monoio::net::TcpStream,
        timeout: std::time::Duration,
    ) -> io::Result<(monoio_rustls::ServerTlsStream<monoio::net::TcpStream>, bool)> {
        let tls = match monoio::time::timeout(timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
        };
        let h2 = tls.alpn_protocol().as_deref() == Some(b"h2");
        Ok((tls, h2))
    }
}
