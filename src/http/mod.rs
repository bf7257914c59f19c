//! The HTTP side: connections, routing through the http binding, SSE requests, static files.

pub mod admission;
pub mod conn;
pub mod files;
pub mod head;
pub mod route;
pub mod sse;
