//! Token verification and borrowing access to the verified claims.

use super::json::{self, Elements, JsonStr, Lookup, Value};
use super::jwk::KeySet;
use super::token;
use super::{Alg, JwtError, MAX_HEADER, MAX_PAYLOAD, MAX_SIGNATURE};

/// What the registered claims must satisfy besides the signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expect<'a> {
    /// When set, `iss` must be a string equal to it.
    pub issuer: Option<&'a str>,
    /// When set, `aud` must be a string equal to it or an array containing it.
    pub audience: Option<&'a str>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: i64,
}

/// Verifies a compact JWS token and returns its claims, decoded into `scratch`.
///
/// Checks, in order: size and shape, header (`alg` a supported name, never `none`; no
/// `crit`), key selection by `kid` (or, without `kid`, the one key fitting `alg`), payload
/// decoding, signature, payload JSON, then `exp` (expired once `now_secs >= exp + leeway`),
/// `nbf` (valid from `nbf - leeway`), `iss` and `aud` as [`Expect`] asks. A token without
/// `exp` never expires. Fractional `exp` is rounded down and `nbf` up.
///
/// Allocates nothing: header and signature are decoded on the stack.
pub fn verify<'s>(
    token: &[u8],
    keys: &KeySet,
    now_secs: i64,
    expect: &Expect<'_>,
    scratch: &'s mut [u8; MAX_PAYLOAD],
) -> Result<Claims<'s>, JwtError> {
    let segments = token::split(token)?;

    let mut header_buf = [0u8; MAX_HEADER];
    let header = token::decode(segments.header, &mut header_buf, JwtError::TooLarge)?;
    let header = std::str::from_utf8(header).map_err(|_| JwtError::Malformed)?;
    let (_, [alg, crit, typ, kid]) = json::scan_object(header, ["alg", "crit", "typ", "kid"])
        .map_err(|_| JwtError::Malformed)?;
    let alg = match alg {
        Lookup::Found(Value::Str(name)) => parse_alg(name)?,
        _ => return Err(JwtError::Malformed),
    };
    if !matches!(crit, Lookup::Missing)
        || !matches!(typ, Lookup::Missing | Lookup::Found(Value::Str(_)))
    {
        return Err(JwtError::Malformed);
    }
    let kid = match kid {
        Lookup::Missing => None,
        Lookup::Found(Value::Str(kid)) => Some(kid),
        _ => return Err(JwtError::Malformed),
    };
    let key = keys.select(kid, alg)?;

    let payload_len = token::decode(segments.payload, scratch, JwtError::TooLarge)?.len();
    let mut signature_buf = [0u8; MAX_SIGNATURE];
    let signature = token::decode(segments.signature, &mut signature_buf, JwtError::Malformed)?;
    if !key.verify(alg, segments.signing_input, signature) {
        return Err(JwtError::BadSignature);
    }

    let payload = scratch.get(..payload_len).ok_or(JwtError::Malformed)?;
    let payload = std::str::from_utf8(payload).map_err(|_| JwtError::Malformed)?;
    let (payload, [exp, nbf, iss, aud]) = json::scan_object(payload, ["exp", "nbf", "iss", "aud"])
        .map_err(|_| JwtError::Malformed)?;
    let exp = numeric_date(exp, false)?;
    let nbf = numeric_date(nbf, true)?;
    let leeway = expect.leeway_secs;
    if exp.is_some_and(|exp| now_secs >= exp.saturating_add(leeway)) {
        return Err(JwtError::Expired);
    }
    if nbf.is_some_and(|nbf| now_secs < nbf.saturating_sub(leeway)) {
        return Err(JwtError::NotYetValid);
    }
    if let Some(issuer) = expect.issuer {
        match iss {
            Lookup::Found(Value::Str(iss)) if iss.eq_str(issuer) => {}
            _ => return Err(JwtError::WrongIssuer),
        }
    }
    if let Some(audience) = expect.audience {
        let accepted = match aud {
            Lookup::Found(Value::Str(aud)) => aud.eq_str(audience),
            Lookup::Found(Value::Array(auds)) => json::elements(auds).any(|a| a.eq_str(audience)),
            _ => false,
        };
        if !accepted {
            return Err(JwtError::WrongAudience);
        }
    }
    Ok(Claims {
        payload,
        alg,
        exp,
        nbf,
    })
}

/// The algorithm named by a header's `alg`.
fn parse_alg(name: JsonStr<'_>) -> Result<Alg, JwtError> {
    if name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .eq("none".chars())
    {
        return Err(JwtError::AlgNone);
    }
    Alg::ALL
        .into_iter()
        .find(|a| name.eq_str(a.name()))
        .ok_or(JwtError::UnsupportedAlg)
}

/// A NumericDate claim in whole seconds: absent is `None`; anything but one number is
/// [`JwtError::Malformed`]. Fractions round down, or up when `round_up`; values beyond
/// `i64` saturate.
fn numeric_date(claim: Lookup<'_>, round_up: bool) -> Result<Option<i64>, JwtError> {
    match claim {
        Lookup::Missing => Ok(None),
        Lookup::Found(Value::Num(text)) => Ok(Some(seconds(text, round_up))),
        _ => Err(JwtError::Malformed),
    }
}

fn seconds(number: &str, round_up: bool) -> i64 {
    if let Ok(whole) = number.parse::<i64>() {
        return whole;
    }
    // A JSON number always parses as f64 (possibly infinite); `as` saturates.
    let value: f64 = number.parse().unwrap_or(0.0);
    if round_up {
        value.ceil() as i64
    } else {
        value.floor() as i64
    }
}

/// The claims of a verified token, borrowing its decoded payload.
///
/// Paths are dotted (`realm_access.roles`): each segment names a member of the object the
/// previous one found; when that walk finds nothing, a member named by the whole path is
/// tried (`https://example.com/roles`). A name that appears twice in one object is
/// ambiguous and reads as absent. Strings are [`JsonStr`]s: borrowed, escapes decoded on
/// comparison, display or [`JsonStr::to_cow`].
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    payload: &'a str,
    alg: Alg,
    exp: Option<i64>,
    nbf: Option<i64>,
}

impl<'a> Claims<'a> {
    /// The payload JSON text.
    pub fn json(&self) -> &'a str {
        self.payload
    }

    /// The algorithm the token was verified with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// `exp`, in whole seconds (rounded down).
    pub fn exp(&self) -> Option<i64> {
        self.exp
    }

    /// `nbf`, in whole seconds (rounded up).
    pub fn nbf(&self) -> Option<i64> {
        self.nbf
    }

    /// `iat`, in whole seconds, when it is a number.
    pub fn iat(&self) -> Option<i64> {
        numeric_date(json::find(self.payload, "iat"), false)
            .ok()
            .flatten()
    }

    /// `sub`, when it is a string.
    pub fn sub(&self) -> Option<JsonStr<'a>> {
        self.claim_str("sub")
    }

    /// `iss`, when it is a string.
    pub fn iss(&self) -> Option<JsonStr<'a>> {
        self.claim_str("iss")
    }

    /// The value at a dotted path.
    pub fn get(&self, path: &str) -> Option<Value<'a>> {
        json::find_path(self.payload, path)
    }

    /// The string at a dotted path.
    pub fn claim_str(&self, path: &str) -> Option<JsonStr<'a>> {
        self.get(path)?.as_json_str()
    }

    /// The roles at a dotted path: the strings of a JSON array (other elements are
    /// skipped), or the words of a space-separated string (split at literal spaces; an
    /// escaped `\u0020` does not split). Empty when the claim is absent or of another type.
    pub fn roles(&self, path: &str) -> Roles<'a> {
        let inner = match self.get(path) {
            Some(Value::Array(array)) => RolesInner::Array(json::elements(array)),
            Some(Value::Str(s)) => RolesInner::Words(s.words()),
            _ => RolesInner::Empty,
        };
        Roles { inner }
    }

    /// True when every role in `required` is among [`Claims::roles`] at `path` (always
    /// true for no required roles). Used for route `guarded` roles and, with the previous
    /// token's roles, for the "not narrower" rule of re-authorization.
    pub fn has_roles<S: AsRef<str>>(&self, path: &str, required: &[S]) -> bool {
        required
            .iter()
            .all(|want| self.roles(path).any(|role| role.eq_str(want.as_ref())))
    }

    /// The identity: the claim at `claim` (the guard's `identity` option, default `sub`)
    /// when it is a string or a number. Displays as the decoded string or the number text.
    pub fn identity(&self, claim: &str) -> Option<Value<'a>> {
        self.get(claim)
            .filter(|v| matches!(v, Value::Str(_) | Value::Num(_)))
    }

    /// An attribute: the value at `path` unless absent or null. Displays stringified:
    /// strings decoded, other values as their JSON text.
    pub fn attribute(&self, path: &str) -> Option<Value<'a>> {
        self.get(path).filter(|v| !matches!(v, Value::Null))
    }
}

/// Iterator over role strings; see [`Claims::roles`].
#[derive(Debug, Clone)]
pub struct Roles<'a> {
    inner: RolesInner<'a>,
}

#[derive(Debug, Clone)]
enum RolesInner<'a> {
    Empty,
    Array(Elements<'a>),
    Words(json::Words<'a>),
}

impl<'a> Iterator for Roles<'a> {
    type Item = JsonStr<'a>;

    fn next(&mut self) -> Option<JsonStr<'a>> {
        match &mut self.inner {
            RolesInner::Empty => None,
            RolesInner::Array(elements) => elements.find_map(|v| v.as_json_str()),
            RolesInner::Words(words) => words.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates() {
        assert_eq!(seconds("1700000000", false), 1_700_000_000);
        assert_eq!(seconds("-5", true), -5);
        assert_eq!(seconds("1.5", false), 1);
        assert_eq!(seconds("1.5", true), 2);
        assert_eq!(seconds("-1.5", false), -2);
        assert_eq!(seconds("1.7e9", false), 1_700_000_000);
        assert_eq!(seconds("1e400", false), i64::MAX);
        assert_eq!(seconds("-1e400", true), i64::MIN);
        assert_eq!(seconds("99999999999999999999", false), i64::MAX);
        let obj = json::parse_object(r#"{"a":1,"b":"1","c":2,"c":3}"#).unwrap();
        let date = |name| numeric_date(json::find(obj, name), false);
        assert_eq!(date("a"), Ok(Some(1)));
        assert_eq!(date("x"), Ok(None));
        assert_eq!(date("b"), Err(JwtError::Malformed));
        assert_eq!(date("c"), Err(JwtError::Malformed));
    }

    fn alg(text: &str) -> Result<Alg, JwtError> {
        parse_alg(json::parse_document(text).unwrap().as_json_str().unwrap())
    }

    #[test]
    fn alg_names() {
        assert_eq!(alg(r#""RS256""#), Ok(Alg::Rs256));
        assert_eq!(alg(r#""\u0045S384""#), Ok(Alg::Es384));
        for none in [r#""none""#, r#""NONE""#, r#""nOnE""#, r#""\u006eone""#] {
            assert_eq!(alg(none), Err(JwtError::AlgNone), "{none}");
        }
        for other in [
            r#""rs256""#,
            r#""ES512""#,
            r#""EdDSA""#,
            r#""""#,
            r#""none ""#,
        ] {
            assert_eq!(alg(other), Err(JwtError::UnsupportedAlg), "{other}");
        }
    }

    fn claims(payload: &str) -> Claims<'_> {
        Claims {
            payload: json::parse_object(payload).unwrap(),
            alg: Alg::Hs256,
            exp: None,
            nbf: None,
        }
    }

    #[test]
    fn roles_from_arrays_and_strings() {
        let c = claims(
            r#"{"scope":"read  write a\u0020b","realm_access":{"roles":["admin",1,"user"]},
               "n":5,"esc":["\u0061dmin"]}"#,
        );
        let words: Vec<String> = c.roles("scope").map(|r| r.to_string()).collect();
        assert_eq!(words, ["read", "write", "a b"]);
        let array: Vec<String> = c
            .roles("realm_access.roles")
            .map(|r| r.to_string())
            .collect();
        assert_eq!(array, ["admin", "user"]);
        assert_eq!(c.roles("n").count(), 0);
        assert_eq!(c.roles("missing").count(), 0);
        assert!(c.has_roles("scope", &["write", "read"]));
        assert!(!c.has_roles("scope", &["write", "admin"]));
        assert!(c.has_roles("realm_access.roles", &["user".to_owned()]));
        assert!(c.has_roles("esc", &["admin"]));
        assert!(c.has_roles::<&str>("missing", &[]));
        assert!(!c.has_roles("missing", &["a"]));
    }

    #[test]
    fn identity_and_attributes() {
        let c = claims(
            r#"{"sub":"al\u00efce","uid":42,"obj":{"email":"a@b"},"nil":null,"t":true,
               "arr":["x"]}"#,
        );
        assert_eq!(c.sub().unwrap().to_string(), "alïce");
        assert_eq!(c.identity("sub").unwrap().to_string(), "alïce");
        assert!(c.identity("sub").unwrap().eq_str("alïce"));
        assert_eq!(c.identity("uid").unwrap().to_string(), "42");
        assert!(c.identity("obj").is_none());
        assert!(c.identity("t").is_none());
        assert!(c.identity("missing").is_none());
        assert_eq!(c.attribute("obj.email").unwrap().to_string(), "a@b");
        assert_eq!(c.attribute("t").unwrap().to_string(), "true");
        assert_eq!(c.attribute("arr").unwrap().to_string(), r#"["x"]"#);
        assert!(c.attribute("nil").is_none());
        assert_eq!(c.claim_str("obj.email").unwrap().as_str(), Some("a@b"));
        assert!(c.claim_str("uid").is_none());
    }
}
