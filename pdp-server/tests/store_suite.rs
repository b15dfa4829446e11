//! The storage suite: every test is written once over `&dyn Store` and runs against
//! SQLite (a temporary file, always) and PostgreSQL (the database named by
//! `RZTS_TEST_PG_URL`, each test in a fresh schema that is dropped afterwards).
//!
//! ```sh
//! bash scripts/postgres.sh start
//! RZTS_TEST_PG_URL=$(bash scripts/postgres.sh url) cargo test -p pdp-server --test store_suite
//! ```
//!
//! Without `RZTS_TEST_PG_URL` the PostgreSQL half is skipped loudly, or fails when
//! `CI` is set.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use pdp_server::model::{AccessRecord, EnrollOutcome, LogQuery, NewEnrollment, NewUser};
use pdp_server::store::{self, SqliteStore, Store, StoreError};
use policy_core::decision::Effect;

// ---------------------------------------------------------------------------
// Backends under test

/// A database the suite can open several times (a new `Store` instance each time).
trait Backend {
    /// Its name, for messages.
    fn name(&self) -> &'static str;
    /// A new, migrated `Store` on this database.
    fn open(&self) -> Arc<dyn Store>;
    /// Runs raw SQL on the database (to plant corrupt rows).
    fn raw(&self, sql: &str);
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database file in a fresh temporary directory, removed afterwards.
struct SqliteFile {
    dir: PathBuf,
    path: PathBuf,
}

impl SqliteFile {
    fn new() -> SqliteFile {
        let dir = std::env::temp_dir().join(unique("rzts-store-suite"));
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        let path = dir.join("rzts.db");
        SqliteFile { dir, path }
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Backend for SqliteFile {
    fn name(&self) -> &'static str {
        "SQLite"
    }
    fn open(&self) -> Arc<dyn Store> {
        store::open(&format!("sqlite:{}", self.path.display())).expect("open SQLite store")
    }
    fn raw(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.path).expect("open raw SQLite connection");
        conn.execute_batch(sql).expect("raw SQL");
    }
}

/// A fresh schema in the PostgreSQL database of `RZTS_TEST_PG_URL`, dropped afterwards.
struct PgSchema {
    admin: Mutex<::postgres::Client>,
    schema: String,
    url: String,
}

impl PgSchema {
    /// `None` (after a loud notice) when PostgreSQL is not configured outside CI.
    fn new() -> Option<PgSchema> {
        let base = match std::env::var("RZTS_TEST_PG_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => {
                let ci = std::env::var("CI")
                    .map(|v| !v.is_empty() && v != "false" && v != "0")
                    .unwrap_or(false);
                if ci {
                    panic!(
                        "RZTS_TEST_PG_URL is not set, so the PostgreSQL storage tests cannot run in CI: \
                         run `bash scripts/postgres.sh start` and set \
                         RZTS_TEST_PG_URL=$(bash scripts/postgres.sh url)"
                    );
                }
                eprintln!(
                    "SKIPPED: PostgreSQL tests (set RZTS_TEST_PG_URL, see scripts/postgres.sh)"
                );
                return None;
            }
        };
        let mut admin = ::postgres::Client::connect(&base, ::postgres::NoTls).unwrap_or_else(|e| {
            panic!("cannot connect to RZTS_TEST_PG_URL={base}: {e} (is scripts/postgres.sh start running?)")
        });
        let schema = unique("rzts_t");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(PgSchema {
            admin: Mutex::new(admin),
            schema,
            url,
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = self.admin.lock() {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

impl Backend for PgSchema {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }
    fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url).expect("open PostgreSQL store")
    }
    fn raw(&self, sql: &str) {
        let mut admin = self.admin.lock().unwrap();
        admin
            .batch_execute(&format!("SET search_path TO {}; {sql}", self.schema))
            .expect("raw SQL");
    }
}

/// Instantiates every suite function for both backends.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let backend = super::SqliteFile::new();
                    super::$name(&backend);
                }
            )*
        }
        mod postgresql {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = super::PgSchema::new() {
                        super::$name(&backend);
                    }
                }
            )*
        }
    };
}

suite!(
    users_crud,
    user_conflicts,
    user_disable_password_totp,
    groups_and_membership,
    devices_and_posture,
    access_log_round_trip,
    access_log_filters,
    recent_access_latest_n,
    append_is_atomic,
    durable_across_reopen,
    append_10000_in_one_call,
    concurrent_writers_and_readers,
    corrupt_rows_are_errors,
    migrate_is_idempotent,
    usable_from_async_server,
    proxy_credentials,
    ingest_skips_stored_records,
    ingest_large_batches_keep_every_field,
    // device agent
    enrollment_codes,
    enrollment_is_single_use_under_concurrency,
    device_keys_and_report_sequence,
    attestation_challenges,
);

fn proxy_credentials(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    assert_eq!(s.proxy_credential("tanaka").unwrap(), None);
    s.set_proxy_credential("tanaka", Some("aa11")).unwrap();
    assert_eq!(
        s.proxy_credential("tanaka").unwrap().as_deref(),
        Some("aa11")
    );
    // Issuing again replaces the old one.
    s.set_proxy_credential("tanaka", Some("bb22")).unwrap();
    assert_eq!(
        s.proxy_credential("tanaka").unwrap().as_deref(),
        Some("bb22")
    );
    s.set_proxy_credential("tanaka", None).unwrap();
    assert_eq!(s.proxy_credential("tanaka").unwrap(), None);
    match s.set_proxy_credential("nobody", Some("cc33")) {
        Err(StoreError::NotFound(m)) => assert!(m.contains("nobody"), "{m}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(s.proxy_credential("nobody").unwrap(), None);
}

fn ingest_skips_stored_records(b: &dyn Backend) {
    let s = b.open();
    let mut first = record(1, Some("tanaka"), "deepseek.com:443", Effect::Deny);
    first.pep = "socks".into();
    first.reasons = vec![policy_core::decision::Reason::new(
        "deny.matched",
        "アクセス先のドメイン名が deepseek.com であるため拒否",
    )];
    let second = record(2, Some("tanaka"), "example.com:443", Effect::Allow);
    assert_eq!(
        s.ingest_access(&[first.clone(), second.clone()]).unwrap(),
        2
    );
    // The same batch again (a lost acknowledgement) stores nothing twice, and a
    // duplicate inside one batch is one record.
    let third = record(3, None, "(login)", Effect::Deny);
    assert_eq!(
        s.ingest_access(&[first.clone(), second.clone(), third.clone(), third.clone()])
            .unwrap(),
        1
    );
    assert_eq!(all(&*s), [third, second, first], "newest first");
}

fn ingest_large_batches_keep_every_field(b: &dyn Backend) {
    // Batches larger than one INSERT statement's rows, not a multiple of them, with
    // duplicates inside a batch and records stored by an earlier batch: every
    // record is stored once with its own fields.
    let s = b.open();
    let users = [Some("tanaka"), None, Some("suzuki"), Some("佐藤")];
    let rec = |i: usize| {
        let decision = if i % 3 == 0 {
            Effect::Deny
        } else {
            Effect::Allow
        };
        record(i, users[i % 4], &format!("app-{i}"), decision)
    };
    let earlier: Vec<AccessRecord> = (0..40).map(rec).collect();
    assert_eq!(s.ingest_access(&earlier).unwrap(), 40);
    let mut batch: Vec<AccessRecord> = (30..140).map(rec).collect();
    batch.insert(5, rec(100));
    batch.insert(70, rec(31));
    batch.push(rec(139));
    assert_eq!(s.ingest_access(&batch).unwrap(), 100);
    let mut want: Vec<AccessRecord> = (0..140).map(rec).collect();
    want.reverse();
    assert_eq!(all(&*s), want);
}

// ---------------------------------------------------------------------------
// Helpers

fn new_user(id: &str) -> NewUser {
    NewUser {
        id: id.to_string(),
        email: format!("{}@example.co.jp", id.to_lowercase()),
        display_name: format!("{id} さん"),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1${id}")),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 1, 15, 0).unwrap() + TimeDelta::microseconds(123_456)
}

fn record(i: usize, user: Option<&str>, target: &str, decision: Effect) -> AccessRecord {
    AccessRecord {
        decision_id: format!("01JDEC{i:010}"),
        time: t0() + TimeDelta::seconds(i as i64),
        pep: ["api", "saml", "tunnel", "socks"][i % 4].to_string(),
        target: target.to_string(),
        user: user.map(str::to_string),
        device: (i % 3 != 0).then(|| format!("PC-{:04}", i % 7)),
        decision,
        reasons: match decision {
            Effect::Allow => vec![],
            Effect::Deny => vec![
                policy_core::decision::Reason::new("require.not_met", "必須条件を満たさない"),
                policy_core::decision::Reason::new(
                    "deny.matched",
                    "不審なアクセスと判定されたため拒否",
                ),
            ],
        },
        auth_method: (i % 2 == 0).then(|| "password".to_string()),
        source_ip: Some(format!("203.0.113.{}", i % 250)),
        country: (i % 5 != 0).then(|| if i % 2 == 0 { "JP" } else { "US" }.to_string()),
        anomalies: if i % 11 == 0 {
            vec!["new_country".into(), "impossible_travel".into()]
        } else {
            vec![]
        },
    }
}

fn all(store: &dyn Store) -> Vec<AccessRecord> {
    store
        .query_access(&LogQuery {
            limit: Some(10_000),
            ..LogQuery::default()
        })
        .expect("query all")
}

fn ids(records: &[AccessRecord]) -> Vec<&str> {
    records.iter().map(|r| r.decision_id.as_str()).collect()
}

fn posture() -> policy_core::context::Device {
    serde_json::from_str(
        r#"{
            "id": "PC-0042", "registered": true,
            "os": { "family": "windows", "name": "Windows 11 Pro", "version": "10.0.22631" },
            "tpm": { "present": true, "enabled": true, "version": "2.0" },
            "disk": { "encrypted": true, "method": "bitlocker" },
            "windows_hello": true, "firewall": true, "antivirus": false, "screen_lock": true,
            "apps": ["Microsoft Teams", "Google Chrome", "秀丸エディタ"],
            "location": { "lat": 35.681236, "lon": 139.767125 },
            "network": { "ssid": "corp-wifi", "ip": "2001:db8::23" }
        }"#,
    )
    .expect("posture fixture")
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_backend<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Backend(_)) => {}
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The suite

fn users_crud(b: &dyn Backend) {
    let s = b.open();
    let before = Utc::now() - TimeDelta::seconds(1);
    let tanaka = s.create_user(&new_user("tanaka")).unwrap();
    assert_eq!(tanaka.id, "tanaka");
    assert_eq!(tanaka.email, "tanaka@example.co.jp");
    assert_eq!(tanaka.display_name, "tanaka さん");
    assert!(tanaka.password_hash.is_some());
    assert_eq!(tanaka.totp_secret, None);
    assert!(!tanaka.disabled);
    assert!(tanaka.created_at >= before && tanaka.created_at <= Utc::now());
    assert_eq!(s.get_user("tanaka").unwrap(), Some(tanaka.clone()));

    let mut no_password = new_user("suzuki");
    no_password.password_hash = None;
    let suzuki = s.create_user(&no_password).unwrap();
    assert_eq!(s.get_user("suzuki").unwrap(), Some(suzuki));
    s.create_user(&new_user("山田")).unwrap();
    s.create_user(&new_user("Zed")).unwrap();

    assert_eq!(s.get_user("nobody").unwrap(), None);
    assert_eq!(
        s.get_user("TANAKA").unwrap(),
        None,
        "ids are case-sensitive"
    );
    let listed: Vec<String> = s.list_users().unwrap().into_iter().map(|u| u.id).collect();
    // Byte order, the same on both backends.
    assert_eq!(listed, ["Zed", "suzuki", "tanaka", "山田"]);
}

fn user_conflicts(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    let mut again = new_user("tanaka");
    again.email = "other@example.com".into();
    assert_conflict(s.create_user(&again));
    assert_eq!(
        s.get_user("tanaka").unwrap().unwrap().email,
        "tanaka@example.co.jp"
    );
    assert_eq!(s.list_users().unwrap().len(), 1);
}

fn user_disable_password_totp(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();

    s.set_user_disabled("tanaka", true).unwrap();
    assert!(s.get_user("tanaka").unwrap().unwrap().disabled);
    s.set_user_disabled("tanaka", true).unwrap();
    s.set_user_disabled("tanaka", false).unwrap();
    assert!(!s.get_user("tanaka").unwrap().unwrap().disabled);

    s.set_user_password("tanaka", "$argon2id$new").unwrap();
    assert_eq!(
        s.get_user("tanaka")
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$new")
    );

    s.set_user_totp("tanaka", Some("JBSWY3DPEHPK3PXP")).unwrap();
    assert_eq!(
        s.get_user("tanaka")
            .unwrap()
            .unwrap()
            .totp_secret
            .as_deref(),
        Some("JBSWY3DPEHPK3PXP")
    );
    s.set_user_totp("tanaka", None).unwrap();
    assert_eq!(s.get_user("tanaka").unwrap().unwrap().totp_secret, None);

    assert_not_found(s.set_user_disabled("nobody", true));
    assert_not_found(s.set_user_password("nobody", "x"));
    assert_not_found(s.set_user_totp("nobody", Some("x")));
    assert_eq!(s.get_user("nobody").unwrap(), None);
}

fn groups_and_membership(b: &dyn Backend) {
    let s = b.open();
    for u in ["tanaka", "suzuki", "sato"] {
        s.create_user(&new_user(u)).unwrap();
    }
    s.create_group("経理部").unwrap();
    s.create_group("all").unwrap();
    s.create_group("Admins").unwrap();
    assert_conflict(s.create_group("経理部"));

    s.add_member("経理部", "tanaka").unwrap();
    s.add_member("経理部", "tanaka").unwrap(); // idempotent
    s.add_member("経理部", "suzuki").unwrap();
    s.add_member("all", "tanaka").unwrap();
    s.add_member("all", "sato").unwrap();
    s.add_member("all", "suzuki").unwrap();
    s.add_member("Admins", "tanaka").unwrap();
    assert_not_found(s.add_member("経理部", "nobody"));
    assert_not_found(s.add_member("営業部", "tanaka"));

    assert_eq!(s.groups_of("tanaka").unwrap(), ["Admins", "all", "経理部"]);
    assert_eq!(s.groups_of("sato").unwrap(), ["all"]);
    assert_eq!(s.groups_of("nobody").unwrap(), Vec::<String>::new());

    let groups = s.list_groups().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["Admins", "all", "経理部"]);
    assert_eq!(groups[0].members, ["tanaka"]);
    assert_eq!(groups[1].members, ["sato", "suzuki", "tanaka"]);
    assert_eq!(groups[2].members, ["suzuki", "tanaka"]);

    s.remove_member("経理部", "tanaka").unwrap();
    s.remove_member("経理部", "tanaka").unwrap(); // idempotent
    assert_eq!(s.groups_of("tanaka").unwrap(), ["Admins", "all"]);
    assert_not_found(s.remove_member("営業部", "tanaka"));
    assert_not_found(s.remove_member("経理部", "nobody"));

    s.create_group("empty").unwrap();
    let empty = s
        .list_groups()
        .unwrap()
        .into_iter()
        .find(|g| g.name == "empty");
    assert_eq!(empty.map(|g| g.members), Some(vec![]));
}

fn devices_and_posture(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    let before = Utc::now() - TimeDelta::seconds(1);
    let dev = s.register_device("PC-0042", "tanaka").unwrap();
    assert_eq!(dev.id, "PC-0042");
    assert_eq!(dev.owner, "tanaka");
    assert_eq!(dev.posture, None);
    assert_eq!(dev.last_seen, None);
    assert!(dev.registered_at >= before && dev.registered_at <= Utc::now());
    assert_eq!(s.get_device("PC-0042").unwrap(), Some(dev.clone()));

    assert_conflict(s.register_device("PC-0042", "tanaka"));
    assert_not_found(s.register_device("PC-9999", "nobody"));
    assert_eq!(s.get_device("PC-9999").unwrap(), None);
    s.register_device("MAC-0001", "tanaka").unwrap();
    s.create_user(&new_user("suzuki")).unwrap();
    s.register_device("PC-0100", "suzuki").unwrap();
    let ids = |v: Vec<pdp_server::model::Device>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.devices_of("tanaka").unwrap()),
        ["MAC-0001", "PC-0042"]
    );
    assert_eq!(ids(s.devices_of("suzuki").unwrap()), ["PC-0100"]);
    assert!(s.devices_of("nobody").unwrap().is_empty());
    s.delete_device("PC-0100").unwrap();

    let report = posture();
    let at = t0();
    s.record_posture("PC-0042", &report, at).unwrap();
    let got = s.get_device("PC-0042").unwrap().unwrap();
    assert_eq!(got.posture.as_ref(), Some(&report));
    assert_eq!(
        serde_json::to_string(&got.posture).unwrap(),
        serde_json::to_string(&Some(&report)).unwrap(),
        "posture JSON round-trips exactly"
    );
    assert_eq!(got.last_seen, Some(at));
    assert_eq!(got.registered_at, dev.registered_at);

    // A newer report replaces the older one.
    let mut newer = report.clone();
    newer.firewall = Some(false);
    newer.apps = None;
    s.record_posture("PC-0042", &newer, at + TimeDelta::minutes(5))
        .unwrap();
    let got = s.get_device("PC-0042").unwrap().unwrap();
    assert_eq!(got.posture, Some(newer));
    assert_eq!(got.last_seen, Some(at + TimeDelta::minutes(5)));

    // An empty report is a report too.
    let empty = policy_core::context::Device::default();
    s.record_posture("MAC-0001", &empty, at).unwrap();
    assert_eq!(
        s.get_device("MAC-0001").unwrap().unwrap().posture,
        Some(empty)
    );

    assert_not_found(s.record_posture("PC-9999", &report, at));
    let listed: Vec<String> = s
        .list_devices()
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(listed, ["MAC-0001", "PC-0042"]);

    s.delete_device("PC-0042").unwrap();
    assert_eq!(s.get_device("PC-0042").unwrap(), None);
    assert_not_found(s.delete_device("PC-0042"));
    assert_eq!(s.list_devices().unwrap().len(), 1);
}

fn access_log_round_trip(b: &dyn Backend) {
    let s = b.open();
    s.append_access(&[]).unwrap();
    assert!(all(&*s).is_empty());

    let mut rich = record(22, Some("tanaka"), "github", Effect::Deny);
    rich.reasons = vec![
        policy_core::decision::Reason::new(
            "require.not_met",
            "アクセス元の国名が日本ではないため拒否 ✓",
        ),
        policy_core::decision::Reason::new("deny.unknown_attribute", ""),
    ];
    rich.anomalies = vec!["new_country".into()];
    let bare = AccessRecord {
        decision_id: "bare".into(),
        time: t0() - TimeDelta::days(400),
        pep: "socks".into(),
        target: "api.example.com:443".into(),
        user: None,
        device: None,
        decision: Effect::Allow,
        reasons: vec![],
        auth_method: None,
        source_ip: None,
        country: None,
        anomalies: vec![],
    };
    s.append_access(&[rich.clone(), bare.clone()]).unwrap();
    assert_eq!(
        all(&*s),
        [rich, bare],
        "records round-trip field for field, newest first"
    );
}

fn access_log_filters(b: &dyn Backend) {
    let s = b.open();
    // 150 records in three calls: users alternate, targets rotate, every third denied.
    let records: Vec<AccessRecord> = (0..150)
        .map(|i| {
            let user = ["tanaka", "suzuki"][i % 2];
            let target = ["github", "slack", "intranet"][i % 3];
            let decision = if i % 3 == 2 {
                Effect::Deny
            } else {
                Effect::Allow
            };
            record(i, Some(user), target, decision)
        })
        .collect();
    for chunk in records.chunks(60) {
        s.append_access(chunk).unwrap();
    }
    let newest_first = |pred: &dyn Fn(&AccessRecord) -> bool| -> Vec<String> {
        records
            .iter()
            .rev()
            .filter(|r| pred(r))
            .map(|r| r.decision_id.clone())
            .collect()
    };
    let q = |query: LogQuery| -> Vec<String> {
        s.query_access(&query)
            .unwrap()
            .into_iter()
            .map(|r| r.decision_id)
            .collect()
    };

    // No filter: default limit 100, newest first.
    let everything = q(LogQuery::default());
    assert_eq!(everything.len(), 100);
    assert_eq!(everything, newest_first(&|_| true)[..100]);

    let by_user = q(LogQuery {
        user: Some("tanaka".into()),
        limit: Some(1000),
        ..Default::default()
    });
    assert_eq!(
        by_user,
        newest_first(&|r| r.user.as_deref() == Some("tanaka"))
    );
    assert_eq!(by_user.len(), 75);

    let by_target = q(LogQuery {
        target: Some("slack".into()),
        limit: Some(1000),
        ..Default::default()
    });
    assert_eq!(by_target, newest_first(&|r| r.target == "slack"));

    let denied = q(LogQuery {
        decision: Some(Effect::Deny),
        limit: Some(1000),
        ..Default::default()
    });
    assert_eq!(denied, newest_first(&|r| r.decision == Effect::Deny));
    assert_eq!(denied.len(), 50);

    // `since` is inclusive, at microsecond precision.
    let cut = records[120].time;
    let since = q(LogQuery {
        since: Some(cut),
        limit: Some(1000),
        ..Default::default()
    });
    assert_eq!(since, newest_first(&|r| r.time >= cut));
    assert_eq!(since.len(), 30);
    let just_after = q(LogQuery {
        since: Some(cut + TimeDelta::nanoseconds(500)),
        limit: Some(1000),
        ..Default::default()
    });
    assert_eq!(just_after.len(), 29);

    let combined = q(LogQuery {
        user: Some("suzuki".into()),
        target: Some("github".into()),
        decision: Some(Effect::Allow),
        since: Some(records[30].time),
        limit: Some(5),
    });
    assert_eq!(
        combined,
        newest_first(&|r| r.user.as_deref() == Some("suzuki")
            && r.target == "github"
            && r.decision == Effect::Allow
            && r.time >= records[30].time)[..5]
    );

    assert!(q(LogQuery {
        limit: Some(0),
        ..Default::default()
    })
    .is_empty());
    assert!(q(LogQuery {
        user: Some("nobody".into()),
        ..Default::default()
    })
    .is_empty());

    // Ties in time keep insertion order reversed (newest appended first).
    let mut a = record(1000, Some("sato"), "github", Effect::Allow);
    let mut b2 = record(1001, Some("sato"), "github", Effect::Allow);
    a.time = t0();
    b2.time = t0();
    s.append_access(&[a.clone(), b2.clone()]).unwrap();
    let sato = s.recent_access("sato", 10).unwrap();
    assert_eq!(
        ids(&sato),
        [b2.decision_id.as_str(), a.decision_id.as_str()]
    );
}

fn recent_access_latest_n(b: &dyn Backend) {
    let s = b.open();
    // 15 records of tanaka, appended out of time order, between others' records.
    let mut mine: Vec<AccessRecord> = Vec::new();
    let mut batch = Vec::new();
    for i in 0..15 {
        let j = (i * 7) % 15; // a permutation of 0..15
        let r = record(100 + j, Some("tanaka"), "github", Effect::Allow);
        mine.push(r.clone());
        batch.push(r);
        batch.push(record(200 + i, Some("suzuki"), "github", Effect::Deny));
    }
    batch.push(record(300, None, "github", Effect::Deny));
    s.append_access(&batch).unwrap();

    mine.sort_by_key(|r| std::cmp::Reverse(r.time));
    let recent = s.recent_access("tanaka", 10).unwrap();
    assert_eq!(recent, mine[..10]);
    assert_eq!(s.recent_access("tanaka", 100).unwrap().len(), 15);
    assert!(s.recent_access("tanaka", 0).unwrap().is_empty());
    assert!(s.recent_access("nobody", 10).unwrap().is_empty());
}

fn append_is_atomic(b: &dyn Backend) {
    let s = b.open();
    let first = record(1, Some("tanaka"), "github", Effect::Allow);
    s.append_access(std::slice::from_ref(&first)).unwrap();
    assert_conflict(s.append_access(std::slice::from_ref(&first)));

    // A batch with one duplicate fails whole: nothing of it is stored.
    let batch = vec![
        record(2, Some("tanaka"), "github", Effect::Allow),
        record(3, Some("tanaka"), "github", Effect::Deny),
        first.clone(),
    ];
    match s.append_access(&batch) {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains(&first.decision_id), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let dup_inside = vec![
        record(4, Some("tanaka"), "github", Effect::Allow),
        record(4, Some("tanaka"), "github", Effect::Allow),
    ];
    assert_conflict(s.append_access(&dup_inside));
    assert_eq!(all(&*s), [first]);

    // The store is usable after the failed batches.
    s.append_access(&batch[..2]).unwrap();
    assert_eq!(all(&*s).len(), 3);
}

fn durable_across_reopen(b: &dyn Backend) {
    let records: Vec<AccessRecord> = (0..500)
        .map(|i| {
            record(
                i,
                Some(["tanaka", "suzuki", "sato"][i % 3]),
                "github",
                Effect::Allow,
            )
        })
        .collect();
    {
        let s = b.open();
        s.create_user(&new_user("tanaka")).unwrap();
        s.create_group("経理部").unwrap();
        s.add_member("経理部", "tanaka").unwrap();
        s.register_device("PC-0042", "tanaka").unwrap();
        s.record_posture("PC-0042", &posture(), t0()).unwrap();
        for chunk in records.chunks(64) {
            s.append_access(chunk).unwrap();
        }
        // Dropped here without any explicit close or flush.
    }
    let s = b.open();
    let mut found = all(&*s);
    found.reverse();
    assert_eq!(
        found.len(),
        records.len(),
        "{}: every acknowledged record",
        b.name()
    );
    assert_eq!(found, records);
    assert_eq!(s.groups_of("tanaka").unwrap(), ["経理部"]);
    assert_eq!(
        s.get_device("PC-0042").unwrap().and_then(|d| d.posture),
        Some(posture())
    );
}

fn append_10000_in_one_call(b: &dyn Backend) {
    let s = b.open();
    let records: Vec<AccessRecord> = (0..10_000)
        .map(|i| {
            let decision = if i % 4 == 0 {
                Effect::Deny
            } else {
                Effect::Allow
            };
            record(i, Some(&format!("user{:03}", i % 500)), "github", decision)
        })
        .collect();
    let started = Instant::now();
    s.append_access(&records).unwrap();
    let took = started.elapsed();
    eprintln!(
        "{}: appended 10,000 access records in one call in {:.1} ms ({:.0} records/s, durable)",
        b.name(),
        took.as_secs_f64() * 1e3,
        10_000.0 / took.as_secs_f64()
    );

    let found = all(&*s);
    assert_eq!(found.len(), 10_000);
    assert_eq!(found.first(), records.last());
    assert_eq!(found.last(), records.first());
    let recent = s.recent_access("user123", 10).unwrap();
    assert_eq!(recent.len(), 10);
    assert_eq!(recent[0].decision_id, records[9623].decision_id);

    // Queries return at most 10 000 records, whatever the limit asked.
    s.append_access(&[record(10_000, Some("late"), "slack", Effect::Allow)])
        .unwrap();
    let capped = s
        .query_access(&LogQuery {
            limit: Some(1_000_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(capped.len(), 10_000);
    assert_eq!(capped[0].user.as_deref(), Some("late"));
}

fn concurrent_writers_and_readers(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    let writers = 4;
    let batches = 25;
    let per_batch = 8;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let s = &s;
            scope.spawn(move || {
                for k in 0..batches {
                    let batch: Vec<AccessRecord> = (0..per_batch)
                        .map(|j| {
                            let i = (w * batches + k) * per_batch + j;
                            record(i, Some("tanaka"), "github", Effect::Allow)
                        })
                        .collect();
                    s.append_access(&batch).unwrap();
                }
            });
        }
        for _ in 0..2 {
            let s = &s;
            scope.spawn(move || {
                for _ in 0..50 {
                    let n = s.recent_access("tanaka", 10).unwrap().len();
                    assert!(n <= 10);
                    assert!(s.get_user("tanaka").unwrap().is_some());
                    assert_eq!(s.groups_of("tanaka").unwrap(), Vec::<String>::new());
                }
            });
        }
    });
    assert_eq!(all(&*s).len(), writers * batches * per_batch);
}

fn corrupt_rows_are_errors(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    s.register_device("PC-0042", "tanaka").unwrap();
    s.append_access(&[record(1, Some("tanaka"), "github", Effect::Allow)])
        .unwrap();

    // Valid JSON (so PostgreSQL's jsonb takes it) of the wrong shape.
    b.raw(r#"UPDATE devices SET posture = '{"tpm": 5}' WHERE id = 'PC-0042'"#);
    assert_backend(s.get_device("PC-0042"));
    assert_backend(s.list_devices());

    b.raw(r#"UPDATE access_log SET reasons = '{"not": "a list"}'"#);
    assert_backend(s.query_access(&LogQuery::default()));
    assert_backend(s.recent_access("tanaka", 10));

    // The rest still works.
    assert!(s.get_user("tanaka").unwrap().is_some());
}

fn migrate_is_idempotent(b: &dyn Backend) {
    let s = b.open();
    s.migrate().unwrap();
    s.migrate().unwrap();
    s.create_user(&new_user("tanaka")).unwrap();
    let again = b.open(); // migrates once more
    assert!(again.get_user("tanaka").unwrap().is_some());

    // A database from a newer build is refused rather than misread.
    b.raw("UPDATE schema_version SET version = 999");
    match again.migrate() {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("999"), "{msg}"),
        other => panic!("expected a schema version error, got {other:?}"),
    }
}

/// The server opens its store in async `main`, calls it through `spawn_blocking`
/// and drops it on an async task at shutdown: none of that may panic.
fn usable_from_async_server(b: &dyn Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = b.open();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::task::spawn_blocking(move || {
                    s.create_user(&new_user(&format!("user{i}"))).unwrap();
                    s.append_access(&[record(i, Some("tanaka"), "github", Effect::Allow)])
                        .unwrap();
                    s.groups_of("tanaka").unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_empty());
        }
        let s2 = s.clone();
        let n = tokio::task::spawn_blocking(move || s2.list_users().unwrap().len())
            .await
            .unwrap();
        assert_eq!(n, 8);
        drop(s);
    });
}

// ---------------------------------------------------------------------------
// SQLite only: URLs, in-memory databases, file settings

#[test]
fn open_picks_the_backend_by_url() {
    let file = SqliteFile::new();
    let plain = store::open(file.path.to_str().unwrap()).unwrap();
    plain.create_user(&new_user("tanaka")).unwrap();
    drop(plain);
    let prefixed = store::open(&format!("sqlite:{}", file.path.display())).unwrap();
    assert!(prefixed.get_user("tanaka").unwrap().is_some());
    let slashes = store::open(&format!("sqlite://{}", file.path.display())).unwrap();
    assert!(slashes.get_user("tanaka").unwrap().is_some());

    let memory = store::open("sqlite::memory:").unwrap();
    memory.create_user(&new_user("tanaka")).unwrap();
    memory.create_group("all").unwrap();
    memory.add_member("all", "tanaka").unwrap();
    memory
        .append_access(&[record(1, Some("tanaka"), "github", Effect::Allow)])
        .unwrap();
    assert_eq!(memory.groups_of("tanaka").unwrap(), ["all"]);
    assert_eq!(memory.recent_access("tanaka", 10).unwrap().len(), 1);
    let other_memory = store::open("sqlite::memory:").unwrap();
    assert!(
        other_memory.list_users().unwrap().is_empty(),
        "each in-memory store is private"
    );

    for bad in ["mysql://u@h/db", "", "sqlite:"] {
        assert!(
            matches!(store::open(bad), Err(StoreError::Backend(_))),
            "{bad:?} must be refused"
        );
    }
    assert!(matches!(
        store::open(&format!("{}/no/such/dir/x.db", file.dir.display())),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn sqlite_file_is_in_wal_mode() {
    let file = SqliteFile::new();
    let s = SqliteStore::open(&file.path).unwrap();
    s.migrate().unwrap();
    assert_eq!(s.path(), Some(file.path.as_path()));
    let conn = rusqlite::Connection::open(&file.path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn sqlite_corrupt_time_is_an_error() {
    let file = SqliteFile::new();
    let s = file.open();
    s.append_access(&[record(1, Some("tanaka"), "github", Effect::Allow)])
        .unwrap();
    file.raw("UPDATE access_log SET time = 'yesterday'");
    assert_backend(s.recent_access("tanaka", 10));
    file.raw("UPDATE access_log SET time = 9223372036854775807");
    assert_backend(s.recent_access("tanaka", 10));
}

// ---------------------------------------------------------------------------
// Device agent: enrolment codes, device keys, report sequence numbers,
// attestation challenges

fn enrollment(hash: &str, owner: &str, device: Option<&str>, ttl: TimeDelta) -> NewEnrollment {
    let now = Utc::now();
    NewEnrollment {
        code_sha256: hash.to_string(),
        owner: owner.to_string(),
        device_id: device.map(str::to_string),
        created_at: now,
        expires_at: now + ttl,
    }
}

fn enrolled(outcome: EnrollOutcome) -> pdp_server::model::Device {
    match outcome {
        EnrollOutcome::Enrolled(d) => *d,
        other => panic!("expected an enrolment, got {other:?}"),
    }
}

fn enrollment_codes(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    s.create_user(&new_user("suzuki")).unwrap();
    let hour = TimeDelta::hours(1);
    assert_not_found(s.create_enrollment(&enrollment("h0", "nobody", None, hour)));
    s.create_enrollment(&enrollment("h1", "tanaka", None, hour))
        .unwrap();
    assert_conflict(s.create_enrollment(&enrollment("h1", "tanaka", None, hour)));

    // Unknown code: nothing happens.
    assert_eq!(
        s.enroll_device("nope", "KEY0", "DEV-X", Utc::now())
            .unwrap(),
        EnrollOutcome::Unknown
    );
    // A code without a device id registers the generated one, with its key.
    let d = enrolled(s.enroll_device("h1", "KEY1", "DEV-1", Utc::now()).unwrap());
    assert_eq!((d.id.as_str(), d.owner.as_str()), ("DEV-1", "tanaka"));
    assert_eq!(s.get_device("DEV-1").unwrap().unwrap().owner, "tanaka");
    assert_eq!(s.device_key("DEV-1").unwrap().as_deref(), Some("KEY1"));
    // Single use.
    assert_eq!(
        s.enroll_device("h1", "KEY2", "DEV-2", Utc::now()).unwrap(),
        EnrollOutcome::Used
    );
    assert_eq!(s.get_device("DEV-2").unwrap(), None);
    assert_eq!(s.device_key("DEV-1").unwrap().as_deref(), Some("KEY1"));

    // Expired (at its expiry instant already): refused, and stays unused.
    s.create_enrollment(&enrollment("h2", "tanaka", None, TimeDelta::minutes(10)))
        .unwrap();
    let later = Utc::now() + TimeDelta::minutes(10);
    assert_eq!(
        s.enroll_device("h2", "KEY3", "DEV-3", later).unwrap(),
        EnrollOutcome::Expired
    );
    assert_eq!(s.get_device("DEV-3").unwrap(), None);
    enrolled(s.enroll_device("h2", "KEY3", "DEV-3", Utc::now()).unwrap());

    // A code naming an existing device of the same owner re-keys it and restarts
    // its sequence; one naming another owner's device is a conflict.
    s.register_device("PC-0042", "tanaka").unwrap();
    assert_eq!(s.device_key("PC-0042").unwrap(), None);
    s.create_enrollment(&enrollment("h3", "tanaka", Some("PC-0042"), hour))
        .unwrap();
    enrolled(
        s.enroll_device("h3", "KEY4", "ignored", Utc::now())
            .unwrap(),
    );
    assert_eq!(s.device_key("PC-0042").unwrap().as_deref(), Some("KEY4"));
    assert!(s.accept_report("PC-0042", 7, &posture(), t0()).unwrap());
    s.create_enrollment(&enrollment("h4", "tanaka", Some("PC-0042"), hour))
        .unwrap();
    enrolled(
        s.enroll_device("h4", "KEY5", "ignored", Utc::now())
            .unwrap(),
    );
    assert_eq!(s.device_key("PC-0042").unwrap().as_deref(), Some("KEY5"));
    assert!(
        s.accept_report("PC-0042", 1, &posture(), t0()).unwrap(),
        "sequence restarted"
    );
    s.create_enrollment(&enrollment("h5", "suzuki", Some("PC-0042"), hour))
        .unwrap();
    assert_conflict(s.enroll_device("h5", "KEY6", "ignored", Utc::now()));
    assert_eq!(s.device_key("PC-0042").unwrap().as_deref(), Some("KEY5"));
    // The conflict rolled back: the code is still unused.
    s.delete_device("PC-0042").unwrap();
    let d = enrolled(
        s.enroll_device("h5", "KEY6", "ignored", Utc::now())
            .unwrap(),
    );
    assert_eq!((d.id.as_str(), d.owner.as_str()), ("PC-0042", "suzuki"));

    // Deleting a device deletes its key; the data survives a reopen.
    s.delete_device("DEV-1").unwrap();
    assert_eq!(s.device_key("DEV-1").unwrap(), None);
    drop(s);
    let s = b.open();
    assert_eq!(s.device_key("DEV-3").unwrap().as_deref(), Some("KEY3"));
    assert_eq!(
        s.enroll_device("h3", "KEY7", "x", Utc::now()).unwrap(),
        EnrollOutcome::Used
    );
}

fn enrollment_is_single_use_under_concurrency(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    s.create_enrollment(&enrollment("race", "tanaka", None, TimeDelta::hours(1)))
        .unwrap();
    let wins = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for i in 0..8 {
            let store = b.open();
            let wins = wins.clone();
            scope.spawn(move || {
                let out = store
                    .enroll_device("race", &format!("KEY{i}"), &format!("DEV-{i}"), Utc::now())
                    .unwrap();
                if let EnrollOutcome::Enrolled(d) = out {
                    wins.lock().unwrap().push(d.id);
                } else {
                    assert_eq!(out, EnrollOutcome::Used);
                }
            });
        }
    });
    let wins = wins.lock().unwrap();
    assert_eq!(wins.len(), 1, "exactly one enrolment per code: {wins:?}");
    assert_eq!(s.list_devices().unwrap().len(), 1);
}

fn device_keys_and_report_sequence(b: &dyn Backend) {
    let s = b.open();
    s.create_user(&new_user("tanaka")).unwrap();
    s.register_device("PC-1", "tanaka").unwrap();
    // No key: nothing to accept (and nothing stored).
    assert!(!s.accept_report("PC-1", 1, &posture(), t0()).unwrap());
    assert!(!s.accept_report("PC-404", 1, &posture(), t0()).unwrap());
    s.create_enrollment(&enrollment(
        "k",
        "tanaka",
        Some("PC-1"),
        TimeDelta::hours(1),
    ))
    .unwrap();
    enrolled(s.enroll_device("k", "KEY", "x", Utc::now()).unwrap());
    assert!(s.get_device("PC-1").unwrap().unwrap().posture.is_none());
    assert!(s.accept_report("PC-1", 1, &posture(), t0()).unwrap());
    // The accepted report is the device's posture; a replay changes nothing.
    assert_eq!(
        s.get_device("PC-1").unwrap().unwrap().posture,
        Some(posture())
    );
    let other = policy_core::context::Device::default();
    assert!(!s.accept_report("PC-1", 1, &other, t0()).unwrap(), "replay");
    assert_eq!(
        s.get_device("PC-1").unwrap().unwrap().posture,
        Some(posture())
    );
    assert!(
        s.accept_report("PC-1", 5, &posture(), t0()).unwrap(),
        "gaps are fine"
    );
    assert!(
        !s.accept_report("PC-1", 4, &posture(), t0()).unwrap(),
        "older"
    );
    assert!(
        s.accept_report("PC-1", i64::MAX as u64, &posture(), t0())
            .unwrap(),
        "largest storable"
    );
    assert!(
        !s.accept_report("PC-1", u64::MAX, &posture(), t0()).unwrap(),
        "not storable"
    );

    // Concurrent reports with distinct numbers: each number is accepted at most
    // once and the record ends at the largest accepted one.
    s.create_enrollment(&enrollment(
        "k2",
        "tanaka",
        Some("PC-1"),
        TimeDelta::hours(1),
    ))
    .unwrap();
    enrolled(s.enroll_device("k2", "KEY2", "x", Utc::now()).unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let store = b.open();
            let accepted = accepted.clone();
            scope.spawn(move || {
                for seq in [1 + t, 1 + t, 10 + t] {
                    if store.accept_report("PC-1", seq, &posture(), t0()).unwrap() {
                        accepted.lock().unwrap().push(seq);
                    }
                }
            });
        }
    });
    let mut got = accepted.lock().unwrap().clone();
    let n = got.len();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), n, "no number accepted twice: {got:?}");
    assert!(!s.accept_report("PC-1", 13, &posture(), t0()).unwrap());
    assert!(s.accept_report("PC-1", 14, &posture(), t0()).unwrap());
}

fn attestation_challenges(b: &dyn Backend) {
    let s = b.open();
    let now = Utc::now();
    s.create_challenge("c1", now + TimeDelta::minutes(2))
        .unwrap();
    assert_conflict(s.create_challenge("c1", now + TimeDelta::minutes(2)));
    assert!(!s.consume_challenge("unknown", now).unwrap());
    // Expired at its expiry instant.
    assert!(!s
        .consume_challenge("c1", now + TimeDelta::minutes(2))
        .unwrap());
    assert!(s.consume_challenge("c1", now).unwrap());
    assert!(!s.consume_challenge("c1", now).unwrap(), "single use");
    // Expired challenges are purged when new ones are made.
    s.create_challenge("old", now - TimeDelta::seconds(1))
        .unwrap();
    s.create_challenge("c2", now + TimeDelta::minutes(2))
        .unwrap();
    s.create_challenge("old", now + TimeDelta::minutes(2))
        .expect("the expired one was purged");
}
