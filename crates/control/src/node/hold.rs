//! The XMPP hold time the control node applies to agent sessions (tf-facts §2.1).
//!
//! tf-facts §2.1: "Hold time 90 s (configurable 1–90 via global-system-config
//! `fast_convergence_parameters.xmpp_hold_time`)".  The node's own setting
//! (`filament control --xmpp-hold SECS`, [`NodeConfig::hold`]) is the default; when the
//! global-system-config enables fast convergence with an `xmpp_hold_time`, that value wins
//! (clamped to TF's 1–90 s), for new sessions and, from the next tick, for open ones.
//!
//! [`NodeConfig::hold`]: super::NodeConfig::hold

use std::time::Duration;

use serde_json::Value;

use super::ControlNode;

/// TF's bounds on `xmpp_hold_time` (vnc_cfg.xsd FastConvergenceParametersType).
const HOLD_RANGE: std::ops::RangeInclusive<u64> = 1..=90;

impl ControlNode {
    /// The hold time for agent sessions: global-system-config's fast-convergence
    /// `xmpp_hold_time` when enabled, else this node's configured hold time.
    pub fn xmpp_hold(&self) -> Duration {
        let fc = self
            .graph
            .lookup(
                "global-system-config",
                &["default-global-system-config".to_string()],
            )
            .and_then(|g| g.props.get("fast_convergence_parameters"));
        let configured = fc
            .filter(|f| f.get("enable").and_then(Value::as_bool) == Some(true))
            .and_then(|f| f.get("xmpp_hold_time"))
            .and_then(Value::as_u64)
            .map(|s| s.clamp(*HOLD_RANGE.start(), *HOLD_RANGE.end()));
        configured.map_or(self.cfg.hold, Duration::from_secs)
    }
}
