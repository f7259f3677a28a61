//! TCP MD5 signatures (RFC 2385) with Linux's `TCP_MD5SIG` socket option.
//!
//! The kernel keeps one key per peer address on a socket. On a listening socket the key
//! for a peer applies to that peer's SYNs and is copied into the connection it accepts;
//! on a connecting socket it must be set before `connect`. Per RFC 2385 §2.0 the kernel
//! does the checking: "Upon receiving a signed segment, the receiver must validate it by
//! calculating its own digest from the same data (using its own key) and comparing the
//! two digest. A failing comparison must result in the segment being dropped and must not
//! produce any response back to the sender." So a peer with another key (or none) is never
//! answered: its connect times out, and nothing reaches the application.
//!
//! ```text
//! struct tcp_md5sig {                      (linux/tcp.h)
//!     struct __kernel_sockaddr_storage tcpm_addr;   128 bytes: the peer
//!     __u8  tcpm_flags;                    0: no prefix, no ifindex
//!     __u8  tcpm_prefixlen;
//!     __u16 tcpm_keylen;                   0 removes the peer's key
//!     int   tcpm_ifindex;
//!     __u8  tcpm_key[TCP_MD5SIG_MAXKEYLEN];   80 bytes
//! };
//! ```

#![allow(unsafe_code)] // reason: setsockopt/getsockopt with a C struct (each block has a SAFETY note)

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

/// The longest key the kernel takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` of linux/tcp.h (the layout above; 216 bytes).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// Set (`Some`) or remove (`None`) the RFC 2385 key for `peer` (its port is ignored) on a
/// TCP socket: a listener (the key then applies to that peer's incoming connections) or a
/// socket about to connect to it. Removing a key that is not set is not an error.
///
/// An IPv4 peer on an IPv6 socket is keyed as its IPv4-mapped address, as the kernel
/// sees a dual-stack connection from it.
///
/// # Errors
/// `InvalidInput` for an empty key, a key longer than [`MAX_KEY_LEN`] bytes, or an IPv6
/// peer on an IPv4 socket; otherwise the OS error (e.g. `ENOTSOCK`, or `ENOPROTOOPT` on a
/// kernel without `CONFIG_TCP_MD5SIG`).
pub fn set_tcp_md5sig(sock: &impl AsFd, peer: SocketAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = match key {
        Some([]) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TCP MD5 key is empty (remove a key with None)",
            ))
        }
        Some(k) if k.len() > MAX_KEY_LEN => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TCP MD5 key is {} bytes, longer than the kernel's limit of {MAX_KEY_LEN} (TCP_MD5SIG_MAXKEYLEN)",
                    k.len()
                ),
            ))
        }
        Some(k) => k,
        None => &[],
    };
    let fd = sock.as_fd();
    let v6_socket = socket_domain(fd.as_raw_fd())? == libc::AF_INET6;
    let mut sig = TcpMd5Sig {
        // SAFETY: sockaddr_storage is plain old data (integers and padding), for which
        // all-zero bytes are a valid value (AF_UNSPEC).
        addr: unsafe { std::mem::zeroed() },
        flags: 0,
        prefixlen: 0,
        // MAX_KEY_LEN (80) fits a u16.
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    write_addr(&mut sig.addr, peer.ip(), v6_socket)?;
    // SAFETY: `fd` is a valid open descriptor for the duration of the call (borrowed);
    // `sig` is a live, initialized `struct tcp_md5sig` and the length passed is its exact
    // size, so the kernel reads only memory we own.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::addr_of!(sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    // Removing a key the socket does not have: nothing to do.
    if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) {
        return Ok(());
    }
    Err(e)
}

/// The socket's address family (`SO_DOMAIN`).
fn socket_domain(fd: libc::c_int) -> io::Result<libc::c_int> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `domain` and `len` are live locals; `len` holds the size of `domain`, so the
    // kernel writes at most that many bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            std::ptr::addr_of_mut!(domain).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(domain)
}

/// Write `ip` into the storage as a `sockaddr_in` (IPv4 socket) or `sockaddr_in6` (IPv6
/// socket; an IPv4 peer becomes IPv4-mapped).
fn write_addr(st: &mut libc::sockaddr_storage, ip: IpAddr, v6_socket: bool) -> io::Result<()> {
    let ip = match (ip, v6_socket) {
        (IpAddr::V6(v6), false) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TCP MD5 key for IPv6 peer {v6} on an IPv4 socket"),
                ))
            }
        },
        (IpAddr::V4(v4), true) => IpAddr::V6(v4.to_ipv6_mapped()),
        (ip, _) => ip,
    };
    match ip {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in (that is
            // its purpose), and the write stays inside `st`, which we borrow mutably.
            unsafe { std::ptr::write((st as *mut libc::sockaddr_storage).cast(), sin) };
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6 (28 bytes, within the 128 of storage).
            unsafe { std::ptr::write((st as *mut libc::sockaddr_storage).cast(), sin6) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, keylen), 130);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, ifindex), 132);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, key), 136);
    }

    #[test]
    fn ipv4_peer_on_ipv6_socket_is_mapped_and_ipv6_on_ipv4_refused() {
        // SAFETY: zeroed sockaddr_storage is valid, as in the code above.
        let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        write_addr(&mut st, "192.0.2.1".parse().unwrap(), true).unwrap();
        assert_eq!(i32::from(st.ss_family), libc::AF_INET6);
        // SAFETY: the family says the storage holds a sockaddr_in6.
        let sin6: libc::sockaddr_in6 =
            unsafe { std::ptr::read((&st as *const libc::sockaddr_storage).cast()) };
        let want: std::net::Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(sin6.sin6_addr.s6_addr, want.octets());
        let e = write_addr(&mut st, "2001:db8::1".parse().unwrap(), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        write_addr(&mut st, "::ffff:192.0.2.7".parse().unwrap(), false).unwrap();
        assert_eq!(i32::from(st.ss_family), libc::AF_INET);
    }
}
