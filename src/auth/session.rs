//! A request's authorization: credentials taken from the request as the http binding's
//! `authorization` says (cookie, header, then query), verified by the guard, turned into a
//! session holding what routes and templates need. Tokens are never logged.

use std::sync::Arc;

use proto::http1::query_param;
use proto::jwt::{verify, Expect, MAX_PAYLOAD};

use super::keys::Keys;
use crate::config::pattern::Guarded;
use crate::config::plan::{Authorization, CredentialSource, Guard};
use crate::head::Head;

/// A verified token's identity, expiry, roles and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub guard: String,
    pub identity: Option<String>,
    /// `exp` in seconds since the epoch; `None` never expires.
    pub exp: Option<i64>,
    pub roles: Vec<String>,
    pub attributes: Vec<(String, String)>,
    /// The guard's `challenge` lead in seconds.
    pub challenge: Option<u64>,
}

/// What the request's credentials amount to.
pub enum Credentials {
    /// The http binding has no `authorization`.
    NotAsked,
    /// No credentials in the request.
    Missing,
    /// Credentials present but refused (bad signature, expired, wrong issuer, …).
    Refused,
    Valid(Session),
}

impl Credentials {
    pub fn session(&self) -> Option<&Session> {
        match self {
            Credentials::Valid(s) => Some(s),
            _ => None,
        }
    }
}

pub fn now_secs() -> i64 {
    crate::clock::wall_secs()
}

/// Takes and verifies the request's credentials.
pub fn authenticate(auth: Option<&Authorization>, keys: &Keys, req: &dyn Head) -> Credentials {
    let Some(auth) = auth else {
        return Credentials::NotAsked;
    };
    let Some(token) = auth
        .credentials
        .iter()
        .find_map(|source| credential(source, req))
    else {
        return Credentials::Missing;
    };
    match verify_token(&auth.guard, keys, token.as_bytes()) {
        Some(session) => Credentials::Valid(session),
        None => Credentials::Refused,
    }
}

/// Verifies a token with `guard` (also used for challenge responses).
pub fn verify_token(guard: &Guard, keys: &Keys, token: &[u8]) -> Option<Session> {
    let jwt = guard.jwt();
    let set = keys.guard(&guard.name)?;
    let expect = Expect {
        issuer: jwt.issuer.as_deref(),
        audience: jwt.audience.as_deref(),
        leeway_secs: 0,
    };
    let mut scratch = [0u8; MAX_PAYLOAD];
    let claims = match verify(token, &set, now_secs(), &expect, &mut scratch) {
        Ok(c) => c,
        Err(e) => {
            crate::debug!("guard {}: token refused: {e}", guard.name);
            return None;
        }
    };
    Some(Session {
        guard: guard.name.clone(),
        identity: claims.identity(&jwt.identity_claim).map(|v| v.to_string()),
        exp: claims.exp(),
        roles: claims
            .roles(&jwt.roles_claim)
            .map(|r| r.to_cow().into_owned())
            .collect(),
        attributes: jwt
            .attributes
            .iter()
            .filter_map(|(name, path)| Some((name.clone(), claims.attribute(path)?.to_string())))
            .collect(),
        challenge: jwt.challenge,
    })
}

fn credential(source: &CredentialSource, req: &dyn Head) -> Option<String> {
    match source {
        CredentialSource::Header { name, .. } => {
            let value = std::str::from_utf8(req.header(name)?).ok()?;
            source.token(value).map(str::to_owned)
        }
        CredentialSource::Query { name, .. } => {
            let value = query_param(req.query()?, name)?;
            source.token(value).map(str::to_owned)
        }
        CredentialSource::Cookie { name, .. } => {
            let cookies = std::str::from_utf8(req.header("cookie")?).ok()?;
            cookies.split(';').find_map(|c| {
                let (n, v) = c.trim().split_once('=')?;
                (n == name)
                    .then(|| source.token(v))
                    .flatten()
                    .map(str::to_owned)
            })
        }
    }
}

/// Whether `session` satisfies every guard of a route: each listed role (with `${method}` and
/// `${path}` substituted) is one of the session's.
pub fn permits(
    session: Option<&Session>,
    guarded: &[(Arc<Guard>, Vec<String>)],
    method: &str,
    path: &str,
) -> bool {
    guarded.iter().all(|(guard, roles)| {
        session.is_some_and(|s| {
            s.guard == guard.name
                && roles.iter().all(|role| {
                    let role = role.replace("${method}", method).replace("${path}", path);
                    s.roles.contains(&role)
                })
        })
    })
}

impl Guarded for Session {
    fn identity(&self, guard: &str) -> Option<&str> {
        (guard == self.guard)
            .then_some(self.identity.as_deref())
            .flatten()
    }
    fn attribute(&self, guard: &str, name: &str) -> Option<&str> {
        if guard != self.guard {
            return None;
        }
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
