//! JWT fixtures: keys generated per test (RSA and EC with the `openssl` CLI, HMAC secrets),
//! tokens signed with them, and a zilla.yaml with a `jwt` guard.
use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::*;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Seconds since the epoch (the server's clock for `exp` / `nbf`: the same machine).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs `openssl ARGS` (stdin from `input`), panicking on failure; returns stdout.
pub fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = command("openssl")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl (is the openssl CLI installed?)");
    if let Some(bytes) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bytes)
            .expect("write to openssl");
    }
    let out = child.wait_with_output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// `header.payload.signature` with the signature computed by `sign` over `header.payload`.
pub fn compact(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    proto::jwt::mint::encode(header, payload, sign)
}

/// The claims of a token: `sub` (omitted when None), `exp`, `scope`, `iss`, `aud`, and
/// `extra` JSON members (`"nbf":123` ...) appended as given.
pub fn claims(sub: Option<&str>, exp: i64, scope: &str, extra: &str) -> String {
    let mut c = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"iat":{},"scope":"{scope}""#,
        now()
    );
    if let Some(sub) = sub {
        c += &format!(r#","sub":"{sub}""#);
    }
    if !extra.is_empty() {
        c.push(',');
        c += extra;
    }
    c.push('}');
    c
}

/// The issuer and audience every test guard expects.
pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "https://api.example.com";

/// A signing key and its public JWK.
pub trait Key {
    fn kid(&self) -> &str;
    fn alg(&self) -> &'static str;
    /// The public JWK as a YAML flow mapping.
    fn jwk_yaml(&self) -> String;
    fn sign(&self, input: &[u8]) -> Vec<u8>;

    /// A token with header `{"alg":ALG,"typ":"JWT","kid":KID}` and `payload`.
    fn token(&self, payload: &str) -> String {
        let header = format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
            self.alg(),
            self.kid()
        );
        compact(&header, payload, |input| self.sign(input))
    }
}

/// An RSA-2048 key (RS256), generated with `openssl genpkey`.
pub struct RsaKey {
    pub kid: String,
    pem: PathBuf,
    /// base64url modulus and exponent.
    pub n: String,
    pub e: String,
    /// The SubjectPublicKeyInfo PEM text (what an algorithm-confusion attack uses as an
    /// HMAC secret).
    pub public_pem: String,
}

impl RsaKey {
    pub fn generate(dir: &Path, kid: &str) -> RsaKey {
        let pem = dir.join(format!("{kid}.rsa.pem"));
        let p = pem.to_str().unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                p,
            ],
            None,
        );
        let modulus =
            String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"], None)).unwrap();
        let modulus = modulus
            .trim()
            .strip_prefix("Modulus=")
            .expect("openssl -modulus output");
        let public_pem = String::from_utf8(openssl(&["pkey", "-in", p, "-pubout"], None)).unwrap();
        RsaKey {
            kid: kid.to_string(),
            pem,
            n: b64(hex(modulus)),
            e: "AQAB".to_string(), // openssl's default public exponent, 65537
            public_pem,
        }
    }
}

impl Key for RsaKey {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn alg(&self) -> &'static str {
        "RS256"
    }
    fn jwk_yaml(&self) -> String {
        format!(
            "{{ kty: RSA, kid: {}, alg: RS256, n: {}, e: {} }}",
            self.kid, self.n, self.e
        )
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        openssl(
            &[
                "dgst",
                "-sha256",
                "-binary",
                "-sign",
                self.pem.to_str().unwrap(),
            ],
            Some(input),
        )
    }
}

/// An EC P-256 key (ES256), generated with `openssl genpkey`.
pub struct EcKey {
    pub kid: String,
    pem: PathBuf,
    pub x: String,
    pub y: String,
}

impl EcKey {
    pub fn generate(dir: &Path, kid: &str) -> EcKey {
        let pem = dir.join(format!("{kid}.ec.pem"));
        let p = pem.to_str().unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                p,
            ],
            None,
        );
        let spki = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"], None);
        // The SubjectPublicKeyInfo ends with the uncompressed point 04 || X || Y.
        let point = &spki[spki.len() - 65..];
        assert_eq!(point[0], 4, "uncompressed EC point");
        EcKey {
            kid: kid.to_string(),
            pem,
            x: b64(&point[1..33]),
            y: b64(&point[33..]),
        }
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` → the 64-byte `r || s` of JWS ES256.
pub(crate) fn ecdsa_der_to_jws(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "DER ECDSA signature");
    let mut pos = 2;
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[pos], 0x02);
        let len = der[pos + 1] as usize;
        let mut int = &der[pos + 2..pos + 2 + len];
        while int.len() > 32 && int[0] == 0 {
            int = &int[1..];
        }
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        pos += 2 + len;
    }
    out
}

impl Key for EcKey {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn alg(&self) -> &'static str {
        "ES256"
    }
    fn jwk_yaml(&self) -> String {
        format!(
            "{{ kty: EC, kid: {}, alg: ES256, crv: P-256, x: {}, y: {} }}",
            self.kid, self.x, self.y
        )
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        let der = openssl(
            &[
                "dgst",
                "-sha256",
                "-binary",
                "-sign",
                self.pem.to_str().unwrap(),
            ],
            Some(input),
        );
        ecdsa_der_to_jws(&der)
    }
}

/// An HMAC secret (HS256): 32 random bytes.
pub struct HmacKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl HmacKey {
    pub fn generate(kid: &str) -> HmacKey {
        let mut secret = vec![0u8; 32];
        let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
        f.read_exact(&mut secret).unwrap();
        HmacKey {
            kid: kid.to_string(),
            secret,
        }
    }
}

impl Key for HmacKey {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn alg(&self) -> &'static str {
        "HS256"
    }
    fn jwk_yaml(&self) -> String {
        format!(
            "{{ kty: oct, kid: {}, alg: HS256, k: {} }}",
            self.kid,
            b64(&self.secret)
        )
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        hmac_sha256(&self.secret, input)
    }
}

/// HMAC-SHA256 through `proto::jwt::mint` (any key bytes, e.g. an RSA public key's PEM).
pub fn hmac_sha256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // mint::hmac signs `b64(header).b64(payload)`: recover the signature of `input` by
    // minting over the same segments.
    let text = std::str::from_utf8(input).expect("signing input is ASCII");
    let (h, p) = text.split_once('.').expect("header.payload");
    let header = URL_SAFE_NO_PAD.decode(h).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(p).unwrap();
    let token = proto::jwt::mint::hmac(
        proto::jwt::Alg::Hs256,
        secret,
        std::str::from_utf8(&header).unwrap(),
        std::str::from_utf8(&payload).unwrap(),
    )
    .unwrap();
    URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap()
}

pub use crate::zilla::GuardOn;

/// Zilla's `sse.kafka.fanout.jwt` chain: tcp → http (authorization from the `Authorization:
/// Bearer` header or the `access_token` query parameter) → sse → sse-kafka → kafka cache
/// client/server → kafka client; optionally http-filesystem + filesystem for other paths.
#[derive(Debug, Clone)]
pub struct Chain {
    pub port: u16,
    pub kafka: String,
    /// JWKs as YAML flow mappings.
    pub keys: Vec<String>,
    pub challenge: Option<u64>,
    pub guard_on: GuardOn,
    pub roles: Vec<String>,
    /// sse-kafka routes: (path, topic template).
    pub routes: Vec<(String, String)>,
    pub versions: Vec<String>,
    /// `:scheme` the http route to the sse binding asks for (`https` behind TLS).
    pub scheme: String,
    /// Serve other paths from this directory (http-filesystem + filesystem).
    pub files: Option<PathBuf>,
}

impl Chain {
    pub fn new(port: u16, kafka: &str, keys: &[&dyn Key]) -> Chain {
        Chain {
            port,
            kafka: kafka.to_string(),
            keys: keys.iter().map(|k| k.jwk_yaml()).collect(),
            challenge: None,
            guard_on: GuardOn::Http,
            roles: vec!["read:events".to_string()],
            routes: vec![("/events".to_string(), "events".to_string())],
            versions: vec!["http/1.1".to_string(), "h2".to_string()],
            scheme: "http".to_string(),
            files: None,
        }
    }
    pub fn challenge(mut self, secs: u64) -> Chain {
        self.challenge = Some(secs);
        self
    }
    pub fn guard_on(mut self, on: GuardOn) -> Chain {
        self.guard_on = on;
        self
    }
    pub fn routes(mut self, routes: &[(&str, &str)]) -> Chain {
        self.routes = routes
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        self
    }
    pub fn scheme(mut self, scheme: &str) -> Chain {
        self.scheme = scheme.to_string();
        self
    }
    pub fn files(mut self, dir: &Path) -> Chain {
        self.files = Some(dir.to_path_buf());
        self
    }

    /// The chain as a [`Zilla`] builder (for more options), with the `authn_jwt` guard.
    pub fn zilla(&self) -> Zilla {
        let roles: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        let versions: Vec<&str> = self.versions.iter().map(|v| v.as_str()).collect();
        let mut z = Zilla::new(self.port, &self.kafka)
            .named("jwt-test")
            .jwt_guard("authn_jwt", ISSUER, AUDIENCE, &self.keys, self.challenge)
            .versions(&versions)
            .authorization("authn_jwt")
            .guarded("authn_jwt", self.guard_on, &roles)
            .scheme(&self.scheme)
            .http_path("/events*");
        for (path, topic) in &self.routes {
            z = z.route(Route::new(path, topic));
        }
        if let Some(dir) = &self.files {
            z = z.files_without_index(&format!("{}/", dir.display()));
        }
        z
    }

    pub fn yaml(&self) -> String {
        self.zilla().yaml()
    }
}

/// Asserts that no part of any token (payload or signature segment, or the whole token)
/// appears in `logs`.
pub fn assert_not_logged(logs: &str, tokens: &[&str]) {
    for token in tokens {
        assert!(
            !logs.contains(token),
            "a token appears in the server's log:\n{logs}"
        );
        for (i, segment) in token.split('.').enumerate().skip(1) {
            if segment.len() >= 16 {
                assert!(
                    !logs.contains(segment),
                    "segment {i} of a token appears in the server's log:\n{logs}"
                );
            }
        }
    }
}
