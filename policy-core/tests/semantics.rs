//! Property tests of the decision semantics (spec §1): an unknown attribute can never
//! turn a deny into an allow; `not` is Kleene negation; an empty require holds and an
//! empty deny never holds.

use policy_core::ast::Rule;
use policy_core::context::Request;
use policy_core::decision::{AppRules, Authentication, Effect};
use policy_core::eval::{eval_rule, Truth};
use policy_core::schema::Attribute;
use policy_core::text::parse_rule;
use proptest::prelude::*;

const TZ: policy_core::chrono_tz::Tz = policy_core::chrono_tz::Asia::Tokyo;

/// Conditions over attributes the requests below fill in.
const ATOMS: &[&str] = &[
    r#"source.country == "JP""#,
    r#"source.country in ["CN", "RU"]"#,
    "auth.mfa == true",
    "device.tpm.enabled == true",
    r#"device.disk.method == "bitlocker""#,
    r#"user.groups contains "経理部""#,
    r#"destination.domain in_zone "deepseek.com""#,
    r#"source.ip in_cidr ["203.0.113.0/24"]"#,
    "risk.score >= 0.8",
    "time of_day [09:00, 18:00)",
    "time weekday [sat, sun]",
];

fn rule() -> impl Strategy<Value = Rule> {
    let leaf = (0..ATOMS.len()).prop_map(|i| parse_rule(ATOMS[i]).expect("atom parses"));
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Rule::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Rule::Or),
            inner.clone().prop_map(|r| Rule::Not(Box::new(r))),
            (inner.clone(), inner).prop_map(|(a, b)| Rule::Implies(Box::new(a), Box::new(b))),
        ]
    })
}

/// A fully known request, built from a few choices.
fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec!["JP", "US", "CN"]),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["bitlocker", "filevault"]),
        any::<bool>(),
        prop::sample::select(vec!["deepseek.com", "chat.deepseek.com", "example.com"]),
        prop::sample::select(vec!["203.0.113.9", "198.51.100.1"]),
        prop::sample::select(vec![0.1, 0.8, 0.95]),
        prop::sample::select(vec![
            "2026-11-24T10:00:00+09:00",
            "2026-11-28T20:00:00+09:00",
            "2026-11-29T09:00:00+09:00",
        ]),
    )
        .prop_map(|(c, mfa, tpm, method, acct, dom, ip, score, time)| {
            let groups = if acct { r#"["経理部"]"# } else { "[]" };
            Request::from_json(&format!(
                r#"{{"source":{{"country":"{c}","ip":"{ip}"}},"auth":{{"mfa":{mfa}}},
                "device":{{"tpm":{{"enabled":{tpm}}},"disk":{{"method":"{method}"}}}},
                "user":{{"groups":{groups}}},"destination":{{"domain":"{dom}"}},
                "risk":{{"score":{score}}},"time":"{time}"}}"#
            ))
            .expect("generated request is valid")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn forgetting_an_attribute_never_turns_deny_into_allow(
        require in prop::option::of(rule()),
        deny in prop::option::of(rule()),
        req in request(),
        forget in prop::sample::subsequence(Attribute::ALL.to_vec(), 0..6),
    ) {
        let app = AppRules::new(require, deny);
        let full = app.decide(&req, Authentication::Authenticated, TZ);
        let mut partial = req.clone();
        for a in &forget {
            partial.set(*a, None).expect("clearing works");
        }
        let less = app.decide(&partial, Authentication::Authenticated, TZ);
        if less.effect == Effect::Allow {
            prop_assert_eq!(full.effect, Effect::Allow);
        }
        // Known values stay known: a definite rule value never changes when more is known.
        if let Some(r) = app.require.as_ref() {
            let p = eval_rule(r.rule(), &partial, TZ);
            if p != Truth::Unknown {
                prop_assert_eq!(p, eval_rule(r.rule(), &req, TZ));
            }
        }
        // A denial always says why.
        prop_assert!(!less.reasons.is_empty());
    }

    #[test]
    fn not_is_kleene_negation(r in rule(), req in request(), forget in prop::sample::subsequence(Attribute::ALL.to_vec(), 0..6)) {
        let mut q = req;
        for a in &forget {
            q.set(*a, None).expect("clearing works");
        }
        let v = eval_rule(&r, &q, TZ);
        let n = eval_rule(&Rule::Not(Box::new(r.clone())), &q, TZ);
        let expected = match v { Truth::True => Truth::False, Truth::False => Truth::True, Truth::Unknown => Truth::Unknown };
        prop_assert_eq!(n, expected);
    }

    #[test]
    fn slot_semantics(r in rule(), req in request()) {
        let v = eval_rule(&r, &req, TZ);
        let as_require = AppRules::new(Some(r.clone()), None).decide(&req, Authentication::Authenticated, TZ);
        let as_deny = AppRules::new(None, Some(r)).decide(&req, Authentication::Authenticated, TZ);
        prop_assert_eq!(as_require.effect == Effect::Allow, v == Truth::True);
        prop_assert_eq!(as_deny.effect == Effect::Allow, v == Truth::False);
        let nobody = AppRules::new(None, None).decide(&req, Authentication::Anonymous, TZ);
        prop_assert_eq!(nobody.effect, Effect::Deny);
        let everybody = AppRules::new(None, None).decide(&req, Authentication::Authenticated, TZ);
        prop_assert_eq!(everybody.effect, Effect::Allow);
    }
}
