//! An AsyncAPI 3.0 document (YAML or JSON) read into a JSON tree, with its local `$ref`s
//! (`#/json/pointer`) resolved: nested references too, cycles refused, depth bounded. A
//! reference that names nothing is left in place and reported (Zilla logs
//! `Unresolved reference (...)` and goes on).

use serde_json::{Map as JsonMap, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// References followed inside one another before the document is refused.
const MAX_DEPTH: usize = 64;

/// A parsed document: the raw tree (reference names are read from it) and the resolved one.
pub(super) struct Document {
    pub raw: Value,
    pub resolved: Value,
    /// Non-fatal remarks (unresolved references), each naming the document and pointer.
    pub warnings: Vec<String>,
}

/// Parses and resolves `text`. Errors name the document and, where one applies, the JSON
/// pointer.
pub(super) fn read(name: &str, text: &str) -> Result<Document, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("document {name}: {e}"))?;
    let [yaml] = &docs[..] else {
        return Err(format!(
            "document {name}: {} YAML documents, expected one",
            docs.len()
        ));
    };
    let raw = to_json(yaml);
    match raw.get("asyncapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => {}
        Some(v) => {
            return Err(format!(
                "document {name}#/asyncapi: version {v:?} not supported (AsyncAPI 3.0.x)"
            ))
        }
        None => return Err(format!("document {name}#/asyncapi: required")),
    }
    let mut warnings = Vec::new();
    let mut stack = Vec::new();
    let resolved = resolve(&raw, &raw, name, "", &mut stack, &mut warnings)?;
    Ok(Document {
        raw,
        resolved,
        warnings,
    })
}

/// YAML to JSON; non-string keys become their text.
pub(super) fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::String(text.clone()), Value::Number),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(hash) => {
            let mut map = JsonMap::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    _ => continue,
                };
                map.insert(key, to_json(v));
            }
            Value::Object(map)
        }
        Yaml::Null | Yaml::Alias(_) | Yaml::BadValue => Value::Null,
    }
}

/// `node` (at `here`) with every `$ref` replaced by its target, resolved in turn. `stack` holds
/// the pointers being resolved: meeting one again is a cycle.
fn resolve(
    root: &Value,
    node: &Value,
    name: &str,
    here: &str,
    stack: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Value, String> {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let target = reference
                    .strip_prefix('#')
                    .and_then(|pointer| root.pointer(pointer).map(|t| (pointer, t)));
                let Some((pointer, target)) = target else {
                    warnings.push(format!(
                        "document {name}#{here}: unresolved reference {reference:?}"
                    ));
                    return Ok(node.clone());
                };
                if stack.iter().any(|p| p == pointer) {
                    return Err(format!(
                        "document {name}#{here}: reference cycle through {reference:?}"
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!(
                        "document {name}#{here}: references nested deeper than {MAX_DEPTH}"
                    ));
                }
                stack.push(pointer.to_owned());
                let out = resolve(root, target, name, pointer, stack, warnings);
                stack.pop();
                return out;
            }
            let mut out = JsonMap::new();
            for (k, v) in map {
                let path = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.insert(k.clone(), resolve(root, v, name, &path, stack, warnings)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| resolve(root, v, name, &format!("{here}/{i}"), stack, warnings))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => Ok(node.clone()),
    }
}

/// The last segment of a `$ref` (`#/channels/events` → `events`), when `node` is a reference.
pub(super) fn ref_name(node: &Value) -> Option<&str> {
    let reference = node.get("$ref")?.as_str()?;
    reference.rsplit('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_nested_refs_and_reports_dangling_ones() {
        let doc = read(
            "t",
            "asyncapi: 3.0.0\na: {$ref: '#/b'}\nb: {c: {$ref: '#/d'}}\nd: 1\ne: {$ref: '#/nope'}\n",
        )
        .unwrap();
        assert_eq!(doc.resolved["a"]["c"], 1);
        assert_eq!(
            doc.warnings,
            vec!["document t#/e: unresolved reference \"#/nope\"".to_owned()]
        );
    }

    #[test]
    fn refuses_cycles_and_other_versions() {
        let err = read(
            "t",
            "asyncapi: 3.0.0\na: {$ref: '#/b'}\nb: {x: {$ref: '#/a'}}\n",
        )
        .err()
        .unwrap();
        assert!(err.contains("reference cycle"), "{err}");
        let err = read("t", "{\"asyncapi\": \"2.6.0\"}").err().unwrap();
        assert!(err.contains("#/asyncapi: version \"2.6.0\""), "{err}");
    }
}
