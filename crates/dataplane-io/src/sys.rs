//! Thin, safe wrappers over the Linux system calls the I/O shell needs: interface lookups
//! (`if_nametoindex`, `SIOCGIFMTU`, `SIOCGIFHWADDR`), `eventfd(2)`, `epoll(7)`, `setsockopt(2)`
//! and the fabric "listener" sockets (UDP 6635 / 4789 and raw IPPROTO_GRE) that stop the host
//! kernel from answering overlay packets with ICMP unreachable.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment; nothing here is `unsafe` to call.

#![allow(unsafe_code)] // reason: the only module (with ring.rs) that talks to libc directly

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::IoError;

/// Last OS error with the name of the call that failed.
pub(crate) fn os_err(call: &'static str) -> IoError {
    IoError::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Ask the kernel to back the 2 MiB-aligned part of each range with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`; THP is in `madvise` mode on most distributions), for the
/// forwarder's flow table (`Forwarder::new_advised`). Returns the bytes advised; ranges the
/// kernel refuses are skipped (the table works on small pages, only with more TLB misses).
pub fn advise_hugepages(ranges: &[filament_dataplane::MemRange]) -> usize {
    const HUGE: usize = 2 << 20;
    let mut advised = 0;
    for r in ranges {
        let start = r.addr.next_multiple_of(HUGE);
        let end = r.addr.saturating_add(r.len) / HUGE * HUGE;
        if end <= start {
            continue;
        }
        // SAFETY: `[start, end)` lies inside a live allocation the forwarder owns (its flow
        // table, which never moves or grows); MADV_HUGEPAGE only changes how the kernel backs
        // those pages, never their contents, and touches no Rust-visible state.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        if rc == 0 {
            advised += end - start;
        }
    }
    advised
}

/// Interface index of `ifname` in the current network namespace.
pub fn if_index(ifname: &str) -> Result<u32, IoError> {
    let c = CString::new(ifname).map_err(|_| IoError::BadIfName {
        ifname: ifname.to_string(),
    })?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(IoError::NoSuchInterface {
            ifname: ifname.to_string(),
        });
    }
    Ok(idx)
}

/// An `ifreq` for `ifname` (name copied, rest zeroed).
fn ifreq(ifname: &str) -> Result<libc::ifreq, IoError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(IoError::BadIfName {
            ifname: ifname.to_string(),
        });
    }
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

/// A throw-away datagram socket for interface ioctls.
fn ioctl_sock() -> Result<OwnedFd, IoError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket(AF_INET)"));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// MTU of `ifname` (SIOCGIFMTU).
pub fn if_mtu(ifname: &str) -> Result<u32, IoError> {
    let s = ioctl_sock()?;
    let mut req = ifreq(ifname)?;
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_mtu inside `req`, which we own.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFMTU, &mut req) };
    if r < 0 {
        return Err(os_err("ioctl(SIOCGIFMTU)"));
    }
    // SAFETY: the kernel filled the `ifru_mtu` member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(u32::try_from(mtu).unwrap_or(1500))
}

/// Hardware (MAC) address of `ifname` (SIOCGIFHWADDR).
pub fn if_mac(ifname: &str) -> Result<[u8; 6], IoError> {
    let s = ioctl_sock()?;
    let mut req = ifreq(ifname)?;
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr inside `req`, which we own.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if r < 0 {
        return Err(os_err("ioctl(SIOCGIFHWADDR)"));
    }
    // SAFETY: the kernel filled the `ifru_hwaddr` member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// `setsockopt(fd, level, name, &value)` for any plain-old-data `value`.
pub(crate) fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    call: &'static str,
) -> Result<(), IoError> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to `len` readable bytes for the duration of the call.
    let r = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), len) };
    if r < 0 {
        return Err(os_err(call));
    }
    Ok(())
}

/// One classic BPF instruction.
fn bpf_insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Attach a classic BPF program to a socket (`SO_ATTACH_FILTER`); the kernel copies it.
fn attach_filter(
    fd: RawFd,
    insn: &mut [libc::sock_filter],
    call: &'static str,
) -> Result<(), IoError> {
    let prog = libc::sock_fprog {
        len: insn.len() as u16,
        filter: insn.as_mut_ptr(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog, call)
}

/// A classic BPF program that accepts nothing (`ret #0`): attached to the fabric listener
/// sockets so the kernel finds a socket (no ICMP unreachable) but queues nothing to it.
fn attach_drop_all(fd: RawFd) -> Result<(), IoError> {
    let mut insn = [bpf_insn(libc::BPF_RET | libc::BPF_K, 0, 0, 0)];
    attach_filter(fd, &mut insn, "setsockopt(SO_ATTACH_FILTER)")
}

/// A classic BPF program that accepts ARP frames only (`ldh [12]; jeq #0x806; ret #-1; ret #0`):
/// the fabric's side socket in AF_XDP mode, where overlay packets arrive on the XDP socket but
/// ARP still goes up the kernel stack and the forwarder learns its fabric neighbours from a copy.
pub(crate) fn attach_arp_only(fd: RawFd) -> Result<(), IoError> {
    let mut insn = [
        bpf_insn(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 12),
        bpf_insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, 0x0806),
        bpf_insn(libc::BPF_RET | libc::BPF_K, 0, 0, 0xffff_ffff),
        bpf_insn(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ];
    attach_filter(fd, &mut insn, "setsockopt(SO_ATTACH_FILTER, arp only)")
}

/// The sockets that keep the host kernel quiet about overlay packets addressed to its fabric
/// IP: AF_PACKET only copies frames, so the kernel also sees every MPLSoUDP / VXLAN / GRE packet
/// and would answer "port (protocol) unreachable" without a matching socket. Each socket drops
/// everything through a BPF filter.
#[derive(Debug)]
pub struct FabricListeners {
    /// UDP sockets bound to 0.0.0.0:<port>.
    _udp: Vec<std::net::UdpSocket>,
    /// The raw IPPROTO_GRE socket, if it could be opened.
    _gre: Option<OwnedFd>,
}

impl FabricListeners {
    /// Open UDP listeners on `udp_ports` and a raw GRE socket in the current netns.
    pub fn open(udp_ports: &[u16]) -> Result<Self, IoError> {
        let mut udp = Vec::new();
        for &port in udp_ports {
            let s = std::net::UdpSocket::bind(("0.0.0.0", port)).map_err(|source| {
                IoError::FabricSocket {
                    what: "udp",
                    port,
                    source,
                }
            })?;
            attach_drop_all(s.as_raw_fd())?;
            udp.push(s);
        }
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_GRE,
            )
        };
        if fd < 0 {
            return Err(os_err("socket(SOCK_RAW, IPPROTO_GRE)"));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let gre = unsafe { OwnedFd::from_raw_fd(fd) };
        attach_drop_all(gre.as_raw_fd())?;
        Ok(Self {
            _udp: udp,
            _gre: Some(gre),
        })
    }
}

/// A non-blocking `eventfd(2)`: the command channel's doorbell for the run loop.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd, non-blocking, close-on-exec.
    pub fn new() -> Result<Self, IoError> {
        // SAFETY: plain eventfd(2) call; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_err("eventfd"));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Ring the bell (adds 1 to the counter). Errors are ignored: a full counter still wakes.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from `one`, which lives for the call.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Reset the counter (after a wakeup).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into `v`, which lives for the call.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    /// The descriptor, for epoll registration.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// An epoll instance watching descriptors for readability, each tagged with a `u64`.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    /// A new epoll instance.
    pub fn new() -> Result<Self, IoError> {
        // SAFETY: plain epoll_create1(2) call; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(os_err("epoll_create1"));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watch `fd` for input, reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> Result<(), IoError> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(os_err("epoll_ctl(ADD)"));
        }
        Ok(())
    }

    /// Stop watching `fd`.
    pub fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is valid for the call (ignored by EPOLL_CTL_DEL on modern kernels).
        let _ = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Wait up to `timeout_ms` and push the tokens of ready descriptors into `out`.
    pub fn wait(&self, timeout_ms: i32, out: &mut Vec<u64>) -> Result<(), IoError> {
        out.clear();
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 32];
        // SAFETY: `evs` has room for 32 events; the kernel writes at most that many.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), 32, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(IoError::Sys {
                call: "epoll_wait",
                source: e,
            });
        }
        for ev in evs.iter().take(usize::try_from(n).unwrap_or(0)) {
            out.push(ev.u64);
        }
        Ok(())
    }
}

/// Bind AF_PACKET socket `fd` to `ifindex` for `protocol` (network byte order; 0: receive
/// nothing).
pub(crate) fn bind_packet(fd: RawFd, ifindex: u32, protocol: u16) -> Result<(), IoError> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol;
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a valid sockaddr_ll for the duration of the call.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(os_err("bind(AF_PACKET)"));
    }
    Ok(())
}

/// A transmit-only AF_PACKET socket (no rings, `PACKET_VNET_HDR`) bound to one interface:
/// how the shell hands the kernel a GSO super-frame ([`crate::gro`]). A socket with a TX ring
/// sends only its ring's frames, so these need a socket of their own.
#[derive(Debug)]
pub struct GsoSender(OwnedFd);

impl GsoSender {
    /// A socket bound to `ifindex` with protocol 0 (it receives nothing).
    pub fn open(ifindex: u32) -> Result<Self, IoError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &one,
            "PACKET_VNET_HDR",
        )?;
        bind_packet(fd.as_raw_fd(), ifindex, 0)?;
        Ok(Self(fd))
    }

    /// Send `frame` behind the 10-byte `virtio_net_hdr` `vnet` (one `sendmsg`, non-blocking).
    pub fn send(&self, vnet: &[u8; 10], frame: &[u8]) -> io::Result<()> {
        let iov = [
            libc::iovec {
                iov_base: vnet.as_ptr() as *mut libc::c_void,
                iov_len: vnet.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: msghdr is plain old data; all-zero is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        // SAFETY: `msg` points to two iovecs over buffers that stay borrowed (and are only read)
        // for the duration of the call.
        let r = unsafe { libc::sendmsg(self.0.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
