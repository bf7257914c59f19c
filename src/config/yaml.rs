//! Walking the YAML tree by hand so that every problem names its dotted path
//! (`bindings.north_http_server.routes[0].when[1].headers`), collecting all of them.
//!
//! Scalars are read through [`Cx`], which applies `${{env.NAME}}` substitution at the moment a
//! value is used, so unsupported sections (vaults) never raise variable errors of their own.

use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

use super::env;
use super::plan::ConfigError;

/// Collects errors and warnings; knows the environment.
pub(super) struct Cx<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl<'e> Cx<'e> {
    pub fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Cx<'e> {
        Cx {
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: display_path(path),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: display_path(path),
            message: message.into(),
        });
    }

    /// `${{env.NAME}}` substitution; an error is reported at `path`.
    pub fn substitute(&mut self, path: &str, text: &str) -> Option<String> {
        match env::substitute(text, self.env) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

/// The document root has the empty path; it is shown as `(root)`.
pub(super) fn display_path(path: &str) -> String {
    if path.is_empty() {
        ROOT.to_owned()
    } else {
        path.to_owned()
    }
}

pub(super) const ROOT: &str = "(root)";

/// How a known key of a mapping is treated by [`Map::check`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Key {
    /// Read by the caller.
    Known,
    /// Known to Zilla, refused here: `not supported`.
    NotSupported,
    /// Known to Zilla, planned: `not supported yet`.
    NotSupportedYet,
}

/// A YAML node and its dotted path.
#[derive(Clone)]
pub(super) struct Node<'y> {
    pub yaml: &'y Yaml,
    pub path: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn describe(yaml: &Yaml) -> &'static str {
    match yaml {
        Yaml::Real(_) => "a number",
        Yaml::Integer(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a mapping",
        Yaml::Null => "nothing",
        Yaml::Alias(_) | Yaml::BadValue => "an invalid value",
    }
}

impl<'y> Node<'y> {
    pub fn root(yaml: &'y Yaml) -> Node<'y> {
        Node {
            yaml,
            path: String::new(),
        }
    }

    fn expected(&self, cx: &mut Cx, what: &str) {
        cx.error(
            &self.path,
            format!("expected {what}, found {}", describe(self.yaml)),
        );
    }

    pub fn map(&self, cx: &mut Cx) -> Option<Map<'y>> {
        match self.yaml {
            Yaml::Hash(hash) => Some(Map {
                hash,
                path: self.path.clone(),
            }),
            _ => {
                self.expected(cx, "a mapping");
                None
            }
        }
    }

    pub fn list(&self, cx: &mut Cx) -> Option<Vec<Node<'y>>> {
        match self.yaml {
            Yaml::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, yaml)| Node {
                        yaml,
                        path: format!("{}[{i}]", self.path),
                    })
                    .collect(),
            ),
            _ => {
                self.expected(cx, "a list");
                None
            }
        }
    }

    /// A scalar as text, after `${{env.NAME}}` substitution. Numbers and booleans are accepted
    /// as their text (`key: 42`).
    pub fn string(&self, cx: &mut Cx) -> Option<String> {
        match self.yaml {
            Yaml::String(text) => cx.substitute(&self.path, text),
            Yaml::Integer(value) => Some(value.to_string()),
            Yaml::Real(text) => Some(text.clone()),
            Yaml::Boolean(value) => Some(value.to_string()),
            _ => {
                self.expected(cx, "a string");
                None
            }
        }
    }

    /// An integer, or a string that reads as one after substitution (`${{env.PORT}}`).
    pub fn int(&self, cx: &mut Cx) -> Option<i64> {
        match self.yaml {
            Yaml::Integer(value) => Some(*value),
            Yaml::String(text) => {
                let text = cx.substitute(&self.path, text)?;
                let parsed = text.trim().parse().ok();
                if parsed.is_none() {
                    cx.error(&self.path, format!("expected an integer, found {text:?}"));
                }
                parsed
            }
            _ => {
                self.expected(cx, "an integer");
                None
            }
        }
    }

    /// An integer in `range`.
    pub fn int_in(&self, cx: &mut Cx, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let value = self.int(cx)?;
        if !range.contains(&value) {
            cx.error(
                &self.path,
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some(value)
    }

    /// A boolean, or the string `true` / `false` after substitution.
    pub fn boolean(&self, cx: &mut Cx) -> Option<bool> {
        match self.yaml {
            Yaml::Boolean(value) => Some(*value),
            Yaml::String(text) => match cx.substitute(&self.path, text)?.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                other => {
                    cx.error(&self.path, format!("expected a boolean, found {other:?}"));
                    None
                }
            },
            _ => {
                self.expected(cx, "a boolean");
                None
            }
        }
    }

    /// A list of strings; `None` if the node or any item is wrong (each reported).
    pub fn strings(&self, cx: &mut Cx) -> Option<Vec<String>> {
        let items = self.list(cx)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match item.string(cx) {
                Some(text) => out.push(text),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A YAML mapping and its dotted path.
#[derive(Clone)]
pub(super) struct Map<'y> {
    hash: &'y Hash,
    pub path: String,
}

impl<'y> Map<'y> {
    /// The value of a string key (keys are looked up literally, without substitution).
    pub fn get(&self, key: &str) -> Option<Node<'y>> {
        self.hash
            .get(&Yaml::String(key.to_owned()))
            .map(|yaml| Node {
                yaml,
                path: join(&self.path, key),
            })
    }

    /// The path of a key (which need not exist).
    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Every entry in order, keys as text after substitution (user-chosen names: bindings,
    /// headers, guards). Keys that are not scalars are reported and skipped.
    pub fn entries(&self, cx: &mut Cx) -> Vec<(String, Node<'y>)> {
        let mut out = Vec::with_capacity(self.hash.len());
        for (key, yaml) in self.hash {
            let key = match key {
                Yaml::String(text) => cx.substitute(&self.path, text),
                Yaml::Integer(value) => Some(value.to_string()),
                Yaml::Boolean(value) => Some(value.to_string()),
                Yaml::Real(text) => Some(text.clone()),
                other => {
                    cx.error(
                        &self.path,
                        format!("expected text keys, found {}", describe(other)),
                    );
                    None
                }
            };
            if let Some(key) = key {
                let path = join(&self.path, &key);
                out.push((key, Node { yaml, path }));
            }
        }
        out
    }

    /// Reports every key that is not `Key::Known` in `spec`: `not supported`,
    /// `not supported yet`, or `unknown` (e.g. `unknown option`) for keys not listed.
    pub fn check(&self, cx: &mut Cx, spec: &[(&str, Key)], unknown: &str) {
        for key in self.hash.keys() {
            let text = match key {
                Yaml::String(text) => text.clone(),
                Yaml::Integer(value) => value.to_string(),
                Yaml::Boolean(value) => value.to_string(),
                Yaml::Real(text) => text.clone(),
                _ => {
                    cx.error(&self.path, "expected text keys");
                    continue;
                }
            };
            let path = join(&self.path, &text);
            match spec.iter().find(|(name, _)| *name == text) {
                Some((_, Key::Known)) => {}
                Some((_, Key::NotSupported)) => cx.error(&path, "not supported"),
                Some((_, Key::NotSupportedYet)) => cx.error(&path, "not supported yet"),
                None => cx.error(&path, unknown),
            }
        }
    }

    /// The value of a required key; reports `PATH.key: required` when absent.
    pub fn require(&self, cx: &mut Cx, key: &str) -> Option<Node<'y>> {
        let node = self.get(key);
        if node.is_none() {
            cx.error(&self.key_path(key), "required");
        }
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    fn env(name: &str) -> Option<String> {
        (name == "PORT").then(|| "7114".to_owned())
    }

    #[test]
    fn paths_and_typed_reads() {
        let docs = YamlLoader::load_from_str(
            "a:\n  b: [1, \"${{env.PORT}}\", x]\n  c: true\n  ':path': /x\n  d: \"${{env.NOPE}}\"\n",
        )
        .unwrap();
        let mut cx = Cx::new(&env);
        let root = Node::root(&docs[0]).map(&mut cx).unwrap();
        let a = root.get("a").unwrap().map(&mut cx).unwrap();
        let b = a.get("b").unwrap().list(&mut cx).unwrap();
        assert_eq!(b[1].path, "a.b[1]");
        assert_eq!(b[0].int(&mut cx), Some(1));
        assert_eq!(b[1].int(&mut cx), Some(7114));
        assert_eq!(b[2].int(&mut cx), None);
        assert_eq!(a.get("c").unwrap().boolean(&mut cx), Some(true));
        assert_eq!(a.get(":path").unwrap().string(&mut cx).unwrap(), "/x");
        assert_eq!(a.get("d").unwrap().string(&mut cx), None);
        a.check(
            &mut cx,
            &[("b", Key::Known), ("c", Key::NotSupported)],
            "unknown option",
        );
        let errors: Vec<String> = cx.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "a.b[2]: expected an integer, found \"x\"",
                "a.d: environment variable NOPE is not set",
                "a.c: not supported",
                "a.:path: unknown option",
                "a.d: unknown option",
            ]
        );
    }
}
