//! Any UTF-8 text: the parser must not panic, and whatever it accepts must
//! type-check, print, and parse back to the same rule and the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::check::check_rule;
use policy_core::text::{parse_rule, print_rule};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let rule = match parse_rule(input) {
        Ok(rule) => rule,
        Err(e) => {
            assert!(e.offset <= input.len() && input.is_char_boundary(e.offset));
            assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty());
            return;
        }
    };
    if let Err(errors) = check_rule(&rule) {
        panic!("parsed {input:?} to {rule:?}, which does not type-check: {errors:?}");
    }
    let text = print_rule(&rule);
    let again = match parse_rule(&text) {
        Ok(r) => r,
        Err(e) => panic!("printed {rule:?} as {text:?}, which does not parse: {e}"),
    };
    assert_eq!(again, rule, "text: {text}");
    assert_eq!(print_rule(&again), text);
});
