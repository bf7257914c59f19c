//! Static files for the `http-filesystem` + `filesystem` bindings: GET and HEAD only, from the
//! files read at start (src/http/file_table.rs), with conditional GET (`If-None-Match`, else
//! `If-Modified-Since`, RFC 9110 section 13.2.2) answered `304`.

use std::sync::Arc;

use proto::http1::percent_decode_form;

use super::file_table::StaticFile;
use super::head::Head;

use crate::config::pattern::{NoGuard, Params};
use crate::config::plan::FileService;

pub enum FileAnswer {
    Ok {
        file: Arc<StaticFile>,
        head_only: bool,
        /// `304 Not Modified`: the client's copy is current.
        not_modified: bool,
    },
    Status(u16),
}

pub fn answer(svc: &FileService, req: &dyn Head) -> FileAnswer {
    let head_only = match req.method() {
        "GET" => false,
        "HEAD" => true,
        _ => return FileAnswer::Status(405),
    };
    let path = req.path();
    let mut params = Params::new();
    let route = svc.routes.iter().find(|r| {
        r.when.is_empty()
            || r.when.iter().any(|p| {
                params.clear();
                p.match_path(path, &mut params)
            })
    });
    let Some(route) = route else {
        return FileAnswer::Status(404);
    };
    let relative = route.path.resolve_to_string(&params, &NoGuard);
    let Some(decoded) = decode(&relative) else {
        return FileAnswer::Status(404);
    };
    let Some(components) = components(&decoded) else {
        return FileAnswer::Status(404);
    };
    match svc.table.table().get(&components) {
        Some(file) => FileAnswer::Ok {
            not_modified: not_modified(&file, req),
            file,
            head_only,
        },
        None => FileAnswer::Status(404),
    }
}

/// Status and headers of a file answer (lower-case names, for HTTP/1.1 and HTTP/2 alike);
/// a `304` carries the validators only.
pub fn file_head(file: &StaticFile, not_modified: bool) -> (u16, Vec<(&'static str, Vec<u8>)>) {
    let validators = [
        ("etag", file.etag.as_bytes().to_vec()),
        ("last-modified", file.last_modified.as_bytes().to_vec()),
    ];
    if not_modified {
        return (304, validators.to_vec());
    }
    let mut headers = vec![
        ("content-type", file.content_type.as_bytes().to_vec()),
        ("content-length", file.body.len().to_string().into_bytes()),
    ];
    headers.extend(validators);
    (200, headers)
}

/// Percent-decodes a relative path; `None` when it is not UTF-8 or holds NUL or `\\`.
fn decode(relative: &str) -> Option<String> {
    let mut decoded = Vec::with_capacity(relative.len());
    percent_decode_form(&relative.replace('+', "%2B"), &mut decoded);
    let decoded = String::from_utf8(decoded).ok()?;
    (!decoded.contains('\0') && !decoded.contains('\\')).then_some(decoded)
}

/// The plain names of a decoded path (`.` and empty segments dropped); `None` for `..`.
fn components(decoded: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in decoded.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            name => out.push(name),
        }
    }
    Some(out)
}

/// `If-None-Match` (weak comparison, `*`) when present, else `If-Modified-Since`.
fn not_modified(file: &StaticFile, req: &dyn Head) -> bool {
    let header = |name: &str| req.header(name).and_then(|v| std::str::from_utf8(v).ok());
    if let Some(tags) = header("if-none-match") {
        let ours = file.etag.as_str();
        return tags
            .split(',')
            .map(|t| t.trim())
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == ours);
    }
    match header("if-modified-since").and_then(super::http_date::parse) {
        Some(since) => file.modified <= since,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        assert_eq!(components("index.html"), Some(vec!["index.html"]));
        assert_eq!(components("a/./b/"), Some(vec!["a", "b"]));
        assert_eq!(components(""), Some(vec![]));
        assert_eq!(components("../secret"), None);
        assert_eq!(components(&decode("%2e%2e/secret").unwrap()), None);
        assert_eq!(decode("a%00b"), None);
        assert_eq!(decode("a%5cb"), None);
    }
}
