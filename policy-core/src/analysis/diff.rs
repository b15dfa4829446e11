//! Semantic diff: concrete requests on which two versions of an app's rules decide
//! differently, and requests that tell two rules apart.
//!
//! Nothing here reasons about what a rule "means": the candidate requests of
//! [`super::samples`] are fed to the real evaluator ([`AppRules::decide`],
//! [`eval_rule`]) and only requests that really flip are reported, so every example is
//! true by construction. When the search covers the whole candidate space
//! (`exhaustive`), "no flip" means no request flips at any boundary of any condition;
//! when it hit its cap, the examples are still true but their absence proves nothing.

use std::collections::HashSet;

use chrono_tz::Tz;
use serde::Serialize;

use super::samples::{candidates, depth_first, minimise, staged, Step, MAX_EVALUATIONS};
use crate::ast::Rule;
use crate::context::Request;
use crate::decision::{AppRules, Authentication, Decision, Effect};
use crate::eval::{eval_rule, Truth};

/// One request whose decision changes between the old and the new rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    /// The request (only the attributes that matter are known).
    pub request: Request,
    /// The decision under the old rules.
    pub old: Decision,
    /// The decision under the new rules.
    pub new: Decision,
}

/// What [`find_flips`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// Example requests whose decision flips, simplest first.
    pub flips: Vec<Flip>,
    /// The whole candidate space was covered: no flip beyond these kinds exists at
    /// any boundary of any condition. When false the search was capped and finding
    /// no flip proves nothing.
    pub exhaustive: bool,
    /// Candidate requests evaluated, including those spent reducing the examples.
    pub evaluated: usize,
}

/// The effect of `rules` on `req` (authenticated), and whether every request that
/// knows more than `req` is certain to get the same effect.
fn effect(rules: &AppRules, req: &Request, tz: Tz) -> (Effect, bool) {
    match rules.slot_values(req, tz) {
        (Truth::True, Truth::False) => (Effect::Allow, true),
        // Definite values stay definite as more becomes known.
        (Truth::False, _) | (_, Truth::True) => (Effect::Deny, true),
        _ => (Effect::Deny, false),
    }
}

/// Keeps at most this many distinct kinds of flip while searching.
const MAX_RECORDED: usize = 512;

struct Found {
    request: Request,
    mask: u64,
    old: Effect,
}

/// Searches for requests whose decision differs between `old` and `new` (for an
/// authenticated user; clock conditions read in `tz`).
///
/// Returns at most `max_examples` flips, simplest first (fewest known attributes),
/// each different from the others in its direction (allow→deny or deny→allow) or in
/// which attributes it knows; when both directions occur, the simplest flip of each
/// is included. Each example is reduced to the attributes it needs (an attribute is
/// dropped when the request still flips the same way without it) and re-decided with
/// [`AppRules::decide`] before it is returned.
///
/// The search walks the candidate space depth-first, skipping every request that
/// knows more than one on which both decisions are already certain; if it reaches
/// three quarters of [`MAX_EVALUATIONS`] evaluations, it spends the rest on a staged
/// sample (single attributes, pairs, then pseudo-random requests) and reports
/// `exhaustive: false`.
pub fn find_flips(old: &AppRules, new: &AppRules, tz: Tz, max_examples: usize) -> SearchReport {
    find_flips_within(old, new, tz, max_examples, MAX_EVALUATIONS)
}

/// [`find_flips`] with another cap on evaluations (`budget`; the few evaluations spent
/// reducing the examples come on top).
pub fn find_flips_within(
    old: &AppRules,
    new: &AppRules,
    tz: Tz,
    max_examples: usize,
    budget: usize,
) -> SearchReport {
    let rules: Vec<&Rule> = [&old.require, &old.deny, &new.require, &new.deny]
        .into_iter()
        .flatten()
        .map(|r| r.rule())
        .collect();
    let cands = candidates(&rules, tz);

    let mut found: Vec<Found> = Vec::new();
    let mut kinds: HashSet<(Effect, u64)> = HashSet::new();
    let mut visit = |req: &Request, mask: u64| {
        let (o, o_sure) = effect(old, req, tz);
        let (n, n_sure) = effect(new, req, tz);
        if o != n && kinds.insert((o, mask)) {
            let f = Found {
                request: req.clone(),
                mask,
                old: o,
            };
            if found.len() < MAX_RECORDED {
                found.push(f);
            } else if let Some(worst) = (0..found.len()).max_by_key(|i| found[*i].mask.count_ones())
            {
                // Full: a simpler flip takes the place of the least simple one.
                if found[worst].mask.count_ones() > mask.count_ones() {
                    found[worst] = f;
                }
            }
        }
        if o_sure && n_sure {
            Step::Prune
        } else {
            Step::Descend
        }
    };
    let walk = depth_first(&cands, true, budget - budget / 4, &mut visit);
    let mut evaluated = walk.evaluated;
    let exhaustive = walk.complete;
    if !exhaustive {
        evaluated += staged(&cands, budget - evaluated, &mut visit).evaluated;
    }

    // Reduce each example to what it needs, then keep one per (direction, attributes).
    let mut reduced: Vec<Found> = Vec::new();
    let mut seen: HashSet<(Effect, u64)> = HashSet::new();
    for f in found {
        let (request, mask, spent) = minimise(&f.request, f.mask, |r| {
            let (o, _) = effect(old, r, tz);
            let (n, _) = effect(new, r, tz);
            o == f.old && n != o
        });
        evaluated += spent;
        if seen.insert((f.old, mask)) {
            reduced.push(Found {
                request,
                mask,
                old: f.old,
            });
        }
    }
    // Stable: among equally simple flips, the order of discovery.
    reduced.sort_by_key(|f| f.mask.count_ones());

    let mut chosen: Vec<usize> = Vec::new();
    if max_examples >= 2 {
        for dir in [Effect::Allow, Effect::Deny] {
            if let Some(i) = reduced.iter().position(|f| f.old == dir) {
                chosen.push(i);
            }
        }
    }
    for i in 0..reduced.len() {
        if chosen.len() >= max_examples {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.truncate(max_examples);
    chosen.sort_unstable();

    let flips = chosen
        .into_iter()
        .filter_map(|i| {
            let request = reduced[i].request.clone();
            let o = old.decide(&request, Authentication::Authenticated, tz);
            let n = new.decide(&request, Authentication::Authenticated, tz);
            // Verified by construction; checked again on the real decision.
            (o.effect != n.effect).then_some(Flip {
                request,
                old: o,
                new: n,
            })
        })
        .collect();
    SearchReport {
        flips,
        exhaustive,
        evaluated,
    }
}

/// A request on which the two rules' three-valued results differ, with those results
/// (used to compare an LLM's translation with the offline one); `None` when the search
/// finds none. The request is reduced to the attributes it needs. `None` after a
/// capped search is not a proof of equivalence; the candidate space of two rules of a
/// single policy text is nearly always covered in full.
pub fn find_separating(a: &Rule, b: &Rule, tz: Tz) -> Option<(Request, Truth, Truth)> {
    let cands = candidates(&[a, b], tz);
    let mut hit: Option<(Request, u64)> = None;
    let mut visit = |req: &Request, mask: u64| {
        let (x, y) = (eval_rule(a, req, tz), eval_rule(b, req, tz));
        if x != y {
            hit = Some((req.clone(), mask));
            Step::Stop
        } else if x != Truth::Unknown {
            // Both definite and equal: so are all requests that know more.
            Step::Prune
        } else {
            Step::Descend
        }
    };
    let walk = depth_first(
        &cands,
        true,
        MAX_EVALUATIONS - MAX_EVALUATIONS / 4,
        &mut visit,
    );
    if !walk.complete && !walk.stopped {
        staged(&cands, MAX_EVALUATIONS / 4, &mut visit);
    }
    let (req, mask) = hit?;
    let (req, _, _) = minimise(&req, mask, |r| eval_rule(a, r, tz) != eval_rule(b, r, tz));
    let (x, y) = (eval_rule(a, &req, tz), eval_rule(b, &req, tz));
    (x != y).then_some((req, x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Condition, DomainMatch, Literal};
    use crate::context::Value;
    use crate::schema::Attribute;
    use crate::value::TimeOfDay;
    use chrono::{Datelike, Timelike};

    const TZ: Tz = chrono_tz::Asia::Tokyo;

    fn atom(c: Condition) -> Rule {
        Rule::Atom(c)
    }
    fn b(attr: Attribute, v: bool) -> Rule {
        atom(Condition::Eq(attr, Literal::Bool(v)))
    }
    fn cc(c: &str) -> Literal {
        Literal::Country(c.parse().unwrap())
    }
    fn country(c: &str) -> Rule {
        atom(Condition::Eq(Attribute::SourceCountry, cc(c)))
    }
    fn not(r: Rule) -> Rule {
        Rule::Not(Box::new(r))
    }
    fn require(r: Rule) -> AppRules {
        AppRules::new(Some(r), None)
    }
    fn deny(r: Rule) -> AppRules {
        AppRules::new(None, Some(r))
    }
    fn of_day(s: u32, e: u32) -> Rule {
        atom(Condition::TimeOfDay {
            attr: Attribute::Time,
            start: TimeOfDay::new(s, 0).unwrap(),
            end: TimeOfDay::new(e, 0).unwrap(),
        })
    }

    /// Every flip really flips, in the direction it claims, on a fresh decision.
    fn verify(old: &AppRules, new: &AppRules, report: &SearchReport) {
        for f in &report.flips {
            let o = old.decide(&f.request, Authentication::Authenticated, TZ);
            let n = new.decide(&f.request, Authentication::Authenticated, TZ);
            assert_eq!(o, f.old, "{}", f.request);
            assert_eq!(n, f.new, "{}", f.request);
            assert_ne!(o.effect, n.effect, "{}", f.request);
        }
    }

    fn directions(report: &SearchReport) -> Vec<(Effect, Effect)> {
        report
            .flips
            .iter()
            .map(|f| (f.old.effect, f.new.effect))
            .collect()
    }

    #[test]
    fn widening_a_country_list_opens_us_only() {
        let old = require(country("JP"));
        let new = require(atom(Condition::In(
            Attribute::SourceCountry,
            vec![cc("JP"), cc("US")],
        )));
        let rep = find_flips(&old, &new, TZ, 10);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive);
        assert!(rep.evaluated > 0);
        assert_eq!(directions(&rep), vec![(Effect::Deny, Effect::Allow)]);
        let mut us = Request::default();
        us.set(
            Attribute::SourceCountry,
            Some(Value::Country("US".parse().unwrap())),
        )
        .unwrap();
        assert_eq!(rep.flips[0].request, us);
        // The reverse change flips the other way.
        let rep = find_flips(&new, &old, TZ, 10);
        verify(&new, &old, &rep);
        assert_eq!(directions(&rep), vec![(Effect::Allow, Effect::Deny)]);
    }

    #[test]
    fn apex_domain_flips_between_in_zone_and_subdomain_of() {
        let zone: crate::value::Domain = "deepseek.com".parse().unwrap();
        let old = deny(atom(Condition::Domain(
            Attribute::DestinationDomain,
            DomainMatch::InZone,
            zone.clone(),
        )));
        let new = deny(atom(Condition::Domain(
            Attribute::DestinationDomain,
            DomainMatch::SubdomainOf,
            zone.clone(),
        )));
        let rep = find_flips(&old, &new, TZ, 10);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive);
        assert_eq!(rep.flips.len(), 1);
        assert_eq!(
            rep.flips[0].request.destination.domain.as_ref(),
            Some(&zone)
        );
        assert_eq!(directions(&rep), vec![(Effect::Deny, Effect::Allow)]);
        assert_eq!(rep.flips[0].old.reasons[0].code, "deny.matched");
    }

    #[test]
    fn shorter_office_hours_flip_at_17() {
        let old = require(of_day(9, 18));
        let new = require(of_day(9, 17));
        let rep = find_flips(&old, &new, TZ, 10);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive);
        assert_eq!(directions(&rep), vec![(Effect::Allow, Effect::Deny)]);
        let t = rep.flips[0]
            .request
            .time
            .expect("time is known")
            .with_timezone(&TZ);
        assert_eq!((t.hour(), t.minute()), (17, 0));
        assert_eq!(t.date_naive().year(), 2026);
    }

    #[test]
    fn identical_rules_never_flip() {
        let r = Rule::And(vec![
            country("JP"),
            b(Attribute::DeviceTpmEnabled, true),
            b(Attribute::DeviceDiskEncrypted, true),
            atom(Condition::Eq(
                Attribute::DeviceDiskMethod,
                Literal::Enum("bitlocker"),
            )),
            of_day(9, 18),
        ]);
        let app = AppRules::new(Some(r.clone()), Some(b(Attribute::RiskSuspicious, true)));
        let rep = find_flips(&app, &app.clone(), TZ, 10);
        assert!(rep.flips.is_empty());
        assert!(rep.exhaustive);
        // Pruning: far fewer evaluations than the 4*3*5*3*50*3 requests of the product.
        assert!(rep.evaluated < 5_000, "{}", rep.evaluated);
    }

    #[test]
    fn changing_the_tpm_attribute_flips_both_ways() {
        let old = require(b(Attribute::DeviceTpmEnabled, true));
        let new = require(b(Attribute::DeviceTpmPresent, true));
        let rep = find_flips(&old, &new, TZ, 10);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive);
        let d = directions(&rep);
        assert!(d.contains(&(Effect::Allow, Effect::Deny)), "{d:?}");
        assert!(d.contains(&(Effect::Deny, Effect::Allow)), "{d:?}");
        // Reduced to one known attribute each, so those are the simplest.
        assert_eq!(
            rep.flips[0].request.device.tpm.enabled.is_some() as u8
                + rep.flips[0].request.device.tpm.present.is_some() as u8,
            1
        );
        // Distinct in direction or in the attributes known.
        for (i, f) in rep.flips.iter().enumerate() {
            for g in &rep.flips[i + 1..] {
                let same_attrs = f.request.device.tpm.enabled.is_some()
                    == g.request.device.tpm.enabled.is_some()
                    && f.request.device.tpm.present.is_some()
                        == g.request.device.tpm.present.is_some();
                assert!(!(same_attrs && f.old.effect == g.old.effect));
            }
        }
        // max_examples is honoured and keeps both directions.
        let rep = find_flips(&old, &new, TZ, 2);
        verify(&old, &new, &rep);
        assert_eq!(rep.flips.len(), 2);
        assert_ne!(rep.flips[0].old.effect, rep.flips[1].old.effect);
        assert!(find_flips(&old, &new, TZ, 0).flips.is_empty());
    }

    #[test]
    fn a_capped_search_is_not_exhaustive_but_its_flips_are_true() {
        let old = require(b(Attribute::DeviceTpmEnabled, true));
        let new = require(b(Attribute::DeviceTpmPresent, true));
        // 8 evaluations: 6 depth-first (the 3 x 3 space needs 9), then the staged sample.
        let rep = find_flips_within(&old, &new, TZ, 10, 8);
        assert!(!rep.exhaustive);
        verify(&old, &new, &rep);
        assert!(!rep.flips.is_empty());
        assert!(rep.evaluated >= 8);
        // The same question uncapped is answered in full.
        assert!(find_flips(&old, &new, TZ, 10).exhaustive);
    }

    #[test]
    fn a_deny_added_to_a_require_flips_only_towards_deny() {
        let old = require(b(Attribute::AuthMfa, true));
        let new = AppRules::new(
            Some(b(Attribute::AuthMfa, true)),
            Some(b(Attribute::RiskSuspicious, true)),
        );
        let rep = find_flips(&old, &new, TZ, 10);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive);
        // Suspicious and also unknown suspicion (fail closed) now deny.
        assert_eq!(directions(&rep), vec![(Effect::Allow, Effect::Deny)]);
        let req = &rep.flips[0].request;
        assert_eq!(req.auth.mfa, Some(true));
        assert_eq!(req.risk.suspicious, None);
        assert_eq!(rep.flips[0].new.reasons[0].code, "deny.unknown_attribute");
    }

    #[test]
    fn a_realistic_policy_is_searched_in_full() {
        use crate::ast::CmpOp;
        use crate::value::WeekdaySet;
        let require_rule = Rule::And(vec![
            atom(Condition::In(Attribute::SourceCountry, vec![cc("JP")])),
            b(Attribute::AuthMfa, true),
            b(Attribute::DeviceTpmEnabled, true),
            b(Attribute::DeviceDiskEncrypted, true),
            atom(Condition::Eq(
                Attribute::DeviceDiskMethod,
                Literal::Enum("bitlocker"),
            )),
            atom(Condition::Compare(
                Attribute::DeviceOsVersion,
                CmpOp::Ge,
                Literal::Version("10.0.22631".parse().unwrap()),
            )),
            atom(Condition::InCidr(
                Attribute::SourceIp,
                vec!["203.0.113.0/24".parse().unwrap()],
            )),
            of_day(9, 18),
            atom(Condition::Weekday(Attribute::Time, WeekdaySet::WEEKDAYS)),
        ]);
        let deny_rule = |threshold: f64| {
            Rule::Or(vec![
                b(Attribute::RiskSuspicious, true),
                atom(Condition::Compare(
                    Attribute::RiskScore,
                    CmpOp::Ge,
                    Literal::Num(threshold),
                )),
                atom(Condition::Domain(
                    Attribute::DestinationDomain,
                    DomainMatch::InZone,
                    "deepseek.com".parse().unwrap(),
                )),
            ])
        };
        let old = AppRules::new(Some(require_rule.clone()), Some(deny_rule(0.8)));
        let new = AppRules::new(Some(require_rule), Some(deny_rule(0.7)));
        let rep = find_flips(&old, &new, TZ, 5);
        verify(&old, &new, &rep);
        assert!(rep.exhaustive, "evaluated {}", rep.evaluated);
        // The only change: a score in [0.7, 0.8) is now denied. Showing it takes every
        // attribute known and acceptable (unknown ones deny in both versions).
        assert_eq!(directions(&rep), vec![(Effect::Allow, Effect::Deny)]);
        let req = &rep.flips[0].request;
        let s = req.risk.score.expect("score known");
        assert!((0.7..0.8).contains(&s), "{s}");
        assert_eq!(req.risk.suspicious, Some(false));
        assert!(req.destination.domain.is_some());
        assert!(req.time.is_some());
        // Pruning and one value per behaviour keep this to a few thousand requests.
        assert!(rep.evaluated < 20_000, "{}", rep.evaluated);
    }

    #[test]
    fn separating_equivalent_and_different_rules() {
        let jp = country("JP");
        let jp2 = not(atom(Condition::In(
            Attribute::SourceCountry,
            vec![cc("US")],
        )));
        // `not (country in [US])` is not `country == JP`: separated by a third country.
        let (req, x, y) = find_separating(&jp, &jp2, TZ).expect("different");
        assert_ne!(x, y);
        assert_eq!(eval_rule(&jp, &req, TZ), x);
        assert_eq!(eval_rule(&jp2, &req, TZ), y);

        // Equivalents under Kleene logic.
        let double_neg = not(not(country("JP")));
        assert_eq!(find_separating(&jp, &double_neg, TZ), None);
        let as_list = atom(Condition::In(Attribute::SourceCountry, vec![cc("JP")]));
        assert_eq!(find_separating(&jp, &as_list, TZ), None);
        let mfa = b(Attribute::AuthMfa, true);
        let de_morgan_a = not(Rule::Or(vec![not(jp.clone()), not(mfa.clone())]));
        let de_morgan_b = Rule::And(vec![mfa.clone(), jp.clone()]);
        assert_eq!(find_separating(&de_morgan_a, &de_morgan_b, TZ), None);

        // JP vs US: differ on a request from JP or the US, agree (UNKNOWN) without one.
        let us = country("US");
        let (req, x, y) = find_separating(&jp, &us, TZ).expect("different");
        assert_eq!(req.source.country.map(|c| c.to_string()), Some("JP".into()));
        assert_eq!((x, y), (Truth::True, Truth::False));
        assert_eq!(eval_rule(&jp, &req, TZ), x);
        assert_eq!(eval_rule(&us, &req, TZ), y);

        // Differing only in three-valued results: where `jp` is FALSE or UNKNOWN,
        // `jp or mfa` may be UNKNOWN or TRUE. One known attribute is enough.
        let wider = Rule::Or(vec![jp.clone(), mfa.clone()]);
        let (req, x, y) = find_separating(&jp, &wider, TZ).expect("different");
        assert!(
            matches!(
                (x, y),
                (Truth::False, Truth::Unknown) | (Truth::Unknown, Truth::True)
            ),
            "{x:?} {y:?}"
        );
        assert_eq!(eval_rule(&jp, &req, TZ), x);
        assert_eq!(eval_rule(&wider, &req, TZ), y);
        assert_eq!(
            req.source.country.is_some() as u8 + req.auth.mfa.is_some() as u8,
            1,
            "{req}"
        );
    }
}
