//! The TPACKET_V3 rings on a veth pair inside a private network namespace (root only; skips
//! otherwise): frames sent through one ring arrive intact on the other, our own transmissions
//! are not received back, and a kernel-sent UDP datagram with a partial checksum is flagged.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ip, is_root, Netns};
use filament_dataplane_io::{PacketRing, RingCfg};

fn frame(i: u16, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f.extend_from_slice(&i.to_be_bytes());
    f.resize(60 + usize::from(i % 200), (i & 0xff) as u8);
    f
}

fn recv_until(ring: &mut PacketRing, want: usize, out: &mut Vec<(Vec<u8>, bool)>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < want && Instant::now() < deadline {
        ring.rx_burst(64, |f| out.push((f.data().to_vec(), f.csum_partial)));
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn veth_rings_carry_frames_both_ways_without_echo() {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter("ring");
    ip(&ns.name, "link add ra type veth peer name rb");
    ip(&ns.name, "link set ra up");
    ip(&ns.name, "link set rb up");
    let mut a = PacketRing::open("ra", RingCfg::default()).unwrap();
    let mut b = PacketRing::open("rb", RingCfg::default()).unwrap();
    let (ma, mb) = (
        filament_dataplane_io::sys::if_mac("ra").unwrap(),
        filament_dataplane_io::sys::if_mac("rb").unwrap(),
    );
    // A burst larger than one kick's worth, with varying sizes.
    let sent: Vec<Vec<u8>> = (0..300).map(|i| frame(i, ma, mb)).collect();
    for f in &sent {
        assert!(b.tx_push(f));
    }
    b.tx_flush();
    let mut got = Vec::new();
    recv_until(&mut a, sent.len(), &mut got);
    let got_frames: Vec<Vec<u8>> = got.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(got_frames.len(), sent.len(), "all frames arrive");
    assert_eq!(got_frames, sent, "in order and byte-exact");
    // b must not see its own transmissions.
    let mut echo = Vec::new();
    std::thread::sleep(Duration::from_millis(20));
    b.rx_burst(64, |f| echo.push(f.data().to_vec()));
    assert!(
        echo.is_empty(),
        "own transmissions looped back: {}",
        echo.len()
    );
    let st = b.stats();
    assert_eq!(st.tx_frames, 300);
    assert!(
        st.tx_kicks >= 1 && st.tx_kicks < 300,
        "batched kicks: {}",
        st.tx_kicks
    );
}

#[test]
fn partial_checksum_from_the_kernel_is_flagged() {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter("csum");
    ip(&ns.name, "link add ca type veth peer name cb");
    ip(&ns.name, "addr add 10.77.0.1/24 dev cb");
    ip(&ns.name, "link set ca up");
    ip(&ns.name, "link set cb up");
    ip(
        &ns.name,
        "neigh add 10.77.0.2 lladdr 02:00:00:00:77:02 dev cb",
    );
    let mut a = PacketRing::open("ca", RingCfg::default()).unwrap();
    let s = std::net::UdpSocket::bind("10.77.0.1:0").unwrap();
    s.send_to(b"hello partial checksum", "10.77.0.2:9999")
        .unwrap();
    let mut got = Vec::new();
    recv_until(&mut a, 1, &mut got);
    let (data, partial) = got
        .iter()
        .find(|(d, _)| d.len() >= 34 && d[12..14] == [0x08, 0x00] && d[23] == 17)
        .expect("the UDP datagram arrives");
    assert!(
        *partial,
        "veth leaves the UDP checksum partial (TP_STATUS_CSUMNOTREADY)"
    );
    assert!(data.ends_with(b"hello partial checksum"));
}

/// An IPv4/UDP frame from 10.77.1.1 to 10.77.1.2:`dport` (UDP checksum 0: none).
fn udp_frame(dst: [u8; 6], src: [u8; 6], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip4 = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 77, 1, 1, 10, 77, 1, 2,
    ];
    ip4[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = ip4
        .chunks(2)
        .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
    let sum = (sum & 0xffff) + (sum >> 16);
    ip4[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip4);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Frames sent through the TX ring reach the far side of a veth as linear skbs (the whole frame
/// in `virtio_net_hdr.hdr_len`): a tcx program there reads their IP and UDP headers by direct
/// packet access, which covers the linear part only. With the fabric's overlay drop attached,
/// an MPLSoUDP datagram no longer reaches a local UDP socket on 6635 (before: only the Ethernet
/// header was linear, the program passed every packet and the kernel delivered it), while a
/// datagram to another port still does (the kernel does receive what the ring sends).
#[test]
fn ring_frames_are_linear_for_the_fabric_tc_drop() {
    if !is_root() {
        eprintln!("SKIP: needs root for network namespaces");
        return;
    }
    let ns = Netns::enter("linear");
    ip(&ns.name, "link add la type veth peer name lb");
    ip(&ns.name, "addr add 10.77.1.2/24 dev lb");
    ip(&ns.name, "link set la up");
    ip(&ns.name, "link set lb up");
    let mut a = PacketRing::open("la", RingCfg::default()).unwrap();
    let mut b = PacketRing::open("lb", RingCfg::default()).unwrap();
    let _drop = filament_dataplane_io::bpf::TcOverlayDrop::attach(
        filament_dataplane_io::sys::if_index("lb").unwrap(),
        Some(std::net::Ipv4Addr::new(10, 77, 1, 2)),
    )
    .unwrap();
    let overlay = std::net::UdpSocket::bind("10.77.1.2:6635").unwrap();
    let other = std::net::UdpSocket::bind("10.77.1.2:9999").unwrap();
    for s in [&overlay, &other] {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    let (ma, mb) = (
        filament_dataplane_io::sys::if_mac("la").unwrap(),
        filament_dataplane_io::sys::if_mac("lb").unwrap(),
    );
    // MPLS label 17, bottom of stack, then an inner IPv4 byte: an MPLSoUDP packet.
    let mpls = udp_frame(mb, ma, 6635, &[0x00, 0x01, 0x11, 0x40, 0x45, 0, 0, 0]);
    let plain = udp_frame(mb, ma, 9999, b"not overlay");
    assert!(a.tx_push(&mpls));
    assert!(a.tx_push(&plain));
    a.tx_flush();
    let mut got = Vec::new();
    recv_until(&mut b, 2, &mut got);
    assert_eq!(got.len(), 2, "the packet tap on lb sees both frames");
    let mut buf = [0u8; 64];
    let n = other
        .recv(&mut buf)
        .expect("the plain datagram reaches its socket");
    assert_eq!(&buf[..n], b"not overlay");
    let r = overlay.recv(&mut buf);
    assert!(
        r.is_err(),
        "the overlay datagram was dropped at tcx ingress, not delivered: {r:?}"
    );
}
