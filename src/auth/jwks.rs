//! Reads a JWKS document over HTTP(S) with `ureq` (blocking, on rustls with ring): redirects,
//! chunked and Content-Length bodies, IPv6 literals, a time bound and a size bound. Called on
//! the main thread at start and on the guard's refresh thread, never on a worker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// The whole exchange (resolve, connect, TLS, head, body, every redirect) gets this long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A JWKS document larger than this is refused.
const MAX_BODY: u64 = 1 << 20;
/// Redirects followed before giving up.
const MAX_REDIRECTS: u32 = 5;

/// A client for JWKS URLs; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct JwksClient {
    agent: ureq::Agent,
}

impl JwksClient {
    /// Verifies https peers against the Mozilla roots (webpki-roots), or only against the PEM
    /// certificates in `ca_file` when one is given (`--jwks-ca`).
    pub fn new(ca_file: Option<&Path>) -> Result<JwksClient, String> {
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(path) => RootCerts::Specific(Arc::new(read_certificates(path)?)),
        };
        let config = ureq::Agent::config_builder()
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .timeout_global(Some(TIMEOUT))
            .max_redirects(MAX_REDIRECTS)
            .accept("application/json")
            .http_status_as_error(false)
            .build();
        Ok(JwksClient {
            agent: config.new_agent(),
        })
    }

    /// GETs `url` (`http://` or `https://`) and returns the body of the final `200` answer.
    pub fn fetch(&self, url: &str) -> Result<String, String> {
        let mut response = self.agent.get(url).call().map_err(describe)?;
        let status = response.status();
        if status != 200 {
            return Err(format!("status {}", status.as_u16()));
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(describe)
    }
}

/// Every certificate of a PEM file.
fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::BodyExceedsLimit(limit) => format!("answer larger than {limit} bytes"),
        ureq::Error::TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_a_ca_file_without_certificates() {
        let dir = std::env::temp_dir().join(format!("jwks-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "nothing here\n").unwrap();
        let err = super::JwksClient::new(Some(&path)).err().unwrap();
        assert!(err.contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
