//! Storage: one trait, two backends. Embedded SQLite (WAL) by default, PostgreSQL
//! when the configured URL says so (`postgres://...`). The same test suite runs
//! against both.
//!
//! The trait is synchronous on purpose: SQLite is, and the server calls the store
//! from `tokio::task::spawn_blocking`, so one shape serves both backends.

use crate::model::{
    AccessRecord, Device, EnrollOutcome, Group, LogQuery, NewEnrollment, NewUser, User,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// It exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
}

/// Everything the server persists.
pub trait Store: Send + Sync + 'static {
    /// Creates or upgrades the schema.
    fn migrate(&self) -> Result<(), StoreError>;

    /// Adds a user; `Conflict` when the id exists.
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    /// A user by id.
    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// All users, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Enables or disables a user; `NotFound` for an unknown id.
    fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError>;
    /// Replaces the password hash.
    fn set_user_password(&self, id: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Sets or clears the TOTP secret.
    fn set_user_totp(&self, id: &str, secret: Option<&str>) -> Result<(), StoreError>;

    /// Adds a group; `Conflict` when it exists.
    fn create_group(&self, name: &str) -> Result<(), StoreError>;
    /// All groups with their members, by name.
    fn list_groups(&self) -> Result<Vec<Group>, StoreError>;
    /// Adds a user to a group (idempotent); `NotFound` for an unknown user or group.
    fn add_member(&self, group: &str, user: &str) -> Result<(), StoreError>;
    /// Removes a user from a group (idempotent).
    fn remove_member(&self, group: &str, user: &str) -> Result<(), StoreError>;
    /// The names of the groups a user belongs to, sorted.
    fn groups_of(&self, user: &str) -> Result<Vec<String>, StoreError>;

    /// Registers a device for an owner; `Conflict` when the id exists, `NotFound`
    /// for an unknown owner.
    fn register_device(&self, id: &str, owner: &str) -> Result<Device, StoreError>;
    /// A device by id.
    fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    /// All devices, by id.
    fn list_devices(&self) -> Result<Vec<Device>, StoreError>;
    /// One user's devices, by id (the `devices(owner)` index).
    fn devices_of(&self, owner: &str) -> Result<Vec<Device>, StoreError>;
    /// Stores a posture report as the device's latest and updates `last_seen`.
    fn record_posture(
        &self,
        id: &str,
        posture: &policy_core::context::Device,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Removes a device.
    fn delete_device(&self, id: &str) -> Result<(), StoreError>;

    /// Appends access records in one transaction, durably; a `decision_id` that
    /// is stored already is a `Conflict` and nothing of the batch is stored. (The
    /// server itself stores through [`Store::ingest_access`]: decisions are
    /// acknowledged once they are in the access journal.)
    fn append_access(&self, records: &[AccessRecord]) -> Result<(), StoreError>;
    /// Reads the access log, newest first.
    fn query_access(&self, query: &LogQuery) -> Result<Vec<AccessRecord>, StoreError>;
    /// A user's latest `n` accesses, newest first (for the anomaly detector).
    fn recent_access(&self, user: &str, n: usize) -> Result<Vec<AccessRecord>, StoreError>;

    // --- Enforcement points: proxy credentials and their access records ---

    /// Sets (`Some`: the SHA-256 of the token, hex) or removes (`None`) the user's
    /// proxy credential, the secret the SOCKS gateway checks. `NotFound` when the
    /// user does not exist.
    fn set_proxy_credential(
        &self,
        user: &str,
        token_sha256: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The SHA-256 (hex) of the user's proxy token, if one is set.
    fn proxy_credential(&self, user: &str) -> Result<Option<String>, StoreError>;
    /// Appends access records durably, skipping any whose `decision_id` is stored
    /// already (records read back from the access journal after a crash, a PEP's
    /// batch sent again after a lost acknowledgement). Returns how many were new.
    /// The access-log indexer stores every record through this.
    fn ingest_access(&self, records: &[AccessRecord]) -> Result<usize, StoreError>;

    // -----------------------------------------------------------------------
    // Device agent: enrolment codes, device keys, report sequence numbers and
    // attestation challenges (see `crate::devices`).

    /// Stores a one-time enrolment code (only its SHA-256) for `owner`, optionally
    /// naming the device id to register; `NotFound` for an unknown owner.
    fn create_enrollment(&self, code: &NewEnrollment) -> Result<(), StoreError>;
    /// Consumes the code with this SHA-256 atomically and registers the device with
    /// its public key: the code's device id, else `new_id`. An existing device of the
    /// same owner is re-keyed (its sequence number restarts); one of another owner is
    /// a `Conflict`. Unknown, used and expired codes change nothing.
    fn enroll_device(
        &self,
        code_sha256: &str,
        public_key: &str,
        new_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<EnrollOutcome, StoreError>;
    /// The device's enrolled public key (standard base64), `None` when it has none.
    fn device_key(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Accepts a signed posture report in one transaction: records `seq` as the
    /// device's last accepted report sequence number if it is greater than the one
    /// on record, and stores `posture` as its latest report at `at`. False (nothing
    /// changed) for a replay or a device without a key.
    fn accept_report(
        &self,
        id: &str,
        seq: u64,
        posture: &policy_core::context::Device,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
    /// Stores an attestation challenge valid until `expires_at`; `Conflict` if it
    /// exists. Expired challenges are purged on the way.
    fn create_challenge(
        &self,
        challenge: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Consumes a challenge: true exactly once for a stored, unexpired challenge.
    fn consume_challenge(
        &self,
        challenge: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
}

pub mod postgres;
pub mod sqlite;

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

/// Opens the store a URL names and brings its schema up to date (`migrate`).
///
/// - `sqlite::memory:`: a private in-memory SQLite database (tests, demos);
/// - `sqlite:PATH`, `sqlite://PATH` or a plain `PATH`: an SQLite file, created when
///   missing (its directory must exist);
/// - `postgres://...` or `postgresql://...`: a PostgreSQL database (libpq URL syntax,
///   no TLS).
///
/// Any other `scheme://` is refused.
///
/// `open` itself may be called on an async task, and the store may be dropped
/// anywhere; but the `Store` methods block (and the PostgreSQL backend's synchronous
/// client cannot run on a thread that drives an async runtime), so call them from
/// plain threads or `tokio::task::spawn_blocking`.
pub fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match Location::parse(url)? {
        Location::SqliteMemory => {
            let store = SqliteStore::open_in_memory()?;
            store.migrate()?;
            std::sync::Arc::new(store)
        }
        Location::SqliteFile(path) => {
            let store = SqliteStore::open(path)?;
            store.migrate()?;
            std::sync::Arc::new(store)
        }
        Location::Postgres(url) => std::sync::Arc::new(PostgresStore::open(url)?),
    })
}

/// Where a store URL points.
#[derive(Debug, PartialEq, Eq)]
enum Location<'a> {
    SqliteMemory,
    SqliteFile(&'a str),
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    fn parse(url: &'a str) -> Result<Location<'a>, StoreError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StoreError::Backend("empty store URL".into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            return match path {
                ":memory:" => Ok(Location::SqliteMemory),
                "" => Err(StoreError::Backend(format!(
                    "no file path in store URL {url:?}"
                ))),
                path => Ok(Location::SqliteFile(path)),
            };
        }
        if let Some((scheme, _)) = url.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return Err(StoreError::Backend(format!(
                    "unsupported store URL scheme {scheme:?} (use sqlite:PATH, sqlite::memory: or postgres://...)"
                )));
            }
        }
        Ok(Location::SqliteFile(url))
    }
}

/// Encodings shared by both backends, so that they store the same things the same way.
mod codec {
    use super::StoreError;
    use chrono::{DateTime, SubsecRound, Utc};
    use policy_core::decision::Effect;

    /// The newest schema version this build knows.
    pub(super) const SCHEMA_VERSION: i64 = 3;

    /// Default and maximum number of rows one access-log query returns.
    pub(super) const DEFAULT_LIMIT: usize = 100;
    pub(super) const MAX_LIMIT: usize = 10_000;

    /// Both backends keep microseconds (PostgreSQL's `timestamptz` precision).
    pub(super) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
        t.trunc_subsecs(6)
    }

    /// The smallest storable time at or after `t` (for `since >= t` filters).
    pub(super) fn ceil_micros(t: DateTime<Utc>) -> DateTime<Utc> {
        let down = micros(t);
        if down < t {
            down + chrono::TimeDelta::microseconds(1)
        } else {
            down
        }
    }

    /// The current time, at storage precision.
    pub(super) fn now() -> DateTime<Utc> {
        micros(Utc::now())
    }

    pub(super) fn effect_str(e: Effect) -> &'static str {
        match e {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }

    pub(super) fn parse_effect(s: &str) -> Result<Effect, StoreError> {
        match s {
            "allow" => Ok(Effect::Allow),
            "deny" => Ok(Effect::Deny),
            other => Err(StoreError::Backend(format!(
                "corrupt access record: decision {other:?}"
            ))),
        }
    }

    pub(super) fn limit(query: Option<usize>) -> usize {
        query.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT)
    }

    /// One parameter of an access-log query, in backend-neutral form.
    pub(super) enum LogArg {
        Text(String),
        Time(DateTime<Utc>),
        Int(i64),
    }

    /// The access-log query for `q` (newest first), written once for both backends:
    /// `placeholder(n)` spells the n-th (1-based) parameter (`?1` or `$1`).
    pub(super) fn access_query(
        columns: &str,
        q: &crate::model::LogQuery,
        placeholder: fn(usize) -> String,
    ) -> (String, Vec<LogArg>) {
        let mut sql = format!("SELECT {columns} FROM access_log");
        let mut args = Vec::new();
        let mut filters: Vec<(&str, LogArg)> = Vec::new();
        if let Some(user) = &q.user {
            filters.push(("user_id = ", LogArg::Text(user.clone())));
        }
        if let Some(target) = &q.target {
            filters.push(("target = ", LogArg::Text(target.clone())));
        }
        if let Some(decision) = q.decision {
            filters.push(("decision = ", LogArg::Text(effect_str(decision).into())));
        }
        if let Some(since) = q.since {
            // Stored times are whole microseconds: round `since` up to keep `>=`.
            filters.push(("time >= ", LogArg::Time(ceil_micros(since))));
        }
        for (i, (cond, arg)) in filters.into_iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            sql.push_str(cond);
            args.push(arg);
            sql.push_str(&placeholder(args.len()));
        }
        args.push(LogArg::Int(limit(q.limit) as i64));
        sql.push_str(" ORDER BY time DESC, seq DESC LIMIT ");
        sql.push_str(&placeholder(args.len()));
        (sql, args)
    }

    /// Reasons in their stored form ([`pep_client::record::StoredReasons`]).
    pub(super) fn reasons_json(
        reasons: &[policy_core::decision::Reason],
    ) -> Result<String, StoreError> {
        pep_client::record::StoredReasons::to_json(reasons)
            .map_err(|e| StoreError::Backend(format!("encoding reasons: {e}")))
    }

    pub(super) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
        serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
    }

    pub(super) fn from_json<T: serde::de::DeserializeOwned>(
        what: &str,
        text: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Backend(format!("corrupt {what} in the database: {e}")))
    }

    /// A user as [`super::Store::create_user`] stores it: enabled, no TOTP, created now.
    pub(super) fn new_user(user: &crate::model::NewUser) -> crate::model::User {
        crate::model::User {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            password_hash: user.password_hash.clone(),
            totp_secret: None,
            disabled: false,
            created_at: now(),
        }
    }

    /// A device as it is first registered: no posture report yet.
    pub(super) fn new_device(id: &str, owner: &str, at: DateTime<Utc>) -> crate::model::Device {
        crate::model::Device {
            id: id.to_string(),
            owner: owner.to_string(),
            posture: None,
            last_seen: None,
            registered_at: at,
        }
    }

    /// Why an enrolment code cannot be used, `None` when it can: used codes first,
    /// then expired ones (at `expires_at` a code is expired).
    pub(super) fn code_state(
        used: bool,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<crate::model::EnrollOutcome> {
        if used {
            Some(crate::model::EnrollOutcome::Used)
        } else if expires_at <= now {
            Some(crate::model::EnrollOutcome::Expired)
        } else {
            None
        }
    }

    /// Distributes `(group, member)` pairs into `groups`; members end up sorted.
    pub(super) fn attach_members(
        groups: &mut [crate::model::Group],
        members: Vec<(String, String)>,
    ) {
        let index: std::collections::HashMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        for (group, user) in members {
            if let Some(&i) = index.get(&group) {
                groups[i].members.push(user);
            }
        }
        for g in groups {
            g.members.sort_unstable();
        }
    }
}

/// Takes a connection from a small pool: the first free one, starting round-robin at
/// `next`, else waits for the one `next` points at. A poisoned lock is still usable: a
/// panic while it was held can at worst leave a transaction that its guard rolled back.
/// `pool` must not be empty.
pub(crate) fn take_from_pool<'a, T>(
    pool: &'a [std::sync::Mutex<T>],
    next: &std::sync::atomic::AtomicUsize,
) -> std::sync::MutexGuard<'a, T> {
    let start = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for i in 0..pool.len() {
        if let Ok(guard) = pool[(start + i) % pool.len()].try_lock() {
            return guard;
        }
    }
    pool[start % pool.len()]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod location_tests {
    use super::Location;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            Location::parse("sqlite::memory:").unwrap(),
            Location::SqliteMemory
        );
        assert_eq!(
            Location::parse("sqlite:/var/lib/rzts/db.sqlite").unwrap(),
            Location::SqliteFile("/var/lib/rzts/db.sqlite")
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/rzts.db").unwrap(),
            Location::SqliteFile("/var/lib/rzts.db")
        );
        assert_eq!(
            Location::parse("sqlite:rzts.db").unwrap(),
            Location::SqliteFile("rzts.db")
        );
        assert_eq!(
            Location::parse("./data/rzts.db").unwrap(),
            Location::SqliteFile("./data/rzts.db")
        );
        assert_eq!(
            Location::parse("postgres://u@127.0.0.1:5432/db").unwrap(),
            Location::Postgres("postgres://u@127.0.0.1:5432/db")
        );
        assert_eq!(
            Location::parse("postgresql://u@h/db").unwrap(),
            Location::Postgres("postgresql://u@h/db")
        );
        assert!(Location::parse("mysql://u@h/db").is_err());
        assert!(Location::parse("").is_err());
        assert!(Location::parse("sqlite:").is_err());
    }
}
