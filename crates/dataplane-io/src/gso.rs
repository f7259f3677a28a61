//! Software TCP segmentation of GSO frames received from workloads.
//!
//! A workload whose interface offers TSO (veth and tap do by default) hands the host one
//! "super-frame" of up to 64 KiB for many TCP segments; the kernel tells us the segment size
//! in the `virtio_net_hdr` in front of each received frame (`PACKET_VNET_HDR`). The forwarder
//! encapsulates packets that must fit the fabric MTU, so the shell cuts such a frame into
//! `gso_size`-byte segments first, as the kernel's own software GSO would:
//!
//! RFC 9293 §3.1 (header format): each segment carries its own sequence number ("the sequence
//! number of the first data octet in this segment"); the control bits that belong to the end of
//! the data (FIN, PSH) go on the last segment only, CWR (RFC 3168 §6.1.2) on the first only.
//! IPv4 segments get consecutive identifications and a fresh header checksum; IPv6 segments a
//! new payload length. TCP checksums are left to the forwarder core (the segments are marked
//! checksum-partial, which it completes in software).

/// `virtio_net_hdr.gso_type` values (include/uapi/linux/virtio_net.h).
pub const GSO_NONE: u8 = 0;
/// TCP over IPv4.
pub const GSO_TCPV4: u8 = 1;
/// TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;
/// ECN bit that may be or'ed into the type.
pub const GSO_ECN: u8 = 0x80;

/// Why a GSO frame could not be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// Not Ethernet + IPv4/IPv6 (no extension headers) + TCP, or headers cut short.
    #[error("GSO frame is not Ethernet/IP/TCP or its headers are truncated")]
    NotTcp,
    /// A segment size of zero.
    #[error("GSO frame with segment size 0")]
    ZeroSize,
}

/// Cut `frame` (Ethernet + IP + TCP, payload larger than `mss`) into segments of at most
/// `mss` payload bytes, calling `emit` with each complete frame (written into `scratch`).
/// Returns the number of segments.
pub fn segment_tcp(
    frame: &[u8],
    mss: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, GsoError> {
    segment_tcp_with_headroom(frame, mss, scratch, 0, |s| emit(s))
}

/// [`segment_tcp`], each segment written at `scratch[headroom..]` and handed to `emit` as the
/// whole writable buffer (`headroom` bytes of room in front of the segment, their contents
/// unspecified), so the segment can be processed where it lies (grown into the headroom).
pub fn segment_tcp_with_headroom(
    frame: &[u8],
    mss: usize,
    scratch: &mut Vec<u8>,
    headroom: usize,
    mut emit: impl FnMut(&mut [u8]),
) -> Result<usize, GsoError> {
    if mss == 0 {
        return Err(GsoError::ZeroSize);
    }
    let eth = 14;
    let ethertype = frame.get(12..14).ok_or(GsoError::NotTcp)?;
    let (v6, l4) = match ethertype {
        [0x08, 0x00] => {
            let vihl = *frame.get(eth).ok_or(GsoError::NotTcp)?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 || frame.get(eth + 9) != Some(&6) {
                return Err(GsoError::NotTcp);
            }
            (false, eth + ihl)
        }
        [0x86, 0xdd] => {
            // Next header must be TCP directly (no extension headers).
            if frame.get(eth + 6) != Some(&6) {
                return Err(GsoError::NotTcp);
            }
            (true, eth + 40)
        }
        _ => return Err(GsoError::NotTcp),
    };
    let doff = usize::from(*frame.get(l4 + 12).ok_or(GsoError::NotTcp)? >> 4) * 4;
    if doff < 20 || frame.len() < l4 + doff {
        return Err(GsoError::NotTcp);
    }
    let hdr_len = l4 + doff;
    let payload = &frame[hdr_len..];
    let seq0 = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]]);
    let flags0 = frame[l4 + 13];
    let id0 = u16::from_be_bytes([frame[eth + 4], frame[eth + 5]]);
    let chunks = payload.chunks(mss).count().max(1);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let last = i + 1 == chunks;
        // Shrinking keeps the headroom's old bytes (no zeroing per segment).
        scratch.resize(headroom, 0);
        scratch.extend_from_slice(&frame[..hdr_len]);
        scratch.extend_from_slice(chunk);
        let all = &mut scratch[..];
        let scratch = &mut all[headroom..];
        let off = (i * mss) as u32;
        scratch[l4 + 4..l4 + 8].copy_from_slice(&seq0.wrapping_add(off).to_be_bytes());
        let mut flags = flags0;
        if !last {
            flags &= !(0x01 | 0x08); // FIN, PSH
        }
        if i > 0 {
            flags &= !0x80; // CWR
        }
        scratch[l4 + 13] = flags;
        if v6 {
            let plen = (doff + chunk.len()) as u16;
            scratch[eth + 4..eth + 6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let total = (hdr_len - eth + chunk.len()) as u16;
            scratch[eth + 2..eth + 4].copy_from_slice(&total.to_be_bytes());
            scratch[eth + 4..eth + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            scratch[eth + 10..eth + 12].copy_from_slice(&[0, 0]);
            let c = ipv4_header_checksum(&scratch[eth..l4]);
            scratch[eth + 10..eth + 12].copy_from_slice(&c.to_be_bytes());
        }
        emit(all);
    }
    Ok(chunks)
}

/// RFC 791 header checksum: one's complement of the one's complement sum of the header.
fn ipv4_header_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4(payload_len: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = 20 + 20 + payload_len;
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
        f.extend_from_slice(&[
            0x30, 0x39, 0x00, 0x50, 0, 0, 0x10, 0, 0, 0, 0, 1, 0x50, flags,
        ]);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..payload_len).map(|i| (i % 251) as u8));
        f
    }

    #[test]
    fn segments_cover_the_payload_with_fixed_headers() {
        let frame = tcp4(3000, 0x18 | 0x01 | 0x80); // PSH|ACK|FIN|CWR
        let mut scratch = Vec::new();
        let mut segs: Vec<Vec<u8>> = Vec::new();
        let n = segment_tcp(&frame, 1400, &mut scratch, |s| segs.push(s.to_vec())).unwrap();
        assert_eq!(n, 3);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let total = usize::from(u16::from_be_bytes([s[16], s[17]]));
            assert_eq!(total, s.len() - 14, "IPv4 total length of segment {i}");
            assert_eq!(
                ipv4_header_checksum(&s[14..34]),
                0,
                "header checksum verifies"
            );
            assert_eq!(u16::from_be_bytes([s[18], s[19]]), 0x1234 + i as u16);
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(seq, 0x1000 + (i as u32) * 1400);
            let flags = s[47];
            assert_eq!(flags & 0x01 != 0, i == 2, "FIN only on the last");
            assert_eq!(flags & 0x08 != 0, i == 2, "PSH only on the last");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR only on the first");
            assert!(flags & 0x10 != 0, "ACK on all");
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, frame[54..].to_vec(), "payload intact and in order");
        assert_eq!(segs[2].len(), 54 + 200);
    }

    #[test]
    fn segments_behind_headroom_equal_the_plain_segments() {
        let frame = tcp4(3000, 0x18);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut plain: Vec<Vec<u8>> = Vec::new();
        segment_tcp(&frame, 1000, &mut a, |s| plain.push(s.to_vec())).unwrap();
        let mut roomy: Vec<Vec<u8>> = Vec::new();
        // A used scratch buffer (longer than the headroom) is reused as it is.
        b.resize(4000, 0xee);
        let n = segment_tcp_with_headroom(&frame, 1000, &mut b, 64, |m| {
            assert!(m.len() > 64);
            // Writable in front of the segment (the in-place path grows into it).
            m[0] = 1;
            roomy.push(m[64..].to_vec());
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(plain, roomy);
    }

    proptest::proptest! {
        /// Arbitrary bytes and sizes never panic; whatever segments reassembles to the input
        /// payload, and every segment keeps the original headers' length.
        #[test]
        fn never_panics_and_reassembles(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            mss in 0usize..2000,
            tcp in proptest::bool::ANY,
        ) {
            let mut frame = data;
            if tcp && frame.len() > 60 {
                // Make it look like Ethernet/IPv4/TCP often enough to reach the cutting code.
                frame[12] = 0x08;
                frame[13] = 0x00;
                frame[14] = 0x45;
                frame[23] = 6;
                frame[46] = (frame[46] & 0x0f) | 0x50;
            }
            let mut scratch = Vec::new();
            let mut payload = Vec::new();
            let mut seg_lens = Vec::new();
            let r = segment_tcp(&frame, mss, &mut scratch, |s| {
                seg_lens.push(s.len());
                payload.extend_from_slice(&s[54.min(s.len())..]);
            });
            // With 20-byte IPv4 and TCP headers the payload starts at 54 in every segment.
            let plain = frame.len() >= 54 && frame[12..15] == [0x08, 0x00, 0x45] && frame[46] >> 4 == 5;
            if let (Ok(n), true) = (r, plain) {
                proptest::prop_assert_eq!(n, seg_lens.len());
                proptest::prop_assert_eq!(&payload[..], &frame[54..]);
                proptest::prop_assert!(seg_lens.iter().all(|l| *l <= 54 + mss));
            }
        }
    }

    #[test]
    fn refuses_non_tcp_and_zero_size() {
        let mut scratch = Vec::new();
        let mut udp = tcp4(100, 0x10);
        udp[23] = 17;
        assert_eq!(
            segment_tcp(&udp, 50, &mut scratch, |_| {}),
            Err(GsoError::NotTcp)
        );
        assert_eq!(
            segment_tcp(&udp[..20], 50, &mut scratch, |_| {}),
            Err(GsoError::NotTcp)
        );
        let tcp = tcp4(100, 0x10);
        assert_eq!(
            segment_tcp(&tcp, 0, &mut scratch, |_| {}),
            Err(GsoError::ZeroSize)
        );
    }
}
