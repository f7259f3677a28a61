//! Merging the dumps of several run loops (each owns a forwarder replica) into one view: the
//! tables are the same in every replica, the counters are each loop's share of the traffic.
//!
//! - numbers are summed inside counter fields ([`COUNTERS`]: a vif's `stats` and `ring`, the
//!   dropstats sections, a flow's `packets` / `bytes`); every other number (ids, MTUs, flow
//!   indexes) is kept from the first loop;
//! - objects are merged key by key (a key only one side has is kept);
//! - arrays of objects are matched by their `"id"` (interfaces, nexthops) or `"key"` (flows),
//!   entries only one side has are appended; other arrays are kept from the first loop;
//! - anything else (names, addresses, flags) is kept from the first loop.

use serde_json::Value;

/// Fields whose numbers (at any depth below) are per-loop counters.
pub const COUNTERS: [&str; 9] = [
    "stats", "ring", "drops", "punts", "total", "rings", "shell", "packets", "bytes",
];

/// `a` and `b` merged as described in the module documentation.
pub fn merge_counts(a: Value, b: Value) -> Value {
    merge(a, b, false)
}

fn merge(a: Value, b: Value, sum: bool) -> Value {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if sum => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
            _ => Value::Number(x),
        },
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, vb) in y {
                let merged = match x.remove(&k) {
                    Some(va) => merge(va, vb, sum || COUNTERS.contains(&k.as_str())),
                    None => vb,
                };
                x.insert(k, merged);
            }
            Value::Object(x)
        }
        (Value::Array(x), Value::Array(y)) => {
            let ident = |v: &Value| v.get("id").or_else(|| v.get("key")).cloned();
            if !x.iter().chain(y.iter()).all(|v| ident(v).is_some()) {
                return Value::Array(x);
            }
            let mut out = x;
            for vb in y {
                let id = ident(&vb);
                match out.iter().position(|va| ident(va) == id) {
                    Some(i) => {
                        let va = std::mem::take(&mut out[i]);
                        out[i] = merge(va, vb, sum);
                    }
                    None => out.push(vb),
                }
            }
            Value::Array(out)
        }
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counters_sum_and_tables_match_by_id() {
        let a = json!([{"id": 0, "name": "f1", "mtu": 1500, "stats": {"rx_packets": 5}},
                       {"id": 1, "name": "tap1", "stats": {"rx_packets": 1}}]);
        let b = json!([{"id": 1, "name": "tap1", "stats": {"rx_packets": 7},
                        "ring": {"rx_frames": 7}},
                       {"id": 0, "name": "f1", "mtu": 1500, "stats": {"rx_packets": 2}}]);
        let m = merge_counts(a, b);
        assert_eq!(
            m,
            json!([{"id": 0, "name": "f1", "mtu": 1500, "stats": {"rx_packets": 7}},
                   {"id": 1, "name": "tap1", "stats": {"rx_packets": 8},
                    "ring": {"rx_frames": 7}}])
        );
    }

    #[test]
    fn flows_match_by_key_and_plain_arrays_come_from_the_first() {
        let k = json!({"vrf": 1, "src": "10.1.1.3"});
        let m = merge_counts(
            json!([{"key": k, "index": 4, "packets": 3}]),
            json!([{"key": k, "index": 4, "packets": 4}, {"key": {"vrf": 2}, "packets": 1}]),
        );
        assert_eq!(
            m,
            json!([{"key": k, "index": 4, "packets": 7}, {"key": {"vrf": 2}, "packets": 1}])
        );
        assert_eq!(merge_counts(json!([1, 2]), json!([3])), json!([1, 2]));
        assert_eq!(
            merge_counts(
                json!({"drops": {"a": 1}, "total": 1}),
                json!({"drops": {"b": 2}, "total": 2})
            ),
            json!({"drops": {"a": 1, "b": 2}, "total": 3})
        );
    }
}
