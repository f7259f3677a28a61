//! `filament status`: one line per role and per host, in the spirit of `contrail-status`
//! (seed 004): state (active / initializing with the reason, or unreachable), XMPP and BGP
//! session states, route and flow counts. It reads each role's `GET /status` (the contract of
//! every role; an older API without it is still shown from `GET /`) plus object counts, and
//! the schema transformer line from whether route targets were allocated (its visible work). URLs come from the demo lab's state file by default, or from flags.

use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};

use crate::demo::read_state;

#[derive(Args)]
pub(crate) struct StatusArgs {
    /// Config API URL (default: the demo lab's, else http://127.0.0.1:8082).
    #[arg(long)]
    api: Option<String>,
    /// Control node introspect URL (default: the demo lab's, else http://127.0.0.1:8083).
    #[arg(long)]
    control: Option<String>,
    /// Agent port-API URL; repeatable (default: the demo lab's agents, else http://127.0.0.1:9091).
    #[arg(long)]
    agent: Vec<String>,
    /// One JSON object with every role's line and raw status.
    #[arg(long)]
    json: bool,
}

/// One row of the table.
struct Row {
    role: &'static str,
    name: String,
    url: String,
    state: String,
    detail: String,
    raw: Value,
}

async fn get(url: &str) -> Option<Value> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// `count` of a collection, via `GET /<coll>?count=true`.
async fn count(api: &str, coll: &str) -> Option<u64> {
    get(&format!("{api}/{coll}?count=true")).await?[coll]["count"].as_u64()
}

/// "active", or "initializing (reason)".
fn state_of(v: &Value) -> String {
    let state = v["state"].as_str().unwrap_or("unknown");
    match v["reason"].as_str().filter(|r| !r.is_empty()) {
        Some(r) if state != "active" => format!("{state} ({r})"),
        _ => state.to_string(),
    }
}

async fn api_row(api: &str) -> Row {
    let mut row = Row {
        role: "api",
        name: String::new(),
        url: api.into(),
        state: String::new(),
        detail: String::new(),
        raw: Value::Null,
    };
    if let Some(v) = get(&format!("{api}/status"))
        .await
        .filter(|v| v["role"].is_string())
    {
        if let Some(other) = wrong_role(&v, "api") {
            row.state = other;
            return row;
        }
        row.state = state_of(&v);
        row.raw = v;
    } else if get(&format!("{api}/")).await.is_some() {
        row.state = "active".into();
    } else {
        row.state = "unreachable".into();
        return row;
    }
    let vns = count(api, "virtual-networks").await;
    let ports = count(api, "virtual-machine-interfaces").await;
    row.detail = format!("virtual-networks {}, ports {}", opt(vns), opt(ports));
    row.raw = json!({"status": row.raw, "virtual_networks": vns, "ports": ports});
    row
}

async fn schema_row(api: &str) -> Row {
    let mut row = Row {
        role: "schema",
        name: String::new(),
        url: api.into(),
        state: String::new(),
        detail: String::new(),
        raw: Value::Null,
    };
    match count(api, "route-targets").await {
        None => row.state = "unknown (config API unreachable)".into(),
        Some(0) => row.state = "initializing (no route target allocated yet)".into(),
        Some(n) => {
            row.state = "active".into();
            row.detail = format!("route-targets {n}");
        }
    }
    let ris = count(api, "routing-instances").await;
    if let Some(n) = ris {
        row.detail = format!(
            "{}{}routing-instances {n}",
            row.detail,
            if row.detail.is_empty() { "" } else { ", " }
        );
    }
    row
}

async fn control_row(ctl: &str) -> Row {
    let mut row = Row {
        role: "control",
        name: String::new(),
        url: ctl.into(),
        state: String::new(),
        detail: String::new(),
        raw: Value::Null,
    };
    let Some(v) = get(&format!("{ctl}/status")).await else {
        row.state = "unreachable".into();
        return row;
    };
    if let Some(other) = wrong_role(&v, "control") {
        row.state = other;
        return row;
    }
    row.state = state_of(&v);
    row.name = v["name"].as_str().unwrap_or_default().into();
    let n = get(&format!("{ctl}/neighbors"))
        .await
        .unwrap_or(Value::Null);
    // Every row carries TF's `encoding` (XMPP or BGP).
    let is_bgp = |p: &Value| p["encoding"] == "BGP";
    let peers = |bgp: bool| -> (usize, usize, String) {
        let rows: Vec<&Value> = n["neighbors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| is_bgp(p) == bgp)
            .collect();
        let up = rows.iter().filter(|p| p["state"] == "Established").count();
        let list: Vec<String> = rows
            .iter()
            .map(|p| {
                let name = p["name"].as_str().or(p["peer"].as_str()).unwrap_or("?");
                format!("{name}={}", p["state"].as_str().unwrap_or("?"))
            })
            .collect();
        (up, rows.len(), list.join(" "))
    };
    let (xmpp_peers, bgp_peers) = (peers(false), peers(true));
    row.detail = format!(
        "xmpp {}/{} established [{}], bgp {}/{} established [{}], routes {} prefixes / {} paths in {} tables",
        opt(v["xmpp"]["established"].as_u64()),
        opt(v["xmpp"]["sessions"].as_u64()),
        xmpp_peers.2,
        bgp_peers.0,
        bgp_peers.1,
        bgp_peers.2,
        opt(v["routes"]["prefixes"].as_u64()),
        opt(v["routes"]["paths"].as_u64()),
        opt(v["routes"]["tables"].as_u64()),
    );
    row.raw = json!({"status": v, "neighbors": n});
    row
}

async fn agent_row(url: &str) -> Row {
    let mut row = Row {
        role: "agent",
        name: String::new(),
        url: url.into(),
        state: String::new(),
        detail: String::new(),
        raw: Value::Null,
    };
    let Some(v) = get(&format!("{url}/status")).await else {
        row.state = "unreachable".into();
        return row;
    };
    if let Some(other) = wrong_role(&v, "agent") {
        row.state = other;
        return row;
    }
    row.state = state_of(&v);
    row.name = v["name"].as_str().unwrap_or_default().into();
    let xmpp: Vec<String> = v["xmpp"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c["state"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c["state"].to_string())
        })
        .collect();
    row.detail = format!(
        "xmpp [{}]{}, ports {}/{} active, vrfs {}, routes {}, flows {}",
        xmpp.join(" "),
        if v["headless"] == true {
            " headless"
        } else {
            ""
        },
        opt(v["ports_active"].as_u64()),
        opt(v["ports"].as_u64()),
        opt(v["vrfs"].as_u64()),
        opt(v["routes_learnt"].as_u64()),
        opt(v["flows"].as_u64()),
    );
    row.raw = v;
    row
}

/// `Some("unreachable (...)")` when a URL answers `/status` as another role (a flag given
/// another role's port), so the row does not pass it off as this role.
fn wrong_role(v: &Value, want: &str) -> Option<String> {
    match v["role"].as_str() {
        Some(r) if r != want => Some(format!(
            "unreachable (this URL is the {r}'s, not the {want}'s: check the flag's port)"
        )),
        _ => None,
    }
}

/// Whether a row's role answered at all.
fn answered(r: &Row) -> bool {
    !(r.state.starts_with("unreachable") || r.state.starts_with("unknown"))
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |n| n.to_string())
}

pub(crate) async fn run(a: StatusArgs) -> anyhow::Result<()> {
    let lab = read_state().ok();
    let from_lab = |ptr: &str| {
        lab.as_ref()
            .and_then(|s| s.pointer(ptr))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let api = a
        .api
        .or_else(|| from_lab("/controller/api_url"))
        .unwrap_or_else(|| "http://127.0.0.1:8082".into());
    let ctl = a
        .control
        .or_else(|| from_lab("/controller/control_url"))
        .unwrap_or_else(|| "http://127.0.0.1:8083".into());
    let mut agents = a.agent;
    if agents.is_empty() {
        agents = lab
            .as_ref()
            .and_then(|s| s["hosts"].as_array())
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| h["agent_url"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
    }
    if agents.is_empty() {
        agents.push("http://127.0.0.1:9091".into());
    }
    let (api, ctl) = (
        crate::control::base_url(&api),
        crate::control::base_url(&ctl),
    );
    let mut rows = vec![
        api_row(&api).await,
        schema_row(&api).await,
        control_row(&ctl).await,
    ];
    for u in &agents {
        rows.push(agent_row(&crate::control::base_url(u)).await);
    }
    if a.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| json!({"role": r.role, "name": r.name, "url": r.url, "state": r.state, "detail": r.detail, "status": r.raw}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"roles": v}))?);
    } else {
        println!(
            "{:<8} {:<10} {:<26} {:<14} DETAIL",
            "ROLE", "NAME", "URL", "STATE"
        );
        for r in &rows {
            let (state, reason) = match r.state.split_once(" (") {
                Some((s, rest)) => (s.to_string(), format!("({rest} ")),
                None => (r.state.clone(), String::new()),
            };
            println!(
                "{:<8} {:<10} {:<26} {:<14} {reason}{}",
                r.role, r.name, r.url, state, r.detail
            );
        }
    }
    if !rows.iter().any(answered) {
        bail!("no role answered (is `filament up` running? give --api, --control, --agent URLs)");
    }
    Ok(())
}
