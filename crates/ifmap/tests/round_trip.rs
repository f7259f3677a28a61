//! Round trips over real objects: create them with the config core, render them as the API
//! does, encode to IFMap XML text, parse the text, apply it to an [`IfmapGraph`] and compare
//! each rebuilt object with the API's JSON.

#![allow(clippy::unwrap_used)]

use filament_config::{ConfigDb, Ctx, ReadOpts};
use filament_ifmap::{encode_object, IfmapGraph};
use filament_schema::index;
use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind, Element, Stanza};
use serde_json::{json, Value};

struct Env {
    db: ConfigDb,
    n: u64,
}

impl Env {
    fn new() -> Self {
        let mut e = Env {
            db: ConfigDb::new(),
            n: 0,
        };
        e.run(|db, ctx| db.bootstrap(ctx).map(|t| (t, String::new())));
        e
    }
    fn run(
        &mut self,
        f: impl FnOnce(
            &mut ConfigDb,
            &mut Ctx<'_>,
        ) -> filament_config::Result<(filament_config::Txn, String)>,
    ) -> String {
        let mut n = self.n;
        let mut gen = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        };
        let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
        let (txn, u) = f(&mut self.db, &mut ctx).unwrap();
        drop(ctx);
        self.n = n;
        self.db.apply(txn);
        u
    }
    fn create(&mut self, t: &str, body: Value) -> String {
        let d = index().resource(t).unwrap();
        self.run(|db, ctx| db.create(d, &body, ctx))
    }
    fn render(&self, uuid: &str) -> (String, Value) {
        let o = self.db.get(uuid).unwrap();
        let opts = ReadOpts {
            exclude_back_refs: true,
            exclude_children: true,
            exclude_hrefs: true,
            fields: None,
        };
        (o.ty.name.to_string(), self.db.render(o, &opts, ""))
    }
}

/// Drop nulls and empty lists/objects, sort reference lists by target, drop the implicit
/// `parent_type: config-root`.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                if k == "parent_type" && x == "config-root" {
                    continue;
                }
                let n = normalize(x);
                let empty = n.is_null()
                    || n.as_array().is_some_and(Vec::is_empty)
                    || n.as_object().is_some_and(serde_json::Map::is_empty);
                if !empty {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalize).collect();
            if items.iter().all(|i| i.get("to").is_some()) {
                items.sort_by_key(|i| i["to"].to_string());
            }
            Value::Array(items)
        }
        x => x.clone(),
    }
}

fn build() -> (Env, Vec<String>) {
    let mut e = Env::new();
    let proj = e.create(
        "project",
        json!({"fq_name": ["default-domain", "admin"], "parent_type": "domain"}),
    );
    let ipam = e.create(
        "network-ipam",
        json!({"fq_name": ["default-domain", "admin", "ipam1"], "parent_type": "project",
        "ipam_subnet_method": "user-defined-subnet"}),
    );
    let vn = e.create("virtual-network", json!({"fq_name": ["default-domain", "admin", "vn1"], "parent_type": "project",
        "virtual_network_properties": {"forwarding_mode": "l2_l3", "allow_transit": false, "vxlan_network_identifier": 7},
        "route_target_list": {"route_target": ["target:64512:100", "target:64512:101"]},
        "network_ipam_refs": [{"to": ["default-domain", "admin", "ipam1"],
            "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24}, "enable_dhcp": true,
                "addr_from_start": true, "dns_nameservers": []}]}}]}));
    let sg = e.create("security-group", json!({"fq_name": ["default-domain", "admin", "sg1"], "parent_type": "project",
        "security_group_entries": {"policy_rule": [{"direction": ">", "protocol": "tcp", "ethertype": "IPv4",
            "src_addresses": [{"security_group": "local"}], "dst_addresses": [{"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}],
            "src_ports": [{"start_port": 0, "end_port": 65535}], "dst_ports": [{"start_port": 22, "end_port": 22}]}]}}));
    let vm = e.create(
        "virtual-machine",
        json!({"fq_name": ["c0ffee00-0000-4000-8000-000000000001"],
        "uuid": "c0ffee00-0000-4000-8000-000000000001"}),
    );
    let vmi = e.create("virtual-machine-interface", json!({"fq_name": ["default-domain", "admin", "port1"], "parent_type": "project",
        "virtual_network_refs": [{"uuid": vn, "to": []}], "virtual_machine_refs": [{"uuid": vm, "to": []}],
        "security_group_refs": [{"uuid": sg, "to": []}],
        "virtual_machine_interface_mac_addresses": {"mac_address": ["02:00:00:00:00:01"]}}));
    let iip = e.create(
        "instance-ip",
        json!({"fq_name": ["iip1"], "virtual_network_refs": [{"uuid": vn, "to": []}],
        "virtual_machine_interface_refs": [{"uuid": vmi, "to": []}]}),
    );
    let vr = e.create(
        "virtual-router",
        json!({"fq_name": ["default-global-system-config", "host1"],
        "parent_type": "global-system-config", "virtual_router_ip_address": "192.168.0.1",
        "virtual_machine_refs": [{"uuid": vm, "to": []}]}),
    );
    let rt = e.create("route-target", json!({"fq_name": ["target:64512:8000001"]}));
    let ri = e.create(
        "routing-instance",
        json!({"fq_name": ["default-domain", "admin", "vn1", "extra"],
        "parent_type": "virtual-network",
        "route_target_refs": [{"uuid": rt, "to": [], "attr": {"import_export": "import"}}],
        "routing_instance_refs": [{"to": ["default-domain", "admin", "vn1", "vn1"], "attr": {}}]}),
    );
    let mut all = vec![proj, ipam, vn.clone(), sg, vm, vmi, iip, vr, rt, ri];
    // the VN's routing instance (made by the config core) and everything else the graph needs
    for o in e.db.objects_for_test() {
        if !all.contains(&o.uuid) {
            all.push(o.uuid.clone());
        }
    }
    (e, all)
}

#[test]
fn every_object_survives_xml() {
    let (e, uuids) = build();
    let mut update = Vec::new();
    let mut expected = Vec::new();
    for u in &uuids {
        let (ty, json) = e.render(u);
        let (node, links) = encode_object(&ty, json.as_object().unwrap()).unwrap();
        update.push(ConfigItem::Node(node));
        update.extend(links.into_iter().map(ConfigItem::Link));
        expected.push((ty, json));
    }
    let iq = ConfigIq::to_agent(
        "host1",
        vec![ConfigOp {
            kind: ConfigOpKind::Update,
            items: update,
        }],
    );
    let text = iq.to_element().to_xml();
    assert!(text.contains("<metadata type=\"virtual-network-network-ipam\"><ipam-subnets><subnet><ip-prefix>10.1.1.0</ip-prefix>"));
    assert!(text.contains("<addr_from_start>true</addr_from_start>"));
    assert!(text.contains("<metadata type=\"instance-target\""));
    let Stanza::Config(parsed) = Stanza::parse(&Element::parse(&text).unwrap()).unwrap() else {
        panic!("not a config stanza");
    };
    let mut g = IfmapGraph::new();
    g.apply(&parsed).unwrap();
    assert_eq!(g.len(), uuids.len());
    for (ty, json) in expected {
        let name = json["fq_name"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let got = g.object(&ty, &name).unwrap();
        assert_eq!(normalize(&got), normalize(&json), "{ty} {name}");
    }
}

#[test]
fn typed_values_come_back_typed() {
    let (e, uuids) = build();
    let vn = uuids
        .iter()
        .find(|u| e.render(u).0 == "virtual-network" && e.render(u).1["name"] == "vn1")
        .unwrap();
    let (ty, json) = e.render(vn);
    let (node, _) = encode_object(&ty, json.as_object().unwrap()).unwrap();
    let d = filament_ifmap::decode_node(&node).unwrap();
    assert_eq!(
        d.object["virtual_network_properties"]["vxlan_network_identifier"],
        json!(7)
    );
    assert_eq!(
        d.object["virtual_network_properties"]["allow_transit"],
        json!(false)
    );
    assert_eq!(
        d.object["route_target_list"]["route_target"],
        json!(["target:64512:100", "target:64512:101"])
    );
    assert_eq!(d.object["uuid"], json!(vn));
}

#[test]
fn delete_removes_links_and_nodes() {
    let (e, uuids) = build();
    let mut g = IfmapGraph::new();
    let mut items = Vec::new();
    for u in &uuids {
        let (ty, json) = e.render(u);
        let (node, links) = encode_object(&ty, json.as_object().unwrap()).unwrap();
        items.push(ConfigItem::Node(node));
        items.extend(links.into_iter().map(ConfigItem::Link));
    }
    g.apply(&ConfigIq::to_agent(
        "h",
        vec![ConfigOp {
            kind: ConfigOpKind::Update,
            items: items.clone(),
        }],
    ))
    .unwrap();
    let vmi_links: Vec<ConfigItem> = items
        .iter()
        .filter(|i| matches!(i, ConfigItem::Link(l) if l.left.type_name == "virtual-machine-interface" || l.right.type_name == "virtual-machine-interface"))
        .cloned()
        .collect();
    assert!(!vmi_links.is_empty());
    g.apply(&ConfigIq::to_agent(
        "h",
        vec![ConfigOp {
            kind: ConfigOpKind::Delete,
            items: vmi_links,
        }],
    ))
    .unwrap();
    let vmi = g
        .object("virtual-machine-interface", "default-domain:admin:port1")
        .unwrap();
    assert!(vmi.get("virtual_network_refs").is_none());
    assert!(vmi.get("parent_type").is_none());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for xml in [
        r#"<iq type="set"><config><update><node type="no-such-type"><name>x</name></node></update></config></iq>"#,
        r#"<iq type="set"><config><update><node type="virtual-network"><name>a:b</name><virtual-network-network-id>x</virtual-network-network-id></node></update></config></iq>"#,
        r#"<iq type="set"><config><update><link><node type="virtual-network"><name>a</name></node><node type="project"><name>b</name></node><metadata type="nonsense"/></link></update></config></iq>"#,
    ] {
        let Ok(Stanza::Config(iq)) = Stanza::parse_str(xml) else {
            panic!("{xml}")
        };
        assert!(IfmapGraph::new().apply(&iq).is_err(), "{xml}");
    }
}
