//! TCP MD5 (RFC 2385) through the shell, two real speakers on loopback: the same key
//! brings the session up; a key change on one side resets it and, while the keys
//! differ, it never comes back; the right key again, or no key on either side, brings it
//! up. The key never shows in a configuration's `Debug` output.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use filament_bgp::{Md5Key, Md5KeyError, PeerConfig, Speaker, SpeakerConfig, State};

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn speaker(me: &str) -> (Speaker, SocketAddr) {
    let mut cfg = SpeakerConfig::new(64512, me.parse().unwrap());
    cfg.connect_retry = Duration::from_secs(1);
    let (sp, mut ev) = Speaker::start(cfg, Some(SocketAddr::new(ip(me), 0)))
        .await
        .unwrap();
    // Nobody reads the events here: drain them so the core never waits.
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let addr = sp.local_addr().unwrap();
    (sp, addr)
}

fn peer(to: SocketAddr, from: &str, key: Option<&str>) -> PeerConfig {
    let mut p = PeerConfig::new(to.ip(), 64512);
    p.port = to.port();
    p.local_addr = Some(ip(from));
    p.md5_key = key.map(|k| Md5Key::new(k.as_bytes()).unwrap());
    p
}

async fn state(sp: &Speaker, of: &str) -> State {
    let peers = sp.peers().await.unwrap();
    peers
        .iter()
        .find(|p| p.address == ip(of))
        .map(|p| p.state)
        .unwrap_or(State::Idle)
}

async fn established_within(sp: &Speaker, of: &str, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if state(sp, of).await == State::Established {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn md5_keys_gate_the_session_and_a_change_resets_it() {
    let (a, a_addr) = speaker(A).await;
    let (b, b_addr) = speaker(B).await;
    let cfg = peer(b_addr, A, Some("secret"));
    assert!(
        !format!("{cfg:?}").contains("secret"),
        "the key leaks through Debug: {cfg:?}"
    );
    a.add_peer(cfg).unwrap();
    b.add_peer(peer(a_addr, B, Some("secret"))).unwrap();
    assert!(established_within(&a, B, 20).await, "same key: no session");

    // b's key changes: the session is reset and, with different keys, stays down.
    b.add_peer(peer(a_addr, B, Some("wrong"))).unwrap();
    let mut up = false;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..30 {
        up |= state(&a, B).await == State::Established || state(&b, A).await == State::Established;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!up, "Established with different MD5 keys");
    let flaps = b.peers().await.unwrap()[0].stats.flaps;
    assert_eq!(flaps, 1, "the key change reset the session once");

    // The right key again: back up.
    b.add_peer(peer(a_addr, B, Some("secret"))).unwrap();
    assert!(
        established_within(&b, A, 20).await,
        "keys agree again: no session"
    );

    // Keys removed on both sides: plain TCP, up again.
    a.add_peer(peer(b_addr, A, None)).unwrap();
    b.add_peer(peer(a_addr, B, None)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(established_within(&a, B, 20).await, "no keys: no session");
    a.shutdown();
    b.shutdown();
}

#[test]
fn keys_are_one_to_eighty_bytes() {
    assert_eq!(Md5Key::new(Vec::new()), Err(Md5KeyError::Empty));
    assert_eq!(
        Md5Key::new(vec![b'k'; 81]),
        Err(Md5KeyError::TooLong { len: 81, max: 80 })
    );
    let k = Md5Key::new(vec![b'k'; 80]).unwrap();
    assert_eq!(k.as_bytes().len(), 80);
    assert_eq!(format!("{k:?}"), "Md5Key(<redacted>)");
}
