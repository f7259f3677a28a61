//! `filament control`, `filament route`, `filament neighbors`: the control node role
//! (tf-facts §2, §3) and its operator commands, printed like `ist.py ctr ...` (tf-facts §7).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use filament_control::shell::{self, Listeners, ShellConfig};
use filament_control::NodeConfig;
use serde_json::Value;

/// Control-node listen flags, shared by `filament control` and `filament up`.
#[derive(Args, Clone, Debug)]
pub(crate) struct ControlListen {
    /// XMPP server for vRouter agents.
    #[arg(long, default_value = "0.0.0.0:5269")]
    pub(crate) xmpp_listen: SocketAddr,
    /// BGP listen address (handed to the BGP speaker).
    #[arg(long, default_value = "0.0.0.0:179")]
    pub(crate) bgp_listen: SocketAddr,
    /// Introspect HTTP/JSON server (`/status`, `/routes`, `/routes/summary`, `/neighbors`).
    #[arg(long, default_value = "0.0.0.0:8083")]
    pub(crate) introspect: SocketAddr,
    /// Control node name (default: hostname); also its bgp-router name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Address registered in this node's bgp-router object.
    #[arg(long)]
    pub(crate) bgp_address: Option<String>,
    /// XMPP hold time in seconds for agent sessions (TF: 90, configurable 1-90); a keepalive
    /// is sent every hold/3.  global-system-config `fast_convergence_parameters`
    /// (`enable` + `xmpp_hold_time`) overrides it, as in TF.
    #[arg(long = "xmpp-hold", visible_alias = "hold-time", value_name = "SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=90))]
    pub(crate) hold_time: u64,
}

#[derive(Args)]
pub(crate) struct ControlArgs {
    /// Config API to follow.
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    api: String,
    #[command(flatten)]
    listen: ControlListen,
}

#[derive(Subcommand)]
pub(crate) enum RouteCmd {
    /// Routes of one table or all tables (`ist.py ctr route show`).
    Show {
        /// Table (`<instance>.inet.0`, `bgp.l3vpn.0`, ...).
        #[arg(long, short = 't')]
        table: Option<String>,
        /// Only this prefix.
        prefix: Option<String>,
        /// Control node introspect URL.
        #[arg(long, default_value = "http://127.0.0.1:8083")]
        control: String,
    },
    /// Route counts per table (`ist.py ctr route summary`).
    Summary {
        /// Control node introspect URL.
        #[arg(long, default_value = "http://127.0.0.1:8083")]
        control: String,
    },
}

#[derive(Args)]
pub(crate) struct NeighborsArgs {
    /// Control node introspect URL.
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    control: String,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "control".to_string())
}

/// Shell settings from the flags; `register` decides whether a default bgp-router address
/// is used when `--bgp-address` is absent.
pub(crate) fn shell_config(api: String, l: &ControlListen, register: bool) -> ShellConfig {
    let bgp_address = l.bgp_address.clone().or_else(|| {
        register.then(|| {
            let ip = l.bgp_listen.ip();
            if ip.is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                ip.to_string()
            }
        })
    });
    ShellConfig {
        api,
        xmpp_listen: l.xmpp_listen,
        introspect: l.introspect,
        bgp_address,
        bgp_port: l.bgp_listen.port(),
        node: NodeConfig {
            name: l.name.clone().unwrap_or_else(hostname),
            hold: Duration::from_secs(l.hold_time),
            ..NodeConfig::default()
        },
    }
}

/// Bind and start the control node; runs until `stop` resolves.
pub(crate) async fn start(
    cfg: ShellConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<shell::Handle> {
    let l = Listeners::bind(&cfg).await.context("control node")?;
    tracing::info!(
        name = cfg.node.name,
        xmpp = %cfg.xmpp_listen,
        introspect = %cfg.introspect,
        api = cfg.api,
        "control node ready"
    );
    Ok(shell::start(cfg, l, stop))
}

/// Start the BGP speaker linked to a running control node (`--bgp-listen`).
pub(crate) fn start_bgp(h: &shell::Handle, l: &ControlListen, cfg: &ShellConfig) {
    filament_control::bgp_peers::spawn(
        h.clone(),
        filament_control::bgp_peers::BgpPeersConfig {
            listen: l.bgp_listen,
            name: cfg.node.name.clone(),
            address: cfg.bgp_address.as_deref().and_then(|a| a.parse().ok()),
            poll: Duration::from_millis(300),
        },
    );
}

pub(crate) async fn run(a: ControlArgs) -> anyhow::Result<()> {
    let cfg = shell_config(a.api, &a.listen, true);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = start(cfg.clone(), async move {
        let _ = rx.await;
    })
    .await?;
    start_bgp(&h, &a.listen, &cfg);
    crate::shutdown_signal().await;
    let _ = tx.send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

async fn get(url: &str) -> anyhow::Result<Value> {
    let r = reqwest::get(url)
        .await
        .with_context(|| format!("cannot reach the control node at {url}"))?;
    anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
    Ok(r.json().await?)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(crate) async fn route(c: RouteCmd) -> anyhow::Result<()> {
    match c {
        RouteCmd::Show {
            table,
            prefix,
            control,
        } => {
            let mut url = format!("{}/routes?", control.trim_end_matches('/'));
            if let Some(t) = &table {
                url.push_str(&format!("table={t}&"));
            }
            if let Some(p) = &prefix {
                url.push_str(&format!("prefix={p}"));
            }
            let v = get(&url).await?;
            for t in v["tables"].as_array().into_iter().flatten() {
                println!(
                    "\n{}: {} destinations, {} routes ({} primary, {} secondary, {} infeasible)",
                    s(&t["table"]),
                    t["destinations"],
                    t["paths"],
                    t["primary_paths"],
                    t["secondary_paths"],
                    t["infeasible_paths"]
                );
                for r in t["routes"].as_array().into_iter().flatten() {
                    println!("\n{}", s(&r["prefix"]));
                    for p in r["paths"].as_array().into_iter().flatten() {
                        let encap: Vec<String> = p["encap"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|e| format!("'{}'", s(e)))
                            .collect();
                        println!(
                            "    [{}|{}] localpref: {}, med: {}, nh: {}, encap: [{}], label: {}, rd: {}, origin_vn: {}{}{}{}",
                            s(&p["protocol"]),
                            s(&p["source"]),
                            p["local_pref"],
                            p["med"],
                            s(&p["next_hop"]),
                            encap.join(", "),
                            p["label"],
                            s(&p["rd"]),
                            s(&p["origin_vn"]),
                            if p["best"] == true { ", best" } else { "" },
                            if p["stale"] == true { ", stale" } else { "" },
                            match &p["primary_table"] {
                                Value::String(t) => format!(", primary: {t}"),
                                _ => String::new(),
                            }
                        );
                    }
                }
            }
            Ok(())
        }
        RouteCmd::Summary { control } => {
            let v = get(&format!("{}/routes/summary", control.trim_end_matches('/'))).await?;
            let rows: Vec<&Value> = v["tables"].as_array().into_iter().flatten().collect();
            let w = rows
                .iter()
                .map(|r| s(&r["name"]).len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!(
                "{:w$}  {:>8}  {:>6}  {:>13}  {:>15}  {:>16}",
                "name", "prefixes", "paths", "primary_paths", "secondary_paths", "infeasible_paths"
            );
            for r in rows {
                println!(
                    "{:w$}  {:>8}  {:>6}  {:>13}  {:>15}  {:>16}",
                    s(&r["name"]),
                    r["prefixes"],
                    r["paths"],
                    r["primary_paths"],
                    r["secondary_paths"],
                    r["infeasible_paths"]
                );
            }
            Ok(())
        }
    }
}

pub(crate) async fn neighbors(a: NeighborsArgs) -> anyhow::Result<()> {
    let v = get(&format!("{}/neighbors", a.control.trim_end_matches('/'))).await?;
    let cols = [
        "peer",
        "peer_address",
        "peer_asn",
        "encoding",
        "peer_type",
        "state",
        "send_state",
        "flap_count",
        "flap_time",
    ];
    let rows: Vec<Vec<String>> = v["neighbors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| cols.iter().map(|c| s(&n[*c])).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(cols.iter().map(|c| c.to_string()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
    Ok(())
}
