//! An SSE request through the sse and sse-kafka bindings: method, last event id, route match,
//! topic and filter resolution. Synchronous and borrowing the request; the result is owned so
//! the connection can await the fan-out afterwards.

use proto::event_id::{decode_last_event_id, MAX_LAST_EVENT_ID};
use proto::http1::{percent_decode_form, query_param};

use super::head::Head;

use crate::auth::session::{permits, Session};
use crate::config::pattern::{Guarded, NoGuard, Params};
use crate::config::plan::{SseKafkaRoute, SseService};
use crate::fanout::filter::Filter;
use crate::fanout::hub::OpenRequest;
use crate::fanout::view::Start;

/// The answer when a request cannot become a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject(pub u16);

pub struct SsePlan {
    pub open: OpenRequest,
    /// The Last-Event-ID could not be decoded: the stream replays from the earliest record.
    pub malformed_id: bool,
    /// `Accept` asked for `ext=timestamp` (content type changes; sse-kafka sends no timestamps).
    pub timestamp_ext: bool,
    /// `Accept` names `text/event-stream`: a refusal is answered `200` with `retry:` (shed.rs).
    pub accepts_sse: bool,
}

/// Resolves an SSE request; `clusters` are the hub's cluster names in plan order.
pub fn plan_sse(
    svc: &SseService,
    req: &dyn Head,
    clusters: &[String],
    session: Option<&Session>,
) -> Result<SsePlan, Reject> {
    if req.method() != "GET" {
        return Err(Reject(405));
    }
    let last_id = last_event_id(req)?;
    let (route, params) = match_route(svc, req.path(), session).ok_or(Reject(404))?;
    let guard: &dyn Guarded = match session {
        Some(s) => s,
        None => &NoGuard,
    };
    let topic = route.topic.resolve_to_string(&params, guard);
    if topic.is_empty() {
        return Err(Reject(404));
    }
    let cluster = &route.cluster;
    if !cluster.allowed_topics.is_empty()
        && !cluster.allowed_topics.iter().any(|g| g.matches(&topic))
    {
        return Err(Reject(404));
    }
    let Some(cluster_index) = clusters.iter().position(|c| *c == cluster.binding) else {
        return Err(Reject(404));
    };
    let filters = resolve_filters(route, &params, guard);
    let (start, malformed_id) = match last_id {
        // An event id wins over `since`; a `since` that is not a time is a bad request.
        None => {
            let since = super::since::since_param(req.query()).map_err(|()| Reject(400))?;
            (since.map_or(Start::Default, Start::Since), false)
        }
        Some(id) => start_after(&id),
    };
    let timestamp_ext = req
        .header("accept")
        .is_some_and(|a| a.windows(13).any(|w| w == b"ext=timestamp"));
    Ok(SsePlan {
        open: OpenRequest {
            cluster: cluster_index,
            default_offset: cluster.default_offset(&topic),
            topic,
            filters,
            template: route.event_id,
            start,
            chunked: !req.wants_close(),
            version: 0,
            session: session.cloned(),
            retry: svc.retry,
        },
        malformed_id,
        timestamp_ext,
        accepts_sse: super::shed::accepts_event_stream(req),
    })
}

/// The first sse route and then the first sse-kafka route that match `path` and whose guards
/// permit the session (a route refused is skipped like one that does not match), with the
/// path's parameters.
fn match_route<'a>(
    svc: &'a SseService,
    path: &'a str,
    session: Option<&Session>,
) -> Option<(&'a SseKafkaRoute, Params<'a>)> {
    let allowed = |guarded| permits(session, guarded, "GET", path);
    let sse_route = svc.routes.iter().find(|r| {
        (r.when.is_empty() || r.when.iter().any(|g| g.matches(path))) && allowed(&r.guarded)
    })?;
    let mut params = Params::new();
    let route = sse_route.exit.routes.iter().find(|r| {
        if !allowed(&r.guarded) {
            return false;
        }
        if r.when.is_empty() {
            params.clear();
            return true;
        }
        r.when.iter().any(|p| {
            params.clear();
            p.match_path(path, &mut params)
        })
    })?;
    Some((route, params))
}

/// The route's filters with the path's parameters and the guard's identity filled in.
fn resolve_filters(route: &SseKafkaRoute, params: &Params, guard: &dyn Guarded) -> Vec<Filter> {
    route
        .filters
        .iter()
        .map(|f| Filter {
            key: f
                .key
                .as_ref()
                .map(|k| k.resolve_to_string(params, guard).into_bytes()),
            headers: f
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_bytes().to_vec(),
                        v.resolve_to_string(params, guard).into_bytes(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Where a stream resumed by `id` starts, and whether the id was malformed (then it replays
/// from the earliest record).
fn start_after(id: &[u8]) -> (Start, bool) {
    let mut ids = Vec::new();
    match decode_last_event_id(id, &mut ids) {
        Ok(()) => (Start::Ids(ids), false),
        Err(e) => {
            crate::debug!("malformed last event id ({e:?}): replaying from earliest");
            (Start::Historical, true)
        }
    }
}

/// `Last-Event-ID` header, else the `lastEventId` query parameter (percent-decoded only when it
/// contains `%`, as the reference); over 254 bytes → 400.
fn last_event_id(req: &dyn Head) -> Result<Option<Vec<u8>>, Reject> {
    let id = match req.header("last-event-id") {
        Some(h) => h.to_vec(),
        None => match req.query().and_then(|q| query_param(q, "lastEventId")) {
            Some(v) if v.contains('%') => {
                let mut out = Vec::with_capacity(v.len());
                percent_decode_form(v, &mut out);
                out
            }
            Some(v) => v.as_bytes().to_vec(),
            None => return Ok(None),
        },
    };
    if id.len() > MAX_LAST_EVENT_ID {
        return Err(Reject(400));
    }
    Ok(Some(id))
}
