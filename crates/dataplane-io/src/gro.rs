//! Receive offload toward workloads: consecutive TCP segments of one flow that leave by the
//! same workload interface in one burst are joined into one GSO super-frame, handed to the
//! kernel with a `virtio_net_hdr` (`PACKET_VNET_HDR`), as the kernel's own GRO joins them on a
//! device that has it.
//!
//! Kernel VXLAN keeps GRO on its `vxlan` device, so the workload's TCP stack receives a few
//! large packets per burst (and sends one ACK per packet); frames we write into a veth arrive
//! one by one. Joining them gives the workload the same, and every joined segment saves the
//! veth transmit, the workload's IP/TCP receive and part of an ACK.
//!
//! The rules are the kernel's (`tcp_gro_receive`, `inet_gro_receive`): only segments that a
//! receiver could not tell apart from the sender having sent one large segment are joined.
//!
//! * same Ethernet header; IPv4 without options or fragmentation, same addresses, TOS, TTL
//!   and DF; or IPv6 without extension headers, same addresses, traffic class, flow label and
//!   hop limit;
//! * TCP: same ports, acknowledgment number, window and options (byte for byte: a different
//!   timestamp ends the run), flags ACK or ACK|PSH only (no SYN, FIN, RST, URG, ECE, CWR);
//! * each segment starts where the previous one ended (RFC 9293 §3.4: "the sequence number of
//!   the first data octet in this segment"); every joined segment but the last has the first
//!   one's payload size (that is the segment size the header announces), and a shorter or
//!   PSH-marked segment ends the run;
//! * at most 64 KiB of IP datagram.
//!
//! The super-frame carries the first segment's headers with the lengths of the whole (IPv4
//! total length and header checksum, or IPv6 payload length), PSH if the last joined segment
//! had it, and in the TCP checksum field the pseudo-header sum of the whole (checksum offload:
//! `VIRTIO_NET_HDR_F_NEEDS_CSUM`, `csum_start` at the TCP header, `csum_offset` 16). A run of
//! one segment leaves unchanged, without GSO. Sans-IO: frames in, frames out, in order.

/// `virtio_net_hdr.flags`: the checksum from `csum_start` is to be completed.
const F_NEEDS_CSUM: u8 = 1;
/// `virtio_net_hdr.gso_type` for TCP over IPv4 / IPv6.
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
/// Largest IP datagram a super-frame may carry.
const MAX_IP: usize = 65535;
/// TCP flag bits.
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// `struct virtio_net_hdr` (10 bytes, little-endian), as the kernel reads it in front of a
/// transmitted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// What leaves the coalescer.
#[derive(Debug)]
pub enum Out<'a> {
    /// A frame as it came in.
    Plain(&'a [u8]),
    /// A super-frame of `segments` joined segments and its header.
    Gso(VnetHdr, &'a [u8], u16),
}

/// Where a candidate segment's headers are (offsets into the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    v6: bool,
    /// Start of the TCP header.
    l4: usize,
    /// Start of the payload.
    data: usize,
    seq: u32,
    flags: u8,
}

const ETH: usize = 14;

/// The headers of `f` if it is a TCP segment with data that may be joined (see the module doc).
fn parse(f: &[u8]) -> Option<Seg> {
    let (v6, l4) = match f.get(12..14)? {
        [0x08, 0x00] => {
            let ip = f.get(ETH..ETH + 20)?;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // Version 4 without options, TCP, not a fragment (MF and offset 0; DF allowed).
            if ip[0] != 0x45 || ip[9] != 6 || ip[6] & 0x3f != 0 || ip[7] != 0 {
                return None;
            }
            if ETH + total != f.len() {
                return None; // padded or cut: not ours to reshape
            }
            (false, ETH + 20)
        }
        [0x86, 0xdd] => {
            let ip = f.get(ETH..ETH + 40)?;
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip[0] >> 4 != 6 || ip[6] != 6 || ETH + 40 + plen != f.len() {
                return None;
            }
            (true, ETH + 40)
        }
        _ => return None,
    };
    let th = f.get(l4..l4 + 20)?;
    let doff = usize::from(th[12] >> 4) * 4;
    let flags = th[13];
    // ACK, optionally PSH; nothing else (and the reserved bits clear).
    if doff < 20 || th[12] & 0x0f != 0 || flags & !PSH != ACK {
        return None;
    }
    let data = l4 + doff;
    if data >= f.len() {
        return None; // no payload: a pure ACK goes as it is
    }
    let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
    Some(Seg {
        v6,
        l4,
        data,
        seq,
        flags,
    })
}

/// Whether `b` may follow `a` (the run's first segment, headers `sa`) in one super-frame:
/// everything but the lengths, IPv4 identification and checksums, sequence number and PSH is
/// the same.
fn same_headers(a: &[u8], sa: Seg, b: &[u8], sb: Seg) -> bool {
    if sa.v6 != sb.v6 || sa.data != sb.data || a[..ETH] != b[..ETH] {
        return false;
    }
    let ip_same = if sa.v6 {
        // version/class/flow label, next header + hop limit, addresses
        a[ETH..ETH + 4] == b[ETH..ETH + 4] && a[ETH + 6..ETH + 40] == b[ETH + 6..ETH + 40]
    } else {
        // TOS; flags (DF); TTL + protocol; addresses
        a[ETH + 1] == b[ETH + 1]
            && a[ETH + 6] == b[ETH + 6]
            && a[ETH + 8..ETH + 10] == b[ETH + 8..ETH + 10]
            && a[ETH + 12..ETH + 20] == b[ETH + 12..ETH + 20]
    };
    let l4 = sa.l4;
    // ports; ack number + data offset; window; options (everything after the checksum and
    // urgent pointer up to the payload)
    ip_same
        && a[l4..l4 + 4] == b[l4..l4 + 4]
        && a[l4 + 8..l4 + 13] == b[l4 + 8..l4 + 13]
        && a[l4 + 14..l4 + 16] == b[l4 + 14..l4 + 16]
        && a[l4 + 20..sa.data] == b[l4 + 20..sb.data]
}

/// One's complement sum of 16-bit words (no fold).
fn sum16(b: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut it = b.chunks_exact(2);
    for w in &mut it {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [x] = it.remainder() {
        s += u32::from(*x) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The run being built.
#[derive(Debug)]
struct Run {
    seg: Seg,
    /// Payload bytes per segment (the first segment's).
    mss: usize,
    next_seq: u32,
    segments: u16,
    /// Ended: a shorter or PSH segment was joined; the next segment starts a new run.
    closed: bool,
}

/// Joins segments per interface (one per workload port); see the module doc.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// The run's first segment's headers, then every joined payload.
    buf: Vec<u8>,
    run: Option<Run>,
    /// Super-frames sent, and the segments they carried.
    pub frames: u64,
    pub segments: u64,
}

impl Coalescer {
    /// A coalescer with room for a full super-frame.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(ETH + MAX_IP),
            ..Self::default()
        }
    }

    /// Take `frame`: join it to the run, or send the run and start a new one with it, or send
    /// it as it is. `out` sees every frame in order.
    pub fn push(&mut self, frame: &[u8], mut out: impl FnMut(Out<'_>)) {
        let Some(seg) = parse(frame) else {
            self.flush(&mut out);
            out(Out::Plain(frame));
            return;
        };
        let payload = frame.len() - seg.data;
        if let Some(run) = &mut self.run {
            let fits = self.buf.len() + payload - ETH <= MAX_IP;
            if !run.closed
                && fits
                && seg.seq == run.next_seq
                && payload <= run.mss
                && same_headers(&self.buf, run.seg, frame, seg)
            {
                self.buf.extend_from_slice(&frame[seg.data..]);
                run.next_seq = seg.seq.wrapping_add(payload as u32);
                run.segments += 1;
                if seg.flags & PSH != 0 {
                    let at = run.seg.l4 + 13;
                    if let Some(f) = self.buf.get_mut(at) {
                        *f |= PSH;
                    }
                }
                run.closed = payload < run.mss || seg.flags & PSH != 0;
                return;
            }
            self.flush(&mut out);
        }
        self.buf.clear();
        self.buf.extend_from_slice(frame);
        self.run = Some(Run {
            seg,
            mss: payload,
            next_seq: seg.seq.wrapping_add(payload as u32),
            segments: 1,
            closed: seg.flags & PSH != 0,
        });
    }

    /// Send the run being built, if any (at the end of a burst).
    pub fn flush(&mut self, mut out: impl FnMut(Out<'_>)) {
        let Some(run) = self.run.take() else {
            return;
        };
        if run.segments == 1 {
            out(Out::Plain(&self.buf));
            return;
        }
        let Seg { v6, l4, data, .. } = run.seg;
        let b = &mut self.buf[..];
        let tcp_len = b.len() - l4;
        if v6 {
            b[ETH + 4..ETH + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        } else {
            let total = (b.len() - ETH) as u16;
            b[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
            b[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
            let c = !fold(sum16(&b[ETH..l4]));
            b[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        }
        // The pseudo-header sum (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6), not complemented:
        // the receiver's offload adds the segment and complements.
        let addrs = if v6 {
            &b[ETH + 8..ETH + 40]
        } else {
            &b[ETH + 12..ETH + 20]
        };
        let pseudo = fold(sum16(addrs) + 6 + tcp_len as u32);
        b[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: data as u16,
            gso_size: run.mss as u16,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        self.frames += 1;
        self.segments += u64::from(run.segments);
        out(Out::Gso(hdr, &self.buf, run.segments));
    }
}

/// Cut super-frame `frame` (as [`Coalescer`] made it) back into `mss`-byte segments with
/// complete TCP checksums, for when the kernel did not take it whole.
pub fn resegment(frame: &[u8], mss: usize, scratch: &mut Vec<u8>, mut emit: impl FnMut(&[u8])) {
    let Some(seg) = parse_any(frame) else {
        emit(frame);
        return;
    };
    let _ = crate::gso::segment_tcp_with_headroom(frame, mss, scratch, 0, |s| {
        let l4 = seg.l4;
        if s.len() < l4 + 18 {
            return;
        }
        s[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let addrs = if seg.v6 {
            &s[ETH + 8..ETH + 40]
        } else {
            &s[ETH + 12..ETH + 20]
        };
        let c = !fold(sum16(addrs) + 6 + (s.len() - l4) as u32 + sum16(&s[l4..]));
        s[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        emit(s);
    });
}

/// [`parse`] without the flag rules (a super-frame may carry PSH).
fn parse_any(f: &[u8]) -> Option<Seg> {
    let (v6, l4) = match f.get(12..14)? {
        [0x08, 0x00] => (false, ETH + usize::from(f.get(ETH)? & 0x0f) * 4),
        [0x86, 0xdd] => (true, ETH + 40),
        _ => return None,
    };
    let doff = usize::from(f.get(l4 + 12)? >> 4) * 4;
    Some(Seg {
        v6,
        l4,
        data: l4 + doff,
        seq: 0,
        flags: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gso::segment_tcp;

    /// An IPv4 TCP segment: `seq`, `flags`, `payload` bytes (values from `seq`), a timestamp
    /// option `ts`.
    fn tcp4(seq: u32, flags: u8, payload: usize, ts: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = 20 + 32 + payload;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0x40,
            0,
        ]);
        f.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let c = !fold(sum16(&f[ETH..ETH + 20]));
        f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 7, 0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, ts, 0, 0, 0, 9]);
        f.extend((0..payload).map(|i| (seq as usize + i) as u8));
        f
    }

    fn run(frames: &[Vec<u8>]) -> Vec<(Option<VnetHdr>, Vec<u8>)> {
        let mut c = Coalescer::new();
        let mut got = Vec::new();
        let mut take = |o: Out<'_>| match o {
            Out::Plain(f) => got.push((None, f.to_vec())),
            Out::Gso(h, f, _) => got.push((Some(h), f.to_vec())),
        };
        for f in frames {
            c.push(f, &mut take);
        }
        c.flush(&mut take);
        got
    }

    /// TCP checksum of a complete segment (for checking what GSO would produce).
    fn tcp_ok(f: &[u8]) -> bool {
        let l4 = ETH + 20;
        let len = (f.len() - l4) as u32;
        fold(sum16(&f[ETH + 12..ETH + 20]) + 6 + len + sum16(&f[l4..])) == 0xffff
    }

    #[test]
    fn consecutive_segments_join_and_resegment_to_the_same_frames() {
        let mut segs: Vec<Vec<u8>> = (0..5u32)
            .map(|i| tcp4(1000 + i * 100, ACK, 100, 3))
            .collect();
        let last = tcp4(1500, ACK | PSH, 40, 3);
        segs.push(last);
        let got = run(&segs);
        assert_eq!(got.len(), 1, "one super-frame");
        let (h, f) = &got[0];
        let h = h.expect("GSO header");
        assert_eq!(
            (
                h.gso_type,
                h.gso_size,
                h.hdr_len,
                h.csum_start,
                h.csum_offset
            ),
            (GSO_TCPV4, 100, 66, 34, 16)
        );
        assert_eq!(f.len(), 66 + 540);
        assert_eq!(
            fold(sum16(&f[ETH..ETH + 20])),
            0xffff,
            "IPv4 header checksum"
        );
        assert_eq!(f[ETH + 20 + 13], ACK | PSH, "PSH of the last segment");
        // What the kernel's GSO would make of it: the same segments (with the TCP checksum
        // completed from the pseudo-header seed, as the offload does).
        let mut done = f.clone();
        let l4 = ETH + 20;
        let c = !fold(sum16(&done[l4..]));
        done[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        assert!(
            tcp_ok(&done),
            "the pseudo-header seed completes to a valid checksum"
        );
        let mut scratch = Vec::new();
        let mut back = Vec::new();
        segment_tcp(&done, 100, &mut scratch, |s| back.push(s.to_vec())).unwrap();
        assert_eq!(back.len(), 6);
        for (i, (b, s)) in back.iter().zip(&segs).enumerate() {
            assert_eq!(b[l4..l4 + 16], s[l4..l4 + 16], "TCP header {i}");
            assert_eq!(b[l4 + 20..], s[l4 + 20..], "options and payload {i}");
        }
        // The fallback when the kernel refuses the super-frame: the same segments, each with
        // a checksum that verifies.
        let mut again = Vec::new();
        resegment(f, 100, &mut scratch, |s| again.push(s.to_vec()));
        assert_eq!(again.len(), 6);
        for (i, (b, s)) in again.iter().zip(&segs).enumerate() {
            assert!(tcp_ok(b), "checksum of segment {i}");
            assert_eq!(b[l4..l4 + 16], s[l4..l4 + 16], "TCP header {i}");
            assert_eq!(b[l4 + 20..], s[l4 + 20..], "options and payload {i}");
        }
    }

    #[test]
    fn a_run_ends_where_the_rules_say() {
        let a = tcp4(1000, ACK, 100, 3);
        // a gap in the sequence
        let gap = run(&[a.clone(), tcp4(1200, ACK, 100, 3)]);
        assert!(
            gap.iter().all(|(h, _)| h.is_none()) && gap.len() == 2,
            "gap"
        );
        // another timestamp
        let ts = run(&[a.clone(), tcp4(1100, ACK, 100, 4)]);
        assert!(
            ts.iter().all(|(h, _)| h.is_none()) && ts.len() == 2,
            "options"
        );
        // FIN, SYN, RST, URG, ECE, CWR are never joined
        for bad in [0x01, 0x02, 0x04, 0x20, 0x40, 0x80] {
            let out = run(&[a.clone(), tcp4(1100, ACK | bad, 100, 3)]);
            assert!(out.iter().all(|(h, _)| h.is_none()), "flag {bad:#x}");
        }
        // a longer segment after the first: not a multiple of one segment size
        let long = run(&[a.clone(), tcp4(1100, ACK, 200, 3)]);
        assert!(long.iter().all(|(h, _)| h.is_none()), "longer");
        // after a short segment the run is closed
        let short = run(&[a.clone(), tcp4(1100, ACK, 50, 3), tcp4(1150, ACK, 100, 3)]);
        assert_eq!(short.len(), 2);
        assert_eq!(short[0].0.map(|h| h.gso_size), Some(100));
        assert_eq!(short[0].1.len(), a.len() + 50);
        assert!(short[1].0.is_none());
        // a pure ACK and a non-TCP frame pass as they are, in order
        let ack = tcp4(1100, ACK, 0, 3);
        let arp = vec![0xff; 42];
        let out = run(&[a.clone(), ack.clone(), arp.clone()]);
        let frames: Vec<&Vec<u8>> = out.iter().map(|(_, f)| f).collect();
        assert_eq!(frames, vec![&a, &ack, &arp]);
    }

    /// An IPv6 TCP segment (no options) of `payload` bytes at `seq`.
    fn tcp6(seq: u32, payload: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        let plen = 20 + payload;
        f.extend_from_slice(&[0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 6, 64]);
        f.extend((0..16).map(|i| if i == 15 { 1 } else { 0xfd }));
        f.extend((0..16).map(|i| if i == 15 { 2 } else { 0xfd }));
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 7, 0x50, ACK, 0x01, 0xf5, 0, 0, 0, 0]);
        f.extend((0..payload).map(|i| (seq as usize + i) as u8));
        f
    }

    #[test]
    fn ipv6_segments_join_with_the_payload_length_and_seed_of_the_whole() {
        let segs: Vec<Vec<u8>> = (0..4u32).map(|i| tcp6(i * 1000, 1000)).collect();
        let got = run(&segs);
        assert_eq!(got.len(), 1);
        let (h, f) = &got[0];
        let h = h.expect("GSO header");
        let l4 = ETH + 40;
        assert_eq!(
            (h.gso_type, h.gso_size, h.csum_start, usize::from(h.hdr_len)),
            (GSO_TCPV6, 1000, l4 as u16, l4 + 20)
        );
        assert_eq!(
            usize::from(u16::from_be_bytes([f[ETH + 4], f[ETH + 5]])),
            20 + 4000
        );
        // seed + the segment's own sum, complemented, verifies as a whole
        let mut done = f.clone();
        let c = !fold(sum16(&done[l4..]));
        done[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        let len = (done.len() - l4) as u32;
        assert_eq!(
            fold(sum16(&done[ETH + 8..ETH + 40]) + 6 + len + sum16(&done[l4..])),
            0xffff
        );
        // and a hop-limit change ends the run
        let mut other = tcp6(4000, 1000);
        other[ETH + 7] = 63;
        let split = run(&[segs[0].clone(), other]);
        assert!(split.iter().all(|(h, _)| h.is_none()) && split.len() == 2);
    }

    #[test]
    fn never_more_than_64k() {
        let segs: Vec<Vec<u8>> = (0..60u32).map(|i| tcp4(i * 1400, ACK, 1400, 3)).collect();
        let out = run(&segs);
        assert!(out.len() >= 2);
        let mut payload = 0;
        for (h, f) in &out {
            assert!(f.len() - ETH <= MAX_IP, "{} bytes", f.len());
            if h.is_some() {
                assert_eq!(
                    usize::from(u16::from_be_bytes([f[ETH + 2], f[ETH + 3]])),
                    f.len() - ETH
                );
            }
            payload += f.len() - 66;
        }
        assert_eq!(payload, 60 * 1400, "every byte once");
    }
}
