//! Shared by the agent's integration tests: the config a control node delivers for agent
//! `host1` with one port, made by the config core and encoded by `filament-ifmap`.

#![allow(clippy::unwrap_used, dead_code)]

use filament_agent::core::{Agent, AgentCfg};
use filament_agent::port::PortReq;
use filament_config::{ConfigDb, Ctx, ReadOpts};
use filament_dataplane::VifId;
use filament_ifmap::encode_object;
use filament_schema::index;
use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind, StreamHeader};
use serde_json::{json, Value};

struct Env {
    db: ConfigDb,
    n: u64,
}

impl Env {
    fn create(&mut self, t: &str, body: Value) -> String {
        self.create_as(t, body, false)
    }

    /// `system`: a derived object (may set system-assigned fields, as the transformer does).
    fn create_as(&mut self, t: &str, body: Value, system: bool) -> String {
        let mut n = self.n;
        let mut gen = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        };
        let d = index().resource(t).unwrap();
        let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
        ctx.system = system;
        let (txn, u) = self.db.create(d, &body, &mut ctx).unwrap();
        drop(ctx);
        self.n = n;
        self.db.apply(txn);
        u
    }
}

pub const VM: &str = "c0ffee00-0000-4000-8000-000000000001";

/// Agent `host1` (fabric 192.168.0.1 on vif 1) with one control channel.
pub fn host1_agent() -> Agent {
    Agent::new(AgentCfg {
        name: "host1".into(),
        fabric_ip: "192.168.0.1".parse().unwrap(),
        fabric_vif: VifId(1),
        fabric_mtu: 1500,
        channels: 1,
    })
}

/// The stream header a control node sends `host1`.
pub fn host1_header() -> Vec<u8> {
    StreamHeader::control_to_agent("host1")
        .to_xml()
        .into_bytes()
}

/// The port-add request for port1 (`vmi`) of [`config_xml`].
pub fn port1_req(vmi: &str) -> PortReq {
    PortReq::parse(
        &json!({"id": vmi, "instance-id": VM, "mac-address": "02:00:00:00:00:01",
        "system-name": "tap-port1", "ip-address": "10.1.1.250"}),
    )
    .unwrap()
}

/// The config a control node delivers for host1 with one port (objects as the API renders them).
pub fn config_xml() -> (String, String) {
    config_xml_with(&["MPLSoUDP", "MPLSoGRE", "VXLAN"])
}

/// As [`config_xml`], with this global encapsulation priority.
pub fn config_xml_with(encaps: &[&str]) -> (String, String) {
    config_xml_full(encaps, None)
}

/// As [`config_xml_with`], plus, when given, an ingress ACL of `sg1` with these entries (as
/// our transformer writes them: `AclRuleType` JSON).
pub fn config_xml_full(encaps: &[&str], sg1_ingress: Option<Value>) -> (String, String) {
    let mut e = Env {
        db: ConfigDb::new(),
        n: 0,
    };
    let mut n = 0u64;
    let mut gen = || {
        n += 1;
        format!("00000000-0000-4000-8000-{:012x}", 0xb000 + n)
    };
    let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
    let boot = e.db.bootstrap(&mut ctx).unwrap();
    drop(ctx);
    e.db.apply(boot);
    e.create(
        "project",
        json!({"fq_name": ["default-domain", "admin"], "parent_type": "domain"}),
    );
    e.create(
        "network-ipam",
        json!({"fq_name": ["default-domain", "admin", "ipam1"], "parent_type": "project"}),
    );
    let vn = e.create("virtual-network", json!({"fq_name": ["default-domain", "admin", "vn1"], "parent_type": "project",
        "network_ipam_refs": [{"to": ["default-domain", "admin", "ipam1"],
            "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24}}]}}]}));
    let sg = e.create(
        "security-group",
        json!({"fq_name": ["default-domain", "admin", "sg1"], "parent_type": "project"}),
    );
    if let Some(rules) = sg1_ingress {
        e.create_as(
            "access-control-list",
            json!({"fq_name": ["default-domain", "admin", "sg1", "ingress-access-control-list"],
                "parent_type": "security-group",
                "access_control_list_entries": {"dynamic": false, "acl_rule": rules}}),
            true,
        );
    }
    let vm = e.create("virtual-machine", json!({"fq_name": [VM], "uuid": VM}));
    let vmi = e.create("virtual-machine-interface", json!({"fq_name": ["default-domain", "admin", "port1"], "parent_type": "project",
        "virtual_network_refs": [{"uuid": vn, "to": []}], "virtual_machine_refs": [{"uuid": vm, "to": []}],
        "security_group_refs": [{"uuid": sg, "to": []}],
        "virtual_machine_interface_mac_addresses": {"mac_address": ["02:00:00:00:00:01"]}}));
    e.create(
        "instance-ip",
        json!({"fq_name": ["iip1"], "virtual_network_refs": [{"uuid": vn, "to": []}],
        "virtual_machine_interface_refs": [{"uuid": vmi, "to": []}]}),
    );
    e.create(
        "virtual-router",
        json!({"fq_name": ["default-global-system-config", "host1"],
        "parent_type": "global-system-config", "virtual_router_ip_address": "192.168.0.1",
        "virtual_machine_refs": [{"uuid": vm, "to": []}]}),
    );
    let gvc =
        e.db.objects_for_test()
            .find(|o| o.ty.name == "global-vrouter-config")
            .unwrap()
            .uuid
            .clone();
    let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
    let d = index().resource("global-vrouter-config").unwrap();
    let txn =
        e.db.update(
            d,
            &gvc,
            &json!({"encapsulation_priorities": {"encapsulation": encaps}}),
            &mut ctx,
        )
        .unwrap();
    drop(ctx);
    e.db.apply(txn);
    let opts = ReadOpts {
        exclude_back_refs: true,
        exclude_children: true,
        exclude_hrefs: true,
        fields: None,
    };
    let mut items = Vec::new();
    let mut objs: Vec<_> = e.db.objects_for_test().collect();
    objs.sort_by(|a, b| (a.ty.name, &a.uuid).cmp(&(b.ty.name, &b.uuid)));
    for o in objs {
        let json = e.db.render(o, &opts, "");
        let (node, links) = encode_object(o.ty.name, json.as_object().unwrap()).unwrap();
        items.push(ConfigItem::Node(node));
        items.extend(links.into_iter().map(ConfigItem::Link));
    }
    let iq = ConfigIq::to_agent(
        "host1",
        vec![ConfigOp {
            kind: ConfigOpKind::Update,
            items,
        }],
    );
    (iq.to_element().to_xml(), vmi)
}
