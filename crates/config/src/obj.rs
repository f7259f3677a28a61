//! One config object as the database holds it, and its stored JSON form.
//!
//! References are kept by uuid (fq_names are resolved when rendering), so the
//! stored form is independent of renames and the change feed carries exactly
//! what is persisted.

use std::collections::{BTreeMap, BTreeSet};

use filament_schema::types::{IdPermsType, PermType2};
use filament_schema::{index, ResourceDef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One reference from an object to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefLink {
    pub uuid: String,
    /// The link attribute, `null` when the reference has none.
    #[serde(default)]
    pub attr: Value,
}

/// A config object.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub ty: &'static ResourceDef,
    pub uuid: String,
    pub fq_name: Vec<String>,
    /// `(parent type, parent uuid)`; `None` for children of config-root.
    pub parent: Option<(&'static ResourceDef, String)>,
    /// Identity, times and legacy permissions (typed: every object has one).
    pub id_perms: IdPermsType,
    /// Ownership and sharing.
    pub perms2: PermType2,
    /// Other property values by JSON field name (display_name included).
    pub props: Map<String, Value>,
    /// References by JSON field name (`network_ipam_refs`), in the order given.
    pub refs: Refs,
    /// Referee uuids whose reference from this object does not block their deletion.
    pub relaxed: BTreeSet<String>,
    /// Creation order, used to list children and objects in the order they were made.
    pub seq: u64,
}

/// An object's reference lists by field, in the order fields were first set.
/// A small vector: objects have few reference fields, and a map's node costs
/// more memory than the lists themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refs(Vec<(&'static str, Vec<RefLink>)>);

impl Refs {
    pub fn get(&self, field: &str) -> Option<&Vec<RefLink>> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, l)| l)
    }
    pub fn get_mut(&mut self, field: &str) -> Option<&mut Vec<RefLink>> {
        self.0.iter_mut().find(|(f, _)| *f == field).map(|(_, l)| l)
    }
    /// Replace the list of `field` (an empty list removes the field).
    pub fn insert(&mut self, field: &'static str, links: Vec<RefLink>) {
        match self.0.iter_mut().find(|(f, _)| *f == field) {
            Some((_, l)) => *l = links,
            None => self.0.push((field, links)),
        }
        self.0.retain(|(_, l)| !l.is_empty());
        self.0.shrink_to_fit();
    }
    /// The list of `field`, created empty if missing.
    pub fn entry(&mut self, field: &'static str) -> &mut Vec<RefLink> {
        let i = match self.0.iter().position(|(f, _)| *f == field) {
            Some(i) => i,
            None => {
                self.0.push((field, Vec::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Vec<RefLink>)> {
        self.0.iter().map(|(f, l)| (*f, l))
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Vec<RefLink>> {
        self.0.iter_mut().map(|(_, l)| l)
    }
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(f, _)| *f)
    }
}

impl FromIterator<(&'static str, Vec<RefLink>)> for Refs {
    fn from_iter<I: IntoIterator<Item = (&'static str, Vec<RefLink>)>>(it: I) -> Self {
        let mut r = Refs::default();
        for (f, l) in it {
            r.insert(f, l);
        }
        r
    }
}

/// The persisted JSON form of an [`Obj`] (also what the change feed carries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObj {
    #[serde(rename = "type")]
    pub ty: String,
    pub uuid: String,
    pub fq_name: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
    pub seq: u64,
    #[serde(default)]
    pub id_perms: IdPermsType,
    #[serde(default)]
    pub perms2: PermType2,
    #[serde(default)]
    pub props: Map<String, Value>,
    #[serde(default)]
    pub refs: BTreeMap<String, Vec<RefLink>>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub relaxed: BTreeSet<String>,
}

impl Obj {
    /// Last element of the fq_name.
    pub fn name(&self) -> &str {
        self.fq_name.last().map_or("", String::as_str)
    }
    pub fn fq_str(&self) -> String {
        self.fq_name.join(":")
    }
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.props.get(name).filter(|v| !v.is_null())
    }
    pub fn refs_of(&self, field: &str) -> &[RefLink] {
        self.refs.get(field).map_or(&[], Vec::as_slice)
    }
    /// Uuids this object references, across all reference fields.
    pub fn ref_uuids(&self) -> impl Iterator<Item = (&'static str, &RefLink)> {
        self.refs
            .iter()
            .flat_map(|(f, l)| l.iter().map(move |r| (f, r)))
    }
    /// Drop spare capacity of every map, list and string the object keeps:
    /// objects live long and growth leaves 2-4x slack on small maps.
    pub fn compact(&mut self) {
        shrink_map(&mut self.props);
        for v in self.props.values_mut() {
            compact_value(v);
        }
        for links in self.refs.values_mut() {
            links.shrink_to_fit();
            for l in links.iter_mut() {
                l.uuid.shrink_to_fit();
                compact_value(&mut l.attr);
            }
        }
        self.refs.0.shrink_to_fit();
        self.fq_name.shrink_to_fit();
        for n in &mut self.fq_name {
            n.shrink_to_fit();
        }
        self.uuid.shrink_to_fit();
    }
    /// Objects the system made (derived state) never block a user's delete.
    pub fn is_system_created(&self) -> bool {
        self.id_perms.creator.as_deref() == Some(crate::SYSTEM_CREATOR)
    }
    /// The stored form as a value (tests, tools); the write path uses
    /// [`Obj::to_stored_json`], which serializes without cloning.
    pub fn to_stored(&self) -> Result<StoredObj, serde_json::Error> {
        serde_json::from_str(&self.to_stored_json())
    }
    /// Rebuild from the stored form; `None` if it names an unknown type or field.
    pub fn from_stored(s: StoredObj) -> Result<Self, String> {
        let ix = index();
        let ty = ix
            .resource(&s.ty)
            .ok_or_else(|| format!("unknown type {}", s.ty))?;
        let parent = match (s.parent_type, s.parent_uuid) {
            (Some(t), Some(u)) => Some((
                ix.resource(&t)
                    .ok_or_else(|| format!("unknown parent type {t}"))?,
                u,
            )),
            _ => None,
        };
        let mut refs = Refs::default();
        for (field, links) in s.refs {
            let def = ty
                .ref_def(&field)
                .ok_or_else(|| format!("{}: unknown reference field {field}", s.ty))?;
            refs.insert(def.field, links);
        }
        Ok(Self {
            ty,
            uuid: s.uuid,
            fq_name: s.fq_name,
            parent,
            id_perms: s.id_perms,
            perms2: s.perms2,
            props: s.props,
            refs,
            relaxed: s.relaxed,
            seq: s.seq,
        })
    }
}

/// Initial buffer size of [`Obj::to_stored_json`].
const STORED_JSON_CAPACITY: usize = 2048;

/// Borrowed serialization of the stored form (no clone on the write path).
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    uuid: &'a str,
    fq_name: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_uuid: Option<&'a str>,
    seq: u64,
    id_perms: &'a IdPermsType,
    perms2: &'a PermType2,
    props: &'a Map<String, Value>,
    refs: BTreeMap<&'a str, &'a Vec<RefLink>>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    relaxed: &'a BTreeSet<String>,
}

impl Obj {
    /// The stored form as JSON text (what the store and the change feed carry).
    pub fn to_stored_json(&self) -> String {
        let r = StoredRef {
            ty: self.ty.name,
            uuid: &self.uuid,
            fq_name: &self.fq_name,
            parent_type: self.parent.as_ref().map(|(t, _)| t.name),
            parent_uuid: self.parent.as_ref().map(|(_, u)| u.as_str()),
            seq: self.seq,
            id_perms: &self.id_perms,
            perms2: &self.perms2,
            props: &self.props,
            refs: self.refs.iter().filter(|(_, v)| !v.is_empty()).collect(),
            relaxed: &self.relaxed,
        };
        // Most stored objects are 1-2 KB: start there instead of growing
        // (and copying) from serde_json's default 128 bytes four times.
        let mut buf = Vec::with_capacity(STORED_JSON_CAPACITY);
        if serde_json::to_writer(&mut buf, &r).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

fn compact_value(v: &mut Value) {
    match v {
        Value::Object(m) => {
            shrink_map(m);
            for x in m.values_mut() {
                compact_value(x);
            }
        }
        Value::Array(a) => {
            a.shrink_to_fit();
            for x in a.iter_mut() {
                compact_value(x);
            }
        }
        Value::String(s) => s.shrink_to_fit(),
        _ => {}
    }
}

/// Rebuild a map with exactly the capacity it needs (serde_json's Map has no
/// shrink_to_fit).
fn shrink_map(m: &mut Map<String, Value>) {
    let old = std::mem::take(m);
    let mut new = Map::with_capacity(old.len());
    for (mut k, v) in old {
        k.shrink_to_fit();
        new.insert(k, v);
    }
    *m = new;
}
