//! The BGP link's two hot paths (issue 4: a full table of a million VPNv4 routes from one
//! peer into the node's RIB):
//!
//! * in: speaker events into the RIB in batches ([`apply_events`]). A VPNv4 key goes
//!   straight into the RIB's compact [`Key`] (no `RD:prefix` string per route); the
//!   peer's name, each RD's name and the converted attributes are made once per batch
//!   (paths of one UPDATE share the speaker's attribute `Arc`), not once per route.
//! * out: changed global-table routes to the speaker ([`collect`], [`Outbox::send`]). A
//!   withdrawal goes out only for a key that was advertised: the RIB does not even list
//!   changes of BGP-learned paths (they never change the best non-BGP path, which is what
//!   is advertised), and this guards the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use filament_bgp::{Attrs, Event, LabelStack, Path as BgpPath, RouteKey, Speaker};
use filament_wire_bgp::RouteDistinguisher;
use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;
use smallvec::SmallVec;

use super::{advert, learned, route_key, BgpPeersError, GLOBAL_TABLES};
use crate::rib::{Dirty, Family, Key, Name, PathAttrs, PeerId};
use crate::ControlNode;

/// The fq name of the virtual network with this `virtual_network_network_id`.
fn vn_name(n: &ControlNode, id: u32) -> Option<String> {
    n.graph()
        .of_type("virtual-network")
        .find(|v| {
            v.props
                .get("virtual_network_network_id")
                .and_then(Value::as_u64)
                == Some(u64::from(id))
        })
        .map(|v| v.fq_name.join(":"))
}

/// The RIB key of a VPNv4 route key (`None` for other families: they take the string
/// path, [`learned`]).
fn vpn4_key(key: &RouteKey) -> Option<(RouteDistinguisher, Key)> {
    let RouteKey::Vpn(rd, IpNet::V4(p)) = key else {
        return None;
    };
    let k = Key::vpn4(*rd, p.addr(), p.prefix_len())
        .unwrap_or_else(|| Key::parse(&format!("{rd}:{p}")));
    Some((*rd, k))
}

/// Slots of [`Cache`]'s recent RDs (the top 8 bits of a hash).
const RECENT_RDS: usize = 256;

/// Names and attributes made once per batch (the last one of each is checked first:
/// consecutive events are mostly of one peer, RD and UPDATE).
#[derive(Default)]
struct Cache {
    peers: Vec<(IpAddr, PeerId)>,
    rds: hashbrown::HashMap<[u8; 8], Name>,
    /// The RDs seen last, direct-mapped by a multiplicative hash of their bytes (a full
    /// table interleaves its RDs route by route: one slot per RD, no hashing per route).
    recent_rds: Vec<Option<([u8; 8], Name)>>,
    last_attrs: Option<(Arc<Attrs>, Arc<PathAttrs>)>,
    /// The speaker's attribute `Arc` (kept, so its address is not reused) → ours.
    attrs: HashMap<usize, (Arc<Attrs>, Arc<PathAttrs>)>,
    vn_names: BTreeMap<u32, Option<String>>,
}

impl Cache {
    fn peer(&mut self, n: &mut ControlNode, a: IpAddr) -> PeerId {
        if let Some((_, p)) = self.peers.iter().find(|(x, _)| *x == a) {
            return p.clone();
        }
        let p = n.rib_mut().peer(&PeerId::Bgp(a.to_string().into()));
        self.peers.push((a, p.clone()));
        p
    }

    fn rd(&mut self, n: &mut ControlNode, rd: RouteDistinguisher) -> Name {
        let b = rd.to_bytes();
        let slot = (u64::from_be_bytes(b).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        if self.recent_rds.is_empty() {
            self.recent_rds = vec![None; RECENT_RDS];
        }
        if let Some(Some((seen, name))) = self.recent_rds.get(slot) {
            if *seen == b {
                return name.clone();
            }
        }
        let name = self
            .rds
            .entry(b)
            .or_insert_with(|| n.rib_mut().name(&rd.to_string()))
            .clone();
        if let Some(e) = self.recent_rds.get_mut(slot) {
            *e = Some((b, name.clone()));
        }
        name
    }

    /// Our attributes for the speaker's (origin-vn id → the VN's name, which agents get
    /// as `<virtual-network>`).
    fn attrs(&mut self, n: &mut ControlNode, a: &Arc<Attrs>) -> Arc<PathAttrs> {
        if let Some((theirs, ours)) = &self.last_attrs {
            if Arc::ptr_eq(theirs, a) {
                return ours.clone();
            }
        }
        let ours = self.attrs_lookup(n, a);
        self.last_attrs = Some((a.clone(), ours.clone()));
        ours
    }

    fn attrs_lookup(&mut self, n: &mut ControlNode, a: &Arc<Attrs>) -> Arc<PathAttrs> {
        let id = Arc::as_ptr(a) as usize;
        if let Some((_, ours)) = self.attrs.get(&id) {
            return ours.clone();
        }
        let mut pa = super::path_attrs(a);
        self.origin_vn(n, &mut pa);
        let ours = n.rib_mut().share(pa);
        self.attrs.insert(id, (a.clone(), ours.clone()));
        ours
    }

    fn origin_vn(&mut self, n: &ControlNode, pa: &mut PathAttrs) {
        if let Some(id) = pa.origin_vn_id {
            pa.origin_vn = self
                .vn_names
                .entry(id)
                .or_insert_with(|| vn_name(n, id))
                .clone();
        }
    }
}

/// One learned path into the node's RIB.
fn learn(n: &mut ControlNode, c: &mut Cache, peer: IpAddr, path: BgpPath) {
    let fast = vpn4_key(&path.key).zip(path.labels.first().copied());
    if let Some(((rd, key), label)) = fast {
        let peer = c.peer(n, peer);
        let rd = c.rd(n, rd);
        let attrs = c.attrs(n, &path.attrs);
        n.rib_mut()
            .add_vpn_key(Family::Inet, &key, rd, peer, label, attrs);
    } else if let Some((fam, rd, rest, label, mut attrs)) = learned(&path) {
        c.origin_vn(n, &mut attrs);
        let peer = c.peer(n, peer);
        n.rib_mut().add_vpn(fam, &rd, &rest, peer, label, attrs);
    }
}

/// Routes of one batch whose index entries are loaded together (enough to overlap their
/// misses, few enough that the lines are still in L1 when the routes go in).
const TOUCH_AHEAD: usize = 16;

/// Speaker events into the node's RIB.
pub(super) fn apply_events(n: &mut ControlNode, batch: Vec<Event>) {
    let mut c = Cache::default();
    for ev in batch {
        match ev {
            Event::Learned { peer, path } => learn(n, &mut c, peer, path),
            Event::LearnedMany {
                peer,
                attrs,
                routes,
            } => {
                let peer_id = c.peer(n, peer);
                let ours = c.attrs(n, &attrs);
                // VPNv4 paths a chunk at a time (`Rib::add_vpn_keys`: their index entries
                // loaded together, a million new routes being a million cache misses);
                // any other path, in its turn, by the general way.
                let mut run: SmallVec<[(Key, Name, u32); TOUCH_AHEAD]> = SmallVec::new();
                for (key, labels) in routes {
                    match vpn4_key(&key).zip(labels.first().copied()) {
                        Some(((rd, k), label)) => {
                            let rd = c.rd(n, rd);
                            run.push((k, rd, label));
                            if run.len() == TOUCH_AHEAD {
                                n.rib_mut()
                                    .add_vpn_keys(Family::Inet, &peer_id, &ours, &run);
                                run.clear();
                            }
                        }
                        None => {
                            if !run.is_empty() {
                                n.rib_mut()
                                    .add_vpn_keys(Family::Inet, &peer_id, &ours, &run);
                                run.clear();
                            }
                            let path = BgpPath {
                                key,
                                labels,
                                attrs: attrs.clone(),
                            };
                            learn(n, &mut c, peer, path);
                        }
                    }
                }
                if !run.is_empty() {
                    n.rib_mut()
                        .add_vpn_keys(Family::Inet, &peer_id, &ours, &run);
                }
            }
            Event::Withdrawn { peer, key } => {
                if let Some((rd, k)) = vpn4_key(&key) {
                    let peer = c.peer(n, peer);
                    let rd = c.rd(n, rd);
                    n.rib_mut().del_vpn_key(Family::Inet, &k, &rd, &peer);
                    continue;
                }
                let probe = BgpPath {
                    key,
                    labels: LabelStack::from_slice(&[0]),
                    attrs: Arc::new(Attrs::default()),
                };
                if let Some((fam, rd, rest, _, _)) = learned(&probe) {
                    let peer = c.peer(n, peer);
                    n.rib_mut().del_vpn(fam, &rd, &rest, &peer);
                }
            }
            Event::PeerState { peer, state } => {
                tracing::info!(%peer, state = state.name(), "BGP peer");
            }
            Event::EndOfRib { .. } => {}
        }
    }
}

/// The BGP key of a global-table key.
fn bgp_key(table: &str, k: &Key) -> Option<RouteKey> {
    match k {
        Key::Vpn4 { rd, addr, len } => Some(RouteKey::Vpn(
            RouteDistinguisher::from_bytes(rd.to_be_bytes()),
            IpNet::V4(Ipv4Net::new((*addr).into(), *len).ok()?),
        )),
        _ => route_key(table, &k.to_string()),
    }
}

/// Adverts / withdrawals for the changed global-table routes (every route with a path not
/// learned over BGP when `all`: the first run).
pub(super) fn collect(n: &mut ControlNode, all: bool, asn: u32) -> Vec<Result<BgpPath, RouteKey>> {
    let changes: Dirty = if all {
        n.enable_bgp_changes();
        let _ = n.take_bgp_changes();
        GLOBAL_TABLES
            .iter()
            .filter_map(|t| Some((t.to_string(), n.rib().table(t)?)))
            .map(|(t, tb)| {
                let keys = tb
                    .entries()
                    .filter(|(_, r)| r.paths.iter().any(|p| !matches!(p.peer, PeerId::Bgp(_))))
                    .map(|(k, _)| k.clone())
                    .collect();
                (t, keys)
            })
            .collect()
    } else {
        n.take_bgp_changes()
    };
    let mut out = Vec::new();
    for (t, keys) in changes {
        if !GLOBAL_TABLES.contains(&t.as_str()) {
            continue;
        }
        let tb = n.rib().table(&t);
        for k in keys {
            let Some(key) = bgp_key(&t, &k) else { continue };
            let route = tb.and_then(|tb| tb.get_key(&k));
            out.push(advert(&t, &key, route, asn).ok_or(key));
        }
    }
    out
}

/// What the link advertised to the speaker (so withdrawals go only for those).
#[derive(Default)]
pub(super) struct Outbox {
    advertised: HashSet<RouteKey>,
}

impl Outbox {
    /// Hand adverts / withdrawals to the speaker.
    pub(super) fn send(
        &mut self,
        speaker: &Speaker,
        adverts: Vec<Result<BgpPath, RouteKey>>,
    ) -> Result<(), BgpPeersError> {
        for a in adverts {
            match a {
                Ok(p) => {
                    self.advertised.insert(p.key.clone());
                    speaker.advertise(p)?;
                }
                Err(k) => {
                    if self.advertised.remove(&k) {
                        speaker.withdraw(k)?;
                    }
                }
            }
        }
        Ok(())
    }
}
