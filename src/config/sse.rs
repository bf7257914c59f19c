//! `sse` server and `sse-kafka` proxy bindings.

use std::sync::Arc;

use super::loader::{Kind, Loader, RouteSpec};
use super::pattern::{Glob, PathPattern};
use super::plan::{
    FilterTemplate, IdTemplate, SseKafkaRoute, SseKafkaService, SseRoute, SseService,
};
use super::yaml::{Key, Node};

/// Zilla's default `event.id`.
pub(super) const DEFAULT_EVENT_ID: &str = "${etag}";
const KEY_AND_ETAG_EVENT_ID: &str = "[\"${base64(key)}\",\"${etag}\"]";

impl<'y, 'e> Loader<'y, 'e> {
    /// An sse server binding, read once.
    pub fn sse_server(&mut self, idx: usize) -> Option<Arc<SseService>> {
        self.memoized(idx, |memo| &mut memo.sse, Self::build_sse_server)
    }

    fn build_sse_server(&mut self, idx: usize) -> Option<Arc<SseService>> {
        let options = self.options(
            idx,
            &[("retry", Key::Known), ("requests", Key::NotSupported)],
        );
        // Zilla parses `retry` but never emits a `retry:` field; we send it at the start of
        // every stream when it is set.
        let retry = options
            .as_ref()
            .and_then(|o| o.get("retry"))
            .and_then(|r| r.int_in(&mut self.cx, 0..=i64::from(u32::MAX)))
            .map(|r| r as u32);
        let specs = self.routes(
            idx,
            &[("guarded", Key::Known), ("with", Key::NotSupported)],
            true,
        );
        let mut routes = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut when = Vec::with_capacity(spec.when.len());
            for condition in &spec.when {
                let Some(map) = condition.map(&mut self.cx) else {
                    continue;
                };
                map.check(&mut self.cx, &[("path", Key::Known)], "unknown key");
                if let Some(path) = map
                    .require(&mut self.cx, "path")
                    .and_then(|n| n.string(&mut self.cx))
                {
                    when.push(Glob::new(&path));
                }
            }
            let guarded = self.guarded(spec.guarded.as_ref());
            let exit = spec
                .exit
                .as_ref()
                .and_then(|exit| self.exit(idx, exit, &[Kind::SseKafkaProxy]))
                .and_then(|target| self.sse_kafka_proxy(target));
            if let Some(exit) = exit {
                routes.push(SseRoute {
                    when,
                    guarded,
                    exit,
                });
            }
        }
        Some(Arc::new(SseService {
            binding: self.bindings[idx].name.clone(),
            routes,
            retry,
        }))
    }

    /// An sse-kafka proxy binding, read once.
    pub fn sse_kafka_proxy(&mut self, idx: usize) -> Option<Arc<SseKafkaService>> {
        self.memoized(idx, |memo| &mut memo.sse_kafka, Self::build_sse_kafka_proxy)
    }

    fn build_sse_kafka_proxy(&mut self, idx: usize) -> Option<Arc<SseKafkaService>> {
        let specs = self.routes(idx, &[("with", Key::Known), ("guarded", Key::Known)], true);
        let mut routes = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.is_binding_exit {
                let path = spec
                    .exit
                    .as_ref()
                    .map_or(spec.path.clone(), |e| e.path.clone());
                self.cx.error(
                    &path,
                    "not supported: an sse-kafka exit needs a route with with.topic",
                );
                continue;
            }
            if let Some(route) = self.sse_kafka_route(idx, &spec) {
                routes.push(route);
            }
        }
        Some(Arc::new(SseKafkaService {
            binding: self.bindings[idx].name.clone(),
            routes,
        }))
    }

    fn sse_kafka_route(&mut self, idx: usize, spec: &RouteSpec<'y>) -> Option<SseKafkaRoute> {
        let when = self.when_paths(&spec.when, &[]);
        let guarded = self.guarded(spec.guarded.as_ref());
        let when_complete = when.len() == spec.when.len();
        let cluster = spec
            .exit
            .as_ref()
            .and_then(|exit| self.exit(idx, exit, &[Kind::KafkaCacheClient, Kind::KafkaClient]))
            .and_then(|target| self.kafka_chain(target));

        let with = match &spec.with {
            Some(node) => node.map(&mut self.cx)?,
            None => {
                self.cx
                    .error(&format!("{}.with.topic", spec.path), "required");
                return None;
            }
        };
        with.check(
            &mut self.cx,
            &[
                ("topic", Key::Known),
                ("filters", Key::Known),
                ("event", Key::Known),
            ],
            "unknown key",
        );
        let topic = with
            .require(&mut self.cx, "topic")
            .and_then(|node| self.template(&node, &when, when_complete));
        let mut filters_ok = true;
        let mut filters = Vec::new();
        if let Some(list) = with.get("filters").and_then(|n| n.list(&mut self.cx)) {
            for item in list {
                match self.filter(&item, &when, when_complete) {
                    Some(filter) => filters.push(filter),
                    None => filters_ok = false,
                }
            }
        }
        let event_id = self.event_id(with.get("event"));

        let (topic, event_id, cluster) = (topic?, event_id?, cluster?);
        if !filters_ok {
            return None;
        }
        if let Some(static_topic) = topic.as_static() {
            let allowed = &cluster.allowed_topics;
            if !allowed.is_empty() && !allowed.iter().any(|glob| glob.matches(static_topic)) {
                self.cx.warn(
                    &format!("{}.with.topic", spec.path),
                    format!(
                        "topic {static_topic:?} is not allowed by the routes of kafka client \
                         {:?}; requests will be refused",
                        cluster.binding
                    ),
                );
            }
        }
        Some(SseKafkaRoute {
            when,
            topic,
            filters,
            event_id,
            cluster,
            guarded,
        })
    }

    /// `{ key: template, headers: { name: template } }`.
    fn filter(
        &mut self,
        node: &Node<'y>,
        when: &[PathPattern],
        when_complete: bool,
    ) -> Option<FilterTemplate> {
        let map = node.map(&mut self.cx)?;
        map.check(
            &mut self.cx,
            &[("key", Key::Known), ("headers", Key::Known)],
            "unknown key",
        );
        let mut ok = true;
        let key = match map.get("key") {
            Some(node) => {
                let key = self.template(&node, when, when_complete);
                ok &= key.is_some();
                key
            }
            None => None,
        };
        let mut headers = Vec::new();
        if let Some(header_map) = map.get("headers").and_then(|n| n.map(&mut self.cx)) {
            for (name, value) in header_map.entries(&mut self.cx) {
                match self.template(&value, when, when_complete) {
                    Some(template) => headers.push((name, template)),
                    None => ok = false,
                }
            }
        }
        ok.then_some(FilterTemplate { key, headers })
    }

    /// `event: { id: template }`: one of Zilla's two templates, exactly.
    fn event_id(&mut self, event: Option<Node<'y>>) -> Option<IdTemplate> {
        let Some(event) = event else {
            return IdTemplate::from_config(DEFAULT_EVENT_ID);
        };
        let map = event.map(&mut self.cx)?;
        map.check(&mut self.cx, &[("id", Key::Known)], "unknown key");
        let Some(node) = map.get("id") else {
            return IdTemplate::from_config(DEFAULT_EVENT_ID);
        };
        let text = node.string(&mut self.cx)?;
        let template = IdTemplate::from_config(&text);
        if template.is_none() {
            self.cx.error(
                &node.path,
                format!(
                    "unsupported event id {text:?}: expected {DEFAULT_EVENT_ID:?} or \
                     {KEY_AND_ETAG_EVENT_ID:?}"
                ),
            );
        }
        template
    }
}
