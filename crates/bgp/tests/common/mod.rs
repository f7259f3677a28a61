//! In-process harness: several speaker cores joined by virtual TCP
//! connections, driven by a virtual clock (quinn's `Pair` idea). Also a
//! "raw" peer whose bytes a test writes by hand.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use filament_bgp::fsm::Negotiated;
use filament_bgp::peer::Peer;
use filament_bgp::{
    Attrs, Core, Event, Family, Input, LabelStack, Output, Path, PeerConfig, RouteKey,
    SpeakerConfig, State,
};
use filament_wire_bgp::{DecodeCtx, ExtCommunity, Message, RouteTarget, RtcRoute, TunnelType};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub struct Node {
    pub core: Core,
    pub addr: IpAddr,
    /// Events, one `Event::Learned` per learned path ([`flatten`]).
    pub events: Vec<Event>,
    /// `Event::LearnedMany`s the core emitted (one per UPDATE's attribute set).
    pub learned_events: usize,
    /// Drop everything this node sends (to make hold timers expire).
    pub mute: bool,
}

pub struct Net {
    pub nodes: Vec<Node>,
    pub now: Instant,
    links: HashMap<(usize, u64), (usize, u64)>,
    next_conn: u64,
}

impl Net {
    pub fn new() -> Net {
        Net {
            nodes: Vec::new(),
            now: Instant::now(),
            links: HashMap::new(),
            next_conn: 1,
        }
    }

    /// Add a speaker with address `addr` (also its router id when IPv4).
    pub fn add(&mut self, addr: &str, asn: u32, cluster: Option<&str>) -> usize {
        let a = ip(addr);
        let IpAddr::V4(id) = a else { panic!("v4 only") };
        let mut cfg = SpeakerConfig::new(asn, id);
        cfg.connect_retry = Duration::from_secs(5);
        cfg.cluster_id = cluster.map(|c| c.parse().unwrap());
        self.nodes.push(Node {
            core: Core::new(cfg),
            addr: a,
            events: Vec::new(),
            learned_events: 0,
            mute: false,
        });
        self.nodes.len() - 1
    }

    pub fn idx(&self, addr: IpAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// Configure `a` to peer with `b` (one direction).
    pub fn peer_cfg(&self, _a: usize, b: usize) -> PeerConfig {
        let asn = self.nodes[b].core.config().asn;
        let mut p = PeerConfig::new(self.nodes[b].addr, asn);
        p.families.insert(0, Family::Inet);
        p
    }

    /// Peer `a` and `b` both ways with default settings; `a` connects,
    /// `b` is passive.
    pub fn connect(&mut self, a: usize, b: usize) {
        let pa = self.peer_cfg(a, b);
        let mut pb = self.peer_cfg(b, a);
        pb.passive = true;
        self.input(b, Input::AddPeer(pb));
        self.input(a, Input::AddPeer(pa));
        self.run();
    }

    /// Peer `x` with `rr` both ways (`rr` passive), `rr` taking `x` as a route-reflector
    /// client when `client`; without the route-target family on both sides unless `rtc`.
    /// Runs nothing: call [`Net::run`] once every peer is added.
    pub fn attach(&mut self, x: usize, rr: usize, client: bool, rtc: bool) {
        let mut px = self.peer_cfg(x, rr);
        let mut pr = self.peer_cfg(rr, x);
        if !rtc {
            px.families.retain(|f| *f != Family::RouteTarget);
            pr.families.retain(|f| *f != Family::RouteTarget);
        }
        pr.passive = true;
        pr.rr_client = client;
        self.input(rr, Input::AddPeer(pr));
        self.input(x, Input::AddPeer(px));
    }

    pub fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        self.nodes[i].core.handle(now, input);
    }

    /// Deliver outputs until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                // A full table goes out in chunks: flush again while some
                // peer still has destinations queued (as the shell does).
                if self.nodes[i].core.pending() {
                    self.nodes[i].core.flush();
                }
                while let Some(o) = self.nodes[i].core.poll_output() {
                    moved = true;
                    self.deliver(i, o);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("network does not settle");
    }

    fn deliver(&mut self, i: usize, o: Output) {
        let now = self.now;
        match o {
            Output::Connect { peer, .. } => match self.idx(peer) {
                Some(j) => {
                    let (ci, cj) = (self.next_conn, self.next_conn + 1);
                    self.next_conn += 2;
                    self.links.insert((i, ci), (j, cj));
                    self.links.insert((j, cj), (i, ci));
                    let (ai, aj) = (self.nodes[i].addr, self.nodes[j].addr);
                    self.nodes[i].core.handle(
                        now,
                        Input::Connected {
                            conn: ci,
                            remote: aj,
                            local: ai,
                            outgoing: true,
                        },
                    );
                    self.nodes[j].core.handle(
                        now,
                        Input::Connected {
                            conn: cj,
                            remote: ai,
                            local: aj,
                            outgoing: false,
                        },
                    );
                }
                None => self.nodes[i]
                    .core
                    .handle(now, Input::ConnectFailed { peer }),
            },
            Output::Send { conn, bytes } => {
                if self.nodes[i].mute {
                    return;
                }
                if let Some(&(j, cj)) = self.links.get(&(i, conn)) {
                    self.nodes[j]
                        .core
                        .handle(now, Input::Data { conn: cj, bytes });
                }
            }
            Output::Close { conn } => {
                if let Some((j, cj)) = self.links.remove(&(i, conn)) {
                    self.links.remove(&(j, cj));
                    self.nodes[j].core.handle(now, Input::Closed { conn: cj });
                }
            }
            Output::Event(e) => {
                let n = &mut self.nodes[i];
                n.learned_events += usize::from(matches!(e, Event::LearnedMany { .. }));
                n.events.extend(flatten(e));
            }
        }
    }

    /// Cut every connection of node `i` without a NOTIFICATION (TCP reset).
    pub fn cut(&mut self, i: usize) {
        let now = self.now;
        let mine: Vec<((usize, u64), (usize, u64))> = self
            .links
            .iter()
            .filter(|((n, _), _)| *n == i)
            .map(|(a, b)| (*a, *b))
            .collect();
        for ((n, c), (j, cj)) in mine {
            self.links.remove(&(n, c));
            self.links.remove(&(j, cj));
            self.nodes[n].core.handle(now, Input::Closed { conn: c });
            self.nodes[j].core.handle(now, Input::Closed { conn: cj });
        }
        self.run();
    }

    /// Advance the virtual clock by `d`, firing timers in order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.core.poll_timeout())
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = t.max(self.now);
            for i in 0..self.nodes.len() {
                if self.nodes[i]
                    .core
                    .poll_timeout()
                    .is_some_and(|x| x <= self.now)
                {
                    let now = self.now;
                    self.nodes[i].core.handle(now, Input::Tick);
                }
            }
            self.run();
        }
        self.now = end;
    }

    pub fn state(&self, a: usize, b: usize) -> State {
        self.nodes[a]
            .core
            .peer(&self.nodes[b].addr)
            .map(|p| p.state())
            .unwrap_or(State::Idle)
    }

    /// Best path for `key` at node `i`.
    pub fn best(&self, i: usize, key: &RouteKey) -> Option<Path> {
        self.nodes[i].core.rib().best(key).map(|c| c.path.clone())
    }

    /// Node `a`'s neighbour entry for node `b` (which must be configured).
    pub fn peer(&self, a: usize, b: usize) -> &Peer {
        self.nodes[a].core.peer(&self.nodes[b].addr).unwrap()
    }

    /// What node `a` negotiated with node `b` (the session must be up).
    pub fn negotiated(&self, a: usize, b: usize) -> &Negotiated {
        self.peer(a, b).negotiated().unwrap()
    }
}

/// Node `i` asks its peers for every VPN route (default RT membership).
pub fn want_all(net: &mut Net, i: usize) {
    net.input(
        i,
        Input::Advertise(Path {
            key: RouteKey::Rtc(RtcRoute::DEFAULT),
            labels: LabelStack::new(),
            attrs: Arc::new(Attrs::default()),
        }),
    );
    net.run();
}

/// a - b - c in iBGP: b (with cluster id `cluster`) has a and c as
/// route-reflector clients (which matters only with a cluster id); both
/// sessions are up. Nobody has asked for any VPN route yet.
pub fn rr_clients(cluster: Option<&str>) -> (Net, usize, usize, usize) {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, cluster);
    let c = net.add("10.0.0.3", 64512, None);
    for x in [a, c] {
        net.attach(x, b, true, true);
    }
    net.run();
    assert_eq!(net.state(a, b), State::Established);
    assert_eq!(net.state(c, b), State::Established);
    (net, a, b, c)
}

/// In [`rr_chain`] without a cluster id, a VPN route (target `rt`) that `a`
/// advertises reaches `b` but not `c`: iBGP-learned routes stay off other
/// iBGP peers (split horizon). Returns the route.
pub fn split_horizon(net: &mut Net, a: usize, b: usize, c: usize, rt: &str) -> Path {
    let p = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", rt);
    net.input(a, Input::Advertise(p.clone()));
    net.run();
    assert!(net.best(b, &p.key).is_some());
    assert!(
        net.best(c, &p.key).is_none(),
        "iBGP-learned routes stay off other iBGP peers"
    );
    p
}

/// [`rr_clients`] where every node asks for every VPN route.
pub fn rr_chain(cluster: Option<&str>) -> (Net, usize, usize, usize) {
    let (mut net, a, b, c) = rr_clients(cluster);
    for i in [a, b, c] {
        want_all(&mut net, i);
    }
    (net, a, b, c)
}

/// A VPNv4 path with one route target and MPLSoUDP encapsulation.
pub fn vpn_path(rd: &str, prefix: &str, label: u32, nh: &str, rt: &str) -> Path {
    let rt: RouteTarget = rt.parse().unwrap();
    let attrs = Attrs {
        next_hop: Some(ip(nh)),
        ext_communities: vec![
            rt.into(),
            ExtCommunity::new_encapsulation(TunnelType::MplsInUdp),
        ],
        ..Attrs::default()
    };
    Path {
        key: RouteKey::Vpn(rd.parse().unwrap(), prefix.parse().unwrap()),
        labels: LabelStack::from_slice(&[label]),
        attrs: Arc::new(attrs),
    }
}

/// An RT-membership path for `rt` originated by `asn`.
pub fn rtc_path(asn: u32, rt: &str) -> Path {
    Path {
        key: RouteKey::Rtc(RtcRoute::new(asn, rt.parse().unwrap())),
        labels: LabelStack::new(),
        attrs: Arc::new(Attrs::default()),
    }
}

pub fn vpn_key(rd: &str, prefix: &str) -> RouteKey {
    RouteKey::Vpn(rd.parse().unwrap(), prefix.parse().unwrap())
}

// ===== raw peer: the test writes the remote side's bytes =====

/// Encode messages with a context.
pub fn enc(msgs: &[Message], ctx: &DecodeCtx) -> Vec<u8> {
    let mut v = Vec::new();
    for m in msgs {
        m.encode(ctx, &mut v).unwrap();
    }
    v
}

/// Decode every message in `bytes`.
pub fn dec(bytes: &[u8], ctx: &DecodeCtx) -> Vec<Message> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (m, used) = Message::decode(&bytes[at..], ctx).unwrap();
        out.push(m);
        at += used;
    }
    out
}

/// What a core sent on one connection.
pub struct Sent {
    pub msgs: Vec<Message>,
    pub closed: bool,
}

/// An event as one `Event::Learned` per path (the core emits a group of paths with one
/// attribute set as one `Event::LearnedMany`); any other event as it is.
pub fn flatten(e: Event) -> Vec<Event> {
    match e {
        Event::LearnedMany {
            peer,
            attrs,
            routes,
        } => routes
            .into_iter()
            .map(|(key, labels)| Event::Learned {
                peer,
                path: Path {
                    key,
                    labels,
                    attrs: attrs.clone(),
                },
            })
            .collect(),
        e => vec![e],
    }
}

/// Messages a core sent on `conn` (drains its outputs; events are kept).
pub fn sent(core: &mut Core, conn: u64, ctx: &DecodeCtx, events: &mut Vec<Event>) -> Sent {
    let mut s = Sent {
        msgs: Vec::new(),
        closed: false,
    };
    while let Some(o) = core.poll_output() {
        match o {
            Output::Send { conn: c, bytes } if c == conn => s.msgs.extend(dec(&bytes, ctx)),
            Output::Close { conn: c } if c == conn => s.closed = true,
            Output::Event(e) => events.extend(flatten(e)),
            _ => {}
        }
    }
    s
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
