//! `sse-kafka asyncapi --config zilla.yaml`: an AsyncAPI 3.0 document describing the SSE routes
//! of any loaded plan (hand-written or expanded): one channel per sse-kafka route path (`{p}`
//! parameters; a `*` becomes a `{wildcardN}` parameter), one `receive` operation each with the
//! `x-zilla-sse` binding (and `x-zilla-sse-kafka` filters), the message payload from the
//! topic's JSON model when it has one, and the http authorization as a security scheme. The
//! document is in the shape `type: asyncapi` reads back.

use serde_json::{json, Map, Value};

use super::plan::{CredentialSource, HttpExit, ModelKind, Plan, SchemaSelector, SseKafkaRoute};

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
            schemes.insert(name.clone(), security_scheme(auth.credentials.first()));
            name
        });
        for route in &listener.http.routes {
            let HttpExit::Sse(sse) = &route.exit else {
                continue;
            };
            for sse_route in &sse.routes {
                for kafka_route in &sse_route.exit.routes {
                    let guarded = !kafka_route.guarded.is_empty()
                        || !sse_route.guarded.is_empty()
                        || !route.guarded.is_empty();
                    let security = scheme_name.as_deref().filter(|_| guarded);
                    for pattern in &kafka_route.when {
                        let (address, params) = address_of(pattern.as_str());
                        let key = channel_key(&address);
                        if channels.contains_key(&key) {
                            continue;
                        }
                        channels.insert(key.clone(), channel(kafka_route, address, params));
                        operations.insert(
                            format!("receive_{key}"),
                            receive_operation(kafka_route, &key, security),
                        );
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

/// The security scheme of an http authorization, by where its first credential is read.
fn security_scheme(credential: Option<&CredentialSource>) -> Value {
    match credential {
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
    }
}

/// The channel of a route path: its address, parameters, the event message (payload from the
/// topic's JSON model when it has one) and the topic.
fn channel(kafka_route: &SseKafkaRoute, address: String, params: Vec<String>) -> Value {
    let mut message = json!({ "name": "event", "contentType": "application/json" });
    if let Some(p) = payload(kafka_route) {
        message["payload"] = p;
    }
    let mut channel = json!({
        "address": address,
        "messages": { "event": message },
    });
    if !params.is_empty() {
        let ps: Map<String, Value> = params.into_iter().map(|p| (p, json!({}))).collect();
        channel["parameters"] = Value::Object(ps);
    }
    if let Some(topic) = kafka_route.topic.as_static() {
        channel["description"] = json!(format!("Kafka topic {topic}"));
    }
    channel
}

/// The `receive` operation of channel `key`, with the route's filters and, when the route is
/// guarded, the security scheme.
fn receive_operation(kafka_route: &SseKafkaRoute, key: &str, security: Option<&str>) -> Value {
    let mut bindings = json!({ "x-zilla-sse": { "method": "GET" } });
    if !kafka_route.filters.is_empty() {
        let filters: Vec<Value> = kafka_route.filters.iter().map(filter).collect();
        bindings["x-zilla-sse-kafka"] = json!({ "filters": filters });
    }
    let mut op = json!({
        "action": "receive",
        "channel": { "$ref": format!("#/channels/{key}") },
        "messages": [ { "$ref": format!("#/channels/{key}/messages/event") } ],
        "bindings": bindings,
    });
    if let Some(name) = security {
        op["security"] = json!([{ "$ref": format!("#/components/securitySchemes/{name}") }]);
    }
    op
}

/// A route filter as `x-zilla-sse-kafka` writes it: key and headers, as configured.
fn filter(f: &super::plan::FilterTemplate) -> Value {
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
fn payload(route: &SseKafkaRoute) -> Option<Value> {
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
