//! Catalog look-ups at run time: a schema by subject and version, or by id, from any catalog
//! of the plan (`config/catalog.rs` describes the types).
//!
//! Inline and filesystem catalogs answer from memory. A `schema-registry` catalog is asked
//! over HTTP (the Confluent REST subset: `GET /subjects/{subject}/versions/{version}` and
//! `GET /schemas/ids/{id}`) with a blocking client (`ureq`): **never call these on a worker
//! thread**; the models' schema thread (`models::store`) and the config loader do. Schemas by
//! id are cached for the life of the process (a registry id never changes meaning); a
//! subject's `latest` answer is kept for the catalog's `max-age`, numbered versions forever.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::{Catalog, CatalogKind, RegistryOptions, Schema};

/// Why a look-up found no schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The catalog answered that there is no such subject, version or id (HTTP 404, or not
    /// in an inline/filesystem catalog): records that name it are invalid.
    NotFound(String),
    /// The registry could not be asked (connection, timeout, 5xx, a body that is not the
    /// expected JSON): worth asking again later.
    Unavailable(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound(m) | LookupError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// The schema of `subject` at `version` (`latest` or a number). Blocks on HTTP for a registry.
pub fn lookup(catalog: &Catalog, subject: &str, version: &str) -> Result<Schema, LookupError> {
    match &catalog.kind {
        CatalogKind::Inline(_) | CatalogKind::Filesystem(_) => {
            catalog.local(subject, version).cloned().ok_or_else(|| {
                LookupError::NotFound(format!("catalog {}: no subject {subject:?}", catalog.name))
            })
        }
        CatalogKind::SchemaRegistry(options) => {
            let key = (catalog.name.clone(), subject.to_owned(), version.to_owned());
            if let Some((schema, at)) = cache()
                .subjects
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned())
            {
                if version != "latest" || at.elapsed() < options.max_age {
                    return Ok(schema);
                }
            }
            let schema =
                fetch_subject(options, subject, version).map_err(|e| e.context(&catalog.name))?;
            if let Ok(mut ids) = cache().ids.lock() {
                ids.insert((catalog.name.clone(), schema.id), schema.clone());
            }
            if let Ok(mut subjects) = cache().subjects.lock() {
                subjects.insert(key, (schema.clone(), Instant::now()));
            }
            Ok(schema)
        }
    }
}

/// The schema with `id`. Blocks on HTTP for a registry (once per id).
pub fn by_id(catalog: &Catalog, id: u32) -> Result<Schema, LookupError> {
    match &catalog.kind {
        CatalogKind::Inline(_) | CatalogKind::Filesystem(_) => {
            catalog.local_by_id(id).cloned().ok_or_else(|| {
                LookupError::NotFound(format!("catalog {}: no schema with id {id}", catalog.name))
            })
        }
        CatalogKind::SchemaRegistry(options) => {
            let key = (catalog.name.clone(), id);
            if let Some(schema) = cache().ids.lock().ok().and_then(|m| m.get(&key).cloned()) {
                return Ok(schema);
            }
            let schema = fetch_id(options, id).map_err(|e| e.context(&catalog.name))?;
            if let Ok(mut ids) = cache().ids.lock() {
                ids.insert(key, schema.clone());
            }
            Ok(schema)
        }
    }
}

type SubjectKey = (String, String, String);

#[derive(Default)]
struct Cache {
    ids: Mutex<HashMap<(String, u32), Schema>>,
    subjects: Mutex<HashMap<SubjectKey, (Schema, Instant)>>,
}

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

impl LookupError {
    fn context(self, catalog: &str) -> LookupError {
        match self {
            LookupError::NotFound(m) => LookupError::NotFound(format!("catalog {catalog}: {m}")),
            LookupError::Unavailable(m) => {
                LookupError::Unavailable(format!("catalog {catalog}: {m}"))
            }
        }
    }
}

/// How long one registry request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

/// A subject in the catalog's context: `:.ctx:subject` outside the default context.
fn qualified(options: &RegistryOptions, subject: &str) -> String {
    if options.context == "default" || options.context.is_empty() {
        subject.to_owned()
    } else {
        format!(":.{}:{subject}", options.context)
    }
}

fn fetch_subject(
    options: &RegistryOptions,
    subject: &str,
    version: &str,
) -> Result<Schema, LookupError> {
    let url = format!(
        "{}/subjects/{}/versions/{}",
        options.url,
        percent_encode(&qualified(options, subject)),
        percent_encode(version)
    );
    let body = get_json(&url)?;
    let id = body
        .get("id")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| LookupError::Unavailable(format!("{url}: no schema id in the answer")))?;
    let text = schema_text(&url, &body)?;
    Ok(Schema {
        id,
        text: text.into(),
    })
}

fn fetch_id(options: &RegistryOptions, id: u32) -> Result<Schema, LookupError> {
    let mut url = format!("{}/schemas/ids/{id}", options.url);
    if !(options.context == "default" || options.context.is_empty()) {
        url.push_str(&format!(
            "?subject={}",
            percent_encode(&format!(":.{}:", options.context))
        ));
    }
    let body = get_json(&url)?;
    let text = schema_text(&url, &body)?;
    Ok(Schema {
        id,
        text: text.into(),
    })
}

fn schema_text(url: &str, body: &serde_json::Value) -> Result<String, LookupError> {
    body.get("schema")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| LookupError::Unavailable(format!("{url}: no schema text in the answer")))
}

fn get_json(url: &str) -> Result<serde_json::Value, LookupError> {
    let mut response = agent()
        .get(url)
        .header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        )
        .call()
        .map_err(|e| LookupError::Unavailable(format!("{url}: {e}")))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| LookupError::Unavailable(format!("{url}: {e}")))?;
    match status {
        200 => serde_json::from_str(&text)
            .map_err(|e| LookupError::Unavailable(format!("{url}: invalid JSON: {e}"))),
        404 | 422 => Err(LookupError::NotFound(format!("{url}: HTTP {status}"))),
        _ => Err(LookupError::Unavailable(format!("{url}: HTTP {status}"))),
    }
}

/// Percent-encodes a path segment (everything but unreserved characters).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_qualified_by_context_and_encoded() {
        let options = RegistryOptions {
            url: "http://r".into(),
            context: "default".into(),
            max_age: Duration::from_secs(1),
        };
        assert_eq!(qualified(&options, "a-value"), "a-value");
        let options = RegistryOptions {
            context: "prod".into(),
            ..options
        };
        assert_eq!(qualified(&options, "a-value"), ":.prod:a-value");
        assert_eq!(percent_encode(":.prod:a b"), "%3A.prod%3Aa%20b");
    }
}
