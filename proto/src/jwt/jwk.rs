//! Verification keys from JWKs (RFC 7517/7518), prepared once at configuration time.
//!
//! Supported: `kty: RSA` (`n`, `e`; RS256/384/512, PS256/384/512), `kty: EC` with
//! `crv: P-256` (ES256) or `P-384` (ES384) (`x`, `y`), and `kty: oct` (`k`; HS256/384/512).
//! `alg` is optional: when absent the key fits every algorithm of its type (for `oct`, every
//! HS algorithm whose hash is no longer than the secret). `use` and `key_ops` are ignored,
//! as the reference does (its sample configuration verifies with a `use: enc` key).

use std::borrow::Cow;
use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use ring::hmac;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use super::json::{self, JsonStr, Lookup, Value};
use super::{Alg, JwtError};

/// base64url for key members: unpadded as RFC 7518 requires, padding tolerated.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Smallest and largest RSA modulus accepted, in bits (ring's verification bounds).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// Why a JWK (or a JWKS document) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not a JSON object, or a member used here is not a string or appears twice; a JWKS
    /// document without a `keys` array.
    Json,
    /// A required member is absent.
    Missing(&'static str),
    /// A member is not base64url.
    BadBase64(&'static str),
    /// `kty` is not `RSA`, `EC` or `oct`.
    UnsupportedKty,
    /// `crv` is not `P-256` or `P-384`.
    UnsupportedCurve,
    /// `alg` is not one this module verifies.
    UnsupportedAlg,
    /// `alg` does not fit the key type or curve.
    AlgMismatch,
    /// RSA modulus outside 2048..=8192 bits, or an HMAC secret shorter than the hash of
    /// its algorithm (shorter than 32 bytes without `alg`), as RFC 7518 3.2 requires.
    WeakKey,
    /// Key material of the wrong shape: coordinate length, exponent, empty secret.
    BadKey,
    /// A JWKS document holds no usable key.
    NoUsableKeys,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Json => f.write_str("JWK is not a well-formed JSON object"),
            KeyError::Missing(m) => write!(f, "JWK member {m} is missing"),
            KeyError::BadBase64(m) => write!(f, "JWK member {m} is not base64url"),
            KeyError::UnsupportedKty => f.write_str("JWK kty is not RSA, EC or oct"),
            KeyError::UnsupportedCurve => f.write_str("JWK crv is not P-256 or P-384"),
            KeyError::UnsupportedAlg => f.write_str("JWK alg is not supported"),
            KeyError::AlgMismatch => f.write_str("JWK alg does not fit its key type"),
            KeyError::WeakKey => f.write_str("JWK key is too short for its algorithm"),
            KeyError::BadKey => f.write_str("JWK key material is malformed"),
            KeyError::NoUsableKeys => f.write_str("JWKS holds no usable key"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The members of a JWK that matter here, as text (for callers that hold a key in another
/// format, such as YAML). Binary members are base64url.
#[derive(Debug, Clone, Copy, Default)]
pub struct JwkParams<'a> {
    /// `RSA`, `EC` or `oct`.
    pub kty: &'a str,
    /// Key id.
    pub kid: Option<&'a str>,
    /// Algorithm the key is restricted to.
    pub alg: Option<&'a str>,
    /// RSA modulus.
    pub n: Option<&'a str>,
    /// RSA public exponent.
    pub e: Option<&'a str>,
    /// EC curve.
    pub crv: Option<&'a str>,
    /// EC x coordinate.
    pub x: Option<&'a str>,
    /// EC y coordinate.
    pub y: Option<&'a str>,
    /// HMAC secret.
    pub k: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

enum Material {
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
    Ec(Curve, UnparsedPublicKey<Vec<u8>>),
    /// HMAC keys for HS256, HS384, HS512, present for the algorithms the secret fits.
    Oct(Box<[Option<hmac::Key>; 3]>),
}

/// One verification key, prepared for ring.
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Alg>,
    material: Material,
}

/// Key material is left out: an `oct` key is a secret.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &self.kty())
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(value: Option<&str>, member: &'static str) -> Result<Vec<u8>, KeyError> {
    let value = value.ok_or(KeyError::Missing(member))?;
    B64.decode(value).map_err(|_| KeyError::BadBase64(member))
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn hmac_index(alg: Alg) -> Option<usize> {
    match alg {
        Alg::Hs256 => Some(0),
        Alg::Hs384 => Some(1),
        Alg::Hs512 => Some(2),
        _ => None,
    }
}

const HMAC_ALGS: [(Alg, hmac::Algorithm, usize); 3] = [
    (Alg::Hs256, hmac::HMAC_SHA256, 32),
    (Alg::Hs384, hmac::HMAC_SHA384, 48),
    (Alg::Hs512, hmac::HMAC_SHA512, 64),
];

impl Jwk {
    /// Parses one JWK JSON object.
    pub fn from_json(text: &str) -> Result<Jwk, KeyError> {
        let object = json::parse_object(text).map_err(|_| KeyError::Json)?;
        Jwk::from_object(object)
    }

    fn from_object(object: &str) -> Result<Jwk, KeyError> {
        fn member<'a>(object: &'a str, name: &str) -> Result<Option<Cow<'a, str>>, KeyError> {
            match json::find(object, name) {
                Lookup::Missing => Ok(None),
                Lookup::Found(Value::Str(s)) => Ok(Some(s.to_cow())),
                _ => Err(KeyError::Json),
            }
        }
        let kty = member(object, "kty")?.ok_or(KeyError::Missing("kty"))?;
        let kid = member(object, "kid")?;
        let alg = member(object, "alg")?;
        let n = member(object, "n")?;
        let e = member(object, "e")?;
        let crv = member(object, "crv")?;
        let x = member(object, "x")?;
        let y = member(object, "y")?;
        let k = member(object, "k")?;
        Jwk::from_params(&JwkParams {
            kty: &kty,
            kid: kid.as_deref(),
            alg: alg.as_deref(),
            n: n.as_deref(),
            e: e.as_deref(),
            crv: crv.as_deref(),
            x: x.as_deref(),
            y: y.as_deref(),
            k: k.as_deref(),
        })
    }

    /// Builds a key from its members.
    pub fn from_params(p: &JwkParams<'_>) -> Result<Jwk, KeyError> {
        let alg = match p.alg {
            Some(name) => Some(Alg::from_name(name).ok_or(KeyError::UnsupportedAlg)?),
            None => None,
        };
        let material = match p.kty {
            "RSA" => rsa(p, alg)?,
            "EC" => ec(p, alg)?,
            "oct" => oct(p, alg)?,
            _ => return Err(KeyError::UnsupportedKty),
        };
        Ok(Jwk {
            kid: p.kid.map(str::to_owned),
            alg,
            material,
        })
    }

    /// The key id, when configured.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is restricted to, when configured.
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    /// `RSA`, `EC` or `oct`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Rsa(_) => "RSA",
            Material::Ec(..) => "EC",
            Material::Oct(_) => "oct",
        }
    }

    /// True when a token signed with `alg` may be verified with this key.
    pub fn fits(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (&self.material, alg) {
            (Material::Rsa(_), Alg::Rs256 | Alg::Rs384 | Alg::Rs512)
            | (Material::Rsa(_), Alg::Ps256 | Alg::Ps384 | Alg::Ps512)
            | (Material::Ec(Curve::P256, _), Alg::Es256)
            | (Material::Ec(Curve::P384, _), Alg::Es384) => true,
            (Material::Oct(keys), alg) => hmac_index(alg).is_some_and(|i| keys[i].is_some()),
            _ => false,
        }
    }

    /// Verifies `signature` over `message` as `alg`; false also when the key does not fit.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        let rsa_params: &signature::RsaParameters = match alg {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        match &self.material {
            Material::Rsa(components) => components.verify(rsa_params, message, sig).is_ok(),
            Material::Ec(_, key) => key.verify(message, sig).is_ok(),
            Material::Oct(keys) => hmac_index(alg)
                .and_then(|i| keys[i].as_ref())
                .is_some_and(|key| hmac::verify(key, message, sig).is_ok()),
        }
    }
}

fn rsa(p: &JwkParams<'_>, alg: Option<Alg>) -> Result<Material, KeyError> {
    if let Some(alg) = alg {
        if !matches!(
            alg,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
        ) {
            return Err(KeyError::AlgMismatch);
        }
    }
    let n = b64(p.n, "n")?;
    let e = b64(p.e, "e")?;
    let n = strip_leading_zeros(&n).to_vec();
    let e = strip_leading_zeros(&e).to_vec();
    let bits = match n.first() {
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(KeyError::WeakKey);
    }
    // ring accepts odd exponents from 3 to 2^33 - 1.
    if e.len() > 5 {
        return Err(KeyError::BadKey);
    }
    let e_value = e.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
    if e_value < 3 || e_value % 2 == 0 || e_value >= 1 << 33 {
        return Err(KeyError::BadKey);
    }
    Ok(Material::Rsa(RsaPublicKeyComponents { n, e }))
}

fn ec(p: &JwkParams<'_>, alg: Option<Alg>) -> Result<Material, KeyError> {
    let (curve, size, verify_alg): (_, _, &'static dyn signature::VerificationAlgorithm) =
        match p.crv.ok_or(KeyError::Missing("crv"))? {
            "P-256" => (Curve::P256, 32, &signature::ECDSA_P256_SHA256_FIXED),
            "P-384" => (Curve::P384, 48, &signature::ECDSA_P384_SHA384_FIXED),
            _ => return Err(KeyError::UnsupportedCurve),
        };
    let fitting = if curve == Curve::P256 {
        Alg::Es256
    } else {
        Alg::Es384
    };
    if alg.is_some_and(|a| a != fitting) {
        return Err(KeyError::AlgMismatch);
    }
    let x = b64(p.x, "x")?;
    let y = b64(p.y, "y")?;
    // Coordinates are full-length per RFC 7518 6.2.1.2; shorter ones are left-padded.
    if x.len() > size || y.len() > size || x.is_empty() || y.is_empty() {
        return Err(KeyError::BadKey);
    }
    let mut point = vec![0u8; 1 + 2 * size];
    point[0] = 0x04;
    point[1 + size - x.len()..1 + size].copy_from_slice(&x);
    point[1 + 2 * size - y.len()..].copy_from_slice(&y);
    Ok(Material::Ec(
        curve,
        UnparsedPublicKey::new(verify_alg, point),
    ))
}

fn oct(p: &JwkParams<'_>, alg: Option<Alg>) -> Result<Material, KeyError> {
    if alg.is_some_and(|a| hmac_index(a).is_none()) {
        return Err(KeyError::AlgMismatch);
    }
    let secret = b64(p.k, "k")?;
    if secret.is_empty() {
        return Err(KeyError::BadKey);
    }
    let mut keys = [None, None, None];
    for (i, (hs, ring_alg, min_len)) in HMAC_ALGS.into_iter().enumerate() {
        if alg.is_none_or(|a| a == hs) && secret.len() >= min_len {
            keys[i] = Some(hmac::Key::new(ring_alg, &secret));
        }
    }
    if keys.iter().all(Option::is_none) {
        return Err(KeyError::WeakKey);
    }
    Ok(Material::Oct(Box::new(keys)))
}

/// The configured verification keys of one guard.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    skipped: Vec<(Option<String>, KeyError)>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: Vec<Jwk>) -> KeySet {
        KeySet {
            keys,
            skipped: Vec::new(),
        }
    }

    /// Parses a list of JWK JSON objects (inline configuration); the first key refused
    /// refuses the list.
    pub fn from_jwk_list<S: AsRef<str>>(list: &[S]) -> Result<KeySet, KeyError> {
        let keys = list
            .iter()
            .map(|text| Jwk::from_json(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeySet::new(keys))
    }

    /// Parses a JWKS document (`{"keys":[...]}`, as served at a JWKS URL). Keys that cannot
    /// be used (other key types, curves or algorithms, such as encryption keys) are skipped
    /// and listed in [`KeySet::skipped`]; a document with no usable key is
    /// [`KeyError::NoUsableKeys`].
    pub fn from_jwks(text: &str) -> Result<KeySet, KeyError> {
        let object = json::parse_object(text).map_err(|_| KeyError::Json)?;
        let Lookup::Found(Value::Array(array)) = json::find(object, "keys") else {
            return Err(KeyError::Json);
        };
        let mut set = KeySet::default();
        for value in json::elements(array) {
            let result = match value {
                Value::Object(key) => Jwk::from_object(key),
                _ => Err(KeyError::Json),
            };
            match result {
                Ok(key) => set.keys.push(key),
                Err(error) => {
                    let kid = match value {
                        Value::Object(key) => json::find(key, "kid")
                            .found()
                            .and_then(|v| v.as_json_str())
                            .map(|s| s.to_cow().into_owned()),
                        _ => None,
                    };
                    set.skipped.push((kid, error));
                }
            }
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoUsableKeys);
        }
        Ok(set)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Keys of a JWKS document that were skipped, with their `kid` and the reason.
    pub fn skipped(&self) -> &[(Option<String>, KeyError)] {
        &self.skipped
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token with header `kid` and `alg`: with `kid`, the one key of that id
    /// fitting `alg`; without, the one key (of any id) fitting `alg`.
    pub(crate) fn select(&self, kid: Option<JsonStr<'_>>, alg: Alg) -> Result<&Jwk, JwtError> {
        let mut named = false;
        let mut chosen = None;
        let mut fitting = 0usize;
        for key in &self.keys {
            if let Some(kid) = kid {
                if !key.kid.as_deref().is_some_and(|k| kid.eq_str(k)) {
                    continue;
                }
                named = true;
            }
            if key.fits(alg) {
                fitting += 1;
                chosen = Some(key);
            }
        }
        if (kid.is_some() && !named) || self.keys.is_empty() {
            return Err(JwtError::UnknownKey);
        }
        match (fitting, chosen) {
            (1, Some(key)) => Ok(key),
            (0, _) | (_, None) => Err(JwtError::KeyMismatch),
            _ => Err(JwtError::AmbiguousKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 2048-bit modulus: 0x80 followed by 255 bytes (value irrelevant to parsing).
    fn n_2048() -> String {
        let mut n = vec![0x80u8];
        n.extend(std::iter::repeat_n(0x11, 255));
        B64.encode(n)
    }

    fn rsa_json(extra: &str) -> String {
        format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"{extra}}}"#, n_2048())
    }

    fn ec_json(crv: &str, size: usize, extra: &str) -> String {
        let c = B64.encode(vec![7u8; size]);
        format!(r#"{{"kty":"EC","crv":"{crv}","x":"{c}","y":"{c}"{extra}}}"#)
    }

    fn oct_json(len: usize, extra: &str) -> String {
        let k = B64.encode(vec![1u8; len]);
        format!(r#"{{"kty":"oct","k":"{k}"{extra}}}"#)
    }

    fn algs(key: &Jwk) -> Vec<Alg> {
        Alg::ALL.into_iter().filter(|&a| key.fits(a)).collect()
    }

    #[test]
    fn rsa_keys() {
        let key = Jwk::from_json(&rsa_json(r#","kid":"r1","use":"sig""#)).unwrap();
        assert_eq!(key.kid(), Some("r1"));
        assert_eq!(key.kty(), "RSA");
        use Alg::*;
        assert_eq!(algs(&key), [Rs256, Rs384, Rs512, Ps256, Ps384, Ps512]);
        let key = Jwk::from_json(&rsa_json(r#","alg":"PS384""#)).unwrap();
        assert_eq!(algs(&key), [Ps384]);
        assert_eq!(
            Jwk::from_json(&rsa_json(r#","alg":"HS256""#)).err(),
            Some(KeyError::AlgMismatch)
        );
        assert_eq!(
            Jwk::from_json(&rsa_json(r#","alg":"RSA-OAEP""#)).err(),
            Some(KeyError::UnsupportedAlg)
        );
        // A leading zero byte on n is tolerated; 2047 bits is too short.
        let mut n = vec![0u8, 0x80];
        n.extend(std::iter::repeat_n(0x11, 255));
        let json = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, B64.encode(&n));
        assert!(Jwk::from_json(&json).is_ok());
        let mut short = vec![0x7fu8];
        short.extend(std::iter::repeat_n(0x11, 255));
        let json = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, B64.encode(&short));
        assert_eq!(Jwk::from_json(&json).err(), Some(KeyError::WeakKey));
        for e in ["AQ", "Ag", "AAAAAAE", "AAE"] {
            let json = format!(r#"{{"kty":"RSA","n":"{}","e":"{e}"}}"#, n_2048());
            assert_eq!(Jwk::from_json(&json).err(), Some(KeyError::BadKey), "{e}");
        }
        let json = format!(r#"{{"kty":"RSA","n":"{}"}}"#, n_2048());
        assert_eq!(Jwk::from_json(&json).err(), Some(KeyError::Missing("e")));
        let json = r#"{"kty":"RSA","n":"***","e":"AQAB"}"#;
        assert_eq!(Jwk::from_json(json).err(), Some(KeyError::BadBase64("n")));
    }

    #[test]
    fn ec_keys() {
        let key = Jwk::from_json(&ec_json("P-256", 32, "")).unwrap();
        assert_eq!(algs(&key), [Alg::Es256]);
        let key = Jwk::from_json(&ec_json("P-384", 48, r#","alg":"ES384""#)).unwrap();
        assert_eq!(algs(&key), [Alg::Es384]);
        assert!(Jwk::from_json(&ec_json("P-256", 31, "")).is_ok());
        assert_eq!(
            Jwk::from_json(&ec_json("P-256", 33, "")).err(),
            Some(KeyError::BadKey)
        );
        assert_eq!(
            Jwk::from_json(&ec_json("P-256", 32, r#","alg":"ES384""#)).err(),
            Some(KeyError::AlgMismatch)
        );
        assert_eq!(
            Jwk::from_json(&ec_json("P-521", 66, "")).err(),
            Some(KeyError::UnsupportedCurve)
        );
        assert_eq!(
            Jwk::from_json(&ec_json("P-521", 66, r#","alg":"ES512""#)).err(),
            Some(KeyError::UnsupportedAlg)
        );
        assert_eq!(
            Jwk::from_json(r#"{"kty":"EC","x":"AA","y":"AA"}"#).err(),
            Some(KeyError::Missing("crv"))
        );
    }

    #[test]
    fn oct_keys() {
        use Alg::*;
        assert_eq!(algs(&Jwk::from_json(&oct_json(32, "")).unwrap()), [Hs256]);
        assert_eq!(
            algs(&Jwk::from_json(&oct_json(48, "")).unwrap()),
            [Hs256, Hs384]
        );
        assert_eq!(
            algs(&Jwk::from_json(&oct_json(64, "")).unwrap()),
            [Hs256, Hs384, Hs512]
        );
        assert_eq!(
            algs(&Jwk::from_json(&oct_json(64, r#","alg":"HS384""#)).unwrap()),
            [Hs384]
        );
        assert_eq!(
            Jwk::from_json(&oct_json(31, "")).err(),
            Some(KeyError::WeakKey)
        );
        assert_eq!(
            Jwk::from_json(&oct_json(32, r#","alg":"HS512""#)).err(),
            Some(KeyError::WeakKey)
        );
        assert_eq!(
            Jwk::from_json(&oct_json(32, r#","alg":"RS256""#)).err(),
            Some(KeyError::AlgMismatch)
        );
        assert_eq!(
            Jwk::from_json(r#"{"kty":"oct","k":""}"#).err(),
            Some(KeyError::BadKey)
        );
        // The secret never shows in Debug output.
        let key = Jwk::from_json(&oct_json(32, r#","kid":"h""#)).unwrap();
        let debug = format!("{key:?}");
        assert!(
            debug.contains("\"h\"") && !debug.contains("AQEB"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_jwks() {
        for text in [
            "",
            "[]",
            r#"{"kty":1}"#,
            r#"{"kty":"oct","kty":"oct","k":"AA"}"#,
            r#"{"kty":"oct","kid":5}"#,
        ] {
            assert_eq!(Jwk::from_json(text).err(), Some(KeyError::Json), "{text}");
        }
        assert_eq!(Jwk::from_json("{}").err(), Some(KeyError::Missing("kty")));
        assert_eq!(
            Jwk::from_json(r#"{"kty":"OKP"}"#).err(),
            Some(KeyError::UnsupportedKty)
        );
        // Escapes in members are decoded.
        let json = oct_json(32, r#","kid":"a\/b""#).replace("\"oct\"", r#""\u006fct""#);
        assert_eq!(Jwk::from_json(&json).unwrap().kid(), Some("a/b"));
    }

    #[test]
    fn jwks_documents() {
        let doc = format!(
            r#"{{"keys":[{},{},{},7,{}]}}"#,
            rsa_json(r#","kid":"r""#),
            ec_json("P-521", 66, r#","kid":"big""#),
            oct_json(32, r#","kid":"h""#),
            r#"{"kty":"RSA","kid":"enc","alg":"RSA-OAEP","n":"AA","e":"AQAB"}"#,
        );
        let set = KeySet::from_jwks(&doc).unwrap();
        let kids: Vec<_> = set.keys().iter().map(|k| k.kid()).collect();
        assert_eq!(kids, [Some("r"), Some("h")]);
        assert_eq!(
            set.skipped(),
            [
                (Some("big".to_owned()), KeyError::UnsupportedCurve),
                (None, KeyError::Json),
                (Some("enc".to_owned()), KeyError::UnsupportedAlg),
            ]
        );
        assert_eq!(
            KeySet::from_jwks(r#"{"keys":[]}"#).err(),
            Some(KeyError::NoUsableKeys)
        );
        assert_eq!(
            KeySet::from_jwks(r#"{"keys":{}}"#).err(),
            Some(KeyError::Json)
        );
        assert_eq!(KeySet::from_jwks(r#"{}"#).err(), Some(KeyError::Json));
        assert_eq!(KeySet::from_jwks("keys").err(), Some(KeyError::Json));

        let list = [rsa_json(""), oct_json(32, "")];
        assert_eq!(KeySet::from_jwk_list(&list).unwrap().len(), 2);
        let list = [rsa_json(""), oct_json(8, "")];
        assert_eq!(KeySet::from_jwk_list(&list).err(), Some(KeyError::WeakKey));
        assert!(KeySet::from_jwk_list::<&str>(&[]).unwrap().is_empty());
    }

    fn kid(text: &str) -> JsonStr<'_> {
        json::parse_document(text).unwrap().as_json_str().unwrap()
    }

    fn kid_of(r: Result<&Jwk, JwtError>) -> Result<Option<&str>, JwtError> {
        r.map(|k| k.kid())
    }

    #[test]
    fn key_selection() {
        let set = KeySet::from_jwk_list(&[
            rsa_json(r#","kid":"r1""#),
            rsa_json(r#","kid":"r2","alg":"RS256""#),
            oct_json(32, r#","kid":"h1""#),
            oct_json(32, r#","kid":"dup""#),
            oct_json(32, r#","kid":"dup""#),
            ec_json("P-256", 32, r#","kid":"e1""#),
        ])
        .unwrap();
        assert_eq!(
            kid_of(set.select(Some(kid(r#""r1""#)), Alg::Ps256)),
            Ok(Some("r1"))
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""\u0072\u0031""#)), Alg::Rs256)),
            Ok(Some("r1"))
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""r2""#)), Alg::Ps256)),
            Err(JwtError::KeyMismatch)
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""r1""#)), Alg::Hs256)),
            Err(JwtError::KeyMismatch)
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""e1""#)), Alg::Es384)),
            Err(JwtError::KeyMismatch)
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""nope""#)), Alg::Rs256)),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            kid_of(set.select(Some(kid(r#""dup""#)), Alg::Hs256)),
            Err(JwtError::AmbiguousKey)
        );
        // Without kid: exactly one key fits ES256 and PS256, several fit RS256 and HS256.
        assert_eq!(kid_of(set.select(None, Alg::Es256)), Ok(Some("e1")));
        assert_eq!(kid_of(set.select(None, Alg::Ps256)), Ok(Some("r1")));
        assert_eq!(
            kid_of(set.select(None, Alg::Rs256)),
            Err(JwtError::AmbiguousKey)
        );
        assert_eq!(
            kid_of(set.select(None, Alg::Hs256)),
            Err(JwtError::AmbiguousKey)
        );
        assert_eq!(
            kid_of(set.select(None, Alg::Es384)),
            Err(JwtError::KeyMismatch)
        );
        assert_eq!(
            kid_of(set.select(None, Alg::Hs512)),
            Err(JwtError::KeyMismatch)
        );
        assert_eq!(
            kid_of(KeySet::default().select(None, Alg::Hs256)),
            Err(JwtError::UnknownKey)
        );
    }
}
