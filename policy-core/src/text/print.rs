//! Printer for the canonical text form.

use std::fmt::{self, Write};

use crate::ast::{Condition, DomainMatch, Literal, Rule};
use crate::value::WEEKDAY_NAMES;

/// The canonical text of a rule.
pub fn print_rule(rule: &Rule) -> String {
    rule.to_string()
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_rule(f, self)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_condition(f, self)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write_string(f, s),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Enum(s) => write_string(f, s),
            Literal::Version(v) => write_string(f, &v.to_string()),
            Literal::Ip(ip) => write_string(f, &ip.to_string()),
            Literal::Country(c) => write_string(f, c.as_str()),
            Literal::Domain(d) => write_string(f, d.as_str()),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Num(n) => write_number(f, *n),
        }
    }
}

/// Binding strength, loosest first; a child binding looser than (or, to keep the
/// tree's shape exact, as loose as) its parent's operand position gets parentheses.
fn level(rule: &Rule) -> u8 {
    match rule {
        Rule::Implies(..) => 0,
        Rule::Or(_) => 1,
        Rule::And(_) => 2,
        Rule::Not(_) | Rule::Atom(_) => 3,
    }
}

/// The operand level of `not`: every binary operator binds looser, so it gets
/// parentheses; an atom or another `not` does not.
pub(crate) const NOT_OPERAND: u8 = 2;

/// Whether `child` is written in parentheses as an operand at `parent_level` (`->` 0,
/// `or` 1, `and` 2, `not` [`NOT_OPERAND`]). Equal levels are parenthesised too:
/// `a and (b and c)` must not read back flat.
pub(crate) fn parenthesised(child: &Rule, parent_level: u8) -> bool {
    level(child) <= parent_level
}

fn write_child(f: &mut fmt::Formatter<'_>, child: &Rule, parent_level: u8) -> fmt::Result {
    if parenthesised(child, parent_level) {
        f.write_char('(')?;
        write_rule(f, child)?;
        f.write_char(')')
    } else {
        write_rule(f, child)
    }
}

fn write_rule(f: &mut fmt::Formatter<'_>, rule: &Rule) -> fmt::Result {
    match rule {
        Rule::Atom(c) => write_condition(f, c),
        Rule::And(parts) | Rule::Or(parts) => {
            let (sep, lvl) = if matches!(rule, Rule::And(_)) {
                (" and ", 2)
            } else {
                (" or ", 1)
            };
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write_child(f, p, lvl)?;
            }
            Ok(())
        }
        Rule::Not(inner) => {
            f.write_str("not ")?;
            write_child(f, inner, NOT_OPERAND)
        }
        Rule::Implies(a, b) => {
            write_child(f, a, 0)?;
            f.write_str(" -> ")?;
            write_child(f, b, 0)
        }
    }
}

fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_char('[')?;
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, it)?;
    }
    f.write_char(']')
}

fn write_condition(f: &mut fmt::Formatter<'_>, c: &Condition) -> fmt::Result {
    let a = c.attribute().name();
    match c {
        Condition::Eq(_, lit) => write!(f, "{a} == {lit}"),
        Condition::In(_, lits) => {
            write!(f, "{a} in ")?;
            write_list(f, lits, |f, l| write!(f, "{l}"))
        }
        Condition::Contains(_, s) => {
            write!(f, "{a} contains ")?;
            write_string(f, s)
        }
        Condition::Compare(_, op, lit) => write!(f, "{a} {} {lit}", op.symbol()),
        Condition::InCidr(_, nets) => {
            write!(f, "{a} in_cidr ")?;
            write_list(f, nets, |f, n| write_string(f, &n.to_string()))
        }
        Condition::Domain(_, m, d) => {
            let op = match m {
                DomainMatch::InZone => "in_zone",
                DomainMatch::SubdomainOf => "subdomain_of",
            };
            write!(f, "{a} {op} ")?;
            write_string(f, d.as_str())
        }
        Condition::EmailDomain(_, d) => {
            write!(f, "{a} email_domain ")?;
            write_string(f, d.as_str())
        }
        Condition::Within {
            center, radius_km, ..
        } => {
            write!(f, "{a} within ")?;
            write_number(f, *radius_km)?;
            f.write_str(" km of (")?;
            write_number(f, center.lat)?;
            f.write_str(", ")?;
            write_number(f, center.lon)?;
            f.write_char(')')
        }
        Condition::TimeOfDay { start, end, .. } => write!(f, "{a} of_day [{start}, {end})"),
        Condition::Weekday(_, days) => {
            write!(f, "{a} weekday ")?;
            let names: Vec<&str> = days.days().map(|d| WEEKDAY_NAMES[d as usize]).collect();
            write_list(f, &names, |f, n| f.write_str(n))
        }
    }
}

/// A string as the canonical text writes it: a JSON string literal (the parser reads
/// the same escapes).
pub(crate) fn quoted(s: &str) -> String {
    // serde_json's escaping is exact and total; it cannot fail for a &str.
    serde_json::to_string(s).unwrap_or_default()
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str(&quoted(s))
}

/// Writes a number so that it reads back to the same `f64`, and always with a decimal
/// point or exponent-free digits the parser accepts (`5`, `0.8`, `139.767`).
fn write_number(f: &mut fmt::Formatter<'_>, n: f64) -> fmt::Result {
    // Rust's `Display` for f64 prints the shortest text that round-trips, never in
    // exponent form.
    write!(f, "{n}")
}
