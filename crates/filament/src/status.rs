//! `filament status`: one line per role and host (work in progress: issue 7).

use clap::Args;

#[derive(Args)]
pub(crate) struct StatusArgs {}

pub(crate) async fn run(_a: StatusArgs) -> anyhow::Result<()> {
    anyhow::bail!("filament status: not built yet")
}
