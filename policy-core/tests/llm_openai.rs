//! The OpenAI-compatible translator against a local server replaying recorded
//! chat-completions responses: the request, golden answers, refusals and failures.
#![cfg(feature = "llm")]

mod support;

use std::time::Duration;

use policy_core::decision::Slot;
use policy_core::translate::llm::{wire, LlmConfig, OpenAiTranslator};
use policy_core::translate::{TranslateError, Translator};
use serde_json::json;
use support::{failed, text, texts, Reply, Server};

fn cfg(base: &str, key: Option<&str>) -> LlmConfig {
    let mut c = LlmConfig::new(base, key, "gpt-4o-mini");
    c.max_retries = 2;
    c.backoff_base = Duration::from_millis(2);
    c.backoff_max = Duration::from_millis(10);
    c.timeout = Duration::from_secs(5);
    c
}

fn translator(server: &Server) -> OpenAiTranslator {
    OpenAiTranslator::new(cfg(&server.base, Some("sk-test"))).expect("translator")
}

#[test]
fn sends_the_documented_request() {
    let server = Server::golden();
    let t = translator(&server);
    assert_eq!(t.id(), "openai/gpt-4o-mini");
    t.translate(&text("G02"), Slot::Deny).expect("translates");
    let h = &server.hits()[0];
    assert_eq!(h.path, "/chat/completions");
    assert_eq!(h.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(h.body["model"], json!("gpt-4o-mini"));
    assert_eq!(h.body["temperature"], json!(0));
    let rf = &h.body["response_format"];
    assert_eq!(rf["type"], json!("json_schema"));
    assert_eq!(rf["json_schema"]["strict"], json!(true));
    assert_eq!(rf["json_schema"]["name"], json!("rzts_rule"));
    assert_eq!(rf["json_schema"]["schema"], wire::response_schema());
    assert_eq!(h.body["messages"][0]["role"], json!("system"));
    assert_eq!(h.user_message(), Some(("deny".into(), text("G02"))));
    assert_eq!(t.usage().totals().1, 4102);
}

#[test]
fn a_local_server_needs_no_key() {
    let server = Server::golden();
    let t = OpenAiTranslator::new(cfg(&server.base, None)).unwrap();
    t.translate(&text("G03"), Slot::Require)
        .expect("translates");
    assert!(server.hits()[0].header("authorization").is_none());
}

#[test]
fn golden_answers_translate_and_refusals_are_refusals() {
    let server = Server::golden();
    let t = translator(&server);
    for (id, slot, txt) in texts() {
        let r = t.translate(&txt, slot);
        if ["G30", "G31", "G32", "X02"].contains(&id.as_str()) {
            assert!(
                matches!(r, Err(TranslateError::Refused { .. })),
                "{id}: {r:?}"
            );
        } else {
            let tr = r.unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(tr.spans.len(), tr.rule.conditions().len());
        }
    }
}

#[test]
fn a_model_refusal_is_a_refusal() {
    let server = Server::start(|_, _| Reply::fixture(200, "openai/refusal.json"));
    match translator(&server).translate(&text("G03"), Slot::Require) {
        Err(TranslateError::Refused { reason, .. }) => {
            assert!(reason.contains("can't help"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failures_are_reported_clearly() {
    let cases: &[(u16, &str, &str, usize)] = &[
        (401, "openai/error_invalid_key.json", "API キーが無効", 1),
        (429, "openai/error_quota.json", "insufficient_quota", 3),
        (500, "openai/error_server.json", "server_error", 3),
        (200, "openai/length.json", "finish_reason length", 1),
        (200, "openai/content_filter.json", "content_filter", 1),
    ];
    for &(status, name, want, hits) in cases {
        let server = Server::start(move |_, _| Reply::fixture(status, name));
        let m = failed(translator(&server).translate(&text("G03"), Slot::Require));
        assert!(m.contains(want), "{name}: {m}");
        assert_eq!(server.hits().len(), hits, "{name}");
    }
}

#[test]
fn a_rate_limit_then_success_is_retried() {
    let server = Server::start(|hit, n| {
        if n == 0 {
            Reply::raw(
                429,
                r#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","code":"rate_limit_exceeded"}}"#,
            )
        } else {
            support::golden_reply(hit)
        }
    });
    assert!(translator(&server)
        .translate(&text("G03"), Slot::Require)
        .is_ok());
    assert_eq!(server.hits().len(), 2);
}

#[test]
fn schema_violations_are_rejected() {
    for (name, want) in [
        ("openai/malformed_json.json", "JSON ではありません"),
        ("openai/unknown_field.json", "unknown field `confidence`"),
    ] {
        let server = Server::start(move |_, _| Reply::fixture(200, name));
        match translator(&server).translate(&text("G03"), Slot::Require) {
            Err(TranslateError::Rejected(m)) => assert!(m.contains(want), "{m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}
