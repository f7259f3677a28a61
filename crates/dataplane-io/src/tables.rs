//! Static tables files for `filament vrouter run --tables FILE.json` (docs/vrouter-tables.md):
//! the interfaces to attach and the table operations to apply, in order.
//!
//! ```json
//! {
//!   "interfaces": [
//!     {"ifname": "fab0", "id": 0, "kind": "fabric", "ip": "192.168.77.1"},
//!     {"ifname": "tap-a", "id": 1, "kind": "workload", "vrf": 1}
//!   ],
//!   "ops": [
//!     {"op": "add_nexthop", "id": 1, "type": "encap", "vif": 1,
//!      "dst_mac": "02:00:00:00:00:0a", "src_mac": "00:00:5e:00:01:00"},
//!     {"op": "add_route", "vrf": 1, "prefix": "10.1.1.10/32", "nh": 1},
//!     {"op": "add_label", "label": 16, "nh": 1}
//!   ]
//! }
//! ```
//!
//! `interfaces` entries are [`AttachCfg`]; `ops` entries are the forwarder core's `Op` (the same
//! JSON the agent's operations serialize to).

use filament_dataplane::Op;
use serde::{Deserialize, Serialize};

use crate::datapath::{AttachCfg, DatapathHandle};
use crate::error::IoError;

/// A static tables file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tables {
    /// Interfaces to attach, in order (before any op).
    #[serde(default)]
    pub interfaces: Vec<AttachCfg>,
    /// Operations to apply, in order.
    #[serde(default)]
    pub ops: Vec<Op>,
}

impl Tables {
    /// Parse a tables file's text.
    pub fn parse(path: &str, text: &str) -> Result<Self, IoError> {
        serde_json::from_str(text).map_err(|e| IoError::Tables {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Read and parse a tables file.
    pub fn load(path: &str) -> Result<Self, IoError> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::Tables {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Attach every interface, then apply every op; stops at the first failure, saying which.
    pub async fn install(&self, h: &DatapathHandle) -> Result<(), IoError> {
        for i in &self.interfaces {
            h.attach(i.clone()).await?;
        }
        for (n, op) in self.ops.iter().enumerate() {
            h.apply(op.clone()).await.map_err(|e| IoError::Tables {
                path: format!("ops[{n}]"),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}
