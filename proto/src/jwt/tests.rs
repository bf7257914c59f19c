//! End-to-end verification tests with keys made here: EC and HMAC keys generated per run,
//! and a fixed RSA-2048 test key (`testdata/rsa2048.pk8`, PKCS#8 DER, made with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER`; ring cannot
//! generate RSA keys).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};

use super::*;

const NOW: i64 = 1_700_000_000;
const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Fixture {
    rng: SystemRandom,
    rsa: RsaKeyPair,
    ec256: EcdsaKeyPair,
    ec384: EcdsaKeyPair,
    secret: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let rng = SystemRandom::new();
        let ec = |alg| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
        };
        let ec256 = ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING);
        let ec384 = ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING);
        let mut secret = vec![0u8; 64];
        ring::rand::SecureRandom::fill(&rng, &mut secret).unwrap();
        Fixture {
            rsa: RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap(),
            rng,
            ec256,
            ec384,
            secret,
        }
    }

    fn rsa_jwk(&self, extra: &str) -> String {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        format!(
            r#"{{"kty":"RSA","n":"{}","e":"{}"{extra}}}"#,
            b64(&public.n),
            b64(&public.e)
        )
    }

    fn ec_jwk(&self, p384: bool, extra: &str) -> String {
        let (kp, crv, size) = if p384 {
            (&self.ec384, "P-384", 48)
        } else {
            (&self.ec256, "P-256", 32)
        };
        let point = kp.public_key().as_ref();
        assert_eq!(point[0], 4);
        format!(
            r#"{{"kty":"EC","crv":"{crv}","x":"{}","y":"{}"{extra}}}"#,
            b64(&point[1..1 + size]),
            b64(&point[1 + size..])
        )
    }

    fn oct_jwk(&self, extra: &str) -> String {
        format!(r#"{{"kty":"oct","k":"{}"{extra}}}"#, b64(&self.secret))
    }

    /// One key of each kind, with kids `rsa`, `ec256`, `ec384`, `hmac`.
    fn keys(&self) -> KeySet {
        KeySet::from_jwk_list(&[
            self.rsa_jwk(r#","kid":"rsa""#),
            self.ec_jwk(false, r#","kid":"ec256""#),
            self.ec_jwk(true, r#","kid":"ec384""#),
            self.oct_jwk(r#","kid":"hmac""#),
        ])
        .unwrap()
    }

    /// Signs `header.payload` with the key that belongs to `alg`.
    fn sign(&self, alg: Alg, header: &str, payload: &str) -> String {
        mint::encode(header, payload, |input| self.signature(alg, input))
    }

    fn signature(&self, alg: Alg, input: &[u8]) -> Vec<u8> {
        let rsa_alg: &dyn signature::RsaEncoding = match alg {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => {
                let ring_alg = match alg {
                    Alg::Hs256 => ring::hmac::HMAC_SHA256,
                    Alg::Hs384 => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                let key = ring::hmac::Key::new(ring_alg, &self.secret);
                return ring::hmac::sign(&key, input).as_ref().to_vec();
            }
            Alg::Es256 => return self.ec256.sign(&self.rng, input).unwrap().as_ref().to_vec(),
            Alg::Es384 => return self.ec384.sign(&self.rng, input).unwrap().as_ref().to_vec(),
            Alg::Rs256 => &signature::RSA_PKCS1_SHA256,
            Alg::Rs384 => &signature::RSA_PKCS1_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_SHA512,
        };
        let mut sig = vec![0u8; self.rsa.public().modulus_len()];
        self.rsa.sign(rsa_alg, &self.rng, input, &mut sig).unwrap();
        sig
    }
}

fn kid_for(alg: Alg) -> &'static str {
    match alg {
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => "hmac",
        Alg::Es256 => "ec256",
        Alg::Es384 => "ec384",
        _ => "rsa",
    }
}

fn header(alg: Alg) -> String {
    format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        alg.name(),
        kid_for(alg)
    )
}

const PAYLOAD: &str =
    r#"{"sub":"alice","exp":1700000600,"iss":"https://issuer.example","aud":"sse"}"#;

/// Verifies with default expectations at [`NOW`]; the claims are turned into their JSON.
fn check(token: &str, keys: &KeySet) -> Result<String, JwtError> {
    check_with(token, keys, NOW, &Expect::default())
}

fn check_with(
    token: &str,
    keys: &KeySet,
    now: i64,
    expect: &Expect<'_>,
) -> Result<String, JwtError> {
    let mut scratch = [0u8; MAX_PAYLOAD];
    verify(token.as_bytes(), keys, now, expect, &mut scratch).map(|c| c.json().to_owned())
}

#[test]
fn every_algorithm_verifies() {
    let f = Fixture::new();
    let keys = f.keys();
    for alg in Alg::ALL {
        let token = f.sign(alg, &header(alg), PAYLOAD);
        let mut scratch = [0u8; MAX_PAYLOAD];
        let claims = verify(
            token.as_bytes(),
            &keys,
            NOW,
            &Expect::default(),
            &mut scratch,
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.alg(), alg);
        assert_eq!(claims.json(), PAYLOAD);
        assert_eq!(claims.sub().unwrap().as_str(), Some("alice"));
        assert_eq!(claims.exp(), Some(1_700_000_600));
    }
}

#[test]
fn every_algorithm_refuses_a_changed_token() {
    let f = Fixture::new();
    let keys = f.keys();
    let other = PAYLOAD.replace("alice", "mallory");
    for alg in Alg::ALL {
        let token = f.sign(alg, &header(alg), PAYLOAD);
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        // The payload replaced under the same signature.
        let forged = format!(
            "{}.{}.{signature}",
            b64(header(alg).as_bytes()),
            b64(other.as_bytes())
        );
        assert_eq!(check(&forged, &keys), Err(JwtError::BadSignature), "{alg}");
        // One signature bit flipped.
        let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let middle = sig.len() / 2;
        sig[middle] ^= 1;
        let flipped = format!("{signing_input}.{}", b64(&sig));
        assert_eq!(check(&flipped, &keys), Err(JwtError::BadSignature), "{alg}");
        // Truncated and empty signatures.
        let short = format!("{signing_input}.{}", b64(&sig[..sig.len() - 1]));
        assert_eq!(check(&short, &keys), Err(JwtError::BadSignature), "{alg}");
        assert_eq!(
            check(&format!("{signing_input}."), &keys),
            Err(JwtError::BadSignature)
        );
    }
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let f = Fixture::new();
    let g = Fixture::new();
    let keys = f.keys();
    for alg in [Alg::Hs256, Alg::Es256, Alg::Es384] {
        let token = g.sign(alg, &header(alg), PAYLOAD);
        assert_eq!(check(&token, &keys), Err(JwtError::BadSignature), "{alg}");
    }
}

#[test]
fn alg_none_is_refused() {
    let f = Fixture::new();
    let keys = f.keys();
    for h in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"none","kid":"hmac"}"#,
        r#"{"alg":"None","typ":"JWT"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let token = mint::encode(h, PAYLOAD, |_| Vec::new());
        assert_eq!(check(&token, &keys), Err(JwtError::AlgNone), "{h}");
        // Also with a signature made by a real key.
        let token = f.sign(Alg::Hs256, h, PAYLOAD);
        assert_eq!(check(&token, &keys), Err(JwtError::AlgNone), "{h}");
    }
}

#[test]
fn unsupported_algs_are_refused() {
    let f = Fixture::new();
    let keys = f.keys();
    for alg in ["ES512", "EdDSA", "HS1", "RS1", "hs256", "RSA-OAEP", ""] {
        let h = format!(r#"{{"alg":"{alg}","kid":"hmac"}}"#);
        let token = f.sign(Alg::Hs256, &h, PAYLOAD);
        assert_eq!(check(&token, &keys), Err(JwtError::UnsupportedAlg), "{alg}");
    }
}

#[test]
fn hmac_with_rsa_public_key_bytes_is_refused() {
    // The classic confusion attack: an HS256 token whose HMAC secret is the RSA public key
    // as the verifier knows it (DER, or the raw modulus), naming the RSA key.
    let f = Fixture::new();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(f.rsa.public());
    let der = f.rsa.public().as_ref().to_vec();
    let jwk_text = f.rsa_jwk("");
    let only_rsa = KeySet::from_jwk_list(&[f.rsa_jwk(r#","kid":"rsa""#)]).unwrap();
    let all = f.keys();
    for secret in [&der, &public.n, &jwk_text.as_bytes().to_vec()] {
        for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512] {
            for h in [
                format!(r#"{{"alg":"{alg}","kid":"rsa"}}"#),
                format!(r#"{{"alg":"{alg}"}}"#),
            ] {
                let token = mint::hmac(alg, secret, &h, PAYLOAD).unwrap();
                assert_eq!(check(&token, &only_rsa), Err(JwtError::KeyMismatch), "{h}");
                if h.contains("kid") {
                    assert_eq!(check(&token, &all), Err(JwtError::KeyMismatch), "{h}");
                } else {
                    // Without kid the only key fitting HS* is the real HMAC key.
                    assert_eq!(check(&token, &all), Err(JwtError::BadSignature), "{h}");
                }
            }
        }
    }
    // The same with EC key material, and RSA/EC tokens naming the wrong key type.
    let ec_point = f.ec256.public_key().as_ref().to_vec();
    let token = mint::hmac(
        Alg::Hs256,
        &ec_point,
        r#"{"alg":"HS256","kid":"ec256"}"#,
        PAYLOAD,
    )
    .unwrap();
    assert_eq!(check(&token, &all), Err(JwtError::KeyMismatch));
    let token = f.sign(Alg::Es256, r#"{"alg":"ES256","kid":"rsa"}"#, PAYLOAD);
    assert_eq!(check(&token, &all), Err(JwtError::KeyMismatch));
    let token = f.sign(Alg::Es256, r#"{"alg":"ES384","kid":"ec256"}"#, PAYLOAD);
    assert_eq!(check(&token, &all), Err(JwtError::KeyMismatch));
    let token = f.sign(Alg::Rs256, r#"{"alg":"RS256","kid":"hmac"}"#, PAYLOAD);
    assert_eq!(check(&token, &all), Err(JwtError::KeyMismatch));
}

#[test]
fn a_key_restricted_by_alg_fits_only_that_alg() {
    let f = Fixture::new();
    let keys = KeySet::from_jwk_list(&[f.rsa_jwk(r#","kid":"rsa","alg":"RS256""#)]).unwrap();
    assert!(check(&f.sign(Alg::Rs256, &header(Alg::Rs256), PAYLOAD), &keys).is_ok());
    for alg in [Alg::Rs384, Alg::Ps256] {
        let token = f.sign(alg, &header(alg), PAYLOAD);
        assert_eq!(check(&token, &keys), Err(JwtError::KeyMismatch), "{alg}");
    }
}

#[test]
fn unknown_kid_is_refused() {
    let f = Fixture::new();
    let keys = f.keys();
    let token = f.sign(Alg::Hs256, r#"{"alg":"HS256","kid":"other"}"#, PAYLOAD);
    assert_eq!(check(&token, &keys), Err(JwtError::UnknownKey));
    let token = f.sign(Alg::Hs256, r#"{"alg":"HS256","kid":""}"#, PAYLOAD);
    assert_eq!(check(&token, &keys), Err(JwtError::UnknownKey));
    let token = f.sign(Alg::Hs256, &header(Alg::Hs256), PAYLOAD);
    assert_eq!(check(&token, &KeySet::default()), Err(JwtError::UnknownKey));
}

#[test]
fn kid_may_be_omitted_when_one_key_fits() {
    let f = Fixture::new();
    let one_each = f.keys();
    for alg in Alg::ALL {
        let token = f.sign(alg, &format!(r#"{{"alg":"{alg}"}}"#), PAYLOAD);
        assert!(check(&token, &one_each).is_ok(), "{alg}");
    }
    // A second HMAC key (another kid) makes HS256 without kid ambiguous, not the others.
    let two_hmac = KeySet::from_jwk_list(&[
        f.oct_jwk(r#","kid":"hmac""#),
        f.oct_jwk(r#","kid":"hmac2""#),
        f.rsa_jwk(""),
    ])
    .unwrap();
    let token = f.sign(Alg::Hs256, r#"{"alg":"HS256"}"#, PAYLOAD);
    assert_eq!(check(&token, &two_hmac), Err(JwtError::AmbiguousKey));
    let token = f.sign(Alg::Hs256, r#"{"alg":"HS256","kid":"hmac2"}"#, PAYLOAD);
    assert!(check(&token, &two_hmac).is_ok());
    let token = f.sign(Alg::Rs256, r#"{"alg":"RS256"}"#, PAYLOAD);
    assert!(check(&token, &two_hmac).is_ok());
    // Two EC keys on different curves: each fits one alg, so no ambiguity.
    let token = f.sign(Alg::Es384, r#"{"alg":"ES384"}"#, PAYLOAD);
    assert!(check(&token, &one_each).is_ok());
    // No key fits the alg at all.
    let token = f.sign(Alg::Es256, r#"{"alg":"ES256"}"#, PAYLOAD);
    assert_eq!(check(&token, &two_hmac), Err(JwtError::KeyMismatch));
}

fn hs(f: &Fixture, payload: &str) -> String {
    f.sign(Alg::Hs256, &header(Alg::Hs256), payload)
}

#[test]
fn expiry_and_not_before() {
    let f = Fixture::new();
    let keys = f.keys();
    let at = |payload: &str, now: i64, leeway: i64| {
        let expect = Expect {
            leeway_secs: leeway,
            ..Expect::default()
        };
        check_with(&hs(&f, payload), &keys, now, &expect).map(|_| ())
    };
    let exp = r#"{"exp":1700000000}"#;
    assert_eq!(at(exp, NOW - 1, 0), Ok(()));
    assert_eq!(at(exp, NOW, 0), Err(JwtError::Expired));
    assert_eq!(at(exp, NOW + 1, 0), Err(JwtError::Expired));
    assert_eq!(at(exp, NOW + 9, 10), Ok(()));
    assert_eq!(at(exp, NOW + 10, 10), Err(JwtError::Expired));
    assert_eq!(
        at(r#"{"exp":1699999999.9}"#, NOW - 1, 0),
        Err(JwtError::Expired)
    );
    assert_eq!(at(r#"{"exp":1.7000000001e9}"#, NOW - 1, 0), Ok(()));
    assert_eq!(
        at(r#"{"exp":1.7000000001e9}"#, NOW, 0),
        Err(JwtError::Expired)
    );

    let nbf = r#"{"nbf":1700000000}"#;
    assert_eq!(at(nbf, NOW, 0), Ok(()));
    assert_eq!(at(nbf, NOW - 1, 0), Err(JwtError::NotYetValid));
    assert_eq!(at(nbf, NOW - 10, 10), Ok(()));
    assert_eq!(at(nbf, NOW - 11, 10), Err(JwtError::NotYetValid));
    assert_eq!(
        at(r#"{"nbf":1700000000.1}"#, NOW, 0),
        Err(JwtError::NotYetValid)
    );

    // No exp: never expires. Extreme values saturate instead of overflowing.
    assert_eq!(at(r#"{"sub":"a"}"#, i64::MAX, 0), Ok(()));
    assert_eq!(at(r#"{"exp":9223372036854775807}"#, NOW, i64::MAX), Ok(()));
    assert_eq!(
        at(r#"{"exp":-9223372036854775808}"#, NOW, i64::MIN),
        Err(JwtError::Expired)
    );
    assert_eq!(at(r#"{"nbf":-9223372036854775808}"#, NOW, i64::MAX), Ok(()));
    assert_eq!(at(r#"{"exp":1e999}"#, NOW, 0), Ok(()));

    // Registered dates of the wrong type or present twice.
    for bad in [
        r#"{"exp":"1700000600"}"#,
        r#"{"exp":null}"#,
        r#"{"nbf":[1]}"#,
        r#"{"exp":1700000600,"exp":1}"#,
        r#"{"exp":1,"\u0065xp":1700000600}"#,
    ] {
        assert_eq!(at(bad, NOW, 0), Err(JwtError::Malformed), "{bad}");
    }
    // iat is informational only.
    assert_eq!(at(r#"{"iat":"x"}"#, NOW, 0), Ok(()));
}

#[test]
fn issuer_and_audience() {
    let f = Fixture::new();
    let keys = f.keys();
    let expect = Expect {
        issuer: Some("https://issuer.example"),
        audience: Some("sse"),
        leeway_secs: 0,
    };
    let run = |payload: &str| check_with(&hs(&f, payload), &keys, NOW, &expect).map(|_| ());
    assert_eq!(
        run(r#"{"iss":"https://issuer.example","aud":"sse"}"#),
        Ok(())
    );
    // Escaped slashes, as some JSON writers produce.
    assert_eq!(
        run(r#"{"iss":"https:\/\/issuer.example","aud":"\u0073se"}"#),
        Ok(())
    );
    assert_eq!(
        run(r#"{"iss":"https://issuer.example","aud":["x","sse"]}"#),
        Ok(())
    );
    assert_eq!(
        run(r#"{"iss":"https://issuer.example","aud":[1,"sse"]}"#),
        Ok(())
    );
    for bad_iss in [
        r#"{"aud":"sse"}"#,
        r#"{"iss":"https://other.example","aud":"sse"}"#,
        r#"{"iss":"https://issuer.example/","aud":"sse"}"#,
        r#"{"iss":["https://issuer.example"],"aud":"sse"}"#,
        r#"{"iss":"https://issuer.example","iss":"https://issuer.example","aud":"sse"}"#,
    ] {
        assert_eq!(run(bad_iss), Err(JwtError::WrongIssuer), "{bad_iss}");
    }
    for bad_aud in [
        r#"{"iss":"https://issuer.example"}"#,
        r#"{"iss":"https://issuer.example","aud":"other"}"#,
        r#"{"iss":"https://issuer.example","aud":["x","y"]}"#,
        r#"{"iss":"https://issuer.example","aud":[]}"#,
        r#"{"iss":"https://issuer.example","aud":"sse other"}"#,
        r#"{"iss":"https://issuer.example","aud":{"sse":1}}"#,
    ] {
        assert_eq!(run(bad_aud), Err(JwtError::WrongAudience), "{bad_aud}");
    }
    // Unconfigured: not checked.
    assert!(check(&hs(&f, r#"{"iss":"x","aud":5}"#), &keys).is_ok());
}

#[test]
fn malformed_tokens() {
    let f = Fixture::new();
    let keys = f.keys();
    let good = hs(&f, PAYLOAD);
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let shapes = [
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
        String::new(),
        h.to_string(),
        // Padding, standard-alphabet symbols, whitespace.
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}="),
        format!(
            "{h}.{}.{s}",
            p.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1)
        ),
        format!(
            "{h}.{p}.{}",
            s.replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1)
        ),
        format!("{h} .{p}.{s}"),
        format!("Bearer {h}.{p}.{s}"),
        format!("{}.{p}.{s}", &h[..h.len() - 1]),
    ];
    for token in &shapes {
        assert_eq!(check(token, &keys), Err(JwtError::Malformed), "{token}");
    }

    let hmac_header = header(Alg::Hs256);
    let malformed_headers = [
        "not json",
        "[]",
        r#""HS256""#,
        r#"{"kid":"hmac"}"#,
        r#"{"alg":256,"kid":"hmac"}"#,
        r#"{"alg":null}"#,
        r#"{"alg":"HS256","alg":"HS256","kid":"hmac"}"#,
        r#"{"alg":"HS256","kid":7}"#,
        r#"{"alg":"HS256","kid":"hmac","typ":1}"#,
        r#"{"alg":"HS256","kid":"hmac","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","kid":"hmac","b64":false,"crit":["b64"]}"#,
        r#"{"alg":"HS256","kid":"hmac"} x"#,
        r#"{"alg":"HS256","kid":"hmac",}"#,
    ];
    for h in malformed_headers {
        assert_eq!(
            check(&f.sign(Alg::Hs256, h, PAYLOAD), &keys),
            Err(JwtError::Malformed),
            "{h}"
        );
    }
    // Validly signed payloads that are not a JSON object.
    for p in [
        "not json",
        "[]",
        "1",
        r#"{"sub":"a""#,
        r#"{"sub":"a"}}"#,
        "",
        "\u{feff}{}",
    ] {
        assert_eq!(check(&hs(&f, p), &keys), Err(JwtError::Malformed), "{p:?}");
    }
    // Bytes that are not UTF-8 in header or payload.
    let input = format!(
        "{}.{}",
        b64(hmac_header.as_bytes()),
        b64(b"{\"sub\":\"\xe9\"}")
    );
    let latin1 = format!(
        "{input}.{}",
        b64(&f.signature(Alg::Hs256, input.as_bytes()))
    );
    assert_eq!(check(&latin1, &keys), Err(JwtError::Malformed));
    let bad_header = format!("{}.{}.AAAA", b64(b"{\"alg\":\"\xff\"}"), b64(b"{}"));
    assert_eq!(check(&bad_header, &keys), Err(JwtError::Malformed));
    // Arbitrary bytes.
    for junk in [&b"\0\0\0"[..], b"\xff.\xff.\xff", b"a.b.c", b"e30.e30.e30"] {
        let mut scratch = [0u8; MAX_PAYLOAD];
        assert!(verify(junk, &keys, NOW, &Expect::default(), &mut scratch).is_err());
    }
}

#[test]
fn size_bounds() {
    let f = Fixture::new();
    let keys = f.keys();
    let hmac_header = header(Alg::Hs256);
    // Fill the payload so the whole token is exactly MAX_TOKEN bytes, then one more.
    let probe = hs(&f, r#"{"pad":""}"#);
    let room = (MAX_TOKEN - probe.len()) / 4 * 3;
    let mut pad = "x".repeat(room);
    let mut token = hs(&f, &format!(r#"{{"pad":"{pad}"}}"#));
    while token.len() < MAX_TOKEN {
        pad.push('x');
        token = hs(&f, &format!(r#"{{"pad":"{pad}"}}"#));
    }
    if token.len() > MAX_TOKEN {
        pad.pop();
        token = hs(&f, &format!(r#"{{"pad":"{pad}"}}"#));
    }
    assert!(token.len() <= MAX_TOKEN && token.len() > MAX_TOKEN - 4);
    assert!(check(&token, &keys).is_ok());
    pad.push_str("xxxx");
    let over = hs(&f, &format!(r#"{{"pad":"{pad}"}}"#));
    assert!(over.len() > MAX_TOKEN);
    assert_eq!(check(&over, &keys), Err(JwtError::TooLarge));
    // A header over MAX_HEADER decoded bytes, inside the token bound.
    let big_header = format!(
        r#"{{"alg":"HS256","kid":"hmac","x":"{}"}}"#,
        "y".repeat(MAX_HEADER)
    );
    assert_eq!(
        check(&f.sign(Alg::Hs256, &big_header, "{}"), &keys),
        Err(JwtError::TooLarge)
    );
    let fits = format!(
        r#"{{"alg":"HS256","kid":"hmac","x":"{}"}}"#,
        "y".repeat(MAX_HEADER - 40)
    );
    assert!(check(&f.sign(Alg::Hs256, &fits, "{}"), &keys).is_ok());
    // A signature over MAX_SIGNATURE bytes is malformed.
    let long_sig = mint::encode(&hmac_header, "{}", |_| vec![0u8; MAX_SIGNATURE + 1]);
    assert_eq!(check(&long_sig, &keys), Err(JwtError::Malformed));
    // Deep nesting in a validly signed payload.
    let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    assert_eq!(check(&hs(&f, &deep), &keys), Err(JwtError::Malformed));
}

#[test]
fn verified_claims_give_roles_identity_and_attributes() {
    let f = Fixture::new();
    let keys = f.keys();
    let payload = r#"{"sub":"alice","exp":1700000600,"scope":"read:items write:items",
        "realm_access":{"roles":["reader","writer"]},"email":"alice@example.com",
        "org":{"id":7},"aud":["a","b"]}"#;
    let token = f.sign(Alg::Rs256, &header(Alg::Rs256), payload);
    let mut scratch = [0u8; MAX_PAYLOAD];
    let expect = Expect {
        audience: Some("b"),
        ..Expect::default()
    };
    let claims = verify(token.as_bytes(), &keys, NOW, &expect, &mut scratch).unwrap();
    let roles: Vec<String> = claims
        .roles("realm_access.roles")
        .map(|r| r.to_string())
        .collect();
    assert_eq!(roles, ["reader", "writer"]);
    let scope: Vec<&str> = claims.roles("scope").filter_map(|r| r.as_str()).collect();
    assert_eq!(scope, ["read:items", "write:items"]);
    assert!(claims.has_roles("realm_access.roles", &["writer"]));
    assert!(claims.has_roles("scope", &["write:items", "read:items"]));
    assert!(!claims.has_roles("scope", &["admin"]));
    assert!(claims.identity("sub").unwrap().eq_str("alice"));
    assert_eq!(claims.identity("org.id").unwrap().to_string(), "7");
    assert_eq!(
        claims.attribute("email").unwrap().to_string(),
        "alice@example.com"
    );
    assert!(claims.attribute("phone").is_none());
    assert_eq!(claims.exp(), Some(1_700_000_600));
    assert_eq!(claims.nbf(), None);
}
