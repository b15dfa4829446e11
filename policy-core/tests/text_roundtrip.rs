//! Property tests for the canonical text form: every well-typed rule prints to a text
//! that parses back to the same rule and prints again to the same text, and the parser
//! never panics, whatever it is given.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use policy_core::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
use policy_core::check::check_rule;
use policy_core::context::normalize_email;
use policy_core::country::COUNTRIES;
use policy_core::schema::{AttrType, Attribute};
use policy_core::text::{parse_rule, print_rule};
use policy_core::value::{CountryCode, Domain, Point, TimeOfDay, Version, WeekdaySet};
use proptest::prelude::*;
use proptest::sample::select;

fn attrs(pred: impl Fn(AttrType) -> bool) -> Vec<Attribute> {
    Attribute::ALL
        .iter()
        .copied()
        .filter(|a| pred(a.ty()))
        .collect()
}

/// Free text: ASCII, Japanese, JSON escapes and control characters, anything.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 _.@-]{0,12}",
        "[ぁ-んァ-ヶ一-龠ー 　]{0,8}",
        "[\"\\\\/\n\r\t\u{0}-\u{1f}\u{7f}\u{2028}\u{feff}a経]{0,8}",
        any::<String>(),
    ]
    .boxed()
}

fn finite_f64() -> BoxedStrategy<f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        0.0f64..=1.0,
        (-1000i32..1000).prop_map(f64::from),
    ]
    .boxed()
}

fn domain() -> BoxedStrategy<Domain> {
    let label = prop_oneof![
        4 => "[a-zA-Z0-9]([a-zA-Z0-9_-]{0,8}[a-zA-Z0-9])?",
        1 => "[ぁ-ん一-龠]{1,4}",
    ];
    prop::collection::vec(label, 1..4)
        .prop_filter_map("not a domain", |ls| ls.join(".").parse::<Domain>().ok())
        .boxed()
}

fn version() -> BoxedStrategy<Version> {
    let part = prop_oneof![0u64..30, any::<u64>()];
    prop::collection::vec(part, 1..5)
        .prop_filter_map("empty", Version::from_parts)
        .boxed()
}

fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(IpAddr::V4),
        any::<Ipv6Addr>().prop_map(IpAddr::V6),
    ]
    .boxed()
}

fn net() -> BoxedStrategy<IpNet> {
    prop_oneof![
        (any::<Ipv4Addr>(), 0u8..=32).prop_filter_map("prefix", |(a, p)| Ipv4Net::new(a, p)
            .ok()
            .map(|n| IpNet::V4(n).trunc())),
        (any::<Ipv6Addr>(), 0u8..=128).prop_filter_map("prefix", |(a, p)| Ipv6Net::new(a, p)
            .ok()
            .map(|n| IpNet::V6(n).trunc())),
    ]
    .boxed()
}

/// A literal of `==`/`in`/comparisons that fits `attr`.
fn literal_for(attr: Attribute) -> BoxedStrategy<Literal> {
    match attr.ty() {
        AttrType::String => text().prop_map(Literal::Str).boxed(),
        AttrType::Email => text()
            .prop_map(|s| Literal::Str(normalize_email(&s)))
            .boxed(),
        AttrType::Bool => any::<bool>().prop_map(Literal::Bool).boxed(),
        AttrType::Enum(names) => select(names).prop_map(Literal::Enum).boxed(),
        AttrType::Version => version().prop_map(Literal::Version).boxed(),
        AttrType::Ip => ip().prop_map(Literal::Ip).boxed(),
        AttrType::Country => select(COUNTRIES)
            .prop_map(|c| Literal::Country(c.code.parse::<CountryCode>().unwrap()))
            .boxed(),
        AttrType::Domain => domain().prop_map(Literal::Domain).boxed(),
        AttrType::Integer => (0i64..=65535).prop_map(Literal::Int).boxed(),
        AttrType::Number => finite_f64().prop_map(Literal::Num).boxed(),
        AttrType::StringSet | AttrType::Instant | AttrType::Point => {
            unreachable!("no literal for {attr}")
        }
    }
}

fn eq_attrs() -> Vec<Attribute> {
    attrs(|t| !matches!(t, AttrType::StringSet | AttrType::Instant | AttrType::Point))
}

fn condition() -> BoxedStrategy<Condition> {
    let eq =
        select(eq_attrs()).prop_flat_map(|a| literal_for(a).prop_map(move |l| Condition::Eq(a, l)));
    let in_ = select(eq_attrs()).prop_flat_map(|a| {
        prop::collection::vec(literal_for(a), 1..4).prop_map(move |ls| Condition::In(a, ls))
    });
    let contains = (select(attrs(|t| t == AttrType::StringSet)), text()).prop_map(|(a, s)| {
        let s = if a == Attribute::DeviceApps {
            s.to_lowercase()
        } else {
            s
        };
        Condition::Contains(a, s)
    });
    let cmp_op = select(vec![CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]);
    let compare = (
        select(attrs(|t| {
            matches!(t, AttrType::Version | AttrType::Integer | AttrType::Number)
        })),
        cmp_op,
    )
        .prop_flat_map(|(a, op)| literal_for(a).prop_map(move |l| Condition::Compare(a, op, l)));
    let in_cidr = (
        select(attrs(|t| t == AttrType::Ip)),
        prop::collection::vec(net(), 1..4),
    )
        .prop_map(|(a, nets)| Condition::InCidr(a, nets));
    let dom = (
        select(vec![DomainMatch::InZone, DomainMatch::SubdomainOf]),
        domain(),
    )
        .prop_map(|(m, d)| Condition::Domain(Attribute::DestinationDomain, m, d));
    let email_domain = domain().prop_map(|d| Condition::EmailDomain(Attribute::UserEmail, d));
    let radius = prop_oneof![
        0.001f64..20000.0,
        proptest::num::f64::POSITIVE | proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL,
    ]
    .prop_filter("positive", |r| *r > 0.0 && r.is_finite());
    let lat = prop_oneof![-90.0f64..=90.0, select(vec![-90.0, 90.0, 0.0, -0.0])];
    let lon = prop_oneof![-180.0f64..=180.0, select(vec![-180.0, 180.0, 0.0])];
    let within = (lat, lon, radius).prop_map(|(lat, lon, radius_km)| Condition::Within {
        attr: Attribute::DeviceLocation,
        center: Point { lat, lon },
        radius_km,
    });
    let minute = 0u32..=1440;
    let tod = (minute.clone(), minute)
        .prop_filter("empty range", |(s, e)| s != e)
        .prop_map(|(s, e)| Condition::TimeOfDay {
            attr: Attribute::Time,
            start: TimeOfDay::new(s / 60, s % 60).unwrap(),
            end: TimeOfDay::new(e / 60, e % 60).unwrap(),
        });
    let weekday =
        (1u8..=127).prop_map(|b| Condition::Weekday(Attribute::Time, WeekdaySet::from_bits(b)));
    prop_oneof![
        3 => eq,
        2 => in_,
        1 => contains,
        1 => compare,
        1 => in_cidr,
        1 => dom,
        1 => email_domain,
        1 => within,
        1 => tod,
        1 => weekday,
    ]
    .boxed()
}

/// Rules nested up to depth 4, `and`/`or` with 2 to 4 parts.
fn rule() -> impl Strategy<Value = Rule> {
    condition()
        .prop_map(Rule::Atom)
        .prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..=4).prop_map(Rule::And),
                prop::collection::vec(inner.clone(), 2..=4).prop_map(Rule::Or),
                inner.clone().prop_map(|r| Rule::Not(Box::new(r))),
                (inner.clone(), inner).prop_map(|(a, b)| Rule::Implies(Box::new(a), Box::new(b))),
            ]
        })
}

/// Tokens of the canonical text (and a few wrong ones), to make inputs that get far
/// into the parser.
fn token_soup() -> impl Strategy<Value = String> {
    let mut tokens: Vec<String> = Attribute::ALL
        .iter()
        .map(|a| a.name().to_string())
        .collect();
    for t in [
        "(",
        ")",
        "not",
        "and",
        "or",
        "->",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "contains",
        "in_cidr",
        "in_zone",
        "subdomain_of",
        "email_domain",
        "within",
        "km",
        "of",
        "of_day",
        "weekday",
        "[",
        "]",
        ",",
        "true",
        "false",
        "0",
        "-1",
        "443",
        "0.5",
        "35.681",
        "139.767",
        "09:00",
        "18:00",
        "24:00",
        "mon",
        "sun",
        "\"JP\"",
        "\"jp\"",
        "\"10.0.22631\"",
        "\"macos\"",
        "\"bitlocker\"",
        "\"203.0.113.0/24\"",
        "\"203.0.113.5/24\"",
        "\"::1\"",
        "\"192.0.2.1\"",
        "\"example.com\"",
        "\"日本.jp\"",
        "\"経理部\"",
        "\"A@B.jp\"",
        "\"Teams\"",
        "\"\\u00e9\\n\"",
        "\"",
        "\n",
        "\t",
    ] {
        tokens.push(t.to_string());
    }
    prop::collection::vec(select(tokens), 0..24).prop_map(|v| v.join(" "))
}

fn assert_round_trip(r: &Rule) -> Result<(), TestCaseError> {
    prop_assert_eq!(check_rule(r), Ok(()), "{}", r);
    let text = print_rule(r);
    let back = parse_rule(&text);
    prop_assert_eq!(back.as_ref(), Ok(r), "text: {}", text);
    if let Ok(back) = back {
        prop_assert_eq!(print_rule(&back), text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn well_typed_rules_round_trip(r in rule()) {
        assert_round_trip(&r)?;
        prop_assert_eq!(r.to_string(), print_rule(&r));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = parse_rule(&s);
    }

    #[test]
    fn parsed_token_soup_is_well_typed_and_round_trips(s in token_soup()) {
        match parse_rule(&s) {
            Ok(r) => assert_round_trip(&r)?,
            Err(e) => {
                prop_assert!(e.offset <= s.len());
                prop_assert!(s.is_char_boundary(e.offset));
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn printed_rules_with_mangled_tails_never_panic(r in rule(), cut in any::<prop::sample::Index>(), junk in "[\\x00-\\x7f経]{0,4}") {
        let text = print_rule(&r);
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mangled = format!("{}{}", &text[..at], junk);
        if let Ok(r2) = parse_rule(&mangled) {
            assert_round_trip(&r2)?;
        }
    }
}
