//! How a kafka client binding secures its broker connections: TLS (a `tls` client binding:
//! rustls on ring, the vault's trust anchors or the platform's, hostname verification on, an
//! optional client certificate) and SASL (its `options.authorization` credentials). Built once
//! at start and shared by every worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::plan::{KafkaCluster, KeySource, SaslPlan, TlsClientPlan};

pub struct Security {
    /// The kafka client binding, for messages.
    pub binding: String,
    pub sasl: Option<Arc<SaslPlan>>,
    pub tls: Option<TlsClient>,
    /// Set while authentication keeps failing, so the failure is logged once for the process
    /// (not once per worker and retry).
    failing: AtomicBool,
}

pub struct TlsClient {
    /// The `tls` client binding, for messages.
    pub binding: String,
    pub connector: monoio_rustls::TlsConnector,
    /// `options.sni`: the server name sent and verified instead of the broker's host.
    pub sni: Option<String>,
}

impl Security {
    /// Reads the client certificate (if any) and builds the TLS config of `cluster`.
    pub fn from_plan(cluster: &KafkaCluster) -> Result<Arc<Self>, String> {
        let tls = match &cluster.tls {
            Some(plan) => Some(TlsClient {
                binding: plan.binding.clone(),
                connector: monoio_rustls::TlsConnector::from(client_config(plan)?),
                sni: plan.sni.clone(),
            }),
            None => None,
        };
        Ok(Arc::new(Self {
            binding: cluster.binding.clone(),
            sasl: cluster.sasl.clone(),
            tls,
            failing: AtomicBool::new(false),
        }))
    }

    /// Records an authentication failure; true the first time since the last success.
    pub fn failed(&self) -> bool {
        !self.failing.swap(true, Ordering::Relaxed)
    }

    /// Records a success; true when it ends a run of failures.
    pub fn succeeded(&self) -> bool {
        self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed)
    }
}

impl TlsClient {
    /// The name sent as SNI and checked against the certificate: `options.sni`, else the
    /// broker's host (an IP address is checked against the certificate's IP addresses).
    pub fn server_name(&self, addr: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.sni {
            Some(sni) => sni.as_str(),
            None => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                host.strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host)
            }
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        ServerName::try_from(host.to_owned()).map_err(|e| format!("server name {host:?}: {e}"))
    }
}

fn client_config(plan: &TlsClientPlan) -> Result<Arc<ClientConfig>, String> {
    let at = format!("bindings.{}", plan.binding);
    let mut roots = RootCertStore::empty();
    for der in &plan.roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("{at}.options.trust: {e}"))?;
    }
    if plan.platform_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match plan.version {
        Some(12) => &[&rustls::version::TLS12],
        Some(13) => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("{at}: {e}"))?
        .with_root_certificates(roots);
    let mut config = match &plan.identity {
        None => builder.with_no_client_auth(),
        Some(source) => {
            let id = match source {
                KeySource::Pkcs12 {
                    path,
                    password,
                    alias,
                } => crate::http::tls::pkcs12_identity(path, password, alias.as_deref()),
                KeySource::Pem { cert, key } => crate::http::tls::pem_identity(cert, key),
            }
            .map_err(|e| format!("{at}.options.keys: {e}"))?;
            builder
                .with_client_auth_cert(id.chain, id.key)
                .map_err(|e| format!("{at}.options.keys: {e}"))?
        }
    };
    config.alpn_protocols = plan.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}
