//! End to end against a real decision server (started in-process on 127.0.0.1:0
//! with a temporary SQLite store): enrolment with one-time codes, signed reports
//! merged into decisions, forged / replayed / other-device / tampered / stale
//! reports refused with nothing stored, and the attestation round trip through the
//! agent's loopback endpoint.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use pdp_server::config::ServerConfig;
use pdp_server::model::NewEnrollment;
use pdp_server::server::{RunningServer, Server};
use policy_core::device::{signature_header, Report, SIGNATURE_HEADER};
use rzts_device_agent::posture::Posture;
use rzts_device_agent::state::{AgentConfig, StateDir};
use rzts_device_agent::{attest, enroll, report, AgentError};
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "agent-test-admin-token-0123456789";

const POLICY: &str = r#"
timezone = "Asia/Tokyo"

[apps.github]
mode = "saml"
require = "アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること"

[apps.kintai]
mode = "tunnel"
require = "登録済みのデバイスからのアクセスであり、画面ロックが設定されていること"
"#;

async fn start(dir: &Path) -> RunningServer {
    let mut c = ServerConfig::embedded_default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.join("data");
    c.policy = dir.join("policies.toml");
    c.store = Some(format!("sqlite:{}", dir.join("rzts.db").display()));
    c.admin_token = Some(ADMIN_TOKEN.into());
    c.cache_ttl_ms = 0;
    std::fs::write(&c.policy, POLICY).unwrap();
    Server::start(c).await.expect("server starts")
}

/// A server with user `tanaka`, and an agent (state in `dir/agent`) enrolled as
/// `device` of tanaka's.
async fn enrolled(dir: &Path, device: &str) -> (RunningServer, Http, StateDir, AgentConfig) {
    let server = start(dir).await;
    let http = Http::new(&server);
    http.user("tanaka").await;
    let agent = StateDir::new(dir.join("agent"));
    let code = http.code("tanaka", Some(device)).await;
    let cfg = enroll::enroll(&agent, &server.url(), &code, false)
        .await
        .unwrap();
    assert_eq!(cfg.device_id, device);
    (server, http, agent, cfg)
}

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(server: &RunningServer) -> Http {
        Http {
            base: server.url(),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.expect("response");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>, sig: Option<String>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = sig {
            req = req.header(SIGNATURE_HEADER, s);
        }
        self.send(req).await
    }

    async fn user(&self, id: &str) {
        let (s, b) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/users",
                json!({"id": id, "email": format!("{id}@example.co.jp")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }

    async fn code(&self, owner: &str, id: Option<&str>) -> String {
        let (s, b) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/devices/enroll",
                json!({"owner": owner, "id": id, "ttl_minutes": 10}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["code"].as_str().unwrap().to_string()
    }

    async fn posture(&self, device: &str) -> Value {
        let (s, b) = self
            .admin(
                reqwest::Method::GET,
                &format!("/v1/admin/devices/{device}"),
                Value::Null,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["posture"].clone()
    }

    async fn decide(&self, app: &str, user: &str, device: &str) -> Value {
        let (s, b) = self
            .post(
                "/v1/decide",
                json!({"app": app, "authenticated": true, "context": {
                    "user": {"id": user}, "source": {"country": "JP"}, "device": {"id": device}}}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }
}

fn posture(json: Value) -> Posture {
    serde_json::from_value(json).unwrap()
}

fn windows_posture(encrypted: bool) -> Posture {
    posture(json!({
        "os": {"family": "windows", "name": "Windows 11 Pro", "version": "10.0.22631"},
        "tpm": {"present": true, "enabled": true, "version": "2.0"},
        "disk": {"encrypted": encrypted, "method": "bitlocker"},
        "screen_lock": true
    }))
}

fn signed(report: &Report, key: &SigningKey) -> (Vec<u8>, String) {
    let s = report::sign(report, key).unwrap();
    (s.body, s.signature)
}

fn refused(e: AgentError) -> (u16, String) {
    match e {
        AgentError::Refused { status, code, .. } => (status, code),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_codes_are_single_use_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(&server);
    http.user("tanaka").await;

    // The admin route needs the admin token; unknown owners are refused.
    let (s, _) = http
        .post("/v1/admin/devices/enroll", json!({"owner": "tanaka"}))
        .await;
    assert_eq!(s, 401);
    let (s, _) = http
        .admin(
            reqwest::Method::POST,
            "/v1/admin/devices/enroll",
            json!({"owner": "nobody"}),
        )
        .await;
    assert_eq!(s, 404);

    let code = http.code("tanaka", None).await;
    let a = StateDir::new(dir.path().join("agent-a"));
    let c = enroll::enroll(&a, &server.url(), &code, false)
        .await
        .unwrap();
    assert!(c.device_id.starts_with("DEV-"), "{}", c.device_id);
    assert_eq!(c.owner, "tanaka");
    assert_eq!(c.attestation_origins, vec![server.url()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in ["device.key", "agent.toml", "sequence"] {
            let m = std::fs::metadata(a.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{f}");
        }
    }
    // Enrolled already: refused locally without --force.
    assert!(matches!(
        enroll::enroll(&a, &server.url(), &code, false).await,
        Err(AgentError::State(_))
    ));

    // Reused code: 409, nothing saved on the device.
    let b = StateDir::new(dir.path().join("agent-b"));
    let e = enroll::enroll(&b, &server.url(), &code, false)
        .await
        .unwrap_err();
    assert_eq!(refused(e), (409, "code_used".into()));
    assert!(!b.is_enrolled());
    // Guessed code: 401.
    let e = enroll::enroll(
        &b,
        &server.url(),
        "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH",
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(refused(e), (401, "invalid_code".into()));
    // Expired code: 401, and it stays unused (still expired on retry).
    let store = server.store();
    let (expired, hash) = pdp_server::devices::new_enrollment_code().unwrap();
    let now = chrono::Utc::now();
    tokio::task::spawn_blocking(move || {
        store.create_enrollment(&NewEnrollment {
            code_sha256: hash,
            owner: "tanaka".into(),
            device_id: None,
            created_at: now - chrono::TimeDelta::hours(2),
            expires_at: now - chrono::TimeDelta::hours(1),
        })
    })
    .await
    .unwrap()
    .unwrap();
    for _ in 0..2 {
        let e = enroll::enroll(&b, &server.url(), &expired, false)
            .await
            .unwrap_err();
        assert_eq!(refused(e), (401, "code_expired".into()));
    }
    // A malformed public key is refused before the code is consumed.
    let code = http.code("tanaka", Some("PC-7")).await;
    let (s, body) = http
        .post(
            "/v1/devices/enroll",
            json!({"code": code, "public_key": "AAAA"}),
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (400, Some("public_key")));
    // The code is still good, typed in lower case with spaces.
    let typed = code.to_lowercase().replace('-', " ");
    let c = enroll::enroll(&b, &server.url(), &typed, false)
        .await
        .unwrap();
    assert_eq!(c.device_id, "PC-7");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_reports_reach_decisions_and_forgeries_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http, a, _) = enrolled(dir.path(), "PC-0042").await;
    http.user("suzuki").await;
    let key = a.load_key().unwrap();

    // Registered, but nothing reported yet: the posture is unknown, so deny.
    let d = http.decide("github", "tanaka", "PC-0042").await;
    assert_eq!(d["decision"], "deny", "{d}");

    // A signed report: the posture is merged into decisions.
    let ok = report::report_once(&a, &windows_posture(true))
        .await
        .unwrap();
    assert_eq!((ok.device_id.as_str(), ok.seq), ("PC-0042", 1));
    let d = http.decide("github", "tanaka", "PC-0042").await;
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(
        http.decide("kintai", "tanaka", "PC-0042").await["decision"],
        "allow"
    );
    // Only for its owner: suzuki's request with tanaka's device is not registered.
    assert_eq!(
        http.decide("kintai", "suzuki", "PC-0042").await["decision"],
        "deny"
    );
    let stored = http.posture("PC-0042").await;
    assert_eq!(stored["disk"]["method"], "bitlocker");

    let report_of = |seq: u64, device: &str, p: Posture| Report {
        device_id: device.to_string(),
        seq,
        time: chrono::Utc::now(),
        posture: p,
    };
    let path = "/v1/devices/PC-0042/report";

    // Forged: another key signs a report for PC-0042.
    let forger = SigningKey::from_bytes(&[9u8; 32]);
    let (body, sig) = signed(&report_of(100, "PC-0042", windows_posture(false)), &forger);
    let (s, b) = http.post_raw(path, body, Some(sig)).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("bad_signature")));

    // Replayed: the same signed bytes twice.
    let (body, sig) = signed(&report_of(2, "PC-0042", windows_posture(true)), &key);
    let (s, b) = http.post_raw(path, body.clone(), Some(sig.clone())).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = http.post_raw(path, body, Some(sig)).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("replayed_report")));
    // An older sequence number with a fresh signature is a replay too.
    let (body, sig) = signed(&report_of(1, "PC-0042", windows_posture(false)), &key);
    let (s, _) = http.post_raw(path, body, Some(sig)).await;
    assert_eq!(s, 409);

    // Tampered: a valid report with one byte changed after signing.
    let (body, sig) = signed(&report_of(3, "PC-0042", windows_posture(true)), &key);
    let text = String::from_utf8(body.clone()).unwrap();
    let tampered = text.replace("\"encrypted\":true", "\"encrypted\":false");
    assert_ne!(text, tampered);
    let (s, b) = http
        .post_raw(path, tampered.into_bytes(), Some(sig.clone()))
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("bad_signature")));
    // ... and it consumed nothing: the genuine seq 3 is still accepted.
    let (s, b) = http.post_raw(path, body, Some(sig)).await;
    assert_eq!(s, 200, "{b}");

    // Missing or foreign signature scheme.
    let (body, _) = signed(&report_of(4, "PC-0042", windows_posture(false)), &key);
    let (s, b) = http.post_raw(path, body.clone(), None).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("missing_signature")));
    let (s, _) = http
        .post_raw(path, body, Some("rsa=AAAA".to_string()))
        .await;
    assert_eq!(s, 401);

    // Stale: a correctly signed report from an hour ago.
    let mut old = report_of(5, "PC-0042", windows_posture(false));
    old.time = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let (body, sig) = signed(&old, &key);
    let (s, b) = http.post_raw(path, body, Some(sig)).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("stale_report")));

    // Other device: suzuki's enrolled agent (the real binary, which also sends
    // this machine's real posture) tries to report for PC-0042.
    let code = http.code("suzuki", Some("PC-0043")).await;
    let b_dir = dir.path().join("agent-b");
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("rzts-agent")
            .unwrap()
            .args([
                "--state-dir",
                b_dir.to_str().unwrap(),
                "enroll",
                "--server",
                &url,
                "--code",
                &code,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PC-0043"));
    let linux = http.posture("PC-0043").await;
    assert_eq!(
        linux["os"]["family"], "linux",
        "the first report arrived: {linux}"
    );
    let b_key = StateDir::new(dir.path().join("agent-b"))
        .load_key()
        .unwrap();
    // Its own key over a report naming PC-0042: wrong key for PC-0042 ...
    let (body, sig) = signed(&report_of(50, "PC-0042", windows_posture(false)), &b_key);
    let (s, _) = http.post_raw(path, body.clone(), Some(sig.clone())).await;
    assert_eq!(s, 401);
    // ... and at its own path the body names another device.
    let (s, b) = http
        .post_raw("/v1/devices/PC-0043/report", body, Some(sig))
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("device_mismatch")));
    // Unknown device.
    let (body, sig) = signed(&report_of(1, "PC-9", windows_posture(false)), &key);
    let (s, b) = http
        .post_raw("/v1/devices/PC-9/report", body, Some(sig))
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("unknown_device")));

    // Nothing of the refused reports was stored.
    assert_eq!(http.posture("PC-0042").await, stored);
    assert_eq!(
        http.decide("github", "tanaka", "PC-0042").await["decision"],
        "allow"
    );

    // The hand-made reports above used sequence numbers behind the agent's back:
    // move its counter past them.
    while a.next_seq().unwrap() < 10 {}
    // A genuine report that the disk is no longer encrypted flips the decision.
    report::report_once(&a, &windows_posture(false))
        .await
        .unwrap();
    let d = http.decide("github", "tanaka", "PC-0042").await;
    assert_eq!(d["decision"], "deny", "{d}");
    assert_eq!(http.posture("PC-0042").await["disk"]["encrypted"], false);
    // The report cannot make a device registered or rename it.
    let mut claims = windows_posture(true);
    claims.id = Some("PC-0043".into());
    claims.registered = Some(true);
    report::report_once(&a, &claims).await.unwrap();
    let p = http.posture("PC-0042").await;
    assert!(
        p.get("id").is_none() && p.get("registered").is_none(),
        "{p}"
    );

    // Removing the device removes its key: its reports are refused.
    let (s, _) = http
        .admin(
            reqwest::Method::DELETE,
            "/v1/admin/devices/PC-0042",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let e = report::report_once(&a, &windows_posture(true))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (401, "unknown_device".into()));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_reports_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http, a, _) = enrolled(dir.path(), "PC-RUN").await;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rzts-agent"))
        .args([
            "--state-dir",
            a.path().to_str().unwrap(),
            "run",
            "--no-attest",
            "--interval",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = false;
    for _ in 0..200 {
        if http.posture("PC-RUN").await["os"]["family"] == "linux" {
            reported = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(reported, "rzts-agent run reported the posture");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http, a, cfg) = enrolled(dir.path(), "PC-0042").await;
    let origin = server.url();

    // The agent's loopback endpoint.
    let listener = attest::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert!(attest::bind("0.0.0.0:0".parse().unwrap()).await.is_err());
    let agent = format!("http://{}{}", listener.local_addr().unwrap(), attest::PATH);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(attest::serve(
        listener,
        Arc::new(attest::Attester {
            device_id: cfg.device_id.clone(),
            key: a.load_key().unwrap(),
            origins: cfg.attestation_origins.clone(),
        }),
        stopped,
    ));
    let client = reqwest::Client::new();
    let challenge = || async {
        let (s, b) = http.post("/v1/devices/attest/challenge", Value::Null).await;
        assert_eq!(s, 201, "{b}");
        b["challenge"].as_str().unwrap().to_string()
    };
    let ask = |origin: Option<&str>, challenge: &str| {
        let mut r = client.post(&agent).json(&json!({"challenge": challenge}));
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };

    // CORS preflight with Private Network Access.
    let r = client
        .request(reqwest::Method::OPTIONS, &agent)
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-private-network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], origin.as_str());
    assert_eq!(h["access-control-allow-private-network"], "true");
    assert_eq!(h["access-control-allow-methods"], "POST");
    let r = client
        .request(reqwest::Method::OPTIONS, &agent)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Wrong or missing origin: 403, nothing signed.
    let c = challenge().await;
    for o in [Some("https://evil.example"), None] {
        let r = ask(o, &c).await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(!r.text().await.unwrap().contains("signature"));
    }
    // A challenge that is not base64url is refused.
    assert_eq!(ask(Some(&origin), "a\nb").await.unwrap().status(), 400);

    // The right origin: signed, and the server verifies it once.
    let r = ask(Some(&origin), &c).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], origin.as_str());
    let att: Value = r.json().await.unwrap();
    assert_eq!(att["device_id"], "PC-0042");
    let verify = |origin: &str, challenge: &str, signature: &str| {
        http.post(
            "/v1/devices/attest/verify",
            json!({"device_id": "PC-0042", "origin": origin, "challenge": challenge,
                   "signature": signature}),
        )
    };
    let sig = att["signature"].as_str().unwrap().to_string();
    // Presented for another origin, or tampered: refused (and not consumed).
    let (s, _) = verify("https://evil.example", &c, &sig).await;
    assert_eq!(s, 401);
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(&sig)
        .unwrap();
    raw[10] ^= 1;
    let bad = base64::engine::general_purpose::STANDARD.encode(raw);
    let (s, b) = verify(&origin, &c, &bad).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("attestation_refused")));
    let (s, b) = verify(&origin, &c, &sig).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["owner"], "tanaka");
    // Reused challenge: refused.
    let (s, _) = verify(&origin, &c, &sig).await;
    assert_eq!(s, 401);
    // A challenge the server never issued: refused even with a valid signature.
    let own = attest::Attester {
        device_id: "PC-0042".into(),
        key: a.load_key().unwrap(),
        origins: vec![origin.clone()],
    }
    .attest(&origin, "made-up-challenge");
    let (s, _) = verify(&origin, "made-up-challenge", &own.signature).await;
    assert_eq!(s, 401);
    // Another device's key cannot attest as PC-0042.
    let c2 = challenge().await;
    let forged = attest::Attester {
        device_id: "PC-0042".into(),
        key: SigningKey::from_bytes(&[3u8; 32]),
        origins: vec![origin.clone()],
    }
    .attest(&origin, &c2);
    let (s, _) = verify(&origin, &c2, &forged.signature).await;
    assert_eq!(s, 401);

    let _ = stop.send(true);
    serving.await.unwrap();
    // The header helper the agent uses matches what the server parses.
    assert!(signature_header("x").starts_with("ed25519="));
    server.shutdown().await.unwrap();
}
