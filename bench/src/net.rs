//! Sockets the harness needs that std and monoio do not offer directly: a client socket bound
//! to a chosen source address before connecting, and a SO_REUSEPORT listener.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::{FromRawFd, RawFd};

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only")),
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid fd and a c_int option value of the right size.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Starts a non-blocking connect from `src` (any port: the port is chosen at connect time with
/// IP_BIND_ADDRESS_NO_PORT, so each source address gives a full ephemeral range per
/// destination). The returned stream may still be connecting: wait for writability, then
/// check `take_error`.
pub fn start_connect(src: Ipv4Addr, dst: SocketAddr) -> io::Result<std::net::TcpStream> {
    let dst = v4(dst)?;
    // SAFETY: plain socket syscalls on a descriptor this function owns until it is returned.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let stream = std::net::TcpStream::from_raw_fd(fd);
        set_int(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)?;
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
        if !src.is_unspecified() {
            let sa = sockaddr_in(SocketAddrV4::new(src, 0));
            check(libc::bind(
                fd,
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ))?;
        }
        let sa = sockaddr_in(dst);
        let r = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        Ok(stream)
    }
}

/// A non-blocking listener with SO_REUSEADDR and SO_REUSEPORT (one per worker thread).
pub fn listen_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let a = v4(addr)?;
    // SAFETY: as above.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let l = TcpListener::from_raw_fd(fd);
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        let sa = sockaddr_in(a);
        check(libc::bind(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ))?;
        check(libc::listen(fd, backlog))?;
        Ok(l)
    }
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A free port on 127.0.0.1 below the ephemeral range (so outgoing connections cannot take it
/// between the check and the listener's bind).
pub fn free_port() -> u16 {
    let low_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .min(65535);
    let (low, high) = (10_000u32, low_ephemeral);
    let seed = (std::process::id() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(crate::payload::mono_ns());
    if high > low + 1000 {
        let span = (high - low) as u64;
        for i in 0..span {
            let port = (low as u64 + (seed.wrapping_add(i * 7919)) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}
