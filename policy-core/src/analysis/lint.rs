//! Lint findings: rules that lock everyone out, deny everyone, or contain parts that
//! can never hold or say the same thing twice.
//!
//! The whole-rule findings ([`FindingKind::RequireNeverHolds`],
//! [`FindingKind::DenyAlwaysHolds`], [`FindingKind::AlwaysTrueRequire`]) come from a
//! search over the candidate values of [`super::samples`], evaluated with the real
//! evaluator. They are reported only when the search covered the whole candidate
//! space; a rule too large to cover within the cap gets no such finding (no guess).
//! The examples attached are real requests, checked by evaluation.

use chrono_tz::Tz;
use serde::Serialize;

use super::samples::{self, candidates, candidates_for, depth_first, Step, MAX_EVALUATIONS};
use crate::ast::{Condition, Rule};
use crate::context::{Request, Value};
use crate::decision::Slot;
use crate::eval::{eval_rule, Truth};
use crate::schema::{AttrType, Attribute};

/// What kind of problem a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A 必須条件 that no request satisfies: nobody can access.
    RequireNeverHolds,
    /// A 拒否条件 that every request with the attributes it reads matches: everybody
    /// is denied.
    DenyAlwaysHolds,
    /// A 必須条件 that every request with the attributes it reads satisfies: it only
    /// refuses requests that lack those attributes.
    AlwaysTrueRequire,
    /// Conditions on one attribute joined by `and` that no value satisfies together.
    ContradictoryRange,
    /// The same condition twice in one `and`/`or`.
    DuplicateCondition,
}

impl FindingKind {
    /// A stable code (`require_never_holds`, ...).
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::RequireNeverHolds => "require_never_holds",
            FindingKind::DenyAlwaysHolds => "deny_always_holds",
            FindingKind::AlwaysTrueRequire => "always_true_require",
            FindingKind::ContradictoryRange => "contradictory_range",
            FindingKind::DuplicateCondition => "duplicate_condition",
        }
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// A Japanese sentence for the administrator.
    pub message: String,
    /// A request that shows the problem, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Request>,
}

/// The findings for one rule in one slot, most serious first. Clock conditions are
/// read in the policy time zone `tz`.
pub fn lint(rule: &Rule, slot: Slot, tz: Tz) -> Vec<Finding> {
    let mut out = Vec::new();
    match slot {
        Slot::Require => {
            if never_true(rule, tz) {
                out.push(Finding {
                    kind: FindingKind::RequireNeverHolds,
                    message:
                        "この必須条件はどのリクエストでも満たされないため、誰もアクセスできません"
                            .into(),
                    example: None,
                });
            } else if let Some(example) = true_whenever_known(rule, tz) {
                out.push(Finding {
                    kind: FindingKind::AlwaysTrueRequire,
                    message: format!(
                        "この必須条件は、参照する属性（{}）が分かっているすべてのリクエストで満たされるため、\
                         実質的にアクセスを制限していません（それらの属性が不明なリクエストだけが拒否されます）",
                        labels(rule)
                    ),
                    example: Some(example),
                });
            }
        }
        Slot::Deny => {
            if let Some(example) = true_whenever_known(rule, tz) {
                out.push(Finding {
                    kind: FindingKind::DenyAlwaysHolds,
                    message: format!(
                        "この拒否条件は、参照する属性（{}）が分かっているすべてのリクエストに該当するため、\
                         全員が拒否されます",
                        labels(rule)
                    ),
                    example: Some(example),
                });
            }
        }
    }
    contradictions(rule, tz, &mut out);
    duplicates(rule, &mut out);
    out
}

fn labels(rule: &Rule) -> String {
    let mut attrs: Vec<Attribute> = rule.conditions().iter().map(|c| c.attribute()).collect();
    attrs.sort();
    attrs.dedup();
    attrs
        .iter()
        .map(|a| a.label_ja())
        .collect::<Vec<_>>()
        .join("、")
}

/// True when the search proves that no candidate request makes `rule` TRUE. Unknown
/// attributes never help a rule become TRUE, so only known values are tried.
fn never_true(rule: &Rule, tz: Tz) -> bool {
    let cands = candidates(&[rule], tz);
    let mut found = false;
    let out = depth_first(&cands, false, MAX_EVALUATIONS, |req, _| {
        match eval_rule(rule, req, tz) {
            Truth::True => {
                found = true;
                Step::Stop
            }
            Truth::False => Step::Prune,
            Truth::Unknown => Step::Descend,
        }
    });
    out.complete && !found
}

/// When the search proves that `rule` is TRUE on every candidate request in which all
/// the attributes it reads are known, the simplest request found on which it is TRUE.
fn true_whenever_known(rule: &Rule, tz: Tz) -> Option<Request> {
    let cands = candidates(&[rule], tz);
    let full: u64 = cands
        .iter()
        .fold(0, |m, c| m | samples::attr_bit(c.attribute));
    let mut counterexample = false;
    let mut example: Option<(Request, u32)> = None;
    let out = depth_first(
        &cands,
        false,
        MAX_EVALUATIONS,
        |req, mask| match eval_rule(rule, req, tz) {
            Truth::True => {
                if example.as_ref().is_none_or(|(_, n)| mask.count_ones() < *n) {
                    example = Some((req.clone(), mask.count_ones()));
                }
                Step::Prune
            }
            Truth::False => {
                counterexample = true;
                Step::Stop
            }
            Truth::Unknown if mask == full => {
                counterexample = true;
                Step::Stop
            }
            Truth::Unknown => Step::Descend,
        },
    );
    if out.complete && !counterexample {
        example.map(|(r, _)| r)
    } else {
        None
    }
}

/// The single attribute a part reads, if it reads exactly one.
fn single_attribute(rule: &Rule) -> Option<Attribute> {
    let conds = rule.conditions();
    let first = conds.first()?.attribute();
    conds
        .iter()
        .all(|c| c.attribute() == first)
        .then_some(first)
}

fn contradictions(rule: &Rule, tz: Tz, out: &mut Vec<Finding>) {
    match rule {
        Rule::Atom(_) => {}
        Rule::And(parts) => {
            let mut groups: Vec<(Attribute, Vec<&Rule>)> = Vec::new();
            for p in parts {
                if let Some(a) = single_attribute(p) {
                    match groups.iter_mut().find(|(g, _)| *g == a) {
                        Some((_, v)) => v.push(p),
                        None => groups.push((a, vec![p])),
                    }
                }
            }
            groups.sort_by_key(|(a, _)| *a);
            for (attr, group) in groups {
                if group.len() >= 2 && !jointly_satisfiable(attr, &group, tz) {
                    let quoted: Vec<String> = group.iter().map(|r| format!("「{r}」")).collect();
                    out.push(Finding {
                        kind: FindingKind::ContradictoryRange,
                        message: format!(
                            "{}についての条件{}を同時に満たす値がないため、この「かつ」でつながれた部分は決して成り立ちません",
                            attr.label_ja(),
                            quoted.join("と")
                        ),
                        example: None,
                    });
                }
            }
            parts.iter().for_each(|p| contradictions(p, tz, out));
        }
        Rule::Or(parts) => parts.iter().for_each(|p| contradictions(p, tz, out)),
        Rule::Not(r) => contradictions(r, tz, out),
        Rule::Implies(a, b) => {
            contradictions(a, tz, out);
            contradictions(b, tz, out);
        }
    }
}

/// True unless the parts (all on `attr`) are shown to have no common value: no
/// candidate value makes every part TRUE. For locations, where the candidates cannot
/// cover every shape of overlap, a contradiction is reported only when two circles
/// are provably apart.
fn jointly_satisfiable(attr: Attribute, parts: &[&Rule], tz: Tz) -> bool {
    let conds: Vec<&Condition> = parts.iter().flat_map(|p| p.conditions()).collect();
    let values = candidates_for(attr, &conds, tz);
    let some_value = values.iter().flatten().any(|v: &Value| {
        let mut req = Request::default();
        req.set(attr, Some(v.clone())).is_err()
            || parts.iter().all(|p| eval_rule(p, &req, tz) == Truth::True)
    });
    if some_value {
        return true;
    }
    if attr.ty() == AttrType::Point {
        let circles: Vec<(crate::value::Point, f64)> = parts
            .iter()
            .filter_map(|p| match p {
                Rule::Atom(Condition::Within {
                    center, radius_km, ..
                }) => Some((*center, *radius_km)),
                _ => None,
            })
            .collect();
        let apart = circles.iter().enumerate().any(|(i, (c1, r1))| {
            circles[i + 1..]
                .iter()
                .any(|(c2, r2)| c1.distance_km(*c2) > r1 + r2)
        });
        return !apart;
    }
    false
}

/// Structural equality, with `in` and `in_cidr` lists compared as sets and installed
/// application names compared case-insensitively.
fn same_rule(a: &Rule, b: &Rule) -> bool {
    match (a, b) {
        (Rule::Atom(x), Rule::Atom(y)) => same_condition(x, y),
        (Rule::And(x), Rule::And(y)) | (Rule::Or(x), Rule::Or(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_rule(p, q))
        }
        (Rule::Not(x), Rule::Not(y)) => same_rule(x, y),
        (Rule::Implies(a1, b1), Rule::Implies(a2, b2)) => same_rule(a1, a2) && same_rule(b1, b2),
        _ => false,
    }
}

fn same_set<T: PartialEq>(x: &[T], y: &[T]) -> bool {
    x.iter().all(|i| y.contains(i)) && y.iter().all(|i| x.contains(i))
}

fn same_condition(x: &Condition, y: &Condition) -> bool {
    match (x, y) {
        (Condition::In(a, l1), Condition::In(b, l2)) => a == b && same_set(l1, l2),
        (Condition::InCidr(a, n1), Condition::InCidr(b, n2)) => a == b && same_set(n1, n2),
        (Condition::Contains(a, s1), Condition::Contains(b, s2))
            if *a == Attribute::DeviceApps && *b == Attribute::DeviceApps =>
        {
            s1.to_lowercase() == s2.to_lowercase()
        }
        _ => x == y,
    }
}

fn duplicates(rule: &Rule, out: &mut Vec<Finding>) {
    match rule {
        Rule::Atom(_) => {}
        Rule::And(parts) | Rule::Or(parts) => {
            let word = if matches!(rule, Rule::And(_)) {
                "かつ"
            } else {
                "または"
            };
            let mut reported: Vec<&Rule> = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                if reported.iter().any(|r| same_rule(r, p)) {
                    continue;
                }
                let count = parts.iter().filter(|q| same_rule(p, q)).count();
                if count >= 2 && parts[..j].iter().all(|q| !same_rule(p, q)) {
                    reported.push(p);
                    out.push(Finding {
                        kind: FindingKind::DuplicateCondition,
                        message: format!(
                            "条件「{p}」が同じ「{word}」の中に{count}回書かれています（重複した条件は意味を変えないため、書き間違いでないか確認してください）"
                        ),
                        example: None,
                    });
                }
            }
            parts.iter().for_each(|p| duplicates(p, out));
        }
        Rule::Not(r) => duplicates(r, out),
        Rule::Implies(a, b) => {
            duplicates(a, out);
            duplicates(b, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{CmpOp, Literal};
    use crate::value::{Point, TimeOfDay, WeekdaySet};

    const TZ: Tz = chrono_tz::Asia::Tokyo;

    fn atom(c: Condition) -> Rule {
        Rule::Atom(c)
    }
    fn b(attr: Attribute, v: bool) -> Rule {
        atom(Condition::Eq(attr, Literal::Bool(v)))
    }
    fn country(c: &str) -> Rule {
        atom(Condition::Eq(
            Attribute::SourceCountry,
            Literal::Country(c.parse().unwrap()),
        ))
    }
    fn score(op: CmpOp, n: f64) -> Rule {
        atom(Condition::Compare(
            Attribute::RiskScore,
            op,
            Literal::Num(n),
        ))
    }
    fn of_day(s: u32, e: u32) -> Rule {
        atom(Condition::TimeOfDay {
            attr: Attribute::Time,
            start: TimeOfDay::new(s, 0).unwrap(),
            end: TimeOfDay::new(e, 0).unwrap(),
        })
    }
    fn not(r: Rule) -> Rule {
        Rule::Not(Box::new(r))
    }
    fn kinds(f: &[Finding]) -> Vec<FindingKind> {
        f.iter().map(|f| f.kind).collect()
    }
    fn g01() -> Rule {
        Rule::And(vec![
            country("JP"),
            b(Attribute::DeviceTpmEnabled, true),
            b(Attribute::DeviceDiskEncrypted, true),
            atom(Condition::Eq(
                Attribute::DeviceDiskMethod,
                Literal::Enum("bitlocker"),
            )),
        ])
    }

    #[test]
    fn mfa_true_and_false_never_holds_and_contradicts() {
        let r = Rule::And(vec![
            b(Attribute::AuthMfa, true),
            b(Attribute::AuthMfa, false),
        ]);
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(
            kinds(&f),
            vec![
                FindingKind::RequireNeverHolds,
                FindingKind::ContradictoryRange
            ]
        );
        assert_eq!(
            f[0].message,
            "この必須条件はどのリクエストでも満たされないため、誰もアクセスできません"
        );
        assert!(
            f[1].message.contains("多要素認証の利用"),
            "{}",
            f[1].message
        );
        assert!(
            f[1].message.contains("「auth.mfa == true」"),
            "{}",
            f[1].message
        );
        assert!(
            f[1].message.contains("「auth.mfa == false」"),
            "{}",
            f[1].message
        );
    }

    #[test]
    fn disjoint_score_ranges_contradict() {
        let r = Rule::And(vec![score(CmpOp::Ge, 0.8), score(CmpOp::Lt, 0.5)]);
        let f = lint(&r, Slot::Deny, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::ContradictoryRange]);
        assert!(f[0].message.contains("リスクスコア"));
        assert!(f[0]
            .message
            .contains("「risk.score >= 0.8」と「risk.score < 0.5」"));
        // Overlapping ranges are fine, even when the overlap is narrow.
        let ok = Rule::And(vec![score(CmpOp::Ge, 0.5), score(CmpOp::Lt, 0.505)]);
        assert_eq!(lint(&ok, Slot::Require, TZ), vec![]);
        // Touching half-open ranges do not overlap; closed ones do.
        let touch = Rule::And(vec![score(CmpOp::Ge, 0.5), score(CmpOp::Lt, 0.5)]);
        assert!(kinds(&lint(&touch, Slot::Deny, TZ)).contains(&FindingKind::ContradictoryRange));
        let closed = Rule::And(vec![score(CmpOp::Ge, 0.5), score(CmpOp::Le, 0.5)]);
        assert_eq!(lint(&closed, Slot::Deny, TZ), vec![]);
    }

    #[test]
    fn contradictions_are_found_at_any_depth_and_for_times_and_countries() {
        // Inside an `or`, so the rule as a whole can still hold.
        let r = Rule::Or(vec![
            b(Attribute::AuthMfa, true),
            Rule::And(vec![of_day(9, 12), of_day(13, 15)]),
        ]);
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::ContradictoryRange]);
        assert!(f[0].message.contains("アクセス日時"));
        assert!(f[0].message.contains("「time of_day [09:00, 12:00)」"));

        let r = Rule::And(vec![
            b(Attribute::AuthMfa, true),
            country("JP"),
            country("US"),
        ]);
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(
            kinds(&f),
            vec![
                FindingKind::RequireNeverHolds,
                FindingKind::ContradictoryRange
            ]
        );
        assert!(f[1].message.contains("アクセス元の国"));

        // A crossing-midnight range and a daytime one overlap at 23:00: no finding.
        let ok = Rule::And(vec![of_day(22, 5), of_day(20, 24)]);
        assert_eq!(lint(&ok, Slot::Require, TZ), vec![]);

        // Weekdays and weekend never meet.
        let days = |d| atom(Condition::Weekday(Attribute::Time, d));
        let r = Rule::And(vec![days(WeekdaySet::WEEKDAYS), days(WeekdaySet::WEEKEND)]);
        assert!(kinds(&lint(&r, Slot::Deny, TZ)).contains(&FindingKind::ContradictoryRange));

        // `not` of an atom counts as a part on the same attribute.
        let r = Rule::And(vec![country("JP"), not(country("JP"))]);
        assert!(kinds(&lint(&r, Slot::Deny, TZ)).contains(&FindingKind::ContradictoryRange));
    }

    #[test]
    fn geofences_contradict_only_when_provably_apart() {
        let within = |lat: f64, lon: f64, r: f64| {
            atom(Condition::Within {
                attr: Attribute::DeviceLocation,
                center: Point { lat, lon },
                radius_km: r,
            })
        };
        // Tokyo and Osaka, 5 km each: apart.
        let r = Rule::And(vec![
            within(35.681, 139.767, 5.0),
            within(34.693, 135.502, 5.0),
        ]);
        assert!(kinds(&lint(&r, Slot::Deny, TZ)).contains(&FindingKind::ContradictoryRange));
        // Two overlapping circles whose centres lie outside each other.
        let r = Rule::And(vec![
            within(35.681, 139.767, 5.0),
            within(35.681, 139.867, 5.0),
        ]);
        assert_eq!(lint(&r, Slot::Deny, TZ), vec![]);
    }

    #[test]
    fn duplicates_are_reported_once_per_node() {
        let r = Rule::Or(vec![country("JP"), country("JP")]);
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::DuplicateCondition]);
        assert!(f[0].message.contains("「source.country == \"JP\"」"));
        assert!(f[0].message.contains("2回"));

        // `in` lists equal as sets are the same condition; different lists are not.
        let jp = || Literal::Country("JP".parse().unwrap());
        let us = || Literal::Country("US".parse().unwrap());
        let r = Rule::And(vec![
            atom(Condition::In(Attribute::SourceCountry, vec![jp(), us()])),
            b(Attribute::AuthMfa, true),
            atom(Condition::In(Attribute::SourceCountry, vec![us(), jp()])),
            atom(Condition::In(Attribute::SourceCountry, vec![us(), jp()])),
        ]);
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::DuplicateCondition]);
        assert!(f[0].message.contains("3回"));
        let r = Rule::And(vec![
            atom(Condition::In(Attribute::SourceCountry, vec![jp(), us()])),
            atom(Condition::In(Attribute::SourceCountry, vec![jp()])),
        ]);
        assert_eq!(lint(&r, Slot::Require, TZ), vec![]);
    }

    #[test]
    fn deny_that_always_holds() {
        let mfa = || b(Attribute::AuthMfa, true);
        let r = Rule::Or(vec![not(mfa()), mfa()]);
        let f = lint(&r, Slot::Deny, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::DenyAlwaysHolds]);
        assert!(f[0].message.contains("全員が拒否されます"));
        assert!(f[0].message.contains("多要素認証の利用"));
        let ex = f[0].example.as_ref().expect("an example");
        assert_eq!(eval_rule(&r, ex, TZ), Truth::True);
        assert!(ex.auth.mfa.is_some());
        // In the require slot the same rule only asks for the attribute to be known.
        let f = lint(&r, Slot::Require, TZ);
        assert_eq!(kinds(&f), vec![FindingKind::AlwaysTrueRequire]);
        assert_eq!(
            eval_rule(&r, f[0].example.as_ref().unwrap(), TZ),
            Truth::True
        );
        // A deny that can be FALSE is fine.
        assert_eq!(lint(&mfa(), Slot::Deny, TZ), vec![]);
        // A deny that needs two attributes and covers every combination of them.
        let score_hi = score(CmpOp::Ge, 0.5);
        let r = Rule::Or(vec![
            score_hi.clone(),
            Rule::And(vec![not(score_hi), b(Attribute::RiskSuspicious, false)]),
            b(Attribute::RiskSuspicious, true),
        ]);
        assert_eq!(
            kinds(&lint(&r, Slot::Deny, TZ)),
            vec![FindingKind::DenyAlwaysHolds]
        );
    }

    #[test]
    fn sane_rules_have_no_findings() {
        assert_eq!(lint(&g01(), Slot::Require, TZ), vec![]);
        assert_eq!(lint(&g01(), Slot::Deny, TZ), vec![]);
        let office = Rule::And(vec![
            of_day(9, 18),
            atom(Condition::Weekday(Attribute::Time, WeekdaySet::WEEKDAYS)),
            b(Attribute::AuthMfa, true),
        ]);
        assert_eq!(lint(&office, Slot::Require, TZ), vec![]);
    }

    #[test]
    fn large_and_is_decided_despite_its_size() {
        // 3^14 requests with unknowns, 2^14 fully known: pruning keeps it small.
        let bools: Vec<Attribute> = Attribute::ALL
            .iter()
            .copied()
            .filter(|a| a.ty() == AttrType::Bool)
            .collect();
        assert!(bools.len() >= 10);
        let mut parts: Vec<Rule> = bools.iter().map(|a| b(*a, true)).collect();
        let r = Rule::And(parts.clone());
        assert_eq!(lint(&r, Slot::Require, TZ), vec![]);
        parts.push(b(bools[0], false));
        let r = Rule::And(parts);
        assert_eq!(
            kinds(&lint(&r, Slot::Require, TZ)),
            vec![
                FindingKind::RequireNeverHolds,
                FindingKind::ContradictoryRange
            ]
        );
    }
}
