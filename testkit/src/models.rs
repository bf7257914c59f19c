//! Helpers for the topic-model tests: a zilla.yaml with catalogs and topic models, a minimal
//! Confluent schema registry, and the Confluent framing.
//!
//! No schema registry installs from the registries this project can reach, so
//! [`TestRegistry`] is a small HTTP/1.1 server on a std thread that speaks the subset of the
//! Confluent REST API the `schema-registry` catalog uses: `GET /schemas/ids/{id}` and
//! `GET /subjects/{subject}/versions/{version|latest}`, answering JSON as Confluent's registry
//! does (`{"schema": "..."}` and `{"subject", "version", "id", "schema"}`), 404 otherwise. It
//! counts requests so tests can check schemas are cached by id.

use std::io::BufRead;
use std::io::BufReader;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::{q, Zilla};

/// One registered schema.
#[derive(Clone)]
struct Registered {
    id: u32,
    subject: String,
    version: u32,
    schema_type: Option<String>,
    text: String,
}

#[derive(Default)]
struct State {
    schemas: Mutex<Vec<Registered>>,
    requests: Mutex<Vec<String>>,
}

pub struct TestRegistry {
    pub port: u16,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    served: Arc<AtomicUsize>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind registry");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (state, stop, served) = (state.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            serve(stream, &state);
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    }
                }
            })
        };
        TestRegistry {
            port,
            state,
            stop,
            thread: Some(thread),
            served,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers `text` under `subject` as its next version with `id`; `schema_type` is
    /// `None` for Avro (Confluent leaves it out), `Some("PROTOBUF")`, `Some("JSON")`.
    pub fn register(&self, subject: &str, id: u32, schema_type: Option<&str>, text: &str) {
        let mut schemas = self.state.schemas.lock().unwrap();
        let version = schemas.iter().filter(|s| s.subject == subject).count() as u32 + 1;
        schemas.push(Registered {
            id,
            subject: subject.to_owned(),
            version,
            schema_type: schema_type.map(str::to_owned),
            text: text.to_owned(),
        });
    }

    /// Request paths served so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.served.load(Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        // Skip the headers (GET requests have no body).
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
        }
        state.requests.lock().unwrap().push(path.clone());
        let (status, body) = answer(&path, state);
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn schema_json(s: &Registered, with_subject: bool) -> String {
    let mut body = String::from("{");
    if with_subject {
        body += &format!(
            "\"subject\":{},\"version\":{},\"id\":{},",
            json_string(&s.subject),
            s.version,
            s.id
        );
    }
    if let Some(t) = &s.schema_type {
        body += &format!("\"schemaType\":{},", json_string(t));
    }
    body += &format!("\"schema\":{}}}", json_string(&s.text));
    body
}

fn not_found(code: u32, what: &str) -> (&'static str, String) {
    (
        "404 Not Found",
        format!("{{\"error_code\":{code},\"message\":\"{what} not found\"}}"),
    )
}

fn answer(path: &str, state: &State) -> (&'static str, String) {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let schemas = state.schemas.lock().unwrap();
    match parts.as_slice() {
        ["schemas", "ids", id] => match schemas.iter().find(|s| id.parse() == Ok(s.id)) {
            Some(s) => ("200 OK", schema_json(s, false)),
            None => not_found(40403, "Schema"),
        },
        ["subjects", subject, "versions", version] => {
            let subject = subject.replace("%2D", "-");
            let mut of_subject = schemas.iter().filter(|s| s.subject == subject);
            let found = if *version == "latest" {
                of_subject.next_back()
            } else {
                of_subject.find(|s| version.parse() == Ok(s.version))
            };
            match found {
                Some(s) => ("200 OK", schema_json(s, true)),
                None => not_found(40401, "Subject"),
            }
        }
        _ => not_found(404, "Path"),
    }
}

/// Confluent framing: magic byte 0, the schema id big-endian, then `payload`.
pub fn framed(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `Zilla`'s fan-out chain with `catalogs` (YAML mapping text, indented by two spaces) and,
/// on the cache_server topic `topic`, `key` and `value` models (flow-style YAML mappings).
pub fn with_models(
    zilla: &Zilla,
    catalogs: &str,
    topic: &str,
    key: Option<&str>,
    value: Option<&str>,
) -> String {
    let base = zilla.clone().topic_offset(topic, "historical").yaml();
    let line = format!(
        "        - name: {}\n          defaultOffset: historical\n",
        q(topic)
    );
    assert!(base.contains(&line), "topic entry not found in:\n{base}");
    let mut models = line.clone();
    if let Some(key) = key {
        models += &format!("          key: {key}\n");
    }
    if let Some(value) = value {
        models += &format!("          value: {value}\n");
    }
    let yaml = base.replacen(&line, &models, 1);
    yaml.replacen(
        "name: test\n",
        &format!("name: test\ncatalogs:\n{catalogs}"),
        1,
    )
}
