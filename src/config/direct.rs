//! The no-file mode: `sse-kafka --kafka HOST:PORT [--listen ADDR:PORT]`.

use std::net::SocketAddr;
use std::sync::Arc;

use super::pattern::{PathPattern, Template};
use super::plan::{
    AccessControl, HttpExit, HttpRoute, HttpService, IdTemplate, KafkaCluster, Listener, Plan,
    SseKafkaRoute, SseKafkaService, SseRoute, SseService,
};
use super::sse::DEFAULT_EVENT_ID;

/// One listener speaking HTTP/1.1 and h2 (same-origin), every path `/{topic}` streaming that
/// topic from the earliest retained record, default event ids, no filters. Binding names follow
/// Zilla's examples so logs read the same in both modes.
pub fn direct(kafka: &str, listen: SocketAddr) -> Plan {
    let cluster = Arc::new(KafkaCluster {
        binding: "south_kafka_client".to_owned(),
        servers: vec![kafka.to_owned()],
        bootstrap: Vec::new(),
        topics: Vec::new(),
        allowed_topics: Vec::new(),
        sasl: None,
        tls: None,
    });
    let sse_kafka = Arc::new(SseKafkaService {
        binding: "north_sse_kafka_mapping".to_owned(),
        routes: vec![SseKafkaRoute {
            when: vec![PathPattern::new("/{topic}").expect("valid pattern")],
            topic: Template::parse("${params.topic}").expect("valid template"),
            filters: Vec::new(),
            event_id: IdTemplate::from_config(DEFAULT_EVENT_ID).expect("default event id"),
            cluster: cluster.clone(),
            guarded: Vec::new(),
        }],
    });
    let sse = Arc::new(SseService {
        binding: "north_sse_server".to_owned(),
        routes: vec![SseRoute {
            when: Vec::new(),
            guarded: Vec::new(),
            exit: sse_kafka,
        }],
        retry: None,
    });
    let http = Arc::new(HttpService {
        binding: "north_http_server".to_owned(),
        http1: true,
        h2: true,
        access_control: AccessControl::SameOrigin,
        authorization: None,
        routes: vec![HttpRoute {
            when: Vec::new(),
            guarded: Vec::new(),
            exit: HttpExit::Sse(sse),
        }],
    });
    Plan {
        name: None,
        listeners: vec![Listener {
            tls: None,
            binding: "north_tcp_server".to_owned(),
            addr: listen,
            http,
        }],
        clusters: vec![cluster],
        telemetry_stdout: false,
        prometheus: Vec::new(),
        warnings: Vec::new(),
        guards: Vec::new(),
        catalogs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::pattern::{NoGuard, Params};
    use super::super::plan::DefaultOffset;
    use super::*;

    #[test]
    fn direct_plan_streams_every_topic() {
        let plan = direct("kafka:9092", "127.0.0.1:7114".parse().unwrap());
        assert_eq!(plan.listeners.len(), 1);
        let listener = &plan.listeners[0];
        assert_eq!(listener.addr.to_string(), "127.0.0.1:7114");
        let http = &listener.http;
        assert!(http.http1 && http.h2);
        assert_eq!(http.access_control, AccessControl::SameOrigin);
        let HttpExit::Sse(sse) = &http.routes[0].exit else {
            panic!("expected sse exit");
        };
        let route = &sse.routes[0].exit.routes[0];
        let mut params = Params::new();
        assert!(route.when[0].match_path("/orders", &mut params));
        assert_eq!(route.topic.resolve_to_string(&params, &NoGuard), "orders");
        assert!(route.filters.is_empty());
        assert_eq!(
            format!("{:?}", route.event_id),
            format!("{:?}", IdTemplate::from_config("${etag}").unwrap())
        );
        assert!(Arc::ptr_eq(&route.cluster, &plan.clusters[0]));
        assert_eq!(plan.clusters[0].servers, ["kafka:9092"]);
        assert_eq!(
            plan.clusters[0].default_offset("orders"),
            DefaultOffset::Historical
        );
    }
}
