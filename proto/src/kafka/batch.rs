//! Record batches (magic v2): the 61-byte header and the iteration over the batches of a Fetch
//! response partition's `records` bytes.

use core::fmt;
use core::iter::FusedIterator;

use super::crc::{self, crc32c};
use super::record::Records;

/// Size of a v2 batch header, from `baseOffset` to `recordsCount` inclusive.
pub const BATCH_HEADER_LEN: usize = 61;

/// `baseOffset` + `batchLength`: the bytes not counted by `batchLength`.
const LOG_OVERHEAD: usize = 12;
/// Bytes needed to read the magic byte (same position in legacy message sets).
const HEADER_UP_TO_MAGIC: usize = 17;
/// Position of the magic byte.
const MAGIC_OFFSET: usize = 16;
/// Position of `attributes`, where the CRC-covered bytes start.
const ATTRIBUTES_OFFSET: usize = 21;
/// Smallest valid `batchLength` (a batch of zero records).
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only message format parsed here.
const MAGIC_V2: i8 = 2;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Codec of a batch's records (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Why a batch or a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// Not a v2 batch: legacy (0/1) message sets or garbage.
    BadMagic(i8),
    /// `batchLength` is smaller than a header.
    BadLength,
    /// Compression bits 5, 6 or 7.
    BadCompression(u8),
    /// The stored CRC-32C does not match the batch bytes.
    BadCrc,
    /// Fewer bytes than a batch header.
    Truncated,
    /// Record framing is broken (bad length, truncated field, wrong record count).
    BadRecord,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::BadMagic(m) => write!(f, "record batch magic {m} (only v2 is supported)"),
            BatchError::BadLength => f.write_str("record batch length smaller than its header"),
            BatchError::BadCompression(c) => write!(f, "unknown record batch compression {c}"),
            BatchError::BadCrc => f.write_str("record batch CRC-32C mismatch"),
            BatchError::Truncated => f.write_str("record batch truncated"),
            BatchError::BadRecord => f.write_str("malformed record in batch"),
        }
    }
}

impl std::error::Error for BatchError {}

/// The fixed fields of a v2 batch, in wire order.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after this field to the end of the batch (whole batch = 12 + `batch_length`).
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// Reads fixed-width big-endian fields off the front of a slice; never panics.
struct Fixed<'a>(&'a [u8]);

impl Fixed<'_> {
    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BatchError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(BatchError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
    #[inline]
    fn i8(&mut self) -> Result<i8, BatchError> {
        self.take::<1>().map(i8::from_be_bytes)
    }
    #[inline]
    fn i16(&mut self) -> Result<i16, BatchError> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    #[inline]
    fn i32(&mut self) -> Result<i32, BatchError> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    #[inline]
    fn u32(&mut self) -> Result<u32, BatchError> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    #[inline]
    fn i64(&mut self) -> Result<i64, BatchError> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

impl BatchHeader {
    /// Parses the first 61 bytes of `bytes`. `Truncated` when shorter, `BadMagic` when the magic
    /// byte is not 2. Neither the length nor the CRC is checked here.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        let mut r = Fixed(bytes);
        let base_offset = r.i64()?;
        let batch_length = r.i32()?;
        let partition_leader_epoch = r.i32()?;
        let magic = r.i8()?;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc: r.u32()?,
            attributes: r.i16()?,
            last_offset_delta: r.i32()?,
            base_timestamp: r.i64()?,
            max_timestamp: r.i64()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            base_sequence: r.i32()?,
            record_count: r.i32()?,
        })
    }

    /// The CRC-covered header fields (`attributes` .. `recordsCount`) re-encoded.
    fn crc_covered_fields(&self) -> [u8; BATCH_HEADER_LEN - ATTRIBUTES_OFFSET] {
        let mut out = [0u8; BATCH_HEADER_LEN - ATTRIBUTES_OFFSET];
        let fields: [&[u8]; 8] = [
            &self.attributes.to_be_bytes(),
            &self.last_offset_delta.to_be_bytes(),
            &self.base_timestamp.to_be_bytes(),
            &self.max_timestamp.to_be_bytes(),
            &self.producer_id.to_be_bytes(),
            &self.producer_epoch.to_be_bytes(),
            &self.base_sequence.to_be_bytes(),
            &self.record_count.to_be_bytes(),
        ];
        let mut rest = &mut out[..];
        for field in fields {
            let (dst, tail) = rest.split_at_mut(field.len());
            dst.copy_from_slice(field);
            rest = tail;
        }
        out
    }

    /// The codec of the records; `BadCompression` for the undefined values 5-7.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        match (self.attributes & COMPRESSION_MASK) as u8 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::BadCompression(other)),
        }
    }

    /// Timestamps are the broker's append time (`max_timestamp` applies to every record) rather
    /// than the producer's create time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Control batches hold transaction markers, never user records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The producer is idempotent or transactional (`producer_id` is not -1).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Offset of the last record: `base_offset + last_offset_delta`, saturating.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset to fetch next after this batch: `last_offset() + 1`, saturating.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Size of the whole batch on the wire, when `batch_length` is valid.
    pub fn total_len(&self) -> Option<usize> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return None;
        }
        usize::try_from(self.batch_length)
            .ok()?
            .checked_add(LOG_OVERHEAD)
    }
}

/// One complete v2 batch borrowed from a Fetch response.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    /// Bytes after the 61-byte header: the compressed blob, or the raw records when
    /// `header.compression()` is `None`.
    pub payload: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Checks the stored CRC-32C against `attributes`..end (the header fields re-encoded, then
    /// the payload). [`Batches`] already does this unless told not to.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let fields = self.header.crc_covered_fields();
        let computed = crc::update(crc::update(0, &fields), self.payload);
        if computed == self.header.crc {
            Ok(())
        } else {
            Err(BatchError::BadCrc)
        }
    }

    /// The records of an uncompressed batch; `None` when the payload is compressed (or the
    /// compression bits are invalid): decompress it, then use
    /// `Records::new(&decompressed, header.record_count)`.
    pub fn records(&self) -> Option<Records<'a>> {
        match self.header.compression() {
            Ok(Compression::None) => Some(Records::new(self.payload, self.header.record_count)),
            _ => None,
        }
    }
}

/// Iterates the batches of one partition's `records` bytes from a Fetch response.
///
/// * A trailing partial batch (the broker cuts the last batch at `max_bytes`) ends iteration
///   with `None`; [`consumed`](Batches::consumed) tells how far the complete batches went. A
///   batch declaring more bytes than are left, however absurd, is such a partial batch: when
///   `consumed()` stays 0 on non-empty input the caller needs a larger fetch size (or the
///   broker is broken).
/// * Any error (legacy magic 0/1, a `batchLength` below the header size, a CRC mismatch) is
///   yielded once and ends iteration; `consumed()` then points at the start of the bad batch.
/// * The CRC-32C of every batch is checked unless [`with_crc_check(false)`](Batches::with_crc_check).
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    input: &'a [u8],
    pos: usize,
    check_crc: bool,
    done: bool,
}

impl<'a> Batches<'a> {
    pub fn new(records: &'a [u8]) -> Self {
        Batches {
            input: records,
            pos: 0,
            check_crc: true,
            done: false,
        }
    }

    /// Turns the per-batch CRC check on (the default) or off.
    pub fn with_crc_check(mut self, check: bool) -> Self {
        self.check_crc = check;
        self
    }

    /// Bytes consumed by the complete batches yielded so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet (a partial batch at the end, or the batch that failed).
    pub fn remaining(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn fail(&mut self, err: BatchError) -> Option<Result<Batch<'a>, BatchError>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.remaining();
        let Some(prefix) = rest.first_chunk::<HEADER_UP_TO_MAGIC>() else {
            // Empty, or too short to tell anything: a cut batch.
            self.done = true;
            return None;
        };
        let magic = prefix[MAGIC_OFFSET] as i8;
        if magic != MAGIC_V2 {
            return self.fail(BatchError::BadMagic(magic));
        }
        let batch_length = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
        if batch_length < MIN_BATCH_LENGTH {
            return self.fail(BatchError::BadLength);
        }
        let total = match usize::try_from(batch_length)
            .ok()
            .and_then(|len| len.checked_add(LOG_OVERHEAD))
        {
            Some(total) => total,
            None => return self.fail(BatchError::BadLength),
        };
        let Some((whole, _)) = rest.split_at_checked(total) else {
            // The broker cut this batch at max_bytes: stop cleanly.
            self.done = true;
            return None;
        };
        let header = match BatchHeader::parse(whole) {
            Ok(header) => header,
            Err(err) => return self.fail(err),
        };
        let (Some(covered), Some(payload)) = (
            whole.get(ATTRIBUTES_OFFSET..),
            whole.get(BATCH_HEADER_LEN..),
        ) else {
            return self.fail(BatchError::Truncated);
        };
        if self.check_crc && crc32c(covered) != header.crc {
            return self.fail(BatchError::BadCrc);
        }
        self.pos = self.pos.saturating_add(total);
        Some(Ok(Batch { header, payload }))
    }
}

impl FusedIterator for Batches<'_> {}
