//! `rzts compile --translator gemini|openai` end to end, against the local fixture
//! server of `policy-core/tests/support` (base URLs and keys through the environment,
//! as an administrator sets them): the lock records the translator, `check` and
//! `decide` then need no network, and every failing run leaves the previous lock
//! byte-identical.

#[path = "../policy-core/tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use support::{text, Reply, Server};

fn policy(apps: &[App]) -> String {
    let mut s = String::from("timezone = \"Asia/Tokyo\"\n");
    for (name, slot, id) in apps {
        s.push_str(&format!(
            "\n[apps.{name}]\nmode = \"saml\"\n{slot} = {:?}\n",
            text(id)
        ));
    }
    s
}

/// `(app, slot, text id)`.
type App = (&'static str, &'static str, &'static str);

const APPS: &[App] = &[
    ("github", "require", "G01"),
    ("internet", "deny", "G02"),
    ("mail", "require", "G03"),
    ("finance", "require", "X01"),
];

/// `rzts` with a clean LLM environment pointing at `base`.
fn rzts(base: &str) -> Command {
    let mut c = Command::cargo_bin("rzts").expect("binary built");
    for v in [
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "RZTS_GEMINI_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "RZTS_OPENAI_MODEL",
    ] {
        c.env_remove(v);
    }
    c.env("GEMINI_BASE_URL", base)
        .env("GEMINI_API_KEY", "test-key")
        .env("OPENAI_BASE_URL", base)
        .env("OPENAI_API_KEY", "sk-test")
        .env("RZTS_LLM_RETRIES", "2")
        .env("RZTS_LLM_BACKOFF_MS", "1")
        .env("RZTS_LLM_TIMEOUT_SECS", "10");
    c
}

fn run(mut c: Command, args: &[&str]) -> (i32, String, String) {
    let out = c.args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn setup(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("policies.toml");
    fs::write(&p, body).expect("write policy");
    (dir, p)
}

fn lock_of(p: &Path) -> PathBuf {
    p.with_extension("lock")
}

#[test]
fn compile_with_gemini_writes_a_reviewable_lock_that_checks_offline() {
    let server = Server::golden();
    let (dir, p) = setup(&policy(APPS));
    let ps = p.to_str().unwrap();
    let (code, out, err) = run(
        rzts(&server.base),
        &["compile", ps, "--translator", "gemini", "--jobs", "2"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("翻訳 4 件"), "{out}");
    assert!(out.contains("翻訳器: gemini/gemini-2.5-flash"), "{out}");
    assert!(
        out.contains("意味: アクセス先のドメイン名が deepseek.com またはそのサブドメインである"),
        "{out}"
    );
    assert!(
        out.contains("←「会社の Wi-Fi（corp-wifi）につないでいる」"),
        "{out}"
    );
    assert!(err.contains("API の応答 4 件"), "{err}");
    assert_eq!(server.hits().len(), 4);
    let lock = fs::read_to_string(lock_of(&p)).unwrap();
    assert_eq!(
        lock.matches(r#"translator = "gemini/gemini-2.5-flash""#)
            .count(),
        4,
        "{lock}"
    );

    // CI: check and decide need no network and no key.
    let offline = |args: &[&str]| run(rzts("http://127.0.0.1:9"), args);
    assert_eq!(offline(&["check", ps]).0, 0);
    let req = dir.path().join("r.json");
    fs::write(&req, r#"{"destination":{"domain":"chat.deepseek.com"}}"#).unwrap();
    let (code, out, _) = offline(&[
        "decide",
        ps,
        "--app",
        "internet",
        "--request",
        req.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(r#""decision": "deny""#), "{out}");

    // Recompiling sends nothing: unchanged texts keep their rule and translator.
    let (code, out, _) = run(
        rzts(&server.base),
        &["compile", ps, "--translator", "gemini"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("翻訳 0 件、再利用 4 件"), "{out}");
    assert_eq!(server.hits().len(), 4);
    assert_eq!(fs::read_to_string(lock_of(&p)).unwrap(), lock);
}

#[test]
fn failing_runs_leave_the_previous_lock_byte_identical() {
    let server = Server::start(|hit, _| {
        let (_, txt) = hit.user_message().unwrap_or_default();
        if txt == text("G02") {
            // The model disagrees with the offline translator.
            Reply::fixture(200, "gemini/hostile_subdomain.json")
        } else if txt == text("G05") {
            Reply::fixture(500, "gemini/error_internal.json")
        } else {
            support::golden_reply(hit)
        }
    });
    let (_dir, p) = setup(&policy(&[("github", "require", "G01")]));
    let ps = p.to_str().unwrap();
    assert_eq!(
        run(
            rzts(&server.base),
            &["compile", ps, "--translator", "gemini"]
        )
        .0,
        0
    );
    let before = fs::read(lock_of(&p)).unwrap();

    let cases: &[(&[App], &str)] = &[
        (
            &[("github", "require", "G01"), ("internet", "deny", "G02")],
            "オフライン翻訳と意味が一致しません",
        ),
        (
            &[("github", "require", "G01"), ("geo", "deny", "G05")],
            "HTTP 500",
        ),
        (
            &[("github", "require", "G01"), ("bad", "require", "G31")],
            "モデルの判断",
        ),
    ];
    for (apps, want) in cases {
        fs::write(&p, policy(apps)).unwrap();
        let (code, out, err) = run(
            rzts(&server.base),
            &["compile", ps, "--translator", "gemini"],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(want), "{err}");
        let (app, slot) = (
            apps[1].0,
            if apps[1].1 == "deny" {
                "拒否条件"
            } else {
                "必須条件"
            },
        );
        assert!(
            err.contains(&format!("{app} の{slot}")),
            "names app and slot: {err}"
        );
        assert!(err.contains("は変更していません"), "{err}");
        assert!(!out.contains("書き出しました"), "{out}");
        assert_eq!(fs::read(lock_of(&p)).unwrap(), before, "lock untouched");
    }

    // A missing key fails before any request, lock untouched.
    let before_hits = server.hits().len();
    let mut c = rzts(&server.base);
    c.env_remove("GEMINI_API_KEY");
    let (code, _, err) = run(c, &["compile", ps, "--translator", "gemini"]);
    assert_eq!(code, 2);
    assert!(err.contains("GEMINI_API_KEY"), "{err}");
    assert_eq!(server.hits().len(), before_hits);
    assert_eq!(fs::read(lock_of(&p)).unwrap(), before);
}

#[test]
fn compile_with_an_openai_compatible_endpoint_records_its_model() {
    let server = Server::golden();
    let (_dir, p) = setup(&policy(&APPS[..2]));
    let mut c = rzts(&server.base);
    c.env("RZTS_OPENAI_MODEL", "qwen2.5-14b-instruct")
        .env_remove("OPENAI_API_KEY");
    let (code, out, err) = run(
        c,
        &["compile", p.to_str().unwrap(), "--translator", "openai"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let lock = fs::read_to_string(lock_of(&p)).unwrap();
    assert_eq!(
        lock.matches(r#"translator = "openai/qwen2.5-14b-instruct""#)
            .count(),
        2,
        "{lock}"
    );
    let hits = server.hits();
    assert!(hits.iter().all(|h| h.path == "/chat/completions"));
    assert!(hits.iter().all(|h| h.header("authorization").is_none()));
}

#[test]
fn translate_shows_rule_meaning_sources_and_the_offline_comparison() {
    let server = Server::golden();
    let (code, out, err) = run(
        rzts(&server.base),
        &[
            "translate",
            &text("G14"),
            "--slot",
            "deny",
            "--translator",
            "gemini",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("翻訳器: gemini/gemini-2.5-flash"), "{out}");
    assert!(out.contains(r#"規則: not source.country == "JP""#), "{out}");
    assert!(out.contains("←「日本以外」"), "{out}");
    assert!(
        out.contains("オフライン翻訳と意味が一致しています"),
        "{out}"
    );

    let (code, _, err) = run(
        rzts(&server.base),
        &["translate", &text("G31"), "--translator", "openai"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("翻訳できません") && err.contains("指示"),
        "{err}"
    );
}
