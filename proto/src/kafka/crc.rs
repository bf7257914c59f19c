//! CRC-32C (Castagnoli), the checksum of Kafka record batches v2.
//!
//! Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF; one byte per
//! step through a 256-entry table built at compile time.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLE[i]` is the CRC register after shifting the byte `i` through eight steps.
static TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut reg = i as u32;
        let mut bit = 0;
        while bit < 8 {
            reg = if reg & 1 == 1 {
                (reg >> 1) ^ POLY
            } else {
                reg >> 1
            };
            bit += 1;
        }
        table[i] = reg;
        i += 1;
    }
    table
}

/// Continues a CRC over `data`. `state` is the raw register: start from `!0`, finish with `!`.
#[inline]
pub(crate) fn update(mut state: u32, data: &[u8]) -> u32 {
    for &byte in data {
        state = TABLE[usize::from(state as u8 ^ byte)] ^ (state >> 8);
    }
    state
}

/// CRC-32C of `data` (the value Kafka stores in a batch's `crc` field, computed over the bytes
/// from `attributes` to the end of the batch).
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    !update(!0, data)
}
