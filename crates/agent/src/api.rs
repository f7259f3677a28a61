//! The port API on 9091 in TF's shape (tf-facts §8.2, `port_ipc/rest_server.cc`): `POST /port`,
//! `DELETE /port/<vmi>`, `GET /port/<vmi>`, `GET /ports`, plus `GET /flows`, `GET /status` and
//! the forwarder's `/vrouter/*` introspect routes. A bad request is a 4xx with a message and
//! changes nothing: the body is validated first, the veth (when `vm-namespace` is given) and the
//! vif are created next, and a failure there undoes what was made.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use filament_dataplane::{DumpKind, VifKind};
use filament_dataplane_io::AttachCfg;
use serde_json::{json, Value};

use crate::core::Input;
use crate::port::PortReq;
use crate::shell::Shared;

fn err(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": msg.to_string() }))).into_response()
}

/// The router (mount on 9091).
pub fn router(s: Arc<Shared>) -> Router {
    let dp = filament_dataplane_io::router(s.dp.clone());
    Router::new()
        .route("/port", post(add_port))
        .route("/port/{id}", get(get_port).delete(del_port))
        .route("/ports", get(list_ports))
        .route("/flows", get(flows))
        .route("/status", get(status))
        .with_state(s)
        .merge(dp)
}

/// Run a command; its stderr on failure.
fn run(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Create the veth pair of a port: host end `system-name` up, workload end moved into the
/// netns as `vm-ifname` with the port's MAC, up.
fn make_veth(p: &PortReq, ns: &str) -> Result<(), String> {
    let peer = format!("fv{}", &p.id[..8]);
    run(&[
        "ip",
        "link",
        "add",
        &p.system_name,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
    ])?;
    let rest = (|| {
        run(&["ip", "link", "set", &peer, "netns", ns])?;
        run(&["ip", "-n", ns, "link", "set", &peer, "name", &p.vm_ifname])?;
        run(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            &p.vm_ifname,
            "address",
            &p.mac.to_string(),
        ])?;
        run(&["ip", "-n", ns, "link", "set", &p.vm_ifname, "up"])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        run(&["ip", "link", "set", &p.system_name, "up"])
    })();
    if rest.is_err() {
        let _ = run(&["ip", "link", "del", &p.system_name]);
    }
    rest
}

async fn add_port(State(s): State<Arc<Shared>>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else {
        return err(StatusCode::BAD_REQUEST, "body must be JSON");
    };
    let mut req = match PortReq::parse(&body) {
        Ok(r) => r,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    if s.agent.lock().ports.contains_key(&req.id) {
        return err(StatusCode::CONFLICT, format!("port {} exists", req.id));
    }
    if let Some(ns) = req.netns.clone() {
        let r2 = req.clone();
        let made = tokio::task::spawn_blocking(move || make_veth(&r2, &ns)).await;
        match made {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return err(StatusCode::BAD_REQUEST, e),
            Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    }
    let attach = AttachCfg {
        ifname: req.system_name.clone(),
        id: None,
        kind: VifKind::Workload,
        vrf: None,
        policy: true,
        mac: None,
        ip: req.ip.map(std::net::IpAddr::V4),
    };
    let vif = match s.dp.attach(attach).await {
        Ok(v) => v,
        Err(e) => {
            if req.netns.is_some() {
                let n = req.system_name.clone();
                let _ = tokio::task::spawn_blocking(move || run(&["ip", "link", "del", &n])).await;
            }
            return err(
                StatusCode::BAD_REQUEST,
                format!("cannot attach {}: {e}", req.system_name),
            );
        }
    };
    // the host-side interface's MTU bounds the MTU DHCP offers (and the vif's own limit)
    req.mtu = filament_dataplane_io::sys::if_mtu(&req.system_name)
        .ok()
        .map(|m| u16::try_from(m).unwrap_or(u16::MAX));
    s.input(Input::PortAdd(req.clone(), vif));
    (StatusCode::OK, Json(port_json(&s, &req.id))).into_response()
}

async fn del_port(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = id.to_ascii_lowercase();
    let Some(p) = s.agent.lock().ports.get(&id).cloned() else {
        return err(StatusCode::NOT_FOUND, format!("no port {id}"));
    };
    s.input(Input::PortDelete(id.clone()));
    let _ = s.dp.detach(filament_dataplane::VifId(p.vif)).await;
    if p.req.netns.is_some() {
        let n = p.req.system_name.clone();
        let _ = tokio::task::spawn_blocking(move || run(&["ip", "link", "del", &n])).await;
    }
    (StatusCode::OK, Json(json!({ "deleted": id }))).into_response()
}

fn port_json(s: &Shared, id: &str) -> Value {
    let a = s.agent.lock();
    let Some(p) = a.ports.get(id) else {
        return Value::Null;
    };
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "state".into(),
            json!(if p.programmed.is_some() {
                "active"
            } else {
                "waiting-for-config"
            }),
        );
    }
    v
}

async fn get_port(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match port_json(&s, &id.to_ascii_lowercase()) {
        Value::Null => err(StatusCode::NOT_FOUND, format!("no port {id}")),
        v => Json(v).into_response(),
    }
}

async fn list_ports(State(s): State<Arc<Shared>>) -> Response {
    let ids: Vec<String> = s.agent.lock().ports.keys().cloned().collect();
    Json(Value::Array(ids.iter().map(|i| port_json(&s, i)).collect())).into_response()
}

/// The forwarder's flows with the rule that decided each; decisions of flows the forwarder
/// no longer has (aged out) are forgotten here.
async fn flows(State(s): State<Arc<Shared>>) -> Response {
    let dump = match s.dp.dump(DumpKind::Flows).await {
        Ok(v) => v,
        Err(e) => return err(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let list = dump.as_array().cloned().unwrap_or_default();
    let mut keys = std::collections::HashSet::new();
    let mut out = Vec::new();
    let recs = s.flows.lock().clone();
    for mut f in list {
        let key: Option<filament_dataplane::FlowKey> = f
            .get("key")
            .and_then(|k| serde_json::from_value(k.clone()).ok());
        if let (Some(k), Some(m)) = (key, f.as_object_mut()) {
            keys.insert(k);
            if let Some(r) = recs.get(&k) {
                m.insert("rule".into(), json!(r.rule));
                m.insert("allow".into(), json!(r.allow));
                m.insert("reverse_of_decided".into(), json!(r.reverse));
            }
        }
        out.push(f);
    }
    s.flows.lock().retain(|k, _| keys.contains(k));
    Json(Value::Array(out)).into_response()
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let a = s.agent.lock();
    let chans = a.channel_states();
    let up = chans
        .iter()
        .filter(|c| **c == crate::xmpp::ChanState::Established)
        .count();
    let programmed = a.ports.values().filter(|p| p.programmed.is_some()).count();
    let routes: usize = a.vrfs.values().map(|v| v.routes.len()).sum();
    let v = json!({
        "role": "agent",
        "name": a.cfg().name,
        "state": if up > 0 { "active" } else { "initializing" },
        "reason": if up > 0 { "".to_string() } else { "no control node connection (headless: forwarding state kept)".to_string() },
        "fabric_ip": a.cfg().fabric_ip.to_string(),
        "xmpp": chans.iter().zip(a.channel_stats()).map(|(c, st)| json!({"state": c, "stats": st})).collect::<Vec<_>>(),
        "headless": a.headless(),
        "ports": a.ports.len(),
        "ports_active": programmed,
        "vrfs": a.vrfs.len(),
        "routes_learnt": routes,
        "config_nodes": a.graph.len(),
        "config_errors": a.config_errors,
        "flows": s.flows.lock().len(),
        "counters": *s.counters.lock(),
    });
    drop(a);
    Json(v).into_response()
}
