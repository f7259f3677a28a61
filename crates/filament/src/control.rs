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
    /// XMPP server for vRouter agents (`IP:PORT`, or an IP for port 5269).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:5269", value_parser = listen_parser(5269))]
    pub(crate) xmpp_listen: SocketAddr,
    /// BGP speaker's listen address (`IP:PORT`, or an IP for port 179); peers come from
    /// bgp-router objects and their refs. Inside `filament up` BGP runs only when
    /// `--bgp-address` is given.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:179", value_parser = listen_parser(179))]
    pub(crate) bgp_listen: SocketAddr,
    /// Introspect HTTP/JSON server for `filament route|neighbors|status` (`/status`,
    /// `/routes`, `/routes/summary`, `/neighbors`; `IP:PORT`, or an IP for port 8083).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8083", value_parser = listen_parser(8083))]
    pub(crate) introspect: SocketAddr,
    /// Control node name (default: hostname); also its bgp-router name
    /// (`default-domain:default-project:ip-fabric:__default__:<name>`).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Address put in this node's bgp-router object (registered on start if missing), the
    /// one external routers peer with (default for `filament control`: the --bgp-listen IP,
    /// 127.0.0.1 when that is 0.0.0.0). In `filament up`, giving it also starts BGP.
    #[arg(long, value_name = "IP")]
    pub(crate) bgp_address: Option<String>,
    /// XMPP hold time in seconds for agent sessions (TF: 90, configurable 1-90); a keepalive
    /// is sent every hold/3.  global-system-config `fast_convergence_parameters`
    /// (`enable` + `xmpp_hold_time`) overrides it, as in TF.
    #[arg(long = "xmpp-hold", visible_alias = "hold-time", value_name = "SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=90))]
    pub(crate) hold_time: u64,
    /// XMPP over TLS, as TF's `xmpp_auth_enable`: this node's certificate (PEM, chain
    /// allowed; TF `xmpp_server_cert`).  Every agent must then STARTTLS right after its
    /// stream header; one that does not is refused (`filament neighbors` says why).
    #[arg(long, value_name = "FILE", requires = "xmpp_tls_key")]
    pub(crate) xmpp_tls_cert: Option<std::path::PathBuf>,
    /// Private key of --xmpp-tls-cert (PEM; TF `xmpp_server_key`).
    #[arg(long, value_name = "FILE", requires = "xmpp_tls_cert")]
    pub(crate) xmpp_tls_key: Option<std::path::PathBuf>,
    /// CA certificate(s) (PEM; TF `xmpp_ca_cert`): agents must present a certificate that
    /// chains to one of them.  Without it no client certificate is asked for.
    #[arg(long, value_name = "FILE", requires = "xmpp_tls_cert")]
    pub(crate) xmpp_tls_ca: Option<std::path::PathBuf>,
}

/// A listen address: `IP:PORT`, `[IPv6]:PORT`, or a bare IP on `port`.
fn listen_parser(port: u16) -> impl Fn(&str) -> Result<SocketAddr, String> + Clone {
    move |s: &str| {
        let s = s.trim();
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(a);
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| format!("expected IP:PORT or an IP (port {port}), e.g. 0.0.0.0:{port}"))
    }
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
    /// Routes of one table or of all tables, with their paths (`ist.py ctr route show`).
    Show {
        /// Only this table, by its TF name: `<routing-instance fq name>.inet.0` (also
        /// `.inet6.0`, `.evpn.0`), `bgp.l3vpn.0`, `bgp.l3vpn-inet6.0`, `bgp.evpn.0` or
        /// `bgp.rtarget.0` (`filament route summary` lists them all, empty ones included).
        #[arg(long, short = 't', value_name = "TABLE", value_parser = parse_table)]
        table: Option<String>,
        /// Only this destination: a prefix (`10.1.1.0/24`, `2001:db8::/64`), matched in
        /// every table, VPN tables included (whatever the RD); an address (`10.1.1.3`):
        /// every route that covers it, as `ist.py ctr route show ADDRESS` (its host route
        /// with TF's `shorter_match`); an EVPN MAC; or a full route key as `route show`
        /// prints it (`65001:7:10.200.1.0/24`).
        #[arg(value_name = "PREFIX", value_parser = parse_prefix)]
        prefix: Option<String>,
        /// With a PREFIX: also every more specific route inside it (TF's `longer_match`).
        #[arg(
            long,
            short = 'l',
            requires = "prefix",
            conflicts_with = "shorter_match"
        )]
        longer_match: bool,
        /// With a PREFIX: also every less specific route that covers it (TF's
        /// `shorter_match`; what an address asks for).
        #[arg(long, short = 's', requires = "prefix")]
        shorter_match: bool,
        /// Control node introspect URL (`host:port` is enough).
        #[arg(long, value_name = "URL", default_value = DEFAULT_INTROSPECT)]
        control: String,
        /// Print the introspect's JSON instead of the text view.
        #[arg(long)]
        json: bool,
    },
    /// One line per table: prefixes and paths (`ist.py ctr route summary`).
    Summary {
        /// Control node introspect URL (`host:port` is enough).
        #[arg(long, value_name = "URL", default_value = DEFAULT_INTROSPECT)]
        control: String,
        /// Print the introspect's JSON instead of the text view.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(crate) struct NeighborsArgs {
    /// Control node introspect URL (`host:port` is enough).
    #[arg(long, value_name = "URL", default_value = DEFAULT_INTROSPECT)]
    control: String,
    /// Print the introspect's JSON instead of the text view.
    #[arg(long)]
    json: bool,
}

const DEFAULT_INTROSPECT: &str = "http://127.0.0.1:8083";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "control".to_string())
}

/// Shell settings from the flags; `register` decides whether a default bgp-router address
/// is used when `--bgp-address` is absent.  Fails on unusable TLS files.
pub(crate) fn shell_config(
    api: String,
    l: &ControlListen,
    register: bool,
) -> anyhow::Result<ShellConfig> {
    let xmpp_tls = match (&l.xmpp_tls_cert, &l.xmpp_tls_key) {
        (Some(cert), Some(key)) => Some(
            filament_control::tls::server_config(cert, key, l.xmpp_tls_ca.as_deref())
                .context("XMPP TLS")?,
        ),
        _ => None,
    };
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
    Ok(ShellConfig {
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
        xmpp_tls,
    })
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
        xmpp_tls = cfg.xmpp_tls.is_some(),
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
    let cfg = shell_config(a.api, &a.listen, true)?;
    // The speaker binds in its own task and would only log a refused port: fail before
    // starting anything (as for the XMPP and introspect ports) while nothing holds it.
    drop(
        std::net::TcpListener::bind(a.listen.bgp_listen)
            .with_context(|| format!("BGP: cannot listen on {}", a.listen.bgp_listen))?,
    );
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

// ===== operator commands: HTTP to a role, input checks, text views =====

/// Who an operator command talks to, for its error messages.
pub(crate) struct Target {
    /// The flag that sets the URL (`--control`).
    pub(crate) flag: &'static str,
    /// What answers there ("the control node").
    pub(crate) what: &'static str,
    /// What to check when nothing answers.
    pub(crate) hint: &'static str,
}

/// The control node's introspect (8083).
pub(crate) const CONTROL: Target = Target {
    flag: "--control",
    what: "the control node introspect",
    hint: "is `filament up` or `filament control` running? its introspect listens on port 8083",
};

/// `http://` in front of a bare `host:port`, no trailing slash.
pub(crate) fn base_url(u: &str) -> String {
    let u = u.trim().trim_end_matches('/');
    if u.contains("://") {
        u.to_string()
    } else {
        format!("http://{u}")
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `GET base+path?query` as JSON, with one-line errors that say what to check.
pub(crate) async fn get_json(
    t: &Target,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let base = base_url(base);
    let url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| anyhow::anyhow!("{} {base:?} is not a valid URL ({e})", t.flag))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .context("HTTP client")?;
    let resp = match client.get(url).query(query).send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => anyhow::bail!(
            "cannot reach {} at {base}: {} ({}; or give {} URL)",
            t.what,
            root_cause(&e),
            t.hint,
            t.flag
        ),
        Err(e) if e.is_timeout() => {
            anyhow::bail!("{} at {base} did not answer in time ({})", t.what, t.hint)
        }
        Err(e) => anyhow::bail!(
            "{base} did not answer GET {path} like {} ({}: is {} the right URL?)",
            t.what,
            root_cause(&e),
            t.flag
        ),
    };
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("{base}: reading the answer to GET {path}"))?;
    if !status.is_success() {
        anyhow::bail!(
            "{base} is not {} (GET {path} answered {status}; {})",
            t.what,
            t.hint
        );
    }
    serde_json::from_slice(&body).map_err(|_| {
        anyhow::anyhow!(
            "{base} is not {} (GET {path} answered something that is not JSON; {})",
            t.what,
            t.hint
        )
    })
}

/// The tables a `--table` may name, as TF names them (rib.rs `Family`, `RTARGET_TABLE`).
const GLOBAL_TABLES: [&str; 4] = [
    "bgp.l3vpn.0",
    "bgp.l3vpn-inet6.0",
    "bgp.evpn.0",
    filament_control::rib::RTARGET_TABLE,
];

/// `--table`: a global table or `<instance>.<family>.0`.
fn parse_table(t: &str) -> Result<String, String> {
    let t = t.trim();
    if GLOBAL_TABLES.contains(&t) {
        return Ok(t.to_string());
    }
    for f in filament_control::rib::Family::ALL {
        if let Some(ri) = t.strip_suffix(&format!(".{}", f.vrf_suffix())) {
            if !ri.is_empty() && !ri.starts_with("bgp") {
                return Ok(t.to_string());
            }
        }
    }
    Err(format!(
        "not a table name: expected <routing-instance fq name>.inet.0 (or .inet6.0, .evpn.0), \
         e.g. default-domain:demo:vn1:vn1.inet.0, or one of {}",
        GLOBAL_TABLES.join(", ")
    ))
}

/// The PREFIX argument: an address stays one (`route show` asks for its covering
/// routes); a prefix must be a valid one;
/// anything with a `:` that is not an IPv6 prefix is taken as a route key (RD:prefix, EVPN,
/// route target), its trailing IPv4 prefix checked when it has one.
fn parse_prefix(p: &str) -> Result<String, String> {
    use std::net::IpAddr;
    let p = p.trim();
    let bad = |why: &str| {
        Err(format!(
            "malformed prefix {p:?}: {why}; expected an address or prefix (10.1.1.3, \
             10.1.1.0/24, 2001:db8::/64) or a route key as `route show` prints it"
        ))
    };
    let check = |addr: &str, len: &str| -> Option<Result<(), String>> {
        let a: IpAddr = addr.parse().ok()?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        Some(match len.parse::<u8>() {
            Ok(l) if l <= max => Ok(()),
            _ => Err(format!("prefix length {len:?} is not 0..={max}")),
        })
    };
    if let Ok(a) = p.parse::<IpAddr>() {
        return Ok(a.to_string());
    }
    if let Some((addr, len)) = p.rsplit_once('/') {
        if let Some(r) = check(addr, len) {
            return r.map(|()| p.to_string()).or_else(|e| bad(&e));
        }
        // A route key ending in an IPv4 prefix: `rd:10.1.1.0/24`, `rd:mac,10.1.1.3/32`.
        let tail = addr.rsplit([':', ',']).next().unwrap_or(addr);
        if tail.contains('.') {
            return match check(tail, len) {
                Some(Ok(())) => Ok(p.to_string()),
                Some(Err(e)) => bad(&e),
                None => bad(&format!("{tail:?} is not an IPv4 address")),
            };
        }
    }
    if p.contains(':') {
        return Ok(p.to_string());
    }
    bad("not an address")
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The table names the node has now (the introspect's summary), and those holding routes.
async fn table_names(control: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let v = get_json(&CONTROL, control, "/routes/summary", &[]).await?;
    let rows: Vec<&Value> = v["tables"].as_array().into_iter().flatten().collect();
    let names = |full: bool| {
        rows.iter()
            .filter(|t| !full || t["prefixes"].as_u64().is_some_and(|n| n > 0))
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect()
    };
    Ok((names(false), names(true)))
}

pub(crate) async fn route(c: RouteCmd) -> anyhow::Result<()> {
    match c {
        RouteCmd::Show {
            table,
            prefix,
            longer_match,
            shorter_match,
            control,
            json,
        } => {
            let mut q = Vec::new();
            if let Some(t) = &table {
                q.push(("table", t.clone()));
            }
            // The introspect keeps whole destinations (a prefix, or an EVPN key's IP or
            // MAC); an address is its host route with shorter_match, as ist.py asks.
            let address = prefix
                .as_deref()
                .and_then(|p| p.parse::<std::net::IpAddr>().ok());
            let prefix = match address {
                Some(a) => Some(format!("{a}/{}", if a.is_ipv4() { 32 } else { 128 })),
                None => prefix,
            };
            if let Some(p) = &prefix {
                q.push(("prefix", p.clone()));
            }
            if longer_match {
                q.push(("longer_match", "1".into()));
            } else if shorter_match || address.is_some() {
                q.push(("shorter_match", "1".into()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let v = get_json(&CONTROL, &control, "/routes", &q).await?;
            anyhow::ensure!(
                v["tables"].is_array(),
                "{} is not the control node introspect (GET /routes has no tables)",
                base_url(&control)
            );
            let empty = v["tables"].as_array().is_none_or(|t| t.is_empty());
            if empty {
                if let Some(t) = &table {
                    let (names, full) = table_names(&control).await?;
                    if !names.contains(t) {
                        anyhow::bail!(
                            "no table {t:?} on this control node (a routing instance has \
                             its tables once it is configured: `filament route summary` \
                             lists all {}; holding routes: {})",
                            names.len(),
                            if full.is_empty() {
                                "none".into()
                            } else {
                                full.join(", ")
                            }
                        );
                    }
                }
                if let Some(p) = &prefix {
                    anyhow::bail!(
                        "no route for {p} in {}",
                        table.as_deref().unwrap_or("any table")
                    );
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", render_routes(&v));
            }
            Ok(())
        }
        RouteCmd::Summary { control, json } => {
            let v = get_json(&CONTROL, &control, "/routes/summary", &[]).await?;
            anyhow::ensure!(
                v["tables"].is_array(),
                "{} is not the control node introspect (GET /routes/summary has no tables)",
                base_url(&control)
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", render_summary(&v));
            }
            Ok(())
        }
    }
}

/// `route show` as text, after `ist.py ctr route show`.
fn render_routes(v: &Value) -> String {
    let mut out = String::new();
    for t in v["tables"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n{}: {} destinations, {} routes ({} primary, {} secondary, {} infeasible)\n",
            s(&t["table"]),
            s(&t["destinations"]),
            s(&t["paths"]),
            s(&t["primary_paths"]),
            s(&t["secondary_paths"]),
            s(&t["infeasible_paths"])
        ));
        for r in t["routes"].as_array().into_iter().flatten() {
            out.push_str(&format!("\n{}\n", s(&r["prefix"])));
            for p in r["paths"].as_array().into_iter().flatten() {
                let encap: Vec<String> = p["encap"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| format!("'{}'", s(e)))
                    .collect();
                out.push_str(&format!(
                    "    [{}|{}] localpref: {}, med: {}, nh: {}, encap: [{}], label: {}, rd: {}, origin_vn: {}{}{}{}\n",
                    s(&p["protocol"]),
                    s(&p["source"]),
                    s(&p["local_pref"]),
                    s(&p["med"]),
                    s(&p["next_hop"]),
                    encap.join(", "),
                    s(&p["label"]),
                    s(&p["rd"]),
                    s(&p["origin_vn"]),
                    if p["best"] == true { ", best" } else { "" },
                    match (&p["stale"], &p["llgr_stale"]) {
                        (_, Value::Bool(true)) => ", llgr-stale",
                        (Value::Bool(true), _) => ", stale",
                        _ => "",
                    },
                    match &p["primary_table"] {
                        Value::String(t) => format!(", primary: {t}"),
                        _ => String::new(),
                    }
                ));
            }
        }
    }
    out
}

/// `route summary` as text: one aligned row per table.
fn render_summary(v: &Value) -> String {
    let cols = [
        "prefixes",
        "paths",
        "primary_paths",
        "secondary_paths",
        "infeasible_paths",
    ];
    let rows: Vec<&Value> = v["tables"].as_array().into_iter().flatten().collect();
    let w = rows
        .iter()
        .map(|r| s(&r["name"]).len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!("{:w$}", "name");
    for c in cols {
        out.push_str(&format!("  {c:>}"));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!("{:w$}", s(&r["name"])));
        for c in cols {
            out.push_str(&format!("  {:>width$}", s(&r[c]), width = c.len()));
        }
        out.push('\n');
    }
    out
}

/// One neighbour row in TF's columns, from an XMPP row (TF's names already) or a BGP row
/// of the speaker (`peer` address, `name`, `asn`, `flaps`, `received`, `sent`, `last_error`).
fn neighbor_row(n: &Value) -> Vec<String> {
    // Rows carry TF's names (`bgp_peers::peer_summaries` adds them to BGP rows); a BGP row
    // also has the peer's `name` (its `peer` is the address) and received/sent counts.
    let name = if n["name"].is_string() {
        &n["name"]
    } else {
        &n["peer"]
    };
    let prefixes = match (&n["received"], &n["sent"]) {
        (Value::Null, Value::Null) => s(&n["prefixes"]),
        (r, t) => format!("{}/{}", s(r), s(t)),
    };
    let mut row: Vec<String> = [
        name,
        &n["peer_address"],
        &n["peer_asn"],
        &n["encoding"],
        &n["peer_type"],
        &n["state"],
        &n["send_state"],
        &n["flap_count"],
        &n["flap_time"],
    ]
    .into_iter()
    .map(s)
    .collect();
    row.push(prefixes);
    row.push(s(&n["auth_type"]));
    row.push(s(&n["last_reason"]));
    row
}

/// `neighbors` as text: aligned columns, TF's names; `prefixes` is received/sent for BGP
/// peers and published for XMPP ones.
fn render_neighbors(v: &Value) -> String {
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
        "prefixes",
        "auth_type",
        "last_error",
    ];
    let rows: Vec<Vec<String>> = v["neighbors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(neighbor_row)
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
    let line = |cells: &[String]| {
        let l = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        format!("{}\n", l.trim_end())
    };
    let mut out = line(&cols.map(str::to_string));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

pub(crate) async fn neighbors(a: NeighborsArgs) -> anyhow::Result<()> {
    let v = get_json(&CONTROL, &a.control, "/neighbors", &[]).await?;
    anyhow::ensure!(
        v["neighbors"].is_array(),
        "{} is not the control node introspect (GET /neighbors has no neighbors)",
        base_url(&a.control)
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_neighbors(&v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_names_as_tf_names_them() {
        for ok in [
            "bgp.l3vpn.0",
            "bgp.rtarget.0",
            "bgp.evpn.0",
            "default-domain:p:vn:vn.inet.0",
            "default-domain:p:vn:vn.evpn.0",
        ] {
            assert_eq!(parse_table(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "inet.0",
            "vn1",
            "bgp.l3vpn",
            "bgp.inet.0",
            ".inet.0",
            "x.inet.1",
        ] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_are_checked_and_addresses_stay_addresses() {
        assert_eq!(parse_prefix("10.1.1.3").unwrap(), "10.1.1.3");
        assert_eq!(parse_prefix("2001:db8::1").unwrap(), "2001:db8::1");
        assert_eq!(parse_prefix("10.1.1.0/24").unwrap(), "10.1.1.0/24");
        assert_eq!(
            parse_prefix("65001:7:10.1.1.0/24").unwrap(),
            "65001:7:10.1.1.0/24"
        );
        assert_eq!(parse_prefix("2001:db8::/64").unwrap(), "2001:db8::/64");
        for bad in [
            "10.1.1.0/40",
            "10.300.0.0/24",
            "garbage",
            "10.1.1",
            "2001:db8::/129",
            "65001:7:10.1.1.0/33",
            "",
        ] {
            let e = parse_prefix(bad).unwrap_err();
            assert!(e.starts_with("malformed prefix"), "{bad}: {e}");
        }
    }

    #[test]
    fn bgp_and_xmpp_neighbours_fill_the_same_columns() {
        let v = json!({"neighbors": [
            {"peer": "vr1", "peer_address": "10.0.0.1", "peer_asn": 64512, "encoding": "XMPP",
             "peer_type": "internal", "state": "Established", "send_state": "in sync",
             "flap_count": 0, "flap_time": null, "prefixes": 3},
            {"peer": "10.77.0.2", "name": "frr", "type": "bgp", "asn": 65001,
             "state": "Established", "flaps": 1, "received": 2, "sent": 1, "last_error": null,
             "peer_address": "10.77.0.2", "peer_asn": 65001, "encoding": "BGP",
             "peer_type": "external", "flap_count": 1, "last_reason": null, "prefixes": 2,
             "auth_type": "MD5"}]});
        let text = render_neighbors(&v);
        let lines: Vec<&str> = text.lines().collect();
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(&cells[..4], ["frr", "10.77.0.2", "65001", "BGP"]);
        assert!(cells.contains(&"2/1"), "{text}");
        // TF's auth_type beside the prefixes (MD5 / NIL; never the key)
        let at = lines[0].find("auth_type").expect("auth_type column");
        assert_eq!(lines[2].get(at..at + 3), Some("MD5"), "{text}");
        assert!(
            lines[1].contains("XMPP") && lines[1].contains(" 3"),
            "{text}"
        );
    }

    #[test]
    fn summary_columns_line_up() {
        let v = json!({"tables": [{"name": "bgp.l3vpn.0", "prefixes": 2, "paths": 12,
                                    "primary_paths": 1, "secondary_paths": 1, "infeasible_paths": 0}]});
        let text = render_summary(&v);
        let l: Vec<&str> = text.lines().collect();
        assert_eq!(l[0].len(), l[1].len(), "{text}");
        assert_eq!(
            l[1].split_whitespace().collect::<Vec<_>>(),
            ["bgp.l3vpn.0", "2", "12", "1", "1", "0"]
        );
    }

    #[test]
    fn listen_addresses_take_a_bare_ip() {
        let p = listen_parser(179);
        assert_eq!(p("10.0.0.1").unwrap(), "10.0.0.1:179".parse().unwrap());
        assert_eq!(
            p("10.0.0.1:1179").unwrap(),
            "10.0.0.1:1179".parse().unwrap()
        );
        assert_eq!(p("::1").unwrap(), "[::1]:179".parse().unwrap());
        assert!(p("10.0.0.1:99999").is_err() && p("host").is_err());
    }

    #[test]
    fn bare_host_port_gets_a_scheme() {
        assert_eq!(base_url("10.0.0.1:8083/"), "http://10.0.0.1:8083");
        assert_eq!(base_url("https://x:1"), "https://x:1");
    }
}
