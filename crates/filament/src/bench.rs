//! `filament bench api`: load figures for the config API over HTTP.
//!
//! By default it starts its own `filament api` child process on a temporary
//! data dir (so the server's RSS can be read from /proc); `--url` targets a
//! running server instead. It prints figures; it asserts nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Creates/s and latency of VN and port (VMI + instance-ip) creation, and a 20k-port list.
    Api(ApiBench),
    /// Schema transformer: full compile of VNs, policies and ports, then
    /// incremental latency from API commit to derived objects committed.
    Schema(SchemaBench),
    /// Control node XMPP: N simulated agents x VRFs: full sync, new-route fan-out p50/p99,
    /// silent-agent detection.
    Xmpp(crate::bench_xmpp::XmppBench),
    /// vRouter agent: flow setups/s through the slow path with an N-rule network ACL.
    Agent(crate::bench_agent::AgentBench),
}

#[derive(Args)]
pub struct SchemaBench {
    /// Virtual networks (a /24 each).
    #[arg(long, default_value_t = 1000)]
    pub vns: usize,
    /// Policies; policy i connects VN i and VN i+1.
    #[arg(long, default_value_t = 1000)]
    pub policies: usize,
    /// Ports (VMI + instance-ip).
    #[arg(long, default_value_t = 20000)]
    pub ports: usize,
    /// Incremental changes to time (half port adds, half policy rule adds).
    #[arg(long, default_value_t = 200)]
    pub changes: usize,
}

#[derive(Args)]
pub struct ApiBench {
    /// Target a running API instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Virtual networks to create (each with a /24 subnet).
    #[arg(long, default_value_t = 1000)]
    vns: usize,
    /// Ports (VMI + instance-ip pairs) to create, spread over the VNs.
    #[arg(long, default_value_t = 20000)]
    ports: usize,
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Api(a) => api(a).await,
        BenchCmd::Schema(a) => crate::bench_schema::run(a).await,
        BenchCmd::Xmpp(a) => crate::bench_xmpp::run(a).await,
        BenchCmd::Agent(a) => crate::bench_agent::run(a).await,
    }
}

/// A server child process: killed (and its data dir removed) on drop.
pub(crate) struct Child {
    pub(crate) proc: std::process::Child,
    pub(crate) _dir: TempDir,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_server(client: &reqwest::Client) -> anyhow::Result<(String, Child)> {
    let dir = std::env::temp_dir().join(format!("filament-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let proc = std::process::Command::new(std::env::current_exe()?)
        .args(["api", "--data-dir"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .spawn()
        .context("cannot start filament api")?;
    let child = Child {
        proc,
        _dir: TempDir(dir),
    };
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((url, child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("filament api did not come up on {url}")
}

/// The `p` percentile (0..=1) of latencies, in milliseconds.
pub(crate) fn percentile_ms(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; fields 14 and 15, in clock ticks of 1/100 s).
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(format!("/proc/{pid}/stat"))
}

/// CPU seconds in a `stat` file of /proc (a process's or a thread's).
pub(crate) fn stat_cpu_secs(path: impl AsRef<std::path::Path>) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of the server child (if we started it) and of this process.
fn cpus(child: Option<&Child>) -> (Option<f64>, Option<f64>) {
    (
        child.and_then(|c| cpu_secs(c.proc.id())),
        cpu_secs(std::process::id()),
    )
}

/// Print the CPU the server and the client used since `before`.
fn print_cpu(what: &str, before: (Option<f64>, Option<f64>), child: Option<&Child>, items: usize) {
    let now = cpus(child);
    let server = now.0.zip(before.0).map(|(a, b)| a - b);
    let client = now.1.zip(before.1).map(|(a, b)| a - b);
    let per = |s: f64| s * 1e6 / items.max(1) as f64;
    match (server, client) {
        (Some(s), Some(c)) => println!(
            "{:<32} server {s:>6.2} s ({:>5.0} us/item)  client {c:>6.2} s",
            format!("  cpu {what}"),
            per(s)
        ),
        (None, Some(c)) => println!("{:<32} client {c:>6.2} s", format!("  cpu {what}")),
        _ => {}
    }
}

/// Resident memory of a process, from /proc (Linux).
pub(crate) fn rss_mb(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let r = client.post(url).json(body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POST a pre-rendered JSON body (what `vnc_api` sends for a create) and
/// return the new object's uuid. Cheaper for the client than building and
/// parsing `serde_json::Value`s, so more of the machine is left to the server.
async fn create(client: &reqwest::Client, url: &str, body: String) -> anyhow::Result<String> {
    let r = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = r.status();
    let bytes = r.bytes().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {}", String::from_utf8_lossy(&bytes));
    }
    // `{"<type>": {"uuid": ..., ...}}`
    let v: Value =
        serde_json::from_slice(&bytes).with_context(|| format!("POST {url}: unexpected answer"))?;
    match v
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|o| o["uuid"].as_str())
    {
        Some(u) => Ok(u.to_string()),
        None => bail!("POST {url}: answer without an object uuid"),
    }
}

struct Stats {
    lat: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn print(&self, what: &str, ops_per_item: usize) {
        let mut l = self.lat.clone();
        let n = l.len();
        let rate = n as f64 / self.wall.as_secs_f64();
        println!(
            "{what:<32} {n:>6} in {:>7.2} s  {rate:>8.0} /s ({:>8.0} requests/s)  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.wall.as_secs_f64(),
            rate * ops_per_item as f64,
            percentile_ms(&mut l, 0.50),
            percentile_ms(&mut l, 0.99),
        );
    }
}

async fn api(a: ApiBench) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    let (url, child) = match &a.url {
        Some(u) => (u.trim_end_matches('/').to_string(), None),
        None => {
            let (u, c) = start_server(&client).await?;
            (u, Some(c))
        }
    };
    if a.vns == 0 || a.vns > 65_000 {
        bail!("--vns must be 1..=65000 (each VN gets its own /24)");
    }
    let tag = format!("bench-{}", std::process::id());
    let proj = post(
        &client,
        &format!("{url}/projects"),
        &json!({"project": {"fq_name": ["default-domain", tag], "parent_type": "domain"}}),
    )
    .await?;
    let proj_uuid = proj["project"]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!(
        "filament bench api: {url}, concurrency {}, {} VNs, {} ports",
        a.concurrency, a.vns, a.ports
    );

    // (a) virtual networks with a subnet each.
    let cpu0 = cpus(child.as_ref());
    let t0 = Instant::now();
    let vn_url = format!("{url}/virtual-networks");
    let results: Vec<anyhow::Result<(Duration, String)>> = stream::iter(0..a.vns)
        .map(|i| {
            let client = &client;
            let vn_url = &vn_url;
            let tag = &tag;
            async move {
                let body = format!(
                    r#"{{"virtual-network": {{"fq_name": ["default-domain", "{tag}", "vn{i}"], "parent_type": "project", "network_ipam_refs": [{{"to": ["default-domain", "default-project", "default-network-ipam"], "attr": {{"ipam_subnets": [{{"subnet": {{"ip_prefix": "10.{}.{}.0", "ip_prefix_len": 24}}}}]}}}}]}}}}"#,
                    i / 256,
                    i % 256
                );
                let s = Instant::now();
                let uuid = create(client, vn_url, body).await?;
                Ok((s.elapsed(), uuid))
            }
        })
        .buffer_unordered(a.concurrency)
        .collect()
        .await;
    let vn_wall = t0.elapsed();
    let mut vns = Vec::new();
    let mut lat = Vec::new();
    for r in results {
        let (d, u) = r?;
        lat.push(d);
        vns.push(u);
    }
    Stats { lat, wall: vn_wall }.print("(a) virtual-network + subnet", 1);
    print_cpu("(a)", cpu0, child.as_ref(), a.vns);

    // (b) ports: VMI then instance-ip.
    let cpu1 = cpus(child.as_ref());
    let t1 = Instant::now();
    let vmi_url = format!("{url}/virtual-machine-interfaces");
    let iip_url = format!("{url}/instance-ips");
    let results: Vec<anyhow::Result<Duration>> = stream::iter(0..a.ports)
        .map(|i| {
            let client = &client;
            let (vmi_url, iip_url, tag) = (&vmi_url, &iip_url, &tag);
            let vn = &vns[i % vns.len()];
            async move {
                let s = Instant::now();
                let vmi = create(client, vmi_url, format!(
                    r#"{{"virtual-machine-interface": {{"fq_name": ["default-domain", "{tag}", "port{i}"], "parent_type": "project", "virtual_network_refs": [{{"uuid": "{vn}", "to": []}}]}}}}"#
                )).await?;
                create(client, iip_url, format!(
                    r#"{{"instance-ip": {{"fq_name": ["{tag}-iip{i}"], "virtual_network_refs": [{{"uuid": "{vn}", "to": []}}], "virtual_machine_interface_refs": [{{"uuid": "{vmi}", "to": []}}]}}}}"#
                )).await?;
                Ok(s.elapsed())
            }
        })
        .buffer_unordered(a.concurrency)
        .collect()
        .await;
    let port_wall = t1.elapsed();
    let lat = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Stats {
        lat,
        wall: port_wall,
    }
    .print("(b) port = VMI + instance-ip", 2);
    print_cpu("(b)", cpu1, child.as_ref(), a.ports);
    println!(
        "{:<32} {:>7.2} s",
        "1k VNs + 20k ports, total",
        (vn_wall + port_wall).as_secs_f64()
    );
    print_cpu("(a)+(b)", cpu0, child.as_ref(), a.vns + a.ports);
    if let Ok(r) = client.get(format!("{url}/status")).send().await {
        if let Ok(v) = r.json::<Value>().await {
            let commits = v["commits"].as_u64().unwrap_or(0);
            let writes = v["committed_writes"].as_u64().unwrap_or(0);
            if commits > 0 {
                println!(
                    "{:<32} {commits:>6} commits, {:.1} writes each",
                    "  server group commits",
                    writes as f64 / commits as f64
                );
            }
        }
    }

    if let Some(c) = &child {
        if let Some(mb) = rss_mb(c.proc.id()) {
            println!("{:<32} {mb:>7.1} MB", "server RSS after creates");
        }
    }
    // List every port of the project.
    for detail in [false, true] {
        let s = Instant::now();
        let r = client
            .get(format!("{url}/virtual-machine-interfaces?parent_id={proj_uuid}&detail={detail}&count=False"))
            .send()
            .await?;
        let body: Value = r.json().await?;
        let n = body["virtual-machine-interfaces"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "{:<32} {n:>6} in {:>7.1} ms",
            format!("list ports (detail={detail})"),
            s.elapsed().as_secs_f64() * 1e3
        );
    }
    if let Some(c) = &child {
        if let Some(mb) = rss_mb(c.proc.id()) {
            println!("{:<32} {mb:>7.1} MB", "server RSS after lists");
        }
    }
    Ok(())
}
