//! Adj-RIB-Out processing: each peer's dirty destinations are run through
//! export ([`crate::export`]) and turned into UPDATEs, withdrawals and
//! End-of-RIB markers (RFC 4724 §2), at most [`FLUSH_CHUNK`] destinations
//! per peer per call so a full table to many peers goes out in steps.
//! RT-membership destinations are chosen per peer among all their paths
//! (RFC 4684 §3.2, [`crate::export::export_membership`]), the others from
//! the Loc-RIB's best path.
//!
//! Peers that export the same attributes for the same destinations (route
//! reflector clients, an iBGP mesh: what FRR calls an update group) share
//! one encoding per flush: the UPDATE bytes are built once and copied.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use filament_wire_bgp::{DecodeCtx, Message, MAX_LEN};

use super::{Core, Event, Output};
use crate::codec;
use crate::export::{export, export_membership};
use crate::rib::{DestId, Labels, Source, SrcInfo};
use crate::types::{Attrs, Family, RouteKey};

/// Destinations turned into UPDATEs per peer per [`Core::flush`].
pub const FLUSH_CHUNK: usize = 8192;

/// What export's answer depends on besides the peer: the best path's
/// attribute set (by pointer: the RIB interns them), source and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ExportIn(usize, Source, bool, Ipv4Addr, bool, Family);

impl ExportIn {
    fn new(attrs: &Arc<Attrs>, s: &SrcInfo, fam: Family) -> Self {
        ExportIn(
            Arc::as_ptr(attrs) as usize,
            s.src,
            s.ebgp,
            s.peer_id,
            s.from_client,
            fam,
        )
    }
}

/// Destinations to announce to one peer with one exported attribute set.
struct Group {
    fam: Family,
    attrs: Arc<Attrs>,
    ids: Vec<DestId>,
}

/// One encoded group, reusable by another peer of the same flush (found by
/// its family, first id and id count).
struct Encoded {
    ctx: DecodeCtx,
    attrs: Arc<Attrs>,
    ids: Vec<DestId>,
    bytes: Vec<u8>,
    msgs: usize,
}

impl Core {
    /// Turn every peer's dirty destinations (at most [`FLUSH_CHUNK`] each)
    /// into UPDATEs, release emptied destinations no peer needs any more,
    /// then report state changes.
    pub fn flush(&mut self) {
        let mut shared: Vec<Encoded> = Vec::new();
        // (family, first id, id count) -> indexes into `shared`: a group is compared in
        // full only with encodings that can match, not with every one of the flush.
        let mut shared_at: HashMap<(Family, DestId, usize), Vec<usize>> = HashMap::new();
        for p in self.peers.values_mut() {
            let Some(c) = p.session() else {
                continue;
            };
            let (id, ctx, local) = (c.id, c.ctx, c.local_addr);
            let fams = c
                .neg
                .as_ref()
                .map(|n| n.families.clone())
                .unwrap_or_default();
            let mut withdraw = Vec::new();
            // Export depends only on ExportIn (and the peer): one
            // computation and one attribute copy per distinct value. Paths
            // come in runs sharing one: the last answer is checked first.
            let mut memo: HashMap<ExportIn, Option<Arc<Attrs>>> = HashMap::new();
            let mut last: Option<(ExportIn, Option<Arc<Attrs>>)> = None;
            let mut groups: Vec<Group> = Vec::new();
            let mut group_of: HashMap<(usize, Family), usize> = HashMap::new();
            for (d, changed) in p.dirty.take(FLUSH_CHUNK) {
                let Some(fam) = self.rib.family_of(d) else {
                    continue;
                };
                // RT membership: chosen per peer among all paths (RFC 4684 §3.2).
                let want = if fam == Family::RouteTarget {
                    export_membership(&self.cfg, p, &fams, local, &self.rib, d).map(Arc::new)
                } else {
                    self.rib.best_parts(d).and_then(|(si, attrs, _)| {
                        let k = ExportIn::new(attrs, &si, fam);
                        if let Some((_, a)) = last.as_ref().filter(|(m, _)| *m == k) {
                            return a.clone();
                        }
                        let a = memo
                            .entry(k)
                            .or_insert_with(|| {
                                export(&self.cfg, p, &fams, local, fam, &si, attrs).map(Arc::new)
                            })
                            .clone();
                        last = Some((k, a.clone()));
                        a
                    })
                };
                match want {
                    Some(attrs) => {
                        // Already sent and unchanged: only the filter moved.
                        let fresh = p.adj_out.insert(d);
                        if !fresh && !changed {
                            continue;
                        }
                        // Membership: the path chosen for this peer did not move.
                        if fam == Family::RouteTarget {
                            if !fresh && p.rtc_out.get(&d).is_some_and(|a| *a == attrs) {
                                continue;
                            }
                            p.rtc_out.insert(d, attrs.clone());
                        }
                        let gk = (Arc::as_ptr(&attrs) as usize, fam);
                        let gi = match groups.last() {
                            Some(g) if g.fam == fam && Arc::ptr_eq(&g.attrs, &attrs) => {
                                groups.len() - 1
                            }
                            _ => *group_of.entry(gk).or_insert_with(|| {
                                groups.push(Group {
                                    fam,
                                    attrs,
                                    ids: Vec::new(),
                                });
                                groups.len() - 1
                            }),
                        };
                        if let Some(g) = groups.get_mut(gi) {
                            g.ids.push(d);
                        }
                    }
                    None => {
                        if fam == Family::RouteTarget {
                            p.rtc_out.remove(&d);
                        }
                        if p.adj_out.remove(d) {
                            withdraw.extend(self.rib.key_of(d));
                        }
                    }
                }
            }
            let mut bytes = Vec::new();
            let mut msgs = 0;
            if !withdraw.is_empty() {
                msgs +=
                    codec::encode_withdrawals(&withdraw, &ctx, MAX_LEN, &mut bytes).unwrap_or(0);
            }
            for g in groups {
                let sk = (
                    g.fam,
                    g.ids.first().copied().unwrap_or_default(),
                    g.ids.len(),
                );
                let hit = shared_at.get(&sk).into_iter().flatten().find_map(|&i| {
                    shared
                        .get(i)
                        .filter(|e| e.ctx == ctx && e.ids == g.ids && *e.attrs == *g.attrs)
                });
                if let Some(e) = hit {
                    bytes.extend_from_slice(&e.bytes);
                    msgs += e.msgs;
                    continue;
                }
                let routes: Vec<(RouteKey, Labels)> = g
                    .ids
                    .iter()
                    .filter_map(|&d| {
                        let labels = self.rib.best_parts(d)?.2;
                        Some((self.rib.key_of(d)?, labels))
                    })
                    .collect();
                let rs: Vec<(&RouteKey, &[u32])> =
                    routes.iter().map(|(k, l)| (k, l.as_slice())).collect();
                let mut enc = Vec::new();
                let n = codec::encode_announcements(g.fam, &g.attrs, &rs, &ctx, MAX_LEN, &mut enc)
                    .unwrap_or(0);
                bytes.extend_from_slice(&enc);
                msgs += n;
                shared_at.entry(sk).or_default().push(shared.len());
                shared.push(Encoded {
                    ctx,
                    attrs: g.attrs,
                    ids: g.ids,
                    bytes: enc,
                    msgs: n,
                });
            }
            // RFC 4724 - Section 2: "the End-of-RIB marker [is sent] ...
            // to indicate to its peer the completion of the initial routing
            // update after the session is established." VPN families wait for
            // RT-constraint (RFC 4684 §6).
            if p.dirty.is_empty() {
                for f in fams {
                    if p.eor_sent.contains(&f) || (f.is_vpn() && !p.rtc_ready) {
                        continue;
                    }
                    p.eor_sent.insert(f);
                    let _ = Message::Update(codec::end_of_rib(f)).encode(&ctx, &mut bytes);
                }
            }
            p.stats.updates_out += msgs as u64;
            if !bytes.is_empty() {
                self.out.push_back(Output::Send { conn: id, bytes });
            }
        }
        // A destination's id is reused only once no peer may still have to
        // be told about it.
        for d in self.rib.take_emptied() {
            if self
                .peers
                .values()
                .any(|p| p.adj_out.contains(d) || p.dirty.contains(d))
            {
                self.rib.defer_release(d);
            } else {
                self.rib.release(d);
            }
        }
        for (addr, p) in &self.peers {
            let s = p.state();
            if self.reported.insert(*addr, s) != Some(s) {
                self.out.push_back(Output::Event(Event::PeerState {
                    peer: *addr,
                    state: s,
                }));
            }
        }
    }
}
