//! `filament vrouter`: the forwarder run standalone with static tables (no agent), and table
//! inspection printed like TF's `vif --list`, `nh --list`, `rt --dump`, `flow -l` and
//! `dropstats` tools (tf-facts §5, §7).
//!
//! - `filament vrouter run --tables FILE.json [--listen 127.0.0.1:9091] [--io af-packet|af-xdp] [--cores N] [--no-in-place]`
//!   `[--flow-entries N] [--flow-timeout SECONDS]` (`--xdp` = `--io af-xdp`) attaches the
//!   interfaces listed in the file and applies its operations, then forwards until SIGINT /
//!   SIGTERM, serving `GET /vrouter/{interfaces,nexthops,routes,flows,dropstats,labels,neighbors}`.
//!   The file format (`{"interfaces": [AttachCfg..], "ops": [Op..]}`) is described in
//!   `docs/vrouter-tables.md` and `filament_dataplane_io::tables`. Without an agent, the
//!   forwarder answers workloads' ARP requests (unless `--no-arp-proxy`) and IPv6 neighbour
//!   solicitations for routed addresses with the vif MAC; other punted packets (flow misses,
//!   DHCP) are counted and dropped: install flows in the file for `policy` vifs.
//!   `--flow-entries` sizes the flow table, `--flow-timeout` ages idle flows.
//! - `filament vrouter dump interfaces|nexthops|routes|flows|labels|neighbors [--json]` and
//!   `filament vrouter dropstats [--json]` read those routes from `--agent URL` (default
//!   `http://127.0.0.1:9091`, the agent's port-API server, or a standalone `vrouter run`);
//!   an unreachable or wrong URL is a one-line error naming what to check.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use filament_dataplane_io::bpf::XdpMode;
use filament_dataplane_io::{Datapath, DatapathCfg, IoMode, RingCfg, Tables, XskCfg};
use serde_json::Value;

#[derive(Subcommand)]
pub(crate) enum VrouterCmd {
    /// Run the forwarder standalone with static tables (no agent).
    Run(RunArgs),
    /// Print a forwarder table (interfaces, nexthops, routes, flows, labels, neighbors).
    Dump(DumpArgs),
    /// Print drop counters per reason.
    Dropstats(DropArgs),
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Tables file: `{"interfaces": [...], "ops": [...]}` (docs/vrouter-tables.md).
    #[arg(long)]
    tables: String,
    /// Address of the introspect server (`GET /vrouter/...`).
    #[arg(long, default_value = "127.0.0.1:9091")]
    listen: SocketAddr,
    /// Do not open the UDP 6635/4789 and raw GRE listener sockets on the host.
    #[arg(long)]
    no_fabric_listeners: bool,
    /// Receive ring block size in KiB (TPACKET_V3 blocks are handed over when full or
    /// after --ring-retire-ms: smaller blocks mean lower latency at low rates).
    #[arg(long, default_value_t = 128)]
    ring_block_kb: u32,
    /// Receive ring blocks per interface (the fabric interface gets twice as many: it
    /// carries every workload's traffic).
    #[arg(long, default_value_t = 32)]
    ring_blocks: u32,
    /// Milliseconds after which a partly filled receive block is handed over.
    #[arg(long, default_value_t = 1)]
    ring_retire_ms: u32,
    /// Interface I/O: `af-packet` (TPACKET_V3 rings) or `af-xdp` (AF_XDP copy mode, an XDP
    /// program steering packets to it; falls back to af-packet per interface, with a warning,
    /// where the kernel or driver refuses).
    #[arg(long, default_value = "af-packet")]
    io: IoMode,
    /// Same as `--io af-xdp`.
    #[arg(long)]
    xdp: bool,
    /// AF_PACKET: let the kernel also process every overlay packet arriving on the fabric
    /// (by default a tcx ingress program drops them once the forwarder has its copy).
    #[arg(long)]
    no_fabric_tc_drop: bool,
    /// Run loops (threads): interfaces are spread over them round robin in attach order, each
    /// loop with its own forwarder replica (tables applied to all). 0 = one per CPU. Default 1:
    /// on small hosts the workloads need the other cores.
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// Copy every received frame into a buffer before processing it (by default the
    /// common routed and tunnel paths are processed in the receive slot and copied once).
    #[arg(long)]
    no_in_place: bool,
    /// Bytes reserved in front of each AF_PACKET received frame (PACKET_RESERVE): headroom
    /// for in-place encapsulation (at least 50 for VXLAN).
    #[arg(long, default_value_t = 64)]
    ring_reserve: u32,
    /// After a wakeup with traffic, keep polling the rings this many microseconds for more
    /// before sleeping again (0: off). Burns CPU; fewer wakeups at high rates.
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u64,
    /// AF_XDP: which XDP hook steers packets to the sockets: `auto` (the driver's, veth has
    /// one; generic when refused), `driver` or `generic`.
    #[arg(long, default_value = "auto", value_parser = parse_xdp_mode)]
    xdp_mode: XdpMode,
    /// AF_XDP: transmit through an AF_PACKET TX ring (`packet`) instead of the AF_XDP
    /// socket's (`xsk`, which copies each frame into a new skb, 32 per system call). For
    /// measuring: `packet` cost 20% more CPU per packet here (bench/dataplane/RESULTS.md).
    #[arg(long, default_value = "xsk", value_parser = ["xsk", "packet"])]
    xdp_tx: String,
    #[command(flatten)]
    flow_table: FlowEntries,
    /// Seconds a flow pair may stay idle before it is aged out (TF's agent
    /// `flow_cache_timeout`, default 180).
    #[arg(long, value_name = "SECONDS", default_value_t = 180,
          value_parser = clap::value_parser!(u64).range(1..))]
    flow_timeout: u64,
    /// Punt workloads' ARP requests (counted, nobody answers) instead of answering those for
    /// routed addresses with the vif MAC (the default here, there being no agent).
    #[arg(long)]
    no_arp_proxy: bool,
    /// Send each TCP segment to an AF_PACKET workload interface on its own, instead of
    /// joining the segments of one flow in a burst into one GSO super-frame (receive offload,
    /// as kernel VXLAN's GRO).
    #[arg(long)]
    no_gro: bool,
}

/// `--flow-entries`, shared by `vrouter run` and `agent`.
#[derive(Args, Clone, Copy)]
pub(crate) struct FlowEntries {
    /// Flow table entries (each direction of a flow is one entry; TF's `vr_flow_entries`,
    /// default 512K). No ceiling other than memory: millions work (the index is filled at
    /// start, about 27 bytes of memory per entry before any flow: 10M took 277 MB; the
    /// entries themselves are touched as flows arrive). Per run loop.
    #[arg(long, visible_alias = "flow-table-size", value_name = "N",
          default_value_t = 512 * 1024, value_parser = parse_flow_entries)]
    pub(crate) flow_entries: usize,
}

fn parse_flow_entries(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("the flow table needs at least one entry".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn parse_xdp_mode(s: &str) -> Result<XdpMode, String> {
    match s {
        "auto" => Ok(XdpMode::Auto),
        "driver" | "drv" | "native" => Ok(XdpMode::Driver),
        "generic" | "skb" => Ok(XdpMode::Generic),
        _ => Err(format!("unknown XDP mode {s:?} (auto | driver | generic)")),
    }
}

/// A forwarder table, as `vrouter dump` names it (TF's `vif`, `nh`, `rt`, `flow`, `mpls`
/// tools; `neighbors` is the fabric ARP/ND table).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum DumpTable {
    /// Virtual interfaces (`vif --list`).
    Interfaces,
    /// Next hops (`nh --list`).
    Nexthops,
    /// IPv4/IPv6 routes and bridge (MAC) entries per VRF (`rt --dump`).
    Routes,
    /// The flow table (`flow -l`).
    Flows,
    /// MPLS labels and VXLAN VNIs (`mpls --dump`, `vxlan --dump`).
    Labels,
    /// Neighbour (ARP/ND) entries the forwarder resolves tunnel next hops with.
    Neighbors,
    /// Drop counters per reason (the same as `filament vrouter dropstats`).
    Dropstats,
}

impl DumpTable {
    fn path(self) -> &'static str {
        match self {
            DumpTable::Interfaces => "interfaces",
            DumpTable::Nexthops => "nexthops",
            DumpTable::Routes => "routes",
            DumpTable::Flows => "flows",
            DumpTable::Labels => "labels",
            DumpTable::Neighbors => "neighbors",
            DumpTable::Dropstats => "dropstats",
        }
    }
}

/// Where `vrouter dump` / `dropstats` read from, for error messages.
const AGENT: crate::control::Target = crate::control::Target {
    flag: "--agent",
    what: "a vRouter agent (or `filament vrouter run`)",
    hint: "is `filament agent` or `filament vrouter run` running on this host? it listens on \
           127.0.0.1:9091 by default",
};

#[derive(Args)]
pub(crate) struct DumpArgs {
    /// The table to print.
    #[arg(value_enum)]
    table: DumpTable,
    /// Only this VRF (`rt --dump <vrf>`): routes, flows and interfaces.
    #[arg(long, value_name = "VRF")]
    vrf: Option<u32>,
    /// Agent (or standalone forwarder) URL (`host:port` is enough).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9091")]
    agent: String,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct DropArgs {
    /// Agent (or standalone forwarder) URL (`host:port` is enough).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9091")]
    agent: String,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(c: VrouterCmd) -> anyhow::Result<()> {
    match c {
        VrouterCmd::Run(a) => run_standalone(a).await,
        VrouterCmd::Dump(a) => {
            let mut v = fetch(&a.agent, a.table.path()).await?;
            if let Some(vrf) = a.vrf {
                v = only_vrf(&a.agent, a.table, v, vrf).await?;
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", render(a.table.path(), &v));
            }
            Ok(())
        }
        VrouterCmd::Dropstats(a) => {
            let v = fetch(&a.agent, "dropstats").await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", render("dropstats", &v));
            }
            Ok(())
        }
    }
}

async fn run_standalone(a: RunArgs) -> anyhow::Result<()> {
    let tables = Tables::load(&a.tables)?;
    // The introspect port first: a taken port must fail before any interface is attached.
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let ring = RingCfg {
        rx_block_size: a.ring_block_kb.saturating_mul(1024),
        rx_block_nr: a.ring_blocks,
        rx_retire_ms: a.ring_retire_ms,
        rx_reserve: a.ring_reserve,
        ..RingCfg::default()
    };
    let io = if a.xdp { IoMode::AfXdp } else { a.io };
    let mut dp = Datapath::spawn(DatapathCfg {
        no_fabric_listeners: a.no_fabric_listeners,
        ring,
        io,
        cores: a.cores,
        fabric_tc_drop: !a.no_fabric_tc_drop,
        in_place: !a.no_in_place,
        gro: !a.no_gro,
        busy_poll: std::time::Duration::from_micros(a.busy_poll_us),
        forwarder: filament_dataplane::ForwarderCfg {
            flow_capacity: a.flow_table.flow_entries,
            flow_timeout: std::time::Duration::from_secs(a.flow_timeout),
            arp_proxy: !a.no_arp_proxy,
            ..DatapathCfg::default().forwarder
        },
        xsk: XskCfg {
            mode: a.xdp_mode,
            tx_packet_ring: match a.xdp_tx.as_str() {
                "packet" => true,
                "xsk" => false,
                other => anyhow::bail!("unknown --xdp-tx {other:?} (xsk | packet)"),
            },
            ..XskCfg::default()
        },
        ..DatapathCfg::default()
    })
    .context("cannot start the datapath")?;
    let h = dp.handle();
    tables
        .install(&h)
        .await
        .context("cannot install the tables")?;
    // No agent: count what would have gone to it.
    if let Some(mut punts) = dp.take_punts() {
        tokio::spawn(async move {
            let mut n: u64 = 0;
            while let Some(p) = punts.recv().await {
                n += 1;
                tracing::debug!(vif = p.vif.0, reason = ?p.reason, punted = n, "punt (no agent)");
            }
        });
    }
    tracing::info!(
        listen = %a.listen,
        interfaces = tables.interfaces.len(),
        io = ?io,
        loops = h.loops(),
        ops = tables.ops.len(),
        flow_entries = a.flow_table.flow_entries,
        "vrouter running (standalone, static tables)"
    );
    let app = filament_dataplane_io::router(h);
    let server = axum::serve(listener, app).with_graceful_shutdown(crate::shutdown_signal());
    server.await.context("introspect server")?;
    drop(dp);
    tracing::info!("stopped");
    Ok(())
}

/// The rows of `v` (a dump of `table`) in `vrf`; a VRF the forwarder does not know (no
/// interface, route or flow in it) is an error naming the ones it knows.
async fn only_vrf(base: &str, table: DumpTable, v: Value, vrf: u32) -> anyhow::Result<Value> {
    fn row_vrf(r: &Value) -> Option<u64> {
        r.get("vrf")
            .or_else(|| r.get("key").and_then(|k| k.get("vrf")))
            .and_then(Value::as_u64)
    }
    if !matches!(
        table,
        DumpTable::Routes | DumpTable::Flows | DumpTable::Interfaces
    ) {
        anyhow::bail!(
            "--vrf applies to routes, flows and interfaces, not {}",
            table.path()
        );
    }
    let mut known = std::collections::BTreeSet::new();
    for t in ["interfaces", "routes"] {
        let rows = if t == table.path() {
            v.clone()
        } else {
            fetch(base, t).await?
        };
        known.extend(rows.as_array().into_iter().flatten().filter_map(row_vrf));
    }
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| row_vrf(r) == Some(u64::from(vrf)))
        .cloned()
        .collect();
    if rows.is_empty() && !known.contains(&u64::from(vrf)) {
        let list: Vec<String> = known.iter().map(u64::to_string).collect();
        anyhow::bail!(
            "no VRF {vrf} on this forwarder (VRFs with interfaces or routes: {})",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        );
    }
    Ok(Value::Array(rows))
}

async fn fetch(base: &str, table: &str) -> anyhow::Result<Value> {
    crate::control::get_json(&AGENT, base, &format!("/vrouter/{table}"), &[]).await
}

// ===== table rendering =====

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(x)) => x.clone(),
        Some(x) => x.to_string(),
    }
}

fn n(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// A nexthop's fields but its id and type as `key=value` words; the tunnel's `encap`
/// object flattened (`encap=mpls_over_udp label=17`).
fn nh_details(r: &Value) -> String {
    let mut words = Vec::new();
    let Some(o) = r.as_object() else {
        return r.to_string();
    };
    let word = |k: &str, v: &Value| match v {
        Value::String(x) => format!("{k}={x}"),
        x => format!("{k}={x}"),
    };
    for (k, v) in o {
        match (k.as_str(), v) {
            ("id" | "type", _) => {}
            ("encap", Value::Object(e)) => {
                for (ek, ev) in e {
                    words.push(word(if ek == "type" { "encap" } else { ek }, ev));
                }
            }
            (k, v) => words.push(word(k, v)),
        }
    }
    words.join(" ")
}

/// Text rendering of a dump, one row per entry (columns after TF's tools).
fn render(table: &str, v: &Value) -> String {
    let mut out = String::new();
    let rows = v.as_array().cloned().unwrap_or_default();
    match table {
        "interfaces" => {
            out.push_str("Vrouter Interface Table\n");
            out.push_str(&format!(
                "{:<6} {:<14} {:<9} {:<5} {:<18} {:<16} {:<5} {:<6} {:>10} {:>10} {:>8}\n",
                "vif",
                "OS",
                "Type",
                "Vrf",
                "Mac",
                "IP",
                "Mtu",
                "Policy",
                "RX pkts",
                "TX pkts",
                "Drops"
            ));
            for r in &rows {
                out.push_str(&format!(
                    "{:<6} {:<14} {:<9} {:<5} {:<18} {:<16} {:<5} {:<6} {:>10} {:>10} {:>8}\n",
                    format!("vif0/{}", s(r, "id")),
                    s(r, "name"),
                    s(r, "kind"),
                    s(r, "vrf"),
                    s(r, "mac"),
                    s(r, "ip"),
                    s(r, "mtu"),
                    if r.get("policy").and_then(Value::as_bool) == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                    n(r, &["stats", "rx_packets"]),
                    n(r, &["stats", "tx_packets"]),
                    n(r, &["stats", "drops"]),
                ));
            }
        }
        "nexthops" => {
            out.push_str(&format!("{:<6} {:<8} Details\n", "Id", "Type"));
            for r in &rows {
                out.push_str(&format!(
                    "{:<6} {:<8} {}\n",
                    s(r, "id"),
                    s(r, "type"),
                    nh_details(r)
                ));
            }
        }
        "routes" => {
            out.push_str(&format!("{:<5} {:<44} Nexthop\n", "Vrf", "Destination"));
            for r in &rows {
                let dest = if r.get("prefix").is_some() {
                    s(r, "prefix")
                } else {
                    format!("mac {}", s(r, "mac"))
                };
                out.push_str(&format!("{:<5} {:<44} {}\n", s(r, "vrf"), dest, s(r, "nh")));
            }
        }
        "flows" => {
            out.push_str(&format!(
                "{:<7} {:<5} {:<5} {:<45} {:<7} {:<8} {:<7} {:>8} {:>10}\n",
                "Index",
                "Vrf",
                "Proto",
                "Source:Port -> Destination:Port",
                "State",
                "Action",
                "Rflow",
                "Pkts",
                "Bytes"
            ));
            for r in &rows {
                let k = r.get("key").cloned().unwrap_or_default();
                // `[v6]:port`, so an IPv6 address and its port stay apart.
                let ep = |a: &str, p: &str| {
                    let ip = s(&k, a);
                    if ip.contains(':') {
                        format!("[{ip}]:{}", s(&k, p))
                    } else {
                        format!("{ip}:{}", s(&k, p))
                    }
                };
                let tuple = format!("{} -> {}", ep("src", "sport"), ep("dst", "dport"));
                let action = r
                    .get("action")
                    .and_then(|a| a.get("action"))
                    .and_then(Value::as_str)
                    .unwrap_or("hold")
                    .to_string();
                out.push_str(&format!(
                    "{:<7} {:<5} {:<5} {:<45} {:<7} {:<8} {:<7} {:>8} {:>10}\n",
                    s(r, "index"),
                    s(&k, "vrf"),
                    s(&k, "proto"),
                    tuple,
                    s(r, "state"),
                    action,
                    s(r, "reverse"),
                    n(r, &["packets"]),
                    n(r, &["bytes"]),
                ));
            }
        }
        "dropstats" => {
            let section = |title: &str, m: Option<&Value>, out: &mut String| {
                out.push_str(title);
                out.push('\n');
                if let Some(o) = m.and_then(Value::as_object) {
                    for (k, c) in o {
                        out.push_str(&format!("  {:<28} {:>12}\n", k, c.to_string()));
                    }
                }
            };
            section("Drops", v.get("drops"), &mut out);
            out.push_str(&format!("  {:<28} {:>12}\n", "total", n(v, &["total"])));
            section("Punts to agent", v.get("punts"), &mut out);
            if let Some(ft) = v.get("flow_table") {
                out.push_str(&format!(
                    "Flow table\n  {:<28} {:>12}\n  {:<28} {:>12}\n",
                    "entries",
                    n(ft, &["entries"]),
                    "capacity",
                    n(ft, &["capacity"])
                ));
            }
            if v.get("reassembly").is_some() {
                section("Outer-fragment reassembly", v.get("reassembly"), &mut out);
            }
            if let Some(rings) = v.get("rings").and_then(Value::as_object) {
                out.push_str("Rings (AF_PACKET / AF_XDP)\n");
                for (ifname, r) in rings {
                    out.push_str(&format!(
                        "  {:<14} rx {:>10} tx {:>10} kernel_drops {:>8} ring_full {:>8} truncated {:>6}\n",
                        ifname,
                        n(r, &["rx_frames"]),
                        n(r, &["tx_frames"]),
                        n(r, &["kernel_drops"]),
                        n(r, &["tx_ring_full"]),
                        n(r, &["rx_truncated"]),
                    ));
                }
            }
        }
        "labels" => {
            out.push_str("MPLS Input Label Map\n");
            out.push_str(&format!("{:<8} {:<8} Payload\n", "Label", "NextHop"));
            for r in v
                .get("labels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push_str(&format!(
                    "{:<8} {:<8} {}\n",
                    s(r, "label"),
                    s(r, "nh"),
                    s(r, "payload")
                ));
            }
            out.push_str("VXLAN Table\n");
            out.push_str(&format!("{:<8} Vrf\n", "VNID"));
            for r in v
                .get("vnis")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push_str(&format!("{:<8} {}\n", s(r, "vni"), s(r, "vrf")));
            }
        }
        "neighbors" => {
            out.push_str(&format!(
                "{:<6} {:<40} {:<18} Learned\n",
                "vif", "IP", "Mac"
            ));
            for r in &rows {
                out.push_str(&format!(
                    "{:<6} {:<40} {:<18} {}\n",
                    format!("vif0/{}", s(r, "vif")),
                    s(r, "ip"),
                    s(r, "mac"),
                    if r.get("learned").and_then(Value::as_bool) == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                ));
            }
        }
        _ => {
            out.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dropstats_counters_are_right_aligned() {
        let v =
            json!({"drops": {"no_bridge_entry": 5, "policy": 12345}, "total": 12350, "punts": {}});
        let text = render("dropstats", &v);
        let ends: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(str::len)
            .collect();
        assert_eq!(ends.len(), 3, "{text}");
        assert!(ends.iter().all(|e| *e == ends[0]), "{text}");
    }

    #[test]
    fn labels_and_neighbors_are_tables() {
        let l = render(
            "labels",
            &json!({"labels": [{"label": 16, "nh": 1, "payload": "ip"}], "vnis": [{"vni": 5001, "vrf": 1}]}),
        );
        assert!(
            l.lines()
                .any(|x| x.split_whitespace().eq(["16", "1", "ip"])),
            "{l}"
        );
        assert!(
            l.lines().any(|x| x.split_whitespace().eq(["5001", "1"])),
            "{l}"
        );
        let n = render(
            "neighbors",
            &json!([{"vif": 0, "ip": "192.168.77.2", "mac": "5a:1e:00:00:00:02", "learned": false}]),
        );
        assert!(
            n.lines().any(|x| x.split_whitespace().eq([
                "vif0/0",
                "192.168.77.2",
                "5a:1e:00:00:00:02",
                "no"
            ])),
            "{n}"
        );
    }

    #[test]
    fn nexthop_details_are_words() {
        let t = render(
            "nexthops",
            &json!([{"id": 2, "type": "tunnel", "vif": 0, "src_ip": "192.168.77.1",
                     "encap": {"type": "mpls_over_udp", "label": 17}}]),
        );
        let row = t.lines().nth(1).unwrap_or_default();
        for w in [
            "2",
            "tunnel",
            "vif=0",
            "src_ip=192.168.77.1",
            "encap=mpls_over_udp",
            "label=17",
        ] {
            assert!(row.split_whitespace().any(|x| x == w), "{w} in {row}");
        }
    }

    #[test]
    fn ipv6_flow_endpoints_are_bracketed() {
        let f = render(
            "flows",
            &json!([{"index": 0, "key": {"vrf": 1, "proto": 58, "src": "2001:db8::1", "sport": 7,
                     "dst": "10.0.0.1", "dport": 8}, "state": "active"}]),
        );
        assert!(f.contains("[2001:db8::1]:7 -> 10.0.0.1:8"), "{f}");
    }
}
