//! The access journal: the durable copy of each access record at the moment its
//! decision is acknowledged.
//!
//! Writing a record into the indexed access-log tables costs several b-tree
//! inserts and whole-page WAL writes per commit; done on the decision path with the
//! small batches that concurrent requests form, it bounded throughput. The journal
//! is instead one append of compact JSON lines and one `fdatasync` per group commit
//! (a fraction of a millisecond here), and the log writer indexes the records into
//! the store afterwards in large batches (see [`crate::logwriter`]). At start, the
//! records the store may not have yet are read back from the journal and stored
//! again (idempotently, by `decision_id`); the journal is emptied only when the
//! store holds everything in it.
//!
//! A line is acknowledged only after it is synced, so a torn last line (a crash in
//! the middle of a write) was never acknowledged and is dropped at recovery.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::model::AccessRecord;

/// An append-only file of access records, one JSON object per line.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
    regular: bool,
}

/// What [`Journal::open`] found in the file.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Complete records, in the order they were written.
    pub records: Vec<AccessRecord>,
    /// Complete lines that did not parse (skipped, and logged).
    pub corrupt_lines: usize,
    /// Bytes of a torn last line (never acknowledged).
    pub torn_bytes: usize,
}

impl Journal {
    /// Opens (creating, mode 0600) the journal at `path` and reads back what it
    /// holds. A path that is not a regular file (a device, as in tests) is written
    /// to but never read back or truncated.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Recovered)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        let regular = file.metadata()?.is_file();
        let mut recovered = Recovered::default();
        let mut len = 0;
        if regular {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            recovered.torn_bytes = bytes.len() - complete;
            if recovered.torn_bytes > 0 {
                // Cut the torn line off, so the next append starts a clean line.
                file.set_len(complete as u64)?;
                file.sync_all()?;
            }
            len = complete as u64;
            for line in bytes[..complete].split(|b| *b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<AccessRecord>(line) {
                    Ok(r) => recovered.records.push(r),
                    Err(e) => {
                        recovered.corrupt_lines += 1;
                        tracing::error!(journal = %path.display(), error = %e, "skipping a corrupt access-journal line");
                    }
                }
            }
        }
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
                len,
                regular,
            },
            recovered,
        ))
    }

    /// Appends records and syncs them; when this returns `Ok` they are durable.
    pub fn append(&mut self, records: &[AccessRecord]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 400);
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Empties the journal: call only when the store durably holds every record
    /// in it.
    pub fn reset(&mut self) -> std::io::Result<()> {
        if self.regular && self.len > 0 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.len = 0;
        }
        Ok(())
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use policy_core::decision::{Effect, Reason};

    fn record(i: usize) -> AccessRecord {
        AccessRecord {
            decision_id: format!("J{i:05}"),
            time: Utc::now(),
            pep: "api".into(),
            target: "github".into(),
            user: Some("tanaka".into()),
            device: None,
            decision: Effect::Deny,
            reasons: vec![Reason::new("deny.matched", "拒否条件に該当するため拒否")],
            auth_method: None,
            source_ip: None,
            country: None,
            anomalies: vec![],
        }
    }

    #[test]
    fn records_survive_reopening_and_a_torn_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("rzts-journal-{}", std::process::id()));
        let path = dir.join("access.journal");
        let _ = std::fs::remove_file(&path);
        let (mut j, r) = Journal::open(&path).unwrap();
        assert!(r.records.is_empty() && j.is_empty());
        j.append(&[record(1), record(2)]).unwrap();
        j.append(&[record(3)]).unwrap();
        drop(j);
        // A crash in the middle of the next write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"decision_id\":\"J00004\",\"ti").unwrap();
        drop(f);
        let (mut j, r) = Journal::open(&path).unwrap();
        let ids: Vec<&str> = r.records.iter().map(|r| r.decision_id.as_str()).collect();
        assert_eq!(ids, ["J00001", "J00002", "J00003"]);
        assert_eq!(
            r.records[0].reasons[0].message.as_ref(),
            "拒否条件に該当するため拒否"
        );
        assert!(r.torn_bytes > 0);
        assert_eq!(r.corrupt_lines, 0);
        // The torn line is gone: the next record is read back whole.
        j.append(&[record(5)]).unwrap();
        drop(j);
        let (mut j, r) = Journal::open(&path).unwrap();
        assert_eq!(r.records.len(), 4);
        assert_eq!(r.records[3].decision_id, "J00005");
        assert_eq!(r.corrupt_lines, 0);
        j.reset().unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert!(r.records.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
