//! JWT verification micro-benchmark (not a test): verifications per second on one core for
//! HS256, RS256 (2048-bit) and ES256, and heap allocations per verification, counted by a
//! global allocator wrapper.
//!
//! `cargo run --release -p sse-kafka-proto --example jwt_bench`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::Engine;
use proto::jwt::{self, mint, Expect, KeySet, MAX_PAYLOAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: i64 = 1_700_000_000;
const PAYLOAD: &str = r#"{"sub":"alice","iss":"https://issuer.example","aud":"sse","exp":1700003600,"nbf":1699990000,"scope":"read:items write:items","realm_access":{"roles":["reader","writer"]},"email":"alice@example.com"}"#;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Verifies `token` repeatedly for about `duration`, then reports the rate and the heap
/// allocations per verification (including the claim reads a request makes).
fn run(name: &str, token: &str, keys: &KeySet, duration: Duration) {
    let expect = Expect {
        issuer: Some("https://issuer.example"),
        audience: Some("sse"),
        leeway_secs: 0,
    };
    let mut scratch = [0u8; MAX_PAYLOAD];
    let once = |scratch: &mut [u8; MAX_PAYLOAD]| {
        let claims = jwt::verify(black_box(token.as_bytes()), keys, NOW, &expect, scratch)
            .expect("token verifies");
        let ok = claims.has_roles("realm_access.roles", &["reader"])
            && claims.identity("sub").is_some_and(|id| id.eq_str("alice"))
            && claims.exp().is_some();
        black_box(ok)
    };
    // Warm up, then time batches until the duration has passed.
    for _ in 0..100 {
        once(&mut scratch);
    }
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            assert!(once(&mut scratch));
        }
        count += 100;
    }
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    println!(
        "{name:<6} {:>10.0} verifications/s  {:>7.2} µs each  {:>5.2} allocations/verification  ({count} runs, token {} bytes)",
        count as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / count as f64,
        allocations as f64 / count as f64,
        token.len(),
    );
}

fn main() {
    let duration = Duration::from_millis(
        std::env::var("JWT_BENCH_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(2000),
    );
    let rng = SystemRandom::new();

    let secret = [0x5au8; 32];
    let rsa = RsaKeyPair::from_pkcs8(include_bytes!("../src/jwt/testdata/rsa2048.pk8"))
        .expect("test RSA key");
    let rsa_public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("EC key");
    let ec = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_pkcs8.as_ref(),
        &rng,
    )
    .expect("EC key");
    let point = ec.public_key().as_ref();

    let keys = KeySet::from_jwk_list(&[
        format!(r#"{{"kty":"oct","kid":"h","k":"{}"}}"#, b64(&secret)),
        format!(
            r#"{{"kty":"RSA","kid":"r","alg":"RS256","n":"{}","e":"{}"}}"#,
            b64(&rsa_public.n),
            b64(&rsa_public.e)
        ),
        format!(
            r#"{{"kty":"EC","kid":"e","crv":"P-256","x":"{}","y":"{}"}}"#,
            b64(&point[1..33]),
            b64(&point[33..])
        ),
        // A few more keys, so selection by kid scans a realistic set.
        format!(r#"{{"kty":"oct","kid":"h2","k":"{}"}}"#, b64(&[1u8; 32])),
        format!(r#"{{"kty":"oct","kid":"h3","k":"{}"}}"#, b64(&[2u8; 32])),
    ])
    .expect("key set");

    let hs256 = mint::hmac(
        jwt::Alg::Hs256,
        &secret,
        r#"{"alg":"HS256","typ":"JWT","kid":"h"}"#,
        PAYLOAD,
    )
    .expect("HS256 token");
    let rs256 = mint::encode(
        r#"{"alg":"RS256","typ":"JWT","kid":"r"}"#,
        PAYLOAD,
        |input| {
            let mut sig = vec![0u8; rsa.public().modulus_len()];
            rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut sig)
                .expect("RSA signature");
            sig
        },
    );
    let es256 = mint::encode(
        r#"{"alg":"ES256","typ":"JWT","kid":"e"}"#,
        PAYLOAD,
        |input| {
            ec.sign(&rng, input)
                .expect("EC signature")
                .as_ref()
                .to_vec()
        },
    );

    println!(
        "jwt_bench: one thread, {} ms per algorithm",
        duration.as_millis()
    );
    // Baseline: ring's HMAC check alone over the same signing input.
    let (input, sig) = hs256.rsplit_once('.').expect("token");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration / 4 {
        for _ in 0..100 {
            assert!(ring::hmac::verify(&key, black_box(input.as_bytes()), &sig).is_ok());
        }
        count += 100;
    }
    println!(
        "(baseline: ring hmac::verify alone {:.2} µs)",
        start.elapsed().as_secs_f64() * 1e6 / count as f64
    );
    run("HS256", &hs256, &keys, duration);
    run("RS256", &rs256, &keys, duration);
    run("ES256", &es256, &keys, duration);
}
