//! Any UTF-8 text through the offline Japanese translator: it must not panic; every
//! rule it produces must type-check and survive the lock's canonical text form; every
//! condition must cite a non-empty piece of the input; a refusal's span lies inside
//! the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::check::check_rule;
use policy_core::decision::Slot;
use policy_core::text::parse_rule;
use policy_core::translate::{OfflineTranslator, TranslateError, Translator};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match OfflineTranslator::new().translate(input, Slot::Require) {
        Ok(t) => {
            if let Err(errors) = check_rule(&t.rule) {
                panic!("translated {input:?} to `{}`, which does not type-check: {errors:?}", t.rule);
            }
            let text = t.rule.to_string();
            assert_eq!(parse_rule(&text).ok(), Some(t.rule.clone()), "{input:?} -> {text}");
            assert_eq!(t.spans.len(), t.rule.conditions().len(), "{input:?}");
            for i in 0..t.spans.len() {
                let cited = t.cited(i).unwrap_or_default();
                assert!(!cited.is_empty(), "{input:?}: condition {i} cites nothing");
            }
        }
        Err(TranslateError::Refused { span, .. }) => {
            assert!(span.end <= input.len() && span.start <= span.end, "{input:?}: {span:?}");
        }
        Err(_) => {}
    }
});
