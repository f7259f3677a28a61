//! The API's shared state: the in-memory config database and the store it is
//! persisted in. Writes are serialized: plan against the database, commit the
//! transaction to the store (one revision), then apply it in memory.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use filament_config::{ConfigDb, ConfigError, Ctx, StoredObj, Txn};
use filament_store::{Op, Store, StoreError};
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
    #[error("corrupt store: {0}")]
    Corrupt(String),
}

/// Shared API state.
pub struct ApiState {
    pub db: RwLock<ConfigDb>,
    pub store: Arc<dyn Store>,
    write: Mutex<()>,
}

impl ApiState {
    /// Load everything from the store; bootstrap a fresh system if it is empty.
    pub fn open(store: Arc<dyn Store>) -> Result<Arc<Self>, ApiError> {
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
        let db = ConfigDb::load(stored, kv).map_err(ApiError::Corrupt)?;
        let state = Arc::new(Self {
            db: RwLock::new(db),
            store,
            write: Mutex::new(()),
        });
        state.write(|db, ctx| Ok((db.bootstrap(ctx)?, ())))?;
        Ok(state)
    }

    /// Run a write: plan with `f`, commit, apply. On any failure the
    /// allocation state is recomputed so nothing leaks, and nothing is written.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> Result<(Txn, R), ConfigError>,
    ) -> Result<R, ApiError> {
        let _w = self.write.lock();
        let mut gen = || uuid::Uuid::new_v4().to_string();
        let mut ctx = Ctx::new(iso_now(), &mut gen);
        let mut db = self.db.write();
        let (txn, r) = match f(&mut db, &mut ctx) {
            Ok(x) => x,
            Err(e) => {
                db.rebuild_allocators();
                return Err(e.into());
            }
        };
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
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
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
    }
}
