//! Static files for the `http-filesystem` + `filesystem` bindings: GET and HEAD only, paths
//! confined to the configured location (no `..`, no symlink escapes).

use std::path::{Component, Path, PathBuf};

use proto::http1::percent_decode_form;

use super::head::Head;

use crate::config::pattern::{NoGuard, Params};
use crate::config::plan::FileService;

/// Largest file served (static assets of a dashboard, not downloads).
const MAX_FILE_BYTES: u64 = 16 << 20;

pub enum FileAnswer {
    Ok {
        content_type: &'static str,
        body: Vec<u8>,
        head_only: bool,
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
    let Some(file) = confine(&svc.root, &relative) else {
        return FileAnswer::Status(404);
    };
    match read(&file) {
        Some(body) => FileAnswer::Ok {
            content_type: content_type(&file),
            body,
            head_only,
        },
        None => FileAnswer::Status(404),
    }
}

/// Percent-decodes `relative`, refuses anything but plain names, and checks the canonical
/// result is still inside `root`. Directories resolve to their `index.html`.
fn confine(root: &Path, relative: &str) -> Option<PathBuf> {
    let mut decoded = Vec::with_capacity(relative.len());
    percent_decode_form(&relative.replace('+', "%2B"), &mut decoded);
    let decoded = String::from_utf8(decoded).ok()?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut path = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let root = root.canonicalize().ok()?;
    let mut file = path.canonicalize().ok()?;
    if file.is_dir() {
        file = file.join("index.html").canonicalize().ok()?;
    }
    file.starts_with(&root).then_some(file)
}

fn read(file: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    std::fs::read(file).ok()
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("sse-kafka-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/index.html"), b"hi").unwrap();
        std::fs::write(dir.join("secret"), b"no").unwrap();
        let root = dir.join("www");
        assert!(confine(&root, "index.html").is_some());
        assert!(confine(&root, "").is_some());
        assert!(confine(&root, "../secret").is_none());
        assert!(confine(&root, "%2e%2e/secret").is_none());
        assert!(confine(&root, "/etc/passwd").is_none());
        assert!(confine(&root, "missing.html").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
