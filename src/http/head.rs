//! The request head lives below both HTTP and auth now (src/head.rs); the HTTP modules keep
//! naming it through here.

pub use crate::head::{Head, Secure};
