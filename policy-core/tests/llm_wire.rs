//! The wire format: the response schema sent to the models is reviewed as a file
//! (`tests/fixtures/llm/response_schema.json`) and regenerated from the Rust types
//! with `RZTS_UPDATE_FIXTURES=1`; the recorded golden answers read back to rules that
//! print as the canonical text and survive the lock's round trip.
#![cfg(feature = "llm")]

mod support;

use policy_core::text::parse_rule;
use policy_core::translate::llm::wire::{self, parse_answer, response_schema, to_translation};
use serde_json::Value;

#[test]
fn the_response_schema_matches_the_reviewed_file() {
    let generated = serde_json::to_string_pretty(&response_schema()).unwrap() + "\n";
    let path = support::fixtures_dir().join("response_schema.json");
    if std::env::var_os("RZTS_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        stored, generated,
        "the wire types changed: review and run with RZTS_UPDATE_FIXTURES=1"
    );
    // Closed everywhere, every property required: what OpenAI's strict mode needs.
    fn walk(v: &Value) {
        if let Some(o) = v.as_object() {
            if let Some(props) = o.get("properties").and_then(Value::as_object) {
                assert_eq!(o.get("additionalProperties"), Some(&Value::Bool(false)));
                let req: Vec<&str> = o["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                for k in props.keys() {
                    assert!(req.contains(&k.as_str()), "{k} not required");
                }
            }
            assert!(!o.contains_key("oneOf") && !o.contains_key("const"));
            o.values().for_each(walk);
        } else if let Some(a) = v.as_array() {
            a.iter().for_each(walk);
        }
    }
    walk(&response_schema());
}

#[test]
fn recorded_answers_round_trip_through_the_canonical_text() {
    for (id, _, text) in support::texts() {
        let body: Value =
            serde_json::from_str(&support::fixture(&format!("gemini/{id}.json"))).unwrap();
        let content = body["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        let answer = parse_answer(content).unwrap_or_else(|e| panic!("{id}: {e}"));
        let Some(t) = to_translation(&text, &answer).unwrap_or_else(|e| panic!("{id}: {e}")) else {
            assert!(answer.reason.is_some(), "{id}: a refusal gives a reason");
            continue;
        };
        assert_eq!(parse_rule(&t.rule.to_string()).unwrap(), t.rule, "{id}");
        // And back to the wire format: same JSON.
        let again = wire::from_translation(&t);
        assert_eq!(again, answer, "{id}");
    }
}
