//! ACL rules: network policies expanded per network, and security-group
//! rules split into ingress and egress with remote groups resolved to ids.
//! Entries are `AclRuleType` JSON (match_condition, action_list, rule_uuid,
//! direction), as the API serves them.

use filament_config::StoredObj;
use filament_schema::types::{AddressType, PolicyEntriesType, PolicyRuleType, PortType};
use serde_json::{json, Value};

use crate::snapshot::{ObjExt, Snapshot};

/// Implicit rule appended to every network ACL: traffic within the network.
pub const IMPLICIT_ALLOW_UUID: &str = "00000000-0000-0000-0000-100000000001";
/// Implicit last rule of every network ACL: deny the rest.
pub const IMPLICIT_DENY_UUID: &str = "00000000-0000-0000-0000-100000000002";

fn any_port() -> PortType {
    PortType {
        start_port: Some(-1),
        end_port: Some(-1),
    }
}

fn port_json(p: &PortType) -> Value {
    json!({"start_port": p.start_port.unwrap_or(-1), "end_port": p.end_port.unwrap_or(-1)})
}

fn addr_json(a: &AddressType) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

fn entry(r: &PolicyRuleType, sa: Value, sp: &PortType, da: Value, dp: &PortType) -> Value {
    json!({
        "match_condition": {
            "protocol": r.protocol.clone().unwrap_or_else(|| "any".into()),
            "src_address": sa,
            "src_port": port_json(sp),
            "dst_address": da,
            "dst_port": port_json(dp),
            "ethertype": r.ethertype.clone().unwrap_or_else(|| "IPv4".into()),
        },
        "action_list": serde_json::to_value(r.action_list.clone().unwrap_or_default()).unwrap_or(Value::Null),
        "rule_uuid": r.rule_uuid,
        "direction": ">",
    })
}

fn or_any<T: Clone>(v: &[T], any: T) -> Vec<T> {
    if v.is_empty() {
        vec![any]
    } else {
        v.to_vec()
    }
}

/// Expand one rule into ACL entries: every source × destination × port
/// combination, and for `<>` the reverse direction too.
fn expand(
    r: &PolicyRuleType,
    resolve: &dyn Fn(&AddressType) -> Option<Value>,
    out: &mut Vec<Value>,
) {
    let any_addr = AddressType {
        virtual_network: Some("any".into()),
        ..AddressType::default()
    };
    let srcs = or_any(&r.src_addresses, any_addr.clone());
    let dsts = or_any(&r.dst_addresses, any_addr);
    let sports = or_any(&r.src_ports, any_port());
    let dports = or_any(&r.dst_ports, any_port());
    for s in &srcs {
        for d in &dsts {
            let (Some(sa), Some(da)) = (resolve(s), resolve(d)) else {
                continue;
            };
            for sp in &sports {
                for dp in &dports {
                    out.push(entry(r, sa.clone(), sp, da.clone(), dp));
                    if r.direction.as_deref() == Some("<>") {
                        out.push(entry(r, da.clone(), dp, sa.clone(), sp));
                    }
                }
            }
        }
    }
}

/// The ACL of network `me` (fq_name string) from its policies in sequence
/// order: rules as written (`local` resolved to `me`), then allow within the
/// network, then deny everything else.
pub fn network_acl(me: &str, policies: &[(&StoredObj, Vec<PolicyRuleType>)]) -> Vec<Value> {
    let resolve = |a: &AddressType| -> Option<Value> {
        let mut a = a.clone();
        if a.virtual_network.as_deref() == Some("local") {
            a.virtual_network = Some(me.to_string());
        }
        Some(addr_json(&a))
    };
    let mut out = Vec::new();
    for (_, rules) in policies {
        for r in rules {
            expand(r, &resolve, &mut out);
        }
    }
    let vn = json!({"virtual_network": me});
    let any = json!({"virtual_network": "any"});
    for (uuid, sa, da, action) in [
        (IMPLICIT_ALLOW_UUID, vn.clone(), vn, "pass"),
        (IMPLICIT_DENY_UUID, any.clone(), any, "deny"),
    ] {
        out.push(json!({
            "match_condition": {"protocol": "any", "src_address": sa, "src_port": port_json(&any_port()),
                                "dst_address": da, "dst_port": port_json(&any_port()), "ethertype": "IPv4"},
            "action_list": {"simple_action": action},
            "rule_uuid": uuid,
            "direction": ">",
        }));
    }
    out
}

/// Rules of a security group; a group created without any entries gets the
/// default a new group has in TF with OpenStack: ingress from members of the
/// same group, egress anywhere (IPv4 and IPv6).
fn sg_rules(sg: &StoredObj) -> Vec<PolicyRuleType> {
    if let Some(e) = sg.prop("security_group_entries") {
        // Security-group rules carry no action; TF's transformer writes each
        // entry as an explicit `pass` (a group is an allow list).
        let pass = serde_json::from_value(json!({"simple_action": "pass"})).ok();
        return serde_json::from_value::<PolicyEntriesType>(e.clone())
            .map(|e| e.policy_rule)
            .unwrap_or_default()
            .into_iter()
            .map(|mut r| {
                if r.action_list.is_none() {
                    r.action_list.clone_from(&pass);
                }
                r
            })
            .collect();
    }
    let rule = |id: String, eth: &str, dst: Value| -> PolicyRuleType {
        serde_json::from_value(json!({
            "rule_uuid": id, "direction": ">", "protocol": "any", "ethertype": eth,
            "src_addresses": [{"security_group": "local"}], "dst_addresses": [dst],
            "src_ports": [{"start_port": 0, "end_port": 65535}], "dst_ports": [{"start_port": 0, "end_port": 65535}],
            "action_list": {"simple_action": "pass"}}))
        .unwrap_or_default()
    };
    let mut v = Vec::new();
    for (eth, cidr, six) in [("IPv4", "0.0.0.0", ""), ("IPv6", "::", "6")] {
        v.push(rule(
            format!("default-ingress{six}-{}", sg.uuid),
            eth,
            json!({"security_group": "local"}),
        ));
        let any = json!({"subnet": {"ip_prefix": cidr, "ip_prefix_len": 0}});
        v.push(rule(format!("default-egress{six}-{}", sg.uuid), eth, any));
    }
    v
}

fn is_local(a: &AddressType) -> bool {
    a.security_group.as_deref() == Some("local")
}

/// `(ingress, egress)` ACL entries of a security group. A rule whose
/// destination is `local` is an ingress rule, whose source is `local` an
/// egress rule; `local` and other groups' names become security-group ids
/// (a rule naming a group that does not exist is dropped, as TF does).
pub fn security_group_acls(snap: &Snapshot, sg: &StoredObj) -> (Vec<Value>, Vec<Value>) {
    let own = sg
        .prop("security_group_id")
        .and_then(Value::as_u64)
        .map(|n| n.to_string());
    let resolve = |a: &AddressType| -> Option<Value> {
        let mut a = a.clone();
        match a.security_group.as_deref() {
            None | Some("any") => {}
            Some("local") => a.security_group = Some(own.clone()?),
            Some(name) => {
                let other = snap.lookup_str("security-group", name)?;
                let id = other.prop("security_group_id").and_then(Value::as_u64)?;
                a.security_group = Some(id.to_string());
            }
        }
        Some(addr_json(&a))
    };
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for r in sg_rules(sg) {
        if r.dst_addresses.iter().any(is_local) {
            expand(&r, &resolve, &mut ingress);
        } else if r.src_addresses.iter().any(is_local) {
            expand(&r, &resolve, &mut egress);
        }
    }
    (ingress, egress)
}
