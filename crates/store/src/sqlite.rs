//! [`SqliteStore`]: the embedded, durable [`Store`] backend (SQLite through
//! rusqlite, bundled library).
//!
//! Layout (schema version 1, kept in `PRAGMA user_version`):
//! - `kv(key TEXT PRIMARY KEY, value TEXT, mod_rev INTEGER)`: live keys;
//! - `log(rev, seq, kind, key, value, PRIMARY KEY(rev, seq)) WITHOUT ROWID`:
//!   the change log, clustered by revision so `changes_after` of a recent
//!   revision is one short range scan; `kind` 0 is a put, 1 a delete (whose
//!   `value` is the value before the delete);
//! - `meta(name, value)`: `revision` (the current revision) and `compacted`
//!   (the compaction point). The revision is recovered from it on open.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A
//! commit is one `BEGIN IMMEDIATE` transaction, so it is atomic: after any
//! crash the store holds a prefix of the commit history, with revision, keys
//! and log exactly as of the last surviving commit, and is never corrupt.
//! Once [`Store::commit`] returns, the commit is in the WAL file (written,
//! not fsynced): it survives a crash of the process (panic, kill -9, OOM),
//! but a power loss or OS crash may lose the most recent commits (back to the
//! last WAL checkpoint sync). So after a power loss the store's revision may
//! be lower than one a consumer already saw; a consumer that keeps revisions
//! across such an event must re-snapshot when it finds
//! `store.revision() < its revision`.
//!
//! One `SqliteStore` per file: the revision announced to subscribers is kept
//! in memory, so commits made by another process or another `SqliteStore` on
//! the same file are applied consistently (each transaction reads the
//! revision from `meta`) but are not announced here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::watch;

use crate::{validate_batch, Event, EventBatch, EventKind, Op, Revision, Store, StoreError};

/// The schema version this build writes and reads.
const SCHEMA_VERSION: i64 = 1;
/// How long a statement waits on a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Cap on the WAL file size kept after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

const KIND_PUT: i64 = 0;
const KIND_DELETE: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE kv (
    key     TEXT PRIMARY KEY NOT NULL,
    value   TEXT NOT NULL,
    mod_rev INTEGER NOT NULL
);
CREATE TABLE log (
    rev   INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    kind  INTEGER NOT NULL CHECK (kind IN (0, 1)),
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

const SQL_META_GET: &str = "SELECT value FROM meta WHERE name = ?1";
const SQL_META_SET: &str = "UPDATE meta SET value = ?2 WHERE name = ?1";
const SQL_KV_PUT: &str = "INSERT INTO kv (key, value, mod_rev) VALUES (?1, ?2, ?3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev";
const SQL_KV_DELETE: &str = "DELETE FROM kv WHERE key = ?1 RETURNING value";
const SQL_KV_GET: &str = "SELECT value FROM kv WHERE key = ?1";
const SQL_KV_RANGE: &str = "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key";
const SQL_LOG_INSERT: &str =
    "INSERT INTO log (rev, seq, kind, key, value) VALUES (?1, ?2, ?3, ?4, ?5)";
const SQL_LOG_AFTER: &str =
    "SELECT rev, kind, key, value FROM log WHERE rev > ?1 ORDER BY rev, seq";
const SQL_LOG_COMPACT: &str = "DELETE FROM log WHERE rev <= ?1";

/// The SQLite backend. See the module doc for layout and durability.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Latest committed revision; also what [`Store::revision`] reports.
    rev_tx: watch::Sender<Revision>,
    compacted: AtomicU64,
}

impl SqliteStore {
    /// Open (creating if needed, with its parent directories) the store file
    /// at `path`, and recover its revision.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(32);
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unsupported(format!(
                "{}: journal_mode is {mode:?}, WAL is required",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        init_schema(&mut conn, path)?;
        let (revision, compacted) = check_meta(&mut conn)?;
        tracing::debug!(path = %path.display(), revision, compacted, "opened sqlite store");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            rev_tx: watch::Sender::new(revision),
            compacted: AtomicU64::new(compacted),
        })
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("revision", &*self.rev_tx.borrow())
            .field("compacted", &self.compacted.load(Ordering::Relaxed))
            .finish()
    }
}

/// Create the schema in a fresh file, or check the version of an existing one.
fn init_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            // Plain CREATE TABLE: a file holding someone else's tables fails
            // here instead of being adopted.
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            tracing::info!(path = %path.display(), "created sqlite store");
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        other => Err(StoreError::Unsupported(format!(
            "{}: schema version {other}, this build knows version {SCHEMA_VERSION}",
            path.display()
        ))),
    }
}

/// Read `revision` and `compacted` and check they agree with the log.
fn check_meta(conn: &mut Connection) -> Result<(Revision, Revision), StoreError> {
    let tx = conn.transaction()?;
    let revision = meta_get(&tx, "revision")?;
    let compacted = meta_get(&tx, "compacted")?;
    if compacted > revision {
        return Err(StoreError::Corrupt(format!(
            "compaction point {compacted} is past the revision {revision}"
        )));
    }
    let (min, max): (Option<u64>, Option<u64>) =
        tx.query_row("SELECT min(rev), max(rev) FROM log", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if let (Some(min), Some(max)) = (min, max) {
        if min <= compacted || max > revision {
            return Err(StoreError::Corrupt(format!(
                "log holds revisions {min}..={max}, expected ({compacted}, {revision}]"
            )));
        }
    }
    let max_mod: Option<u64> = tx.query_row("SELECT max(mod_rev) FROM kv", [], |row| row.get(0))?;
    if max_mod.is_some_and(|m| m > revision) {
        return Err(StoreError::Corrupt(format!(
            "a key was modified at revision {max_mod:?}, past the revision {revision}"
        )));
    }
    Ok((revision, compacted))
}

fn meta_get(tx: &Transaction<'_>, name: &str) -> Result<Revision, StoreError> {
    tx.prepare_cached(SQL_META_GET)?
        .query_row([name], |row| row.get::<_, u64>(0))
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("meta row {name:?} is missing")))
}

fn meta_set(tx: &Transaction<'_>, name: &str, value: Revision) -> Result<(), StoreError> {
    let n = tx
        .prepare_cached(SQL_META_SET)?
        .execute(params![name, value])?;
    if n != 1 {
        return Err(StoreError::Corrupt(format!("meta row {name:?} is missing")));
    }
    Ok(())
}

/// Write one batch at revision `rev` inside `tx`; returns how many events it made.
fn write_batch(tx: &Transaction<'_>, ops: &[Op], rev: Revision) -> Result<u64, StoreError> {
    let mut seq: u64 = 0;
    let mut kv_put = tx.prepare_cached(SQL_KV_PUT)?;
    let mut kv_delete = tx.prepare_cached(SQL_KV_DELETE)?;
    let mut log_insert = tx.prepare_cached(SQL_LOG_INSERT)?;
    for op in ops {
        match op {
            Op::Put { key, value } => {
                kv_put.execute(params![key, value, rev])?;
                log_insert.execute(params![rev, seq, KIND_PUT, key, value])?;
                seq += 1;
            }
            Op::Delete { key } => {
                let old: Option<String> =
                    kv_delete.query_row([key], |row| row.get(0)).optional()?;
                if let Some(old) = old {
                    log_insert.execute(params![rev, seq, KIND_DELETE, key, old])?;
                    seq += 1;
                }
            }
        }
    }
    Ok(seq)
}

impl Store for SqliteStore {
    fn commit(&self, ops: Vec<Op>) -> Result<Revision, StoreError> {
        let revs = self.commit_many(vec![ops])?;
        Ok(revs.first().copied().unwrap_or_else(|| self.revision()))
    }

    fn commit_many(&self, batches: Vec<Vec<Op>>) -> Result<Vec<Revision>, StoreError> {
        for ops in &batches {
            validate_batch(ops)?;
        }
        if batches.iter().all(Vec::is_empty) {
            let r = self.revision();
            return Ok(batches.iter().map(|_| r).collect());
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let start = meta_get(&tx, "revision")?;
        let mut current = start;
        let mut revs = Vec::with_capacity(batches.len());
        for ops in &batches {
            let rev = current
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("revision counter overflow".into()))?;
            // A batch without events (only deletes of missing keys) makes no revision.
            if write_batch(&tx, ops, rev)? > 0 {
                current = rev;
            }
            revs.push(current);
        }
        if current == start {
            // Dropping the transaction rolls it back (it changed nothing anyway).
            drop(tx);
            return Ok(revs);
        }
        meta_set(&tx, "revision", current)?;
        tx.commit()?;
        // Announce while still holding the connection, so announcements are
        // in commit order.
        self.rev_tx.send_replace(current);
        Ok(revs)
    }

    fn snapshot(&self, prefix: &str) -> Result<(Revision, Vec<(String, String)>), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let revision = meta_get(&tx, "revision")?;
        let mut items = Vec::new();
        {
            let mut stmt = tx.prepare_cached(SQL_KV_RANGE)?;
            let mut rows = stmt.query([prefix])?;
            // Keys sort byte-wise (BINARY collation), so the keys with this
            // prefix are exactly the run starting at `prefix`.
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                if !key.starts_with(prefix) {
                    break;
                }
                items.push((key, row.get(1)?));
            }
        }
        tx.commit()?;
        Ok((revision, items))
    }

    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock();
        let value = conn
            .prepare_cached(SQL_KV_GET)?
            .query_row([key], |row| row.get(0))
            .optional()?;
        Ok(value)
    }

    fn revision(&self) -> Revision {
        *self.rev_tx.borrow()
    }

    fn compacted_revision(&self) -> Revision {
        self.compacted.load(Ordering::Acquire)
    }

    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let compacted = meta_get(&tx, "compacted")?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        let current = meta_get(&tx, "revision")?;
        let mut batch = EventBatch::new(limit);
        if after < current {
            let mut stmt = tx.prepare_cached(SQL_LOG_AFTER)?;
            let mut rows = stmt.query([after])?;
            while let Some(row) = rows.next()? {
                let revision: u64 = row.get(0)?;
                if batch.full_before(revision) {
                    break;
                }
                let kind = match row.get::<_, i64>(1)? {
                    KIND_PUT => EventKind::Put,
                    KIND_DELETE => EventKind::Delete,
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "log entry at revision {revision} has kind {other}"
                        )))
                    }
                };
                batch.push(Event {
                    revision,
                    kind,
                    key: row.get(2)?,
                    value: row.get(3)?,
                });
            }
        }
        drop(tx);
        Ok(batch.into_events())
    }

    fn compact(&self, upto: Revision) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = meta_get(&tx, "revision")?;
        if upto > current {
            return Err(StoreError::FutureRevision {
                requested: upto,
                current,
            });
        }
        let compacted = meta_get(&tx, "compacted")?;
        if upto <= compacted {
            return Ok(());
        }
        let dropped = tx.prepare_cached(SQL_LOG_COMPACT)?.execute([upto])?;
        meta_set(&tx, "compacted", upto)?;
        tx.commit()?;
        self.compacted.store(upto, Ordering::Release);
        tracing::info!(path = %self.path.display(), upto, dropped, "compacted change log");
        Ok(())
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.rev_tx.subscribe()
    }
}
