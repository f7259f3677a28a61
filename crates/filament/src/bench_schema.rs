//! `filament bench schema`: figures for the schema transformer, in process
//! on a temporary SQLite store (the same code paths as `filament up`).
//!
//! 1. Builds the intent: N VNs (a /24 each), M policies (policy i connects
//!    VN i and VN i+1 with a `<>` pass rule and is attached to both), P ports
//!    (VMI + instance-ip) spread over the VNs.
//! 2. Full compile: the sans-IO core from scratch (`reconcile(all)`) on that
//!    snapshot, then the same through the shell until everything derived is
//!    committed.
//! 3. Incremental: alternately adds a port and a rule to a policy, and times
//!    from the API commit to the transformer having committed what follows
//!    (or having found nothing to write).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use filament_api::state::CONFIG_PREFIX;
use filament_api::ApiState;
use filament_config::StoredObj;
use filament_schema::index;
use filament_transformer::{reconcile_scope, Scope, Transformer};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::bench::{percentile_ms, rss_mb, SchemaBench};

async fn create(st: &ApiState, ty: &'static str, body: Value) -> anyhow::Result<String> {
    let def = index().resource(ty).context("schema type")?;
    Ok(st.write(|db, ctx| db.create(def, &body, ctx)).await?)
}

fn rule(a: usize, b: usize, port: i64) -> Value {
    json!({"direction": "<>", "protocol": "tcp", "action_list": {"simple_action": "pass"},
           "src_addresses": [{"virtual_network": format!("default-domain:bench:vn{a}")}],
           "dst_addresses": [{"virtual_network": format!("default-domain:bench:vn{b}")}],
           "src_ports": [{"start_port": -1, "end_port": -1}], "dst_ports": [{"start_port": port, "end_port": port}]})
}

pub async fn run(a: SchemaBench) -> anyhow::Result<()> {
    if a.vns < 2 || a.vns > 65_000 {
        anyhow::bail!("--vns must be 2..=65000");
    }
    let dir = std::env::temp_dir().join(format!("filament-bench-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = crate::open_store(&dir)?;
    let st = ApiState::open(store.clone())?;
    println!(
        "filament bench schema: {} VNs, {} policies, {} ports",
        a.vns, a.policies, a.ports
    );

    // 1. Intent.
    let t0 = Instant::now();
    create(
        &st,
        "project",
        json!({"fq_name": ["default-domain", "bench"], "parent_type": "domain"}),
    )
    .await?;
    let vns: Vec<String> = stream::iter(0..a.vns)
        .map(|i| {
            let st = &st;
            async move {
                create(st, "virtual-network", json!({"fq_name": ["default-domain", "bench", format!("vn{i}")],
                    "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                        "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": format!("10.{}.{}.0", i / 256, i % 256), "ip_prefix_len": 24}}]}}]}))
                .await
            }
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let pdef = index().resource("network-policy").context("schema")?;
    let mut policies = Vec::new();
    for i in 0..a.policies {
        let (x, y) = (i % a.vns, (i + 1) % a.vns);
        let p = create(
            &st,
            "network-policy",
            json!({"fq_name": ["default-domain", "bench", format!("pol{i}")],
            "network_policy_entries": {"policy_rule": [rule(x, y, 80)]}}),
        )
        .await?;
        for v in [x, y] {
            let req = json!({"type": "virtual-network", "uuid": vns[v], "ref-type": "network-policy", "ref-uuid": p,
                             "operation": "ADD", "attr": {"sequence": {"major": i, "minor": 0}}});
            st.write(|db, ctx| db.ref_update(&req, ctx)).await?;
        }
        policies.push(p);
    }
    let ports: Vec<anyhow::Result<()>> = stream::iter(0..a.ports)
        .map(|i| {
            let (st, vn) = (&st, &vns[i % vns.len()]);
            async move {
                let vmi = create(st, "virtual-machine-interface", json!({"fq_name": ["default-domain", "bench", format!("port{i}")],
                    "virtual_network_refs": [{"uuid": vn}]})).await?;
                create(st, "instance-ip", json!({"fq_name": [format!("bench-iip{i}")],
                    "virtual_network_refs": [{"uuid": vn}], "virtual_machine_interface_refs": [{"uuid": vmi}]})).await?;
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    ports.into_iter().collect::<anyhow::Result<()>>()?;
    println!(
        "{:<44} {:>8.2} s ({} objects)",
        "intent created through the API",
        t0.elapsed().as_secs_f64(),
        st.db.read().len()
    );

    // 2a. Full compile, core only.
    let (_, items) = store.snapshot(CONFIG_PREFIX)?;
    let objs: Vec<StoredObj> = items
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v).ok())
        .collect();
    let t1 = Instant::now();
    let t = Transformer::new(objs);
    let writes = reconcile_scope(t.snapshot(), &Scope::all());
    let core = t1.elapsed();
    println!(
        "{:<44} {:>8.1} ms ({} derived writes)",
        "full compile, sans-IO core",
        core.as_secs_f64() * 1e3,
        writes.len()
    );
    // Incremental compile, core only: one port changes.
    let mut t = t;
    let _ = t.reconcile();
    let vmi = t
        .snapshot()
        .of_type("virtual-machine-interface")
        .next()
        .cloned();
    if let Some(vmi) = vmi {
        let mut lat = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            t.observe(&vmi.uuid.clone(), Some(vmi.clone()));
            let _ = t.reconcile();
            lat.push(start.elapsed());
        }
        println!(
            "{:<44} p50 {:>6.2} ms  p99 {:>6.2} ms",
            "incremental compile of a port, sans-IO core",
            percentile_ms(&mut lat, 0.5),
            percentile_ms(&mut lat, 0.99)
        );
    }
    drop(t);

    // 2b. Full compile through the shell, until committed.
    let (prog_tx, mut prog_rx) = tokio::sync::watch::channel((0u64, 0u64, 0u64));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let t2 = Instant::now();
    let shell = {
        let st = st.clone();
        tokio::spawn(async move {
            filament_transformer::shell::run(
                st,
                async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                },
                move |s| {
                    let _ = prog_tx.send((s.revision, s.reconciles, s.writes));
                },
            )
            .await
        })
    };
    // Converged: the first reconcile's writes are in, and a later reconcile wrote nothing.
    let mut last_writes = 0;
    loop {
        prog_rx.changed().await.context("transformer stopped")?;
        let (_, reconciles, w) = *prog_rx.borrow();
        if reconciles >= 2 && w == last_writes {
            break;
        }
        last_writes = w;
    }
    println!(
        "{:<44} {:>8.1} ms ({} writes)",
        "full compile + commit through the shell",
        t2.elapsed().as_secs_f64() * 1e3,
        last_writes
    );
    println!(
        "{:<44} {:>8.1} MB",
        "RSS (API + transformer, whole data set)",
        rss_mb(std::process::id()).unwrap_or(0.0)
    );

    // 3. Incremental changes.
    let mut port_lat = Vec::new();
    let mut rule_lat = Vec::new();
    for i in 0..a.changes {
        let rev = if i % 2 == 0 {
            let vn = &vns[i % vns.len()];
            let body = json!({"fq_name": ["default-domain", "bench", format!("inc-port{i}")], "virtual_network_refs": [{"uuid": vn}]});
            let def = index()
                .resource("virtual-machine-interface")
                .context("schema")?;
            st.write_revision(|db, ctx| db.create(def, &body, ctx))
                .await?
                .1
        } else {
            let p = &policies[i % policies.len()];
            let n = i % a.vns;
            let (x, y) = (n, (n + 1) % a.vns);
            let mut rules: Vec<Value> = st
                .db
                .read()
                .get(p)
                .and_then(|o| o.prop("network_policy_entries"))
                .and_then(|e| e.get("policy_rule"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            rules.push(rule(x, y, 1000 + i as i64));
            let body = json!({"network_policy_entries": {"policy_rule": rules}});
            st.write_revision(|db, ctx| db.update(pdef, p, &body, ctx).map(|t| (t, ())))
                .await?
                .1
        };
        // Timed from the API commit (the write is durable here) until the
        // transformer reports a finished reconcile past that revision, its
        // own derived writes committed.
        let start = Instant::now();
        loop {
            let (seen, _, _) = *prog_rx.borrow_and_update();
            if seen >= rev {
                break;
            }
            prog_rx.changed().await.context("transformer stopped")?;
        }
        let d = start.elapsed();
        if i % 2 == 0 {
            port_lat.push(d)
        } else {
            rule_lat.push(d)
        }
    }
    println!(
        "{:<60} p50 {:>6.2} ms  p99 {:>6.2} ms",
        "incremental, API commit -> derived committed: port add",
        percentile_ms(&mut port_lat, 0.5),
        percentile_ms(&mut port_lat, 0.99)
    );
    println!(
        "{:<60} p50 {:>6.2} ms  p99 {:>6.2} ms",
        "incremental, API commit -> derived committed: policy rule add",
        percentile_ms(&mut rule_lat, 0.5),
        percentile_ms(&mut rule_lat, 0.99)
    );
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), shell).await;
    drop(st);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
