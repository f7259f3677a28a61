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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use filament_config::StoredObj;
use filament_ifmap::node_name;
use filament_wire_xmpp::{ConfigItem, ConfigLink, ConfigNode, ConfigOp, ConfigOpKind};

use crate::config::ConfigGraph;

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

/// Uuids reachable for an agent.
pub fn reachable(g: &ConfigGraph, vrouter: &str, vms: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    let add = |o: &StoredObj, out: &mut BTreeSet<String>| out.insert(o.uuid.clone());
    let gsc_fq = ["default-global-system-config".to_string()];
    let Some(vr) = g.lookup("virtual-router", &[gsc_fq[0].clone(), vrouter.to_string()]) else {
        return out;
    };
    add(vr, &mut out);
    if let Some(gsc) = g.lookup("global-system-config", &gsc_fq) {
        add(gsc, &mut out);
    }
    for gvc in g.of_type("global-vrouter-config") {
        add(gvc, &mut out);
    }
    for (ipam, _) in g.targets(vr, "network_ipam_refs") {
        add(ipam, &mut out);
    }
    let mut vm_list: Vec<&StoredObj> = g
        .targets(vr, "virtual_machine_refs")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    vm_list.extend(
        vms.iter()
            .filter_map(|u| g.get(u))
            .filter(|o| o.ty == "virtual-machine"),
    );
    for vm in vm_list {
        add(vm, &mut out);
        let vmis = g
            .referrers(&vm.uuid, "virtual-machine-interface")
            .chain(g.children(&vm.uuid, "virtual-machine-interface"));
        for vmi in vmis {
            if !add(vmi, &mut out) {
                continue;
            }
            for (ri, _) in g.targets(vmi, "routing_instance_refs") {
                add(ri, &mut out);
            }
            for iip in g.referrers(&vmi.uuid, "instance-ip") {
                add(iip, &mut out);
            }
            for (sg, _) in g.targets(vmi, "security_group_refs") {
                if add(sg, &mut out) {
                    for acl in g.children(&sg.uuid, "access-control-list") {
                        add(acl, &mut out);
                    }
                }
            }
            for (vn, _) in g.targets(vmi, "virtual_network_refs") {
                if !add(vn, &mut out) {
                    continue;
                }
                for ri in g.children(&vn.uuid, "routing-instance") {
                    add(ri, &mut out);
                }
                for acl in g.children(&vn.uuid, "access-control-list") {
                    add(acl, &mut out);
                }
                for (ipam, _) in g.targets(vn, "network_ipam_refs") {
                    add(ipam, &mut out);
                }
            }
        }
    }
    out
}

/// Encode a set of objects; links whose other end is outside the set are left out.
/// Objects the encoder refuses are skipped and counted.
pub fn encode(g: &ConfigGraph, uuids: &BTreeSet<String>) -> (Subset, usize) {
    let mut s = Subset::default();
    let mut refused = 0;
    // node names by type (looked up without building a key per link end)
    let mut names: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for o in uuids.iter().filter_map(|u| g.get(u)) {
        names
            .entry(o.ty.as_str())
            .or_default()
            .insert(node_name(&o.fq_name));
    }
    let has = |ty: &str, name: &str| names.get(ty).is_some_and(|s| s.contains(name));
    for u in uuids {
        let Some(o) = g.get(u) else { continue };
        match g.encoded(o) {
            Some(e) => {
                for (i, l) in e.1.iter().enumerate() {
                    let other_ok = has(&l.left.type_name, &l.left.name)
                        && has(&l.right.type_name, &l.right.name);
                    if other_ok {
                        s.links.insert(link_key(l), (e.clone(), i));
                    }
                }
                let node = &e.0;
                s.nodes
                    .insert((node.id.type_name.clone(), node.id.name.clone()), e);
            }
            None => refused += 1,
        }
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
