//! Conformance suite: the semantics of the crate doc, written once against
//! `dyn Store` and run against every backend (see `backend_suite!` at the
//! bottom). A new backend adds one line there.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use filament_store::{
    watch, Event, EventKind, MemStore, Op, Revision, SqliteStore, Store, StoreError,
};
use futures::StreamExt;

/// A store plus whatever must outlive it (the temp dir of a file backend).
struct Harness {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn mem() -> Harness {
    Harness {
        store: Arc::new(MemStore::new()),
        _dir: None,
    }
}

fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
    Harness {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::put(key, value)
}

fn del(key: &str) -> Op {
    Op::delete(key)
}

fn ev(revision: Revision, kind: EventKind, key: &str, value: &str) -> Event {
    Event {
        revision,
        kind,
        key: key.into(),
        value: value.into(),
    }
}

fn all_events(s: &dyn Store) -> Vec<Event> {
    s.changes_after(s.compacted_revision(), usize::MAX).unwrap()
}

fn fresh_store_is_empty(s: &dyn Store) {
    assert_eq!(s.revision(), 0);
    assert_eq!(s.compacted_revision(), 0);
    assert_eq!(s.snapshot("").unwrap(), (0, vec![]));
    assert_eq!(s.get("/a").unwrap(), None);
    assert_eq!(s.changes_after(0, 10).unwrap(), vec![]);
    assert_eq!(*s.subscribe().borrow(), 0);
}

fn commit_get_snapshot_revision(s: &dyn Store) {
    let r1 = s
        .commit(vec![
            put("/config/b/1", "b1"),
            put("/config/a/1", "a1"),
            put("/config/ab/2", "ab2"),
            put("/other", "o"),
        ])
        .unwrap();
    assert_eq!(r1, 1);
    assert_eq!(s.revision(), 1);
    assert_eq!(s.get("/config/a/1").unwrap().as_deref(), Some("a1"));
    assert_eq!(s.get("/config/a").unwrap(), None);

    let (rev, items) = s.snapshot("/config/a").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(
        items,
        vec![
            ("/config/a/1".to_string(), "a1".to_string()),
            ("/config/ab/2".to_string(), "ab2".to_string()),
        ]
    );
    let (_, items) = s.snapshot("/config/a/").unwrap();
    assert_eq!(items, vec![("/config/a/1".to_string(), "a1".to_string())]);
    let (_, items) = s.snapshot("").unwrap();
    let keys: Vec<_> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["/config/a/1", "/config/ab/2", "/config/b/1", "/other"]
    );
    assert_eq!(s.snapshot("/nope").unwrap(), (1, vec![]));

    let r2 = s.commit(vec![put("/config/a/1", "a1-v2")]).unwrap();
    assert_eq!(r2, 2);
    assert_eq!(s.get("/config/a/1").unwrap().as_deref(), Some("a1-v2"));
    let r3 = s.commit(vec![del("/config/b/1")]).unwrap();
    assert_eq!(r3, 3);
    assert_eq!(s.get("/config/b/1").unwrap(), None);
    let (rev, items) = s.snapshot("/config/").unwrap();
    assert_eq!(rev, 3);
    assert_eq!(
        items,
        vec![
            ("/config/a/1".to_string(), "a1-v2".to_string()),
            ("/config/ab/2".to_string(), "ab2".to_string()),
        ]
    );
}

fn empty_batch_writes_nothing(s: &dyn Store) {
    assert_eq!(s.commit(vec![]).unwrap(), 0);
    assert_eq!(s.revision(), 0);
    s.commit(vec![put("/a", "1")]).unwrap();
    let rx = s.subscribe();
    assert_eq!(s.commit(vec![]).unwrap(), 1);
    assert_eq!(s.revision(), 1);
    assert!(!rx.has_changed().unwrap());
    assert_eq!(all_events(s).len(), 1);
}

fn delete_of_missing_key_is_a_noop(s: &dyn Store) {
    assert_eq!(s.commit(vec![del("/missing")]).unwrap(), 0);
    assert_eq!(s.revision(), 0);
    assert_eq!(all_events(s), vec![]);

    let r = s
        .commit(vec![put("/x", "1"), del("/missing"), put("/y", "2")])
        .unwrap();
    assert_eq!(r, 1);
    assert_eq!(
        all_events(s),
        vec![
            ev(1, EventKind::Put, "/x", "1"),
            ev(1, EventKind::Put, "/y", "2")
        ]
    );
    // Only missing deletes again: still no new revision.
    assert_eq!(s.commit(vec![del("/missing"), del("/gone")]).unwrap(), 1);
    assert_eq!(s.revision(), 1);
}

fn batch_is_one_revision_with_events_in_order(s: &dyn Store) {
    s.commit(vec![put("/a", "a0"), put("/b", "b0")]).unwrap();
    let r = s
        .commit(vec![
            put("/c", "c0"),
            del("/a"),
            put("/b", "b1"),
            del("/nothing"),
            put("/0", "z"),
        ])
        .unwrap();
    assert_eq!(r, 2);
    assert_eq!(
        s.changes_after(1, 100).unwrap(),
        vec![
            ev(2, EventKind::Put, "/c", "c0"),
            ev(2, EventKind::Delete, "/a", "a0"),
            ev(2, EventKind::Put, "/b", "b1"),
            ev(2, EventKind::Put, "/0", "z"),
        ]
    );
    assert_eq!(
        s.snapshot("/").unwrap(),
        (
            2,
            vec![
                ("/0".to_string(), "z".to_string()),
                ("/b".to_string(), "b1".to_string()),
                ("/c".to_string(), "c0".to_string()),
            ]
        )
    );
}

fn invalid_batch_writes_nothing(s: &dyn Store) {
    s.commit(vec![put("/a", "1")]).unwrap();
    let before = (s.snapshot("").unwrap(), all_events(s));
    for bad in [
        vec![put("/b", "2"), put("/b", "3")],
        vec![put("/b", "2"), del("/b")],
        vec![put("/b", "2"), del("/a"), del("/a")],
        vec![put("/b", "2"), put("", "empty")],
        vec![del("")],
    ] {
        let err = s.commit(bad).unwrap_err();
        assert!(matches!(err, StoreError::InvalidBatch(_)), "{err}");
    }
    assert_eq!(s.revision(), 1);
    assert_eq!((s.snapshot("").unwrap(), all_events(s)), before);
    assert_eq!(s.commit(vec![put("/b", "2")]).unwrap(), 2);
}

/// Revisions 1..=6 with 1, 3, 1, 5, 2, 1 events.
fn make_history(s: &dyn Store) -> Vec<Event> {
    let sizes = [1usize, 3, 1, 5, 2, 1];
    for (i, n) in sizes.iter().enumerate() {
        let ops = (0..*n).map(|j| put(&format!("/k/{i}/{j}"), &format!("v{i}.{j}")));
        assert_eq!(s.commit(ops.collect()).unwrap(), i as u64 + 1);
    }
    let events = all_events(s);
    assert_eq!(events.len(), sizes.iter().sum::<usize>());
    events
}

fn changes_after_pages_whole_revisions(s: &dyn Store) {
    let all = make_history(s);
    for (i, e) in all.iter().enumerate() {
        // Strictly ordered by (revision, batch order).
        if i > 0 {
            assert!(all[i - 1].revision <= e.revision);
        }
    }
    for after in 0..=8 {
        let want: Vec<_> = all.iter().filter(|e| e.revision > after).cloned().collect();
        assert_eq!(
            s.changes_after(after, usize::MAX).unwrap(),
            want,
            "after {after}"
        );
    }
    assert_eq!(s.changes_after(u64::MAX, 10).unwrap(), vec![]);

    // limit 2 from 0: rev 1 (1 event) is under the limit, so rev 2 comes
    // whole (3 events), then stop.
    let page = s.changes_after(0, 2).unwrap();
    assert_eq!(
        page.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [1, 2, 2, 2]
    );
    // A revision bigger than the limit comes whole.
    let page = s.changes_after(3, 1).unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|e| e.revision == 4));

    // Paging with every limit rebuilds the log, each page ending on a
    // revision boundary.
    for limit in 0..=7 {
        let mut got = Vec::new();
        let mut last = 0;
        loop {
            let page = s.changes_after(last, limit).unwrap();
            let Some(tail) = page.last() else { break };
            let lim = limit.max(1);
            // The last revision was started while under the limit...
            let before_tail = page.iter().filter(|e| e.revision != tail.revision).count();
            assert!(before_tail < lim, "limit {limit}: page overfilled");
            // ...and a page under the limit reaches the end of the log.
            if page.len() < lim {
                assert_eq!(tail.revision, all.last().unwrap().revision);
            }
            let whole = all.iter().filter(|e| e.revision == tail.revision).count();
            let in_page = page.iter().filter(|e| e.revision == tail.revision).count();
            assert_eq!(
                whole, in_page,
                "limit {limit} split revision {}",
                tail.revision
            );
            last = tail.revision;
            got.extend(page);
        }
        assert_eq!(got, all, "limit {limit}");
    }
}

fn compaction(s: &dyn Store) {
    let all = make_history(s);
    let keys_before = s.snapshot("").unwrap();
    s.compact(2).unwrap();
    assert_eq!(s.compacted_revision(), 2);
    for after in [0, 1] {
        match s.changes_after(after, 10) {
            Err(StoreError::Compacted { requested, oldest }) => {
                assert_eq!((requested, oldest), (after, 2));
            }
            other => panic!("after {after}: expected Compacted, got {other:?}"),
        }
    }
    assert!(s.changes_after(0, 10).unwrap_err().is_compacted());
    let want: Vec<_> = all.iter().filter(|e| e.revision > 2).cloned().collect();
    assert_eq!(s.changes_after(2, usize::MAX).unwrap(), want);
    assert_eq!(s.snapshot("").unwrap(), keys_before, "keys are unaffected");

    // Compacting backwards is a no-op; into the future is an error.
    s.compact(1).unwrap();
    assert_eq!(s.compacted_revision(), 2);
    assert!(s.changes_after(2, 10).is_ok());
    match s.compact(7) {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (7, 6));
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    assert_eq!(s.compacted_revision(), 2);

    // Compacting everything leaves an empty log that still grows.
    s.compact(6).unwrap();
    assert_eq!(s.changes_after(6, 10).unwrap(), vec![]);
    assert!(s.changes_after(5, 10).unwrap_err().is_compacted());
    assert_eq!(s.commit(vec![put("/new", "n")]).unwrap(), 7);
    assert_eq!(
        s.changes_after(6, 10).unwrap(),
        vec![ev(7, EventKind::Put, "/new", "n")]
    );
    assert_eq!(s.get("/k/3/4").unwrap().as_deref(), Some("v3.4"));
}

fn subscribe_sees_latest_revision(s: &dyn Store) {
    let mut rx = s.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    s.commit(vec![put("/a", "1")]).unwrap();
    s.commit(vec![put("/a", "2")]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    s.commit(vec![del("/nope")]).unwrap();
    assert!(!rx.has_changed().unwrap());
}

fn keys_sort_bytewise_and_allow_any_text(s: &dyn Store) {
    let keys = [
        "a",
        "a/",
        "a\u{7f}",
        "a\u{100}",
        "a\u{100}x",
        "a\u{10000}",
        "b",
        "a\u{0}z",
        "A",
        "a b",
    ];
    let ops = keys
        .iter()
        .map(|k| put(k, &format!("{{\"k\":{k:?},\n\"q\":\"it's\"}}")))
        .collect();
    s.commit(ops).unwrap();
    let mut sorted: Vec<_> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    let (_, items) = s.snapshot("").unwrap();
    assert_eq!(
        items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        sorted
    );
    for (k, v) in &items {
        assert_eq!(v, &format!("{{\"k\":{k:?},\n\"q\":\"it's\"}}"));
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
    let (_, items) = s.snapshot("a\u{100}").unwrap();
    assert_eq!(
        items.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["a\u{100}", "a\u{100}x"]
    );
    let (_, items) = s.snapshot("a").unwrap();
    assert_eq!(items.len(), 8);
}

fn concurrent_commits_get_distinct_contiguous_revisions(s: Arc<dyn Store>) {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = Arc::clone(&s);
            scope.spawn(move || {
                let mut last = 0;
                for i in 0..EACH {
                    let r = s.commit(vec![put(&format!("/t{t}/{i}"), "v")]).unwrap();
                    assert!(r > last);
                    last = r;
                }
            });
        }
    });
    let n = (THREADS * EACH) as u64;
    assert_eq!(s.revision(), n);
    let events = all_events(&*s);
    let revs: Vec<_> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revs, (1..=n).collect::<Vec<_>>());
    assert_eq!(s.snapshot("/t").unwrap().1.len(), THREADS * EACH);
}

const WAIT: Duration = Duration::from_secs(20);

/// A writer task commits while a watcher streams; the watcher sees exactly
/// every event after its start revision, in order, without gaps or dupes.
async fn watch_sees_concurrent_commits(s: Arc<dyn Store>) {
    for i in 0..10 {
        s.commit(vec![put(&format!("/pre/{i}"), "p")]).unwrap();
    }
    let start = s.revision();
    const N: u64 = 600;
    let writer = {
        let s = Arc::clone(&s);
        tokio::task::spawn_blocking(move || {
            for i in 0..N {
                let mut ops = vec![put(&format!("/w/{}", i % 50), &i.to_string())];
                if i % 5 == 0 {
                    ops.push(put(&format!("/x/{i}"), "x"));
                }
                if i % 5 == 0 && i >= 5 {
                    ops.push(del(&format!("/x/{}", i - 5)));
                }
                s.commit(ops).unwrap();
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let mut stream = Box::pin(watch(Arc::clone(&s), start));
    let mut seen: Vec<Event> = Vec::new();
    let collected = tokio::time::timeout(WAIT, async {
        while seen.last().map(|e| e.revision) != Some(start + N) {
            let event = stream.next().await.unwrap().unwrap();
            seen.push(event);
        }
    })
    .await;
    // A failed writer explains a timeout better than the timeout does.
    writer.await.unwrap();
    collected.expect("watcher did not reach the last revision in time");
    assert_eq!(seen, s.changes_after(start, usize::MAX).unwrap());
    let mut revs: Vec<_> = seen.iter().map(|e| e.revision).collect();
    revs.dedup();
    assert_eq!(revs, (start + 1..=start + N).collect::<Vec<_>>());
    // Nothing more is pending.
    let more = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
    assert!(more.is_err(), "unexpected extra item {more:?}");
}

/// Watching from the middle yields exactly the tail, then waits, then
/// delivers new commits.
async fn watch_resumes_from_the_middle(s: Arc<dyn Store>) {
    let all = make_history(&*s);
    for mid in [0, 2, 4, 6] {
        let want: Vec<_> = all.iter().filter(|e| e.revision > mid).cloned().collect();
        let mut stream = Box::pin(watch(Arc::clone(&s), mid));
        let mut got = Vec::new();
        for _ in 0..want.len() {
            got.push(
                tokio::time::timeout(WAIT, stream.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap(),
            );
        }
        assert_eq!(got, want, "from {mid}");
        let idle = tokio::time::timeout(Duration::from_millis(30), stream.next()).await;
        assert!(idle.is_err(), "stream from {mid} should be waiting");
    }
    let mut stream = Box::pin(watch(Arc::clone(&s), s.revision()));
    let rev = s.commit(vec![put("/late", "l")]).unwrap();
    let got = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, ev(rev, EventKind::Put, "/late", "l"));
}

/// A caught-up watcher is woken by every single commit (ping-pong): this
/// fails if a commit between the read and the wait can be missed.
async fn watch_never_misses_a_wakeup(s: Arc<dyn Store>) {
    let mut stream = Box::pin(watch(Arc::clone(&s), 0));
    for i in 1..=300u64 {
        let writer = {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                s.commit(vec![put("/ping", &i.to_string())]).unwrap()
            })
        };
        let got = tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap_or_else(|_| panic!("missed commit {i}"))
            .unwrap()
            .unwrap();
        assert_eq!(got.revision, i);
        assert_eq!(writer.await.unwrap(), i);
    }
}

/// A watch from a compacted revision ends with one Compacted error.
async fn watch_ends_with_compacted_error(s: Arc<dyn Store>) {
    make_history(&*s);
    s.compact(3).unwrap();
    let mut stream = Box::pin(watch(Arc::clone(&s), 1));
    match stream.next().await {
        Some(Err(StoreError::Compacted { requested, oldest })) => {
            assert_eq!((requested, oldest), (1, 3));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(stream.next().await.is_none());

    // From the compaction point it works.
    let mut stream = Box::pin(watch(Arc::clone(&s), 3));
    assert_eq!(stream.next().await.unwrap().unwrap().revision, 4);
}

fn commit_many_gives_each_batch_its_revision(s: &dyn Store) {
    s.commit(vec![put("a", "0")]).unwrap();
    let revs = s
        .commit_many(vec![
            vec![put("a", "1"), put("b", "1")],
            vec![del("missing")],
            vec![],
            vec![del("a")],
            vec![put("c", "3")],
        ])
        .unwrap();
    // Batches without events make no revision: they report the one before.
    assert_eq!(revs, vec![2, 2, 2, 3, 4]);
    assert_eq!(s.revision(), 4);
    assert_eq!(
        all_events(s)[1..].to_vec(),
        vec![
            ev(2, EventKind::Put, "a", "1"),
            ev(2, EventKind::Put, "b", "1"),
            ev(3, EventKind::Delete, "a", "1"),
            ev(4, EventKind::Put, "c", "3"),
        ]
    );
    // One invalid batch: nothing of the call is written.
    let err = s.commit_many(vec![
        vec![put("d", "x")],
        vec![put("e", "1"), put("e", "2")],
    ]);
    assert!(matches!(err, Err(StoreError::InvalidBatch(_))), "{err:?}");
    assert_eq!(s.revision(), 4);
    assert_eq!(s.get("d").unwrap(), None);
}

macro_rules! backend_suite {
    ($backend:ident; sync: [$($sync:ident),* $(,)?]; async: [$($async:ident),* $(,)?]) => {
        mod $backend {
            use super::*;

            $(
                #[test]
                fn $sync() {
                    let h = super::$backend();
                    super::$sync(&*h.store);
                }
            )*

            #[test]
            fn concurrent_commits() {
                let h = super::$backend();
                super::concurrent_commits_get_distinct_contiguous_revisions(Arc::clone(&h.store));
            }

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $async() {
                    let h = super::$backend();
                    super::$async(Arc::clone(&h.store)).await;
                }
            )*
        }
    };
}

/// The whole suite for one backend (a function `fn $backend() -> Harness`).
macro_rules! conformance {
    ($backend:ident) => {
        backend_suite!($backend;
            sync: [
                fresh_store_is_empty,
                commit_get_snapshot_revision,
                empty_batch_writes_nothing,
                delete_of_missing_key_is_a_noop,
                batch_is_one_revision_with_events_in_order,
                invalid_batch_writes_nothing,
                changes_after_pages_whole_revisions,
                compaction,
                subscribe_sees_latest_revision,
                keys_sort_bytewise_and_allow_any_text,
                commit_many_gives_each_batch_its_revision,
            ];
            async: [
                watch_sees_concurrent_commits,
                watch_resumes_from_the_middle,
                watch_never_misses_a_wakeup,
                watch_ends_with_compacted_error,
            ]);
    };
}

conformance!(mem);
conformance!(sqlite);
