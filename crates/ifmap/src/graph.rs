//! The receiving side's config graph: apply IFMap `<update>`/`<delete>` messages and read
//! back whole objects (node properties + parent + references), in the config API's JSON shape.
//!
//! This is what a vRouter agent keeps (TF's `IFMapAgentParser` + agent tables): nodes by
//! `(type, name)`, links between them.  A node deleted while links still point at it is kept
//! as a bare name until its last link goes (TF keeps such nodes too).

use std::collections::{BTreeMap, BTreeSet};

use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOpKind};
use serde_json::{json, Map, Value};

use crate::codec::{decode_link, decode_node, node_name, split_name, DecodedLink};
use crate::error::{IfmapError, Result};
use crate::linkattr::{attr_link_def, ATTR_VALUE};
use crate::value::decode_fields;
use filament_schema::index;

/// `(type, colon name)`.
pub type Key = (String, String);

/// Nodes and links received so far.
#[derive(Debug, Default, Clone)]
pub struct IfmapGraph {
    /// Node properties (the decoded object) by key.
    nodes: BTreeMap<Key, Map<String, Value>>,
    /// References: `(from, field) -> to -> attr`.
    refs: BTreeMap<(Key, &'static str), BTreeMap<Key, Value>>,
    /// Parent of each child.
    parents: BTreeMap<Key, Key>,
    /// `refs` the other way: target -> `(from, field)` (no scan of every reference).
    back: BTreeMap<Key, BTreeSet<(Key, &'static str)>>,
    /// `parents` the other way: parent -> children.
    kids: BTreeMap<Key, BTreeSet<Key>>,
    /// Link-attr nodes (TF's shape of a reference with an attribute, `linkattr.rs`): the
    /// attribute of each, and the ends linked to it so far.
    attrs: BTreeMap<Key, AttrNode>,
}

/// One link-attr node: its `<value>` (null until received) and its two ends.
#[derive(Debug, Default, Clone)]
struct AttrNode {
    value: Value,
    /// The referring end.
    from: Option<Key>,
    /// The referenced end.
    to: Option<Key>,
}

/// Take `v` out of the set at `k`, dropping the set when empty.
fn unindex<K: Ord, V: Ord>(m: &mut BTreeMap<K, BTreeSet<V>>, k: &K, v: &V) {
    if let Some(s) = m.get_mut(k) {
        s.remove(v);
        if s.is_empty() {
            m.remove(k);
        }
    }
}

fn key(ty: &str, fq: &[String]) -> Key {
    (ty.to_string(), node_name(fq))
}

impl IfmapGraph {
    /// Empty graph.
    pub fn new() -> Self {
        IfmapGraph::default()
    }

    /// Apply every block of a config message; returns the keys of the objects whose JSON may
    /// have changed (in order, no duplicates).  A bad item fails the whole call, after the
    /// items before it were applied.
    pub fn apply(&mut self, iq: &ConfigIq) -> Result<Vec<Key>> {
        let mut touched: Vec<Key> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut touch = |k: Key, touched: &mut Vec<Key>| {
            if seen.insert(k.clone()) {
                touched.push(k);
            }
        };
        for op in &iq.ops {
            for item in &op.items {
                // TF's shape of a reference with an attribute: a node between the two ends
                if self.attr_item(op.kind, item, &mut |k| touch(k, &mut touched))? {
                    continue;
                }
                match (op.kind, item) {
                    (ConfigOpKind::Update, ConfigItem::Node(n)) => {
                        let d = decode_node(n)?;
                        let k = key(d.ty.name, &d.fq_name);
                        self.nodes.insert(k.clone(), d.object);
                        touch(k, &mut touched);
                    }
                    (ConfigOpKind::Delete, ConfigItem::Node(n)) => {
                        let k = (n.id.type_name.clone(), n.id.name.clone());
                        self.nodes.remove(&k);
                        touch(k, &mut touched);
                    }
                    (kind, ConfigItem::Link(l)) => {
                        let add = kind == ConfigOpKind::Update;
                        match decode_link(l)? {
                            DecodedLink::Ref {
                                from_type,
                                from,
                                field,
                                to_type,
                                to,
                                attr,
                            } => {
                                let fk = key(from_type.name, &from);
                                let tk = key(to_type.name, &to);
                                if add {
                                    self.add_ref(&fk, field, &tk, attr);
                                } else {
                                    self.del_ref(&fk, field, &tk);
                                }
                                touch(fk, &mut touched);
                                touch(tk, &mut touched);
                            }
                            DecodedLink::Parent {
                                parent_type,
                                parent,
                                child_type,
                                child,
                            } => {
                                let pk = key(parent_type.name, &parent);
                                let ck = key(child_type.name, &child);
                                let old = if add {
                                    self.kids.entry(pk.clone()).or_default().insert(ck.clone());
                                    self.parents.insert(ck.clone(), pk.clone())
                                } else {
                                    self.parents.remove(&ck)
                                };
                                if let Some(o) = old.filter(|o| !add || *o != pk) {
                                    unindex(&mut self.kids, &o, &ck);
                                }
                                touch(ck, &mut touched);
                                touch(pk, &mut touched);
                            }
                        }
                    }
                }
            }
        }
        Ok(touched)
    }

    fn add_ref(&mut self, fk: &Key, field: &'static str, tk: &Key, attr: Value) {
        let slot = (fk.clone(), field);
        self.back
            .entry(tk.clone())
            .or_default()
            .insert(slot.clone());
        self.refs.entry(slot).or_default().insert(tk.clone(), attr);
    }

    fn del_ref(&mut self, fk: &Key, field: &'static str, tk: &Key) {
        let slot = (fk.clone(), field);
        if let Some(m) = self.refs.get_mut(&slot) {
            unindex(&mut self.back, tk, &slot);
            m.remove(tk);
            if m.is_empty() {
                self.refs.remove(&slot);
            }
        }
    }

    /// A link-attr node or one of its links (`linkattr.rs`): fold it into the reference it
    /// stands for.  `false` if `item` is something else.
    fn attr_item(
        &mut self,
        kind: ConfigOpKind,
        item: &ConfigItem,
        touch: &mut dyn FnMut(Key),
    ) -> Result<bool> {
        let (ak, def, sd_index, end) = match item {
            ConfigItem::Node(n) => match attr_link_def(&n.id.type_name) {
                Some((_, def, i)) => ((n.id.type_name.clone(), n.id.name.clone()), def, i, None),
                None => return Ok(false),
            },
            ConfigItem::Link(l) => {
                let Some(md) = l.metadata.as_ref() else {
                    return Ok(false);
                };
                let Some((_, def, i)) = attr_link_def(&md.type_name) else {
                    return Ok(false);
                };
                // which end is the link-attr node (a link of our own one-link shape has none)
                let (mid, other, mid_on_right) = if l.right.type_name == md.type_name {
                    (&l.right, &l.left, true)
                } else if l.left.type_name == md.type_name {
                    (&l.left, &l.right, false)
                } else {
                    return Ok(false);
                };
                let ak = (mid.type_name.clone(), mid.name.clone());
                let other = (other.type_name.clone(), other.name.clone());
                (ak, def, i, Some((other, mid_on_right)))
            }
        };
        let Some((from_type, ..)) = attr_link_def(&ak.0) else {
            return Ok(false);
        };
        let field = def.field;
        let before = self.attrs.get(&ak).cloned().unwrap_or_default();
        let mut now = before.clone();
        match (kind, item, end) {
            // the attribute itself: <value> holds the struct's fields
            (ConfigOpKind::Update, ConfigItem::Node(n), _) => {
                let sd = index()
                    .struct_def(sd_index)
                    .ok_or_else(|| IfmapError::bad(&ak.0, "known struct", sd_index))?;
                let mut ignored = 0;
                now.value = match n.props.iter().find(|e| e.name == ATTR_VALUE) {
                    Some(v) => Value::Object(decode_fields(sd, v.elements(), &ak.0, &mut ignored)?),
                    None => Value::Null,
                };
            }
            (ConfigOpKind::Delete, ConfigItem::Node(_), _) => now.value = Value::Null,
            // an end: by type when the two types differ, else by side (ours: from ↔ node ↔ to)
            (kind, ConfigItem::Link(_), Some((other, mid_on_right))) => {
                let is_from = if from_type.name == def.target {
                    mid_on_right
                } else {
                    other.0 == from_type.name
                };
                let slot = if is_from { &mut now.from } else { &mut now.to };
                match kind {
                    ConfigOpKind::Update => *slot = Some(other),
                    ConfigOpKind::Delete => *slot = None,
                }
            }
            _ => {}
        }
        // the reference as it was and as it is now
        if let (Some(f), Some(t)) = (&before.from, &before.to) {
            self.del_ref(f, field, t);
            touch(f.clone());
            touch(t.clone());
        }
        if let (Some(f), Some(t)) = (&now.from, &now.to) {
            self.add_ref(f, field, t, now.value.clone());
            touch(f.clone());
            touch(t.clone());
        }
        if now.from.is_none() && now.to.is_none() && now.value.is_null() {
            self.attrs.remove(&ak);
        } else {
            self.attrs.insert(ak, now);
        }
        Ok(true)
    }

    /// Whether the node exists (has been updated and not deleted).
    pub fn contains(&self, ty: &str, name: &str) -> bool {
        self.nodes.contains_key(&(ty.to_string(), name.to_string()))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node's own properties (no parent or references; no copy).
    pub fn props(&self, ty: &str, name: &str) -> Option<&Map<String, Value>> {
        self.nodes.get(&(ty.to_string(), name.to_string()))
    }

    /// Keys of every node of a type (a range of the key order, not a scan).
    pub fn keys_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.nodes
            .range((ty.to_string(), String::new())..)
            .map(|(k, _)| k)
            .take_while(move |(t, _)| t == ty)
    }

    /// The object in the config API's JSON shape: identity, properties, `parent_type` /
    /// `parent_uuid`, and `<stem>_refs: [{"to", "uuid", "attr"}]` (uuid when the referenced
    /// node is known).  `None` if the node is not present.
    pub fn object(&self, ty: &str, name: &str) -> Option<Value> {
        let k = (ty.to_string(), name.to_string());
        let mut m = self.nodes.get(&k)?.clone();
        if let Some(pk) = self.parents.get(&k) {
            m.insert("parent_type".into(), json!(pk.0));
            if let Some(u) = self.nodes.get(pk).and_then(|p| p.get("uuid")) {
                m.insert("parent_uuid".into(), u.clone());
            }
        }
        for ((fk, field), targets) in self.refs.range((k.clone(), "")..) {
            if *fk != k {
                break;
            }
            let list: Vec<Value> = targets
                .iter()
                .map(|(tk, attr)| {
                    let mut r = Map::new();
                    r.insert("to".into(), json!(split_name(&tk.0, &tk.1)));
                    if let Some(u) = self.nodes.get(tk).and_then(|t| t.get("uuid")) {
                        r.insert("uuid".into(), u.clone());
                    }
                    r.insert("attr".into(), attr.clone());
                    Value::Object(r)
                })
                .collect();
            m.insert((*field).to_string(), Value::Array(list));
        }
        Some(Value::Object(m))
    }

    /// Objects referring to `(ty, name)` through any reference: `(from key, field)`.
    pub fn referrers(&self, ty: &str, name: &str) -> Vec<(Key, &'static str)> {
        let k = (ty.to_string(), name.to_string());
        self.back
            .get(&k)
            .into_iter()
            .flatten()
            .map(|(f, field)| (f.clone(), *field))
            .collect()
    }

    /// Children of `(ty, name)`.
    pub fn children(&self, ty: &str, name: &str) -> Vec<Key> {
        let k = (ty.to_string(), name.to_string());
        self.kids.get(&k).into_iter().flatten().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use filament_wire_xmpp::{ConfigLink, ConfigOp};
    use serde_json::json;

    use super::*;
    use crate::codec::{encode_parent_link, encode_ref_link};

    fn fq(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    fn send(g: &mut IfmapGraph, kind: ConfigOpKind, l: ConfigLink) {
        let iq = ConfigIq::to_agent(
            "a",
            vec![ConfigOp {
                kind,
                items: vec![ConfigItem::Link(l)],
            }],
        );
        g.apply(&iq).unwrap();
    }

    /// The reverse indexes answer what a scan of every reference and parent answers, through
    /// adds, re-parenting and deletes.
    #[test]
    fn reverse_indexes_match_a_scan() {
        let mut g = IfmapGraph::new();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let vn = |j: u64| fq(&["d", "p", &format!("n{j}")]);
        for _ in 0..400 {
            let kind = if next(3) == 0 {
                ConfigOpKind::Delete
            } else {
                ConfigOpKind::Update
            };
            let j = next(3);
            let l = if next(2) == 0 {
                let vmi = fq(&["d", "p", &format!("v{}", next(4))]);
                encode_ref_link(
                    "virtual-machine-interface",
                    &vmi,
                    "virtual_network_refs",
                    &vn(j),
                    &Value::Null,
                )
                .unwrap()
            } else {
                // a network under one of two projects (re-parented by the next update)
                let obj = json!({"fq_name": ["d", "p", format!("n{j}")], "parent_type": "project"});
                let mut l = encode_parent_link("virtual-network", obj.as_object().unwrap())
                    .unwrap()
                    .unwrap();
                l.left.name = format!("d:p{}", next(2));
                l
            };
            send(&mut g, kind, l);
            for j in 0..3 {
                let name = vn(j).join(":");
                let k = ("virtual-network".to_string(), name.clone());
                let scan: Vec<(Key, &'static str)> = g
                    .refs
                    .iter()
                    .filter(|(_, t)| t.contains_key(&k))
                    .map(|((f, field), _)| (f.clone(), *field))
                    .collect();
                assert_eq!(g.referrers("virtual-network", &name), scan);
            }
            for p in ["d:p0", "d:p1"] {
                let k = ("project".to_string(), p.to_string());
                let scan: Vec<Key> = g
                    .parents
                    .iter()
                    .filter(|(_, q)| **q == k)
                    .map(|(c, _)| c.clone())
                    .collect();
                assert_eq!(g.children("project", p), scan);
            }
        }
        assert!(!g.parents.is_empty() && !g.refs.is_empty());
    }
}
