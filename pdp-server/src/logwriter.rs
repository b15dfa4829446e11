//! The access-log writer: durable before acknowledged, by group commit.
//!
//! Every decision hands its [`AccessRecord`]s to one writer task through a channel
//! and waits. The writer takes what is queued (up to a batch limit), appends it
//! with one [`Store::append_access`] call on a blocking thread, and only then answers
//! each waiter. While one commit runs, the next batch gathers, so the number of
//! commits per second stays bounded by the disk while throughput grows with the
//! number of concurrent decisions. A failed commit answers every waiter of the
//! batch with an error: those decisions are not acknowledged (fail closed).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::model::AccessRecord;
use crate::store::Store;

/// Why records could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The store refused or failed the commit.
    #[error("access log write failed: {0}")]
    Store(String),
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

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct LogWriter {
    tx: mpsc::Sender<Msg>,
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

impl LogWriter {
    /// Starts the writer task on the current tokio runtime. `max_batch` bounds the
    /// records per commit (a single message larger than that is committed whole).
    pub fn spawn(
        store: Arc<dyn Store>,
        max_batch: usize,
        metrics: Option<Arc<Metrics>>,
    ) -> (LogWriter, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let join = tokio::spawn(run(store, rx, max_batch.max(1), metrics));
        (LogWriter { tx }, join)
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

    /// Commits what is queued, then stops the task. Appends after this fail with
    /// [`LogError::Closed`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

type Waiter = oneshot::Sender<Result<(), LogError>>;

async fn run(
    store: Arc<dyn Store>,
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
        commit(&store, records, waiters, metrics.as_deref()).await;
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
        commit(&store, records, waiters, metrics.as_deref()).await;
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn commit(
    store: &Arc<dyn Store>,
    records: Vec<AccessRecord>,
    waiters: Vec<Waiter>,
    metrics: Option<&Metrics>,
) {
    let n = records.len();
    let s = store.clone();
    let result = tokio::task::spawn_blocking(move || s.append_access(&records))
        .await
        .map_err(|e| LogError::Store(format!("writer thread failed: {e}")))
        .and_then(|r| r.map_err(|e| LogError::Store(e.to_string())));
    if let Some(m) = metrics {
        m.log_batch_size.observe(n as f64);
        match &result {
            Ok(()) => m
                .log_records
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed),
            Err(_) => m
                .log_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
    }
    if let Err(e) = &result {
        tracing::error!(records = n, error = %e, "access log commit failed; decisions not acknowledged");
    }
    for w in waiters {
        let _ = w.send(result.clone());
    }
}
