//! Verification keys of every guard. Inline and file keys are fixed at start; a JWKS URL is
//! fetched at start and refreshed periodically on a background thread, keeping the last good
//! set when a refresh fails (decisions.md 3.7: Zilla reads it once).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use proto::jwt::KeySet;

use super::jwks::JwksClient;
use crate::config::plan::{Guard, JwtKeys};

/// How soon a failed read is retried (at most; never later than the refresh interval).
const RETRY: Duration = Duration::from_secs(10);

pub struct GuardKeys {
    current: RwLock<Arc<KeySet>>,
}

impl GuardKeys {
    /// The keys in force (a cheap `Arc` clone; the lock is held for the clone only).
    pub fn get(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, keys: KeySet) {
        match self.current.write() {
            Ok(mut k) => *k = Arc::new(keys),
            Err(p) => *p.into_inner() = Arc::new(keys),
        }
    }
}

/// Keys of every guard by name.
#[derive(Default)]
pub struct Keys {
    by_guard: HashMap<String, Arc<GuardKeys>>,
}

impl Keys {
    /// Prepares every guard's keys; JWKS URLs are read once now (a failure is logged and the
    /// guard refuses tokens until a refresh succeeds) and then refreshed in the background.
    pub fn start(
        guards: &[Arc<Guard>],
        refresh: Duration,
        client: &JwksClient,
    ) -> Result<Arc<Keys>, String> {
        let mut keys = Keys::default();
        for guard in guards {
            let jwt = guard.jwt();
            let initial = match &jwt.keys {
                JwtKeys::Inline(set) => set.clone(),
                JwtKeys::File(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("guards.{}: {}: {e}", guard.name, path.display()))?;
                    Arc::new(
                        KeySet::from_jwks(&text).map_err(|e| {
                            format!("guards.{}: {}: {e}", guard.name, path.display())
                        })?,
                    )
                }
                JwtKeys::Url(_) => Arc::new(KeySet::new(Vec::new())),
            };
            let entry = Arc::new(GuardKeys {
                current: RwLock::new(initial),
            });
            if let JwtKeys::Url(url) = &jwt.keys {
                match client
                    .fetch(url)
                    .and_then(|t| KeySet::from_jwks(&t).map_err(|e| e.to_string()))
                {
                    Ok(set) => entry.set(set),
                    Err(e) => crate::warn!(
                        "guard {}: JWKS {url}: {e}; refusing tokens until it loads",
                        guard.name
                    ),
                }
                spawn_refresh(
                    guard.name.clone(),
                    url.clone(),
                    entry.clone(),
                    refresh,
                    client.clone(),
                );
            }
            keys.by_guard.insert(guard.name.clone(), entry);
        }
        Ok(Arc::new(keys))
    }

    pub fn guard(&self, name: &str) -> Option<Arc<KeySet>> {
        self.by_guard.get(name).map(|k| k.get())
    }
}

fn spawn_refresh(
    guard: String,
    url: String,
    keys: Arc<GuardKeys>,
    refresh: Duration,
    client: JwksClient,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("jwks-{guard}"))
        .spawn(move || {
            let mut wait = refresh;
            loop {
                std::thread::sleep(wait);
                match client
                    .fetch(&url)
                    .and_then(|t| KeySet::from_jwks(&t).map_err(|e| e.to_string()))
                {
                    Ok(set) => {
                        keys.set(set);
                        wait = refresh;
                    }
                    Err(e) => {
                        crate::warn!(
                            "guard {guard}: JWKS refresh from {url}: {e}; keeping the last keys"
                        );
                        wait = RETRY.min(refresh);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        crate::warn!("guard: cannot start the JWKS refresh thread: {e}");
    }
}
