//! Stream admission: a global cap and a per-client-IP cap on open SSE streams, checked before any
//! per-stream state exists, and no stream at all once the process drains. A refused request is
//! shed (`shed.rs`: `200` with `retry:` for an EventSource, else `503`). Shared by all workers;
//! touched once when a stream opens and once when it ends, never per event.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open streams in the whole process; 0 = unlimited.
    pub max_streams: usize,
    /// Open streams per client IP; 0 = unlimited.
    pub max_streams_per_ip: usize,
    /// Base of the jittered `retry:` / `Retry-After` delay given to a shed request.
    pub shed_retry_ms: u64,
}

/// Why a stream was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `--max-streams` reached.
    Global,
    /// `--max-streams-per-ip` reached for this client.
    PerIp,
    /// The process is draining (SIGTERM): no new stream anywhere.
    Draining,
}

pub struct Admission {
    limits: Limits,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    draining: AtomicBool,
}

/// An admitted stream; dropping it gives the place back.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// From now on every new stream is refused (set once, by the signal thread).
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Admits one more stream from `ip`, or refuses when a cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        if self.draining() {
            return Err(Refused::Draining);
        }
        let max = self.limits.max_streams;
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(Refused::Global);
        }
        let mut ticket = Ticket {
            admission: self.clone(),
            ip: None,
        };
        let per_ip = self.limits.max_streams_per_ip;
        if per_ip > 0 {
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= per_ip {
                return Err(Refused::PerIp); // `ticket` drops and gives the global place back
            }
            *n += 1;
            ticket.ip = Some(ip);
        }
        Ok(ticket)
    }

    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut map = self
                .admission
                .per_ip
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_globally_and_per_ip() {
        let a = Admission::new(Limits {
            max_streams: 3,
            max_streams_per_ip: 2,
            shed_retry_ms: 1000,
        });
        let ip1: IpAddr = [127, 0, 0, 1].into();
        let ip2: IpAddr = [127, 0, 0, 2].into();
        let t1 = a.admit(ip1).expect("first");
        let t2 = a.admit(ip1).expect("second");
        assert_eq!(a.admit(ip1).err(), Some(Refused::PerIp), "per-ip cap");
        assert_eq!(a.open(), 2, "a refused ticket gives its global place back");
        let t3 = a.admit(ip2).expect("other ip");
        assert_eq!(a.admit(ip2).err(), Some(Refused::Global), "global cap");
        drop(t1);
        let _t4 = a.admit(ip1).expect("place given back");
        drop((t2, t3));
        assert_eq!(a.open(), 1);
        a.begin_drain();
        assert_eq!(a.admit(ip2).err(), Some(Refused::Draining));
        assert_eq!(a.open(), 1, "a drain refusal takes no place");
    }
}
