//! Decompression of record batches, bounded: a batch may not inflate beyond `MAX_BATCH_BYTES`
//! (a broken or hostile broker cannot make a worker allocate without limit). gzip, snappy (raw
//! and the xerial framing Java clients write), lz4 (frame format) and zstd.

use std::io::Read;

use proto::kafka::Compression;

/// Largest decompressed batch accepted: far above Kafka's default `max.message.bytes` (1 MiB)
/// and the fetch's per-partition size, so only a broken or hostile batch reaches it.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Decompresses `src` (not `Compression::None`) into a new buffer of at most `limit` bytes.
pub fn decompress(codec: Compression, src: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    match codec {
        Compression::None => Ok(src.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(src), limit),
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(src).map_err(|e| format!("lz4: {e}"))?;
            read_bounded(decoder, limit)
        }
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(src).map_err(|e| format!("zstd: {e}"))?;
            read_bounded(decoder, limit)
        }
        Compression::Snappy => snappy(src, limit),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("decompression failed: {e}"))?;
    if out.len() > limit {
        return Err(format!("batch inflates beyond {limit} bytes"));
    }
    Ok(out)
}

fn snappy(src: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    if !src.starts_with(XERIAL_MAGIC) {
        return snappy_block(src, limit, Vec::new());
    }
    // xerial: a 16-byte header, then blocks of [u32 big-endian length][raw snappy block].
    let mut rest = src
        .get(XERIAL_HEADER_LEN..)
        .ok_or("snappy: truncated header")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or("snappy: truncated block length")?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = rest.get(4..4 + len).ok_or("snappy: truncated block")?;
        out = snappy_block(block, limit, out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, keeping the total within `limit`.
fn snappy_block(block: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(block).map_err(|e| format!("snappy: {e}"))?;
    let start = out.len();
    if start + len > limit {
        return Err(format!("batch inflates beyond {limit} bytes"));
    }
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| format!("snappy: {e}"))?;
    out.truncate(start + n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn round_trips_every_codec_and_refuses_bombs() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&data[..], 1).unwrap();
        let mut lz = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        lz.write_all(&data).unwrap();
        let (lz, _) = lz.finish();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for part in data.chunks(32 * 1024) {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        for (codec, bytes) in [
            (Compression::Gzip, &gz),
            (Compression::Zstd, &zs),
            (Compression::Lz4, &lz),
            (Compression::Snappy, &raw),
            (Compression::Snappy, &xerial),
        ] {
            assert_eq!(
                decompress(codec, bytes, data.len()).unwrap(),
                data,
                "{codec:?}"
            );
            assert!(
                decompress(codec, bytes, data.len() - 1).is_err(),
                "{codec:?} bound"
            );
        }
        assert!(decompress(Compression::Gzip, b"not gzip", 1 << 20).is_err());
        assert!(decompress(
            Compression::Snappy,
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff",
            1 << 20
        )
        .is_err());
    }
}
