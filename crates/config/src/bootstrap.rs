//! The objects a fresh system has (tf-facts 1.9, TF's `_db_init_entries`):
//! global-system-config with ASN 64512, default-domain and default-project,
//! the default IPAM, the ip-fabric, __link_local__ and dci-network networks
//! with their routing instances, and the predefined tag types.

use serde_json::{json, Value};

use crate::db::{ConfigDb, Txn};
use crate::error::Result;
use crate::{ConfigError, Ctx};

/// Default BGP autonomous system of a new system.
pub const DEFAULT_ASN: u32 = 64512;

/// `(type, body)` of every bootstrap object, parents first.
fn entries() -> Vec<(&'static str, Value)> {
    let gsc = "default-global-system-config";
    let proj = ["default-domain", "default-project"];
    let vn = |name: &str, extra: Value| {
        let mut b = json!({"fq_name": [proj[0], proj[1], name], "parent_type": "project"});
        if let (Some(m), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        ("virtual-network", b)
    };
    let ri = |vn: &str, name: &str, default: bool| {
        (
            "routing-instance",
            json!({"fq_name": [proj[0], proj[1], vn, name], "parent_type": "virtual-network",
                                    "routing_instance_is_default": default}),
        )
    };
    let mut v = vec![
        (
            "global-system-config",
            json!({"fq_name": [gsc], "autonomous_system": DEFAULT_ASN,
                                        "config_version": "1", "enable_4byte_as": false}),
        ),
        (
            "global-vrouter-config",
            json!({"fq_name": [gsc, "default-global-vrouter-config"],
            "parent_type": "global-system-config",
            "encapsulation_priorities": {"encapsulation": ["MPLSoUDP", "MPLSoGRE", "VXLAN"]},
            "vxlan_network_identifier_mode": "automatic"}),
        ),
        (
            "global-qos-config",
            json!({"fq_name": [gsc, "default-global-qos-config"], "parent_type": "global-system-config"}),
        ),
        (
            "fabric",
            json!({"fq_name": [gsc, "default-fabric"], "parent_type": "global-system-config"}),
        ),
        (
            "api-access-list",
            json!({"fq_name": [gsc, "default-api-access-list"], "parent_type": "global-system-config"}),
        ),
        (
            "policy-management",
            json!({"fq_name": ["default-policy-management"]}),
        ),
        ("domain", json!({"fq_name": ["default-domain"]})),
        (
            "namespace",
            json!({"fq_name": ["default-domain", "default-namespace"], "parent_type": "domain"}),
        ),
        ("project", json!({"fq_name": proj, "parent_type": "domain"})),
        (
            "network-ipam",
            json!({"fq_name": [proj[0], proj[1], "default-network-ipam"], "parent_type": "project",
                                "perms2": {"owner": "cloud-admin", "global_access": 5}}),
        ),
        (
            "network-ipam",
            json!({"fq_name": [proj[0], proj[1], "service-chain-flat-ipam"], "parent_type": "project",
            "ipam_subnet_method": "flat-subnet",
            "ipam_subnets": {"subnets": [{"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 8}},
                                          {"subnet": {"ip_prefix": "::ffff", "ip_prefix_len": 104}}]}}),
        ),
        vn("default-virtual-network", json!({})),
        vn("ip-fabric", json!({"is_provider_network": true})),
        ri("ip-fabric", "__default__", false),
        vn("__link_local__", json!({})),
        vn("dci-network", json!({})),
        ri("dci-network", "__default__", false),
        (
            "security-group",
            json!({"fq_name": [proj[0], proj[1], "__no_rule__"], "parent_type": "project",
            "perms2": {"owner": "cloud-admin", "global_access": 5},
            "security_group_entries": {"policy_rule": []}}),
        ),
    ];
    for (i, t) in [
        "label",
        "application",
        "tier",
        "deployment",
        "site",
        "neutron_fwaas",
        "neutron_tag",
    ]
    .iter()
    .enumerate()
    {
        v.push((
            "tag-type",
            json!({"fq_name": [t], "tag_type_id": format!("0x{i:04x}"),
                                   "id_perms": {"user_visible": false}}),
        ));
    }
    v
}

impl ConfigDb {
    /// The writes that make an empty database a fresh system.
    /// Returns an empty transaction if the database is not empty.
    pub fn bootstrap(&mut self, ctx: &mut Ctx<'_>) -> Result<Txn> {
        let mut txn = Txn::default();
        if !self.is_empty() {
            return Ok(txn);
        }
        let was = ctx.trusted;
        ctx.trusted = true;
        let mut res = Ok(());
        for (ty, body) in entries() {
            let Some(def) = filament_schema::index().resource(ty) else {
                res = Err(ConfigError::BadRequest(format!("schema has no {ty}")));
                break;
            };
            if let Err(e) = self.create_in(&mut txn, def, &body, ctx) {
                res = Err(ConfigError::BadRequest(format!(
                    "bootstrap {ty} {}: {e}",
                    body["fq_name"]
                )));
                break;
            }
        }
        ctx.trusted = was;
        res.map(|()| txn)
    }
}
