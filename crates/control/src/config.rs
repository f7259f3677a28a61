//! The control node's config graph, built from the config change feed (`GET /watch`), and
//! the routing-instance view the RIBs need (tf-facts §3 "Import/export computation").
//!
//! Objects are kept in their stored form (what the feed carries) with three indexes:
//! `(type, fq_name) → uuid`, back-references and children.  Rendering an object in the API
//! shape (references with `to` fq names) is what the IFMap encoder consumes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use filament_config::StoredObj;
use filament_ifmap::encode_object;
use filament_wire_xmpp::{ConfigLink, ConfigNode};
use serde_json::{json, Map, Value};

/// The default global-system-config ASN when none is set (TF's 64512).
pub const DEFAULT_ASN: u32 = 64512;

/// Import and export route targets of one routing instance, with what the control node
/// derives from its network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Colon-joined fq name (`default-domain:admin:vn1:vn1`).
    pub name: String,
    /// The owning network's colon name.
    pub virtual_network: Option<String>,
    /// `virtual_network_network_id` of the owning network (origin-VN community).
    pub vn_id: Option<i64>,
    /// Route targets imported (own targets + export targets of connected instances).
    pub import: BTreeSet<String>,
    /// Route targets exported.
    pub export: BTreeSet<String>,
}

/// An object's IFMap node and links (what [`filament_ifmap::encode_object`] makes of its
/// rendering); `None` when the encoder refused it.
pub type Encoded = Option<Arc<(ConfigNode, Vec<ConfigLink>)>>;

/// What [`ConfigGraph::apply`] changed since the last [`ConfigGraph::take_changes`]: what an
/// agent's config subset must look at again (`subset::Tracker::update`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Uuids whose object, referrer set or child set changed: each object put or deleted,
    /// the targets of its old and new references and its old and new parent.
    pub touched: HashSet<String>,
    /// Uuids whose encoding may have changed (the cached one was dropped): each object put
    /// or deleted and the objects referring to it.
    pub reencoded: HashSet<String>,
    /// Types of the objects put or deleted (old and new).
    pub types: HashSet<String>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.touched.is_empty() && self.reencoded.is_empty() && self.types.is_empty()
    }
}

/// All config objects by uuid, with indexes.
#[derive(Debug, Default)]
pub struct ConfigGraph {
    objs: HashMap<String, StoredObj>,
    by_fq: HashMap<(String, Vec<String>), String>,
    /// target uuid → referrer uuids.
    back: HashMap<String, BTreeSet<String>>,
    /// parent uuid → child uuids.
    children: HashMap<String, BTreeSet<String>>,
    /// IFMap encodings by uuid, made on first use; an object's entry goes when it or an
    /// object it references is put or deleted (its rendering reads only those), so an agent's
    /// config subset is not re-encoded whole on every change.
    encoded: RefCell<HashMap<String, Encoded>>,
    /// What changed since the last `take_changes`.
    changes: Changes,
}

impl ConfigGraph {
    /// Empty graph.
    pub fn new() -> Self {
        ConfigGraph::default()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Put (`Some`) or delete (`None`) one object.
    pub fn apply(&mut self, uuid: &str, obj: Option<StoredObj>) {
        let enc = self.encoded.get_mut();
        enc.remove(uuid);
        let ch = &mut self.changes;
        ch.reencoded.insert(uuid.to_string());
        ch.touched.insert(uuid.to_string());
        for r in self.back.get(uuid).into_iter().flatten() {
            enc.remove(r);
            ch.reencoded.insert(r.clone());
        }
        for o in self.objs.get(uuid).into_iter().chain(obj.as_ref()) {
            ch.types.insert(o.ty.clone());
            ch.touched.extend(o.parent_uuid.iter().cloned());
            ch.touched
                .extend(o.refs.values().flatten().map(|l| l.uuid.clone()));
        }
        if let Some(old) = self.objs.remove(uuid) {
            self.by_fq.remove(&(old.ty.clone(), old.fq_name.clone()));
            for links in old.refs.values() {
                for l in links {
                    if let Some(s) = self.back.get_mut(&l.uuid) {
                        s.remove(uuid);
                    }
                }
            }
            if let Some(p) = &old.parent_uuid {
                if let Some(s) = self.children.get_mut(p) {
                    s.remove(uuid);
                }
            }
        }
        if let Some(o) = obj {
            self.by_fq
                .insert((o.ty.clone(), o.fq_name.clone()), uuid.to_string());
            for links in o.refs.values() {
                for l in links {
                    self.back
                        .entry(l.uuid.clone())
                        .or_default()
                        .insert(uuid.to_string());
                }
            }
            if let Some(p) = &o.parent_uuid {
                self.children
                    .entry(p.clone())
                    .or_default()
                    .insert(uuid.to_string());
            }
            self.objs.insert(uuid.to_string(), o);
        }
    }

    /// What changed since the last call (or since the graph was made).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Object by uuid.
    pub fn get(&self, uuid: &str) -> Option<&StoredObj> {
        self.objs.get(uuid)
    }

    /// Object by type and fq_name.
    pub fn lookup(&self, ty: &str, fq: &[String]) -> Option<&StoredObj> {
        self.by_fq
            .get(&(ty.to_string(), fq.to_vec()))
            .and_then(|u| self.objs.get(u))
    }

    /// Object by type and colon name (IFMap node name).
    pub fn lookup_name(&self, ty: &str, name: &str) -> Option<&StoredObj> {
        self.lookup(ty, &filament_ifmap::split_name(ty, name))
    }

    /// Every object of a type.
    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a StoredObj> + 'a {
        self.objs.values().filter(move |o| o.ty == ty)
    }

    /// Objects of type `ty` that reference `uuid`.
    pub fn referrers<'a>(
        &'a self,
        uuid: &str,
        ty: &'a str,
    ) -> impl Iterator<Item = &'a StoredObj> + 'a {
        self.back
            .get(uuid)
            .into_iter()
            .flatten()
            .filter_map(|u| self.objs.get(u))
            .filter(move |o| o.ty == ty)
    }

    /// Children of `uuid` of type `ty`.
    pub fn children<'a>(
        &'a self,
        uuid: &str,
        ty: &'a str,
    ) -> impl Iterator<Item = &'a StoredObj> + 'a {
        self.children
            .get(uuid)
            .into_iter()
            .flatten()
            .filter_map(|u| self.objs.get(u))
            .filter(move |o| o.ty == ty)
    }

    /// Targets of one reference field with their attributes.
    pub fn targets<'a>(&'a self, o: &'a StoredObj, field: &str) -> Vec<(&'a StoredObj, &'a Value)> {
        o.refs
            .get(field)
            .into_iter()
            .flatten()
            .filter_map(|l| self.objs.get(&l.uuid).map(|t| (t, &l.attr)))
            .collect()
    }

    /// The object in the config API's JSON shape (identity, id_perms, perms2, properties,
    /// references with `to`), the input of the IFMap encoder.
    pub fn render(&self, o: &StoredObj) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("uuid".into(), json!(o.uuid));
        m.insert("fq_name".into(), json!(o.fq_name));
        if let Some(pt) = &o.parent_type {
            m.insert("parent_type".into(), json!(pt));
        }
        if let Some(pu) = &o.parent_uuid {
            m.insert("parent_uuid".into(), json!(pu));
        }
        m.insert(
            "id_perms".into(),
            serde_json::to_value(&o.id_perms).unwrap_or(Value::Null),
        );
        m.insert(
            "perms2".into(),
            serde_json::to_value(&o.perms2).unwrap_or(Value::Null),
        );
        for (k, v) in &o.props {
            m.insert(k.clone(), v.clone());
        }
        for (field, links) in &o.refs {
            let list: Vec<Value> = links
                .iter()
                .filter_map(|l| {
                    let t = self.objs.get(&l.uuid)?;
                    Some(json!({"to": t.fq_name, "uuid": t.uuid, "attr": l.attr}))
                })
                .collect();
            if !list.is_empty() {
                m.insert(field.clone(), Value::Array(list));
            }
        }
        m
    }

    /// The object's IFMap encoding (cached; see the `encoded` field).
    pub fn encoded(&self, o: &StoredObj) -> Encoded {
        if let Some(e) = self.encoded.borrow().get(&o.uuid) {
            return e.clone();
        }
        let e = encode_object(&o.ty, &self.render(o)).ok().map(Arc::new);
        self.encoded.borrow_mut().insert(o.uuid.clone(), e.clone());
        e
    }

    /// The global ASN (`global-system-config.autonomous_system`).
    pub fn asn(&self) -> u32 {
        self.lookup(
            "global-system-config",
            &["default-global-system-config".to_string()],
        )
        .and_then(|g| g.props.get("autonomous_system"))
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(DEFAULT_ASN)
    }

    /// The fabric IP of a virtual-router by name (`virtual_router_ip_address`).
    pub fn vrouter_ip(&self, name: &str) -> Option<String> {
        self.lookup(
            "virtual-router",
            &["default-global-system-config".to_string(), name.to_string()],
        )?
        .props
        .get("virtual_router_ip_address")?
        .as_str()
        .map(str::to_string)
    }

    fn export_of(&self, ri: &StoredObj) -> BTreeSet<String> {
        self.targets(ri, "route_target_refs")
            .into_iter()
            .filter(|(_, a)| a.get("import_export").and_then(Value::as_str) != Some("import"))
            .filter_map(|(t, _)| t.fq_name.first().cloned())
            .collect()
    }

    /// Route targets of every routing instance: `instance-target` links (attr
    /// `import_export` null = both), plus, for each `connection` (RI → RI reference), the
    /// peer's export targets imported (tf-facts §3, `BgpIfmapInstanceConfig::Update`).
    ///
    /// tf-facts §3: "plus two targets are always imported: the VRF-import target
    /// `target:<control bgp-identifier IP>:<RI index>` (used by MVPN ...) and the EVPN ES
    /// import target `target:<ASN>:7999999` (2-byte ASN) / `target:<ASN>:7999` (4-byte)".
    /// The ES import target is added to every instance but the fabric master
    /// (`ip-fabric:__default__`, which holds no VPN routes). The VRF-import target is not:
    /// its RI index is a number each TF control node allocates locally, and it serves only
    /// MVPN, which we do not carry.
    pub fn instances(&self) -> BTreeMap<String, InstanceConfig> {
        let asn = self.asn();
        let mut out = BTreeMap::new();
        for ri in self.of_type("routing-instance") {
            let name = ri.fq_name.join(":");
            let mut import = BTreeSet::new();
            for (t, a) in self.targets(ri, "route_target_refs") {
                if a.get("import_export").and_then(Value::as_str) != Some("export") {
                    if let Some(rt) = t.fq_name.first() {
                        import.insert(rt.clone());
                    }
                }
            }
            for (peer, _) in self.targets(ri, "routing_instance_refs") {
                import.extend(self.export_of(peer));
            }
            if !is_master(&ri.fq_name) {
                import.insert(es_import_target(asn));
            }
            let vn = ri
                .parent_uuid
                .as_deref()
                .and_then(|p| self.get(p))
                .filter(|p| p.ty == "virtual-network");
            out.insert(
                name.clone(),
                InstanceConfig {
                    name,
                    virtual_network: vn.map(|v| v.fq_name.join(":")),
                    vn_id: vn
                        .and_then(|v| v.props.get("virtual_network_network_id"))
                        .and_then(Value::as_i64),
                    import,
                    export: self.export_of(ri),
                },
            );
        }
        out
    }
}

/// The fabric's master instance (`default-domain:default-project:ip-fabric:__default__`).
fn is_master(fq: &[String]) -> bool {
    fq == [
        "default-domain",
        "default-project",
        "ip-fabric",
        "__default__",
    ]
}

/// TF's EVPN ES import target, imported by every instance (tf-facts §3):
/// `target:<ASN>:7999999` for a 2-byte ASN, `target:<ASN>:7999` for a 4-byte one.
pub fn es_import_target(asn: u32) -> String {
    if asn <= 0xffff {
        format!("target:{asn}:7999999")
    } else {
        format!("target:{asn}:7999")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(v: Value) -> StoredObj {
        serde_json::from_value(v).unwrap()
    }

    fn vmi(mac: &str) -> StoredObj {
        obj(json!({"type": "virtual-machine-interface", "uuid": "u-vmi",
            "fq_name": ["default-domain", "p", "port1"], "seq": 1,
            "props": {"virtual_machine_interface_mac_addresses": {"mac_address": [mac]}},
            "refs": {"virtual_network_refs": [{"uuid": "u-vn", "attr": null}]}}))
    }

    fn vn_links(g: &ConfigGraph) -> usize {
        let o = g.get("u-vmi").unwrap();
        let e = g.encoded(o).unwrap();
        assert_eq!(*e, encode_object(&o.ty, &g.render(o)).unwrap());
        e.1.iter()
            .filter(|l| {
                l.right.type_name == "virtual-network" || l.left.type_name == "virtual-network"
            })
            .count()
    }

    /// The cached encoding follows the object and the objects it references.
    #[test]
    fn encoding_cache_follows_the_object_and_its_targets() {
        let mut g = ConfigGraph::new();
        g.apply("u-vmi", Some(vmi("02:00:00:00:00:01")));
        assert_eq!(vn_links(&g), 0, "reference to a missing network encoded");
        let vn = obj(json!({"type": "virtual-network", "uuid": "u-vn",
            "fq_name": ["default-domain", "p", "vn1"], "seq": 1}));
        g.apply("u-vn", Some(vn));
        assert_eq!(
            vn_links(&g),
            1,
            "network's arrival not seen by its referrer"
        );
        g.apply("u-vmi", Some(vmi("02:00:00:00:00:02")));
        let e = g.encoded(g.get("u-vmi").unwrap()).unwrap();
        assert!(format!("{:?}", e.0).contains("02:00:00:00:00:02"));
        g.apply("u-vn", None);
        assert_eq!(
            vn_links(&g),
            0,
            "network's deletion not seen by its referrer"
        );
    }
}
