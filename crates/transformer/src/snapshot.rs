//! The transformer's view of the config: every stored object by uuid, with
//! the indexes compilation needs. Built from a store snapshot, then kept up
//! to date from change-feed events.

use std::collections::{BTreeMap, HashMap};

use filament_config::StoredObj;
use serde_json::Value;

/// Config objects as the store holds them.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    objs: HashMap<String, StoredObj>,
    /// `(type, fq_name joined)` → uuid.
    by_fq: HashMap<(String, String), String>,
    /// type → (creation seq → uuid), for deterministic iteration.
    by_type: HashMap<String, BTreeMap<u64, String>>,
    /// parent uuid → (child seq → child uuid).
    children: HashMap<String, BTreeMap<u64, String>>,
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_objects(objs: impl IntoIterator<Item = StoredObj>) -> Self {
        let mut s = Self::new();
        for o in objs {
            s.put(o);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Insert or replace an object; returns the previous version.
    pub fn put(&mut self, o: StoredObj) -> Option<StoredObj> {
        let old = self.delete(&o.uuid.clone());
        self.by_fq
            .insert((o.ty.clone(), o.fq_name.join(":")), o.uuid.clone());
        self.by_type
            .entry(o.ty.clone())
            .or_default()
            .insert(o.seq, o.uuid.clone());
        if let Some(p) = &o.parent_uuid {
            self.children
                .entry(p.clone())
                .or_default()
                .insert(o.seq, o.uuid.clone());
        }
        self.objs.insert(o.uuid.clone(), o);
        old
    }

    /// Remove an object; returns it.
    pub fn delete(&mut self, uuid: &str) -> Option<StoredObj> {
        let o = self.objs.remove(uuid)?;
        self.by_fq.remove(&(o.ty.clone(), o.fq_name.join(":")));
        if let Some(m) = self.by_type.get_mut(&o.ty) {
            m.remove(&o.seq);
        }
        if let Some(p) = &o.parent_uuid {
            if let Some(c) = self.children.get_mut(p) {
                c.remove(&o.seq);
            }
        }
        Some(o)
    }

    pub fn get(&self, uuid: &str) -> Option<&StoredObj> {
        self.objs.get(uuid)
    }

    pub fn lookup(&self, ty: &str, fq: &[String]) -> Option<&StoredObj> {
        self.by_fq
            .get(&(ty.to_string(), fq.join(":")))
            .and_then(|u| self.objs.get(u))
    }

    pub fn lookup_str(&self, ty: &str, fq: &str) -> Option<&StoredObj> {
        self.by_fq
            .get(&(ty.to_string(), fq.to_string()))
            .and_then(|u| self.objs.get(u))
    }

    /// Objects of a type in creation order.
    pub fn of_type<'a>(&'a self, ty: &str) -> impl Iterator<Item = &'a StoredObj> + 'a {
        self.by_type
            .get(ty)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|u| self.objs.get(u))
    }

    pub fn children<'a>(&'a self, uuid: &str) -> impl Iterator<Item = &'a StoredObj> + 'a {
        self.children
            .get(uuid)
            .into_iter()
            .flat_map(|c| c.values())
            .filter_map(|u| self.objs.get(u))
    }
}

/// Helpers on stored objects.
pub trait ObjExt {
    fn prop(&self, name: &str) -> Option<&Value>;
    fn refs_of(&self, field: &str) -> &[filament_config::RefLink];
    fn name(&self) -> &str;
    fn is_system(&self) -> bool;
}

impl ObjExt for StoredObj {
    fn prop(&self, name: &str) -> Option<&Value> {
        self.props.get(name).filter(|v| !v.is_null())
    }
    fn refs_of(&self, field: &str) -> &[filament_config::RefLink] {
        self.refs.get(field).map_or(&[], Vec::as_slice)
    }
    fn name(&self) -> &str {
        self.fq_name.last().map_or("", String::as_str)
    }
    fn is_system(&self) -> bool {
        self.id_perms.creator.as_deref() == Some(filament_config::SYSTEM_CREATOR)
    }
}
