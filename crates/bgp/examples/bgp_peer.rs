//! A standalone speaker for interop tests against FRR, GoBGP and BIRD.
//!
//! ```text
//! bgp_peer --asn 64512 --router-id 10.0.0.1 --listen 10.0.0.1:179 \
//!          --peer 10.0.0.2,65001[,port=179][,passive][,rr-client][,local=IP][,families=inet-vpn+e-vpn] \
//!          [--cluster-id 1.1.1.1] [--hold-time 90] [--connect-retry 5] [--rtc-wait 30]
//!          [--routes routes.json]
//! ```
//!
//! `--routes` is a JSON array of paths (see `filament_bgp::json`) announced
//! at start. Each stdin line is a command: `{"op":"advertise", <path>}` or
//! `{"op":"withdraw", <key>}`; `{"op":"peers"}` prints peer status. Every
//! event is printed on stdout as one JSON line:
//! `{"event":"state","peer":..,"state":"Established"}`,
//! `{"event":"learned","peer":..,"path":{..}}`,
//! `{"event":"withdrawn","peer":..,"key":{..}}`,
//! `{"event":"eor","peer":..,"family":..,"learned":N,"elapsed_ms":..,"rss_kb":..}`.
//! `--quiet` counts learned paths instead of printing them (benchmarks).
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use filament_bgp::json::{key_from_json, key_to_json, path_from_json, path_to_json};
use filament_bgp::{Event, Family, Path, PeerConfig, Speaker, SpeakerConfig};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("bad or missing argument {0}")]
    Bad(String),
}

fn bad(s: &str) -> ArgError {
    ArgError::Bad(s.to_string())
}

fn parse_peer(s: &str) -> Result<PeerConfig, ArgError> {
    let mut it = s.split(',');
    let addr: IpAddr = it
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad(s))?;
    let asn: u32 = it
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad(s))?;
    let mut p = PeerConfig::new(addr, asn);
    for opt in it {
        match opt.split_once('=') {
            Some(("port", v)) => p.port = v.parse().map_err(|_| bad(opt))?,
            Some(("local", v)) => p.local_addr = Some(v.parse().map_err(|_| bad(opt))?),
            Some(("hold", v)) => p.hold_time = Some(v.parse().map_err(|_| bad(opt))?),
            Some(("families", v)) => {
                p.families = v
                    .split('+')
                    .map(|f| Family::from_name(f).ok_or_else(|| bad(f)))
                    .collect::<Result<_, _>>()?
            }
            None if opt == "passive" => p.passive = true,
            None if opt == "rr-client" => p.rr_client = true,
            _ => return Err(bad(opt)),
        }
    }
    Ok(p)
}

fn print(v: Value) {
    println!("{v}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut asn = None;
    let mut router_id = None;
    let mut listen: Option<SocketAddr> = None;
    let mut peers = Vec::new();
    let mut routes = None;
    let mut cluster = None;
    let mut hold = 90;
    let mut retry = 5;
    let mut rtc_wait = 30;
    let mut quiet = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--quiet" {
            quiet = true;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).cloned().ok_or_else(|| bad(&args[i]))?;
        match args[i].as_str() {
            "--asn" => asn = Some(v.parse().map_err(|_| bad("--asn"))?),
            "--router-id" => router_id = Some(v.parse().map_err(|_| bad("--router-id"))?),
            "--listen" => listen = Some(v.parse().map_err(|_| bad("--listen"))?),
            "--peer" => peers.push(parse_peer(&v)?),
            "--routes" => routes = Some(v),
            "--cluster-id" => cluster = Some(v.parse().map_err(|_| bad("--cluster-id"))?),
            "--hold-time" => hold = v.parse().map_err(|_| bad("--hold-time"))?,
            "--connect-retry" => retry = v.parse().map_err(|_| bad("--connect-retry"))?,
            "--rtc-wait" => rtc_wait = v.parse().map_err(|_| bad("--rtc-wait"))?,
            other => return Err(bad(other).into()),
        }
        i += 2;
    }
    let mut cfg = SpeakerConfig::new(
        asn.ok_or_else(|| bad("--asn"))?,
        router_id.ok_or_else(|| bad("--router-id"))?,
    );
    cfg.cluster_id = cluster;
    cfg.hold_time = hold;
    cfg.connect_retry = Duration::from_secs(retry);
    cfg.rtc_eor_wait = Duration::from_secs(rtc_wait);
    let (speaker, mut events) = Speaker::start(cfg, listen).await?;
    if let Some(file) = routes {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        for r in v.as_array().ok_or_else(|| bad("--routes"))? {
            speaker.advertise(path_from_json(r)?)?;
        }
    }
    for p in peers {
        speaker.add_peer(p)?;
    }
    print(json!({"event": "ready", "listen": speaker.local_addr().map(|a| a.to_string())}));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let start = std::time::Instant::now();
    let mut learned = 0u64;
    let mut last_ms = 0u64;
    loop {
        tokio::select! {
            batch = events.recv() => {
                let Some(batch) = batch else { break };
                for ev in batch {
                    match ev {
                        Event::PeerState { peer, state } => print(json!({
                            "event": "state", "peer": peer.to_string(), "state": state.name(),
                            "elapsed_ms": start.elapsed().as_millis() as u64})),
                        Event::Learned { .. } if quiet => {
                            learned += 1;
                            last_ms = start.elapsed().as_millis() as u64;
                        }
                        Event::LearnedMany { routes, .. } if quiet => {
                            learned += routes.len() as u64;
                            last_ms = start.elapsed().as_millis() as u64;
                        }
                        Event::LearnedMany { peer, attrs, routes } => {
                            for (key, labels) in routes {
                                let path = Path { key, labels, attrs: attrs.clone() };
                                print(json!({"event": "learned", "peer": peer.to_string(),
                                    "path": path_to_json(&path)}));
                            }
                        }
                        Event::Withdrawn { .. } if quiet => {}
                        Event::Learned { peer, path } => print(json!({
                            "event": "learned", "peer": peer.to_string(),
                            "path": path_to_json(&path)})),
                        Event::Withdrawn { peer, key } => print(json!({
                            "event": "withdrawn", "peer": peer.to_string(),
                            "key": key_to_json(&key)})),
                        Event::EndOfRib { peer, family } => print(json!({
                            "event": "eor", "peer": peer.to_string(), "family": family.name(),
                            "learned": learned, "elapsed_ms": start.elapsed().as_millis() as u64,
                            "last_learned_ms": last_ms,
                            "rss_kb": status_kb("VmRSS:"), "hwm_kb": status_kb("VmHWM:"),
                            "cpu_ms": cpu_ms()})),
                    }
                }
            }
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(l)) if !l.trim().is_empty() => {
                    let res = command(&speaker, &l).await;
                    if let Err(e) = res {
                        print(json!({"event": "error", "error": e.to_string()}));
                    }
                }
                Ok(Some(_)) => {}
                _ => stdin_open = false,
            },
        }
    }
    Ok(())
}

/// A size field of /proc/self/status (VmRSS, VmHWM) in kB, for benchmarks.
fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) of this process so far in ms (Linux, 100 Hz
/// ticks), for benchmarks on a shared machine.
fn cpu_ms() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (u, k): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + k) * 10)
}

async fn command(speaker: &Speaker, line: &str) -> Result<(), Box<dyn std::error::Error>> {
    let v: Value = serde_json::from_str(line)?;
    match v.get("op").and_then(Value::as_str) {
        Some("advertise") => speaker.advertise(path_from_json(&v)?)?,
        Some("withdraw") => speaker.withdraw(key_from_json(&v)?)?,
        Some("peers") => {
            for p in speaker.peers().await? {
                print(json!({
                    "event": "peer", "peer": p.address.to_string(), "state": p.state.name(),
                    "received": p.received, "sent": p.sent, "flaps": p.stats.flaps,
                    "families": p.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "last_error": p.stats.last_error,
                }));
            }
        }
        _ => return Err(bad("op").into()),
    }
    Ok(())
}
