//! Kafka record batches (magic v2), sans-io and allocation-free.
//!
//! * [`Batches`] splits a Fetch response partition's `records` bytes into [`Batch`]es
//!   (header + payload), checking each CRC-32C; a trailing batch cut by the broker ends
//!   iteration cleanly.
//! * [`Records`] walks the uncompressed record bytes of one batch (the payload itself when
//!   [`Compression::None`], else what the caller decompressed), yielding borrowed [`Record`]s
//!   whose [`Headers`] are validated up front.
//! * [`control_type`] reads transaction markers; [`ReadCommitted`] filters aborted
//!   transactions and control batches out of a partition's batches.
//!
//! * [`sasl`] and [`scram`]: the client side of Kafka's SASL exchanges (PLAIN, SCRAM,
//!   OAUTHBEARER).
//!
//! Every length on the wire is untrusted: bad input yields a [`BatchError`], never a panic.

mod batch;
mod crc;
mod read_committed;
mod record;
pub mod sasl;
pub mod scram;

pub use batch::{Batch, BatchError, BatchHeader, Batches, Compression, BATCH_HEADER_LEN};
pub use crc::crc32c;
pub use read_committed::ReadCommitted;
pub use record::{control_type, ControlType, Headers, Record, Records};

#[cfg(test)]
mod tests;
