//! `filament schema`: the schema transformer as its own process.
//!
//! - `run --api URL`: follow the API's change feed (`GET /watch`) from the
//!   beginning, compile once caught up, then incrementally; submit derived
//!   writes with `POST /derived`. On a dropped connection it resumes after
//!   the last revision it processed.
//! - `check --data-dir DIR`: compile the store from scratch and print the
//!   writes that are still pending (exit status 1 if any): "in sync" means
//!   the derived state equals a from-scratch compile.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use filament_config::feed::FeedLines;
use filament_config::StoredObj;
use filament_transformer::{reconcile_scope, Scope, Transformer};
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum SchemaCmd {
    /// Follow a running API and keep derived state compiled.
    Run {
        /// Base URL of the config API.
        #[arg(long, default_value = "http://127.0.0.1:8082")]
        api: String,
    },
    /// Compare derived state in a store with a from-scratch compile.
    Check {
        /// Data directory of the store.
        #[arg(long, env = "FILAMENT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub async fn run(cmd: SchemaCmd) -> anyhow::Result<()> {
    match cmd {
        SchemaCmd::Run { api } => follow(api.trim_end_matches('/')).await,
        SchemaCmd::Check { data_dir } => check(&data_dir.unwrap_or_else(crate::default_data_dir)),
    }
}

fn check(dir: &std::path::Path) -> anyhow::Result<()> {
    // A check reads a store: a missing one is an error, not an empty store made on the spot.
    let db = dir.join("config.db");
    if !db.is_file() {
        bail!("no store at {} (is --data-dir the server's?)", db.display());
    }
    let store = crate::open_store(dir)?;
    let (rev, items) = store.snapshot(filament_api::state::CONFIG_PREFIX)?;
    let objs: Vec<StoredObj> = items
        .into_iter()
        .map(|(k, v)| serde_json::from_str(&v).with_context(|| format!("corrupt object {k}")))
        .collect::<anyhow::Result<_>>()?;
    let t = Transformer::new(objs);
    let pending = reconcile_scope(t.snapshot(), &Scope::all());
    if pending.is_empty() {
        println!(
            "in sync: {} objects at revision {rev}; derived state equals a from-scratch compile",
            t.snapshot().len()
        );
        return Ok(());
    }
    println!(
        "{} derived writes pending at revision {rev}:",
        pending.len()
    );
    for w in &pending {
        println!("  {}", serde_json::to_string(w).unwrap_or_default());
    }
    std::process::exit(1);
}

async fn follow(api: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut t = Transformer::new(Vec::new());
    // Last revision applied to the snapshot (the feed resumes after it).
    let mut last = 0u64;
    let mut caught_up = false;
    loop {
        let resp = match client.get(format!("{api}/watch?since={last}")).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) if r.status() == reqwest::StatusCode::GONE => {
                bail!(
                    "the API no longer has history after revision {last}; restart filament schema"
                )
            }
            Ok(r) => bail!("GET /watch: {}", r.status()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach {api}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let head: u64 = resp
            .headers()
            .get("X-Filament-Revision")
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        tracing::info!(since = last, head, "schema transformer following {api}");
        let mut body = resp.bytes_stream();
        let mut lines = FeedLines::default();
        loop {
            if !caught_up && last >= head {
                caught_up = true;
            }
            if caught_up && t.due(last) {
                let writes = t.reconcile();
                if !writes.is_empty() {
                    let rev = submit(&client, api, &writes).await?;
                    if rev > 0 {
                        t.committed(&writes, rev);
                    }
                }
            }
            let Some(Ok(chunk)) = body.next().await else {
                break;
            };
            lines.push(&chunk);
            while let Some(ev) = lines.next_event() {
                t.observe(&ev.uuid, ev.object);
                last = ev.revision;
            }
        }
        tracing::warn!("change feed closed; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Post derived writes; returns the revision they committed at (0 if refused).
async fn submit(
    client: &reqwest::Client,
    api: &str,
    writes: &[filament_config::DerivedWrite],
) -> anyhow::Result<u64> {
    let r = client
        .post(format!("{api}/derived"))
        .json(&json!({ "writes": writes }))
        .send()
        .await?;
    if !r.status().is_success() {
        tracing::warn!(status = %r.status(), body = %r.text().await.unwrap_or_default(), "derived writes refused");
        return Ok(0);
    }
    let v: Value = r.json().await.unwrap_or(Value::Null);
    Ok(v["revision"].as_u64().unwrap_or(0))
}
