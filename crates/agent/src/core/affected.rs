//! Which ports a config message can change: the work per message is proportional to what
//! changed, not to the number of ports (issue 6: port add -> remote route latency).
//!
//! A port's desired state ([`Agent::desired`]) is a function of exactly: its VMI node (mac,
//! network and security-group refs, uuid), the instance-ips referring to that VMI, its
//! network's [`VnCfg`], the ids of its security groups and the [`GlobalCfg`].  So after a
//! config message the agent re-reconciles only
//! - ports not programmed yet (or whose VMI node name is not known yet);
//! - ports whose VMI node was touched (node or one of its links, which includes an
//!   instance-ip's link to it);
//! - ports whose VMI an instance-ip touched by the message refers to;
//! - every port, when the global config, or the config of a network or security group some
//!   port uses, is not what it was (or an instance-ip's VMI cannot be told).
//!
//! The cached values are those of the graph after the last applied message (refreshed at
//! its end), so comparing them with the graph's values now says exactly what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use filament_dataplane::FlowKey;
use filament_ifmap::Key;
use serde_json::Value;

use super::Agent;
use crate::model::{GlobalCfg, VnCfg};

/// What config messages changed that a flow decision reads (tf-facts §5.5: a policy change
/// re-evaluates the flows it concerns): networks (their ACL), security groups (their ACLs)
/// and ports (their network and groups).  Taken by the shell with
/// [`Agent::take_policy_change`]; [`Agent::flow_affected`] says whether a flow must be
/// decided again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// Every flow: a message could not be applied whole.
    pub all: bool,
    /// Networks (colon names) whose node or one of whose ACLs changed.
    pub vns: BTreeSet<String>,
    /// Security groups (colon names) whose node or one of whose ACLs changed.
    pub sgs: BTreeSet<String>,
    /// Ports (VMI uuids) whose VMI node or links changed.
    pub ports: BTreeSet<String>,
}

impl PolicyChange {
    /// Whether nothing a flow reads changed.
    pub fn is_empty(&self) -> bool {
        !self.all && self.vns.is_empty() && self.sgs.is_empty() && self.ports.is_empty()
    }
}

/// What a flow decision read: the networks of its endpoints and its local ports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlowDeps {
    /// Networks of the endpoints.
    pub vns: Vec<String>,
    /// Local ports (VMI uuids) of the endpoints.
    pub ports: Vec<String>,
}

/// What the ports' desired states were computed from.
#[derive(Debug, Default)]
pub(crate) struct Deps {
    /// port id -> (network name, security-group names) of its VMI
    pub(crate) ports: BTreeMap<String, (String, Vec<String>)>,
    /// how many ports use each network, and each security group (the names above, counted:
    /// no scan of every port per message)
    vn_users: BTreeMap<String, usize>,
    sg_users: BTreeMap<String, usize>,
    /// VMI node name -> ports whose VMI it is (`Agent::vmi_names` the other way)
    vmi_ports: BTreeMap<String, BTreeSet<String>>,
    /// ports not programmed, or whose network and groups are not known: looked at again by
    /// every config message
    pub(crate) unsettled: BTreeSet<String>,
    /// global config as of the last message
    global: Option<GlobalCfg>,
    /// network configs by name
    vns: BTreeMap<String, Option<VnCfg>>,
    /// security-group ids by name
    sgs: BTreeMap<String, Option<u32>>,
    /// VMI node names by uuid, and uuids by node name, of every VMI node in the graph
    /// (`None`: not known, rebuilt at the next message), so a new port finds its VMI
    /// without a scan of every VMI
    vmis: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

const VMI: &str = "virtual-machine-interface";

fn uuid_of(g: &filament_ifmap::IfmapGraph, name: &str) -> Option<String> {
    g.props(VMI, name)?
        .get("uuid")?
        .as_str()
        .map(str::to_string)
}

impl Deps {
    /// Forget the cached values: the next config message reconciles every port.
    pub(crate) fn invalidate(&mut self) {
        self.global = None;
        self.vmis = None;
    }

    /// Record a port's network and security groups (`None`: the port is gone).
    pub(crate) fn set_port(&mut self, id: &str, now: Option<(String, Vec<String>)>) {
        fn count(m: &mut BTreeMap<String, usize>, k: &str, up: bool) {
            if up {
                *m.entry(k.to_string()).or_default() += 1;
            } else if let Some(n) = m.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(k);
                }
            }
        }
        let old = match now {
            Some(v) => self.ports.insert(id.to_string(), v),
            None => self.ports.remove(id),
        };
        if let Some((vn, sgs)) = &old {
            count(&mut self.vn_users, vn, false);
            sgs.iter().for_each(|s| count(&mut self.sg_users, s, false));
        }
        if let Some((vn, sgs)) = self.ports.get(id) {
            count(&mut self.vn_users, vn, true);
            sgs.iter().for_each(|s| count(&mut self.sg_users, s, true));
        }
    }

    /// Index a port's VMI node name (`None`: the port is gone).
    pub(crate) fn set_vmi_port(&mut self, id: &str, old: Option<&String>, now: Option<&String>) {
        if let Some(o) = old {
            if let Some(s) = self.vmi_ports.get_mut(o) {
                s.remove(id);
                if s.is_empty() {
                    self.vmi_ports.remove(o);
                }
            }
        }
        if let Some(n) = now {
            self.vmi_ports
                .entry(n.clone())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// The node name of the VMI with this uuid: `Some(None)` when there is none, `None` when
    /// not known (the caller scans).
    pub(crate) fn vmi_name(&self, uuid: &str) -> Option<Option<&String>> {
        self.vmis.as_ref().map(|(by_uuid, _)| by_uuid.get(uuid))
    }
}

impl Agent {
    /// Reconcile the ports a config message that touched `touched` may have changed.
    pub(super) fn reconcile_affected(&mut self, touched: &[Key]) {
        self.note_policy_change(touched, false);
        self.index_vmis(touched);
        self.note_policy_change(touched, true);
        if self.deps_changed() || !self.reconcile_touched(touched) {
            self.reconcile_ports();
        }
        self.refresh_deps();
    }

    /// Bring the uuid -> VMI name index up to date with the touched keys (whole, when not
    /// known).
    fn index_vmis(&mut self, touched: &[Key]) {
        let g = &self.graph;
        let Some((by_uuid, by_name)) = self.deps.vmis.as_mut() else {
            let mut by_uuid = BTreeMap::new();
            let mut by_name = BTreeMap::new();
            for (_, n) in g.keys_of(VMI) {
                if let Some(u) = uuid_of(g, n) {
                    by_uuid.entry(u.clone()).or_insert_with(|| n.clone());
                    by_name.insert(n.clone(), u);
                }
            }
            self.deps.vmis = Some((by_uuid, by_name));
            return;
        };
        for (t, n) in touched.iter().filter(|(t, _)| t == VMI) {
            if let Some(old) = by_name.remove(n) {
                if by_uuid.get(&old) == Some(n) {
                    by_uuid.remove(&old);
                }
            }
            if let Some(u) = uuid_of(g, n).filter(|_| g.contains(t, n)) {
                by_uuid.insert(u.clone(), n.clone());
                by_name.insert(n.clone(), u);
            }
        }
    }

    /// Did the global config or a used network / security group change?
    fn deps_changed(&self) -> bool {
        let d = &self.deps;
        if d.global.as_ref() != Some(&crate::model::global(&self.graph)) {
            return true;
        }
        let (vns, sgs) = self.dep_names();
        vns.iter().any(|n| match d.vns.get(*n) {
            Some(old) => *old != crate::model::vn(&self.graph, n),
            None => true,
        }) || sgs.iter().any(|n| match d.sgs.get(*n) {
            Some(old) => *old != crate::model::sg(&self.graph, n).and_then(|s| s.id),
            None => true,
        })
    }

    /// Reconcile the ports the touched keys name; `false` (nothing done) when some touched
    /// instance-ip's VMI cannot be told.
    fn reconcile_touched(&mut self, touched: &[Key]) -> bool {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (t, n) in touched {
            match t.as_str() {
                "virtual-machine-interface" => {
                    names.insert(n.clone());
                }
                "instance-ip" => {
                    let Some(o) = self.graph.object(t, n) else {
                        return false;
                    };
                    for r in o
                        .get("virtual_machine_interface_refs")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        let Some(to) = r.get("to").and_then(Value::as_array) else {
                            return false;
                        };
                        let parts: Vec<&str> = to.iter().filter_map(Value::as_str).collect();
                        names.insert(parts.join(":"));
                    }
                }
                _ => {}
            }
        }
        // the ports not settled yet, and those whose VMI was touched (a programmed port's VMI
        // name is known: `desired` found it)
        let mut ids: BTreeSet<String> = self.deps.unsettled.clone();
        for n in &names {
            ids.extend(self.deps.vmi_ports.get(n).into_iter().flatten().cloned());
        }
        for id in ids {
            self.reconcile_port(&id);
        }
        true
    }

    /// Names of the networks and security groups the ports use.
    fn dep_names(&self) -> (BTreeSet<&String>, BTreeSet<&String>) {
        let vns = self.deps.vn_users.keys().collect();
        let sgs = self.deps.sg_users.keys().collect();
        (vns, sgs)
    }

    /// Whether a port is not programmed or its network and groups are not known.
    pub(super) fn mark_settled(&mut self, id: &str) {
        let unsettled = self
            .ports
            .get(id)
            .is_some_and(|p| p.programmed.is_none() || !self.deps.ports.contains_key(id));
        if unsettled {
            self.deps.unsettled.insert(id.to_string());
        } else {
            self.deps.unsettled.remove(id);
        }
    }

    /// Cache the graph's values now.
    fn refresh_deps(&mut self) {
        let (vns, sgs) = self.dep_names();
        let vns: BTreeMap<String, Option<VnCfg>> = vns
            .into_iter()
            .map(|n| (n.clone(), crate::model::vn(&self.graph, n)))
            .collect();
        let sgs: BTreeMap<String, Option<u32>> = sgs
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    crate::model::sg(&self.graph, n).and_then(|s| s.id),
                )
            })
            .collect();
        self.deps.vns = vns;
        self.deps.sgs = sgs;
        self.deps.global = Some(crate::model::global(&self.graph));
    }

    /// Record what `touched` changes for flow decisions; VMI names are turned into port ids
    /// by the VMI index before (`after` false) and after it is brought up to date.
    fn note_policy_change(&mut self, touched: &[Key], after: bool) {
        let by_name = self.deps.vmis.as_ref().map(|(_, n)| n);
        let ch = &mut self.policy_change;
        for (t, n) in touched {
            match t.as_str() {
                "virtual-network" if !after => {
                    ch.vns.insert(n.clone());
                }
                "security-group" if !after => {
                    ch.sgs.insert(n.clone());
                }
                // an ACL is named after its parent (network or security group)
                "access-control-list" if !after => {
                    if let Some((parent, _)) = n.rsplit_once(':') {
                        ch.vns.insert(parent.to_string());
                        ch.sgs.insert(parent.to_string());
                    }
                }
                VMI => match by_name.and_then(|m| m.get(n)) {
                    Some(u) => {
                        ch.ports.insert(u.clone());
                    }
                    None if after => {
                        // not indexed: the uuid is read from the node itself
                        if let Some(u) = uuid_of(&self.graph, n) {
                            ch.ports.insert(u);
                        }
                    }
                    None => {}
                },
                _ => {}
            }
        }
    }

    /// What config messages changed for flow decisions since the last call (`None`: nothing).
    pub fn take_policy_change(&mut self) -> Option<PolicyChange> {
        let ch = std::mem::take(&mut self.policy_change);
        (!ch.is_empty()).then_some(ch)
    }

    /// The local port whose address is `ip` in VRF `vrf_id`, and its network.
    fn local_port(&self, vrf_id: u32, ip: IpAddr) -> Option<(&str, &str)> {
        self.ports.iter().find_map(|(id, p)| {
            let pr = p.programmed.as_ref()?;
            (pr.vrf_id == vrf_id && IpAddr::V4(pr.ip) == ip).then_some((id.as_str(), &*pr.vn))
        })
    }

    /// What deciding `key` reads (recorded with the decision, for [`Agent::flow_affected`]).
    pub fn flow_deps(&self, key: &FlowKey) -> FlowDeps {
        let mut d = FlowDeps::default();
        for ip in [key.src, key.dst] {
            // a local port's network is its own (what `endpoint` would find, without
            // looking up its ACLs); else the route's
            if let Some((id, vn)) = self.local_port(key.vrf.0, ip) {
                d.ports.push(id.to_string());
                d.vns.push(vn.to_string());
            } else if let Some(vn) = self.endpoint(key.vrf.0, ip).vn {
                d.vns.push(vn);
            }
        }
        d
    }

    /// Whether a flow decided with `deps` may be decided otherwise after `ch`: one of its
    /// networks or ports changed, a security group of one of its ports did, or a changed
    /// port now has one of its addresses.
    pub fn flow_affected(&self, ch: &PolicyChange, key: &FlowKey, deps: &FlowDeps) -> bool {
        ch.all
            || deps.vns.iter().any(|v| ch.vns.contains(v))
            || deps.ports.iter().any(|p| {
                ch.ports.contains(p)
                    || self
                        .deps
                        .ports
                        .get(p)
                        .is_some_and(|(_, sgs)| sgs.iter().any(|s| ch.sgs.contains(s)))
            })
            || ch.ports.iter().any(|p| {
                self.ports
                    .get(p)
                    .and_then(|p| p.programmed.as_ref())
                    .is_some_and(|pr| {
                        pr.vrf_id == key.vrf.0
                            && (IpAddr::V4(pr.ip) == key.src || IpAddr::V4(pr.ip) == key.dst)
                    })
            })
    }
}
