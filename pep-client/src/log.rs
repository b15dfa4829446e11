//! Shipping access records to the decision server's log store in batches.
//!
//! [`LogClient::record`] queues a record without waiting; a background task sends
//! what is queued in one `POST /v1/pep/logs` (up to `max_batch` records, at most
//! `flush_interval` after the first one). A batch the server did not acknowledge is
//! retried with backoff, never dropped; the server ignores records it already has
//! (same `decision_id`), so a retry after a lost acknowledgement stores nothing
//! twice. When the queue is full, `record` fails: the enforcement point then
//! refuses the access instead of letting it through unlogged.
//!
//! [`LogShipper::shutdown`] sends everything still queued; whatever the server
//! cannot take before the deadline is appended to the spool file (JSON lines),
//! which the next start sends first. No acknowledged-as-queued record is lost.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::pdp::{Pdp, PdpError};
use crate::record::AccessRecord;

/// `POST /v1/pep/logs` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// The records, oldest first.
    pub records: Vec<AccessRecord>,
}

/// `POST /v1/pep/logs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAck {
    /// How many records of the batch are durable now (including ones the server
    /// already had).
    pub stored: usize,
}

/// How the shipper batches.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Records per request.
    pub max_batch: usize,
    /// Longest a record waits in the queue before its batch is sent.
    pub flush_interval: Duration,
    /// Records that may wait; beyond this [`LogClient::record`] fails.
    pub queue_capacity: usize,
    /// Where unsent records go at shutdown, and are read back from at start.
    pub spool: Option<PathBuf>,
    /// How long shutdown keeps trying before spooling.
    pub shutdown_deadline: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_batch: 512,
            flush_interval: Duration::from_millis(100),
            queue_capacity: 65_536,
            spool: None,
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// A record could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The queue is full (the server has not taken records for a while).
    #[error("access log queue is full ({0} records waiting); refusing unlogged access")]
    Full(usize),
    /// The shipper has stopped.
    #[error("access log shipper has stopped")]
    Closed,
    /// The spool file could not be read or written.
    #[error("access log spool {path}: {why}")]
    Spool {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
}

/// Queues access records for the decision server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogClient {
    tx: mpsc::Sender<AccessRecord>,
}

/// The task that sends queued records; stop it with [`LogShipper::shutdown`].
#[derive(Debug)]
pub struct LogShipper {
    stop: oneshot::Sender<()>,
    task: JoinHandle<ShutdownReport>,
}

/// What shutdown did with the records still queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Records the server acknowledged over the shipper's life.
    pub shipped: u64,
    /// Records written to the spool file because the server did not take them.
    pub spooled: usize,
}

impl LogClient {
    /// Starts the shipper. Records left in the spool file by an earlier run are
    /// queued first (and the file removed once they are sent).
    pub fn start(pdp: Pdp, options: LogOptions) -> Result<(LogClient, LogShipper), LogError> {
        let pending = match &options.spool {
            Some(path) => read_spool(path)?,
            None => VecDeque::new(),
        };
        let capacity = options.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(ship(pdp, options, rx, stop_rx, pending));
        Ok((LogClient { tx }, LogShipper { stop, task }))
    }

    /// Queues a record; never waits. Fails when the queue is full or the shipper
    /// stopped: the caller must then refuse the access.
    pub fn record(&self, record: AccessRecord) -> Result<(), LogError> {
        self.tx.try_send(record).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LogError::Full(self.tx.max_capacity()),
            mpsc::error::TrySendError::Closed(_) => LogError::Closed,
        })
    }
}

impl LogShipper {
    /// Sends everything queued (waiting at most the configured deadline), spools
    /// the rest, and stops. Records queued after this call are refused.
    pub async fn shutdown(self) -> ShutdownReport {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Sends one batch; `Ok` means every record in it is durable on the server.
pub async fn send_batch(pdp: &Pdp, records: &[AccessRecord]) -> Result<LogAck, PdpError> {
    const PATH: &str = "/v1/pep/logs";
    #[derive(Serialize)]
    struct Body<'a> {
        records: &'a [AccessRecord],
    }
    let resp = pdp
        .request(reqwest::Method::POST, PATH)
        .timeout(Duration::from_secs(30))
        .json(&Body { records })
        .send()
        .await
        .map_err(|e| pdp.unreachable(PATH, e))?;
    if !resp.status().is_success() {
        return Err(pdp.status_error(PATH, resp).await);
    }
    let ack: LogAck = resp.json().await.map_err(|e| PdpError::Malformed {
        url: pdp.url(PATH),
        why: e.to_string(),
    })?;
    if ack.stored != records.len() {
        return Err(PdpError::Malformed {
            url: pdp.url(PATH),
            why: format!("stored {} of {} records", ack.stored, records.len()),
        });
    }
    Ok(ack)
}

/// Records waiting to be sent, oldest first, and what became of the sent ones.
struct Pending {
    records: VecDeque<AccessRecord>,
    report: ShutdownReport,
    /// Records read back from the spool still unsent; the file goes when all are.
    spooled_left: usize,
}

impl Pending {
    /// Sends the oldest batch; on success drops it from the queue.
    async fn send_oldest(
        &mut self,
        pdp: &Pdp,
        max_batch: usize,
        spool: Option<&std::path::Path>,
    ) -> Result<(), PdpError> {
        let n = self.records.len().min(max_batch);
        send_batch(pdp, &self.records.make_contiguous()[..n]).await?;
        self.records.drain(..n);
        self.report.shipped += n as u64;
        if self.spooled_left > 0 {
            self.spooled_left = self.spooled_left.saturating_sub(n);
            if let (0, Some(path)) = (self.spooled_left, spool) {
                // Every record of the earlier run is on the server now.
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Takes everything still in the closed queue.
    fn take_rest(&mut self, rx: &mut mpsc::Receiver<AccessRecord>) {
        rx.close();
        while let Ok(rec) = rx.try_recv() {
            self.records.push_back(rec);
        }
    }
}

async fn ship(
    pdp: Pdp,
    options: LogOptions,
    mut rx: mpsc::Receiver<AccessRecord>,
    mut stop: oneshot::Receiver<()>,
    records: VecDeque<AccessRecord>,
) -> ShutdownReport {
    let max_batch = options.max_batch.max(1);
    let spool = options.spool.as_deref();
    let mut pending = Pending {
        spooled_left: records.len(),
        records,
        report: ShutdownReport::default(),
    };
    let mut backoff = Duration::from_millis(100);
    let mut stopping = false;
    while !stopping {
        // Fill the batch: wait for a first record, then up to flush_interval more.
        if pending.records.is_empty() {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(rec) => pending.records.push_back(rec),
                    None => stopping = true,
                },
                _ = &mut stop => stopping = true,
            }
            let deadline = tokio::time::sleep(options.flush_interval);
            tokio::pin!(deadline);
            while !stopping && pending.records.len() < max_batch {
                tokio::select! {
                    r = rx.recv() => match r {
                        Some(rec) => pending.records.push_back(rec),
                        None => break,
                    },
                    _ = &mut deadline => break,
                    _ = &mut stop => stopping = true,
                }
            }
            if stopping {
                break;
            }
        }
        match pending.send_oldest(&pdp, max_batch, spool).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, waiting = pending.records.len(), "access log batch not stored; retrying");
                // Keep receiving while waiting so the queue does not fill needlessly.
                let deadline = tokio::time::sleep(backoff);
                tokio::pin!(deadline);
                while !stopping {
                    tokio::select! {
                        _ = &mut deadline => break,
                        _ = &mut stop => stopping = true,
                        r = rx.recv(), if pending.records.len() < options.queue_capacity => match r {
                            Some(rec) => pending.records.push_back(rec),
                            None => stopping = true,
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    pending.take_rest(&mut rx);
    // Shutdown: send the rest until the deadline, then spool.
    let deadline = tokio::time::Instant::now() + options.shutdown_deadline;
    while !pending.records.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, pending.send_oldest(&pdp, max_batch, spool)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "access log batch not stored during shutdown");
                tokio::time::sleep(Duration::from_millis(200).min(left)).await;
            }
            Err(_) => break,
        }
    }
    let Pending {
        records,
        mut report,
        ..
    } = pending;
    match (records.is_empty(), spool) {
        (true, Some(path)) => {
            let _ = std::fs::remove_file(path);
        }
        (true, None) => {}
        (false, Some(path)) => match write_spool(path, &records) {
            Ok(()) => report.spooled = records.len(),
            Err(e) => tracing::error!(error = %e, lost = records.len(), "access records lost"),
        },
        (false, None) => tracing::error!(
            lost = records.len(),
            "access records lost: server unreachable and no spool file configured"
        ),
    }
    report
}

fn spool_err(path: &std::path::Path, e: impl std::fmt::Display) -> LogError {
    LogError::Spool {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

fn read_spool(path: &std::path::Path) -> Result<VecDeque<AccessRecord>, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
        Err(e) => return Err(spool_err(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| spool_err(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

fn write_spool(path: &std::path::Path, records: &VecDeque<AccessRecord>) -> Result<(), LogError> {
    use std::io::Write as _;
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r).map_err(|e| spool_err(path, e))?;
        out.push(b'\n');
    }
    // Replace atomically: the file then holds exactly what is still unsent.
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| spool_err(path, e))?;
    f.write_all(&out).map_err(|e| spool_err(path, e))?;
    f.sync_all().map_err(|e| spool_err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| spool_err(path, e))
}
