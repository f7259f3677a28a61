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
