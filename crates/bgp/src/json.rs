//! Paths as JSON: what the example peer reads and prints, and what
//! introspection shows. Names follow TF's families (`inet-vpn`, `e-vpn`,
//! `route-target`) and its text forms (`target:64512:8000001`, RD
//! `192.0.2.1:2`).
//!
//! ```json
//! {"family":"inet-vpn","rd":"192.0.2.1:2","prefix":"10.1.1.3/32","labels":[16],
//!  "next_hop":"192.0.2.1","route_targets":["target:64512:8000001"],
//!  "encapsulation":["mpls-o-udp"],"as_path":[64512],"origin":"igp","local_pref":100}
//! {"family":"e-vpn","route_type":2,"rd":"192.0.2.1:2","mac":"02:00:00:00:00:01",
//!  "ip":"10.1.1.3","eth_tag":0,"labels":[256], ...}
//! {"family":"route-target","origin_as":64512,"route_target":"target:64512:8000001"}
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use filament_wire_bgp::{
    AsPath, AsSegment, Esi, EvpnRoute, ExtCommunity, LabelField, MacAddr, Origin, RouteTarget,
    RtcRoute, TunnelType,
};
use serde_json::{json, Map, Value};

use crate::types::{evpn_split, Attrs, EvpnKey, Family, LabelStack, Path, RouteKey};

/// Why a JSON path could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A required field is missing or has the wrong type.
    #[error("field {field:?} is missing or invalid")]
    Field {
        /// The field name.
        field: &'static str,
    },
    /// The family is not one the speaker carries.
    #[error("unknown family {0:?}")]
    Family(String),
}

fn field(field: &'static str) -> JsonError {
    JsonError::Field { field }
}

fn s<'a>(v: &'a Value, f: &'static str) -> Result<&'a str, JsonError> {
    v.get(f).and_then(Value::as_str).ok_or_else(|| field(f))
}

fn parse<T: std::str::FromStr>(v: &Value, f: &'static str) -> Result<T, JsonError> {
    s(v, f)?.parse().map_err(|_| field(f))
}

fn u32f(v: &Value, f: &'static str) -> Result<u32, JsonError> {
    v.get(f)
        .and_then(Value::as_u64)
        .and_then(|x| u32::try_from(x).ok())
        .ok_or_else(|| field(f))
}

fn encap_name(t: TunnelType) -> String {
    match t {
        TunnelType::MplsInUdp => "mpls-o-udp".into(),
        TunnelType::MplsInGre => "mpls-o-gre".into(),
        TunnelType::Gre => "gre".into(),
        TunnelType::Vxlan => "vxlan".into(),
        other => format!("{}", u16::from(other)),
    }
}

fn encap_from(s: &str) -> Option<TunnelType> {
    Some(match s {
        "mpls-o-udp" | "udp" => TunnelType::MplsInUdp,
        "mpls-o-gre" => TunnelType::MplsInGre,
        "gre" => TunnelType::Gre,
        "vxlan" => TunnelType::Vxlan,
        other => TunnelType::from(other.parse::<u16>().ok()?),
    })
}

/// A short text form of an EVPN route (TF-like: `2-<rd>-<tag>-<mac>,<ip>`).
pub fn evpn_text(r: &EvpnRoute) -> String {
    match r {
        EvpnRoute::EthernetAd {
            rd, esi, eth_tag, ..
        } => format!("1-{rd}-{esi}-{eth_tag}"),
        EvpnRoute::MacIp {
            rd,
            eth_tag,
            mac,
            ip,
            ..
        } => match ip {
            Some(ip) => format!("2-{rd}-{eth_tag}-{mac},{ip}"),
            None => format!("2-{rd}-{eth_tag}-{mac}"),
        },
        EvpnRoute::InclusiveMulticast {
            rd,
            eth_tag,
            orig_ip,
        } => format!("3-{rd}-{eth_tag}-{orig_ip}"),
        EvpnRoute::EthernetSegment { rd, esi, orig_ip } => format!("4-{rd}-{esi}-{orig_ip}"),
        EvpnRoute::IpPrefix {
            rd,
            eth_tag,
            prefix,
            ..
        } => format!("5-{rd}-{eth_tag}-{prefix}"),
        EvpnRoute::Unknown { route_type, .. } => format!("{route_type}-?"),
    }
}

/// The key's fields as JSON (family plus what identifies the route).
pub fn key_to_json(k: &RouteKey) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("family".into(), k.family().name().into());
    match k {
        RouteKey::Inet(p) => {
            m.insert("prefix".into(), p.to_string().into());
        }
        RouteKey::Vpn(rd, p) => {
            m.insert("rd".into(), rd.to_string().into());
            m.insert("prefix".into(), p.to_string().into());
        }
        RouteKey::Evpn(e) => {
            m.insert("route_type".into(), e.0.route_type().into());
            m.insert("text".into(), evpn_text(&e.0).into());
            match &e.0 {
                EvpnRoute::MacIp {
                    rd,
                    esi,
                    eth_tag,
                    mac,
                    ip,
                    ..
                } => {
                    m.insert("rd".into(), rd.to_string().into());
                    m.insert("esi".into(), esi.to_string().into());
                    m.insert("eth_tag".into(), (*eth_tag).into());
                    m.insert("mac".into(), mac.to_string().into());
                    m.insert("ip".into(), ip.map(|i| i.to_string()).into());
                }
                EvpnRoute::InclusiveMulticast {
                    rd,
                    eth_tag,
                    orig_ip,
                } => {
                    m.insert("rd".into(), rd.to_string().into());
                    m.insert("eth_tag".into(), (*eth_tag).into());
                    m.insert("orig_ip".into(), orig_ip.to_string().into());
                }
                EvpnRoute::IpPrefix {
                    rd,
                    esi,
                    eth_tag,
                    prefix,
                    gateway,
                    ..
                } => {
                    m.insert("rd".into(), rd.to_string().into());
                    m.insert("esi".into(), esi.to_string().into());
                    m.insert("eth_tag".into(), (*eth_tag).into());
                    m.insert("prefix".into(), prefix.to_string().into());
                    m.insert("gateway".into(), gateway.to_string().into());
                }
                EvpnRoute::EthernetAd {
                    rd, esi, eth_tag, ..
                } => {
                    m.insert("rd".into(), rd.to_string().into());
                    m.insert("esi".into(), esi.to_string().into());
                    m.insert("eth_tag".into(), (*eth_tag).into());
                }
                EvpnRoute::EthernetSegment { rd, esi, orig_ip } => {
                    m.insert("rd".into(), rd.to_string().into());
                    m.insert("esi".into(), esi.to_string().into());
                    m.insert("orig_ip".into(), orig_ip.to_string().into());
                }
                EvpnRoute::Unknown { .. } => {}
            }
        }
        RouteKey::Rtc(r) => {
            m.insert("origin_as".into(), r.origin_as.into());
            m.insert("prefix_len".into(), r.prefix_len.into());
            m.insert(
                "route_target".into(),
                r.route_target().map(|t| t.to_string()).into(),
            );
        }
    }
    m
}

/// A path as JSON.
pub fn path_to_json(p: &Path) -> Value {
    let mut m = key_to_json(&p.key);
    let a = &p.attrs;
    m.insert("labels".into(), json!(p.labels.as_slice()));
    m.insert("next_hop".into(), a.next_hop.map(|n| n.to_string()).into());
    let rts: Vec<String> = a.route_targets().map(|t| t.to_string()).collect();
    m.insert("route_targets".into(), json!(rts));
    let encap: Vec<String> = a
        .ext_communities
        .iter()
        .filter_map(|c| c.encapsulation().map(encap_name))
        .collect();
    m.insert("encapsulation".into(), json!(encap));
    if let Some((asn, vn)) = a.ext_communities.iter().find_map(|c| c.origin_vn()) {
        m.insert("origin_vn".into(), format!("origin-vn:{asn}:{vn}").into());
    }
    let ext: Vec<String> = a
        .ext_communities
        .iter()
        .map(|c| c.0.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    m.insert("ext_communities".into(), json!(ext));
    let asns: Vec<u32> = a
        .as_path
        .0
        .iter()
        .flat_map(|s| match s {
            AsSegment::Sequence(v)
            | AsSegment::Set(v)
            | AsSegment::ConfedSequence(v)
            | AsSegment::ConfedSet(v) => v.clone(),
        })
        .collect();
    m.insert("as_path".into(), json!(asns));
    m.insert(
        "origin".into(),
        match a.origin {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        }
        .into(),
    );
    m.insert("local_pref".into(), a.local_pref.into());
    m.insert("med".into(), a.med.into());
    m.insert("communities".into(), json!(a.communities));
    m.insert(
        "originator_id".into(),
        a.originator_id.map(|o| o.to_string()).into(),
    );
    let cl: Vec<String> = a.cluster_list.iter().map(|c| c.to_string()).collect();
    m.insert("cluster_list".into(), json!(cl));
    Value::Object(m)
}

/// Read a route key from JSON (the `family` field says which fields follow).
pub fn key_from_json(v: &Value) -> Result<RouteKey, JsonError> {
    let fam = s(v, "family")?;
    let family = Family::from_name(fam).ok_or_else(|| JsonError::Family(fam.into()))?;
    Ok(match family {
        Family::Inet => RouteKey::Inet(parse(v, "prefix")?),
        Family::InetVpn | Family::Inet6Vpn => RouteKey::Vpn(parse(v, "rd")?, parse(v, "prefix")?),
        Family::Evpn => RouteKey::Evpn(Box::new(EvpnKey(evpn_split(&evpn_from_json(v)?).0))),
        Family::RouteTarget => {
            if v.get("default").and_then(Value::as_bool) == Some(true) {
                RouteKey::Rtc(RtcRoute::DEFAULT)
            } else {
                let rt: RouteTarget = parse(v, "route_target")?;
                RouteKey::Rtc(RtcRoute::new(u32f(v, "origin_as")?, rt))
            }
        }
    })
}

fn evpn_from_json(v: &Value) -> Result<EvpnRoute, JsonError> {
    let zero = LabelField::new(0).ok_or_else(|| field("labels"))?;
    let esi: Esi = match v.get("esi") {
        Some(_) => parse(v, "esi")?,
        None => Esi::ZERO,
    };
    let eth_tag = u32f(v, "eth_tag").unwrap_or(0);
    let rd = parse(v, "rd")?;
    Ok(match u32f(v, "route_type")? {
        2 => EvpnRoute::MacIp {
            rd,
            esi,
            eth_tag,
            mac: parse::<MacAddr>(v, "mac")?,
            ip: match v.get("ip") {
                Some(Value::String(_)) => Some(parse::<IpAddr>(v, "ip")?),
                _ => None,
            },
            label1: zero,
            label2: None,
        },
        3 => EvpnRoute::InclusiveMulticast {
            rd,
            eth_tag,
            orig_ip: parse(v, "orig_ip")?,
        },
        5 => EvpnRoute::IpPrefix {
            rd,
            esi,
            eth_tag,
            prefix: parse(v, "prefix")?,
            gateway: match v.get("gateway") {
                Some(_) => parse(v, "gateway")?,
                None => IpAddr::from([0, 0, 0, 0]),
            },
            label: zero,
        },
        _ => return Err(field("route_type")),
    })
}

/// Read a path from JSON. Attributes default to ORIGIN IGP, empty AS path.
pub fn path_from_json(v: &Value) -> Result<Path, JsonError> {
    let key = key_from_json(v)?;
    let labels = match v.get("labels") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect::<Option<LabelStack>>()
            .ok_or_else(|| field("labels"))?,
        _ => LabelStack::new(),
    };
    let mut a = Attrs::default();
    if let Some(Value::String(_)) = v.get("next_hop") {
        a.next_hop = Some(parse(v, "next_hop")?);
    }
    for t in v
        .get("route_targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rt: RouteTarget = t
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| field("route_targets"))?;
        a.ext_communities.push(rt.into());
    }
    for e in v
        .get("encapsulation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = e
            .as_str()
            .and_then(encap_from)
            .ok_or_else(|| field("encapsulation"))?;
        a.ext_communities.push(ExtCommunity::new_encapsulation(t));
    }
    if let Some(vn) = v.get("origin_vn").and_then(Value::as_str) {
        let mut it = vn.trim_start_matches("origin-vn:").split(':');
        let (Some(asn), Some(n)) = (
            it.next().and_then(|x| x.parse().ok()),
            it.next().and_then(|x| x.parse().ok()),
        ) else {
            return Err(field("origin_vn"));
        };
        a.ext_communities
            .extend(ExtCommunity::new_origin_vn(asn, n));
    }
    if let Some(asns) = v.get("as_path").and_then(Value::as_array) {
        let asns: Vec<u32> = asns
            .iter()
            .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| field("as_path"))?;
        if !asns.is_empty() {
            a.as_path = AsPath(vec![AsSegment::Sequence(asns)]);
        }
    }
    a.local_pref = u32f(v, "local_pref").ok();
    a.med = u32f(v, "med").ok();
    Ok(Path {
        key,
        labels,
        attrs: Arc::new(a),
    })
}
