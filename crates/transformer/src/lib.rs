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

use std::collections::{BTreeSet, HashMap};

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

/// The transformer state: the snapshot, the scope still to compile, and the
/// derived writes it made that the feed has not shown yet.
#[derive(Debug, Default)]
pub struct Transformer {
    snap: Snapshot,
    pending: Scope,
    /// `(type, fq_name)` → what we wrote (None: deleted). An event that shows
    /// exactly that is our own echo and needs no recompile; anything else
    /// (a user editing derived state) is compiled as usual and repaired.
    written: HashMap<(String, Vec<String>), Option<DerivedWrite>>,
    /// Revision of our last committed writes: compile again only once the
    /// feed has shown it, or we would compile from a snapshot without them.
    wait_for: u64,
}

impl Transformer {
    /// Start from a full snapshot; everything is pending.
    pub fn new(objs: impl IntoIterator<Item = StoredObj>) -> Self {
        Self {
            snap: Snapshot::from_objects(objs),
            pending: Scope::all(),
            written: HashMap::new(),
            wait_for: 0,
        }
    }

    /// Whether a compile may run now that the feed has shown revision
    /// `seen`: not before our own last writes are in the snapshot.
    pub fn due(&self, seen: u64) -> bool {
        seen >= self.wait_for
    }

    /// Our writes were committed at `revision`: wait for it in the feed
    /// before compiling again, and recognise their echo when it comes.
    pub fn committed(&mut self, writes: &[DerivedWrite], revision: u64) {
        self.wait_for = self.wait_for.max(revision);
        for w in writes {
            match w {
                DerivedWrite::Put { ty, fq_name, .. } => {
                    self.written
                        .insert((ty.clone(), fq_name.clone()), Some(w.clone()));
                }
                DerivedWrite::Delete { ty, fq_name } => {
                    self.written.insert((ty.clone(), fq_name.clone()), None);
                }
            }
        }
    }

    /// Whether a change is exactly the echo of a write of ours.
    fn is_echo(&mut self, old: Option<&StoredObj>, new: Option<&StoredObj>) -> bool {
        let Some(o) = new.or(old) else { return false };
        if !matches!(
            o.ty.as_str(),
            "route-target" | "routing-instance" | "access-control-list"
        ) {
            return false;
        }
        let Some(w) = self.written.remove(&(o.ty.clone(), o.fq_name.clone())) else {
            return false;
        };
        match (w, new) {
            (None, None) => true,
            (Some(DerivedWrite::Put { props, refs, .. }), Some(n)) => {
                props.iter().all(|(k, v)| n.props.get(k) == Some(v))
                    && refs.iter().all(|(field, want)| {
                        let have = n.refs.get(field).map_or(&[][..], Vec::as_slice);
                        have.len() == want.len()
                            && have.iter().zip(want).all(|(h, w)| {
                                h.attr == w.attr
                                    && self.snap.get(&h.uuid).is_some_and(|t| t.fq_name == w.to)
                            })
                    })
            }
            _ => false,
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
        if self.is_echo(old.as_ref(), new.as_ref()) {
            return;
        }
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

/// Names in the `field` of the source and destination addresses of the
/// rules in `entries` (`network_policy_entries` or `security_group_entries`),
/// except the `skip` keywords.
fn named_in_rules(o: &StoredObj, entries: &str, field: &str, skip: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let rules = o
        .prop(entries)
        .and_then(|e| e.get("policy_rule"))
        .and_then(Value::as_array);
    for r in rules.into_iter().flatten() {
        for side in ["src_addresses", "dst_addresses"] {
            for a in r.get(side).and_then(Value::as_array).into_iter().flatten() {
                if let Some(v) = a.get(field).and_then(Value::as_str) {
                    if !skip.contains(&v) {
                        out.insert(v.to_string());
                    }
                }
            }
        }
    }
    out
}

/// fq_name strings of networks named in a policy's rules.
fn named_vns(policy: &StoredObj) -> BTreeSet<String> {
    named_in_rules(
        policy,
        "network_policy_entries",
        "virtual_network",
        &["any", "local"],
    )
}

/// Security groups named in a group's rules.
fn named_sgs(sg: &StoredObj) -> BTreeSet<String> {
    named_in_rules(sg, "security_group_entries", "security_group", &[])
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
