//! Golden tests of the schema transformer. Each directory under
//! `tests/golden/` is a scenario: `input.json` lists config steps (create,
//! update, delete, ref-update) applied to a fresh system through the config
//! core; after every step the transformer runs incrementally to convergence.
//! The derived state of user objects is then compared with `expected.json`.
//!
//! `FILAMENT_UPDATE_GOLDEN=1 cargo test -p filament-transformer --test golden`
//! rewrites the expectations; review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use filament_config::DerivedWrite;
use filament_config::{ConfigDb, Ctx, Txn};
use filament_schema::index;
use filament_transformer::{reconcile, reconcile_scope, Change, Scope, Transformer};
use serde_json::{json, Value};

const BASE: &str = "http://h";

struct Sys {
    db: ConfigDb,
    t: Transformer,
    gen: Box<dyn FnMut() -> String>,
}

impl Sys {
    fn new() -> Self {
        let mut s = Sys {
            db: ConfigDb::new(),
            t: Transformer::new(vec![]),
            gen: Box::new(filament_config::seq_uuids()),
        };
        s.run(|db, ctx| db.bootstrap(ctx)).unwrap();
        s
    }

    /// Run an operation, apply it, feed it to the transformer, converge.
    fn run(
        &mut self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<Txn, filament_config::ConfigError>,
    ) -> Result<(), String> {
        let txn = {
            let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut *self.gen);
            f(&mut self.db, &mut ctx).map_err(|e| e.to_string())?
        };
        self.commit(txn);
        for _ in 0..8 {
            let writes = self.t.reconcile();
            if writes.is_empty() {
                return Ok(());
            }
            let txn = {
                let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut *self.gen);
                self.db
                    .apply_derived(&writes, &mut ctx, BASE)
                    .map_err(|e| e.to_string())?
            };
            self.t.committed(&writes, 0);
            self.commit(txn);
        }
        Err("transformer did not converge in 8 rounds".into())
    }

    fn commit(&mut self, txn: Txn) {
        let puts: Vec<_> = txn.puts.iter().map(|o| o.to_stored().unwrap()).collect();
        let dels: Vec<_> = txn.deletes.iter().map(|o| o.uuid.clone()).collect();
        self.db.apply(txn);
        for u in dels {
            self.t.observe(&u, None);
        }
        for o in puts {
            let u = o.uuid.clone();
            self.t.observe(&u, Some(o));
        }
    }

    fn uuid(&self, ty: &str, fq: &Value) -> String {
        let fq: Vec<String> = serde_json::from_value(fq.clone()).unwrap();
        self.db
            .uuid_of(index().resource(ty).unwrap(), &fq)
            .unwrap_or_else(|| panic!("no {ty} {fq:?}"))
            .to_string()
    }

    fn step(&mut self, s: &Value) -> Result<(), String> {
        if let Some(ty) = s.get("create").and_then(Value::as_str) {
            let def = index().resource(ty).unwrap();
            let body = s["body"].clone();
            return self.run(|db, ctx| db.create(def, &body, ctx).map(|(t, _)| t));
        }
        if let Some(ty) = s.get("update").and_then(Value::as_str) {
            let def = index().resource(ty).unwrap();
            let u = self.uuid(ty, &s["fq_name"]);
            let body = s["body"].clone();
            return self.run(|db, ctx| db.update(def, &u, &body, ctx));
        }
        if let Some(ty) = s.get("delete").and_then(Value::as_str) {
            let def = index().resource(ty).unwrap();
            let u = self.uuid(ty, &s["fq_name"]);
            return self.run(|db, _| db.delete(def, &u, BASE));
        }
        if let Some(r) = s.get("ref") {
            let mut body = r.clone();
            body["uuid"] = json!(self.uuid(r["type"].as_str().unwrap(), &r["fq_name"]));
            return self.run(|db, ctx| db.ref_update(&body, ctx).map(|(t, _)| t));
        }
        Err(format!("unknown step {s}"))
    }

    /// Derived state of user objects (outside default-project).
    fn dump(&self) -> Value {
        let user = |fq: &[String]| {
            !(fq.len() > 1 && fq[0] == "default-domain" && fq[1] == "default-project")
        };
        let ix = index();
        let fq_of = |u: &str| {
            self.db
                .get(u)
                .map(|o| o.fq_str())
                .unwrap_or_else(|| format!("<missing {u}>"))
        };
        let mut ris = BTreeMap::new();
        for ri in self
            .db
            .of_type(ix.resource("routing-instance").unwrap())
            .filter(|o| user(&o.fq_name))
        {
            let rts: Vec<Value> = ri
                .refs_of("route_target_refs")
                .iter()
                .map(|l| json!([fq_of(&l.uuid), l.attr]))
                .collect();
            let mut conns: Vec<String> = ri
                .refs_of("routing_instance_refs")
                .iter()
                .map(|l| fq_of(&l.uuid))
                .collect();
            conns.sort();
            ris.insert(
                ri.fq_str(),
                json!({"route_targets": rts, "connections": conns}),
            );
        }
        let mut acls = BTreeMap::new();
        for acl in self
            .db
            .of_type(ix.resource("access-control-list").unwrap())
            .filter(|o| user(&o.fq_name))
        {
            assert!(acl.is_system_created(), "ACLs are system-created");
            acls.insert(
                acl.fq_str(),
                acl.prop("access_control_list_entries")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        let mut rts: Vec<String> = self
            .db
            .of_type(ix.resource("route-target").unwrap())
            .map(|o| o.fq_str())
            .collect();
        rts.sort();
        let mut ports = BTreeMap::new();
        for p in self
            .db
            .of_type(ix.resource("virtual-machine-interface").unwrap())
        {
            let ri: Vec<String> = p
                .refs_of("routing_instance_refs")
                .iter()
                .map(|l| fq_of(&l.uuid))
                .collect();
            ports.insert(p.fq_str(), json!(ri));
        }
        let mut sgs = BTreeMap::new();
        for sg in self
            .db
            .of_type(ix.resource("security-group").unwrap())
            .filter(|o| user(&o.fq_name))
        {
            sgs.insert(
                sg.fq_str(),
                sg.prop("security_group_id").cloned().unwrap_or(Value::Null),
            );
        }
        json!({"route_targets": rts, "routing_instances": ris, "acls": acls, "ports": ports, "security_group_ids": sgs})
    }
}

fn run_scenario(dir: &Path) {
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let mut sys = Sys::new();
    for (i, s) in input["steps"].as_array().unwrap().iter().enumerate() {
        sys.step(s)
            .unwrap_or_else(|e| panic!("{}: step {i}: {e}", dir.display()));
    }
    // Incremental compilation reached what a from-scratch compile wants.
    let from_scratch = Transformer::new(
        sys.db
            .objects_for_test()
            .map(|o| o.to_stored().unwrap())
            .collect::<Vec<_>>(),
    );
    let pending = reconcile_scope(from_scratch.snapshot(), &Scope::all());
    assert!(
        pending.is_empty(),
        "{}: incremental result differs from a full compile: {pending:#?}",
        dir.display()
    );
    // The entry point `reconcile(snapshot, changes)`: with every object as
    // changed it finds nothing to do on a converged snapshot, and it repairs
    // a derived ACL deleted behind its back.
    let mut snap = from_scratch.snapshot().clone();
    let everything: Vec<Change> = sys
        .db
        .objects_for_test()
        .map(|o| Change {
            old: None,
            new: Some(o.to_stored().unwrap()),
        })
        .collect();
    assert!(
        reconcile(&snap, &everything).is_empty(),
        "{}: reconcile(all changed) is not empty",
        dir.display()
    );
    let acl = sys
        .db
        .objects_for_test()
        .find(|o| o.ty.name == "access-control-list" && o.is_system_created())
        .map(|o| o.to_stored().unwrap());
    if let Some(acl) = acl {
        let gone = snap.delete(&acl.uuid);
        let writes = reconcile(
            &snap,
            &[Change {
                old: gone,
                new: None,
            }],
        );
        assert!(
            writes.iter().any(|w| matches!(w, DerivedWrite::Put { ty, fq_name, .. } if ty == "access-control-list" && *fq_name == acl.fq_name)),
            "{}: a deleted ACL is not put back: {writes:?}",
            dir.display()
        );
    }
    let got = sys.dump();
    let path = dir.join("expected.json");
    if std::env::var_os("FILAMENT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with FILAMENT_UPDATE_GOLDEN=1",
            path.display()
        )
    }))
    .unwrap();
    assert!(
        got == want,
        "{}: derived state differs from expected.json\n--- got ---\n{}",
        dir.display(),
        serde_json::to_string_pretty(&got).unwrap()
    );
}

#[test]
fn golden_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 8,
        "expected at least 8 scenarios, found {}",
        dirs.len()
    );
    for d in dirs {
        run_scenario(&d);
    }
}
