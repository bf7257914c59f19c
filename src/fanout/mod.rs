//! Fan-out: where Kafka records meet HTTP streams. Partition ownership and the shared fetch
//! (`owner`), per-worker topic views with the cache mirror and delivery (`view`), filters,
//! event encoding, and the state a stream shares with its connection (`stream_io`).

pub mod cache;
pub mod compaction;
pub mod drain;
pub mod driver;
pub mod encode;
pub mod expiry;
pub mod filter;
pub mod hub;
pub mod live_log;
pub mod message;
pub mod owner;
pub mod since;
pub mod stream_io;
pub mod view;
