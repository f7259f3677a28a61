//! Property: whatever a client sends, every write operation of the config
//! core answers with a transaction or a 4xx error, never a panic or a 5xx;
//! and a refused request leaves the database exactly as it was.

use filament_config::{ConfigDb, Ctx, Txn};
use filament_schema::index;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Field names that reach deep into the code paths (parents, refs, subnets, rules).
const KEYS: &[&str] = &[
    "fq_name",
    "parent_type",
    "parent_uuid",
    "uuid",
    "name",
    "display_name",
    "to",
    "attr",
    "network_ipam_refs",
    "virtual_network_refs",
    "virtual_machine_interface_refs",
    "ipam_subnets",
    "subnet",
    "ip_prefix",
    "ip_prefix_len",
    "default_gateway",
    "dns_server_address",
    "allocation_pools",
    "start",
    "end",
    "addr_from_start",
    "instance_ip_address",
    "instance_ip_family",
    "subnet_uuid",
    "network_policy_entries",
    "policy_rule",
    "protocol",
    "virtual_machine_interface_mac_addresses",
    "mac_address",
    "id_perms",
    "perms2",
    "owner",
    "share",
    "global_access",
    "annotations",
    "key_value_pair",
    "key",
    "value",
    "type",
    "ref-type",
    "ref-uuid",
    "ref-fq-name",
    "operation",
    "updates",
    "field",
    "position",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..300).prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        prop::sample::select(vec![
            "",
            "a",
            "a:b",
            "10.1.1.0",
            "10.1.1.5",
            "10.1.1.254",
            "::1",
            "2001:db8::",
            "tcp",
            "300",
            "ADD",
            "DELETE",
            "STORE",
            "RETRIEVE",
            "add",
            "set",
            "delete",
            "modify",
            "v4",
            "v6",
            "project",
            "virtual-network",
            "network-ipam",
            "domain",
            "default-domain",
            "default-project",
            "default-network-ipam",
            "00000000-0000-4000-8000-000000000001",
            "NOT-A-UUID",
            "02:00:00:00:00:01",
            "0",
        ])
        .prop_map(|s| json!(s)),
        prop::sample::select(KEYS.to_vec()).prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..6).prop_map(
                |kv| Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>()
                )
            ),
            // A plausible fq_name under the default project.
            Just(json!(["default-domain", "default-project", "x"])),
        ]
    })
}

fn fresh() -> (ConfigDb, impl FnMut() -> String) {
    let mut db = ConfigDb::new();
    let mut gen = filament_config::seq_uuids();
    let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
    let t = db.bootstrap(&mut ctx).expect("bootstrap");
    drop(ctx);
    db.apply(t);
    (db, gen)
}

fn dump(db: &ConfigDb) -> Vec<String> {
    let mut v: Vec<String> = db.objects_for_test().map(|o| o.to_stored_json()).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn any_body_gets_a_result_or_a_4xx(sel in 0usize..1000, op in 0u8..6, body in value()) {
        let (mut db, mut gen) = fresh();
        let before = dump(&db);
        let types = index().resources();
        let ty = &types[sel % types.len()];
        let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
        let some_uuid = db.objects_for_test().nth(sel % 20).map(|o| o.uuid.clone()).unwrap_or_default();
        let r: Result<Txn, _> = match op {
            0 => db.create(ty, &body, &mut ctx).map(|(t, _)| t),
            1 => db.update(ty, &some_uuid, &body, &mut ctx),
            2 => db.ref_update(&body, &mut ctx).map(|(t, _)| t),
            3 => db.prop_collection_update(&body, &ctx),
            4 => db.chmod(&body, &ctx),
            _ => db.useragent_kv(&body).map(|(t, _)| t),
        };
        drop(ctx);
        match r {
            Ok(t) => db.apply(t),
            Err(e) => {
                prop_assert!((400..500).contains(&e.status()), "{} {e}", e.status());
                db.rebuild_allocators();
                prop_assert_eq!(dump(&db), before);
            }
        }
    }
}
