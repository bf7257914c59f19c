//! HPACK header block decoding (RFC 7541 §3, §6).

use super::table::{static_entry, DynamicTable, STATIC_TABLE};
use super::{decode_int, decode_string, DecodeError};

/// The decoder of one connection: its dynamic table and a scratch buffer for literals, both
/// bounded (the scratch by the longest block decoded: Huffman expands at most 8/5).
#[derive(Debug)]
pub struct Decoder {
    pub(super) table: DynamicTable,
    /// Largest table size the peer may set: our SETTINGS_HEADER_TABLE_SIZE in force.
    max_allowed: usize,
    /// The peer owes a size update at the start of its next block.
    update_required: bool,
    scratch: Vec<u8>,
}

impl Decoder {
    /// A decoder for SETTINGS_HEADER_TABLE_SIZE `max_size`.
    pub fn new(max_size: usize) -> Decoder {
        Decoder::with_capacity(max_size, max_size)
    }

    /// A decoder whose table memory is allocated for `capacity` octets and whose current
    /// limit is `initial` (at most `capacity`): the protocol default 4096 until our SETTINGS
    /// are acknowledged, see [`Decoder::set_max_allowed`].
    pub fn with_capacity(capacity: usize, initial: usize) -> Decoder {
        let initial = initial.min(capacity);
        let mut table = DynamicTable::new(capacity);
        table.set_max_size(initial);
        Decoder {
            table,
            max_allowed: initial,
            update_required: false,
            scratch: Vec::new(),
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE took effect: size updates may not exceed `max` (capped
    /// at the capacity), and when `max` is below the table's current maximum the peer's next
    /// block must start with a size update (RFC 7541 §4.2).
    pub fn set_max_allowed(&mut self, max: usize) {
        let max = max.min(self.table.capacity());
        self.max_allowed = max;
        if max < self.table.max_size() {
            self.update_required = true;
        }
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Size of the dynamic table (§4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes one complete header block, calling `emit(name, value)` per field in order.
    /// Names and values are not validated here. On error the decoder's state is undefined:
    /// the connection must end (COMPRESSION_ERROR).
    pub fn decode(
        &mut self,
        block: &[u8],
        mut emit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            let rest = &block[pos..];
            if first & 0xe0 == 0x20 {
                // Dynamic table size update.
                if !at_start {
                    return Err(DecodeError::TableSizeUpdateLate);
                }
                let (size, n) = decode_int(rest, 5)?;
                if size > self.max_allowed {
                    return Err(DecodeError::TableSizeTooLarge);
                }
                self.table.set_max_size(size);
                self.update_required = false;
                pos += n;
                continue;
            }
            if self.update_required {
                return Err(DecodeError::TableSizeUpdateMissing);
            }
            at_start = false;
            if first & 0x80 != 0 {
                // Indexed field.
                let (index, n) = decode_int(rest, 7)?;
                let (name, value) = self.entry(index)?;
                emit(name, value);
                pos += n;
            } else {
                // Literal: with incremental indexing (01), without indexing (0000) or never
                // indexed (0001).
                let indexing = first & 0xc0 == 0x40;
                let (index, mut n) = decode_int(rest, if indexing { 6 } else { 4 })?;
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let result = (|| {
                    if index == 0 {
                        n += decode_string(&rest[n..], &mut scratch)?;
                    } else {
                        scratch.extend_from_slice(self.entry(index)?.0);
                    }
                    let name_len = scratch.len();
                    n += decode_string(&rest[n..], &mut scratch)?;
                    Ok(name_len)
                })();
                let outcome = result.map(|name_len| {
                    let (name, value) = scratch.split_at(name_len);
                    emit(name, value);
                    if indexing {
                        self.table.insert(name, value);
                    }
                });
                self.scratch = scratch;
                outcome?;
                pos += n;
            }
        }
        Ok(())
    }

    /// Field at combined index `index` (static 1..=61, then dynamic).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        if index <= STATIC_TABLE.len() {
            return static_entry(index).ok_or(DecodeError::InvalidIndex);
        }
        self.table
            .get(index - STATIC_TABLE.len())
            .ok_or(DecodeError::InvalidIndex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hpack::{encode_int, encode_string};

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn decode(d: &mut Decoder, block: &[u8]) -> Result<Fields, DecodeError> {
        let mut fields = Vec::new();
        d.decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())))?;
        Ok(fields)
    }

    #[test]
    fn invalid_indices() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &[0x80]), Err(DecodeError::InvalidIndex));
        assert_eq!(decode(&mut d, &[0x80 | 62]), Err(DecodeError::InvalidIndex));
        // Literal with an indexed name beyond the tables.
        assert_eq!(
            decode(&mut d, &[0x40 | 62, 0]),
            Err(DecodeError::InvalidIndex)
        );
        assert_eq!(
            decode(&mut d, &[0x0f, 0x30, 0]),
            Err(DecodeError::InvalidIndex)
        );
        assert_eq!(decode(&mut d, &[0x82]).unwrap().len(), 1);
        // One entry: index 62 exists, 63 does not.
        assert_eq!(decode(&mut d, &[0x40, 1, b'a', 1, b'b']).unwrap().len(), 1);
        assert_eq!(
            decode(&mut d, &[0x80 | 62]).unwrap(),
            [(b"a".to_vec(), b"b".to_vec())]
        );
        assert_eq!(decode(&mut d, &[0x80 | 63]), Err(DecodeError::InvalidIndex));
    }

    #[test]
    fn truncated_blocks() {
        let mut d = Decoder::new(4096);
        // Incremental indexing without its name string (the httpwg 4.3 case).
        assert_eq!(decode(&mut d, &[0x40]), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&mut d, &[0x40, 3, b'a']),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode(&mut d, &[0x04, 3, b'/', b'a']),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode(&mut d, &[0xff]), Err(DecodeError::Truncated));
        assert_eq!(decode(&mut d, &[]).unwrap(), []);
    }

    #[test]
    fn table_size_updates() {
        let mut d = Decoder::new(4096);
        // At the start, possibly twice.
        assert!(decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).is_ok());
        assert_eq!(d.table.max_size(), 4096);
        // Above our setting.
        assert_eq!(
            decode(&mut d, &[0x3f, 0xe2, 0x1f]),
            Err(DecodeError::TableSizeTooLarge)
        );
        // After a field.
        assert_eq!(
            decode(&mut d, &[0x82, 0x20]),
            Err(DecodeError::TableSizeUpdateLate)
        );
    }

    #[test]
    fn lowered_setting_requires_an_update() {
        let mut d = Decoder::with_capacity(4096, 4096);
        assert!(decode(&mut d, &[0x40, 1, b'a', 1, b'b']).is_ok());
        d.set_max_allowed(100);
        assert_eq!(
            decode(&mut d, &[0x82]),
            Err(DecodeError::TableSizeUpdateMissing)
        );
        let mut d2 = Decoder::with_capacity(4096, 4096);
        d2.set_max_allowed(100);
        let mut block = Vec::new();
        encode_int(101, 5, 0x20, &mut block);
        assert_eq!(decode(&mut d2, &block), Err(DecodeError::TableSizeTooLarge));
        assert_eq!(decode(&mut d2, &[0x20, 0x82]).unwrap().len(), 1);
        assert_eq!(d2.table.max_size(), 0);
        // Raising the setting needs no update.
        let mut d3 = Decoder::with_capacity(8192, 4096);
        d3.set_max_allowed(8192);
        assert_eq!(decode(&mut d3, &[0x82]).unwrap().len(), 1);
        let mut grow = Vec::new();
        encode_int(8192, 5, 0x20, &mut grow);
        assert!(decode(&mut d3, &grow).is_ok());
        assert_eq!(d3.table.max_size(), 8192);
        // Not beyond the capacity allocated.
        d3.set_max_allowed(1 << 20);
        let mut over = Vec::new();
        encode_int(8193, 5, 0x20, &mut over);
        assert_eq!(decode(&mut d3, &over), Err(DecodeError::TableSizeTooLarge));
    }

    #[test]
    fn never_indexed_and_without_indexing_leave_the_table() {
        let mut d = Decoder::new(4096);
        let mut block = vec![0x10];
        encode_string(b"password", &mut block);
        encode_string(b"secret", &mut block);
        block.push(0x00);
        encode_string(b"x", &mut block);
        encode_string(b"y", &mut block);
        let fields = decode(&mut d, &block).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(d.table_len(), 0);
    }

    #[test]
    fn name_from_an_entry_it_evicts() {
        // Table of 40 octets: "k: v" (34) is replaced by "k: vw" (35), named by index 62.
        let mut d = Decoder::new(40);
        assert!(decode(&mut d, &[0x40, 1, b'k', 1, b'v']).is_ok());
        let fields = decode(&mut d, &[0x40 | 62, 2, b'v', b'w', 0x80 | 62]).unwrap();
        assert_eq!(fields[0], (b"k".to_vec(), b"vw".to_vec()));
        assert_eq!(fields[1], (b"k".to_vec(), b"vw".to_vec()));
        assert_eq!(d.table_len(), 1);
    }
}
