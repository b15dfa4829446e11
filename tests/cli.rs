//! End-to-end tests of the `rzts` binary: the spec §4 commands, their outputs and exit
//! codes, and bad input (exit 2, the place named, never a decision).

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const POLICY: &str = r#"
timezone = "Asia/Tokyo"

[apps.github]
mode = "saml"
require = "アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること"
deny = "不審なアクセスと判定されていること"

[apps.internet]
mode = "socks"
deny = "アクセス先のドメイン名が deepseek.com であること"
"#;

fn rzts() -> Command {
    Command::cargo_bin("rzts").expect("binary built")
}

fn setup(policy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("policies.toml");
    fs::write(&p, policy).expect("write policy");
    (dir, p)
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, body).expect("write");
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = rzts().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rzts decide POLICY --app APP --request REQUEST [extra...]`.
fn decide(policy: &str, app: &str, request: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["decide", policy, "--app", app, "--request"];
    args.push(request.to_str().unwrap());
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn compile_reuses_unchanged_texts_and_check_detects_stale_and_edited_locks() {
    let (dir, p) = setup(POLICY);
    let ps = p.to_str().unwrap();
    let (code, out, _) = run(&["compile", ps]);
    assert_eq!(code, 0);
    assert!(out.contains("翻訳 3 件"), "{out}");
    let lock = dir.path().join("policies.lock");
    let first = fs::read_to_string(&lock).unwrap();
    assert!(
        first.contains(r#"rule = 'destination.domain in_zone "deepseek.com"'"#),
        "{first}"
    );

    // Unchanged texts are reused, and the lock is byte-identical.
    let (code, out, _) = run(&["compile", ps]);
    assert_eq!(code, 0);
    assert!(out.contains("翻訳 0 件、再利用 3 件"), "{out}");
    assert_eq!(fs::read_to_string(&lock).unwrap(), first);
    assert_eq!(run(&["check", ps]).0, 0);

    // A changed text makes the lock stale; check names app and slot.
    fs::write(&p, POLICY.replace("deepseek.com", "example.net")).unwrap();
    let (code, _, err) = run(&["check", ps]);
    assert_eq!(code, 1);
    assert!(err.contains("internet") && err.contains("deny"), "{err}");

    // A hand-edited rule is detected even when the text is unchanged.
    fs::write(&p, POLICY).unwrap();
    fs::write(
        &lock,
        first.replace(r#"in_zone "deepseek.com""#, r#"in_zone "deepseek.org""#),
    )
    .unwrap();
    let (code, _, err) = run(&["check", ps]);
    assert_eq!(code, 1);
    assert!(err.contains("手で編集"), "{err}");

    // A corrupt lock is never trusted: decide recompiles from the texts.
    fs::write(&lock, "version = 1\n[apps.github\n").unwrap();
    assert_eq!(run(&["check", ps]).0, 1);
    let req = write(
        dir.path(),
        "r.json",
        r#"{"destination":{"domain":"chat.deepseek.com"}}"#,
    );
    let (code, out, _) = decide(ps, "internet", &req, &[]);
    assert_eq!(code, 0);
    assert!(out.contains(r#""decision": "deny""#), "{out}");
    assert_eq!(run(&["check", ps]).0, 0);
}

#[test]
fn decide_prints_decision_reasons_and_trace() {
    let (dir, p) = setup(POLICY);
    let ps = p.to_str().unwrap();
    let allow = write(
        dir.path(),
        "allow.json",
        r#"{"source":{"country":"JP"},"device":{"tpm":{"enabled":true},"disk":{"encrypted":true,"method":"bitlocker"}},"risk":{"suspicious":false}}"#,
    );
    let (code, out, _) = decide(ps, "github", &allow, &[]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "allow");

    let (_, out, _) = decide(ps, "github", &allow, &["--anonymous"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["reasons"][0]["code"], "unauthenticated");

    // Unknown country: deny, with a reason naming the unknown attribute.
    let unknown = write(
        dir.path(),
        "u.json",
        r#"{"device":{"tpm":{"enabled":true},"disk":{"encrypted":true,"method":"bitlocker"}},"risk":{"suspicious":false}}"#,
    );
    let (code, out, _) = decide(ps, "github", &unknown, &["--explain"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["reasons"][0]["code"], "require.unknown_attribute");
    assert_eq!(v["reasons"][0]["attribute"], "source.country");
    assert!(v["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("アクセス元の国が不明なため拒否"));
    assert_eq!(v["trace"]["require"][0]["value"], "UNKNOWN");
    assert_eq!(v["trace"]["deny"][0]["value"], "FALSE");
}

#[test]
fn bad_input_exits_2_naming_the_place_and_prints_no_decision() {
    let (dir, p) = setup(POLICY);
    let ps = p.to_str().unwrap();
    let good = write(dir.path(), "good.json", "{}");
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        // malformed request JSON, wrong types, unknown fields
        (
            "github",
            write(dir.path(), "a.json", "{\"source\":"),
            "line",
        ),
        (
            "github",
            write(dir.path(), "b.json", r#"{"auth":{"mfa":"yes"}}"#),
            "auth.mfa",
        ),
        (
            "github",
            write(
                dir.path(),
                "c.json",
                r#"{"device":{"os":{"version":"eleven"}}}"#,
            ),
            "device.os.version",
        ),
        (
            "github",
            write(dir.path(), "d.json", r#"{"source":{"contry":"JP"}}"#),
            "contry",
        ),
        // unknown app
        ("nosuch", good.clone(), "nosuch"),
    ];
    for (app, request, needle) in cases {
        let args = format!("--app {app} --request {}", request.display());
        let (code, out, err) = decide(ps, app, &request, &[]);
        assert_eq!(code, 2, "{args}: {out}{err}");
        assert!(
            !out.contains("decision"),
            "{args} printed a decision: {out}"
        );
        assert!(err.contains(needle), "{args}: {err}");
    }

    // malformed TOML: the message names the line
    let (_keep1, bad) = setup("[apps.github\nmode = 1\n");
    let (code, out, err) = decide(bad.to_str().unwrap(), "github", &good, &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty() && err.contains("line"), "{err}");

    // an untranslatable text: app, slot and phrase named, no lock written
    let (dir2, bad) = setup("[apps.hr]\nmode = \"saml\"\nrequire = \"部長の承認を得ていること\"\n");
    let (code, _, err) = run(&["compile", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("hr") && err.contains("必須条件") && err.contains("部長"),
        "{err}"
    );
    assert!(!dir2.path().join("policies.lock").exists());

    // an unknown mode
    let (_keep2, bad) = setup("[apps.x]\nmode = \"vpn\"\n");
    let (code, _, err) = run(&["compile", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("vpn"), "{err}");
}

#[test]
fn test_command_reports_failures_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "cases.toml",
        r#"
[[case]]
id = "ok"
require = "多要素認証を利用していること"
expect = [ { decision = "allow", request = { auth = { mfa = true } } } ]

[[case]]
id = "wrong"
require = "多要素認証を利用していること"
expect = [ { decision = "allow", request = { auth = { mfa = false } } } ]
"#,
    );
    let (code, out, _) = run(&["test", cases.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL wrong#1") && out.contains("expected Allow, got Deny"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");

    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/translations.toml");
    let (code, out, _) = run(&["test", golden.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}

#[test]
fn diff_shows_changes_and_flipping_requests() {
    let (dir, p) = setup(POLICY);
    let ps = p.to_str().unwrap();
    assert_eq!(run(&["compile", ps]).0, 0);
    let old = dir.path().join("old.lock");
    fs::copy(dir.path().join("policies.lock"), &old).unwrap();
    fs::write(
        &p,
        POLICY.replace("deepseek.com であること", "*.deepseek.com であること"),
    )
    .unwrap();
    assert_eq!(run(&["compile", ps]).0, 0);
    let (code, out, _) = run(&[
        "diff",
        old.to_str().unwrap(),
        dir.path().join("policies.lock").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("~ internet"), "{out}");
    assert!(!out.contains("github"), "{out}");
    assert!(
        out.contains("Deny → Allow") && out.contains(r#""domain":"deepseek.com""#),
        "{out}"
    );
}

#[test]
fn translate_prints_rule_meaning_and_citations() {
    let (code, out, _) = run(&[
        "translate",
        "日本以外の国からのアクセスであること",
        "--slot",
        "deny",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(r#"規則: not source.country == "JP""#), "{out}");
    assert!(out.contains("意味:"), "{out}");
    assert!(out.contains("←「日本以外の国」"), "{out}");
    let (code, _, err) = run(&["translate", "全員を許可する"]);
    assert_eq!(code, 2);
    assert!(err.contains("全員"), "{err}");
}

#[test]
fn device_enroll_prints_a_one_time_code_that_the_store_accepts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write(
        dir.path(),
        "server.toml",
        &format!("data_dir = {:?}\n", data.display().to_string()),
    );
    let cfg = cfg.to_str().unwrap();
    // Every command here works on that server configuration.
    let run_cfg = |args: &[&str]| run(&[args, &["--config", cfg]].concat());
    let (code, _, err) = run_cfg(&["user", "add", "tanaka", "--email", "t@example.co.jp"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_cfg(&[
        "device",
        "enroll",
        "--owner",
        "tanaka",
        "--id",
        "PC-1",
        "--ttl-minutes",
        "5",
    ]);
    assert_eq!(code, 0, "{err}");
    let enrol = out.trim().to_string();
    assert_eq!(enrol.len(), 39, "{enrol}");
    assert!(err.contains("rzts-agent enroll"), "{err}");
    // Bad lifetimes and unknown owners exit 2.
    let (code, _, _) = run_cfg(&[
        "device",
        "enroll",
        "--owner",
        "tanaka",
        "--ttl-minutes",
        "0",
    ]);
    assert_eq!(code, 2);
    let (code, _, _) = run_cfg(&["device", "enroll", "--owner", "nobody"]);
    assert_eq!(code, 2);

    // Only the code's hash is stored; the store accepts it exactly once.
    let store =
        pdp_server::store::open(&format!("sqlite:{}", data.join("rzts.db").display())).unwrap();
    let hash = pdp_server::devices::code_sha256(&enrol);
    let now = chrono::Utc::now();
    match store.enroll_device(&hash, "KEY", "unused", now).unwrap() {
        pdp_server::model::EnrollOutcome::Enrolled(d) => assert_eq!(d.id, "PC-1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.enroll_device(&hash, "KEY", "unused", now).unwrap(),
        pdp_server::model::EnrollOutcome::Used
    );
    let (code, out, _) = run_cfg(&["device", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("PC-1\ttanaka"), "{out}");
}
