//! The test kit of sse-kafka: what the black-box integration tests (`tests/`), the config unit
//! tests and the benchmark harness (`bench/`) share.
//!
//! Every test starts its own processes on its own loopback ports: a `tansu` broker (memory
//! storage), the built `sse-kafka` binary, real `curl` clients, and, where needed, a TCP relay
//! that can cut the broker connections. Everything is killed on drop, also when a test panics;
//! a failing test prints the server's stderr and the tail of the broker's log.
//!
//! One file a noun: [`ports`], [`process`], [`broker`] (tansu), [`producer`] (rdkafka),
//! [`server`] (the `sse-kafka` process), [`zilla`] (the zilla.yaml builder), [`sse`], [`curl`],
//! [`http1`], [`relay`], [`delivery`], [`prom`], [`h2`] and [`h2wire`] (raw HTTP/2), [`jwt`],
//! [`secure`] (SASL and TLS brokers), [`chromium`], [`models`], [`resumer`], [`ids`].

pub mod broker;
pub mod curl;
pub mod delivery;
pub mod http1;
pub mod ids;
pub mod ports;
pub mod process;
pub mod producer;
pub mod prom;
pub mod relay;
pub mod server;
pub mod sse;
pub mod zilla;

pub mod chromium;
pub mod h2;
/// Raw HTTP/2 frames for the conformance and hardening tests.
pub mod h2wire;
pub mod jwt;
pub mod models;
pub mod resumer;
pub mod secure;

pub use broker::*;
pub use curl::*;
pub use delivery::*;
pub use http1::*;
pub use ids::*;
pub use ports::*;
pub use process::*;
pub use producer::*;
pub use prom::*;
pub use relay::*;
pub use server::*;
pub use sse::*;
pub use zilla::*;
