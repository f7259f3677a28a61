//! [`MemStore`]: an in-memory [`Store`] with exactly the semantics of the
//! durable backends, for tests of other crates (and as the reference the
//! conformance suite checks the others against). Nothing survives a drop.

use std::collections::{BTreeMap, VecDeque};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{validate_batch, Event, EventBatch, EventKind, Op, Revision, Store, StoreError};

/// In-memory backend. Cheap to create; all calls take one mutex.
pub struct MemStore {
    inner: Mutex<Inner>,
    rev_tx: watch::Sender<Revision>,
}

struct Inner {
    kv: BTreeMap<String, String>,
    /// Events of revisions above `compacted`, in order.
    log: VecDeque<Event>,
    revision: Revision,
    compacted: Revision,
}

impl MemStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        MemStore {
            inner: Mutex::new(Inner {
                kv: BTreeMap::new(),
                log: VecDeque::new(),
                revision: 0,
                compacted: 0,
            }),
            rev_tx: watch::Sender::new(0),
        }
    }
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("MemStore")
            .field("revision", &inner.revision)
            .field("compacted", &inner.compacted)
            .field("keys", &inner.kv.len())
            .finish()
    }
}

impl Store for MemStore {
    fn commit(&self, ops: Vec<Op>) -> Result<Revision, StoreError> {
        validate_batch(&ops)?;
        let mut inner = self.inner.lock();
        let rev = inner
            .revision
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("revision counter overflow".into()))?;
        // Nothing below can fail, so applying in place is atomic.
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    inner.kv.insert(key.clone(), value.clone());
                    events.push(Event {
                        revision: rev,
                        kind: EventKind::Put,
                        key,
                        value,
                    });
                }
                Op::Delete { key } => {
                    if let Some(old) = inner.kv.remove(&key) {
                        events.push(Event {
                            revision: rev,
                            kind: EventKind::Delete,
                            key,
                            value: old,
                        });
                    }
                }
            }
        }
        if events.is_empty() {
            return Ok(inner.revision);
        }
        inner.log.extend(events);
        inner.revision = rev;
        // Announce while still holding the lock so announcements are ordered.
        self.rev_tx.send_replace(rev);
        Ok(rev)
    }

    fn commit_many(&self, batches: Vec<Vec<Op>>) -> Result<Vec<Revision>, StoreError> {
        // Validate everything first: after that nothing can fail, so the
        // whole call is all or nothing, like the SQLite backend.
        for ops in &batches {
            validate_batch(ops)?;
        }
        batches.into_iter().map(|b| self.commit(b)).collect()
    }

    fn snapshot(&self, prefix: &str) -> Result<(Revision, Vec<(String, String)>), StoreError> {
        let inner = self.inner.lock();
        let items = inner
            .kv
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok((inner.revision, items))
    }

    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.inner.lock().kv.get(key).cloned())
    }

    fn revision(&self) -> Revision {
        self.inner.lock().revision
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.lock().compacted
    }

    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError> {
        let inner = self.inner.lock();
        if after < inner.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: inner.compacted,
            });
        }
        let start = inner.log.partition_point(|e| e.revision <= after);
        let mut batch = EventBatch::new(limit);
        for event in inner.log.range(start..) {
            if batch.full_before(event.revision) {
                break;
            }
            batch.push(event.clone());
        }
        Ok(batch.into_events())
    }

    fn compact(&self, upto: Revision) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        if upto > inner.revision {
            return Err(StoreError::FutureRevision {
                requested: upto,
                current: inner.revision,
            });
        }
        if upto <= inner.compacted {
            return Ok(());
        }
        let end = inner.log.partition_point(|e| e.revision <= upto);
        inner.log.drain(..end);
        inner.compacted = upto;
        Ok(())
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.rev_tx.subscribe()
    }
}
