//! `filament control`, `filament route`, `filament neighbors`: the control node role
//! and its operator commands (work in progress: issue 4).

use clap::{Args, Subcommand};

#[derive(Args)]
pub(crate) struct ControlArgs {
    /// Config API to follow.
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    api: String,
}

#[derive(Subcommand)]
pub(crate) enum RouteCmd {
    /// Routes of one table or all tables.
    Show,
    /// Route counts per table.
    Summary,
}

#[derive(Args)]
pub(crate) struct NeighborsArgs {}

pub(crate) async fn run(a: ControlArgs) -> anyhow::Result<()> {
    anyhow::bail!("filament control: not built yet (api {})", a.api)
}

pub(crate) async fn route(_c: RouteCmd) -> anyhow::Result<()> {
    anyhow::bail!("filament route: not built yet")
}

pub(crate) async fn neighbors(_a: NeighborsArgs) -> anyhow::Result<()> {
    anyhow::bail!("filament neighbors: not built yet")
}
