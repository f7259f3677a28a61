//! [`watch`]: the change log as an async stream that waits for new commits.
//!
//! The stream pages through [`Store::changes_after`] and, once caught up,
//! waits on [`Store::subscribe`]. It marks the current revision as seen
//! *before* reading the log, so a commit landing between the read and the
//! wait still wakes it: no commit is ever missed, and since it resumes from
//! the last event it yielded, none is yielded twice.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::watch as tokio_watch;

use crate::{Event, Revision, Store, StoreError};

/// How many events one `changes_after` call fetches (whole revisions, so
/// possibly more).
const PAGE: usize = 1024;

/// Async stream of events after `after`, waiting for new commits; ends with
/// an `Err` item on error (e.g. [`StoreError::Compacted`]).
///
/// Store calls run on Tokio's blocking pool when polled inside a Tokio
/// runtime (so a slow disk or a long compaction does not stall the async
/// workers), and inline otherwise.
pub fn watch(
    store: Arc<dyn Store>,
    after: Revision,
) -> impl Stream<Item = Result<Event, StoreError>> + Send + 'static {
    let rx = store.subscribe();
    let state = State {
        store,
        rx,
        last: after,
        buffer: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
}

struct State {
    store: Arc<dyn Store>,
    rx: tokio_watch::Receiver<Revision>,
    /// The last revision whose events were all fetched.
    last: Revision,
    buffer: VecDeque<Event>,
    done: bool,
}

impl State {
    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            // Mark what is announced now as seen before reading, so any
            // commit after the read makes `changed()` return at once.
            self.rx.borrow_and_update();
            match fetch(Arc::clone(&self.store), self.last).await {
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Ok(events) => match events.last() {
                    Some(last) => {
                        // changes_after returns whole revisions only.
                        self.last = last.revision;
                        self.buffer.extend(events);
                    }
                    None => {
                        if self.rx.changed().await.is_err() {
                            // The store is gone (cannot happen while we hold
                            // it, but end cleanly rather than spin).
                            self.done = true;
                        }
                    }
                },
            }
        }
    }
}

async fn fetch(store: Arc<dyn Store>, after: Revision) -> Result<Vec<Event>, StoreError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return store.changes_after(after, PAGE);
    }
    tokio::task::spawn_blocking(move || store.changes_after(after, PAGE))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}
