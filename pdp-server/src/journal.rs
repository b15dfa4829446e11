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
//! Records have ordinals: the n-th record appended since the journal was opened
//! has ordinal n. The indexer normally receives each batch from memory; when it
//! missed some (it fell behind and the writer would not wait for it), it reads them
//! back through a [`Snapshot`] from the ordinal it has stored up to.
//!
//! A line is acknowledged only after it is synced, so a torn last line (a crash in
//! the middle of a write) was never acknowledged and is dropped at recovery.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::model::AccessRecord;

/// An append-only file of access records, one JSON object per line.
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
    regular: bool,
    /// Records appended since opening: the next record's ordinal.
    appended: u64,
    /// Ordinal of the current file's first record.
    base: u64,
    /// Ordinal of the rotated file's first record, while there is one.
    rotated_base: Option<u64>,
    /// A failed append could not be undone: nothing more is appended.
    broken: bool,
    /// The lines of one append, kept between appends: a fresh buffer of tens of
    /// kilobytes per group commit made the allocator fault in (and zero) new
    /// pages every time, which cost more CPU than serialising the records.
    buf: Vec<u8>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("appended", &self.appended)
            .field("base", &self.base)
            .field("rotated_base", &self.rotated_base)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Most bytes the line buffer keeps between appends (a huge batch's buffer is
/// given back instead of being held for ever).
const KEEP_BUF_BYTES: usize = 1 << 20;

/// The journal's files as they were at one moment, opened for reading: every
/// record with an ordinal below [`Snapshot::end`] is in them.
#[derive(Debug)]
pub struct Snapshot {
    /// (file, ordinal of its first record, bytes to read)
    parts: Vec<(File, u64, u64)>,
    end: u64,
    path: PathBuf,
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
                appended: 0,
                base: 0,
                rotated_base: None,
                broken: false,
                buf: Vec::new(),
            },
            recovered,
        ))
    }

    /// Starts a new journal file: the current one becomes the rotated file
    /// (`<name>.1`), to be removed with [`Journal::remove_rotated`] once the store
    /// holds its records. False (nothing done) when the journal is not a regular
    /// file or a rotated file is still there.
    pub fn rotate(&mut self) -> std::io::Result<bool> {
        // `rotated_base` answers without a stat; the file check still guards a
        // rotated file this journal did not make (opened but not yet reset).
        let rotated = rotated_path(&self.path);
        if !self.regular || self.rotated_base.is_some() || rotated.exists() {
            return Ok(false);
        }
        std::fs::rename(&self.path, &rotated)?;
        // From here the old file is the rotated one, whatever happens next.
        self.rotated_base = Some(self.base);
        self.base = self.appended;
        match open_append(&self.path) {
            Ok(file) => self.file = file,
            Err(e) => {
                self.broken = true;
                return Err(e);
            }
        }
        self.len = 0;
        sync_parent(&self.path)?;
        Ok(true)
    }

    /// Whether a rotated file waits to be removed, and the ordinal its records
    /// end at (the store must hold every record below it first).
    pub fn rotated_until(&self) -> Option<u64> {
        self.rotated_base.map(|_| self.base)
    }

    /// Removes the rotated file, if there is one: call only when the store
    /// durably holds every record in it.
    pub fn remove_rotated(&mut self) -> std::io::Result<()> {
        match std::fs::remove_file(rotated_path(&self.path)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.rotated_base = None;
        sync_parent(&self.path)
    }

    /// Appends records and syncs them; when this returns `Ok` they are durable,
    /// with the ordinals from the returned one on. A failed append is cut off
    /// again, so no torn line sits between acknowledged ones.
    pub fn append(&mut self, records: &[AccessRecord]) -> std::io::Result<u64> {
        if self.broken {
            return Err(std::io::Error::other(
                "an earlier failed write could not be undone; restart to recover",
            ));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let written = Self::write_lines(&mut self.file, &mut buf, records);
        let bytes = buf.len() as u64;
        if buf.capacity() > KEEP_BUF_BYTES {
            buf = Vec::new();
        }
        self.buf = buf;
        if let Err(e) = written {
            if self.regular && self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(e);
        }
        self.len += bytes;
        let first = self.appended;
        self.appended += records.len() as u64;
        Ok(first)
    }

    /// Serialises `records` as JSON lines into `buf`, writes and syncs them.
    fn write_lines(
        file: &mut File,
        buf: &mut Vec<u8>,
        records: &[AccessRecord],
    ) -> std::io::Result<()> {
        for r in records {
            serde_json::to_writer(&mut *buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        file.write_all(buf)?;
        file.sync_data()
    }

    /// Opens the journal's files for reading as they are now (see [`Snapshot`]).
    pub fn snapshot(&self) -> std::io::Result<Snapshot> {
        if !self.regular {
            return Err(std::io::Error::other("the journal is not a regular file"));
        }
        let mut parts = Vec::with_capacity(2);
        if let Some(base) = self.rotated_base {
            let f = File::open(rotated_path(&self.path))?;
            let len = f.metadata()?.len();
            parts.push((f, base, len));
        }
        parts.push((File::open(&self.path)?, self.base, self.len));
        Ok(Snapshot {
            parts,
            end: self.appended,
            path: self.path.clone(),
        })
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
        self.base = self.appended;
        Ok(())
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Snapshot {
    /// The ordinal after the last record in the snapshot.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Reads the records with ordinals from `from` to [`Snapshot::end`], in order,
    /// handing them to `each` in chunks of at most `chunk`; stops at the first
    /// error `each` returns. A line that does not parse keeps its ordinal and is
    /// skipped (and logged).
    pub fn read_from<E>(
        self,
        from: u64,
        chunk: usize,
        mut each: impl FnMut(Vec<AccessRecord>) -> Result<(), E>,
    ) -> Result<(), SnapshotError<E>> {
        let mut out = Vec::new();
        for (file, base, len) in self.parts {
            let mut ordinal = base;
            let mut reader = BufReader::new(file.take(len));
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader
                    .read_until(b'\n', &mut line)
                    .map_err(SnapshotError::Io)?
                    == 0
                {
                    break;
                }
                if line.last() != Some(&b'\n') || ordinal >= self.end {
                    break;
                }
                if ordinal >= from {
                    out.extend(parse_line(&line[..line.len() - 1], &self.path));
                    if out.len() >= chunk.max(1) {
                        each(std::mem::take(&mut out)).map_err(SnapshotError::Each)?;
                    }
                }
                ordinal += 1;
            }
        }
        if !out.is_empty() {
            each(out).map_err(SnapshotError::Each)?;
        }
        Ok(())
    }
}

/// Why [`Snapshot::read_from`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError<E> {
    /// Reading the journal failed.
    #[error("reading the access journal: {0}")]
    Io(std::io::Error),
    /// The callback failed.
    #[error("{0}")]
    Each(E),
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
        match parse_line(line, path) {
            Some(r) => out.records.push(r),
            None => out.corrupt_lines += 1,
        }
    }
}

/// One journal line (without its newline) as a record; a corrupt line is logged.
fn parse_line(line: &[u8], path: &Path) -> Option<AccessRecord> {
    serde_json::from_slice(line)
        .map_err(|e| {
            tracing::error!(journal = %path.display(), error = %e, "skipping a corrupt access-journal line");
        })
        .ok()
}

/// A denied access with decision id `id`, for the journal's and the log writer's
/// tests. Its time is fixed, so every journal line of the same id length has the
/// same length.
#[cfg(test)]
pub(crate) fn test_record(id: String) -> AccessRecord {
    use chrono::TimeZone as _;
    use policy_core::decision::{Effect, Reason};
    AccessRecord {
        decision_id: id,
        time: chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
            .single()
            .expect("a valid fixed time"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> AccessRecord {
        test_record(format!("J{i:05}"))
    }

    #[test]
    fn records_survive_reopening_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.journal");
        let (mut j, r) = Journal::open(&path).unwrap();
        assert!(r.records.is_empty() && j.len() == 0);
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
        assert_eq!(j.len(), 0);
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
