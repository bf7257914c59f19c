//! Sans-io protocol code for `sse-kafka`.
//!
//! Nothing here touches a socket, a runtime or a clock. Parsers take byte slices and return
//! borrowed views; encoders append to caller-owned buffers, so the per-event paths allocate
//! nothing once those buffers have grown to their working size. Every parser is fuzzed
//! (`fuzz/`).

#![forbid(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod event_id;
pub mod h2;
pub mod http1;
pub mod jwt;
pub mod kafka;
pub mod sse;
pub mod varint;
