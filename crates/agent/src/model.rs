//! The agent's view of its config (sans-IO, level-triggered): typed reads over the IFMap graph
//! the control node delivered (`filament_ifmap::IfmapGraph`, objects in the config API's JSON
//! shape). Everything here is recomputed from the graph on demand — TF's agent tables
//! (VMI, VN, VRF, SG, ACL, IPAM; tf-facts §2.6) reduced to what ports, DHCP and flows need.

use std::net::Ipv4Addr;

use filament_ifmap::IfmapGraph;
use serde_json::Value;

use crate::flow::{parse_acl, AclRule};

/// Encapsulations in global-vrouter-config priority order (tf-facts §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encap {
    /// `MPLSoGRE` (XMPP `gre`)
    MplsOverGre,
    /// `MPLSoUDP` (XMPP `udp`)
    MplsOverUdp,
    /// `VXLAN` (XMPP `vxlan`)
    Vxlan,
}

/// global-vrouter-config as the agent uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalCfg {
    /// encapsulation priority (default: TF's MPLSoGRE, MPLSoUDP, VXLAN)
    pub encaps: Vec<Encap>,
    /// `vxlan_network_identifier_mode == "configured"`
    pub vxlan_configured: bool,
}

/// One IPAM subnet of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetCfg {
    /// network address
    pub prefix: Ipv4Addr,
    /// prefix length
    pub plen: u8,
    /// default gateway
    pub gateway: Option<Ipv4Addr>,
    /// service (DNS/DHCP) address
    pub service: Option<Ipv4Addr>,
    /// `dns_nameservers`
    pub dns: Vec<Ipv4Addr>,
    /// host routes `(prefix, plen, next hop)`
    pub host_routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    /// DHCP option 15 from `dhcp_option_list` (`domain-name`)
    pub domain: Option<String>,
    /// DHCP option 51 from `dhcp_option_list`
    pub lease: Option<u32>,
}

impl SubnetCfg {
    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = u32::MAX
            .checked_shl(32 - u32::from(self.plen.min(32)))
            .unwrap_or(0);
        u32::from(ip) & m == u32::from(self.prefix) & m
    }
}

/// A virtual network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnCfg {
    /// fq name string (`default-domain:p:vn1`)
    pub name: String,
    /// `virtual_network_network_id`
    pub network_id: Option<u32>,
    /// `virtual_network_properties.vxlan_network_identifier`
    pub vxlan_id: Option<u32>,
    /// IPAM subnets
    pub subnets: Vec<SubnetCfg>,
    /// the network ACL (`None`: no policy attached)
    pub acl: Option<Vec<AclRule>>,
    /// the primary routing instance (`<vn>:<last name>`)
    pub vrf: String,
}

impl VnCfg {
    /// The VNI by the global mode (tf-facts §5.3).
    pub fn vni(&self, g: &GlobalCfg) -> Option<u32> {
        if g.vxlan_configured {
            self.vxlan_id.or(self.network_id)
        } else {
            self.network_id
        }
    }
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SgCfg {
    /// `security_group_id`
    pub id: Option<u32>,
    /// ingress ACL rules
    pub ingress: Vec<AclRule>,
    /// egress ACL rules
    pub egress: Vec<AclRule>,
}

/// A port (VMI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmiCfg {
    /// uuid
    pub uuid: String,
    /// fq name string
    pub name: String,
    /// first MAC of `virtual_machine_interface_mac_addresses`
    pub mac: Option<String>,
    /// its network (fq name string)
    pub vn: Option<String>,
    /// instance-ip addresses referring to it (IPv4)
    pub ips: Vec<Ipv4Addr>,
    /// security group fq names
    pub sgs: Vec<String>,
}

fn refs<'a>(o: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> + 'a {
    o.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
}

fn ref_name(r: &Value) -> Option<String> {
    let to = r.get("to")?.as_array()?;
    let parts: Vec<&str> = to.iter().filter_map(Value::as_str).collect();
    Some(parts.join(":"))
}

fn ip(v: Option<&Value>) -> Option<Ipv4Addr> {
    v?.as_str()?.parse().ok()
}

fn u32_of(v: Option<&Value>) -> Option<u32> {
    u32::try_from(v?.as_u64()?).ok()
}

/// global-vrouter-config (any one; there is one per system).
pub fn global(g: &IfmapGraph) -> GlobalCfg {
    let obj = g
        .keys_of("global-vrouter-config")
        .next()
        .and_then(|(t, n)| g.object(t, n));
    let encaps: Vec<Encap> = obj
        .as_ref()
        .and_then(|o| o.pointer("/encapsulation_priorities/encapsulation"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|e| match e.as_str()? {
                    "MPLSoGRE" => Some(Encap::MplsOverGre),
                    "MPLSoUDP" => Some(Encap::MplsOverUdp),
                    "VXLAN" => Some(Encap::Vxlan),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    GlobalCfg {
        encaps: if encaps.is_empty() {
            vec![Encap::MplsOverGre, Encap::MplsOverUdp, Encap::Vxlan]
        } else {
            encaps
        },
        vxlan_configured: obj
            .as_ref()
            .and_then(|o| o.get("vxlan_network_identifier_mode"))
            .and_then(Value::as_str)
            == Some("configured"),
    }
}

fn routes_of(v: Option<&Value>) -> Vec<(Ipv4Addr, u8, Ipv4Addr)> {
    let Some(list) = v.and_then(|r| r.get("route")).and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|r| {
            let (p, l) = r.get("prefix")?.as_str()?.split_once('/')?;
            Some((p.parse().ok()?, l.parse().ok()?, ip(r.get("next_hop"))?))
        })
        .collect()
}

fn dhcp_opt<'a>(s: &'a Value, names: &[&str]) -> Option<&'a str> {
    let list = s.pointer("/dhcp_option_list/dhcp_option")?.as_array()?;
    list.iter()
        .find(|o| {
            o.get("dhcp_option_name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.contains(&n))
        })?
        .get("dhcp_option_value")?
        .as_str()
}

fn subnet(s: &Value, vn_routes: &[(Ipv4Addr, u8, Ipv4Addr)]) -> Option<SubnetCfg> {
    let prefix = ip(s.pointer("/subnet/ip_prefix"))?;
    let plen = u8::try_from(s.pointer("/subnet/ip_prefix_len")?.as_u64()?).ok()?;
    let mut host_routes = routes_of(s.get("host_routes"));
    host_routes.extend_from_slice(vn_routes);
    Some(SubnetCfg {
        prefix,
        plen,
        gateway: ip(s.get("default_gateway")).filter(|a| !a.is_unspecified()),
        service: ip(s.get("dns_server_address")).filter(|a| !a.is_unspecified()),
        dns: s
            .get("dns_nameservers")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|a| a.as_str()?.parse().ok()).collect())
            .unwrap_or_default(),
        host_routes,
        domain: dhcp_opt(s, &["domain-name", "15"]).map(str::to_string),
        lease: dhcp_opt(s, &["dhcp-lease-time", "51"]).and_then(|v| v.parse().ok()),
    })
}

/// A network by fq name string.
pub fn vn(g: &IfmapGraph, name: &str) -> Option<VnCfg> {
    let o = g.object("virtual-network", name)?;
    let mut subnets = Vec::new();
    for r in refs(&o, "network_ipam_refs") {
        let vn_routes = routes_of(r.pointer("/attr/host_routes"));
        for s in r
            .pointer("/attr/ipam_subnets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            subnets.extend(subnet(s, &vn_routes));
        }
    }
    let last = name.rsplit(':').next().unwrap_or(name);
    let acl = g
        .children("virtual-network", name)
        .into_iter()
        .filter(|(t, _)| t == "access-control-list")
        .find_map(|(t, n)| g.object(&t, &n))
        .and_then(|a| a.get("access_control_list_entries").map(parse_acl));
    Some(VnCfg {
        name: name.to_string(),
        network_id: u32_of(o.get("virtual_network_network_id")),
        vxlan_id: u32_of(o.pointer("/virtual_network_properties/vxlan_network_identifier")),
        subnets,
        acl,
        vrf: format!("{name}:{last}"),
    })
}

/// A security group by fq name string.
pub fn sg(g: &IfmapGraph, name: &str) -> Option<SgCfg> {
    let o = g.object("security-group", name)?;
    let mut out = SgCfg {
        id: u32_of(o.get("security_group_id")),
        ..SgCfg::default()
    };
    for (t, n) in g.children("security-group", name) {
        let Some(a) = (t == "access-control-list")
            .then(|| g.object(&t, &n))
            .flatten()
        else {
            continue;
        };
        // A security group is an allow list: every entry passes. The transformers (TF's
        // and ours) write `simple_action: pass`; entries without an action are read
        // the same way, so the action is not read from the entry.
        let mut rules = a
            .get("access_control_list_entries")
            .map(parse_acl)
            .unwrap_or_default();
        rules.iter_mut().for_each(|r| r.pass = true);
        if n.ends_with(":ingress-access-control-list") {
            out.ingress = rules;
        } else if n.ends_with(":egress-access-control-list") {
            out.egress = rules;
        }
    }
    Some(out)
}

/// A port by uuid (scans the VMIs the agent received; an agent has few).
pub fn vmi(g: &IfmapGraph, uuid: &str) -> Option<VmiCfg> {
    // the uuid is read from the node's own properties: no VMI is copied but the one found
    let (t, name) = g.keys_of("virtual-machine-interface").find(|(t, n)| {
        g.props(t, n)
            .and_then(|p| p.get("uuid"))
            .and_then(Value::as_str)
            == Some(uuid)
    })?;
    let o = g.object(t, name)?;
    vmi_of(g, uuid, name.clone(), &o)
}

/// A port by uuid when its node name is known (no scan); `None` if that node is gone or now
/// carries another uuid.
pub fn vmi_named(g: &IfmapGraph, uuid: &str, name: &str) -> Option<VmiCfg> {
    let o = g.object("virtual-machine-interface", name)?;
    if o.get("uuid").and_then(Value::as_str) != Some(uuid) {
        return None;
    }
    vmi_of(g, uuid, name.to_string(), &o)
}

fn vmi_of(g: &IfmapGraph, uuid: &str, name: String, o: &Value) -> Option<VmiCfg> {
    let ips = g
        .referrers("virtual-machine-interface", &name)
        .into_iter()
        .filter(|((t, _), _)| t == "instance-ip")
        .filter_map(|((t, n), _)| ip(g.object(&t, &n)?.get("instance_ip_address")))
        .collect();
    let mac = o
        .pointer("/virtual_machine_interface_mac_addresses/mac_address/0")
        .and_then(Value::as_str)
        .map(str::to_string);
    let vn = refs(o, "virtual_network_refs").find_map(ref_name);
    let sgs = refs(o, "security_group_refs")
        .filter_map(ref_name)
        .collect();
    Some(VmiCfg {
        uuid: uuid.to_string(),
        mac,
        vn,
        ips,
        sgs,
        name,
    })
}
