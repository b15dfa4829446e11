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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code: `allow`, `unauthenticated`, `require.not_met`,
    /// `require.unknown_attribute`, `deny.matched`, `deny.unknown_attribute`.
    pub code: String,
    /// The slot concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// The attribute concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// The condition concerned, in canonical text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// A sentence an employee can understand.
    pub message: String,
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

/// A compiled rule with what its reasons need precomputed once (the canonical text
/// and Japanese clause of every condition), so deciding does no formatting until
/// a denial is explained.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    rule: Rule,
    conditions: Vec<(Attribute, String, String)>,
}

impl CompiledRule {
    /// Precomputes the texts of `rule`'s conditions.
    pub fn new(rule: Rule) -> CompiledRule {
        let conditions = rule
            .conditions()
            .into_iter()
            .map(|c| (c.attribute(), c.to_string(), condition_ja(c)))
            .collect();
        CompiledRule { rule, conditions }
    }
    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
    /// The rule in Japanese.
    pub fn japanese(&self) -> String {
        rule_ja(&self.rule)
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
            require: require.map(CompiledRule::new),
            deny: deny.map(CompiledRule::new),
        }
    }

    /// Decides one request.
    pub fn decide(&self, req: &crate::context::Request, authn: Authentication, tz: Tz) -> Decision {
        if authn == Authentication::Anonymous {
            return Decision {
                effect: Effect::Deny,
                reasons: vec![Reason {
                    code: "unauthenticated".into(),
                    slot: None,
                    attribute: None,
                    condition: None,
                    message: "認証されていないため拒否".into(),
                }],
            };
        }
        let require = self
            .require
            .as_ref()
            .map_or(Truth::True, |r| eval_rule(&r.rule, req, tz));
        let deny = self
            .deny
            .as_ref()
            .map_or(Truth::False, |r| eval_rule(&r.rule, req, tz));
        if require == Truth::True && deny == Truth::False {
            return Decision {
                effect: Effect::Allow,
                reasons: vec![Reason {
                    code: "allow".into(),
                    slot: None,
                    attribute: None,
                    condition: None,
                    message: "必須条件を満たし、拒否条件に該当しないため許可".into(),
                }],
            };
        }
        let mut reasons = Vec::new();
        if require != Truth::True {
            if let Some(r) = &self.require {
                explain_slot(r, Slot::Require, req, tz, &mut reasons);
            }
        }
        if deny != Truth::False {
            if let Some(r) = &self.deny {
                explain_slot(r, Slot::Deny, req, tz, &mut reasons);
            }
        }
        Decision {
            effect: Effect::Deny,
            reasons,
        }
    }
}

fn explain_slot(
    r: &CompiledRule,
    slot: Slot,
    req: &crate::context::Request,
    tz: Tz,
    out: &mut Vec<Reason>,
) {
    let (_, causes) = explain(&r.rule, req, tz);
    let before = out.len();
    let mut unknown_seen: Vec<Attribute> = Vec::new();
    for cause in causes {
        let Some((attr, text, ja)) = r.conditions.get(cause.index) else {
            continue;
        };
        if cause.truth == Truth::Unknown {
            // One reason per unknown attribute is enough for a person to act on.
            if unknown_seen.contains(attr) {
                continue;
            }
            unknown_seen.push(*attr);
            out.push(Reason {
                code: format!("{}.unknown_attribute", slot.as_str()),
                slot: Some(slot),
                attribute: Some(attr.name().to_string()),
                condition: Some(text.clone()),
                message: format!("{}が不明なため拒否", attr.label_ja()),
            });
            continue;
        }
        // A condition explains the slot's value directly, or through a `not` (then
        // its own value is the opposite): say which way it went, in words the
        // employee can act on.
        let held = if cause.truth == Truth::True {
            format!("「{ja}」に該当する")
        } else {
            format!("「{ja}」を満たしていない")
        };
        let (code, message) = match slot {
            Slot::Require => (
                "require.not_met",
                format!("必須条件を満たしていないため拒否（{held}）"),
            ),
            Slot::Deny => (
                "deny.matched",
                format!("拒否条件に該当するため拒否（{held}）"),
            ),
        };
        out.push(Reason {
            code: code.into(),
            slot: Some(slot),
            attribute: Some(attr.name().to_string()),
            condition: Some(text.clone()),
            message,
        });
    }
    if out.len() == before {
        // Defensive: a denial always says why, even if no single condition stands out.
        out.push(Reason {
            code: format!("{}.not_met", slot.as_str()),
            slot: Some(slot),
            attribute: None,
            condition: Some(r.rule.to_string()),
            message: format!("{}「{}」により拒否", slot.label_ja(), r.japanese()),
        });
    }
}
