//! Routing tables of the control node and replication between them by route targets
//! (tf-facts §3): per routing instance `<ri>.inet.0`, `<ri>.inet6.0`, `<ri>.evpn.0`; global
//! `bgp.l3vpn.0`, `bgp.l3vpn-inet6.0`, `bgp.evpn.0`, `bgp.rtarget.0`.
//!
//! ```text
//!  agent (XMPP) ──add_local──> <ri>.inet.0 (primary) ──export RTs──> bgp.l3vpn.0 (key RD:prefix)
//!  BGP peer ─────add_vpn────────────────────────────────────────────> bgp.l3vpn.0
//!                                   bgp.l3vpn.0 ──import RTs──> <other ri>.inet.0 (secondary)
//! ```
//! Every path has a source ([`PeerId`]): an XMPP agent, a BGP peer, or the node itself.  A
//! BGP speaker plugs in through [`Rib::add_vpn`] / [`Rib::del_vpn`] (paths it learned) and
//! reads what to advertise from the VPN tables after [`Rib::take_dirty`].
//!
//! Memory and CPU (issue 4: a million BGP-learned VPN routes): a path's own fields are small
//! and shared where they repeat. Peer names, RDs and table names are interned [`Name`]s (8
//! bytes), the label lives in the [`Path`] (not in the attributes) so one `Arc<PathAttrs>`
//! serves every route of a peer with the same attributes, a route's single path is stored
//! inline ([`Paths`]), and tables are slabs with a hash index of fixed-size [`Key`]s
//! (`table.rs`) that keep their path counts up to date.
//!
//! Changes of BGP-learned paths in the global VPN tables are not recorded as dirty: nothing
//! reads them there (agents get instance tables, and the BGP link advertises only the best
//! non-BGP path of a route, which a BGP path never changes), so a full table from a peer
//! costs no dirty set and no message back to the speaker.
//!
//! Best path: highest local-pref, then shortest AS path, then lowest MED, then XMPP/local
//! before BGP, then source and RD.  Paths equal on (local-pref, AS path length, MED) are
//! ECMP and all are pushed as next hops of one item.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;

mod pool;
mod table;
use pool::{imports, Pool};
pub use table::{Key, Name, Table};

/// Address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    /// IPv4 unicast (XMPP 1/1, BGP inet-vpn 1/128).
    Inet,
    /// IPv6 unicast (XMPP 2/1, BGP inet6-vpn 2/128).
    Inet6,
    /// EVPN (XMPP 25/242, BGP e-vpn 25/70).
    Evpn,
}

impl Family {
    /// Suffix of the per-instance table (`inet.0`).
    pub fn vrf_suffix(self) -> &'static str {
        match self {
            Family::Inet => "inet.0",
            Family::Inet6 => "inet6.0",
            Family::Evpn => "evpn.0",
        }
    }
    /// The global VPN table.
    pub fn vpn_table(self) -> &'static str {
        match self {
            Family::Inet => "bgp.l3vpn.0",
            Family::Inet6 => "bgp.l3vpn-inet6.0",
            Family::Evpn => "bgp.evpn.0",
        }
    }
    /// Every family.
    pub const ALL: [Family; 3] = [Family::Inet, Family::Inet6, Family::Evpn];
}

/// The route-target membership table (RFC 4684).
pub const RTARGET_TABLE: &str = "bgp.rtarget.0";

/// Name of an instance's table.
pub fn vrf_table(ri: &str, f: Family) -> String {
    format!("{ri}.{}", f.vrf_suffix())
}

/// Who contributed a path (the name is shared by every path of the source: the RIB
/// interns it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerId {
    /// This control node (route-target membership, static routes).
    Local,
    /// A vRouter agent over XMPP, by name.
    Xmpp(Name),
    /// A BGP peer, by its address or name.
    Bgp(Name),
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerId::Local => f.write_str("Local"),
            PeerId::Xmpp(n) => write!(f, "{n}"),
            PeerId::Bgp(n) => write!(f, "{n}"),
        }
    }
}

/// Path attributes as TF carries them (tf-facts §2.4, §3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PathAttrs {
    /// Next-hop (compute node / router) address.
    pub next_hop: String,
    /// Tunnel encapsulations (`gre`, `udp`, `vxlan`, ...).
    pub encap: Vec<String>,
    /// Router MAC (EVPN).
    pub mac: Option<String>,
    /// Origin virtual network (fq name).
    pub origin_vn: Option<String>,
    /// Its `virtual_network_network_id` (TF's `origin-vn:<asn>:<vn id>` community), when known.
    pub origin_vn_id: Option<u32>,
    /// Security group ids.
    pub security_groups: Vec<u32>,
    /// Community tags.
    pub communities: Vec<String>,
    /// Tag ids of the next hop.
    pub tags: Vec<u32>,
    /// Local preference (100 low, 200 high).
    pub local_pref: u32,
    /// MED (derived from local-pref for agent paths).
    pub med: u32,
    /// MAC mobility `(seqno, sticky)`.
    pub mobility: Option<(u32, bool)>,
    /// `sub-protocol` (`interface`, ...).
    pub sub_protocol: Option<String>,
    /// AS path length (0 for agent paths).
    pub as_path_len: u32,
    /// Route targets (extended communities) the path carries in VPN tables.
    pub route_targets: BTreeSet<String>,
    /// The path carries LLGR_STALE (RFC 9494 §4.3: least preferred; TF's `PathCompare`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub llgr_stale: bool,
}

/// Whether a path is the original or a copy made by replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Learned in this table.
    Primary,
    /// Replicated from `table`.
    Secondary {
        /// The primary table (interned).
        table: Name,
    },
}

/// One path of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Source.
    pub peer: PeerId,
    /// Route distinguisher (`<agent-ip>:<instance-id>`), when known (interned).
    pub rd: Option<Name>,
    /// MPLS label or VNI (per route, so kept out of the shared attributes).
    pub label: u32,
    /// Attributes (one `Arc` per distinct set, shared between routes and replicas).
    pub attrs: Arc<PathAttrs>,
    /// Primary or secondary.
    pub origin: Origin,
    /// For VPN paths learned from an instance: that instance (interned).
    pub vrf: Option<Name>,
}

impl Path {
    fn rank(
        &self,
    ) -> (
        bool,
        std::cmp::Reverse<u32>,
        u32,
        u32,
        u8,
        &PeerId,
        Option<&str>,
    ) {
        let a = &self.attrs;
        let kind = match self.peer {
            PeerId::Local | PeerId::Xmpp(_) => 0,
            PeerId::Bgp(_) => 1,
        };
        (
            a.llgr_stale,
            std::cmp::Reverse(a.local_pref),
            a.as_path_len,
            a.med,
            kind,
            &self.peer,
            self.rd.as_deref(),
        )
    }
    fn ecmp_key(&self) -> (bool, u32, u32, u32) {
        (
            self.attrs.llgr_stale,
            self.attrs.local_pref,
            self.attrs.as_path_len,
            self.attrs.med,
        )
    }
}

/// The paths of one destination: one inline (the common case: no heap block per route).
pub type Paths = SmallVec<[Path; 1]>;

/// All paths to one destination, best first.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Paths, best first.
    pub paths: Paths,
}

impl Route {
    /// The best path and every path ECMP with it.
    pub fn best(&self) -> &[Path] {
        let Some(first) = self.paths.first() else {
            return &[];
        };
        let n = self
            .paths
            .iter()
            .take_while(|p| p.ecmp_key() == first.ecmp_key())
            .count();
        &self.paths[..n]
    }

    fn upsert(&mut self, p: Path) {
        self.paths.retain(|q| !(q.peer == p.peer && q.rd == p.rd));
        self.paths.push(p);
        self.paths.sort_by(|a, b| a.rank().cmp(&b.rank()));
    }

    fn remove(&mut self, peer: &PeerId, rd: Option<&str>) -> Option<Path> {
        let i = self
            .paths
            .iter()
            .position(|q| q.peer == *peer && q.rd.as_deref() == rd)?;
        Some(self.paths.remove(i))
    }
}

/// Import / export targets of an instance as the RIB uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceTargets {
    /// Imported targets.
    pub import: BTreeSet<String>,
    /// Exported targets.
    pub export: BTreeSet<String>,
}

/// A secondary path made by replication: `(instance, source, RD)`.
type ReplicaId = (Name, PeerId, Option<Name>);

/// Changed routes: table name → keys.
pub type Dirty = BTreeMap<String, BTreeSet<Key>>;

/// Whether a table is one of the global ones (`bgp.l3vpn.0`, ...).
fn is_global(table: &str) -> bool {
    table.starts_with("bgp.")
}

/// All tables plus replication state.
#[derive(Debug, Default)]
pub struct Rib {
    tables: BTreeMap<String, Table>,
    instances: BTreeMap<String, InstanceTargets>,
    /// route target → instances importing it.
    importers: BTreeMap<String, BTreeSet<String>>,
    /// Attribute set (by address; the `Arc` is held so it is not reused) → whether an
    /// instance imports one of its targets; cleared when the importers change.
    imported: hashbrown::HashMap<usize, (Arc<PathAttrs>, bool)>,
    /// `(family, vpn key)` → `(instance, peer, rd)` of the secondaries made from it.
    replicas: BTreeMap<(Family, Key), BTreeSet<ReplicaId>>,
    dirty: Dirty,
    /// One `Arc` per distinct attribute set: paths with equal attributes (a
    /// gateway's per-VRF label, an agent's routes of one port) share it.
    attr_pool: Pool<Arc<PathAttrs>>,
    /// One [`Name`] per distinct peer name, RD and table name.
    names: Pool<Name>,
}

/// The VPN key of a prefix: `RD:prefix` (RD `0:0` when there is none).
pub fn vpn_key(rd: &Option<String>, prefix: &str) -> String {
    vpn_key_str(rd.as_deref(), prefix)
}

/// [`vpn_key`] of a borrowed RD.
pub fn vpn_key_str(rd: Option<&str>, prefix: &str) -> String {
    format!("{}:{prefix}", rd.unwrap_or("0:0"))
}

impl Rib {
    /// Empty RIB.
    pub fn new() -> Self {
        Rib::default()
    }

    /// Table by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Every table, by name.
    pub fn tables(&self) -> &BTreeMap<String, Table> {
        &self.tables
    }

    /// Targets of an instance (if configured).
    pub fn instance(&self, ri: &str) -> Option<&InstanceTargets> {
        self.instances.get(ri)
    }

    /// The shared copy of an attribute set (paths with equal attributes hold one `Arc`).
    pub fn share(&mut self, a: PathAttrs) -> Arc<PathAttrs> {
        self.attr_pool.get(&a, || Arc::new(a.clone()))
    }

    /// The shared copy of a name (peer, RD, table).
    pub fn name(&mut self, s: &str) -> Name {
        self.names.get(s, || Name::from(s))
    }

    /// The shared copy of a peer id (for [`Rib::add_vpn_key`]).
    pub fn peer(&mut self, p: &PeerId) -> PeerId {
        match p {
            PeerId::Local => PeerId::Local,
            PeerId::Xmpp(n) => PeerId::Xmpp(self.name(n)),
            PeerId::Bgp(n) => PeerId::Bgp(self.name(n)),
        }
    }

    /// Number of distinct attribute sets held.
    pub fn attr_sets(&self) -> usize {
        self.attr_pool.set.len()
    }

    /// Every route changed since the last call, by table (keys of BGP-learned paths in the
    /// global VPN tables are left out: see the module doc).
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    fn mark(&mut self, table: &str, key: &Key) {
        match self.dirty.get_mut(table) {
            Some(s) => {
                s.insert(key.clone());
            }
            None => {
                self.dirty
                    .insert(table.to_string(), BTreeSet::from([key.clone()]));
            }
        }
    }

    fn upsert(&mut self, table: &str, key: &Key, p: Path) {
        let record = !(is_global(table) && matches!(p.peer, PeerId::Bgp(_)));
        let t = match self.tables.get_mut(table) {
            Some(t) => t,
            None => self.tables.entry(table.to_string()).or_default(),
        };
        t.upsert(key, p);
        if record {
            self.mark(table, key);
        }
    }

    fn remove(&mut self, table: &str, key: &Key, peer: &PeerId, rd: Option<&str>) -> Option<Path> {
        let t = self.tables.get_mut(table)?;
        let p = t.remove(key, peer, rd);
        if t.is_empty() {
            self.tables.remove(table);
        }
        if p.is_some() && !(is_global(table) && matches!(peer, PeerId::Bgp(_))) {
            self.mark(table, key);
        }
        p
    }

    /// A path learned in an instance (from an agent): installed as primary in the
    /// instance's table, exported to the VPN table with the instance's export targets, and
    /// replicated to every instance importing one of them.
    // (instance, family, prefix) + (source, RD, label, attributes): what TF's agent publishes
    #[allow(clippy::too_many_arguments)]
    pub fn add_local(
        &mut self,
        ri: &str,
        fam: Family,
        prefix: &str,
        peer: PeerId,
        rd: Option<String>,
        label: u32,
        mut attrs: PathAttrs,
    ) {
        attrs.route_targets = self
            .instances
            .get(ri)
            .map(|i| i.export.clone())
            .unwrap_or_default();
        let attrs = self.share(attrs);
        let peer = self.peer(&peer);
        let rd = rd.map(|r| self.name(&r));
        let table = self.name(&vrf_table(ri, fam));
        let pkey = Key::parse(prefix);
        // replace a path of the same source under another RD (instance id changed)
        let old_rd = self
            .tables
            .get(&*table)
            .and_then(|t| t.get_key(&pkey))
            .and_then(|r| {
                r.paths
                    .iter()
                    .find(|p| p.peer == peer && p.origin == Origin::Primary)
            })
            .map(|p| p.rd.clone());
        if let Some(old) = old_rd.filter(|o| *o != rd) {
            self.del_local(ri, fam, prefix, &peer, &old.map(|o| o.to_string()));
        }
        self.upsert(
            &table,
            &pkey,
            Path {
                peer: peer.clone(),
                rd: rd.clone(),
                label,
                attrs: attrs.clone(),
                origin: Origin::Primary,
                vrf: None,
            },
        );
        let key = Key::vpn(rd.as_deref(), prefix);
        let vrf = self.name(ri);
        self.upsert(
            fam.vpn_table(),
            &key,
            Path {
                peer,
                rd,
                label,
                attrs,
                origin: Origin::Secondary { table },
                vrf: Some(vrf),
            },
        );
        self.replicate(fam, &key);
    }

    /// Withdraw a path learned in an instance.
    pub fn del_local(
        &mut self,
        ri: &str,
        fam: Family,
        prefix: &str,
        peer: &PeerId,
        rd: &Option<String>,
    ) {
        let table = vrf_table(ri, fam);
        if self
            .remove(&table, &Key::parse(prefix), peer, rd.as_deref())
            .is_some()
        {
            let key = Key::vpn(rd.as_deref(), prefix);
            self.remove(fam.vpn_table(), &key, peer, rd.as_deref());
            self.replicate(fam, &key);
        }
    }

    /// A VPN path learned from a BGP peer (`prefix` without the RD; `attrs.route_targets`
    /// from its extended communities): replicated into every importing instance.
    pub fn add_vpn(
        &mut self,
        fam: Family,
        rd: &str,
        prefix: &str,
        peer: PeerId,
        label: u32,
        attrs: PathAttrs,
    ) {
        let key = Key::vpn(Some(rd), prefix);
        let attrs = self.share(attrs);
        let peer = self.peer(&peer);
        let rd = self.name(rd);
        self.add_vpn_key(fam, &key, rd, peer, label, attrs);
    }

    /// [`Rib::add_vpn`] with the key already built ([`Key::vpn4`] from the wire, no
    /// strings per route) and shared values: `rd` from [`Rib::name`], `peer` from
    /// [`Rib::peer`], `attrs` from [`Rib::share`] (unshared ones work, but cost memory).
    pub fn add_vpn_key(
        &mut self,
        fam: Family,
        key: &Key,
        rd: Name,
        peer: PeerId,
        label: u32,
        attrs: Arc<PathAttrs>,
    ) {
        // No secondaries anywhere means no path carries an imported target (importer
        // changes re-replicate everything): unless this one does, nothing to replicate.
        let replicate = !self.replicas.is_empty()
            || (!self.importers.is_empty() && imports(&mut self.imported, &self.importers, &attrs));
        self.upsert(
            fam.vpn_table(),
            key,
            Path {
                peer,
                rd: Some(rd),
                label,
                attrs,
                origin: Origin::Primary,
                vrf: None,
            },
        );
        if replicate {
            self.replicate(fam, key);
        }
    }

    /// VPN paths of one BGP peer with one attribute set ([`Rib::add_vpn_key`] for each of
    /// `(key, rd, label)`, in order): the table is found, the importers asked and the keys
    /// hashed once, and the keys' index entries are loaded before any goes in (their cache
    /// misses overlap). A few dozen routes at a time (the caller's chunks).
    pub fn add_vpn_keys(
        &mut self,
        fam: Family,
        peer: &PeerId,
        attrs: &Arc<PathAttrs>,
        routes: &[(Key, Name, u32)],
    ) {
        let replicate = !self.replicas.is_empty()
            || (!self.importers.is_empty() && imports(&mut self.imported, &self.importers, attrs));
        let vt = fam.vpn_table();
        let record = !matches!(peer, PeerId::Bgp(_));
        let t = match self.tables.get_mut(vt) {
            Some(t) => t,
            None => self.tables.entry(vt.to_string()).or_default(),
        };
        let hashes: SmallVec<[u64; 32]> = routes.iter().map(|(k, _, _)| t.hash(k)).collect();
        std::hint::black_box(hashes.iter().fold(0, |a, h| a ^ t.touch_h(*h)));
        for ((k, rd, label), h) in routes.iter().zip(hashes) {
            t.upsert_h(
                k,
                h,
                Path {
                    peer: peer.clone(),
                    rd: Some(rd.clone()),
                    label: *label,
                    attrs: attrs.clone(),
                    origin: Origin::Primary,
                    vrf: None,
                },
            );
        }
        for (k, _, _) in routes {
            if record {
                self.mark(vt, k);
            }
            if replicate {
                self.replicate(fam, k);
            }
        }
    }

    /// Withdraw a VPN path learned from a BGP peer.
    pub fn del_vpn(&mut self, fam: Family, rd: &str, prefix: &str, peer: &PeerId) {
        self.del_vpn_key(fam, &Key::vpn(Some(rd), prefix), rd, peer);
    }

    /// [`Rib::del_vpn`] with the key already built.
    pub fn del_vpn_key(&mut self, fam: Family, key: &Key, rd: &str, peer: &PeerId) {
        if self.remove(fam.vpn_table(), key, peer, Some(rd)).is_some() {
            self.replicate(fam, key);
        }
    }

    /// Every path of `peer` goes (session down): primaries, their VPN copies and replicas.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        let mut locals = Vec::new();
        let mut vpns = Vec::new();
        for (tname, t) in &self.tables {
            for (k, r) in t.entries() {
                for p in r
                    .paths
                    .iter()
                    .filter(|p| p.peer == *peer && p.origin == Origin::Primary)
                {
                    let rd = p.rd.as_deref().map(str::to_string);
                    match Family::ALL.iter().find(|f| f.vpn_table() == tname) {
                        Some(f) => vpns.push((*f, k.clone(), rd)),
                        None => locals.push((tname.clone(), k.clone(), rd)),
                    }
                }
            }
        }
        for (tname, k, rd) in locals {
            if let Some((ri, fam)) = split_vrf_table(&tname) {
                self.del_local(&ri, fam, &k.to_string(), peer, &rd);
            } else {
                self.remove(&tname, &k, peer, rd.as_deref());
            }
        }
        for (f, key, rd) in vpns {
            if self
                .remove(f.vpn_table(), &key, peer, rd.as_deref())
                .is_some()
            {
                self.replicate(f, &key);
            }
        }
    }

    /// Set (or with `None` remove) an instance's targets; re-exports its paths and
    /// re-replicates every VPN route when they changed.
    pub fn set_instance(&mut self, ri: &str, t: Option<InstanceTargets>) {
        if self.instances.get(ri) == t.as_ref() {
            return;
        }
        match t {
            Some(t) => {
                self.instances.insert(ri.to_string(), t);
            }
            None => {
                self.instances.remove(ri);
            }
        }
        self.importers.clear();
        self.imported.clear();
        for (name, it) in &self.instances {
            for rt in &it.import {
                self.importers
                    .entry(rt.clone())
                    .or_default()
                    .insert(name.clone());
            }
        }
        let export = self
            .instances
            .get(ri)
            .map(|i| i.export.clone())
            .unwrap_or_default();
        for fam in Family::ALL {
            let vt = fam.vpn_table();
            let mut keys = Vec::new();
            let mut changed = Vec::new();
            if let Some(t) = self.tables.get_mut(vt) {
                for (key, r) in t.entries_mut() {
                    let mut c = false;
                    for p in r.paths.iter_mut().filter(|p| p.vrf.as_deref() == Some(ri)) {
                        if p.attrs.route_targets != export {
                            let mut a = (*p.attrs).clone();
                            a.route_targets = export.clone();
                            p.attrs = Arc::new(a);
                            c = true;
                        }
                    }
                    if c {
                        changed.push(key.clone());
                    }
                    keys.push(key.clone());
                }
            }
            for key in changed {
                self.mark(vt, &key);
            }
            for key in keys {
                self.replicate(fam, &key);
            }
        }
    }

    /// Make the secondaries of one VPN route match the import targets of every instance.
    fn replicate(&mut self, fam: Family, key: &Key) {
        // Nothing imports anything and nothing was replicated: nothing to do (a full BGP
        // table into a node without importing instances skips two lookups per route).
        if self.importers.is_empty() && self.replicas.is_empty() {
            return;
        }
        let vt = fam.vpn_table();
        let slot = (fam, key.clone());
        if !self.replicas.contains_key(&slot) {
            // nothing replicated from it yet: done unless a path carries an imported target
            let (memo, importers) = (&mut self.imported, &self.importers);
            let imported = self
                .tables
                .get(vt)
                .and_then(|t| t.get_key(key))
                .is_some_and(|r| r.paths.iter().any(|p| imports(memo, importers, &p.attrs)));
            if !imported {
                return;
            }
        }
        let prefix = key.prefix();
        let mut want: BTreeMap<ReplicaId, Path> = BTreeMap::new();
        // (instance, path) pairs first: naming the secondaries' origin tables needs `self`
        let mut pairs: Vec<(String, Path)> = Vec::new();
        if let Some(r) = self.tables.get(vt).and_then(|t| t.get_key(key)) {
            for p in &r.paths {
                let mut dest: BTreeSet<&String> = BTreeSet::new();
                for rt in &p.attrs.route_targets {
                    if let Some(ris) = self.importers.get(rt) {
                        dest.extend(ris.iter());
                    }
                }
                for ri in dest {
                    if p.vrf.as_deref() == Some(ri.as_str()) {
                        continue;
                    }
                    pairs.push((ri.clone(), p.clone()));
                }
            }
        }
        for (ri, p) in pairs {
            let origin_table = p
                .vrf
                .as_deref()
                .map_or_else(|| vt.to_string(), |v| vrf_table(v, fam));
            let table = self.name(&origin_table);
            let ri = self.name(&ri);
            want.insert(
                (ri, p.peer.clone(), p.rd.clone()),
                Path {
                    origin: Origin::Secondary { table },
                    vrf: None,
                    ..p
                },
            );
        }
        let have = self.replicas.remove(&slot).unwrap_or_default();
        for id in &have {
            if !want.contains_key(id) {
                let (ri, peer, rd) = id;
                self.remove(&vrf_table(ri, fam), &prefix, peer, rd.as_deref());
            }
        }
        let mut now = BTreeSet::new();
        for ((ri, peer, rd), p) in want {
            let table = vrf_table(&ri, fam);
            let same = self
                .tables
                .get(&table)
                .and_then(|t| t.get_key(&prefix))
                .and_then(|r| r.paths.iter().find(|q| q.peer == peer && q.rd == rd))
                .is_some_and(|q| *q == p);
            if !same {
                self.upsert(&table, &prefix, p);
            }
            now.insert((ri, peer, rd));
        }
        if !now.is_empty() {
            self.replicas.insert(slot, now);
        }
    }

    /// Set the route-target membership routes this node originates (RFC 4684; tf-facts §3
    /// "RT filtering with agents"): key `<asn>:<target>`.
    pub fn set_rtarget_membership(&mut self, asn: u32, targets: &BTreeSet<String>) {
        let want: BTreeSet<String> = targets.iter().map(|t| format!("{asn}:{t}")).collect();
        let have: Vec<String> = self
            .tables
            .get(RTARGET_TABLE)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| r.paths.iter().any(|p| p.peer == PeerId::Local))
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        for k in &have {
            if !want.contains(k) {
                self.remove(RTARGET_TABLE, &Key::parse(k), &PeerId::Local, None);
            }
        }
        for k in want {
            if !have.contains(&k) {
                let attrs = PathAttrs {
                    local_pref: 100,
                    ..PathAttrs::default()
                };
                self.upsert(
                    RTARGET_TABLE,
                    &Key::parse(&k),
                    Path {
                        peer: PeerId::Local,
                        rd: None,
                        label: 0,
                        attrs: Arc::new(attrs),
                        origin: Origin::Primary,
                        vrf: None,
                    },
                );
            }
        }
    }

    /// `(tables, prefixes, paths, primary, secondary)` per table, from counters the tables
    /// keep (no walk over the routes).
    pub fn summary(&self) -> Vec<TableSummary> {
        self.tables
            .iter()
            .map(|(name, t)| TableSummary {
                name: name.clone(),
                prefixes: t.len(),
                paths: t.paths(),
                primary_paths: t.primary_paths(),
                secondary_paths: t.secondary_paths(),
                infeasible_paths: 0,
            })
            .collect()
    }
}

/// One row of `route summary` (tf-facts §7 `ShowRouteSummaryReq`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    /// Table name.
    pub name: String,
    /// Destinations.
    pub prefixes: usize,
    /// Paths.
    pub paths: usize,
    /// Primary paths.
    pub primary_paths: usize,
    /// Secondary (replicated) paths.
    pub secondary_paths: usize,
    /// Infeasible paths (none are kept).
    pub infeasible_paths: usize,
}

/// `<ri>.inet.0` → `(ri, Inet)`.
pub fn split_vrf_table(name: &str) -> Option<(String, Family)> {
    for f in Family::ALL {
        if let Some(ri) = name.strip_suffix(&format!(".{}", f.vrf_suffix())) {
            if !ri.is_empty() && !name.starts_with("bgp.") {
                return Some((ri.to_string(), f));
            }
        }
    }
    None
}

/// Derived MED of an agent path (tf-facts §2.4): local-pref 100 → 200, 200 → 100, else
/// 2^32 − 1 − local-pref.
pub fn med_from_local_pref(lp: u32) -> u32 {
    match lp {
        100 => 200,
        200 => 100,
        lp => u32::MAX - lp,
    }
}

#[cfg(test)]
mod tests;
