//! The access-log writer: durable before acknowledged, by group commit.
//!
//! Every decision hands its [`AccessRecord`]s to one writer task through a channel
//! and waits. The writer takes what is queued (up to a batch limit), appends it to
//! the access journal and syncs it in one step on a blocking thread, and only then
//! answers each waiter.
//! While one commit runs, the next batch gathers, so the number of commits per
//! second stays bounded by the disk while throughput grows with the number of
//! concurrent decisions. A failed commit answers every waiter of the batch with an
//! error: those decisions are not acknowledged (fail closed).
//!
//! An indexer thread then stores the records in the store in large batches
//! ([`Store::ingest_access`], idempotent). A store outage or a starved indexer
//! delays indexing but never decisions: the writer hands batches over without
//! waiting, and when the indexer's queue is full it reads the batches it missed
//! back from the journal. At start ([`LogWriter::spawn_journaled`]), what the
//! journal holds is stored again, so nothing acknowledged is lost in a crash.
//! [`LogWriter::sync_index`] waits until everything acknowledged so far is
//! queryable in the store.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::journal::{Journal, SnapshotError};
use crate::metrics::Metrics;
use crate::model::AccessRecord;
use crate::store::Store;

/// Why records could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The store refused or failed the commit.
    #[error("access log write failed: {0}")]
    Store(String),
    /// The access journal could not be written or read.
    #[error("access journal: {0}")]
    Journal(String),
    /// The writer has stopped (the server is shutting down).
    #[error("access log writer is closed")]
    Closed,
}

enum Msg {
    Append {
        records: Vec<AccessRecord>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    Close(oneshot::Sender<()>),
}

/// How far the journal and the store are.
#[derive(Debug)]
struct Progress {
    /// Records acknowledged (durable in the journal) since the start.
    journaled: AtomicU64,
    /// Every record with a journal ordinal below this is in the store.
    indexed: watch::Sender<u64>,
    /// Set when a batch could not be handed to the indexer (its queue was full):
    /// it must read it back from the journal.
    missed: AtomicBool,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct LogWriter {
    tx: mpsc::Sender<Msg>,
    progress: Arc<Progress>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Append { records, .. } => write!(f, "Append({})", records.len()),
            Msg::Close(_) => f.write_str("Close"),
        }
    }
}

/// Default number of records one commit takes at most.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// Most yields while a batch gathers.
const MAX_YIELDS: usize = 8;

/// Records the indexer stores in one transaction at most.
const INDEX_BATCH: usize = 16384;

/// How long the indexer gathers journaled records before storing them.
const INDEX_GATHER: Duration = Duration::from_millis(250);

/// How often the indexer looks for more records while it gathers.
const INDEX_POLL: Duration = Duration::from_millis(10);

/// Journaled batches queued for the indexer in memory; beyond that it reads them
/// back from the journal.
const INDEX_QUEUE: usize = 256;

/// The indexer thread's nice value (Linux): indexing yields the CPU to deciding,
/// but is never starved (the idle scheduling class measured no better, and could
/// leave the journal growing while other processes keep the CPUs busy).
const INDEXER_NICE: i32 = 10;

/// The journal is rotated once it is this large (its rotated file is removed
/// once fully indexed).
const JOURNAL_ROTATE_BYTES: u64 = 32 << 20;

type Waiter = oneshot::Sender<Result<(), LogError>>;

/// Where a batch becomes durable, and who indexes it.
struct Sink {
    /// Shared with the indexer, which reads missed batches back from it.
    journal: Arc<Mutex<Journal>>,
    index: mpsc::Sender<IndexBatch>,
    progress: Arc<Progress>,
    indexer: std::thread::JoinHandle<()>,
    /// The journal is rotated once it is this large.
    rotate_bytes: u64,
}

/// One journaled batch, handed to the indexer.
struct IndexBatch {
    /// The journal ordinal of the first record.
    first: u64,
    records: Vec<AccessRecord>,
}

/// Sizes the tests make small.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    rotate_bytes: u64,
    index_queue: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            rotate_bytes: JOURNAL_ROTATE_BYTES,
            index_queue: INDEX_QUEUE,
        }
    }
}

impl LogWriter {
    /// Starts the writer with the access journal at `journal_path`: first stores
    /// what an earlier run left in the journal, then acknowledges each batch once
    /// it is synced to the journal and indexes it into `store` in the background.
    pub async fn spawn_journaled(
        store: Arc<dyn Store>,
        journal_path: &Path,
        max_batch: usize,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<(LogWriter, JoinHandle<()>), LogError> {
        Self::spawn_journaled_tuned(store, journal_path, max_batch, metrics, Tuning::default())
            .await
    }

    async fn spawn_journaled_tuned(
        store: Arc<dyn Store>,
        journal_path: &Path,
        max_batch: usize,
        metrics: Option<Arc<Metrics>>,
        tuning: Tuning,
    ) -> Result<(LogWriter, JoinHandle<()>), LogError> {
        let path = journal_path.to_path_buf();
        let s = store.clone();
        let journal = tokio::task::spawn_blocking(move || -> Result<Journal, LogError> {
            let (mut journal, recovered) = Journal::open(&path)
                .map_err(|e| LogError::Journal(format!("{}: {e}", path.display())))?;
            if !recovered.records.is_empty() {
                for chunk in recovered.records.chunks(INDEX_BATCH) {
                    s.ingest_access(chunk).map_err(|e| {
                        LogError::Store(format!("recovering the access journal: {e}"))
                    })?;
                }
                tracing::info!(
                    records = recovered.records.len(),
                    torn_bytes = recovered.torn_bytes,
                    corrupt_lines = recovered.corrupt_lines,
                    "access journal recovered into the store"
                );
            }
            journal
                .reset()
                .map_err(|e| LogError::Journal(format!("{}: {e}", path.display())))?;
            Ok(journal)
        })
        .await
        .map_err(|e| LogError::Journal(format!("recovery task failed: {e}")))??;
        let journal = Arc::new(Mutex::new(journal));

        let (indexed, _) = watch::channel(0);
        let progress = Arc::new(Progress {
            journaled: AtomicU64::new(0),
            indexed,
            missed: AtomicBool::new(false),
        });
        let (index_tx, index_rx) = mpsc::channel(tuning.index_queue.max(1));
        let indexer = {
            let indexer = Indexer {
                store,
                journal: journal.clone(),
                progress: progress.clone(),
                metrics: metrics.clone(),
            };
            std::thread::Builder::new()
                .name("rzts-log-indexer".into())
                .spawn(move || indexer.run(index_rx))
                .map_err(|e| LogError::Journal(format!("cannot start the indexer thread: {e}")))?
        };
        let sink = Sink {
            journal,
            index: index_tx,
            progress: progress.clone(),
            indexer,
            rotate_bytes: tuning.rotate_bytes,
        };
        let (tx, rx) = mpsc::channel(16 * 1024);
        let join = tokio::spawn(run(sink, rx, max_batch.max(1), metrics));
        Ok((LogWriter { tx, progress }, join))
    }

    /// Appends one record; returns when it is durable.
    pub async fn append(&self, record: AccessRecord) -> Result<(), LogError> {
        self.append_all(vec![record]).await
    }

    /// Appends records in one commit; returns when all are durable.
    pub async fn append_all(&self, records: Vec<AccessRecord>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append { records, reply })
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.unwrap_or(Err(LogError::Closed))
    }

    /// Waits (at most `limit`) until every record acknowledged before this call
    /// is in the store, so a query sees it. True when it is.
    pub async fn sync_index(&self, limit: Duration) -> bool {
        let target = self.progress.journaled.load(Ordering::Acquire);
        let mut rx = self.progress.indexed.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|n| *n >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Commits what is queued, stores everything journaled, then stops the
    /// task. Appends after this fail with [`LogError::Closed`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) {
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let mut records: Vec<AccessRecord> = Vec::new();
        let mut waiters: Vec<Waiter> = Vec::new();
        match rx.recv().await {
            Some(Msg::Append { records: r, reply }) => {
                records = r;
                waiters.push(reply);
            }
            Some(Msg::Close(done)) => closing = Some(done),
            None => break,
        }
        // Group commit: take whatever else is queued. Before committing, let the
        // tasks that are ready run once more (a yield, no timer): requests already
        // being decided join this commit instead of waiting for the next one. Stop
        // as soon as a yield brings nothing new, so a lone decision is not delayed.
        let mut yields = 0;
        while records.len() < max_batch && closing.is_none() {
            match rx.try_recv() {
                Ok(Msg::Append { records: r, reply }) => {
                    records.extend(r);
                    waiters.push(reply);
                    continue;
                }
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => {}
            }
            if yields >= MAX_YIELDS {
                break;
            }
            let before = records.len();
            tokio::task::yield_now().await;
            yields += 1;
            if rx.is_empty() && records.len() == before {
                break;
            }
        }
        if records.is_empty() {
            continue;
        }
        commit(&mut sink, records, waiters, metrics.as_deref()).await;
    }
    rx.close();
    // Anything that raced in before the close is still committed.
    let mut records = Vec::new();
    let mut waiters = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Append { records: r, reply } = msg {
            records.extend(r);
            waiters.push(reply);
        }
    }
    if !records.is_empty() {
        commit(&mut sink, records, waiters, metrics.as_deref()).await;
    }
    finish(sink).await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// At close: the indexer stores what is left; the journal (and a rotated file) is
/// emptied when the store has everything.
async fn finish(sink: Sink) {
    let Sink {
        journal,
        index,
        progress,
        indexer,
        ..
    } = sink;
    drop(index);
    // The indexer stores what is left and ends; join it off the runtime.
    let _ = tokio::task::spawn_blocking(move || indexer.join()).await;
    let complete = *progress.indexed.borrow() >= progress.journaled.load(Ordering::Acquire);
    if complete {
        let _ = tokio::task::spawn_blocking(move || {
            let mut j = journal.lock().map_err(|_| ())?;
            j.reset().map_err(|e| {
                tracing::warn!(error = %e, "could not empty the access journal at close");
            })
        })
        .await;
    }
}

/// Before appending: removes the rotated file once the store holds all of it, and
/// rotates a full journal (which waits while a rotated file is still there).
fn maintain(j: &mut Journal, indexed: u64, rotate_bytes: u64) -> std::io::Result<()> {
    if j.rotated_until().is_some_and(|until| indexed >= until) {
        j.remove_rotated()?;
    }
    if j.len() > rotate_bytes {
        j.rotate()?;
    }
    Ok(())
}

async fn commit(
    sink: &mut Sink,
    records: Vec<AccessRecord>,
    waiters: Vec<Waiter>,
    metrics: Option<&Metrics>,
) {
    let n = records.len();
    let started = std::time::Instant::now();
    let (journal, rotate_bytes) = (sink.journal.clone(), sink.rotate_bytes);
    let indexed = *sink.progress.indexed.borrow();
    let done = tokio::task::spawn_blocking(move || {
        // A poisoned lock means an append panicked half-way: nothing more can be
        // made durable, so every later decision is refused.
        let Ok(mut j) = journal.lock() else {
            return (
                Err(LogError::Journal(
                    "the access journal is unusable after a failure; restart to recover".into(),
                )),
                records,
            );
        };
        let r = maintain(&mut j, indexed, rotate_bytes)
            .and_then(|()| j.append(&records))
            .map_err(|e| LogError::Journal(format!("{}: {e}", j.path().display())));
        (r, records)
    })
    .await;
    let (result, batch) = match done {
        Ok((Ok(first), records)) => (Ok(()), Some(IndexBatch { first, records })),
        Ok((Err(e), _)) => (Err(e), None),
        Err(e) => (
            Err(LogError::Journal(format!("journal thread failed: {e}"))),
            None,
        ),
    };
    if let Some(m) = metrics {
        m.log_batch_size.observe(n as f64);
        m.log_commit_latency
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(()) => m.log_records.fetch_add(n as u64, Ordering::Relaxed),
            Err(_) => m.log_errors.fetch_add(1, Ordering::Relaxed),
        };
    }
    if let Err(e) = &result {
        tracing::error!(records = n, error = %e, "access log commit failed; decisions not acknowledged");
    }
    if let Some(batch) = batch {
        sink.progress
            .journaled
            .fetch_add(n as u64, Ordering::AcqRel);
        // Never wait for the indexer: when its queue is full it reads this batch
        // back from the journal later.
        if sink.index.try_send(batch).is_err() {
            sink.progress.missed.store(true, Ordering::Release);
        }
    }
    for w in waiters {
        let _ = w.send(result.clone());
    }
}

/// The indexer: stores journaled records in the store in large batches.
///
/// A plain thread at a lower priority rather than a task: the records are already
/// durable in the journal, so storing them can wait for spare CPU, and joining,
/// storing and freeing thousands of records never takes the runtime's workers.
/// Batches come from memory; those the writer could not hand over (the queue was
/// full: a stalled store, a busy machine) are read back from the journal, so
/// however far it falls behind, no commit waits for it and memory stays bounded.
struct Indexer {
    store: Arc<dyn Store>,
    journal: Arc<Mutex<Journal>>,
    progress: Arc<Progress>,
    metrics: Option<Arc<Metrics>>,
}

impl Indexer {
    fn run(self, mut rx: mpsc::Receiver<IndexBatch>) {
        lower_priority();
        // Every record with an ordinal below `next` is stored.
        let mut next = 0u64;
        loop {
            // Before waiting: anything the writer could not hand over (its queue
            // was full) is read back now; batches still queued come first.
            if rx.is_empty() && self.progress.missed.load(Ordering::Acquire) {
                match self.catch_up(next, &rx) {
                    Some(end) => next = self.stored_up_to(next, end),
                    None => return,
                }
            }
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut batches = vec![first];
            let mut count = batches[0].records.len();
            // Gather for a moment: one transaction per many group commits writes
            // each hot index page once instead of once per small commit.
            let deadline = std::time::Instant::now() + INDEX_GATHER;
            while count < INDEX_BATCH {
                match rx.try_recv() {
                    Ok(b) => {
                        count += b.records.len();
                        batches.push(b);
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::sleep(left.min(INDEX_POLL));
                    }
                }
            }
            let mut records = Vec::with_capacity(count);
            let mut end = next;
            let mut missed = false;
            for b in batches {
                let b_end = b.first + b.records.len() as u64;
                if b_end <= end {
                    continue; // already read back from the journal
                }
                if b.first > end {
                    missed = true; // batches in between were not handed over
                    break;
                }
                let skip = usize::try_from(end - b.first).unwrap_or(usize::MAX);
                records.extend(b.records.into_iter().skip(skip));
                end = b_end;
            }
            let end = if missed {
                drop(records);
                self.catch_up(next, &rx)
            } else if self.store_batch(&records, &rx) {
                Some(end)
            } else {
                None
            };
            match end {
                Some(end) => next = self.stored_up_to(next, end),
                None => return,
            }
        }
        // Closed: whatever was not handed over is read back before stopping.
        if next < self.progress.journaled.load(Ordering::Acquire) {
            if let Some(end) = self.catch_up(next, &rx) {
                self.stored_up_to(next, end);
            }
        }
    }

    /// Publishes progress; returns the new mark.
    fn stored_up_to(&self, next: u64, end: u64) -> u64 {
        let next = next.max(end);
        self.progress.indexed.send_replace(next);
        next
    }

    /// Stores every journaled record from ordinal `from` on, read back from the
    /// journal; returns the ordinal it stored up to, or `None` when it gave up
    /// (shutting down with the store unavailable).
    fn catch_up(&self, from: u64, rx: &mpsc::Receiver<IndexBatch>) -> Option<u64> {
        if let Some(m) = &self.metrics {
            m.log_index_catchups.fetch_add(1, Ordering::Relaxed);
        }
        // Cleared before the snapshot: a batch missed after it sets it again.
        self.progress.missed.store(false, Ordering::Release);
        let mut backoff = Duration::from_millis(50);
        loop {
            let snapshot = match self.journal.lock() {
                Ok(j) => j.snapshot(),
                Err(_) => Err(std::io::Error::other("the journal lock is poisoned")),
            };
            let read = snapshot.map_err(SnapshotError::Io).and_then(|snap| {
                let end = snap.end();
                snap.read_from(from, INDEX_BATCH, |chunk| {
                    if self.store_batch(&chunk, rx) {
                        Ok(())
                    } else {
                        Err("gave up")
                    }
                })
                .map(|()| end)
            });
            match read {
                Ok(end) => return Some(end),
                Err(SnapshotError::Each(_)) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "reading missed access records back from the journal failed; retrying");
                    if rx.is_closed() {
                        return None;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Stores records, retrying on failure; false when it gave up (shutting down
    /// with the store unavailable: the records stay in the journal, which is not
    /// emptied, and are stored at the next start).
    fn store_batch(&self, records: &[AccessRecord], rx: &mpsc::Receiver<IndexBatch>) -> bool {
        if records.is_empty() {
            return true;
        }
        let mut backoff = Duration::from_millis(50);
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A panicking store is a failure like any other.
            let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.store.ingest_access(records)
            }));
            let e = match stored {
                Ok(Ok(_)) => return true,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the store panicked".to_string(),
            };
            tracing::error!(records = records.len(), error = %e, "storing journaled access records failed; retrying");
            if let Some(m) = &self.metrics {
                m.log_index_errors.fetch_add(1, Ordering::Relaxed);
            }
            if rx.is_closed() && attempts >= 3 {
                tracing::error!(
                    records = records.len(),
                    "access records left in the journal for the next start"
                );
                return false;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Lowers the calling thread's CPU priority (Linux only; elsewhere a no-op).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux a thread id names just this thread.
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), INDEXER_NICE) {
            tracing::debug!(error = %e, "could not lower the indexer's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> AccessRecord {
        crate::journal::test_record(format!("R{i:06}"))
    }

    fn stored(store: &Arc<dyn Store>) -> Vec<String> {
        let q = crate::model::LogQuery {
            limit: Some(10_000),
            ..Default::default()
        };
        let mut ids: Vec<String> = store
            .query_access(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.decision_id)
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_journal_is_rotated_without_waiting_and_removed_once_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:{}", dir.path().join("log.db").display());
        let store = crate::store::open(&db).unwrap();
        let path = dir.path().join("access.journal");
        let rotated = dir.path().join("access.journal.1");
        // Rotate once the journal holds more than five records: the seventh
        // append rotates it, and it holds four (records 6 to 9) when the eleventh
        // comes, which does not rotate it again.
        let line = serde_json::to_vec(&record(0)).unwrap().len() as u64 + 1;
        let tuning = Tuning {
            rotate_bytes: 5 * line,
            ..Tuning::default()
        };
        let (log, join) = LogWriter::spawn_journaled_tuned(store.clone(), &path, 64, None, tuning)
            .await
            .unwrap();
        for i in 0..10 {
            log.append(record(i)).await.unwrap();
            assert_eq!(rotated.exists(), i >= 6, "after record {i}");
        }
        // Everything acknowledged is indexed; the next commit removes the rotated
        // file, as the store has caught up with it.
        assert!(log.sync_index(Duration::from_secs(10)).await);
        log.append(record(10)).await.unwrap();
        assert!(!rotated.exists(), "the rotated journal was not removed");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5 * line);
        log.close().await;
        join.await.unwrap();
        let expected: Vec<String> = (0..=10).map(|i| format!("R{i:06}")).collect();
        assert_eq!(stored(&store), expected);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_in_a_rotated_journal_survive_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        // What a crash leaves: a rotated journal and a current one, neither stored.
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&[record(1), record(2)]).unwrap();
        assert!(j.rotate().unwrap());
        j.append(&[record(3)]).unwrap();
        drop(j);
        let db = format!("sqlite:{}", dir.path().join("log.db").display());
        let store = crate::store::open(&db).unwrap();
        let (log, join) = LogWriter::spawn_journaled(store.clone(), &path, 64, None)
            .await
            .unwrap();
        assert_eq!(stored(&store), ["R000001", "R000002", "R000003"]);
        assert!(!dir.path().join("access.journal.1").exists());
        log.close().await;
        join.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_indexer_never_holds_up_decisions_and_catches_up_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("log.db");
        let store = crate::store::open(&format!("sqlite:{}", db_path.display())).unwrap();
        let path = dir.path().join("access.journal");
        let metrics = Arc::new(Metrics::default());
        // A queue of one batch, and small journal files, so the indexer misses
        // batches and some of them are in a rotated file by the time it reads.
        let line = serde_json::to_vec(&record(0)).unwrap().len() as u64 + 1;
        let tuning = Tuning {
            rotate_bytes: 40 * line,
            index_queue: 1,
        };
        let (log, join) = LogWriter::spawn_journaled_tuned(
            store.clone(),
            &path,
            8,
            Some(metrics.clone()),
            tuning,
        )
        .await
        .unwrap();
        // Another connection holds the database's write lock: the indexer cannot
        // store anything (it retries), as with a stalled or starved indexer.
        let blocker = rusqlite::Connection::open(&db_path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..300 {
            let log = log.clone();
            tasks.spawn(async move { log.append(record(i)).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        // Every decision was acknowledged while nothing could be stored.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!log.sync_index(Duration::from_millis(100)).await);
        assert!(stored(&store).is_empty());
        blocker.execute_batch("ROLLBACK").unwrap();
        drop(blocker);
        // Released: the indexer stores what it had and reads the rest back.
        assert!(log.sync_index(Duration::from_secs(20)).await);
        assert!(metrics.log_index_catchups.load(Ordering::Relaxed) >= 1);
        let expected: Vec<String> = (0..300).map(|i| format!("R{i:06}")).collect();
        assert_eq!(stored(&store), expected);
        log.close().await;
        join.await.unwrap();
        assert_eq!(stored(&store), expected);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(!dir.path().join("access.journal.1").exists());
    }
}
