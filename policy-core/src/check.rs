//! The type checker: does a typed rule make sense for the schema?
//!
//! Rules reach the evaluator from three places: the canonical text parser
//! ([`crate::text::parse_rule`], which calls [`check_condition`] on every condition it
//! builds), the translators, and deserialised model output. The last two build the
//! AST directly, so [`check_rule`] re-checks everything the parser would have refused:
//!
//! - the operator fits the attribute's type (`contains` only on sets, `in_cidr` only
//!   on IP addresses, `<` only on versions, integers and numbers, `within` only on
//!   points, `of_day`/`weekday` only on the time, `==`/`in` on neither sets, points nor
//!   the time);
//! - every literal has the attribute's type (`Literal::Bool` for a bool attribute,
//!   `Literal::Int` for `destination.port`, ...) and a valid value (enum names from the
//!   schema, ports in 0..=65535, finite numbers, e-mail addresses and app names in lower
//!   case because they are compared case-insensitively, CIDR networks without host
//!   bits, a non-empty time range, at least one weekday, a positive radius);
//! - `and`/`or` have at least two parts and the rule is not nested deeper than
//!   [`MAX_NESTING`] levels of parentheses and `not`.
//!
//! Every rule the checker accepts prints to a canonical text that parses back to the
//! same rule.
//!
//! ```
//! use policy_core::ast::{Condition, Literal, Rule};
//! use policy_core::check::check_rule;
//! use policy_core::schema::Attribute;
//! let ok = Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Bool(true)));
//! assert!(check_rule(&ok).is_ok());
//! let bad = Rule::Not(Box::new(Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Int(1)))));
//! let errs = check_rule(&bad).unwrap_err();
//! assert_eq!(errs[0].path, "not");
//! ```

use std::fmt;

use ipnet::IpNet;

use crate::ast::{CmpOp, Condition, Literal, Rule};
use crate::context::normalize_email;
use crate::schema::{AttrType, Attribute};
use crate::text::print::{parenthesised, NOT_OPERAND};
use crate::value::{Domain, Point};

/// The deepest nesting of parentheses and `not` that a rule may have, counted as in
/// its canonical text (`not (a and (b or c))` has three). The parser refuses deeper
/// input and the checker refuses deeper trees, so neither can exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// A rule that does not type-check: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", path_prefix(.path))]
pub struct TypeError {
    /// Where in the rule: the operators from the root down to the offending part,
    /// e.g. `and[1].not` (parts counted from 0; `implies[0]` is the premise,
    /// `implies[1]` the conclusion); empty for the rule as a whole.
    pub path: String,
    /// What is wrong. Errors on a condition start with its canonical text.
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Checks one condition: the operator fits the attribute's type and every literal is
/// of that type with a valid value. The message says what is wrong in English.
pub fn check_condition(c: &Condition) -> Result<(), String> {
    let attr = c.attribute();
    op_fits(attr, Op::of(c))?;
    match c {
        Condition::Eq(a, lit) | Condition::Compare(a, _, lit) => check_literal(*a, lit),
        Condition::In(a, lits) => {
            if lits.is_empty() {
                return Err("`in` needs at least one value".into());
            }
            lits.iter().try_for_each(|l| check_literal(*a, l))
        }
        Condition::Contains(a, needle) => check_needle(*a, needle),
        Condition::InCidr(_, nets) => {
            if nets.is_empty() {
                return Err("`in_cidr` needs at least one network".into());
            }
            nets.iter().try_for_each(check_cidr)
        }
        Condition::Domain(_, _, d) | Condition::EmailDomain(_, d) => check_domain(d),
        Condition::Within {
            center, radius_km, ..
        } => {
            check_radius(*radius_km)?;
            check_point(*center)
        }
        Condition::TimeOfDay { start, end, .. } => {
            if start == end {
                Err(format!(
                    "empty time range [{start}, {end}): start and end must differ \
                     (the whole day is [00:00, 24:00))"
                ))
            } else {
                Ok(())
            }
        }
        Condition::Weekday(_, days) => {
            if days.is_empty() {
                Err("`weekday` needs at least one day".into())
            } else {
                Ok(())
            }
        }
    }
}

/// Checks a whole rule and returns every error found, each with its place.
pub fn check_rule(r: &Rule) -> Result<(), Vec<TypeError>> {
    let mut errors = Vec::new();
    let mut path = Vec::new();
    walk(r, &mut path, 0, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `nesting` is the number of parentheses and `not`s around `r` in its canonical
/// text (the printer's own rule, [`parenthesised`], decides the parentheses).
fn walk(r: &Rule, path: &mut Vec<String>, nesting: usize, errors: &mut Vec<TypeError>) {
    let here = |path: &Vec<String>| path.join(".");
    if nesting > MAX_NESTING {
        errors.push(TypeError {
            path: here(path),
            message: format!(
                "the rule is nested deeper than {MAX_NESTING} levels of parentheses and `not`"
            ),
        });
        return;
    }
    match r {
        Rule::Atom(c) => {
            if let Err(m) = check_condition(c) {
                errors.push(TypeError {
                    path: here(path),
                    message: format!("`{c}`: {m}"),
                });
            }
        }
        Rule::And(parts) | Rule::Or(parts) => {
            let (name, level) = if matches!(r, Rule::And(_)) {
                ("and", 2)
            } else {
                ("or", 1)
            };
            if parts.len() < 2 {
                errors.push(TypeError {
                    path: here(path),
                    message: format!("`{name}` needs at least 2 parts, found {}", parts.len()),
                });
            }
            for (i, p) in parts.iter().enumerate() {
                path.push(format!("{name}[{i}]"));
                walk(p, path, nesting + paren(p, level), errors);
                path.pop();
            }
        }
        Rule::Not(inner) => {
            path.push("not".into());
            // `not` itself, plus parentheses unless the operand is an atom or a `not`.
            walk(inner, path, nesting + 1 + paren(inner, NOT_OPERAND), errors);
            path.pop();
        }
        Rule::Implies(a, b) => {
            for (i, p) in [a, b].into_iter().enumerate() {
                path.push(format!("implies[{i}]"));
                walk(p, path, nesting + paren(p, 0), errors);
                path.pop();
            }
        }
    }
}

/// 1 when the printer puts `child` in parentheses as an operand at binding level
/// `parent` (`->` 0, `or` 1, `and` 2, `not` [`NOT_OPERAND`]).
fn paren(child: &Rule, parent: u8) -> usize {
    usize::from(parenthesised(child, parent))
}

/// The operator of a condition, as the parser sees it before it has the literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    In,
    Contains,
    Compare(CmpOp),
    InCidr,
    InZone,
    SubdomainOf,
    EmailDomain,
    Within,
    OfDay,
    Weekday,
}

impl Op {
    pub(crate) fn of(c: &Condition) -> Op {
        match c {
            Condition::Eq(..) => Op::Eq,
            Condition::In(..) => Op::In,
            Condition::Contains(..) => Op::Contains,
            Condition::Compare(_, op, _) => Op::Compare(*op),
            Condition::InCidr(..) => Op::InCidr,
            Condition::Domain(_, crate::ast::DomainMatch::InZone, _) => Op::InZone,
            Condition::Domain(_, crate::ast::DomainMatch::SubdomainOf, _) => Op::SubdomainOf,
            Condition::EmailDomain(..) => Op::EmailDomain,
            Condition::Within { .. } => Op::Within,
            Condition::TimeOfDay { .. } => Op::OfDay,
            Condition::Weekday(..) => Op::Weekday,
        }
    }

    /// The operator as written in the canonical text.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::In => "in",
            Op::Contains => "contains",
            Op::Compare(c) => c.symbol(),
            Op::InCidr => "in_cidr",
            Op::InZone => "in_zone",
            Op::SubdomainOf => "subdomain_of",
            Op::EmailDomain => "email_domain",
            Op::Within => "within",
            Op::OfDay => "of_day",
            Op::Weekday => "weekday",
        }
    }
}

/// Whether `op` may be applied to `attr`, by the attribute's type.
pub(crate) fn op_fits(attr: Attribute, op: Op) -> Result<(), String> {
    use AttrType as T;
    let ty = attr.ty();
    let fits = match op {
        Op::Eq | Op::In => !matches!(ty, T::StringSet | T::Instant | T::Point),
        Op::Contains => ty == T::StringSet,
        Op::Compare(_) => matches!(ty, T::Version | T::Integer | T::Number),
        Op::InCidr => ty == T::Ip,
        Op::InZone | Op::SubdomainOf => ty == T::Domain,
        Op::EmailDomain => ty == T::Email,
        Op::Within => ty == T::Point,
        Op::OfDay | Op::Weekday => ty == T::Instant,
    };
    if fits {
        return Ok(());
    }
    let applies_to = match op {
        Op::Eq | Op::In => "values that are not sets, locations or times",
        Op::Contains => "sets of strings (user.groups, device.apps)",
        Op::Compare(_) => "versions, integers and numbers",
        Op::InCidr => "IP addresses",
        Op::InZone | Op::SubdomainOf => "domains (destination.domain)",
        Op::EmailDomain => "e-mail addresses (user.email)",
        Op::Within => "locations (device.location)",
        Op::OfDay | Op::Weekday => "the time (time)",
    };
    let hint = match ty {
        T::StringSet => "; use `contains`",
        T::Point => "; use `within R km of (lat, lon)`",
        T::Instant => "; use `of_day [HH:MM, HH:MM)` or `weekday [mon, ...]`",
        T::Ip if matches!(op, Op::Compare(_)) => "; use `in_cidr`",
        T::Domain if matches!(op, Op::Contains) => "; use `in_zone` or `subdomain_of`",
        T::Email if matches!(op, Op::Contains) => "; use `email_domain`",
        _ => "",
    };
    Err(format!(
        "`{}` does not apply to `{attr}`, which is of type {}: it applies only to {applies_to}{hint}",
        op.symbol(),
        ty.name(),
    ))
}

/// The kind of value a literal is, for messages.
pub(crate) fn literal_kind(lit: &Literal) -> &'static str {
    match lit {
        Literal::Str(_) => "a string",
        Literal::Bool(_) => "a bool",
        Literal::Enum(_) => "an enum name",
        Literal::Version(_) => "a version",
        Literal::Ip(_) => "an IP address",
        Literal::Country(_) => "a country code",
        Literal::Domain(_) => "a domain",
        Literal::Int(_) => "an integer",
        Literal::Num(_) => "a number",
    }
}

/// The literal of `==`, `in` or a comparison on `attr`: of the attribute's type, with
/// a valid value.
pub(crate) fn check_literal(attr: Attribute, lit: &Literal) -> Result<(), String> {
    use AttrType as T;
    match (attr.ty(), lit) {
        (T::String, Literal::Str(_))
        | (T::Bool, Literal::Bool(_))
        | (T::Version, Literal::Version(_))
        | (T::Ip, Literal::Ip(_))
        | (T::Country, Literal::Country(_)) => Ok(()),
        (T::Email, Literal::Str(s)) => {
            // The form requests are normalised to, or the literal could never match.
            let canonical = normalize_email(s);
            if *s == canonical {
                Ok(())
            } else {
                Err(format!(
                    "e-mail addresses are compared in lower case with the domain in ASCII \
                     (punycode), so the literal must be written {canonical:?}"
                ))
            }
        }
        (T::Enum(_), Literal::Enum(name)) => enum_value(attr, name).map(|_| ()),
        (T::Domain, Literal::Domain(d)) => check_domain(d),
        (T::Integer, Literal::Int(i)) => match int_range(attr) {
            Some((lo, hi)) if !(lo..=hi).contains(i) => {
                Err(format!("`{attr}` must be within {lo}..={hi}, found {i}"))
            }
            _ => Ok(()),
        },
        (T::Number, Literal::Num(n)) => {
            if n.is_finite() {
                Ok(())
            } else {
                Err(format!("the number must be finite, found {n}"))
            }
        }
        (ty, lit) => Err(format!(
            "`{attr}` is of type {}, so its literal must be {}, found {} ({lit})",
            ty.name(),
            expected_literal(ty),
            literal_kind(lit),
        )),
    }
}

/// What literal an attribute of type `ty` takes, for messages.
pub(crate) fn expected_literal(ty: AttrType) -> &'static str {
    use AttrType as T;
    match ty {
        T::String | T::Email => "a string",
        T::Bool => "`true` or `false`",
        T::Enum(_) => "one of its names as a string",
        T::Version => "a version string such as \"10.0.22631\"",
        T::Ip => "an IP address string such as \"192.0.2.1\"",
        T::Country => "a country code string such as \"JP\"",
        T::Domain => "a domain string such as \"example.com\"",
        T::Integer => "a whole number",
        T::Number => "a number",
        T::StringSet | T::Instant | T::Point => "(no literal: see its operators)",
    }
}

/// The allowed range of an integer attribute, if it has one.
fn int_range(attr: Attribute) -> Option<(i64, i64)> {
    match attr {
        Attribute::DestinationPort => Some((0, 65535)),
        _ => None,
    }
}

/// An enum attribute's value by name: the schema's own `&'static str`.
pub(crate) fn enum_value(attr: Attribute, name: &str) -> Result<&'static str, String> {
    let AttrType::Enum(names) = attr.ty() else {
        return Err(format!("`{attr}` is not an enum"));
    };
    names.iter().copied().find(|n| *n == name).ok_or_else(|| {
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        format!(
            "unknown value {:?} for `{attr}`: expected one of {}",
            short(name),
            list.join(", ")
        )
    })
}

/// At most 40 characters of `s` (with `…` when cut), to quote input in messages.
pub(crate) fn short(s: &str) -> String {
    clip(s, 40)
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Whether the string literals of `op` on `attr` are compared case-insensitively and
/// so must be written (and are stored) in lower case.
pub(crate) fn wants_lower_case(attr: Attribute, op: Op) -> bool {
    match op {
        Op::Eq | Op::In => attr.ty() == AttrType::Email,
        Op::Contains => attr == Attribute::DeviceApps,
        _ => false,
    }
}

/// The string of `contains`.
pub(crate) fn check_needle(attr: Attribute, needle: &str) -> Result<(), String> {
    if wants_lower_case(attr, Op::Contains) {
        let lower = needle.to_lowercase();
        if needle != lower {
            return Err(format!(
                "`{attr}` is compared case-insensitively, so the string must be in lower \
                 case: {lower:?}"
            ));
        }
    }
    Ok(())
}

/// A network of `in_cidr`: no host bits set, so it prints as it is meant.
pub(crate) fn check_cidr(net: &IpNet) -> Result<(), String> {
    let t = net.trunc();
    if t == *net {
        Ok(())
    } else {
        Err(format!("{net} has host bits set: use {t}"))
    }
}

/// A domain literal is in the canonical form [`Domain`]'s parser gives.
fn check_domain(d: &Domain) -> Result<(), String> {
    match d.as_str().parse::<Domain>() {
        Ok(again) if again == *d => Ok(()),
        _ => Err(format!("domain {:?} is not in canonical form", d.as_str())),
    }
}

/// The radius of `within`.
pub(crate) fn check_radius(r: f64) -> Result<(), String> {
    if r.is_finite() && r > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "the radius must be a positive, finite number of kilometres, found {r}"
        ))
    }
}

/// The centre of `within`.
pub(crate) fn check_point(p: Point) -> Result<(), String> {
    p.validate().map(|_| ()).map_err(|e| e.to_string())
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::DomainMatch;
    use crate::value::{TimeOfDay, Version, WeekdaySet};
    use Attribute as A;

    fn atom(c: Condition) -> Rule {
        Rule::Atom(c)
    }
    fn mfa() -> Rule {
        atom(Condition::Eq(A::AuthMfa, Literal::Bool(true)))
    }
    fn err(c: Condition) -> String {
        check_condition(&c).unwrap_err()
    }

    #[test]
    fn accepts_every_kind_of_condition() {
        let good = vec![
            Condition::Eq(A::UserId, Literal::Str("tanaka".into())),
            Condition::Eq(A::UserEmail, Literal::Str("tanaka@example.co.jp".into())),
            Condition::Eq(A::AuthMfa, Literal::Bool(false)),
            Condition::Eq(A::AuthMethod, Literal::Enum("webauthn")),
            Condition::Eq(
                A::DeviceOsVersion,
                Literal::Version("10.0".parse().unwrap()),
            ),
            Condition::Eq(A::SourceIp, Literal::Ip("2001:db8::1".parse().unwrap())),
            Condition::Eq(A::SourceCountry, Literal::Country("JP".parse().unwrap())),
            Condition::Eq(
                A::DestinationDomain,
                Literal::Domain("example.com".parse().unwrap()),
            ),
            Condition::Eq(A::DestinationPort, Literal::Int(443)),
            Condition::Eq(A::RiskScore, Literal::Num(0.5)),
            Condition::In(
                A::DeviceOsFamily,
                vec![Literal::Enum("macos"), Literal::Enum("linux")],
            ),
            Condition::Contains(A::UserGroups, "経理部".into()),
            Condition::Contains(A::DeviceApps, "microsoft teams".into()),
            Condition::Compare(
                A::DeviceTpmVersion,
                CmpOp::Ge,
                Literal::Version("2.0".parse().unwrap()),
            ),
            Condition::Compare(A::DestinationPort, CmpOp::Lt, Literal::Int(1024)),
            Condition::Compare(A::RiskScore, CmpOp::Gt, Literal::Num(0.8)),
            Condition::InCidr(A::SourceIp, vec!["10.0.0.0/8".parse().unwrap()]),
            Condition::Domain(
                A::DestinationDomain,
                DomainMatch::SubdomainOf,
                "example.net".parse().unwrap(),
            ),
            Condition::EmailDomain(A::UserEmail, "example.co.jp".parse().unwrap()),
            Condition::Within {
                attr: A::DeviceLocation,
                center: Point {
                    lat: 35.681,
                    lon: 139.767,
                },
                radius_km: 5.0,
            },
            Condition::TimeOfDay {
                attr: A::Time,
                start: TimeOfDay::new(22, 0).unwrap(),
                end: TimeOfDay::new(5, 0).unwrap(),
            },
            Condition::Weekday(A::Time, WeekdaySet::WEEKEND),
        ];
        for c in good {
            assert_eq!(check_condition(&c), Ok(()), "{c}");
        }
    }

    #[test]
    fn operator_must_fit_the_type() {
        let e = err(Condition::Eq(A::UserGroups, Literal::Str("x".into())));
        assert!(e.contains("use `contains`"), "{e}");
        assert!(err(Condition::Eq(A::Time, Literal::Str("x".into()))).contains("of_day"));
        assert!(err(Condition::Eq(A::DeviceLocation, Literal::Num(1.0))).contains("within"));
        assert!(err(Condition::Contains(A::UserId, "x".into())).contains("sets of strings"));
        assert!(err(Condition::Compare(
            A::UserId,
            CmpOp::Lt,
            Literal::Str("a".into())
        ))
        .contains("versions, integers and numbers"));
        assert!(err(Condition::InCidr(
            A::DestinationDomain,
            vec!["10.0.0.0/8".parse().unwrap()]
        ))
        .contains("IP addresses"));
        assert!(err(Condition::Domain(
            A::UserEmail,
            DomainMatch::InZone,
            "example.com".parse().unwrap()
        ))
        .contains("domains"));
        assert!(err(Condition::EmailDomain(
            A::UserId,
            "example.com".parse().unwrap()
        ))
        .contains("e-mail"));
        assert!(err(Condition::Within {
            attr: A::SourceIp,
            center: Point { lat: 0.0, lon: 0.0 },
            radius_km: 1.0
        })
        .contains("locations"));
        assert!(err(Condition::Weekday(A::DeviceId, WeekdaySet::WEEKDAYS)).contains("time"));
        assert!(err(Condition::TimeOfDay {
            attr: A::RiskScore,
            start: TimeOfDay::new(1, 0).unwrap(),
            end: TimeOfDay::new(2, 0).unwrap()
        })
        .contains("time"));
    }

    #[test]
    fn literal_must_have_the_attribute_type() {
        let e = err(Condition::Eq(A::AuthMfa, Literal::Int(1)));
        assert_eq!(
            e,
            "`auth.mfa` is of type bool, so its literal must be `true` or `false`, found an integer (1)"
        );
        // Integers are not numbers and the reverse: the text could not tell them apart.
        assert!(check_condition(&Condition::Eq(A::DestinationPort, Literal::Num(443.0))).is_err());
        assert!(check_condition(&Condition::Eq(A::RiskScore, Literal::Int(1))).is_err());
        assert!(
            check_condition(&Condition::Eq(A::AuthMethod, Literal::Str("saml".into()))).is_err()
        );
        assert!(check_condition(&Condition::In(
            A::SourceCountry,
            vec![
                Literal::Country("JP".parse().unwrap()),
                Literal::Str("US".into())
            ]
        ))
        .is_err());
        assert!(check_condition(&Condition::Compare(
            A::DeviceOsVersion,
            CmpOp::Lt,
            Literal::Str("10".into())
        ))
        .is_err());
    }

    #[test]
    fn literal_values_are_validated() {
        assert!(err(Condition::Eq(A::AuthMethod, Literal::Enum("kerberos")))
            .contains(r#"expected one of "password", "webauthn", "saml", "oidc""#));
        // A name of another enum is not a name of this one.
        assert!(check_condition(&Condition::Eq(A::DeviceOsFamily, Literal::Enum("luks"))).is_err());
        assert!(err(Condition::Eq(A::DestinationPort, Literal::Int(65536))).contains("0..=65535"));
        assert!(check_condition(&Condition::Eq(A::DestinationPort, Literal::Int(-1))).is_err());
        assert!(check_condition(&Condition::Eq(A::DestinationPort, Literal::Int(65535))).is_ok());
        assert!(err(Condition::Compare(
            A::RiskScore,
            CmpOp::Lt,
            Literal::Num(f64::NAN)
        ))
        .contains("finite"));
        assert!(
            check_condition(&Condition::Eq(A::RiskScore, Literal::Num(f64::INFINITY))).is_err()
        );
        assert!(err(Condition::In(A::UserId, vec![])).contains("at least one"));
        assert!(err(Condition::InCidr(A::SourceIp, vec![])).contains("at least one"));
        assert_eq!(
            err(Condition::InCidr(
                A::SourceIp,
                vec!["203.0.113.5/24".parse().unwrap()]
            )),
            "203.0.113.5/24 has host bits set: use 203.0.113.0/24"
        );
        let t = |h| TimeOfDay::new(h, 0).unwrap();
        assert!(err(Condition::TimeOfDay {
            attr: A::Time,
            start: t(9),
            end: t(9)
        })
        .contains("empty time range"));
        assert!(
            err(Condition::Weekday(A::Time, WeekdaySet::from_bits(0))).contains("at least one day")
        );
        let within = |lat, lon, r| Condition::Within {
            attr: A::DeviceLocation,
            center: Point { lat, lon },
            radius_km: r,
        };
        assert!(err(within(0.0, 0.0, 0.0)).contains("radius"));
        assert!(err(within(0.0, 0.0, -1.0)).contains("radius"));
        assert!(err(within(0.0, 0.0, f64::INFINITY)).contains("radius"));
        assert!(check_condition(&within(91.0, 0.0, 1.0)).is_err());
        assert!(check_condition(&within(0.0, 180.5, 1.0)).is_err());
        assert!(check_condition(&within(f64::NAN, 0.0, 1.0)).is_err());
        assert!(check_condition(&within(-90.0, -180.0, 1.0)).is_ok());
    }

    #[test]
    fn case_insensitive_literals_must_be_lower_case() {
        assert!(err(Condition::Eq(
            A::UserEmail,
            Literal::Str("Tanaka@Example.com".into())
        ))
        .contains("\"tanaka@example.com\""));
        assert!(err(Condition::Eq(
            A::UserEmail,
            Literal::Str("a@日本.jp".into())
        ))
        .contains("\"a@xn--wgv71a.jp\""));
        assert!(check_condition(&Condition::In(
            A::UserEmail,
            vec![Literal::Str("a@b.c".into()), Literal::Str("B@b.c".into())]
        ))
        .is_err());
        assert!(
            err(Condition::Contains(A::DeviceApps, "Microsoft Teams".into()))
                .contains("\"microsoft teams\"")
        );
        // Group names are exact.
        assert!(check_condition(&Condition::Contains(A::UserGroups, "Admins".into())).is_ok());
        assert!(check_condition(&Condition::Eq(A::UserId, Literal::Str("Tanaka".into()))).is_ok());
    }

    #[test]
    fn check_rule_collects_every_error_with_its_path() {
        let bad_port = atom(Condition::Eq(A::DestinationPort, Literal::Int(70000)));
        let bad_bool = atom(Condition::Eq(A::AuthMfa, Literal::Str("yes".into())));
        let rule = Rule::And(vec![
            mfa(),
            Rule::Not(Box::new(bad_port.clone())),
            Rule::Or(vec![bad_bool]),
            Rule::Implies(Box::new(mfa()), Box::new(bad_port)),
        ]);
        let errs = check_rule(&rule).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["and[1].not", "and[2]", "and[2].or[0]", "and[3].implies[1]"]
        );
        assert!(errs[0].message.starts_with("`destination.port == 70000`: "));
        assert_eq!(errs[1].message, "`or` needs at least 2 parts, found 1");
        assert_eq!(
            errs[1].to_string(),
            "and[2]: `or` needs at least 2 parts, found 1"
        );
        // At the root there is no path to print.
        let e = check_rule(&Rule::And(vec![])).unwrap_err();
        assert_eq!(e[0].path, "");
        assert_eq!(e[0].to_string(), "`and` needs at least 2 parts, found 0");
        assert!(check_rule(&Rule::And(vec![mfa(), mfa()])).is_ok());
    }

    #[test]
    fn nesting_is_bounded_as_the_text_counts_it() {
        // MAX_NESTING `not`s are fine, one more is not.
        let mut r = mfa();
        for _ in 0..MAX_NESTING {
            r = Rule::Not(Box::new(r));
        }
        assert!(check_rule(&r).is_ok());
        let deeper = Rule::Not(Box::new(r));
        let errs = check_rule(&deeper).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.contains("nested deeper than 64"),
            "{}",
            errs[0]
        );
        // `a and b or c -> d` needs no parentheses at all.
        let flat = Rule::Implies(
            Box::new(Rule::Or(vec![Rule::And(vec![mfa(), mfa()]), mfa()])),
            Box::new(mfa()),
        );
        let mut path = Vec::new();
        let mut errors = Vec::new();
        walk(&flat, &mut path, 0, &mut errors);
        assert!(errors.is_empty());
        // Each `and` directly inside an `and` is parenthesised: count them.
        let mut r = mfa();
        for _ in 0..MAX_NESTING + 1 {
            r = Rule::And(vec![mfa(), r]);
        }
        // The root needs none, so MAX_NESTING + 1 nested `and`s have MAX_NESTING levels.
        assert!(check_rule(&r).is_ok());
        let r = Rule::And(vec![mfa(), r]);
        assert!(check_rule(&r).is_err());
    }

    #[test]
    fn version_literals_keep_their_parts() {
        let v = Version::from_parts(vec![1, 2, 3]).unwrap();
        assert!(check_condition(&Condition::Compare(
            A::DeviceOsVersion,
            CmpOp::Le,
            Literal::Version(v)
        ))
        .is_ok());
    }
}
