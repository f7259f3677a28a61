//! The schema transformer: compiles intent (virtual networks, network
//! policies, security groups, ports) into derived state (route targets,
//! routing-instance imports and connections, ACLs), as TF's contrail-schema
//! does (tf-facts §4).
//!
//! - [`compile`] is the sans-IO core: `reconcile(snapshot, scope) -> writes`,
//!   pure and deterministic;
//! - [`Transformer`] keeps a [`Snapshot`] up to date from change-feed events
//!   and knows which intent each change affects (incremental compile);
//! - [`shell`] follows the store's change feed inside `filament up` and
//!   submits the writes through the API state, so every role sees one graph.
//!
//! Level-triggered: after a restart the transformer takes a fresh snapshot,
//! compiles everything once and follows the feed from that snapshot's
//! revision, so nothing is lost or applied twice.

pub mod acl;
pub mod compile;
pub mod shell;
pub mod snapshot;

use std::collections::BTreeSet;

use filament_config::{DerivedWrite, StoredObj};
use serde_json::Value;

pub use compile::{compile, current, diff, reconcile_scope, Desired, Scope};
pub use snapshot::{ObjExt, Snapshot};

/// One observed change: the object before and after (None = absent).
#[derive(Debug, Clone)]
pub struct Change {
    pub old: Option<StoredObj>,
    pub new: Option<StoredObj>,
}

/// The transformer state: the snapshot and the scope still to compile.
#[derive(Debug, Default)]
pub struct Transformer {
    snap: Snapshot,
    pending: Scope,
}

impl Transformer {
    /// Start from a full snapshot; everything is pending.
    pub fn new(objs: impl IntoIterator<Item = StoredObj>) -> Self {
        Self {
            snap: Snapshot::from_objects(objs),
            pending: Scope::all(),
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// Apply a put (Some) or delete (None) of object `uuid` and note what it affects.
    pub fn observe(&mut self, uuid: &str, new: Option<StoredObj>) {
        let old = match &new {
            Some(o) => self.snap.put(o.clone()),
            None => self.snap.delete(uuid),
        };
        let change = Change { old, new };
        let mut scope = std::mem::take(&mut self.pending);
        affected(&self.snap, &change, &mut scope);
        self.pending = scope;
    }

    /// The writes for everything observed since the last call.
    pub fn reconcile(&mut self) -> Vec<DerivedWrite> {
        let scope = std::mem::take(&mut self.pending);
        reconcile_scope(&self.snap, &scope)
    }

    /// Forget the pending scope and compile everything next time.
    pub fn mark_all(&mut self) {
        self.pending = Scope::all();
    }
}

/// `reconcile(snapshot, changed objects) -> writes`: the derived writes that
/// the given changes make necessary (the snapshot already includes them).
pub fn reconcile(snap: &Snapshot, changes: &[Change]) -> Vec<DerivedWrite> {
    let mut scope = Scope::default();
    for c in changes {
        affected(snap, c, &mut scope);
    }
    reconcile_scope(snap, &scope)
}

/// fq_name strings of networks named in a policy's rules.
fn named_vns(policy: &StoredObj) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let rules = policy
        .prop("network_policy_entries")
        .and_then(|e| e.get("policy_rule"))
        .and_then(Value::as_array);
    for r in rules.into_iter().flatten() {
        for side in ["src_addresses", "dst_addresses"] {
            for a in r.get(side).and_then(Value::as_array).into_iter().flatten() {
                if let Some(v) = a.get("virtual_network").and_then(Value::as_str) {
                    if v != "any" && v != "local" {
                        out.insert(v.to_string());
                    }
                }
            }
        }
    }
    out
}

fn named_sgs(sg: &StoredObj) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let rules = sg
        .prop("security_group_entries")
        .and_then(|e| e.get("policy_rule"))
        .and_then(Value::as_array);
    for r in rules.into_iter().flatten() {
        for side in ["src_addresses", "dst_addresses"] {
            for a in r.get(side).and_then(Value::as_array).into_iter().flatten() {
                if let Some(v) = a.get("security_group").and_then(Value::as_str) {
                    out.insert(v.to_string());
                }
            }
        }
    }
    out
}

/// Add to `scope` the intent objects whose derived state `change` can alter.
pub fn affected(snap: &Snapshot, change: &Change, scope: &mut Scope) {
    for o in change.old.iter().chain(change.new.iter()) {
        match o.ty.as_str() {
            "global-system-config" => {
                let asn = |x: &Option<StoredObj>| {
                    x.as_ref()
                        .and_then(|g| g.prop("autonomous_system").cloned())
                };
                if asn(&change.old) != asn(&change.new) {
                    scope.all = true;
                }
            }
            "virtual-network" => {
                scope.rts = true;
                scope.vns.insert(o.uuid.clone());
                let fq = o.fq_name.join(":");
                for p in snap.of_type("network-policy") {
                    if named_vns(p).contains(&fq) {
                        add_attached(snap, &p.uuid, scope);
                    }
                }
            }
            "network-policy" => {
                add_attached(snap, &o.uuid, scope);
                for fq in named_vns(o) {
                    if let Some(vn) = snap.lookup_str("virtual-network", &fq) {
                        scope.vns.insert(vn.uuid.clone());
                    }
                }
            }
            "route-target" => scope.rts = true,
            "routing-instance" | "access-control-list" => {
                if o.ty == "routing-instance" {
                    scope.rts = true;
                }
                if let Some(p) = &o.parent_uuid {
                    match o.parent_type.as_deref() {
                        Some("virtual-network") => scope.vns.insert(p.clone()),
                        Some("security-group") => scope.sgs.insert(p.clone()),
                        _ => false,
                    };
                }
            }
            "security-group" => {
                scope.sgs.insert(o.uuid.clone());
                let fq = o.fq_name.join(":");
                for sg in snap.of_type("security-group") {
                    if named_sgs(sg).contains(&fq) {
                        scope.sgs.insert(sg.uuid.clone());
                    }
                }
            }
            "virtual-machine-interface" => {
                scope.vmis.insert(o.uuid.clone());
            }
            _ => {}
        }
    }
}

/// Networks that reference policy `uuid`.
fn add_attached(snap: &Snapshot, uuid: &str, scope: &mut Scope) {
    for vn in snap.of_type("virtual-network") {
        if vn
            .refs_of("network_policy_refs")
            .iter()
            .any(|l| l.uuid == uuid)
        {
            scope.vns.insert(vn.uuid.clone());
        }
    }
}
