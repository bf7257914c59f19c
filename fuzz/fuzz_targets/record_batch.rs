//! Arbitrary bytes as a Fetch response partition's `records`: batches, then the records and
//! headers of every uncompressed batch, then the READ_COMMITTED filter. Must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::kafka::{control_type, Batches, Compression, ReadCommitted};

fuzz_target!(|data: &[u8]| {
    // The first byte picks whether CRCs are checked (so mutated records are reached too) and a
    // producer id for an aborted transaction.
    let Some((&mode, records)) = data.split_first() else {
        return;
    };
    let mut batches = Batches::new(records).with_crc_check(mode & 1 == 1);
    let mut rc = ReadCommitted::with_aborted([(i64::from(mode >> 1), 0), (-1, i64::MAX)]);
    loop {
        let before = batches.consumed();
        let Some(Ok(batch)) = batches.next() else {
            break;
        };
        // Each complete batch moves forward by at least a header.
        assert!(batches.consumed() >= before + proto::kafka::BATCH_HEADER_LEN);
        let header = batch.header;
        let _ = batch.verify_crc();
        let _ = (header.last_offset(), header.next_offset());
        let skip = rc.skip(&header);
        if header.compression() != Ok(Compression::None) {
            assert!(batch.records().is_none());
            continue;
        }
        let Some(recs) = batch.records() else {
            continue;
        };
        for record in recs {
            let Ok(record) = record else {
                break;
            };
            let _ = (record.offset(&header), record.timestamp(&header));
            if skip && header.is_control() {
                if let Some(t) = control_type(record.key) {
                    rc.on_control(header.producer_id, t);
                }
            }
            let n = record.headers.len();
            let mut seen = 0;
            for (name, value) in record.headers {
                seen += 1;
                let _ = (name.len(), value.map(<[u8]>::len));
            }
            assert_eq!(seen, n);
            let _ = record.headers.get(b"etag");
        }
    }
    assert!(batches.next().is_none());
    assert!(batches.consumed() <= records.len());
    assert_eq!(
        batches.remaining().len(),
        records.len() - batches.consumed()
    );
});
