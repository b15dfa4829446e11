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
