//! Type-specific server-side behaviour (TF's api-server resource hooks,
//! tf-facts 1.7): VN subnets, network ids and primary routing instance; port
//! MAC and routing-instance ref; instance-ip, floating-ip and alias-ip
//! address allocation; security-group ids; a project's default
//! application-policy-set.

use std::net::IpAddr;

use filament_ipam::{mac_from_uuid, normalize_mac, prefixes_overlap, IpamError, Subnet};
use filament_schema::index;
use serde_json::{json, Value};

use crate::db::{subnet_config, ConfigDb, Txn};
use crate::error::{bad, conflict, fq_repr, Result};
use crate::obj::Obj;
use crate::{ConfigError, Ctx};

/// Before a new object is added to the transaction.
pub(crate) fn on_create(
    db: &mut ConfigDb,
    txn: &mut Txn,
    o: &mut Obj,
    ctx: &mut Ctx<'_>,
) -> Result<()> {
    match o.ty.name {
        "virtual-network" => {
            prepare_subnets(db, None, o, ctx)?;
            let id = db.allocs.vn_ids.allocate().map_err(|e| {
                ConfigError::Conflict(format!("cannot allocate a virtual network id: {e}"))
            })?;
            o.props
                .insert("virtual_network_network_id".into(), json!(id));
        }
        "virtual-machine-interface" => {
            let mac = match o
                .prop("virtual_machine_interface_mac_addresses")
                .and_then(|m| m.get("mac_address"))
            {
                Some(Value::Array(macs)) if !macs.is_empty() => {
                    let mut norm = Vec::new();
                    for m in macs {
                        let s = m.as_str().unwrap_or_default();
                        norm.push(json!(normalize_mac(s).map_err(ipam_bad)?));
                    }
                    norm
                }
                _ => {
                    let u = uuid::Uuid::parse_str(&o.uuid)
                        .map_err(|e| ConfigError::BadRequest(e.to_string()))?;
                    vec![json!(mac_from_uuid(&u))]
                }
            };
            o.props.insert(
                "virtual_machine_interface_mac_addresses".into(),
                json!({ "mac_address": mac }),
            );
            set_vmi_routing_instance(db, txn, o)?;
        }
        "instance-ip" => allocate_address(db, txn, o, "instance_ip_address", "instance_ip_family")?,
        "floating-ip" => allocate_address(
            db,
            txn,
            o,
            "floating_ip_address",
            "floating_ip_address_family",
        )?,
        "alias-ip" => allocate_address(db, txn, o, "alias_ip_address", "alias_ip_address_family")?,
        "network-policy" => prepare_rules(o, "network_policy_entries", ctx)?,
        "security-group" => {
            prepare_rules(o, "security_group_entries", ctx)?;
            let id = db.allocs.sg_ids.allocate().map_err(|e| {
                ConfigError::Conflict(format!("cannot allocate a security group id: {e}"))
            })?;
            o.props.insert("security_group_id".into(), json!(id));
        }
        _ => {}
    }
    Ok(())
}

/// After the new object is in the transaction: derived objects that need it as parent.
pub(crate) fn after_create(
    db: &mut ConfigDb,
    txn: &mut Txn,
    uuid: &str,
    ctx: &mut Ctx<'_>,
) -> Result<()> {
    // Only these types derive objects; the new object is copied only where it changes.
    match txn.pending(uuid).map(|o| o.ty.name) {
        Some("virtual-network") => {
            let Some(o) = txn.pending(uuid) else {
                return Ok(());
            };
            // The primary routing instance: fq_name vn_fq + [vn name].
            let mut fq = o.fq_name.clone();
            fq.push(o.name().to_string());
            let body = json!({"fq_name": fq, "parent_type": "virtual-network",
                              "routing_instance_is_default": true});
            system_create(db, txn, "routing-instance", &body, ctx)?;
        }
        Some("project") => {
            let Some(o) = txn.pending(uuid).cloned() else {
                return Ok(());
            };
            let mut fq = o.fq_name.clone();
            fq.push("default-application-policy-set".into());
            let body = json!({"fq_name": fq, "parent_type": "project"});
            let aps = system_create(db, txn, "application-policy-set", &body, ctx)?;
            let mut p = o;
            p.refs
                .entry("application_policy_set_refs")
                .push(crate::obj::RefLink {
                    uuid: aps,
                    attr: Value::Null,
                });
            txn.put(p);
        }
        _ => {}
    }
    Ok(())
}

fn system_create(
    db: &mut ConfigDb,
    txn: &mut Txn,
    ty: &str,
    body: &Value,
    ctx: &mut Ctx<'_>,
) -> Result<String> {
    let def = index()
        .resource(ty)
        .ok_or_else(|| ConfigError::BadRequest(format!("schema has no {ty}")))?;
    let was = ctx.system;
    ctx.system = true;
    let r = db.create_in(txn, def, body, ctx);
    ctx.system = was;
    r
}

/// Before an updated object replaces `old`.
pub(crate) fn on_update(
    db: &mut ConfigDb,
    txn: &mut Txn,
    old: &Obj,
    o: &mut Obj,
    ctx: &mut Ctx<'_>,
) -> Result<()> {
    match o.ty.name {
        "virtual-network" => prepare_subnets(db, Some(old), o, ctx)?,
        "network-policy" => prepare_rules(o, "network_policy_entries", ctx)?,
        "security-group" => prepare_rules(o, "security_group_entries", ctx)?,
        "virtual-machine-interface"
            if old.refs_of("virtual_network_refs") != o.refs_of("virtual_network_refs") =>
        {
            set_vmi_routing_instance(db, txn, o)?;
        }
        "instance-ip" | "floating-ip" | "alias-ip" => {
            for f in [
                "instance_ip_address",
                "floating_ip_address",
                "alias_ip_address",
                "subnet_uuid",
            ] {
                if old.prop(f) != o.prop(f) {
                    return bad(format!("{f} cannot be changed after create"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A port joins its network's primary routing instance (tf-facts 1.7).
fn set_vmi_routing_instance(db: &ConfigDb, txn: &Txn, o: &mut Obj) -> Result<()> {
    let Some(vn_ref) = o.refs_of("virtual_network_refs").first().cloned() else {
        return bad("virtual-machine-interface needs a virtual_network_refs entry");
    };
    let vn = db
        .get(&vn_ref.uuid)
        .or_else(|| txn.pending(&vn_ref.uuid))
        .ok_or_else(|| {
            ConfigError::NotFound(format!("virtual network {} not found", vn_ref.uuid))
        })?;
    let mut ri_fq = vn.fq_name.clone();
    ri_fq.push(vn.name().to_string());
    let ri_def = index()
        .resource("routing-instance")
        .ok_or_else(|| ConfigError::BadRequest("schema".into()))?;
    let links = match db.uuid_of(ri_def, &ri_fq) {
        Some(ri) => vec![crate::obj::RefLink {
            uuid: ri.to_string(),
            attr: json!({"direction": "both"}),
        }],
        None => vec![],
    };
    o.refs.insert("routing_instance_refs", links);
    Ok(())
}

fn ipam_bad(e: IpamError) -> ConfigError {
    ConfigError::BadRequest(e.to_string())
}

/// Validate a VN's subnets and fill what the server assigns: subnet_uuid,
/// default_gateway, dns_server_address. Subnets kept from `old` keep their
/// uuid; removing a subnet with addresses in use is refused.
fn prepare_subnets(db: &ConfigDb, old: Option<&Obj>, o: &mut Obj, ctx: &mut Ctx<'_>) -> Result<()> {
    let old_subnets: Vec<(String, Value)> = old
        .map(|v| {
            v.refs_of("network_ipam_refs")
                .iter()
                .filter_map(|r| r.attr.get("ipam_subnets").and_then(Value::as_array))
                .flatten()
                .filter_map(|s| Some((s.get("subnet_uuid")?.as_str()?.to_string(), s.clone())))
                .collect()
        })
        .unwrap_or_default();
    let mut nets: Vec<(ipnet::IpNet, String)> = Vec::new();
    let mut kept = Vec::new();
    let Some(links) = o.refs.get_mut("network_ipam_refs") else {
        return check_removed(db, old, &old_subnets, &kept);
    };
    for link in links.iter_mut() {
        let Some(subnets) = link
            .attr
            .get_mut("ipam_subnets")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for s in subnets.iter_mut() {
            let cfg = match subnet_config(s) {
                Some(c) => c,
                None => {
                    return bad(
                        "ipam_subnets entry needs subnet.ip_prefix and subnet.ip_prefix_len",
                    )
                }
            };
            let sub = Subnet::new(&cfg).map_err(ipam_bad)?;
            let net = sub.network();
            if let Some((other, _)) = nets.iter().find(|(n, _)| prefixes_overlap(n, &net)) {
                return bad(format!(
                    "Overlapping subnets {other} and {net} in virtual network {}",
                    fq_repr(&o.fq_name)
                ));
            }
            // Same prefix as before → same subnet (keep its uuid).
            let prev = old_subnets.iter().find(|(_, v)| {
                subnet_config(v)
                    .and_then(|c| Subnet::new(&c).ok())
                    .map(|x| x.network())
                    == Some(net)
            });
            let sid = match (s.get("subnet_uuid").and_then(Value::as_str), prev) {
                (Some(u), _) if !u.is_empty() => u.to_string(),
                (_, Some((u, _))) => u.clone(),
                _ => (ctx.uuids)(),
            };
            s["subnet_uuid"] = json!(sid);
            s["default_gateway"] = json!(sub.default_gateway_field());
            if let Some(d) = sub.dns_server_address() {
                s["dns_server_address"] = json!(d.to_string());
            }
            if s.get("enable_dhcp").is_none_or(Value::is_null) {
                s["enable_dhcp"] = json!(true);
            }
            if s.get("addr_from_start").is_none_or(Value::is_null) {
                s["addr_from_start"] = json!(false);
            }
            nets.push((net, sid.clone()));
            kept.push(sid);
        }
    }
    check_removed(db, old, &old_subnets, &kept)
}

fn check_removed(
    db: &ConfigDb,
    old: Option<&Obj>,
    old_subnets: &[(String, Value)],
    kept: &[String],
) -> Result<()> {
    let Some(old) = old else { return Ok(()) };
    for (sid, v) in old_subnets {
        if kept.contains(sid) {
            continue;
        }
        let in_use = db
            .allocs
            .subnets
            .get(sid)
            .is_some_and(|st| st.alloc.used_addresses().next().is_some());
        if in_use {
            let p = v.get("subnet").cloned().unwrap_or(Value::Null);
            return conflict(format!(
                "Cannot Delete IP Block {}/{} of virtual network {}: IP(s) in use",
                p.get("ip_prefix").and_then(Value::as_str).unwrap_or("?"),
                p.get("ip_prefix_len").and_then(Value::as_i64).unwrap_or(0),
                fq_repr(&old.fq_name)
            ));
        }
    }
    Ok(())
}

/// VNs whose addresses are not managed here (the underlay and link-local).
fn unmanaged_vn(vn: &Obj) -> bool {
    matches!(vn.name(), "ip-fabric" | "__link_local__")
}

/// Give an instance-ip / floating-ip / alias-ip its address: the requested one
/// (409 if in use, 400 if the gateway or outside the subnets) or the next free
/// one, top-down, from the VN's subnets.
fn allocate_address(
    db: &mut ConfigDb,
    txn: &Txn,
    o: &mut Obj,
    field: &str,
    family_field: &str,
) -> Result<()> {
    let vn_uuid = match o.ty.name {
        "instance-ip" => match o.refs_of("virtual_network_refs").first() {
            Some(r) => r.uuid.clone(),
            None if o.prop(field).is_some() => return Ok(()),
            None => return bad("instance-ip needs a virtual_network_refs entry (or an address)"),
        },
        _ => {
            let pool = o
                .parent
                .as_ref()
                .and_then(|(_, pu)| db.get(pu).or_else(|| txn.pending(pu)))
                .ok_or_else(|| {
                    ConfigError::BadRequest(format!("{} needs a parent pool", o.ty.name))
                })?;
            pool.parent
                .as_ref()
                .map(|(_, u)| u.clone())
                .ok_or_else(|| ConfigError::BadRequest("pool has no virtual network".into()))?
        }
    };
    let vn = db
        .get(&vn_uuid)
        .ok_or_else(|| ConfigError::NotFound(format!("virtual network {vn_uuid} not found")))?;
    let vn_fq = vn.fq_name.clone();
    let family = o
        .prop(family_field)
        .and_then(Value::as_str)
        .map(str::to_string);
    if unmanaged_vn(vn) {
        if let Some(ip) = o.prop(field).and_then(Value::as_str) {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| ConfigError::BadRequest(format!("Invalid {field} {ip}")))?;
            o.props.insert(
                family_field.into(),
                json!(if ip.is_ipv4() { "v4" } else { "v6" }),
            );
        }
        return Ok(());
    }
    let subnets = db
        .allocs
        .vn_subnets
        .get(&vn_uuid)
        .cloned()
        .unwrap_or_default();
    if subnets.is_empty() {
        return bad(format!(
            "Virtual network {} has no subnets to allocate from",
            fq_repr(&vn_fq)
        ));
    }
    let hint = o
        .prop("subnet_uuid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (ip, sid) = match o.prop(field).and_then(Value::as_str) {
        Some(req) => {
            let ip: IpAddr = req
                .parse()
                .map_err(|_| ConfigError::BadRequest(format!("Invalid {field} {req}")))?;
            let Some(sid) = db.find_subnet(&vn_uuid, hint.as_deref(), ip) else {
                return bad(format!(
                    "Requested address {ip} is not in any subnet of {}",
                    fq_repr(&vn_fq)
                ));
            };
            let st = db
                .allocs
                .subnets
                .get_mut(&sid)
                .ok_or_else(|| ConfigError::BadRequest("subnet".into()))?;
            st.alloc.reserve(ip).map_err(|e| match e {
                IpamError::InUse { .. } => {
                    ConfigError::Conflict(format!("IP address {ip} already in use"))
                }
                other => ipam_bad(other),
            })?;
            (ip, sid)
        }
        None => {
            let want_v6 = family.as_deref() == Some("v6");
            let mut got = None;
            for sid in subnets
                .iter()
                .filter(|s| hint.is_none() || hint.as_deref() == Some(s.as_str()))
            {
                let Some(st) = db.allocs.subnets.get_mut(sid) else {
                    continue;
                };
                if st.alloc.subnet().network().addr().is_ipv6() != want_v6 {
                    continue;
                }
                if let Ok(ip) = st.alloc.allocate() {
                    got = Some((ip, sid.clone()));
                    break;
                }
            }
            match got {
                Some(g) => g,
                None => {
                    return conflict(format!(
                        "Virtual-Network({}) has exhausted subnet(s){}",
                        fq_repr(&vn_fq),
                        if hint.is_some() {
                            " (the requested subnet_uuid)"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
    };
    o.props.insert(field.into(), json!(ip.to_string()));
    o.props.insert(
        family_field.into(),
        json!(if ip.is_ipv4() { "v4" } else { "v6" }),
    );
    if o.ty.prop("subnet_uuid").is_some() {
        o.props.insert("subnet_uuid".into(), json!(sid));
    }
    Ok(())
}

/// Policy and security-group rules: every rule gets a `rule_uuid`, the same
/// rule twice is refused (409), and a numeric protocol must be 0..=255.
fn prepare_rules(o: &mut Obj, field: &str, ctx: &mut Ctx<'_>) -> Result<()> {
    let Some(rules) = o
        .props
        .get_mut(field)
        .and_then(|e| e.get_mut("policy_rule"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut seen: Vec<Value> = Vec::new();
    for (i, r) in rules.iter_mut().enumerate() {
        if let Some(p) = r.get("protocol").and_then(Value::as_str) {
            let named = matches!(p, "any" | "tcp" | "udp" | "icmp" | "icmp6");
            if !named && !p.parse::<u16>().is_ok_and(|n| n <= 255) {
                return bad(format!("{field}.policy_rule[{i}]: invalid protocol {p:?}: expected any, tcp, udp, icmp, icmp6 or 0..255"));
            }
        }
        let mut key = r.clone();
        if let Some(k) = key.as_object_mut() {
            k.remove("rule_uuid");
            k.remove("created");
            k.remove("last_modified");
        }
        if seen.contains(&key) {
            return conflict(format!("{field}.policy_rule[{i}]: rule already exists"));
        }
        seen.push(key);
        if r.get("rule_uuid")
            .is_none_or(|u| u.as_str().is_none_or(str::is_empty))
        {
            r["rule_uuid"] = json!((ctx.uuids)());
        }
    }
    Ok(())
}
