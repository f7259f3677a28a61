//! The action endpoints of the config API (tf-facts 1.5): fqname-to-id,
//! id-to-fqname, ref-update, ref-relax-for-delete, prop-collection-get/update,
//! useragent-kv, chown/chmod, obj-perms and the VN ip-alloc family.

use std::net::IpAddr;

use filament_schema::{index, validate, Collection, Ty};
use serde_json::{json, Value};

use crate::db::{ConfigDb, Txn};
use crate::error::{bad, fq_repr, not_found, Result};
use crate::input::{check_uuid, resolve_ref};
use crate::obj::RefLink;
use crate::write::{sync_is_shared, touch};
use crate::{hooks, ConfigError, Ctx};

fn field<'a>(req: &'a Value, k: &str) -> Result<&'a Value> {
    req.get(k)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ConfigError::BadRequest(format!("Missing field {k}")))
}
fn str_field<'a>(req: &'a Value, k: &str) -> Result<&'a str> {
    field(req, k)?
        .as_str()
        .ok_or_else(|| ConfigError::BadRequest(format!("{k} must be a string")))
}

impl ConfigDb {
    /// `POST /fqname-to-id`.
    pub fn fq_name_to_id(&self, req: &Value) -> Result<Value> {
        let ty_name = str_field(req, "type")?.replace('_', "-");
        let ty = index()
            .resource(&ty_name)
            .ok_or_else(|| ConfigError::NotFound(format!("Resource type '{ty_name}' not found")))?;
        let fq = crate::input::parse_fq_name_of(ty.name, field(req, "fq_name")?)?;
        match self.uuid_of(ty, &fq) {
            Some(u) => Ok(json!({ "uuid": u })),
            None => not_found(format!("Name {} not found", fq_repr(&fq))),
        }
    }

    /// `POST /id-to-fqname`.
    pub fn id_to_fq_name(&self, req: &Value) -> Result<Value> {
        let u = str_field(req, "uuid")?;
        check_uuid(u)?;
        match self.get(u) {
            Some(o) => Ok(json!({"fq_name": o.fq_name, "type": o.ty.name})),
            None => not_found(format!("ID {u} does not exist")),
        }
    }

    /// `POST /ref-update`: add (or re-attribute) or delete one reference.
    pub fn ref_update(&mut self, req: &Value, ctx: &mut Ctx<'_>) -> Result<(Txn, String)> {
        let ty_name = str_field(req, "type")?.replace('_', "-");
        let ty = index()
            .resource(&ty_name)
            .ok_or_else(|| ConfigError::NotFound(format!("Resource type '{ty_name}' not found")))?;
        let uuid = str_field(req, "uuid")?;
        check_uuid(uuid)?;
        let op = str_field(req, "operation")?;
        if op != "ADD" && op != "DELETE" {
            return bad(format!("Unknown operation {op}: expected ADD or DELETE"));
        }
        let ref_ty = str_field(req, "ref-type")?.replace('_', "-");
        let target = index()
            .resource(&ref_ty)
            .ok_or_else(|| ConfigError::NotFound(format!("Resource type '{ref_ty}' not found")))?;
        let def = ty.ref_to(target.name).ok_or_else(|| {
            ConfigError::BadRequest(format!("{} has no reference to {}", ty.name, target.name))
        })?;
        let old = self.typed(ty, uuid)?.clone();
        let ref_uuid = resolve_ref(
            self,
            target,
            req.get("ref-uuid"),
            req.get("ref-fq-name"),
            "ref",
        )?;
        let mut o = old.clone();
        let links = o.refs.entry(def.field);
        if op == "ADD" {
            let attr = req.get("attr").cloned().unwrap_or(Value::Null);
            if let Some(a) = def.attr {
                validate(&Ty::Struct(a), &attr, "attr")
                    .map_err(|e| ConfigError::BadRequest(format!("Bad reference attribute {e}")))?;
            }
            match links.iter_mut().find(|l| l.uuid == ref_uuid) {
                Some(l) => l.attr = attr,
                None => links.push(RefLink {
                    uuid: ref_uuid.clone(),
                    attr,
                }),
            }
            if req.get("relax_ref_for_delete").and_then(Value::as_bool) == Some(true) {
                o.relaxed.insert(ref_uuid.clone());
            }
        } else {
            links.retain(|l| l.uuid != ref_uuid);
            o.relaxed.remove(&ref_uuid);
        }
        touch(&mut o, &ctx.now);
        let mut txn = Txn::default();
        hooks::on_update(self, &mut txn, &old, &mut o, ctx)?;
        txn.put(o);
        Ok((txn, uuid.to_string()))
    }

    /// `POST /ref-relax-for-delete`.
    pub fn ref_relax(&mut self, req: &Value) -> Result<Txn> {
        let uuid = str_field(req, "uuid")?;
        let ref_uuid = str_field(req, "ref-uuid")?;
        check_uuid(uuid)?;
        check_uuid(ref_uuid)?;
        let Some(o) = self.get(uuid) else {
            return not_found(format!("ID {uuid} does not exist"));
        };
        if !o.ref_uuids().any(|(_, l)| l.uuid == ref_uuid) {
            return bad(format!("{uuid} has no reference to {ref_uuid}"));
        }
        let mut o = o.clone();
        o.relaxed.insert(ref_uuid.to_string());
        Ok(Txn {
            puts: vec![o],
            ..Txn::default()
        })
    }

    /// `GET /prop-collection-get?uuid=..&fields=a,b[&position=p]`.
    /// Lists answer `[[element, "position"], ...]`, maps `[element, ...]`.
    pub fn prop_collection_get(
        &self,
        uuid: &str,
        fields: &str,
        position: Option<&str>,
    ) -> Result<Value> {
        check_uuid(uuid)?;
        let Some(o) = self.get(uuid) else {
            return not_found(format!("ID {uuid} does not exist"));
        };
        let mut out = serde_json::Map::new();
        for f in fields.split(',').filter(|f| !f.is_empty()) {
            let Some(p) = o.ty.prop(f) else {
                return bad(format!("Unknown property {f} for {}", o.ty.name));
            };
            let items = o
                .prop(f)
                .and_then(|v| v.get(wrapper_of(p.collection)?))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let v = match p.collection {
                Collection::List { .. } => {
                    let pairs: Vec<Value> = items
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| position.is_none_or(|p| p == i.to_string()))
                        .map(|(i, e)| json!([e, i.to_string()]))
                        .collect();
                    Value::Array(pairs)
                }
                Collection::Map { key, .. } => Value::Array(
                    items
                        .into_iter()
                        .filter_map(|e| {
                            let k = e.get(key).and_then(Value::as_str)?.to_string();
                            position.is_none_or(|p| p == k).then(|| json!([e, k]))
                        })
                        .collect(),
                ),
                Collection::None => return bad(format!("{f} is not a list or map property")),
            };
            out.insert(f.to_string(), v);
        }
        Ok(Value::Object(out))
    }

    /// `POST /prop-collection-update`.
    pub fn prop_collection_update(&mut self, req: &Value, ctx: &Ctx<'_>) -> Result<Txn> {
        let uuid = str_field(req, "uuid")?;
        check_uuid(uuid)?;
        let Some(o) = self.get(uuid) else {
            return not_found(format!("ID {uuid} does not exist"));
        };
        let mut o = o.clone();
        let Some(updates) = field(req, "updates")?.as_array() else {
            return bad("updates must be a list");
        };
        for (i, up) in updates.iter().enumerate() {
            let f = str_field(up, "field")?;
            let op = str_field(up, "operation")?;
            let Some(p) = o.ty.prop(f) else {
                return bad(format!("Unknown property {f} for {}", o.ty.name));
            };
            let Some(wrapper) = wrapper_of(p.collection) else {
                return bad(format!("{f} is not a list or map property"));
            };
            let Ty::Struct(si) = p.ty else {
                return bad("schema: collection is not a struct");
            };
            let elem_ty = index()
                .struct_def(si)
                .and_then(|s| s.field(wrapper))
                .map(|fd| fd.ty)
                .and_then(|t| match t {
                    Ty::List(e) => Some(*e),
                    _ => None,
                })
                .ok_or_else(|| ConfigError::BadRequest("schema: bad wrapper".into()))?;
            let value = up.get("value").cloned().unwrap_or(Value::Null);
            let position = match up.get("position") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let mut cur = o.prop(f).cloned().unwrap_or_else(|| json!({ wrapper: [] }));
            let mut items = cur
                .get(wrapper)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let pos = |p: &Option<String>, len: usize| -> Result<usize> {
                match p.as_deref().map(str::parse::<usize>) {
                    Some(Ok(n)) if n < len => Ok(n),
                    Some(_) => bad(format!(
                        "updates[{i}]: no element at position {}",
                        p.as_deref().unwrap_or("")
                    )),
                    None => bad(format!("updates[{i}]: position is required")),
                }
            };
            match (p.collection, op) {
                (Collection::List { .. }, "add") => {
                    validate(&elem_ty, &value, f)
                        .map_err(|e| ConfigError::BadRequest(format!("Bad property {e}")))?;
                    match position.as_deref().map(str::parse::<usize>) {
                        Some(Ok(n)) if n <= items.len() => items.insert(n, value),
                        Some(_) => return bad(format!("updates[{i}]: bad position")),
                        None => items.push(value),
                    }
                }
                (Collection::List { .. }, "modify") => {
                    validate(&elem_ty, &value, f)
                        .map_err(|e| ConfigError::BadRequest(format!("Bad property {e}")))?;
                    let n = pos(&position, items.len())?;
                    items[n] = value;
                }
                (Collection::List { .. }, "delete") => {
                    let n = pos(&position, items.len())?;
                    items.remove(n);
                }
                (Collection::Map { key, .. }, "set") => {
                    validate(&elem_ty, &value, f)
                        .map_err(|e| ConfigError::BadRequest(format!("Bad property {e}")))?;
                    let Some(k) = value.get(key).and_then(Value::as_str).map(str::to_string) else {
                        return bad(format!("updates[{i}]: map element needs a string {key}"));
                    };
                    match items
                        .iter_mut()
                        .find(|e| e.get(key).and_then(Value::as_str) == Some(&k))
                    {
                        Some(e) => *e = value,
                        None => items.push(value),
                    }
                }
                (Collection::Map { key, .. }, "delete") => {
                    let Some(k) = position else {
                        return bad(format!("updates[{i}]: position (the key) is required"));
                    };
                    let before = items.len();
                    items.retain(|e| e.get(key).and_then(Value::as_str) != Some(&k));
                    if items.len() == before {
                        return not_found(format!("{f} has no element with key {k}"));
                    }
                }
                _ => return bad(format!("updates[{i}]: operation {op} is not valid for {f}")),
            }
            cur[wrapper] = Value::Array(items);
            o.props.insert(f.to_string(), cur);
        }
        touch(&mut o, &ctx.now);
        Ok(Txn {
            puts: vec![o],
            ..Txn::default()
        })
    }

    /// `POST /useragent-kv`: returns the writes and the response body.
    pub fn useragent_kv(&self, req: &Value) -> Result<(Txn, Value)> {
        let op = str_field(req, "operation")?;
        let key = str_field(req, "key")?.to_string();
        match op {
            "STORE" => {
                let v = match field(req, "value")? {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok((
                    Txn {
                        kv: vec![(key, Some(v))],
                        ..Txn::default()
                    },
                    json!({}),
                ))
            }
            "RETRIEVE" => match self.kv_get(&key) {
                Some(v) => Ok((Txn::default(), json!({ "value": v }))),
                None => not_found(format!("Key {key} not found")),
            },
            "DELETE" => Ok((
                Txn {
                    kv: vec![(key, None)],
                    ..Txn::default()
                },
                json!({}),
            )),
            _ => bad(format!(
                "Unknown operation {op}: expected STORE, RETRIEVE or DELETE"
            )),
        }
    }

    /// `POST /chown`.
    pub fn chown(&self, req: &Value, ctx: &Ctx<'_>) -> Result<Txn> {
        let uuid = str_field(req, "uuid")?;
        check_uuid(uuid)?;
        let owner = check_owner(str_field(req, "owner")?)?;
        let Some(o) = self.get(uuid) else {
            return not_found(format!("ID {uuid} does not exist"));
        };
        let mut o = o.clone();
        o.perms2.owner = Some(owner);
        touch(&mut o, &ctx.now);
        Ok(Txn {
            puts: vec![o],
            ..Txn::default()
        })
    }

    /// `POST /chmod`.
    pub fn chmod(&self, req: &Value, ctx: &Ctx<'_>) -> Result<Txn> {
        let uuid = str_field(req, "uuid")?;
        check_uuid(uuid)?;
        let Some(o) = self.get(uuid) else {
            return not_found(format!("ID {uuid} does not exist"));
        };
        let mut o = o.clone();
        let p = &mut o.perms2;
        if let Some(owner) = req.get("owner").and_then(Value::as_str) {
            p.owner = Some(check_owner(owner)?);
        }
        for k in ["owner_access", "global_access"] {
            if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
                let n = match v.as_i64() {
                    Some(n) if (0..=7).contains(&n) => n,
                    _ => return bad(format!("{k} must be an integer 0..7")),
                };
                if k == "owner_access" {
                    p.owner_access = Some(n);
                } else {
                    p.global_access = Some(n);
                }
            }
        }
        if let Some(share) = req.get("share").filter(|v| !v.is_null()) {
            let Some(items) = share.as_array() else {
                return bad("share must be a list");
            };
            let mut out = Vec::new();
            for s in items {
                let tenant = s.get("tenant").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::BadRequest("share entries need tenant and tenant_access".into())
                })?;
                let access = s
                    .get("tenant_access")
                    .and_then(Value::as_i64)
                    .filter(|n| (0..=7).contains(n));
                let Some(access) = access else {
                    return bad("tenant_access must be an integer 0..7");
                };
                let tenant = tenant.to_string();
                out.push(filament_schema::types::ShareType {
                    tenant: Some(tenant),
                    tenant_access: Some(access),
                });
            }
            p.share = out;
        }
        let shared = p.global_access.unwrap_or(0) != 0;
        if o.ty.prop("is_shared").is_some() {
            o.props.insert("is_shared".into(), json!(shared));
        }
        sync_is_shared(&mut o);
        touch(&mut o, &ctx.now);
        Ok(Txn {
            puts: vec![o],
            ..Txn::default()
        })
    }

    /// `GET /obj-perms?uuid=..`: without authentication every caller is the cloud admin.
    pub fn obj_perms(&self, uuid: Option<&str>) -> Result<Value> {
        if let Some(u) = uuid {
            check_uuid(u)?;
            if self.get(u).is_none() {
                return not_found(format!("ID {u} does not exist"));
            }
        }
        Ok(json!({"token_info": null, "is_cloud_admin_role": false,
                  "is_global_read_only_role": false, "permissions": "RWX"}))
    }

    /// `POST /virtual-network/<uuid>/ip-alloc`: reserve `count` addresses.
    pub fn vn_ip_alloc(&mut self, vn: &str, req: &Value) -> Result<Value> {
        check_uuid(vn)?;
        let vn_fq = self.typed(vn_def()?, vn)?.fq_name.clone();
        let count = req.get("count").and_then(Value::as_u64).unwrap_or(1);
        let subnet = req
            .get("subnet")
            .and_then(Value::as_str)
            .map(str::to_string);
        let want_v6 = req.get("family").and_then(Value::as_str) == Some("v6");
        let mut got = Vec::new();
        for _ in 0..count {
            let sids = self.allocs.vn_subnets.get(vn).cloned().unwrap_or_default();
            let mut one = None;
            for sid in sids {
                let Some(st) = self.allocs.subnets.get_mut(&sid) else {
                    continue;
                };
                let net = st.alloc.subnet().network();
                if subnet.as_ref().is_some_and(|s| *s != net.to_string())
                    || net.addr().is_ipv6() != want_v6
                {
                    continue;
                }
                if let Ok(ip) = st.alloc.allocate() {
                    one = Some(ip);
                    break;
                }
            }
            match one {
                Some(ip) => got.push(ip.to_string()),
                None => {
                    // Addresses taken by this call are released by the
                    // caller's rebuild after any refused write.
                    return Err(ConfigError::Conflict(format!(
                        "Virtual-Network({}) has exhausted subnet(s)",
                        fq_repr(&vn_fq)
                    )));
                }
            }
        }
        // Addresses reserved here are not backed by objects: they live until
        // ip-free or the next restart (as a client-managed pool).
        Ok(json!({ "ip_addr": got }))
    }

    /// `POST /virtual-network/<uuid>/ip-free`.
    pub fn vn_ip_free(&mut self, vn: &str, req: &Value) -> Result<Value> {
        check_uuid(vn)?;
        self.typed(vn_def()?, vn)?;
        let Some(ips) = req.get("ip_addr").and_then(Value::as_array) else {
            return bad("ip_addr must be a list of addresses");
        };
        for ip in ips {
            let ip: IpAddr = ip
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ConfigError::BadRequest(format!("Invalid address {ip}")))?;
            if let Some(sid) = self.find_subnet(vn, None, ip) {
                if let Some(st) = self.allocs.subnets.get_mut(&sid) {
                    st.alloc.release(ip);
                }
            }
        }
        Ok(json!({}))
    }

    /// `POST /virtual-network/<uuid>/subnet-ip-count`: used addresses per subnet.
    pub fn vn_subnet_ip_count(&self, vn: &str, req: &Value) -> Result<Value> {
        check_uuid(vn)?;
        self.typed(vn_def()?, vn)?;
        let Some(list) = req.get("subnet_list").and_then(Value::as_array) else {
            return bad("subnet_list must be a list of CIDRs");
        };
        let sids = self.allocs.vn_subnets.get(vn).cloned().unwrap_or_default();
        let mut counts = Vec::new();
        for s in list {
            let s = s.as_str().unwrap_or_default();
            let n = sids
                .iter()
                .filter_map(|sid| self.allocs.subnets.get(sid))
                .find(|st| st.alloc.subnet().network().to_string() == s)
                .map_or(0, |st| st.alloc.used_count());
            counts.push(json!(n as u64));
        }
        Ok(json!({ "ip_count_list": counts }))
    }
}

/// An owner is a project uuid, with or without dashes (stored without).
fn check_owner(owner: &str) -> Result<String> {
    let plain = owner.replace('-', "");
    if plain.len() == 32 && plain.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(plain.to_ascii_lowercase())
    } else {
        bad(format!("Invalid owner {owner}: expected a project uuid"))
    }
}

fn vn_def() -> Result<&'static filament_schema::ResourceDef> {
    index()
        .resource("virtual-network")
        .ok_or_else(|| ConfigError::BadRequest("schema has no virtual-network".into()))
}

fn wrapper_of(c: Collection) -> Option<&'static str> {
    match c {
        Collection::List { wrapper } | Collection::Map { wrapper, .. } => Some(wrapper),
        Collection::None => None,
    }
}
