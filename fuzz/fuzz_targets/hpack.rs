//! Arbitrary bytes as HPACK header blocks and Huffman strings: decoding never panics, the
//! dynamic table stays within its size, and what the encoder writes decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::h2::hpack::{huffman, Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    // The input as one block, then as two blocks sharing one dynamic table.
    let mut fields = Vec::new();
    let mut size = 0usize;
    let mut one = Decoder::new(4096);
    let whole = one.decode(data, |n, v| {
        size += n.len() + v.len();
        if size <= 1 << 16 {
            fields.push((n.to_ascii_lowercase(), v.to_vec()));
        }
    });
    assert!(one.table_size() <= 4096);
    let mut two = Decoder::new(256);
    let (a, b) = data.split_at(data.len() / 2);
    if two.decode(a, |_, _| {}).is_ok() {
        let _ = two.decode(b, |_, _| {});
    }
    assert!(two.table_size() <= 256);

    // Round trip through the encoder.
    if whole.is_ok() && size <= 1 << 16 {
        let mut enc = Encoder::new();
        let mut block = Vec::new();
        enc.begin_block(&mut block);
        for (n, v) in &fields {
            enc.encode_field(n, v, &mut block);
        }
        let mut back = Vec::new();
        Decoder::new(4096)
            .decode(&block, |n, v| back.push((n.to_vec(), v.to_vec())))
            .expect("encoder output decodes");
        assert_eq!(back, fields);
    }

    // Huffman: a valid string re-encodes to itself; any bytes encode and decode back.
    let mut text = Vec::new();
    if huffman::decode(data, &mut text).is_ok() {
        let mut code = Vec::new();
        huffman::encode(&text, &mut code);
        assert_eq!(code, data);
    }
    let mut code = Vec::new();
    huffman::encode(data, &mut code);
    assert_eq!(code.len(), huffman::encoded_len(data));
    let mut back = Vec::new();
    huffman::decode(&code, &mut back).expect("encoder output decodes");
    assert_eq!(back, data);
});
