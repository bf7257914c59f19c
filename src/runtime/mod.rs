//! Thread-per-core runtime: one monoio worker per core (io_uring, epoll fallback), each pinned,
//! each with its own listeners, connections, owned partitions and fan-out hub.

pub mod affinity;
pub mod drain;
pub mod listener;
pub mod options;
pub mod worker;
