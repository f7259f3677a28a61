//! The flow decisions the agent made (what `GET /flows` shows) and their re-evaluation after
//! a config change (sans-IO; the shell holds the records under a lock and applies the ops).
//!
//! tf-facts §5.5: a policy change re-evaluates flows.  Only the flows whose decision read
//! something the change touched ([`Agent::flow_affected`]: a network, security group, ACL or
//! port of theirs) are decided again, so a config message costs what it concerns, not one
//! decision per recorded flow.

use std::collections::HashMap;

use filament_dataplane::{FlowKey, Op};

use crate::core::{Agent, FlowDeps, PolicyChange};

/// A flow decision the agent made, kept for `GET /flows`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowRecord {
    /// forward (true) or drop
    pub allow: bool,
    /// the rule that decided
    pub rule: String,
    /// whether this is the reverse entry of a decided flow
    pub reverse: bool,
    /// what the decision read (networks, local ports)
    #[serde(skip)]
    pub deps: FlowDeps,
}

/// Remember a flow verdict under its forward and reverse keys.
pub fn record(
    recs: &mut HashMap<FlowKey, FlowRecord>,
    key: FlowKey,
    allow: bool,
    rule: String,
    deps: FlowDeps,
) {
    recs.insert(
        key.reversed(),
        FlowRecord {
            allow,
            rule: rule.clone(),
            reverse: true,
            deps: FlowDeps::default(),
        },
    );
    recs.insert(
        key,
        FlowRecord {
            allow,
            rule,
            reverse: false,
            deps,
        },
    );
}

/// What [`redecide`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redecided {
    /// Flows decided again.
    pub decided: usize,
    /// Forwarder ops for the flows whose verdict changed (both directions replaced in place).
    pub ops: Vec<Op>,
}

/// Decide again the recorded flows `ch` concerns; records updated, ops for reversed verdicts.
pub fn redecide(
    a: &Agent,
    ch: &PolicyChange,
    recs: &mut HashMap<FlowKey, FlowRecord>,
) -> Redecided {
    let keys: Vec<FlowKey> = recs
        .iter()
        .filter(|(k, r)| !r.reverse && a.flow_affected(ch, k, &r.deps))
        .map(|(k, _)| *k)
        .collect();
    let mut out = Redecided::default();
    for key in keys {
        out.decided += 1;
        let d = a.decide_flow(&key);
        if recs.get(&key).is_some_and(|r| r.allow != d.allow) {
            out.ops.push(Agent::flow_op(key, d.allow));
        }
        record(recs, key, d.allow, d.rule, a.flow_deps(&key));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use filament_ifmap::encode_object;
    use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind};
    use serde_json::json;

    use super::*;
    use crate::core::Input;

    const VN: &str = "default-domain:bench:vn1";

    /// A control node's config message updating one object.
    fn update(a: &mut Agent, ty: &str, obj: serde_json::Value) {
        let (node, links) = encode_object(ty, obj.as_object().unwrap()).unwrap();
        let mut items = vec![ConfigItem::Node(node)];
        items.extend(links.into_iter().map(ConfigItem::Link));
        let iq = ConfigIq::to_agent(
            "bench",
            vec![ConfigOp {
                kind: ConfigOpKind::Update,
                items,
            }],
        );
        a.handle(10, Input::Bytes(0, iq.to_element().to_xml().into_bytes()));
        let _ = a.poll_output();
    }

    fn acl(action: &str) -> serde_json::Value {
        json!({"fq_name": ["default-domain", "bench", "vn1", "vn1"],
            "uuid": "00000000-0000-4000-8000-000000000004", "parent_type": "virtual-network",
            "access_control_list_entries": {"dynamic": false, "acl_rule": [{"match_condition": {
                "protocol": "udp", "src_address": {"virtual_network": VN},
                "src_port": {"start_port": -1, "end_port": -1},
                "dst_address": {"virtual_network": VN},
                "dst_port": {"start_port": -1, "end_port": -1}, "ethertype": "IPv4"},
            "action_list": {"simple_action": action},
            "rule_uuid": "00000000-0000-4000-8000-00000000ffff", "direction": ">"}]}})
    }

    #[test]
    fn only_flows_a_config_change_concerns_are_decided_again() {
        let (mut a, keys) = crate::bench::flow_fixture(3, 4).unwrap();
        let _ = a.take_policy_change();
        let mut recs = HashMap::new();
        for k in &keys {
            let d = a.decide_flow(k);
            assert!(d.allow);
            record(&mut recs, *k, d.allow, d.rule, a.flow_deps(k));
        }
        assert!(recs.values().all(|r| r.reverse || r.deps.vns == [VN, VN]));

        // another network (and its ACL) changes: no flow of vn1 is decided again
        update(
            &mut a,
            "virtual-network",
            json!({"fq_name": ["default-domain", "bench", "vn2"],
            "uuid": "00000000-0000-4000-8000-000000000022", "virtual_network_network_id": 6}),
        );
        let ch = a.take_policy_change().unwrap();
        assert!(ch.vns.contains("default-domain:bench:vn2"), "{ch:?}");
        let r = redecide(&a, &ch, &mut recs);
        assert_eq!(r, Redecided::default());

        // vn1's ACL now denies the flows: every flow decided again, each verdict reversed
        update(&mut a, "access-control-list", acl("deny"));
        let ch = a.take_policy_change().unwrap();
        let r = redecide(&a, &ch, &mut recs);
        assert_eq!(r.decided, keys.len());
        assert_eq!(r.ops.len(), keys.len());
        assert!(keys
            .iter()
            .all(|k| !recs[k].allow && !recs[&k.reversed()].allow));

        // the same ACL again: decided again, nothing to re-install
        update(&mut a, "access-control-list", acl("deny"));
        let ch = a.take_policy_change().unwrap();
        let r = redecide(&a, &ch, &mut recs);
        assert_eq!((r.decided, r.ops.len()), (keys.len(), 0));
    }
}
