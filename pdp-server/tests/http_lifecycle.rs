//! The server's life: acknowledged decisions survive a restart, and policy files
//! reload on change (keeping the last good rules when a change does not compile).

mod http_support;

use http_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_decision_is_in_the_log_after_a_restart() {
    let dir = TempDir::new("restart");
    let s = start(dir.path()).await;
    let a = s.addr();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        tasks.spawn(async move {
            let r = decide(
                a,
                json!({"app": "github", "pep": "saml", "authenticated": true, "context": {
                    "user": {"id": format!("user{}", i % 20)},
                    "source": {"ip": "203.0.113.7", "country": "JP"}}}),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["decision_id"].as_str().unwrap().to_string()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    assert_eq!(ids.len(), 200);
    s.shutdown().await.unwrap();

    // A new server on the same database finds every one.
    let s = start(dir.path()).await;
    let v = admin_get(s.addr(), "/v1/logs?limit=10000").await.json();
    let logged: std::collections::HashSet<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(logged.len(), 200);
    for id in &ids {
        assert!(logged.contains(id.as_str()), "{id} missing after restart");
    }
    // The bundle version did not go back or move: the rules are the same.
    let r = get(s.addr(), "/v1/bundle").await;
    assert_eq!(r.header("etag").as_deref(), Some("\"1\""));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_file_changes_reload_and_failures_keep_the_last_good_rules() {
    let dir = TempDir::new("reload");
    let s = start(dir.path()).await;
    let a = s.addr();
    let policy = dir.path().join("policies.toml");
    let lock = dir.path().join("policies.lock");
    assert!(lock.exists(), "the lock is written beside the policy");
    let wiki = json!({"app": "wiki", "authenticated": true, "context": {"auth": {"mfa": true}}});
    assert_eq!(decide(a, wiki.clone()).await.status, 404);

    // A long poll is answered as soon as the new version is in force.
    let poll = tokio::spawn(async move {
        request(
            a,
            "GET",
            "/v1/bundle?wait=30",
            &[("if-none-match", "\"1\"")],
            None,
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let added = format!(
        "{POLICY}\n[apps.wiki]\nmode = \"tunnel\"\nrequire = \"多要素認証を利用していること\"\n"
    );
    std::fs::write(&policy, &added).unwrap();
    let reloaded = eventually(15, || async { decide(a, wiki.clone()).await.status == 200 }).await;
    assert!(reloaded, "the new app is served");
    assert_eq!(decide(a, wiki.clone()).await.json()["decision"], "allow");
    let r = poll.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(
        get(a, "/v1/bundle").await.header("etag").as_deref(),
        Some("\"2\"")
    );
    assert!(std::fs::read_to_string(&lock)
        .unwrap()
        .contains("[apps.wiki"));

    // A text that does not translate: the old rules stay, the status says why.
    let broken =
        format!("{added}\n[apps.moon]\nmode = \"saml\"\nrequire = \"月が綺麗であること\"\n");
    std::fs::write(&policy, &broken).unwrap();
    let failed = eventually(15, || async {
        !get(a, "/v1/status").await.json()["policy"]["error"].is_null()
    })
    .await;
    assert!(failed, "the status shows the error");
    let st = get(a, "/v1/status").await.json();
    assert_eq!(st["status"], "degraded");
    let err = st["policy"]["error"]["errors"].to_string();
    assert!(err.contains("moon"), "the error names the app: {err}");
    assert_eq!(st["policy"]["bundle_version"], 2);
    assert_eq!(decide(a, wiki.clone()).await.json()["decision"], "allow");
    assert_eq!(
        decide(a, json!({"app": "moon", "authenticated": true}))
            .await
            .status,
        404
    );
    let m = get(a, "/metrics").await.text();
    assert!(m.contains("rzts_reload_errors_total 1"), "{m}");
    assert!(m.contains("rzts_policy_error 1"));
    assert!(m.contains("rzts_bundle_version 2"));
    assert_eq!(
        get(a, "/v1/bundle").await.header("etag").as_deref(),
        Some("\"2\"")
    );

    // Invalid TOML likewise.
    std::fs::write(&policy, "[apps.github\nmode = ").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(decide(a, wiki.clone()).await.json()["decision"], "allow");

    // Fixing the file clears the error; removing the app removes it.
    std::fs::write(&policy, POLICY).unwrap();
    let fixed = eventually(15, || async {
        get(a, "/v1/status").await.json()["policy"]["error"].is_null()
    })
    .await;
    assert!(fixed);
    assert_eq!(decide(a, wiki.clone()).await.status, 404);
    assert_eq!(
        get(a, "/v1/bundle").await.header("etag").as_deref(),
        Some("\"3\"")
    );
    s.shutdown().await.unwrap();

    // The version continues across a restart.
    let s = start(dir.path()).await;
    assert_eq!(
        get(s.addr(), "/v1/bundle").await.header("etag").as_deref(),
        Some("\"3\"")
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_defaults_start_with_no_files_and_keep_their_secrets() {
    let dir = TempDir::new("defaults");
    let mut c = pdp_server::config::ServerConfig::embedded_default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.path().join("data");
    // The default policy path does not exist here (tests run in pdp-server/), so
    // the embedded sample policy is written to the data directory and used.
    assert!(!c.policy.exists());
    let s = pdp_server::server::Server::start(c.clone()).await.unwrap();
    let summary = s.summary();
    assert!(summary.contains(&s.url()), "{summary}");
    assert!(summary.contains("admin token (generated"), "{summary}");
    let token = s.admin_token().to_string();
    assert!(summary.contains(&token));
    let token_file = dir.path().join("data/admin_token");
    let key_file = dir.path().join("data/bundle_signing.key");
    #[cfg(unix)]
    for f in [&token_file, &key_file] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    assert!(dir.path().join("data/rzts.db").exists());
    assert!(dir.path().join("data/policies.toml").exists());
    assert!(dir.path().join("data/policies.lock").exists());
    let key1 = get(s.addr(), "/v1/bundle/key").await.json();
    let apps = request(
        s.addr(),
        "GET",
        "/v1/admin/apps",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await
    .json();
    assert_eq!(apps["apps"].as_array().unwrap().len(), 5);
    s.shutdown().await.unwrap();

    // Second start: the same token (not shown again) and the same signing key.
    let s = pdp_server::server::Server::start(c).await.unwrap();
    assert_eq!(s.admin_token(), token);
    assert!(!s.summary().contains(&token));
    assert_eq!(get(s.addr(), "/v1/bundle/key").await.json(), key1);
    s.shutdown().await.unwrap();
}

/// A store whose access log can be made to fail.
struct Flaky {
    inner: std::sync::Arc<dyn pdp_server::store::Store>,
    fail: std::sync::atomic::AtomicBool,
}

mod flaky_impl {
    use super::Flaky;
    use chrono::{DateTime, Utc};
    use pdp_server::model::*;
    use pdp_server::store::{Store, StoreError};
    use std::sync::atomic::Ordering;

    impl Store for Flaky {
        fn migrate(&self) -> Result<(), StoreError> {
            self.inner.migrate()
        }
        fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
            self.inner.create_user(user)
        }
        fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
            self.inner.get_user(id)
        }
        fn list_users(&self) -> Result<Vec<User>, StoreError> {
            self.inner.list_users()
        }
        fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
            self.inner.set_user_disabled(id, disabled)
        }
        fn set_user_password(&self, id: &str, h: &str) -> Result<(), StoreError> {
            self.inner.set_user_password(id, h)
        }
        fn set_user_totp(&self, id: &str, s: Option<&str>) -> Result<(), StoreError> {
            self.inner.set_user_totp(id, s)
        }
        fn create_group(&self, name: &str) -> Result<(), StoreError> {
            self.inner.create_group(name)
        }
        fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
            self.inner.list_groups()
        }
        fn add_member(&self, g: &str, u: &str) -> Result<(), StoreError> {
            self.inner.add_member(g, u)
        }
        fn remove_member(&self, g: &str, u: &str) -> Result<(), StoreError> {
            self.inner.remove_member(g, u)
        }
        fn groups_of(&self, u: &str) -> Result<Vec<String>, StoreError> {
            self.inner.groups_of(u)
        }
        fn register_device(&self, id: &str, owner: &str) -> Result<Device, StoreError> {
            self.inner.register_device(id, owner)
        }
        fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
            self.inner.get_device(id)
        }
        fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
            self.inner.list_devices()
        }
        fn devices_of(&self, owner: &str) -> Result<Vec<Device>, StoreError> {
            self.inner.devices_of(owner)
        }
        fn record_posture(
            &self,
            id: &str,
            p: &policy_core::context::Device,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            self.inner.record_posture(id, p, at)
        }
        fn delete_device(&self, id: &str) -> Result<(), StoreError> {
            self.inner.delete_device(id)
        }
        // The server stores access records only through `ingest_access` (its
        // indexer), so that is where the outage is injected.
        fn append_access(&self, records: &[AccessRecord]) -> Result<(), StoreError> {
            self.inner.append_access(records)
        }
        fn query_access(&self, q: &LogQuery) -> Result<Vec<AccessRecord>, StoreError> {
            self.inner.query_access(q)
        }
        fn recent_access(&self, u: &str, n: usize) -> Result<Vec<AccessRecord>, StoreError> {
            self.inner.recent_access(u, n)
        }
        fn set_proxy_credential(&self, u: &str, h: Option<&str>) -> Result<(), StoreError> {
            self.inner.set_proxy_credential(u, h)
        }
        fn proxy_credential(&self, u: &str) -> Result<Option<String>, StoreError> {
            self.inner.proxy_credential(u)
        }
        fn ingest_access(&self, records: &[AccessRecord]) -> Result<usize, StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("disk on fire".into()));
            }
            self.inner.ingest_access(records)
        }
        // device agent
        fn create_enrollment(&self, c: &NewEnrollment) -> Result<(), StoreError> {
            self.inner.create_enrollment(c)
        }
        fn enroll_device(
            &self,
            code: &str,
            key: &str,
            new_id: &str,
            now: DateTime<Utc>,
        ) -> Result<EnrollOutcome, StoreError> {
            self.inner.enroll_device(code, key, new_id, now)
        }
        fn device_key(&self, id: &str) -> Result<Option<String>, StoreError> {
            self.inner.device_key(id)
        }
        fn accept_report(
            &self,
            id: &str,
            seq: u64,
            posture: &policy_core::context::Device,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<bool, StoreError> {
            self.inner.accept_report(id, seq, posture, at)
        }
        fn create_challenge(&self, c: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
            self.inner.create_challenge(c, until)
        }
        fn consume_challenge(&self, c: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
            self.inner.consume_challenge(c, now)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_left_in_the_journal_by_a_crash_are_stored_at_start() {
    let dir = TempDir::new("crash");
    let c = config(dir.path());
    std::fs::write(&c.policy, POLICY).unwrap();
    // What a crashed server leaves: synced lines, one of them also in the store
    // already, and a torn last line (never acknowledged).
    let record = |id: &str| {
        json!({"decision_id": id, "time": "2026-11-24T01:00:00Z", "pep": "api", "target": "github",
               "user": "abe", "device": null, "decision": "deny",
               "reasons": [{"code": "deny.matched", "message": "拒否条件に該当するため拒否"}],
               "auth_method": null, "source_ip": null, "country": null, "anomalies": []})
        .to_string()
    };
    let journal = c.access_journal_path();
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    std::fs::write(
        &journal,
        format!(
            "{}\n{}\n{{\"decision_id\":\"TORN",
            record("CRASH-1"),
            record("CRASH-2")
        ),
    )
    .unwrap();
    let s = pdp_server::server::Server::start(c.clone()).await.unwrap();
    let records = all_records(&s).await;
    let ids: Vec<&str> = records.iter().map(|r| r.decision_id.as_str()).collect();
    assert!(
        ids.contains(&"CRASH-1") && ids.contains(&"CRASH-2"),
        "{ids:?}"
    );
    assert_eq!(records.len(), 2);
    assert_eq!(
        &*records[0].reasons[0].message,
        "拒否条件に該当するため拒否"
    );
    s.shutdown().await.unwrap();
    // Stored, so the journal is empty; a second start stores nothing twice.
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
    let s = pdp_server::server::Server::start(c).await.unwrap();
    assert_eq!(all_records(&s).await.len(), 2);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_whose_record_cannot_be_journaled_is_not_given() {
    // The access journal on /dev/full: every write fails with ENOSPC.
    let dir = TempDir::new("nospace");
    let mut c = config(dir.path());
    std::fs::write(&c.policy, POLICY).unwrap();
    c.access_journal = Some("/dev/full".into());
    let s = pdp_server::server::Server::start(c).await.unwrap();
    let a = s.addr();
    let body = json!({"app": "github", "authenticated": true, "context": {"user": {"id": "abe"}}});
    let r = decide(a, body).await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["error"], "log_unavailable");
    assert!(v.get("decision").is_none() && v.get("decision_id").is_none());
    assert!(get(a, "/metrics")
        .await
        .text()
        .contains("rzts_log_errors_total 1"));
    assert!(all_records(&s).await.is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_delays_indexing_but_loses_no_acknowledged_record() {
    use std::sync::atomic::Ordering;
    let dir = TempDir::new("flaky");
    let c = config(dir.path());
    std::fs::write(&c.policy, POLICY).unwrap();
    let url = c.store_url();
    let inner = tokio::task::spawn_blocking(move || pdp_server::store::open(&url))
        .await
        .unwrap()
        .unwrap();
    let flaky = std::sync::Arc::new(Flaky {
        inner: inner.clone(),
        fail: false.into(),
    });
    let s = pdp_server::server::Server::start_with_store(c.clone(), flaky.clone())
        .await
        .unwrap();
    let a = s.addr();
    let body = json!({"app": "github", "authenticated": true, "context": {"user": {"id": "abe"}}});
    assert_eq!(decide(a, body.clone()).await.status, 200);
    // The database fails: decisions are still given, because each record is
    // durable in the access journal first.
    flaky.fail.store(true, Ordering::SeqCst);
    let r = decide(a, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let during = r.json()["decision_id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(get(a, "/metrics")
        .await
        .text()
        .lines()
        .any(|l| l.starts_with("rzts_log_index_errors_total ") && !l.ends_with(" 0")));
    // Back: the indexer's retry stores it.
    flaky.fail.store(false, Ordering::SeqCst);
    let ids = logged_ids(&s).await;
    assert!(ids.contains(&during), "{ids:?}");

    // Down again, and the server stops before it comes back: the record stays in
    // the journal and is stored at the next start.
    flaky.fail.store(true, Ordering::SeqCst);
    let r = decide(a, body).await;
    assert_eq!(r.status, 200);
    let stranded = r.json()["decision_id"].as_str().unwrap().to_string();
    s.shutdown().await.unwrap();
    let before: Vec<String> = inner
        .query_access(&pdp_server::model::LogQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.decision_id)
        .collect();
    assert!(!before.contains(&stranded));
    let s = pdp_server::server::Server::start(c).await.unwrap();
    let ids = logged_ids(&s).await;
    assert!(ids.contains(&stranded), "{ids:?}");
    s.shutdown().await.unwrap();
}
