//! `filament bench agent`: flow setups per second through the agent's slow path (flow-miss
//! decision over the network ACL and security groups, then the forwarder op built) with an
//! ACL of N rules whose last rule decides, single thread.

use std::time::Instant;

use clap::Args;
use filament_agent::core::Agent;

#[derive(Args)]
pub struct AgentBench {
    /// ACL rules in the port's network policy (the last one matches).
    #[arg(long, default_value_t = 1000)]
    pub rules: usize,
    /// Distinct flows to decide.
    #[arg(long, default_value_t = 200_000)]
    pub flows: usize,
}

pub async fn run(a: AgentBench) -> anyhow::Result<()> {
    let (agent, keys) = filament_agent::bench::flow_fixture(a.rules, a.flows)?;
    // warm the parsed-policy cache the way the first flow after a config change does
    let first = Instant::now();
    let d = agent.decide_flow(&keys[0]);
    let cold = first.elapsed();
    anyhow::ensure!(d.allow, "fixture flow not allowed: {}", d.rule);
    let start = Instant::now();
    let mut allowed = 0usize;
    for k in &keys {
        let d = agent.decide_flow(k);
        allowed += usize::from(d.allow);
        std::hint::black_box(Agent::flow_op(*k, d.allow));
    }
    let el = start.elapsed();
    anyhow::ensure!(
        allowed == keys.len(),
        "only {allowed} of {} flows allowed",
        keys.len()
    );
    let per_s = keys.len() as f64 / el.as_secs_f64();
    println!(
        "agent flow setup: {} flows, {} ACL rules (last matches), 1 thread",
        keys.len(),
        a.rules
    );
    println!(
        "  first decision after a config change (parses the ACL): {:.2} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  decisions: {:.0} flows/s ({:.2} us/flow; target >= 100000/s per core)",
        per_s,
        1e6 / per_s
    );
    Ok(())
}
