//! Test support: a counting global allocator (per thread, so parallel tests do not disturb each
//! other) and a builder of Kafka v2 record batches for unit tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

/// Allocations (including reallocations) made by this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// A test record: key and value, each maybe null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// An uncompressed v2 record batch with one record per `(key, value)`, offsets from `base`.
pub fn batch(base: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0); // attributes
        proto::varint::write_i64(0, &mut rec); // timestamp delta
        proto::varint::write_i32(i as i32, &mut rec); // offset delta
        for field in [key, value] {
            match field {
                Some(b) => {
                    proto::varint::write_i32(b.len() as i32, &mut rec);
                    rec.extend_from_slice(b);
                }
                None => proto::varint::write_i32(-1, &mut rec),
            }
        }
        proto::varint::write_i32(0, &mut rec); // headers
        proto::varint::write_i32(rec.len() as i32, &mut body);
        body.extend_from_slice(&rec);
    }
    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // attributes
    after_crc.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    after_crc.extend_from_slice(&0i64.to_be_bytes());
    after_crc.extend_from_slice(&0i64.to_be_bytes());
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_crc.extend_from_slice(&(-1i16).to_be_bytes());
    after_crc.extend_from_slice(&(-1i32).to_be_bytes());
    after_crc.extend_from_slice(&(records.len() as i32).to_be_bytes());
    after_crc.extend_from_slice(&body);
    let mut out = Vec::new();
    out.extend_from_slice(&base.to_be_bytes());
    out.extend_from_slice(&((after_crc.len() + 9) as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    out.push(2);
    out.extend_from_slice(&proto::kafka::crc32c(&after_crc).to_be_bytes());
    out.extend_from_slice(&after_crc);
    out
}
