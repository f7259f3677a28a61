//! The agent's DHCP server and ARP proxy against the real clients, through the real forwarder
//! runtime: a workload namespace behind a veth whose host end is attached to a `Datapath`;
//! the agent core is fed the recorded control-node input (stream header + config) instead of
//! a live control node. ISC dhclient and busybox udhcpc must each get the port's lease
//! (address, mask, router, DNS = service address, MTU); the gateway must resolve to the VRRP
//! MAC. Root only (skips with a message otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use filament_agent::core::{Agent, AgentCfg, Input};
use filament_agent::port::PortReq;
use filament_dataplane::{VifId, VifKind};
use filament_dataplane_io::{AttachCfg, Datapath, DatapathCfg};
use filament_wire_xmpp::StreamHeader;
use serde_json::json;

mod common;
use common::{config_xml, VM};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Cleanup {
    ns: String,
    host: String,
    dir: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let pids = sh(&["ip", "netns", "pids", &self.ns]).stdout;
        for p in String::from_utf8_lossy(&pids).split_whitespace() {
            let _ = sh(&["kill", p]);
        }
        let _ = sh(&["ip", "link", "del", &self.host]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhclient_and_udhcpc_get_the_port_lease_and_gateway_arp() {
    if !is_root() {
        eprintln!("SKIP: needs root (network namespaces, AF_PACKET)");
        return;
    }
    let tag = std::process::id();
    let ns = format!("fa-w{tag}");
    let host = format!("fah{tag}");
    let dir = std::env::temp_dir().join(format!("fa-dhcp-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _c = Cleanup {
        ns: ns.clone(),
        host: host.clone(),
        dir: dir.clone(),
    };
    ok(&["ip", "netns", "add", &ns]);
    ok(&[
        "ip",
        "link",
        "add",
        &host,
        "type",
        "veth",
        "peer",
        "name",
        &format!("fap{tag}"),
    ]);
    ok(&["ip", "link", "set", &format!("fap{tag}"), "netns", &ns]);
    ok(&[
        "ip",
        "-n",
        &ns,
        "link",
        "set",
        &format!("fap{tag}"),
        "name",
        "eth0",
    ]);
    ok(&[
        "ip",
        "-n",
        &ns,
        "link",
        "set",
        "eth0",
        "address",
        "02:00:00:00:00:01",
        "up",
    ]);
    ok(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
    ok(&["ip", "link", "set", &host, "up"]);

    let mut dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        ..DatapathCfg::default()
    })
    .unwrap();
    let handle = dp.handle();
    let punts = dp.take_punts().unwrap();
    let vif = handle
        .attach(AttachCfg {
            ifname: host.clone(),
            id: None,
            kind: VifKind::Workload,
            vrf: None,
            policy: true,
            mac: None,
            ip: None,
        })
        .await
        .unwrap();
    let agent = Agent::new(AgentCfg {
        name: "host1".into(),
        fabric_ip: "192.168.0.1".parse().unwrap(),
        fabric_vif: VifId(999),
        fabric_mtu: 1500,
        channels: 1,
    });
    let shared = filament_agent::shell::start(agent, handle, punts, Vec::new());
    let (config, vmi) = config_xml();
    let req = PortReq::parse(&json!({"id": vmi, "instance-id": VM, "mac-address": "02:00:00:00:00:01", "system-name": host})).unwrap();
    shared.input(Input::PortAdd(req, vif));
    shared.input(Input::Connected(0));
    shared.input(Input::Bytes(
        0,
        StreamHeader::control_to_agent("host1")
            .to_xml()
            .into_bytes(),
    ));
    shared.input(Input::Bytes(0, config.into_bytes()));
    assert!(
        shared
            .agent
            .lock()
            .ports
            .values()
            .all(|p| p.programmed.is_some()),
        "port not programmed from config"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // ISC dhclient, no script (the lease file is the evidence; the host's resolv.conf is untouched)
    let lease = dir.join("dhclient.leases");
    let out = tokio::task::spawn_blocking({
        let (ns, lease, pid) = (ns.clone(), lease.clone(), dir.join("dhclient.pid"));
        move || {
            sh(&[
                "timeout",
                "20",
                "ip",
                "netns",
                "exec",
                &ns,
                "dhclient",
                "-1",
                "-4",
                "-sf",
                "/bin/true",
                "-lf",
                lease.to_str().unwrap(),
                "-pf",
                pid.to_str().unwrap(),
                "eth0",
            ])
        }
    })
    .await
    .unwrap();
    let leases = std::fs::read_to_string(&lease).unwrap_or_default();
    assert!(
        out.status.success(),
        "dhclient failed: {}\n{leases}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "fixed-address 10.1.1.252;",
        "option subnet-mask 255.255.255.0;",
        "option routers 10.1.1.254;",
        "option domain-name-servers 10.1.1.253;",
        "option dhcp-server-identifier 10.1.1.253;",
        "option interface-mtu 1450;",
    ] {
        assert!(
            leases.contains(want),
            "dhclient lease lacks {want:?}:\n{leases}"
        );
    }
    let _ = sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "dhclient",
        "-x",
        "-pf",
        dir.join("dhclient.pid").to_str().unwrap(),
    ]);

    // busybox udhcpc with a script that records what it was given
    let script = dir.join("udhcpc.sh");
    let env_out = dir.join("udhcpc.env");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            env_out.display()
        ),
    )
    .unwrap();
    ok(&["chmod", "+x", script.to_str().unwrap()]);
    let out = tokio::task::spawn_blocking({
        let (ns, script) = (ns.clone(), script.clone());
        move || {
            sh(&[
                "timeout",
                "20",
                "ip",
                "netns",
                "exec",
                &ns,
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-n",
                "-q",
                "-f",
                "-s",
                script.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    let env = std::fs::read_to_string(&env_out).unwrap_or_default();
    assert!(
        out.status.success(),
        "udhcpc failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "ip=10.1.1.252",
        "subnet=255.255.255.0",
        "router=10.1.1.254",
        "dns=10.1.1.253",
        "serverid=10.1.1.253",
        "mtu=1450",
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "udhcpc got no {want:?}:\n{env}"
        );
    }

    // ARP proxy: the gateway resolves to the VRRP MAC
    ok(&[
        "ip",
        "-n",
        &ns,
        "addr",
        "add",
        "10.1.1.252/24",
        "dev",
        "eth0",
    ]);
    let _ = sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        "10.1.1.254",
    ]);
    let neigh = ok(&["ip", "-n", &ns, "neigh", "show", "10.1.1.254"]);
    assert!(
        neigh.contains("lladdr 00:00:5e:00:01:00"),
        "gateway not resolved to the VRRP MAC: {neigh}"
    );
    let c = shared.counters.lock().clone();
    assert!(c.dhcp.acks >= 2 && c.dhcp.offers >= 2, "{c:?}");
    assert!(c.arp.replies >= 1, "{c:?}");
    drop(dp);
}
