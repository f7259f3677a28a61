//! Compilation of intent into derived state, and the diff against what the
//! config holds (tf-facts §4):
//!
//! - every virtual network's primary routing instance gets a system route
//!   target `target:<ASN>:<n>`, n from 8,000,001 up, kept for the life of the
//!   network, plus the user's route targets (both / import / export);
//! - a pass rule of a policy attached to network A that sends traffic from A
//!   to network B connects A's instance to B's (A imports B's targets); `<>`
//!   rules connect both ways;
//! - each network with policies gets an ACL (child named like the network)
//!   with the expanded rules in policy-sequence order, then an implicit
//!   allow within the network and an implicit deny;
//! - each security group gets ingress and egress ACLs with remote groups
//!   resolved to their `security_group_id`;
//! - each port's routing-instance reference points at its network's
//!   primary instance.
//!
//! Everything here is a pure function of the snapshot: same input, same
//! output, in the same order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use filament_config::{DerivedRef, DerivedWrite, StoredObj};
use filament_schema::types::{
    AddressType, PolicyEntriesType, PolicyRuleType, VirtualNetworkPolicyType,
};
use serde_json::{json, Map, Value};

use crate::acl;
use crate::snapshot::{ObjExt, Snapshot};

/// First number of the system route-target range.
pub const RT_FIRST: u64 = 8_000_001;
/// End (exclusive) of the system range for 2-byte ASNs.
pub const RT_END: u64 = 1 << 24;
/// ASN when global-system-config does not say.
pub const DEFAULT_ASN: u64 = 64512;

/// `(type, fq_name)` of a derived object.
pub type Key = (String, Vec<String>);

/// What a derived object should look like: these properties and these
/// complete reference lists. `owned` objects are created and deleted by the
/// transformer; the others (routing instances, ports) only get fields set.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObj {
    pub props: Map<String, Value>,
    pub refs: Vec<(String, Vec<DerivedRef>)>,
    pub owned: bool,
}

/// Derived state for a set of objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub objects: BTreeMap<Key, DesiredObj>,
    /// System route targets that must not exist (no longer referenced).
    pub orphans: BTreeSet<Vec<String>>,
}

/// Which intent objects to recompile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub all: bool,
    /// Route-target bookkeeping (allocation, orphans) must be redone:
    /// networks, routing instances or route targets changed.
    pub rts: bool,
    pub vns: BTreeSet<String>,
    pub sgs: BTreeSet<String>,
    pub vmis: BTreeSet<String>,
}

impl Scope {
    pub fn all() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }
    pub fn is_empty(&self) -> bool {
        !self.all && !self.rts && self.vns.is_empty() && self.sgs.is_empty() && self.vmis.is_empty()
    }
    fn has_vn(&self, u: &str) -> bool {
        self.all || self.vns.contains(u)
    }
}

/// Objects of `ty` in scope, in creation order: the whole type for a full
/// compile, else just the listed uuids (no scan of every object).
fn in_scope<'a>(
    snap: &'a Snapshot,
    ty: &str,
    all: bool,
    set: &'a BTreeSet<String>,
) -> Vec<&'a StoredObj> {
    if all {
        return snap.of_type(ty).collect();
    }
    let mut v: Vec<&StoredObj> = set
        .iter()
        .filter_map(|u| snap.get(u))
        .filter(|o| o.ty == ty)
        .collect();
    v.sort_by_key(|o| o.seq);
    v
}

/// The global ASN.
pub fn asn(snap: &Snapshot) -> u64 {
    snap.of_type("global-system-config")
        .find_map(|g| g.prop("autonomous_system").and_then(Value::as_u64))
        .unwrap_or(DEFAULT_ASN)
}

/// `target:<asn>:<n>` → n, for names in the system range.
fn system_rt_number(name: &str) -> Option<u64> {
    let mut parts = name.split(':');
    let (Some("target"), Some(_asn), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    n.parse::<u64>()
        .ok()
        .filter(|n| (RT_FIRST - 1..RT_END).contains(n))
}

/// The bootstrap networks of `default-project` (underlay, link-local, DCI and
/// the placeholder network) carry no system route target: they are not
/// overlay VPNs, and a user's first network gets `target:<ASN>:8000001`.
pub fn is_infrastructure(vn: &StoredObj) -> bool {
    vn.fq_name.len() == 3
        && vn.fq_name[0] == "default-domain"
        && vn.fq_name[1] == "default-project"
        && matches!(
            vn.fq_name[2].as_str(),
            "ip-fabric" | "__link_local__" | "dci-network" | "default-virtual-network"
        )
}

/// The primary routing instance of a network.
pub fn primary_ri<'a>(snap: &'a Snapshot, vn: &StoredObj) -> Option<&'a StoredObj> {
    let mut fq = vn.fq_name.clone();
    fq.push(vn.name().to_string());
    snap.lookup("routing-instance", &fq)
}

/// The system route-target number an instance already holds.
fn held_rt(snap: &Snapshot, ri: &StoredObj) -> Option<u64> {
    ri.refs_of("route_target_refs").iter().find_map(|l| {
        let rt = snap.get(&l.uuid)?;
        if !rt.is_system() {
            return None;
        }
        system_rt_number(rt.name())
    })
}

fn policies_of<'a>(
    snap: &'a Snapshot,
    vn: &StoredObj,
) -> Vec<(&'a StoredObj, Vec<PolicyRuleType>)> {
    let mut v: Vec<((i64, i64), &StoredObj)> = vn
        .refs_of("network_policy_refs")
        .iter()
        .filter_map(|l| {
            let p = snap.get(&l.uuid)?;
            let a: VirtualNetworkPolicyType =
                serde_json::from_value(l.attr.clone()).unwrap_or_default();
            let s = a.sequence.unwrap_or_default();
            Some(((s.major.unwrap_or(0), s.minor.unwrap_or(0)), p))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.fq_name.cmp(&b.1.fq_name)));
    v.into_iter()
        .map(|(_, p)| {
            let rules = p
                .prop("network_policy_entries")
                .and_then(|e| serde_json::from_value::<PolicyEntriesType>(e.clone()).ok())
                .map(|e| e.policy_rule)
                .unwrap_or_default();
            (p, rules)
        })
        .collect()
}

/// The network an address names, from the point of view of network `me`.
fn addr_vn<'a>(a: &'a AddressType, me: &'a str) -> Option<&'a str> {
    match a.virtual_network.as_deref()? {
        "local" => Some(me),
        "any" => None,
        other => Some(other),
    }
}

fn is_pass(r: &PolicyRuleType) -> bool {
    r.action_list
        .as_ref()
        .is_some_and(|a| a.simple_action.as_deref() == Some("pass") && a.apply_service.is_empty())
}

/// Networks that network `vn` imports routes from, by fq_name string.
fn connections(snap: &Snapshot, vn: &StoredObj) -> BTreeSet<String> {
    let me = vn.fq_name.join(":");
    let mut out = BTreeSet::new();
    for (_, rules) in policies_of(snap, vn) {
        for r in rules.iter().filter(|r| is_pass(r)) {
            let both = r.direction.as_deref() == Some("<>");
            for s in &r.src_addresses {
                for d in &r.dst_addresses {
                    let (Some(sv), Some(dv)) = (addr_vn(s, &me), addr_vn(d, &me)) else {
                        continue;
                    };
                    if sv == me && dv != me {
                        out.insert(dv.to_string());
                    }
                    if both && dv == me && sv != me {
                        out.insert(sv.to_string());
                    }
                }
            }
        }
    }
    out
}

fn rt_ref(name: &str, import_export: Option<&str>) -> DerivedRef {
    DerivedRef {
        target_type: "route-target".into(),
        to: vec![name.to_string()],
        attr: json!({ "import_export": import_export }),
    }
}

/// Compile the derived state of everything in `scope`.
pub fn compile(snap: &Snapshot, scope: &Scope) -> Desired {
    let asn = asn(snap);
    let mut d = Desired::default();
    // The global route-target bookkeeping (numbers in use, orphans) is only
    // needed when route targets may change: something RT-related changed,
    // or a network in scope has none yet. A policy change compiles only the
    // networks in scope.
    let rt_work = scope.all
        || scope.rts
        || scope.vns.iter().filter_map(|u| snap.get(u)).any(|vn| {
            !is_infrastructure(vn)
                && primary_ri(snap, vn).is_some_and(|ri| held_rt(snap, ri).is_none())
        });
    // Route-target numbers held by every instance (in scope or not).
    let mut used: BTreeSet<u64> = BTreeSet::new();
    let mut held: HashMap<&str, u64> = HashMap::new();
    for ri in snap.of_type("routing-instance").filter(|_| rt_work) {
        if let Some(n) = held_rt(snap, ri) {
            used.insert(n);
            held.insert(ri.uuid.as_str(), n);
        }
    }
    let mut next = RT_FIRST;
    // Route targets still referenced: by uuid from instances out of scope,
    // by name from the desired state of instances in scope.
    let mut referenced_uuids: HashSet<&str> = HashSet::new();
    let mut referenced: BTreeSet<Vec<String>> = BTreeSet::new();
    let vns = if rt_work {
        snap.of_type("virtual-network").collect()
    } else {
        in_scope(snap, "virtual-network", false, &scope.vns)
    };
    for vn in vns {
        let Some(ri) = primary_ri(snap, vn) else {
            continue;
        };
        if is_infrastructure(vn) {
            continue;
        }
        if !scope.has_vn(&vn.uuid) {
            for l in ri.refs_of("route_target_refs") {
                referenced_uuids.insert(l.uuid.as_str());
            }
            continue;
        }
        // System route target: the one held, else the lowest free number.
        let n = match held
            .get(ri.uuid.as_str())
            .copied()
            .or_else(|| held_rt(snap, ri))
        {
            Some(n) => n,
            None => {
                while used.contains(&next) {
                    next += 1;
                }
                used.insert(next);
                next
            }
        };
        let mut rts = vec![rt_ref(&format!("target:{asn}:{n}"), None)];
        for (field, ie) in [
            ("route_target_list", None),
            ("import_route_target_list", Some("import")),
            ("export_route_target_list", Some("export")),
        ] {
            let names = vn
                .prop(field)
                .and_then(|l| l.get("route_target"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for name in names.iter().filter_map(Value::as_str) {
                // User targets must stay below the system range.
                if system_rt_number(name).is_none() && !rts.iter().any(|r| r.to[0] == name) {
                    rts.push(rt_ref(name, ie));
                }
            }
        }
        for r in &rts {
            referenced.insert(r.to.clone());
            d.objects.insert(
                ("route-target".into(), r.to.clone()),
                DesiredObj {
                    props: Map::new(),
                    refs: vec![],
                    owned: true,
                },
            );
        }
        let conns: Vec<DerivedRef> = connections(snap, vn)
            .into_iter()
            .filter_map(|peer| {
                let pvn = snap.lookup_str("virtual-network", &peer)?;
                let pri = primary_ri(snap, pvn)?;
                Some(DerivedRef {
                    target_type: "routing-instance".into(),
                    to: pri.fq_name.clone(),
                    attr: json!({}),
                })
            })
            .collect();
        d.objects.insert(
            ("routing-instance".into(), ri.fq_name.clone()),
            DesiredObj {
                props: Map::new(),
                refs: vec![
                    ("route_target_refs".into(), rts),
                    ("routing_instance_refs".into(), conns),
                ],
                owned: false,
            },
        );
        let pols = policies_of(snap, vn);
        if !pols.is_empty() {
            let rules = acl::network_acl(&vn.fq_name.join(":"), &pols);
            let mut fq = vn.fq_name.clone();
            fq.push(vn.name().to_string());
            d.objects
                .insert(("access-control-list".into(), fq), acl_obj(rules));
        }
    }
    for rt in snap.of_type("route-target").filter(|_| rt_work) {
        if rt.is_system()
            && !referenced_uuids.contains(rt.uuid.as_str())
            && !referenced.contains(&rt.fq_name)
        {
            d.orphans.insert(rt.fq_name.clone());
        }
    }
    for sg in in_scope(snap, "security-group", scope.all, &scope.sgs) {
        let (ingress, egress) = acl::security_group_acls(snap, sg);
        for (name, rules) in [
            ("ingress-access-control-list", ingress),
            ("egress-access-control-list", egress),
        ] {
            let mut fq = sg.fq_name.clone();
            fq.push(name.into());
            d.objects
                .insert(("access-control-list".into(), fq), acl_obj(rules));
        }
    }
    for vmi in in_scope(snap, "virtual-machine-interface", scope.all, &scope.vmis) {
        let ri = vmi
            .refs_of("virtual_network_refs")
            .first()
            .and_then(|l| snap.get(&l.uuid))
            .and_then(|vn| primary_ri(snap, vn));
        let refs = ri
            .map(|ri| {
                vec![DerivedRef {
                    target_type: "routing-instance".into(),
                    to: ri.fq_name.clone(),
                    attr: json!({"direction": "both"}),
                }]
            })
            .unwrap_or_default();
        d.objects.insert(
            ("virtual-machine-interface".into(), vmi.fq_name.clone()),
            DesiredObj {
                props: Map::new(),
                refs: vec![("routing_instance_refs".into(), refs)],
                owned: false,
            },
        );
    }
    d
}

fn acl_obj(rules: Vec<Value>) -> DesiredObj {
    let mut props = Map::new();
    props.insert(
        "access_control_list_entries".into(),
        json!({"dynamic": false, "acl_rule": rules}),
    );
    DesiredObj {
        props,
        refs: vec![],
        owned: true,
    }
}

/// The derived state the snapshot holds for the same scope.
pub fn current(snap: &Snapshot, scope: &Scope) -> Desired {
    let mut d = Desired::default();
    let as_refs = |o: &StoredObj, field: &str, target_type: &str| -> Vec<DerivedRef> {
        o.refs_of(field)
            .iter()
            .filter_map(|l| {
                let t = snap.get(&l.uuid)?;
                Some(DerivedRef {
                    target_type: target_type.into(),
                    to: t.fq_name.clone(),
                    attr: l.attr.clone(),
                })
            })
            .collect()
    };
    for vn in in_scope(snap, "virtual-network", scope.all, &scope.vns)
        .into_iter()
        .filter(|v| !is_infrastructure(v))
    {
        let Some(ri) = primary_ri(snap, vn) else {
            continue;
        };
        d.objects.insert(
            ("routing-instance".into(), ri.fq_name.clone()),
            DesiredObj {
                props: Map::new(),
                refs: vec![
                    (
                        "route_target_refs".into(),
                        as_refs(ri, "route_target_refs", "route-target"),
                    ),
                    (
                        "routing_instance_refs".into(),
                        as_refs(ri, "routing_instance_refs", "routing-instance"),
                    ),
                ],
                owned: false,
            },
        );
        for rt in as_refs(ri, "route_target_refs", "route-target") {
            if snap
                .lookup("route-target", &rt.to)
                .is_some_and(ObjExt::is_system)
            {
                d.objects.insert(
                    ("route-target".into(), rt.to),
                    DesiredObj {
                        props: Map::new(),
                        refs: vec![],
                        owned: true,
                    },
                );
            }
        }
        for acl in snap
            .children(&vn.uuid)
            .filter(|c| c.ty == "access-control-list" && c.is_system())
        {
            d.objects.insert(
                ("access-control-list".into(), acl.fq_name.clone()),
                current_acl(acl),
            );
        }
    }
    for sg in in_scope(snap, "security-group", scope.all, &scope.sgs) {
        for acl in snap
            .children(&sg.uuid)
            .filter(|c| c.ty == "access-control-list" && c.is_system())
        {
            d.objects.insert(
                ("access-control-list".into(), acl.fq_name.clone()),
                current_acl(acl),
            );
        }
    }
    for vmi in in_scope(snap, "virtual-machine-interface", scope.all, &scope.vmis) {
        d.objects.insert(
            ("virtual-machine-interface".into(), vmi.fq_name.clone()),
            DesiredObj {
                props: Map::new(),
                refs: vec![(
                    "routing_instance_refs".into(),
                    as_refs(vmi, "routing_instance_refs", "routing-instance"),
                )],
                owned: false,
            },
        );
    }
    d
}

fn current_acl(acl: &StoredObj) -> DesiredObj {
    let mut props = Map::new();
    if let Some(e) = acl.prop("access_control_list_entries") {
        props.insert("access_control_list_entries".into(), e.clone());
    }
    DesiredObj {
        props,
        refs: vec![],
        owned: true,
    }
}

/// The writes that turn `current` into `desired`: puts in dependency order
/// (route targets first), deletes of owned objects no longer desired.
pub fn diff(desired: &Desired, current: &Desired) -> Vec<DerivedWrite> {
    let mut puts = Vec::new();
    for ((ty, fq), want) in &desired.objects {
        let have = current.objects.get(&(ty.clone(), fq.clone()));
        if have.is_some_and(|h| same(h, want)) {
            continue;
        }
        puts.push(DerivedWrite::Put {
            ty: ty.clone(),
            fq_name: fq.clone(),
            props: want.props.clone(),
            refs: want.refs.clone(),
        });
    }
    // Route targets before the instances that refer to them.
    puts.sort_by_key(|w| match w {
        DerivedWrite::Put { ty, .. } if ty == "route-target" => 0,
        _ => 1,
    });
    let mut deletes = Vec::new();
    for ((ty, fq), have) in &current.objects {
        if have.owned
            && !desired.objects.contains_key(&(ty.clone(), fq.clone()))
            && ty != "route-target"
        {
            deletes.push(DerivedWrite::Delete {
                ty: ty.clone(),
                fq_name: fq.clone(),
            });
        }
    }
    for fq in &desired.orphans {
        deletes.push(DerivedWrite::Delete {
            ty: "route-target".into(),
            fq_name: fq.clone(),
        });
    }
    puts.extend(deletes);
    puts
}

fn same(have: &DesiredObj, want: &DesiredObj) -> bool {
    want.props.iter().all(|(k, v)| have.props.get(k) == Some(v))
        && want
            .refs
            .iter()
            .all(|(f, l)| have.refs.iter().any(|(hf, hl)| hf == f && hl == l))
}

/// Full or scoped reconcile: the writes that bring derived state in line
/// with the intent of the objects in `scope`.
pub fn reconcile_scope(snap: &Snapshot, scope: &Scope) -> Vec<DerivedWrite> {
    if scope.is_empty() {
        let d = Desired {
            orphans: compile(snap, scope).orphans,
            ..Desired::default()
        };
        return diff(&d, &Desired::default());
    }
    diff(&compile(snap, scope), &current(snap, scope))
}
