//! The integration tests' shared harness lives in the `testkit` crate (testkit/); this module
//! re-exports it so that `mod common; use common::*;` and paths like `common::h2::Client` or
//! `common::jwt::Chain` keep working in every test file.
#![allow(unused_imports, dead_code)]

pub use testkit::*;
pub use testkit::{chromium, h2, h2wire, jwt, models, resumer, secure};
