//! CRC-32C (Castagnoli), the checksum of Kafka record batches v2, through the `crc32c` crate:
//! the SSE 4.2 `crc32` instruction (three interleaved streams) when the CPU has it, detected
//! once at run time, else a table-driven software fallback. No allocation.

/// Continues a CRC over `data`. `crc` is a finished CRC-32C value: 0 for no bytes yet, or what
/// the previous call returned (`crc32c(a ++ b) == update(crc32c(a), b)`).
#[inline]
pub(crate) fn update(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// CRC-32C of `data` (the value Kafka stores in a batch's `crc` field, computed over the bytes
/// from `attributes` to the end of the batch).
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}
