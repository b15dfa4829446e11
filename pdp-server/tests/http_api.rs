//! The decision server's HTTP API, over real TCP against a running server with a
//! temporary SQLite store and policy file.

mod http_support;

use http_support::*;
use serde_json::{json, Value};

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

fn github_ok_context() -> Value {
    json!({
        "user": {"id": "sato"},
        "source": {"ip": "203.0.113.7", "country": "JP"},
        "device": {"id": "PC-0001", "tpm": {"enabled": true}, "disk": {"encrypted": true, "method": "bitlocker"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_allow_and_deny_with_reasons_and_decision_ids() {
    let dir = TempDir::new("decide");
    let s = start(dir.path()).await;
    let a = s.addr();

    let r = decide(
        a,
        json!({"app": "github", "pep": "saml", "authenticated": true, "context": github_ok_context()}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let allow = r.json();
    assert_eq!(allow["decision"], "allow", "{allow}");
    assert_eq!(codes(&allow), vec!["allow"]);
    let id1 = allow["decision_id"].as_str().unwrap().to_string();
    assert_eq!(id1.len(), 26, "a ULID");

    let mut ctx = github_ok_context();
    ctx["source"]["country"] = json!("US");
    let r = decide(
        a,
        json!({"app": "github", "authenticated": true, "context": ctx}),
    )
    .await;
    let deny = r.json();
    assert_eq!(deny["decision"], "deny");
    assert!(codes(&deny).contains(&"require.not_met".to_string()));
    let msg = deny["reasons"][0]["message"].as_str().unwrap();
    assert!(msg.contains("拒否"), "{msg}");

    // An attribute the request does not carry is unknown: fail closed, and say so.
    let mut ctx = github_ok_context();
    ctx["source"].as_object_mut().unwrap().remove("country");
    let r = decide(
        a,
        json!({"app": "github", "authenticated": true, "context": ctx}),
    )
    .await;
    let unknown = r.json();
    assert_eq!(unknown["decision"], "deny");
    assert_eq!(unknown["reasons"][0]["code"], "require.unknown_attribute");
    assert_eq!(unknown["reasons"][0]["attribute"], "source.country");

    let r = decide(
        a,
        json!({"app": "github", "authenticated": false, "context": github_ok_context()}),
    )
    .await;
    assert_eq!(codes(&r.json()), vec!["unauthenticated"]);

    // Every decision was recorded, with its id.
    let records = all_records(&s).await;
    assert_eq!(records.len(), 4);
    let first = records.iter().find(|r| r.decision_id == id1).unwrap();
    assert_eq!(first.pep, "saml");
    assert_eq!(first.target, "github");
    assert_eq!(first.country.as_deref(), Some("JP"));
    assert_eq!(first.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(first.device.as_deref(), Some("PC-0001"));
    assert_eq!(first.reason_codes().collect::<Vec<_>>(), ["allow"]);
    assert!(
        !first.reasons[0].message.is_empty(),
        "the Japanese reason is logged"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_in_order() {
    let dir = TempDir::new("batch");
    let s = start(dir.path()).await;
    let ok = github_ok_context();
    let r = decide(
        s.addr(),
        json!({"requests": [
            {"app": "github", "authenticated": true, "context": ok},
            {"app": "internet", "pep": "socks", "authenticated": true, "context": {
                "device": {"firewall": true, "antivirus": true},
                "destination": {"domain": "chat.deepseek.com", "port": 443}}},
            {"app": "internet", "pep": "socks", "authenticated": true, "context": {
                "device": {"firewall": true, "antivirus": true},
                "destination": {"domain": "example.org", "port": 443}}},
            {"app": "github", "authenticated": false}
        ]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let ds = v["decisions"].as_array().unwrap();
    let effects: Vec<&str> = ds.iter().map(|d| d["decision"].as_str().unwrap()).collect();
    assert_eq!(effects, vec!["allow", "deny", "allow", "deny"]);
    assert_eq!(ds[1]["reasons"][0]["code"], "deny.matched");
    let ids: std::collections::BTreeSet<&str> = ds
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let records = all_records(&s).await;
    assert_eq!(records.len(), 4);
    // The gateway's target is what was reached.
    assert!(records.iter().any(|r| r.target == "chat.deepseek.com:443"));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrichment_from_the_directory() {
    let dir = TempDir::new("enrich");
    let s = start(dir.path()).await;
    let a = s.addr();
    for (id, mail) in [
        ("tanaka", "tanaka@example.co.jp"),
        ("suzuki", "suzuki@example.co.jp"),
    ] {
        let r = admin(
            a,
            "POST",
            "/v1/admin/users",
            json!({"id": id, "email": mail, "display_name": id, "password": "correct horse battery"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(r.json().get("password_hash").is_none());
    }
    assert_eq!(
        admin(a, "POST", "/v1/admin/groups", json!({"name": "経理部"}))
            .await
            .status,
        201
    );

    // Groups: the PEP sends none; the directory's membership satisfies the rule.
    let keiri = |user: &str| {
        json!({"app": "keiri", "authenticated": true,
               "context": {"user": {"id": user}, "auth": {"mfa": true}}})
    };
    let r = decide(a, keiri("tanaka")).await;
    assert_eq!(r.json()["decision"], "deny", "not a member yet");
    let r = admin(
        a,
        "POST",
        "/v1/admin/groups/%E7%B5%8C%E7%90%86%E9%83%A8/members",
        json!({"user": "tanaka"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["members"], json!(["tanaka"]));
    assert_eq!(decide(a, keiri("tanaka")).await.json()["decision"], "allow");
    assert_eq!(decide(a, keiri("suzuki")).await.json()["decision"], "deny");

    // Devices: a registered device's latest posture fills what the PEP did not send.
    let r = admin(
        a,
        "POST",
        "/v1/admin/devices",
        json!({"id": "PC-0042", "owner": "tanaka"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin(
        a,
        "PUT",
        "/v1/admin/devices/PC-0042/posture",
        json!({"os": {"family": "windows", "version": "10.0.22631"},
               "tpm": {"present": true, "enabled": true, "version": "2.0"},
               "disk": {"encrypted": true, "method": "bitlocker"},
               "screen_lock": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["posture"]["tpm"]["enabled"], true);

    let github = |user: &str, device: Value| {
        json!({"app": "github", "authenticated": true, "context": {
            "user": {"id": user}, "source": {"country": "JP"}, "device": device}})
    };
    let r = decide(a, github("tanaka", json!({"id": "PC-0042"}))).await;
    assert_eq!(r.json()["decision"], "allow", "{}", r.text());
    // What the PEP sent is kept.
    let r = decide(
        a,
        github(
            "tanaka",
            json!({"id": "PC-0042", "tpm": {"enabled": false}}),
        ),
    )
    .await;
    assert_eq!(r.json()["decision"], "deny");
    // Someone else's device is not theirs: not registered, no posture.
    let kintai = |user: &str| {
        json!({"app": "kintai", "pep": "tunnel", "authenticated": true, "context": {
            "user": {"id": user}, "device": {"id": "PC-0042"}}})
    };
    assert_eq!(
        decide(a, kintai("tanaka")).await.json()["decision"],
        "allow"
    );
    let r = decide(a, kintai("suzuki")).await.json();
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["reasons"][0]["attribute"], "device.registered");
    // A PEP cannot claim registration for an unknown device.
    let r = decide(
        a,
        json!({"app": "kintai", "authenticated": true, "context": {
            "user": {"id": "tanaka"}, "device": {"id": "PC-9999", "registered": true, "screen_lock": true}}}),
    )
    .await;
    assert_eq!(r.json()["decision"], "deny");

    // A disabled user is denied everywhere, at once.
    let r = admin(a, "POST", "/v1/admin/users/tanaka/disable", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = decide(a, keiri("tanaka")).await.json();
    assert_eq!(r["decision"], "deny");
    assert_eq!(codes(&r), vec!["user.disabled"]);
    admin(a, "POST", "/v1/admin/users/tanaka/enable", json!({})).await;
    assert_eq!(decide(a, keiri("tanaka")).await.json()["decision"], "allow");

    // Removing the membership takes effect at once too.
    let r = request(
        a,
        "DELETE",
        "/v1/admin/groups/%E7%B5%8C%E7%90%86%E9%83%A8/members/tanaka",
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(decide(a, keiri("tanaka")).await.json()["decision"], "deny");

    // The directory lists what was made.
    let users = admin_get(a, "/v1/admin/users").await.json();
    assert_eq!(users["users"].as_array().unwrap().len(), 2);
    let devices = admin_get(a, "/v1/admin/devices").await.json();
    assert_eq!(devices["devices"][0]["owner"], "tanaka");
    let apps = admin_get(a, "/v1/admin/apps").await.json();
    let names: Vec<&str> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["github", "internet", "keiri", "kintai"]);
    assert_eq!(apps["apps"][0]["mode"], "saml");
    assert!(apps["apps"][0]["require"]["rule"]
        .as_str()
        .unwrap()
        .contains("source.country == \"JP\""));
    assert!(!apps["apps"][0]["require"]["japanese"]
        .as_str()
        .unwrap()
        .is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_app_is_404_and_nothing_is_stored() {
    let dir = TempDir::new("unknown");
    let s = start(dir.path()).await;
    let r = decide(s.addr(), json!({"app": "jira", "authenticated": true})).await;
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["error"], "unknown_app");
    assert_eq!(v["field"], "app");
    assert!(v["message"].as_str().unwrap().contains("jira"));
    // One unknown app in a batch refuses the whole batch.
    let r = decide(
        s.addr(),
        json!({"requests": [{"app": "github", "authenticated": true}, {"app": "jira", "authenticated": true}]}),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["field"], "requests[1].app");
    assert!(all_records(&s).await.is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_clear_4xx_and_nothing_is_stored() {
    let dir = TempDir::new("malformed");
    let mut c = config(dir.path());
    c.max_body_bytes = 64 * 1024;
    let s = start_with(c).await;
    let a = s.addr();

    let r = post_json(a, "/v1/decide", &json!(null)).await;
    assert_eq!(r.status, 400);
    let r = request(a, "POST", "/v1/decide", &[], Some(b"{\"app\": ".to_vec())).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    let r = request(a, "POST", "/v1/decide", &[], Some(b"{} {}".to_vec())).await;
    assert_eq!(r.status, 400, "trailing data");
    // Not UTF-8 (a Shift_JIS "日本" inside a string): refused, saying where.
    let sjis = b"{\"app\": \"github\", \"authenticated\": true, \"context\": {\"user\": {\"id\": \"\x93\xfa\x96\x7b\"}}}";
    let r = request(a, "POST", "/v1/decide", &[], Some(sjis.to_vec())).await;
    assert_eq!(r.status, 400, "not UTF-8");
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("not UTF-8 (at byte 69)"), "{message}");

    let cases = [
        (
            json!({"app": "github", "authenticated": true, "colour": 1}),
            "colour",
        ),
        (
            json!({"app": "github", "authenticated": true, "context": {"device": {"tmp": {}}}}),
            "context.device",
        ),
        (
            json!({"app": "github", "authenticated": true, "context": {"auth": {"mfa": "yes"}}}),
            "context.auth.mfa",
        ),
        (
            json!({"app": "github", "authenticated": true, "context": {"device": {"os": {"version": "ten"}}}}),
            "context.device.os.version",
        ),
        (
            json!({"app": "github", "authenticated": true, "context": {"source": {"country": "XX"}}}),
            "context.source.country",
        ),
        (
            json!({"app": "github", "authenticated": "yes"}),
            "authenticated",
        ),
        (json!({"app": "github"}), "authenticated"),
        (json!({"authenticated": true}), "app"),
        (json!({"app": 7, "authenticated": true}), "app"),
        (
            json!({"app": "github", "pep": "ftp", "authenticated": true}),
            "pep",
        ),
        (
            json!({"requests": [{"app": "github", "authenticated": true, "context": {"risk": {"score": 2}}}]}),
            "requests[0].context.risk.score",
        ),
        (json!({"requests": []}), "requests"),
        (
            json!({"app": "github", "authenticated": true, "requests": []}),
            "requests",
        ),
    ];
    for (body, field) in cases {
        let r = decide(a, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let v = r.json();
        let got = v["field"].as_str().unwrap_or_default();
        assert!(
            got.starts_with(field),
            "{body}: field {got:?}, want {field:?}"
        );
        assert!(!v["message"].as_str().unwrap().is_empty());
    }

    // Oversized bodies: with and without a Content-Length that says so up front.
    let big = format!(
        "{{\"app\":\"github\",\"authenticated\":true,\"context\":{{\"user\":{{\"id\":\"{}\"}}}}}}",
        "x".repeat(100 * 1024)
    );
    let r = request(a, "POST", "/v1/decide", &[], Some(big.into_bytes())).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "body_too_large");

    // A chunked body with no length up front is cut off at the limit too.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(a).await.unwrap();
        let chunk = "x".repeat(16 * 1024);
        let req = chunked_decide(&[chunk.as_bytes(); 6], "");
        sock.write_all(&req).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }

    // Admin bodies are checked the same way, and nothing is created.
    let r = admin(
        a,
        "POST",
        "/v1/admin/users",
        json!({"id": "x", "email": "x@example.co.jp", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "role");
    let r = admin(
        a,
        "POST",
        "/v1/admin/users",
        json!({"id": "x", "email": "x@example.co.jp", "password": "short"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = admin(
        a,
        "PUT",
        "/v1/admin/devices/PC-1/posture",
        json!({"tpm": {"enabled": "yes"}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "tpm.enabled");

    assert!(all_records(&s).await.is_empty());
    let users = with_store(&s, |st| st.list_users()).await;
    assert!(users.is_empty());
    s.shutdown().await.unwrap();
}

/// A raw `POST /v1/decide` with a chunked body, one chunk per part.
fn chunked_decide(parts: &[&[u8]], extra_headers: &str) -> Vec<u8> {
    let mut req = format!(
        "POST /v1/decide HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n{extra_headers}\r\n"
    )
    .into_bytes();
    for part in parts {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

#[tokio::test]
async fn a_body_in_several_chunks_is_read_whole() {
    // Split inside keys and values; the decision and its record are as usual.
    let dir = TempDir::new("chunked");
    let s = start_with(config(dir.path())).await;
    let a = s.addr();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(a).await.unwrap();
    let body = br#"{"app":"github","authenticated":true,"context":{"user":{"id":"tanaka"}}}"#;
    let req = chunked_decide(
        &[&body[..5], &body[5..40], &body[40..]],
        "connection: close\r\n",
    );
    sock.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"decision_id\""), "{answer}");
    assert_eq!(all_records(&s).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_log_endpoints_need_the_admin_token() {
    let dir = TempDir::new("auth");
    let s = start(dir.path()).await;
    let a = s.addr();
    let body = json!({"id": "mallory", "email": "m@example.co.jp"})
        .to_string()
        .into_bytes();
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic dGVzdDp0ZXN0"),
        Some("Bearer "),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|v| ("authorization", *v)).collect();
        for (method, path, body) in [
            ("POST", "/v1/admin/users", Some(body.clone())),
            ("GET", "/v1/admin/users", None),
            ("GET", "/v1/logs", None),
            ("GET", "/v1/logs/export", None),
        ] {
            let r = request(a, method, path, &headers, body).await;
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}");
            assert_eq!(r.json()["error"], "unauthorized");
            assert!(r.header("www-authenticate").is_some());
            assert_eq!(
                r.header("www-authenticate").as_deref(),
                Some("Bearer realm=\"rzts-admin\"")
            );
        }
    }
    let users = with_store(&s, |st| st.list_users()).await;
    assert!(users.is_empty());
    // The right token works.
    assert_eq!(admin_get(a, "/v1/admin/users").await.status, 200);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_query_and_json_lines_export() {
    let dir = TempDir::new("logs");
    let s = start(dir.path()).await;
    let a = s.addr();
    for (user, app) in [("sato", "github"), ("sato", "keiri"), ("ito", "github")] {
        let r = decide(
            a,
            json!({"app": app, "authenticated": true, "context": {"user": {"id": user}}}),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let v = admin_get(a, "/v1/logs?user=sato").await.json();
    assert_eq!(v["records"].as_array().unwrap().len(), 2);
    let v = admin_get(a, "/v1/logs?target=github&decision=deny&limit=1")
        .await
        .json();
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    let v = admin_get(a, "/v1/logs?since=2999-01-01T00:00:00Z")
        .await
        .json();
    assert!(v["records"].as_array().unwrap().is_empty());
    assert_eq!(admin_get(a, "/v1/logs?decision=maybe").await.status, 400);
    assert_eq!(admin_get(a, "/v1/logs?since=yesterday").await.status, 400);
    assert_eq!(admin_get(a, "/v1/logs?usr=sato").await.status, 400);

    let r = admin_get(a, "/v1/logs/export").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").unwrap(), "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|l| l["decision_id"].as_str().unwrap().len() == 26));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_is_signed_versioned_and_cacheable() {
    let dir = TempDir::new("bundle");
    let s = start(dir.path()).await;
    let a = s.addr();
    let key: pdp_server::bundle::PublicKeyInfo =
        serde_json::from_slice(&get(a, "/v1/bundle/key").await.body).unwrap();
    let key = key.key().unwrap();

    let r = get(a, "/v1/bundle").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag").as_deref(), Some("\"1\""));
    let b = pdp_server::bundle::verify_bundle(&r.body, &key).unwrap();
    assert_eq!(b.version, 1);
    assert_eq!(b.timezone, "Asia/Tokyo");
    let rules = b.rules().unwrap();
    assert_eq!(rules.apps.len(), 4);
    // The PEP decides locally with the same answer as the server.
    let mut ctx = github_ok_context();
    ctx["risk"] = json!({"suspicious": false});
    let ctx = policy_core::context::Request::from_json(&ctx.to_string()).unwrap();
    let local = rules
        .decide(
            "github",
            &ctx,
            policy_core::decision::Authentication::Authenticated,
        )
        .unwrap();
    assert_eq!(local.effect, policy_core::decision::Effect::Allow);

    // Tampering with anything signed is detected.
    let mut wire: Value = r.json();
    wire["lock"] = json!(wire["lock"]
        .as_str()
        .unwrap()
        .replace(
            "source.country == \\\"JP\\\"",
            "source.country == \\\"US\\\""
        )
        .replace("\"JP\"", "\"US\""));
    let tampered = wire.to_string();
    assert!(pdp_server::bundle::verify_bundle(tampered.as_bytes(), &key).is_err());
    let mut wire: Value = r.json();
    wire["version"] = json!(99);
    assert!(pdp_server::bundle::verify_bundle(wire.to_string().as_bytes(), &key).is_err());

    let r = request(a, "GET", "/v1/bundle", &[("if-none-match", "\"1\"")], None).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag").as_deref(), Some("\"1\""));
    assert!(r.body.is_empty());
    let r = request(a, "GET", "/v1/bundle", &[("if-none-match", "\"0\"")], None).await;
    assert_eq!(r.status, 200);
    // A long poll with nothing new ends in 304 when its time is up.
    let t = std::time::Instant::now();
    let r = request(
        a,
        "GET",
        "/v1/bundle?wait=1",
        &[("if-none-match", "\"1\"")],
        None,
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(t.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(get(a, "/v1/bundle?wait=9999").await.status, 400);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status() {
    let dir = TempDir::new("metrics");
    let s = start(dir.path()).await;
    let a = s.addr();
    decide(
        a,
        json!({"app": "github", "authenticated": true, "context": github_ok_context()}),
    )
    .await;
    decide(a, json!({"app": "github", "authenticated": false})).await;
    decide(a, json!({"app": "nope", "authenticated": false})).await;
    let r = get(a, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let m = r.text();
    for needle in [
        "rzts_decisions_total{decision=\"allow\"} 1",
        "rzts_decisions_total{decision=\"deny\"} 1",
        "# TYPE rzts_decision_latency_seconds histogram",
        "rzts_decision_latency_seconds_count 2",
        "# TYPE rzts_log_batch_size histogram",
        "rzts_log_records_total 2",
        "rzts_reload_errors_total 0",
        "rzts_bundle_version 1",
        "rzts_http_responses_total{class=\"4xx\"} 1",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    let st = get(a, "/v1/status").await.json();
    assert_eq!(st["status"], "ok");
    assert_eq!(st["policy"]["bundle_version"], 1);
    assert_eq!(st["policy"]["apps"], 4);
    assert!(st["policy"]["error"].is_null());
    assert_eq!(get(a, "/healthz").await.status, 200);
    assert_eq!(get(a, "/v1/nothing").await.status, 404);
    assert_eq!(get(a, "/v1/decide").await.status, 405);
    s.shutdown().await.unwrap();
}

/// A minimal SMTP sink: answers every command and hands over each message.
async fn smtp_sink() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<String>, String)>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink ESMTP\r\n").await.ok()?;
                let (mut line, mut data, mut rcpt) = (String::new(), String::new(), Vec::new());
                let mut in_data = false;
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.ok()? == 0 {
                        return Some(());
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            let _ = tx.send((std::mem::take(&mut rcpt), std::mem::take(&mut data)));
                            w.write_all(b"250 queued\r\n").await.ok()?;
                        } else {
                            data.push_str(&line);
                        }
                        continue;
                    }
                    let up = line.to_ascii_uppercase();
                    let reply: &[u8] = if up.starts_with("EHLO") || up.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if up.starts_with("RCPT TO:") {
                        rcpt.push(line[8..].trim().to_string());
                        b"250 ok\r\n"
                    } else if up.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if up.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok()?;
                        return Some(());
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.ok()?;
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspicious_access_sets_risk_for_its_own_decision_and_mails_an_alert() {
    let dir = TempDir::new("suspicious");
    let (smtp, mut mails) = smtp_sink().await;
    let mut c = config(dir.path());
    let mut mail =
        pdp_server::alert::SmtpConfig::new("127.0.0.1", smtp.port(), "rzts@example.co.jp");
    mail.admins = vec!["security@example.co.jp".into()];
    c.smtp = Some(mail);
    let s = start_with(c).await;
    let a = s.addr();
    admin(
        a,
        "POST",
        "/v1/admin/users",
        json!({"id": "yamada", "email": "yamada@example.co.jp"}),
    )
    .await;
    let access = |country: &str, device: &str| {
        json!({"app": "github", "authenticated": true, "context": {
            "user": {"id": "yamada"}, "source": {"country": country},
            "device": {"id": device, "tpm": {"enabled": true}, "disk": {"encrypted": true, "method": "bitlocker"}}}})
    };
    for _ in 0..3 {
        let v = decide(a, access("JP", "PC-1")).await.json();
        assert_eq!(v["decision"], "allow", "{v}");
        assert_eq!(v["risk"]["suspicious"], false);
    }
    // Minutes later from the United States on another device: impossible travel.
    let r = decide(a, access("US", "PC-2")).await;
    let v = r.json();
    assert_eq!(v["risk"]["suspicious"], true, "{v}");
    let found: Vec<&str> = v["risk"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(found.contains(&"impossible_travel"), "{found:?}");
    // The 拒否条件 「不審なアクセスと判定されていること」 sees it in the same decision.
    assert_eq!(v["decision"], "deny");
    assert!(codes(&v).contains(&"deny.matched".to_string()), "{v}");
    let id = v["decision_id"].as_str().unwrap().to_string();

    let (rcpt, message) = tokio::time::timeout(std::time::Duration::from_secs(20), mails.recv())
        .await
        .expect("alert mail in time")
        .unwrap();
    assert!(
        rcpt.iter().any(|r| r.contains("yamada@example.co.jp")),
        "{rcpt:?}"
    );
    assert!(
        rcpt.iter().any(|r| r.contains("security@example.co.jp")),
        "{rcpt:?}"
    );
    assert!(message.contains(&id), "decision id in the mail");
    let rec = all_records(&s)
        .await
        .into_iter()
        .find(|r| r.decision_id == id)
        .unwrap();
    assert!(rec.anomalies.contains(&"impossible_travel".to_string()));
    assert!(get(a, "/metrics")
        .await
        .text()
        .contains("rzts_suspicious_total 1"));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspicious_access_is_blocked_when_configured() {
    let dir = TempDir::new("block");
    let mut c = config(dir.path());
    c.detector.block_when_suspicious = true;
    let s = start_with(c).await;
    let a = s.addr();
    let access = |country: &str| {
        json!({"app": "keiri", "authenticated": true, "context": {
            "user": {"id": "kato"}, "source": {"country": country}, "auth": {"mfa": true}}})
    };
    decide(a, access("JP")).await;
    let v = decide(a, access("BR")).await.json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(codes(&v), vec!["risk.blocked"]);
    assert!(v["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("不審なアクセス"));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_country_comes_from_the_geoip_database() {
    use maxminddb_writer::metadata::IpVersion;
    let dir = TempDir::new("geoip");
    let mut db = maxminddb_writer::Database::default();
    db.metadata.ip_version = IpVersion::V4;
    db.metadata.database_type = "geo-whois-asn-country".into();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    for (cidr, cc) in [("203.0.113.0/24", "JP"), ("198.51.100.0/24", "US")] {
        let mut rec = std::collections::BTreeMap::new();
        rec.insert("country_code", cc);
        let data = db.insert_value(rec).unwrap();
        let net: maxminddb_writer::paths::IpAddrWithMask = cidr.parse().unwrap();
        db.insert_node(net, data);
    }
    let mmdb = dir.path().join("country.mmdb");
    std::fs::write(&mmdb, db.write_to(Vec::new()).unwrap()).unwrap();
    let mut c = config(dir.path());
    c.geoip = Some(mmdb);
    let s = start_with(c).await;
    let access = |ip: &str| {
        json!({"app": "github", "authenticated": true, "context": {
            "user": {"id": "endo"}, "source": {"ip": ip},
            "device": {"tpm": {"enabled": true}, "disk": {"encrypted": true, "method": "bitlocker"}}}})
    };
    let v = decide(s.addr(), access("203.0.113.7")).await.json();
    assert_eq!(v["decision"], "allow", "{v}");
    // A country the PEP sent is kept.
    let mut sent = access("203.0.113.7");
    sent["context"]["source"]["country"] = json!("US");
    assert_eq!(decide(s.addr(), sent).await.json()["decision"], "deny");
    let records = all_records(&s).await;
    assert!(records.iter().any(|r| r.country.as_deref() == Some("JP")));
    assert!(records.iter().any(|r| r.country.as_deref() == Some("US")));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrolment_stores_a_working_secret() {
    let dir = TempDir::new("totp");
    let s = start(dir.path()).await;
    let a = s.addr();
    let r = admin(
        a,
        "POST",
        "/v1/admin/users",
        json!({"id": "tanaka", "email": "t@example.co.jp"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin(a, "POST", "/v1/admin/users/tanaka/totp", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(v["otpauth_url"]
        .as_str()
        .unwrap()
        .contains(&format!("secret={secret}")));
    // The stored secret is the one handed out, and codes from it verify.
    let user = with_store(&s, |st| st.get_user("tanaka")).await.unwrap();
    assert_eq!(user.totp_secret.as_deref(), Some(secret.as_str()));
    let bytes = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
    let t = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap();
    let now = 1_900_000_000;
    assert!(pdp_server::totp::verify(&secret, &t.generate(now), now));
    // The secret never leaves through the user listing.
    let r = admin_get(a, "/v1/admin/users/tanaka").await;
    assert!(!r.text().contains(&secret), "{}", r.text());
    // Unknown users are 404; removal clears it.
    assert_eq!(
        admin(a, "POST", "/v1/admin/users/nobody/totp", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        admin(a, "DELETE", "/v1/admin/users/tanaka/totp", json!({}))
            .await
            .status,
        200
    );
    let user = with_store(&s, |st| st.get_user("tanaka")).await.unwrap();
    assert_eq!(user.totp_secret, None);
    s.shutdown().await.unwrap();
}
