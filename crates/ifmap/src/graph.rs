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
use crate::error::Result;

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
                                let slot = (fk.clone(), field);
                                if add {
                                    self.refs.entry(slot).or_default().insert(tk.clone(), attr);
                                } else if let Some(m) = self.refs.get_mut(&slot) {
                                    m.remove(&tk);
                                    if m.is_empty() {
                                        self.refs.remove(&slot);
                                    }
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
                                if add {
                                    self.parents.insert(ck.clone(), pk.clone());
                                } else {
                                    self.parents.remove(&ck);
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

    /// Keys of every node of a type.
    pub fn keys_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.nodes.keys().filter(move |(t, _)| t == ty)
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
        self.refs
            .iter()
            .filter(|(_, t)| t.contains_key(&k))
            .map(|((f, field), _)| (f.clone(), *field))
            .collect()
    }

    /// Children of `(ty, name)`.
    pub fn children(&self, ty: &str, name: &str) -> Vec<Key> {
        let k = (ty.to_string(), name.to_string());
        self.parents
            .iter()
            .filter(|(_, p)| **p == k)
            .map(|(c, _)| c.clone())
            .collect()
    }
}
