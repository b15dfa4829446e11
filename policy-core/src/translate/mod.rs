//! Translators: Japanese policy text in, typed [`Rule`] out.
//!
//! A translator runs once per text, when a policy is compiled; its output is stored
//! in the lock file and reviewed. Every translator returns, beside the rule, the span
//! of source text each condition came from (in [`Rule::conditions`] order), so a
//! reviewer (and the verification of LLM output) can check that every condition
//! cites what the administrator actually wrote.
//!
//! The default [`OfflineTranslator`] needs no network and no model. It is
//! deterministic and it never guesses: text it does not fully understand is refused
//! with a [`TranslateError`] naming the phrase.
//!
//! With the `llm` feature, `llm` adds the Gemini and OpenAI-compatible translators.
//! A model's output is a proposal, never trusted: [`verify()`] runs the checks every
//! translation passes (type check, source-span traceability; [`crate::lock::compile`]
//! applies them to every translator) and, for model output, the stricter ones (no
//! rule that allows or denies everyone, no instructions inside the text, agreement
//! with the offline translator wherever it also understands the text).
//!
//! ```
//! use policy_core::translate::{OfflineTranslator, Translator};
//! use policy_core::decision::Slot;
//! let t = OfflineTranslator::new();
//! let out = t.translate("アクセス先のドメイン名が deepseek.com であること", Slot::Deny).unwrap();
//! assert_eq!(out.rule.to_string(), r#"destination.domain in_zone "deepseek.com""#);
//! assert_eq!(out.cited(0), Some("アクセス先のドメイン名が deepseek.com"));
//! let err = t.translate("部長の承認を得ていること", Slot::Require).unwrap_err();
//! assert!(err.to_string().contains("部長"));
//! ```

use std::ops::Range;

use crate::ast::Rule;
use crate::decision::Slot;

#[cfg(feature = "llm")]
pub mod llm;
pub mod offline;
pub mod verify;

pub use offline::OfflineTranslator;
pub use verify::{verify, Checks, Verified};

/// A translator's output for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The source text, as given.
    pub source: String,
    /// The compiled rule.
    pub rule: Rule,
    /// For each condition of `rule` (in [`Rule::conditions`] order), the byte range
    /// of `source` it was translated from.
    pub spans: Vec<Range<usize>>,
}

impl Translation {
    /// The source text condition `i` was translated from.
    pub fn cited(&self, i: usize) -> Option<&str> {
        self.spans.get(i).and_then(|r| self.source.get(r.clone()))
    }
}

/// Why a text could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The translator does not understand (part of) the text, and refuses to guess.
    #[error("翻訳できません: 「{phrase}」（{reason}）")]
    Refused {
        /// The phrase that was not understood.
        phrase: String,
        /// Byte range of the phrase in the source text.
        span: Range<usize>,
        /// Why.
        reason: String,
    },
    /// The translator produced a rule, but the verification pipeline
    /// ([`verify()`]) rejected it (a condition that cites no source text, a type
    /// error, a rule that allows everyone, disagreement with the offline translator,
    /// ...). The message says which check failed and why.
    #[error("検証で却下しました: {0}")]
    Rejected(String),
    /// The translator failed for another reason (network, model, quota, ...).
    #[error("翻訳に失敗しました: {0}")]
    Failed(String),
}

/// Anything that turns one policy text into a rule.
pub trait Translator: Send + Sync {
    /// A stable identifier stored in the lock file (`offline/1`, `gemini/<model>`).
    fn id(&self) -> String;
    /// Translates one non-empty text for the given slot.
    fn translate(&self, text: &str, slot: Slot) -> Result<Translation, TranslateError>;
}
