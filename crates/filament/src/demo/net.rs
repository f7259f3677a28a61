//! Shell helpers of the demo lab: `ip` commands, network namespaces, veth links, processes in a
//! namespace, and the sweep that removes everything the lab creates (recognised by [`PREFIX`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Every namespace, root-namespace link and /etc/netns directory of the lab starts with this.
pub(crate) const PREFIX: &str = "fil-";

/// Run a command, failing with its stderr.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<String> {
    let (cmd, rest) = args.split_first().context("empty command")?;
    let out = Command::new(cmd)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a command, ignoring failure (cleanup of things that may already be gone).
pub(crate) fn run_quiet(args: &[&str]) {
    let _ = run(args);
}

/// Run `args` inside netns `ns`.
pub(crate) fn ns_run(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    run(&v)
}

/// True if the command exists on PATH.
pub(crate) fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

pub(crate) fn is_root() -> bool {
    // /proc/self/status "Uid:" line: real, effective, saved, fs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Create netns `ns` with `lo` up, and an /etc/netns/<ns>/resolv.conf so that anything run in
/// it with `ip netns exec` that writes /etc/resolv.conf writes this file, not the host's.
pub(crate) fn add_netns(ns: &str) -> anyhow::Result<()> {
    run(&["ip", "netns", "add", ns])?;
    run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    let etc = Path::new("/etc/netns").join(ns);
    std::fs::create_dir_all(&etc).with_context(|| format!("cannot create {}", etc.display()))?;
    std::fs::write(etc.join("resolv.conf"), "# filament demo workload\n")
        .with_context(|| format!("cannot write {}/resolv.conf", etc.display()))?;
    Ok(())
}

/// A veth from netns `ns` (named `ifname` there, with `addr` and `mtu`) to the underlay bridge
/// `br` in netns `underlay`. The pair is made in the root namespace as `fil-<tag>` and
/// `fil-<tag>-u`; `ns` None keeps the first end there (named `fil-<tag>`).
pub(crate) fn link_to_bridge(
    underlay: &str,
    br: &str,
    ns: Option<&str>,
    tag: &str,
    ifname: &str,
    addr: &str,
    mtu: u32,
) -> anyhow::Result<()> {
    let mtu = mtu.to_string();
    let tmp_a = &format!("{PREFIX}{tag}");
    let tmp_b = &format!("{PREFIX}{tag}-u");
    run(&[
        "ip", "link", "add", tmp_a, "mtu", &mtu, "type", "veth", "peer", "name", tmp_b, "mtu", &mtu,
    ])?;
    run(&["ip", "link", "set", tmp_b, "netns", underlay])?;
    run(&[
        "ip", "-n", underlay, "link", "set", tmp_b, "master", br, "up",
    ])?;
    match ns {
        Some(ns) => {
            run(&["ip", "link", "set", tmp_a, "netns", ns])?;
            run(&["ip", "-n", ns, "link", "set", tmp_a, "name", ifname])?;
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname])?;
            run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        }
        None => {
            run(&["ip", "addr", "add", addr, "dev", tmp_a])?;
            run(&["ip", "link", "set", tmp_a, "up"])?;
        }
    }
    Ok(())
}

/// Pids of the processes living in netns `ns`.
pub(crate) fn ns_pids(ns: &str) -> Vec<i32> {
    run(&["ip", "netns", "pids", ns])
        .map(|o| {
            o.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

/// SIGTERM then, after `grace`, SIGKILL the given processes.
pub(crate) fn kill_all(pids: &[i32], grace: Duration) {
    if pids.is_empty() {
        return;
    }
    for p in pids {
        run_quiet(&["kill", "-TERM", &p.to_string()]);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in pids.iter().filter(|p| alive(**p)) {
        run_quiet(&["kill", "-KILL", &p.to_string()]);
    }
}

/// The lab's namespaces that exist now.
pub(crate) fn lab_netns() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// The lab's links in the root namespace.
fn lab_links() -> Vec<String> {
    run(&["ip", "-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .filter(|n| n.starts_with(PREFIX))
        .collect()
}

/// Remove everything of a lab (this run's or a crashed one's): the processes in its
/// namespaces (and `extra_pids`), the namespaces, its root-namespace links, its /etc/netns
/// entries. Returns what it removed, for the message.
pub(crate) fn sweep(extra_pids: &[i32]) -> Vec<String> {
    let mut removed = Vec::new();
    let nss = lab_netns();
    let mut pids: Vec<i32> = extra_pids.iter().copied().filter(|p| alive(*p)).collect();
    for ns in &nss {
        pids.extend(ns_pids(ns));
    }
    pids.sort_unstable();
    pids.dedup();
    let me = std::process::id() as i32;
    pids.retain(|p| *p != me);
    if !pids.is_empty() {
        removed.push(format!("{} processes", pids.len()));
    }
    kill_all(&pids, Duration::from_secs(5));
    for ns in &nss {
        run_quiet(&["ip", "netns", "del", ns]);
        removed.push(format!("netns {ns}"));
    }
    for l in lab_links() {
        run_quiet(&["ip", "link", "del", &l]);
        removed.push(format!("link {l}"));
    }
    if let Ok(rd) = std::fs::read_dir("/etc/netns") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(PREFIX) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    removed
}
