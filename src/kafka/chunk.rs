//! `Chunk`: the immutable unit that travels from the partition's owning worker to every worker
//! with streams on it. It holds the (decompressed) record bytes of one fetch of one partition
//! and an index of the deliverable records: aborted transactions, control batches and records
//! before the fetch position are already left out, so readers only walk what clients may see.

use bytes::Bytes;
use proto::kafka::{control_type, Batches, Compression, ReadCommitted, Record, Records};

/// One deliverable record: its offset and where its bytes are.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef {
    pub offset: i64,
    /// Record timestamp (ms since the epoch; log-append time when the topic uses it).
    pub timestamp: i64,
    buf: u32,
    start: u32,
    end: u32,
}

#[derive(Debug)]
pub struct Chunk {
    pub partition: i32,
    /// The fetch position this chunk starts at.
    pub first_offset: i64,
    /// The fetch position after it (past skipped batches too). `> first_offset` unless empty.
    pub next_offset: i64,
    /// Last stable offset reported with this fetch (the live edge for READ_COMMITTED).
    pub stable_offset: i64,
    /// High watermark reported with this fetch (-1 when unknown): the log end, which is what
    /// tells a position past the end from one waiting for records.
    pub high_watermark: i64,
    records: Vec<RecordRef>,
    buffers: Vec<Bytes>,
    /// Bytes held (for cache accounting).
    pub size: usize,
    /// When it was fetched (`clock::monotonic_secs`), for the cache's age bound.
    pub fetched_at: u64,
}

#[derive(Debug)]
pub enum ChunkError {
    Batch(proto::kafka::BatchError),
    Decompress(String),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Batch(e) => write!(f, "bad record batch: {e:?}"),
            ChunkError::Decompress(e) => write!(f, "decompression failed: {e}"),
        }
    }
}

impl Chunk {
    /// An empty chunk that only moves the position (e.g. after OFFSET_OUT_OF_RANGE).
    pub fn jump(partition: i32, from: i64, to: i64, stable_offset: i64) -> Self {
        Self {
            partition,
            first_offset: from,
            next_offset: to,
            stable_offset,
            high_watermark: -1,
            records: Vec::new(),
            buffers: Vec::new(),
            size: 0,
            fetched_at: crate::clock::monotonic_secs(),
        }
    }

    /// The position `from` is past the end of the partition (the broker answered
    /// OFFSET_OUT_OF_RANGE above its log end, e.g. a recreated topic): restart at `to`, the
    /// earliest retained offset. The only chunk whose `next_offset` is below its `first_offset`.
    pub fn reset(partition: i32, from: i64, to: i64) -> Self {
        Self::jump(partition, from, to, to)
    }

    pub fn is_reset(&self) -> bool {
        self.next_offset < self.first_offset
    }

    /// Decodes one partition's `records` from a Fetch response that asked for `fetch_offset`.
    /// `aborted` are the response's aborted transactions `(producer_id, first_offset)`.
    pub fn decode(
        partition: i32,
        fetch_offset: i64,
        stable_offset: i64,
        records: &Bytes,
        aborted: &[(i64, i64)],
    ) -> Result<Self, ChunkError> {
        let mut chunk = Chunk::jump(partition, fetch_offset, fetch_offset, stable_offset);
        let mut filter = ReadCommitted::with_aborted(aborted.iter().copied());
        let mut batches = Batches::new(records);
        for batch in batches.by_ref() {
            let batch = batch.map_err(ChunkError::Batch)?;
            let header = batch.header;
            let next = header.next_offset();
            if header.is_control() {
                // The marker's type ends (or commits) the producer's transaction.
                let body = decompress(
                    header.compression().map_err(ChunkError::Batch)?,
                    records,
                    batch.payload,
                )?;
                if let Some(Ok(rec)) = Records::new(&body, header.record_count).next() {
                    if let Some(t) = control_type(rec.key) {
                        filter.on_control(header.producer_id, t);
                    }
                }
            }
            if !filter.skip(&header) && next > fetch_offset {
                let body = decompress(
                    header.compression().map_err(ChunkError::Batch)?,
                    records,
                    batch.payload,
                )?;
                let buf = chunk.buffers.len() as u32;
                let mut any = false;
                let mut walk = Records::new(&body, header.record_count);
                loop {
                    let start = walk.consumed() as u32;
                    let Some(rec) = walk.next() else { break };
                    let rec = rec.map_err(ChunkError::Batch)?;
                    let end = walk.consumed() as u32;
                    let offset = header
                        .base_offset
                        .saturating_add(i64::from(rec.offset_delta));
                    if offset < fetch_offset {
                        continue;
                    }
                    let timestamp = rec.timestamp(&header);
                    chunk.records.push(RecordRef {
                        offset,
                        timestamp,
                        buf,
                        start,
                        end,
                    });
                    any = true;
                }
                if any {
                    chunk.size += body.len();
                    chunk.buffers.push(body);
                }
            }
            chunk.next_offset = chunk.next_offset.max(next);
        }
        chunk.size += chunk.records.len() * std::mem::size_of::<RecordRef>();
        Ok(chunk)
    }

    pub fn records(&self) -> &[RecordRef] {
        &self.records
    }

    /// Index of the first record at or after `offset`.
    pub fn seek(&self, offset: i64) -> usize {
        self.records.partition_point(|r| r.offset < offset)
    }

    /// The record behind `r` (validated when the chunk was built).
    pub fn record(&self, r: &RecordRef) -> Option<Record<'_>> {
        let buf = self.buffers.get(r.buf as usize)?;
        let bytes = buf.get(r.start as usize..r.end as usize)?;
        Records::new(bytes, 1).next()?.ok()
    }
}

/// What a record becomes when a chunk is rewritten (topic models): left out, or kept with its
/// key and value taken from the scratch buffers when `*_replaced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    Skip,
    Keep {
        key_replaced: bool,
        value_replaced: bool,
    },
}

impl Chunk {
    /// The same positions with each record rewritten by `convert`, which may fill `key` and
    /// `value` (cleared before each record) with replacement bytes. Skipped records are left
    /// out of the index; the chunk still covers their offsets, so readers move past them.
    /// Returns the new chunk and how many records were skipped.
    pub fn rewrite(
        &self,
        mut convert: impl FnMut(&Record<'_>, &mut Vec<u8>, &mut Vec<u8>) -> Rewrite,
    ) -> (Chunk, usize) {
        let mut out = Chunk::jump(
            self.partition,
            self.first_offset,
            self.next_offset,
            self.stable_offset,
        );
        out.high_watermark = self.high_watermark;
        out.fetched_at = self.fetched_at;
        let mut body: Vec<u8> = Vec::new();
        let mut record_bytes: Vec<u8> = Vec::new();
        let (mut key, mut value) = (Vec::new(), Vec::new());
        let mut skipped = 0;
        for r in &self.records {
            let Some(rec) = self.record(r) else {
                skipped += 1;
                continue;
            };
            key.clear();
            value.clear();
            let (key_replaced, value_replaced) = match convert(&rec, &mut key, &mut value) {
                Rewrite::Skip => {
                    skipped += 1;
                    continue;
                }
                Rewrite::Keep {
                    key_replaced,
                    value_replaced,
                } => (key_replaced, value_replaced),
            };
            let new_key = if key_replaced {
                Some(&key[..])
            } else {
                rec.key
            };
            let new_value = if value_replaced {
                Some(&value[..])
            } else {
                rec.value
            };
            record_bytes.clear();
            encode_record(&rec, new_key, new_value, &mut record_bytes);
            let start = body.len();
            proto::varint::write_i32(record_bytes.len() as i32, &mut body);
            body.extend_from_slice(&record_bytes);
            out.records.push(RecordRef {
                offset: r.offset,
                timestamp: r.timestamp,
                buf: 0,
                start: start as u32,
                end: body.len() as u32,
            });
        }
        if !out.records.is_empty() {
            out.size = body.len();
            out.buffers.push(Bytes::from(body));
        }
        out.size += out.records.len() * std::mem::size_of::<RecordRef>();
        (out, skipped)
    }
}

/// A record body (v2, without its length prefix) with `key` and `value` in place of the
/// record's own.
fn encode_record(rec: &Record<'_>, key: Option<&[u8]>, value: Option<&[u8]>, out: &mut Vec<u8>) {
    use proto::varint::{write_i32, write_i64};
    fn bytes(field: Option<&[u8]>, out: &mut Vec<u8>) {
        match field {
            None => write_i32(-1, out),
            Some(b) => {
                write_i32(b.len() as i32, out);
                out.extend_from_slice(b);
            }
        }
    }
    out.push(rec.attributes as u8);
    write_i64(rec.timestamp_delta, out);
    write_i32(rec.offset_delta, out);
    bytes(key, out);
    bytes(value, out);
    write_i32(rec.headers.len() as i32, out);
    for (name, value) in rec.headers {
        bytes(Some(name), out);
        bytes(value, out);
    }
}

fn decompress(codec: Compression, whole: &Bytes, payload: &[u8]) -> Result<Bytes, ChunkError> {
    match codec {
        Compression::None => Ok(whole.slice_ref(payload)),
        _ => super::decompress::decompress(codec, payload, super::decompress::MAX_BATCH_BYTES)
            .map(Bytes::from)
            .map_err(ChunkError::Decompress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_replaces_skips_and_keeps_positions() {
        let records: [crate::testing::KeyValue<'_>; 3] = [
            (Some(b"k0"), Some(b"v0")),
            (Some(b"k1"), Some(b"bad")),
            (None, None),
        ];
        let bytes = Bytes::from(crate::testing::batch(10, &records));
        let chunk = Chunk::decode(0, 10, 13, &bytes, &[]).unwrap();
        let (out, skipped) = chunk.rewrite(|rec, key, value| {
            if rec.value == Some(b"bad") {
                return Rewrite::Skip;
            }
            if rec.key.is_some() {
                key.extend_from_slice(b"{\"k\":0}");
            }
            value.extend_from_slice(b"converted");
            Rewrite::Keep {
                key_replaced: rec.key.is_some(),
                value_replaced: rec.value.is_some(),
            }
        });
        assert_eq!(skipped, 1);
        assert_eq!((out.first_offset, out.next_offset), (10, 13));
        let got: Vec<_> = out
            .records()
            .iter()
            .map(|r| {
                let rec = out.record(r).unwrap();
                (
                    r.offset,
                    rec.key.map(<[u8]>::to_vec),
                    rec.value.map(<[u8]>::to_vec),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (10, Some(b"{\"k\":0}".to_vec()), Some(b"converted".to_vec())),
                (12, None, None),
            ]
        );
    }
}
