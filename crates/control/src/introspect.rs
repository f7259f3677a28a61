//! Introspect views of the control node as JSON (tf-facts §7, in the spirit of
//! `Snh_ShowRouteReq`, `Snh_ShowRouteSummaryReq`, `Snh_BgpNeighborReq`), served on 8083 by
//! the shell as `GET /status`, `GET /routes?table=T&prefix=P`, `GET /routes/summary`,
//! `GET /neighbors`.

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::node::ControlNode;
use crate::rib::{vrf_table, Family, Origin, PeerId, TableSummary, RTARGET_TABLE};
use crate::session::SessionState;

/// `peer_asn` of an XMPP peer: TF's `ist.py ctr nei` shows 0 for agents (seed 004), an
/// agent having no AS of its own.
const XMPP_PEER_ASN: u32 = 0;

impl ControlNode {
    /// `GET /status`: role, state, reason, sessions, route counts, counters.
    pub fn status(&self) -> Value {
        let established = self
            .agents
            .values()
            .filter(|a| matches!(a.session.state(), SessionState::Established { .. }))
            .count();
        let summary = self.rib.summary();
        let gr = self.gr_params();
        let (state, reason) = match self.synced {
            Some(_) => ("active", Value::Null),
            None => ("initializing", json!("waiting for the config feed")),
        };
        json!({
            "role": "control",
            "name": self.cfg.name,
            "state": state,
            "reason": reason,
            "config": {"objects": self.graph.len(), "events": self.config_events, "revision": self.synced,
                       "routing_instances": self.instances.len()},
            "xmpp": {"sessions": self.agents.len(), "established": established},
            "routes": {
                "tables": summary.len(),
                "prefixes": summary.iter().map(|s| s.prefixes).sum::<usize>(),
                "paths": summary.iter().map(|s| s.paths).sum::<usize>(),
            },
            "counters": self.counters,
            "graceful_restart": {
                "xmpp_helper": gr.xmpp_helper, "restart_time": gr.restart_time.as_secs(),
                "long_lived_restart_time": gr.long_lived_restart_time.as_secs(),
                "bgp_helper": self.bgp_gr().helper,
                "end_of_rib_timeout": gr.end_of_rib_timeout.as_secs(),
                "restarting": self.restarting_agents().collect::<Vec<_>>(),
            },
        })
    }

    /// Tables that exist without a route, as in TF, where every routing instance has its
    /// tables from the moment it is configured (`ist.py ctr route summary` lists them with
    /// 0 prefixes): the global VPN and route-target tables, and `inet.0`, `inet6.0`,
    /// `evpn.0` of each configured instance, less those the RIB holds.
    fn empty_tables(&self) -> Vec<String> {
        let held = self.rib.tables();
        let global = Family::ALL
            .into_iter()
            .map(|f| f.vpn_table().to_string())
            .chain([RTARGET_TABLE.to_string()]);
        // (`__default__` instances are TF's master instance, whose tables are the global
        // ones: not listed under their fq name)
        let vrfs = self
            .instances
            .keys()
            .filter(|ri| !ri.ends_with(":__default__"))
            .flat_map(|ri| Family::ALL.into_iter().map(move |f| vrf_table(ri, f)));
        let mut out: Vec<String> = global
            .chain(vrfs)
            .filter(|t| !held.contains_key(t))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `GET /routes/summary`: one row per table, every configured instance's included.
    pub fn routes_summary(&self) -> Value {
        let mut rows = self.rib.summary();
        rows.extend(self.empty_tables().into_iter().map(|name| TableSummary {
            name,
            ..TableSummary::default()
        }));
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        json!({"tables": rows})
    }

    /// `GET /routes?table=T&prefix=P`: tables (all, or one) with their routes and paths.
    pub fn routes(&self, table: Option<&str>, prefix: Option<&str>) -> Value {
        self.routes_matching(table, prefix, PrefixMatch::Exact)
    }

    /// [`Self::routes`], `m` saying how a route's destination is compared with `P` (TF's
    /// `Snh_ShowRouteReq` `longer_match` / `shorter_match`).
    pub fn routes_matching(
        &self,
        table: Option<&str>,
        prefix: Option<&str>,
        m: PrefixMatch,
    ) -> Value {
        let mut out = Vec::new();
        for (name, t) in self.rib.tables() {
            if table.is_some_and(|x| x != name) {
                continue;
            }
            let mut routes = Vec::new();
            let (mut paths, mut primary, mut secondary) = (0, 0, 0);
            for (k, r) in t.iter() {
                if prefix.is_some_and(|p| !key_matches_as(&k, p, m)) {
                    continue;
                }
                let best = r.best().len();
                let ps: Vec<Value> = r
                    .paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        paths += 1;
                        let (protocol, primary_table) = match (&p.peer, &p.origin) {
                            (PeerId::Xmpp(_), _) => ("XMPP", None),
                            (PeerId::Bgp(_), _) => ("BGP", None),
                            (PeerId::Local, _) => ("Local", None::<String>),
                        };
                        let primary_table = match &p.origin {
                            Origin::Primary => {
                                primary += 1;
                                primary_table
                            }
                            Origin::Secondary { table } => {
                                secondary += 1;
                                Some(table.to_string())
                            }
                        };
                        let a = &p.attrs;
                        json!({
                            "protocol": protocol, "source": p.peer.to_string(), "rd": p.rd.as_deref(),
                            "best": i < best, "local_pref": a.local_pref, "med": a.med,
                            "next_hop": a.next_hop, "label": p.label, "encap": a.encap,
                            "origin_vn": a.origin_vn, "security_groups": a.security_groups,
                            "communities": a.communities, "route_targets": a.route_targets,
                            "as_path_len": a.as_path_len,
                            "secondary": primary_table.is_some(), "primary_table": primary_table,
                            "stale": self.path_stale(name, &k, p),
                            "llgr_stale": a.llgr_stale,
                        })
                    })
                    .collect();
                routes.push(json!({"prefix": k, "paths": ps}));
            }
            if routes.is_empty() && prefix.is_some() {
                continue;
            }
            out.push(json!({
                "table": name, "destinations": routes.len(), "paths": paths,
                "primary_paths": primary, "secondary_paths": secondary, "infeasible_paths": 0,
                "routes": routes,
            }));
        }
        // A configured instance's table with no route yet, asked for by name, is shown
        // empty (a listing of every table leaves empty ones out, as `ist.py ctr route
        // show` does in seed 004; `route summary` lists them).
        if prefix.is_none() && table.is_some() {
            for name in self.empty_tables() {
                if table.is_some_and(|x| x != name) {
                    continue;
                }
                out.push(json!({
                    "table": name, "destinations": 0, "paths": 0, "primary_paths": 0,
                    "secondary_paths": 0, "infeasible_paths": 0, "routes": [],
                }));
            }
            out.sort_by(|a, b| a["table"].as_str().cmp(&b["table"].as_str()));
        }
        json!({"tables": out})
    }

    /// `GET /neighbors`: XMPP peers (BGP peers are added by the BGP speaker's shell).
    pub fn neighbors(&self) -> Value {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for a in self.agents.values() {
            // a session still negotiating TLS is shown by the name in its header
            let Some(name) = a.name.as_deref().or(a.session.peer()) else {
                continue;
            };
            seen.insert(name.to_string());
            let h = self.history.get(name).cloned().unwrap_or_default();
            out.push(json!({
                "peer": name, "peer_address": a.remote, "peer_asn": XMPP_PEER_ASN,
                "encoding": "XMPP", "peer_type": "internal",
                "state": a.session.state().tf_name(),
                "send_state": if a.eor_sent { "in sync" } else { "not advertising" },
                "flap_count": h.flaps, "flap_time": h.last_flap,
                "subscriptions": a.subs.len(), "prefixes": a.published.len(),
                "eor_received": a.eor_received,
                "up_since_secs": a.since.as_secs(),
                "graceful_restart": self.gr_view(name),
            }));
        }
        for (name, h) in &self.history {
            if seen.contains(name) {
                continue;
            }
            // down, but its paths kept stale in graceful restart (TF's GR_TIMER)
            let gr = self.gr_view(name);
            let state = if gr.is_some() {
                "Idle (GR helper)"
            } else {
                "Idle"
            };
            out.push(json!({
                "peer": name, "peer_address": null, "peer_asn": XMPP_PEER_ASN,
                "encoding": "XMPP", "peer_type": "internal", "state": state,
                "graceful_restart": gr,
                "send_state": "not advertising", "flap_count": h.flaps, "flap_time": h.last_flap,
                "last_reason": h.last_reason, "subscriptions": 0, "prefixes": 0,
            }));
        }
        out.extend(self.bgp_neighbors.iter().cloned());
        json!({"neighbors": out})
    }
}

/// How `GET /routes` compares a route's destination with the `prefix` asked for, as TF's
/// `Snh_ShowRouteReq`: the destination itself, or (`longer_match=1`) every route inside
/// it, or (`shorter_match=1`) every route that covers it: `ist.py ctr route show
/// 10.1.1.5` asks for `10.1.1.5/32` with `shorter_match`, so the covering
/// `10.1.1.0/24` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefixMatch {
    /// The destination only ([`key_matches`]).
    #[default]
    Exact,
    /// Routes whose prefix lies inside the one asked for (it included).
    Longer,
    /// Routes whose prefix covers the one asked for (it included).
    Shorter,
}

impl PrefixMatch {
    /// From TF's query flags (`longer_match`, `shorter_match`: "1" or "true").
    pub fn from_flags(longer: Option<&str>, shorter: Option<&str>) -> Self {
        let on = |f: Option<&str>| matches!(f, Some("1" | "true" | "True"));
        match (on(longer), on(shorter)) {
            (true, _) => Self::Longer,
            (false, true) => Self::Shorter,
            (false, false) => Self::Exact,
        }
    }
}

/// [`key_matches`], or with `Longer` / `Shorter` the IP prefix of the key (after its RD;
/// an EVPN MAC/IP key's IP) compared by containment with `p` (an IP prefix; anything
/// else falls back to [`key_matches`]).
fn key_matches_as(k: &str, p: &str, m: PrefixMatch) -> bool {
    let (Some(want), PrefixMatch::Longer | PrefixMatch::Shorter) = (p.parse::<IpNet>().ok(), m)
    else {
        return key_matches(k, p);
    };
    let after_rd = k.splitn(3, ':').nth(2).unwrap_or("");
    let have = [k, after_rd]
        .into_iter()
        .flat_map(|x| [Some(x), x.split_once(',').map(|(_, ip)| ip)])
        .flatten()
        .find_map(|x| x.parse::<IpNet>().ok());
    have.is_some_and(|have| match m {
        PrefixMatch::Longer => want.contains(&have),
        _ => have.contains(&want),
    })
}

/// Whether the table key `k` (`10.1.1.0/24`, `rd:10.1.1.0/24`, `mac,ip/len`,
/// `rd:mac,ip/len`) is the destination `p`: the whole key, its prefix after the RD (two
/// fields: `asn:n`, `ip:n`), or the IP or MAC of an EVPN MAC/IP key. Not any suffix:
/// `0.200.1.0/24` is not `10.200.1.0/24`.
fn key_matches(k: &str, p: &str) -> bool {
    let evpn = |key: &str| {
        key.split_once(',')
            .is_some_and(|(mac, ip)| ip == p || mac.eq_ignore_ascii_case(p))
    };
    let after_rd = k.splitn(3, ':').nth(2).unwrap_or("");
    k == p || after_rd == p || evpn(after_rd) || evpn(k)
}

#[cfg(test)]
mod key_tests {
    use super::{key_matches, key_matches_as, PrefixMatch};

    #[test]
    fn longer_and_shorter_match_by_containment() {
        use PrefixMatch::{Exact, Longer, Shorter};
        // an address asked with shorter_match finds the routes covering it
        assert!(key_matches_as("10.200.1.0/24", "10.200.1.5/32", Shorter));
        assert!(key_matches_as(
            "65001:7:10.200.1.0/24",
            "10.200.1.5/32",
            Shorter
        ));
        assert!(key_matches_as("10.200.1.5/32", "10.200.1.5/32", Shorter));
        assert!(key_matches_as("0.0.0.0/0", "10.200.1.5/32", Shorter));
        assert!(!key_matches_as("10.200.2.0/24", "10.200.1.5/32", Shorter));
        assert!(!key_matches_as("10.200.1.0/25", "10.200.1.0/24", Shorter));
        assert!(!key_matches_as("10.200.1.0/24", "10.200.1.5/32", Exact));
        // longer_match: the routes inside
        assert!(key_matches_as("10.200.1.0/25", "10.200.1.0/24", Longer));
        assert!(key_matches_as(
            "192.0.2.1:3:10.200.1.7/32",
            "10.200.0.0/16",
            Longer
        ));
        assert!(!key_matches_as("10.200.0.0/15", "10.200.0.0/16", Longer));
        // EVPN MAC/IP keys by their IP; inet6 too; a MAC-only key never matches an IP
        assert!(key_matches_as(
            "192.0.2.1:2:02:00:00:00:00:01,10.1.1.3/32",
            "10.1.1.0/24",
            Longer
        ));
        assert!(key_matches_as("2001:db8::/64", "2001:db8::5/128", Shorter));
        assert!(!key_matches_as(
            "02:00:00:00:00:01,0.0.0.0/32",
            "10.1.1.0/24",
            Longer
        ));
        assert!(!key_matches_as(
            "64512:target:64512:1",
            "10.1.1.0/24",
            Longer
        ));
    }

    #[test]
    fn a_prefix_matches_whole_destinations_only() {
        assert!(key_matches("10.200.1.0/24", "10.200.1.0/24"));
        assert!(key_matches("65001:9:10.200.1.0/24", "10.200.1.0/24"));
        assert!(key_matches("02:00:00:00:00:01,10.1.1.3/32", "10.1.1.3/32"));
        assert!(key_matches(
            "02:00:00:00:00:01,10.1.1.3/32",
            "02:00:00:00:00:01"
        ));
        assert!(!key_matches("10.200.1.0/24", "0.200.1.0/24"));
        assert!(!key_matches("65001:9:110.200.1.0/24", "10.200.1.0/24"));
        assert!(!key_matches("10.200.1.0/24", "10.200.1.0/2"));
        assert!(key_matches("10.50.0.5/32", "10.50.0.5/32"));
        assert!(key_matches("10.77.0.9:3:10.50.0.5/32", "10.50.0.5/32"));
        assert!(key_matches(
            "192.0.2.1:2:02:00:00:00:00:01,10.1.1.3/32",
            "10.1.1.3/32"
        ));
        assert!(key_matches(
            "192.0.2.1:2:02:00:00:00:00:01,10.1.1.3/32",
            "02:00:00:00:00:01"
        ));
        assert!(!key_matches("10.50.0.5/32", "0.5/32"));
        assert!(!key_matches("10.77.0.9:3:110.50.0.5/32", "10.50.0.5/32"));
    }
}
