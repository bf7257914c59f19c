//! Compiled schemas shared by every worker, and the thread that fetches and compiles them.
//!
//! A worker that meets a schema it has not seen (a registry id in a record, or a subject's
//! `latest` past `max-age`) asks the schema thread and waits without blocking its event loop
//! (it polls the shared entry on a short timer: this happens once per schema, not per record).
//! A schema answered "not found" (or one that does not compile) is remembered as invalid, so
//! records naming it are skipped; a registry that cannot be reached is not remembered, so the
//! chunk is held back and fetched again.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::catalog::{self, LookupError};
use crate::config::{ModelConfig, ModelKind, SchemaSelector};

use super::schema::{compile, Compiled};

/// Which schema: by id, or by subject and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    Id(u32),
    Subject(String, String),
}

/// A schema of one catalog compiled for one model (and protobuf record).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    pub catalog: String,
    pub kind: ModelKind,
    pub record: Option<String>,
    pub schema: SchemaRef,
}

pub type Resolved = Result<Arc<Compiled>, String>;

enum Entry {
    /// Asked of the schema thread.
    Pending,
    /// A compiled schema, or why there is none (records naming it are invalid).
    Ready { result: Resolved, at: Instant },
    /// The registry could not be asked; the waiters give up (and the chunk is retried).
    Unavailable(String),
}

struct Job {
    key: StoreKey,
    model: ModelConfig,
}

struct Store {
    entries: Mutex<HashMap<StoreKey, Entry>>,
    jobs: Mutex<Option<Sender<Job>>>,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| Store {
        entries: Mutex::new(HashMap::new()),
        jobs: Mutex::new(None),
    })
}

/// How long a worker waits for the schema thread before it holds the chunk back.
const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(2);

/// Whether an answer for `key` is still good: ids and numbered versions forever, a subject's
/// `latest` for the registry's `max-age`.
fn fresh(key: &StoreKey, model: &ModelConfig, at: Instant) -> bool {
    match (&key.schema, &model.catalog.kind) {
        (SchemaRef::Subject(_, version), crate::config::CatalogKind::SchemaRegistry(options))
            if version == "latest" =>
        {
            at.elapsed() < options.max_age
        }
        _ => true,
    }
}

/// Fetches and compiles now, on this thread (start-up, the schema thread, `check`).
pub fn resolve_blocking(key: &StoreKey, model: &ModelConfig) -> Result<Resolved, String> {
    let schema = match &key.schema {
        SchemaRef::Id(id) => catalog::by_id(&model.catalog, *id),
        SchemaRef::Subject(subject, version) => catalog::lookup(&model.catalog, subject, version),
    };
    match schema {
        Ok(schema) => Ok(compile(key.kind, &schema.text, key.record.as_deref())
            .map(Arc::new)
            .map_err(|e| format!("schema {} of catalog {}: {e}", schema.id, key.catalog))),
        Err(LookupError::NotFound(why)) => Ok(Err(why)),
        Err(LookupError::Unavailable(why)) => Err(why),
    }
}

/// Stores a schema compiled at start.
pub fn insert(key: StoreKey, result: Resolved) {
    if let Ok(mut entries) = store().entries.lock() {
        entries.insert(
            key,
            Entry::Ready {
                result,
                at: Instant::now(),
            },
        );
    }
}

/// The compiled schema for `key`; `Err(why)` when the registry cannot be reached now (the
/// caller holds its chunk back). Waits (asynchronously) for the schema thread on a miss.
pub async fn get(key: &StoreKey, model: &ModelConfig) -> Result<Resolved, String> {
    let started = Instant::now();
    let mut asked = false;
    loop {
        {
            let Ok(mut entries) = store().entries.lock() else {
                return Err("schema store poisoned".to_owned());
            };
            match entries.get(key) {
                Some(Entry::Ready { result, at }) => {
                    let result = result.clone();
                    if !fresh(key, model, *at) {
                        // Serve the known schema and refresh it in the background (marked
                        // fresh meanwhile, so it is asked once).
                        entries.insert(
                            key.clone(),
                            Entry::Ready {
                                result: result.clone(),
                                at: Instant::now(),
                            },
                        );
                        drop(entries);
                        ask(key, model);
                    }
                    return Ok(result);
                }
                Some(Entry::Unavailable(why)) if asked => {
                    let why = why.clone();
                    entries.remove(key);
                    return Err(why);
                }
                Some(Entry::Pending) => {}
                Some(Entry::Unavailable(_)) | None => {
                    entries.insert(key.clone(), Entry::Pending);
                    drop(entries);
                    ask(key, model);
                }
            }
        }
        if started.elapsed() > WAIT {
            return Err(format!("schema {key:?}: no answer within {WAIT:?}"));
        }
        asked = true;
        monoio::time::sleep(POLL).await;
    }
}

fn ask(key: &StoreKey, model: &ModelConfig) {
    let Ok(mut jobs) = store().jobs.lock() else {
        return;
    };
    if jobs.is_none() {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("sse-kafka-schemas".to_owned())
            .spawn(move || {
                for job in rx {
                    let entry = match resolve_blocking(&job.key, &job.model) {
                        Ok(result) => {
                            if let Err(why) = &result {
                                crate::warn!("{}: {why}", job.model.path);
                            }
                            Entry::Ready {
                                result,
                                at: Instant::now(),
                            }
                        }
                        Err(why) => {
                            crate::warn!("{}: {why}", job.model.path);
                            Entry::Unavailable(why)
                        }
                    };
                    if let Ok(mut entries) = store().entries.lock() {
                        // A background refresh that failed keeps the schema it had.
                        let keep = matches!(
                            (&entry, entries.get(&job.key)),
                            (Entry::Unavailable(_), Some(Entry::Ready { .. }))
                        );
                        if !keep {
                            entries.insert(job.key, entry);
                        }
                    }
                }
            });
        match spawned {
            Ok(_) => *jobs = Some(tx),
            Err(e) => {
                crate::error!("cannot start the schema thread: {e}");
                return;
            }
        }
    }
    if let Some(tx) = jobs.as_ref() {
        let _ = tx.send(Job {
            key: key.clone(),
            model: model.clone(),
        });
    }
}

/// The schema a model names for `topic` when the record carries no id of its own.
pub fn configured(model: &ModelConfig, topic: &str, is_key: bool) -> StoreKey {
    let schema = match &model.selector {
        SchemaSelector::Id(id) => SchemaRef::Id(*id),
        _ => {
            let (subject, version) = model
                .subject(topic, is_key)
                .unwrap_or_else(|| (String::new(), "latest"));
            SchemaRef::Subject(subject, version.to_owned())
        }
    };
    StoreKey {
        catalog: model.catalog.name.clone(),
        kind: model.model,
        record: model.record.clone(),
        schema,
    }
}
