//! The PostgreSQL backend, chosen by a `postgres://` or `postgresql://` URL.
//!
//! A small pool of synchronous connections (`postgres` crate, no TLS); a connection
//! that broke is replaced on next use. Same semantics as the SQLite backend: times
//! are `timestamptz` (microseconds), posture reports and code lists are `jsonb`, key
//! columns use the byte-order `"C"` collation so listings sort exactly as in SQLite.
//! `append_access` inserts a whole batch with one statement in one transaction; it
//! returns after the commit, which with the default `synchronous_commit = on` means
//! the batch has been flushed to the write-ahead log.
//!
//! The `postgres` client runs its own small runtime: use this store from plain
//! threads or `tokio::task::spawn_blocking`, not directly on an async task.

use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::{Client, Config, GenericClient, NoTls, Row};
use chrono::{DateTime, Utc};

use super::codec;
use super::{Store, StoreError};
use crate::model::{
    AccessRecord, Device, EnrollOutcome, Group, LogQuery, NewEnrollment, NewUser, User,
};
use pep_client::record::StoredReasons;

/// Connections in the pool.
const POOL: usize = 4;

/// Serialises concurrent migrations of one database (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x525a_5453_0001; // "RZTS" 1

/// The schema, one entry per version: entry `i` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: directory and access log.
    r#"CREATE TABLE users (
        id            TEXT COLLATE "C" PRIMARY KEY,
        email         TEXT NOT NULL,
        display_name  TEXT NOT NULL,
        password_hash TEXT,
        totp_secret   TEXT,
        disabled      BOOLEAN NOT NULL DEFAULT FALSE,
        created_at    TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE user_groups (
        name TEXT COLLATE "C" PRIMARY KEY
    );
    CREATE TABLE group_members (
        group_name TEXT COLLATE "C" NOT NULL REFERENCES user_groups(name) ON DELETE CASCADE,
        user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_name, user_id)
    );
    CREATE INDEX group_members_user ON group_members(user_id, group_name);
    CREATE TABLE devices (
        id            TEXT COLLATE "C" PRIMARY KEY,
        owner         TEXT COLLATE "C" NOT NULL REFERENCES users(id),
        posture       JSONB,
        last_seen     TIMESTAMPTZ,
        registered_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX devices_owner ON devices(owner);
    CREATE TABLE access_log (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        time        TIMESTAMPTZ NOT NULL,
        pep         TEXT NOT NULL,
        target      TEXT NOT NULL,
        user_id     TEXT,
        device_id   TEXT,
        decision    TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
        reasons     JSONB NOT NULL,
        auth_method TEXT,
        source_ip   TEXT,
        country     TEXT,
        anomalies   JSONB NOT NULL
    );
    CREATE INDEX access_log_time ON access_log(time, seq);
    CREATE INDEX access_log_user_time ON access_log(user_id, time, seq);
    CREATE INDEX access_log_target_time ON access_log(target, time, seq);"#,
    // 2: proxy credentials of the SOCKS gateway.
    r#"CREATE TABLE proxy_credentials (
        user_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL,
        created_at   TIMESTAMPTZ NOT NULL
    );"#,
    // 3: device agent (enrolment codes, device keys and report sequence numbers,
    // attestation challenges).
    r#"CREATE TABLE enrollment_codes (
        code_sha256 TEXT PRIMARY KEY,
        owner       TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device_id   TEXT COLLATE "C",
        created_at  TIMESTAMPTZ NOT NULL,
        expires_at  TIMESTAMPTZ NOT NULL,
        used_at     TIMESTAMPTZ,
        used_by     TEXT
    );
    CREATE TABLE device_keys (
        device_id   TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        public_key  TEXT NOT NULL,
        last_seq    BIGINT NOT NULL DEFAULT 0,
        enrolled_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE attest_challenges (
        challenge  TEXT PRIMARY KEY,
        expires_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX attest_challenges_expiry ON attest_challenges(expires_at);"#,
];

const USER_COLUMNS: &str =
    "id, email, display_name, password_hash, totp_secret, disabled, created_at";
const DEVICE_COLUMNS: &str = "id, owner, posture::text, last_seen, registered_at";
const ACCESS_COLUMNS: &str = "decision_id, time, pep, target, user_id, device_id, decision, \
                              reasons::text, auth_method, source_ip, country, anomalies::text";

/// The PostgreSQL store. Cheap to share behind an `Arc`; every method is thread-safe.
pub struct PostgresStore {
    config: Config,
    slots: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("pool", &self.slots.len())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL (or libpq key=value string)
    /// names. Call [`Store::migrate`] before use (or use [`super::open`], which does).
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("rzts");
        }
        // Connect one now, so a wrong URL or a server that is down fails here.
        let first = off_runtime(|| connect(&config))?;
        let mut slots = Vec::with_capacity(POOL);
        slots.push(Mutex::new(Some(first)));
        slots.extend((1..POOL).map(|_| Mutex::new(None)));
        Ok(PostgresStore {
            config,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// Connects and brings the schema up to date ([`Store::migrate`]). Unlike the
    /// other methods this one may be called on an async task (it does its blocking
    /// work on a helper thread), so a server can open its store at start-up.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::connect(url)?;
        off_runtime(|| store.migrate())?;
        Ok(store)
    }

    fn slot(&self) -> MutexGuard<'_, Option<Client>> {
        super::take_from_pool(&self.slots, &self.next)
    }

    /// Runs `f` on a pooled connection, reconnecting first if it broke.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, ::postgres::Error>,
        what: &str,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot();
        let client = match &mut *slot {
            Some(c) if !c.is_closed() => c,
            other => other.insert(connect(&self.config)?),
        };
        let result = f(client);
        if let Err(e) = &result {
            if e.is_closed() {
                *slot = None;
            }
        }
        result.map_err(|e| classify(e, what))
    }

    /// Runs `f` in a transaction and commits.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>) -> Result<T, WriteError>,
        what: &str,
    ) -> Result<T, StoreError> {
        let mut outcome = None;
        let sql = self.with(
            |client| {
                let mut tx = client.transaction()?;
                match f(&mut tx) {
                    Ok(v) => {
                        tx.commit()?;
                        outcome = Some(Ok(v));
                    }
                    // Dropping `tx` rolls back.
                    Err(WriteError::Sql(e)) => return Err(e),
                    Err(WriteError::Store(e)) => outcome = Some(Err(e)),
                }
                Ok(())
            },
            what,
        );
        sql?;
        outcome.unwrap_or_else(|| Err(StoreError::Backend("transaction produced no result".into())))
    }

    /// Reads rows with `sql` and converts them.
    fn read<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        convert: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.with(|c| c.query(sql, params), "query")?;
        rows.iter().map(convert).collect()
    }

    /// Inserts access records with one statement; with `skip_existing`, records
    /// whose decision id is stored already are skipped. Returns rows inserted.
    fn insert_access(
        &self,
        records: &[AccessRecord],
        skip_existing: bool,
    ) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let on_conflict = if skip_existing {
            "ON CONFLICT (decision_id) DO NOTHING"
        } else {
            ""
        };
        // Column arrays for one INSERT ... SELECT FROM UNNEST: one statement and one
        // round trip for the whole batch, whatever its size.
        let n = records.len();
        let mut ids = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let mut peps = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(n);
        let mut users = Vec::with_capacity(n);
        let mut devices = Vec::with_capacity(n);
        let mut decisions = Vec::with_capacity(n);
        let mut reasons = Vec::with_capacity(n);
        let mut methods = Vec::with_capacity(n);
        let mut ips = Vec::with_capacity(n);
        let mut countries = Vec::with_capacity(n);
        let mut anomalies = Vec::with_capacity(n);
        for r in records {
            ids.push(no_nul(&r.decision_id));
            times.push(r.time);
            peps.push(no_nul(&r.pep));
            targets.push(no_nul(&r.target));
            users.push(no_nul_opt(&r.user));
            devices.push(no_nul_opt(&r.device));
            decisions.push(codec::effect_str(r.decision));
            // serde_json writes NUL as the escape \u0000, which jsonb refuses.
            reasons.push(codec::reasons_json(&r.reasons)?.replace("\\u0000", "\u{FFFD}"));
            methods.push(no_nul_opt(&r.auth_method));
            ips.push(no_nul_opt(&r.source_ip));
            countries.push(no_nul_opt(&r.country));
            anomalies.push(codec::to_json(&r.anomalies)?.replace("\\u0000", "\u{FFFD}"));
        }
        self.write(
            |tx| {
                tx.execute(
                    &format!("INSERT INTO access_log (decision_id, time, pep, target, user_id, device_id,
                                             decision, reasons, auth_method, source_ip, country,
                                             anomalies)
                     SELECT d, t, p, g, u, v, c, r::jsonb, m, s, k, a::jsonb
                     FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[],
                                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                 $10::text[], $11::text[], $12::text[])
                          WITH ORDINALITY AS x(d, t, p, g, u, v, c, r, m, s, k, a, o)
                     ORDER BY o {on_conflict}"),
                    &[
                        &ids, &times, &peps, &targets, &users, &devices, &decisions, &reasons,
                        &methods, &ips, &countries, &anomalies,
                    ],
                )
                .map_err(|e| match e.as_db_error() {
                    // Name the duplicate: "Key (decision_id)=(...) already exists."
                    Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
                        WriteError::Store(StoreError::Conflict(format!(
                            "access record: {}",
                            db.detail().unwrap_or("duplicate decision_id")
                        )))
                    }
                    _ => WriteError::Sql(e),
                })
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            },
            "access record",
        )
    }

    fn update_user(
        &self,
        id: &str,
        sql: &str,
        value: &(dyn ToSql + Sync),
    ) -> Result<(), StoreError> {
        let changed = self.with(|c| c.execute(sql, &[&id, value]), &format!("user {id}"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A `postgres::Client` owns a small runtime, which must not be dropped on an
        // async task: close the connections on a helper thread, so the store may be
        // dropped anywhere.
        let clients: Vec<Client> = self
            .slots
            .drain(..)
            .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        if !clients.is_empty() {
            off_runtime(move || drop(clients));
        }
    }
}

/// Runs blocking client work on a helper thread: the synchronous client cannot run
/// on a thread that is driving an async runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A failure inside a write transaction: SQL (maps by SQLSTATE) or already decided.
enum WriteError {
    Sql(::postgres::Error),
    Store(StoreError),
}

impl From<::postgres::Error> for WriteError {
    fn from(e: ::postgres::Error) -> Self {
        WriteError::Sql(e)
    }
}

fn connect(config: &Config) -> Result<Client, StoreError> {
    config
        .connect(NoTls)
        .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {}", describe(&e))))
}

/// The error's message with the server's detail, when there is one.
fn describe(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

fn classify(e: ::postgres::Error, what: &str) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(what.to_string()),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound(what.to_string()),
        _ => StoreError::Backend(describe(&e)),
    }
}

/// A column read with a type check; a mismatch is a `Backend` error, never a panic.
fn col<'a, T: ::postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Backend(format!("corrupt row: {}", describe(&e))))
}

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: col(row, 0)?,
        email: col(row, 1)?,
        display_name: col(row, 2)?,
        password_hash: col(row, 3)?,
        totp_secret: col(row, 4)?,
        disabled: col(row, 5)?,
        created_at: col(row, 6)?,
    })
}

fn device_from_row(row: &Row) -> Result<Device, StoreError> {
    let posture = match col::<Option<&str>>(row, 2)? {
        Some(text) => Some(codec::from_json("devices.posture", text)?),
        None => None,
    };
    Ok(Device {
        id: col(row, 0)?,
        owner: col(row, 1)?,
        posture,
        last_seen: col(row, 3)?,
        registered_at: col(row, 4)?,
    })
}

fn access_from_row(row: &Row) -> Result<AccessRecord, StoreError> {
    Ok(AccessRecord {
        decision_id: col(row, 0)?,
        time: col(row, 1)?,
        pep: col(row, 2)?,
        target: col(row, 3)?,
        user: col(row, 4)?,
        device: col(row, 5)?,
        decision: codec::parse_effect(col(row, 6)?)?,
        reasons: codec::from_json::<StoredReasons>("access_log.reasons", col(row, 7)?)?.0,
        auth_method: col(row, 8)?,
        source_ip: col(row, 9)?,
        country: col(row, 10)?,
        anomalies: codec::from_json("access_log.anomalies", col(row, 11)?)?,
    })
}

/// PostgreSQL text cannot hold NUL; an access record must not fail its whole batch
/// over one, so NUL becomes U+FFFD (the SQLite backend stores it as is).
fn no_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn no_nul_opt(s: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
    s.as_deref().map(no_nul)
}

fn exists(tx: &mut impl GenericClient, sql: &str, key: &str) -> Result<bool, ::postgres::Error> {
    Ok(tx.query_opt(sql, &[&key])?.is_some())
}

/// A device's latest posture report (JSON) and when it was seen.
fn set_posture(
    tx: &mut ::postgres::Transaction<'_>,
    id: &str,
    json: &str,
    at: DateTime<Utc>,
) -> Result<(), WriteError> {
    let at = codec::micros(at);
    let changed = tx.execute(
        "UPDATE devices SET posture = $2::text::jsonb, last_seen = $3 WHERE id = $1",
        &[&id, &json, &at],
    )?;
    if changed == 0 {
        return Err(WriteError::Store(StoreError::NotFound(format!(
            "device {id}"
        ))));
    }
    Ok(())
}

/// `NotFound` unless user `id` exists; FOR KEY SHARE keeps the row from being
/// deleted until the transaction ends.
fn require_user(tx: &mut ::postgres::Transaction<'_>, id: &str) -> Result<(), WriteError> {
    if !exists(tx, "SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE", id)? {
        return Err(WriteError::Store(StoreError::NotFound(format!(
            "user {id}"
        ))));
    }
    Ok(())
}

fn check_group_and_user(
    tx: &mut ::postgres::Transaction<'_>,
    group: &str,
    user: &str,
) -> Result<(), WriteError> {
    // FOR KEY SHARE keeps both rows from being deleted until this transaction ends.
    if !exists(
        tx,
        "SELECT 1 FROM user_groups WHERE name = $1 FOR KEY SHARE",
        group,
    )? {
        return Err(WriteError::Store(StoreError::NotFound(format!(
            "group {group}"
        ))));
    }
    require_user(tx, user)?;
    Ok(())
}

impl Store for PostgresStore {
    fn migrate(&self) -> Result<(), StoreError> {
        self.write(
            |tx| {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                )?;
                let current: Option<i32> = tx
                    .query_one("SELECT max(version) FROM schema_version", &[])?
                    .try_get(0)?;
                let current = i64::from(current.unwrap_or(0));
                let latest = MIGRATIONS.len() as i64;
                debug_assert_eq!(latest, codec::SCHEMA_VERSION);
                if current > latest {
                    return Err(WriteError::Store(StoreError::Backend(format!(
                        "the database has schema version {current}, newer than this build's {latest}"
                    ))));
                }
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                    tx.batch_execute(sql).map_err(|e| {
                        WriteError::Store(StoreError::Backend(format!(
                            "migration {}: {}",
                            i + 1,
                            describe(&e)
                        )))
                    })?;
                }
                if current < latest {
                    let v = latest as i32;
                    tx.execute("DELETE FROM schema_version", &[])?;
                    tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v])?;
                }
                Ok(())
            },
            "schema",
        )
    }

    fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let created = codec::new_user(user);
        self.with(
            |c| {
                c.execute(
                    "INSERT INTO users (id, email, display_name, password_hash, totp_secret, disabled, created_at)
                     VALUES ($1, $2, $3, $4, NULL, FALSE, $5)",
                    &[
                        &created.id,
                        &created.email,
                        &created.display_name,
                        &created.password_hash,
                        &created.created_at,
                    ],
                )
            },
            &format!("user {}", user.id),
        )?;
        Ok(created)
    }

    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(self.read(&sql, &[&id], user_from_row)?.pop())
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        self.read(&sql, &[], user_from_row)
    }

    fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        self.update_user(
            id,
            "UPDATE users SET disabled = $2 WHERE id = $1",
            &disabled,
        )
    }

    fn set_user_password(&self, id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.update_user(
            id,
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &password_hash,
        )
    }

    fn set_user_totp(&self, id: &str, secret: Option<&str>) -> Result<(), StoreError> {
        self.update_user(
            id,
            "UPDATE users SET totp_secret = $2 WHERE id = $1",
            &secret,
        )
    }

    fn create_group(&self, name: &str) -> Result<(), StoreError> {
        self.with(
            |c| c.execute("INSERT INTO user_groups (name) VALUES ($1)", &[&name]),
            &format!("group {name}"),
        )?;
        Ok(())
    }

    fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        // One REPEATABLE READ transaction, so groups and members are one snapshot.
        let (groups, members) = self.with(
            |c| {
                let mut tx = c
                    .build_transaction()
                    .isolation_level(::postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?;
                let groups = tx.query("SELECT name FROM user_groups ORDER BY name", &[])?;
                let members = tx.query(
                    "SELECT group_name, user_id FROM group_members ORDER BY group_name, user_id",
                    &[],
                )?;
                tx.commit()?;
                Ok((groups, members))
            },
            "groups",
        )?;
        let mut groups = groups
            .iter()
            .map(|r| {
                Ok(Group {
                    name: col(r, 0)?,
                    members: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let members = members
            .iter()
            .map(|r| Ok((col::<String>(r, 0)?, col::<String>(r, 1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        codec::attach_members(&mut groups, members);
        Ok(groups)
    }

    fn add_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        self.write(
            |tx| {
                check_group_and_user(tx, group, user)?;
                tx.execute(
                    "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&group, &user],
                )?;
                Ok(())
            },
            &format!("group {group} or user {user}"),
        )
    }

    fn remove_member(&self, group: &str, user: &str) -> Result<(), StoreError> {
        self.write(
            |tx| {
                check_group_and_user(tx, group, user)?;
                tx.execute(
                    "DELETE FROM group_members WHERE group_name = $1 AND user_id = $2",
                    &[&group, &user],
                )?;
                Ok(())
            },
            &format!("group {group} or user {user}"),
        )
    }

    fn groups_of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        self.read(
            "SELECT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name",
            &[&user],
            |r| col(r, 0),
        )
    }

    fn register_device(&self, id: &str, owner: &str) -> Result<Device, StoreError> {
        let device = codec::new_device(id, owner, codec::now());
        self.write(
            |tx| {
                require_user(tx, owner)?;
                tx.execute(
                    "INSERT INTO devices (id, owner, posture, last_seen, registered_at)
                     VALUES ($1, $2, NULL, NULL, $3)",
                    &[&id, &owner, &device.registered_at],
                )?;
                Ok(())
            },
            &format!("device {id}"),
        )?;
        Ok(device)
    }

    fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        Ok(self.read(&sql, &[&id], device_from_row)?.pop())
    }

    fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id");
        self.read(&sql, &[], device_from_row)
    }

    fn devices_of(&self, owner: &str) -> Result<Vec<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE owner = $1 ORDER BY id");
        self.read(&sql, &[&owner], device_from_row)
    }

    fn record_posture(
        &self,
        id: &str,
        posture: &policy_core::context::Device,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let json = codec::to_json(posture)?;
        self.write(|tx| set_posture(tx, id, &json, at), &format!("device {id}"))
    }

    fn delete_device(&self, id: &str) -> Result<(), StoreError> {
        let changed = self.with(
            |c| c.execute("DELETE FROM devices WHERE id = $1", &[&id]),
            &format!("device {id}"),
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn append_access(&self, records: &[AccessRecord]) -> Result<(), StoreError> {
        self.insert_access(records, false).map(|_| ())
    }

    fn query_access(&self, query: &LogQuery) -> Result<Vec<AccessRecord>, StoreError> {
        let (sql, args) = codec::access_query(ACCESS_COLUMNS, query, |n| format!("${n}"));
        let args: Vec<Box<dyn ToSql + Sync>> = args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync> {
                match a {
                    codec::LogArg::Text(t) => Box::new(t),
                    codec::LogArg::Time(t) => Box::new(t),
                    codec::LogArg::Int(i) => Box::new(i),
                }
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        self.read(&sql, &params, access_from_row)
    }

    fn recent_access(&self, user: &str, n: usize) -> Result<Vec<AccessRecord>, StoreError> {
        let sql = format!(
            "SELECT {ACCESS_COLUMNS} FROM access_log WHERE user_id = $1
             ORDER BY time DESC, seq DESC LIMIT $2"
        );
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.read(&sql, &[&user, &n], access_from_row)
    }

    fn set_proxy_credential(
        &self,
        user: &str,
        token_sha256: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = codec::now();
        self.write(
            |tx| {
                require_user(tx, user)?;
                match token_sha256 {
                    Some(h) => tx.execute(
                        "INSERT INTO proxy_credentials (user_id, token_sha256, created_at)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (user_id) DO UPDATE
                         SET token_sha256 = excluded.token_sha256, created_at = excluded.created_at",
                        &[&user, &h, &now],
                    )?,
                    None => tx.execute(
                        "DELETE FROM proxy_credentials WHERE user_id = $1",
                        &[&user],
                    )?,
                };
                Ok(())
            },
            &format!("proxy credential of {user}"),
        )
    }

    fn proxy_credential(&self, user: &str) -> Result<Option<String>, StoreError> {
        let rows = self.read(
            "SELECT token_sha256 FROM proxy_credentials WHERE user_id = $1",
            &[&user],
            |row| col::<String>(row, 0),
        )?;
        Ok(rows.into_iter().next())
    }

    fn ingest_access(&self, records: &[AccessRecord]) -> Result<usize, StoreError> {
        self.insert_access(records, true)
    }

    // --- device agent -------------------------------------------------------

    fn create_enrollment(&self, code: &NewEnrollment) -> Result<(), StoreError> {
        self.write(
            |tx| {
                require_user(tx, &code.owner)?;
                tx.execute(
                    "INSERT INTO enrollment_codes (code_sha256, owner, device_id, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &code.code_sha256,
                        &code.owner,
                        &code.device_id,
                        &codec::micros(code.created_at),
                        &codec::micros(code.expires_at),
                    ],
                )?;
                Ok(())
            },
            "enrolment code",
        )
    }

    fn enroll_device(
        &self,
        code_sha256: &str,
        public_key: &str,
        new_id: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollOutcome, StoreError> {
        let now = codec::micros(now);
        self.write(
            |tx| {
                // FOR UPDATE: a concurrent enrolment with the same code waits, then
                // sees it used.
                let Some(row) = tx.query_opt(
                    "SELECT owner, device_id, expires_at, used_at FROM enrollment_codes
                     WHERE code_sha256 = $1 FOR UPDATE",
                    &[&code_sha256],
                )?
                else {
                    return Ok(EnrollOutcome::Unknown);
                };
                let owner: String = col(&row, 0).map_err(WriteError::Store)?;
                let named: Option<String> = col(&row, 1).map_err(WriteError::Store)?;
                let expires_at: DateTime<Utc> = col(&row, 2).map_err(WriteError::Store)?;
                let used_at: Option<DateTime<Utc>> = col(&row, 3).map_err(WriteError::Store)?;
                if let Some(refused) = codec::code_state(used_at.is_some(), expires_at, now) {
                    return Ok(refused);
                }
                let id = named.unwrap_or_else(|| new_id.to_string());
                let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1 FOR UPDATE");
                let device = match tx.query_opt(&sql, &[&id])? {
                    Some(row) => {
                        let d = device_from_row(&row).map_err(WriteError::Store)?;
                        if d.owner != owner {
                            return Err(WriteError::Store(StoreError::Conflict(format!(
                                "device {id} belongs to another user"
                            ))));
                        }
                        d
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO devices (id, owner, posture, last_seen, registered_at)
                             VALUES ($1, $2, NULL, NULL, $3)",
                            &[&id, &owner, &now],
                        )?;
                        codec::new_device(&id, &owner, now)
                    }
                };
                tx.execute(
                    "INSERT INTO device_keys (device_id, public_key, last_seq, enrolled_at)
                     VALUES ($1, $2, 0, $3)
                     ON CONFLICT (device_id) DO UPDATE
                     SET public_key = excluded.public_key, last_seq = 0,
                         enrolled_at = excluded.enrolled_at",
                    &[&id, &public_key, &now],
                )?;
                tx.execute(
                    "UPDATE enrollment_codes SET used_at = $2, used_by = $3 WHERE code_sha256 = $1",
                    &[&code_sha256, &now, &id],
                )?;
                Ok(EnrollOutcome::Enrolled(Box::new(device)))
            },
            "device enrolment",
        )
    }

    fn device_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read(
                "SELECT public_key FROM device_keys WHERE device_id = $1",
                &[&id],
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
        self.write(
            |tx| {
                let advanced = tx.execute(
                    "UPDATE device_keys SET last_seq = $2 WHERE device_id = $1 AND last_seq < $2",
                    &[&id, &seq],
                )?;
                if advanced == 0 {
                    return Ok(false);
                }
                set_posture(tx, id, &json, at)?;
                Ok(true)
            },
            &format!("device {id}"),
        )
    }

    fn create_challenge(
        &self,
        challenge: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = codec::now();
        let expires_at = codec::micros(expires_at);
        self.write(
            |tx| {
                tx.execute(
                    "DELETE FROM attest_challenges WHERE expires_at <= $1",
                    &[&now],
                )?;
                tx.execute(
                    "INSERT INTO attest_challenges (challenge, expires_at) VALUES ($1, $2)",
                    &[&challenge, &expires_at],
                )?;
                Ok(())
            },
            "attestation challenge",
        )
    }

    fn consume_challenge(&self, challenge: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = codec::micros(now);
        let changed = self.with(
            |c| {
                c.execute(
                    "DELETE FROM attest_challenges WHERE challenge = $1 AND expires_at > $2",
                    &[&challenge, &now],
                )
            },
            "attestation challenge",
        )?;
        Ok(changed == 1)
    }
}
