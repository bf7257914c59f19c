//! The Kafka client: broker connections, metadata, offsets and fetches, on the worker's
//! io_uring runtime. It knows nothing of HTTP or streams; `fanout` drives it.

pub mod chunk;
pub mod client;
pub mod conn;
pub mod decompress;
pub mod error;
pub mod fetch;
pub mod security;
