//! RFC 7606 §7.11: an MP_REACH_NLRI whose next-hop length does not fit its
//! family is malformed and resets the session (UPDATE Message Error,
//! Optional Attribute Error), even under RFC 7606 rules. A VPNv4 UPDATE with a
//! zero-length next hop used to be accepted with no next hop at all, and the
//! control node then advertised and pushed the route with an empty address.
#![allow(clippy::unwrap_used)]

use filament_wire_bgp::{
    DecodeCtx, DecodeError, ErrorCode, Message, NextHop, PathAttr, UpdateError,
};

fn ctx() -> DecodeCtx {
    DecodeCtx {
        four_octet_as: true,
        rfc7606: true,
        ..DecodeCtx::default()
    }
}

/// An iBGP UPDATE whose MP_REACH_NLRI is AFI/SAFI `afi_safi` with next hop `nh`
/// and NLRI `nlri`.
fn update(afi_safi: [u8; 3], nh: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut mp = afi_safi.to_vec();
    mp.push(u8::try_from(nh.len()).unwrap());
    mp.extend(nh);
    mp.push(0);
    mp.extend(nlri);
    let mut attrs = vec![
        0x40,
        1,
        1,
        0,
        0x40,
        2,
        0,
        0x80,
        14,
        u8::try_from(mp.len()).unwrap(),
    ];
    attrs.extend(mp);
    let mut m = vec![0xff; 16];
    m.extend(u16::try_from(19 + 4 + attrs.len()).unwrap().to_be_bytes());
    m.extend([2, 0, 0]);
    m.extend(u16::try_from(attrs.len()).unwrap().to_be_bytes());
    m.extend(attrs);
    m
}

const VPNV4: [u8; 3] = [0, 1, 128];
/// 10.1.0.0/16, label 99, RD 10.0.0.9:1.
const VPN_NLRI: [u8; 14] = [104, 0x00, 0x06, 0x31, 0, 1, 10, 0, 0, 9, 0, 1, 10, 1];

fn reset_subcode(bytes: &[u8]) -> Option<(ErrorCode, u8)> {
    match Message::decode(bytes, &ctx()) {
        Err(e @ DecodeError::Update { .. }) => e.notification().map(|n| (n.code, n.subcode)),
        _ => None,
    }
}

#[test]
fn vpn_next_hop_lengths() {
    let rd0_v4 = [0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9];
    // 12 octets (zero RD + IPv4): fine.
    let (Message::Update(u), _) =
        Message::decode(&update(VPNV4, &rd0_v4, &VPN_NLRI), &ctx()).unwrap()
    else {
        panic!("not an UPDATE")
    };
    let Some(PathAttr::MpReach(m)) = u.attr(14) else {
        panic!("no MP_REACH")
    };
    assert_eq!(m.next_hop, NextHop::V4("10.0.0.9".parse().unwrap()));
    // 0 octets, 4 octets (no RD), 13 octets: malformed, session reset.
    let want = Some((ErrorCode::Update, u8::from(UpdateError::OptionalAttribute)));
    for nh in [&[][..], &[10, 0, 0, 9][..], &[0; 13][..]] {
        assert_eq!(
            reset_subcode(&update(VPNV4, nh, &VPN_NLRI)),
            want,
            "next hop {nh:?}"
        );
    }
}

#[test]
fn other_families_and_unknown_ones() {
    // EVPN and IPv4 unicast carry a bare address: 4 (or 16, 32) octets.
    let evpn_mac = [
        2, 33, 0, 1, 10, 0, 0, 9, 0, 1, // type 2, length 33, RD 10.0.0.9:1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ESI
        0, 0, 0, 0, 48, 2, 0, 0, 0, 0, 1, 0, // eth tag, MAC
        0, 0x06, 0x41, // no IP, label
    ];
    assert!(Message::decode(&update([0, 25, 70], &[10, 0, 0, 9], &evpn_mac), &ctx()).is_ok());
    assert!(reset_subcode(&update(
        [0, 25, 70],
        &[0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9],
        &evpn_mac
    ))
    .is_some());
    assert!(reset_subcode(&update([0, 1, 1], &[10, 0, 0], &[24, 10, 1, 2])).is_some());
    // An unknown AFI/SAFI is ignored whole (RFC 4760 §7), whatever its next hop.
    assert!(Message::decode(&update([0, 99, 1], &[1, 2, 3], &[8, 10]), &ctx()).is_ok());
}

/// RFC 4760 §3: a NEXT_HOP beside MP_REACH_NLRI, with no routes in the NLRI
/// field, is to be ignored; a bad value there (0.0.0.0) used to withdraw the
/// VPN routes of the UPDATE. With routes in the NLRI field it still does
/// (RFC 7606 §7.3).
#[test]
fn a_bad_next_hop_only_withdraws_the_nlri_field_it_belongs_to() {
    let rd0_v4 = [0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9];
    let mut bytes = update(VPNV4, &rd0_v4, &VPN_NLRI);
    // Insert NEXT_HOP 0.0.0.0 after ORIGIN and AS_PATH (attribute octet 7).
    let at = 19 + 4 + 7;
    bytes.splice(at..at, [0x40, 3, 4, 0, 0, 0, 0]);
    let fix = |b: &mut Vec<u8>, extra: usize| {
        let total = u16::try_from(b.len() + extra).unwrap().to_be_bytes();
        b[16..18].copy_from_slice(&total);
        let attrs = u16::from_be_bytes([b[21], b[22]]) + 7;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
    };
    let mut vpn_only = bytes.clone();
    fix(&mut vpn_only, 0);
    let (Message::Update(u), _) = Message::decode(&vpn_only, &ctx()).unwrap() else {
        panic!("not an UPDATE")
    };
    assert!(u.attr(3).is_none(), "the NEXT_HOP is dropped");
    assert!(matches!(u.attr(14), Some(PathAttr::MpReach(_))));
    // The same with 10.9.0.0/16 in the NLRI field: treat-as-withdraw.
    let mut with_nlri = bytes;
    with_nlri.extend([16, 10, 9]);
    fix(&mut with_nlri, 0);
    assert!(matches!(
        Message::decode(&with_nlri, &ctx()),
        Err(DecodeError::TreatAsWithdraw { attr_type: 3, .. })
    ));
}
