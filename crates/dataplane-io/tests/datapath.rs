//! The run loop on real interfaces inside a private network namespace (root only; skips
//! otherwise): attach / detach / dump through the handle, a frame injected by the "agent"
//! leaves on the right interface, received frames reach the pipeline and are counted, and a
//! bridged frame crosses from one workload vif to another through the rings.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ip, is_root, Netns};
use filament_dataplane::{
    DumpKind, LabelPayload, MacAddr, Nexthop, NexthopKind, NhId, Op, VifId, VifKind, VrfId,
    GATEWAY_MAC,
};
use filament_dataplane_io::{
    AttachCfg, Datapath, DatapathCfg, IoError, IoMode, PacketRing, RingCfg,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn workload(ifname: &str, id: u32) -> AttachCfg {
    AttachCfg {
        ifname: ifname.into(),
        id: Some(VifId(id)),
        kind: VifKind::Workload,
        vrf: Some(VrfId(1)),
        policy: false,
        mac: None,
        ip: None,
    }
}

fn recv(ring: &mut PacketRing, pred: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let mut hit = None;
        ring.rx_burst(64, |f| {
            if hit.is_none() && pred(f.data()) {
                hit = Some(f.data().to_vec());
            }
        });
        if hit.is_some() {
            return hit;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// An Ethernet frame carrying an IPv4/UDP datagram (valid checksums not needed for bridging).
fn udp_frame(dst: [u8; 6], src: [u8; 6], marker: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let payload = [marker; 18];
    let total = 20 + 8 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
        10,
        1,
        1,
        3,
        10,
        1,
        1,
        4,
    ];
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    ip[10] = (c >> 8) as u8;
    ip[11] = c as u8;
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, (8 + payload.len()) as u8, 0, 0]);
    f.extend_from_slice(&payload);
    f
}

#[test]
fn attach_inject_dump_detach() {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter("dp");
    ip(&ns.name, "link add va type veth peer name vb");
    ip(&ns.name, "link set va up");
    ip(&ns.name, "link set vb up");
    let rt = rt();
    let dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        ..DatapathCfg::default()
    })
    .unwrap();
    let h = dp.handle();
    let mut peer = PacketRing::open("vb", RingCfg::default()).unwrap();
    rt.block_on(async {
        assert_eq!(h.attach(workload("va", 3)).await.unwrap(), VifId(3));
        assert!(matches!(
            h.attach(workload("va", 4)).await,
            Err(IoError::AlreadyAttached { .. })
        ));
        assert!(matches!(
            h.attach(workload("nope0", 5)).await,
            Err(IoError::NoSuchInterface { .. })
        ));
        let vifs = h.dump(DumpKind::Interfaces).await.unwrap();
        let list = vifs.as_array().unwrap();
        assert_eq!(list.len(), 1, "{vifs}");
        assert_eq!(list[0]["name"], "va");
        assert_eq!(list[0]["mac"], GATEWAY_MAC.to_string());
        assert!(list[0]["ring"]["rx_frames"].is_u64());

        // The agent injects a frame on vif 3: it leaves on va, the peer sees it.
        let frame = udp_frame([2, 0, 0, 0, 0, 9], GATEWAY_MAC.0, 0xab);
        h.inject(VifId(3), frame.clone()).unwrap();
        let got = recv(&mut peer, |d| d == frame.as_slice()).expect("injected frame arrives");
        assert_eq!(got, frame);

        // A frame from the peer reaches the pipeline (counted on the vif).
        // (An Ethernet header and 2 bytes of "IPv4": truncated.)
        let mut junk = GATEWAY_MAC.0.to_vec();
        junk.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x00, 0x45, 0x00]);
        assert!(peer.tx_push(&junk));
        peer.tx_flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d = h.dump(DumpKind::Dropstats).await.unwrap();
            if d["total"].as_u64().unwrap_or(0) >= 1 {
                assert!(d["rings"]["va"]["rx_frames"].as_u64().unwrap() >= 1, "{d}");
                break;
            }
            assert!(Instant::now() < deadline, "runt frame never counted: {d}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        h.detach(VifId(3)).await.unwrap();
        assert!(matches!(
            h.detach(VifId(3)).await,
            Err(IoError::NotAttached { vif: 3 })
        ));
        let vifs = h.dump(DumpKind::Interfaces).await.unwrap();
        assert_eq!(vifs.as_array().unwrap().len(), 0, "{vifs}");
    });
    drop(dp);
    // The handle fails cleanly once the loop is gone.
    assert!(matches!(
        h.inject(VifId(3), vec![0; 60]),
        Err(IoError::Stopped)
    ));
}

#[test]
fn bridged_frame_crosses_between_workload_vifs() {
    bridged("br", 1, IoMode::AfPacket);
}

/// Two run loops: wa is received by loop 0, wb by loop 1; loop 0 sends to wb through its
/// transmit-only socket, and the dump merges both loops' counters.
#[test]
fn bridged_frame_crosses_between_two_run_loops() {
    bridged("br2", 2, IoMode::AfPacket);
}

/// The same through AF_XDP sockets (copy mode, XDP program on wa and wb).
#[test]
fn bridged_frame_crosses_over_af_xdp() {
    bridged("brx", 1, IoMode::AfXdp);
}

fn bridged(tag: &str, cores: usize, io: IoMode) {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter(tag);
    for (a, b) in [("wa", "pa"), ("wb", "pb")] {
        ip(&ns.name, &format!("link add {a} type veth peer name {b}"));
        ip(&ns.name, &format!("link set {a} up"));
        ip(&ns.name, &format!("link set {b} up"));
    }
    let rt = rt();
    let dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        cores,
        io,
        ..DatapathCfg::default()
    })
    .unwrap();
    let h = dp.handle();
    assert_eq!(h.loops(), cores);
    let mut pa = PacketRing::open("pa", RingCfg::default()).unwrap();
    let mut pb = PacketRing::open("pb", RingCfg::default()).unwrap();
    let mac_a: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
    let mac_b: MacAddr = "02:00:00:00:00:0b".parse().unwrap();
    rt.block_on(async {
        h.attach(workload("wa", 1)).await.unwrap();
        h.attach(workload("wb", 2)).await.unwrap();
        for (id, vif, mac) in [(1, 1, mac_a), (2, 2, mac_b)] {
            h.apply(Op::AddNexthop(Nexthop {
                id: NhId(id),
                kind: NexthopKind::Encap {
                    vif: VifId(vif),
                    dst_mac: mac,
                    src_mac: GATEWAY_MAC,
                },
            }))
            .await
            .unwrap();
            h.apply(Op::AddBridge {
                vrf: VrfId(1),
                mac,
                nh: NhId(id),
            })
            .await
            .unwrap();
        }
        // A typo'd op is refused with the core's reason.
        let bad = h
            .apply(Op::AddBridge {
                vrf: VrfId(1),
                mac: mac_a,
                nh: NhId(99),
            })
            .await;
        assert!(matches!(bad, Err(IoError::Op { .. })), "{bad:?}");
    });
    let frame = udp_frame(mac_b.0, mac_a.0, 0x5a);
    assert!(pa.tx_push(&frame));
    pa.tx_flush();
    let got = recv(&mut pb, |d| d.len() >= 14 && d[..6] == mac_b.0).expect("bridged to wb");
    assert_eq!(got, frame, "bridging leaves the frame unchanged");
    let stats = rt.block_on(h.dump(DumpKind::Interfaces)).unwrap();
    let wb = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "wb")
        .unwrap()
        .clone();
    assert!(wb["stats"]["tx_packets"].as_u64().unwrap() >= 1, "{wb}");
    assert!(wb["ring"]["tx_frames"].as_u64().unwrap() >= 1, "{wb}");
    let wa = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "wa")
        .unwrap()
        .clone();
    assert!(wa["ring"]["rx_frames"].as_u64().unwrap() >= 1, "{wa}");
    // The I/O asked for is the I/O in use (AF_XDP does not fall back on veth).
    let want = if io == IoMode::AfXdp {
        "af-xdp"
    } else {
        "af-packet"
    };
    assert_eq!(wa["ring"]["io"], want, "{wa}");
    assert_eq!(wb["ring"]["io"], want, "{wb}");
}

/// A fabric frame whose outer IPv4 header is broken (IHL 4) but still reads as UDP to our
/// fabric IP is counted as `malformed`, and UDP to us cut before its ports as `truncated`,
/// over AF_PACKET and over AF_XDP alike (the XDP program hands such frames to the socket
/// instead of passing them to the kernel, which dropped them uncounted).
#[test]
fn malformed_outer_ipv4_is_counted_over_af_packet() {
    malformed_outer_ipv4("mfp", IoMode::AfPacket);
}

#[test]
fn malformed_outer_ipv4_is_counted_over_af_xdp() {
    malformed_outer_ipv4("mfx", IoMode::AfXdp);
}

fn malformed_outer_ipv4(tag: &str, io: IoMode) {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter(tag);
    ip(&ns.name, "link add fab type veth peer name sw");
    ip(&ns.name, "link set fab up");
    ip(&ns.name, "link set sw up");
    let rt = rt();
    let dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        io,
        ..DatapathCfg::default()
    })
    .unwrap();
    let h = dp.handle();
    let mut sw = PacketRing::open("sw", RingCfg::default()).unwrap();
    let our_ip = [192, 0, 2, 1];
    let fab_mac = rt.block_on(async {
        h.attach(AttachCfg {
            ifname: "fab".into(),
            id: Some(VifId(0)),
            kind: VifKind::Fabric,
            vrf: None,
            policy: false,
            mac: None,
            ip: Some(std::net::Ipv4Addr::from(our_ip).into()),
        })
        .await
        .unwrap();
        let vifs = h.dump(DumpKind::Interfaces).await.unwrap();
        let m: MacAddr = vifs[0]["mac"].as_str().unwrap().parse().unwrap();
        m
    });
    // MPLSoUDP to us, its IPv4 header claiming 16 bytes (IHL 4); and UDP to us cut before its
    // destination port (36 bytes).
    let mut f = udp_frame(fab_mac.0, [2, 0, 0, 0, 0, 0x22], 0x11);
    f[26..30].copy_from_slice(&[192, 0, 2, 2]);
    f[30..34].copy_from_slice(&our_ip);
    f[36..38].copy_from_slice(&6635u16.to_be_bytes());
    let cut = f[..36].to_vec();
    f[14] = 0x44;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    let counted = rt.block_on(async {
        loop {
            // (Resent until counted: AF_XDP takes a moment to come up after attach.)
            if sent < 50 {
                assert!(sw.tx_push(&f));
                assert!(sw.tx_push(&cut));
                sw.tx_flush();
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let d = h.dump(DumpKind::Dropstats).await.unwrap();
            if let (Some(n), Some(_)) = (
                d["drops"]["malformed"].as_u64(),
                d["drops"]["truncated"].as_u64(),
            ) {
                return (n, d);
            }
            assert!(Instant::now() < deadline, "{io:?}: never counted: {d}");
        }
    });
    assert!(counted.0 >= 1, "{:?}", counted.1);
    let drops = counted.1["drops"].as_object().unwrap();
    assert!(
        drops.keys().all(|k| k == "malformed" || k == "truncated"),
        "{io:?}: only these drops: {}",
        counted.1
    );
    let vifs = rt.block_on(h.dump(DumpKind::Interfaces)).unwrap();
    let want = if io == IoMode::AfXdp {
        "af-xdp"
    } else {
        "af-packet"
    };
    assert_eq!(vifs[0]["ring"]["io"], want, "{vifs}");
}

/// An MPLSoUDP frame to our fabric IP whose outer IPv4 header carries options (IHL 6..15)
/// is decapsulated and its inner packet delivered to the workload, over AF_PACKET and over
/// AF_XDP alike (the XDP program read the UDP port at offset 20 only and passed such frames
/// to the kernel, which dropped them).
#[test]
fn outer_ipv4_options_are_decapsulated_over_af_packet() {
    outer_ipv4_options("opp", IoMode::AfPacket);
}

#[test]
fn outer_ipv4_options_are_decapsulated_over_af_xdp() {
    outer_ipv4_options("opx", IoMode::AfXdp);
}

/// Ethernet + IPv4 with `ihl` words of header (options: Router Alert, RFC 2113, then NOPs and
/// EOL) + UDP to 6635 + MPLS `label` (bottom of stack) + `inner` (an IP packet).
fn mpls_o_udp_with_options(
    dst: [u8; 6],
    src: [u8; 6],
    ihl: u8,
    label: u32,
    inner: &[u8],
) -> Vec<u8> {
    let hl = usize::from(ihl) * 4;
    let udp_len = 8 + 4 + inner.len();
    let total = hl + udp_len;
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut h = vec![0u8; hl];
    h[0] = 0x40 | ihl;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&[0x12, 0x34]);
    h[8] = 64;
    h[9] = 17;
    h[12..16].copy_from_slice(&[192, 0, 2, 2]);
    h[16..20].copy_from_slice(&[192, 0, 2, 1]);
    h[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]); // Router Alert
    for b in &mut h[24..hl.saturating_sub(1).max(24)] {
        *b = 1; // NOP
    }
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&50000u16.to_be_bytes());
    f.extend_from_slice(&6635u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum (RFC 7510 allows zero over IPv4)
    f.extend_from_slice(&((label << 12) | 0x100 | 64).to_be_bytes());
    f.extend_from_slice(inner);
    f
}

fn outer_ipv4_options(tag: &str, io: IoMode) {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter(tag);
    for (a, b) in [("fab", "sw"), ("wa", "pa")] {
        ip(&ns.name, &format!("link add {a} type veth peer name {b}"));
        ip(&ns.name, &format!("link set {a} up"));
        ip(&ns.name, &format!("link set {b} up"));
    }
    let rt = rt();
    let dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        io,
        ..DatapathCfg::default()
    })
    .unwrap();
    let h = dp.handle();
    let mut sw = PacketRing::open("sw", RingCfg::default()).unwrap();
    let mut pa = PacketRing::open("pa", RingCfg::default()).unwrap();
    let mac_a: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
    let fab_mac = rt.block_on(async {
        h.attach(AttachCfg {
            ifname: "fab".into(),
            id: Some(VifId(0)),
            kind: VifKind::Fabric,
            vrf: None,
            policy: false,
            mac: None,
            ip: Some(std::net::Ipv4Addr::new(192, 0, 2, 1).into()),
        })
        .await
        .unwrap();
        h.attach(workload("wa", 1)).await.unwrap();
        h.apply(Op::AddNexthop(Nexthop {
            id: NhId(1),
            kind: NexthopKind::Encap {
                vif: VifId(1),
                dst_mac: mac_a,
                src_mac: GATEWAY_MAC,
            },
        }))
        .await
        .unwrap();
        h.apply(Op::AddLabel {
            label: 16,
            nh: NhId(1),
            payload: LabelPayload::Ip,
        })
        .await
        .unwrap();
        let vifs = h.dump(DumpKind::Interfaces).await.unwrap();
        let m: MacAddr = vifs[0]["mac"].as_str().unwrap().parse().unwrap();
        m
    });
    for ihl in [6u8, 10, 15] {
        // The inner packet: 10.1.1.3 -> 10.1.1.4 UDP, its payload marked with the IHL.
        let inner = udp_frame(mac_a.0, [0; 6], 0xa0 | ihl)[14..].to_vec();
        let f = mpls_o_udp_with_options(fab_mac.0, [2, 0, 0, 0, 0, 0x22], ihl, 16, &inner);
        let want =
            |d: &[u8]| d.len() == 14 + inner.len() && d[..6] == mac_a.0 && d[14 + 28] == 0xa0 | ihl;
        // (Resent until delivered: AF_XDP takes a moment to come up after attach.)
        let mut got = None;
        for _ in 0..20 {
            assert!(sw.tx_push(&f));
            sw.tx_flush();
            got = recv_within(&mut pa, want, Duration::from_millis(250));
            if got.is_some() {
                break;
            }
        }
        let got = got.unwrap_or_else(|| {
            let d = rt.block_on(h.dump(DumpKind::Dropstats)).unwrap();
            panic!("{io:?}: IHL {ihl}: not delivered; dropstats {d}")
        });
        assert_eq!(got[..6], mac_a.0);
        assert_eq!(got[6..12], GATEWAY_MAC.0);
        assert_eq!(got[12..14], [0x08, 0x00]);
        // The inner packet, unchanged (delivered by its label, as TF does, TTL kept).
        assert_eq!(got[14..], inner[..], "IHL {ihl}");
    }
    let d = rt.block_on(h.dump(DumpKind::Dropstats)).unwrap();
    assert_eq!(d["total"].as_u64(), Some(0), "{io:?}: {d}");
    let vifs = rt.block_on(h.dump(DumpKind::Interfaces)).unwrap();
    let want = if io == IoMode::AfXdp {
        "af-xdp"
    } else {
        "af-packet"
    };
    assert_eq!(vifs[0]["ring"]["io"], want, "{vifs}");
}

fn recv_within(
    ring: &mut PacketRing,
    pred: impl Fn(&[u8]) -> bool,
    wait: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let mut hit = None;
        ring.rx_burst(64, |f| {
            if hit.is_none() && pred(f.data()) {
                hit = Some(f.data().to_vec());
            }
        });
        if hit.is_some() {
            return hit;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}
