//! The client side of a Kafka SASL exchange (after `SaslHandshake`, carried by
//! `SaslAuthenticate`): PLAIN (RFC 4616), SCRAM-SHA-1/256/512 (RFC 5802, RFC 7677, see
//! [`super::scram`]) and OAUTHBEARER (RFC 7628 initial client response).
//!
//! Sans-io: [`SaslClient::initial`] gives the first message; each broker answer goes to
//! [`SaslClient::on_response`], which says what to send next or that the exchange is done.

use std::fmt;

use super::scram::{ScramClient, ScramError, ScramHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha1,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    /// The name sent in `SaslHandshake` (upper case, as Kafka registers them).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// From the zilla.yaml spelling (`plain`, `scram-sha-256`, ...), case-insensitive.
    pub fn from_config(name: &str) -> Option<Mechanism> {
        [
            Mechanism::Plain,
            Mechanism::ScramSha1,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
            Mechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// `\0USER\0PASSWORD` (no authorization identity).
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// `n,,\x01auth=Bearer TOKEN\x01\x01` (RFC 7628 section 3.1, no authzid).
pub fn oauthbearer_message(token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len() + 20);
    out.extend_from_slice(b"n,,\x01auth=Bearer ");
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(b"\x01\x01");
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    Scram(ScramError),
    /// PLAIN got a challenge after its only message.
    UnexpectedChallenge,
    /// OAUTHBEARER: the server answered the token with an error (its JSON status).
    TokenRefused(String),
    /// A response after the exchange ended.
    OutOfOrder,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::Scram(e) => write!(f, "{e}"),
            SaslError::UnexpectedChallenge => write!(f, "unexpected challenge after PLAIN"),
            SaslError::TokenRefused(status) => write!(f, "token refused: {status}"),
            SaslError::OutOfOrder => write!(f, "unexpected SASL message"),
        }
    }
}

impl From<ScramError> for SaslError {
    fn from(e: ScramError) -> Self {
        SaslError::Scram(e)
    }
}

/// What to do after a broker answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes in the next `SaslAuthenticate`.
    Send(Vec<u8>),
    /// Authenticated.
    Done,
}

enum Inner {
    Plain { message: Vec<u8>, sent: bool },
    Scram(Box<ScramClient>),
    OAuth { message: Vec<u8>, state: OAuthState },
}

#[derive(PartialEq, Eq)]
enum OAuthState {
    Initial,
    Sent,
    /// The server sent an error status; we answered `\x01` and wait for its failure.
    Refused(String),
}

/// One exchange on one connection. Holds secrets; its `Debug` shows none.
pub struct SaslClient {
    mechanism: Mechanism,
    inner: Inner,
    done: bool,
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// `secret` is the password, or the token for OAUTHBEARER (whose `username` is unused).
    /// `nonce` is used by SCRAM only (see [`super::scram::random_nonce`]).
    pub fn new(
        mechanism: Mechanism,
        username: &str,
        secret: &str,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let inner = match mechanism {
            Mechanism::Plain => Inner::Plain {
                message: plain_message(username, secret),
                sent: false,
            },
            Mechanism::ScramSha1 | Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let hash = match mechanism {
                    Mechanism::ScramSha1 => ScramHash::Sha1,
                    Mechanism::ScramSha256 => ScramHash::Sha256,
                    _ => ScramHash::Sha512,
                };
                Inner::Scram(Box::new(ScramClient::new(hash, username, secret, nonce)?))
            }
            Mechanism::OAuthBearer => Inner::OAuth {
                message: oauthbearer_message(secret),
                state: OAuthState::Initial,
            },
        };
        Ok(Self {
            mechanism,
            inner,
            done: false,
        })
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The first `SaslAuthenticate` bytes.
    pub fn initial(&mut self) -> Vec<u8> {
        match &mut self.inner {
            Inner::Plain { message, sent } => {
                *sent = true;
                std::mem::take(message)
            }
            Inner::Scram(scram) => scram.client_first(),
            Inner::OAuth { message, state } => {
                *state = OAuthState::Sent;
                std::mem::take(message)
            }
        }
    }

    /// The bytes of a successful (`error_code` 0) `SaslAuthenticate` response.
    pub fn on_response(&mut self, bytes: &[u8]) -> Result<Step, SaslError> {
        if self.done {
            return Err(SaslError::OutOfOrder);
        }
        let step = match &mut self.inner {
            Inner::Plain { sent, .. } => {
                if !*sent {
                    return Err(SaslError::OutOfOrder);
                }
                if !bytes.is_empty() {
                    return Err(SaslError::UnexpectedChallenge);
                }
                Step::Done
            }
            Inner::Scram(scram) => {
                if scram.is_done() {
                    return Err(SaslError::OutOfOrder);
                }
                match scram.server_first(bytes) {
                    Ok(final_message) => Step::Send(final_message),
                    Err(ScramError::OutOfOrder) => {
                        scram.server_final(bytes)?;
                        Step::Done
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Inner::OAuth { state, .. } => match std::mem::replace(state, OAuthState::Initial) {
                OAuthState::Sent if bytes.is_empty() => Step::Done,
                OAuthState::Sent => {
                    // RFC 7628 3.2.2: an error status; the client answers %x01 and the server
                    // then fails the exchange.
                    *state = OAuthState::Refused(String::from_utf8_lossy(bytes).into_owned());
                    return Ok(Step::Send(vec![0x01]));
                }
                OAuthState::Refused(status) => return Err(SaslError::TokenRefused(status)),
                OAuthState::Initial => return Err(SaslError::OutOfOrder),
            },
        };
        if step == Step::Done {
            self.done = true;
        }
        Ok(step)
    }

    /// The server status an OAUTHBEARER exchange was refused with, if any (to explain the
    /// broker's failure code).
    pub fn refusal(&self) -> Option<&str> {
        match &self.inner {
            Inner::OAuth {
                state: OAuthState::Refused(status),
                ..
            } => Some(status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes() {
        let mut c = SaslClient::new(Mechanism::Plain, "alice", "s3cret", "").unwrap();
        assert_eq!(c.initial(), b"\0alice\0s3cret");
        assert_eq!(c.on_response(b""), Ok(Step::Done));
        assert_eq!(c.on_response(b""), Err(SaslError::OutOfOrder));

        let mut c = SaslClient::new(Mechanism::Plain, "a", "b", "").unwrap();
        c.initial();
        assert_eq!(c.on_response(b"x"), Err(SaslError::UnexpectedChallenge));
        assert_eq!(plain_message("", ""), b"\0\0");
    }

    #[test]
    fn oauthbearer_bytes() {
        let mut c = SaslClient::new(Mechanism::OAuthBearer, "", "eyJ.tok.en", "").unwrap();
        assert_eq!(c.initial(), b"n,,\x01auth=Bearer eyJ.tok.en\x01\x01");
        assert_eq!(c.on_response(b""), Ok(Step::Done));
    }

    #[test]
    fn oauthbearer_error_status_is_answered_then_reported() {
        let mut c = SaslClient::new(Mechanism::OAuthBearer, "", "t", "").unwrap();
        c.initial();
        let status = br#"{"status":"invalid_token"}"#;
        assert_eq!(c.on_response(status), Ok(Step::Send(vec![1])));
        assert_eq!(c.refusal(), Some(r#"{"status":"invalid_token"}"#));
        assert_eq!(
            c.on_response(b""),
            Err(SaslError::TokenRefused(
                r#"{"status":"invalid_token"}"#.into()
            ))
        );
    }

    #[test]
    fn scram_through_the_generic_client() {
        let mut c = SaslClient::new(
            Mechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap();
        assert_eq!(c.initial(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let Ok(Step::Send(fin)) = c.on_response(server_first) else {
            panic!("expected client-final");
        };
        assert!(fin.ends_with(b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        assert_eq!(
            c.on_response(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(Step::Done)
        );
        assert_eq!(c.on_response(b"v="), Err(SaslError::OutOfOrder));
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            Mechanism::from_config("scram-sha-512"),
            Some(Mechanism::ScramSha512)
        );
        assert_eq!(Mechanism::from_config("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(
            Mechanism::from_config("oauthbearer"),
            Some(Mechanism::OAuthBearer)
        );
        assert_eq!(Mechanism::from_config("gssapi"), None);
        assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
    }
}
