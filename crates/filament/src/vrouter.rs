//! `filament vrouter`: the forwarder run standalone with static tables, and table
//! inspection (work in progress: issue 5).

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum VrouterCmd {
    /// Dump a forwarder table.
    Dump,
}

pub(crate) async fn run(_c: VrouterCmd) -> anyhow::Result<()> {
    anyhow::bail!("filament vrouter: not built yet")
}
