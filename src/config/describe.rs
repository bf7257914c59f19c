//! `sse-kafka asyncapi --config zilla.yaml`: an AsyncAPI 3.0 document describing the SSE routes
//! of any loaded plan (hand-written or expanded): one channel per sse-kafka route path (`{p}`
//! parameters; a `*` becomes a `{wildcardN}` parameter), one `receive` operation each with the
//! `x-zilla-sse` binding (and `x-zilla-sse-kafka` filters), the message payload from the
//! topic's JSON model when it has one, and the http authorization as a security scheme. The
//! document is in the shape `type: asyncapi` reads back.

use serde_json::{json, Map, Value};

use super::plan::{CredentialSource, HttpExit, ModelKind, Plan, SchemaSelector};

pub fn describe(plan: &Plan) -> Value {
    let mut servers = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut schemes = Map::new();
    for listener in &plan.listeners {
        let protocol = if listener.tls.is_some() {
            "https"
        } else {
            "http"
        };
        servers.insert(
            channel_key(&format!("{}_{}", listener.binding, listener.addr.port())),
            json!({ "host": listener.addr.to_string(), "protocol": protocol }),
        );
        let scheme_name = listener.http.authorization.as_ref().map(|auth| {
            let name = auth.guard.name.clone();
            let scheme = match auth.credentials.first() {
                Some(CredentialSource::Header {
                    name: h, prefix, ..
                }) if h == "authorization" && prefix.eq_ignore_ascii_case("bearer ") => {
                    json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" })
                }
                Some(CredentialSource::Header { name, .. }) => {
                    json!({ "type": "httpApiKey", "in": "header", "name": name })
                }
                Some(CredentialSource::Query { name, .. }) => {
                    json!({ "type": "httpApiKey", "in": "query", "name": name })
                }
                Some(CredentialSource::Cookie { name, .. }) => {
                    json!({ "type": "httpApiKey", "in": "cookie", "name": name })
                }
                None => json!({ "type": "http", "scheme": "bearer" }),
            };
            schemes.insert(name.clone(), scheme);
            name
        });
        for route in &listener.http.routes {
            let HttpExit::Sse(sse) = &route.exit else {
                continue;
            };
            for sse_route in &sse.routes {
                for kafka_route in &sse_route.exit.routes {
                    for pattern in &kafka_route.when {
                        let (address, params) = address_of(pattern.as_str());
                        let key = channel_key(&address);
                        if channels.contains_key(&key) {
                            continue;
                        }
                        let payload = payload(kafka_route);
                        let mut message =
                            json!({ "name": "event", "contentType": "application/json" });
                        if let Some(p) = payload {
                            message["payload"] = p;
                        }
                        let mut channel = json!({
                            "address": address,
                            "messages": { "event": message },
                        });
                        if !params.is_empty() {
                            let mut ps = Map::new();
                            for p in params {
                                ps.insert(p, json!({}));
                            }
                            channel["parameters"] = Value::Object(ps);
                        }
                        if let Some(topic) = kafka_route.topic.as_static() {
                            channel["description"] = json!(format!("Kafka topic {topic}"));
                        }
                        channels.insert(key.clone(), channel);
                        let mut bindings = json!({ "x-zilla-sse": { "method": "GET" } });
                        if !kafka_route.filters.is_empty() {
                            let filters: Vec<Value> = kafka_route
                                .filters
                                .iter()
                                .map(|f| {
                                    let mut o = Map::new();
                                    if let Some(k) = &f.key {
                                        o.insert("key".into(), json!(k.source()));
                                    }
                                    if !f.headers.is_empty() {
                                        let h: Map<String, Value> = f
                                            .headers
                                            .iter()
                                            .map(|(n, v)| (n.clone(), json!(v.source())))
                                            .collect();
                                        o.insert("headers".into(), Value::Object(h));
                                    }
                                    Value::Object(o)
                                })
                                .collect();
                            bindings["x-zilla-sse-kafka"] = json!({ "filters": filters });
                        }
                        let mut op = json!({
                            "action": "receive",
                            "channel": { "$ref": format!("#/channels/{key}") },
                            "messages": [ { "$ref": format!("#/channels/{key}/messages/event") } ],
                            "bindings": bindings,
                        });
                        let guarded = !kafka_route.guarded.is_empty()
                            || !sse_route.guarded.is_empty()
                            || !route.guarded.is_empty();
                        if let (true, Some(name)) = (guarded, &scheme_name) {
                            op["security"] =
                                json!([{ "$ref": format!("#/components/securitySchemes/{name}") }]);
                        }
                        operations.insert(format!("receive_{key}"), op);
                    }
                }
            }
        }
    }
    let mut doc = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": plan.name.clone().unwrap_or_else(|| "sse-kafka".to_owned()),
            "version": "1.0.0",
            "description": "SSE routes of this sse-kafka configuration (generated).",
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": operations,
    });
    if !schemes.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes });
    }
    doc
}

/// `/a/{id}/*` → (`/a/{id}/{wildcard1}`, [id, wildcard1]).
fn address_of(pattern: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut params = Vec::new();
    let mut wild = 0;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                wild += 1;
                let name = format!("wildcard{wild}");
                out.push_str(&format!("{{{name}}}"));
                params.push(name);
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(&format!("{{{name}}}"));
                params.push(name);
            }
            c => out.push(c),
        }
    }
    (out, params)
}

fn channel_key(address: &str) -> String {
    let key: String = address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let key = key.trim_matches('_').to_owned();
    if key.is_empty() {
        "root".to_owned()
    } else {
        key
    }
}

/// The JSON schema of the route's topic value model, when it is a JSON model of a local
/// catalog.
fn payload(route: &super::plan::SseKafkaRoute) -> Option<Value> {
    let topic = route.topic.as_static()?;
    let options = route.cluster.topics.iter().find(|t| t.matches(topic))?;
    let model = options.value.as_ref()?;
    if model.model != ModelKind::Json {
        return None;
    }
    let subject = match &model.selector {
        SchemaSelector::Subject { subject, .. } => subject.clone(),
        SchemaSelector::Topic { .. } => format!("{topic}-value"),
        SchemaSelector::Id(_) => return None,
    };
    let schema = model.catalog.local(&subject, "latest")?;
    serde_json::from_str(&schema.text).ok()
}
