//! `filament bench agent`: (1) flow setups per second through the agent's slow path (flow-miss
//! decision over the network ACL and security groups, then the forwarder op built) with an
//! ACL of N rules whose last rule decides, single thread; (2) with `--ports N`: port add at
//! one agent -> its route visible at a remote agent, p50/p99 over N ports, through a real
//! `filament up` (config API + transformer + control node, a child process on loopback) and
//! two in-process agents (full shells; their forwarders have no interfaces attached).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use filament_agent::core::{Agent, AgentCfg, Input};
use filament_agent::port::PortReq;
use filament_dataplane::VifId;
use filament_dataplane_io::{Datapath, DatapathCfg};
use serde_json::{json, Value};

use crate::bench::{cpu_secs, free_port, Child, TempDir};

#[derive(Args)]
pub struct AgentBench {
    /// ACL rules in the port's network policy (the last one matches).
    #[arg(long, default_value_t = 1000)]
    pub rules: usize,
    /// Distinct flows to decide.
    #[arg(long, default_value_t = 200_000)]
    pub flows: usize,
    /// Also time port add -> route at a remote agent over this many ports (0: skip).
    #[arg(long, default_value_t = 0)]
    pub ports: usize,
}

pub async fn run(a: AgentBench) -> anyhow::Result<()> {
    let (agent, keys) = filament_agent::bench::flow_fixture(a.rules, a.flows)?;
    // warm the parsed-policy cache the way the first flow after a config change does
    let first = Instant::now();
    let d = agent.decide_flow(&keys[0]);
    let cold = first.elapsed();
    anyhow::ensure!(d.allow, "fixture flow not allowed: {}", d.rule);
    let start = Instant::now();
    let mut allowed = 0usize;
    for k in &keys {
        let d = agent.decide_flow(k);
        allowed += usize::from(d.allow);
        std::hint::black_box(Agent::flow_op(*k, d.allow));
    }
    let el = start.elapsed();
    anyhow::ensure!(
        allowed == keys.len(),
        "only {allowed} of {} flows allowed",
        keys.len()
    );
    let per_s = keys.len() as f64 / el.as_secs_f64();
    println!(
        "agent flow setup: {} flows, {} ACL rules (last matches), 1 thread",
        keys.len(),
        a.rules
    );
    println!(
        "  first decision after a config change (parses the ACL): {:.2} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  decisions: {:.0} flows/s ({:.2} us/flow; target >= 100000/s per core)",
        per_s,
        1e6 / per_s
    );
    if a.ports > 0 {
        port_latency(a.ports).await?;
    }
    Ok(())
}

async fn post(c: &reqwest::Client, url: &str, ty: &str, body: Value) -> anyhow::Result<String> {
    let r = c
        .post(format!("{url}/{ty}s"))
        .json(&json!({ ty: body }))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("create {ty}: {status} {v}");
    }
    v[ty]["uuid"]
        .as_str()
        .map(str::to_string)
        .context("no uuid")
}

type Shell = (Datapath, std::sync::Arc<filament_agent::shell::Shared>);

fn agent_shell(name: &str, ip: [u8; 4], xmpp: u16) -> anyhow::Result<Shell> {
    let mut dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: true,
        ..DatapathCfg::default()
    })?;
    let punts = dp.take_punts().context("punts")?;
    let agent = Agent::new(AgentCfg {
        name: name.into(),
        fabric_ip: ip.into(),
        fabric_vif: VifId(0),
        fabric_mtu: 1500,
        channels: 1,
    });
    let shared = filament_agent::shell::start(
        agent,
        dp.handle(),
        punts,
        vec![([127, 0, 0, 1], xmpp).into()],
    );
    Ok((dp, shared))
}

async fn port_latency(n: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("filament-bench-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (api_port, xmpp, intro, bgp) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let proc = std::process::Command::new(std::env::current_exe()?)
        .args(["up", "--data-dir"])
        .arg(&dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{api_port}"),
            "--xmpp-listen",
            &format!("127.0.0.1:{xmpp}"),
        ])
        .args([
            "--introspect",
            &format!("127.0.0.1:{intro}"),
            "--bgp-listen",
            &format!("127.0.0.1:{bgp}"),
        ])
        .args(["--name", "bench", "--bgp-address", "127.0.0.1"])
        .env("RUST_LOG", "warn")
        .spawn()
        .context("cannot start filament up")?;
    // `filament up` as a child: killed and its data dir removed on drop
    let server = Child {
        proc,
        _dir: TempDir(dir),
    };
    let url = format!("http://127.0.0.1:{api_port}");
    let c = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if c.get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(up, "filament up did not come up on {url}");
    let project = vec!["default-domain".to_string(), "bench-agent".to_string()];
    post(
        &c,
        &url,
        "project",
        json!({"fq_name": project, "parent_type": "domain"}),
    )
    .await?;
    let mut vn_fq = project.clone();
    vn_fq.push("vn1".into());
    let vn = post(&c, &url, "virtual-network", json!({"fq_name": vn_fq, "parent_type": "project",
        "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
            "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.0.0.0", "ip_prefix_len": 16}}]}}]}))
    .await?;
    for (name, ip) in [("bench-a", "192.0.2.1"), ("bench-b", "192.0.2.2")] {
        post(
            &c,
            &url,
            "virtual-router",
            json!({"fq_name": ["default-global-system-config", name],
            "parent_type": "global-system-config", "virtual_router_ip_address": ip}),
        )
        .await?;
    }
    // ports: VM + VMI (MAC given) + instance-ip (address given), made before timing
    let mut reqs = Vec::new();
    for i in 0..=n {
        let vm = format!("00000000-0000-4000-8000-{:012x}", 0x10_0000 + i);
        post(
            &c,
            &url,
            "virtual-machine",
            json!({"fq_name": [vm], "uuid": vm}),
        )
        .await?;
        let mut fq = project.clone();
        fq.push(format!("p{i}"));
        let mac = format!("02:00:00:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff);
        let vmi = post(&c, &url, "virtual-machine-interface", json!({"fq_name": fq, "parent_type": "project",
            "virtual_network_refs": [{"uuid": vn, "to": vn_fq}], "virtual_machine_refs": [{"uuid": vm, "to": [vm]}],
            "virtual_machine_interface_mac_addresses": {"mac_address": [mac]}}))
        .await?;
        let ip = format!("10.0.{}.{}", 1 + i / 250, 1 + i % 250);
        post(
            &c,
            &url,
            "instance-ip",
            json!({"fq_name": [format!("iip-p{i}")], "instance_ip_address": ip,
            "virtual_network_refs": [{"uuid": vn, "to": vn_fq}],
            "virtual_machine_interface_refs": [{"uuid": vmi, "to": fq}]}),
        )
        .await?;
        let req = PortReq::parse(&json!({"id": vmi, "instance-id": vm, "mac-address": mac,
            "system-name": format!("tb{i}")}))?;
        reqs.push((req, ip));
    }
    let (_dpa, a) = agent_shell("bench-a", [192, 0, 2, 1], xmpp)?;
    let (_dpb, b) = agent_shell("bench-b", [192, 0, 2, 2], xmpp)?;
    let connected = |s: &filament_agent::shell::Shared| !s.agent.lock().headless();
    let t = Instant::now();
    while !(connected(&a) && connected(&b)) {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(20),
            "agents did not connect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // agent B holds port 0, so it subscribes to the network's routing instance
    let mut it = reqs.into_iter();
    let (req0, _) = it.next().context("no ports")?;
    let id0 = req0.id.clone();
    b.input(Input::PortAdd(req0, VifId(1)));
    let t = Instant::now();
    while b
        .agent
        .lock()
        .ports
        .get(&id0)
        .and_then(|p| p.programmed.as_ref())
        .is_none()
    {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(20),
            "agent B's port not programmed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lat = Vec::with_capacity(n);
    // stages: port add -> programmed at A (subscription, the control node's config subset,
    // A's config processing); programmed at A -> route at B (publish, control RIB, push, B)
    let (mut prog, mut push) = (Vec::with_capacity(n), Vec::with_capacity(n));
    // CPU of the `filament up` child and of this process (the agents) over the timed loop:
    // a figure the machine's load does not move much, unlike the latencies
    let up_pid = server.proc.id();
    let cpu0 = (cpu_secs(up_pid), cpu_secs(std::process::id()));
    for (i, (req, ip)) in it.enumerate() {
        let key = format!("{ip}/32");
        let id = req.id.clone();
        let t0 = Instant::now();
        let mut programmed: Option<Duration> = None;
        a.input(Input::PortAdd(req, VifId(2 + i as u32)));
        loop {
            if programmed.is_none()
                && a.agent
                    .lock()
                    .ports
                    .get(&id)
                    .is_some_and(|p| p.programmed.is_some())
            {
                programmed = Some(t0.elapsed());
            }
            if b.agent
                .lock()
                .vrfs
                .values()
                .any(|v| v.routes.contains_key(&key))
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("route {key} never reached agent B");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let total = t0.elapsed();
        let p = programmed.unwrap_or(total);
        lat.push(total);
        prog.push(p);
        push.push(total.saturating_sub(p));
    }
    println!("agent port add -> route at the remote agent: {n} ports (`filament up` child + 2 in-process agents)");
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 <= 20 ms)",
        crate::bench::percentile_ms(&mut lat, 0.50),
        crate::bench::percentile_ms(&mut lat, 0.99),
        crate::bench::percentile_ms(&mut lat, 1.0)
    );
    let cpu1 = (cpu_secs(up_pid), cpu_secs(std::process::id()));
    if let ((Some(u0), Some(a0)), (Some(u1), Some(a1))) = (cpu0, cpu1) {
        println!(
            "  CPU per port: `filament up` {:.3} ms, agents (this process) {:.3} ms",
            (u1 - u0) * 1e3 / n.max(1) as f64,
            (a1 - a0) * 1e3 / n.max(1) as f64
        );
    }
    for (name, v) in [
        ("port add -> programmed at A (config subset)", &mut prog),
        (
            "programmed at A -> route at B (publish, RIB, push)",
            &mut push,
        ),
    ] {
        println!(
            "    {name}: p50 {:.2} ms, p99 {:.2} ms",
            crate::bench::percentile_ms(v, 0.50),
            crate::bench::percentile_ms(v, 0.99)
        );
    }
    Ok(())
}
