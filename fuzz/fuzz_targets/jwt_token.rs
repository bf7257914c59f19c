//! Arbitrary bytes as a JWT against a fixed key set (one HS256 key, one ES256 key): never
//! panics. So that the claims scanner is reached too, some inputs are signed with the HS256
//! key first: the first byte picks raw bytes, fuzzed claims under a fixed header, or a fuzzed
//! header and claims (split at the first 0xff byte), and the verified claims are then read
//! through every accessor.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto::jwt::{self, mint, Alg, Claims, Expect, KeySet, MAX_PAYLOAD};

const SECRET: &[u8; 32] = b"fuzzing-secret-fuzzing-secret-32";
const NOW: i64 = 1_700_000_000;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::from_jwk_list(&[
            // base64url of SECRET.
            r#"{"kty":"oct","kid":"h","alg":"HS256","k":"ZnV6emluZy1zZWNyZXQtZnV6emluZy1zZWNyZXQtMzI"}"#,
            r#"{"kty":"EC","kid":"e","crv":"P-256","x":"MLGEPuN9mjiXBYu_PuC7ysuMV811qpyv7ED9R8Od1pM","y":"l9xQah5TqwER7tzXeDr1Sm7yZLJnIOpx0ExH186vrIA"}"#,
        ])
        .expect("fuzz key set")
    })
}

fn read_all(claims: &Claims<'_>) {
    let _ = (claims.exp(), claims.nbf(), claims.iat(), claims.alg());
    let _ = claims.sub().map(|s| s.to_string());
    let _ = claims.iss().map(|s| s.to_cow());
    for path in [
        "scope",
        "roles",
        "realm_access.roles",
        "a.b.c",
        "",
        ".",
        "a..b",
    ] {
        for role in claims.roles(path) {
            let mut buf = [0u8; 16];
            let _ = role.decode_into(&mut buf);
            assert!(role.eq_str(&role.to_cow()));
        }
        let _ = claims.has_roles(path, &["read", "write"]);
        let _ = claims.identity(path).map(|v| v.to_string());
        let _ = claims.attribute(path).map(|v| v.to_string());
        let _ = claims.claim_str(path);
    }
}

fn check(token: &[u8]) {
    let keys = keys();
    let mut scratch = [0u8; MAX_PAYLOAD];
    for expect in [
        Expect::default(),
        Expect {
            issuer: Some("https://issuer.example"),
            audience: Some("sse"),
            leeway_secs: 30,
        },
    ] {
        match jwt::verify(token, keys, NOW, &expect, &mut scratch) {
            Ok(claims) => {
                assert!(token.len() <= jwt::MAX_TOKEN);
                read_all(&claims);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(rest),
        1 => {
            if let Ok(payload) = std::str::from_utf8(rest) {
                let token = mint::hmac(Alg::Hs256, SECRET, r#"{"alg":"HS256","kid":"h"}"#, payload);
                check(token.expect("HS256").as_bytes());
            }
        }
        _ => {
            let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            let header = std::str::from_utf8(&rest[..split]);
            let payload = std::str::from_utf8(rest.get(split + 1..).unwrap_or_default());
            if let (Ok(header), Ok(payload)) = (header, payload) {
                let token = mint::hmac(Alg::Hs256, SECRET, header, payload);
                check(token.expect("HS256").as_bytes());
            }
        }
    }
});
