//! Compact storage of the control RIB's tables (issue 4: a million BGP-learned VPN routes in
//! one node, RSS ≤ 200 MB with the speaker).
//!
//! * [`Key`]: a route's key. `RD:a.b.c.d/len` (VPNv4, RD of type 0 or 1) and `a.b.c.d/len`
//!   (IPv4) are fixed-size values (the RD as its 8 wire bytes, like crates/bgp's 16-byte
//!   keys); anything else (IPv6, EVPN, route-target keys) is kept as written. A key always
//!   displays as the string it was parsed from ([`Key::parse`] keeps the text form when the
//!   compact one would not print back the same), so string keys and compact keys of one
//!   route never differ.
//! * [`Name`]: an interned name (peer, RD, table), 8 bytes in a path.
//! * [`Table`]: a slab of `(key, route)` with a hash index of slot numbers
//!   (`filament_bgp::index::SlotIndex`, as the speaker's Loc-RIB), and path counters kept up to date (`route summary` reads them instead of
//!   walking every route). Reads in key order ([`Table::iter`], [`Table::keys`]) sort the
//!   string forms at read time: `route show` output stays ordered as before.

use std::borrow::Borrow;
use std::fmt;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::sync::Arc;

use filament_bgp::index::SlotIndex;
use filament_wire_bgp::RouteDistinguisher;
use hashbrown::DefaultHashBuilder;

use super::{Origin, Path, PeerId, Route};

/// An interned name: one heap string shared by every holder, a thin (8-byte) pointer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<String>);

impl Name {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    /// How many holders share this copy (the interner drops names only it holds).
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
    /// Whether both are the same allocation.
    pub fn ptr_eq(a: &Name, b: &Name) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::new(s.to_string()))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::new(s))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A route's key in a table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// `RD:a.b.c.d/len` with an RD of type 0 or 1, the RD as its 8 wire bytes.
    Vpn4 {
        /// Route distinguisher (wire bytes, big-endian).
        rd: u64,
        /// Address.
        addr: u32,
        /// Prefix length.
        len: u8,
    },
    /// `a.b.c.d/len`.
    Inet4 {
        /// Address.
        addr: u32,
        /// Prefix length.
        len: u8,
    },
    /// Any other key, as written.
    Text(Box<String>),
}

/// One hasher write for the fixed-size keys (the derived `Hash` made four: discriminant,
/// RD, address, length; a million-route table hashes every key on each upsert and again
/// when its index grows). Equal keys still hash equal: every field goes in.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Key::Vpn4 { rd, addr, len } => {
                h.write_u128(u128::from(*rd) << 64 | u128::from(*addr) << 8 | u128::from(*len));
            }
            Key::Inet4 { addr, len } => {
                h.write_u64(1 << 63 | u64::from(*addr) << 8 | u64::from(*len));
            }
            Key::Text(s) => s.hash(h),
        }
    }
}

impl Key {
    /// The key of a string (the compact form when it prints back the same string).
    pub fn parse(s: &str) -> Key {
        match Key::parse_compact(s) {
            Some(k) if k.to_string() == s => k,
            _ => Key::Text(Box::new(s.to_string())),
        }
    }

    fn parse_compact(s: &str) -> Option<Key> {
        let (head, len) = s.rsplit_once('/')?;
        let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
        match head.rsplit_once(':') {
            None => Some(Key::Inet4 {
                addr: head.parse::<Ipv4Addr>().ok()?.into(),
                len,
            }),
            Some((rd, ip)) => {
                let rd: RouteDistinguisher = rd.parse().ok()?;
                Some(Key::vpn4(rd, ip.parse().ok()?, len)?)
            }
        }
    }

    /// The compact VPNv4 key (`None` for RD types other than 0 and 1, whose text form is
    /// kept as written).
    pub fn vpn4(rd: RouteDistinguisher, addr: Ipv4Addr, len: u8) -> Option<Key> {
        (rd.rd_type() <= 1 && len <= 32).then(|| Key::Vpn4 {
            rd: u64::from_be_bytes(rd.to_bytes()),
            addr: addr.into(),
            len,
        })
    }

    /// The key of `prefix` under `rd` in a VPN table (`RD:prefix`, RD `0:0` when none).
    pub fn vpn(rd: Option<&str>, prefix: &str) -> Key {
        Key::parse(&format!("{}:{prefix}", rd.unwrap_or("0:0")))
    }

    /// The prefix part of a VPN key (the key of the same route in an instance table).
    pub fn prefix(&self) -> Key {
        match self {
            Key::Vpn4 { addr, len, .. } => Key::Inet4 {
                addr: *addr,
                len: *len,
            },
            Key::Inet4 { .. } => self.clone(),
            Key::Text(s) => Key::parse(text_prefix(s)),
        }
    }
}

/// The prefix part of a VPN key string (`RD:prefix` where RD is `a:b`).
pub(super) fn text_prefix(key: &str) -> &str {
    // RD is `<ip or asn>:<number>`: skip two colons when the third part exists
    let mut it = key.splitn(3, ':');
    match (it.next(), it.next(), it.next()) {
        (Some(_), Some(_), Some(rest)) => rest,
        _ => key,
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Vpn4 { rd, addr, len } => write!(
                f,
                "{}:{}/{len}",
                RouteDistinguisher::from_bytes(rd.to_be_bytes()),
                Ipv4Addr::from(*addr)
            ),
            Key::Inet4 { addr, len } => write!(f, "{}/{len}", Ipv4Addr::from(*addr)),
            Key::Text(s) => f.write_str(s),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::parse(s)
    }
}

/// `(paths, primary, secondary)` of one route.
fn counts(r: &Route) -> (usize, usize, usize) {
    let primary = r
        .paths
        .iter()
        .filter(|p| p.origin == Origin::Primary)
        .count();
    (r.paths.len(), primary, r.paths.len() - primary)
}

/// One table: routes by key, in a slab with a hash index of slot numbers.
#[derive(Debug, Clone, Default)]
pub struct Table {
    slots: Vec<(Key, Route)>,
    index: SlotIndex,
    hasher: DefaultHashBuilder,
    paths: usize,
    primary: usize,
    secondary: usize,
}

impl Table {
    fn find(&self, k: &Key) -> Option<usize> {
        let h = self.hasher.hash_one(k);
        self.index
            .find(h, |i| self.slots[i as usize].0 == *k)
            .map(|i| i as usize)
    }

    /// The route of a key.
    pub fn get_key(&self, k: &Key) -> Option<&Route> {
        self.find(k).map(|i| &self.slots[i].1)
    }

    /// The route of a key given as a string.
    pub fn get(&self, k: &str) -> Option<&Route> {
        self.get_key(&Key::parse(k))
    }

    /// Whether the table holds a route for `k`.
    pub fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    /// Destinations.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No destinations.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Paths (kept up to date, no walk).
    pub fn paths(&self) -> usize {
        self.paths
    }

    /// Primary paths.
    pub fn primary_paths(&self) -> usize {
        self.primary
    }

    /// Secondary (replicated) paths.
    pub fn secondary_paths(&self) -> usize {
        self.secondary
    }

    /// Every route, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&Key, &Route)> {
        self.slots.iter().map(|(k, r)| (k, r))
    }

    /// Every route with its key's string form, ordered by it (sorted at read time).
    pub fn iter(&self) -> impl Iterator<Item = (String, &Route)> {
        let mut v: Vec<(String, &Route)> =
            self.slots.iter().map(|(k, r)| (k.to_string(), r)).collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v.into_iter()
    }

    /// Every key's string form, ordered.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.iter().map(|(k, _)| k)
    }

    fn account(&mut self, before: (usize, usize, usize), after: (usize, usize, usize)) {
        self.paths = self.paths + after.0 - before.0;
        self.primary = self.primary + after.1 - before.1;
        self.secondary = self.secondary + after.2 - before.2;
    }

    /// Install `p` at `k` (replacing the path of the same source and RD).
    pub(super) fn upsert(&mut self, k: &Key, p: Path) {
        let h = self.hash(k);
        self.upsert_h(k, h, p);
    }

    /// The hash `k` is indexed under (for [`Table::touch_h`] and [`Table::upsert_h`]).
    pub(super) fn hash(&self, k: &Key) -> u64 {
        self.hasher.hash_one(k)
    }

    /// [`Table::upsert`] with `k`'s hash already computed.
    pub(super) fn upsert_h(&mut self, k: &Key, h: u64, p: Path) {
        let slots = &self.slots;
        match self.index.find(h, |i| slots[i as usize].0 == *k) {
            Some(i) => {
                let i = i as usize;
                let before = counts(&self.slots[i].1);
                self.slots[i].1.upsert(p);
                let after = counts(&self.slots[i].1);
                self.account(before, after);
            }
            None => {
                let mut r = Route::default();
                r.upsert(p);
                let after = counts(&r);
                self.account((0, 0, 0), after);
                let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push((k.clone(), r));
                self.index.insert(h, i);
            }
        }
    }

    /// Load the index entry a lookup of hash `h` starts at (see [`SlotIndex::touch`]): a
    /// batch of upserts touches its keys first, so their cache misses overlap.
    pub(super) fn touch_h(&self, h: u64) -> u64 {
        self.index.touch(h)
    }

    /// Remove the path of `peer` / `rd` at `k`; the route goes with its last path.
    pub(super) fn remove(&mut self, k: &Key, peer: &PeerId, rd: Option<&str>) -> Option<Path> {
        let i = self.find(k)?;
        let before = counts(&self.slots[i].1);
        let p = self.slots[i].1.remove(peer, rd);
        let after = counts(&self.slots[i].1);
        self.account(before, after);
        if self.slots[i].1.paths.is_empty() {
            self.remove_slot(i);
        }
        p
    }

    fn remove_slot(&mut self, i: usize) {
        let h = self.hasher.hash_one(&self.slots[i].0);
        self.index.remove(h, u32::try_from(i).unwrap_or(u32::MAX));
        let last = self.slots.len() - 1;
        if i != last {
            let hl = self.hasher.hash_one(&self.slots[last].0);
            let (from, to) = (u32::try_from(last), u32::try_from(i));
            if let (Ok(from), Ok(to)) = (from, to) {
                self.index.replace(hl, from, to);
            }
        }
        self.slots.swap_remove(i);
        // A peer that went away with a full table leaves no 80-byte slots behind.
        if self.slots.capacity() > 1024 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to(self.slots.len() * 2);
            self.index.shrink();
        }
    }

    /// Every route, mutable, in no particular order (the caller must not change paths'
    /// origins or count: the counters are not recomputed).
    pub(super) fn entries_mut(&mut self) -> impl Iterator<Item = (&Key, &mut Route)> {
        self.slots.iter_mut().map(|(k, r)| (&*k, r))
    }
}

impl std::ops::Index<&str> for Table {
    type Output = Route;
    /// The route of `k`; panics when there is none (as `BTreeMap`'s index does).
    fn index(&self, k: &str) -> &Route {
        match self.get(k) {
            Some(r) => r,
            None => panic!("no route {k} in the table"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_back_as_parsed() {
        for s in [
            "100:1:10.0.0.1/32",
            "192.0.2.1:2:10.1.1.3/32",
            "10.1.1.3/32",
            "0:0:0.0.0.0/0",
            "192.168.0.1:1:fd00::3/128",
            "192.168.0.1:1:02:00:00:00:00:01,10.1.1.3/32",
            "64512:target:64512:8000001",
            "4200000000:1:10.0.0.1/32",
            "65000L:1:10.0.0.1/32",
            "100:01:10.0.0.1/32",
            "10.1.1.3/33",
        ] {
            let k = Key::parse(s);
            assert_eq!(k.to_string(), s, "{k:?}");
        }
        assert!(matches!(Key::parse("100:1:10.0.0.1/32"), Key::Vpn4 { .. }));
        assert!(matches!(Key::parse("10.0.0.1/32"), Key::Inet4 { .. }));
        assert!(matches!(Key::parse("100:01:10.0.0.1/32"), Key::Text(_)));
        assert!(matches!(
            Key::parse("4200000000:1:10.0.0.1/32"),
            Key::Text(_)
        ));
        assert_eq!(
            Key::parse("192.0.2.1:2:10.1.1.3/32").prefix(),
            Key::parse("10.1.1.3/32")
        );
        assert_eq!(
            Key::parse("192.168.0.1:1:fd00::3/128").prefix(),
            Key::parse("fd00::3/128")
        );
    }

    fn path(peer: &str, origin: Origin) -> Path {
        Path {
            peer: PeerId::Bgp(peer.into()),
            rd: None,
            label: 0,
            attrs: Arc::default(),
            origin,
            vrf: None,
        }
    }

    #[test]
    fn slab_index_and_counters_follow_inserts_and_removes() {
        let mut t = Table::default();
        let keys: Vec<Key> = (0..5000u32)
            .map(|i| Key::parse(&format!("100:{}:10.0.{}.{}/32", i % 7, i >> 8, i & 255)))
            .collect();
        for k in &keys {
            t.upsert(k, path("a", Origin::Primary));
        }
        for k in keys.iter().step_by(2) {
            t.upsert(
                k,
                path(
                    "b",
                    Origin::Secondary {
                        table: "x.inet.0".into(),
                    },
                ),
            );
        }
        assert_eq!((t.len(), t.paths(), t.primary_paths()), (5000, 7500, 5000));
        assert_eq!(t.secondary_paths(), 2500);
        // remove every third route entirely, from the front (swap_remove moves the last)
        for k in keys.iter().step_by(3) {
            let a = PeerId::Bgp("a".into());
            let b = PeerId::Bgp("b".into());
            assert!(t.remove(k, &a, None).is_some());
            let _ = t.remove(k, &b, None);
            assert!(t.get_key(k).is_none());
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get_key(k).is_some(), i % 3 != 0, "{k}");
        }
        let walked: usize = t.entries().map(|(_, r)| r.paths.len()).sum();
        assert_eq!(t.paths(), walked);
        let keys_sorted: Vec<String> = t.keys().collect();
        let mut s = keys_sorted.clone();
        s.sort();
        assert_eq!(keys_sorted, s);
        assert_eq!(keys_sorted.len(), t.len());
        // most routes go: the slab shrinks, and what is left is still found
        let a = PeerId::Bgp("a".into());
        let b = PeerId::Bgp("b".into());
        let big = t.slots.capacity();
        for (i, k) in keys
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0 && i % 10 != 1)
        {
            assert!(t.remove(k, &a, None).is_some(), "{i}");
            let _ = t.remove(k, &b, None);
        }
        assert!(t.slots.capacity() < big, "{} >= {big}", t.slots.capacity());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get_key(k).is_some(), i % 3 != 0 && i % 10 == 1, "{k}");
        }
    }

    proptest::proptest! {
        /// Any sequence of upserts and removes leaves the slab, its index and its counters
        /// as a `BTreeMap` model of the same operations says.
        #[test]
        fn table_matches_a_btreemap_model(ops in proptest::collection::vec((0u8..3, 0u32..40, 0u8..3), 1..300)) {
            let peers = ["a", "b", "c"];
            let mut t = Table::default();
            let mut model: std::collections::BTreeMap<String, Vec<(&str, bool)>> = Default::default();
            for (op, k, who) in ops {
                let key = if k % 5 == 0 {
                    format!("fd00::{k}/128")
                } else {
                    format!("100:{}:10.0.0.{k}/32", k % 3)
                };
                let peer = peers[who as usize];
                let id = PeerId::Bgp(peer.into());
                let paths = model.entry(key.clone()).or_default();
                if op < 2 {
                    let primary = op == 0;
                    let origin = if primary {
                        Origin::Primary
                    } else {
                        Origin::Secondary { table: "x.inet.0".into() }
                    };
                    t.upsert(&Key::parse(&key), path(peer, origin));
                    paths.retain(|(p, _)| *p != peer);
                    paths.push((peer, primary));
                } else {
                    let had = paths.iter().any(|(p, _)| *p == peer);
                    proptest::prop_assert_eq!(t.remove(&Key::parse(&key), &id, None).is_some(), had);
                    paths.retain(|(p, _)| *p != peer);
                }
                if paths.is_empty() {
                    model.remove(&key);
                }
            }
            proptest::prop_assert_eq!(t.keys().collect::<Vec<_>>(), model.keys().cloned().collect::<Vec<_>>());
            for (k, paths) in &model {
                let r = t.get(k);
                proptest::prop_assert_eq!(r.map(|r| r.paths.len()), Some(paths.len()));
            }
            let all: Vec<&(&str, bool)> = model.values().flatten().collect();
            proptest::prop_assert_eq!(t.paths(), all.len());
            proptest::prop_assert_eq!(t.primary_paths(), all.iter().filter(|(_, p)| *p).count());
            proptest::prop_assert_eq!(t.secondary_paths(), all.iter().filter(|(_, p)| !*p).count());
        }
    }
}
