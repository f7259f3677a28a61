//! Building the demo lab, step by step (issue 7): underlay bridge, controller netns running
//! `filament up`, two compute-host netns running `filament agent`, the tenant config through
//! the REST API, four workloads plugged through the agents' port API, DHCP in each workload
//! (real `dhclient`, else busybox `udhcpc`), and a ping matrix. The lab description (the state
//! file, also what `filament demo show --json` prints) is built here as JSON.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::cfg::{get_json, plug, Api};
use super::net::{self, ns_run, run, PREFIX};

pub(crate) const RUN_DIR: &str = "/run/filament-demo";
const UNDERLAY: &str = "fil-underlay";
const BRIDGE: &str = "br0";
/// Jumbo underlay, so a 1500-byte workload packet fits with its overlay header.
const FABRIC_MTU: u32 = 9000;
const FABRIC_LEN: u8 = 24;
const MGMT_IP: &str = "10.250.0.1";
const CTL_NS: &str = "fil-ctl";
const CTL_IP: &str = "10.250.0.10";
const PROJECT: &str = "fil-demo";
/// (host name = netns, fabric IP).
const HOSTS: [(&str, &str); 2] = [("fil-h1", "10.250.0.11"), ("fil-h2", "10.250.0.12")];
/// (VN name, subnet).
const VNS: [(&str, &str); 2] = [("blue", "10.1.1.0/24"), ("red", "10.2.2.0/24")];
/// (workload name, host index, VN index): one workload of each VN on each host.
const WORKLOADS: [(&str, usize, usize); 4] = [
    ("blue1", 0, 0),
    ("red1", 0, 1),
    ("blue2", 1, 0),
    ("red2", 1, 1),
];

pub(crate) fn state_path() -> PathBuf {
    Path::new(RUN_DIR).join("state.json")
}

/// Timestamped progress lines for the slow steps.
pub(crate) struct Progress(Instant);

impl Progress {
    pub(crate) fn new() -> Self {
        Progress(Instant::now())
    }
    pub(crate) fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
    pub(crate) fn say(&self, msg: &str) {
        println!("[{:>5.1}s] {msg}", self.secs());
    }
    /// Poll `check` every 200 ms until it is true or `limit` passes, printing a dot a second.
    pub(crate) async fn wait<F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        use std::io::Write as _;
        let start = Instant::now();
        print!("[{:>5.1}s] waiting for {what} ", self.secs());
        let _ = std::io::stdout().flush();
        let mut dots = 0;
        loop {
            if check().await {
                println!(" ok ({:.1}s)", start.elapsed().as_secs_f64());
                return Ok(());
            }
            if start.elapsed() > limit {
                println!(" gave up");
                bail!("{what}: not ready after {}s", limit.as_secs());
            }
            if start.elapsed().as_secs() > dots {
                dots += 1;
                print!(".");
                let _ = std::io::stdout().flush();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Start `filament <args>` inside netns `ns`, output to `log`.
fn spawn_role(ns: &str, args: &[&str], log: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the filament binary")?;
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start filament {} in {ns}", args.join(" ")))
}

/// The controller's command line (tests restart it with the same one).
pub(crate) fn controller_args(data_dir: &str) -> Vec<String> {
    [
        "up",
        "--data-dir",
        data_dir,
        "--listen",
        "0.0.0.0:8082",
        "--name",
        CTL_NS,
        "--bgp-address",
        CTL_IP,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn agent_args(name: &str, ip: &str) -> Vec<String> {
    let fabric = format!("{ip}/{FABRIC_LEN}");
    [
        "agent",
        "--name",
        name,
        "--fabric-if",
        "eth0",
        "--fabric-ip",
        &fabric,
        "--control",
        CTL_IP,
        "--port-api",
        "0.0.0.0:9091",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The DHCP client hook (dhclient `-sf` and udhcpc `-s`): configures address, MTU and default
/// route from the lease; the DNS server stays in the lease file.
const DHCP_SCRIPT: &str = r#"#!/bin/sh
# filament demo: DHCP client hook for dhclient (-sf, $reason) and udhcpc (-s, $1)
case "$reason$1" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    { echo "ip $ip/$mask"; echo "router $router"; echo "dns $dns"; echo "mtu $mtu"; } > "/run/filament-demo/$(ip netns identify)-udhcpc.lease" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
"#;

/// Run the DHCP client in workload netns `ns` on eth0 until it has a lease; returns the
/// address it configured (`a.b.c.d/len`) and which client ran.
fn dhcp(ns: &str) -> anyhow::Result<(String, &'static str)> {
    let script = Path::new(RUN_DIR).join("dhcp-hook.sh");
    let script = script.to_string_lossy();
    let client = if net::have("dhclient") {
        let pf = format!("{RUN_DIR}/{ns}-dhclient.pid");
        let lf = format!("{RUN_DIR}/{ns}-dhclient.leases");
        let cf = format!("{RUN_DIR}/dhclient.conf");
        // -1: one attempt (bounded by `timeout` in the conf), then stays as a daemon renewing.
        ns_run(
            ns,
            &[
                "dhclient", "-1", "-cf", &cf, "-sf", &script, "-pf", &pf, "-lf", &lf, "eth0",
            ],
        )?;
        "dhclient"
    } else if net::have("busybox") {
        ns_run(
            ns,
            &[
                "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "2", "-s", &script,
            ],
        )?;
        "udhcpc"
    } else {
        bail!("neither dhclient nor busybox is installed");
    };
    let out = run(&["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])?;
    let addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .with_context(|| format!("{ns}: {client} finished but eth0 has no IPv4 address"))?;
    Ok((addr.to_string(), client))
}

/// One ping from netns `ns` to `ip` (1 s timeout).
pub(crate) fn ping(ns: &str, ip: &str) -> bool {
    let args = ["-c", "1", "-W", "1", "-q", ip];
    if net::have("ping") {
        ns_run(ns, &[&["ping"][..], &args].concat()).is_ok()
    } else {
        ns_run(ns, &[&["busybox", "ping"][..], &args].concat()).is_ok()
    }
}

/// The ping matrix of the lab's workloads, printed; returns the cells (from, to, ok).
pub(crate) fn ping_matrix(state: &Value) -> Vec<(String, String, bool)> {
    let wls: Vec<(String, String, String, String)> = state["workloads"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| {
                    let s = |k: &str| w[k].as_str().unwrap_or_default().to_string();
                    (s("name"), s("netns"), s("ip"), s("host"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut handles = Vec::new();
    for a in &wls {
        for b in &wls {
            if a.0 != b.0 {
                let (from, ns, to, ip) = (a.0.clone(), a.1.clone(), b.0.clone(), b.2.clone());
                handles.push(std::thread::spawn(move || (from, to, ping(&ns, &ip))));
            }
        }
    }
    let cells: Vec<(String, String, bool)> =
        handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let label = |w: &(String, String, String, String)| {
        format!("{} ({})", w.0, w.3.trim_start_matches(PREFIX))
    };
    print!("{:<12}", "ping from\\to");
    for b in &wls {
        print!("{:>12}", label(b));
    }
    println!();
    for a in &wls {
        print!("{:<12}", label(a));
        for b in &wls {
            let cell = if a.0 == b.0 {
                "-"
            } else if cells.iter().any(|c| c.0 == a.0 && c.1 == b.0 && c.2) {
                "ok"
            } else {
                "no"
            };
            print!("{cell:>12}");
        }
        println!();
    }
    cells
}

/// Write the state file atomically.
pub(crate) fn save(state: &Value) -> anyhow::Result<()> {
    let tmp = Path::new(RUN_DIR).join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, state_path())?;
    Ok(())
}

/// Build the whole lab; `state` is filled (and saved) as things are created, so a failure
/// half-way still leaves a state file `demo down` can use.
pub(crate) async fn build(p: &Progress, state: &mut Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(Path::new(RUN_DIR).join("logs"))?;
    std::fs::write(Path::new(RUN_DIR).join("dhcp-hook.sh"), DHCP_SCRIPT)?;
    run(&["chmod", "755", &format!("{RUN_DIR}/dhcp-hook.sh")])?;
    std::fs::write(
        Path::new(RUN_DIR).join("dhclient.conf"),
        "timeout 20;\nretry 2;\nrequest subnet-mask, broadcast-address, routers, domain-name-servers, interface-mtu;\n",
    )?;
    let logs = Path::new(RUN_DIR).join("logs");

    p.say("underlay: bridge br0 in netns fil-underlay, 10.250.0.0/24, MTU 9000");
    net::add_netns(UNDERLAY)?;
    run(&[
        "ip", "-n", UNDERLAY, "link", "add", BRIDGE, "type", "bridge",
    ])?;
    run(&["ip", "-n", UNDERLAY, "link", "set", BRIDGE, "up"])?;
    net::link_to_bridge(
        UNDERLAY,
        BRIDGE,
        None,
        "mgmt",
        "",
        &format!("{MGMT_IP}/{FABRIC_LEN}"),
        FABRIC_MTU,
    )?;
    net::add_netns(CTL_NS)?;
    net::link_to_bridge(
        UNDERLAY,
        BRIDGE,
        Some(CTL_NS),
        "ctl",
        "eth0",
        &format!("{CTL_IP}/{FABRIC_LEN}"),
        FABRIC_MTU,
    )?;
    for (h, ip) in HOSTS {
        net::add_netns(h)?;
        let tag = h.trim_start_matches(PREFIX);
        net::link_to_bridge(
            UNDERLAY,
            BRIDGE,
            Some(h),
            tag,
            "eth0",
            &format!("{ip}/{FABRIC_LEN}"),
            FABRIC_MTU,
        )?;
    }

    // The controller.
    let data_dir = format!("{RUN_DIR}/controller-data");
    let args = controller_args(&data_dir);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = logs.join("controller.log");
    p.say(&format!(
        "controller: netns {CTL_NS}, filament up (log {})",
        log.display()
    ));
    let ctl = spawn_role(CTL_NS, &argv, &log)?;
    let api_url = format!("http://{CTL_IP}:8082");
    state["controller"] = json!({
        "netns": CTL_NS, "fabric_ip": CTL_IP, "api_url": api_url,
        "control_url": format!("http://{CTL_IP}:8083"), "xmpp": format!("{CTL_IP}:5269"),
        "pid": ctl.id(), "cmd": args, "data_dir": data_dir, "log": log,
    });
    save(state)?;
    let api = Api::new(&api_url)?;
    p.wait("the config API", Duration::from_secs(60), || api.up())
        .await?;

    // Tenant config, through the API as vnc_api would.
    p.say(&format!(
        "config: project {PROJECT}, VNs blue 10.1.1.0/24 and red 10.2.2.0/24, virtual-routers"
    ));
    api.encapsulation(&["MPLSoUDP", "MPLSoGRE", "VXLAN"])
        .await?;
    let project = api.project(PROJECT).await?;
    state["project"] = json!({"fq_name": ["default-domain", PROJECT], "uuid": project});
    let mut vns = Vec::new();
    for (name, cidr) in VNS {
        let uuid = api.network(PROJECT, name, cidr).await?;
        let (gw, dns) = api.gateway_dns(&uuid).await?;
        vns.push(
            json!({"name": name, "fq_name": ["default-domain", PROJECT, name], "uuid": uuid,
                        "subnet": cidr, "gateway": gw, "dns": dns}),
        );
    }
    state["networks"] = json!(vns);
    let mut hosts = Vec::new();
    for (h, ip) in HOSTS {
        let vr = api.virtual_router(h, ip).await?;
        hosts.push(
            json!({"name": h, "netns": h, "fabric_if": "eth0", "fabric_ip": ip,
                          "agent_url": format!("http://{ip}:9091"), "virtual_router_uuid": vr}),
        );
    }
    state["hosts"] = json!(hosts);
    save(state)?;

    // Agents.
    for (i, (h, ip)) in HOSTS.iter().enumerate() {
        let args = agent_args(h, ip);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = logs.join(format!("{h}.log"));
        p.say(&format!(
            "compute host {h}: fabric {ip}, filament agent (log {})",
            log.display()
        ));
        let c = spawn_role(h, &argv, &log)?;
        state["hosts"][i]["pid"] = json!(c.id());
        state["hosts"][i]["cmd"] = json!(args);
        state["hosts"][i]["log"] = json!(log);
    }
    save(state)?;
    for (h, ip) in HOSTS {
        let url = format!("http://{ip}:9091/status");
        p.wait(
            &format!("agent {h} to connect to the control node"),
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move { get_json(&url).await.is_some_and(|s| s["state"] == "active") }
            },
        )
        .await?;
    }

    // Workloads.
    let mut wls = Vec::new();
    for (name, hi, vi) in WORKLOADS {
        let (host, _) = HOSTS[hi];
        let vn = &state["networks"][vi];
        let vn_name = vn["name"].as_str().unwrap_or_default().to_string();
        let vn_uuid = vn["uuid"].as_str().unwrap_or_default().to_string();
        let vn_fq = ["default-domain", PROJECT, &vn_name];
        let ns = format!("{PREFIX}{name}");
        net::add_netns(&ns)?;
        let vm = api.virtual_machine(name).await?;
        let (vmi, iip, mac, ip) = api.port(PROJECT, name, &vn_fq, &vm).await?;
        let tap = format!("tap{}", &vmi[..11.min(vmi.len())]);
        let agent = state["hosts"][hi]["agent_url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let body = json!({"id": vmi, "instance-id": vm, "display-name": name, "ip-address": ip,
            "vn-id": vn_uuid, "vm-project-id": project, "mac-address": mac, "system-name": tap,
            "type": 0, "rx-vlan-id": -1, "tx-vlan-id": -1, "vm-namespace": ns, "vm-ifname": "eth0"});
        p.say(&format!(
            "workload {name}: netns {ns} on {host}, VN {vn_name}, port {tap} {mac} {ip}"
        ));
        plug(&agent, &body).await?;
        wls.push(
            json!({"name": name, "netns": ns, "interface": "eth0", "host": host, "vn": vn_name,
            "vn_uuid": vn_uuid, "vm_uuid": vm, "vmi_uuid": vmi, "iip_uuid": iip, "ip": ip,
            "mac": mac, "tap": tap, "port_body": body}),
        );
        state["workloads"] = json!(wls);
        save(state)?;
    }
    for w in wls.iter() {
        let url = format!(
            "{}/port/{}",
            host_url(state, w),
            w["vmi_uuid"].as_str().unwrap_or_default()
        );
        let name = w["name"].as_str().unwrap_or_default();
        p.wait(
            &format!("port {name} to be programmed"),
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move { get_json(&url).await.is_some_and(|s| s["state"] == "active") }
            },
        )
        .await?;
    }

    // DHCP, in parallel.
    p.say("DHCP in each workload");
    let mut jobs = Vec::new();
    for w in &wls {
        let ns = w["netns"].as_str().unwrap_or_default().to_string();
        jobs.push(tokio::task::spawn_blocking(move || (ns.clone(), dhcp(&ns))));
    }
    for (i, j) in jobs.into_iter().enumerate() {
        let (ns, r) = j.await?;
        let (addr, client) = r.with_context(|| format!("DHCP in {ns}"))?;
        let want = state["workloads"][i]["ip"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got = addr.split('/').next().unwrap_or_default().to_string();
        let mark = if got == want {
            ""
        } else {
            "  <-- NOT the instance-ip address"
        };
        p.say(&format!("{ns}: {client} lease {addr}{mark}"));
        state["workloads"][i]["lease"] = json!(addr);
        state["workloads"][i]["dhcp_client"] = json!(client);
    }
    save(state)?;

    // First cross-host ping (same VN, different hosts).
    let (a, b) = (&state["workloads"][0], &state["workloads"][2]);
    let (ns, ip) = (
        a["netns"].as_str().unwrap_or_default().to_string(),
        b["ip"].as_str().unwrap_or_default().to_string(),
    );
    let what = format!(
        "the first cross-host ping {} -> {}",
        a["name"].as_str().unwrap_or_default(),
        b["name"].as_str().unwrap_or_default()
    );
    p.wait(&what, Duration::from_secs(20), || {
        let (ns, ip) = (ns.clone(), ip.clone());
        async move {
            tokio::task::spawn_blocking(move || ping(&ns, &ip))
                .await
                .unwrap_or(false)
        }
    })
    .await?;
    state["first_cross_host_ping_s"] = json!((p.secs() * 10.0).round() / 10.0);
    Ok(())
}

/// The agent URL of workload `w`'s host.
pub(crate) fn host_url(state: &Value, w: &Value) -> String {
    state["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == w["host"]))
        .and_then(|h| h["agent_url"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Peak RSS (VmHWM, MB) of each role process of the lab: (role, MB).
pub(crate) fn peak_rss(state: &Value) -> Vec<(String, f64)> {
    let mut roles = vec![(
        "controller".to_string(),
        state["controller"]["pid"].as_i64(),
    )];
    for h in state["hosts"].as_array().into_iter().flatten() {
        roles.push((
            format!("agent {}", h["name"].as_str().unwrap_or("?")),
            h["pid"].as_i64(),
        ));
    }
    roles
        .into_iter()
        .filter_map(|(role, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
            let kb: f64 = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((role, kb / 1024.0))
        })
        .collect()
}

/// The picture of the lab.
pub(crate) fn print_picture(state: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let c = &state["controller"];
    println!();
    println!("underlay  bridge br0 in netns {UNDERLAY}, 10.250.0.0/24 (this shell reaches it as {MGMT_IP} on fil-mgmt)");
    println!(
        "controller netns {:<10} {:<13} API {}  introspect {}",
        s(&c["netns"]),
        s(&c["fabric_ip"]),
        s(&c["api_url"]),
        s(&c["control_url"])
    );
    for h in state["hosts"].as_array().into_iter().flatten() {
        println!(
            "host      netns {:<10} {:<13} agent {}",
            s(&h["netns"]),
            s(&h["fabric_ip"]),
            s(&h["agent_url"])
        );
        for w in state["workloads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["host"] == h["name"])
        {
            println!(
                "  workload netns {:<10} eth0 {:<12} {}  VN {:<5} (tap {})",
                s(&w["netns"]),
                s(&w["ip"]),
                s(&w["mac"]),
                s(&w["vn"]),
                s(&w["tap"])
            );
        }
    }
    for n in state["networks"].as_array().into_iter().flatten() {
        println!(
            "VN {:<5} {:<13} gateway {}  dns {}  uuid {}",
            s(&n["name"]),
            s(&n["subnet"]),
            s(&n["gateway"]),
            s(&n["dns"]),
            s(&n["uuid"])
        );
    }
    let rss: Vec<String> = peak_rss(state)
        .iter()
        .map(|(r, mb)| format!("{r} {mb:.1} MB"))
        .collect();
    if !rss.is_empty() {
        println!("peak RSS so far: {}", rss.join(", "));
    }
    println!();
}
