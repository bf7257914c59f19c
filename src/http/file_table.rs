//! The files under a `filesystem` binding's location, held in memory (bounded) so that a request
//! never touches the disk on a worker: read at load, then rescanned every second on a thread of
//! its own (started by the first request), which re-reads only files whose size or time changed.
//! Each file carries its `ETag` (a hash of its bytes, the same on every instance) and
//! `Last-Modified`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Largest file served (static assets of a dashboard, not downloads); larger ones are skipped.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// All files of one location together.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;
/// Files and directories walked under one location.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct StaticFile {
    pub body: Bytes,
    pub content_type: &'static str,
    /// A strong validator, quoted: `"<length>-<fnv-1a 64 of the bytes>"`.
    pub etag: String,
    /// Seconds since the epoch, and the same as an IMF-fixdate.
    pub modified: u64,
    pub last_modified: String,
    /// The file's time as read, to tell a changed file at the next scan.
    stamp: (u64, Option<SystemTime>),
}

/// Relative paths (`a/b.html`, `/`-separated) to files.
#[derive(Debug, Default)]
pub struct FileTable {
    files: HashMap<String, Arc<StaticFile>>,
    /// Files left out for their size (named in a warning at start).
    pub skipped: Vec<PathBuf>,
}

/// A file read into memory with its validators (`ETag` from its bytes, `Last-Modified`).
fn read_file(
    path: &Path,
    meta: &std::fs::Metadata,
    stamp: (u64, Option<SystemTime>),
) -> Result<StaticFile, String> {
    let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(StaticFile {
        etag: format!("\"{:x}-{:016x}\"", body.len(), fnv1a(&body)),
        content_type: content_type(path),
        modified,
        last_modified: super::http_date::format(modified),
        body: Bytes::from(body),
        stamp,
    })
}

impl FileTable {
    /// Reads every regular file under `root` (symbolic links are followed only when they stay
    /// inside it). A missing root gives an empty table.
    pub fn load(root: &Path) -> Result<FileTable, String> {
        FileTable::scan(root, &FileTable::default())
    }

    /// As `load`, reusing the entries of `previous` whose size and time are unchanged.
    fn scan(root: &Path, previous: &FileTable) -> Result<FileTable, String> {
        let mut table = FileTable::default();
        let Ok(canonical_root) = root.canonicalize() else {
            return Ok(table);
        };
        let mut total = 0u64;
        let mut entries = 0usize;
        let mut seen_dirs = HashSet::new();
        let mut dirs = vec![(canonical_root.clone(), String::new())];
        while let Some((dir, prefix)) = dirs.pop() {
            if !seen_dirs.insert(dir.clone()) {
                continue;
            }
            let listing = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in listing.flatten() {
                entries += 1;
                if entries > MAX_ENTRIES {
                    return Err(format!(
                        "{}: more than {MAX_ENTRIES} files and directories",
                        root.display()
                    ));
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Ok(path) = entry.path().canonicalize() else {
                    continue;
                };
                if !path.starts_with(&canonical_root) {
                    continue;
                }
                let key = format!("{prefix}{name}");
                if path.is_dir() {
                    dirs.push((path, format!("{key}/")));
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                if meta.len() > MAX_FILE_BYTES {
                    table.skipped.push(path);
                    continue;
                }
                total += meta.len();
                if total > MAX_TOTAL_BYTES {
                    return Err(format!(
                        "{}: the files add up to more than {} MiB held in memory",
                        root.display(),
                        MAX_TOTAL_BYTES >> 20
                    ));
                }
                let stamp = (meta.len(), meta.modified().ok());
                let file = match previous.files.get(&key).filter(|f| f.stamp == stamp) {
                    Some(same) => same.clone(),
                    None => Arc::new(read_file(&path, &meta, stamp)?),
                };
                table.files.insert(key, file);
            }
        }
        Ok(table)
    }

    /// The file at `components` (already checked to be plain names), or that directory's
    /// `index.html`.
    pub fn get(&self, components: &[&str]) -> Option<Arc<StaticFile>> {
        let key = components.join("/");
        if let Some(f) = self.files.get(&key) {
            return Some(f.clone());
        }
        let index = if key.is_empty() {
            "index.html".to_string()
        } else {
            format!("{key}/index.html")
        };
        self.files.get(&index).cloned()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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

/// How often a location is scanned again.
const RESCAN: Duration = Duration::from_secs(1);

/// A location's table, kept current by a rescan thread.
#[derive(Debug)]
pub struct LiveTable {
    root: PathBuf,
    current: RwLock<Arc<FileTable>>,
    rescan: Once,
}

impl LiveTable {
    pub fn new(root: PathBuf, table: FileTable) -> Arc<LiveTable> {
        Arc::new(LiveTable {
            root,
            current: RwLock::new(Arc::new(table)),
            rescan: Once::new(),
        })
    }

    /// The table in force (a cheap `Arc` clone; the lock is held for the clone only).
    pub fn table(self: &Arc<Self>) -> Arc<FileTable> {
        self.rescan.call_once(|| self.start_rescan());
        self.table_now()
    }

    fn start_rescan(self: &Arc<Self>) {
        let live = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("files".into())
            .spawn(move || loop {
                std::thread::sleep(RESCAN);
                let Some(live) = live.upgrade() else { return };
                let previous = live.table_now();
                match FileTable::scan(&live.root, &previous) {
                    Ok(table) => match live.current.write() {
                        Ok(mut t) => *t = Arc::new(table),
                        Err(p) => *p.into_inner() = Arc::new(table),
                    },
                    Err(e) => crate::warn!("static files: {e}; serving the last scan"),
                }
            });
        if let Err(e) = spawned {
            crate::warn!("static files: cannot start the rescan thread: {e}");
        }
    }

    fn table_now(&self) -> Arc<FileTable> {
        match self.current.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}
