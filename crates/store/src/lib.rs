//! The config store: a revisioned key-value space with a resumable change feed.
//!
//! Semantics (the same for every backend, modelled on etcd's MVCC so an etcd
//! backend can follow):
//! - keys and values are UTF-8 strings; the config API stores one JSON
//!   document per object under `/config/<type>/<uuid>`; a key must not be
//!   empty;
//! - [`Store::commit`] applies a batch of puts and deletes atomically and gives
//!   the whole batch ONE new revision (revisions start at 1 and only grow; an
//!   empty store is at revision 0);
//! - a batch names each key at most once (as etcd's transactions require);
//!   a batch that breaks this, or has an empty key, is rejected with
//!   [`StoreError::InvalidBatch`] and writes nothing;
//! - every committed op becomes an [`Event`] in the change log, except the
//!   delete of a key that does not exist, which does nothing; a batch that
//!   produces no event at all (empty, or only such deletes) does not create a
//!   revision: it returns the current one. So every revision has at least
//!   one event;
//! - [`Store::changes_after`] returns events in commit order (and, within a
//!   revision, in batch order), never splitting a revision, so a consumer
//!   that remembers the last revision it fully processed resumes with no gap
//!   and no duplicate;
//! - [`Store::compact`] drops old change-log history (never keys); asking for
//!   changes from before the compaction point gives
//!   [`StoreError::Compacted`], upon which the consumer re-reads a
//!   [`Store::snapshot`] and resumes from the snapshot's revision;
//! - [`watch`] turns that into an async stream that waits for new commits.
//!
//! Backends: [`SqliteStore`] (embedded, durable; see its doc for the exact
//! durability guarantee) and [`MemStore`] (in memory, for tests of other
//! crates). Both pass the same conformance suite (`tests/conformance.rs`).

use std::collections::HashSet;

mod mem;
mod sqlite;
mod watch;

pub use mem::MemStore;
pub use sqlite::SqliteStore;
pub use watch::watch;

/// A store revision. 0 is the empty store; each effective commit adds one.
pub type Revision = u64;

/// One operation of a [`Store::commit`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite `key` with `value`.
    Put { key: String, value: String },
    /// Remove `key`; a no-op (no event) if it does not exist.
    Delete { key: String },
}

impl Op {
    /// Shorthand for [`Op::Put`].
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Shorthand for [`Op::Delete`].
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }

    /// The key this op touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// What happened to a key in an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The revision of the batch this event belongs to.
    pub revision: Revision,
    pub kind: EventKind,
    pub key: String,
    /// Put: the new value. Delete: the value the key had before the delete.
    pub value: String,
}

/// Errors of every backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite backend failed (I/O error, disk full, database locked by
    /// another process beyond the busy timeout, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A filesystem operation around the store failed.
    #[error("i/o on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The history needed to serve `changes_after(requested)` was dropped by
    /// [`Store::compact`]: only `after >= oldest` can be served (`oldest` is
    /// the compaction point). Re-read a snapshot and resume from it.
    #[error("revision {requested} is compacted: history is kept only after revision {oldest}")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// An operation named a revision the store has not reached yet.
    #[error("revision {requested} is in the future: the store is at revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The batch was rejected before anything was written.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// The stored data breaks the store's invariants.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The store file or its environment is not something this build can use
    /// (newer schema version, no WAL support, ...).
    #[error("unsupported store: {0}")]
    Unsupported(String),
    /// A background task running a store call failed (panicked or was
    /// cancelled); only [`watch`] produces this.
    #[error("store task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// True for [`StoreError::Compacted`]: the consumer must re-snapshot.
    pub fn is_compacted(&self) -> bool {
        matches!(self, StoreError::Compacted { .. })
    }
}

/// A revisioned key-value store. See the crate doc for the semantics every
/// implementation must keep.
pub trait Store: Send + Sync + 'static {
    /// Atomically apply all ops (all or nothing) and give them one new
    /// revision. Returns it.
    ///
    /// Deleting a missing key is a no-op op (no event). A batch without any
    /// event (e.g. an empty one) returns the current revision and writes
    /// nothing. A batch naming a key twice, or an empty key, is rejected with
    /// [`StoreError::InvalidBatch`].
    fn commit(&self, ops: Vec<Op>) -> Result<Revision, StoreError>;

    /// Commit several batches in order, each with its own revision (as if
    /// [`Store::commit`] were called for each), returning their revisions.
    /// Group commit: a backend that can makes the whole call one atomic,
    /// durable write (all batches or none), which is much cheaper than one
    /// write per batch. The default commits batch by batch and stops at the
    /// first error.
    fn commit_many(&self, batches: Vec<Vec<Op>>) -> Result<Vec<Revision>, StoreError> {
        batches.into_iter().map(|b| self.commit(b)).collect()
    }

    /// Live keys starting with `prefix` (sorted by key, byte-wise) with their
    /// values, and the revision this snapshot is at (consistent: taken in one
    /// read transaction).
    fn snapshot(&self, prefix: &str) -> Result<(Revision, Vec<(String, String)>), StoreError>;

    /// The current value of `key`.
    fn get(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// The latest committed revision.
    fn revision(&self) -> Revision;

    /// The compaction point: history is kept for revisions above it only.
    fn compacted_revision(&self) -> Revision;

    /// Events with revision > `after`, in order, at most `limit` events but
    /// never splitting a revision's events (a revision with more events than
    /// `limit` is returned whole; `limit` 0 acts as 1). Empty when `after` is
    /// at or past the current revision. `Err(Compacted)` if `after` is older
    /// than retained history (`after < compacted_revision()`).
    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Drop change-log history for revisions <= `upto` (keys are
    /// unaffected). A no-op if `upto` is at or below the current compaction
    /// point; [`StoreError::FutureRevision`] if `upto` is above the current
    /// revision.
    fn compact(&self, upto: Revision) -> Result<(), StoreError>;

    /// A receiver that sees the latest committed revision
    /// (tokio::sync::watch). It is updated once a commit is committed in the
    /// backend, so `changes_after` already returns the commit's events; a
    /// batch that creates no revision does not touch it.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision>;
}

/// Check the batch rules shared by every backend (non-empty keys, each key at
/// most once) before anything is written.
pub(crate) fn validate_batch(ops: &[Op]) -> Result<(), StoreError> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let key = op.key();
        if key.is_empty() {
            return Err(StoreError::InvalidBatch(format!("op {i} has an empty key")));
        }
        if ops.len() > 1 && !seen.insert(key) {
            return Err(StoreError::InvalidBatch(format!(
                "key {key:?} appears more than once in the batch (op {i})"
            )));
        }
    }
    Ok(())
}

/// Collects events for `changes_after`, stopping at a revision boundary once
/// `limit` is reached. Shared by the backends so the rule is written once.
pub(crate) struct EventBatch {
    limit: usize,
    events: Vec<Event>,
}

impl EventBatch {
    pub(crate) fn new(limit: usize) -> Self {
        EventBatch {
            limit: limit.max(1),
            events: Vec::new(),
        }
    }

    /// True if an event of revision `rev` would exceed the limit and start a
    /// new revision: the caller stops before it.
    pub(crate) fn full_before(&self, rev: Revision) -> bool {
        self.events.len() >= self.limit && self.events.last().is_some_and(|e| e.revision != rev)
    }

    pub(crate) fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    pub(crate) fn into_events(self) -> Vec<Event> {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_empty_and_duplicate_keys() {
        assert!(validate_batch(&[]).is_ok());
        assert!(validate_batch(&[Op::put("a", "1"), Op::delete("b")]).is_ok());
        assert!(matches!(
            validate_batch(&[Op::put("", "1")]),
            Err(StoreError::InvalidBatch(_))
        ));
        assert!(matches!(
            validate_batch(&[Op::put("a", "1"), Op::delete("a")]),
            Err(StoreError::InvalidBatch(_))
        ));
    }

    #[test]
    fn event_batch_never_splits_a_revision() {
        let ev = |revision| Event {
            revision,
            kind: EventKind::Put,
            key: "k".into(),
            value: "v".into(),
        };
        let mut b = EventBatch::new(2);
        for rev in [1, 2, 2, 2, 3] {
            if b.full_before(rev) {
                break;
            }
            b.push(ev(rev));
        }
        let revs: Vec<_> = b.into_events().iter().map(|e| e.revision).collect();
        assert_eq!(revs, vec![1, 2, 2, 2]);

        let mut b = EventBatch::new(0);
        assert!(!b.full_before(1));
        b.push(ev(1));
        assert!(!b.full_before(1));
        assert!(b.full_before(2));
    }
}
