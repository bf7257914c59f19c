//! Authorization with the `jwt` guard: verification keys per guard (kept current in the
//! background for JWKS URLs), sessions from request credentials, role checks on routes, and the
//! guard values templates read (`${guarded['g'].identity}`, `…attributes.a`).

pub mod jwks;
pub mod keys;
pub mod session;
