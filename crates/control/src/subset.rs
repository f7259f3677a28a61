//! The config each agent gets (tf-facts §2.6): what is reachable from its `virtual-router`
//! node and from the virtual machines it subscribed to, as IFMap nodes and links, and the
//! update/delete messages that bring an agent from what it has to what it should have.
//!
//! Walk (TF's agent filter, reduced to what our agent uses):
//! ```text
//!  virtual-router ─> global-system-config, global-vrouter-config, network-ipams (vrouter refs)
//!        └─> virtual-machines (vrouter refs + subscribed) ─> VMIs (refs to / children of the VM)
//!              VMI ─> virtual-network, routing-instance, security-groups, instance-ips (back-refs)
//!              virtual-network ─> routing-instances, ACLs (children), network-ipams (refs)
//!              security-group ─> ACLs (children)
//! ```
//! Recompute and diff: level-triggered, so a restart or a missed event heals itself.  A link
//! is sent only when both of its nodes are in the subset (as TF does).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use filament_config::StoredObj;
use filament_ifmap::node_name;
use filament_wire_xmpp::{ConfigItem, ConfigLink, ConfigNode, ConfigOp, ConfigOpKind};

use crate::config::{ConfigGraph, Encoded};

#[cfg(test)]
mod prop_tests;
mod tracker;
pub use tracker::Tracker;

/// `(type, colon name)` of a node.
pub type NodeKey = (String, String);
/// `(metadata, left type, left name, right type, right name)` of a link.
pub type LinkKey = (String, String, String, String, String);

/// Most items in one config message.
pub const MAX_ITEMS_PER_MESSAGE: usize = 256;

/// One object's encoding, shared with the graph's cache (no copy per agent and change).
type Shared = Arc<(ConfigNode, Vec<ConfigLink>)>;

/// What one agent has been sent.
#[derive(Debug, Default, Clone)]
pub struct Subset {
    /// Nodes by key: the encoding holding the node.
    nodes: BTreeMap<NodeKey, Shared>,
    /// Links by key: the encoding holding the link, and its index in the links.
    links: BTreeMap<LinkKey, (Shared, usize)>,
    /// Objects of the subset present in the graph: their name and encoding.
    members: HashMap<String, (NodeKey, Encoded)>,
    /// Names of the members by type, counted (a link is sent when both its ends are here).
    names: HashMap<String, HashMap<String, usize>>,
    /// Every link of a member, by each of its ends: `(member uuid, index in its links)`.
    ends: HashMap<NodeKey, HashSet<(String, usize)>>,
}

impl Subset {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Whether both hold the same nodes and links (what an agent was sent).
    pub fn same_content(&self, other: &Subset) -> bool {
        self.nodes.len() == other.nodes.len()
            && self.links.len() == other.links.len()
            && self
                .nodes
                .iter()
                .zip(&other.nodes)
                .all(|((ka, a), (kb, b))| ka == kb && same_node(a, b))
            && self
                .links
                .iter()
                .zip(&other.links)
                .all(|((ka, a), (kb, b))| ka == kb && same_link(a, b))
    }

    fn has(&self, ty: &str, name: &str) -> bool {
        self.names.get(ty).is_some_and(|m| m.contains_key(name))
    }

    /// Count a member's name in (`+1`) or out; whether the name appeared or went.
    fn count_name(&mut self, (ty, name): &NodeKey, up: bool) -> bool {
        let m = self.names.entry(ty.clone()).or_default();
        let n = m.entry(name.clone()).or_default();
        if up {
            *n += 1;
            *n == 1
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(name);
                true
            } else {
                false
            }
        }
    }

    fn index_link(&mut self, uuid: &str, i: usize, l: &ConfigLink) {
        for end in [&l.left, &l.right] {
            self.ends
                .entry((end.type_name.clone(), end.name.clone()))
                .or_default()
                .insert((uuid.to_string(), i));
        }
    }
}

fn node_of(e: &Shared) -> &ConfigNode {
    &e.0
}

fn link_of((e, i): &(Shared, usize)) -> Option<&ConfigLink> {
    e.1.get(*i)
}

/// The same node: the same encoding (pointer), or equal.
fn same_node(a: &Shared, b: &Shared) -> bool {
    Arc::ptr_eq(a, b) || node_of(a) == node_of(b)
}

/// The same link: the same encoding and index, or equal.
fn same_link(a: &(Shared, usize), b: &(Shared, usize)) -> bool {
    (Arc::ptr_eq(&a.0, &b.0) && a.1 == b.1) || link_of(a) == link_of(b)
}

/// What one root of the walk reaches, and the uuids whose entries (object, referrers,
/// children) the walk read: the closure can only change when one of those is touched
/// ([`crate::config::Changes::touched`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Uuids reached.
    pub uuids: BTreeSet<String>,
    /// Uuids read.
    pub deps: BTreeSet<String>,
    /// The base's virtual machines (`virtual_machine_refs` of the virtual-router), roots of
    /// their own closures.
    pub vms: BTreeSet<String>,
}

const VR: &str = "virtual-router";
const GSC: &str = "global-system-config";
const GVC: &str = "global-vrouter-config";
const VM: &str = "virtual-machine";
const VMI: &str = "virtual-machine-interface";

/// Types whose objects the base finds by name or type rather than by uuid: a change of any
/// object of these types recomputes the base.
pub const BASE_TYPES: [&str; 3] = [VR, GSC, GVC];

/// Targets of one reference field, every target uuid (present or not) recorded as read.
fn targets<'a>(
    g: &'a ConfigGraph,
    o: &'a StoredObj,
    field: &str,
    deps: &mut BTreeSet<String>,
) -> Vec<&'a StoredObj> {
    for l in o.refs.get(field).into_iter().flatten() {
        deps.insert(l.uuid.clone());
    }
    g.targets(o, field).into_iter().map(|(t, _)| t).collect()
}

/// The virtual-router, global-system-config, global-vrouter-configs and the router's
/// IPAMs; `vms` are the router's virtual machines.  Empty when the router is not there.
pub fn base_closure(g: &ConfigGraph, vrouter: &str) -> Closure {
    let mut c = Closure::default();
    let gsc_fq = ["default-global-system-config".to_string()];
    let Some(vr) = g.lookup(VR, &[gsc_fq[0].clone(), vrouter.to_string()]) else {
        return c;
    };
    c.deps.insert(vr.uuid.clone());
    c.uuids.insert(vr.uuid.clone());
    if let Some(gsc) = g.lookup(GSC, &gsc_fq) {
        c.uuids.insert(gsc.uuid.clone());
    }
    for gvc in g.of_type(GVC) {
        c.uuids.insert(gvc.uuid.clone());
    }
    for ipam in targets(g, vr, "network_ipam_refs", &mut c.deps) {
        c.uuids.insert(ipam.uuid.clone());
    }
    for vm in targets(g, vr, "virtual_machine_refs", &mut c.deps) {
        c.vms.insert(vm.uuid.clone());
    }
    c
}

/// What one virtual machine reaches: its VMIs (referring to it or its children) and, per
/// VMI, routing instances, instance-ips, security groups with their ACLs, networks with
/// their routing instances, ACLs and IPAMs.
pub fn vm_closure(g: &ConfigGraph, vm_uuid: &str) -> Closure {
    let mut c = Closure::default();
    c.deps.insert(vm_uuid.to_string());
    let Some(vm) = g.get(vm_uuid) else {
        return c;
    };
    let out = &mut c.uuids;
    let deps = &mut c.deps;
    out.insert(vm.uuid.clone());
    let vmis = g.referrers(&vm.uuid, VMI).chain(g.children(&vm.uuid, VMI));
    for vmi in vmis {
        if !out.insert(vmi.uuid.clone()) {
            continue;
        }
        deps.insert(vmi.uuid.clone());
        for ri in targets(g, vmi, "routing_instance_refs", deps) {
            out.insert(ri.uuid.clone());
        }
        for iip in g.referrers(&vmi.uuid, "instance-ip") {
            out.insert(iip.uuid.clone());
        }
        for sg in targets(g, vmi, "security_group_refs", deps) {
            deps.insert(sg.uuid.clone());
            out.insert(sg.uuid.clone());
            for acl in g.children(&sg.uuid, "access-control-list") {
                out.insert(acl.uuid.clone());
            }
        }
        for vn in targets(g, vmi, "virtual_network_refs", deps) {
            deps.insert(vn.uuid.clone());
            out.insert(vn.uuid.clone());
            for ri in g.children(&vn.uuid, "routing-instance") {
                out.insert(ri.uuid.clone());
            }
            for acl in g.children(&vn.uuid, "access-control-list") {
                out.insert(acl.uuid.clone());
            }
            for ipam in targets(g, vn, "network_ipam_refs", deps) {
                out.insert(ipam.uuid.clone());
            }
        }
    }
    c
}

/// Whether `uuid` roots a virtual machine closure: the router is there and the VM is one of
/// its `virtual_machine_refs`, or a subscribed virtual machine.
pub fn is_root(g: &ConfigGraph, base: &Closure, vms: &BTreeSet<String>, uuid: &str) -> bool {
    !base.uuids.is_empty()
        && (base.vms.contains(uuid)
            || (vms.contains(uuid) && g.get(uuid).is_some_and(|o| o.ty == VM)))
}

/// Uuids reachable for an agent, from scratch: the base and the closure of every root.
pub fn reachable(g: &ConfigGraph, vrouter: &str, vms: &BTreeSet<String>) -> BTreeSet<String> {
    let base = base_closure(g, vrouter);
    let mut out = base.uuids.clone();
    for vm in base.vms.iter().chain(vms) {
        if is_root(g, &base, vms, vm) {
            out.extend(vm_closure(g, vm).uuids);
        }
    }
    out
}

/// The graph's name of an object, as links name their ends.
fn name_key(o: &StoredObj) -> NodeKey {
    (o.ty.clone(), node_name(&o.fq_name))
}

/// Encode a set of objects; links whose other end is outside the set are left out.
/// Objects the encoder refuses are skipped and counted.
pub fn encode(g: &ConfigGraph, uuids: &BTreeSet<String>) -> (Subset, usize) {
    let mut s = Subset::default();
    let mut refused = 0;
    for o in uuids.iter().filter_map(|u| g.get(u)) {
        s.count_name(&name_key(o), true);
    }
    for u in uuids {
        let Some(o) = g.get(u) else { continue };
        let enc = g.encoded(o);
        match &enc {
            Some(e) => {
                for (i, l) in e.1.iter().enumerate() {
                    s.index_link(u, i, l);
                    if s.has(&l.left.type_name, &l.left.name)
                        && s.has(&l.right.type_name, &l.right.name)
                    {
                        s.links.insert(link_key(l), (e.clone(), i));
                    }
                }
                let node = &e.0;
                s.nodes
                    .insert((node.id.type_name.clone(), node.id.name.clone()), e.clone());
            }
            None => refused += 1,
        }
        s.members.insert(u.clone(), (name_key(o), enc));
    }
    (s, refused)
}

fn link_key(l: &ConfigLink) -> LinkKey {
    (
        l.metadata
            .as_ref()
            .map(|m| m.type_name.clone())
            .unwrap_or_default(),
        l.left.type_name.clone(),
        l.left.name.clone(),
        l.right.type_name.clone(),
        l.right.name.clone(),
    )
}

/// The messages' blocks that turn `old` into `new`: updates (nodes, then links) and deletes
/// (links, then nodes), each chunked to [`MAX_ITEMS_PER_MESSAGE`] items.  Each returned
/// vector is one message.
pub fn diff(old: &Subset, new: &Subset) -> Vec<Vec<ConfigOp>> {
    let mut upd: Vec<ConfigItem> = Vec::new();
    for (k, n) in &new.nodes {
        if !old.nodes.get(k).is_some_and(|o| same_node(o, n)) {
            upd.push(ConfigItem::Node(node_of(n).clone()));
        }
    }
    for (k, l) in &new.links {
        if !old.links.get(k).is_some_and(|o| same_link(o, l)) {
            upd.extend(link_of(l).cloned().map(ConfigItem::Link));
        }
    }
    let mut del: Vec<ConfigItem> = Vec::new();
    for (k, l) in &old.links {
        let Some(l) = link_of(l) else { continue };
        if !new.links.contains_key(k) {
            del.push(ConfigItem::Link(ConfigLink {
                metadata: l.metadata.clone(),
                ..l.clone()
            }));
        }
    }
    for (k, n) in &old.nodes {
        let n = node_of(n);
        if !new.nodes.contains_key(k) {
            del.push(ConfigItem::Node(ConfigNode {
                id: n.id.clone(),
                props: Vec::new(),
            }));
        }
    }
    messages(upd, del)
}

/// Updates then deletes, each chunked to [`MAX_ITEMS_PER_MESSAGE`] items per message.
fn messages(upd: Vec<ConfigItem>, del: Vec<ConfigItem>) -> Vec<Vec<ConfigOp>> {
    let mut msgs = Vec::new();
    for (kind, items) in [(ConfigOpKind::Update, upd), (ConfigOpKind::Delete, del)] {
        for chunk in items.chunks(MAX_ITEMS_PER_MESSAGE) {
            msgs.push(vec![ConfigOp {
                kind,
                items: chunk.to_vec(),
            }]);
        }
    }
    msgs
}
