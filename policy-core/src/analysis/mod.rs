//! Lint findings and the semantic diff, by search over the atoms.
//!
//! Both work the same way: collect, per attribute, candidate values that cover every
//! boundary of every condition ([`samples`]), build concrete requests from them, and
//! run the real evaluator ([`crate::eval::eval_rule`], [`crate::decision::AppRules::decide`])
//! on those requests. Nothing is guessed: every example printed is a request that was
//! evaluated and really behaves as claimed.
//!
//! - [`lint()`]: a 必須条件 nobody satisfies, a 拒否条件 that denies everybody, a
//!   必須条件 that only checks that attributes are known, contradictory conditions on
//!   one attribute inside an `and`, the same condition twice in one `and`/`or`.
//! - [`find_flips`]: requests whose decision differs between two versions of an app's
//!   rules (`rzts diff`), simplest first, with `exhaustive` telling whether the whole
//!   candidate space was covered.
//! - [`find_separating`]: a request on which two rules' three-valued results differ
//!   (to compare an LLM's translation with the offline one).
//!
//! ```
//! use policy_core::analysis::{find_flips, lint, FindingKind};
//! use policy_core::ast::{Condition, Literal, Rule};
//! use policy_core::decision::{AppRules, Effect, Slot};
//! use policy_core::schema::Attribute;
//! let tz = chrono_tz::Asia::Tokyo;
//! let jp = Literal::Country("JP".parse().unwrap());
//! let us = Literal::Country("US".parse().unwrap());
//! let old = Rule::Atom(Condition::Eq(Attribute::SourceCountry, jp.clone()));
//! let new = Rule::Atom(Condition::In(Attribute::SourceCountry, vec![jp, us]));
//! let report = find_flips(&AppRules::new(Some(old), None), &AppRules::new(Some(new), None), tz, 5);
//! assert!(report.exhaustive);
//! assert_eq!(report.flips.len(), 1);
//! assert_eq!(report.flips[0].request.to_string(), r#"{"source":{"country":"US"}}"#);
//! assert_eq!((report.flips[0].old.effect, report.flips[0].new.effect), (Effect::Deny, Effect::Allow));
//!
//! let mfa = |b| Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Bool(b)));
//! let findings = lint(&Rule::And(vec![mfa(true), mfa(false)]), Slot::Require, tz);
//! assert_eq!(findings[0].kind, FindingKind::RequireNeverHolds);
//! ```

pub mod diff;
pub mod lint;
pub mod samples;

pub use diff::{find_flips, find_flips_within, find_separating, Flip, SearchReport};
pub use lint::{lint, Finding, FindingKind};
