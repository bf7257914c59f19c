//! Tests, with a test-only encoder of v2 batches.

use super::*;
use crate::varint::{write_i32, write_i64};

// ---------------------------------------------------------------------------------------------
// Test-only encoder

type Header<'a> = (&'a [u8], Option<&'a [u8]>);

#[derive(Clone, Copy, Default)]
struct Rec<'a> {
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header<'a>],
}

fn put_nullable(bytes: Option<&[u8]>, out: &mut Vec<u8>) {
    match bytes {
        None => write_i32(-1, out),
        Some(b) => {
            write_i32(b.len() as i32, out);
            out.extend_from_slice(b);
        }
    }
}

fn encode_record(r: &Rec<'_>, out: &mut Vec<u8>) {
    let mut body = vec![0u8]; // attributes
    write_i64(r.timestamp_delta, &mut body);
    write_i32(r.offset_delta, &mut body);
    put_nullable(r.key, &mut body);
    put_nullable(r.value, &mut body);
    write_i32(r.headers.len() as i32, &mut body);
    for (name, value) in r.headers {
        put_nullable(Some(name), &mut body);
        put_nullable(*value, &mut body);
    }
    write_i32(body.len() as i32, out);
    out.extend_from_slice(&body);
}

fn encode_records(recs: &[Rec<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        encode_record(r, &mut out);
    }
    out
}

struct BatchSpec {
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    producer_id: i64,
    record_count: i32,
    payload: Vec<u8>,
}

impl BatchSpec {
    fn plain(base_offset: i64, recs: &[Rec<'_>]) -> Self {
        BatchSpec {
            base_offset,
            attributes: 0,
            last_offset_delta: recs.len().saturating_sub(1) as i32,
            producer_id: -1,
            record_count: recs.len() as i32,
            payload: encode_records(recs),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut covered = Vec::new();
        covered.extend_from_slice(&self.attributes.to_be_bytes());
        covered.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        covered.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // base timestamp
        covered.extend_from_slice(&1_700_000_000_042i64.to_be_bytes()); // max timestamp
        covered.extend_from_slice(&self.producer_id.to_be_bytes());
        covered.extend_from_slice(&0i16.to_be_bytes()); // producer epoch
        covered.extend_from_slice(&0i32.to_be_bytes()); // base sequence
        covered.extend_from_slice(&self.record_count.to_be_bytes());
        covered.extend_from_slice(&self.payload);
        let mut out = Vec::new();
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        let batch_length = (4 + 1 + 4 + covered.len()) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&5i32.to_be_bytes()); // partition leader epoch
        out.push(2); // magic
        out.extend_from_slice(&crc32c(&covered).to_be_bytes());
        out.extend_from_slice(&covered);
        out
    }
}

/// Recomputes the CRC of an encoded batch after a test edited it.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn sample_records() -> Vec<Rec<'static>> {
    vec![
        Rec {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers: &[(b"etag", Some(b"v1")), (b"trace", None)],
        },
        Rec {
            offset_delta: 1,
            timestamp_delta: 5,
            key: None,
            value: Some(b"no key"),
            headers: &[],
        },
        Rec {
            offset_delta: 2,
            timestamp_delta: 7,
            key: Some(b"k1"),
            value: None, // tombstone
            headers: &[(b"etag", Some(b"")), (b"etag", Some(b"second"))],
        },
        Rec {
            offset_delta: 3,
            timestamp_delta: -3,
            key: Some(b""),
            value: Some(b""),
            headers: &[],
        },
    ]
}

fn all_batches(bytes: &[u8]) -> Vec<Result<Batch<'_>, BatchError>> {
    Batches::new(bytes).collect()
}

// ---------------------------------------------------------------------------------------------
// CRC

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    // RFC 3720 B.4: 32 bytes of zeros.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    // RFC 3720 B.4: 32 bytes of 0xFF, and 0..=31 ascending.
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let ascending: Vec<u8> = (0u8..32).collect();
    assert_eq!(crc32c(&ascending), 0x46DD_794E);
}

#[test]
fn crc32c_continues_across_pieces() {
    // A batch's CRC covers the re-encoded header fields, then the payload: computed in two
    // pieces, it must equal the CRC of the concatenation, at every split point (the hardware
    // path works in 8-byte words and interleaved blocks, so lengths around those matter).
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    for split in (0..data.len())
        .step_by(37)
        .chain([0, 1, 7, 8, 9, 255, 256, 2999, 3000])
    {
        let (a, b) = data.split_at(split);
        assert_eq!(
            super::crc::update(super::crc::update(0, a), b),
            crc32c(&data),
            "split {split}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Batches and records

#[test]
fn reads_records_keys_values_tombstones_headers() {
    let recs = sample_records();
    let bytes = BatchSpec::plain(100, &recs).encode();
    let batches = all_batches(&bytes);
    assert_eq!(batches.len(), 1);
    let batch = batches[0].unwrap();
    let h = batch.header;
    assert_eq!(h.base_offset, 100);
    assert_eq!(h.batch_length as usize + 12, bytes.len());
    assert_eq!(h.partition_leader_epoch, 5);
    assert_eq!(h.magic, 2);
    assert_eq!(h.record_count, 4);
    assert_eq!(h.last_offset(), 103);
    assert_eq!(h.next_offset(), 104);
    assert_eq!(h.compression(), Ok(Compression::None));
    assert!(!h.is_transactional() && !h.is_control() && !h.has_producer_id());
    assert_eq!(batch.payload.len(), bytes.len() - BATCH_HEADER_LEN);
    assert_eq!(batch.verify_crc(), Ok(()));

    let got: Vec<Record<'_>> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), recs.len());
    for (g, want) in got.iter().zip(&recs) {
        assert_eq!(g.attributes, 0);
        assert_eq!(g.offset_delta, want.offset_delta);
        assert_eq!(g.timestamp_delta, want.timestamp_delta);
        assert_eq!(g.key, want.key);
        assert_eq!(g.value, want.value);
        assert_eq!(g.headers.len(), want.headers.len());
        assert_eq!(g.headers.is_empty(), want.headers.is_empty());
        let hs: Vec<Header<'_>> = g.headers.collect();
        assert_eq!(hs, want.headers);
    }
    assert_eq!(got[0].offset(&h), 100);
    assert_eq!(got[3].offset(&h), 103);
    assert_eq!(got[1].timestamp(&h), 1_700_000_000_005);
    assert_eq!(got[0].headers.get(b"etag"), Some(Some(&b"v1"[..])));
    assert_eq!(got[0].headers.get(b"trace"), Some(None));
    assert_eq!(got[0].headers.get(b"missing"), None);
    assert_eq!(got[0].headers.get(b"eta"), None);
    // First header with that name wins.
    assert_eq!(got[2].headers.get(b"etag"), Some(Some(&b""[..])));
    // `get` does not consume.
    let mut hs = got[0].headers;
    assert_eq!(hs.get(b"trace"), Some(None));
    assert_eq!(hs.len(), 2);
    hs.next();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs.get(b"etag"), None);
}

#[test]
fn empty_input_and_empty_batch() {
    assert!(all_batches(&[]).is_empty());
    let bytes = BatchSpec::plain(0, &[]).encode();
    assert_eq!(bytes.len(), BATCH_HEADER_LEN);
    let batch = all_batches(&bytes)[0].unwrap();
    assert_eq!(batch.records().unwrap().count(), 0);
}

#[test]
fn several_batches_in_one_blob() {
    let recs = sample_records();
    let mut blob = Vec::new();
    let mut ends = Vec::new();
    for i in 0..3 {
        blob.extend(BatchSpec::plain(i * 10, &recs[..(i as usize + 1)]).encode());
        ends.push(blob.len());
    }
    let mut it = Batches::new(&blob);
    for (i, end) in ends.iter().enumerate() {
        let batch = it.next().unwrap().unwrap();
        assert_eq!(batch.header.base_offset, i as i64 * 10);
        assert_eq!(batch.records().unwrap().count(), i + 1);
        assert_eq!(it.consumed(), *end);
    }
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    assert_eq!(it.consumed(), blob.len());
    assert!(it.remaining().is_empty());
}

#[test]
fn trailing_partial_batch_ends_cleanly() {
    let recs = sample_records();
    let first = BatchSpec::plain(0, &recs).encode();
    let second = BatchSpec::plain(4, &recs).encode();
    for cut in 0..second.len() {
        let mut blob = first.clone();
        blob.extend_from_slice(&second[..cut]);
        let mut it = Batches::new(&blob);
        assert_eq!(it.next().unwrap().unwrap().header.base_offset, 0);
        assert!(it.next().is_none(), "cut at {cut}");
        assert_eq!(it.consumed(), first.len());
        assert_eq!(it.remaining(), &second[..cut]);
        // A partial first batch alone: nothing, no error.
        let mut alone = Batches::new(&second[..cut]);
        assert!(alone.next().is_none());
        assert_eq!(alone.consumed(), 0);
    }
}

#[test]
fn bad_crc_is_reported_and_stops() {
    let recs = sample_records();
    let good = BatchSpec::plain(0, &recs).encode();
    let mut bad = BatchSpec::plain(4, &recs).encode();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let mut blob = good.clone();
    blob.extend_from_slice(&bad);
    blob.extend_from_slice(&good);

    let mut it = Batches::new(&blob);
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next().unwrap().unwrap_err(), BatchError::BadCrc);
    assert!(it.next().is_none());
    assert_eq!(it.consumed(), good.len());

    // Unchecked iteration yields it; verify_crc tells.
    let batches: Vec<_> = Batches::new(&blob).with_crc_check(false).collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].unwrap().verify_crc(), Ok(()));
    assert_eq!(batches[1].unwrap().verify_crc(), Err(BatchError::BadCrc));
    assert_eq!(batches[2].unwrap().verify_crc(), Ok(()));

    // A flipped header field (covered by the CRC) is caught too.
    let mut bad_attr = good.clone();
    bad_attr[22] ^= 0x10;
    assert_eq!(all_batches(&bad_attr)[0].unwrap_err(), BatchError::BadCrc);
}

#[test]
fn legacy_magic_is_refused_and_stops() {
    let recs = sample_records();
    let good = BatchSpec::plain(0, &recs).encode();
    for magic in [0u8, 1, 3, 0xff] {
        let mut legacy = good.clone();
        legacy[16] = magic;
        let mut blob = good.clone();
        blob.extend_from_slice(&legacy);
        blob.extend_from_slice(&good);
        let mut it = Batches::new(&blob);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next().unwrap().unwrap_err(),
            BatchError::BadMagic(magic as i8)
        );
        assert!(it.next().is_none());
        assert_eq!(it.consumed(), good.len());
    }
    let mut legacy = good.clone();
    legacy[16] = 1;
    assert_eq!(
        BatchHeader::parse(&legacy).unwrap_err(),
        BatchError::BadMagic(1)
    );
    assert_eq!(
        BatchHeader::parse(&good[..60]).unwrap_err(),
        BatchError::Truncated
    );
}

#[test]
fn absurd_batch_lengths() {
    let good = BatchSpec::plain(0, &sample_records()).encode();
    for len in [i32::MIN, -1, 0, 1, 48] {
        let mut b = good.clone();
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let mut it = Batches::new(&b);
        assert_eq!(
            it.next().unwrap().unwrap_err(),
            BatchError::BadLength,
            "{len}"
        );
        assert!(it.next().is_none());
    }
    // Larger than the input: indistinguishable from a cut batch, so a clean end.
    for len in [i32::MAX, 1 << 30, good.len() as i32 - 11] {
        let mut b = good.clone();
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let mut it = Batches::new(&b);
        assert!(it.next().is_none(), "{len}");
        assert_eq!(it.consumed(), 0);
    }
    // Shorter than the real batch (but valid): the CRC no longer matches.
    let mut b = good.clone();
    b[8..12].copy_from_slice(&49i32.to_be_bytes());
    assert_eq!(all_batches(&b)[0].unwrap_err(), BatchError::BadCrc);
}

#[test]
fn compression_and_flag_bits() {
    let expect = [
        Ok(Compression::None),
        Ok(Compression::Gzip),
        Ok(Compression::Snappy),
        Ok(Compression::Lz4),
        Ok(Compression::Zstd),
        Err(BatchError::BadCompression(5)),
        Err(BatchError::BadCompression(6)),
        Err(BatchError::BadCompression(7)),
    ];
    for (codec, want) in expect.into_iter().enumerate() {
        for flags in [0i16, 0x08, 0x10, 0x20, 0x30, 0x38, -0x80] {
            let mut spec = BatchSpec::plain(0, &[]);
            spec.payload = b"opaque compressed blob".to_vec();
            spec.record_count = 3;
            spec.attributes = codec as i16 | flags;
            let bytes = spec.encode();
            let batch = all_batches(&bytes)[0].unwrap();
            let h = batch.header;
            assert_eq!(h.compression(), want);
            assert_eq!(h.is_log_append_time(), flags & 0x08 != 0);
            assert_eq!(h.is_transactional(), flags & 0x10 != 0);
            assert_eq!(h.is_control(), flags & 0x20 != 0);
            assert_eq!(batch.payload, b"opaque compressed blob");
            // Only an uncompressed batch offers its records directly.
            assert_eq!(batch.records().is_some(), codec == 0);
        }
    }
}

#[test]
fn offsets_saturate() {
    let mut spec = BatchSpec::plain(i64::MAX - 1, &[]);
    spec.last_offset_delta = i32::MAX;
    let bytes = spec.encode();
    let h = all_batches(&bytes)[0].unwrap().header;
    assert_eq!(h.last_offset(), i64::MAX);
    assert_eq!(h.next_offset(), i64::MAX);
    let mut spec = BatchSpec::plain(i64::MIN, &[]);
    spec.last_offset_delta = i32::MIN;
    let bytes = spec.encode();
    let h = all_batches(&bytes)[0].unwrap().header;
    assert_eq!(h.last_offset(), i64::MIN);
}

/// Records over `payload` with `count`, collected; errors kept.
fn walk(payload: &[u8], count: i32) -> Vec<Result<Record<'_>, BatchError>> {
    let v: Vec<_> = Records::new(payload, count).collect();
    // Each walk ends with at most one error, as the last item.
    for (i, item) in v.iter().enumerate() {
        if item.is_err() {
            assert_eq!(i, v.len() - 1);
        }
    }
    v
}

#[test]
fn truncated_record() {
    let recs = sample_records();
    let payload = encode_records(&recs);
    // Every cut inside the records: the complete ones, then one BadRecord.
    let mut boundaries = vec![0];
    for r in &recs {
        let mut one = Vec::new();
        encode_record(r, &mut one);
        boundaries.push(boundaries.last().unwrap() + one.len());
    }
    for cut in 0..payload.len() {
        let got = walk(&payload[..cut], recs.len() as i32);
        let complete = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        assert_eq!(got.len(), complete + 1, "cut {cut}");
        assert_eq!(got.last().unwrap().unwrap_err(), BatchError::BadRecord);
    }
    // The same through a whole batch whose CRC is right.
    let mut spec = BatchSpec::plain(0, &recs);
    spec.payload.truncate(spec.payload.len() - 3);
    let bytes = spec.encode();
    let batch = all_batches(&bytes)[0].unwrap();
    let got: Vec<_> = batch.records().unwrap().collect();
    assert_eq!(got.len(), recs.len());
    assert_eq!(got[recs.len() - 1].unwrap_err(), BatchError::BadRecord);
}

#[test]
fn record_count_mismatch_and_leftovers() {
    let recs = sample_records();
    let payload = encode_records(&recs);
    let n = recs.len() as i32;
    assert!(walk(&payload, n).iter().all(|r| r.is_ok()));
    // Claims more records than present.
    let got = walk(&payload, n + 1);
    assert_eq!(got.len(), recs.len() + 1);
    assert_eq!(got[recs.len()].unwrap_err(), BatchError::BadRecord);
    // Claims fewer: yields that many, then reports the leftover bytes.
    let got = walk(&payload, n - 1);
    assert_eq!(got.len(), recs.len());
    assert_eq!(got[recs.len() - 1].unwrap_err(), BatchError::BadRecord);
    // Negative counts.
    for count in [-1, i32::MIN] {
        assert_eq!(walk(&payload, count)[0].unwrap_err(), BatchError::BadRecord);
        assert_eq!(walk(&[], count)[0].unwrap_err(), BatchError::BadRecord);
    }
    // Zero records over nothing.
    assert!(walk(&[], 0).is_empty());
    // Huge count over few bytes ends quickly.
    assert_eq!(walk(&payload, i32::MAX).len(), recs.len() + 1);
}

/// A record whose body is `fields` (after the length prefix).
fn raw_record(fields: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_i32(fields.len() as i32, &mut out);
    out.extend_from_slice(fields);
    out
}

fn varints(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        write_i64(v, &mut out);
    }
    out
}

#[test]
fn absurd_record_lengths_never_panic() {
    // Record length prefix: negative, huge, larger than the bytes.
    for len in [-1i64, -2, i32::MIN as i64, i32::MAX as i64, 1000] {
        let mut b = varints(&[len]);
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(walk(&b, 1)[0].unwrap_err(), BatchError::BadRecord, "{len}");
    }
    // Record length varint overlong (more than 5 bytes) or out of i32 range.
    assert_eq!(
        walk(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 1)[0].unwrap_err(),
        BatchError::BadRecord
    );
    // attributes, ts delta, offset delta, then key length / value length / header count.
    let prefix = [0u8, 0, 0];
    let bad_fields: Vec<Vec<i64>> = vec![
        vec![-2],                      // key length below -1
        vec![i32::MIN as i64],         // key length very negative
        vec![i32::MAX as i64],         // key longer than the record
        vec![-1, -2],                  // value length below -1
        vec![-1, 1 << 20],             // value longer than the record
        vec![-1, -1, -1],              // negative header count
        vec![-1, -1, i32::MAX as i64], // header count far above the bytes
        vec![-1, -1, 1, -1, -1],       // null header name
        vec![-1, -1, 1, 0, -2],        // header value length below -1
        vec![-1, -1, 1, 1 << 30, 0],   // header name longer than the record
        vec![-1, -1, 1, 0, 1 << 30],   // header value longer than the record
        vec![-1, -1, 0, 0],            // trailing byte inside the record
        vec![i32::MAX as i64 + 1],     // key length out of i32 range
        vec![-1, -1, 2, 0, -1],        // one header short
    ];
    for fields in &bad_fields {
        let mut body = prefix.to_vec();
        body.extend(varints(fields));
        let rec = raw_record(&body);
        assert_eq!(
            walk(&rec, 1)[0].unwrap_err(),
            BatchError::BadRecord,
            "{fields:?}"
        );
    }
    // Empty body, body cut inside a varint, an 11-byte varlong timestamp.
    assert_eq!(
        walk(&raw_record(&[]), 1)[0].unwrap_err(),
        BatchError::BadRecord
    );
    assert_eq!(
        walk(&raw_record(&[0, 0x80]), 1)[0].unwrap_err(),
        BatchError::BadRecord
    );
    let mut long_ts = vec![0u8];
    long_ts.extend_from_slice(&[0xff; 10]);
    long_ts.extend_from_slice(&[0x01, 0, 1, 1, 0]);
    assert_eq!(
        walk(&raw_record(&long_ts), 1)[0].unwrap_err(),
        BatchError::BadRecord
    );
    // And a minimal valid record built by hand, for contrast.
    let mut body = prefix.to_vec();
    body.extend(varints(&[-1, -1, 1, 1, -1]));
    body.insert(body.len() - 1, b'h'); // header name "h" before its null value length
    let rec = raw_record(&body);
    let got = walk(&rec, 1);
    let r = got[0].unwrap();
    assert_eq!((r.key, r.value), (None, None));
    assert_eq!(r.headers.collect::<Vec<_>>(), vec![(&b"h"[..], None)]);
}

/// Deterministic xorshift for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Walks everything reachable from `bytes`, as the fuzz target does.
fn exercise(bytes: &[u8], check_crc: bool) {
    for batch in Batches::new(bytes).with_crc_check(check_crc).flatten() {
        let _ = batch.verify_crc();
        let _ = batch.header.compression();
        let _ = batch.header.next_offset();
        if let Some(records) = batch.records() {
            for record in records.flatten() {
                let _ = record.offset(&batch.header);
                let _ = record.timestamp(&batch.header);
                let _ = control_type(record.key);
                let n = record.headers.len();
                assert_eq!(record.headers.count(), n);
                let _ = record.headers.get(b"etag");
            }
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut blob = BatchSpec::plain(0, &sample_records()).encode();
    let first_len = blob.len();
    blob.extend(BatchSpec::plain(4, &sample_records()[1..]).encode());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut m = blob.clone();
        for _ in 0..(rng.next() % 4 + 1) {
            let at = (rng.next() as usize) % m.len();
            m[at] = rng.next() as u8;
        }
        let cut = (rng.next() as usize) % (m.len() + 1);
        m.truncate(cut);
        exercise(&m, false);
        exercise(&m, true);
        // Again with the CRCs made right, so the checked path walks mutated records too.
        if m.len() > 21 {
            let end = m.len().min(first_len);
            fix_crc(&mut m[..end]);
        }
        if m.len() > first_len + 21 {
            fix_crc(&mut m[first_len..]);
        }
        exercise(&m, true);
    }
}

// ---------------------------------------------------------------------------------------------
// Control records and READ_COMMITTED

const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

fn control_key(version: i16, kind: i16) -> [u8; 4] {
    let v = version.to_be_bytes();
    let k = kind.to_be_bytes();
    [v[0], v[1], k[0], k[1]]
}

#[test]
fn control_keys() {
    assert_eq!(
        control_type(Some(&control_key(0, 0))),
        Some(ControlType::Abort)
    );
    assert_eq!(
        control_type(Some(&control_key(0, 1))),
        Some(ControlType::Commit)
    );
    assert_eq!(
        control_type(Some(&control_key(3, 1))),
        Some(ControlType::Commit)
    );
    assert_eq!(
        control_type(Some(&control_key(0, 5))),
        Some(ControlType::Unknown(5))
    );
    assert_eq!(control_type(Some(&control_key(-1, 0))), None);
    assert_eq!(control_type(Some(&[0, 0, 0])), None);
    assert_eq!(control_type(None), None);
}

fn data_batch(base: i64, producer_id: i64, transactional: bool, n: usize) -> Vec<u8> {
    let recs: Vec<Rec<'_>> = (0..n)
        .map(|i| Rec {
            offset_delta: i as i32,
            key: Some(b"k"),
            value: Some(b"v"),
            ..Rec::default()
        })
        .collect();
    let mut spec = BatchSpec::plain(base, &recs);
    spec.producer_id = producer_id;
    if transactional {
        spec.attributes |= TRANSACTIONAL;
    }
    spec.encode()
}

fn marker_batch(base: i64, producer_id: i64, kind: ControlType) -> Vec<u8> {
    let kind = match kind {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
        ControlType::Unknown(k) => k,
    };
    let key = control_key(0, kind);
    let value = [0u8, 0, 0, 0, 0, 0]; // version i16 + coordinator epoch i32
    let recs = [Rec {
        key: Some(&key),
        value: Some(&value),
        ..Rec::default()
    }];
    let mut spec = BatchSpec::plain(base, &recs);
    spec.producer_id = producer_id;
    spec.attributes |= TRANSACTIONAL | CONTROL;
    spec.encode()
}

/// Runs the documented ReadCommitted sequence over a blob; returns the delivered offsets.
fn delivered(blob: &[u8], rc: &mut ReadCommitted) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in Batches::new(blob) {
        let batch = batch.unwrap();
        let h = batch.header;
        if rc.skip(&h) {
            if h.is_control() {
                let first = batch.records().unwrap().next().unwrap().unwrap();
                if let Some(t) = control_type(first.key) {
                    rc.on_control(h.producer_id, t);
                }
            }
            continue;
        }
        for r in batch.records().unwrap() {
            out.push(r.unwrap().offset(&h));
        }
    }
    out
}

#[test]
fn read_committed_skips_aborted_transaction_and_markers() {
    let mut blob = Vec::new();
    blob.extend(data_batch(8, -1, false, 2)); // 8, 9: plain producer
    blob.extend(data_batch(10, 7, true, 1)); // 10: producer 7, aborted txn
    blob.extend(data_batch(11, 3, false, 1)); // 11: idempotent, non-transactional
    blob.extend(data_batch(12, 7, true, 2)); // 12, 13: producer 7, aborted txn
    blob.extend(marker_batch(14, 7, ControlType::Abort)); // 14: ends producer 7's range
    blob.extend(data_batch(15, 7, true, 1)); // 15: producer 7, new txn: delivered
    blob.extend(data_batch(16, -1, false, 1)); // 16: plain
    blob.extend(data_batch(17, 8, true, 1)); // 17: producer 8, committed txn
    blob.extend(marker_batch(18, 7, ControlType::Commit)); // 18: marker, skipped
    blob.extend(marker_batch(19, 8, ControlType::Commit)); // 19: marker, skipped
    blob.extend(data_batch(20, 9, true, 1)); // 20: producer 9, aborted from 20
    blob.extend(data_batch(21, 5, false, 1)); // 21: plain idempotent
    blob.extend(marker_batch(22, 9, ControlType::Abort)); // 22
    blob.extend(data_batch(23, 9, true, 1)); // 23: producer 9 again, delivered

    // Given out of order, with an entry of producer 9 and one far ahead for producer 7.
    let aborted = [(9, 20), (7, 10), (7, 100)];
    let mut rc = ReadCommitted::with_aborted(aborted);
    assert_eq!(
        delivered(&blob, &mut rc),
        vec![8, 9, 11, 15, 16, 17, 21, 23]
    );

    // Reset reuses the filter; same answer.
    rc.reset(aborted);
    assert_eq!(
        delivered(&blob, &mut rc),
        vec![8, 9, 11, 15, 16, 17, 21, 23]
    );

    // Without aborted transactions only control batches are held back.
    rc.reset([]);
    assert_eq!(
        delivered(&blob, &mut rc),
        vec![8, 9, 10, 11, 12, 13, 15, 16, 17, 20, 21, 23]
    );
}

#[test]
fn read_committed_step_by_step() {
    let header = |bytes: &[u8]| all_batches(bytes)[0].unwrap().header;
    let mut rc = ReadCommitted::new();
    rc.reset([(7, 10)]);
    assert!(!rc.skip(&header(&data_batch(5, 7, true, 1))));
    assert!(!rc.is_aborting(7));
    assert!(rc.skip(&header(&data_batch(10, 7, true, 1))));
    assert!(rc.is_aborting(7));
    assert!(!rc.skip(&header(&data_batch(11, -1, false, 1))));
    assert!(rc.skip(&header(&data_batch(12, 7, true, 1))));
    // A COMMIT or unknown marker does not end an aborted range; ABORT does.
    assert!(rc.skip(&header(&marker_batch(13, 7, ControlType::Commit))));
    rc.on_control(7, ControlType::Commit);
    rc.on_control(7, ControlType::Unknown(9));
    assert!(rc.is_aborting(7));
    assert!(rc.skip(&header(&marker_batch(14, 7, ControlType::Abort))));
    rc.on_control(7, ControlType::Abort);
    assert!(!rc.is_aborting(7));
    assert!(!rc.skip(&header(&data_batch(15, 7, true, 1))));
    // A reset forgets everything.
    rc.reset([(7, 10)]);
    assert!(!rc.is_aborting(7));
}
