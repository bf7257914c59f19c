//! Request routing through the http binding: its `when` header conditions, its
//! `access-control` policy, then the exit (an SSE service or static files).

use std::sync::Arc;

use super::head::Head;
use crate::auth::session::{permits, Credentials};

use crate::config::plan::{AccessControl, HttpExit, HttpRoute, HttpService};

/// What the http binding decided for one request.
pub enum Routed {
    /// No route matches: 404.
    NotFound,
    /// A guarded route matches but the request has no credentials: 401.
    Unauthorized,
    /// CORS refused the origin (or method / headers): 403.
    Forbidden,
    /// A CORS preflight, answered 204 with these headers.
    Preflight(Vec<(&'static str, Vec<u8>)>),
    /// Continue to the exit, adding these CORS headers to its response.
    Exit(Exit, Vec<(&'static str, Vec<u8>)>),
}

pub enum Exit {
    Sse(Arc<crate::config::plan::SseService>),
    Files(Arc<crate::config::plan::FileService>),
}

fn pseudo<'r>(req: &'r dyn Head, name: &str) -> Option<&'r str> {
    match name {
        ":path" => Some(req.target()),
        ":method" => Some(req.method()),
        ":scheme" => Some(req.scheme()),
        ":authority" => req.authority().and_then(|h| std::str::from_utf8(h).ok()),
        _ => req.header(name).and_then(|h| std::str::from_utf8(h).ok()),
    }
}

/// Routes through the http binding. The first route whose condition matches and whose guards
/// the request's credentials satisfy wins; a matching route refused for lack of credentials is
/// 401, for refused or insufficient ones 403 (reference 2.8).
pub fn route(http: &HttpService, req: &dyn Head, creds: &Credentials) -> Routed {
    let route = match first_permitted(http, req, creds) {
        Ok(route) => route,
        Err(refused) => return refused,
    };
    let exit = match &route.exit {
        HttpExit::Sse(s) => Exit::Sse(s.clone()),
        HttpExit::Files(f) => Exit::Files(f.clone()),
    };
    let origin = req.header("origin");
    match &http.access_control {
        AccessControl::SameOrigin => {
            if let Some(origin) = origin {
                if !same_origin(origin, req.scheme(), req.authority()) {
                    return Routed::Forbidden;
                }
            }
            Routed::Exit(exit, Vec::new())
        }
        AccessControl::CrossOrigin {
            origins,
            methods,
            headers,
            credentials,
            max_age,
            expose,
        } => {
            let Some(origin) = origin else {
                return Routed::Exit(exit, Vec::new());
            };
            let origin_allowed = origins
                .as_ref()
                .is_none_or(|list| list.iter().any(|o| o.as_bytes() == origin));
            if !origin_allowed {
                return Routed::Forbidden;
            }
            let echo = origins.is_some() || *credentials;
            let mut out = allow_origin(origin, echo, *credentials);
            if req.method() == "OPTIONS" {
                if let Some(m) = req.header("access-control-request-method") {
                    return preflight(req, m, methods, headers, *max_age, out);
                }
            }
            if let Some(list) = expose.as_ref().filter(|list| !list.is_empty()) {
                out.push(("Access-Control-Expose-Headers", list.join(",").into_bytes()));
            }
            Routed::Exit(exit, out)
        }
    }
}

/// The first route whose condition matches and whose guards permit the request; else what
/// the request is answered.
fn first_permitted<'h>(
    http: &'h HttpService,
    req: &dyn Head,
    creds: &Credentials,
) -> Result<&'h HttpRoute, Routed> {
    let mut refused = false;
    let found = http.routes.iter().find(|r| {
        let matches = r.when.is_empty()
            || r.when.iter().any(|c| {
                c.headers
                    .iter()
                    .all(|(name, glob)| pseudo(req, name).is_some_and(|v| glob.matches(v)))
            });
        if !matches {
            return false;
        }
        let permitted = permits(creds.session(), &r.guarded, req.method(), req.path());
        refused |= !permitted;
        permitted
    });
    found.ok_or(match (refused, creds) {
        (false, _) => Routed::NotFound,
        (true, Credentials::Missing | Credentials::NotAsked) => Routed::Unauthorized,
        (true, _) => Routed::Forbidden,
    })
}

/// `Access-Control-Allow-Origin` (the origin echoed, or `*`), with credentials and `Vary`.
fn allow_origin(origin: &[u8], echo: bool, credentials: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    out.push((
        "Access-Control-Allow-Origin",
        if echo { origin.to_vec() } else { b"*".to_vec() },
    ));
    if credentials {
        out.push(("Access-Control-Allow-Credentials", b"true".to_vec()));
    }
    if echo {
        out.push(("Vary", b"origin".to_vec()));
    }
    out
}

/// A CORS preflight for `method`: its method and headers checked against the allowed ones.
fn preflight(
    req: &dyn Head,
    method: &[u8],
    methods: &Option<Vec<String>>,
    headers: &Option<Vec<String>>,
    max_age: Option<u32>,
    mut out: Vec<(&'static str, Vec<u8>)>,
) -> Routed {
    let ok = methods.as_ref().is_none_or(|list| {
        list.iter()
            .any(|x| x.as_bytes().eq_ignore_ascii_case(method))
    });
    if !ok {
        return Routed::Forbidden;
    }
    out.push(("Access-Control-Allow-Methods", method.to_vec()));
    if let Some(h) = req.header("access-control-request-headers") {
        let ok = headers.as_ref().is_none_or(|list| {
            h.split(|&b| b == b',').all(|one| {
                let one = one.trim_ascii();
                one.is_empty() || list.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(one))
            })
        });
        if !ok {
            return Routed::Forbidden;
        }
        out.push(("Access-Control-Allow-Headers", h.to_vec()));
    }
    if let Some(age) = max_age {
        out.push(("Access-Control-Max-Age", age.to_string().into_bytes()));
    }
    Routed::Preflight(out)
}

/// `Origin` equals scheme + `://` + authority (default ports 80/443 made explicit on both sides).
fn same_origin(origin: &[u8], scheme: &str, host: Option<&[u8]>) -> bool {
    let Some(host) = host else { return false };
    let Some(rest) = origin
        .strip_prefix(scheme.as_bytes())
        .and_then(|r| r.strip_prefix(b"://"))
    else {
        return false;
    };
    let default_port: &[u8] = if scheme == "https" { b":443" } else { b":80" };
    let norm = |h: &[u8]| -> Vec<u8> {
        let mut v = h.to_ascii_lowercase();
        if !v.contains(&b':') || v.ends_with(b"]") {
            v.extend_from_slice(default_port);
        }
        v
    };
    norm(rest) == norm(host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_origin_with_implicit_port() {
        use super::same_origin;
        assert!(same_origin(
            b"http://localhost:8080",
            "http",
            Some(b"localhost:8080")
        ));
        assert!(same_origin(
            b"http://example.com",
            "http",
            Some(b"example.com:80")
        ));
        assert!(same_origin(
            b"https://example.com",
            "https",
            Some(b"example.com:443")
        ));
        assert!(!same_origin(
            b"http://evil.com",
            "http",
            Some(b"example.com")
        ));
        assert!(!same_origin(
            b"https://example.com",
            "http",
            Some(b"example.com")
        ));
    }
}
