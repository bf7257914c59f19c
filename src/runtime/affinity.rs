//! The CPUs this process may run on (`sched_getaffinity`: taskset, cpusets, container limits)
//! and pinning a worker thread to one of them.

/// The CPUs the calling thread may run on, in increasing order; `[0]` when the kernel does
/// not say (the pins then fail and are logged).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask on the stack, sized as the kernel expects;
    // sched_getaffinity writes at most that many bytes into it.
    let (rc, set) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (rc, set)
    };
    if rc != 0 {
        return vec![0];
    }
    // SAFETY: CPU_ISSET only reads the bitmask, for indices below CPU_SETSIZE.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// Pins the calling thread to `cpu`; the error is returned for the caller to log.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    // SAFETY: as above; sched_setaffinity only reads the bitmask.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_allowed_cpus_include_the_one_running_this() {
        let cpus = super::allowed_cpus();
        assert!(!cpus.is_empty());
        // SAFETY: sched_getcpu has no preconditions.
        let current = unsafe { libc::sched_getcpu() };
        assert!(
            current < 0 || cpus.contains(&(current as usize)),
            "{cpus:?} {current}"
        );
    }
}
