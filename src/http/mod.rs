//! The HTTP side: connections, routing through the http binding, SSE requests, static files.

pub mod admission;
pub mod conn;
pub mod exchange;
pub mod file_table;
pub mod files;
pub mod h2;
pub mod h2_batch;
pub mod head;
pub mod health;
pub mod http_date;
pub mod route;
pub mod shed;
pub mod since;
pub mod socket;
pub mod sse;
pub mod tls;

/// A client connection's byte stream: plain TCP or TLS over it. Split into read and write
/// halves once a response starts streaming.
pub trait Transport:
    monoio::io::AsyncReadRent + monoio::io::AsyncWriteRent + monoio::io::Split + 'static
{
}

impl<T> Transport for T where
    T: monoio::io::AsyncReadRent + monoio::io::AsyncWriteRent + monoio::io::Split + 'static
{
}
