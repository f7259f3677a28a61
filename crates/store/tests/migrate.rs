//! Migration of a schema-version-1 SQLite store (every value kept twice, in
//! `kv` and in `log`) to version 2 (each value once, `kv` points at the log).
//! The version-1 file is written here with version 1's own tables and
//! statements, as the old build wrote them, then opened by the current build.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use filament_store::{Event, MemStore, Op, Revision, SqliteStore, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

/// Schema version 1, verbatim.
const V1_SCHEMA: &str = "
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
PRAGMA user_version = 1;
";

/// The `i`-th batch (from 1): puts that cycle over 37 keys, a counter, and
/// every third batch a delete, so keys are overwritten, deleted and
/// re-created, and some live keys were last written long ago.
fn batch(i: u64) -> Vec<Op> {
    let mut ops = vec![
        Op::put(format!("/k/{:03}", i % 37), format!("v{i}")),
        Op::put("/count", i.to_string()),
    ];
    let victim = (i * 7) % 37;
    if i % 3 == 0 && victim != i % 37 {
        ops.push(Op::delete(format!("/k/{victim:03}")));
    }
    if i == 5 {
        ops.push(Op::put("/old", "written once, at revision 5"));
    }
    ops
}

/// Commit one batch the way the version-1 build did.
fn v1_commit(conn: &mut Connection, ops: &[Op]) {
    let tx = conn.transaction().unwrap();
    let rev: u64 = tx
        .query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
            r.get::<_, u64>(0)
        })
        .unwrap()
        + 1;
    let mut seq = 0u64;
    for op in ops {
        match op {
            Op::Put { key, value } => {
                tx.execute(
                    "INSERT INTO kv (key, value, mod_rev) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
                    params![key, value, rev],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO log (rev, seq, kind, key, value) VALUES (?1, ?2, 0, ?3, ?4)",
                    params![rev, seq, key, value],
                )
                .unwrap();
                seq += 1;
            }
            Op::Delete { key } => {
                let old: Option<String> = tx
                    .query_row(
                        "DELETE FROM kv WHERE key = ?1 RETURNING value",
                        [key],
                        |r| r.get(0),
                    )
                    .optional()
                    .unwrap();
                if let Some(old) = old {
                    tx.execute(
                        "INSERT INTO log (rev, seq, kind, key, value) VALUES (?1, ?2, 1, ?3, ?4)",
                        params![rev, seq, key, old],
                    )
                    .unwrap();
                    seq += 1;
                }
            }
        }
    }
    assert!(seq > 0, "every test batch makes events");
    tx.execute("UPDATE meta SET value = ?1 WHERE name = 'revision'", [rev])
        .unwrap();
    tx.commit().unwrap();
}

/// Write a version-1 file holding batches 1..=n, compacted up to `compacted`.
fn write_v1(path: &Path, n: u64, compacted: u64) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(V1_SCHEMA).unwrap();
    for i in 1..=n {
        v1_commit(&mut conn, &batch(i));
    }
    conn.execute("DELETE FROM log WHERE rev <= ?1", [compacted])
        .unwrap();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
        [compacted],
    )
    .unwrap();
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// Everything a store shows: revision, compaction point, keys, log.
fn dump(s: &dyn Store) -> (Revision, Revision, Vec<(String, String)>, Vec<Event>) {
    let (rev, keys) = s.snapshot("").unwrap();
    let log = s.changes_after(s.compacted_revision(), usize::MAX).unwrap();
    (rev, s.compacted_revision(), keys, log)
}

fn replay(n: u64, compacted: u64) -> MemStore {
    let m = MemStore::new();
    for i in 1..=n {
        assert_eq!(m.commit(batch(i)).unwrap(), i);
    }
    m.compact(compacted).unwrap();
    m
}

#[test]
fn v1_store_migrates_with_keys_log_and_compaction_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    // Compacted at 100 of 120: keys last written at or below 100 (among
    // them /old, from revision 5) lost their put events in version 1.
    write_v1(&path, 120, 100);
    assert_eq!(user_version(&path), 1);

    let want = dump(&replay(120, 100));
    assert!(want.2.iter().any(|(k, _)| k == "/old"));
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), 2);
    assert_eq!(dump(&s), want);
    assert_eq!(
        s.get("/old").unwrap().as_deref(),
        Some("written once, at revision 5")
    );
    assert!(s.changes_after(99, 10).unwrap_err().is_compacted());

    // The migrated store keeps working, and compacts, like a fresh one.
    let mem = replay(120, 100);
    for i in 121..=130 {
        assert_eq!(s.commit(batch(i)).unwrap(), i);
        assert_eq!(mem.commit(batch(i)).unwrap(), i);
    }
    s.compact(125).unwrap();
    mem.compact(125).unwrap();
    assert_eq!(dump(&s), dump(&mem));
    drop(s);

    // Reopening does not migrate again and shows the same store.
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(dump(&s), dump(&mem));

    // Each value is stored once: the kv table holds no values any more.
    let raw = Connection::open(&path).unwrap();
    let cols: Vec<String> = raw
        .prepare("SELECT name FROM pragma_table_info('kv')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    assert_eq!(cols, ["key", "log_id"]);
}

#[test]
fn v1_store_without_compaction_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    write_v1(&path, 50, 0);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(dump(&s), dump(&replay(50, 0)));
}

/// A version-1 file whose live key has no put event at its `mod_rev` above
/// the compaction point is refused, and left as it was.
#[test]
fn broken_v1_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    write_v1(&path, 30, 10);
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM log WHERE rev = 30 AND key = '/count'", [])
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("1 of"), "{err}");
    assert_eq!(user_version(&path), 1);
    let raw = Connection::open(&path).unwrap();
    let kv_value: String = raw
        .query_row("SELECT value FROM kv WHERE key = '/count'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kv_value, "30");
}
