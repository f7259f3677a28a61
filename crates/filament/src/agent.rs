//! `filament agent`, `filament port`, `filament flow`: the vRouter agent role (XMPP client to up
//! to two control nodes, forwarder runtime, port API on 9091) and its operator commands.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use filament_agent::core::{Agent, AgentCfg};
use filament_dataplane::VifKind;
use filament_dataplane_io::{AttachCfg, Datapath, DatapathCfg, IoMode};
use serde_json::{json, Value};

#[derive(Args)]
pub(crate) struct AgentArgs {
    /// Agent name: the virtual-router name and XMPP JID (default: hostname).
    #[arg(long)]
    name: Option<String>,
    /// Fabric interface (overlay packets arrive and leave here).
    #[arg(long)]
    fabric_if: String,
    /// Fabric address IP/LEN (default: the interface's first IPv4 address).
    #[arg(long)]
    fabric_ip: Option<String>,
    /// Control node ADDR[:5269]; at most two.
    #[arg(long = "control", required = true)]
    control: Vec<String>,
    /// Port API (and /vrouter introspect) address.
    #[arg(long, default_value = "127.0.0.1:9091")]
    port_api: SocketAddr,
    /// Forwarder interface I/O: af-packet (TPACKET_V3 rings) or af-xdp (AF_XDP copy mode,
    /// AF_PACKET fallback per interface); as `filament vrouter run --io`.
    #[arg(long, default_value = "af-packet")]
    io: IoMode,
    /// Forwarder run loops (threads), interfaces spread over them; as `vrouter run --cores`.
    #[arg(long, default_value_t = 1)]
    cores: usize,
    #[command(flatten)]
    flow_table: crate::vrouter::FlowEntries,
    /// XMPP over TLS, as TF's agent with `xmpp_auth_enable`: the CA (PEM; TF `xmpp_ca_cert`)
    /// the control node's certificate must chain to (its name is not checked, as in TF).
    /// The agent then STARTTLS on every control-node channel.
    #[arg(long, value_name = "FILE")]
    xmpp_tls_ca: Option<std::path::PathBuf>,
    /// This agent's certificate (PEM chain; TF `xmpp_server_cert`), required by a control
    /// node started with --xmpp-tls-ca.
    #[arg(
        long,
        value_name = "FILE",
        requires = "xmpp_tls_key",
        requires = "xmpp_tls_ca"
    )]
    xmpp_tls_cert: Option<std::path::PathBuf>,
    /// Private key of --xmpp-tls-cert (PEM; TF `xmpp_server_key`).
    #[arg(long, value_name = "FILE", requires = "xmpp_tls_cert")]
    xmpp_tls_key: Option<std::path::PathBuf>,
}

#[derive(Args, Clone)]
pub(crate) struct AgentUrl {
    /// Agent port API (a URL, or `host:port`).
    #[arg(long, default_value = "http://127.0.0.1:9091", env = "FILAMENT_AGENT")]
    agent: String,
}

#[derive(Subcommand)]
pub(crate) enum PortCmd {
    /// Add a workload port (the agent creates the veth when --netns is given).
    Add {
        /// VMI uuid.
        #[arg(long)]
        vmi: String,
        /// VM uuid.
        #[arg(long)]
        vm: String,
        /// VN uuid.
        #[arg(long)]
        vn: Option<String>,
        /// Workload MAC (the VMI's).
        #[arg(long)]
        mac: String,
        /// Workload IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// Host-side interface name.
        #[arg(long)]
        ifname: String,
        /// Workload network namespace.
        #[arg(long)]
        netns: Option<String>,
        /// Project uuid.
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        url: AgentUrl,
    },
    /// Delete a port by VMI uuid.
    Delete {
        /// VMI uuid.
        vmi: String,
        #[command(flatten)]
        url: AgentUrl,
    },
    /// Ports known to the agent.
    List {
        #[command(flatten)]
        url: AgentUrl,
    },
}

#[derive(Subcommand)]
pub(crate) enum FlowCmd {
    /// Flows of the forwarder with the rule that decided each.
    List {
        #[command(flatten)]
        url: AgentUrl,
    },
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn control_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let with_port = if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:5269")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("bad --control {s}"))?
        .next()
        .with_context(|| format!("--control {s}: no address"))
}

pub(crate) async fn run(a: AgentArgs) -> anyhow::Result<()> {
    if a.control.len() > 2 {
        bail!("at most two --control (TF: MAX_XMPP_SERVERS = 2)");
    }
    let controls = a
        .control
        .iter()
        .map(|c| control_addr(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let name = a.name.unwrap_or_else(hostname);
    let tls = match &a.xmpp_tls_ca {
        Some(ca) => {
            let pair = a.xmpp_tls_cert.as_deref().zip(a.xmpp_tls_key.as_deref());
            Some(filament_agent::xmpp_tls::XmppTls::load(&name, ca, pair)?)
        }
        None => None,
    };
    let sys = filament_agent::shell::fabric_addr(&a.fabric_if);
    let fabric_ip: Ipv4Addr = match &a.fabric_ip {
        Some(s) => s
            .split('/')
            .next()
            .unwrap_or(s)
            .parse()
            .with_context(|| format!("bad --fabric-ip {s}"))?,
        None => sys
            .map(|(ip, _, _)| ip)
            .with_context(|| format!("{} has no IPv4 address; give --fabric-ip", a.fabric_if))?,
    };
    let fabric_mtu = sys.map_or(1500, |(_, _, m)| m);
    let mut dp = Datapath::spawn(DatapathCfg {
        io: a.io,
        cores: a.cores,
        forwarder: filament_dataplane::ForwarderCfg {
            flow_capacity: a.flow_table.flow_entries,
            ..DatapathCfg::default().forwarder
        },
        ..DatapathCfg::default()
    })
    .context("cannot start the forwarder")?;
    let handle = dp.handle();
    let punts = dp.take_punts().context("punt receiver already taken")?;
    let fabric_vif = handle
        .attach(AttachCfg {
            ifname: a.fabric_if.clone(),
            id: None,
            kind: VifKind::Fabric,
            vrf: None,
            policy: false,
            mac: None,
            ip: Some(fabric_ip.into()),
        })
        .await
        .with_context(|| format!("cannot attach fabric interface {}", a.fabric_if))?;
    let agent = Agent::new(AgentCfg {
        name: name.clone(),
        fabric_ip,
        fabric_vif,
        fabric_mtu,
        channels: controls.len(),
    });
    let xmpp_tls = tls.is_some();
    let shared = filament_agent::shell::start_with_tls(agent, handle, punts, controls.clone(), tls);
    let app = filament_agent::api::router(shared);
    let listener = tokio::net::TcpListener::bind(a.port_api)
        .await
        .with_context(|| format!("cannot listen on {}", a.port_api))?;
    tracing::info!(%name, %fabric_ip, fabric_if = %a.fabric_if, port_api = %a.port_api, ?controls, xmpp_tls, "agent running");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(dp);
    Ok(())
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> anyhow::Result<Value> {
    let c = reqwest::Client::new();
    let mut r = c.request(method, &url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r
        .send()
        .await
        .with_context(|| format!("cannot reach the agent at {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            v.get("error").and_then(Value::as_str).unwrap_or("")
        );
    }
    Ok(v)
}

pub(crate) async fn port(c: PortCmd) -> anyhow::Result<()> {
    match c {
        PortCmd::Add {
            vmi,
            vm,
            vn,
            mac,
            ip,
            ifname,
            netns,
            project,
            url,
        } => {
            let body = json!({"id": vmi, "instance-id": vm, "vn-id": vn, "mac-address": mac, "ip-address": ip,
                              "system-name": ifname, "vm-namespace": netns, "vm-project-id": project, "type": 0,
                              "rx-vlan-id": -1, "tx-vlan-id": -1});
            let v = call(
                reqwest::Method::POST,
                format!("{}/port", crate::control::base_url(&url.agent)),
                Some(body),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        PortCmd::Delete { vmi, url } => {
            call(
                reqwest::Method::DELETE,
                format!("{}/port/{vmi}", crate::control::base_url(&url.agent)),
                None,
            )
            .await?;
            println!("deleted {vmi}");
        }
        PortCmd::List { url } => {
            let v = call(
                reqwest::Method::GET,
                format!("{}/ports", crate::control::base_url(&url.agent)),
                None,
            )
            .await?;
            println!(
                "{:<36}  {:<12}  {:<15}  {:<17}  {:<20}  vrf",
                "vmi", "ifname", "ip", "mac", "state"
            );
            for p in v.as_array().cloned().unwrap_or_default() {
                let pr = &p["programmed"];
                println!(
                    "{:<36}  {:<12}  {:<15}  {:<17}  {:<20}  {}",
                    p["req"]["id"].as_str().unwrap_or(""),
                    p["req"]["system_name"].as_str().unwrap_or(""),
                    pr["ip"].as_str().or(p["req"]["ip"].as_str()).unwrap_or("-"),
                    p["req"]["mac"].as_str().unwrap_or(""),
                    p["state"].as_str().unwrap_or(""),
                    pr["vrf"].as_str().unwrap_or("-"),
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn flow(c: FlowCmd) -> anyhow::Result<()> {
    let FlowCmd::List { url } = c;
    let v = call(
        reqwest::Method::GET,
        format!("{}/flows", crate::control::base_url(&url.agent)),
        None,
    )
    .await?;
    println!(
        "{:<6} {:<4} {:<5} {:<22} {:<22} {:<8} {:<8} rule",
        "index", "vrf", "proto", "source", "destination", "action", "packets"
    );
    // `Value`'s Display ignores width: format every cell as a string first.
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let endpoint = |ip: &serde_json::Value, port: &serde_json::Value| {
        let ip = ip.as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{}", cell(port))
        } else {
            format!("{ip}:{}", cell(port))
        }
    };
    for f in v.as_array().cloned().unwrap_or_default() {
        let k = &f["key"];
        let action = f["action"]["action"]
            .as_str()
            .or(f["state"].as_str())
            .unwrap_or("-");
        println!(
            "{:<6} {:<4} {:<5} {:<22} {:<22} {:<8} {:<8} {}",
            cell(&f["index"]),
            cell(&k["vrf"]),
            cell(&k["proto"]),
            endpoint(&k["src"], &k["sport"]),
            endpoint(&k["dst"], &k["dport"]),
            action,
            cell(&f["packets"]),
            f["rule"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}
