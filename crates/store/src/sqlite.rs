//! [`SqliteStore`]: the embedded, durable [`Store`] backend (SQLite through
//! rusqlite, bundled library).
//!
//! Layout (schema version 2, kept in `PRAGMA user_version`). Each value is
//! stored once, in the change log; the live keys point at their log entry:
//! - `log(id INTEGER PRIMARY KEY, rev, kind, key, value)` with an index on
//!   `rev`: the change log, one row per event, ordered by `(rev, id)` (ids
//!   grow within a revision, so that is batch order); `kind` 0 is a put, 1 a
//!   delete (whose `value` is the value before the delete, copied from the
//!   put it removes, so a delete event outlives that put's compaction). A
//!   rowid table, so a value of a few KB stays on its leaf page;
//! - `kv(key TEXT PRIMARY KEY, log_id) WITHOUT ROWID`: live keys, each
//!   pointing at the put event that holds its current value;
//! - `meta(name, value)`: `revision` (the current revision) and `compacted`
//!   (the compaction point). The revision is recovered from it on open.
//!
//! Compaction drops the events of revisions `<= compacted` except the puts
//! that live keys still point at: those stay as the keys' values but are
//! never returned by `changes_after` (which only serves `rev > compacted`).
//!
//! Version 1 (until the issue 2 speed-up) kept every value twice: in
//! `kv(key, value, mod_rev)` and in `log(rev, seq, kind, key, value)`
//! (a WITHOUT ROWID table, where values over ~1 KB spilled to overflow
//! pages). [`SqliteStore::open`] migrates a version-1 file in place, in one
//! transaction (see [`migrate_v1`]).
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A
//! commit is one `BEGIN IMMEDIATE` transaction, so it is atomic: after any
//! crash the store holds a prefix of the commit history, with revision, keys
//! and log exactly as of the last surviving commit, and is never corrupt.
//! Once [`Store::commit`] returns, the commit is in the WAL file (written,
//! not fsynced): it survives a crash of the process (panic, kill -9, OOM),
//! but a power loss or OS crash may lose the most recent commits (back to the
//! last WAL checkpoint sync; a checkpoint runs every
//! [`WAL_AUTOCHECKPOINT_PAGES`] WAL pages, about 4 MB). So after a power loss the store's revision may
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
const SCHEMA_VERSION: i64 = 2;
/// The previous schema version, which [`migrate_v1`] upgrades on open.
const SCHEMA_V1: i64 = 1;
/// How long a statement waits on a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Cap on the WAL file size kept after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// WAL pages after which a commit checkpoints the WAL into the database
/// (SQLite's default). The commit that checkpoints stalls every write queued
/// behind it: at 8192 pages (32 MB) that stall set the port-create p99 at
/// ~32 ms in `filament bench api`; at 1000 pages it is 10-12 ms, with the
/// same throughput (1k VNs + 20k ports in 3.9-4.4 s on the 2-core box).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 1000;

const KIND_PUT: i64 = 0;
const KIND_DELETE: i64 = 1;

/// The tables of schema version 2 (`log` and `kv`), without `meta`.
const SCHEMA_TABLES: &str = "
CREATE TABLE log (
    id    INTEGER PRIMARY KEY,
    rev   INTEGER NOT NULL,
    kind  INTEGER NOT NULL CHECK (kind IN (0, 1)),
    key   TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX log_rev ON log (rev);
CREATE TABLE kv (
    key    TEXT PRIMARY KEY NOT NULL,
    log_id INTEGER NOT NULL
) WITHOUT ROWID;
";

const SCHEMA_META: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

const SQL_META_GET: &str = "SELECT value FROM meta WHERE name = ?1";
const SQL_META_SET: &str = "UPDATE meta SET value = ?2 WHERE name = ?1";
const SQL_LOG_PUT: &str = "INSERT INTO log (rev, kind, key, value) VALUES (?1, 0, ?2, ?3)";
/// The delete event copies the value of the put it removes.
const SQL_LOG_DELETE: &str =
    "INSERT INTO log (rev, kind, key, value) SELECT ?1, 1, key, value FROM log WHERE id = ?2";
const SQL_KV_PUT: &str = "INSERT INTO kv (key, log_id) VALUES (?1, ?2)
     ON CONFLICT (key) DO UPDATE SET log_id = excluded.log_id";
const SQL_KV_DELETE: &str = "DELETE FROM kv WHERE key = ?1 RETURNING log_id";
const SQL_KV_GET: &str =
    "SELECT log.value FROM kv CROSS JOIN log ON log.id = kv.log_id WHERE kv.key = ?1";
const SQL_KV_RANGE: &str = "SELECT kv.key, log.value FROM kv CROSS JOIN log ON log.id = kv.log_id
     WHERE kv.key >= ?1 ORDER BY kv.key";
const SQL_LOG_AFTER: &str = "SELECT rev, kind, key, value FROM log WHERE rev > ?1 ORDER BY rev, id";
/// Drop history up to a revision, keeping the puts live keys point at.
const SQL_LOG_COMPACT: &str =
    "DELETE FROM log WHERE rev <= ?1 AND id NOT IN (SELECT log_id FROM kv)";

/// Upgrade a version-1 file (values in both `kv` and `log`) to version 2,
/// inside the caller's transaction. Every v1 log row is copied in `(rev,
/// seq)` order; a live key whose put was compacted away gets one put row at
/// its `mod_rev` (at or below the compaction point, so never served as an
/// event); then each key points at the put of its `mod_rev`.
const MIGRATE_V1: &str = "
ALTER TABLE log RENAME TO log_v1;
ALTER TABLE kv RENAME TO kv_v1;
DROP INDEX IF EXISTS log_rev;
CREATE TABLE log (
    id    INTEGER PRIMARY KEY,
    rev   INTEGER NOT NULL,
    kind  INTEGER NOT NULL CHECK (kind IN (0, 1)),
    key   TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX log_rev ON log (rev);
INSERT INTO log (rev, kind, key, value)
    SELECT rev, kind, key, value FROM log_v1 ORDER BY rev, seq;
INSERT INTO log (rev, kind, key, value)
    SELECT mod_rev, 0, key, value FROM kv_v1
    WHERE mod_rev <= (SELECT value FROM meta WHERE name = 'compacted')
    ORDER BY mod_rev, key;
CREATE TABLE kv (
    key    TEXT PRIMARY KEY NOT NULL,
    log_id INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO kv (key, log_id)
    SELECT k.key, l.id FROM kv_v1 k JOIN log l
    ON l.rev = k.mod_rev AND l.key = k.key AND l.kind = 0 AND l.value = k.value;
";

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
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
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

/// Create the schema in a fresh file, migrate a version-1 file, or check
/// the version of an existing one.
fn init_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            // Plain CREATE TABLE: a file holding someone else's tables fails
            // here instead of being adopted.
            tx.execute_batch(SCHEMA_TABLES)?;
            tx.execute_batch(SCHEMA_META)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            tracing::info!(path = %path.display(), "created sqlite store");
            Ok(())
        }
        SCHEMA_V1 => {
            let keys = migrate_v1(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            tracing::info!(path = %path.display(), keys, "migrated sqlite store from schema version 1 to 2");
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        other => Err(StoreError::Unsupported(format!(
            "{}: schema version {other}, this build knows versions {SCHEMA_V1} and {SCHEMA_VERSION}",
            path.display()
        ))),
    }
}

/// Rewrite a version-1 store as version 2 inside `tx` (see [`MIGRATE_V1`]);
/// returns the number of live keys. Nothing is kept if any step fails: the
/// caller's transaction is rolled back and the file stays at version 1.
fn migrate_v1(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    tx.execute_batch(MIGRATE_V1)?;
    let (before, after): (usize, usize) = tx.query_row(
        "SELECT (SELECT count(*) FROM kv_v1), (SELECT count(*) FROM kv)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if before != after {
        return Err(StoreError::Corrupt(format!(
            "schema version 1 store: {} of {before} live keys have no put event at their mod_rev",
            before.saturating_sub(after)
        )));
    }
    tx.execute_batch("DROP TABLE kv_v1; DROP TABLE log_v1;")?;
    Ok(after)
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
    let max: Option<u64> = tx.query_row("SELECT max(rev) FROM log", [], |row| row.get(0))?;
    if let Some(max) = max.filter(|&m| m > revision) {
        return Err(StoreError::Corrupt(format!(
            "the log holds revision {max}, past the revision {revision}"
        )));
    }
    // Every live key points at a put event at or below the revision.
    let (keys, found, deletes, max_mod): (u64, u64, Option<u64>, Option<u64>) = tx.query_row(
        "SELECT count(*), count(log.id), sum(log.kind = 1), max(log.rev)
         FROM kv LEFT JOIN log ON log.id = kv.log_id",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    if found != keys || deletes.unwrap_or(0) > 0 {
        return Err(StoreError::Corrupt(format!(
            "{} of {keys} live keys do not point at a put event",
            keys - found + deletes.unwrap_or(0)
        )));
    }
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

/// The statements a commit runs, taken from the statement cache once per
/// commit (not per batch: a cache lookup and return costs about as much as
/// running a small statement).
struct WriteStmts<'c> {
    log_put: rusqlite::CachedStatement<'c>,
    log_delete: rusqlite::CachedStatement<'c>,
    kv_put: rusqlite::CachedStatement<'c>,
    kv_delete: rusqlite::CachedStatement<'c>,
}

impl<'c> WriteStmts<'c> {
    fn new(tx: &'c Transaction<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            log_put: tx.prepare_cached(SQL_LOG_PUT)?,
            log_delete: tx.prepare_cached(SQL_LOG_DELETE)?,
            kv_put: tx.prepare_cached(SQL_KV_PUT)?,
            kv_delete: tx.prepare_cached(SQL_KV_DELETE)?,
        })
    }
}

/// Write one batch at revision `rev` inside `tx`; returns how many events it made.
fn write_batch(
    tx: &Transaction<'_>,
    stmts: &mut WriteStmts<'_>,
    ops: &[Op],
    rev: Revision,
) -> Result<u64, StoreError> {
    let mut events: u64 = 0;
    let WriteStmts {
        log_put,
        log_delete,
        kv_put,
        kv_delete,
    } = stmts;
    for op in ops {
        match op {
            Op::Put { key, value } => {
                log_put.execute(params![rev, key, value])?;
                kv_put.execute(params![key, tx.last_insert_rowid()])?;
                events += 1;
            }
            Op::Delete { key } => {
                let old: Option<i64> = kv_delete.query_row([key], |row| row.get(0)).optional()?;
                if let Some(old) = old {
                    if log_delete.execute(params![rev, old])? != 1 {
                        return Err(StoreError::Corrupt(format!(
                            "key {key:?} points at log entry {old}, which does not exist"
                        )));
                    }
                    events += 1;
                }
            }
        }
    }
    Ok(events)
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
        {
            let mut stmts = WriteStmts::new(&tx)?;
            for ops in &batches {
                let rev = current
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Corrupt("revision counter overflow".into()))?;
                // A batch without events (only deletes of missing keys) makes no revision.
                if write_batch(&tx, &mut stmts, ops, rev)? > 0 {
                    current = rev;
                }
                revs.push(current);
            }
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
