//! Every filament-wire-pkt parser on arbitrary bytes must never panic, and
//! whatever parses must re-emit to bytes that parse to the same Repr.
#![no_main]

use filament_wire_pkt::{arp, ethernet, gre, icmp, ipv4, ipv6, mpls, tcp, udp, vxlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        if let Ok(r) = ethernet::Repr::parse(&f) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out);
            let again = ethernet::Repr::parse(&ethernet::Frame::new_checked(&out[..]).unwrap()).unwrap();
            assert_eq!(again, r);
        }
    }
    if let Ok(p) = arp::Packet::new_checked(data) {
        if let Ok(r) = arp::Repr::parse(&p) {
            let mut out = [0u8; arp::PACKET_LEN];
            r.emit(&mut out);
            assert_eq!(arp::Repr::parse(&arp::Packet::new_checked(&out[..]).unwrap()).unwrap(), r);
        }
    }
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = p.payload();
        if let Ok(r) = ipv4::Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len() + r.payload_len];
            r.emit(&mut out);
            let again = ipv4::Repr::parse(&ipv4::Packet::new_checked(&out[..]).unwrap()).unwrap();
            assert_eq!(again, r);
        }
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = p.payload();
        let _ = ipv6::Repr::parse(&p);
    }
    if let Ok(p) = udp::Packet::new_checked(data) {
        let _ = (p.payload(), udp::Repr::parse(&p));
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        let _ = (p.payload(), tcp::Repr::parse(&p));
    }
    if let Ok(p) = icmp::Packet::new_checked(data) {
        let _ = (p.payload(), icmp::Repr::parse(&p), p.verify_checksum_v4());
    }
    if let Ok(p) = mpls::Packet::new_checked(data) {
        let r = mpls::Repr::parse(&p).unwrap();
        let mut out = [0u8; 4];
        r.emit(&mut out);
        assert_eq!(&out[..], &data[..4]);
    }
    if let Ok(p) = vxlan::Packet::new_checked(data) {
        let _ = vxlan::Repr::parse(&p);
    }
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = p.payload();
        if let Ok(r) = gre::Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out);
            let again = gre::Packet::new_checked(&out[..]).unwrap();
            assert_eq!(again.protocol(), r.protocol);
            assert_eq!((again.key(), again.seq()), (r.key, r.seq));
        }
    }
});
