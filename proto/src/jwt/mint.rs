//! Building compact tokens, for tests, benchmarks and tools. Verification never uses this.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::Engine;
use ring::hmac;

use super::Alg;

/// `base64url(header).base64url(payload).base64url(sign(signing input))`, where `sign`
/// receives the signing input (`header.payload` as encoded). The JSON texts are taken as
/// given, so tests can mint malformed tokens too.
pub fn encode(
    header_json: &str,
    payload_json: &str,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header_json);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);
    let signature = sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// A token signed with HMAC (`alg` HS256/384/512; `None` for any other `alg`). The header
/// is taken as given: it should name the same `alg`.
pub fn hmac(alg: Alg, secret: &[u8], header_json: &str, payload_json: &str) -> Option<String> {
    let ring_alg = match alg {
        Alg::Hs256 => hmac::HMAC_SHA256,
        Alg::Hs384 => hmac::HMAC_SHA384,
        Alg::Hs512 => hmac::HMAC_SHA512,
        _ => return None,
    };
    let key = hmac::Key::new(ring_alg, secret);
    Some(encode(header_json, payload_json, |input| {
        hmac::sign(&key, input).as_ref().to_vec()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7515_hs256_example() {
        // RFC 7515 appendix A.1: header and payload bytes exactly as in the RFC.
        let header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
        let payload =
            "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
        let k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
        let secret = URL_SAFE_NO_PAD.decode(k).unwrap();
        let token = hmac(Alg::Hs256, &secret, header, payload).unwrap();
        assert_eq!(
            token,
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
             .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
             .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert!(hmac(Alg::Rs256, &secret, header, payload).is_none());
    }
}
