//! The offline Japanese translator: deterministic, no network, no model.
//!
//! Pipeline: `normalize` (NFKC, with a map back to the source) → `lexer`
//! (longest match against a Japanese lexicon, the ISO country table and ASCII
//! words) → `grammar` (clauses per attribute, refusing any word it cannot account
//! for) → the type checker. It covers every attribute of the spec in the phrasings
//! administrators use; anything else is refused with the phrase named, never guessed.

mod grammar;
mod lexer;
mod normalize;

use crate::decision::Slot;
use crate::translate::{TranslateError, Translation, Translator};

/// The default translator. See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineTranslator;

/// Bumped whenever a change to the offline translator could change a rule, so a
/// lock records exactly which grammar produced it.
pub const OFFLINE_TRANSLATOR_ID: &str = "offline/1";

impl OfflineTranslator {
    /// A translator.
    pub fn new() -> Self {
        OfflineTranslator
    }
}

impl Translator for OfflineTranslator {
    fn id(&self) -> String {
        OFFLINE_TRANSLATOR_ID.to_string()
    }

    fn translate(&self, text: &str, _slot: Slot) -> Result<Translation, TranslateError> {
        let norm = normalize::Normalized::new(text);
        let toks = lexer::lex(&norm.text);
        let built = grammar::parse_text(&toks).map_err(|r| {
            let span = norm.source_range(r.span);
            TranslateError::Refused {
                phrase: text.get(span.clone()).unwrap_or(text).to_string(),
                span,
                reason: r.reason,
            }
        })?;
        if let Err(errors) = crate::check::check_rule(&built.rule) {
            // A rule the grammar built but the checker rejects is a translator bug;
            // refuse rather than store it.
            let msg = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TranslateError::Refused {
                phrase: text.to_string(),
                span: 0..text.len(),
                reason: format!("型検査に失敗しました: {msg}"),
            });
        }
        let spans = built
            .spans
            .into_iter()
            .map(|r| norm.source_range(r))
            .collect();
        Ok(Translation {
            source: text.to_string(),
            rule: built.rule,
            spans,
        })
    }
}
