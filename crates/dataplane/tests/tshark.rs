//! The encapsulated frames the pipeline emits, written to a pcap and decoded
//! by the real tshark: MPLS over UDP, MPLS over GRE and VXLAN must decode
//! with the expected label / VNI, the inner packet, and nothing malformed.
//! Skips (with a message) when tshark is not installed.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::ip_proto;

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for w in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for w in [i as u32, 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

#[test]
fn tshark_decodes_our_encapsulations() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIP: tshark not installed");
        return;
    }
    let routed = vm_udp_routed(3, vm_ip(5), 1000, 2000);
    let bridged = frame_v4(
        vm_mac(5),
        vm_mac(3),
        vm_ip(3),
        vm_ip(5),
        ip_proto::UDP,
        64,
        &udp_l4(5, 6, b"l2"),
    );
    let cases = [
        (
            TunnelEncap::MplsOverUdp { label: 16 },
            &routed,
            "eth:ethertype:ip:udp:mpls:ip:udp:data",
            "16",
            "",
        ),
        (
            TunnelEncap::MplsOverGre { label: 16 },
            &routed,
            "eth:ethertype:ip:gre:mpls:ip:udp:data",
            "16",
            "",
        ),
        (
            TunnelEncap::Vxlan { vni: 5001 },
            &routed,
            "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:udp:data",
            "",
            "5001",
        ),
        (
            TunnelEncap::MplsOverUdp { label: 18 },
            &bridged,
            "eth:ethertype:ip:udp:mpls:eth:ethertype:ip:udp:data",
            "18",
            "",
        ),
        (
            TunnelEncap::MplsOverGre { label: 18 },
            &bridged,
            "eth:ethertype:ip:gre:mpls:eth:ethertype:ip:udp:data",
            "18",
            "",
        ),
        (
            TunnelEncap::Vxlan { vni: 5001 },
            &bridged,
            "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:udp:data",
            "",
            "5001",
        ),
    ];
    let mut frames = Vec::new();
    for (encap, inner, ..) in &cases {
        let mut a = host_a(*encap, false);
        let (v, out) = run(&mut a, 1, inner);
        assert_eq!(v, Verdict::Transmit(VifId(0)));
        frames.push(out);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.pcap");
    std::fs::write(&path, pcap(&frames)).unwrap();
    // Label 18 is an L2 label: its payload starts with the control word.
    let out = Command::new("tshark")
        .args([
            "-r",
            path.to_str().unwrap(),
            "-d",
            "mpls.label==18,pwethcw",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "frame.protocols",
            "-e",
            "mpls.label",
            "-e",
            "vxlan.vni",
            "-e",
            "ip.dst",
            "-e",
            "_ws.malformed",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{text}");
    for (line, (encap, _, protos, label, vni)) in lines.iter().zip(&cases) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], *protos, "{encap:?}: {line}");
        assert_eq!(f[1], *label, "{encap:?}: {line}");
        assert_eq!(f[2], *vni, "{encap:?}: {line}");
        assert_eq!(
            f[3], "192.0.2.2,10.1.1.5",
            "{encap:?}: outer and inner destinations: {line}"
        );
        assert_eq!(f[4], "", "{encap:?}: malformed: {line}");
    }
}
