//! The transformer's I/O shell inside the controller process: take a
//! snapshot of the store, compile everything once, then follow the change
//! feed from the snapshot's revision and submit derived writes through the
//! API state (one transaction per batch of events).
//!
//! ```text
//!  store.snapshot ──> Transformer::new ──> reconcile(all) ──┐
//!  store::watch(rev) ──events──> observe ──> reconcile ─────┴─> ApiState::write(apply_derived)
//! ```

use std::sync::Arc;
use std::time::Duration;

use filament_api::state::{parse_object_key, CONFIG_PREFIX};
use filament_api::ApiState;
use filament_config::{DerivedWrite, StoredObj};
use filament_store::{watch, EventKind};
use futures::{FutureExt, StreamExt};

use crate::Transformer;

/// hrefs in derived objects' error messages (never shown to users).
const BASE: &str = "http://filament-schema";
/// Most events folded into one reconcile.
const MAX_BATCH: usize = 4096;

/// Statistics of a running transformer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub events: u64,
    pub reconciles: u64,
    pub writes: u64,
    pub revision: u64,
}

/// Parse a change-feed key and value into `(uuid, object)`.
fn parse(key: &str, kind: EventKind, value: &str) -> Option<(String, Option<StoredObj>)> {
    let (_, uuid) = parse_object_key(key)?;
    match kind {
        EventKind::Delete => Some((uuid.to_string(), None)),
        EventKind::Put => serde_json::from_str::<StoredObj>(value)
            .ok()
            .map(|o| (uuid.to_string(), Some(o))),
    }
}

/// Submit writes and tell the transformer where they committed; on failure,
/// compile everything again.
async fn submit(
    state: &ApiState,
    t: &mut Transformer,
    writes: Vec<DerivedWrite>,
    stats: &mut Stats,
) {
    if writes.is_empty() {
        return;
    }
    let n = writes.len() as u64;
    let r = state
        .write_revision(|db, ctx| db.apply_derived(&writes, ctx, BASE).map(|t| (t, ())))
        .await;
    match r {
        Ok(((), rev)) => {
            stats.writes += n;
            t.committed(&writes, rev);
        }
        Err(e) => {
            tracing::warn!(error = %e, "schema transformer: derived writes failed; recompiling");
            t.mark_all();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Run until `shutdown` resolves.
pub async fn run(
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()>,
    on_progress: impl Fn(Stats),
) -> Result<(), filament_store::StoreError> {
    let store = state.store.clone();
    let (rev, items) = store.snapshot(CONFIG_PREFIX)?;
    let objs = items
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str::<StoredObj>(&v).ok());
    let mut t = Transformer::new(objs);
    let mut stats = Stats {
        revision: rev,
        ..Stats::default()
    };
    tracing::info!(
        revision = rev,
        objects = t.snapshot().len(),
        "schema transformer: compiling from snapshot"
    );
    let writes = t.reconcile();
    stats.reconciles += 1;
    submit(&state, &mut t, writes, &mut stats).await;
    on_progress(stats);
    let mut feed = Box::pin(watch(store, rev));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let first = tokio::select! {
            () = &mut shutdown => break,
            ev = feed.next() => ev,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match feed.next().now_or_never() {
                Some(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        for ev in batch {
            let ev = ev?;
            stats.events += 1;
            stats.revision = ev.revision;
            if let Some((uuid, obj)) = parse(&ev.key, ev.kind, &ev.value) {
                t.observe(&uuid, obj);
            }
        }
        if !t.due(stats.revision) {
            // Our last writes are not in the snapshot yet: keep collecting.
            continue;
        }
        let writes = t.reconcile();
        stats.reconciles += 1;
        submit(&state, &mut t, writes, &mut stats).await;
        on_progress(stats);
    }
    Ok(())
}
