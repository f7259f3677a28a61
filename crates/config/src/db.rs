//! The in-memory config database: objects plus the indexes every operation
//! needs (fq_name → uuid, children, back-references, per-type order) and the
//! allocation state (network ids, security-group ids, subnet address pools).
//!
//! Writes are planned against `&mut ConfigDb` (allocators are taken eagerly),
//! committed to the store by the shell, then applied with [`ConfigDb::apply`].
//! If the commit fails the shell calls [`ConfigDb::rebuild_allocators`], which
//! recomputes allocation state from the objects, so nothing leaks.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use filament_ipam::{IdAllocator, SubnetAllocator, SubnetConfig};
use filament_schema::ResourceDef;
use serde_json::Value;

use crate::obj::{Obj, StoredObj};

/// The writes of one operation, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    /// Objects created or replaced (full new state).
    pub puts: Vec<Obj>,
    /// Objects deleted (their last state).
    pub deletes: Vec<Obj>,
    /// User-agent key/value changes: `(key, Some(value))` stores, `None` deletes.
    pub kv: Vec<(String, Option<String>)>,
}

impl Txn {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty() && self.kv.is_empty()
    }
    /// Replace a pending put of the same uuid, or add one.
    pub fn put(&mut self, o: Obj) {
        match self.puts.iter_mut().find(|p| p.uuid == o.uuid) {
            Some(p) => *p = o,
            None => self.puts.push(o),
        }
    }
    pub fn pending(&self, uuid: &str) -> Option<&Obj> {
        self.puts.iter().find(|p| p.uuid == uuid)
    }
}

/// Allocation state of one VN subnet.
#[derive(Debug, Clone)]
pub struct SubnetState {
    pub vn: String,
    pub alloc: SubnetAllocator,
}

/// Ids and addresses in use, derived from the objects.
#[derive(Debug, Clone)]
pub struct Allocs {
    pub vn_ids: IdAllocator,
    pub sg_ids: IdAllocator,
    /// By subnet_uuid.
    pub subnets: HashMap<String, SubnetState>,
    /// VN uuid → its subnet uuids in order.
    pub vn_subnets: HashMap<String, Vec<String>>,
}

impl Allocs {
    fn new() -> Self {
        Self {
            vn_ids: IdAllocator::virtual_network_ids(),
            sg_ids: IdAllocator::security_group_ids(),
            subnets: HashMap::new(),
            vn_subnets: HashMap::new(),
        }
    }
}

/// The config database.
#[derive(Debug)]
pub struct ConfigDb {
    pub(crate) objects: HashMap<String, Obj>,
    /// Indexes refer to objects by creation seq: one u64 instead of another
    /// copy of the uuid string per entry. `by_seq` resolves a seq.
    pub(crate) by_seq: HashMap<u64, String>,
    pub(crate) by_fq: HashMap<(&'static str, String), u64>,
    pub(crate) by_type: HashMap<&'static str, BTreeSet<u64>>,
    /// Parent uuid → children seqs, sorted (creation order).
    pub(crate) children: HashMap<String, Vec<u64>>,
    /// Target uuid → referrer seqs, sorted (creation order).
    /// A vector: most targets have one or two referrers.
    pub(crate) back_refs: HashMap<String, Vec<u64>>,
    pub(crate) kv: HashMap<String, String>,
    pub(crate) allocs: Allocs,
    pub(crate) next_seq: u64,
}

impl Default for ConfigDb {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigDb {
    pub fn new() -> Self {
        Self {
            objects: HashMap::new(),
            by_seq: HashMap::new(),
            by_fq: HashMap::new(),
            by_type: HashMap::new(),
            children: HashMap::new(),
            back_refs: HashMap::new(),
            kv: HashMap::new(),
            allocs: Allocs::new(),
            next_seq: 1,
        }
    }

    /// Load persisted objects and user-agent keys (any order).
    pub fn load(
        objs: impl IntoIterator<Item = StoredObj>,
        kv: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let mut db = Self::new();
        for s in objs {
            let o = Obj::from_stored(s)?;
            db.next_seq = db.next_seq.max(o.seq + 1);
            db.index(o);
        }
        db.kv = kv.into_iter().collect();
        db.rebuild_allocators();
        Ok(db)
    }

    pub fn get(&self, uuid: &str) -> Option<&Obj> {
        self.objects.get(uuid)
    }
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
    pub fn uuid_of(&self, ty: &ResourceDef, fq: &[String]) -> Option<&str> {
        self.by_fq
            .get(&(ty.name, fq.join(":")))
            .and_then(|s| self.by_seq.get(s))
            .map(String::as_str)
    }
    /// The uuid of `ty` named `fq`, committed or created earlier in `txn`.
    pub(crate) fn uuid_in(&self, txn: &Txn, ty: &ResourceDef, fq: &[String]) -> Option<String> {
        self.uuid_of(ty, fq).map(str::to_string).or_else(|| {
            txn.puts
                .iter()
                .find(|p| p.ty.name == ty.name && p.fq_name == fq)
                .map(|p| p.uuid.clone())
        })
    }
    pub fn lookup(&self, ty: &ResourceDef, fq: &[String]) -> Option<&Obj> {
        self.uuid_of(ty, fq).and_then(|u| self.objects.get(u))
    }
    /// Objects of a type in creation order.
    pub fn of_type<'a>(&'a self, ty: &ResourceDef) -> impl Iterator<Item = &'a Obj> + 'a {
        self.by_type
            .get(ty.name)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|s| self.by_seq.get(s))
            .filter_map(|u| self.objects.get(u))
    }
    /// Children of an object in creation order.
    pub fn children_of<'a>(&'a self, uuid: &str) -> impl Iterator<Item = &'a Obj> + 'a {
        self.children
            .get(uuid)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(|s| self.by_seq.get(s))
            .filter_map(|u| self.objects.get(u))
    }
    /// Objects referencing `uuid`, in creation order.
    pub fn referrers<'a>(&'a self, uuid: &str) -> impl Iterator<Item = &'a Obj> + 'a {
        self.back_refs
            .get(uuid)
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(|s| self.by_seq.get(s))
            .filter_map(|u| self.objects.get(u))
    }
    pub fn kv_get(&self, key: &str) -> Option<&str> {
        self.kv.get(key).map(String::as_str)
    }
    pub fn allocs(&self) -> &Allocs {
        &self.allocs
    }
    pub(crate) fn take_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Apply a committed transaction to the in-memory state.
    pub fn apply(&mut self, txn: Txn) {
        for d in &txn.deletes {
            if let Some(old) = self.unindex(&d.uuid) {
                self.release_allocs(&old);
            }
        }
        for p in txn.puts {
            let old = self.unindex(&p.uuid);
            let uuid = p.uuid.clone();
            self.index(p);
            self.sync_allocs(old.as_ref(), &uuid);
        }
        for (k, v) in txn.kv {
            match v {
                Some(v) => self.kv.insert(k, v),
                None => self.kv.remove(&k),
            };
        }
    }

    fn index(&mut self, mut o: Obj) {
        o.compact();
        self.by_seq.insert(o.seq, o.uuid.clone());
        self.by_fq.insert((o.ty.name, o.fq_str()), o.seq);
        self.by_type.entry(o.ty.name).or_default().insert(o.seq);
        if let Some((_, p)) = &o.parent {
            sorted_insert(self.children.entry(p.clone()).or_default(), o.seq);
        }
        for (_, r) in o.ref_uuids() {
            sorted_insert(self.back_refs.entry(r.uuid.clone()).or_default(), o.seq);
        }
        self.objects.insert(o.uuid.clone(), o);
    }

    fn unindex(&mut self, uuid: &str) -> Option<Obj> {
        let o = self.objects.remove(uuid)?;
        self.by_seq.remove(&o.seq);
        self.by_fq.remove(&(o.ty.name, o.fq_str()));
        if let Some(m) = self.by_type.get_mut(o.ty.name) {
            m.remove(&o.seq);
        }
        if let Some((_, p)) = &o.parent {
            if let Some(s) = self.children.get_mut(p) {
                sorted_remove(s, o.seq);
                if s.is_empty() {
                    self.children.remove(p);
                }
            }
        }
        for (_, r) in o.ref_uuids() {
            if let Some(s) = self.back_refs.get_mut(&r.uuid) {
                sorted_remove(s, o.seq);
                if s.is_empty() {
                    self.back_refs.remove(&r.uuid);
                }
            }
        }
        Some(o)
    }

    /// Recompute every allocator from the objects.
    pub fn rebuild_allocators(&mut self) {
        self.allocs = Allocs::new();
        let mut order: Vec<(bool, u64, String)> = self
            .objects
            .values()
            .map(|o| (o.ty.name != "virtual-network", o.seq, o.uuid.clone()))
            .collect();
        // Networks first: addresses are reserved inside their subnets.
        order.sort();
        for (_, _, u) in order {
            self.sync_allocs(None, &u);
        }
    }

    /// Bring allocation state in line with object `uuid` (which replaced `old`).
    fn sync_allocs(&mut self, old: Option<&Obj>, uuid: &str) {
        // Most objects (ports, policies, ...) hold no ids or addresses: skip
        // taking them out of the map and back.
        if !self
            .objects
            .get(uuid)
            .is_some_and(|o| holds_allocations(o.ty.name))
        {
            return;
        }
        // Take the object out while allocators change, then put it back.
        let Some(new) = self.objects.remove(uuid) else {
            return;
        };
        self.sync_allocs_of(old, &new);
        self.objects.insert(new.uuid.clone(), new);
    }

    fn sync_allocs_of(&mut self, old: Option<&Obj>, new: &Obj) {
        match new.ty.name {
            "virtual-network" => {
                if let Some(id) = new
                    .prop("virtual_network_network_id")
                    .and_then(Value::as_u64)
                {
                    let _ = self.allocs.vn_ids.reserve(id);
                }
                self.sync_vn_subnets(new);
            }
            "security-group" => {
                if let Some(id) = new.prop("security_group_id").and_then(Value::as_u64) {
                    let _ = self.allocs.sg_ids.reserve(id);
                }
            }
            _ => {
                if let Some(old) = old {
                    if address_of(old) != address_of(new) {
                        self.release_allocs(old);
                    }
                }
                if let Some((vn, ip, subnet)) = self.address_holder(new) {
                    let _ = self.reserve_ip(&vn, subnet.as_deref(), ip);
                }
            }
        }
    }

    fn release_allocs(&mut self, old: &Obj) {
        match old.ty.name {
            "virtual-network" => {
                if let Some(id) = old
                    .prop("virtual_network_network_id")
                    .and_then(Value::as_u64)
                {
                    self.allocs.vn_ids.release(id);
                }
                if let Some(subs) = self.allocs.vn_subnets.remove(&old.uuid) {
                    for s in subs {
                        self.allocs.subnets.remove(&s);
                    }
                }
            }
            "security-group" => {
                if let Some(id) = old.prop("security_group_id").and_then(Value::as_u64) {
                    self.allocs.sg_ids.release(id);
                }
            }
            _ => {
                if let Some((vn, ip, subnet)) = self.address_holder(old) {
                    if let Some(s) = self.find_subnet(&vn, subnet.as_deref(), ip) {
                        if let Some(st) = self.allocs.subnets.get_mut(&s) {
                            st.alloc.release(ip);
                        }
                    }
                }
            }
        }
    }

    /// (VN uuid, address, subnet uuid) for objects that hold an address of a VN.
    pub(crate) fn address_holder(&self, o: &Obj) -> Option<(String, IpAddr, Option<String>)> {
        let (ip, vn) = match o.ty.name {
            "instance-ip" => (
                o.prop("instance_ip_address")?,
                o.refs_of("virtual_network_refs").first()?.uuid.clone(),
            ),
            "floating-ip" | "alias-ip" => {
                let field = if o.ty.name == "floating-ip" {
                    "floating_ip_address"
                } else {
                    "alias_ip_address"
                };
                let pool = self.objects.get(&o.parent.as_ref()?.1)?;
                (o.prop(field)?, pool.parent.as_ref()?.1.clone())
            }
            _ => return None,
        };
        let ip: IpAddr = ip.as_str()?.parse().ok()?;
        let subnet = o
            .prop("subnet_uuid")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some((vn, ip, subnet))
    }

    /// The subnet of `vn` holding `ip` (preferring `hint`).
    pub(crate) fn find_subnet(&self, vn: &str, hint: Option<&str>, ip: IpAddr) -> Option<String> {
        if let Some(h) = hint {
            if self
                .allocs
                .subnets
                .get(h)
                .is_some_and(|s| s.vn == vn && s.alloc.contains(ip))
            {
                return Some(h.to_string());
            }
        }
        self.allocs
            .vn_subnets
            .get(vn)?
            .iter()
            .find(|s| {
                self.allocs
                    .subnets
                    .get(*s)
                    .is_some_and(|st| st.alloc.contains(ip))
            })
            .cloned()
    }

    fn reserve_ip(&mut self, vn: &str, hint: Option<&str>, ip: IpAddr) -> Option<()> {
        let s = self.find_subnet(vn, hint, ip)?;
        let st = self.allocs.subnets.get_mut(&s)?;
        if !st.alloc.is_used(ip) {
            st.alloc.reserve(ip).ok()?;
        }
        Some(())
    }

    /// Keep a VN's subnet allocators in line with its `network_ipam_refs`
    /// subnets: new subnets get an allocator, removed ones are dropped,
    /// unchanged ones keep their used addresses.
    fn sync_vn_subnets(&mut self, vn: &Obj) {
        let mut now = Vec::new();
        for (sid, cfg) in vn_subnet_configs(vn) {
            if !self.allocs.subnets.contains_key(&sid) {
                if let Ok(alloc) = SubnetAllocator::new(&cfg) {
                    self.allocs.subnets.insert(
                        sid.clone(),
                        SubnetState {
                            vn: vn.uuid.clone(),
                            alloc,
                        },
                    );
                }
            }
            if self.allocs.subnets.contains_key(&sid) {
                now.push(sid);
            }
        }
        if let Some(before) = self.allocs.vn_subnets.get(&vn.uuid) {
            for s in before {
                if !now.contains(s) {
                    self.allocs.subnets.remove(s);
                }
            }
        }
        self.allocs.vn_subnets.insert(vn.uuid.clone(), now);
    }
}

/// Types whose objects take ids or addresses from [`Allocs`]: networks
/// (network id, subnets), security groups (id) and address holders (see
/// [`ConfigDb::address_holder`]). An update never changes an object's type.
fn holds_allocations(ty: &str) -> bool {
    matches!(
        ty,
        "virtual-network" | "security-group" | "instance-ip" | "floating-ip" | "alias-ip"
    )
}

fn address_of(o: &Obj) -> Option<&Value> {
    o.prop("instance_ip_address")
        .or_else(|| o.prop("floating_ip_address"))
        .or_else(|| o.prop("alias_ip_address"))
}

/// `(subnet_uuid, config)` of every subnet on a VN's network-ipam references.
pub(crate) fn vn_subnet_configs(vn: &Obj) -> Vec<(String, SubnetConfig)> {
    let mut out = Vec::new();
    for r in vn.refs_of("network_ipam_refs") {
        let Some(subnets) = r.attr.get("ipam_subnets").and_then(Value::as_array) else {
            continue;
        };
        for s in subnets {
            if let (Some(id), Some(cfg)) = (
                s.get("subnet_uuid").and_then(Value::as_str),
                subnet_config(s),
            ) {
                out.push((id.to_string(), cfg));
            }
        }
    }
    out
}

/// The allocation-relevant fields of one `IpamSubnetType` JSON value.
pub(crate) fn subnet_config(s: &Value) -> Option<SubnetConfig> {
    let sn = s.get("subnet")?;
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let mut cfg = SubnetConfig::new(
        sn.get("ip_prefix")?.as_str()?,
        sn.get("ip_prefix_len")?.as_i64()?,
    );
    cfg.default_gateway = text(s.get("default_gateway"));
    cfg.dns_server_address = text(s.get("dns_server_address"));
    cfg.addr_from_start = s
        .get("addr_from_start")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(pools) = s.get("allocation_pools").and_then(Value::as_array) {
        for p in pools {
            if let (Some(a), Some(b)) = (text(p.get("start")), text(p.get("end"))) {
                cfg = cfg.with_pool(a, b);
            }
        }
    }
    Some(cfg)
}

impl ConfigDb {
    /// Every object (any order); for tests and dumps.
    pub fn objects_for_test(&self) -> impl Iterator<Item = &Obj> {
        self.objects.values()
    }
}

/// Insert into a sorted vector (no duplicate). Creation order makes this an
/// append in the common case.
fn sorted_insert(v: &mut Vec<u64>, key: u64) {
    if let Err(i) = v.binary_search(&key) {
        v.insert(i, key);
    }
}

fn sorted_remove(v: &mut Vec<u64>, key: u64) {
    if let Ok(i) = v.binary_search(&key) {
        v.remove(i);
    }
}
