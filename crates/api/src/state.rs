//! The API's shared state: the in-memory config database and the store it is
//! persisted in. Writes are serialized: plan against the database, commit the
//! transaction to the store (one revision), then apply it in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use filament_config::{ConfigDb, ConfigError, Ctx, StoredObj, Txn};
use filament_store::{Op, Revision, Store, StoreError};
use parking_lot::{Mutex, RwLock};

/// Key prefix of config objects: `/config/<type>/<uuid>`.
pub const CONFIG_PREFIX: &str = "/config/";
/// Key prefix of user-agent key/value pairs.
pub const USERAGENT_PREFIX: &str = "/useragent/";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

/// A planned write waiting for the committer.
struct Pending {
    ops: Vec<Op>,
    done: tokio::sync::oneshot::Sender<Result<Revision, String>>,
}

/// Shared API state.
pub struct ApiState {
    pub db: RwLock<ConfigDb>,
    pub store: Arc<dyn Store>,
    /// Serializes planning: plan, apply and enqueue happen in one order.
    plan: Mutex<()>,
    commits: Mutex<Option<mpsc::Sender<Pending>>>,
    /// Store commits the committer made, and the writes they carried.
    stats: CommitStats,
}

/// Group-commit counters (for `GET /status` and benchmarks).
#[derive(Debug, Default)]
struct CommitStats {
    groups: AtomicU64,
    writes: AtomicU64,
}

/// Most writes one group commit takes.
const MAX_GROUP: usize = 512;

impl ApiState {
    /// Load everything from the store; bootstrap a fresh system if it is empty.
    pub fn open(store: Arc<dyn Store>) -> Result<Arc<Self>, ApiError> {
        let db = load(&*store)?;
        let state = Arc::new(Self {
            db: RwLock::new(db),
            store,
            plan: Mutex::new(()),
            commits: Mutex::new(None),
            stats: CommitStats::default(),
        });
        state.write_now(|db, ctx| Ok((db.bootstrap(ctx)?, ())))?;
        let (tx, rx) = mpsc::channel();
        *state.commits.lock() = Some(tx);
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("filament-commit".into())
            .spawn(move || committer(&weak, &rx))
            .map_err(|e| ApiError::Commit(format!("cannot start the committer thread: {e}")))?;
        Ok(state)
    }

    /// Run a write: plan with `f` and apply it in memory (in request order),
    /// then wait until the committer has made it durable. Writes that arrive
    /// together are committed together (group commit), each with its own
    /// revision. A refused request writes nothing and leaks no allocation.
    ///
    /// Other readers may see a write a few milliseconds before it is
    /// durable; if the commit fails, every write not yet durable is answered
    /// with an error and the database is reloaded from the store.
    pub async fn write<R>(
        &self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(Txn, R), ConfigError>,
    ) -> Result<R, ApiError> {
        self.write_revision(f).await.map(|(r, _)| r)
    }

    /// [`ApiState::write`], also returning the revision the write committed
    /// at (the current revision if there was nothing to write).
    pub async fn write_revision<R>(
        &self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(Txn, R), ConfigError>,
    ) -> Result<(R, Revision), ApiError> {
        let (rx, r) = {
            let _plan = self.plan.lock();
            let mut db = self.db.write();
            let (txn, r) = plan(&mut db, f)?;
            if txn.is_empty() {
                return Ok((r, self.store.revision()));
            }
            let ops = txn_ops(&txn);
            db.apply(txn);
            drop(db);
            let (done, rx) = tokio::sync::oneshot::channel();
            let sent = match &*self.commits.lock() {
                Some(tx) => tx.send(Pending { ops, done }).is_ok(),
                None => false,
            };
            if !sent {
                self.reload_or_log();
                return Err(ApiError::Commit("the committer is not running".into()));
            }
            (rx, r)
        };
        match rx.await {
            Ok(Ok(rev)) => Ok((r, rev)),
            Ok(Err(msg)) => Err(ApiError::Commit(msg)),
            Err(_) => Err(ApiError::Commit("the committer stopped".into())),
        }
    }

    /// Plan, commit and apply synchronously (startup, before the committer runs).
    pub fn write_now<R>(
        &self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(Txn, R), ConfigError>,
    ) -> Result<R, ApiError> {
        let _plan = self.plan.lock();
        let mut db = self.db.write();
        let (txn, r) = plan(&mut db, f)?;
        if txn.is_empty() {
            return Ok(r);
        }
        if let Err(e) = self.store.commit(txn_ops(&txn)) {
            db.rebuild_allocators();
            return Err(e.into());
        }
        db.apply(txn);
        Ok(r)
    }

    /// `(store commits, writes committed)` by the group committer so far:
    /// their ratio is the mean group size.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.stats.groups.load(Ordering::Relaxed),
            self.stats.writes.load(Ordering::Relaxed),
        )
    }

    /// Replace the in-memory database with what the store holds.
    fn reload_or_log(&self) {
        match load(&*self.store) {
            Ok(db) => *self.db.write() = db,
            Err(e) => {
                tracing::error!(error = %e, "cannot reload the config database from the store")
            }
        }
    }
}

/// Run one operation against the database with a fresh clock and uuid
/// source. A refused operation may have taken allocations: recompute them.
fn plan<R>(
    db: &mut ConfigDb,
    f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(Txn, R), ConfigError>,
) -> Result<(Txn, R), ApiError> {
    let mut gen = || uuid::Uuid::new_v4().to_string();
    let mut ctx = Ctx::new(iso_now(), &mut gen);
    f(db, &mut ctx).map_err(|e| {
        db.rebuild_allocators();
        e.into()
    })
}

fn load(store: &dyn Store) -> Result<ConfigDb, ApiError> {
    let (_, objs) = store.snapshot(CONFIG_PREFIX)?;
    let (_, kv) = store.snapshot(USERAGENT_PREFIX)?;
    let mut stored = Vec::with_capacity(objs.len());
    for (k, v) in objs {
        let s: StoredObj =
            serde_json::from_str(&v).map_err(|e| ApiError::Corrupt(format!("{k}: {e}")))?;
        stored.push(s);
    }
    let kv = kv
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches(USERAGENT_PREFIX).to_string(), v));
    ConfigDb::load(stored, kv).map_err(ApiError::Corrupt)
}

/// The committer thread: takes every write waiting, commits them in one
/// store call, answers each. Ends when the state is dropped.
fn committer(state: &Weak<ApiState>, rx: &mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        take_waiting(rx, &mut group);
        // Yield once so request threads in the middle of planning can queue
        // their writes too: a store commit has a high fixed cost (WAL frames,
        // meta row), so a larger group costs less per write. With nothing
        // else runnable this returns at once.
        std::thread::yield_now();
        take_waiting(rx, &mut group);
        let Some(st) = state.upgrade() else { return };
        let (ops, waiters): (Vec<_>, Vec<_>) = group.into_iter().map(|p| (p.ops, p.done)).unzip();
        match st.store.commit_many(ops) {
            Ok(revs) => {
                st.stats.groups.fetch_add(1, Ordering::Relaxed);
                st.stats
                    .writes
                    .fetch_add(waiters.len() as u64, Ordering::Relaxed);
                for (w, rev) in waiters.into_iter().zip(revs) {
                    let _ = w.send(Ok(rev));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = waiters.len(), "group commit failed");
                let msg = e.to_string();
                // Everything planned after this group built on it: fail it too.
                let _plan = st.plan.lock();
                for w in waiters {
                    let _ = w.send(Err(msg.clone()));
                }
                while let Ok(p) = rx.try_recv() {
                    let _ = p.done.send(Err(format!("an earlier write failed: {msg}")));
                }
                st.reload_or_log();
            }
        }
    }
}

/// Move every write already queued into `group` (up to [`MAX_GROUP`]).
fn take_waiting(rx: &mpsc::Receiver<Pending>, group: &mut Vec<Pending>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(p) => group.push(p),
            Err(_) => break,
        }
    }
}

/// Store ops of a transaction.
pub fn txn_ops(txn: &Txn) -> Vec<Op> {
    let mut ops = Vec::with_capacity(txn.puts.len() + txn.deletes.len() + txn.kv.len());
    for d in &txn.deletes {
        ops.push(Op::Delete {
            key: object_key(d.ty.name, &d.uuid),
        });
    }
    for p in &txn.puts {
        let value = p.to_stored_json();
        ops.push(Op::Put {
            key: object_key(p.ty.name, &p.uuid),
            value,
        });
    }
    for (k, v) in &txn.kv {
        let key = format!("{USERAGENT_PREFIX}{k}");
        ops.push(match v {
            Some(v) => Op::Put {
                key,
                value: v.clone(),
            },
            None => Op::Delete { key },
        });
    }
    ops
}

pub fn object_key(ty: &str, uuid: &str) -> String {
    format!("{CONFIG_PREFIX}{ty}/{uuid}")
}

/// `(type, uuid)` of a config object key; `None` for other keys.
pub fn parse_object_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(CONFIG_PREFIX)?.split_once('/')
}

/// Now as TF writes times: `2024-01-01T00:00:00.000000` (UTC).
pub fn iso_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    iso_time(d.as_secs(), d.subsec_micros())
}

/// Format seconds since the epoch (civil-from-days, proleptic Gregorian).
pub fn iso_time(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // Written digit by digit: this runs for every write, and `format!`
    // with width specifiers costs several times more.
    let mut out = String::with_capacity(26);
    push_digits(&mut out, y.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_digits(&mut out, m as u64, 2);
    out.push('-');
    push_digits(&mut out, d as u64, 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, (rem % 3600) / 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    out.push('.');
    push_digits(&mut out, u64::from(micros.min(999_999)), 6);
    out
}

/// Append the last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut String, n: u64, width: u32) {
    let mut div = 10u64.pow(width.saturating_sub(1));
    while div > 0 {
        out.push(char::from(b'0' + ((n / div) % 10) as u8));
        div /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::iso_time;

    #[test]
    fn iso_time_matches_known_dates() {
        assert_eq!(iso_time(0, 0), "1970-01-01T00:00:00.000000");
        assert_eq!(iso_time(1_704_067_200, 5), "2024-01-01T00:00:00.000005");
        assert_eq!(
            iso_time(951_782_400 + 86_399, 0),
            "2000-02-29T23:59:59.000000"
        );
        assert_eq!(
            iso_time(4_102_444_799, 999_999),
            "2099-12-31T23:59:59.999999"
        );
    }
}
