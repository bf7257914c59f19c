//! Hand-offs between tasks and threads that know nothing of what they carry: the workers'
//! inboxes and a set-once signal. Below the fan-out and the runtime, which both use them.

pub mod mesh;
pub mod signal;

pub use mesh::Mesh;
pub use signal::Signal;
