//! `zilla.yaml` read once at start into a typed [`Plan`].
//!
//! Everything is checked up front and every problem is reported with its YAML path
//! (`bindings.north_http_server.options.overrides: not supported`); nothing downstream looks at
//! YAML. The module depends on nothing else in the server (only `proto` and `yaml-rust2`).
//!
//! Files: `document` (top level: name, guards, vaults, telemetry), `loader` (binding table,
//! exits, cycles, routes, reachability), one file per binding family (`tcp`, `tls`, `tls_client`,
//! `http`, `sse`, `kafka`, `kafka_security` (SASL credentials), `files`), `guard` (`jwt` guards, http authorization, route `guarded`), `with` (route path patterns and `with` templates), `yaml` (walking the tree
//! with paths), `env` (`${{env.NAME}}`), `pattern` (globs, path patterns, templates), `direct`
//! (the no-file mode).

pub mod pattern;
pub mod plan;

mod asyncapi;
mod asyncapi_doc;
mod catalog;
mod describe;
mod direct;
mod document;
mod env;
mod files;
mod guard;
mod http;
mod kafka;
mod kafka_security;
mod loader;
mod sse;
mod tcp;
mod tls;
mod tls_client;
mod with;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_asyncapi;
#[cfg(test)]
mod tests_security;

use std::path::Path;

use yaml_rust2::YamlLoader;

pub use describe::describe;
pub use direct::direct;
pub use plan::*;

/// Reads and resolves a configuration file. Relative paths in it (filesystem `location`) are
/// taken from the file's directory; `${{env.NAME}}` comes from the process environment.
pub fn load(path: &Path) -> Result<Plan, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    parse(&text, &base_dir, &|name| std::env::var(name).ok())
}

/// `sse-kafka check --expand`: the configuration file with its `asyncapi` bindings replaced
/// by the bindings they generate, as `zilla.yaml` text (the file itself when it has none).
pub fn expand_file(path: &Path) -> Result<String, Vec<ConfigError>> {
    let error = |message: String| {
        vec![ConfigError {
            path: path.display().to_string(),
            message,
        }]
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let documents =
        YamlLoader::load_from_str(&text).map_err(|e| error(format!("invalid YAML: {e}")))?;
    let [document] = &documents[..] else {
        return Err(error("expected exactly one YAML document".to_owned()));
    };
    let env = |name: &str| std::env::var(name).ok();
    match asyncapi::expand(document, &base_dir, &env)? {
        Some((expanded, _)) => Ok(asyncapi::emit(&expanded)),
        None => Ok(asyncapi::emit(document)),
    }
}

/// Parses and resolves configuration text. `base_dir` resolves relative paths; `env` supplies
/// `${{env.NAME}}` values.
pub fn parse(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<ConfigError>> {
    let documents = YamlLoader::load_from_str(text).map_err(|e| {
        vec![ConfigError {
            path: yaml::ROOT.to_owned(),
            message: format!("invalid YAML: {e}"),
        }]
    })?;
    match &documents[..] {
        [document] => match asyncapi::expand(document, base_dir, env)? {
            None => document::read(document, base_dir, env),
            Some((expanded, warnings)) => {
                let mut plan = document::read(&expanded, base_dir, env)?;
                plan.warnings.splice(0..0, warnings);
                Ok(plan)
            }
        },
        [] => Err(vec![ConfigError {
            path: yaml::ROOT.to_owned(),
            message: "empty configuration".to_owned(),
        }]),
        [..] => Err(vec![ConfigError {
            path: yaml::ROOT.to_owned(),
            message: format!("{} YAML documents: expected exactly one", documents.len()),
        }]),
    }
}
