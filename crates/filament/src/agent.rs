//! `filament agent`, `filament port`, `filament flow`: the vRouter agent role and its
//! operator commands (work in progress: issue 6).

use clap::{Args, Subcommand};

#[derive(Args)]
pub(crate) struct AgentArgs {}

#[derive(Subcommand)]
pub(crate) enum PortCmd {
    /// Ports known to the agent.
    List,
}

#[derive(Subcommand)]
pub(crate) enum FlowCmd {
    /// Flows of the forwarder with the rule that decided each.
    List,
}

pub(crate) async fn run(_a: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("filament agent: not built yet")
}

pub(crate) async fn port(_c: PortCmd) -> anyhow::Result<()> {
    anyhow::bail!("filament port: not built yet")
}

pub(crate) async fn flow(_c: FlowCmd) -> anyhow::Result<()> {
    anyhow::bail!("filament flow: not built yet")
}
