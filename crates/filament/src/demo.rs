//! `filament demo`: a lab of network namespaces on this machine (work in progress: issue 7).

use clap::Args;

#[derive(Args)]
pub(crate) struct DemoArgs {}

pub(crate) async fn run(_a: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("filament demo: not built yet")
}
