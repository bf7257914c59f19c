//! Secured brokers for tests: tansu with SASL (`--authentication`, users in a sqlite storage),
//! Debian's haproxy terminating TLS in front of tansu, and a test CA made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::{
    api_versions_ok, command, echo, find_program, free_port, kill_and_wait, tansu_bin,
    wait_for_port, wait_until, Lines, Producer, WAIT,
};

/// A tansu broker on `sqlite://tansu.db` in its own directory; restartable with or without
/// `--authentication` on the same storage (users and topics survive).
pub struct SaslBroker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    log: Arc<Lines>,
}

impl SaslBroker {
    /// Starts without authentication, creates `users` (name, password, `scram256|scram512`) and
    /// `topics` (name, partitions), then restarts with `--authentication`.
    pub fn start(users: &[(&str, &str, &str)], topics: &[(&str, i32)]) -> SaslBroker {
        let mut broker = SaslBroker {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            child: None,
            log: Arc::new(Lines::default()),
        };
        broker.run(false);
        for (name, password, mechanism) in users {
            broker.tansu(&["user", "create", name, password, "--mechanism", mechanism]);
        }
        for (name, partitions) in topics {
            broker.tansu(&[
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ]);
        }
        broker.stop();
        broker.run(true);
        broker
    }

    fn tansu(&self, args: &[&str]) {
        let out = command(tansu_bin())
            .current_dir(self.dir.path())
            .args(args)
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr()))
            .output()
            .expect("run tansu");
        assert!(
            out.status.success(),
            "tansu {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run(&mut self, authentication: bool) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = command(tansu_bin());
        cmd.current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if authentication {
            cmd.arg("--authentication");
        }
        let mut child = cmd.spawn().expect("spawn tansu");
        self.log
            .spawn_reader(child.stdout.take().unwrap(), echo("[tansu] "));
        self.log
            .spawn_reader(child.stderr.take().unwrap(), echo("[tansu] "));
        self.child = Some(child);
        let addr = self.addr();
        let ready = wait_until(WAIT, || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("tansu exited early ({status}):\n{}", self.log.text());
            }
            api_versions_ok(&addr)
        });
        assert!(
            ready,
            "tansu did not answer on {addr}:\n{}",
            self.log.text()
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A librdkafka producer authenticating with SCRAM (`mechanism`: `SCRAM-SHA-256|512`).
    pub fn producer(&self, mechanism: &str, user: &str, password: &str) -> Producer {
        Producer::with_options(
            &self.addr(),
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", user),
                ("sasl.password", password),
            ],
        )
    }
}

impl Drop for SaslBroker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- tansu (sasl) last 40 lines ---\n{}\n---",
                self.log.tail(40)
            );
        }
    }
}

/// A test certificate authority and the certificates it signs, made with the openssl CLI.
pub struct TestCa {
    pub dir: PathBuf,
    name: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = command("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// `NAME.pem` / `NAME.key` in `dir`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        TestCa {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
        }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// Signs a leaf `FILE.pem` (+ `FILE.key`, + `FILE-bundle.pem` = cert then key, as haproxy
    /// wants) for `san` (e.g. `DNS:kafka.test,IP:127.0.0.1`), server or client use.
    pub fn sign(&self, file: &str, san: &str, client: bool) -> PathBuf {
        let usage = if client { "clientAuth" } else { "serverAuth" };
        let ext = self.dir.join(format!("{file}.ext"));
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\nsubjectAltName={san}\n"
            ),
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{file}.key"),
                "-out",
                &format!("{file}.csr"),
                "-subj",
                &format!("/CN={file}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{file}.csr"),
                "-CA",
                &format!("{}.pem", self.name),
                "-CAkey",
                &format!("{}.key", self.name),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{file}.ext"),
                "-out",
                &format!("{file}.pem"),
            ],
        );
        let mut bundle = std::fs::read(self.dir.join(format!("{file}.pem"))).unwrap();
        bundle.extend(std::fs::read(self.dir.join(format!("{file}.key"))).unwrap());
        std::fs::write(self.dir.join(format!("{file}-bundle.pem")), bundle).unwrap();
        self.dir.join(format!("{file}.pem"))
    }

    /// A PKCS#12 truststore `FILE` holding this CA's certificate under `alias`.
    pub fn truststore(&self, file: &str, alias: &str, password: &str) -> PathBuf {
        openssl(
            &self.dir,
            &[
                "pkcs12",
                "-export",
                "-nokeys",
                "-in",
                &format!("{}.pem", self.name),
                "-caname",
                alias,
                "-out",
                file,
                "-passout",
                &format!("pass:{password}"),
            ],
        );
        self.dir.join(file)
    }

    /// A PKCS#12 keystore `FILE` with leaf `leaf` (signed by [`TestCa::sign`]) under `alias`.
    pub fn keystore(&self, leaf: &str, file: &str, alias: &str, password: &str) -> PathBuf {
        openssl(
            &self.dir,
            &[
                "pkcs12",
                "-export",
                "-in",
                &format!("{leaf}.pem"),
                "-inkey",
                &format!("{leaf}.key"),
                "-name",
                alias,
                "-out",
                file,
                "-passout",
                &format!("pass:{password}"),
            ],
        );
        self.dir.join(file)
    }
}

/// Debian's haproxy terminating TLS on `port` (`mode tcp`) and forwarding to `backend`;
/// with `client_ca`, a client certificate signed by it is required (mutual TLS).
pub struct Haproxy {
    child: Child,
    pub port: u16,
    log: Arc<Lines>,
}

pub fn haproxy_bin() -> PathBuf {
    find_program("haproxy")
        .or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.exists()))
        .expect("haproxy not found: run scripts/test (apt-get install haproxy)")
}

impl Haproxy {
    pub fn start(
        dir: &Path,
        port: u16,
        backend: &str,
        bundle: &Path,
        client_ca: Option<&Path>,
    ) -> Haproxy {
        let verify = match client_ca {
            Some(ca) => format!(" ca-file {} verify required", ca.display()),
            None => String::new(),
        };
        let cfg = dir.join(format!("haproxy-{port}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\
                 frontend tls\n  bind 127.0.0.1:{port} ssl crt {}{verify}\n  default_backend kafka\n\
                 backend kafka\n  server tansu {backend}\n",
                bundle.display()
            ),
        )
        .unwrap();
        let mut child = command(haproxy_bin())
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haproxy");
        let log = Arc::new(Lines::default());
        log.spawn_reader(child.stdout.take().unwrap(), echo("[haproxy] "));
        log.spawn_reader(child.stderr.take().unwrap(), echo("[haproxy] "));
        let up = wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        assert!(up, "haproxy did not listen on {port}:\n{}", log.text());
        Haproxy { child, port, log }
    }

    pub fn logs(&self) -> String {
        self.log.text()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
        if std::thread::panicking() {
            eprintln!("--- haproxy ---\n{}\n---", self.log.tail(20));
        }
    }
}

/// A zilla.yaml: `GET /{topic}` on `port` through sse-kafka and the kafka cache to the kafka
/// client `south_kafka_client`, whose `options` are `servers: [servers]` plus `client_options`
/// (YAML lines indented by 6 spaces, e.g. `authorization:`), exiting to `exit`; `top` holds
/// `guards:`/`vaults:` sections, `more_bindings` further bindings (indented by 2), and
/// `prometheus` a metrics port.
pub fn secured_yaml(
    port: u16,
    servers: &str,
    client_options: &str,
    exit: &str,
    top: &str,
    more_bindings: &str,
    prometheus: Option<u16>,
) -> String {
    let telemetry = match prometheus {
        Some(p) => format!(
            "telemetry:\n  exporters:\n    prom:\n      type: prometheus\n      options:\n        endpoints:\n          - scheme: http\n            port: {p}\n            path: /metrics\n"
        ),
        None => String::new(),
    };
    format!(
        "name: secured
{top}
bindings:
  north_tcp_server:
    type: tcp
    kind: server
    options:
      host: 127.0.0.1
      port: {port}
    exit: north_http_server
  north_http_server:
    type: http
    kind: server
    exit: north_sse_server
  north_sse_server:
    type: sse
    kind: server
    exit: north_sse_kafka_mapping
  north_sse_kafka_mapping:
    type: sse-kafka
    kind: proxy
    routes:
      - when:
          - path: /{{topic}}
        exit: north_kafka_cache_client
        with:
          topic: ${{params.topic}}
  north_kafka_cache_client:
    type: kafka
    kind: cache_client
    exit: south_kafka_cache_server
  south_kafka_cache_server:
    type: kafka
    kind: cache_server
    exit: south_kafka_client
  south_kafka_client:
    type: kafka
    kind: client
    options:
      servers:
        - {servers}
{client_options}
    exit: {exit}
{more_bindings}
  south_tcp_client:
    type: tcp
    kind: client
{telemetry}"
    )
}
