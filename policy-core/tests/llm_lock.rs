//! Compiling a lock with an LLM translator: translator ids, concurrency and
//! progress, reuse of unchanged texts (no request), and no lock on any failure.
#![cfg(feature = "llm")]

mod support;

use std::sync::Mutex;
use std::time::Duration;

use policy_core::decision::Slot;
use policy_core::lock::{self, CompileOptions, LockError, Progress, SlotOutcome};
use policy_core::policy::PolicyFile;
use policy_core::translate::llm::{GeminiTranslator, LlmConfig, OpenAiTranslator};
use policy_core::translate::{OfflineTranslator, Translator};
use support::{text, Reply, Server};

fn policy(apps: &[(&str, &str, &str)]) -> PolicyFile {
    let mut s = String::from("timezone = \"Asia/Tokyo\"\n");
    for (name, slot, id) in apps {
        s.push_str(&format!(
            "[apps.{name}]\nmode = \"saml\"\n{slot} = {:?}\n",
            text(id)
        ));
    }
    PolicyFile::from_toml_str(&s).expect("policy")
}

fn cfg(base: &str) -> LlmConfig {
    let mut c = LlmConfig::new(base, Some("k"), "gemini-2.5-flash");
    c.max_retries = 1;
    c.backoff_base = Duration::from_millis(1);
    c.backoff_max = Duration::from_millis(2);
    c
}

const APPS: &[(&str, &str, &str)] = &[
    ("github", "require", "G01"),
    ("internet", "deny", "G02"),
    ("mail", "require", "G03"),
    ("hr", "require", "G06"),
    ("wiki", "require", "G13"),
    ("vpn", "deny", "G14"),
    ("admin", "require", "G26"),
    ("mac", "require", "G34"),
    ("finance", "require", "X01"),
];

#[test]
fn compiles_concurrently_with_progress_and_the_same_result_as_sequentially() {
    let server = Server::golden();
    let t = GeminiTranslator::new(cfg(&server.base)).unwrap();
    let p = policy(APPS);
    let events = Mutex::new(Vec::new());
    let progress = |e: Progress<'_>| {
        let line = match e {
            Progress::Started { total } => format!("start {total}"),
            Progress::Finished { app, slot, ok } => format!("{app} {slot} {ok}"),
        };
        events.lock().unwrap().push(line);
    };
    let opts = CompileOptions {
        jobs: 4,
        progress: Some(&progress),
    };
    let (parallel, report) = lock::compile_with_options(&p, &t, None, &opts).expect("compiles");
    let events = events.into_inner().unwrap();
    assert_eq!(events[0], "start 9");
    assert_eq!(events.len(), 10);
    assert!(events.contains(&"finance require true".to_string()));
    assert!(report.iter().all(|(_, _, o)| *o == SlotOutcome::Translated));
    let sequential = lock::compile(&p, &t, None).expect("compiles");
    assert_eq!(parallel, sequential);
    assert!(parallel.verify(&p).is_ok());
    for app in parallel.apps.values() {
        for r in [&app.require, &app.deny].into_iter().flatten() {
            assert_eq!(r.translator, "gemini/gemini-2.5-flash");
            assert!(!r.sources.is_empty());
        }
    }
    assert_eq!(
        parallel.apps["finance"].require.as_ref().unwrap().rule,
        r#"user.groups contains "経理部" -> device.network.ssid == "corp-wifi""#
    );
}

#[test]
fn unchanged_texts_are_not_sent_again() {
    let server = Server::golden();
    let t = OpenAiTranslator::new(cfg(&server.base)).unwrap();
    let first = lock::compile(&policy(&APPS[..3]), &t, None).unwrap();
    assert_eq!(server.hits().len(), 3);
    // A lock made offline is reused too: the translator of an unchanged text is kept.
    let (again, report) = lock::compile_with_report(&policy(&APPS[..4]), &t, Some(&first)).unwrap();
    assert_eq!(server.hits().len(), 4, "only the new text is sent");
    assert_eq!(
        report.iter().filter(|r| r.2 == SlotOutcome::Reused).count(),
        3
    );
    assert_eq!(again.apps["github"], first.apps["github"]);
    assert_eq!(
        again.apps["hr"].require.as_ref().unwrap().translator,
        "openai/gemini-2.5-flash"
    );
}

#[test]
fn any_failure_returns_no_lock_and_names_app_and_slot() {
    let server = Server::start(|hit, _| {
        let (_, txt) = hit.user_message().unwrap();
        if txt == text("G02") {
            Reply::fixture(200, &format!("{}/hostile_subdomain.json", hit.provider()))
        } else if txt == text("G03") {
            Reply::fixture(500, "gemini/error_internal.json")
        } else {
            support::golden_reply(hit)
        }
    });
    let t = GeminiTranslator::new(cfg(&server.base)).unwrap();
    let opts = CompileOptions {
        jobs: 3,
        progress: None,
    };
    let errors = lock::compile_with_options(&policy(APPS), &t, None, &opts).unwrap_err();
    let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        matches!(&errors[0], LockError::Translate { app, slot: Slot::Deny, .. } if app == "internet")
    );
    assert!(
        msgs[0].contains("internet の拒否条件")
            && msgs[0].contains("オフライン翻訳と意味が一致しません"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].contains("mail の必須条件") && msgs[1].contains("HTTP 500"),
        "{}",
        msgs[1]
    );
}

/// `lock::compile` runs the structural checks on every translator's output.
#[test]
fn compile_rejects_a_translator_whose_conditions_cite_nothing() {
    struct NoSpans;
    impl Translator for NoSpans {
        fn id(&self) -> String {
            "test/no-spans".into()
        }
        fn translate(
            &self,
            text: &str,
            slot: Slot,
        ) -> Result<policy_core::translate::Translation, policy_core::translate::TranslateError>
        {
            let mut t = OfflineTranslator::new().translate(text, slot)?;
            t.spans.clear();
            Ok(t)
        }
    }
    let errors = lock::compile(&policy(&APPS[..1]), &NoSpans, None).unwrap_err();
    let m = errors[0].to_string();
    assert!(m.contains("github の必須条件") && m.contains("出典"), "{m}");
}
