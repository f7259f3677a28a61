//! Port API requests in TF's shape (tf-facts §8.2, `port_ipc/rest_server.cc`): the JSON body of
//! `POST /port`, parsed and validated into a typed `PortReq` before anything changes.
//! Keys: `id` (VMI uuid), `instance-id` (VM uuid), `display-name`, `ip-address`, `vn-id`,
//! `vm-project-id`, `mac-address`, `system-name` (host-side ifname), `type`, `rx-vlan-id`,
//! `tx-vlan-id`, plus ours: `vm-namespace` (netns; the agent creates the veth pair) and
//! `vm-ifname` (default eth0).

use std::net::Ipv4Addr;

use filament_dataplane::MacAddr;
use serde_json::Value;

/// A validated port request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortReq {
    /// VMI uuid
    pub id: String,
    /// VM uuid
    pub vm: String,
    /// VN uuid
    pub vn: Option<String>,
    /// project uuid
    pub project: Option<String>,
    /// display name
    pub display_name: Option<String>,
    /// workload address (used until the config's instance-ip arrives)
    pub ip: Option<Ipv4Addr>,
    /// workload MAC
    #[serde(serialize_with = "ser_mac")]
    pub mac: MacAddr,
    /// host-side interface name
    pub system_name: String,
    /// workload netns (the agent creates the veth pair)
    pub netns: Option<String>,
    /// workload-side interface name
    pub vm_ifname: String,
    /// MTU of the host-side interface, read by the shell when it attaches the port (not a
    /// request key); the DHCP MTU never exceeds it
    pub mtu: Option<u16>,
}

fn ser_mac<S: serde::Serializer>(m: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&m.to_string())
}

/// A rejected request (HTTP 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Body is not a JSON object.
    #[error("body must be a JSON object")]
    NotObject,
    /// A required key is missing or empty.
    #[error("missing required key {0:?}")]
    Missing(&'static str),
    /// A key has a bad value.
    #[error("bad value for {key:?}: {value:?} ({why})")]
    Bad {
        /// key
        key: &'static str,
        /// the value given
        value: String,
        /// what was expected
        why: &'static str,
    },
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Linux interface names: 1–15 bytes, no '/', whitespace or ':'.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && c != b'/' && c != b':')
}

impl PortReq {
    /// Parse and validate a `POST /port` body.
    pub fn parse(body: &Value) -> Result<Self, PortError> {
        let o = body.as_object().ok_or(PortError::NotObject)?;
        let s = |k: &'static str| {
            o.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let uuid = |k: &'static str, req: bool| -> Result<Option<String>, PortError> {
            match s(k) {
                None if req => Err(PortError::Missing(k)),
                None => Ok(None),
                Some(v) if is_uuid(v) => Ok(Some(v.to_ascii_lowercase())),
                Some(v) => Err(PortError::Bad {
                    key: k,
                    value: v.into(),
                    why: "expected a uuid",
                }),
            }
        };
        let id = uuid("id", true)?.ok_or(PortError::Missing("id"))?;
        let vm = uuid("instance-id", true)?.ok_or(PortError::Missing("instance-id"))?;
        let vn = uuid("vn-id", false)?;
        let project = uuid("vm-project-id", false)?;
        let ip = match s("ip-address") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| PortError::Bad {
                key: "ip-address",
                value: v.into(),
                why: "expected an IPv4 address",
            })?),
        };
        let mac_s = s("mac-address").ok_or(PortError::Missing("mac-address"))?;
        let mac: MacAddr = mac_s.parse().map_err(|_| PortError::Bad {
            key: "mac-address",
            value: mac_s.into(),
            why: "expected aa:bb:cc:dd:ee:ff",
        })?;
        if mac.is_multicast() || mac == MacAddr::ZERO {
            return Err(PortError::Bad {
                key: "mac-address",
                value: mac_s.into(),
                why: "must be a unicast MAC",
            });
        }
        let system_name = s("system-name")
            .ok_or(PortError::Missing("system-name"))?
            .to_string();
        if !valid_ifname(&system_name) {
            return Err(PortError::Bad {
                key: "system-name",
                value: system_name,
                why: "not a valid interface name",
            });
        }
        let vm_ifname = s("vm-ifname").unwrap_or("eth0").to_string();
        if !valid_ifname(&vm_ifname) {
            return Err(PortError::Bad {
                key: "vm-ifname",
                value: vm_ifname,
                why: "not a valid interface name",
            });
        }
        let netns = s("vm-namespace").map(str::to_string);
        if let Some(ns) = &netns {
            if ns.len() > 64
                || !ns
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
            {
                return Err(PortError::Bad {
                    key: "vm-namespace",
                    value: ns.clone(),
                    why: "not a valid netns name",
                });
            }
        }
        Ok(PortReq {
            id,
            vm,
            vn,
            project,
            display_name: s("display-name").map(str::to_string),
            ip,
            mac,
            system_name,
            netns,
            vm_ifname,
            mtu: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({"id": "11111111-2222-3333-4444-555555555555", "instance-id": "aaaaaaaa-2222-3333-4444-555555555555",
               "ip-address": "10.1.1.3", "vn-id": "bbbbbbbb-2222-3333-4444-555555555555", "vm-project-id": "",
               "mac-address": "02:00:00:00:00:03", "system-name": "tap1", "display-name": "vm1",
               "type": 0, "rx-vlan-id": -1, "tx-vlan-id": -1, "vm-namespace": "ws1"})
    }

    #[test]
    fn tf_shaped_body_parses() {
        let p = PortReq::parse(&body()).unwrap();
        assert_eq!(p.id, "11111111-2222-3333-4444-555555555555");
        assert_eq!(p.ip, Some(Ipv4Addr::new(10, 1, 1, 3)));
        assert_eq!(p.mac, MacAddr([2, 0, 0, 0, 0, 3]));
        assert_eq!(p.project, None);
        assert_eq!(p.netns.as_deref(), Some("ws1"));
        assert_eq!(p.vm_ifname, "eth0");
    }

    #[test]
    fn bad_bodies_name_the_key() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("id", json!("nope"), "bad value for \"id\""),
            ("mac-address", json!("01:00:00:00:00:01"), "unicast"),
            ("mac-address", json!("zz"), "mac-address"),
            ("ip-address", json!("10.1.1"), "ip-address"),
            ("system-name", json!("a/b"), "system-name"),
            (
                "system-name",
                json!("waytoolonginterfacename"),
                "system-name",
            ),
            ("vm-namespace", json!("x y"), "vm-namespace"),
        ];
        for (k, v, want) in cases {
            let mut b = body();
            b[k] = v;
            let e = PortReq::parse(&b).unwrap_err().to_string();
            assert!(e.contains(want), "{k}: {e}");
        }
        let mut b = body();
        b.as_object_mut().unwrap().remove("instance-id");
        assert_eq!(PortReq::parse(&b), Err(PortError::Missing("instance-id")));
        assert_eq!(PortReq::parse(&json!([1])), Err(PortError::NotObject));
    }
}
