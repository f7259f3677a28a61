//! Changing the speaker's own settings while it runs: a new cluster id, AS or
//! identifier resets the sessions it affects (TF: `BgpServer::ConfigUpdater`)
//! and they come back under the new settings; the shell releases its
//! listening socket on shutdown. Also what a reflector sends its clients for
//! RT-constraint (RFC 4684 §3.2).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use filament_bgp::{Input, Speaker, SpeakerConfig, State};

const RT_X: &str = "target:64512:8000001";

fn with_cluster(net: &Net, i: usize, cluster: Option<&str>) -> SpeakerConfig {
    let mut cfg = net.nodes[i].core.config().clone();
    cfg.cluster_id = cluster.map(|c| c.parse().unwrap());
    cfg
}

#[test]
fn cluster_id_set_on_a_running_speaker_resets_clients_and_reflects() {
    let (mut net, a, b, c) = rr_chain(None);
    assert_eq!(net.state(a, b), State::Established);
    // No cluster id: split horizon.
    let p = split_horizon(&mut net, a, b, c, RT_X);

    let cfg = with_cluster(&net, b, Some("1.1.1.1"));
    net.input(b, Input::Reconfigure(cfg));
    net.run();
    // The clients heard why (Cease / Other Configuration Change), and b
    // counts the reset as a flap of the same neighbour.
    for (x, y, why) in [(a, b, "received Cease/6"), (b, a, "sent Cease/6")] {
        let st = &net.peer(x, y).stats;
        assert_eq!(st.flaps, 1);
        assert!(
            st.last_error.as_deref().is_some_and(|e| e.starts_with(why)),
            "{st:?}"
        );
    }
    // ... and b dropped what a had sent until a is back.
    assert!(net.best(b, &p.key).is_none());
    // The clients reconnect after their connect-retry time.
    net.advance(Duration::from_secs(10));
    assert_eq!(net.state(a, b), State::Established);
    assert_eq!(net.state(c, b), State::Established);
    assert_eq!(net.nodes[b].core.config().cluster_id, Some(v4("1.1.1.1")));
    let got = net
        .best(c, &p.key)
        .expect("reflected once b is a reflector");
    assert_eq!(got.attrs.cluster_list, vec![v4("1.1.1.1")]);
    assert_eq!(got.attrs.originator_id, Some(v4("10.0.0.1")));

    // Removing the cluster id resets again and split horizon is back.
    let cfg = with_cluster(&net, b, None);
    net.input(b, Input::Reconfigure(cfg));
    net.run();
    net.advance(Duration::from_secs(10));
    assert_eq!(net.state(c, b), State::Established);
    assert!(net.best(b, &p.key).is_some());
    assert!(net.best(c, &p.key).is_none(), "split horizon again");
}

#[test]
fn same_settings_leave_sessions_alone_and_new_identifier_resets_all() {
    let (mut net, a, b, _c) = rr_chain(None);
    let same = net.nodes[b].core.config().clone();
    net.input(b, Input::Reconfigure(same));
    net.run();
    let flaps = |net: &Net| net.peer(a, b).stats.flaps;
    assert_eq!(flaps(&net), 0, "nothing changed: nothing reset");
    // Timers only: no reset either.
    let mut cfg = net.nodes[b].core.config().clone();
    cfg.connect_retry = Duration::from_secs(7);
    net.input(b, Input::Reconfigure(cfg.clone()));
    net.run();
    assert_eq!(flaps(&net), 0);
    // A new identifier goes in the OPEN: every session restarts with it.
    cfg.router_id = v4("10.9.9.9");
    net.input(b, Input::Reconfigure(cfg));
    net.run();
    net.advance(Duration::from_secs(10));
    assert_eq!(flaps(&net), 1);
    assert_eq!(net.state(a, b), State::Established);
    assert_eq!(net.negotiated(a, b).remote_id, v4("10.9.9.9"));
}

/// The shell ends its accept task on shutdown, so the listening address can
/// be bound again (by a restarted speaker or anything else).
#[tokio::test]
async fn shutdown_releases_the_listening_socket() {
    let cfg = SpeakerConfig::new(64512, v4("127.0.0.1"));
    let (sp, _ev) = Speaker::start(cfg.clone(), Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = sp.local_addr().unwrap();
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "in use while running"
    );
    sp.shutdown();
    let mut again = None;
    for _ in 0..200 {
        if let Ok(x) = Speaker::start(cfg.clone(), Some(addr)).await {
            again = Some(x);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (sp2, _ev2) = again.expect("the address is free after shutdown");
    assert_eq!(sp2.local_addr(), Some(addr));
    sp2.shutdown();
}

/// RFC 4684 §3.2: RT membership advertised to a route-reflector client carries
/// the reflector's router id as ORIGINATOR_ID and its session address as next
/// hop; the client then sends the reflector the VPN routes another client asked
/// for, and they are reflected to it.
#[test]
fn rt_membership_to_clients_carries_the_reflectors_originator_id() {
    let (mut net, a, b, c) = rr_clients(Some("1.1.1.1"));
    // c asks for RT_X only (no one asks for everything).
    net.input(c, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    net.advance(Duration::from_secs(31)); // past every RT End-of-RIB wait
    let key = rtc_path(64512, RT_X).key;
    let got = net.best(a, &key).expect("c's membership reflected to a");
    assert_eq!(
        got.attrs.originator_id,
        Some(v4("10.0.0.2")),
        "the reflector's id"
    );
    assert_eq!(got.attrs.cluster_list, vec![v4("1.1.1.1")]);
    assert_eq!(got.attrs.next_hop, Some(ip("10.0.0.2")));
    // a's X route reaches c through b; its Y route is asked for by no one.
    let x = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    let y = vpn_path(
        "192.0.2.1:3",
        "10.1.1.4/32",
        18,
        "192.0.2.1",
        "target:64512:8000002",
    );
    net.input(a, Input::Advertise(x.clone()));
    net.input(a, Input::Advertise(y.clone()));
    net.run();
    assert!(net.best(c, &x.key).is_some(), "X reflected to c");
    assert!(
        net.best(b, &y.key).is_none(),
        "Y not sent to the reflector: nobody asked"
    );
}
