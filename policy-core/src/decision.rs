//! Decisions: one protected target's two rules applied to one request.
//!
//! **allow** iff the user is authenticated AND the 必須条件 (require) is TRUE AND the
//! 拒否条件 (deny) is FALSE; anything else is **deny** (spec §1). Every decision
//! carries reasons with a stable code and a Japanese sentence an employee can read.
//!
//! ```
//! use policy_core::decision::{AppRules, Authentication, Effect};
//! use policy_core::context::Request;
//! use policy_core::text::parse_rule;
//! let app = AppRules::new(Some(parse_rule(r#"auth.mfa == true"#).unwrap()), None);
//! let req = Request::from_json(r#"{"auth":{"mfa":false}}"#).unwrap();
//! let d = app.decide(&req, Authentication::Authenticated, chrono_tz::Asia::Tokyo);
//! assert_eq!(d.effect, Effect::Deny);
//! assert_eq!(d.reasons[0].code, "require.not_met");
//! ```

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ast::Rule;
use crate::backtranslate::{condition_ja, rule_ja};
use crate::eval::{eval_rule, explain, Truth};
use crate::schema::Attribute;

/// Which of a target's two texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// 必須条件: access only when it holds.
    Require,
    /// 拒否条件: no access when it holds.
    Deny,
}

impl Slot {
    /// `require` / `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Require => "require",
            Slot::Deny => "deny",
        }
    }
    /// 必須条件 / 拒否条件.
    pub fn label_ja(self) -> &'static str {
        match self {
            Slot::Require => "必須条件",
            Slot::Deny => "拒否条件",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Access is granted.
    Allow,
    /// Access is refused.
    Deny,
}

/// Whether the enforcement point authenticated the user. Only the enforcement point
/// knows, so it must say so explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// The user's identity was verified.
    Authenticated,
    /// No verified identity: always deny.
    Anonymous,
}

/// Why a decision came out as it did.
///
/// The texts are shared (`Arc<str>`, static codes): they are written once when a
/// rule is compiled, so explaining a denial copies pointers instead of formatting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code: `allow`, `unauthenticated`, `require.not_met`,
    /// `require.unknown_attribute`, `deny.matched`, `deny.unknown_attribute`.
    pub code: Cow<'static, str>,
    /// The slot concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// The attribute concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<Cow<'static, str>>,
    /// The condition concerned, in canonical text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Arc<str>>,
    /// A sentence an employee can understand.
    pub message: Arc<str>,
}

impl Reason {
    /// A reason with only a code and a message (for enforcement points and servers
    /// adding their own, e.g. `user.disabled`).
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Arc<str>>) -> Reason {
        Reason {
            code: code.into(),
            slot: None,
            attribute: None,
            condition: None,
            message: message.into(),
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow or deny.
    #[serde(rename = "decision")]
    pub effect: Effect,
    /// Why; never empty.
    pub reasons: Vec<Reason>,
}

static ALLOW: LazyLock<Reason> =
    LazyLock::new(|| Reason::new("allow", "必須条件を満たし、拒否条件に該当しないため許可"));
static UNAUTHENTICATED: LazyLock<Reason> =
    LazyLock::new(|| Reason::new("unauthenticated", "認証されていないため拒否"));

/// The reason a decision gives with no condition concerned, by code: `allow` and
/// `unauthenticated` always carry the same sentence, so stores can keep the code
/// alone and read the reason back whole.
pub fn standard_reason(code: &str) -> Option<&'static Reason> {
    match code {
        "allow" => Some(&ALLOW),
        "unauthenticated" => Some(&UNAUTHENTICATED),
        _ => None,
    }
}

/// The three reasons one condition can give, written when the rule is compiled.
#[derive(Debug, Clone, PartialEq)]
struct ConditionReasons {
    attribute: Attribute,
    /// The condition held (it matters through a `not`, or as a matched deny).
    when_true: Reason,
    /// The condition did not hold.
    when_false: Reason,
    /// The condition's attribute was unknown.
    when_unknown: Reason,
}

/// A compiled rule for one slot, with every reason it can give precomputed, so
/// deciding does no formatting: a denial copies prepared reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    rule: Rule,
    slot: Slot,
    conditions: Vec<ConditionReasons>,
    fallback: Reason,
}

impl CompiledRule {
    /// Compiles `rule` for `slot`, preparing the reasons of each of its conditions.
    pub fn new(rule: Rule, slot: Slot) -> CompiledRule {
        let (code, lead): (&'static str, &str) = match slot {
            Slot::Require => ("require.not_met", "必須条件を満たしていないため拒否"),
            Slot::Deny => ("deny.matched", "拒否条件に該当するため拒否"),
        };
        let unknown_code: &'static str = match slot {
            Slot::Require => "require.unknown_attribute",
            Slot::Deny => "deny.unknown_attribute",
        };
        let conditions = rule
            .conditions()
            .into_iter()
            .map(|c| {
                let attribute = c.attribute();
                let text: Arc<str> = c.to_string().into();
                let ja = condition_ja(c);
                let make = |code: &'static str, message: String| Reason {
                    code: Cow::Borrowed(code),
                    slot: Some(slot),
                    attribute: Some(Cow::Borrowed(attribute.name())),
                    condition: Some(text.clone()),
                    message: message.into(),
                };
                ConditionReasons {
                    attribute,
                    when_true: make(code, format!("{lead}（「{ja}」に該当する）")),
                    when_false: make(code, format!("{lead}（「{ja}」を満たしていない）")),
                    when_unknown: make(
                        unknown_code,
                        format!("{}が不明なため拒否", attribute.label_ja()),
                    ),
                }
            })
            .collect();
        let fallback = Reason {
            code: Cow::Borrowed(code),
            slot: Some(slot),
            attribute: None,
            condition: Some(rule.to_string().into()),
            message: format!("{}「{}」により拒否", slot.label_ja(), rule_ja(&rule)).into(),
        };
        CompiledRule {
            rule,
            slot,
            conditions,
            fallback,
        }
    }
    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
    /// The slot it was compiled for.
    pub fn slot(&self) -> Slot {
        self.slot
    }
    /// The rule in Japanese.
    pub fn japanese(&self) -> String {
        rule_ja(&self.rule)
    }

    /// Appends why this rule did not let the request through.
    fn explain_into(&self, req: &crate::context::Request, tz: Tz, out: &mut Vec<Reason>) {
        let (_, causes) = explain(&self.rule, req, tz);
        let before = out.len();
        // One reason per unknown attribute is enough for a person to act on.
        let mut unknown_seen: Vec<Attribute> = Vec::new();
        for cause in causes {
            let Some(c) = self.conditions.get(cause.index) else {
                continue;
            };
            let reason = match cause.truth {
                Truth::Unknown => {
                    if unknown_seen.contains(&c.attribute) {
                        continue;
                    }
                    unknown_seen.push(c.attribute);
                    &c.when_unknown
                }
                Truth::True => &c.when_true,
                Truth::False => &c.when_false,
            };
            out.push(reason.clone());
        }
        if out.len() == before {
            // Defensive: a denial always says why, even if no condition stands out.
            out.push(self.fallback.clone());
        }
    }
}

/// A target's two rules; `None` is an empty text (require: holds; deny: never holds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppRules {
    /// 必須条件.
    pub require: Option<CompiledRule>,
    /// 拒否条件.
    pub deny: Option<CompiledRule>,
}

impl AppRules {
    /// Builds from the two rules.
    pub fn new(require: Option<Rule>, deny: Option<Rule>) -> AppRules {
        AppRules {
            require: require.map(|r| CompiledRule::new(r, Slot::Require)),
            deny: deny.map(|r| CompiledRule::new(r, Slot::Deny)),
        }
    }

    /// The values of the require and deny rules on `req`, an empty slot counting as
    /// what it means (require: TRUE; deny: FALSE). Allow needs `(TRUE, FALSE)`.
    pub(crate) fn slot_values(&self, req: &crate::context::Request, tz: Tz) -> (Truth, Truth) {
        let require = self
            .require
            .as_ref()
            .map_or(Truth::True, |r| eval_rule(&r.rule, req, tz));
        let deny = self
            .deny
            .as_ref()
            .map_or(Truth::False, |r| eval_rule(&r.rule, req, tz));
        (require, deny)
    }

    /// Decides one request.
    pub fn decide(&self, req: &crate::context::Request, authn: Authentication, tz: Tz) -> Decision {
        if authn == Authentication::Anonymous {
            return Decision {
                effect: Effect::Deny,
                reasons: vec![UNAUTHENTICATED.clone()],
            };
        }
        let (require, deny) = self.slot_values(req, tz);
        if require == Truth::True && deny == Truth::False {
            return Decision {
                effect: Effect::Allow,
                reasons: vec![ALLOW.clone()],
            };
        }
        let mut reasons = Vec::new();
        if require != Truth::True {
            if let Some(r) = &self.require {
                r.explain_into(req, tz, &mut reasons);
            }
        }
        if deny != Truth::False {
            if let Some(r) = &self.deny {
                r.explain_into(req, tz, &mut reasons);
            }
        }
        Decision {
            effect: Effect::Deny,
            reasons,
        }
    }
}
