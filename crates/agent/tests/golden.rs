//! Golden test of the agent core: recorded XMPP input (the config a control node sends,
//! encoded by `filament-ifmap` from objects made by the config core; route pushes in TF's
//! format) → the forwarder `Op`s and XMPP stanzas the agent produces, step by step.
//! `FILAMENT_UPDATE_GOLDEN=1` rewrites `tests/golden/*/{input.xml,expected.json}`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use filament_agent::core::{Input, Output};
use filament_dataplane::VifId;
use serde_json::{json, Value};

mod common;
use common::{config_xml, host1_agent, host1_header, port1_req};

fn route_push(items: &str) -> String {
    format!(
        "<message from=\"network-control@contrailsystems.com\" to=\"host1/bgp-peer\"><event xmlns=\"http://jabber.org/protocol/pubsub\">{items}</event></message>"
    )
}

fn nh(addr: &str, label: u32, encaps: &str) -> String {
    format!("<next-hop><af>1</af><address>{addr}</address><label>{label}</label><tunnel-encapsulation-list>{encaps}</tunnel-encapsulation-list></next-hop>")
}

fn inet_item(prefix: &str, nhs: &str) -> String {
    format!("<item id=\"{prefix}\"><entry><nlri><af>1</af><safi>1</safi><address>{prefix}</address></nlri><next-hops>{nhs}</next-hops><virtual-network>default-domain:admin:vn1</virtual-network><security-group-list><security-group>8000009</security-group></security-group-list><local-preference>200</local-preference></entry></item>")
}

fn render(outs: Vec<Output>) -> Vec<Value> {
    outs.into_iter()
        .map(|o| match o {
            Output::Op(op) => serde_json::to_value(op).unwrap(),
            Output::Xmpp(n, b) => json!({"xmpp": n, "text": String::from_utf8_lossy(&b)}),
            Output::Close(n) => json!({"close": n}),
        })
        .collect()
}

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(name: &str, file: &str, got: &str) {
    let path = golden_dir(name).join(file);
    if std::env::var_os("FILAMENT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path:?} missing: run with FILAMENT_UPDATE_GOLDEN=1"));
    assert_eq!(
        got, want,
        "{name}/{file} differs (FILAMENT_UPDATE_GOLDEN=1 to accept)"
    );
}

#[test]
fn port_lifecycle_routes_in_and_headless() {
    let (config, vmi) = config_xml();
    let mut a = host1_agent();
    let header = host1_header();
    let port = port1_req(&vmi);
    let steps: Vec<(&str, Vec<Input>)> = vec![
        ("01-connect", vec![Input::Connected(0), Input::Bytes(0, header.clone())]),
        ("02-port-add-waits-for-config", vec![Input::PortAdd(port, VifId(3))]),
        ("03-config-programs-and-exports", vec![Input::Bytes(0, config.clone().into_bytes())]),
        (
            "04-remote-route-and-own-reflection",
            vec![Input::Bytes(
                0,
                route_push(&format!(
                    "<items node=\"1/1/default-domain:admin:vn1:vn1\">{}{}</items>",
                    inet_item("10.1.1.9/32", &nh("192.168.0.2", 20, "<tunnel-encapsulation>gre</tunnel-encapsulation><tunnel-encapsulation>udp</tunnel-encapsulation>")),
                    inet_item("10.1.1.252/32", &nh("192.168.0.1", 16, "<tunnel-encapsulation>udp</tunnel-encapsulation>")),
                ))
                .into_bytes(),
            )],
        ),
        (
            "05-ecmp",
            vec![Input::Bytes(
                0,
                route_push(&format!(
                    "<items node=\"1/1/default-domain:admin:vn1:vn1\">{}</items>",
                    inet_item("10.1.1.9/32", &format!("{}{}", nh("192.168.0.2", 20, "<tunnel-encapsulation>udp</tunnel-encapsulation>"), nh("192.168.0.3", 30, "<tunnel-encapsulation>udp</tunnel-encapsulation>"))),
                ))
                .into_bytes(),
            )],
        ),
        (
            "06-evpn-mac",
            vec![Input::Bytes(
                0,
                route_push(&format!(
                    "<items node=\"25/242/default-domain:admin:vn1:vn1\"><item id=\"02:00:00:00:00:09,10.1.1.9/32\"><entry><nlri><af>25</af><safi>242</safi><mac>02:00:00:00:00:09</mac><address>10.1.1.9/32</address></nlri><next-hops>{}</next-hops></entry></item></items>",
                    nh("192.168.0.2", 21, "<tunnel-encapsulation>udp</tunnel-encapsulation>")
                ))
                .into_bytes(),
            )],
        ),
        ("07-control-node-lost-keeps-state", vec![Input::Disconnected(0)]),
        ("08-reconnect-resyncs", vec![Input::Connected(0), Input::Bytes(0, header)]),
        (
            "08b-route-pushed-again-is-fresh",
            vec![Input::Bytes(
                0,
                route_push(&format!(
                    "<items node=\"1/1/default-domain:admin:vn1:vn1\">{}</items>",
                    inet_item("10.1.1.9/32", &nh("192.168.0.2", 20, "<tunnel-encapsulation>udp</tunnel-encapsulation>")),
                ))
                .into_bytes(),
            )],
        ),
        (
            "08c-end-of-rib-flushes-stale-evpn-mac",
            vec![Input::Bytes(0, filament_wire_xmpp::EndOfRib::from_control("host1").to_xml().into_bytes())],
        ),
        (
            "09-retract",
            vec![Input::Bytes(0, route_push("<items node=\"1/1/default-domain:admin:vn1:vn1\"><retract id=\"10.1.1.9/32\"/></items>").into_bytes())],
        ),
        ("10-port-delete", vec![Input::PortDelete(vmi.clone())]),
    ];
    let mut out = Vec::new();
    let mut now = 0;
    for (name, inputs) in steps {
        let mut got = Vec::new();
        for i in inputs {
            now += 10;
            a.handle(now, i);
            got.extend(render(a.poll_output()));
        }
        out.push(json!({"step": name, "out": got}));
    }
    assert!(a.ports.is_empty());
    check("01-port-lifecycle", "input-config.xml", &config);
    check(
        "01-port-lifecycle",
        "expected.json",
        &(serde_json::to_string_pretty(&out).unwrap() + "\n"),
    );
}
