//! Secured brokers for tests: tansu with SASL (`--authentication`, users in a sqlite storage),
//! Debian's haproxy terminating TLS in front of tansu, and a test CA made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    command, curl, find_program, free_port, kill_and_wait, spawn_with, tansu_broker_command,
    tansu_cli, wait_for_port, wait_tansu_ready, Lines, Producer, Route, Server, Zilla,
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
        tansu_cli(Some(self.dir.path()), &self.addr(), args);
    }

    fn run(&mut self, authentication: bool) {
        let addr = self.addr();
        let mut cmd = tansu_broker_command(&addr, &addr, "sqlite://tansu.db");
        cmd.current_dir(self.dir.path());
        if authentication {
            cmd.arg("--authentication");
        }
        let mut child = cmd.spawn().expect("spawn tansu");
        self.log.read_child(&mut child, "[tansu] ");
        // Kept first, so that a failed start is still killed on drop.
        let child = self.child.insert(child);
        wait_tansu_ready(child, &self.log, &addr);
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

/// Runs `openssl args` (in `dir` when given), failing the test with openssl's stderr.
pub fn openssl_in(dir: Option<&Path>, args: &[&str]) {
    let mut cmd = command("openssl");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    openssl_in(Some(dir), args)
}

/// A self-signed P-256 certificate `cert` and its key `key` (paths relative to `dir` when
/// given), subject `subj`, valid two days, with these `-addext` extensions.
pub fn self_signed(dir: Option<&Path>, key: &str, cert: &str, subj: &str, exts: &[&str]) {
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        subj,
    ];
    for ext in exts {
        args.extend(["-addext", ext]);
    }
    openssl_in(dir, &args);
}

/// A throwaway self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert, key).
pub fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("test-cert.pem");
    let key = dir.join("test-key.pem");
    self_signed(
        None,
        &key.to_string_lossy(),
        &cert.to_string_lossy(),
        "/CN=localhost",
        &["subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    (cert, key)
}

impl TestCa {
    /// `NAME.pem` / `NAME.key` in `dir`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        self_signed(
            Some(dir),
            &format!("{name}.key"),
            &format!("{name}.pem"),
            &format!("/CN={name}"),
            &[
                "basicConstraints=critical,CA:TRUE",
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
        let mut child = spawn_with(
            command(haproxy_bin()).args(["-db", "-f"]).arg(&cfg),
            Stdio::piped(),
            Stdio::piped(),
        );
        let log = Arc::new(Lines::default());
        log.read_child(&mut child, "[haproxy] ");
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
    let mut z = Zilla::new(port, servers)
        .named("secured")
        .versions(&[])
        .same_origin()
        .route(Route::any_topic())
        .section(top)
        .kafka_options(client_options)
        .kafka_exit(exit)
        .more_bindings(more_bindings);
    if let Some(p) = prometheus {
        z = z.prometheus(p);
    }
    z.yaml()
}

/// A new stream on `server`'s `/events` is refused with 503 (its Kafka connection cannot be
/// made), within curl's 20 s.
pub fn assert_stream_refused(server: &Server) {
    let r = curl(
        &server.url("/events"),
        &["-H", "Accept: text/event-stream", "-m", "20"],
    );
    assert_eq!(r.status, 503, "{}", server.logs());
}
