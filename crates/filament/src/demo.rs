//! `filament demo`: a lab of network namespaces on this machine (issue 7). A controller netns
//! runs `filament up`, two compute-host netns run `filament agent` with a fabric veth into an
//! underlay bridge, and four workloads in two tenant networks (one of each per host) get their
//! addresses by DHCP from the agents. Everything is configured through the public REST API and
//! the agents' port API, as a user would. `filament demo down` (or Ctrl-C) removes every
//! namespace, link and process the lab made; `filament demo show --json` describes it.
//!
//! Everything the lab creates is named `fil-*` (see [`net::PREFIX`]), so a new run first
//! sweeps what a crashed run left behind. State (pids, names, uuids) lives in
//! `/run/filament-demo/state.json`, the same JSON `demo show --json` prints.

mod cfg;
mod lab;
mod net;

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args)]
pub(crate) struct DemoArgs {
    #[command(subcommand)]
    cmd: Option<DemoCmd>,
}

#[derive(Subcommand)]
enum DemoCmd {
    /// Build the lab and stay up until Ctrl-C or `filament demo down` (the default).
    Up,
    /// Remove the running lab (or what a crashed one left): namespaces, links, processes.
    Down,
    /// Describe the running lab.
    Show {
        /// Machine-readable JSON (the state file).
        #[arg(long)]
        json: bool,
    },
    /// Print the ping matrix of the running lab.
    Ping,
}

pub(crate) async fn run(a: DemoArgs) -> anyhow::Result<()> {
    match a.cmd.unwrap_or(DemoCmd::Up) {
        DemoCmd::Up => up().await,
        DemoCmd::Down => down(),
        DemoCmd::Show { json } => show(json),
        DemoCmd::Ping => {
            let state = read_state()?;
            lab::ping_matrix(&state);
            Ok(())
        }
    }
}

/// The lab's state file, if a lab is (or was) running.
pub(crate) fn read_state() -> anyhow::Result<Value> {
    let path = lab::state_path();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no demo lab is running (cannot read {})", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn need_root(what: &str) -> anyhow::Result<()> {
    if !net::is_root() {
        let cmd = if what.is_empty() {
            "filament demo".to_string()
        } else {
            format!("filament demo {what}")
        };
        bail!("{cmd} needs root (it creates network namespaces, veth links and a bridge); run it with sudo");
    }
    Ok(())
}

/// Pid of a running `demo up` other than this process, from the state file.
fn other_demo() -> Option<i32> {
    let pid = read_state().ok()?["pid"].as_i64()? as i32;
    (pid != std::process::id() as i32 && net::alive(pid)).then_some(pid)
}

async fn up() -> anyhow::Result<()> {
    need_root("")?;
    if !net::have("ip") {
        bail!("`ip` is not installed (iproute2)");
    }
    if !net::have("ping") && !net::have("busybox") {
        bail!("neither `ping` (iputils-ping) nor busybox is installed");
    }
    if let Some(pid) = other_demo() {
        bail!("a demo lab is already running (pid {pid}); `filament demo down` first");
    }
    let p = lab::Progress::new();
    let removed = net::sweep(&[]);
    if !removed.is_empty() {
        p.say(&format!(
            "removed leftovers of an earlier lab: {}",
            removed.join(", ")
        ));
    }
    let _ = std::fs::remove_dir_all(lab::RUN_DIR);
    std::fs::create_dir_all(lab::RUN_DIR)
        .with_context(|| format!("cannot create {}", lab::RUN_DIR))?;
    let mut state = json!({"version": 1, "pid": std::process::id(), "ready": false,
        "state_file": lab::state_path(), "underlay": {"netns": "fil-underlay", "bridge": "br0",
        "subnet": "10.250.0.0/24", "mgmt_if": "fil-mgmt", "mgmt_ip": "10.250.0.1"}});
    lab::save(&state)?;

    let built = tokio::select! {
        r = lab::build(&p, &mut state) => r.map(|()| true),
        _ = stop_signal() => Ok(false),
    };
    if let Ok(false) = built {
        println!();
        p.say("interrupted: removing what was built");
        teardown(&state);
        p.say("lab removed");
        return Ok(());
    }
    if let Err(e) = built {
        eprintln!("filament demo: {e:#}");
        eprintln!(
            "(logs of the roles are in {}/logs; cleaning up)",
            lab::RUN_DIR
        );
        teardown(&state);
        return Err(e);
    }
    lab::print_picture(&state);
    let cells = lab::ping_matrix(&state);
    state["ping_matrix"] = json!(cells
        .iter()
        .map(|(a, b, ok)| json!({"from": a, "to": b, "ok": ok}))
        .collect::<Vec<_>>());
    state["ready"] = json!(true);
    lab::save(&state)?;
    println!();
    println!(
        "first cross-host ping {}s after start. Lab ready: `filament demo show --json`, `filament status`,",
        state["first_cross_host_ping_s"]
    );
    println!(
        "`ip netns exec fil-blue1 ping <ip>`. Ctrl-C here or `filament demo down` removes it."
    );
    println!("READY");

    stop_signal().await;
    let rss: Vec<String> = lab::peak_rss(&state)
        .iter()
        .map(|(r, mb)| format!("{r} {mb:.1} MB"))
        .collect();
    p.say(&format!(
        "stopping (peak RSS: {}): removing the lab",
        rss.join(", ")
    ));
    teardown(&state);
    p.say("lab removed");
    Ok(())
}

/// Ctrl-C or SIGTERM (what `demo down` sends), or the state file vanishing.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Kill the roles, remove namespaces and links, the state file, the controller's data dir and
/// the DHCP files (logs stay until the next run).
fn teardown(state: &Value) {
    let mut pids: Vec<i32> = Vec::new();
    if let Some(p) = state["controller"]["pid"].as_i64() {
        pids.push(p as i32);
    }
    for h in state["hosts"].as_array().into_iter().flatten() {
        if let Some(p) = h["pid"].as_i64() {
            pids.push(p as i32);
        }
    }
    net::sweep(&pids);
    // Everything under the run dir but the logs (kept for a look after a failure).
    if let Ok(rd) = std::fs::read_dir(lab::RUN_DIR) {
        for e in rd.flatten() {
            if e.file_name() != "logs" {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}

fn down() -> anyhow::Result<()> {
    need_root("down")?;
    let state = read_state().ok();
    if let Some(pid) = other_demo() {
        // The running `demo up` tears its own lab down on SIGTERM; give it the time to.
        net::run_quiet(&["kill", "-TERM", &pid.to_string()]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while net::alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if net::alive(pid) {
            net::kill_all(&[pid], Duration::from_secs(1));
        }
    }
    // Whatever is left (a crashed run, or the run above did not finish).
    if let Some(s) = &state {
        teardown(s);
    }
    let removed = net::sweep(&[]);
    let _ = std::fs::remove_file(lab::state_path());
    if removed.is_empty() {
        println!("demo lab removed");
    } else {
        println!("demo lab removed ({})", removed.join(", "));
    }
    Ok(())
}

fn show(as_json: bool) -> anyhow::Result<()> {
    let state = read_state()?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&state)?);
        return Ok(());
    }
    if state["ready"] != true {
        println!("(the lab is still being built)");
    }
    lab::print_picture(&state);
    Ok(())
}
