//! Config objects ⇄ IFMap nodes and links (tf-facts §2.6).
//!
//! Objects are in the JSON shape the config API returns (`GET /<type>/<uuid>`, the
//! `vnc_api` shape): `uuid`, `fq_name`, `parent_type`, properties at the top level, and
//! references as `<stem>_refs: [{"to": [...], "attr": ...}]`.  One object becomes
//! * a node `<node type="<type>"><name><fq:name></name> …property elements…</node>`
//!   (the uuid travels inside `<id-perms><uuid><uuid-mslong/><uuid-lslong/></uuid>`, as in TF);
//! * a link to its parent, metadata type `<parent>-<child>` (no content);
//! * a link per reference, metadata type the XSD link name, the reference's attribute (if
//!   any) as the metadata content.
//!
//! Decoding gives back the same JSON (typed by the schema), and the link's meaning.

use filament_schema::{index, ResourceDef, Ty};
use filament_wire_xmpp::{ConfigLink, ConfigMetadata, ConfigNode, ConfigNodeRef, Node};
use serde_json::{json, Map, Value};

use crate::error::{IfmapError, Result};
use crate::names::{links, parent_link, prop_by_element, prop_element, ref_link, LinkDef};
use crate::value::{decode_fields, decode_one, encode_fields, encode_into};

/// Object keys that identify an object rather than being properties.
const IDENTITY: &[&str] = &[
    "uuid",
    "fq_name",
    "name",
    "parent_type",
    "parent_uuid",
    "href",
    "parent_href",
];

fn resource(ty: &str) -> Result<&'static ResourceDef> {
    index().resource(ty).ok_or_else(|| IfmapError::UnknownType {
        type_name: ty.to_string(),
    })
}

fn fq_of(obj: &Map<String, Value>) -> Result<Vec<String>> {
    let arr = obj
        .get("fq_name")
        .and_then(Value::as_array)
        .ok_or(IfmapError::Missing { field: "fq_name" })?;
    arr.iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty())
        .ok_or(IfmapError::Missing { field: "fq_name" })
}

/// The colon-joined node name of an fq_name.
pub fn node_name(fq: &[String]) -> String {
    fq.join(":")
}

/// An fq_name from a node name of type `ty`.  A type that only lives at the top level has a
/// one-element fq_name, which may itself contain colons (`target:64512:8000001`); other names
/// split at every colon (TF has the same ambiguity and the same answer).
pub fn split_name(ty: &str, name: &str) -> Vec<String> {
    let top_only = index()
        .resource(ty)
        .is_some_and(|r| r.parents.iter().all(|p| *p == "config-root"));
    if top_only {
        vec![name.to_string()]
    } else {
        name.split(':').map(str::to_string).collect()
    }
}

/// `<node type=… ><name>…</name></node>` reference.
pub fn node_ref(ty: &str, fq: &[String]) -> ConfigNodeRef {
    ConfigNodeRef {
        type_name: ty.to_string(),
        name: node_name(fq),
    }
}

/// A canonical uuid string as TF's `UuidType` (`uuid_mslong`, `uuid_lslong`).
pub fn uuid_to_longs(u: &str) -> Option<(u64, u64)> {
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || u.len() != 36 {
        return None;
    }
    let ms = u64::from_str_radix(hex.get(..16)?, 16).ok()?;
    let ls = u64::from_str_radix(hex.get(16..)?, 16).ok()?;
    Some((ms, ls))
}

/// `UuidType` back to the canonical string.
pub fn longs_to_uuid(ms: u64, ls: u64) -> String {
    let h = format!("{ms:016x}{ls:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The node of an object: type, name and every schema property present (common ones first).
pub fn encode_node(ty: &str, obj: &Map<String, Value>) -> Result<ConfigNode> {
    let rd = resource(ty)?;
    let fq = fq_of(obj)?;
    let mut props: Vec<Node> = Vec::new();
    for p in rd.all_props() {
        let Some(v) = obj.get(p.name) else { continue };
        let mut v = v.clone();
        if p.name == "id_perms" {
            // TF carries the object's uuid inside id-perms; make sure it is there.
            if let (Some(m), Some((ms, ls))) = (
                v.as_object_mut(),
                obj.get("uuid")
                    .and_then(Value::as_str)
                    .and_then(uuid_to_longs),
            ) {
                m.entry("uuid")
                    .or_insert_with(|| json!({"uuid_mslong": ms, "uuid_lslong": ls}));
            }
        }
        let en = prop_element(ty, p.name);
        encode_into(&mut props, &en, &p.ty, &v, &en)?;
    }
    if !obj.contains_key("id_perms") {
        if let Some((ms, ls)) = obj
            .get("uuid")
            .and_then(Value::as_str)
            .and_then(uuid_to_longs)
        {
            let v = json!({"uuid": {"uuid_mslong": ms, "uuid_lslong": ls}});
            let p = rd
                .prop("id_perms")
                .ok_or(IfmapError::Missing { field: "id_perms" })?;
            encode_into(&mut props, "id-perms", &p.ty, &v, "id-perms")?;
        }
    }
    for k in obj.keys() {
        let known = IDENTITY.contains(&k.as_str())
            || rd.prop(k).is_some()
            || rd.ref_def(k).is_some()
            || k.ends_with("_back_refs")
            || rd.children().iter().any(|c| c.child_field() == *k);
        if !known {
            return Err(IfmapError::bad(k, "a property of the schema", k));
        }
    }
    Ok(ConfigNode {
        id: node_ref(ty, &fq),
        props: props
            .into_iter()
            .filter_map(|n| match n {
                Node::Element(e) => Some(e),
                Node::Text(_) => None,
            })
            .collect(),
    })
}

/// The parent link of an object (none for children of config-root).
pub fn encode_parent_link(ty: &str, obj: &Map<String, Value>) -> Result<Option<ConfigLink>> {
    let fq = fq_of(obj)?;
    let Some(pt) = obj.get("parent_type").and_then(Value::as_str) else {
        return Ok(None);
    };
    if pt == "config-root" || fq.len() < 2 {
        return Ok(None);
    }
    resource(pt)?;
    Ok(Some(ConfigLink {
        left: node_ref(pt, &fq[..fq.len() - 1]),
        right: node_ref(ty, &fq),
        metadata: Some(ConfigMetadata {
            type_name: parent_link(pt, ty),
            content: Vec::new(),
        }),
    }))
}

/// One reference link `from` → `to` with its attribute.
pub fn encode_ref_link(
    ty: &str,
    fq: &[String],
    field: &str,
    to: &[String],
    attr: &Value,
) -> Result<ConfigLink> {
    let rd = resource(ty)?;
    let def = rd
        .ref_def(field)
        .ok_or_else(|| IfmapError::bad(field, "a reference field", field))?;
    let name = ref_link(ty, field);
    let mut content = Vec::new();
    if let (Some(i), Some(m)) = (def.attr, attr.as_object()) {
        let sd = index()
            .struct_def(i)
            .ok_or_else(|| IfmapError::bad(field, "known struct", i))?;
        content = encode_fields(sd, m, &name)?;
    }
    Ok(ConfigLink {
        left: node_ref(ty, fq),
        right: node_ref(def.target, to),
        metadata: Some(ConfigMetadata {
            type_name: name,
            content,
        }),
    })
}

/// Every reference link of an object, in schema order.
pub fn encode_ref_links(ty: &str, obj: &Map<String, Value>) -> Result<Vec<ConfigLink>> {
    let rd = resource(ty)?;
    let fq = fq_of(obj)?;
    let mut out = Vec::new();
    for def in rd.refs {
        let Some(list) = obj.get(def.field).and_then(Value::as_array) else {
            continue;
        };
        for r in list {
            let to = r
                .get("to")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|s| s.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or(IfmapError::Missing { field: "to" })?;
            let attr = r.get("attr").unwrap_or(&Value::Null);
            out.push(encode_ref_link(ty, &fq, def.field, &to, attr)?);
        }
    }
    Ok(out)
}

/// The node and every link of an object (parent first, then references).
pub fn encode_object(ty: &str, obj: &Map<String, Value>) -> Result<(ConfigNode, Vec<ConfigLink>)> {
    let node = encode_node(ty, obj)?;
    let mut links: Vec<ConfigLink> = encode_parent_link(ty, obj)?.into_iter().collect();
    links.extend(encode_ref_links(ty, obj)?);
    Ok((node, links))
}

/// A decoded node.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedNode {
    /// Its type.
    pub ty: &'static ResourceDef,
    /// Its fq_name.
    pub fq_name: Vec<String>,
    /// `uuid` (from id-perms, when present), `fq_name`, `name` and the properties, typed.
    pub object: Map<String, Value>,
    /// Elements the schema does not know (skipped).
    pub ignored: usize,
}

/// Decode a node's properties into object JSON.
pub fn decode_node(node: &ConfigNode) -> Result<DecodedNode> {
    let ty = resource(&node.id.type_name)?;
    let fq = split_name(ty.name, &node.id.name);
    let mut object = Map::new();
    let mut ignored = 0;
    for e in &node.props {
        let Some(p) = prop_by_element(ty, &e.name) else {
            ignored += 1;
            continue;
        };
        let v = decode_one(e, &p.ty, &e.name, &mut ignored)?;
        match p.ty {
            Ty::List(_) => match object
                .entry(p.name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(a) => a.push(v),
                other => *other = Value::Array(vec![v]),
            },
            _ => {
                object.insert(p.name.to_string(), v);
            }
        }
    }
    let uuid = object
        .get("id_perms")
        .and_then(|v| v.get("uuid"))
        .and_then(|u| {
            Some((
                u.get("uuid_mslong")?.as_u64()?,
                u.get("uuid_lslong")?.as_u64()?,
            ))
        })
        .map(|(ms, ls)| longs_to_uuid(ms, ls));
    let mut head = Map::new();
    if let Some(u) = uuid {
        head.insert("uuid".into(), Value::String(u));
    }
    head.insert("fq_name".into(), json!(fq));
    head.insert("name".into(), json!(fq.last()));
    head.extend(object);
    Ok(DecodedNode {
        ty,
        fq_name: fq,
        object: head,
        ignored,
    })
}

/// What a link says.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedLink {
    /// `from.<field>` references `to`, with `attr` (null when the link type has none).
    Ref {
        /// Referring type.
        from_type: &'static ResourceDef,
        /// Referring object.
        from: Vec<String>,
        /// Reference field (`network_ipam_refs`).
        field: &'static str,
        /// Referenced type.
        to_type: &'static ResourceDef,
        /// Referenced object.
        to: Vec<String>,
        /// The reference attribute.
        attr: Value,
    },
    /// `parent` has child `child`.
    Parent {
        /// Parent type.
        parent_type: &'static ResourceDef,
        /// Parent object.
        parent: Vec<String>,
        /// Child type.
        child_type: &'static ResourceDef,
        /// Child object.
        child: Vec<String>,
    },
}

/// Decode a link (either node order is accepted).
pub fn decode_link(link: &ConfigLink) -> Result<DecodedLink> {
    let md = link.metadata.as_ref();
    let name = md.map_or("", |m| m.type_name.as_str());
    let unknown = || IfmapError::UnknownLink {
        metadata: name.to_string(),
        left: link.left.type_name.clone(),
        right: link.right.type_name.clone(),
    };
    let defs = links().get(name).ok_or_else(unknown)?;
    let (l, r) = (&link.left, &link.right);
    for d in defs {
        match *d {
            LinkDef::Ref { from, def } => {
                for (a, b) in [(l, r), (r, l)] {
                    if a.type_name == from.name && b.type_name == def.target {
                        let to_type = resource(def.target)?;
                        let mut ignored = 0;
                        let attr = match (def.attr, md) {
                            (Some(i), Some(m)) if !m.content.is_empty() => {
                                let sd = index()
                                    .struct_def(i)
                                    .ok_or_else(|| IfmapError::bad(name, "known struct", i))?;
                                let els = m.content.iter().filter_map(|n| match n {
                                    Node::Element(e) => Some(e),
                                    Node::Text(_) => None,
                                });
                                Value::Object(decode_fields(sd, els, name, &mut ignored)?)
                            }
                            _ => Value::Null,
                        };
                        return Ok(DecodedLink::Ref {
                            from_type: from,
                            from: split_name(from.name, &a.name),
                            field: def.field,
                            to_type,
                            to: split_name(def.target, &b.name),
                            attr,
                        });
                    }
                }
            }
            LinkDef::Parent { parent, child } => {
                for (a, b) in [(l, r), (r, l)] {
                    if a.type_name == parent.name && b.type_name == child.name {
                        return Ok(DecodedLink::Parent {
                            parent_type: parent,
                            parent: split_name(parent.name, &a.name),
                            child_type: child,
                            child: split_name(child.name, &b.name),
                        });
                    }
                }
            }
        }
    }
    Err(unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_longs_round_trip() {
        let u = "8a3c9f4e-1b2d-4c5e-9f00-0123456789ab";
        let (ms, ls) = uuid_to_longs(u).unwrap_or_default();
        assert_eq!(ms, 0x8a3c9f4e1b2d4c5e);
        assert_eq!(longs_to_uuid(ms, ls), u);
        assert_eq!(uuid_to_longs("nope"), None);
    }
}
