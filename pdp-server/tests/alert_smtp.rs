//! Alert mail through a real SMTP server: `scripts/smtp_sink.py` (aiosmtpd) captures
//! each message; the assertions read what it received (envelope, decoded headers
//! and body, and the raw bytes).
//!
//! Needs `python3` with `aiosmtpd` (`python3 -m pip install aiosmtpd`). Without it
//! the tests print a SKIPPED line, or fail when `CI` is set. `PYTHON` overrides the
//! interpreter.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use pdp_server::alert::{send_alert, AlertError, SmtpConfig, SUBJECT};
use pdp_server::detector::{Detector, Observation};
use pdp_server::model::AccessRecord;
use policy_core::decision::Effect;
use serde_json::Value;

struct Sink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Starts the sink, or returns `None` (after a SKIPPED line) when python3 or
/// aiosmtpd is missing outside CI.
fn start_sink(name: &str, auth: Option<&str>) -> Option<Sink> {
    let ok = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!(
            "{} with aiosmtpd is needed for the SMTP alert tests: run `python3 -m pip install aiosmtpd`",
            python()
        );
        if std::env::var_os("CI").is_some() {
            panic!("CI is set and {msg}");
        }
        // Straight to stderr, past the test harness's output capture.
        let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {msg}");
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smtp-sink-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/smtp_sink.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg("--dir")
        .arg(&dir)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(a) = auth {
        cmd.args(["--auth", a]);
    }
    let mut child = cmd.spawn().expect("start scripts/smtp_sink.py");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut sink = Sink {
        child,
        dir,
        port: 0,
    };
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("smtp_sink.py did not start within 30 s");
    sink.port = line
        .trim()
        .strip_prefix("LISTENING ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from smtp_sink.py: {line:?}"));
    Some(sink)
}

/// The captured messages (decoded JSON and raw bytes), waiting up to 10 s for `n`.
fn captured(dir: &Path, n: usize) -> Vec<(Value, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut jsons: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        if jsons.len() >= n || Instant::now() > deadline {
            jsons.sort();
            return jsons
                .iter()
                .map(|p| {
                    let v: Value =
                        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                    let raw = std::fs::read(p.with_extension("eml")).unwrap();
                    (v, raw)
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn record() -> AccessRecord {
    AccessRecord {
        decision_id: "01JDQX7Z8K4M2N5P6R7S8T9V0W".into(),
        // 2026-11-24 10:15:00 JST
        time: Utc.with_ymd_and_hms(2026, 11, 24, 1, 15, 0).unwrap(),
        pep: "saml".into(),
        target: "github".into(),
        user: Some("tanaka".into()),
        device: Some("PC-9999".into()),
        decision: Effect::Deny,
        reasons: vec![policy_core::decision::Reason::new(
            "deny.matched",
            "拒否条件に該当",
        )],
        auth_method: Some("password".into()),
        source_ip: Some("203.0.113.7".into()),
        country: Some("US".into()),
        anomalies: vec![],
    }
}

/// A real assessment: Japan on PC-0042 half an hour ago, now the US on PC-9999.
fn assessment() -> pdp_server::detector::Assessment {
    let mut prev = record();
    prev.time -= chrono::Duration::minutes(30);
    prev.country = Some("JP".into());
    prev.device = Some("PC-0042".into());
    prev.decision = Effect::Allow;
    let r = record();
    let obs = Observation::new("tanaka", r.time)
        .with_country("US")
        .with_device("PC-9999");
    let a = Detector::default().assess(&obs, &[prev]);
    assert!(a.suspicious && a.findings.len() == 3, "{a:?}");
    a
}

fn config(port: u16) -> SmtpConfig {
    let mut cfg = SmtpConfig::new("127.0.0.1", port, "RZTS 通知 <rzts@example.co.jp>");
    cfg.admins = vec![
        "security@example.co.jp".into(),
        "helpdesk@example.co.jp".into(),
    ];
    cfg
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn alert_reaches_user_and_admins() {
    let Some(sink) = start_sink("alert_reaches_user_and_admins", None) else {
        return;
    };
    let a = assessment();
    let r = record();
    rt().block_on(send_alert(
        &config(sink.port),
        "Tanaka@Example.co.jp",
        &r,
        &a,
    ))
    .unwrap();

    let mails = captured(&sink.dir, 1);
    assert_eq!(mails.len(), 1, "exactly one message");
    let (m, raw) = &mails[0];
    // Envelope: the user and both administrators, each once.
    let mut rcpt: Vec<String> = m["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_ascii_lowercase())
        .collect();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "helpdesk@example.co.jp",
            "security@example.co.jp",
            "tanaka@example.co.jp"
        ]
    );
    assert_eq!(m["mail_from"], "rzts@example.co.jp");
    // Headers: To is the user; the administrators are Bcc, so not in the message.
    assert!(
        m["to"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("tanaka@example.co.jp"),
        "{}",
        m["to"]
    );
    assert!(m["cc"].is_null() && m["bcc"].is_null(), "{m}");
    let raw_text = String::from_utf8_lossy(raw);
    assert!(!raw_text.contains("security@example.co.jp"), "{raw_text}");
    assert!(
        m["headers"]["From"].as_str().unwrap().contains("RZTS 通知"),
        "{m}"
    );
    assert_eq!(m["headers"]["X-RZTS-Decision-Id"], r.decision_id.as_str());
    // The subject, decoded; on the wire it is RFC 2047 encoded ASCII.
    assert_eq!(m["subject"], SUBJECT);
    let subject_line = raw_text
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap();
    assert!(subject_line.is_ascii(), "{subject_line}");
    assert!(raw_text
        .lines()
        .take_while(|l| !l.is_empty())
        .all(|l| l.is_ascii()));
    // The body, decoded: UTF-8 plain text with what was seen and why.
    assert_eq!(m["headers"]["MIME-Version"], "1.0");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    let body = m["body"].as_str().unwrap();
    for f in &a.findings {
        assert!(
            body.contains(&f.message_ja),
            "missing {:?} in\n{body}",
            f.message_ja
        );
    }
    for want in [
        r.decision_id.as_str(),
        "2026年11月24日 10:15:00（日本時間）",
        "github",
        "203.0.113.7",
        "アメリカ合衆国（US）",
        "PC-9999",
        "tanaka",
        "これまでアクセスのなかった国（アメリカ合衆国）",
        "これまで使われたことのない端末（PC-9999）",
    ] {
        assert!(body.contains(want), "missing {want:?} in\n{body}");
    }
}

#[test]
fn alert_with_smtp_auth() {
    let Some(sink) = start_sink("alert_with_smtp_auth", Some("rzts:s3cret")) else {
        return;
    };
    let a = assessment();
    let r = record();
    let rt = rt();
    let mut cfg = config(sink.port);
    cfg.admins.clear();
    cfg.username = Some("rzts".into());
    cfg.password = Some("wrong".into());
    let t0 = Instant::now();
    let e = rt
        .block_on(send_alert(&cfg, "tanaka@example.co.jp", &r, &a))
        .unwrap_err();
    // Refused at once (535), not after a timeout.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(matches!(e, AlertError::Smtp { .. }), "{e}");
    cfg.password = Some("s3cret".into());
    rt.block_on(send_alert(&cfg, "tanaka@example.co.jp", &r, &a))
        .unwrap();
    let mails = captured(&sink.dir, 1);
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].0["rcpt_tos"],
        serde_json::json!(["tanaka@example.co.jp"])
    );
}

#[test]
fn admins_only_when_the_user_has_no_address() {
    let Some(sink) = start_sink("admins_only", None) else {
        return;
    };
    rt().block_on(send_alert(&config(sink.port), "", &record(), &assessment()))
        .unwrap();
    let mails = captured(&sink.dir, 1);
    let mut rcpt: Vec<&str> = mails[0].0["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    rcpt.sort();
    assert_eq!(rcpt, ["helpdesk@example.co.jp", "security@example.co.jp"]);
}

#[test]
fn unreachable_relay_is_an_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(port);
    cfg.timeout_secs = 3;
    let e = rt()
        .block_on(send_alert(
            &cfg,
            "tanaka@example.co.jp",
            &record(),
            &assessment(),
        ))
        .unwrap_err();
    assert!(matches!(e, AlertError::Smtp { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn silent_relay_times_out() {
    // Accepts the connection and never says a word (no 220 greeting).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(conn);
    });
    let mut cfg = config(port);
    cfg.timeout_secs = 1;
    let t0 = Instant::now();
    let e = rt()
        .block_on(send_alert(
            &cfg,
            "tanaka@example.co.jp",
            &record(),
            &assessment(),
        ))
        .unwrap_err();
    assert!(matches!(e, AlertError::Timeout { secs: 1, .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    holder.join().unwrap();
}
