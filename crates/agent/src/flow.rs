//! Flow decisions (sans-IO, pure): evaluate the network-policy ACLs and security-group ACLs
//! the agent received for a new flow, the way TF's agent does (tf-facts §5.5; ACL entries
//! exactly as `filament-transformer`'s `acl.rs` writes them: `AclRuleType` JSON with
//! `match_condition`, `action_list.simple_action`, `rule_uuid`).
//!
//! ```text
//!  flow A -> B:  network ACL of A's VN (first match)   ─┐
//!                network ACL of B's VN (first match)   ─┼─ all pass => Forward (and the
//!                egress SG ACLs of A (any match)       ─┤   reverse flow: stateful)
//!                ingress SG ACLs of B (any match)      ─┘   else Drop, with the rule that decided
//! ```
//! A network without an ACL (no policy) allows traffic within itself and denies traffic to
//! other networks (default deny); ACLs and SGs of remote endpoints are only checked when the
//! agent has them (the remote agent checks its side).

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

/// Rule id reported when two networks without a policy between them meet.
pub const DEFAULT_DENY: &str = "default-deny-between-networks";
/// Rule id reported when traffic stays within a network that has no ACL.
pub const IMPLICIT_SAME_VN: &str = "implicit-allow-same-network";
/// Rule id reported when no security-group rule matched.
pub const SG_DEFAULT_DENY: &str = "security-group-default-deny";

/// An address match of an ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrMatch {
    /// `virtual_network: "any"`, or no address at all.
    Any,
    /// A virtual network by fq name string.
    Vn(String),
    /// A security group by id.
    Sg(u32),
    /// Subnets (`subnet` or `subnet_list`).
    Subnets(Vec<(IpAddr, u8)>),
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// `rule_uuid`.
    pub uuid: String,
    /// IP protocol, `None` = any.
    pub proto: Option<u8>,
    /// source address
    pub src: AddrMatch,
    /// source ports (inclusive)
    pub sport: (u16, u16),
    /// destination address
    pub dst: AddrMatch,
    /// destination ports (inclusive)
    pub dport: (u16, u16),
    /// `simple_action == "pass"`
    pub pass: bool,
    /// `ethertype == "IPv6"`
    pub v6: bool,
}

/// One side of a flow: address plus what routes/config say about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// IP address
    pub ip: Option<IpAddr>,
    /// VN fq name string (from the local port or the route's `virtual-network`)
    pub vn: Option<String>,
    /// security-group ids (the port's, or the route's `security-group-list`)
    pub sgs: Vec<u32>,
    /// the endpoint is a local port (its SGs are enforced here)
    pub local: bool,
    /// network ACL of its VN, if the agent has one (`None`: the VN has no policy)
    pub vn_acl: Option<Arc<[AclRule]>>,
    /// ingress SG rules of the port, one list per group (local only)
    pub sg_ingress: Vec<Arc<[AclRule]>>,
    /// egress SG rules of the port, one list per group (local only)
    pub sg_egress: Vec<Arc<[AclRule]>>,
    /// the port has security groups (else SG checks are skipped)
    pub sg_enforced: bool,
}

/// The 5-tuple of the first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// IP protocol
    pub proto: u8,
    /// source address
    pub src: IpAddr,
    /// destination address
    pub dst: IpAddr,
    /// source port (0 if none)
    pub sport: u16,
    /// destination port (0 if none)
    pub dport: u16,
}

/// The outcome for a new flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// forward (both directions) or drop
    pub allow: bool,
    /// the rule that decided: the deny that matched, or the last pass evaluated
    pub rule: String,
}

fn proto_of(v: Option<&Value>) -> Option<u8> {
    match v.and_then(Value::as_str).unwrap_or("any") {
        "any" => None,
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp6" => Some(58),
        n => n.parse().ok(),
    }
}

fn ports_of(v: Option<&Value>) -> (u16, u16) {
    let get = |k: &str| {
        v.and_then(|p| p.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(-1)
    };
    let (s, e) = (get("start_port"), get("end_port"));
    if s < 0 || e < 0 {
        (0, u16::MAX)
    } else {
        (
            u16::try_from(s).unwrap_or(u16::MAX),
            u16::try_from(e).unwrap_or(u16::MAX),
        )
    }
}

fn subnet_of(v: &Value) -> Option<(IpAddr, u8)> {
    let ip = v.get("ip_prefix")?.as_str()?.parse().ok()?;
    let len = u8::try_from(v.get("ip_prefix_len")?.as_u64()?).ok()?;
    Some((ip, len))
}

fn addr_of(v: Option<&Value>) -> AddrMatch {
    let Some(a) = v else { return AddrMatch::Any };
    if let Some(sg) = a.get("security_group").and_then(Value::as_str) {
        if sg != "any" {
            return sg
                .parse()
                .map(AddrMatch::Sg)
                .unwrap_or(AddrMatch::Vn(String::new()));
        }
    }
    if let Some(s) = a.get("subnet").filter(|s| !s.is_null()).and_then(subnet_of) {
        return AddrMatch::Subnets(vec![s]);
    }
    if let Some(list) = a
        .get("subnet_list")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        return AddrMatch::Subnets(list.iter().filter_map(subnet_of).collect());
    }
    match a.get("virtual_network").and_then(Value::as_str) {
        Some("any") | None => AddrMatch::Any,
        Some(vn) => AddrMatch::Vn(vn.to_string()),
    }
}

/// Parse the `acl_rule` list of an `access_control_list_entries` value; entries that are not
/// objects are skipped.
pub fn parse_acl(entries: &Value) -> Vec<AclRule> {
    let rules = entries
        .get("acl_rule")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    rules
        .iter()
        .filter(|r| r.is_object())
        .map(|r| {
            let m = r.get("match_condition");
            let f = |k: &str| m.and_then(|m| m.get(k));
            AclRule {
                uuid: r
                    .get("rule_uuid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                proto: proto_of(f("protocol")),
                src: addr_of(f("src_address")),
                sport: ports_of(f("src_port")),
                dst: addr_of(f("dst_address")),
                dport: ports_of(f("dst_port")),
                pass: r
                    .pointer("/action_list/simple_action")
                    .and_then(Value::as_str)
                    == Some("pass"),
                v6: f("ethertype").and_then(Value::as_str) == Some("IPv6"),
            }
        })
        .collect()
}

fn in_subnet(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn addr_matches(m: &AddrMatch, ip: IpAddr, ep: &Endpoint) -> bool {
    match m {
        AddrMatch::Any => true,
        AddrMatch::Vn(vn) => ep.vn.as_deref() == Some(vn.as_str()),
        AddrMatch::Sg(id) => ep.sgs.contains(id),
        AddrMatch::Subnets(s) => s.iter().any(|&n| in_subnet(ip, n)),
    }
}

/// Whether `r` matches the flow `t` from `src` to `dst`.
pub fn rule_matches(r: &AclRule, t: &Tuple, src: &Endpoint, dst: &Endpoint) -> bool {
    r.v6 == t.src.is_ipv6()
        && r.proto.is_none_or(|p| p == t.proto)
        && (r.sport.0..=r.sport.1).contains(&t.sport)
        && (r.dport.0..=r.dport.1).contains(&t.dport)
        && addr_matches(&r.src, t.src, src)
        && addr_matches(&r.dst, t.dst, dst)
}

/// First-match evaluation of a network ACL; `None` when no rule matched.
fn network_verdict<'a>(
    acl: &'a [AclRule],
    t: &Tuple,
    src: &Endpoint,
    dst: &Endpoint,
) -> Option<&'a AclRule> {
    acl.iter().find(|r| rule_matches(r, t, src, dst))
}

/// Decide a new flow from `src` to `dst`.
pub fn decide(t: &Tuple, src: &Endpoint, dst: &Endpoint) -> Decision {
    let deny = |rule: &str| Decision {
        allow: false,
        rule: rule.to_string(),
    };
    let mut last_pass = String::new();
    // Network policy: each endpoint's VN ACL that the agent has.
    let same_vn = src.vn.is_some() && src.vn == dst.vn;
    let acls: Vec<&Arc<[AclRule]>> = [&src.vn_acl, &dst.vn_acl].into_iter().flatten().collect();
    if acls.is_empty() {
        if !same_vn {
            return deny(DEFAULT_DENY);
        }
        last_pass = IMPLICIT_SAME_VN.to_string();
    }
    for acl in acls {
        match network_verdict(acl, t, src, dst) {
            Some(r) if r.pass => last_pass.clone_from(&r.uuid),
            Some(r) => return deny(&r.uuid),
            None if same_vn => last_pass = IMPLICIT_SAME_VN.to_string(),
            None => return deny(DEFAULT_DENY),
        }
    }
    // Security groups: an allow list per direction, any match passes.
    for (ep, rules) in [(src, &src.sg_egress), (dst, &dst.sg_ingress)] {
        if !(ep.local && ep.sg_enforced) {
            continue;
        }
        match rules
            .iter()
            .flat_map(|g| g.iter())
            .find(|r| r.pass && rule_matches(r, t, src, dst))
        {
            Some(r) => last_pass.clone_from(&r.uuid),
            None => return deny(SG_DEFAULT_DENY),
        }
    }
    Decision {
        allow: true,
        rule: last_pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ep(ip: &str, vn: &str, sgs: Vec<u32>) -> Endpoint {
        Endpoint {
            ip: ip.parse().ok(),
            vn: Some(vn.into()),
            sgs,
            local: true,
            ..Endpoint::default()
        }
    }

    fn tuple(proto: u8, dport: u16) -> Tuple {
        Tuple {
            proto,
            src: "10.1.1.3".parse().unwrap(),
            dst: "10.2.2.3".parse().unwrap(),
            sport: 40000,
            dport,
        }
    }

    fn vn_acl(rules: Value) -> Vec<AclRule> {
        parse_acl(&json!({ "acl_rule": rules }))
    }

    fn rule(
        uuid: &str,
        proto: &str,
        src: Value,
        dst: Value,
        dports: (i64, i64),
        action: &str,
    ) -> Value {
        json!({"match_condition": {"protocol": proto, "src_address": src, "src_port": {"start_port": -1, "end_port": -1},
               "dst_address": dst, "dst_port": {"start_port": dports.0, "end_port": dports.1}, "ethertype": "IPv4"},
               "action_list": {"simple_action": action}, "rule_uuid": uuid, "direction": ">"})
    }

    #[test]
    fn networks_without_policy_are_isolated_same_network_allowed() {
        let a = ep("10.1.1.3", "d:p:vn1", vec![]);
        let b = ep("10.2.2.3", "d:p:vn2", vec![]);
        assert_eq!(
            decide(&tuple(1, 0), &a, &b),
            Decision {
                allow: false,
                rule: DEFAULT_DENY.into()
            }
        );
        let c = ep("10.1.1.4", "d:p:vn1", vec![]);
        assert!(decide(&tuple(1, 0), &a, &c).allow);
    }

    #[test]
    fn transformer_shaped_pass_policy_allows_and_names_the_rule() {
        let acl = vn_acl(json!([
            rule(
                "r1",
                "any",
                json!({"virtual_network": "d:p:vn1"}),
                json!({"virtual_network": "d:p:vn2"}),
                (-1, -1),
                "pass"
            ),
            rule(
                "r1",
                "any",
                json!({"virtual_network": "d:p:vn2"}),
                json!({"virtual_network": "d:p:vn1"}),
                (-1, -1),
                "pass"
            ),
            rule(
                "00000000-0000-0000-0000-100000000002",
                "any",
                json!({"virtual_network": "any"}),
                json!({"virtual_network": "any"}),
                (-1, -1),
                "deny"
            ),
        ]));
        let mut a = ep("10.1.1.3", "d:p:vn1", vec![]);
        let mut b = ep("10.2.2.3", "d:p:vn2", vec![]);
        a.vn_acl = Some(acl.clone().into());
        b.vn_acl = Some(acl.into());
        assert_eq!(
            decide(&tuple(1, 0), &a, &b),
            Decision {
                allow: true,
                rule: "r1".into()
            }
        );
        // to a third network the implicit deny decides
        let c = ep("10.3.3.3", "d:p:vn3", vec![]);
        assert_eq!(
            decide(&tuple(1, 0), &a, &c).rule,
            "00000000-0000-0000-0000-100000000002"
        );
    }

    #[test]
    fn sg_allowing_only_tcp22_blocks_ping() {
        let mut a = ep("10.1.1.3", "d:p:vn1", vec![8000001]);
        let mut b = ep("10.1.1.4", "d:p:vn1", vec![8000002]);
        a.sg_enforced = true;
        a.sg_egress = vec![vn_acl(json!([rule(
            "e1",
            "any",
            json!({"security_group": "8000001"}),
            json!({"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}),
            (-1, -1),
            "pass"
        )]))
        .into()];
        b.sg_enforced = true;
        b.sg_ingress = vec![vn_acl(json!([rule(
            "ssh",
            "tcp",
            json!({"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}),
            json!({"security_group": "8000002"}),
            (22, 22),
            "pass"
        )]))
        .into()];
        let mut t = tuple(1, 0);
        t.dst = "10.1.1.4".parse().unwrap();
        assert_eq!(
            decide(&t, &a, &b),
            Decision {
                allow: false,
                rule: SG_DEFAULT_DENY.into()
            }
        );
        let mut t = tuple(6, 22);
        t.dst = "10.1.1.4".parse().unwrap();
        assert_eq!(
            decide(&t, &a, &b),
            Decision {
                allow: true,
                rule: "ssh".into()
            }
        );
        t.dport = 23;
        assert!(!decide(&t, &a, &b).allow);
    }

    #[test]
    fn subnet_and_port_ranges_match() {
        let r = &vn_acl(json!([rule(
            "x",
            "udp",
            json!({"subnet_list": [{"ip_prefix": "10.1.0.0", "ip_prefix_len": 16}]}),
            json!({"virtual_network": "any"}),
            (50, 60),
            "pass"
        )]))[0];
        let a = ep("10.1.1.3", "d:p:vn1", vec![]);
        let b = ep("10.2.2.3", "d:p:vn2", vec![]);
        assert!(rule_matches(r, &tuple(17, 55), &a, &b));
        assert!(!rule_matches(r, &tuple(17, 61), &a, &b));
        assert!(!rule_matches(r, &tuple(6, 55), &a, &b));
        let mut t = tuple(17, 55);
        t.src = "10.9.1.3".parse().unwrap();
        assert!(!rule_matches(r, &t, &a, &b));
    }
}
