//! Later IP fragments that arrive before their first one (TF vr_fragment.c's out-of-order
//! handling, `frag.rs`): on a policy vif they wait in a bounded queue and follow the first
//! fragment's flow once it arrives; what waits too long, or does not fit, is dropped and
//! counted.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{checksum, ethernet, ip_proto, ipv4, ipv6};
use proptest::prelude::*;

/// VM3 -> VM5 UDP 40000 -> 5201 (remote, over the tunnel) in VRF 1.
fn key(v6: bool) -> FlowKey {
    let (src, dst) = if v6 {
        (
            IpAddr::V6("fd00::3".parse().unwrap()),
            IpAddr::V6("fd00::5".parse().unwrap()),
        )
    } else {
        (IpAddr::V4(vm_ip(3)), IpAddr::V4(vm_ip(5)))
    };
    FlowKey {
        vrf: VrfId(1),
        proto: ip_proto::UDP,
        src,
        dst,
        sport: 40000,
        dport: 5201,
    }
}

/// The fragments, in order, of a UDP datagram of `data` bytes from VM3 to VM5, each carrying
/// `chunk` bytes (a multiple of 8) of the IP payload, IP identification `id`.
fn v4_fragments(data: usize, chunk: usize, id: u16) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..data).map(|i| (i * 7) as u8).collect();
    let whole = vm_udp_routed_with(3, vm_ip(5), 40000, 5201, &payload);
    let l4 = &whole[34..];
    let n = l4.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &l4[i * chunk..l4.len().min((i + 1) * chunk)];
            let mut f = whole[..34].to_vec();
            f.extend_from_slice(part);
            f[16..18].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
            f[18..20].copy_from_slice(&id.to_be_bytes());
            let more = if i + 1 < n { 0x2000 } else { 0 };
            f[20..22].copy_from_slice(&(((i * chunk / 8) as u16) | more).to_be_bytes());
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
            f
        })
        .collect()
}

/// The same for IPv6 (fd00::3 -> fd00::5, Fragment headers, RFC 8200 §4.5).
fn v6_fragments(data: usize, chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let (s, d): (Ipv6Addr, Ipv6Addr) = ("fd00::3".parse().unwrap(), "fd00::5".parse().unwrap());
    let payload: Vec<u8> = (0..data).map(|i| (i * 5) as u8).collect();
    let mut l4 = udp_l4(40000, 5201, &payload);
    let c = checksum::l4_checksum(&IpAddr::V6(s), &IpAddr::V6(d), ip_proto::UDP, &l4);
    l4[6..8].copy_from_slice(&c.to_be_bytes());
    let n = l4.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &l4[i * chunk..l4.len().min((i + 1) * chunk)];
            let off_m = ((i * chunk) as u16) | u16::from(i + 1 < n);
            let mut body = vec![ip_proto::UDP, 0];
            body.extend_from_slice(&off_m.to_be_bytes());
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(part);
            let mut f = vec![0u8; 14 + 40 + body.len()];
            ethernet::Repr {
                dst: GATEWAY_MAC.0,
                src: vm_mac(3).0,
                vlan_tci: None,
                ethertype: ethernet::ethertype::IPV6,
            }
            .emit(&mut f);
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: ip_proto::IPV6_FRAG,
                payload_len: body.len(),
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut f[14..]);
            f[54..].copy_from_slice(&body);
            f
        })
        .collect()
}

/// Host A (policy on VM3's vif 1) with the IPv6 route to fd00::5 over the tunnel too.
fn host(encap: TunnelEncap, hold_max: usize) -> Forwarder {
    let mut a = host_a_cfg(
        encap,
        true,
        ForwarderCfg {
            hold_max,
            ..Default::default()
        },
    );
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "fd00::5/128".parse().unwrap(),
        nh: NhId(10),
    })
    .unwrap();
    a
}

fn process_at(a: &mut Forwarder, at: Duration, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = PacketBuf::from_frame(frame);
    let v = a.process(at, VifId(1), &mut b, RxMeta::default());
    (v, b.to_vec())
}

/// Which fragment (by index) an encapsulated frame carries: the inner IP packet ends the
/// frame; its fragment offset and its data (after the IPv4 header / the IPv6 header and
/// Fragment header) identify it.
fn which(frags: &[Vec<u8>], out: &[u8], v6: bool) -> usize {
    let (data_at, off_at) = if v6 { (40 + 8, 40 + 2) } else { (20, 6) };
    let hits: Vec<usize> = (0..frags.len())
        .filter(|&i| {
            let ip = &frags[i][14..];
            let Some(inner) = out.len().checked_sub(ip.len()).map(|at| &out[at..]) else {
                return false;
            };
            inner[off_at..off_at + 2] == ip[off_at..off_at + 2] && inner[data_at..] == ip[data_at..]
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "an output frame that is not exactly one of the fragments"
    );
    hits[0]
}

/// Feed `frags` in `order`; returns, per arrival, the indices of the fragments delivered
/// (encapsulated toward the fabric) as a result, and checks each verdict.
fn feed(a: &mut Forwarder, frags: &[Vec<u8>], order: &[usize], v6: bool) -> Vec<Vec<usize>> {
    let mut head_seen = false;
    let mut out = Vec::new();
    for &i in order {
        let (v, bytes) = process_at(a, T0, &frags[i]);
        let mut delivered = Vec::new();
        if i == 0 {
            head_seen = true;
        }
        match v {
            Verdict::Transmit(vif) => {
                assert!(head_seen, "fragment {i} went out before the first one");
                assert_eq!(vif, VifId(0));
                delivered.push(which(frags, &bytes, v6));
            }
            Verdict::Held => assert!(!head_seen, "fragment {i} held after the first one"),
            other => panic!("fragment {i}: {other:?}"),
        }
        while let Some(tx) = a.poll_transmit() {
            assert_eq!(tx.vif, VifId(0));
            delivered.push(which(frags, &tx.frame, v6));
        }
        out.push(delivered);
    }
    out
}

/// A permutation of 0..n from proptest's random keys.
fn permutation(keys: &[u32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by_key(|&i| (keys.get(i).copied().unwrap_or(0), i));
    idx
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With the flow installed: whatever the arrival order, nothing goes out before the first
    /// fragment; when it arrives it goes out, then every fragment that came before it, in
    /// arrival order; the rest go out as they come. Each exactly once, nothing dropped.
    #[test]
    fn any_arrival_order_delivers_every_fragment_once_the_head_arrives(
        encap in any_encap(),
        v6 in any::<bool>(),
        data in 9usize..1500,
        chunk8 in 1usize..64,
        keys in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let chunk = chunk8 * 8;
        let frags = if v6 { v6_fragments(data, chunk, 0x1234_5678) } else { v4_fragments(data, chunk, 0x4321) };
        prop_assume!(frags.len() >= 2 && frags.len() <= 64);
        let order = permutation(&keys, frags.len());
        let mut a = host(encap, 3);
        a.apply(Op::AddFlow(flow_spec(key(v6), 3))).unwrap();
        let got = feed(&mut a, &frags, &order, v6);
        let head_at = order.iter().position(|&i| i == 0).unwrap();
        // Before the head: nothing. At the head: the head, then the early ones in order.
        for d in &got[..head_at] {
            prop_assert!(d.is_empty());
        }
        let mut want_at_head = vec![0];
        want_at_head.extend_from_slice(&order[..head_at]);
        prop_assert_eq!(&got[head_at], &want_at_head);
        for (d, &i) in got[head_at + 1..].iter().zip(&order[head_at + 1..]) {
            prop_assert_eq!(d, &vec![i]);
        }
        let mut all: Vec<usize> = got.concat();
        all.sort_unstable();
        prop_assert_eq!(all, (0..frags.len()).collect::<Vec<_>>());
        prop_assert_eq!(a.dropstats().total, 0);
        let fwd = a.dump_flows().into_iter().find(|f| f.key == key(v6)).unwrap();
        prop_assert_eq!(fwd.packets, frags.len() as u64);
    }

    /// Without a flow: the head is punted and held; the fragments that came before it join it
    /// on the HOLD flow, and the verdict releases all of them. Also with a full fragment table
    /// (size 0): run again at the verdict, those that came before the head, and those after
    /// it, still find its ports; a head that came first keeps no entry, its later fragments
    /// wait in the queue, and the head, run again at the verdict, releases them (sent through
    /// `poll_transmit`).
    #[test]
    fn early_fragments_wait_on_the_heads_hold_flow(
        v6 in any::<bool>(),
        n in 2usize..6,
        keys in proptest::collection::vec(any::<u32>(), 8),
        full in any::<bool>(),
    ) {
        let frags = if v6 { v6_fragments(n * 64 - 8, 64, 9) } else { v4_fragments(n * 64 - 8, 64, 9) };
        prop_assert_eq!(frags.len(), n);
        let order = permutation(&keys, n);
        let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 8);
        if full {
            a.set_frag_table_size(0);
        }
        for &i in &order {
            let (v, _) = process_at(&mut a, T0, &frags[i]);
            if i == 0 {
                prop_assert!(matches!(v, Verdict::Punt { key: Some(k), .. } if k == key(v6)), "{:?}", v);
            } else {
                prop_assert_eq!(v, Verdict::Held);
            }
            prop_assert_eq!(a.poll_transmit(), None);
        }
        let released = a.apply(Op::AddFlow(flow_spec(key(v6), 3))).unwrap().released;
        let queued = if full && order[0] == 0 { n - 1 } else { 0 };
        prop_assert_eq!(released.len(), n - queued);
        let mut seen: Vec<usize> = released
            .iter()
            .map(|r| {
                assert_eq!(r.verdict, Verdict::Transmit(VifId(0)));
                which(&frags, r.buf.frame(), v6)
            })
            .collect();
        while let Some(tx) = a.poll_transmit() {
            seen.push(which(&frags, &tx.frame, v6));
        }
        prop_assert_eq!(seen.len(), n);
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        a.age_flows(T0 + Duration::from_secs(3));
        prop_assert_eq!(a.dropstats().total, 0);
    }
}

#[test]
fn early_fragments_whose_head_never_comes_are_dropped_after_the_timeout() {
    let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 3);
    a.apply(Op::AddFlow(flow_spec(key(false), 3))).unwrap();
    let frags = v4_fragments(1000, 512, 77);
    assert_eq!(process_at(&mut a, T0, &frags[1]).0, Verdict::Held);
    // Aged before the timeout: still waiting.
    a.age_flows(T0 + Duration::from_millis(1500));
    assert_eq!(a.dropstats().total, 0);
    // After it: dropped, counted as an unidentifiable fragment, on its vif too.
    a.age_flows(T0 + Duration::from_millis(2500));
    let d = a.dropstats();
    assert_eq!(d.drops.get(&DropReason::Fragment), Some(&1));
    let vif1 = a
        .dump_interfaces()
        .into_iter()
        .find(|v| v.vif.id == VifId(1))
        .unwrap();
    assert_eq!(vif1.stats.drops, 1);
    // The head, late: it goes; nothing else is released.
    let (v, _) = process_at(&mut a, T0 + Duration::from_millis(2600), &frags[0]);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    assert_eq!(a.poll_transmit(), None);
}

#[test]
fn the_queue_is_bounded_per_source_and_in_all() {
    let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 3);
    // Later fragments of distinct datagrams (no head ever) from VM3.
    let mut held = 0;
    for id in 0..(FRAG_QUEUE_PER_SOURCE as u16 + 10) {
        let f = &v4_fragments(100, 64, id)[1];
        match process_at(&mut a, T0, f).0 {
            Verdict::Held => held += 1,
            Verdict::Drop(DropReason::FragQueueFull) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(held, FRAG_QUEUE_PER_SOURCE);
    assert_eq!(
        a.dropstats().drops.get(&DropReason::FragQueueFull),
        Some(&10)
    );
    // Other sources fill the rest of the queue, up to FRAG_QUEUE_MAX in all.
    let mut total = held;
    'outer: for src in 10u8..20 {
        for id in 0..FRAG_QUEUE_PER_SOURCE as u16 {
            let mut f = v4_fragments(100, 64, id)[1].clone();
            f[26..30].copy_from_slice(&vm_ip(src).octets());
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
            match process_at(&mut a, T0, &f).0 {
                Verdict::Held => total += 1,
                Verdict::Drop(DropReason::FragQueueFull) => break 'outer,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(total, FRAG_QUEUE_MAX);
    // Once the queued ones time out, there is room again (they are counted as Fragment).
    let later = T0 + Duration::from_secs(3);
    let f = &v4_fragments(100, 64, 999)[1];
    assert_eq!(process_at(&mut a, later, f).0, Verdict::Held);
    assert_eq!(
        a.dropstats().drops.get(&DropReason::Fragment),
        Some(&(FRAG_QUEUE_MAX as u64))
    );
}

/// Which datagram (by IP identification, `ids` in datagram order) and which of its fragments
/// an encapsulated frame carries: the frame ends with the inner IP packet, whose version,
/// length (IPv4 total length / IPv6 payload length) and identification match one datagram's.
fn which_of(dgs: &[Vec<Vec<u8>>], ids: &[u32], out: &[u8], v6: bool) -> (usize, usize) {
    let id_of = |ip: &[u8]| -> u32 {
        if v6 {
            u32::from_be_bytes([ip[44], ip[45], ip[46], ip[47]])
        } else {
            u32::from(u16::from_be_bytes([ip[4], ip[5]]))
        }
    };
    let len_at = if v6 { 4 } else { 2 };
    let hits: Vec<usize> = (0..dgs.len())
        .filter(|&j| {
            dgs[j].iter().any(|f| {
                let ip = &f[14..];
                out.len().checked_sub(ip.len()).is_some_and(|s| {
                    let inner = &out[s..];
                    inner[0] == ip[0]
                        && inner[len_at..len_at + 2] == ip[len_at..len_at + 2]
                        && id_of(inner) == ids[j]
                })
            })
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "an output frame of no datagram or of several"
    );
    (hits[0], which(&dgs[hits[0]], out, v6))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A fragment table of `size` entries (0..3) and up to four datagrams interleaved, the
    /// flow installed. A first fragment that finds the table full still releases, at once and
    /// in arrival order, the fragments queued behind it (before, they stayed queued until the
    /// timeout), and its later fragments still find its ports; only a first fragment that
    /// finds the table full with nothing queued leaves its later fragments unidentified: they
    /// wait, and the timeout drops them, counted. Every fragment is delivered once or dropped
    /// and counted once; none goes out before its first fragment.
    #[test]
    fn a_full_fragment_table_still_releases_the_fragments_queued_behind_a_head(
        v6 in any::<bool>(),
        size in 0usize..3,
        counts in proptest::collection::vec(2usize..6, 1..5),
        keys in proptest::collection::vec(any::<u32>(), 24),
    ) {
        let ids: Vec<u32> = (0..counts.len() as u32).map(|j| 0x100 + j).collect();
        let dgs: Vec<Vec<Vec<u8>>> = counts
            .iter()
            .zip(&ids)
            .map(|(&n, &id)| {
                if v6 { v6_fragments(n * 64 - 8, 64, id) } else { v4_fragments(n * 64 - 8, 64, id as u16) }
            })
            .collect();
        // Arrival order over all fragments of all datagrams.
        let all: Vec<(usize, usize)> = counts
            .iter()
            .enumerate()
            .flat_map(|(j, &n)| (0..n).map(move |i| (j, i)))
            .collect();
        let order: Vec<(usize, usize)> = permutation(&keys, all.len()).into_iter().map(|x| all[x]).collect();
        let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 3);
        a.set_frag_table_size(size);
        a.apply(Op::AddFlow(flow_spec(key(v6), 3))).unwrap();

        // The model: which datagrams got a table entry, what waits, what is left over.
        let mut listed = vec![None::<bool>; counts.len()];
        let mut in_table = vec![false; counts.len()];
        let mut waiting: Vec<Vec<usize>> = vec![Vec::new(); counts.len()];
        let mut unidentified = 0u64;
        let mut delivered: Vec<(usize, usize)> = Vec::new();
        for &(j, i) in &order {
            let (v, bytes) = process_at(&mut a, T0, &dgs[j][i]);
            let mut got = Vec::new();
            if let Verdict::Transmit(vif) = v {
                prop_assert_eq!(vif, VifId(0));
                got.push(which_of(&dgs, &ids, &bytes, v6));
            }
            while let Some(tx) = a.poll_transmit() {
                got.push(which_of(&dgs, &ids, &tx.frame, v6));
            }
            let want: Vec<(usize, usize)> = if i == 0 {
                let taken = in_table.iter().filter(|t| **t).count();
                in_table[j] = taken < size;
                listed[j] = Some(in_table[j] || !waiting[j].is_empty());
                std::iter::once((j, 0)).chain(waiting[j].drain(..).map(|w| (j, w))).collect()
            } else {
                match listed[j] {
                    None => { waiting[j].push(i); Vec::new() }
                    Some(true) => vec![(j, i)],
                    Some(false) => { unidentified += 1; Vec::new() }
                }
            };
            if want.is_empty() {
                prop_assert_eq!(v, Verdict::Held, "fragment {} of datagram {}", i, j);
            }
            prop_assert_eq!(&got, &want, "fragment {} of datagram {}", i, j);
            delivered.extend(got);
        }
        prop_assert_eq!(a.dropstats().total, 0);
        // Those still waiting (no head, or a head that found the table full) go at the timeout.
        a.age_flows(T0 + Duration::from_secs(3));
        let never_headed: u64 = waiting.iter().map(|w| w.len() as u64).sum();
        let d = a.dropstats();
        prop_assert_eq!(d.drops.get(&DropReason::Fragment).copied().unwrap_or(0), unidentified + never_headed);
        prop_assert_eq!(d.total, unidentified + never_headed);
        prop_assert_eq!(delivered.len() as u64 + d.total, all.len() as u64);
        delivered.sort_unstable();
        delivered.dedup();
        prop_assert_eq!(delivered.len() as u64 + d.total, all.len() as u64);
    }
}

/// The old failure, step by step: a one-entry table taken by another datagram; fragments 2
/// and 1 of datagram 7 wait; its first fragment finds the table full. All three go at once,
/// and fragment 3, after them, too.
#[test]
fn a_head_that_finds_the_table_full_releases_its_queued_fragments_at_once() {
    let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 3);
    a.set_frag_table_size(1);
    a.apply(Op::AddFlow(flow_spec(key(false), 3))).unwrap();
    let other = v4_fragments(1000, 512, 6);
    assert_eq!(
        process_at(&mut a, T0, &other[0]).0,
        Verdict::Transmit(VifId(0))
    );
    let frags = v4_fragments(1900, 512, 7);
    assert_eq!(frags.len(), 4);
    assert_eq!(process_at(&mut a, T0, &frags[2]).0, Verdict::Held);
    assert_eq!(process_at(&mut a, T0, &frags[1]).0, Verdict::Held);
    let (v, head) = process_at(&mut a, T0, &frags[0]);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    assert_eq!(which(&frags, &head, false), 0);
    let mut after = Vec::new();
    while let Some(tx) = a.poll_transmit() {
        after.push(which(&frags, &tx.frame, false));
    }
    assert_eq!(after, vec![2, 1]);
    let (v, last) = process_at(&mut a, T0, &frags[3]);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    assert_eq!(which(&frags, &last, false), 3);
    a.age_flows(T0 + Duration::from_secs(3));
    assert_eq!(a.dropstats().total, 0);
    let fwd = a
        .dump_flows()
        .into_iter()
        .find(|f| f.key == key(false))
        .unwrap();
    assert_eq!(fwd.packets, 5);
}

/// The ports kept for heads that found the table full are bounded: FRAG_QUEUE_MAX datagrams,
/// the oldest forgotten first.
#[test]
fn the_ports_kept_beside_a_full_table_are_bounded() {
    let mut a = host(TunnelEncap::MplsOverUdp { label: 16 }, 3);
    a.set_frag_table_size(0);
    a.apply(Op::AddFlow(flow_spec(key(false), 3))).unwrap();
    let n = FRAG_QUEUE_MAX as u16 + 1;
    for id in 0..n {
        let frags = v4_fragments(1400, 512, id);
        assert_eq!(process_at(&mut a, T0, &frags[1]).0, Verdict::Held);
        assert_eq!(
            process_at(&mut a, T0, &frags[0]).0,
            Verdict::Transmit(VifId(0))
        );
        assert!(a.poll_transmit().is_some(), "datagram {id}: fragment 1");
    }
    // The newest datagram's last fragment finds its ports; the oldest's was forgotten.
    let (v, _) = process_at(&mut a, T0, &v4_fragments(1400, 512, n - 1)[2]);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    let (v, _) = process_at(&mut a, T0, &v4_fragments(1400, 512, 0)[2]);
    assert_eq!(v, Verdict::Held);
    let (v, _) = process_at(&mut a, T0, &v4_fragments(1400, 512, 1)[2]);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    assert_eq!(a.dropstats().total, 0);
}
