//! Records (v2) inside a batch's uncompressed record bytes, their headers, and control records.

use core::iter::FusedIterator;

use super::batch::{BatchError, BatchHeader};
use crate::varint;

/// Reads the variable-length fields of one record body; every failure is `BadRecord`.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    #[inline]
    fn i8(&mut self) -> Result<i8, BatchError> {
        let (&b, rest) = self.0.split_first().ok_or(BatchError::BadRecord)?;
        self.0 = rest;
        Ok(b as i8)
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, BatchError> {
        let (v, n) = varint::read_i32(self.0).map_err(|_| BatchError::BadRecord)?;
        self.advance(n)?;
        Ok(v)
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, n) = varint::read_i64(self.0).map_err(|_| BatchError::BadRecord)?;
        self.advance(n)?;
        Ok(v)
    }

    #[inline]
    fn advance(&mut self, n: usize) -> Result<(), BatchError> {
        self.0 = self.0.get(n..).ok_or(BatchError::BadRecord)?;
        Ok(())
    }

    #[inline]
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], BatchError> {
        let (head, rest) = self.0.split_at_checked(len).ok_or(BatchError::BadRecord)?;
        self.0 = rest;
        Ok(head)
    }

    /// A varint length then that many bytes; -1 is null, below -1 is invalid.
    #[inline]
    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| BatchError::BadRecord)?;
        self.bytes(len).map(Some)
    }

    /// A varint length (never negative) then that many bytes.
    #[inline]
    fn non_null_bytes(&mut self) -> Result<&'a [u8], BatchError> {
        let len = usize::try_from(self.varint()?).map_err(|_| BatchError::BadRecord)?;
        self.bytes(len)
    }
}

/// One record, borrowed from the record bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    /// `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// `None` is a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

impl Record<'_> {
    /// Absolute offset: `header.base_offset + offset_delta`, saturating.
    pub fn offset(&self, header: &BatchHeader) -> i64 {
        header
            .base_offset
            .saturating_add(i64::from(self.offset_delta))
    }

    /// Timestamp in ms: the batch's `max_timestamp` for log-append-time batches, else
    /// `base_timestamp + timestamp_delta` (saturating).
    pub fn timestamp(&self, header: &BatchHeader) -> i64 {
        if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(self.timestamp_delta)
        }
    }
}

/// Parses one length-prefixed record off the front of `buf`; returns it and the bytes used.
/// The whole body must be used by its fields, and the header framing is validated here so
/// that [`Headers`] iteration cannot fail.
fn parse_record(buf: &[u8]) -> Result<(Record<'_>, usize), BatchError> {
    let (len, prefix) = varint::read_i32(buf).map_err(|_| BatchError::BadRecord)?;
    let len = usize::try_from(len).map_err(|_| BatchError::BadRecord)?;
    let end = prefix.checked_add(len).ok_or(BatchError::BadRecord)?;
    let body = buf.get(prefix..end).ok_or(BatchError::BadRecord)?;

    let mut c = Cursor(body);
    let attributes = c.i8()?;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable_bytes()?;
    let value = c.nullable_bytes()?;
    let count = usize::try_from(c.varint()?).map_err(|_| BatchError::BadRecord)?;
    let headers_start = c.0;
    // Each header takes at least two bytes, so this loop ends within body.len() / 2 turns
    // whatever `count` claims.
    for _ in 0..count {
        c.non_null_bytes()?;
        c.nullable_bytes()?;
    }
    if !c.0.is_empty() {
        return Err(BatchError::BadRecord);
    }
    let headers = Headers {
        bytes: headers_start,
        remaining: count,
    };
    Ok((
        Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        },
        end,
    ))
}

/// Walks the records of one batch's uncompressed record bytes.
///
/// Yields at most `count` records (the batch's `record_count`). Broken framing, fewer records
/// than `count`, bytes left over after `count` records, or a negative `count` yield
/// `Some(Err(BadRecord))` once, then `None`.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    /// Length of the input, so `consumed` can tell where each record sits.
    total: usize,
    /// Records still expected; negative means the count itself is invalid.
    remaining: i32,
    done: bool,
}

impl<'a> Records<'a> {
    pub fn new(bytes: &'a [u8], count: i32) -> Self {
        Records {
            bytes,
            total: bytes.len(),
            remaining: count,
            done: false,
        }
    }

    /// Bytes of the input taken by the records yielded so far: the span of the record just
    /// returned is `consumed()` before the call to `consumed()` after it.
    pub fn consumed(&self) -> usize {
        self.total - self.bytes.len()
    }

    fn fail(&mut self) -> Option<Result<Record<'a>, BatchError>> {
        self.done = true;
        Some(Err(BatchError::BadRecord))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining <= 0 {
            if self.remaining == 0 && self.bytes.is_empty() {
                self.done = true;
                return None;
            }
            return self.fail();
        }
        match parse_record(self.bytes) {
            Ok((record, used)) => {
                self.bytes = self.bytes.get(used..).unwrap_or_default();
                self.remaining -= 1;
                Some(Ok(record))
            }
            Err(_) => self.fail(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // Up to `remaining` records plus possibly one error.
            let max = usize::try_from(self.remaining)
                .unwrap_or(0)
                .saturating_add(1);
            (0, Some(max))
        }
    }
}

impl FusedIterator for Records<'_> {}

/// The headers of one record as (name, value) pairs, value `None` when null. Validated when
/// the record was parsed, so iterating cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    bytes: &'a [u8],
    remaining: usize,
}

impl<'a> Headers<'a> {
    /// Headers not yet iterated (all of them on a fresh `Headers`).
    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Value of the first header named exactly `name`: `None` when absent, `Some(None)` when
    /// present with a null value.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        let mut all = *self;
        all.find(|&(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut c = Cursor(self.bytes);
        match (c.non_null_bytes(), c.nullable_bytes()) {
            (Ok(name), Ok(value)) => {
                self.bytes = c.0;
                self.remaining -= 1;
                Some((name, value))
            }
            // Unreachable for headers built by `parse_record`; end quietly all the same.
            _ => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Headers<'_> {}
impl FusedIterator for Headers<'_> {}

/// Type of a control record (transaction marker), from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
    /// Any other type id (e.g. newer marker kinds); not a transaction end.
    Unknown(i16),
}

/// Reads a control record's key (`version` i16, `type` i16, big-endian). `None` when the key is
/// null, shorter than 4 bytes or has a negative version (corrupt, as Kafka's consumer treats it).
pub fn control_type(record_key: Option<&[u8]>) -> Option<ControlType> {
    let key = record_key?.first_chunk::<4>()?;
    let version = i16::from_be_bytes([key[0], key[1]]);
    if version < 0 {
        return None;
    }
    Some(match i16::from_be_bytes([key[2], key[3]]) {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        other => ControlType::Unknown(other),
    })
}
