//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! The code is canonical: within each length, codes are consecutive in symbol order, and
//! each length starts where the previous one ended, shifted left. So the code lengths of the
//! appendix determine every code; [`CODES`] is built from [`LENGTHS`] at compile time, and so
//! is the decoder's state machine, which consumes four bits per step.

/// Code length in bits of each symbol (0..=255, then EOS = 256), from RFC 7541 Appendix B.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    // 0-31: control characters.
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    // ' ' ! " # $ % & ' ( ) * + , - . /
     6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6,
    // 0-9 : ; < = > ?
     5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10,
    // @ A-O
    13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
    // P-Z [ \ ] ^ _
     7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6,
    // ` a-o
    15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,
    // p-z { | } ~ DEL
     6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28,
    // 128-255
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    // EOS
    30,
];

const EOS: usize = 256;

/// Canonical codes from [`LENGTHS`], right-aligned.
const CODES: [u32; 257] = {
    let mut codes = [0u32; 257];
    let mut code: u32 = 0;
    let mut len = 1;
    while len <= 30 {
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as u32 == len {
                codes[sym] = code;
                code += 1;
            }
            sym += 1;
        }
        if len < 30 {
            code <<= 1;
        }
        len += 1;
    }
    // A complete prefix code ends on the all-ones 30-bit code: EOS.
    assert!(code == 1 << 30);
    assert!(codes[EOS] == (1 << 30) - 1);
    codes
};

/// A child slot of the code tree: an internal node index, or `LEAF | symbol`.
const LEAF: u16 = 0x8000;

/// The code tree: 256 internal nodes (257 leaves), node 0 the root.
const TREE: [[u16; 2]; 256] = {
    let mut tree = [[0u16; 2]; 256];
    let mut next: u16 = 1;
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as u32;
        let code = CODES[sym];
        let mut node = 0usize;
        let mut i = len;
        while i > 0 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                assert!(tree[node][bit] == 0);
                tree[node][bit] = LEAF | sym as u16;
            } else {
                if tree[node][bit] == 0 {
                    tree[node][bit] = next;
                    next += 1;
                }
                let child = tree[node][bit];
                assert!(child & LEAF == 0);
                node = child as usize;
            }
        }
        sym += 1;
    }
    assert!(next == 256);
    tree
};

/// A symbol ends during this step.
const EMIT: u8 = 1;
/// The input so far holds EOS: invalid.
const FAIL: u8 = 2;
/// Ending the input after this step is valid: the bits since the last symbol are a prefix of
/// EOS (all ones) of at most 7 bits.
const ACCEPT: u8 = 4;

#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// `STEPS[state][nibble]`: states are the internal nodes of [`TREE`]. Codes are at least 5
/// bits long, so one step ends at most one symbol.
const STEPS: [[Step; 16]; 256] = {
    // Nodes reached from the root by at most 7 one-bits.
    let mut accepting = [false; 256];
    accepting[0] = true;
    let mut node = 0usize;
    let mut depth = 0;
    while depth < 7 {
        node = TREE[node][1] as usize;
        accepting[node] = true;
        depth += 1;
    }
    let empty = Step {
        next: 0,
        sym: 0,
        flags: 0,
    };
    let mut steps = [[empty; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = empty;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = TREE[node][(nibble >> bit) & 1];
                if child & LEAF != 0 {
                    let sym = (child & !LEAF) as usize;
                    if sym == EOS {
                        step.flags |= FAIL;
                        break;
                    }
                    step.flags |= EMIT;
                    step.sym = sym as u8;
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            step.next = node as u8;
            if accepting[node] {
                step.flags |= ACCEPT;
            }
            steps[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    steps
};

/// A Huffman string that holds EOS, or ends with padding longer than 7 bits or not all ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HuffmanError;

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    out.reserve(src.len() * 8 / 5);
    let mut state = 0usize;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0xf] {
            let step = STEPS[state][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError);
            }
            if step.flags & EMIT != 0 {
                out.push(step.sym);
            }
            state = usize::from(step.next);
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(HuffmanError)
    }
}

/// Octets [`encode`] writes for `src`.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src`, padded with ones.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(src));
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let len = u32::from(LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(CODES[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn codes_of_the_appendix() {
        // Spot checks against RFC 7541 Appendix B, across every length present.
        for (sym, code, len) in [
            (0usize, 0x1ff8u32, 13u8),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (22, 0x3ffffffe, 30),
            (b' ' as usize, 0x14, 6),
            (b'!' as usize, 0x3f8, 10),
            (b'\'' as usize, 0x7fa, 11),
            (b'#' as usize, 0xffa, 12),
            (b'0' as usize, 0x0, 5),
            (b':' as usize, 0x5c, 7),
            (b'<' as usize, 0x7ffc, 15),
            (b'X' as usize, 0xfc, 8),
            (b'\\' as usize, 0x7fff0, 19),
            (b'^' as usize, 0x3ffc, 14),
            (b't' as usize, 0x9, 5),
            (b'z' as usize, 0x7b, 7),
            (b'~' as usize, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (153, 0x1fffdc, 21),
            (129, 0x3fffd2, 22),
            (199, 0x1ffffec, 25),
            (192, 0x3ffffe0, 26),
            (203, 0x7ffffde, 27),
            (249, 0xffffffe, 28),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ] {
            assert_eq!((CODES[sym], LENGTHS[sym]), (code, len), "symbol {sym}");
        }
    }

    #[test]
    fn rfc_strings() {
        // RFC 7541 C.4 and C.6.
        for (text, hex) in [
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("private", "aec3 771a 4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
            ("gzip", "9bd9 ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        ] {
            let code = unhex(hex);
            let mut out = Vec::new();
            encode(text.as_bytes(), &mut out);
            assert_eq!(out, code, "{text}");
            assert_eq!(encoded_len(text.as_bytes()), code.len());
            let mut decoded = b">".to_vec();
            decode(&code, &mut decoded).unwrap();
            assert_eq!(&decoded[1..], text.as_bytes());
        }
    }

    #[test]
    fn every_symbol_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for chunk in [&all[..], &all[1..], &all[..3], b"", b"a"] {
            let mut code = Vec::new();
            encode(chunk, &mut code);
            let mut back = Vec::new();
            decode(&code, &mut back).unwrap();
            assert_eq!(back, chunk);
        }
        for b in 0..=255u8 {
            let mut code = Vec::new();
            encode(&[b, b, b], &mut code);
            let mut back = Vec::new();
            decode(&code, &mut back).unwrap();
            assert_eq!(back, [b, b, b]);
        }
    }

    #[test]
    fn invalid_padding_and_eos() {
        let mut out = Vec::new();
        // "0" is 00000; padding 111 is fine, 110 is not all ones.
        assert_eq!(decode(&[0b0000_0111], &mut out), Ok(()));
        assert_eq!(out, b"0");
        assert_eq!(decode(&[0b0000_0110], &mut out), Err(HuffmanError));
        // Padding of 8 ones or more.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError));
        assert_eq!(decode(&[0b0000_0111, 0xff], &mut out), Err(HuffmanError));
        // EOS itself (30 ones), padded.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError)
        );
        // A code cut short: 'a' is 00011, "aa" needs 10 bits.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError));
        // Eleven bits of padding are refused; six are fine, and so is the empty string.
        assert_eq!(
            decode(&[0b0000_1111, 0b1111_1111], &mut out),
            Err(HuffmanError)
        );
        out.clear();
        assert_eq!(decode(&[0b0000_0000, 0b0111_1111], &mut out), Ok(()));
        assert_eq!(out, b"01");
        assert_eq!(decode(&[], &mut out), Ok(()));
    }
}
