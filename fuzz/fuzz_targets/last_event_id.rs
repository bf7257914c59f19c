//! Arbitrary bytes as a Last-Event-ID: never panics, and whatever decodes re-encodes to
//! progress that decodes to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::event_id::{decode_last_event_id, encode_progress, MAX_LAST_EVENT_ID};

fuzz_target!(|data: &[u8]| {
    let mut entries = Vec::new();
    if decode_last_event_id(data, &mut entries).is_err() {
        assert!(entries.is_empty());
        return;
    }
    assert!(data.len() <= MAX_LAST_EVENT_ID);
    let mut text = Vec::new();
    encode_progress(&entries, &mut text);
    let mut again = Vec::new();
    decode_last_event_id(&text, &mut again).expect("re-encoded progress decodes");
    assert_eq!(entries, again);
});
