//! A peering's session attributes (the `bgp_router_refs` link's `BgpPeeringAttributes`),
//! as TF's `NeighborSetSessionAttributes` (bgp_config_ifmap.cc) applies them to a
//! neighbour: of the first session, the attributes that name no `bgp_router` (both
//! ends), else those naming this node; their `admin_down`, `passive`, `hold_time` (when
//! not 0) and address families (when listed) override the peer's bgp-router parameters.
//! `auth_data` is read by [`super::auth_key`]; `local_autonomous_system` has no
//! equivalent here (the speaker runs in one AS) and is ignored.

use filament_bgp::{Family as BgpFamily, PeerConfig};
use serde_json::{Map, Value};

/// The attributes TF picks for this node (`local`, its bgp-router name) in a peering
/// link's `attr`: the first session's attributes without a `bgp_router`, else the ones
/// for `local`.
pub(super) fn chosen<'a>(attr: &'a Value, local: &str) -> Option<&'a Map<String, Value>> {
    let attrs = attr
        .get("session")?
        .as_array()?
        .first()?
        .get("attributes")?
        .as_array()?;
    fn router(a: &Value) -> &str {
        a.get("bgp_router").and_then(Value::as_str).unwrap_or("")
    }
    attrs
        .iter()
        .find(|a| router(a).is_empty())
        .or_else(|| attrs.iter().find(|a| router(a) == local))?
        .as_object()
}

/// Families named in an `address_families` value (`{"family": [...]}`), known ones only.
pub(super) fn families(v: Option<&Value>) -> Vec<BgpFamily> {
    v.and_then(|a| a.get("family"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(BgpFamily::from_name)
                .collect()
        })
        .unwrap_or_default()
}

/// Apply the chosen attributes to a neighbour built from the peer's bgp-router.
pub(super) fn apply(pc: &mut PeerConfig, s: &Map<String, Value>) {
    let flag = |f: &str| s.get(f).and_then(Value::as_bool).unwrap_or(false);
    // TF: `if (attributes->admin_down) set_admin_down(true)`: it only adds a reason
    if flag("admin_down") {
        pc.admin_down = true;
    }
    pc.passive = flag("passive");
    if let Some(h) = s
        .get("hold_time")
        .and_then(Value::as_u64)
        .and_then(|h| u16::try_from(h).ok())
        .filter(|h| *h != 0)
    {
        pc.hold_time = Some(h);
    }
    let fams = families(s.get("address_families"));
    if !fams.is_empty() {
        pc.families = fams;
    }
}
