//! The evaluator: a rule on a request gives TRUE, FALSE or UNKNOWN (Kleene logic).
//!
//! A condition on an attribute the request does not carry is UNKNOWN. `and`, `or`
//! and `not` follow Kleene's strong three-valued logic, so an unknown attribute can
//! only ever make a rule UNKNOWN, never TRUE in place of FALSE or the reverse; and
//! since a decision needs the 必須条件 to be TRUE and the 拒否条件 to be FALSE,
//! UNKNOWN always ends in a deny (see [`crate::decision`]).
//!
//! Evaluation allocates nothing; [`explain`] (only run for denials) lists which
//! conditions decided the value.

use chrono::{Datelike, Timelike};
use chrono_tz::Tz;

use crate::ast::{Condition, DomainMatch, Literal, Rule};
use crate::context::{AttrValue, Request};

/// A three-valued truth value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Cannot be told: an attribute it needs is unknown.
    Unknown,
}

impl std::ops::Not for Truth {
    type Output = Truth;
    /// Kleene negation: UNKNOWN stays UNKNOWN.
    #[inline]
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

impl Truth {
    #[inline]
    fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

/// Evaluates a rule on a request; clock conditions read `time` in `tz`.
pub fn eval_rule(rule: &Rule, req: &Request, tz: Tz) -> Truth {
    match rule {
        Rule::Atom(c) => eval_condition(c, req, tz),
        Rule::And(parts) => {
            let mut out = Truth::True;
            for p in parts {
                match eval_rule(p, req, tz) {
                    Truth::False => return Truth::False,
                    Truth::Unknown => out = Truth::Unknown,
                    Truth::True => {}
                }
            }
            out
        }
        Rule::Or(parts) => {
            let mut out = Truth::False;
            for p in parts {
                match eval_rule(p, req, tz) {
                    Truth::True => return Truth::True,
                    Truth::Unknown => out = Truth::Unknown,
                    Truth::False => {}
                }
            }
            out
        }
        Rule::Not(r) => !eval_rule(r, req, tz),
        Rule::Implies(a, b) => match eval_rule(a, req, tz) {
            Truth::False => Truth::True,
            Truth::True => eval_rule(b, req, tz),
            Truth::Unknown => match eval_rule(b, req, tz) {
                Truth::True => Truth::True,
                _ => Truth::Unknown,
            },
        },
    }
}

/// Evaluates one condition. A value of a type the condition cannot compare (which
/// the type checker rules out) is UNKNOWN, never TRUE.
#[inline]
pub fn eval_condition(c: &Condition, req: &Request, tz: Tz) -> Truth {
    let Some(v) = req.get(c.attribute()) else {
        return Truth::Unknown;
    };
    match eval_known(c, v, tz) {
        Some(b) => Truth::from_bool(b),
        None => Truth::Unknown,
    }
}

fn eq(v: AttrValue<'_>, lit: &Literal) -> Option<bool> {
    use AttrValue as V;
    Some(match (v, lit) {
        (V::Str(a), Literal::Str(b)) => a == b,
        (V::Bool(a), Literal::Bool(b)) => a == *b,
        (V::Enum(a), Literal::Enum(b)) => a == *b,
        (V::Version(a), Literal::Version(b)) => a == b,
        (V::Ip(a), Literal::Ip(b)) => a == *b,
        (V::Country(a), Literal::Country(b)) => a == *b,
        (V::Domain(a), Literal::Domain(b)) => a == b,
        (V::Int(a), Literal::Int(b)) => a == *b,
        (V::Num(a), Literal::Num(b)) => a == *b,
        _ => return None,
    })
}

fn eval_known(c: &Condition, v: AttrValue<'_>, tz: Tz) -> Option<bool> {
    use AttrValue as V;
    match c {
        // Case-insensitive attributes (e-mail, apps) need no special case here: the
        // request and the checked rule both hold them lower-cased.
        Condition::Eq(_, lit) => eq(v, lit),
        Condition::In(_, lits) => {
            let mut any = false;
            for l in lits {
                any |= eq(v, l)?;
            }
            Some(any)
        }
        Condition::Contains(_, needle) => match v {
            V::Set(items) => Some(items.iter().any(|i| i == needle)),
            _ => None,
        },
        Condition::Compare(_, op, lit) => {
            let ord = match (v, lit) {
                (V::Version(a), Literal::Version(b)) => a.cmp(b),
                (V::Int(a), Literal::Int(b)) => a.cmp(b),
                (V::Num(a), Literal::Num(b)) => a.partial_cmp(b)?,
                (V::Int(a), Literal::Num(b)) => (a as f64).partial_cmp(b)?,
                _ => return None,
            };
            Some(op.holds(ord))
        }
        Condition::InCidr(_, nets) => match v {
            V::Ip(ip) => Some(nets.iter().any(|n| n.contains(&ip))),
            _ => None,
        },
        Condition::Domain(_, m, zone) => match v {
            V::Domain(d) => Some(match m {
                DomainMatch::InZone => d.is_in_zone(zone),
                DomainMatch::SubdomainOf => d.is_strict_subdomain_of(zone),
            }),
            _ => None,
        },
        Condition::EmailDomain(_, dom) => match v {
            V::Str(email) => {
                // Stored lower-cased; an address without '@' has no domain: FALSE.
                let host = email.rsplit_once('@').map(|(_, h)| h)?;
                let host = host.strip_suffix('.').unwrap_or(host);
                Some(host.eq_ignore_ascii_case(dom.as_str()))
            }
            _ => None,
        },
        Condition::Within {
            center, radius_km, ..
        } => match v {
            V::Point(p) => Some(p.distance_km(*center) <= *radius_km),
            _ => None,
        },
        Condition::TimeOfDay { start, end, .. } => match v {
            V::Instant(t) => {
                let local = t.with_timezone(&tz);
                let m = (local.hour() * 60 + local.minute()) as u16;
                let (s, e) = (start.minutes(), end.minutes());
                Some(if s <= e {
                    s <= m && m < e
                } else {
                    // Crosses midnight: [22:00, 05:00) is 22:00..24:00 plus 00:00..05:00.
                    m >= s || m < e
                })
            }
            _ => None,
        },
        Condition::Weekday(_, days) => match v {
            V::Instant(t) => {
                let local = t.with_timezone(&tz);
                Some(days.contains(local.weekday().num_days_from_monday()))
            }
            _ => None,
        },
    }
}

/// One condition that decided a rule's value, with the value it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    /// Index of the condition in [`Rule::conditions`] order.
    pub index: usize,
    /// Its value on the request.
    pub truth: Truth,
}

/// The conditions that made `rule` come out as it did on `req`: for a FALSE `and`
/// its FALSE parts, for a FALSE `or` all its parts, for UNKNOWN the UNKNOWN parts,
/// and so on down to the conditions. Returns the rule's value too.
///
/// One pass: every condition is evaluated once, its cause recorded, and a node keeps
/// only the causes of the parts that have the node's own value.
pub fn explain(rule: &Rule, req: &Request, tz: Tz) -> (Truth, Vec<Cause>) {
    let mut out = Vec::new();
    let mut next = 0;
    let t = explain_into(rule, req, tz, &mut next, &mut out);
    (t, out)
}

/// Evaluates `rule`, appending the causes of its value to `out`.
fn explain_into(
    rule: &Rule,
    req: &Request,
    tz: Tz,
    next: &mut usize,
    out: &mut Vec<Cause>,
) -> Truth {
    match rule {
        Rule::Atom(c) => {
            let truth = eval_condition(c, req, tz);
            out.push(Cause {
                index: *next,
                truth,
            });
            *next += 1;
            truth
        }
        Rule::Not(r) => !explain_into(r, req, tz, next, out),
        Rule::And(parts) | Rule::Or(parts) => {
            let is_and = matches!(rule, Rule::And(_));
            let start = out.len();
            // (value, end of its causes in `out`) per part.
            let mut spans: Vec<(Truth, usize)> = Vec::with_capacity(parts.len());
            for p in parts {
                let v = explain_into(p, req, tz, next, out);
                spans.push((v, out.len()));
            }
            let values = spans.iter().map(|(v, _)| *v);
            let value = if is_and {
                values.fold(Truth::True, kleene_and)
            } else {
                values.fold(Truth::False, kleene_or)
            };
            keep_matching(out, start, &spans, |v| v == value);
            value
        }
        Rule::Implies(a, b) => {
            // a -> b is (not a) or b: keep the parts whose contribution matches.
            let start = out.len();
            let va = explain_into(a, req, tz, next, out);
            let mid = out.len();
            let vb = explain_into(b, req, tz, next, out);
            let value = kleene_or(!va, vb);
            let spans = [(!va, mid), (vb, out.len())];
            keep_matching(out, start, &spans, |v| v == value);
            value
        }
    }
}

/// Drops from `out[start..]` the causes of parts whose value fails `keep`; `spans`
/// gives each part's value and the end of its causes.
fn keep_matching(
    out: &mut Vec<Cause>,
    start: usize,
    spans: &[(Truth, usize)],
    keep: impl Fn(Truth) -> bool,
) {
    let mut write = start;
    let mut read = start;
    for &(v, end) in spans {
        if keep(v) {
            while read < end {
                out[write] = out[read];
                write += 1;
                read += 1;
            }
        }
        read = end;
    }
    out.truncate(write);
}

fn kleene_and(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Truth::False, _) | (_, Truth::False) => Truth::False,
        (Truth::True, Truth::True) => Truth::True,
        _ => Truth::Unknown,
    }
}

fn kleene_or(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Truth::True, _) | (_, Truth::True) => Truth::True,
        (Truth::False, Truth::False) => Truth::False,
        _ => Truth::Unknown,
    }
}

/// One line of an evaluation trace: a node of the rule, its depth and its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceLine {
    /// Nesting depth (0 = the whole rule).
    pub depth: usize,
    /// `and`, `or`, `not`, `->` or the condition's canonical text.
    pub node: String,
    /// The node's value.
    pub value: &'static str,
}

/// The value of every node of `rule` on `req`, top-down (for `rzts decide --explain`).
pub fn trace(rule: &Rule, req: &Request, tz: Tz) -> Vec<TraceLine> {
    fn walk(r: &Rule, req: &Request, tz: Tz, depth: usize, out: &mut Vec<TraceLine>) {
        let value = match eval_rule(r, req, tz) {
            Truth::True => "TRUE",
            Truth::False => "FALSE",
            Truth::Unknown => "UNKNOWN",
        };
        let node = match r {
            Rule::Atom(c) => c.to_string(),
            Rule::And(_) => "and".into(),
            Rule::Or(_) => "or".into(),
            Rule::Not(_) => "not".into(),
            Rule::Implies(..) => "->".into(),
        };
        out.push(TraceLine { depth, node, value });
        match r {
            Rule::Atom(_) => {}
            Rule::And(v) | Rule::Or(v) => v.iter().for_each(|p| walk(p, req, tz, depth + 1, out)),
            Rule::Not(p) => walk(p, req, tz, depth + 1, out),
            Rule::Implies(a, b) => {
                walk(a, req, tz, depth + 1, out);
                walk(b, req, tz, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(rule, req, tz, 0, &mut out);
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Attribute;

    fn country(c: &str) -> Rule {
        Rule::Atom(Condition::Eq(
            Attribute::SourceCountry,
            Literal::Country(c.parse().unwrap()),
        ))
    }

    #[test]
    fn kleene_tables() {
        let tz = chrono_tz::Asia::Tokyo;
        let known = Request::from_json(r#"{"source":{"country":"JP"}}"#).unwrap();
        let unknown = Request::default();
        let jp = country("JP");
        let us = country("US");
        assert_eq!(eval_rule(&jp, &known, tz), Truth::True);
        assert_eq!(eval_rule(&jp, &unknown, tz), Truth::Unknown);
        let f_and_u = Rule::And(vec![us.clone(), jp.clone()]);
        assert_eq!(eval_rule(&f_and_u, &unknown, tz), Truth::Unknown);
        assert_eq!(eval_rule(&f_and_u, &known, tz), Truth::False);
        let t_or_u = Rule::Or(vec![jp.clone(), us.clone()]);
        assert_eq!(eval_rule(&t_or_u, &known, tz), Truth::True);
        assert_eq!(
            eval_rule(&Rule::Not(Box::new(jp.clone())), &unknown, tz),
            Truth::Unknown
        );
    }

    #[test]
    fn explain_points_at_failed_parts() {
        let tz = chrono_tz::Asia::Tokyo;
        let req = Request::from_json(r#"{"source":{"country":"US"}}"#).unwrap();
        let rule = Rule::And(vec![
            country("US"),
            country("JP"),
            Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Bool(true))),
        ]);
        let (t, causes) = explain(&rule, &req, tz);
        assert_eq!(t, Truth::False);
        assert_eq!(
            causes,
            vec![Cause {
                index: 1,
                truth: Truth::False
            }]
        );
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;
    use crate::text::parse_rule;

    #[test]
    fn explain_keeps_only_parts_with_the_nodes_value() {
        let tz = chrono_tz::Asia::Tokyo;
        let req =
            Request::from_json(r#"{"source":{"country":"US"},"auth":{"mfa":false}}"#).unwrap();
        // FALSE or: every part explains it.
        let r = parse_rule(r#"source.country == "JP" or auth.mfa == true"#).unwrap();
        let (t, c) = explain(&r, &req, tz);
        assert_eq!(t, Truth::False);
        assert_eq!(c.iter().map(|c| c.index).collect::<Vec<_>>(), vec![0, 1]);
        // UNKNOWN and: only the unknown part (device.tpm.enabled), index 2.
        let r = parse_rule(
            r#"source.country == "US" and auth.mfa == false and device.tpm.enabled == true"#,
        )
        .unwrap();
        let (t, c) = explain(&r, &req, tz);
        assert_eq!(t, Truth::Unknown);
        assert_eq!(
            c,
            vec![Cause {
                index: 2,
                truth: Truth::Unknown
            }]
        );
        // FALSE implication: the TRUE premise and the FALSE conclusion.
        let r = parse_rule(r#"source.country == "US" -> auth.mfa == true"#).unwrap();
        let (t, c) = explain(&r, &req, tz);
        assert_eq!(t, Truth::False);
        assert_eq!(c.len(), 2);
        assert_eq!(t, eval_rule(&r, &req, tz));
    }
}
