//! The Loc-RIB: every candidate path per route key and the best one, by
//! the RFC 4271 §9.1.2 decision process (with the usual tie-breakers from
//! RFC 4456 §9 for reflected routes).
//!
//! Candidates come from the RIB owner ([`Source::Local`], e.g. routes the
//! control node learned from its agents) and from each peer's Adj-RIB-In
//! (a peer's Adj-RIB-In is the set of its candidates here: every received
//! path is stored once).
//!
//! Memory layout (issue 4: 1,000,000 VPNv4 routes in well under 200 MB):
//!
//! * destinations live in a slab (`Vec<Dest>`) and are named by a
//!   [`DestId`]; the hash index stores only that `u32` beside a hash
//!   fingerprint ([`SlotIndex`]), not a second copy of the key;
//! * keys are compact: a VPNv4 or IPv4 key is RD as `u64` + address as
//!   `u32` + length in 16 bytes; other families are boxed;
//! * one candidate is 24 bytes: the interned attributes (one `Arc` per
//!   distinct attribute set, however many UPDATEs carried it), up to two
//!   labels packed in a `u64` (longer stacks go to a side table) and the
//!   index of its source (peer, eBGP or not, BGP identifier, RR client);
//! * a destination with one candidate (nearly all) holds it inline.
//!
//! A destination whose last candidate goes becomes a tombstone that keeps
//! its id until the owner [`Rib::release`]s it (after every peer was sent
//! its withdrawal), so per-peer state can be kept in bitsets by id.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use filament_wire_bgp::{Origin, RouteDistinguisher, LLGR_STALE};
use hashbrown::DefaultHashBuilder;
use ipnet::{IpNet, Ipv4Net};

use crate::index::SlotIndex;
use crate::types::{Attrs, Family, LabelStack, Path, RouteKey};

/// Where a candidate path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Originated by the RIB owner.
    Local,
    /// Learned from the peer with this address.
    Peer(IpAddr),
}

/// A candidate path with what the decision process needs about its source
/// (the RIB's input, and its answer, built on demand from the compact form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cand {
    /// Where it came from.
    pub src: Source,
    /// The path as received (or as the owner gave it).
    pub path: Path,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// BGP identifier of the peer it was learned from (ours for local).
    pub peer_id: Ipv4Addr,
    /// The peer is a route-reflector client.
    pub from_client: bool,
}

/// A candidate as [`Rib::set_at`] takes it: the labels borrowed (packed into the slot, or
/// copied only when they do not fit).
struct New<'a> {
    info: SrcInfo,
    labels: &'a [u32],
    attrs: Arc<Attrs>,
}

/// A destination's index in the Loc-RIB: stable from the first candidate
/// until [`Rib::release`].
pub type DestId = u32;

/// What the decision process and export need about a candidate's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrcInfo {
    /// Where it came from.
    pub src: Source,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// BGP identifier of the peer it was learned from (ours for local).
    pub peer_id: Ipv4Addr,
    /// The peer is a route-reflector client.
    pub from_client: bool,
}

/// Stands in for a source index not in the table (never the case: indexes
/// are only made by `src_index`).
const NO_SRC: SrcInfo = SrcInfo {
    src: Source::Local,
    ebgp: false,
    peer_id: Ipv4Addr::UNSPECIFIED,
    from_client: false,
};

/// A candidate's labels as the RIB hands them out (the path's own type: up to two
/// inline, longer stacks on the heap).
pub type Labels = LabelStack;

/// A compact route key: 16 bytes for IPv4 and VPNv4 keys.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ck {
    Vpn4 { rd: u64, addr: u32, len: u8 },
    Inet { addr: u32, len: u8 },
    Other(Box<RouteKey>),
}

/// One hasher write for the fixed-size keys (the derived `Hash` made four: discriminant,
/// RD, address, length). Equal keys still hash equal: every field goes in.
impl std::hash::Hash for Ck {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Ck::Vpn4 { rd, addr, len } => {
                h.write_u128(u128::from(*rd) << 64 | u128::from(*addr) << 8 | u128::from(*len));
            }
            Ck::Inet { addr, len } => {
                h.write_u64(1 << 63 | u64::from(*addr) << 8 | u64::from(*len))
            }
            Ck::Other(k) => k.hash(h),
        }
    }
}

impl Ck {
    fn new(k: &RouteKey) -> Ck {
        match k {
            RouteKey::Vpn(rd, IpNet::V4(p)) => Ck::Vpn4 {
                rd: u64::from_be_bytes(rd.to_bytes()),
                addr: u32::from(p.addr()),
                len: p.prefix_len(),
            },
            RouteKey::Inet(p) => Ck::Inet {
                addr: u32::from(p.addr()),
                len: p.prefix_len(),
            },
            other => Ck::Other(Box::new(other.clone())),
        }
    }

    fn key(&self) -> RouteKey {
        let net = |addr: u32, len: u8| Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap_or_default();
        match self {
            Ck::Vpn4 { rd, addr, len } => RouteKey::Vpn(
                RouteDistinguisher::from_bytes(rd.to_be_bytes()),
                IpNet::V4(net(*addr, *len)),
            ),
            Ck::Inet { addr, len } => RouteKey::Inet(net(*addr, *len)),
            Ck::Other(k) => (**k).clone(),
        }
    }

    fn family(&self) -> Family {
        match self {
            Ck::Vpn4 { .. } => Family::InetVpn,
            Ck::Inet { .. } => Family::Inet,
            Ck::Other(k) => k.family(),
        }
    }
}

/// Labels packed in a `u64`: count in the top two bits (3: in the side
/// table), the first label in the low 32 bits, a second one (< 2^30) above.
const COUNT_SHIFT: u32 = 62;
const OVERFLOW: u64 = 3 << COUNT_SHIFT;

fn pack(labels: &[u32]) -> Option<u64> {
    match labels {
        [] => Some(0),
        [a] => Some(1 << COUNT_SHIFT | u64::from(*a)),
        [a, b] if *b < 1 << 30 => Some(2 << COUNT_SHIFT | u64::from(*b) << 32 | u64::from(*a)),
        _ => None,
    }
}

/// One candidate, compact.
#[derive(Debug, Clone)]
struct Slot {
    attrs: Arc<Attrs>,
    labels: u64,
    src: u32,
}

#[derive(Debug)]
struct Many {
    slots: Vec<Slot>,
    best: usize,
}

#[derive(Debug)]
enum Cands {
    /// A tombstone (or a free slab entry).
    Empty,
    /// The usual case: one candidate, the best.
    One(Slot),
    /// Several candidates and the index of the best.
    Many(Box<Many>),
}

impl Cands {
    fn slots(&self) -> &[Slot] {
        match self {
            Cands::Empty => &[],
            Cands::One(s) => std::slice::from_ref(s),
            Cands::Many(m) => &m.slots,
        }
    }

    fn best(&self) -> Option<&Slot> {
        match self {
            Cands::Empty => None,
            Cands::One(s) => Some(s),
            Cands::Many(m) => m.slots.get(m.best),
        }
    }
}

#[derive(Debug)]
struct Dest {
    key: Ck,
    cands: Cands,
}

/// The Loc-RIB.
#[derive(Debug, Default)]
pub struct Rib {
    dests: Vec<Dest>,
    /// Released slab entries, reused first.
    free: Vec<DestId>,
    /// Key -> id (only the id is stored; the key is in the slab).
    index: SlotIndex,
    /// foldhash, seeded per process: keys come from peers, so not a fixed
    /// hash, but SipHash was a fifth of the ingest CPU.
    hasher: DefaultHashBuilder,
    /// Source table; a candidate stores its index.
    srcs: Vec<SrcInfo>,
    /// Label stacks that do not pack, by (destination, source index).
    overflow: HashMap<(DestId, u32), Vec<u32>>,
    /// One `Arc` per distinct attribute set.
    interned: HashSet<Arc<Attrs>>,
    sweep_at: usize,
    /// The last attribute `Arc` interned and its canonical copy (the paths
    /// of one UPDATE share their `Arc`: one lookup per UPDATE).
    last: Option<(Arc<Attrs>, Arc<Attrs>)>,
    /// Destinations with at least one candidate.
    live: usize,
    /// Destinations that lost their last candidate and are not released.
    emptied: Vec<DestId>,
}

impl Rib {
    fn find(&self, ck: &Ck) -> Option<DestId> {
        self.find_h(ck).1
    }

    /// The hash of `ck` (for an insert after a miss) and its destination.
    fn find_h(&self, ck: &Ck) -> (u64, Option<DestId>) {
        let h = self.hasher.hash_one(ck);
        let dests = &self.dests;
        let id = self
            .index
            .find(h, |i| dests.get(i as usize).is_some_and(|d| d.key == *ck));
        (h, id)
    }

    /// Load the index entries where these keys' lookups start, before they are learned
    /// one by one: their cache misses then overlap (a million new routes are a million
    /// misses) instead of each learn waiting for its own. Returns a value made of what
    /// was read, for the caller to `black_box`.
    pub fn touch_keys<'a>(&self, keys: impl Iterator<Item = &'a RouteKey>) -> u64 {
        // IPv4 and VPNv4 keys only: the others would be boxed to hash them.
        keys.filter(|k| matches!(k, RouteKey::Vpn(_, IpNet::V4(_)) | RouteKey::Inet(_)))
            .fold(0, |a, k| {
                a ^ self.index.touch(self.hasher.hash_one(Ck::new(k)))
            })
    }

    /// The id of `key`'s destination (tombstones included).
    pub fn id_of(&self, key: &RouteKey) -> Option<DestId> {
        self.find(&Ck::new(key))
    }

    /// The key of a destination.
    pub fn key_of(&self, id: DestId) -> Option<RouteKey> {
        self.dests.get(id as usize).map(|d| d.key.key())
    }

    /// The family of a destination.
    pub fn family_of(&self, id: DestId) -> Option<Family> {
        self.dests.get(id as usize).map(|d| d.key.family())
    }

    /// One past the largest id in use (for per-id bitsets).
    pub fn id_bound(&self) -> usize {
        self.dests.len()
    }

    fn insert_dest(&mut self, ck: Ck, h: u64) -> DestId {
        let d = Dest {
            key: ck,
            cands: Cands::Empty,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.dests.get_mut(id as usize) {
                    *slot = d;
                }
                id
            }
            None => {
                self.dests.push(d);
                (self.dests.len() - 1) as DestId
            }
        };
        self.index.insert(h, id);
        id
    }

    fn src_index(&mut self, s: SrcInfo) -> u32 {
        match self.srcs.iter().position(|x| *x == s) {
            Some(i) => i as u32,
            None => {
                self.srcs.push(s);
                (self.srcs.len() - 1) as u32
            }
        }
    }

    fn src_info(&self, i: u32) -> SrcInfo {
        self.srcs.get(i as usize).copied().unwrap_or(NO_SRC)
    }

    /// The canonical `Arc` for an attribute set.
    fn intern(&mut self, a: Arc<Attrs>) -> Arc<Attrs> {
        if let Some((input, canon)) = &self.last {
            if Arc::ptr_eq(input, &a) || Arc::ptr_eq(canon, &a) {
                return canon.clone();
            }
        }
        let canon = match self.interned.get(&a) {
            Some(c) => c.clone(),
            None => {
                if self.interned.len() >= self.sweep_at {
                    // Drop sets no path uses any more (only this table and
                    // `last` hold them).
                    self.last = None;
                    self.interned.retain(|x| Arc::strong_count(x) > 1);
                    self.sweep_at = (self.interned.len() * 2).max(1024);
                }
                self.interned.insert(a.clone());
                a.clone()
            }
        };
        self.last = Some((a, canon.clone()));
        canon
    }

    /// Put (`Some`) or remove (`None`) the candidate of `src` for `key`.
    /// Returns the destination's id when its best path changed.
    pub fn set(&mut self, key: &RouteKey, src: Source, cand: Option<Cand>) -> Option<DestId> {
        let ck = Ck::new(key);
        let (h, found) = self.find_h(&ck);
        match cand {
            Some(c) => {
                let info = SrcInfo {
                    src: c.src,
                    ebgp: c.ebgp,
                    peer_id: c.peer_id,
                    from_client: c.from_client,
                };
                let new = New {
                    info,
                    labels: &c.path.labels,
                    attrs: c.path.attrs.clone(),
                };
                self.set_at(ck, h, found, src, Some(new))
            }
            None => self.set_at(ck, h, found, src, None),
        }
    }

    /// A candidate learned from its source, with one key lookup for both questions:
    /// `(had one from this source, it was exactly this path, what` [`Rib::set`] `returns)`.
    /// An exact repeat changes nothing.
    pub fn learn(&mut self, cand: Cand) -> (bool, bool, Option<DestId>) {
        let info = SrcInfo {
            src: cand.src,
            ebgp: cand.ebgp,
            peer_id: cand.peer_id,
            from_client: cand.from_client,
        };
        self.learn_ref(info, &cand.path)
    }

    /// [`Rib::learn`] with the path borrowed: the caller keeps it (the speaker hands it on
    /// as an event) and nothing of it is copied but its attribute `Arc` and, for a label
    /// stack of three or more, the labels.
    pub fn learn_ref(&mut self, info: SrcInfo, path: &Path) -> (bool, bool, Option<DestId>) {
        self.learn_parts(info, &path.key, &path.labels, &path.attrs)
    }

    /// [`Rib::learn_ref`] with the path in its parts (the routes of one UPDATE share
    /// their attributes: the speaker keeps one `Arc` for all of them).
    pub fn learn_parts(
        &mut self,
        info: SrcInfo,
        key: &RouteKey,
        labels: &LabelStack,
        attrs: &Arc<Attrs>,
    ) -> (bool, bool, Option<DestId>) {
        let ck = Ck::new(key);
        let (h, found) = self.find_h(&ck);
        let (has, same) = match found {
            Some(id) => self.has_same_parts(id, info.src, labels, attrs),
            None => (false, false),
        };
        if same {
            return (true, true, None);
        }
        let new = New {
            info,
            labels,
            attrs: attrs.clone(),
        };
        (has, false, self.set_at(ck, h, found, info.src, Some(new)))
    }

    /// [`Rib::set`] after the lookup (`h`: the hash of `ck`; `found`: its destination).
    fn set_at(
        &mut self,
        ck: Ck,
        h: u64,
        found: Option<DestId>,
        src: Source,
        cand: Option<New<'_>>,
    ) -> Option<DestId> {
        let id = match (found, &cand) {
            (Some(id), _) => id,
            (None, Some(_)) => self.insert_dest(ck, h),
            (None, None) => return None,
        };
        let new = cand.map(|c| {
            let si = self.src_index(c.info);
            let labels = pack(c.labels);
            let attrs = self.intern(c.attrs);
            (si, labels, c.labels, attrs)
        });
        let srcs = &self.srcs;
        let src_of = |s: &Slot| srcs.get(s.src as usize).map(|x| x.src);
        let d = self.dests.get_mut(id as usize)?;
        let was_empty = matches!(d.cands, Cands::Empty);
        let before = d.cands.best().and_then(src_of);
        // The usual cases without a slot vector: a first candidate, or the only one
        // replaced by its own source (neither with labels kept in `overflow`).
        let alone = match &d.cands {
            Cands::Empty => true,
            Cands::One(s) => s.labels != OVERFLOW && src_of(s) == Some(src),
            Cands::Many(_) => false,
        };
        if alone {
            if let Some((si, Some(packed), _, attrs)) = new {
                d.cands = Cands::One(Slot {
                    attrs,
                    labels: packed,
                    src: si,
                });
                if was_empty {
                    self.live += 1;
                }
                // The best changed source, or the best source's path was replaced.
                return Some(id);
            }
        }
        let cands = std::mem::replace(&mut d.cands, Cands::Empty);
        let mut slots = match cands {
            Cands::Empty => Vec::new(),
            Cands::One(s) => vec![s],
            Cands::Many(m) => m.slots,
        };
        if let Some(i) = slots.iter().position(|s| src_of(s) == Some(src)) {
            let old = slots.swap_remove(i);
            if old.labels == OVERFLOW {
                self.overflow.remove(&(id, old.src));
            }
        }
        if let Some((si, packed, labels, attrs)) = new {
            let labels = match packed {
                Some(p) => p,
                None => {
                    self.overflow.insert((id, si), labels.to_vec());
                    OVERFLOW
                }
            };
            slots.push(Slot {
                attrs,
                labels,
                src: si,
            });
        }
        let srcs = &self.srcs;
        let src_of = |s: &Slot| srcs.get(s.src as usize).map(|x| x.src);
        let d = self.dests.get_mut(id as usize)?;
        d.cands = match slots.len() {
            0 => Cands::Empty,
            1 => match slots.pop() {
                Some(s) => Cands::One(s),
                None => Cands::Empty,
            },
            _ => {
                let info = |s: &Slot| srcs.get(s.src as usize).copied().unwrap_or(NO_SRC);
                let best = (0..slots.len())
                    .min_by(|&a, &b| {
                        compare(
                            (&info(&slots[a]), &slots[a].attrs),
                            (&info(&slots[b]), &slots[b].attrs),
                        )
                    })
                    .unwrap_or(0);
                Cands::Many(Box::new(Many { slots, best }))
            }
        };
        let after = d.cands.best().and_then(src_of);
        let now_empty = matches!(d.cands, Cands::Empty);
        match (was_empty, now_empty) {
            (true, false) => self.live += 1,
            (false, true) => {
                self.live -= 1;
                self.emptied.push(id);
            }
            _ => {}
        }
        // The best changed source, or the best source's path was replaced.
        (before != after || after == Some(src)).then_some(id)
    }

    fn labels(&self, id: DestId, s: &Slot) -> Labels {
        let n = (s.labels >> COUNT_SHIFT) as u8;
        if n == 3 {
            return self
                .overflow
                .get(&(id, s.src))
                .map(|v| LabelStack::from_slice(v))
                .unwrap_or_default();
        }
        LabelStack::from_buf_and_len(
            [s.labels as u32, (s.labels >> 32) as u32 & ((1 << 30) - 1)],
            usize::from(n).min(2),
        )
    }

    fn cand(&self, id: DestId, key: &RouteKey, s: &Slot) -> Cand {
        let si = self.src_info(s.src);
        Cand {
            src: si.src,
            path: Path {
                key: key.clone(),
                labels: self.labels(id, s),
                attrs: s.attrs.clone(),
            },
            ebgp: si.ebgp,
            peer_id: si.peer_id,
            from_client: si.from_client,
        }
    }

    /// The best path for `key`.
    pub fn best(&self, key: &RouteKey) -> Option<Cand> {
        let id = self.id_of(key)?;
        let s = self.dests.get(id as usize)?.cands.best()?;
        Some(self.cand(id, key, s))
    }

    /// The best path of a destination as parts (no key or label copies):
    /// its source, attributes and labels.
    pub fn best_parts(&self, id: DestId) -> Option<(SrcInfo, &Arc<Attrs>, Labels)> {
        let s = self.dests.get(id as usize)?.cands.best()?;
        Some((self.src_info(s.src), &s.attrs, self.labels(id, s)))
    }

    /// Every candidate for `key`.
    pub fn candidates(&self, key: &RouteKey) -> Vec<Cand> {
        let Some(id) = self.id_of(key) else {
            return Vec::new();
        };
        self.dests.get(id as usize).map_or(Vec::new(), |d| {
            d.cands
                .slots()
                .iter()
                .map(|s| self.cand(id, key, s))
                .collect()
        })
    }

    /// Whether `src`'s candidate for `path.key` is exactly `path`.
    pub fn same(&self, src: Source, path: &Path) -> bool {
        self.has_same(src, path) == (true, true)
    }

    /// Whether `src` has a candidate for `path.key`, and whether it is
    /// exactly `path` (one lookup).
    pub fn has_same(&self, src: Source, path: &Path) -> (bool, bool) {
        match self.id_of(&path.key) {
            Some(id) => self.has_same_at(id, src, path),
            None => (false, false),
        }
    }

    /// [`Rib::has_same`] for the destination `id` of `path.key`.
    fn has_same_at(&self, id: DestId, src: Source, path: &Path) -> (bool, bool) {
        self.has_same_parts(id, src, &path.labels, &path.attrs)
    }

    /// [`Rib::has_same_at`] with the path in its parts.
    fn has_same_parts(
        &self,
        id: DestId,
        src: Source,
        labels: &LabelStack,
        attrs: &Arc<Attrs>,
    ) -> (bool, bool) {
        let Some(d) = self.dests.get(id as usize) else {
            return (false, false);
        };
        let Some(s) = d
            .cands
            .slots()
            .iter()
            .find(|s| self.src_info(s.src).src == src)
        else {
            return (false, false);
        };
        let same = (Arc::ptr_eq(&s.attrs, attrs) || *s.attrs == **attrs)
            && self.labels(id, s).as_slice() == labels.as_slice();
        (true, same)
    }

    /// Keys that have a candidate from `src` (a scan: for session resets,
    /// not for the per-route path).
    pub fn keys_from(&self, src: Source) -> Vec<RouteKey> {
        let ids: Vec<u32> = (0..self.srcs.len() as u32)
            .filter(|&i| self.src_info(i).src == src)
            .collect();
        self.dests
            .iter()
            .filter(|d| d.cands.slots().iter().any(|s| ids.contains(&s.src)))
            .map(|d| d.key.key())
            .collect()
    }

    /// Whether `src` has a candidate for `key`.
    pub fn has(&self, key: &RouteKey, src: Source) -> bool {
        self.id_of(key)
            .and_then(|id| self.dests.get(id as usize))
            .is_some_and(|d| {
                d.cands
                    .slots()
                    .iter()
                    .any(|s| self.src_info(s.src).src == src)
            })
    }

    /// Ids of the destinations of one family with a candidate (all
    /// families when `None`).
    pub fn ids(&self, family: Option<Family>) -> Vec<DestId> {
        self.dests
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                !matches!(d.cands, Cands::Empty) && family.is_none_or(|f| d.key.family() == f)
            })
            .map(|(i, _)| i as DestId)
            .collect()
    }

    /// Keys of one family (all families when `None`).
    pub fn keys(&self, family: Option<Family>) -> Vec<RouteKey> {
        self.ids(family)
            .into_iter()
            .filter_map(|id| self.key_of(id))
            .collect()
    }

    /// Number of destinations.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the RIB is empty.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every best path.
    pub fn best_paths(&self) -> impl Iterator<Item = Cand> + '_ {
        self.dests.iter().enumerate().filter_map(|(i, d)| {
            let s = d.cands.best()?;
            Some(self.cand(i as DestId, &d.key.key(), s))
        })
    }

    /// Number of distinct attribute sets held.
    pub fn attr_sets(&self) -> usize {
        self.interned.len()
    }

    /// Destinations that lost their last candidate since the last call;
    /// give each back with [`Rib::release`] once no peer needs its id.
    pub fn take_emptied(&mut self) -> Vec<DestId> {
        std::mem::take(&mut self.emptied)
    }

    /// Keep a tombstone for a later [`Rib::take_emptied`].
    pub fn defer_release(&mut self, id: DestId) {
        self.emptied.push(id);
    }

    /// Forget a tombstone (no-op if it got a candidate again): its id may
    /// be reused.
    pub fn release(&mut self, id: DestId) {
        let Some(d) = self.dests.get(id as usize) else {
            return;
        };
        if !matches!(d.cands, Cands::Empty) {
            return;
        }
        let h = self.hasher.hash_one(&d.key);
        if self.index.remove(h, id) {
            if let Some(d) = self.dests.get_mut(id as usize) {
                d.key = Ck::Inet { addr: 0, len: 0 };
            }
            self.free.push(id);
        }
    }
}

fn origin_rank(o: Origin) -> u8 {
    match o {
        Origin::Igp => 0,
        Origin::Egp => 1,
        Origin::Incomplete => 2,
    }
}

/// `Less` means `a` is preferred.
fn compare(a: (&SrcInfo, &Attrs), b: (&SrcInfo, &Attrs)) -> Ordering {
    let ((a, x), (b, y)) = (a, b);
    // The owner's own paths first (they are what it originates).
    let local = |c: &SrcInfo| u8::from(c.src != Source::Local);
    // RFC 4271 - Section 9.1.2.2: "a) Remove from consideration all routes
    // that are not tied for having the smallest number of AS numbers present
    // in their AS_PATH attributes. ... b) ... the lowest Origin number ...
    // c) ... MULTI_EXIT_DISC ... only comparable between routes learned from
    // the same neighboring AS ... d) ... if at least one of the candidate
    // routes was received via EBGP, remove from consideration all routes
    // that were received via IBGP. ... f) ... the lowest BGP Identifier
    // value ... g) ... the lowest peer address."
    // RFC 9494 - Section 4.3: "A route carrying the LLGR_STALE community
    // ... MUST be treated as the least-preferred in route selection" (TF
    // compares it after LOCAL_PREF; the RFC puts it first).
    let llgr = |x: &Attrs| !x.communities.is_empty() && x.communities.contains(&LLGR_STALE);
    local(a)
        .cmp(&local(b))
        .then_with(|| llgr(x).cmp(&llgr(y)))
        .then(
            y.local_pref
                .unwrap_or(100)
                .cmp(&x.local_pref.unwrap_or(100)),
        )
        .then(x.as_path_len().cmp(&y.as_path_len()))
        .then(origin_rank(x.origin).cmp(&origin_rank(y.origin)))
        .then_with(|| {
            if x.first_as() == y.first_as() {
                x.med.unwrap_or(0).cmp(&y.med.unwrap_or(0))
            } else {
                Ordering::Equal
            }
        })
        .then(u8::from(!a.ebgp).cmp(&u8::from(!b.ebgp)))
        // RFC 4456 - Section 9: "If a route carries the ORIGINATOR_ID
        // attribute, then in the route selection process the ORIGINATOR_ID
        // SHOULD be treated as the BGP Identifier of the BGP speaker that
        // has advertised the route." and a shorter CLUSTER_LIST wins.
        .then(
            x.originator_id
                .unwrap_or(a.peer_id)
                .cmp(&y.originator_id.unwrap_or(b.peer_id)),
        )
        .then(x.cluster_list.len().cmp(&y.cluster_list.len()))
        .then_with(|| match (a.src, b.src) {
            (Source::Peer(p), Source::Peer(q)) => p.cmp(&q),
            _ => Ordering::Equal,
        })
}

#[cfg(test)]
mod tests;
