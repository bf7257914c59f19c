//! JWT (JWS compact serialization) verification for the `jwt` guard.
//!
//! Keys are parsed once, at configuration time ([`Jwk`], [`KeySet`]). Per request,
//! [`verify`] splits the token, base64url-decodes its parts into stack buffers and a
//! caller-owned scratch array, selects a key, checks the signature with `ring` and the
//! registered claims, and returns [`Claims`] borrowing the decoded payload: nothing is
//! allocated on the heap by this module on that path (ring's RSA verification itself makes
//! a few small allocations; its HMAC and ECDSA make none).
//!
//! ```
//! use proto::jwt::{self, mint, Alg, Expect, KeySet, MAX_PAYLOAD};
//!
//! let keys = KeySet::from_jwk_list(&[
//!     r#"{"kty":"oct","kid":"k1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I"}"#,
//! ])?;
//! let token = mint::hmac(
//!     Alg::Hs256,
//!     b"secret-secret-secret-secret-secr",
//!     r#"{"alg":"HS256","kid":"k1"}"#,
//!     r#"{"sub":"alice","exp":1700000600,"scope":"read write"}"#,
//! )
//! .unwrap();
//!
//! let mut scratch = [0u8; MAX_PAYLOAD];
//! let expect = Expect { issuer: None, audience: None, leeway_secs: 0 };
//! let claims = jwt::verify(token.as_bytes(), &keys, 1_700_000_000, &expect, &mut scratch)?;
//! assert!(claims.has_roles("scope", &["read"]));
//! assert_eq!(claims.identity("sub").unwrap().to_string(), "alice");
//! assert_eq!(claims.exp(), Some(1_700_000_600));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Refused always: `alg: none`, algorithms other than HS/RS/PS 256/384/512 and ES256/ES384,
//! and a key whose type or `alg` does not fit the token's `alg` (an HMAC secret is never
//! taken from RSA or EC key material). `kid` may be omitted when exactly one configured key
//! fits the token's `alg` (decisions.md 3.7). Keys come only from configuration: header
//! members such as `jwk`, `jku`, `x5u` and `x5c` are ignored.

mod json;
mod jwk;
pub mod mint;
mod token;
mod verify;

use std::fmt;

pub use json::{DecodedChars, JsonStr, Value, Words};
pub use jwk::{Jwk, JwkParams, KeyError, KeySet};
pub use verify::{verify, Claims, Expect, Roles};

/// Longest token accepted, in bytes; a longer one is refused with [`JwtError::TooLarge`].
pub const MAX_TOKEN: usize = 8192;

/// Size of the scratch buffer [`verify`] decodes the payload into (the decoded size of a
/// [`MAX_TOKEN`]-byte payload segment).
pub const MAX_PAYLOAD: usize = MAX_TOKEN / 4 * 3;

/// Longest decoded JOSE header accepted, in bytes; a longer one is [`JwtError::TooLarge`].
pub const MAX_HEADER: usize = 2048;

/// Longest decoded signature accepted, in bytes (an RSA-8192 signature).
pub const MAX_SIGNATURE: usize = 1024;

/// A JWS algorithm this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 11] = [
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
    ];

    /// The JWS name (`"RS256"`).
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
        }
    }

    /// The algorithm with JWS name `name` (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a token was refused. Messages never include any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url segments, a header or payload that is not a JSON object, a
    /// header without a string `alg`, a `crit` header, or a registered claim of the wrong
    /// type or present twice.
    Malformed,
    /// Longer than [`MAX_TOKEN`] bytes, or a header over [`MAX_HEADER`] decoded bytes.
    TooLarge,
    /// An `alg` this module does not verify.
    UnsupportedAlg,
    /// `alg: none` (any letter case).
    AlgNone,
    /// No configured key has the token's `kid` (or no key is configured at all).
    UnknownKey,
    /// Without `kid`, several configured keys fit the `alg`; or several keys share the
    /// token's `kid` and fit its `alg`.
    AmbiguousKey,
    /// The key named by `kid` (or, without `kid`, every key) does not fit the token's
    /// `alg`: another key type, another curve, another configured `alg`.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed (allowing the leeway).
    Expired,
    /// `nbf` has not come yet (allowing the leeway).
    NotYetValid,
    /// An issuer is expected and `iss` is absent or different.
    WrongIssuer,
    /// An audience is expected and `aud` is absent or does not contain it.
    WrongAudience,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "token is malformed",
            JwtError::TooLarge => "token is too large",
            JwtError::UnsupportedAlg => "token algorithm is not supported",
            JwtError::AlgNone => "unsigned token (alg none)",
            JwtError::UnknownKey => "no key for token kid",
            JwtError::AmbiguousKey => "several keys fit token",
            JwtError::KeyMismatch => "key does not fit token algorithm",
            JwtError::BadSignature => "token signature is invalid",
            JwtError::Expired => "token is expired",
            JwtError::NotYetValid => "token is not yet valid",
            JwtError::WrongIssuer => "token issuer is not accepted",
            JwtError::WrongAudience => "token audience is not accepted",
        })
    }
}

impl std::error::Error for JwtError {}

#[cfg(test)]
mod tests;
