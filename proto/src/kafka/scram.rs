//! SCRAM client (RFC 5802, RFC 7677) as Kafka brokers speak it: `client-first`, then the
//! server-first message is parsed and answered with `client-final` (the proof), then the
//! server-final signature is verified. No channel binding (`n,,`), no SASLprep (as Kafka's own
//! clients: the password's UTF-8 bytes are used as they are).
//!
//! Sans-io: the caller carries the messages (Kafka `SaslAuthenticate`), supplies the nonce
//! (see [`random_nonce`]) and gets every malformed or forged answer as a [`ScramError`].

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Iteration counts below this are refused (Kafka's own minimum): a broker, or anyone in the
/// middle, must not talk us into a weak derivation.
pub const MIN_ITERATIONS: u32 = 4096;
/// Iteration counts above this are refused: a hostile broker must not make us burn seconds of
/// CPU per connection (Kafka's own maximum is 16384).
pub const MAX_ITERATIONS: u32 = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The nonce given to [`ScramClient::new`] is empty or holds a character outside
    /// printable ASCII or a comma.
    BadNonce,
    /// A server message out of order (after the exchange ended or failed).
    OutOfOrder,
    /// The server-first message is not `r=...,s=...,i=...` (what is wrong).
    Malformed(&'static str),
    /// The server's nonce does not start with ours.
    NonceMismatch,
    /// The iteration count is outside [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    Iterations(u32),
    /// The server ended the exchange with `e=...`.
    Server(String),
    /// The server's signature is not the one the password gives: the server does not know
    /// the password (or the answer was forged).
    BadServerSignature,
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramError::BadNonce => write!(f, "invalid client nonce"),
            ScramError::OutOfOrder => write!(f, "unexpected SCRAM message"),
            ScramError::Malformed(what) => write!(f, "malformed SCRAM server message: {what}"),
            ScramError::NonceMismatch => write!(f, "server nonce does not extend the client's"),
            ScramError::Iterations(i) => write!(
                f,
                "server asks for {i} iterations (accepted: {MIN_ITERATIONS}..={MAX_ITERATIONS})"
            ),
            ScramError::Server(e) => write!(f, "server refused: {e}"),
            ScramError::BadServerSignature => write!(f, "server signature does not verify"),
        }
    }
}

/// The PBKDF2 result for one (salt, iteration count), kept by the caller across exchanges of
/// the same credentials: RFC 5802 section 5.1 allows it, and it spares every reconnect the
/// thousands of HMAC rounds (milliseconds of CPU) the derivation costs.
#[derive(Clone, Default)]
pub struct SaltedCache {
    salt: Vec<u8>,
    iterations: u32,
    salted: Vec<u8>,
}

impl fmt::Debug for SaltedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltedCache")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

enum State {
    Initial,
    SentFirst,
    SentFinal {
        server_key: hmac::Key,
        auth: Vec<u8>,
    },
    Done,
    Failed,
}

/// One SCRAM exchange. Holds the password until the proof is computed; never printed.
pub struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    /// `n=USER,r=NONCE`.
    first_bare: String,
    state: State,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// 24 random bytes from ring's `SystemRandom`, base64url (32 printable characters, no comma).
pub fn random_nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    // `fill` fails only when the OS has no randomness to give; a fixed nonce would then be
    // worse than failing, so the exchange gets an empty nonce, which `new` refuses.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return String::new();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `saslname`: `=` → `=3D`, `,` → `=2C`.
fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

fn hmac(key: &hmac::Key, data: &[u8]) -> hmac::Tag {
    hmac::sign(key, data)
}

impl ScramClient {
    pub fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Self, ScramError> {
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(ScramError::BadNonce);
        }
        Ok(Self {
            hash,
            password: password.as_bytes().to_vec(),
            nonce: nonce.to_owned(),
            first_bare: format!("n={},r={nonce}", escape_name(username)),
            state: State::Initial,
        })
    }

    /// `n,,n=USER,r=NONCE`.
    pub fn client_first(&mut self) -> Vec<u8> {
        self.state = State::SentFirst;
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Reads `r=NONCE,s=SALT,i=COUNT` and answers `c=biws,r=NONCE,p=PROOF`.
    pub fn server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        self.server_first_cached(msg, &mut SaltedCache::default())
    }

    /// [`server_first`](Self::server_first), taking the salted password from `cache` when the
    /// server's salt and iteration count are the ones it holds, and storing it there otherwise.
    /// A cache must only ever be used with one password.
    pub fn server_first_cached(
        &mut self,
        msg: &[u8],
        cache: &mut SaltedCache,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::SentFirst) {
            return Err(ScramError::OutOfOrder);
        }
        self.state = State::Failed;
        let (nonce, salt, iterations) = self.parse_server_first(msg)?;
        self.salt_password(cache, salt, iterations);
        self.password.iter_mut().for_each(|b| *b = 0);
        self.password.clear();
        let (reply, state) = self.client_final(msg, nonce, &cache.salted);
        self.state = state;
        Ok(reply)
    }

    /// `r=NONCE,s=SALT,i=COUNT` checked: the nonce extends ours, the salt is base64, the
    /// count is within bounds. Returns (nonce, salt, count).
    fn parse_server_first<'m>(
        &self,
        msg: &'m [u8],
    ) -> Result<(&'m str, Vec<u8>, NonZeroU32), ScramError> {
        let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut parts = text.split(',');
        let mut field = |name: &'static str| -> Result<&str, ScramError> {
            let part = parts.next().ok_or(ScramError::Malformed(name))?;
            if let Some(e) = part.strip_prefix("e=") {
                return Err(ScramError::Server(e.to_owned()));
            }
            part.strip_prefix(name).ok_or(ScramError::Malformed(name))
        };
        if text.starts_with("m=") {
            return Err(ScramError::Malformed("mandatory extension not supported"));
        }
        let nonce = field("r=")?;
        let salt = field("s=")?;
        let iterations = field("i=")?;
        // Extensions after `i=` are allowed and ignored (RFC 5802 section 7).
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(ScramError::Malformed("nonce"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let count = NonZeroU32::new(iterations).ok_or(ScramError::Iterations(iterations))?;
        Ok((nonce, salt, count))
    }

    /// Hi(password, salt, count) into `cache`, unless it holds it already.
    fn salt_password(&self, cache: &mut SaltedCache, salt: Vec<u8>, count: NonZeroU32) {
        let len = self.hash.len();
        let iterations = count.get();
        if cache.salt != salt || cache.iterations != iterations || cache.salted.len() != len {
            let mut salted = vec![0u8; len];
            pbkdf2::derive(
                self.hash.pbkdf2(),
                count,
                &salt,
                &self.password,
                &mut salted,
            );
            *cache = SaltedCache {
                salt,
                iterations,
                salted,
            };
        }
    }

    /// `c=biws,r=NONCE,p=PROOF` from the salted password, and the state that verifies the
    /// server's final message.
    fn client_final(&self, server_first: &[u8], nonce: &str, salted: &[u8]) -> (Vec<u8>, State) {
        let salted_key = hmac::Key::new(self.hash.hmac(), salted);
        let client_key = hmac(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let mut auth = Vec::with_capacity(
            self.first_bare.len() + server_first.len() + without_proof.len() + 2,
        );
        auth.extend_from_slice(self.first_bare.as_bytes());
        auth.push(b',');
        auth.extend_from_slice(server_first);
        auth.push(b',');
        auth.extend_from_slice(without_proof.as_bytes());
        let signature = hmac(
            &hmac::Key::new(self.hash.hmac(), stored_key.as_ref()),
            &auth,
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key =
            hmac::Key::new(self.hash.hmac(), hmac(&salted_key, b"Server Key").as_ref());
        let reply = format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes();
        (reply, State::SentFinal { server_key, auth })
    }

    /// Verifies `v=SIGNATURE` (or reports the server's `e=...`).
    pub fn server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        let State::SentFinal { server_key, auth } =
            std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let first = text.split(',').next().unwrap_or("");
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_owned()));
        }
        let signature = first
            .strip_prefix("v=")
            .ok_or(ScramError::Malformed("v="))?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| ScramError::Malformed("signature is not base64"))?;
        hmac::verify(&server_key, &auth, &signature).map_err(|_| ScramError::BadServerSignature)?;
        self.state = State::Done;
        Ok(())
    }

    /// Whether the server's signature was verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(hash: ScramHash, nonce: &str, server_first: &str) -> (String, String, ScramClient) {
        let mut c = ScramClient::new(hash, "user", "pencil", nonce).unwrap();
        let first = String::from_utf8(c.client_first()).unwrap();
        let fin = String::from_utf8(c.server_first(server_first.as_bytes()).unwrap()).unwrap();
        (first, fin, c)
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (first, fin, mut c) = exchange(ScramHash::Sha256, "rOprNGfwEbeRWgbNEkqO", server_first);
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c.is_done());
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let (first, fin, mut c) =
            exchange(ScramHash::Sha1, "fyko+d2lbbFgONRv9qkxdawL", server_first);
        assert_eq!(first, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(
            fin,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        c.server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
    }

    #[test]
    fn forged_server_signature_is_refused() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (_, _, mut c) = exchange(ScramHash::Sha256, "rOprNGfwEbeRWgbNEkqO", server_first);
        assert_eq!(
            c.server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
        assert!(!c.is_done());
        assert_eq!(c.server_final(b"v=x"), Err(ScramError::OutOfOrder));
    }

    #[test]
    fn sha512_round_trip_against_a_server_computation() {
        // A server side written from RFC 5802's formulas, to check SHA-512 end to end.
        let salt = b"0123456789abcdef";
        let mut c = ScramClient::new(ScramHash::Sha512, "a=b,c", "secret", "abc").unwrap();
        assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=abc");
        let server_first = format!("r=abcdef,s={},i=4096", STANDARD.encode(salt));
        let fin = String::from_utf8(c.server_first(server_first.as_bytes()).unwrap()).unwrap();
        let mut salted = [0u8; 64];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            NonZeroU32::new(4096).unwrap(),
            salt,
            b"secret",
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA512, &salted);
        let auth = format!("n=a=3Db=2Cc,r=abc,{server_first},c=biws,r=abcdef");
        let client_key = hmac::sign(&key, b"Client Key");
        let stored = digest::digest(&digest::SHA512, client_key.as_ref());
        let sig = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, stored.as_ref()),
            auth.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(sig.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(fin, format!("c=biws,r=abcdef,p={}", STANDARD.encode(proof)));
        let server_key = hmac::sign(&key, b"Server Key");
        let server_sig = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA512, server_key.as_ref()),
            auth.as_bytes(),
        );
        let server_final = format!("v={}", STANDARD.encode(server_sig.as_ref()));
        c.server_final(server_final.as_bytes()).unwrap();
    }

    #[test]
    fn bad_server_first_messages_are_errors() {
        let cases: [(&str, ScramError); 7] = [
            ("r=xyz123,s=AAAA,i=4096", ScramError::NonceMismatch),
            ("r=abc,s=AAAA,i=4096", ScramError::NonceMismatch),
            (
                "r=abcd,s=!!!,i=4096",
                ScramError::Malformed("salt is not base64"),
            ),
            ("r=abcd,s=AAAA,i=1", ScramError::Iterations(1)),
            (
                "r=abcd,s=AAAA,i=4294967295",
                ScramError::Iterations(u32::MAX),
            ),
            ("r=abcd,s=AAAA", ScramError::Malformed("i=")),
            ("e=unknown-user", ScramError::Server("unknown-user".into())),
        ];
        for (msg, want) in cases {
            let mut c = ScramClient::new(ScramHash::Sha256, "u", "p", "abc").unwrap();
            c.client_first();
            assert_eq!(c.server_first(msg.as_bytes()), Err(want), "{msg}");
        }
        let mut c = ScramClient::new(ScramHash::Sha256, "u", "p", "abc").unwrap();
        assert_eq!(
            c.server_first(b"r=abcd,s=AAAA,i=4096"),
            Err(ScramError::OutOfOrder)
        );
        c.client_first();
        assert_eq!(
            c.server_first(&[0xff, 0xfe]),
            Err(ScramError::Malformed("not UTF-8"))
        );
    }

    #[test]
    fn server_error_in_final_message() {
        let mut c = ScramClient::new(ScramHash::Sha256, "u", "p", "abc").unwrap();
        c.client_first();
        c.server_first(b"r=abcd,s=AAAA,i=4096").unwrap();
        assert_eq!(
            c.server_final(b"e=invalid-proof"),
            Err(ScramError::Server("invalid-proof".into()))
        );
    }

    #[test]
    fn the_salted_cache_gives_the_same_proof_and_follows_the_salt() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (_, want, _) = exchange(ScramHash::Sha256, "rOprNGfwEbeRWgbNEkqO", server_first);
        let mut cache = SaltedCache::default();
        for _ in 0..2 {
            let mut c =
                ScramClient::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
                    .unwrap();
            c.client_first();
            let fin = c
                .server_first_cached(server_first.as_bytes(), &mut cache)
                .unwrap();
            assert_eq!(String::from_utf8(fin).unwrap(), want);
        }
        // Another salt: derived again, not taken from the cache.
        let mut c = ScramClient::new(ScramHash::Sha256, "user", "pencil", "abc").unwrap();
        c.client_first();
        let other = c
            .server_first_cached(b"r=abcd,s=QSXCR+Q6sek8bf92,i=4096", &mut cache)
            .unwrap();
        let mut fresh = ScramClient::new(ScramHash::Sha256, "user", "pencil", "abc").unwrap();
        fresh.client_first();
        assert_eq!(
            fresh
                .server_first(b"r=abcd,s=QSXCR+Q6sek8bf92,i=4096")
                .unwrap(),
            other
        );
    }

    #[test]
    fn nonces() {
        let a = random_nonce();
        let b = random_nonce();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(ScramClient::new(ScramHash::Sha256, "u", "p", &a).is_ok());
        assert_eq!(
            ScramClient::new(ScramHash::Sha256, "u", "p", "a,b").err(),
            Some(ScramError::BadNonce)
        );
        assert_eq!(
            ScramClient::new(ScramHash::Sha256, "u", "p", "").err(),
            Some(ScramError::BadNonce)
        );
    }
}
