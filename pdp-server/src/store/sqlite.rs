//! The embedded SQLite backend (the default).
//!
//! One writer connection behind a mutex does every write; a few reader connections
//! serve reads concurrently with it (WAL lets readers and the writer proceed at
//! once). Durability: `journal_mode=WAL` with `synchronous=FULL`, so a commit has
//! been synced to the WAL file when it returns; `append_access` writes a whole batch
//! in one transaction, so many decisions share one sync (group commit).
//!
//! Times are stored as integer microseconds since the Unix epoch (UTC), which sort
//! and compare as numbers (`datetime(time / 1000000, 'unixepoch')` shows them in
//! the `sqlite3` shell). Posture reports, reason codes and anomaly codes are JSON
//! text.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension as _, Row, TransactionBehavior,
};

use super::codec;
use super::{Store, StoreError};
use crate::model::{
    AccessRecord, Device, EnrollOutcome, Group, LogQuery, NewEnrollment, NewUser, User,
};
use pep_client::record::StoredReasons;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reader connections of a file database.
const READERS: usize = 3;

/// The schema, one entry per version: entry `i` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: directory and access log.
    "CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL,
        display_name  TEXT NOT NULL,
        password_hash TEXT,
        totp_secret   TEXT,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL            -- µs since the epoch, UTC
    );
    CREATE TABLE user_groups (
        name TEXT PRIMARY KEY
    );
    CREATE TABLE group_members (
        group_name TEXT NOT NULL REFERENCES user_groups(name) ON DELETE CASCADE,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_name, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_user ON group_members(user_id, group_name);
    CREATE TABLE devices (
        id            TEXT PRIMARY KEY,
        owner         TEXT NOT NULL REFERENCES users(id),
        posture       TEXT,                       -- JSON: the request context's `device`
        last_seen     INTEGER,                    -- µs since the epoch, UTC
        registered_at INTEGER NOT NULL
    );
    CREATE INDEX devices_owner ON devices(owner);
    CREATE TABLE access_log (
        seq         INTEGER PRIMARY KEY,          -- insertion order, breaks ties in time
        decision_id TEXT NOT NULL UNIQUE,
        time        INTEGER NOT NULL,             -- µs since the epoch, UTC
        pep         TEXT NOT NULL,
        target      TEXT NOT NULL,
        user_id     TEXT,
        device_id   TEXT,
        decision    TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
        reasons     TEXT NOT NULL,                -- JSON array of codes
        auth_method TEXT,
        source_ip   TEXT,
        country     TEXT,
        anomalies   TEXT NOT NULL                 -- JSON array of codes
    );
    CREATE INDEX access_log_time ON access_log(time);
    CREATE INDEX access_log_user_time ON access_log(user_id, time);
    CREATE INDEX access_log_target_time ON access_log(target, time);",
    // 2: proxy credentials of the SOCKS gateway.
    "CREATE TABLE proxy_credentials (
        user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL,
        created_at   INTEGER NOT NULL             -- µs since the epoch, UTC
    );",
    // 3: device agent (enrolment codes, device keys and report sequence numbers,
    // attestation challenges).
    "CREATE TABLE enrollment_codes (
        code_sha256 TEXT PRIMARY KEY,             -- hex SHA-256 of the code
        owner       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device_id   TEXT,                         -- NULL: generated at enrolment
        created_at  INTEGER NOT NULL,             -- µs since the epoch, UTC
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        used_by     TEXT                          -- the device enrolled with it
    );
    CREATE TABLE device_keys (
        device_id   TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        public_key  TEXT NOT NULL,                -- ed25519, standard base64
        last_seq    INTEGER NOT NULL DEFAULT 0,   -- last accepted report
        enrolled_at INTEGER NOT NULL
    );
    CREATE TABLE attest_challenges (
        challenge  TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX attest_challenges_expiry ON attest_challenges(expires_at);",
];

const ACCESS_COLUMNS: &str = "decision_id, time, pep, target, user_id, device_id, decision, \
                              reasons, auth_method, source_ip, country, anomalies";

/// The SQLite store. Cheap to share behind an `Arc`; every method is thread-safe.
pub struct SqliteStore {
    /// Does every write (and every read of an in-memory database).
    writer: Mutex<Connection>,
    /// Serve reads; empty for an in-memory database, which is private to one connection.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("readers", &self.readers.len())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path`. Call
    /// [`Store::migrate`] before use (or use [`super::open`], which does).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        configure_writer(&writer, true)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
            conn.execute_batch("PRAGMA query_only = ON; PRAGMA foreign_keys = ON;")
                .map_err(backend)?;
            readers.push(Mutex::new(conn));
        }
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            path: Some(path.to_path_buf()),
        })
    }

    /// A private in-memory database (gone when the store is dropped).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let writer = Connection::open_in_memory().map_err(backend)?;
        configure_writer(&writer, false)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            path: None,
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a transaction open (the
        // `Transaction` guard rolls back on unwind), so the connection is usable.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return self.writer();
        }
        super::take_from_pool(&self.readers, &self.next_reader)
    }

    /// Runs `f` in an immediate (write-locked) transaction and commits.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }
}

fn configure_writer(conn: &Connection, file: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    if file {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "SQLite refused WAL mode (journal_mode is {mode})"
            )));
        }
    }
    // synchronous = FULL: a commit returns only after the WAL is synced, which is
    // what "acknowledged only when durable" needs. A 64 MiB page cache keeps the
    // access-log indexes in memory (without it every commit re-reads their pages
    // with pread), and checkpointing every 10,000 pages instead of 1,000 writes a
    // hot index page back to the database file once instead of many times.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000;",
    )
    .map_err(backend)
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a write's error: constraint violations become `Conflict` / `NotFound` about
/// `what`, the rest `Backend`.
fn classify(e: rusqlite::Error, what: &str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == ErrorCode::ConstraintViolation {
            match f.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                    return StoreError::Conflict(what.to_string())
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    return StoreError::NotFound(what.to_string())
                }
                _ => {}
            }
        }
    }
    backend(e)
}

fn time_to_sql(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time_from_sql(what: &str, us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Backend(format!("corrupt {what} in the database: {us}")))
}

/// A column read with a type check; a mismatch is a `Backend` error, never a panic.
fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> Result<T, StoreError> {
    row.get(i).map_err(backend)
}

fn user_from_row(row: &Row<'_>) -> Result<User, StoreError> {
    Ok(User {
        id: col(row, 0)?,
        email: col(row, 1)?,
        display_name: col(row, 2)?,
        password_hash: col(row, 3)?,
        totp_secret: col(row, 4)?,
        disabled: col::<i64>(row, 5)? != 0,
        created_at: time_from_sql("users.created_at", col(row, 6)?)?,
    })
}

/// Parameters of one access record in an INSERT (the columns of `ACCESS_COLUMNS`).
const ACCESS_PARAMS: usize = 12;

/// How access records are inserted: the two uses differ in conflict handling
/// and in rows per statement.
#[derive(Debug, Clone, Copy)]
enum AccessInsert {
    /// `Store::append_access`: a stored `decision_id` is a conflict. One row per
    /// statement, so the conflict names the record at fault.
    Append,
    /// `Store::ingest_access` (the indexer): stored ids are skipped, 32 rows per
    /// statement. Each statement opens and closes cursors on the table and its
    /// four indexes and ends with a statement halt: one statement per record
    /// spent about a quarter of SQLite's work per record on that (callgrind:
    /// 35,400 → 26,800 instructions a record). 32 rows are 384 parameters, far
    /// below SQLite's limit (32,766).
    Ingest,
}

impl AccessInsert {
    fn rows_per_statement(self) -> usize {
        match self {
            AccessInsert::Append => 1,
            AccessInsert::Ingest => 32,
        }
    }

    /// The statement text for one row, or for `rows_per_statement` rows; built
    /// once per process.
    fn sql(self, many: bool) -> &'static str {
        static SQL: LazyLock<[String; 3]> = LazyLock::new(|| {
            [
                access_insert_sql("INSERT INTO", 1),
                access_insert_sql("INSERT OR IGNORE INTO", 1),
                access_insert_sql(
                    "INSERT OR IGNORE INTO",
                    AccessInsert::Ingest.rows_per_statement(),
                ),
            ]
        });
        let i = match (self, many) {
            (AccessInsert::Append, _) => 0,
            (AccessInsert::Ingest, false) => 1,
            (AccessInsert::Ingest, true) => 2,
        };
        &SQL[i]
    }
}

/// `{verb} access_log (...) VALUES (?1, ..., ?12), (?13, ...)` for `rows` rows.
fn access_insert_sql(verb: &str, rows: usize) -> String {
    let params: Vec<String> = (0..rows)
        .map(|row| {
            let cols: Vec<String> = (1..=ACCESS_PARAMS)
                .map(|col| format!("?{}", row * ACCESS_PARAMS + col))
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect();
    format!(
        "{verb} access_log ({ACCESS_COLUMNS}) VALUES {}",
        params.join(", ")
    )
}

/// Binds one record's columns at parameters `offset + 1 ..= offset + 12`.
fn bind_access(
    stmt: &mut rusqlite::Statement<'_>,
    offset: usize,
    r: &AccessRecord,
    reasons: &str,
    anomalies: &str,
) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(offset + 1, &r.decision_id)?;
    stmt.raw_bind_parameter(offset + 2, time_to_sql(r.time))?;
    stmt.raw_bind_parameter(offset + 3, &r.pep)?;
    stmt.raw_bind_parameter(offset + 4, &r.target)?;
    stmt.raw_bind_parameter(offset + 5, &r.user)?;
    stmt.raw_bind_parameter(offset + 6, &r.device)?;
    stmt.raw_bind_parameter(offset + 7, codec::effect_str(r.decision))?;
    stmt.raw_bind_parameter(offset + 8, reasons)?;
    stmt.raw_bind_parameter(offset + 9, &r.auth_method)?;
    stmt.raw_bind_parameter(offset + 10, &r.source_ip)?;
    stmt.raw_bind_parameter(offset + 11, &r.country)?;
    stmt.raw_bind_parameter(offset + 12, anomalies)
}

const USER_COLUMNS: &str =
    "id, email, display_name, password_hash, totp_secret, disabled, created_at";

fn device_from_row(row: &Row<'_>) -> Result<Device, StoreError> {
    let posture = match col::<Option<String>>(row, 2)? {
        Some(text) => Some(codec::from_json("devices.posture", &text)?),
        None => None,
    };
    let last_seen = match col::<Option<i64>>(row, 3)? {
        Some(us) => Some(time_from_sql("devices.last_seen", us)?),
        None => None,
    };
    Ok(Device {
        id: col(row, 0)?,
        owner: col(row, 1)?,
        posture,
        last_seen,
        registered_at: time_from_sql("devices.registered_at", col(row, 4)?)?,
    })
}

const DEVICE_COLUMNS: &str = "id, owner, posture, last_seen, registered_at";

fn access_from_row(row: &Row<'_>) -> Result<AccessRecord, StoreError> {
    Ok(AccessRecord {
        decision_id: col(row, 0)?,
        time: time_from_sql("access_log.time", col(row, 1)?)?,
        pep: col(row, 2)?,
        target: col(row, 3)?,
        user: col(row, 4)?,
        device: col(row, 5)?,
        decision: codec::parse_effect(&col::<String>(row, 6)?)?,
        reasons: codec::from_json::<StoredReasons>("access_log.reasons", &col::<String>(row, 7)?)?
            .0,
        auth_method: col(row, 8)?,
        source_ip: col(row, 9)?,
        country: col(row, 10)?,
        anomalies: codec::from_json("access_log.anomalies", &col::<String>(row, 11)?)?,
    })
}

/// Runs a query and converts every row, stopping at the first error.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    convert: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(convert(row)?);
    }
    Ok(out)
}

fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.exists([key]))
        .map_err(backend)
}

impl Store for SqliteStore {
    fn migrate(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )
            .map_err(backend)?;
            let current: Option<i64> = tx
                .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
                .map_err(backend)?;
            let current = current.unwrap_or(0);
            let latest = MIGRATIONS.len() as i64;
            debug_assert_eq!(latest, codec::SCHEMA_VERSION);
            if current > latest {
                return Err(StoreError::Backend(format!(
                    "the database has schema version {current}, newer than this build's {latest}"
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                tx.execute_batch(sql)
                    .map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
            }
            if current < latest {
                tx.execute("DELETE FROM schema_version", [])
                    .map_err(backend)?;
                tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [latest])
                    .map_err(backend)?;
            }
            Ok(())
        })
    }

    fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let created = codec::new_user(user);
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO users (id, email, display_name, password_hash, totp_secret, disabled, created_at)
                 VALUES (?1, ?2, ?3, ?4, NULL, 0, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    created.id,
                    created.email,
                    created.display_name,
                    created.password_hash,
                    time_to_sql(created.created_at)
                ])
            })
            .map_err(|e| classify(e, &format!("user {}", user.id)))
        })?;
        Ok(created)
    }

    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let conn = self.reader();
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(collect(&conn, &sql, [id], user_from_row)?.pop())
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let conn = self.reader();
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        collect(&conn, &sql, [], user_from_row)
    }

    fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        self.update_user(
            id,
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            Value::Integer(disabled.into()),
        )
    }

    fn set_user_password(&self, id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.update_user(
            id,
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            Value::Text(password_hash.to_string()),
        )
    }

    fn set_user_totp(&self, id: &str, secret: Option<&str>) -> Result<(), StoreError> {
        let value = secret.map_or(Value::Null, |s| Value::Text(s.to_string()));
        self.update_user(id, "UPDATE users SET totp_secret = ?2 WHERE id = ?1", value)
    }

    fn create_group(&self, name: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("INSERT INTO user_groups (name) VALUES (?1)")
                .and_then(|mut s| s.execute([name]))
                .map_err(|e| classify(e, &format!("group {name}")))?;
            Ok(())
        })
    }

    fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        let conn = self.reader();
        // One read transaction, so groups and members are one snapshot.
        conn.execute_batch("BEGIN").map_err(backend)?;
        let result = (|| {
            let mut groups = collect(
                &conn,
                "SELECT name FROM user_groups ORDER BY name",
                [],
                |r| {
                    Ok(Group {
                        name: col(r, 0)?,
                        members: Vec::new(),
                    })
                },
            )?;
            let members = collect(
                &conn,
                "SELECT group_name, user_id FROM group_members ORDER BY group_name, user_id",
                [],
                |r| Ok((col::<String>(r, 0)?, col::<String>(r, 1)?)),
            )?;
            codec::attach_members(&mut groups, members);
            Ok(groups)
        })();
        conn.execute_batch("COMMIT").map_err(backend)?;
        result
    }

    fn add_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            check_group_and_user(tx, group, user)?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO group_members (group_name, user_id) VALUES (?1, ?2)",
            )
            .and_then(|mut s| s.execute([group, user]))
            .map_err(|e| classify(e, &format!("group {group} or user {user}")))?;
            Ok(())
        })
    }

    fn remove_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            check_group_and_user(tx, group, user)?;
            tx.prepare_cached("DELETE FROM group_members WHERE group_name = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute([group, user]))
                .map_err(backend)?;
            Ok(())
        })
    }

    fn groups_of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.reader();
        collect(
            &conn,
            "SELECT group_name FROM group_members WHERE user_id = ?1 ORDER BY group_name",
            [user],
            |r| col(r, 0),
        )
    }

    fn register_device(&self, id: &str, owner: &str) -> Result<Device, StoreError> {
        let device = codec::new_device(id, owner, codec::now());
        self.write(|tx| {
            require_user(tx, owner)?;
            tx.prepare_cached(
                "INSERT INTO devices (id, owner, posture, last_seen, registered_at)
                 VALUES (?1, ?2, NULL, NULL, ?3)",
            )
            .and_then(|mut s| s.execute(params![id, owner, time_to_sql(device.registered_at)]))
            .map_err(|e| classify(e, &format!("device {id}")))?;
            Ok(())
        })?;
        Ok(device)
    }

    fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.reader();
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1");
        Ok(collect(&conn, &sql, [id], device_from_row)?.pop())
    }

    fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        let conn = self.reader();
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id");
        collect(&conn, &sql, [], device_from_row)
    }

    fn devices_of(&self, owner: &str) -> Result<Vec<Device>, StoreError> {
        let conn = self.reader();
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE owner = ?1 ORDER BY id");
        collect(&conn, &sql, [owner], device_from_row)
    }

    fn record_posture(
        &self,
        id: &str,
        posture: &policy_core::context::Device,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let json = codec::to_json(posture)?;
        self.write(|tx| set_posture(tx, id, &json, at))
    }

    fn delete_device(&self, id: &str) -> Result<(), StoreError> {
        let changed = self.write(|tx| {
            tx.prepare_cached("DELETE FROM devices WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(backend)
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn append_access(&self, records: &[AccessRecord]) -> Result<(), StoreError> {
        self.insert_access(records, AccessInsert::Append)
            .map(|_| ())
    }

    fn query_access(&self, query: &LogQuery) -> Result<Vec<AccessRecord>, StoreError> {
        let (sql, args) = codec::access_query(ACCESS_COLUMNS, query, |n| format!("?{n}"));
        let args = args.into_iter().map(|a| match a {
            codec::LogArg::Text(t) => Value::Text(t),
            codec::LogArg::Time(t) => Value::Integer(time_to_sql(t)),
            codec::LogArg::Int(i) => Value::Integer(i),
        });
        let conn = self.reader();
        collect(
            &conn,
            &sql,
            rusqlite::params_from_iter(args),
            access_from_row,
        )
    }

    fn recent_access(&self, user: &str, n: usize) -> Result<Vec<AccessRecord>, StoreError> {
        let conn = self.reader();
        let sql = format!(
            "SELECT {ACCESS_COLUMNS} FROM access_log WHERE user_id = ?1
             ORDER BY time DESC, seq DESC LIMIT ?2"
        );
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        collect(&conn, &sql, params![user, n], access_from_row)
    }

    fn set_proxy_credential(
        &self,
        user: &str,
        token_sha256: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = time_to_sql(codec::now());
        self.write(|tx| {
            require_user(tx, user)?;
            match token_sha256 {
                Some(h) => tx
                    .prepare_cached(
                        "INSERT INTO proxy_credentials (user_id, token_sha256, created_at)
                         VALUES (?1, ?2, ?3)
                         ON CONFLICT (user_id) DO UPDATE
                         SET token_sha256 = excluded.token_sha256, created_at = excluded.created_at",
                    )
                    .and_then(|mut st| st.execute(params![user, h, now])),
                None => tx
                    .prepare_cached("DELETE FROM proxy_credentials WHERE user_id = ?1")
                    .and_then(|mut st| st.execute([user])),
            }
            .map_err(backend)?;
            Ok(())
        })
    }

    fn proxy_credential(&self, user: &str) -> Result<Option<String>, StoreError> {
        let conn = self.reader();
        conn.prepare_cached("SELECT token_sha256 FROM proxy_credentials WHERE user_id = ?1")
            .and_then(|mut st| st.query_row([user], |r| r.get::<_, String>(0)).optional())
            .map_err(backend)
    }

    fn ingest_access(&self, records: &[AccessRecord]) -> Result<usize, StoreError> {
        self.insert_access(records, AccessInsert::Ingest)
    }

    // --- device agent -------------------------------------------------------

    fn create_enrollment(&self, code: &NewEnrollment) -> Result<(), StoreError> {
        self.write(|tx| {
            require_user(tx, &code.owner)?;
            tx.prepare_cached(
                "INSERT INTO enrollment_codes (code_sha256, owner, device_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    code.code_sha256,
                    code.owner,
                    code.device_id,
                    time_to_sql(codec::micros(code.created_at)),
                    time_to_sql(codec::micros(code.expires_at)),
                ])
            })
            .map_err(|e| classify(e, "enrolment code"))?;
            Ok(())
        })
    }

    fn enroll_device(
        &self,
        code_sha256: &str,
        public_key: &str,
        new_id: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollOutcome, StoreError> {
        let now = codec::micros(now);
        self.write(|tx| {
            let row = collect(
                tx,
                "SELECT owner, device_id, expires_at, used_at FROM enrollment_codes
                 WHERE code_sha256 = ?1",
                [code_sha256],
                |r| {
                    Ok((
                        col::<String>(r, 0)?,
                        col::<Option<String>>(r, 1)?,
                        col::<i64>(r, 2)?,
                        col::<Option<i64>>(r, 3)?,
                    ))
                },
            )?
            .pop();
            let Some((owner, named, expires_at, used_at)) = row else {
                return Ok(EnrollOutcome::Unknown);
            };
            let state = codec::code_state(
                used_at.is_some(),
                time_from_sql("enrollment_codes.expires_at", expires_at)?,
                now,
            );
            if let Some(refused) = state {
                return Ok(refused);
            }
            let id = named.unwrap_or_else(|| new_id.to_string());
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1");
            let device = match collect(tx, &sql, [&id], device_from_row)?.pop() {
                Some(d) if d.owner != owner => {
                    return Err(StoreError::Conflict(format!(
                        "device {id} belongs to another user"
                    )))
                }
                Some(d) => d,
                None => {
                    let d = codec::new_device(&id, &owner, now);
                    tx.prepare_cached(
                        "INSERT INTO devices (id, owner, posture, last_seen, registered_at)
                         VALUES (?1, ?2, NULL, NULL, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![id, owner, time_to_sql(now)]))
                    .map_err(|e| classify(e, &format!("device {id}")))?;
                    d
                }
            };
            tx.prepare_cached(
                "INSERT INTO device_keys (device_id, public_key, last_seq, enrolled_at)
                 VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT (device_id) DO UPDATE
                 SET public_key = excluded.public_key, last_seq = 0,
                     enrolled_at = excluded.enrolled_at",
            )
            .and_then(|mut s| s.execute(params![id, public_key, time_to_sql(now)]))
            .map_err(backend)?;
            tx.prepare_cached(
                "UPDATE enrollment_codes SET used_at = ?2, used_by = ?3 WHERE code_sha256 = ?1",
            )
            .and_then(|mut s| s.execute(params![code_sha256, time_to_sql(now), id]))
            .map_err(backend)?;
            Ok(EnrollOutcome::Enrolled(Box::new(device)))
        })
    }

    fn device_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.reader();
        Ok(collect(
            &conn,
            "SELECT public_key FROM device_keys WHERE device_id = ?1",
            [id],
            |r| col(r, 0),
        )?
        .pop())
    }

    fn accept_report(
        &self,
        id: &str,
        seq: u64,
        posture: &policy_core::context::Device,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        let json = codec::to_json(posture)?;
        self.write(|tx| {
            let advanced = tx
                .prepare_cached(
                    "UPDATE device_keys SET last_seq = ?2 WHERE device_id = ?1 AND last_seq < ?2",
                )
                .and_then(|mut s| s.execute(params![id, seq]))
                .map_err(backend)?;
            if advanced == 0 {
                return Ok(false);
            }
            set_posture(tx, id, &json, at)?;
            Ok(true)
        })
    }

    fn create_challenge(
        &self,
        challenge: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = time_to_sql(codec::now());
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM attest_challenges WHERE expires_at <= ?1")
                .and_then(|mut s| s.execute([now]))
                .map_err(backend)?;
            tx.prepare_cached(
                "INSERT INTO attest_challenges (challenge, expires_at) VALUES (?1, ?2)",
            )
            .and_then(|mut s| s.execute(params![challenge, time_to_sql(codec::micros(expires_at))]))
            .map_err(|e| classify(e, "attestation challenge"))?;
            Ok(())
        })
    }

    fn consume_challenge(&self, challenge: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = time_to_sql(codec::micros(now));
        let changed = self.write(|tx| {
            tx.prepare_cached(
                "DELETE FROM attest_challenges WHERE challenge = ?1 AND expires_at > ?2",
            )
            .and_then(|mut s| s.execute(params![challenge, now]))
            .map_err(backend)
        })?;
        Ok(changed == 1)
    }
}

impl SqliteStore {
    /// Inserts access records in one transaction; returns rows inserted.
    fn insert_access(
        &self,
        records: &[AccessRecord],
        how: AccessInsert,
    ) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        // Encode before taking the lock, so the writer is held only for SQLite work.
        let encoded = records
            .iter()
            .map(|r| {
                Ok((
                    codec::reasons_json(&r.reasons)?,
                    codec::to_json(&r.anomalies)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let rows: Vec<_> = records.iter().zip(&encoded).collect();
        let per_statement = how.rows_per_statement();
        let full = rows.len() - rows.len() % per_statement;
        self.write(|tx| {
            let mut inserted = 0;
            for (group, size) in [(&rows[..full], per_statement), (&rows[full..], 1)] {
                if group.is_empty() {
                    continue;
                }
                let mut stmt = tx.prepare_cached(how.sql(size > 1)).map_err(backend)?;
                for chunk in group.chunks(size) {
                    for (i, (r, (reasons, anomalies))) in chunk.iter().enumerate() {
                        bind_access(&mut stmt, i * ACCESS_PARAMS, r, reasons, anomalies)
                            .map_err(backend)?;
                    }
                    inserted += stmt.raw_execute().map_err(|e| {
                        let what = match chunk {
                            [(one, _)] => format!("access record {}", one.decision_id),
                            _ => format!("one of {} access records", chunk.len()),
                        };
                        classify(e, &what)
                    })?;
                }
            }
            Ok(inserted)
        })
    }

    fn update_user(&self, id: &str, sql: &str, value: Value) -> Result<(), StoreError> {
        let changed = self.write(|tx| {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(params![id, value]))
                .map_err(backend)
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }
}

/// A device's latest posture report (JSON) and when it was seen.
fn set_posture(
    conn: &Connection,
    id: &str,
    json: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = time_to_sql(codec::micros(at));
    let changed = conn
        .prepare_cached("UPDATE devices SET posture = ?2, last_seen = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, json, at]))
        .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("device {id}")));
    }
    Ok(())
}

/// `NotFound` unless user `id` exists.
fn require_user(conn: &Connection, id: &str) -> Result<(), StoreError> {
    if !exists(conn, "SELECT 1 FROM users WHERE id = ?1", id)? {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    Ok(())
}

fn check_group_and_user(conn: &Connection, group: &str, user: &str) -> Result<(), StoreError> {
    if !exists(conn, "SELECT 1 FROM user_groups WHERE name = ?1", group)? {
        return Err(StoreError::NotFound(format!("group {group}")));
    }
    require_user(conn, user)?;
    Ok(())
}
