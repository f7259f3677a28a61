//! The XDP program that steers an interface's packets into an AF_XDP socket, hand-assembled and
//! loaded with the `bpf(2)` system call (no libbpf, no clang on the build hosts), plus the XSKMAP
//! it redirects through (Linux `Documentation/networking/af_xdp.rst`, `Documentation/bpf/`).
//!
//! The program is the C one-liner of af_xdp.rst, "return bpf_redirect_map(&xsks_map,
//! ctx->rx_queue_index, XDP_PASS);", optionally behind an overlay filter (fabric interfaces):
//!
//! ```text
//!  Overlay filter (fabric): redirect IPv4 UDP dport 6635 / 4789 and IP proto 47 (GRE) whose
//!  protocol type is MPLS (0x8847; GRE carrying anything else is the kernel's), with
//!  or without IPv4 options (IHL 5..15: the UDP header is at IHL*4), and IPv4 UDP / GRE whose
//!  IHL is below 5 or cut before their UDP ports / GRE protocol type (malformed / truncated: the forwarder counts
//!  it, as it does what AF_PACKET hands it); everything else (ARP, the host's own traffic)
//!  goes up the kernel stack (XDP_PASS).
//!  0  r2 = *(u32 *)(r1 + 0)        data
//!  1  r3 = *(u32 *)(r1 + 4)        data_end
//!  2  r4 = r2 ; 3 r4 += 34         the verifier needs the bounds check before any load
//!  4  if r4 > r3 goto pass
//!  5  r5 = *(u16 *)(r2 + 12) ; 6 if r5 != htons(0x0800) goto pass
//!  7  r5 = *(u8 *)(r2 + 14)  ; 8 if r5 == 0x45 goto ihl5      the common case first
//!  9  if r5 > 0x4f goto pass ; 10 if r5 < 0x40 goto pass      not version 4
//!  11 r6 = *(u8 *)(r2 + 23)  ; 12 if r6 == 47 goto optsl4     protocol, kept in r6
//!  13 if r6 != 17 goto pass
//!  optsl4:
//!  14 if r5 < 0x45 goto redirect                              IHL < 5: malformed, the
//!                                                             forwarder counts it
//!  15 r5 &= 0x0f ; 16 r5 <<= 2                                IHL*4, 24..60: a bounded scalar
//!  17 r4 = r2 ; 18 r4 += r5                                   data + IHL*4 (variable offset)
//!  19 r7 = r4 ; 20 r7 += 18 ; 21 if r7 > r3 goto redirect     header or L4 field cut: counted
//!  22 r5 = *(u16 *)(r4 + 16)                                  UDP dest. port / GRE protocol
//!  23 if r6 == 47 goto gre
//!  24 if r5 == htons(6635) goto redirect ; 25 if r5 == htons(4789) goto redirect
//!  26 goto pass
//!  gre:
//!  27 if r5 == htons(0x8847) goto redirect ; 28 goto pass      MPLS; other payloads: kernel
//!  ihl5:
//!  29 r6 = *(u8 *)(r2 + 23)  ; 30 if r6 == 47 goto l45 ; 31 if r6 != 17 goto pass
//!  l45:
//!  32 r4 += 4 ; 33 if r4 > r3 goto redirect                  L4 field cut: truncated
//!  34 r5 = *(u16 *)(r2 + 36) ; 35 if r6 == 47 goto gre
//!  36 if r5 == htons(6635) goto redirect ; 37 if r5 != htons(4789) goto pass
//!  redirect:
//!     r2 = *(u32 *)(r1 + 16)       rx_queue_index
//!     r1 = map_fd (ld_imm64, BPF_PSEUDO_MAP_FD)
//!     r3 = XDP_PASS                the action when the queue has no socket
//!     call bpf_redirect_map ; exit
//!  pass: r0 = XDP_PASS ; exit
//! ```
//!
//! With our fabric IP ([`XdpFilter::OverlayTo`], the fabric when the forwarder was given its
//! address), a block runs first, right after the EtherType check:
//!
//! ```text
//!  r5 = *(u32 *)(r2 + 30) ; if (u32)r5 != our IP goto pass      JMP32: no sign extension
//!  r5 = *(u16 *)(r2 + 20) ; r5 &= htons(0x3fff) ; if r5 == 0 goto whole   MF + offset
//!  version 4 ? protocol 17 or 47 ? XDP: redirect, tc: pass ; else pass
//!  whole: the listing above from instruction 7 (numbers shift by the block's length)
//! ```
//!
//! Overlay packets to other destinations then go to the kernel, as every other packet not
//! for the forwarder (before, they were redirected and discarded as "for the host"). Outer
//! fragments are selected by address and fragment bits because later fragments carry no UDP
//! header; the forwarder reassembles them (`filament_dataplane::reasm`). tc (AF_PACKET, where
//! the forwarder already has a copy) leaves every fragment to the kernel, as the datagram may
//! be the host's own.
//!
//! The options branch reads the UDP port at a variable offset: the verifier accepts a load
//! through `data + IHL*4` once that pointer plus the load's end was compared with `data_end`
//! (the IHL nibble times four is a scalar it knows to be at most 60), as in C XDP programs'
//! `(void *)iph + iph->ihl * 4`.
//!
//! The program is attached with `BPF_LINK_CREATE`: the link is a file descriptor, so the
//! program is detached when the socket's owner closes it or exits (no stale XDP program left on
//! the interface after a crash).

#![allow(unsafe_code)] // reason: the bpf(2) system call takes raw attribute structures

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::IoError;

/// `enum bpf_cmd` values used here.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_MAP_TYPE_XSKMAP`.
const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`, `BPF_PROG_TYPE_SCHED_CLS`.
const PROG_TYPE_XDP: u32 = 6;
const PROG_TYPE_SCHED_CLS: u32 = 3;
/// `BPF_TCX_INGRESS`.
const ATTACH_TYPE_TCX_INGRESS: u32 = 46;
/// `enum bpf_attach_type` `BPF_XDP`.
const ATTACH_TYPE_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE` (generic XDP) and `XDP_FLAGS_DRV_MODE` (the driver's, veth has one).
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_PASS`.
const XDP_PASS: i32 = 2;
/// Helper id of `bpf_redirect_map`.
const FN_REDIRECT_MAP: i32 = 51;
/// `BPF_PSEUDO_MAP_FD`: the ld_imm64 immediate is a map file descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// Which packets the program steers to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpFilter {
    /// Every packet (workload interfaces: all their traffic is the forwarder's).
    All,
    /// Only overlay packets (MPLSoUDP 6635, VXLAN 4789, GRE), to any destination; the rest
    /// goes to the kernel (a fabric interface whose IP the forwarder was not given).
    Overlay,
    /// Overlay packets to this fabric IP, and its outer fragments (UDP or GRE, MF set or an
    /// offset: later fragments carry no UDP header) for the forwarder to reassemble; overlay
    /// packets to other destinations go to the kernel.
    OverlayTo(Ipv4Addr),
}

impl XdpFilter {
    /// The fabric's filter: [`XdpFilter::OverlayTo`] our fabric IP when known, else
    /// [`XdpFilter::Overlay`].
    pub fn fabric(ip: Option<Ipv4Addr>) -> Self {
        ip.map_or(XdpFilter::Overlay, XdpFilter::OverlayTo)
    }
}

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// The driver's XDP hook (veth has one), generic XDP when the driver refuses.
    Auto,
    /// The driver's hook only.
    Driver,
    /// Generic (skb) XDP only.
    Generic,
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes (class | op | source / size).
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const ADD64_X: u8 = 0x0f;
const AND64_K: u8 = 0x57;
const LSH64_K: u8 = 0x67;
const JGT_X: u8 = 0x2d;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JGT_K: u8 = 0x25;
const JLT_K: u8 = 0xa5;
/// `BPF_JMP32 | BPF_JNE | BPF_K`: compares the low 32 bits (a 64-bit compare would
/// sign-extend the immediate, so an address with its top bit set would never match).
const JNE32_K: u8 = 0x56;
const JA: u8 = 0x05;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

/// A jump target to patch: instruction index and label.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Redirect,
    Pass,
    /// The checks of a 20-byte IPv4 header (protocol, UDP port).
    Ihl5,
    /// The checks of an unfragmented packet (after the destination and fragment checks).
    Whole,
    /// IHL other than 5, UDP or GRE: the L4 field at IHL*4 + 2.
    OptsL4,
    /// IHL 5, UDP or GRE: the L4 field at 20 + 2.
    L45,
    /// GRE's protocol type in r5.
    Gre,
}

/// What the program does with the packets the filter selects.
#[derive(Clone, Copy)]
enum Action {
    /// XDP: redirect to the socket of the receive queue in map `fd`; the rest XDP_PASS.
    Redirect(RawFd),
    /// tcx ingress: drop (TCX_DROP); the rest goes on (TCX_NEXT).
    TcDrop,
}

/// `__sk_buff` offsets of `data` and `data_end` (tc programs); xdp_md has them at 0 and 4.
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
/// tcx verdicts.
const TCX_NEXT: i32 = -1;
const TCX_DROP: i32 = 2;

/// The program's instructions for `filter`, redirecting through map `map_fd`.
fn program(filter: XdpFilter, map_fd: RawFd) -> Vec<Insn> {
    assemble(filter, Action::Redirect(map_fd))
}

/// With the IP protocol in r6 and the UDP destination port / GRE protocol type in r5 (both
/// header layouts): GRE to its own check, MPLSoUDP (6635) and VXLAN (4789) to the
/// redirect, any other UDP to the kernel.
fn overlay_dispatch() -> [(Insn, Label); 4] {
    [
        (insn(JEQ_K, 6, 0, 0, 47), Label::Gre),
        (
            insn(JEQ_K, 5, 0, 0, i32::from(6635u16.to_be())),
            Label::Redirect,
        ),
        (
            insn(JEQ_K, 5, 0, 0, i32::from(4789u16.to_be())),
            Label::Redirect,
        ),
        (insn(JA, 0, 0, 0, 0), Label::Pass),
    ]
}

fn assemble(filter: XdpFilter, action: Action) -> Vec<Insn> {
    let (data, data_end) = match action {
        Action::Redirect(_) => (0, 4),
        Action::TcDrop => (SKB_DATA, SKB_DATA_END),
    };
    let mut p: Vec<Insn> = Vec::with_capacity(48);
    let mut jumps: Vec<(usize, Label)> = Vec::new();
    let (mut ihl5, mut whole, mut opts_l4, mut l45, mut gre) = (0, 0, 0, 0, 0);
    let mut jump = |p: &mut Vec<Insn>, i: Insn, to: Label| {
        jumps.push((p.len(), to));
        p.push(i);
    };
    if filter != XdpFilter::All {
        p.push(insn(LDX_W, 2, 1, data, 0)); // r2 = data
        p.push(insn(LDX_W, 3, 1, data_end, 0)); // r3 = data_end
        p.push(insn(MOV64_X, 4, 2, 0, 0)); // r4 = r2
        p.push(insn(ADD64_K, 4, 0, 0, 34)); // r4 += 34 (eth + ip)
        jump(&mut p, insn(JGT_X, 4, 3, 0, 0), Label::Pass);
        p.push(insn(LDX_H, 5, 2, 12, 0)); // ethertype, network order
        jump(
            &mut p,
            insn(JNE_K, 5, 0, 0, i32::from(0x0800u16.to_be())),
            Label::Pass,
        );
        if let XdpFilter::OverlayTo(ip) = filter {
            // Another destination: the kernel's (it routes or drops it), whatever it carries.
            p.push(insn(LDX_W, 5, 2, 30, 0)); // destination address, network order
            let our = i32::from_ne_bytes(ip.octets());
            jump(&mut p, insn(JNE32_K, 5, 0, 0, our), Label::Pass);
            // RFC 791 §3.2: a fragment has MF set or a fragment offset; only the first one
            // carries the UDP header, so every fragment of UDP or GRE goes to the forwarder,
            // which reassembles the tunnel packets. tc (AF_PACKET: the forwarder already has
            // its copy) leaves them to the kernel, whose datagram may be the host's own.
            p.push(insn(LDX_H, 5, 2, 20, 0)); // flags + fragment offset
            p.push(insn(AND64_K, 5, 0, 0, i32::from(0x3fffu16.to_be()))); // MF + offset
            jump(&mut p, insn(JEQ_K, 5, 0, 0, 0), Label::Whole);
            p.push(insn(LDX_B, 5, 2, 14, 0)); // version / IHL
            jump(&mut p, insn(JGT_K, 5, 0, 0, 0x4f), Label::Pass);
            jump(&mut p, insn(JLT_K, 5, 0, 0, 0x40), Label::Pass);
            match action {
                Action::Redirect(_) => {
                    p.push(insn(LDX_B, 5, 2, 23, 0)); // protocol
                    jump(&mut p, insn(JEQ_K, 5, 0, 0, 17), Label::Redirect);
                    jump(&mut p, insn(JEQ_K, 5, 0, 0, 47), Label::Redirect);
                    jump(&mut p, insn(JA, 0, 0, 0, 0), Label::Pass);
                }
                Action::TcDrop => jump(&mut p, insn(JA, 0, 0, 0, 0), Label::Pass),
            }
            whole = p.len();
        }
        p.push(insn(LDX_B, 5, 2, 14, 0)); // version / IHL
        jump(&mut p, insn(JEQ_K, 5, 0, 0, 0x45), Label::Ihl5);
        jump(&mut p, insn(JGT_K, 5, 0, 0, 0x4f), Label::Pass);
        jump(&mut p, insn(JLT_K, 5, 0, 0, 0x40), Label::Pass);
        // Version 4, IHL other than 5. GRE goes to the forwarder whatever the IHL: with
        // options (RFC 791 §3.1: "The option field is variable in length") it decapsulates
        // it, as from AF_PACKET; below 5 the header cannot be parsed (the kernel drops it
        // uncounted) and the forwarder counts it as malformed when it is addressed to our
        // fabric IP.
        p.push(insn(LDX_B, 6, 2, 23, 0)); // protocol (kept in r6)
        jump(&mut p, insn(JEQ_K, 6, 0, 0, 47), Label::OptsL4);
        jump(&mut p, insn(JNE_K, 6, 0, 0, 17), Label::Pass);
        opts_l4 = p.len();
        // IHL < 5: malformed
        jump(&mut p, insn(JLT_K, 5, 0, 0, 0x45), Label::Redirect);
        // UDP after options: its destination port at 14 + IHL*4 + 2 (RFC 791 §3.1: "Internet
        // Header Length is the length of the internet header in 32 bit words").
        p.push(insn(AND64_K, 5, 0, 0, 0x0f)); // IHL, 6..15
        p.push(insn(LSH64_K, 5, 0, 0, 2)); // IHL*4, 24..60
        p.push(insn(MOV64_X, 4, 2, 0, 0)); // r4 = data
        p.push(insn(ADD64_X, 4, 5, 0, 0)); // r4 = data + IHL*4
        p.push(insn(MOV64_X, 7, 4, 0, 0));
        // eth + header + UDP ports / GRE protocol
        p.push(insn(ADD64_K, 7, 0, 0, 18));
        // The header or the UDP ports cut short: malformed / truncated, counted (to our IP).
        jump(&mut p, insn(JGT_X, 7, 3, 0, 0), Label::Redirect);
        p.push(insn(LDX_H, 5, 4, 16, 0)); // UDP destination port / GRE protocol type
        for (i, to) in overlay_dispatch() {
            jump(&mut p, i, to);
        }
        // GRE (RFC 2784 §2.4: "The Protocol Type field contains the protocol type of the
        // payload packet"): MPLS (0x8847, RFC 4023) is ours, other payloads the kernel's.
        gre = p.len();
        jump(
            &mut p,
            insn(JEQ_K, 5, 0, 0, i32::from(0x8847u16.to_be())),
            Label::Redirect,
        );
        jump(&mut p, insn(JA, 0, 0, 0, 0), Label::Pass);
        ihl5 = p.len();
        p.push(insn(LDX_B, 6, 2, 23, 0)); // protocol (kept in r6)
        jump(&mut p, insn(JEQ_K, 6, 0, 0, 47), Label::L45);
        jump(&mut p, insn(JNE_K, 6, 0, 0, 17), Label::Pass);
        // UDP without room for its ports, GRE for its protocol type: truncated, the forwarder
        // counts it (to our IP).
        l45 = p.len();
        p.push(insn(ADD64_K, 4, 0, 0, 4)); // r4 = data + 38 (eth + ip + udp ports)
        jump(&mut p, insn(JGT_X, 4, 3, 0, 0), Label::Redirect);
        p.push(insn(LDX_H, 5, 2, 36, 0)); // UDP destination port / GRE protocol type
        for (i, to) in overlay_dispatch() {
            jump(&mut p, i, to);
        }
    }
    let redirect = p.len();
    let miss = match action {
        Action::Redirect(map_fd) => {
            p.push(insn(LDX_W, 2, 1, 16, 0)); // r2 = rx_queue_index
            p.push(insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map_fd));
            p.push(insn(0, 0, 0, 0, 0));
            p.push(insn(MOV64_K, 3, 0, 0, XDP_PASS));
            p.push(insn(CALL, 0, 0, 0, FN_REDIRECT_MAP));
            p.push(insn(EXIT, 0, 0, 0, 0));
            XDP_PASS
        }
        Action::TcDrop => {
            p.push(insn(MOV64_K, 0, 0, 0, TCX_DROP));
            p.push(insn(EXIT, 0, 0, 0, 0));
            TCX_NEXT
        }
    };
    // The verifier rejects unreachable code: the pass block only exists behind the filter.
    let pass = p.len();
    if !jumps.is_empty() {
        p.push(insn(MOV64_K, 0, 0, 0, miss));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    for (at, to) in jumps {
        let target = match to {
            Label::Redirect => redirect,
            Label::Pass => pass,
            Label::Ihl5 => ihl5,
            Label::Whole => whole,
            Label::OptsL4 => opts_l4,
            Label::L45 => l45,
            Label::Gre => gre,
        };
        // Offsets are relative to the next instruction; the program is tiny, so they fit.
        p[at].off = i16::try_from(target as isize - at as isize - 1).unwrap_or(0);
    }
    p
}

/// `bpf(cmd, attr, size)`: a new descriptor (or 0) on success.
fn bpf(cmd: libc::c_long, attr: &mut [u64; 16], call: &'static str) -> Result<i64, IoError> {
    // SAFETY: `attr` is a 128-byte zero-initialised buffer, larger than every attribute
    // structure used here; the kernel reads (and for some commands writes) at most `size` bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of::<[u64; 16]>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(IoError::Sys {
            call,
            source: io::Error::last_os_error(),
        });
    }
    Ok(r)
}

/// Little-endian-agnostic writers into the attribute buffer (native layout, as the kernel reads).
fn put_u32(attr: &mut [u64; 16], byte_off: usize, v: u32) {
    let mut bytes = attr_bytes(attr);
    bytes[byte_off..byte_off + 4].copy_from_slice(&v.to_ne_bytes());
    from_bytes(attr, &bytes);
}

fn put_u64(attr: &mut [u64; 16], byte_off: usize, v: u64) {
    let mut bytes = attr_bytes(attr);
    bytes[byte_off..byte_off + 8].copy_from_slice(&v.to_ne_bytes());
    from_bytes(attr, &bytes);
}

fn attr_bytes(attr: &[u64; 16]) -> [u8; 128] {
    let mut b = [0u8; 128];
    for (i, w) in attr.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    b
}

fn from_bytes(attr: &mut [u64; 16], b: &[u8; 128]) {
    for (i, w) in attr.iter_mut().enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *w = u64::from_ne_bytes(x);
    }
}

fn owned(fd: i64, call: &'static str) -> Result<OwnedFd, IoError> {
    let fd = RawFd::try_from(fd).map_err(|_| IoError::Sys {
        call,
        source: io::Error::other("descriptor out of range"),
    })?;
    // SAFETY: `fd` is a fresh descriptor the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Load `insns` as a program of `prog_type` expecting `attach_type`; the verifier's log in the
/// error when it refuses.
fn load(insns: &[Insn], prog_type: u32, attach_type: u32) -> Result<OwnedFd, IoError> {
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, prog_type);
    put_u32(&mut attr, 4, insns.len() as u32);
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    put_u32(&mut attr, 24, 1); // log_level
    put_u32(&mut attr, 28, log.len() as u32);
    put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    let name = b"filament\0";
    let mut b = attr_bytes(&attr);
    b[48..48 + name.len()].copy_from_slice(name);
    from_bytes(&mut attr, &b);
    // expected_attach_type
    put_u32(&mut attr, 68, attach_type);
    // `insns`, `license` and `log` outlive the call; the kernel copies what it needs.
    match bpf(BPF_PROG_LOAD, &mut attr, "bpf(BPF_PROG_LOAD)") {
        Ok(fd) => owned(fd, "bpf(BPF_PROG_LOAD)"),
        Err(IoError::Sys { call, source }) => {
            let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(IoError::Sys {
                call,
                source: io::Error::new(source.kind(), format!("{source}; {verifier}")),
            })
        }
        Err(e) => Err(e),
    }
}

/// `BPF_LINK_CREATE`: attach `prog` to `ifindex` at `attach_type`.
fn link(prog: &OwnedFd, ifindex: u32, attach_type: u32, flags: u32) -> Result<OwnedFd, IoError> {
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 4, ifindex);
    put_u32(&mut attr, 8, attach_type);
    put_u32(&mut attr, 12, flags);
    owned(
        bpf(BPF_LINK_CREATE, &mut attr, "bpf(BPF_LINK_CREATE)")?,
        "bpf(BPF_LINK_CREATE)",
    )
}

/// A tcx ingress program on the fabric in AF_PACKET mode that drops overlay packets (MPLSoUDP,
/// VXLAN, GRE: the same filter as the XDP program) after the packet sockets got their copy:
/// packet taps run before tc ingress in `__netif_receive_skb_core`, so the forwarder still
/// receives them, but the kernel no longer routes each one to a local UDP / raw socket only to
/// throw it away (IP input, FIB lookup, socket lookup and filter per packet). Detached when
/// dropped (BPF link).
#[derive(Debug)]
pub struct TcOverlayDrop {
    _link: OwnedFd,
    _prog: OwnedFd,
}

impl TcOverlayDrop {
    /// Load and attach to `ifindex` (kernel 6.6+ for tcx links), for overlay packets to
    /// `our_ip` when known (others, and fragments, go on to the kernel), else to any address.
    pub fn attach(ifindex: u32, our_ip: Option<Ipv4Addr>) -> Result<Self, IoError> {
        let insns = assemble(XdpFilter::fabric(our_ip), Action::TcDrop);
        let prog = load(&insns, PROG_TYPE_SCHED_CLS, ATTACH_TYPE_TCX_INGRESS)?;
        let l = link(&prog, ifindex, ATTACH_TYPE_TCX_INGRESS, 0)?;
        Ok(Self {
            _link: l,
            _prog: prog,
        })
    }
}

/// An XSKMAP of `queues` entries (queue index -> AF_XDP socket).
fn xskmap(queues: u32) -> Result<OwnedFd, IoError> {
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, MAP_TYPE_XSKMAP);
    put_u32(&mut attr, 4, 4); // key: queue index
    put_u32(&mut attr, 8, 4); // value: socket fd
    put_u32(&mut attr, 12, queues.max(1));
    owned(
        bpf(BPF_MAP_CREATE, &mut attr, "bpf(BPF_MAP_CREATE, XSKMAP)")?,
        "bpf(BPF_MAP_CREATE)",
    )
}

/// An XDP program steering one interface into an XSKMAP, attached through a BPF link. Dropping
/// it detaches the program (closing the link) and frees the map and program.
#[derive(Debug)]
pub struct XdpSteer {
    /// Declared first: the link is closed (program detached) before the rest.
    _link: OwnedFd,
    _prog: OwnedFd,
    map: OwnedFd,
    /// Whether the driver's hook took it (else generic XDP).
    pub driver_mode: bool,
}

impl XdpSteer {
    /// Create the map (`queues` entries), load the program and attach it to `ifindex`.
    pub fn attach(
        ifindex: u32,
        queues: u32,
        filter: XdpFilter,
        mode: XdpMode,
    ) -> Result<Self, IoError> {
        let map = xskmap(queues)?;
        let insns = program(filter, map.as_raw_fd());
        let prog = load(&insns, PROG_TYPE_XDP, ATTACH_TYPE_XDP)?;
        let try_link = |flags: u32| link(&prog, ifindex, ATTACH_TYPE_XDP, flags);
        let (link, driver_mode) = match mode {
            XdpMode::Driver => (try_link(XDP_FLAGS_DRV_MODE)?, true),
            XdpMode::Generic => (try_link(XDP_FLAGS_SKB_MODE)?, false),
            XdpMode::Auto => match try_link(XDP_FLAGS_DRV_MODE) {
                Ok(l) => (l, true),
                Err(e) => {
                    tracing::debug!(error = %e, ifindex, "driver XDP refused, using generic XDP");
                    (try_link(XDP_FLAGS_SKB_MODE)?, false)
                }
            },
        };
        Ok(Self {
            _link: link,
            _prog: prog,
            map,
            driver_mode,
        })
    }

    /// Point queue `queue` at the AF_XDP socket `xsk_fd`.
    pub fn set_socket(&self, queue: u32, xsk_fd: RawFd) -> Result<(), IoError> {
        let key: u32 = queue;
        let value: u32 = xsk_fd as u32;
        let mut attr = [0u64; 16];
        put_u32(&mut attr, 0, self.map.as_raw_fd() as u32);
        put_u64(&mut attr, 8, (&key as *const u32) as u64);
        put_u64(&mut attr, 16, (&value as *const u32) as u64);
        bpf(
            BPF_MAP_UPDATE_ELEM,
            &mut attr,
            "bpf(BPF_MAP_UPDATE_ELEM, XSKMAP)",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
