//! The incremental subset ([`Tracker`]) against the from-scratch one (`reachable` +
//! `encode` + `diff`) over random sequences of config changes and subscriptions.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use filament_config::StoredObj;
use filament_wire_xmpp::{ConfigItem, ConfigLink, ConfigNode, ConfigOp, ConfigOpKind};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{diff, encode, link_key, reachable, LinkKey, NodeKey, Subset, Tracker};
use crate::config::ConfigGraph;

const GSC: &str = "default-global-system-config";

/// Pools: (type, how many).
const POOLS: [(&str, usize); 11] = [
    ("virtual-router", 2),
    ("global-system-config", 1),
    ("global-vrouter-config", 2),
    ("network-ipam", 2),
    ("virtual-network", 2),
    ("routing-instance", 3),
    ("access-control-list", 3),
    ("security-group", 2),
    ("virtual-machine", 4),
    ("virtual-machine-interface", 5),
    ("instance-ip", 4),
];

fn uuid(pool: usize, i: usize) -> String {
    format!("00000000-0000-4000-8000-{:06x}{:06x}", pool, i)
}

/// Uuids of the pool of `ty` picked by the bits of `mask`.
fn pick(ty: &str, mask: u32) -> Vec<String> {
    let (p, (_, n)) = POOLS
        .iter()
        .enumerate()
        .find(|(_, (t, _))| *t == ty)
        .unwrap();
    (0..*n)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| uuid(p, i))
        .collect()
}

fn refs(ty: &str, mask: u32) -> Value {
    Value::Array(
        pick(ty, mask)
            .into_iter()
            .map(|u| json!({"uuid": u, "attr": null}))
            .collect(),
    )
}

/// Object `i` of pool `p`, its references and parent from `mask`, a property from `v`.
fn object(p: usize, i: usize, mask: u32, v: u8) -> StoredObj {
    let ty = POOLS[p].0;
    let u = uuid(p, i);
    let proj = |n: String| json!(["default-domain", "p", n]);
    let one = |t: &str, m: u32| pick(t, m).into_iter().next();
    let (fq, parent, props, rf) = match ty {
        "virtual-router" => (
            json!([GSC, format!("a{i}")]),
            Some(("global-system-config", uuid(1, 0))),
            json!({"virtual_router_ip_address": format!("192.0.2.{v}")}),
            json!({"network_ipam_refs": refs("network-ipam", mask),
                "virtual_machine_refs": refs("virtual-machine", mask >> 2)}),
        ),
        "global-system-config" => (
            json!([GSC]),
            None,
            json!({"autonomous_system": 64512 + u32::from(v)}),
            json!({}),
        ),
        "global-vrouter-config" => (
            json!([GSC, format!("gvc{i}")]),
            Some(("global-system-config", uuid(1, 0))),
            json!({"vxlan_network_identifier_mode": if v.is_multiple_of(2) {"automatic"} else {"configured"}}),
            json!({}),
        ),
        "network-ipam" => (proj(format!("ipam{i}")), None, json!({}), json!({})),
        "virtual-network" => (
            proj(format!("vn{i}")),
            None,
            json!({"virtual_network_network_id": v}),
            json!({"network_ipam_refs": refs("network-ipam", mask)}),
        ),
        "routing-instance" => (
            json!([
                "default-domain",
                "p",
                format!("vn{}", i % 2),
                format!("ri{i}")
            ]),
            one("virtual-network", mask).map(|u| ("virtual-network", u)),
            json!({}),
            json!({}),
        ),
        "access-control-list" => {
            let parent = if v.is_multiple_of(2) {
                one("virtual-network", mask).map(|u| ("virtual-network", u))
            } else {
                one("security-group", mask).map(|u| ("security-group", u))
            };
            (
                json!(["default-domain", "p", "x", format!("acl{i}")]),
                parent,
                json!({}),
                json!({}),
            )
        }
        "security-group" => (
            proj(format!("sg{i}")),
            None,
            json!({"security_group_id": 8000000 + u32::from(v)}),
            json!({}),
        ),
        "virtual-machine" => (json!([u.clone()]), None, json!({}), json!({})),
        "virtual-machine-interface" => {
            // an unknown property: the encoder refuses the object
            let props = if v == 7 {
                json!({"bogus": 1})
            } else {
                json!({"virtual_machine_interface_mac_addresses": {"mac_address": [format!("02:00:00:00:00:{v:02x}")]}})
            };
            let parent = v
                .is_multiple_of(3)
                .then(|| one("virtual-machine", mask >> 12))
                .flatten()
                .map(|u| ("virtual-machine", u));
            (
                proj(format!("port{i}")),
                parent,
                props,
                json!({"virtual_machine_refs": refs("virtual-machine", mask),
                    "virtual_network_refs": refs("virtual-network", mask >> 4),
                    "routing_instance_refs": refs("routing-instance", mask >> 6),
                    "security_group_refs": refs("security-group", mask >> 9)}),
            )
        }
        _ => (
            json!([format!("iip{i}")]),
            None,
            json!({"instance_ip_address": format!("10.0.0.{v}")}),
            json!({"virtual_machine_interface_refs": refs("virtual-machine-interface", mask),
                "virtual_network_refs": refs("virtual-network", mask >> 5)}),
        ),
    };
    let mut o = json!({"type": ty, "uuid": u, "fq_name": fq, "seq": 1, "props": props, "refs": rf});
    if let Some((pt, pu)) = parent {
        o["parent_type"] = json!(pt);
        o["parent_uuid"] = json!(pu);
    }
    serde_json::from_value(o).unwrap()
}

/// What an agent holds after applying config messages.
#[derive(Debug, Default, PartialEq)]
struct View {
    nodes: BTreeMap<NodeKey, ConfigNode>,
    links: BTreeMap<LinkKey, ConfigLink>,
}

impl View {
    fn apply(&mut self, msgs: &[Vec<ConfigOp>]) {
        for op in msgs.iter().flatten() {
            for it in &op.items {
                match (op.kind, it) {
                    (ConfigOpKind::Update, ConfigItem::Node(n)) => {
                        self.nodes
                            .insert((n.id.type_name.clone(), n.id.name.clone()), n.clone());
                    }
                    (ConfigOpKind::Update, ConfigItem::Link(l)) => {
                        self.links.insert(link_key(l), l.clone());
                    }
                    (ConfigOpKind::Delete, ConfigItem::Node(n)) => {
                        self.nodes
                            .remove(&(n.id.type_name.clone(), n.id.name.clone()));
                    }
                    (ConfigOpKind::Delete, ConfigItem::Link(l)) => {
                        self.links.remove(&link_key(l));
                    }
                }
            }
        }
    }

    fn of(s: &Subset) -> View {
        View {
            nodes: s
                .nodes
                .iter()
                .map(|(k, n)| (k.clone(), n.0.clone()))
                .collect(),
            links: s
                .links
                .iter()
                .map(|(k, l)| (k.clone(), super::link_of(l).unwrap().clone()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put(usize, usize, u32, u8),
    Delete(usize, usize),
    Subscribe(usize, bool),
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..POOLS.len(), 0usize..5, any::<u32>(), 0u8..10)
            .prop_map(|(p, i, m, v)| Step::Put(p, i % POOLS[p].1, m, v)),
        2 => (0..POOLS.len(), 0usize..5).prop_map(|(p, i)| Step::Delete(p, i % POOLS[p].1)),
        2 => (0usize..5, any::<bool>()).prop_map(|(i, s)| Step::Subscribe(i, s)),
        3 => Just(Step::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After every flush the incremental subset equals the from-scratch one, the messages
    /// bring an agent's view to it, and a flush after config changes alone sends exactly
    /// what the full diff sends.
    #[test]
    fn incremental_subset_equals_full_recompute(steps in prop::collection::vec(step(), 1..60)) {
        let mut g = ConfigGraph::new();
        let mut vms: BTreeSet<String> = BTreeSet::new();
        let mut t = Tracker::new();
        let (msgs, _) = t.full(&g, "a0", &vms);
        let mut view = View::default();
        view.apply(&msgs);
        let mut prev = encode(&g, &reachable(&g, "a0", &vms)).0;
        let mut only_config = true;
        for s in steps {
            match s {
                Step::Put(p, i, m, v) => g.apply(&uuid(p, i), Some(object(p, i, m, v))),
                Step::Delete(p, i) => g.apply(&uuid(p, i), None),
                Step::Subscribe(i, sub) => {
                    // an unknown uuid (i = 4: the pool holds 4 VMs) is subscribed too
                    let vm = uuid(8, i);
                    if sub { vms.insert(vm.clone()); } else { vms.remove(&vm); }
                    let (msgs, _) = t.vm(&g, &vm, sub);
                    view.apply(&msgs);
                    only_config = false;
                }
                Step::Flush => {
                    let ch = g.take_changes();
                    let (msgs, _) = t.update(&g, &ch);
                    view.apply(&msgs);
                    let scratch = encode(&g, &reachable(&g, "a0", &vms)).0;
                    prop_assert!(t.sent().same_content(&scratch), "tracker differs from scratch");
                    prop_assert_eq!(&view, &View::of(&scratch), "messages did not bring the agent there");
                    if only_config {
                        prop_assert_eq!(msgs, diff(&prev, &scratch));
                    }
                    prev = scratch;
                    only_config = true;
                }
            }
        }
    }
}

/// A full recompute after incremental steps sends nothing (they agree), and one from an
/// empty tracker sends the whole subset.
#[test]
fn full_recompute_after_incremental_steps_sends_nothing() {
    let mut g = ConfigGraph::new();
    let mut t = Tracker::new();
    let vms = BTreeSet::from([uuid(8, 0)]);
    t.full(&g, "a0", &vms);
    for (p, n) in POOLS.iter().enumerate().map(|(p, (_, n))| (p, *n)) {
        for i in 0..n {
            g.apply(&uuid(p, i), Some(object(p, i, u32::MAX, 1)));
            let ch = g.take_changes();
            t.update(&g, &ch);
        }
    }
    assert!(
        t.sent().node_count() > 10,
        "nothing reached: {}",
        t.sent().node_count()
    );
    let mut again = t.clone();
    let (msgs, _) = again.full(&g, "a0", &vms);
    assert!(msgs.is_empty(), "full recompute differs: {msgs:?}");
    let (msgs, _) = Tracker::new().full(&g, "a0", &vms);
    let mut view = View::default();
    view.apply(&msgs);
    assert_eq!(view, View::of(t.sent()));
}
