//! The HTTP side: connections, routing through the http binding, SSE requests, static files.

pub mod admission;
pub mod conn;
pub mod exchange;
pub mod files;
pub mod h2;
pub mod head;
pub mod route;
pub mod sse;
