//! What to answer a request, whatever HTTP version carried it: routing through the http binding
//! (conditions, CORS), then static files or an SSE stream. Synchronous; the version-specific
//! connection code serializes the answer.

use super::files::{answer, FileAnswer};
use super::head::Head;
use super::route::{route, Exit, Routed};
use super::sse::{plan_sse, Reject, SsePlan};
use crate::auth::session::{authenticate, Credentials, Session};
use crate::config::plan::HttpService;
use crate::fanout::hub::SharedHub;

/// CORS response headers to add.
pub type Cors = Vec<(&'static str, Vec<u8>)>;

pub enum Action {
    /// A status with an empty body.
    Status(u16, Cors),
    /// A static file, or `304` when `not_modified`.
    File {
        file: std::sync::Arc<super::file_table::StaticFile>,
        head_only: bool,
        not_modified: bool,
        cors: Cors,
    },
    Sse(SsePlan, Cors),
    /// A challenge response (`POST`, `content-type: application/x-challenge-response`): always
    /// answered 204; on HTTP/2 a valid token re-authorizes the connection's streams.
    Challenge(Option<Session>),
}

const CHALLENGE_RESPONSE: &[u8] = b"application/x-challenge-response";

/// Decides the answer; `version` indexes `metrics::HTTP_VERSIONS` (0 HTTP/1.1, 1 HTTP/2).
pub fn decide(http: &HttpService, req: &dyn Head, hub: &SharedHub, version: usize) -> Action {
    let keys = hub.borrow().keys.clone();
    let creds = authenticate(http.authorization.as_ref(), &keys, req);
    if http.authorization.is_some()
        && req.method() == "POST"
        && req
            .header("content-type")
            .is_some_and(|v| v.eq_ignore_ascii_case(CHALLENGE_RESPONSE))
    {
        return Action::Challenge(match creds {
            Credentials::Valid(s) => Some(s),
            _ => None,
        });
    }
    match route(http, req, &creds) {
        Routed::NotFound => Action::Status(404, Vec::new()),
        Routed::Unauthorized => Action::Status(401, Vec::new()),
        Routed::Forbidden => Action::Status(403, Vec::new()),
        Routed::Preflight(cors) => Action::Status(204, cors),
        Routed::Exit(Exit::Files(svc), cors) => match answer(&svc, req) {
            FileAnswer::Status(code) => Action::Status(code, cors),
            FileAnswer::Ok {
                file,
                head_only,
                not_modified,
            } => Action::File {
                file,
                head_only,
                not_modified,
                cors,
            },
        },
        Routed::Exit(Exit::Sse(svc), cors) => {
            let clusters: Vec<String> = hub
                .borrow()
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect();
            match plan_sse(&svc, req, &clusters, creds.session()) {
                Ok(mut plan) => {
                    if plan.malformed_id {
                        hub.borrow().metrics.malformed_ids.inc();
                    }
                    plan.open.version = version;
                    if version != 0 {
                        plan.open.chunked = false; // HTTP/2 frames the body itself
                    }
                    Action::Sse(plan, cors)
                }
                Err(Reject(code)) => Action::Status(code, cors),
            }
        }
    }
}
