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
//! A long-running server never stops to empty a large journal: the log writer
//! [rotates](Journal::rotate) it (the file becomes `<name>.1` and a new one is
//! started) and removes the rotated file once the store has caught up with it.
//! Recovery reads the rotated file first, then the current one.
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
        let mut file = open_append(path)?;
        let regular = file.metadata()?.is_file();
        let mut recovered = Recovered::default();
        let mut len = 0;
        if regular {
            // A rotated journal not yet removed holds the older records.
            match std::fs::read(rotated_path(path)) {
                Ok(bytes) => {
                    let complete = complete_lines(&bytes);
                    read_lines(&bytes[..complete], path, &mut recovered);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let complete = complete_lines(&bytes);
            recovered.torn_bytes = bytes.len() - complete;
            if recovered.torn_bytes > 0 {
                // Cut the torn line off, so the next append starts a clean line.
                file.set_len(complete as u64)?;
                file.sync_all()?;
            }
            len = complete as u64;
            read_lines(&bytes[..complete], path, &mut recovered);
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

    /// Starts a new journal file: the current one becomes the rotated file
    /// (`<name>.1`), to be removed with [`Journal::remove_rotated`] once the store
    /// holds its records. False (nothing done) when the journal is not a regular
    /// file or a rotated file is still there.
    pub fn rotate(&mut self) -> std::io::Result<bool> {
        let rotated = rotated_path(&self.path);
        if !self.regular || rotated.exists() {
            return Ok(false);
        }
        std::fs::rename(&self.path, &rotated)?;
        let file = open_append(&self.path)?;
        sync_parent(&self.path)?;
        self.file = file;
        self.len = 0;
        Ok(true)
    }

    /// Removes the rotated file, if there is one: call only when the store
    /// durably holds every record in it.
    pub fn remove_rotated(&mut self) -> std::io::Result<()> {
        match std::fs::remove_file(rotated_path(&self.path)) {
            Ok(()) => sync_parent(&self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
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
        if self.regular {
            self.remove_rotated()?;
        }
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

/// Where [`Journal::rotate`] moves the journal.
fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Makes a rename or removal in the journal's directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Length of the part of `bytes` made of complete lines.
fn complete_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// Parses complete lines into `out`, counting (and logging) corrupt ones.
fn read_lines(bytes: &[u8], path: &Path, out: &mut Recovered) {
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AccessRecord>(line) {
            Ok(r) => out.records.push(r),
            Err(e) => {
                out.corrupt_lines += 1;
                tracing::error!(journal = %path.display(), error = %e, "skipping a corrupt access-journal line");
            }
        }
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
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
    }

    #[test]
    fn a_rotated_journal_is_read_back_first_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&[record(1), record(2)]).unwrap();
        assert!(j.rotate().unwrap());
        assert!(j.is_empty());
        // A second rotation waits until the first rotated file is removed.
        j.append(&[record(3)]).unwrap();
        assert!(!j.rotate().unwrap());
        drop(j);
        let (mut j, r) = Journal::open(&path).unwrap();
        let ids: Vec<&str> = r.records.iter().map(|r| r.decision_id.as_str()).collect();
        assert_eq!(ids, ["J00001", "J00002", "J00003"]);
        j.remove_rotated().unwrap();
        drop(j);
        let (mut j, r) = Journal::open(&path).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].decision_id, "J00003");
        // Reset empties both.
        assert!(j.rotate().unwrap());
        j.append(&[record(4)]).unwrap();
        j.reset().unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert!(r.records.is_empty());
        assert!(!rotated_path(&path).exists());
    }
}
