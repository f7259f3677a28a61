//! Tests of the hand-assembled eBPF programs (`bpf.rs`): their jump patching, the filters
//! against a plain reference function, and (as root) the kernel verifier loading every one.

use super::*;

/// Run `p` (the instructions this module emits) on `frame`, as the kernel would: true when
/// the program selects it (XDP: reaches the redirect call; tc: returns TCX_DROP).
fn selects(p: &[Insn], frame: &[u8], tc: bool) -> bool {
    const BASE: u64 = 0x1000;
    let (d, de) = if tc { (SKB_DATA, SKB_DATA_END) } else { (0, 4) };
    let mut r = [0u64; 11];
    r[1] = 1; // the context
    let mut pc = 0usize;
    for _ in 0..1000 {
        let i = p[pc];
        let (dst, src) = (usize::from(i.regs & 0x0f), usize::from(i.regs >> 4));
        let imm = i64::from(i.imm) as u64;
        let target = (pc as isize + 1 + i.off as isize) as usize;
        let load = |r: &[u64; 11], n: usize| -> u64 {
            if r[src] == 1 {
                // Context fields.
                return match i.off {
                    o if o == d => BASE,
                    o if o == de => BASE + frame.len() as u64,
                    _ => 0, // rx_queue_index
                };
            }
            let at = (r[src] - BASE) as usize + i.off as usize;
            assert!(at + n <= frame.len(), "load past data_end");
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&frame[at..at + n]);
            u64::from_le_bytes(b)
        };
        pc += 1;
        match i.code {
            LDX_W => r[dst] = load(&r, 4),
            LDX_H => r[dst] = load(&r, 2),
            LDX_B => r[dst] = load(&r, 1),
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = imm,
            ADD64_K => r[dst] = r[dst].wrapping_add(imm),
            ADD64_X => r[dst] = r[dst].wrapping_add(r[src]),
            AND64_K => r[dst] &= imm,
            LSH64_K => r[dst] <<= imm,
            LD_IMM64 => pc += 1,
            JGT_X if r[dst] > r[src] => pc = target,
            JEQ_K if r[dst] == imm => pc = target,
            JNE_K if r[dst] != imm => pc = target,
            JGT_K if r[dst] > imm => pc = target,
            JLT_K if r[dst] < imm => pc = target,
            JNE32_K if r[dst] as u32 != imm as u32 => pc = target,
            JA => pc = target,
            JGT_X | JEQ_K | JNE_K | JGT_K | JLT_K | JNE32_K => {}
            CALL => return true,
            EXIT => return tc && r[0] == TCX_DROP as u64,
            c => panic!("opcode {c:#x} at {}", pc - 1),
        }
    }
    panic!("no exit")
}

/// Ethernet + IPv4 (first byte `vihl`, protocol `proto`) + 8 bytes of UDP to `dport` +
/// padding.
fn frame(ethertype: u16, vihl: u8, proto: u8, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 18];
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14] = vihl;
    f[23] = proto;
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

/// [`frame`] with an IPv4 header of `ihl` words (the options NOPs ending in EOL): the
/// UDP header follows at 14 + ihl*4, `extra` bytes of it kept (8 + 18 for all).
fn frame_opts(ihl: u8, proto: u8, dport: u16, extra: usize) -> Vec<u8> {
    let h = 14 + usize::from(ihl) * 4;
    let mut f = vec![0u8; h + 8 + 18];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x40 | ihl;
    f[23] = proto;
    for b in &mut f[34..h - 1] {
        *b = 1; // NOP
    }
    f[h..h + 2].copy_from_slice(&50000u16.to_be_bytes());
    f[h + 2..h + 4].copy_from_slice(&dport.to_be_bytes());
    f.truncate(h + extra);
    f
}

#[test]
fn overlay_filter_selects_overlay_packets_with_ipv4_options() {
    let xdp = program(XdpFilter::Overlay, 7);
    let tc = assemble(XdpFilter::Overlay, Action::TcDrop);
    for ihl in 6..=15u8 {
        let cases = [
            ("MPLSoUDP", frame_opts(ihl, 17, 6635, 26), true),
            ("VXLAN", frame_opts(ihl, 17, 4789, 26), true),
            ("GRE", frame_opts(ihl, 47, 0x8847, 26), true),
            ("other UDP", frame_opts(ihl, 17, 53, 26), false),
            ("GRE carrying IPv4", frame_opts(ihl, 47, 0x0800, 26), false),
            (
                "GRE cut before its protocol",
                frame_opts(ihl, 47, 0x8847, 3),
                true,
            ),
            (
                "UDP, port 6635 at the IHL 5 place",
                {
                    let mut f = frame_opts(ihl, 17, 53, 26);
                    f[36..38].copy_from_slice(&6635u16.to_be_bytes());
                    f
                },
                false,
            ),
            ("TCP", frame_opts(ihl, 6, 6635, 26), false),
            // The UDP destination port is the frame's last two bytes: read, selected.
            (
                "MPLSoUDP ending after its ports",
                frame_opts(ihl, 17, 6635, 4),
                true,
            ),
            (
                "other UDP ending after its ports",
                frame_opts(ihl, 17, 53, 4),
                false,
            ),
            // Cut before the ports, or inside the options: the forwarder counts it.
            (
                "UDP cut before its ports",
                frame_opts(ihl, 17, 6635, 3),
                true,
            ),
            (
                "UDP cut in its options",
                frame_opts(ihl, 17, 6635, 0)[..35].to_vec(),
                true,
            ),
            (
                "TCP cut in its options",
                frame_opts(ihl, 6, 6635, 0)[..35].to_vec(),
                false,
            ),
        ];
        for (name, f, want) in cases {
            assert_eq!(selects(&xdp, &f, false), want, "xdp: IHL {ihl}, {name}");
            assert_eq!(selects(&tc, &f, true), want, "tc: IHL {ihl}, {name}");
        }
    }
}

#[test]
fn overlay_filter_selects_overlay_packets_and_broken_ipv4_headers() {
    let cases = [
        ("MPLSoUDP", frame(0x0800, 0x45, 17, 6635), true),
        ("VXLAN", frame(0x0800, 0x45, 17, 4789), true),
        ("GRE", frame(0x0800, 0x45, 47, 0x8847), true),
        ("other UDP", frame(0x0800, 0x45, 17, 53), false),
        ("GRE carrying IPv4", frame(0x0800, 0x45, 47, 0x0800), false),
        (
            "GRE cut before its protocol",
            frame(0x0800, 0x45, 47, 0x8847)[..37].to_vec(),
            true,
        ),
        ("TCP", frame(0x0800, 0x45, 6, 6635), false),
        ("ARP", frame(0x0806, 0x45, 17, 6635), false),
        // Malformed: counted by the forwarder, as over AF_PACKET.
        ("UDP, IHL 4", frame(0x0800, 0x44, 17, 1), true),
        ("GRE, IHL 0", frame(0x0800, 0x40, 47, 0), true),
        ("TCP, IHL 4", frame(0x0800, 0x44, 6, 0), false),
        // Another version: the kernel's.
        ("version 5", frame(0x0800, 0x55, 17, 6635), false),
        ("version 6", frame(0x0800, 0x65, 17, 6635), false),
        ("version 3", frame(0x0800, 0x34, 17, 6635), false),
        // Cut short: UDP before its ports, truncated (counted); shorter than an IPv4
        // header, the kernel's.
        (
            "UDP cut at 37 bytes",
            frame(0x0800, 0x45, 17, 6635)[..37].to_vec(),
            true,
        ),
        (
            "TCP cut at 37 bytes",
            frame(0x0800, 0x45, 6, 6635)[..37].to_vec(),
            false,
        ),
        (
            "33 bytes",
            frame(0x0800, 0x45, 17, 6635)[..33].to_vec(),
            false,
        ),
    ];
    let xdp = program(XdpFilter::Overlay, 7);
    let tc = assemble(XdpFilter::Overlay, Action::TcDrop);
    for (name, f, want) in cases {
        assert_eq!(selects(&xdp, &f, false), want, "xdp: {name}");
        assert_eq!(selects(&tc, &f, true), want, "tc: {name}");
    }
    // Every frame goes to the socket without the filter.
    assert!(selects(
        &program(XdpFilter::All, 7),
        &frame(0x0806, 0, 0, 0),
        false
    ));
}

/// With our fabric IP: overlay packets to it as before; to another address, the kernel's;
/// UDP / GRE fragments to it (first or later, any IHL) to the XDP socket, never dropped
/// by tc; an address with its top bit set matches (a 32-bit compare).
#[test]
fn the_fabric_filter_takes_fragments_to_our_ip_only() {
    for our in [Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(10, 1, 2, 200)] {
        let to = |mut f: Vec<u8>, dst: Ipv4Addr, ff: u16| {
            f[30..34].copy_from_slice(&dst.octets());
            f[20..22].copy_from_slice(&ff.to_be_bytes());
            f
        };
        let other = Ipv4Addr::new(192, 0, 2, 9);
        // (name, frame, XDP selects, tc drops)
        let cases = [
            (
                "MPLSoUDP to us",
                to(frame(0x0800, 0x45, 17, 6635), our, 0),
                true,
                true,
            ),
            (
                "MPLSoUDP, DF, to us",
                to(frame(0x0800, 0x45, 17, 6635), our, 0x4000),
                true,
                true,
            ),
            (
                "GRE to us",
                to(frame(0x0800, 0x45, 47, 0x8847), our, 0),
                true,
                true,
            ),
            (
                "other UDP to us",
                to(frame(0x0800, 0x45, 17, 53), our, 0),
                false,
                false,
            ),
            (
                "MPLSoUDP elsewhere",
                to(frame(0x0800, 0x45, 17, 6635), other, 0),
                false,
                false,
            ),
            (
                "GRE elsewhere",
                to(frame(0x0800, 0x45, 47, 0x8847), other, 0),
                false,
                false,
            ),
            (
                "first fragment",
                to(frame(0x0800, 0x45, 17, 6635), our, 0x2000),
                true,
                false,
            ),
            (
                "later UDP fragment",
                to(frame(0x0800, 0x45, 17, 1234), our, 0x0003),
                true,
                false,
            ),
            (
                "middle GRE fragment",
                to(frame(0x0800, 0x45, 47, 0x8847), our, 0x2010),
                true,
                false,
            ),
            (
                "later fragment, options",
                to(frame_opts(8, 17, 0, 26), our, 0x00ff),
                true,
                false,
            ),
            (
                "TCP fragment",
                to(frame(0x0800, 0x45, 6, 6635), our, 0x2000),
                false,
                false,
            ),
            (
                "fragment elsewhere",
                to(frame(0x0800, 0x45, 17, 6635), other, 0x2000),
                false,
                false,
            ),
            (
                "UDP, IHL 4, to us",
                to(frame(0x0800, 0x44, 17, 1), our, 0),
                true,
                true,
            ),
        ];
        let f = XdpFilter::fabric(Some(our));
        let (xdp, tc) = (program(f, 7), assemble(f, Action::TcDrop));
        for (name, fr, want_xdp, want_tc) in cases {
            assert_eq!(selects(&xdp, &fr, false), want_xdp, "xdp {our}: {name}");
            assert_eq!(selects(&tc, &fr, true), want_tc, "tc {our}: {name}");
        }
    }
}

/// The kernel's verifier accepts every program this module emits (loaded, not attached).
/// Root only: skips otherwise.
#[test]
fn the_verifier_accepts_the_programs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: loading BPF programs needs root");
        return;
    }
    let map = xskmap(1).unwrap();
    let to = XdpFilter::OverlayTo(Ipv4Addr::new(10, 0, 0, 200));
    for filter in [XdpFilter::All, XdpFilter::Overlay, to] {
        let p = program(filter, map.as_raw_fd());
        load(&p, PROG_TYPE_XDP, ATTACH_TYPE_XDP).unwrap_or_else(|e| panic!("XDP {filter:?}: {e}"));
    }
    for filter in [XdpFilter::Overlay, to] {
        let t = assemble(filter, Action::TcDrop);
        load(&t, PROG_TYPE_SCHED_CLS, ATTACH_TYPE_TCX_INGRESS)
            .unwrap_or_else(|e| panic!("tc {filter:?}: {e}"));
    }
}

/// What the overlay filter is meant to select, written plainly: IPv4 UDP or GRE with an
/// IHL below 5, or cut before its ports / protocol type, or UDP to port 6635 / 4789 or
/// GRE carrying MPLS 0x8847 (the header at IHL*4). Frames shorter than Ethernet + 20 bytes are the kernel's. With our fabric IP
/// (`to`): only packets to it, and its UDP / GRE fragments (MF or an offset) go to the
/// XDP socket, never to the tc drop.
fn overlay_reference(f: &[u8], to: Option<Ipv4Addr>, tc: bool) -> bool {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return false;
    }
    if let Some(ip) = to {
        if f[30..34] != ip.octets() {
            return false;
        }
        if u16::from_be_bytes([f[20], f[21]]) & 0x3fff != 0 {
            return !tc && f[14] >> 4 == 4 && matches!(f[23], 17 | 47);
        }
    }
    if f[14] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(f[14] & 0x0f);
    let ours: &[u16] = match f[23] {
        47 => &[0x8847],
        17 => &[6635, 4789],
        _ => return false,
    };
    if ihl < 5 {
        return true;
    }
    let at = 14 + ihl * 4 + 2;
    match f.get(at..at + 2) {
        None => true,
        Some(p) => ours.contains(&u16::from_be_bytes([p[0], p[1]])),
    }
}

proptest::proptest! {
    /// On any frame, both programs select what the reference selects, and never load
    /// past `data_end` (the interpreter asserts it, as the verifier guarantees it).
    #[test]
    fn the_overlay_filter_is_the_reference(
        ethertype in proptest::prop_oneof![proptest::strategy::Just(0x0800u16), proptest::arbitrary::any::<u16>()],
        vihl in proptest::prop_oneof![0x40u8..0x50, proptest::arbitrary::any::<u8>()],
        proto in proptest::prop_oneof![proptest::strategy::Just(17u8), proptest::strategy::Just(47u8), proptest::arbitrary::any::<u8>()],
        dport in proptest::prop_oneof![proptest::strategy::Just(6635u16), proptest::strategy::Just(4789u16), proptest::strategy::Just(0x8847u16), proptest::arbitrary::any::<u16>()],
        len in 0usize..100,
        fill in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 100),
        to in proptest::option::of(proptest::prop_oneof![
            proptest::strategy::Just(Ipv4Addr::new(10, 0, 0, 200)),
            proptest::strategy::Just(Ipv4Addr::new(192, 0, 2, 2)),
        ]),
        to_us in proptest::arbitrary::any::<bool>(),
        frag in proptest::prop_oneof![
            proptest::strategy::Just(0u16),
            proptest::strategy::Just(0x2000u16),
            proptest::strategy::Just(0x4000u16),
            proptest::arbitrary::any::<u16>(),
        ],
    ) {
        let mut f = fill;
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = vihl;
        f[20..22].copy_from_slice(&frag.to_be_bytes());
        f[23] = proto;
        if let (Some(ip), true) = (to, to_us) {
            f[30..34].copy_from_slice(&ip.octets());
        }
        let at = 14 + usize::from(vihl & 0x0f) * 4 + 2;
        if at + 2 <= f.len() {
            f[at..at + 2].copy_from_slice(&dport.to_be_bytes());
        }
        f.truncate(len);
        let filter = XdpFilter::fabric(to);
        proptest::prop_assert_eq!(
            selects(&program(filter, 7), &f, false),
            overlay_reference(&f, to, false)
        );
        proptest::prop_assert_eq!(
            selects(&assemble(filter, Action::TcDrop), &f, true),
            overlay_reference(&f, to, true)
        );
    }
}

#[test]
fn the_map_fd_is_the_ld_imm64_immediate_and_tc_has_no_call() {
    let p = program(XdpFilter::Overlay, 7);
    // The map fd is the ld_imm64 immediate with the pseudo-map-fd source register.
    let ld = p.iter().find(|i| i.code == LD_IMM64).unwrap();
    assert_eq!((ld.imm, ld.regs >> 4), (7, PSEUDO_MAP_FD));
    let t = assemble(XdpFilter::Overlay, Action::TcDrop);
    assert_eq!((t[0].off, t[1].off), (SKB_DATA, SKB_DATA_END));
    assert!(!t.iter().any(|i| i.code == CALL || i.code == LD_IMM64));
}

#[test]
fn redirect_only_program_has_no_jumps() {
    let p = program(XdpFilter::All, 3);
    assert_eq!(p.len(), 6);
    assert_eq!(p[5].code, EXIT);
    assert!(!p.iter().any(|i| matches!(i.code, JGT_X | JEQ_K | JNE_K)));
}
