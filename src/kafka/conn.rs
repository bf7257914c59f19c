//! One connection to one Kafka broker (plain TCP or TLS): size-prefixed request/response
//! exchange, one request in flight at a time (Kafka answers in order, and our callers never
//! pipeline). With SASL configured, every connection authenticates (SaslHandshake v1, then
//! SaslAuthenticate v1 until the exchange is done) before its first request; a connection whose
//! session (the lifetime the broker gave, KIP-368) is about to run out says so
//! ([`BrokerConn::reauth_due`]) and its owner re-authenticates it or replaces it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafka_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;
use proto::kafka::sasl::{SaslClient, Step};

use super::error::KafkaError;
use super::security::Security;
use crate::config::plan::SaslPlan;

/// Responses larger than this are refused (a broken or hostile broker must not make us allocate
/// without bound). Fetch requests ask for far less (see `fetch::MAX_FETCH_BYTES`).
pub const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;

const CLIENT_ID: &str = "sse-kafka";

/// A broker socket, plain or TLS.
enum Io {
    Tcp(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl Io {
    async fn write_all<T: IoBuf + 'static>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Tcp(s) => s.write_all(buf).await,
            Io::Tls(s) => s.write_all(buf).await,
        }
    }

    async fn read_exact<T: IoBufMut + 'static>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Io::Tcp(s) => s.read_exact(buf).await,
            Io::Tls(s) => s.read_exact(buf).await,
        }
    }
}

/// SASL handshake and authenticate versions: v1 of each (v1 authenticate carries the session
/// lifetime; every broker since Kafka 1.0 speaks both).
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 1;
/// Round trips an exchange may take (SCRAM needs two; a broker asking for more is broken).
const SASL_MAX_STEPS: usize = 4;

pub struct BrokerConn {
    stream: Io,
    /// The `host:port` this connection was made to.
    pub addr: String,
    correlation: i32,
    /// Request encoding buffer, reused.
    out: Vec<u8>,
    /// The credentials this connection authenticated with.
    sasl: Option<Arc<SaslPlan>>,
    /// When to authenticate again (KIP-368), if the broker gave a session lifetime.
    reauth_at: Option<Instant>,
    /// The `tls` client binding, when the connection is TLS.
    tls_binding: Option<String>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl BrokerConn {
    /// A TCP connection, then the TLS handshake when the cluster has a `tls` client binding.
    /// SASL is not done here: see [`BrokerConn::authenticate`].
    pub async fn connect(
        addr: &str,
        timeout: Duration,
        security: &Security,
    ) -> Result<Self, KafkaError> {
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream)
        };
        let stream = match monoio::time::timeout(timeout, connect).await {
            Ok(r) => r?,
            Err(_) => return Err(KafkaError::Io("connect timed out".into())),
        };
        let stream = match &security.tls {
            None => Io::Tcp(stream),
            Some(tls) => {
                let name = tls.server_name(addr).map_err(|e| KafkaError::Tls {
                    binding: tls.binding.clone(),
                    message: e,
                })?;
                match monoio::time::timeout(timeout, tls.connector.connect(name, stream)).await {
                    Ok(Ok(s)) => Io::Tls(Box::new(s)),
                    Ok(Err(e)) => {
                        return Err(KafkaError::Tls {
                            binding: tls.binding.clone(),
                            message: e.to_string(),
                        })
                    }
                    Err(_) => return Err(KafkaError::Io("TLS handshake timed out".into())),
                }
            }
        };
        Ok(Self {
            stream,
            addr: addr.to_owned(),
            correlation: 0,
            out: Vec::with_capacity(512),
            sasl: None,
            reauth_at: None,
            tls_binding: security.tls.as_ref().map(|t| t.binding.clone()),
        })
    }

    /// The SASL exchange with `plan`'s credentials; remembers them to authenticate again
    /// before the session the broker grants expires.
    pub async fn authenticate(
        &mut self,
        plan: &Arc<SaslPlan>,
        timeout: Duration,
    ) -> Result<(), KafkaError> {
        self.sasl = Some(plan.clone());
        let fail = |message: String| KafkaError::Auth {
            mechanism: plan.mechanism.name(),
            username: plan.username.clone(),
            message,
        };
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(plan.mechanism.name()));
        let resp = self
            .send(&handshake, SASL_HANDSHAKE_VERSION, timeout)
            .await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(fail(format!(
                "the broker does not offer {} (error {}; it offers {})",
                plan.mechanism.name(),
                resp.error_code,
                if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                }
            )));
        }
        let nonce = proto::kafka::scram::random_nonce();
        let mut client = SaslClient::new(plan.mechanism, &plan.username, &plan.secret, &nonce)
            .map_err(|e| fail(e.to_string()))?;
        let mut message = client.initial();
        for _ in 0..SASL_MAX_STEPS {
            let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
            let resp = self.send(&req, SASL_AUTHENTICATE_VERSION, timeout).await?;
            if resp.error_code != 0 {
                let mut why = resp
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                if why.is_empty() {
                    why = format!("error {}", resp.error_code);
                }
                if let Some(status) = client.refusal() {
                    why = format!("{why} ({status})");
                }
                return Err(fail(why));
            }
            match client.on_response(&resp.auth_bytes) {
                Ok(Step::Send(next)) => message = next,
                Ok(Step::Done) => {
                    self.reauth_at = reauth_deadline(resp.session_lifetime_ms);
                    return Ok(());
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Err(fail("the broker kept asking for more".into()))
    }

    /// Whether the SASL session the broker granted is about to expire: the connection must
    /// [`reauthenticate`](Self::reauthenticate) (or be replaced) before its next request.
    pub fn reauth_due(&self) -> bool {
        self.reauth_at.is_some_and(|at| Instant::now() >= at)
    }

    /// KIP-368 re-authentication on this connection, with the credentials it authenticated
    /// with.
    pub async fn reauthenticate(&mut self, timeout: Duration) -> Result<(), KafkaError> {
        match self.sasl.clone() {
            Some(plan) => self.authenticate(&plan, timeout).await,
            None => Ok(()),
        }
    }

    /// Sends `req` at `version` and waits for its response, at most `timeout`.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, KafkaError> {
        self.send_now(req, version, timeout)
            .await
            .map_err(|e| self.classify(e))
    }

    /// A TLS alert after the handshake (TLS 1.3 servers refuse a client certificate only
    /// then) is a TLS failure, not a broken connection.
    fn classify(&self, e: io::Error) -> KafkaError {
        match (&self.tls_binding, e.get_ref()) {
            (Some(binding), Some(inner)) if inner.is::<rustls::Error>() => KafkaError::Tls {
                binding: binding.clone(),
                message: inner.to_string(),
            },
            _ => e.into(),
        }
    }

    async fn send_now<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> io::Result<R::Response> {
        match monoio::time::timeout(timeout, self.exchange(req, version)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "kafka request timed out",
            )),
        }
    }

    async fn exchange<R: Request>(&mut self, req: &R, version: i16) -> io::Result<R::Response> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(&[0; 4]);
        header
            .encode(&mut out, R::header_version(version))
            .map_err(|e| invalid(format!("encode request header: {e}")))?;
        req.encode(&mut out, version)
            .map_err(|e| invalid(format!("encode request: {e}")))?;
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        let (res, out) = self.stream.write_all(out).await;
        self.out = out;
        res?;

        let (res, len_buf) = self.stream.read_exact(vec![0u8; 4]).await;
        res?;
        let len = u32::from_be_bytes([len_buf[0], len_buf[1], len_buf[2], len_buf[3]]) as usize;
        if len > MAX_RESPONSE_BYTES {
            return Err(invalid(format!(
                "response of {len} bytes is over the bound"
            )));
        }
        let (res, body) = self.stream.read_exact(vec![0u8; len]).await;
        res?;
        let mut body = Bytes::from(body);
        let resp_header = ResponseHeader::decode(
            &mut body,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|e| invalid(format!("decode response header: {e}")))?;
        if resp_header.correlation_id != correlation {
            return Err(invalid(format!(
                "correlation id {} does not match request {correlation}",
                resp_header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| invalid(format!("decode response: {e}")))
    }
}

/// When to authenticate again: at 85% of the session lifetime the broker granted (as Kafka's
/// own clients do, between 85 and 95%), never sooner than one second. 0: no expiry.
fn reauth_deadline(lifetime_ms: i64) -> Option<Instant> {
    if lifetime_ms <= 0 {
        return None;
    }
    let ms = (lifetime_ms as u64).saturating_mul(85) / 100;
    Some(Instant::now() + Duration::from_millis(ms.max(1000)))
}
