//! # policy-core
//!
//! The heart of RZTS: Japanese access policies compiled once into typed rules that a
//! deterministic evaluator runs on every request.
//!
//! ```
//! use policy_core::prelude::*;
//! let translator = OfflineTranslator::new();
//! let t = translator.translate("多要素認証を利用していること", Slot::Require).unwrap();
//! assert_eq!(t.rule.to_string(), "auth.mfa == true");
//! let app = AppRules::new(Some(t.rule), None);
//! let req = Request::from_json(r#"{"auth":{"mfa":true}}"#).unwrap();
//! let d = app.decide(&req, Authentication::Authenticated, chrono_tz::Asia::Tokyo);
//! assert_eq!(d.effect, Effect::Allow);
//! ```
//!
//! Module map, one job each:
//!
//! | module | job |
//! |---|---|
//! | [`schema`] | every attribute with its type and Japanese label (single source of truth) |
//! | [`value`], [`country`] | validated literal types; ISO 3166-1 with Japanese names |
//! | [`ast`] | the rule AST |
//! | [`text`] | canonical text form: printer and nom parser |
//! | [`check`] | type checker |
//! | [`context`] | the request context (spec §2) |
//! | [`device`] | the device agent's wire protocol: enrolment, signed reports, attestation messages |
//! | [`eval`] | three-valued evaluator |
//! | [`decision`] | require/deny slots to a decision with Japanese reasons |
//! | [`backtranslate`] | a rule rendered as Japanese |
//! | [`translate`] | translators from Japanese text to rules (offline by default; Gemini and OpenAI-compatible with the `llm` feature) and the verification pipeline every translation passes |
//! | [`policy`], [`lock`] | the policy file and its lock file |
//! | [`analysis`] | lint findings and the semantic diff, by search over the atoms |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The time-zone database used for clock conditions, re-exported so embedders use
/// the same version.
pub use chrono_tz;

pub mod analysis;
pub mod ast;
pub mod backtranslate;
pub mod cases;
pub mod check;
pub mod context;
pub mod country;
pub mod decision;
pub mod device;
pub mod eval;
pub mod lock;
pub mod policy;
pub mod schema;
pub mod text;
pub mod translate;
pub mod value;

/// The names most users need.
pub mod prelude {
    pub use crate::ast::{Condition, Literal, Rule};
    pub use crate::context::Request;
    pub use crate::decision::{AppRules, Authentication, Decision, Effect, Slot};
    pub use crate::eval::Truth;
    pub use crate::schema::Attribute;
    pub use crate::translate::{OfflineTranslator, Translator};
}
