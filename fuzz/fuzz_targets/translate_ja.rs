//! Any UTF-8 text through the offline Japanese translator: it must not panic, and
//! every rule it produces must type-check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::check::check_rule;
use policy_core::decision::Slot;
use policy_core::translate::{OfflineTranslator, Translator};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = OfflineTranslator::new().translate(input, Slot::Require) {
        if let Err(errors) = check_rule(&t.rule) {
            panic!("translated {input:?} to `{}`, which does not type-check: {errors:?}", t.rule);
        }
    }
});
