//! Create, update and delete with the semantics of TF's config API server
//! (tf-facts 1.4, 1.6, 1.8): fq_name uniqueness, parent lookup, id_perms and
//! perms2 defaults, delete refused while referenced or with children, and
//! derived (system-created) objects cleaned up instead of blocking.

use std::collections::{BTreeMap, BTreeSet};

use filament_schema::types::{IdPermsType, PermType, PermType2, UuidType};
use filament_schema::{index, ResourceDef};
use serde_json::{json, Map, Value};

use crate::db::{ConfigDb, Txn};
use crate::error::{bad, conflict, fq_repr, not_found, Result};
use crate::input::{check_uuid, parse_fields, Fields};
use crate::obj::Obj;
use crate::{hooks, Ctx};

impl ConfigDb {
    /// Create an object from the inner body of `{"<type>": {...}}`.
    /// Returns the writes and the new object's uuid.
    pub fn create(
        &mut self,
        ty: &'static ResourceDef,
        body: &Value,
        ctx: &mut Ctx<'_>,
    ) -> Result<(Txn, String)> {
        let mut txn = Txn::default();
        let uuid = self.create_in(&mut txn, ty, body, ctx)?;
        Ok((txn, uuid))
    }

    /// Create into an existing transaction (used by hooks for derived objects).
    pub(crate) fn create_in(
        &mut self,
        txn: &mut Txn,
        ty: &'static ResourceDef,
        body: &Value,
        ctx: &mut Ctx<'_>,
    ) -> Result<String> {
        let Some(body) = body.as_object() else {
            return bad(format!("Body of {} create must be a JSON object", ty.name));
        };
        let fq = match body.get("fq_name") {
            Some(v) if !v.is_null() => crate::input::parse_fq_name_of(ty.name, v)?,
            _ => return bad("fq_name is required"),
        };
        if let Some(n) = body.get("name").and_then(Value::as_str) {
            if fq.last().map(String::as_str) != Some(n) {
                return bad(format!(
                    "name {n:?} does not match fq_name {}",
                    fq_repr(&fq)
                ));
            }
        }
        let uuid = match body.get("uuid") {
            Some(Value::String(u)) => {
                check_uuid(u)?;
                if self.get(u).is_some() || txn.pending(u).is_some() {
                    return conflict(format!("uuid {u} already exists"));
                }
                u.clone()
            }
            Some(Value::Null) | None => (ctx.uuids)(),
            Some(other) => return bad(format!("uuid must be a string, got {other}")),
        };
        let parent = self.find_parent(ty, &fq, body, txn)?;
        if let Some(u) = self.uuid_in(txn, ty, &fq) {
            return conflict(format!("{} already exists with uuid: {u}", fq_repr(&fq)));
        }
        let Fields { mut props, refs } = parse_fields(self, ty, body)?;
        for p in ty.all_props() {
            if p.system
                && props.get(p.name).is_some_and(|v| !v.is_null())
                && !ctx.system
                && !ctx.trusted
                && !matches!(p.name, "id_perms" | "perms2")
            {
                return bad(format!(
                    "{} is assigned by the system and cannot be set",
                    p.name
                ));
            }
        }
        props.retain(|_, v| !v.is_null());
        let mut o = Obj {
            ty,
            uuid: uuid.clone(),
            fq_name: fq,
            parent,
            id_perms: IdPermsType::default(),
            perms2: PermType2::default(),
            props: Map::new(),
            refs: refs.into_iter().collect(),
            relaxed: BTreeSet::new(),
            seq: self.take_seq(),
        };
        let user_id_perms = props.remove("id_perms");
        let user_perms2 = props.remove("perms2");
        o.id_perms = id_perms(&o.uuid, &ctx.now, user_id_perms.as_ref(), ctx.system)?;
        o.perms2 = self.perms2(&o, user_perms2.as_ref(), ctx)?;
        let display = props
            .remove("display_name")
            .unwrap_or_else(|| Value::String(o.name().to_string()));
        o.props.insert("display_name".into(), display);
        o.props.extend(props);
        sync_is_shared(&mut o);
        hooks::on_create(self, txn, &mut o, ctx)?;
        txn.put(o);
        hooks::after_create(self, txn, &uuid, ctx)?;
        Ok(uuid)
    }

    fn find_parent(
        &self,
        ty: &'static ResourceDef,
        fq: &[String],
        body: &Map<String, Value>,
        txn: &Txn,
    ) -> Result<Option<(&'static ResourceDef, String)>> {
        let given = body
            .get("parent_type")
            .and_then(Value::as_str)
            .filter(|t| *t != "config-root");
        if fq.len() == 1 {
            if given.is_some() || !ty.is_root_child() {
                return bad(format!(
                    "{} {} needs a parent of type {}",
                    ty.name,
                    fq_repr(fq),
                    ty.parents.join(" or ")
                ));
            }
            return Ok(None);
        }
        let pfq = &fq[..fq.len() - 1];
        let candidates: Vec<&str> = match given {
            Some(t) if ty.parents.contains(&t) => vec![t],
            Some(t) => return bad(format!("{t} is not a valid parent type of {}", ty.name)),
            None => ty
                .parents
                .iter()
                .copied()
                .filter(|p| *p != "config-root")
                .collect(),
        };
        for c in &candidates {
            let Some(pdef) = index().resource(c) else {
                continue;
            };
            if let Some(pu) = self.uuid_in(txn, pdef, pfq) {
                if let Some(want) = body.get("parent_uuid").and_then(Value::as_str) {
                    if want != pu {
                        return bad(format!(
                            "parent_uuid {want} does not match parent {}",
                            fq_repr(pfq)
                        ));
                    }
                }
                return Ok(Some((pdef, pu)));
            }
        }
        bad(format!(
            "Parent {} type {} does not exist",
            fq_repr(pfq),
            candidates.join(" or ")
        ))
    }

    fn perms2(&self, o: &Obj, user: Option<&Value>, ctx: &Ctx<'_>) -> Result<PermType2> {
        let user: Option<PermType2> = typed_value(user, "perms2")?;
        let parent_owner = o
            .parent
            .as_ref()
            .and_then(|(_, pu)| self.get(pu))
            .filter(|p| p.ty.name != "domain" && p.ty.name != "config-root")
            .and_then(|p| p.perms2.owner.clone());
        let user_owner = user.as_ref().and_then(|u| u.owner.clone());
        let owner = if o.ty.name == "project" && user_owner.is_none() {
            Some(o.uuid.replace('-', ""))
        } else {
            user_owner
        };
        let owner = owner
            .or(parent_owner)
            .or_else(|| ctx.owner.clone())
            .unwrap_or_else(|| "cloud-admin".to_string());
        let mut p = PermType2 {
            owner: Some(owner),
            owner_access: Some(7),
            global_access: Some(0),
            share: vec![],
        };
        if let Some(u) = user {
            p.owner_access = u.owner_access.or(p.owner_access);
            p.global_access = u.global_access.or(p.global_access);
            if !u.share.is_empty() {
                p.share = u.share;
            }
        }
        Ok(p)
    }

    /// Update from the inner body of `{"<type>": {...}}`: only the fields given change.
    pub fn update(
        &mut self,
        ty: &'static ResourceDef,
        uuid: &str,
        body: &Value,
        ctx: &mut Ctx<'_>,
    ) -> Result<Txn> {
        let old = self.typed(ty, uuid)?.clone();
        let Some(body) = body.as_object() else {
            return bad(format!("Body of {} update must be a JSON object", ty.name));
        };
        if let Some(u) = body.get("uuid").and_then(Value::as_str) {
            if u != uuid {
                return bad(format!("uuid {u} in body does not match {uuid} in URL"));
            }
        }
        if let Some(fq) = body.get("fq_name").filter(|v| !v.is_null()) {
            if crate::input::parse_fq_name_of(ty.name, fq)? != old.fq_name {
                return bad("fq_name cannot be changed");
            }
        }
        let Fields { props, refs } = parse_fields(self, ty, body)?;
        let mut o = old.clone();
        for (k, v) in props {
            match k.as_str() {
                "id_perms" => {
                    if let Some(u) = typed_value::<IdPermsType>(Some(&v), "id_perms")? {
                        merge_id_perms(&mut o.id_perms, u);
                    }
                }
                "perms2" => {
                    let Some(u) = typed_value::<PermType2>(Some(&v), "perms2")? else {
                        continue;
                    };
                    if u.owner.is_none() {
                        return bad("perms2 in an update must include owner");
                    }
                    o.perms2.owner = u.owner;
                    o.perms2.owner_access = u.owner_access.or(o.perms2.owner_access);
                    o.perms2.global_access = u.global_access.or(o.perms2.global_access);
                    o.perms2.share = u.share;
                }
                _ => {
                    let def = ty.prop(&k);
                    if def.is_some_and(|d| d.system)
                        && !ctx.system
                        && old.prop(&k) != Some(&v)
                        && !v.is_null()
                    {
                        return bad(format!(
                            "{k} is assigned by the system and cannot be changed"
                        ));
                    }
                    if v.is_null() {
                        o.props.remove(&k);
                    } else {
                        o.props.insert(k, v);
                    }
                }
            }
        }
        if body.contains_key("is_shared") {
            let shared = o
                .prop("is_shared")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            o.perms2.global_access = Some(if shared { 7 } else { 0 });
        }
        for (field, links) in refs {
            o.refs.insert(field, links);
        }
        let live: BTreeSet<String> = o.ref_uuids().map(|(_, l)| l.uuid.clone()).collect();
        o.relaxed.retain(|r| live.contains(r));
        touch(&mut o, &ctx.now);
        let mut txn = Txn::default();
        hooks::on_update(self, &mut txn, &old, &mut o, ctx)?;
        txn.put(o);
        Ok(txn)
    }

    /// The object `uuid`, which must be of type `ty`.
    pub fn typed(&self, ty: &ResourceDef, uuid: &str) -> Result<&Obj> {
        match self.get(uuid) {
            Some(o) if o.ty.name == ty.name => Ok(o),
            Some(_) => not_found(format!("No {} object found for id {uuid}", ty.name)),
            None => not_found(format!("ID {uuid} does not exist")),
        }
    }

    /// Delete an object; refused (409) while user objects reference it or it
    /// has children other than `default-*` and system-created ones.
    pub fn delete(&mut self, ty: &'static ResourceDef, uuid: &str, base: &str) -> Result<Txn> {
        let o = self.typed(ty, uuid)?;
        let mut doomed = Vec::new();
        self.collect_cascade(o, &mut doomed, base)?;
        let doomed_set: BTreeSet<&str> = doomed.iter().map(|o| o.uuid.as_str()).collect();
        let mut blocking = Vec::new();
        for d in &doomed {
            for r in self.referrers(&d.uuid) {
                if doomed_set.contains(r.uuid.as_str())
                    || r.is_system_created()
                    || r.relaxed.contains(&d.uuid)
                {
                    continue;
                }
                blocking.push(href(base, r));
            }
        }
        if !blocking.is_empty() {
            blocking.dedup();
            return conflict(format!(
                "Delete when resource still referred: {}",
                py_list(&blocking)
            ));
        }
        // Referrers that stay (system-created ones, relaxed references) lose
        // their references to what is deleted: each is rewritten once.
        let mut remaining: BTreeMap<&str, &Obj> = BTreeMap::new();
        for d in &doomed {
            for r in self.referrers(&d.uuid) {
                if !doomed_set.contains(r.uuid.as_str()) {
                    remaining.insert(r.uuid.as_str(), r);
                }
            }
        }
        let mut txn = Txn::default();
        for r in remaining.into_values() {
            let mut r = r.clone();
            for links in r.refs.values_mut() {
                links.retain(|l| !doomed_set.contains(l.uuid.as_str()));
            }
            r.relaxed.retain(|u| !doomed_set.contains(u.as_str()));
            txn.puts.push(r);
        }
        txn.deletes = doomed.into_iter().cloned().collect();
        Ok(txn)
    }

    /// `o` plus its auto-deletable descendants; error if a user child remains.
    fn collect_cascade<'a>(&'a self, o: &'a Obj, out: &mut Vec<&'a Obj>, base: &str) -> Result<()> {
        let mut blocking = Vec::new();
        for c in self.children_of(&o.uuid) {
            let default_child = c.name() == format!("default-{}", c.ty.name);
            if default_child || c.is_system_created() {
                continue;
            }
            blocking.push(href(base, c));
        }
        if !blocking.is_empty() {
            return conflict(format!(
                "Delete when children still present: {}",
                py_list(&blocking)
            ));
        }
        out.push(o);
        for c in self.children_of(&o.uuid) {
            self.collect_cascade(c, out, base)?;
        }
        Ok(())
    }
}

/// A client-supplied system struct (already schema-validated) as its typed form.
fn typed_value<T: serde::de::DeserializeOwned>(v: Option<&Value>, what: &str) -> Result<Option<T>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| crate::ConfigError::BadRequest(format!("Bad property {what}: {e}"))),
    }
}

/// `id_perms` of a new object, keeping what the user may set.
fn id_perms(uuid: &str, now: &str, user: Option<&Value>, system: bool) -> Result<IdPermsType> {
    let (hi, lo) = match uuid::Uuid::parse_str(uuid) {
        Ok(u) => {
            let n = u.as_u128();
            ((n >> 64) as u64, n as u64)
        }
        Err(_) => (0, 0),
    };
    let mut p = IdPermsType {
        permissions: Some(PermType {
            owner: Some("cloud-admin".into()),
            owner_access: Some(7),
            group: Some("cloud-admin-group".into()),
            group_access: Some(7),
            other_access: Some(7),
        }),
        uuid: Some(UuidType {
            uuid_mslong: Some(hi),
            uuid_lslong: Some(lo),
        }),
        enable: Some(true),
        created: Some(now.to_string()),
        last_modified: Some(now.to_string()),
        description: None,
        user_visible: Some(true),
        creator: system.then(|| crate::SYSTEM_CREATOR.to_string()),
    };
    if let Some(u) = typed_value::<IdPermsType>(user, "id_perms")? {
        merge_id_perms(&mut p, u);
    }
    Ok(p)
}

/// Fields of id_perms a client may change; uuid and times stay system-maintained.
fn merge_id_perms(cur: &mut IdPermsType, u: IdPermsType) {
    if u.enable.is_some() {
        cur.enable = u.enable;
    }
    if u.description.is_some() {
        cur.description = u.description;
    }
    if u.user_visible.is_some() {
        cur.user_visible = u.user_visible;
    }
    if u.permissions.is_some() {
        cur.permissions = u.permissions;
    }
    if u.creator.is_some() {
        cur.creator = u.creator;
    }
}

/// Record a modification time (the ETag of reads).
pub(crate) fn touch(o: &mut Obj, now: &str) {
    o.id_perms.last_modified = Some(now.to_string());
}

/// `is_shared` ⇔ `perms2.global_access != 0`, for types that have `is_shared`.
pub(crate) fn sync_is_shared(o: &mut Obj) {
    if o.ty.prop("is_shared").is_none() {
        return;
    }
    let ga = o.perms2.global_access.unwrap_or(0);
    match o.prop("is_shared").and_then(Value::as_bool) {
        Some(true) if ga == 0 => o.perms2.global_access = Some(7),
        Some(_) => {}
        None => {
            o.props.insert("is_shared".into(), json!(ga != 0));
        }
    }
}

pub(crate) fn href(base: &str, o: &Obj) -> String {
    format!("{base}/{}/{}", o.ty.name, o.uuid)
}

fn py_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", q.join(", "))
}
