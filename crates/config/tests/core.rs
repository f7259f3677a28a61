//! Deterministic tests of the config core: no store, no HTTP. A counter
//! stands in for the uuid source and a fixed string for the clock.

#![allow(clippy::unwrap_used)]

use filament_config::{ConfigDb, ConfigError, Ctx, ListOpts, ReadOpts, StoredObj};
use filament_schema::{index, ResourceDef};
use serde_json::{json, Value};

const BASE: &str = "http://h:8082";

struct Env {
    db: ConfigDb,
    n: u64,
}

fn ty(name: &str) -> &'static ResourceDef {
    index().resource(name).unwrap()
}

impl Env {
    fn new() -> Self {
        let mut e = Self {
            db: ConfigDb::new(),
            n: 0,
        };
        e.run(|db, ctx| db.bootstrap(ctx).map(|t| (t, ()))).unwrap();
        e
    }
    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(filament_config::Txn, R), ConfigError>,
    ) -> Result<R, ConfigError> {
        let mut n = self.n;
        let mut gen = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        };
        let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
        let r = f(&mut self.db, &mut ctx);
        drop(ctx);
        self.n = n;
        match r {
            Ok((txn, r)) => {
                self.db.apply(txn);
                Ok(r)
            }
            Err(e) => {
                self.db.rebuild_allocators();
                Err(e)
            }
        }
    }
    fn create(&mut self, t: &str, body: Value) -> Result<String, ConfigError> {
        let d = ty(t);
        self.run(|db, ctx| db.create(d, &body, ctx))
    }
    fn read(&self, uuid: &str) -> Value {
        let o = self.db.get(uuid).unwrap();
        self.db.render(o, &ReadOpts::default(), BASE)
    }
    fn project(&mut self, name: &str) -> String {
        self.create(
            "project",
            json!({"fq_name": ["default-domain", name], "parent_type": "domain"}),
        )
        .unwrap()
    }
    fn vn(&mut self, proj: &str, name: &str, subnet: Value) -> Result<String, ConfigError> {
        self.create("virtual-network", json!({"fq_name": ["default-domain", proj, name], "parent_type": "project",
            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                                   "attr": {"ipam_subnets": [subnet]}}]}))
    }
    fn port(&mut self, proj: &str, name: &str, vn: &str) -> String {
        self.create(
            "virtual-machine-interface",
            json!({"fq_name": ["default-domain", proj, name], "parent_type": "project",
            "virtual_network_refs": [{"uuid": vn, "to": []}]}),
        )
        .unwrap()
    }
    fn iip(&mut self, name: &str, vn: &str, extra: Value) -> Result<String, ConfigError> {
        let mut b = json!({"fq_name": [name], "virtual_network_refs": [{"uuid": vn, "to": []}]});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.create("instance-ip", b)
    }
}

fn sn24(prefix: &str) -> Value {
    json!({"subnet": {"ip_prefix": prefix, "ip_prefix_len": 24}})
}

#[test]
fn fresh_system_has_the_bootstrap_objects() {
    let e = Env::new();
    let fq = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let gsc =
        e.db.lookup(
            ty("global-system-config"),
            &fq(&["default-global-system-config"]),
        )
        .unwrap();
    assert_eq!(gsc.prop("autonomous_system"), Some(&json!(64512)));
    for (t, n) in [
        ("domain", &["default-domain"][..]),
        ("project", &["default-domain", "default-project"]),
        (
            "network-ipam",
            &["default-domain", "default-project", "default-network-ipam"],
        ),
        (
            "virtual-network",
            &["default-domain", "default-project", "ip-fabric"],
        ),
        (
            "routing-instance",
            &[
                "default-domain",
                "default-project",
                "ip-fabric",
                "ip-fabric",
            ],
        ),
        (
            "routing-instance",
            &[
                "default-domain",
                "default-project",
                "ip-fabric",
                "__default__",
            ],
        ),
        (
            "routing-instance",
            &[
                "default-domain",
                "default-project",
                "__link_local__",
                "__link_local__",
            ],
        ),
        (
            "global-vrouter-config",
            &[
                "default-global-system-config",
                "default-global-vrouter-config",
            ],
        ),
        ("tag-type", &["application"]),
    ] {
        assert!(e.db.lookup(ty(t), &fq(n)).is_some(), "missing {t} {n:?}");
    }
    let ipam =
        e.db.lookup(
            ty("network-ipam"),
            &fq(&["default-domain", "default-project", "default-network-ipam"]),
        )
        .unwrap();
    assert_eq!(ipam.perms2.global_access, Some(5));
}

#[test]
fn vn_gets_subnet_defaults_network_id_and_primary_instance() {
    let mut e = Env::new();
    e.project("p");
    let a = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    let b = e.vn("p", "b", sn24("10.1.2.0")).unwrap();
    let va = e.read(&a);
    let s = &va["network_ipam_refs"][0]["attr"]["ipam_subnets"][0];
    assert_eq!(s["default_gateway"], "10.1.1.254");
    assert_eq!(s["dns_server_address"], "10.1.1.253");
    assert!(s["subnet_uuid"].as_str().is_some_and(|u| u.len() == 36));
    let (ida, idb) = (
        va["virtual_network_network_id"].as_u64().unwrap(),
        e.read(&b)["virtual_network_network_id"].as_u64().unwrap(),
    );
    assert!(ida >= 1 && idb >= 1 && ida != idb);
    let ri = &va["routing_instances"][0];
    assert_eq!(ri["to"], json!(["default-domain", "p", "a", "a"]));
    let ri_obj = e.read(ri["uuid"].as_str().unwrap());
    assert_eq!(ri_obj["routing_instance_is_default"], true);
    assert_eq!(ri_obj["id_perms"]["creator"], "system");
}

#[test]
fn addresses_are_allocated_top_down_and_never_twice() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    let got: Vec<String> = (0..3)
        .map(|i| {
            let u = e.iip(&format!("i{i}"), &vn, json!({})).unwrap();
            e.read(&u)["instance_ip_address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, ["10.1.1.252", "10.1.1.251", "10.1.1.250"]);
    let u = e
        .iip("req", &vn, json!({"instance_ip_address": "10.1.1.10"}))
        .unwrap();
    assert_eq!(e.read(&u)["instance_ip_family"], "v4");
    let dup = e
        .iip("dup", &vn, json!({"instance_ip_address": "10.1.1.10"}))
        .unwrap_err();
    assert_eq!(dup.status(), 409, "{dup}");
    let gw = e
        .iip("gw", &vn, json!({"instance_ip_address": "10.1.1.254"}))
        .unwrap_err();
    assert_eq!(gw.status(), 400, "{gw}");
    let out = e
        .iip("out", &vn, json!({"instance_ip_address": "192.168.0.1"}))
        .unwrap_err();
    assert_eq!(out.status(), 400, "{out}");
    // A failed request leaked nothing: the next allocation continues the sequence.
    let u = e.iip("next", &vn, json!({})).unwrap();
    assert_eq!(e.read(&u)["instance_ip_address"], "10.1.1.249");
}

#[test]
fn pinned_gateway_moves_the_first_address() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", json!({"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 24}, "default_gateway": "10.1.1.1"})).unwrap();
    let u = e.iip("i", &vn, json!({})).unwrap();
    assert_eq!(e.read(&u)["instance_ip_address"], "10.1.1.254");
}

#[test]
fn port_gets_mac_and_routing_instance_ref() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    let vmi = e.port("p", "port", &vn);
    let v = e.read(&vmi);
    let mac = v["virtual_machine_interface_mac_addresses"]["mac_address"][0]
        .as_str()
        .unwrap();
    let u = vmi.replace('-', "");
    assert_eq!(
        mac,
        format!(
            "02:{}:{}:{}:{}:{}",
            &u[0..2],
            &u[2..4],
            &u[4..6],
            &u[6..8],
            &u[8..10]
        )
    );
    assert_eq!(
        v["routing_instance_refs"][0]["to"],
        json!(["default-domain", "p", "a", "a"])
    );
    assert_eq!(v["routing_instance_refs"][0]["attr"]["direction"], "both");
    // A port without a network is refused.
    let err = e
        .create(
            "virtual-machine-interface",
            json!({"fq_name": ["default-domain", "p", "lonely"], "parent_type": "project"}),
        )
        .unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn create_rejects_duplicates_bad_names_and_missing_parents() {
    let mut e = Env::new();
    e.project("p");
    let dup = e
        .create(
            "project",
            json!({"fq_name": ["default-domain", "p"], "parent_type": "domain"}),
        )
        .unwrap_err();
    assert_eq!(dup.status(), 409);
    assert!(
        dup.to_string()
            .contains("['default-domain', 'p'] already exists with uuid"),
        "{dup}"
    );
    let colon = e
        .create("project", json!({"fq_name": ["default-domain", "a:b"]}))
        .unwrap_err();
    assert_eq!(colon.status(), 400);
    let orphan = e
        .create(
            "virtual-network",
            json!({"fq_name": ["default-domain", "nope", "vn"]}),
        )
        .unwrap_err();
    assert_eq!(orphan.status(), 400);
    assert!(orphan.to_string().contains("does not exist"), "{orphan}");
    let bad_prop = e
        .create(
            "project",
            json!({"fq_name": ["default-domain", "q"], "quota": {"virtual_network": "many"}}),
        )
        .unwrap_err();
    assert_eq!(bad_prop.status(), 400);
    let bad_uuid = e
        .create(
            "project",
            json!({"fq_name": ["default-domain", "r"], "uuid": "NOT-A-UUID"}),
        )
        .unwrap_err();
    assert_eq!(bad_uuid.status(), 400);
    let bad_cidr = e
        .vn(
            "p",
            "x",
            json!({"subnet": {"ip_prefix": "10.1.1.0", "ip_prefix_len": 33}}),
        )
        .unwrap_err();
    assert_eq!(bad_cidr.status(), 400);
    let system = e
        .create(
            "virtual-network",
            json!({"fq_name": ["default-domain", "p", "y"], "virtual_network_network_id": 7}),
        )
        .unwrap_err();
    assert_eq!(system.status(), 400);
    // Nothing of the failed creates exists.
    assert!(e
        .db
        .lookup(ty("project"), &["default-domain".into(), "q".into()])
        .is_none());
}

#[test]
fn delete_is_refused_while_referenced_or_with_children() {
    let mut e = Env::new();
    let p = e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    let vmi = e.port("p", "port", &vn);
    let vdef = ty("virtual-network");
    let err = e
        .run(|db, _| db.delete(vdef, &vn, BASE).map(|t| (t, ())))
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(
        err.to_string()
            .starts_with("Delete when resource still referred"),
        "{err}"
    );
    let pdef = ty("project");
    let err = e
        .run(|db, _| db.delete(pdef, &p, BASE).map(|t| (t, ())))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Delete when children still present"),
        "{err}"
    );
    let idef = ty("virtual-machine-interface");
    e.run(|db, _| db.delete(idef, &vmi, BASE).map(|t| (t, ())))
        .unwrap();
    // The VN goes with its system-created routing instance.
    let ri = e.read(&vn)["routing_instances"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    e.run(|db, _| db.delete(vdef, &vn, BASE).map(|t| (t, ())))
        .unwrap();
    assert!(e.db.get(&ri).is_none());
    // The project's default application-policy-set does not block its delete.
    e.run(|db, _| db.delete(pdef, &p, BASE).map(|t| (t, ())))
        .unwrap();
    assert!(e.db.get(&p).is_none());
}

#[test]
fn ref_update_add_delete_and_relax() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    let pol = e
        .create(
            "network-policy",
            json!({"fq_name": ["default-domain", "p", "pol"], "parent_type": "project"}),
        )
        .unwrap();
    let req = json!({"type": "virtual-network", "uuid": vn, "ref-type": "network-policy", "ref-uuid": pol,
                     "operation": "ADD", "attr": {"sequence": {"major": 0, "minor": 0}, "timer": null}});
    e.run(|db, ctx| db.ref_update(&req, ctx)).unwrap();
    assert_eq!(
        e.read(&pol)["virtual_network_back_refs"][0]["uuid"],
        json!(vn)
    );
    let pdef = ty("network-policy");
    assert_eq!(
        e.run(|db, _| db.delete(pdef, &pol, BASE).map(|t| (t, ())))
            .unwrap_err()
            .status(),
        409
    );
    let relax = json!({"uuid": vn, "ref-uuid": pol});
    e.run(|db, _| db.ref_relax(&relax).map(|t| (t, ())))
        .unwrap();
    e.run(|db, _| db.delete(pdef, &pol, BASE).map(|t| (t, ())))
        .unwrap();
    assert!(e.read(&vn).get("network_policy_refs").is_none());
    let bad = json!({"type": "virtual-network", "uuid": vn, "ref-type": "network-policy", "ref-uuid": pol, "operation": "MERGE"});
    assert_eq!(
        e.run(|db, ctx| db.ref_update(&bad, ctx))
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn prop_collections_edit_lists_and_maps() {
    let mut e = Env::new();
    let p = e.project("p");
    let up = json!({"uuid": p, "updates": [
        {"field": "annotations", "operation": "set", "value": {"key": "k1", "value": "v1"}, "position": "k1"},
        {"field": "annotations", "operation": "set", "value": {"key": "k2", "value": "v2"}, "position": "k2"},
        {"field": "annotations", "operation": "set", "value": {"key": "k1", "value": "v1b"}, "position": "k1"}]});
    e.run(|db, ctx| db.prop_collection_update(&up, ctx).map(|t| (t, ())))
        .unwrap();
    let got = e.db.prop_collection_get(&p, "annotations", None).unwrap();
    assert_eq!(
        got["annotations"],
        json!([[{"key": "k1", "value": "v1b"}, "k1"], [{"key": "k2", "value": "v2"}, "k2"]])
    );
    let del = json!({"uuid": p, "updates": [{"field": "annotations", "operation": "delete", "position": "k2"}]});
    e.run(|db, ctx| db.prop_collection_update(&del, ctx).map(|t| (t, ())))
        .unwrap();
    assert_eq!(
        e.db.prop_collection_get(&p, "annotations", None).unwrap()["annotations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let not_coll =
        e.db.prop_collection_get(&p, "display_name", None)
            .unwrap_err();
    assert_eq!(not_coll.status(), 400);
}

#[test]
fn lists_filter_by_parent_back_ref_and_field() {
    let mut e = Env::new();
    let p = e.project("p");
    e.project("q");
    let a = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    e.vn("p", "b", sn24("10.1.2.0")).unwrap();
    e.vn("q", "c", sn24("10.1.3.0")).unwrap();
    e.port("p", "port", &a);
    let vdef = ty("virtual-network");
    let l =
        e.db.list(
            vdef,
            &ListOpts {
                parent_ids: Some(vec![p.clone()]),
                ..ListOpts::default()
            },
            BASE,
        )
        .unwrap();
    assert_eq!(l["virtual-networks"].as_array().unwrap().len(), 2);
    let opts = ListOpts {
        parent_ids: Some(vec![p.clone()]),
        filters: filament_config::parse_filters("display_name==\"b\"").unwrap(),
        ..ListOpts::default()
    };
    let l = e.db.list(vdef, &opts, BASE).unwrap();
    assert_eq!(
        l["virtual-networks"][0]["fq_name"],
        json!(["default-domain", "p", "b"])
    );
    let c =
        e.db.list(
            vdef,
            &ListOpts {
                count: true,
                parent_ids: Some(vec![p]),
                ..ListOpts::default()
            },
            BASE,
        )
        .unwrap();
    assert_eq!(c["virtual-networks"]["count"], 2);
    let idef = ty("virtual-machine-interface");
    let l =
        e.db.list(
            idef,
            &ListOpts {
                back_ref_ids: Some(vec![a]),
                detail: true,
                ..ListOpts::default()
            },
            BASE,
        )
        .unwrap();
    assert_eq!(
        l["virtual-machine-interfaces"][0]["virtual-machine-interface"]["name"],
        "port"
    );
    let paged =
        e.db.list(
            vdef,
            &ListOpts {
                page_limit: Some(2),
                ..ListOpts::default()
            },
            BASE,
        )
        .unwrap();
    assert_eq!(paged["virtual-networks"].as_array().unwrap().len(), 2);
    let marker = paged["marker"].as_str().unwrap().parse().unwrap();
    let rest =
        e.db.list(
            vdef,
            &ListOpts {
                page_marker: Some(marker),
                ..ListOpts::default()
            },
            BASE,
        )
        .unwrap();
    let all = e.db.list(vdef, &ListOpts::default(), BASE).unwrap();
    assert_eq!(
        rest["virtual-networks"].as_array().unwrap().len() + 2,
        all["virtual-networks"].as_array().unwrap().len()
    );
    assert!(filament_config::parse_filters("nonsense").is_err());
}

#[test]
fn reload_from_stored_form_keeps_objects_and_allocations() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    for i in 0..5 {
        e.iip(&format!("i{i}"), &vn, json!({})).unwrap();
    }
    let stored: Vec<StoredObj> =
        e.db.objects_for_test()
            .map(|o| o.to_stored().unwrap())
            .collect();
    let json_text = serde_json::to_string(&stored).unwrap();
    let back: Vec<StoredObj> = serde_json::from_str(&json_text).unwrap();
    let db2 = ConfigDb::load(back, vec![]).unwrap();
    assert_eq!(db2.len(), e.db.len());
    e.db = db2;
    let u = e.iip("after", &vn, json!({})).unwrap();
    assert_eq!(e.read(&u)["instance_ip_address"], "10.1.1.247");
}

#[test]
fn subnet_in_use_cannot_be_removed() {
    let mut e = Env::new();
    e.project("p");
    let vn = e.vn("p", "a", sn24("10.1.1.0")).unwrap();
    e.iip("i", &vn, json!({})).unwrap();
    let vdef = ty("virtual-network");
    let body = json!({"network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                                              "attr": {"ipam_subnets": [sn24("10.9.9.0")]}}]});
    let err = e
        .run(|db, ctx| db.update(vdef, &vn, &body, ctx).map(|t| (t, ())))
        .unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    let overlap = json!({"network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
        "attr": {"ipam_subnets": [sn24("10.1.1.0"), {"subnet": {"ip_prefix": "10.1.0.0", "ip_prefix_len": 16}}]}}]});
    let err = e
        .run(|db, ctx| db.update(vdef, &vn, &overlap, ctx).map(|t| (t, ())))
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
}
