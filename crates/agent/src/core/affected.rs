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

use filament_ifmap::Key;
use serde_json::Value;

use super::Agent;
use crate::model::{GlobalCfg, VnCfg};

/// What the ports' desired states were computed from.
#[derive(Debug, Default)]
pub(crate) struct Deps {
    /// port id -> (network name, security-group names) of its VMI
    pub(crate) ports: BTreeMap<String, (String, Vec<String>)>,
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

    /// The node name of the VMI with this uuid: `Some(None)` when there is none, `None` when
    /// not known (the caller scans).
    pub(crate) fn vmi_name(&self, uuid: &str) -> Option<Option<&String>> {
        self.vmis.as_ref().map(|(by_uuid, _)| by_uuid.get(uuid))
    }
}

impl Agent {
    /// Reconcile the ports a config message that touched `touched` may have changed.
    pub(super) fn reconcile_affected(&mut self, touched: &[Key]) {
        self.index_vmis(touched);
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
        let ids: Vec<String> = self
            .ports
            .iter()
            .filter(|(id, p)| {
                p.programmed.is_none()
                    || !self.deps.ports.contains_key(*id)
                    || self.vmi_names.get(*id).is_none_or(|n| names.contains(n))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.reconcile_port(&id);
        }
        true
    }

    /// Names of the networks and security groups the ports use.
    fn dep_names(&self) -> (BTreeSet<&String>, BTreeSet<&String>) {
        let vns = self.deps.ports.values().map(|(v, _)| v).collect();
        let sgs = self.deps.ports.values().flat_map(|(_, s)| s).collect();
        (vns, sgs)
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
}
