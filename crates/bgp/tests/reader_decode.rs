//! Decoding on the connection's reader (shell.rs): the reader frames whole messages
//! (`fsm::framed_len`) and, once the session is Established, decodes them itself
//! (`fsm::decode_event`, the core's own decoder) so that the core only applies them.
//!
//! * framing: any cut of a stream of messages frames exactly the messages before the
//!   cut, and a Length below 19 hands everything on (its decoder then says why);
//! * two real speakers on loopback: a table of VPN routes, sent in UPDATEs that the
//!   receiving reader decodes, arrives whole and in order, withdrawals included.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use filament_bgp::fsm::{decode_event, framed_len, ConnEvent};
use filament_bgp::{
    Event, Family, LabelStack, Path, PeerConfig, RouteKey, Speaker, SpeakerConfig, State,
};
use filament_wire_bgp::{DecodeCtx, Message};

mod common;
use common::{enc, vpn_path};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Three messages of different lengths, encoded back to back.
fn stream() -> (Vec<u8>, Vec<usize>) {
    let ctx = DecodeCtx::default();
    let msgs = [Message::Keepalive, Message::Keepalive, Message::Keepalive];
    let mut bytes = enc(&msgs[..1], &ctx);
    let mut ends = vec![bytes.len()];
    bytes.extend(enc(&msgs[1..2], &ctx));
    ends.push(bytes.len());
    bytes.extend(enc(&msgs[2..], &ctx));
    ends.push(bytes.len());
    (bytes, ends)
}

#[test]
fn any_cut_frames_exactly_the_messages_before_it() {
    let (bytes, ends) = stream();
    for cut in 0..=bytes.len() {
        let want = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut)
            .max()
            .unwrap_or(0);
        assert_eq!(framed_len(&bytes[..cut]), Some(want), "cut at {cut}");
    }
}

#[test]
fn a_header_that_cannot_be_framed_is_for_the_decoder_to_judge() {
    let (bytes, ends) = stream();
    for (at, value) in [(17, 18), (16, 0x10), (3, 0)] {
        // the second message: a length of 18, or of 4097+, or a broken marker
        let mut b = bytes.clone();
        b[ends[0] + at] = value;
        if at == 16 && value == 0x10 {
            b[ends[0] + 17] = 1;
        }
        assert_eq!(framed_len(&b), None, "byte {at} = {value}");
        // only once the header is complete
        assert_eq!(framed_len(&b[..ends[0] + 18]), Some(ends[0]));
    }
    let mut bytes = bytes;
    bytes[ends[0] + 16] = 0;
    bytes[ends[0] + 17] = 18;
    let ctx = DecodeCtx::default();
    let (first, used) = decode_event(&bytes, &ctx).unwrap();
    assert!(matches!(first, ConnEvent::Msg(Message::Keepalive)));
    let (second, rest) = decode_event(&bytes[used..], &ctx).unwrap();
    assert!(matches!(second, ConnEvent::Bad(_)), "{second:?}");
    assert_eq!(rest, bytes.len() - used, "a bad message uses the rest");
    // an incomplete message is not an event
    assert!(decode_event(&bytes[..10], &ctx).is_none());
}

async fn speaker(me: &str) -> (Speaker, tokio::sync::mpsc::Receiver<Vec<Event>>, SocketAddr) {
    let mut cfg = SpeakerConfig::new(64512, me.parse().unwrap());
    cfg.connect_retry = Duration::from_secs(1);
    let (sp, ev) = Speaker::start(cfg, Some(SocketAddr::new(ip(me), 0)))
        .await
        .unwrap();
    let addr = sp.local_addr().unwrap();
    (sp, ev, addr)
}

fn peer(to: SocketAddr, from: &str) -> PeerConfig {
    let mut p = PeerConfig::new(to.ip(), 64512);
    p.port = to.port();
    p.local_addr = Some(ip(from));
    // VPN routes only: with route-target constraint, b (no VRFs) would be sent none
    p.families = vec![Family::InetVpn];
    p
}

async fn established(sp: &Speaker, of: &str) -> bool {
    for _ in 0..200 {
        let peers = sp.peers().await.unwrap();
        if peers
            .iter()
            .any(|p| p.address == ip(of) && p.state == State::Established)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_table_decoded_by_the_reader_arrives_whole_and_in_order() {
    const A: &str = "127.0.0.3";
    const B: &str = "127.0.0.4";
    let (a, mut a_ev, a_addr) = speaker(A).await;
    tokio::spawn(async move { while a_ev.recv().await.is_some() {} });
    let (b, mut b_ev, b_addr) = speaker(B).await;
    a.add_peer(peer(b_addr, A)).unwrap();
    b.add_peer(peer(a_addr, B)).unwrap();
    assert!(established(&b, A).await, "no session");

    // Enough routes for many UPDATEs and reads, sent after Established: the reader
    // decodes them. Every tenth gets a second label value later (a replacement).
    let n = 20_000u32;
    let base = vpn_path(
        "192.0.2.1:7",
        "10.0.0.0/32",
        16,
        "192.0.2.1",
        "target:64512:1",
    );
    let path = |i: u32, label: u32| Path {
        key: RouteKey::Vpn(
            "192.0.2.1:7".parse().unwrap(),
            format!("{}/32", std::net::Ipv4Addr::from(0x0a00_0000 + i))
                .parse()
                .unwrap(),
        ),
        labels: LabelStack::from_slice(&[label]),
        attrs: base.attrs.clone(),
    };
    for i in 0..n {
        a.advertise(path(i, 100)).unwrap();
    }
    for i in (0..n).step_by(10) {
        a.advertise(path(i, 200)).unwrap();
    }
    a.withdraw(path(1, 0).key).unwrap();

    let mut label: std::collections::HashMap<RouteKey, u32> = Default::default();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(batch) = b_ev.recv().await {
            for e in batch {
                match e {
                    Event::LearnedMany { routes, .. } => {
                        for (k, l) in routes {
                            label.insert(k, l[0]);
                        }
                    }
                    Event::Learned { path, .. } => {
                        label.insert(path.key, path.labels[0]);
                    }
                    Event::Withdrawn { key, .. } => {
                        label.remove(&key);
                    }
                    _ => {}
                }
            }
            let replaced = (0..n)
                .step_by(10)
                .all(|i| label.get(&path(i, 0).key) == Some(&200));
            if label.len() == n as usize - 1 && replaced {
                return;
            }
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "b holds {} of {} routes after 30 s",
        label.len(),
        n - 1
    );
    assert!(!label.contains_key(&path(1, 0).key), "withdrawn route kept");
    assert_eq!(label.get(&path(2, 0).key), Some(&100));
    let stats = &b.peers().await.unwrap()[0].stats;
    assert_eq!(stats.malformed, 0, "{stats:?}");
    a.shutdown();
    b.shutdown();
}
