//! `http-filesystem` proxy and `filesystem` server bindings: static files.

use std::path::PathBuf;
use std::sync::Arc;

use super::loader::{Kind, Loader};
use super::plan::{FileRoute, FileService};
use super::yaml::Key;
use crate::http::file_table::{FileTable, LiveTable, MAX_FILE_BYTES};

/// A filesystem server binding.
#[derive(Clone, Debug)]
pub(super) struct FilesystemRoot {
    /// `options.location`, resolved against the config file's directory.
    pub root: PathBuf,
    /// Its files, read once at load (bounded).
    pub table: Arc<LiveTable>,
}

impl<'y, 'e> Loader<'y, 'e> {
    /// An http-filesystem proxy binding with the filesystem it exits to, read once.
    pub fn http_filesystem_proxy(&mut self, idx: usize) -> Option<Arc<FileService>> {
        self.memoized(
            idx,
            |memo| &mut memo.files,
            Self::build_http_filesystem_proxy,
        )
    }

    fn build_http_filesystem_proxy(&mut self, idx: usize) -> Option<Arc<FileService>> {
        let specs = self.routes(
            idx,
            &[("with", Key::Known), ("guarded", Key::NotSupportedYet)],
            true,
        );
        let mut routes = Vec::with_capacity(specs.len());
        let mut filesystem: Option<(usize, String, Option<FilesystemRoot>)> = None;
        for spec in specs {
            if spec.is_binding_exit {
                let path = spec
                    .exit
                    .as_ref()
                    .map_or(spec.path.clone(), |e| e.path.clone());
                self.cx.error(
                    &path,
                    "not supported: an http-filesystem exit needs a route with with.path",
                );
                continue;
            }
            let when = self.when_paths(&spec.when, &[("method", Key::NotSupported)]);
            let when_complete = when.len() == spec.when.len();
            if let Some(exit) = &spec.exit {
                if let Some(target) = self.exit(idx, exit, &[Kind::FilesystemServer]) {
                    match &filesystem {
                        None => {
                            let root = self.filesystem_server(target);
                            filesystem = Some((target, exit.path.clone(), root));
                        }
                        Some((first, _, _)) if *first == target => {}
                        Some((_, first_path, _)) => {
                            let message = format!(
                                "not supported: routes of one http-filesystem binding must \
                                 share one filesystem (see {first_path})"
                            );
                            self.cx.error(&exit.path, message);
                        }
                    }
                }
            }
            let Some(with) = spec.with.as_ref() else {
                self.cx
                    .error(&format!("{}.with.path", spec.path), "required");
                continue;
            };
            let Some(with) = with.map(&mut self.cx) else {
                continue;
            };
            with.check(&mut self.cx, &[("path", Key::Known)], "unknown key");
            let Some(node) = with.require(&mut self.cx, "path") else {
                continue;
            };
            if let Some(path) = self.template(&node, &when, when_complete) {
                routes.push(FileRoute { when, path });
            }
        }
        let (_, _, root) = filesystem?;
        let root = root?;
        Some(Arc::new(FileService {
            binding: self.bindings[idx].name.clone(),
            root: root.root,
            routes,
            table: root.table,
        }))
    }

    /// A filesystem server binding, read once.
    pub fn filesystem_server(&mut self, idx: usize) -> Option<FilesystemRoot> {
        self.memoized(
            idx,
            |memo| &mut memo.filesystems,
            Self::build_filesystem_server,
        )
    }

    fn build_filesystem_server(&mut self, idx: usize) -> Option<FilesystemRoot> {
        let options = self.options(idx, &[("location", Key::Known), ("symlinks", Key::Known)]);
        let Some(options) = options else {
            let path = format!("{}.options.location", self.bindings[idx].path);
            self.cx.error(&path, "required");
            return None;
        };
        if let Some(symlinks) = options.get("symlinks") {
            match symlinks.string(&mut self.cx).as_deref() {
                Some("ignore") | None => {}
                Some("follow") => self.cx.error(&symlinks.path, "not supported"),
                Some(other) => self.cx.error(
                    &symlinks.path,
                    format!("unknown symlinks {other:?}: expected ignore or follow"),
                ),
            }
        }
        let node = options.require(&mut self.cx, "location")?;
        let location = node.string(&mut self.cx)?;
        if location.is_empty() {
            self.cx.error(&node.path, "expected a directory");
            return None;
        }
        let root = self.base_dir.join(&location);
        if !root.is_dir() {
            self.cx.warn(
                &node.path,
                format!("{} is not a directory (yet)", root.display()),
            );
        }
        let table = match FileTable::load(&root) {
            Ok(table) => table,
            Err(e) => {
                self.cx.error(&node.path, e);
                return None;
            }
        };
        for skipped in &table.skipped {
            self.cx.warn(
                &node.path,
                format!(
                    "{} is larger than {} MiB: not served",
                    skipped.display(),
                    MAX_FILE_BYTES >> 20
                ),
            );
        }
        Some(FilesystemRoot {
            table: LiveTable::new(root.clone(), table),
            root,
        })
    }
}
