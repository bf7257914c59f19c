//! One TCP connection to one Kafka broker: size-prefixed request/response exchange, one request
//! in flight at a time (Kafka answers in order, and our callers never pipeline).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// Responses larger than this are refused (a broken or hostile broker must not make us allocate
/// without bound). Fetch requests ask for far less (see `fetch::MAX_FETCH_BYTES`).
pub const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;

const CLIENT_ID: &str = "sse-kafka";

pub struct BrokerConn {
    stream: TcpStream,
    /// The `host:port` this connection was made to.
    pub addr: String,
    correlation: i32,
    /// Request encoding buffer, reused.
    out: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl BrokerConn {
    pub async fn connect(addr: &str, timeout: Duration) -> io::Result<Self> {
        let stream = match monoio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        };
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            addr: addr.to_owned(),
            correlation: 0,
            out: Vec::with_capacity(512),
        })
    }

    /// Sends `req` at `version` and waits for its response, at most `timeout`.
    pub async fn send<R: Request>(
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
