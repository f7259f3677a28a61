//! Round-trip, known-vector and malformed-input tests for every format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use crate::*;

/// The classic IPv4 header example (Wikipedia "IPv4 header checksum"):
/// checksum 0xb861.
const IPV4_HDR: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

#[test]
fn ipv4_known_vector_and_round_trip() {
    let mut buf = IPV4_HDR.to_vec();
    buf.resize(0x73, 0);
    let p = ipv4::Packet::new_checked(&buf[..]).unwrap();
    let r = ipv4::Repr::parse(&p).unwrap();
    assert_eq!(r.src, Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(r.dst, Ipv4Addr::new(192, 168, 0, 199));
    assert_eq!(r.protocol, ip_proto::UDP);
    assert_eq!(r.payload_len, 0x73 - 20);
    let mut out = [0u8; 20];
    r.emit(&mut out);
    assert_eq!(out, IPV4_HDR);
    // TTL decrement patches the checksum like a full recompute.
    let mut m = ipv4::Packet::new_unchecked(buf.clone());
    m.decrement_ttl();
    let inc = m.checksum();
    m.fill_checksum();
    assert_eq!(inc, m.checksum());
    assert_eq!(m.ttl(), 0x3f);
}

#[test]
fn ipv4_malformed() {
    let mut bad = IPV4_HDR.to_vec();
    bad.resize(0x73, 0);
    assert!(matches!(
        ipv4::Packet::new_checked(&bad[..19]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        ipv4::Packet::new_checked(&bad[..0x72]),
        Err(Error::Truncated { .. })
    ));
    bad[0] = 0x44;
    assert!(matches!(
        ipv4::Packet::new_checked(&bad[..]),
        Err(Error::Malformed {
            field: "header length",
            ..
        })
    ));
    bad[0] = 0x65;
    assert!(matches!(
        ipv4::Packet::new_checked(&bad[..]),
        Err(Error::Malformed {
            field: "version",
            ..
        })
    ));
    bad[0] = 0x45;
    bad[11] ^= 1;
    let p = ipv4::Packet::new_checked(&bad[..]).unwrap();
    assert!(matches!(
        ipv4::Repr::parse(&p),
        Err(Error::Malformed {
            field: "checksum",
            ..
        })
    ));
    bad[2] = 0;
    bad[3] = 10; // total length < header
    assert!(ipv4::Packet::new_checked(&bad[..]).is_err());
}

#[test]
fn checksum_rfc1071_example_and_incremental() {
    // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
    let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(checksum::fold(checksum::sum(&d)), 0xddf2);
    assert_eq!(checksum::checksum(&d), !0xddf2);
    // Odd length pads with zero.
    assert_eq!(checksum::sum(&[0xab]), 0xab00);
    // RFC 1624 update equals recompute.
    let mut d2 = d;
    let c = checksum::checksum(&d);
    d2[2] = 0x12;
    d2[3] = 0x34;
    assert_eq!(
        checksum::update16(c, 0xf203, 0x1234),
        checksum::checksum(&d2)
    );
}

#[test]
fn udp_tcp_checksums_verify_after_fill() {
    let src: IpAddr = "10.0.0.1".parse().unwrap();
    let dst: IpAddr = "10.0.0.2".parse().unwrap();
    let mut u = vec![0u8; 8 + 5];
    udp::Repr {
        src_port: 1234,
        dst_port: 53,
        payload_len: 5,
    }
    .emit(&mut u);
    u[8..].copy_from_slice(b"hello");
    let mut p = udp::Packet::new_checked(&mut u[..]).unwrap();
    p.fill_checksum(&src, &dst);
    assert!(p.verify_checksum(&src, &dst));
    assert!(!p.verify_checksum(&dst, &"10.0.0.3".parse().unwrap()));
    let r = udp::Repr::parse(&udp::Packet::new_checked(&u[..]).unwrap()).unwrap();
    assert_eq!((r.src_port, r.dst_port, r.payload_len), (1234, 53, 5));

    let s6: IpAddr = "2001:db8::1".parse().unwrap();
    let d6: IpAddr = "2001:db8::2".parse().unwrap();
    let mut t = vec![0u8; 20 + 3];
    tcp::Repr {
        src_port: 40000,
        dst_port: 80,
        seq: 1,
        ack: 2,
        flags: tcp::flags::SYN,
        window: 1000,
    }
    .emit(&mut t);
    let mut p = tcp::Packet::new_checked(&mut t[..]).unwrap();
    p.fill_checksum(&s6, &d6);
    assert!(p.verify_checksum(&s6, &d6));
    // NAT-style incremental update of a v6 address keeps it valid.
    let n6: IpAddr = "2001:db8::99".parse().unwrap();
    let c = checksum::update_addr(p.checksum(), &s6, &n6);
    p.set_checksum(c);
    assert!(p.verify_checksum(&n6, &d6));
}

#[test]
fn udp_tcp_malformed() {
    let mut u = [0u8; 8];
    u[5] = 4; // length 4 < 8
    assert!(matches!(
        udp::Packet::new_checked(&u[..]),
        Err(Error::Malformed { .. })
    ));
    u[5] = 9; // length beyond buffer
    assert!(matches!(
        udp::Packet::new_checked(&u[..]),
        Err(Error::Truncated { .. })
    ));
    let mut t = [0u8; 20];
    t[12] = 4 << 4;
    assert!(matches!(
        tcp::Packet::new_checked(&t[..]),
        Err(Error::Malformed { .. })
    ));
    t[12] = 6 << 4;
    assert!(matches!(
        tcp::Packet::new_checked(&t[..]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn ethernet_vlan_arp() {
    let r = ethernet::Repr {
        dst: [0xff; 6],
        src: [2, 0, 0, 0, 0, 1],
        vlan_tci: Some(100),
        ethertype: ethernet::ethertype::ARP,
    };
    let mut b = vec![0u8; r.buffer_len() + arp::PACKET_LEN];
    r.emit(&mut b);
    let a = arp::Repr {
        operation: arp::op::REQUEST,
        sender_mac: [2, 0, 0, 0, 0, 1],
        sender_ip: Ipv4Addr::new(192, 0, 2, 1),
        target_mac: [0; 6],
        target_ip: Ipv4Addr::new(192, 0, 2, 2),
    };
    a.emit(&mut b[18..]);
    let f = ethernet::Frame::new_checked(&b[..]).unwrap();
    assert_eq!(ethernet::Repr::parse(&f).unwrap(), r);
    let p = arp::Packet::new_checked(&b[18..]).unwrap();
    assert_eq!(arp::Repr::parse(&p).unwrap(), a);
    // Tagged frame cut in the tag.
    assert!(ethernet::Repr::parse(&ethernet::Frame::new_checked(&b[..15]).unwrap()).is_err());
    let mut bad = b[18..].to_vec();
    bad[1] = 6; // htype 6
    assert!(arp::Repr::parse(&arp::Packet::new_checked(&bad[..]).unwrap()).is_err());
    assert!(arp::Packet::new_checked(&bad[..27]).is_err());
}

#[test]
fn vxlan_gre_mpls_known_bytes() {
    let mut v = [0u8; 8];
    vxlan::Repr { vni: 5001 }.emit(&mut v);
    assert_eq!(v, [0x08, 0, 0, 0, 0x00, 0x13, 0x89, 0x00]);
    assert_eq!(
        vxlan::Repr::parse(&vxlan::Packet::new_checked(&v[..]).unwrap())
            .unwrap()
            .vni,
        5001
    );
    v[0] = 0;
    assert!(vxlan::Repr::parse(&vxlan::Packet::new_checked(&v[..]).unwrap()).is_err());

    let mut m = [0u8; 4];
    mpls::Repr {
        label: 16,
        tc: 0,
        bottom: true,
        ttl: 64,
    }
    .emit(&mut m);
    assert_eq!(m, [0x00, 0x01, 0x01, 0x40]);
    let r = mpls::Repr::parse(&mpls::Packet::new_checked(&m[..]).unwrap()).unwrap();
    assert_eq!((r.label, r.bottom, r.ttl), (16, true, 64));

    let mut g = [0u8; 4];
    gre::Repr {
        protocol: 0x8847,
        checksum: false,
        key: None,
        seq: None,
    }
    .emit(&mut g);
    assert_eq!(g, [0, 0, 0x88, 0x47]);
    let mut gk = vec![0u8; 16 + 3];
    let rk = gre::Repr {
        protocol: 0x0800,
        checksum: true,
        key: Some(7),
        seq: Some(9),
    };
    rk.emit(&mut gk);
    assert_eq!(
        gre::Repr::parse(&gre::Packet::new_checked(&gk[..]).unwrap()).unwrap(),
        rk
    );
    gk[18] = 1; // payload changed: checksum fails
    assert!(gre::Repr::parse(&gre::Packet::new_checked(&gk[..]).unwrap()).is_err());
    assert!(gre::Packet::new_checked(&gk[..10]).is_err());
    let ver1 = [0u8, 1, 0x88, 0x47];
    assert!(gre::Repr::parse(&gre::Packet::new_checked(&ver1[..]).unwrap()).is_err());
    // RFC 2784 §2.3: bits 1, 4 and 5 (RFC 1701 routing, strict source route, recursion)
    // make the packet one to discard; bits 6-12 are ignored.
    for flags in [0x40u8, 0x08, 0x04] {
        let g = [flags, 0, 0x88, 0x47, 0, 0, 0, 0];
        assert!(
            gre::Repr::parse(&gre::Packet::new_checked(&g[..]).unwrap()).is_err(),
            "{flags:#x}"
        );
    }
    let ignored = [0x03u8, 0xf8, 0x88, 0x47];
    assert!(gre::Repr::parse(&gre::Packet::new_checked(&ignored[..]).unwrap()).is_ok());
}

#[test]
fn ipv6_and_icmp() {
    let r = ipv6::Repr {
        src: "2001:db8::1".parse().unwrap(),
        dst: "2001:db8::2".parse().unwrap(),
        next_header: ip_proto::ICMPV6,
        payload_len: 8,
        hop_limit: 64,
        traffic_class: 0xab,
        flow_label: 0x12345,
    };
    let mut b = vec![0u8; 48];
    r.emit(&mut b);
    icmp::Repr {
        msg_type: icmp::types::V6_ECHO_REQUEST,
        code: 0,
        rest: 0x0001_0002,
    }
    .emit(&mut b[40..]);
    let (s, d) = (IpAddr::V6(r.src), IpAddr::V6(r.dst));
    icmp::Packet::new_unchecked(&mut b[40..]).fill_checksum_v6(&s, &d);
    let p = ipv6::Packet::new_checked(&b[..]).unwrap();
    assert_eq!(ipv6::Repr::parse(&p).unwrap(), r);
    let ic = icmp::Packet::new_checked(p.payload()).unwrap();
    assert!(ic.verify_checksum_v6(&s, &d));
    assert_eq!((ic.echo_ident(), ic.echo_seq()), (1, 2));
    assert!(ipv6::Packet::new_checked(&b[..47]).is_err());
    let _ = Ipv6Addr::LOCALHOST;
}

proptest! {
    #[test]
    fn no_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        let d = &data[..];
        if let Ok(f) = ethernet::Frame::new_checked(d) { let _ = ethernet::Repr::parse(&f); let _ = f.payload(); }
        if let Ok(p) = arp::Packet::new_checked(d) { let _ = arp::Repr::parse(&p); }
        if let Ok(p) = ipv4::Packet::new_checked(d) { let _ = ipv4::Repr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = ipv6::Packet::new_checked(d) { let _ = ipv6::Repr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = udp::Packet::new_checked(d) { let _ = udp::Repr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = tcp::Packet::new_checked(d) { let _ = tcp::Repr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = icmp::Packet::new_checked(d) { let _ = icmp::Repr::parse(&p); }
        if let Ok(p) = mpls::Packet::new_checked(d) { let _ = mpls::Repr::parse(&p); }
        if let Ok(p) = vxlan::Packet::new_checked(d) { let _ = vxlan::Repr::parse(&p); }
        if let Ok(p) = gre::Packet::new_checked(d) { let _ = gre::Repr::parse(&p); let _ = p.payload(); }
    }

    #[test]
    fn ipv4_repr_round_trip(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in 0usize..100, ttl in any::<u8>(), tos in any::<u8>(), ident in any::<u16>(), df in any::<bool>()) {
        let r = ipv4::Repr { src: src.into(), dst: dst.into(), protocol: proto, payload_len: len, ttl, tos, ident, dont_frag: df };
        let mut b = vec![0u8; 20 + len];
        r.emit(&mut b);
        let p = ipv4::Packet::new_checked(&b[..]).unwrap();
        prop_assert_eq!(ipv4::Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn mpls_vxlan_gre_round_trip(label in 0u32..(1 << 20), tc in 0u8..8, bottom in any::<bool>(), ttl in any::<u8>(), vni in 0u32..(1 << 24), key in proptest::option::of(any::<u32>()), seq in proptest::option::of(any::<u32>()), csum in any::<bool>()) {
        let m = mpls::Repr { label, tc, bottom, ttl };
        let mut b = [0u8; 4];
        m.emit(&mut b);
        prop_assert_eq!(mpls::Repr::parse(&mpls::Packet::new_checked(&b[..]).unwrap()).unwrap(), m);
        let v = vxlan::Repr { vni };
        let mut b = [0u8; 8];
        v.emit(&mut b);
        prop_assert_eq!(vxlan::Repr::parse(&vxlan::Packet::new_checked(&b[..]).unwrap()).unwrap(), v);
        let g = gre::Repr { protocol: 0x8847, checksum: csum, key, seq };
        let mut b = vec![0u8; g.buffer_len() + 4];
        g.emit(&mut b);
        prop_assert_eq!(gre::Repr::parse(&gre::Packet::new_checked(&b[..]).unwrap()).unwrap(), g);
    }

    #[test]
    fn incremental_update_matches_recompute(words in proptest::collection::vec(any::<u16>(), 2..20), idx in any::<prop::sample::Index>(), new in any::<u16>()) {
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let c = checksum::checksum(&bytes);
        let i = idx.index(words.len());
        bytes[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
        let full = checksum::checksum(&bytes);
        let inc = checksum::update16(c, words[i], new);
        // 0x0000 and 0xffff are the same value in one's complement.
        prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
    }

    #[test]
    fn fold_equals_folding_until_no_carry(s in prop_oneof![any::<u32>(), 0xfffe_0000u32..=u32::MAX, 0u32..0x2_0000]) {
        let mut want = s;
        while want >> 16 != 0 {
            want = (want & 0xffff) + (want >> 16);
        }
        prop_assert_eq!(checksum::fold(s), want as u16);
    }
}
