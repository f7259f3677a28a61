//! Incremental upkeep of one agent's config subset (issue 6: port add → route at a remote
//! agent at 1,000 ports).  From what changed in the config graph ([`Changes`]) or in the
//! agent's virtual-machine subscriptions, only the affected roots of the walk
//! ([`super::reachable`]) are walked again and only the affected objects re-encoded; the
//! messages are those the full recompute (`reachable` + `encode` + `diff`) would send,
//! looked for only among the keys that can have changed.  The full recompute
//! ([`Tracker::full`]) stays for a (re)connect, a changed virtual-router subscription and a
//! config feed resync, so an agent's config still heals itself.
//!
//! Why the result is the full recompute's:
//! - a closure ([`Closure`]) reads only the object, referrer set and child set of the uuids
//!   in its `deps`, and a graph change alters exactly those entries of the uuids in
//!   [`Changes::touched`]: a closure none of whose deps was touched is unchanged; the base
//!   also finds objects by name and type, so a change to an object of a [`BASE_TYPES`] type
//!   recomputes it;
//! - an object's encoding is dropped by the graph exactly for [`Changes::reencoded`];
//! - a link is in the subset iff its owner is and both its ends' names are: the links to
//!   check again are those of the owners encoded again and those with an end whose name came
//!   or went (`Subset::ends`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use filament_wire_xmpp::{ConfigItem, ConfigNode, ConfigOp};

use super::{
    base_closure, diff, encode, is_root, link_key, link_of, messages, name_key, node_of, same_link,
    same_node, vm_closure, Closure, LinkKey, NodeKey, Shared, Subset, BASE_TYPES,
};
use crate::config::{Changes, ConfigGraph};

/// One agent's walk, kept between changes, and what it has been sent.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    /// The virtual-router subscribed to (`None`: nothing computed yet).
    vr: Option<String>,
    /// Virtual machines subscribed to.
    vms: BTreeSet<String>,
    /// The base closure.
    base: Closure,
    /// Closures of the virtual machines, by VM uuid.
    roots: BTreeMap<String, Closure>,
    /// uuid → VM roots whose closure read it.
    readers: HashMap<String, BTreeSet<String>>,
    /// uuid → how many closures (the base included) reach it.
    count: HashMap<String, usize>,
    /// What the agent has been sent.
    sent: Subset,
}

/// Messages to send and the number of objects the encoder refused.
pub type Synced = (Vec<Vec<ConfigOp>>, usize);

/// The keys one update touched, with the values they had before it.
#[derive(Debug, Default)]
struct Delta {
    nodes: BTreeMap<NodeKey, Option<Shared>>,
    links: BTreeMap<LinkKey, Option<(Shared, usize)>>,
    /// Links to check again: `(owner uuid, index)`.
    recheck: HashSet<(String, usize)>,
    /// Member names that came or went.
    names: HashSet<NodeKey>,
    refused: usize,
}

impl Delta {
    fn note_node(&mut self, nodes: &BTreeMap<NodeKey, Shared>, k: &NodeKey) {
        self.nodes
            .entry(k.clone())
            .or_insert_with(|| nodes.get(k).cloned());
    }

    fn note_link(&mut self, links: &BTreeMap<LinkKey, (Shared, usize)>, k: &LinkKey) {
        self.links
            .entry(k.clone())
            .or_insert_with(|| links.get(k).cloned());
    }
}

impl Tracker {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Tracker::default()
    }

    /// The virtual-router the subset was computed for.
    pub fn vrouter(&self) -> Option<&str> {
        self.vr.as_deref()
    }

    /// What the agent has been sent.
    pub fn sent(&self) -> &Subset {
        &self.sent
    }

    /// Level-triggered: walk and encode everything from scratch and send the difference from
    /// what was sent.
    pub fn full(&mut self, g: &ConfigGraph, vr: &str, vms: &BTreeSet<String>) -> Synced {
        let mut t = Tracker {
            vr: Some(vr.to_string()),
            vms: vms.clone(),
            base: base_closure(g, vr),
            ..Tracker::default()
        };
        let mut moved = HashSet::new();
        let base = t.base.uuids.clone();
        t.count(&base, true, &mut moved);
        let cands: Vec<String> = t.base.vms.iter().chain(vms).cloned().collect();
        for r in cands {
            if !t.roots.contains_key(&r) && is_root(g, &t.base, &t.vms, &r) {
                let c = vm_closure(g, &r);
                t.add_root(r, c, &mut moved);
            }
        }
        let uuids: BTreeSet<String> = t.count.keys().cloned().collect();
        let (sent, refused) = encode(g, &uuids);
        t.sent = sent;
        let msgs = diff(&self.sent, &t.sent);
        *self = t;
        (msgs, refused)
    }

    /// The agent subscribed to (`sub`) or unsubscribed from a virtual machine.
    pub fn vm(&mut self, g: &ConfigGraph, vm: &str, sub: bool) -> Synced {
        if sub {
            self.vms.insert(vm.to_string());
        } else {
            self.vms.remove(vm);
        }
        self.refresh(g, &Changes::default(), BTreeSet::from([vm.to_string()]))
    }

    /// The config graph changed.
    pub fn update(&mut self, g: &ConfigGraph, ch: &Changes) -> Synced {
        self.refresh(g, ch, BTreeSet::new())
    }

    fn refresh(&mut self, g: &ConfigGraph, ch: &Changes, mut cands: BTreeSet<String>) -> Synced {
        let Some(vr) = self.vr.clone() else {
            return (Vec::new(), 0);
        };
        // uuids whose count came or went
        let mut moved: HashSet<String> = HashSet::new();
        let base_hit = ch.types.iter().any(|t| BASE_TYPES.contains(&t.as_str()))
            || ch.touched.iter().any(|t| self.base.deps.contains(t));
        if base_hit {
            let new = base_closure(g, &vr);
            if self.base.uuids.is_empty() != new.uuids.is_empty() {
                // the router came or went: every root may have
                cands.extend(self.roots.keys().cloned());
                cands.extend(self.vms.iter().cloned());
                cands.extend(new.vms.iter().cloned());
            } else {
                cands.extend(self.base.vms.symmetric_difference(&new.vms).cloned());
            }
            let old = std::mem::replace(&mut self.base, new);
            self.count(&old.uuids, false, &mut moved);
            let now = self.base.uuids.clone();
            self.count(&now, true, &mut moved);
        }
        for t in &ch.touched {
            if let Some(rs) = self.readers.get(t) {
                cands.extend(rs.iter().cloned());
            }
            // a subscribed uuid that is not a root yet may have become a virtual machine
            if self.vms.contains(t) {
                cands.insert(t.clone());
            }
        }
        for r in cands {
            self.remove_root(&r, &mut moved);
            if is_root(g, &self.base, &self.vms, &r) {
                let c = vm_closure(g, &r);
                self.add_root(r, c, &mut moved);
            }
        }
        // objects to encode again: those that came or went, and members whose encoding may
        // have changed
        let mut redo: BTreeSet<String> = moved.into_iter().collect();
        redo.extend(
            ch.reencoded
                .iter()
                .filter(|u| self.count.contains_key(*u) || self.sent.members.contains_key(*u))
                .cloned(),
        );
        let mut d = Delta::default();
        for u in &redo {
            self.sent.drop_member(u, &mut d);
            if self.count.contains_key(u) {
                self.sent.add_member(g, u, &mut d);
            }
        }
        self.sent.settle(&mut d);
        (self.sent.delta_messages(&d), d.refused)
    }

    fn count(&mut self, uuids: &BTreeSet<String>, up: bool, moved: &mut HashSet<String>) {
        for u in uuids {
            if up {
                let n = self.count.entry(u.clone()).or_default();
                *n += 1;
                if *n == 1 {
                    moved.insert(u.clone());
                }
            } else if let Some(n) = self.count.get_mut(u) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.count.remove(u);
                    moved.insert(u.clone());
                }
            }
        }
    }

    fn add_root(&mut self, r: String, c: Closure, moved: &mut HashSet<String>) {
        self.count(&c.uuids, true, moved);
        for d in &c.deps {
            self.readers.entry(d.clone()).or_default().insert(r.clone());
        }
        self.roots.insert(r, c);
    }

    fn remove_root(&mut self, r: &str, moved: &mut HashSet<String>) {
        let Some(c) = self.roots.remove(r) else {
            return;
        };
        self.count(&c.uuids, false, moved);
        for d in &c.deps {
            if let Some(s) = self.readers.get_mut(d) {
                s.remove(r);
                if s.is_empty() {
                    self.readers.remove(d);
                }
            }
        }
    }
}

impl Subset {
    /// Take a member out: its name, node and links.
    fn drop_member(&mut self, u: &str, d: &mut Delta) {
        let Some((key, enc)) = self.members.remove(u) else {
            return;
        };
        if self.count_name(&key, false) {
            d.names.insert(key);
        }
        let Some(e) = enc else { return };
        let nk = (e.0.id.type_name.clone(), e.0.id.name.clone());
        if self.nodes.get(&nk).is_some_and(|n| Arc::ptr_eq(n, &e)) {
            d.note_node(&self.nodes, &nk);
            self.nodes.remove(&nk);
        }
        for (i, l) in e.1.iter().enumerate() {
            for end in [&l.left, &l.right] {
                let k = (end.type_name.clone(), end.name.clone());
                if let Some(s) = self.ends.get_mut(&k) {
                    s.remove(&(u.to_string(), i));
                    if s.is_empty() {
                        self.ends.remove(&k);
                    }
                }
            }
            let lk = link_key(l);
            if self
                .links
                .get(&lk)
                .is_some_and(|(x, j)| Arc::ptr_eq(x, &e) && *j == i)
            {
                d.note_link(&self.links, &lk);
                self.links.remove(&lk);
            }
        }
    }

    /// Put a member in as the graph has it now; its links are checked in `settle`.
    fn add_member(&mut self, g: &ConfigGraph, u: &str, d: &mut Delta) {
        let Some(o) = g.get(u) else { return };
        let key = name_key(o);
        if self.count_name(&key, true) {
            d.names.insert(key.clone());
        }
        let enc = g.encoded(o);
        match &enc {
            None => d.refused += 1,
            Some(e) => {
                let nk = (e.0.id.type_name.clone(), e.0.id.name.clone());
                d.note_node(&self.nodes, &nk);
                self.nodes.insert(nk, e.clone());
                for (i, l) in e.1.iter().enumerate() {
                    self.index_link(u, i, l);
                    d.recheck.insert((u.to_string(), i));
                }
            }
        }
        self.members.insert(u.to_string(), (key, enc));
    }

    /// Links of the changed members and links to names that came or went: in iff both
    /// ends' names are members'.
    fn settle(&mut self, d: &mut Delta) {
        for k in &d.names {
            if let Some(s) = self.ends.get(k) {
                d.recheck.extend(s.iter().cloned());
            }
        }
        for (u, i) in std::mem::take(&mut d.recheck) {
            let Some(e) = self.members.get(&u).and_then(|(_, e)| e.clone()) else {
                continue;
            };
            let Some(l) = e.1.get(i) else { continue };
            let lk = link_key(l);
            let want = self.has(&l.left.type_name, &l.left.name)
                && self.has(&l.right.type_name, &l.right.name);
            let mine = self
                .links
                .get(&lk)
                .is_some_and(|(x, j)| Arc::ptr_eq(x, &e) && *j == i);
            if want && !mine {
                d.note_link(&self.links, &lk);
                self.links.insert(lk, (e.clone(), i));
            } else if !want && mine {
                d.note_link(&self.links, &lk);
                self.links.remove(&lk);
            }
        }
    }

    /// What [`diff`] would send from the old values in `d` to now, looked for among the
    /// keys in `d` only.
    fn delta_messages(&self, d: &Delta) -> Vec<Vec<ConfigOp>> {
        let mut upd = Vec::new();
        for (k, old) in &d.nodes {
            if let Some(n) = self.nodes.get(k) {
                if !old.as_ref().is_some_and(|o| same_node(o, n)) {
                    upd.push(ConfigItem::Node(node_of(n).clone()));
                }
            }
        }
        for (k, old) in &d.links {
            if let Some(l) = self.links.get(k) {
                if !old.as_ref().is_some_and(|o| same_link(o, l)) {
                    upd.extend(link_of(l).cloned().map(ConfigItem::Link));
                }
            }
        }
        let mut del = Vec::new();
        for (k, old) in &d.links {
            if let Some(o) = old.as_ref().and_then(link_of) {
                if !self.links.contains_key(k) {
                    del.push(ConfigItem::Link(o.clone()));
                }
            }
        }
        for (k, old) in &d.nodes {
            if let Some(o) = old {
                if !self.nodes.contains_key(k) {
                    del.push(ConfigItem::Node(ConfigNode {
                        id: node_of(o).id.clone(),
                        props: Vec::new(),
                    }));
                }
            }
        }
        messages(upd, del)
    }
}
