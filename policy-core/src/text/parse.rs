//! Parser for the canonical text form (the grammar is in [`crate::text`]).
//!
//! Tokens are read with nom; the rule structure is recursive descent over them, with
//! every literal typed by its attribute as soon as it is read, so a typing error
//! (unknown attribute, an operator that does not fit the attribute's type, a malformed
//! IP address, version, country code, domain or enum name) is reported at the token
//! that causes it. The operator and literal rules are [`crate::check`]'s, so the
//! parser accepts exactly the rules the type checker accepts.
//!
//! ```
//! use policy_core::text::{parse_rule, print_rule};
//! let r = parse_rule("device.os.family == \"macos\"\n  -> device.disk.method == \"filevault\"").unwrap();
//! assert_eq!(print_rule(&r), r#"device.os.family == "macos" -> device.disk.method == "filevault""#);
//! let e = parse_rule("device.tpn.enabled == true").unwrap_err();
//! assert_eq!(e.to_string(), "line 1, column 1: unknown attribute `device.tpn.enabled` (did you mean `device.tpm.enabled`?)");
//! ```
//!
//! Decisions beyond the grammar:
//! - Whitespace (space, tab, CR, LF) may appear between any two tokens and is never
//!   required, except that adjacent words must be separated (`notauth.mfa` is one word).
//! - `->` does not associate: `a -> b -> c` is an error; write `(a -> b) -> c` or
//!   `a -> (b -> c)`. `and`/`or` chains give one n-ary node; parentheses give nesting,
//!   so `a and (b and c)` keeps its shape.
//! - Numbers are `-?[0-9]+(\.[0-9]+)?`. An integer attribute (`destination.port`)
//!   takes only numbers without a fraction, a number attribute (`risk.score`) any.
//! - Strings are JSON string literals with JSON's escapes. E-mail literals of `==`/`in`
//!   and `device.apps contains` strings are lower-cased (they are compared
//!   case-insensitively); `user.groups contains` strings are kept as written.
//! - Enum names, weekday names and keywords are lower case and exact.
//! - Weekdays may be listed in any order, but not twice; the printer lists them
//!   Monday first.
//! - `in_cidr` takes `addr/prefix` without host bits, or a bare address (a host).
//! - Nesting of parentheses and `not` deeper than [`MAX_NESTING`] is refused.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use nom::bytes::complete::{take_while1, take_while_m_n};
use nom::character::complete::{char as ch, digit1, multispace0};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

use crate::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
use crate::check::{self, Op, MAX_NESTING};
use crate::context::normalize_email;
use crate::schema::{AttrType, Attribute};
use crate::value::{CountryCode, Domain, Point, TimeOfDay, Version, WeekdaySet, WEEKDAY_NAMES};

/// Text that is not a well-formed, well-typed rule: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// Byte offset of the offending token in the input.
    pub offset: usize,
    /// Line of the offending token, from 1.
    pub line: usize,
    /// Column of the offending token in characters, from 1.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

/// Parses the canonical text of one rule. The whole input must be one rule (leading
/// and trailing whitespace aside); the rule type-checks.
pub fn parse_rule(input: &str) -> Result<Rule, ParseError> {
    let result = rule(input, 0).and_then(|(rest, r)| {
        let rest = ws(rest);
        if rest.is_empty() {
            Ok(r)
        } else if rest.starts_with(')') {
            Err(fail(rest, "unmatched `)`".to_string()))
        } else {
            Err(expected(rest, "`and`, `or`, `->` or the end of the rule"))
        }
    });
    result.map_err(|f| f.into_error(input))
}

/// An error at a position: `at` is the rest of the input from the offending token on.
#[derive(Debug)]
struct Fail<'a> {
    at: &'a str,
    message: String,
}

impl<'a> Fail<'a> {
    fn into_error(self, input: &str) -> ParseError {
        // `at` is always a suffix of `input`, so this is a char boundary.
        let mut offset = input.len().saturating_sub(self.at.len());
        while offset > 0 && !input.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = input.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ParseError {
            offset,
            line,
            column,
            message: self.message,
        }
    }
}

type PResult<'a, T> = Result<(&'a str, T), Fail<'a>>;

fn fail(at: &str, message: String) -> Fail<'_> {
    Fail { at, message }
}

fn expected<'a>(at: &'a str, what: &str) -> Fail<'a> {
    fail(at, format!("expected {what}, found {}", found(at)))
}

// ---------------------------------------------------------------------------------
// Tokens (nom).

fn ws(s: &str) -> &str {
    let r: IResult<&str, &str> = multispace0(s);
    r.map(|(rest, _)| rest).unwrap_or(s)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A word: an attribute name or a keyword (`[A-Za-z_][A-Za-z0-9_.]*`).
fn word(s: &str) -> Option<(&str, &str)> {
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let r: IResult<&str, &str> = take_while1(is_word_char)(s);
    r.ok()
}

/// `-?[0-9]+(\.[0-9]+)?`
fn number_token(s: &str) -> Option<(&str, &str)> {
    let r: IResult<&str, &str> =
        recognize(tuple((opt(ch('-')), digit1, opt(pair(ch('.'), digit1)))))(s);
    r.ok()
}

/// Consumes the keyword `kw` (a whole word) after optional whitespace.
fn keyword<'a>(s: &'a str, kw: &str) -> Option<&'a str> {
    match word(ws(s)) {
        Some((rest, w)) if w == kw => Some(rest),
        _ => None,
    }
}

/// Consumes the punctuation `p` after optional whitespace, or fails saying what it
/// expected.
fn punct<'a>(s: &'a str, p: char) -> PResult<'a, ()> {
    let s = ws(s);
    let r: IResult<&str, char> = ch(p)(s);
    match r {
        Ok((rest, _)) => Ok((rest, ())),
        Err(_) => Err(expected(s, &format!("`{p}`"))),
    }
}

/// A JSON string literal, unescaped.
fn string<'a>(s: &'a str) -> PResult<'a, String> {
    let s = ws(s);
    if !s.starts_with('"') {
        return Err(expected(s, "a string literal"));
    }
    let mut escaped = false;
    let mut end = None;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            end = Some(i + 1);
            break;
        }
    }
    let Some(end) = end else {
        return Err(fail(
            s,
            "unterminated string literal: expected a closing `\"`".into(),
        ));
    };
    let (token, rest) = (s.get(..end).unwrap_or(""), s.get(end..).unwrap_or(""));
    match serde_json::from_str::<String>(token) {
        Ok(v) => Ok((rest, v)),
        Err(e) => {
            let why = e.to_string();
            let why = why.rfind(" at line ").map_or(why.as_str(), |i| &why[..i]);
            Err(fail(s, format!("invalid string literal: {why}")))
        }
    }
}

/// A number token as `f64` (possibly infinite when it has too many digits; callers
/// check).
fn number<'a>(s: &'a str) -> PResult<'a, f64> {
    let s = ws(s);
    match number_token(s) {
        Some((rest, t)) => match f64::from_str(t) {
            Ok(n) => Ok((rest, n)),
            Err(_) => Err(expected(s, "a number")),
        },
        None => Err(expected(s, "a number")),
    }
}

/// `HH:MM`, 00:00 to 24:00.
fn time_of_day<'a>(s: &'a str) -> PResult<'a, TimeOfDay> {
    let s = ws(s);
    let two = |i| -> IResult<&str, &str> { take_while_m_n(2, 2, |c: char| c.is_ascii_digit())(i) };
    let r = tuple((two, ch(':'), two))(s);
    let Ok((rest, (h, _, m))) = r else {
        return Err(expected(s, "a time HH:MM (two digits each, e.g. 09:00)"));
    };
    let (h, m) = (
        h.parse::<u32>().unwrap_or(99),
        m.parse::<u32>().unwrap_or(99),
    );
    match TimeOfDay::new(h, m) {
        Some(t) => Ok((rest, t)),
        None => Err(fail(
            s,
            format!("time {h:02}:{m:02} out of range: expected 00:00 to 24:00"),
        )),
    }
}

/// Describes the token at `s` for "found ..." in messages.
fn found(s: &str) -> String {
    let Some(c) = s.chars().next() else {
        return "the end of the rule".into();
    };
    if c == '"' {
        return "a string literal".into();
    }
    let tok = if let Some((_, w)) = word(s) {
        w
    } else if let Some((_, n)) = number_token(s) {
        n
    } else if let Some(op) = ["==", "!=", "<=", ">=", "->"]
        .into_iter()
        .find(|op| s.starts_with(op))
    {
        op
    } else {
        &s[..c.len_utf8()]
    };
    format!("`{}`", snippet(tok))
}

/// At most 40 characters of `s`, control characters escaped, for messages in
/// backticks.
fn snippet(s: &str) -> String {
    let mut out = String::new();
    for c in check::short(s).chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Structure.

/// `rule := or_expr ( "->" or_expr )?`
fn rule(s: &str, depth: usize) -> PResult<'_, Rule> {
    let (s, lhs) = or_expr(s, depth)?;
    let t = ws(s);
    let Some(after) = t.strip_prefix("->") else {
        return Ok((s, lhs));
    };
    let (s, rhs) = or_expr(after, depth)?;
    let t = ws(s);
    if t.starts_with("->") {
        return Err(fail(
            t,
            "`->` cannot be chained: put parentheses around one side, \
             `(a -> b) -> c` or `a -> (b -> c)`"
                .into(),
        ));
    }
    Ok((s, Rule::Implies(Box::new(lhs), Box::new(rhs))))
}

/// `or_expr := and_expr ( "or" and_expr )*`
fn or_expr(s: &str, depth: usize) -> PResult<'_, Rule> {
    chain(s, depth, "or", and_expr, Rule::Or)
}

/// `and_expr := unary ( "and" unary )*`
fn and_expr(s: &str, depth: usize) -> PResult<'_, Rule> {
    chain(s, depth, "and", unary, Rule::And)
}

/// `operand ( keyword operand )*`: one operand stands alone, several make one n-ary
/// node (nesting comes only from parentheses, which keeps the round trip exact).
fn chain<'a>(
    s: &'a str,
    depth: usize,
    kw: &str,
    operand: fn(&'a str, usize) -> PResult<'a, Rule>,
    make: fn(Vec<Rule>) -> Rule,
) -> PResult<'a, Rule> {
    let (mut s, first) = operand(s, depth)?;
    let mut parts = vec![first];
    while let Some(rest) = keyword(s, kw) {
        let (rest, next) = operand(rest, depth)?;
        parts.push(next);
        s = rest;
    }
    let rule = match parts.len() {
        1 => parts.pop().unwrap_or(Rule::And(Vec::new())),
        _ => make(parts),
    };
    Ok((s, rule))
}

/// `unary := "not" unary | "(" rule ")" | condition`
fn unary(s: &str, depth: usize) -> PResult<'_, Rule> {
    let s = ws(s);
    let too_deep = |at| {
        fail(
            at,
            format!("the rule is nested deeper than {MAX_NESTING} levels of parentheses and `not`"),
        )
    };
    if let Some(inner) = s.strip_prefix('(') {
        if depth >= MAX_NESTING {
            return Err(too_deep(s));
        }
        let (rest, r) = rule(inner, depth + 1)?;
        let rest = ws(rest);
        return match rest.strip_prefix(')') {
            Some(rest) => Ok((rest, r)),
            None => Err(expected(rest, "`and`, `or`, `->` or `)`")),
        };
    }
    match word(s) {
        Some((rest, "not")) => {
            if depth >= MAX_NESTING {
                return Err(too_deep(s));
            }
            let (rest, r) = unary(rest, depth + 1)?;
            Ok((rest, Rule::Not(Box::new(r))))
        }
        Some(_) => {
            let (rest, c) = condition(s)?;
            Ok((rest, Rule::Atom(c)))
        }
        None => Err(expected(s, "a condition (an attribute name), `not` or `(`")),
    }
}

// ---------------------------------------------------------------------------------
// Conditions.

/// A condition; `s` starts at the attribute name.
fn condition(s: &str) -> PResult<'_, Condition> {
    let Some((rest, name)) = word(s) else {
        return Err(expected(s, "an attribute name"));
    };
    let Some(attr) = Attribute::from_name(name) else {
        let mut m = format!("unknown attribute `{}`", snippet(name));
        if let Some(near) = suggest(name) {
            m.push_str(&format!(" (did you mean `{near}`?)"));
        }
        return Err(fail(s, m));
    };
    let op_at = ws(rest);
    let (rest, op) = operator(op_at)?;
    check::op_fits(attr, op).map_err(|m| fail(op_at, m))?;
    let operand_at = ws(rest);
    let (rest, cond) = operand(attr, op, operand_at)?;
    // Everything was checked token by token; this keeps the parser and the checker
    // from ever disagreeing.
    check::check_condition(&cond).map_err(|m| fail(operand_at, m))?;
    Ok((rest, cond))
}

/// The attribute name closest to an unknown one, if it is close.
fn suggest(name: &str) -> Option<&'static str> {
    if name.len() > 64 {
        return None;
    }
    Attribute::ALL
        .iter()
        .map(|a| (edit_distance(name, a.name()), a.name()))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

const OPERATORS: &str = "an operator (==, in, contains, <, <=, >, >=, in_cidr, in_zone, \
                         subdomain_of, email_domain, within, of_day, weekday)";

fn operator(s: &str) -> PResult<'_, Op> {
    for (sym, op) in [
        ("==", Op::Eq),
        ("<=", Op::Compare(CmpOp::Le)),
        (">=", Op::Compare(CmpOp::Ge)),
        ("<", Op::Compare(CmpOp::Lt)),
        (">", Op::Compare(CmpOp::Gt)),
    ] {
        if let Some(rest) = s.strip_prefix(sym) {
            return Ok((rest, op));
        }
    }
    if s.starts_with("!=") {
        return Err(fail(
            s,
            "`!=` is not an operator: write `not ATTRIBUTE == VALUE`".into(),
        ));
    }
    if s.starts_with('=') {
        return Err(expected(s, "`==`"));
    }
    let op = match word(s) {
        Some((rest, w)) => match w {
            "in" => Some((rest, Op::In)),
            "contains" => Some((rest, Op::Contains)),
            "in_cidr" => Some((rest, Op::InCidr)),
            "in_zone" => Some((rest, Op::InZone)),
            "subdomain_of" => Some((rest, Op::SubdomainOf)),
            "email_domain" => Some((rest, Op::EmailDomain)),
            "within" => Some((rest, Op::Within)),
            "of_day" => Some((rest, Op::OfDay)),
            "weekday" => Some((rest, Op::Weekday)),
            _ => None,
        },
        None => None,
    };
    op.ok_or_else(|| expected(s, OPERATORS))
}

/// What follows the operator; `s` starts at its first token.
fn operand(attr: Attribute, op: Op, s: &str) -> PResult<'_, Condition> {
    Ok(match op {
        Op::Eq => {
            let (rest, lit) = literal(attr, op, s)?;
            (rest, Condition::Eq(attr, lit))
        }
        Op::Compare(cmp) => {
            let (rest, lit) = literal(attr, op, s)?;
            (rest, Condition::Compare(attr, cmp, lit))
        }
        Op::In => {
            let (rest, lits) = list(s, '[', ']', "`in` needs at least one value", |s| {
                literal(attr, op, s)
            })?;
            (rest, Condition::In(attr, lits))
        }
        Op::Contains => {
            let (rest, mut needle) = string(s)?;
            if check::wants_lower_case(attr, op) {
                needle = needle.to_lowercase();
            }
            check::check_needle(attr, &needle).map_err(|m| fail(s, m))?;
            (rest, Condition::Contains(attr, needle))
        }
        Op::InCidr => {
            let (rest, nets) = list(s, '[', ']', "`in_cidr` needs at least one network", cidr)?;
            (rest, Condition::InCidr(attr, nets))
        }
        Op::InZone | Op::SubdomainOf | Op::EmailDomain => {
            let (rest, d) = domain(s)?;
            let c = match op {
                Op::InZone => Condition::Domain(attr, DomainMatch::InZone, d),
                Op::SubdomainOf => Condition::Domain(attr, DomainMatch::SubdomainOf, d),
                _ => Condition::EmailDomain(attr, d),
            };
            (rest, c)
        }
        Op::Within => {
            let (rest, radius_km) = number(s)?;
            check::check_radius(radius_km).map_err(|m| fail(s, m))?;
            let rest = keyword(rest, "km").ok_or_else(|| expected(ws(rest), "`km`"))?;
            let rest = keyword(rest, "of").ok_or_else(|| expected(ws(rest), "`of`"))?;
            let point_at = ws(rest);
            let (rest, ()) = punct(rest, '(')?;
            let (rest, lat) = number(rest)?;
            let (rest, ()) = punct(rest, ',')?;
            let (rest, lon) = number(rest)?;
            let (rest, ()) = punct(rest, ')')?;
            let center = Point { lat, lon };
            check::check_point(center).map_err(|m| fail(point_at, m))?;
            (
                rest,
                Condition::Within {
                    attr,
                    center,
                    radius_km,
                },
            )
        }
        Op::OfDay => {
            let (rest, ()) = punct(s, '[')?;
            let (rest, start) = time_of_day(rest)?;
            let (rest, ()) = punct(rest, ',')?;
            let (rest, end) = time_of_day(rest)?;
            let rest = ws(rest);
            if rest.starts_with(']') {
                return Err(fail(
                    rest,
                    "expected `)`: time ranges are half-open, `[09:00, 18:00)`".into(),
                ));
            }
            let (rest, ()) = punct(rest, ')')?;
            (rest, Condition::TimeOfDay { attr, start, end })
        }
        Op::Weekday => {
            let mut bits = 0u8;
            let (rest, _) = list(s, '[', ']', "`weekday` needs at least one day", |s| {
                let s = ws(s);
                let day = word(s).and_then(|(rest, w)| {
                    WEEKDAY_NAMES
                        .iter()
                        .position(|d| *d == w)
                        .map(|i| (rest, i, w))
                });
                let Some((rest, i, w)) = day else {
                    return Err(expected(s, "a weekday (mon, tue, wed, thu, fri, sat, sun)"));
                };
                if bits & (1 << i) != 0 {
                    return Err(fail(s, format!("weekday `{w}` is listed twice")));
                }
                bits |= 1 << i;
                Ok((rest, ()))
            })?;
            (rest, Condition::Weekday(attr, WeekdaySet::from_bits(bits)))
        }
    })
}

/// `open item ( "," item )* close`, at least one item.
fn list<'a, T>(
    s: &'a str,
    open: char,
    close: char,
    empty: &str,
    mut item: impl FnMut(&'a str) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (s, ()) = punct(s, open)?;
    let t = ws(s);
    if t.starts_with(close) {
        return Err(fail(t, empty.to_string()));
    }
    let mut out = Vec::new();
    let mut s = s;
    loop {
        let (rest, x) = item(s)?;
        out.push(x);
        let rest = ws(rest);
        if let Some(rest) = rest.strip_prefix(',') {
            s = rest;
        } else if let Some(rest) = rest.strip_prefix(close) {
            return Ok((rest, out));
        } else {
            return Err(expected(rest, &format!("`,` or `{close}`")));
        }
    }
}

/// A literal of `==`, `in` or a comparison on `attr`, typed by the attribute.
fn literal(attr: Attribute, op: Op, s: &str) -> PResult<'_, Literal> {
    use AttrType as T;
    let s = ws(s);
    let ty = attr.ty();
    let wrong = |s| {
        fail(
            s,
            format!(
                "`{attr}` is of type {}: expected {}, found {}",
                ty.name(),
                check::expected_literal(ty),
                found(s)
            ),
        )
    };
    let (rest, lit) = if s.starts_with('"') {
        let (rest, text) = string(s)?;
        let lit = match ty {
            T::String => Literal::Str(text),
            T::Email if check::wants_lower_case(attr, op) => Literal::Str(normalize_email(&text)),
            T::Email => Literal::Str(text),
            T::Enum(_) => Literal::Enum(check::enum_value(attr, &text).map_err(|m| fail(s, m))?),
            T::Version => Literal::Version(value(s, Version::from_str(&text))?),
            T::Ip => Literal::Ip(IpAddr::from_str(&text).map_err(|_| {
                fail(
                    s,
                    format!(
                        "invalid IP address {:?}: expected an IPv4 or IPv6 address such as \
                         \"192.0.2.1\" or \"2001:db8::1\"",
                        check::short(&text)
                    ),
                )
            })?),
            T::Country => Literal::Country(value(s, CountryCode::from_str(&text))?),
            T::Domain => Literal::Domain(value(s, Domain::from_str(&text))?),
            _ => return Err(wrong(s)),
        };
        (rest, lit)
    } else if let Some((rest, t)) = number_token(s) {
        let lit = match ty {
            T::Integer => {
                if t.contains('.') {
                    return Err(fail(
                        s,
                        format!(
                            "`{attr}` is an integer: expected a whole number, found `{}`",
                            snippet(t)
                        ),
                    ));
                }
                Literal::Int(
                    i64::from_str(t)
                        .map_err(|_| fail(s, format!("integer `{}` out of range", snippet(t))))?,
                )
            }
            T::Number => Literal::Num(f64::from_str(t).map_err(|_| wrong(s))?),
            _ => return Err(wrong(s)),
        };
        (rest, lit)
    } else {
        match word(s) {
            Some((rest, b @ ("true" | "false"))) if ty == T::Bool => {
                (rest, Literal::Bool(b == "true"))
            }
            Some((_, w)) if w != "true" && w != "false" => {
                return Err(fail(
                    s,
                    format!(
                        "expected a literal (a string, a number, `true` or `false`), found `{}`; \
                         strings are quoted: \"{}\"",
                        snippet(w),
                        snippet(w)
                    ),
                ))
            }
            Some(_) => return Err(wrong(s)),
            None => {
                return Err(expected(
                    s,
                    "a literal (a string, a number, `true` or `false`)",
                ))
            }
        }
    };
    check::check_literal(attr, &lit).map_err(|m| fail(s, m))?;
    Ok((rest, lit))
}

/// A literal that its type refused, with the text it was given cut short.
fn value<'a, T>(at: &'a str, r: Result<T, crate::value::ValueError>) -> Result<T, Fail<'a>> {
    r.map_err(|mut e| {
        e.given = check::short(&e.given);
        fail(at, e.to_string())
    })
}

fn domain(s: &str) -> PResult<'_, Domain> {
    let s = ws(s);
    let (rest, text) = string(s)?;
    Ok((rest, value(s, Domain::from_str(&text))?))
}

/// A network of `in_cidr`: `"addr/prefix"` without host bits, or a bare address.
fn cidr(s: &str) -> PResult<'_, IpNet> {
    let s = ws(s);
    let (rest, text) = string(s)?;
    let net = if text.contains('/') {
        IpNet::from_str(&text).map_err(|_| {
            fail(
                s,
                format!(
                    "invalid network {:?}: expected an address/prefix such as \
                     \"203.0.113.0/24\" or \"2001:db8::/32\"",
                    check::short(&text)
                ),
            )
        })?
    } else {
        IpNet::from(IpAddr::from_str(&text).map_err(|_| {
            fail(
                s,
                format!(
                    "invalid network {:?}: expected an address/prefix such as \
                     \"203.0.113.0/24\" or an address",
                    check::short(&text)
                ),
            )
        })?)
    };
    check::check_cidr(&net).map_err(|m| fail(s, m))?;
    Ok((rest, net))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::print_rule;
    use Attribute as A;

    fn p(s: &str) -> Rule {
        match parse_rule(s) {
            Ok(r) => r,
            Err(e) => panic!("{s}: {e}"),
        }
    }
    fn c(s: &str) -> Condition {
        match p(s) {
            Rule::Atom(c) => c,
            r => panic!("not an atom: {r:?}"),
        }
    }
    /// The error's (line, column, message).
    fn e(s: &str) -> (usize, usize, String) {
        let e = parse_rule(s).expect_err(s);
        (e.line, e.column, e.message)
    }
    fn at(s: &str) -> (usize, usize) {
        let (l, c, _) = e(s);
        (l, c)
    }
    fn mfa() -> Rule {
        Rule::Atom(Condition::Eq(A::AuthMfa, Literal::Bool(true)))
    }
    fn reg(b: bool) -> Rule {
        Rule::Atom(Condition::Eq(A::DeviceRegistered, Literal::Bool(b)))
    }
    fn round_trip(s: &str) {
        let r = p(s);
        assert_eq!(check::check_rule(&r), Ok(()), "{s}");
        let printed = print_rule(&r);
        assert_eq!(printed, s, "printing the parse of {s}");
        assert_eq!(parse_rule(&printed), Ok(r));
    }

    #[test]
    fn every_condition_kind_parses() {
        assert_eq!(
            c(r#"user.id == "tanaka""#),
            Condition::Eq(A::UserId, Literal::Str("tanaka".into()))
        );
        assert_eq!(
            c(r#"user.email == "Tanaka@Example.CO.JP""#),
            Condition::Eq(A::UserEmail, Literal::Str("tanaka@example.co.jp".into()))
        );
        // Written as requests store addresses, or it could never match one.
        assert_eq!(
            c(r#"user.email == "A@日本.JP""#),
            Condition::Eq(A::UserEmail, Literal::Str("a@xn--wgv71a.jp".into()))
        );
        assert_eq!(
            c("auth.mfa == false"),
            Condition::Eq(A::AuthMfa, Literal::Bool(false))
        );
        assert_eq!(
            c(r#"auth.method == "webauthn""#),
            Condition::Eq(A::AuthMethod, Literal::Enum("webauthn"))
        );
        assert_eq!(
            c(r#"device.os.version >= "10.0.22631""#),
            Condition::Compare(
                A::DeviceOsVersion,
                CmpOp::Ge,
                Literal::Version("10.0.22631".parse().unwrap())
            )
        );
        assert_eq!(
            c(r#"destination.ip == "2001:db8::1""#),
            Condition::Eq(
                A::DestinationIp,
                Literal::Ip("2001:db8::1".parse().unwrap())
            )
        );
        assert_eq!(
            c(r#"source.country in ["JP", "us"]"#),
            Condition::In(
                A::SourceCountry,
                vec![
                    Literal::Country("JP".parse().unwrap()),
                    Literal::Country("US".parse().unwrap())
                ]
            )
        );
        assert_eq!(
            c(r#"destination.domain == "Chat.DeepSeek.com.""#),
            Condition::Eq(
                A::DestinationDomain,
                Literal::Domain("chat.deepseek.com".parse().unwrap())
            )
        );
        assert_eq!(
            c("destination.port < 1024"),
            Condition::Compare(A::DestinationPort, CmpOp::Lt, Literal::Int(1024))
        );
        assert_eq!(
            c("risk.score > 0.8"),
            Condition::Compare(A::RiskScore, CmpOp::Gt, Literal::Num(0.8))
        );
        assert_eq!(
            c("risk.score <= 1"),
            Condition::Compare(A::RiskScore, CmpOp::Le, Literal::Num(1.0))
        );
        assert_eq!(
            c(r#"user.groups contains "経理部""#),
            Condition::Contains(A::UserGroups, "経理部".into())
        );
        assert_eq!(
            c(r#"user.groups contains "Admins""#),
            Condition::Contains(A::UserGroups, "Admins".into())
        );
        assert_eq!(
            c(r#"device.apps contains "Microsoft Teams""#),
            Condition::Contains(A::DeviceApps, "microsoft teams".into())
        );
        assert_eq!(
            c(r#"source.ip in_cidr ["203.0.113.0/24", "2001:db8::/32", "192.0.2.1"]"#),
            Condition::InCidr(
                A::SourceIp,
                vec![
                    "203.0.113.0/24".parse().unwrap(),
                    "2001:db8::/32".parse().unwrap(),
                    "192.0.2.1/32".parse().unwrap()
                ]
            )
        );
        assert_eq!(
            c(r#"destination.domain in_zone "日本.jp""#),
            Condition::Domain(
                A::DestinationDomain,
                DomainMatch::InZone,
                "xn--wgv71a.jp".parse().unwrap()
            )
        );
        assert_eq!(
            c(r#"destination.domain subdomain_of "example.net""#),
            Condition::Domain(
                A::DestinationDomain,
                DomainMatch::SubdomainOf,
                "example.net".parse().unwrap()
            )
        );
        assert_eq!(
            c(r#"user.email email_domain "Example.co.jp""#),
            Condition::EmailDomain(A::UserEmail, "example.co.jp".parse().unwrap())
        );
        assert_eq!(
            c("device.location within 5 km of (35.681, -139.767)"),
            Condition::Within {
                attr: A::DeviceLocation,
                center: Point {
                    lat: 35.681,
                    lon: -139.767
                },
                radius_km: 5.0
            }
        );
        assert_eq!(
            c("time of_day [22:00, 05:00)"),
            Condition::TimeOfDay {
                attr: A::Time,
                start: TimeOfDay::new(22, 0).unwrap(),
                end: TimeOfDay::new(5, 0).unwrap()
            }
        );
        assert_eq!(
            c("time of_day [00:00,24:00)"),
            Condition::TimeOfDay {
                attr: A::Time,
                start: TimeOfDay::new(0, 0).unwrap(),
                end: TimeOfDay::new(24, 0).unwrap()
            }
        );
        assert_eq!(
            c("time weekday [sun, sat]"),
            Condition::Weekday(A::Time, WeekdaySet::WEEKEND)
        );
        assert_eq!(
            c(r#"user.email in ["A@x.jp", "b@x.jp"]"#),
            Condition::In(
                A::UserEmail,
                vec![Literal::Str("a@x.jp".into()), Literal::Str("b@x.jp".into())]
            )
        );
    }

    #[test]
    fn precedence_and_shape() {
        let a = || mfa();
        let b = || reg(true);
        let cc = || reg(false);
        let not = |r| Rule::Not(Box::new(r));
        let imp = |x, y| Rule::Implies(Box::new(x), Box::new(y));
        let (ta, tb, tc) = (
            "auth.mfa == true",
            "device.registered == true",
            "device.registered == false",
        );
        assert_eq!(
            p(&format!("{ta} or {tb} and {tc}")),
            Rule::Or(vec![a(), Rule::And(vec![b(), cc()])])
        );
        assert_eq!(
            p(&format!("not {ta} and {tb}")),
            Rule::And(vec![not(a()), b()])
        );
        assert_eq!(
            p(&format!("{ta} and {tb} -> {tc} or {ta}")),
            imp(Rule::And(vec![a(), b()]), Rule::Or(vec![cc(), a()]))
        );
        assert_eq!(
            p(&format!("{ta} and ({tb} and {tc})")),
            Rule::And(vec![a(), Rule::And(vec![b(), cc()])])
        );
        assert_eq!(
            p(&format!("{ta} and {tb} and {tc}")),
            Rule::And(vec![a(), b(), cc()])
        );
        assert_eq!(
            p(&format!("(({ta}))")),
            a(),
            "parentheses around an atom add nothing"
        );
        assert_eq!(p(&format!("not not {ta}")), not(not(a())));
        assert_eq!(
            p(&format!("not ({ta} or {tb})")),
            not(Rule::Or(vec![a(), b()]))
        );
        assert_eq!(
            p(&format!("({ta} -> {tb}) -> {tc}")),
            imp(imp(a(), b()), cc())
        );
        assert_eq!(
            p(&format!("{ta} -> ({tb} -> {tc})")),
            imp(a(), imp(b(), cc()))
        );
        // Whitespace is insignificant between tokens, including none at all.
        assert_eq!(
            p("\n\t( auth.mfa==true )and not(device.registered==true)->auth.mfa==true \r\n"),
            imp(Rule::And(vec![a(), not(b())]), a())
        );
    }

    #[test]
    fn hand_written_round_trips() {
        for s in [
            r#"source.country == "JP" and device.tpm.enabled == true"#,
            r#"destination.domain in_zone "deepseek.com""#,
            r#"destination.domain subdomain_of "example.net""#,
            r#"source.ip in_cidr ["203.0.113.0/24"]"#,
            r#"device.os.family == "macos" -> device.disk.encrypted == true and device.disk.method == "filevault""#,
            "time of_day [09:00, 18:00) and time weekday [mon, tue, wed, thu, fri]",
            "device.location within 5 km of (35.681, 139.767)",
            r#"not user.groups contains "管理者""#,
            r#"user.groups contains "経理部" or user.groups contains "営業部\n第二課""#,
            r#"user.id == "say \"hi\"\\\t\u0001" and device.network.ssid == "社内 Wi-Fi 🛜""#,
            r#"(user.id == "a" -> user.id == "b") -> not (user.id == "c" or user.id == "d")"#,
            r#"user.id == "a" and (user.id == "b" and user.id == "c")"#,
            r#"(user.id == "a" or user.id == "b") or user.id == "c""#,
            "risk.score >= 0.12345678901234568 or risk.score == -0 or risk.score < 1000000",
            r#"destination.port in [80, 443] and destination.ip in_cidr ["::/0", "10.0.0.0/8"]"#,
            r#"device.tpm.version >= "2.0" and device.os.version < "10.0.22631""#,
            r#"user.email == "tanaka@example.co.jp" or user.email email_domain "xn--wgv71a.jp""#,
            "device.location within 0.5 km of (-33.8688, 151.2093)",
        ] {
            round_trip(s);
        }
    }

    #[test]
    fn unknown_attribute_is_reported_where_it_is() {
        let (l, c, m) = e("auth.mfa == true and\n  device.tpn.enabled == true");
        assert_eq!((l, c), (2, 3));
        assert_eq!(
            m,
            "unknown attribute `device.tpn.enabled` (did you mean `device.tpm.enabled`?)"
        );
        assert_eq!(e("frobnicate == 1").2, "unknown attribute `frobnicate`");
        let err = parse_rule("x == 1").unwrap_err();
        assert_eq!(err.offset, 0);
        assert_eq!(err.to_string(), "line 1, column 1: unknown attribute `x`");
    }

    #[test]
    fn operator_must_fit_the_type() {
        let (l, c, m) = e(r#"user.groups == "経理部""#);
        assert_eq!((l, c), (1, 13));
        assert!(m.contains("use `contains`"), "{m}");
        assert_eq!(at(r#"user.id contains "x""#), (1, 9));
        assert_eq!(at(r#"source.ip < "1.2.3.4""#), (1, 11));
        assert_eq!(at("time == 1"), (1, 6));
        assert_eq!(at("device.location == 1"), (1, 17));
        assert_eq!(at(r#"user.id in_cidr ["10.0.0.0/8"]"#), (1, 9));
        assert_eq!(at(r#"user.id in_zone "a.b""#), (1, 9));
        assert_eq!(at(r#"destination.domain email_domain "a.b""#), (1, 20));
        assert_eq!(at("user.id within 1 km of (0, 0)"), (1, 9));
        assert_eq!(at("user.id of_day [09:00, 10:00)"), (1, 9));
        assert_eq!(at("risk.score weekday [mon]"), (1, 12));
        // Japanese before the error counts in characters, not bytes.
        let (l, c, _) = e("user.groups contains \"経理部\" and\nuser.groups == \"営業\"");
        assert_eq!((l, c), (2, 13));
        let err = parse_rule("user.groups contains \"経理部\" or user.id < \"a\"").unwrap_err();
        assert_eq!(err.column, 39);
        assert_eq!(
            err.offset,
            "user.groups contains \"経理部\" or user.id ".len()
        );
    }

    #[test]
    fn malformed_literals_are_reported_where_they_are() {
        let (l, c, m) = e(r#"source.ip == "300.1.2.3""#);
        assert_eq!((l, c), (1, 14));
        assert!(m.contains("invalid IP address \"300.1.2.3\""), "{m}");
        let (_, c, m) = e(r#"source.ip in_cidr ["10.0.0.0/8", "203.0.113.5/24"]"#);
        assert_eq!(c, 34);
        assert_eq!(m, "203.0.113.5/24 has host bits set: use 203.0.113.0/24");
        assert!(e(r#"source.ip in_cidr ["10.0.0.0/33"]"#)
            .2
            .contains("invalid network"));
        assert!(e(r#"source.ip in_cidr ["nope"]"#)
            .2
            .contains("invalid network"));
        let (_, c, m) = e(r#"device.os.version == "10.x""#);
        assert_eq!(c, 22);
        assert!(m.contains("バージョン"), "{m}");
        let (_, c, m) = e(r#"source.country == "XX""#);
        assert_eq!(c, 19);
        assert!(m.contains("国コード"), "{m}");
        let (_, c, m) = e(r#"destination.domain in_zone "bad domain""#);
        assert_eq!(c, 28);
        assert!(m.contains("ドメイン名"), "{m}");
        let (_, c, m) = e(r#"device.os.family == "macOS""#);
        assert_eq!(c, 21);
        assert_eq!(
            m,
            r#"unknown value "macOS" for `device.os.family`: expected one of "windows", "macos", "linux", "ios", "android""#
        );
        let (_, c, m) = e("destination.port == 70000");
        assert_eq!(c, 21);
        assert!(m.contains("0..=65535"), "{m}");
        assert!(e("destination.port == 443.5").2.contains("whole number"));
        assert!(e("destination.port == 99999999999999999999")
            .2
            .contains("out of range"));
        assert!(e(&format!("risk.score < 1{}", "0".repeat(400)))
            .2
            .contains("finite"));
        let (_, c, m) = e(r#"auth.mfa == "true""#);
        assert_eq!(c, 13);
        assert_eq!(
            m,
            "`auth.mfa` is of type bool: expected `true` or `false`, found a string literal"
        );
        assert!(e("user.id == 5").2.contains("expected a string"));
        assert!(e("device.os.version > 10").2.contains("version string"));
        let (_, c, m) = e("auth.method == password");
        assert_eq!(c, 16);
        assert!(m.contains(r#"strings are quoted: "password""#), "{m}");
        let (_, c, m) = e(r#"user.id == "a\qb""#);
        assert_eq!(c, 12);
        assert!(
            m.starts_with("invalid string literal: invalid escape"),
            "{m}"
        );
        assert!(e("user.id == \"tab\there\"")
            .2
            .starts_with("invalid string literal"));
        assert!(e(r#"user.id == "\ud800""#)
            .2
            .starts_with("invalid string literal"));
        // Long input is quoted cut short.
        let junk = "x y".repeat(1000);
        for s in [
            format!("destination.domain in_zone \"{junk}\""),
            format!("auth.method == \"{junk}\""),
            format!("source.ip == \"{junk}\""),
            format!("source.ip in_cidr [\"{junk}\"]"),
            format!("{} == 1", "a".repeat(1000)),
            format!("auth.mfa == {}", "a".repeat(1000)),
        ] {
            let m = e(&s).2;
            assert!(m.chars().count() < 250 && m.contains('…'), "{m}");
        }
        let (_, c, m) = e(r#"user.id == "open"#);
        assert_eq!(c, 12);
        assert!(m.starts_with("unterminated string literal"));
    }

    #[test]
    fn clock_and_place_errors() {
        let (_, c, m) = e("time of_day [09:00, 09:00)");
        assert_eq!(c, 13);
        assert!(m.contains("empty time range"), "{m}");
        let (_, c, m) = e("time of_day [9:00, 18:00)");
        assert_eq!(c, 14);
        assert!(m.contains("HH:MM"), "{m}");
        assert!(e("time of_day [09:00, 24:01)").2.contains("out of range"));
        assert!(e("time of_day [09:60, 10:00)").2.contains("out of range"));
        assert!(e("time of_day [25:00, 10:00)").2.contains("out of range"));
        assert!(e("time of_day [09:00, 18:00]").2.contains("half-open"));
        let (_, c, m) = e("time weekday [mon, funday]");
        assert_eq!(c, 20);
        assert!(m.starts_with("expected a weekday"), "{m}");
        assert_eq!(
            e("time weekday [mon, tue, mon]").2,
            "weekday `mon` is listed twice"
        );
        assert!(e("time weekday []").2.contains("at least one day"));
        assert!(e("source.country in []").2.contains("at least one value"));
        let (_, c, m) = e("device.location within 0 km of (35, 139)");
        assert_eq!(c, 24);
        assert!(m.contains("radius"), "{m}");
        assert!(e("device.location within -1 km of (35, 139)")
            .2
            .contains("radius"));
        let (_, c, m) = e("device.location within 1 km of (95, 139)");
        assert_eq!(c, 32);
        assert!(m.contains("位置"), "{m}");
        assert!(e("device.location within 1 of (35, 139)")
            .2
            .starts_with("expected `km`"));
        assert!(e("device.location within 1 km (35, 139)")
            .2
            .starts_with("expected `of`"));
        assert!(e("device.location within 1 km of (35 139)")
            .2
            .starts_with("expected `,`"));
    }

    #[test]
    fn structure_errors() {
        let t = "auth.mfa == true";
        let (_, c, m) = e(&format!("{t} -> {t} -> {t}"));
        assert_eq!(c, 38);
        assert!(m.starts_with("`->` cannot be chained"), "{m}");
        let (_, c, m) = e(&format!("{t} {t}"));
        assert_eq!(c, 18);
        assert_eq!(
            m,
            "expected `and`, `or`, `->` or the end of the rule, found `auth.mfa`"
        );
        let (_, c, m) = e(&format!("({t}"));
        assert_eq!(c, 18);
        assert_eq!(
            m,
            "expected `and`, `or`, `->` or `)`, found the end of the rule"
        );
        assert_eq!(e(&format!("{t})")).2, "unmatched `)`");
        assert_eq!(
            e(&format!("{t} and")).2,
            "expected a condition (an attribute name), `not` or `(`, found the end of the rule"
        );
        assert_eq!(
            e("").2,
            "expected a condition (an attribute name), `not` or `(`, found the end of the rule"
        );
        assert!(e("   \n ").0 == 2);
        assert!(e("auth.mfa != true")
            .2
            .starts_with("`!=` is not an operator"));
        assert!(e("auth.mfa = true").2.starts_with("expected `==`"));
        assert!(e("auth.mfa is true").2.starts_with("expected an operator"));
        assert!(e("auth.mfa ==").2.ends_with("found the end of the rule"));
        // Keywords are whole words.
        assert!(parse_rule(&format!("{t} andauth.mfa == true")).is_err());
        assert!(parse_rule("notauth.mfa == true").is_err());
        assert!(parse_rule("auth.mfa == truex").is_err());
        assert!(parse_rule("AUTH.MFA == true").is_err());
        assert!(parse_rule("auth.mfa == TRUE").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let t = "auth.mfa == true";
        let ok = format!("{}{t}{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse_rule(&ok), Ok(mfa()));
        let deep = format!(
            "{}{t}{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        let err = parse_rule(&deep).unwrap_err();
        assert_eq!(err.column, MAX_NESTING + 1);
        assert!(err.message.contains("nested deeper than 64"), "{err}");
        let nots = format!("{}{t}", "not ".repeat(MAX_NESTING + 1));
        assert!(parse_rule(&nots)
            .unwrap_err()
            .message
            .contains("nested deeper"));
        // A fuzzer-sized input does not blow the stack.
        assert!(parse_rule(&"(".repeat(100_000)).is_err());
        assert!(parse_rule(&"not ".repeat(100_000)).is_err());
        // Long flat chains are not nesting.
        let long = vec![t; 10_000].join(" and ");
        assert!(matches!(parse_rule(&long), Ok(Rule::And(v)) if v.len() == 10_000));
    }

    #[test]
    fn deepest_printable_rule_reads_back() {
        // The checker and the parser count nesting the same way.
        let mut r = Rule::Or(vec![mfa(), reg(true)]);
        loop {
            let next = Rule::Not(Box::new(r.clone()));
            if check::check_rule(&next).is_err() {
                break;
            }
            r = next;
        }
        assert_eq!(parse_rule(&print_rule(&r)), Ok(r.clone()));
        let too_deep = Rule::Not(Box::new(r));
        assert!(parse_rule(&print_rule(&too_deep)).is_err());
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for s in [
            "\"",
            "\"\\",
            "user.id == \"\\u12\"",
            "user.id == \"\\",
            "-",
            "->",
            "( ->",
            "é",
            "auth.mfa == true \u{0}",
            "device.location within 1",
            "time of_day [",
            "time of_day [0",
            "time of_day [00:0",
            "time of_day [00:00,",
            "source.ip in_cidr [\"",
            "user.id in [",
            "user.id in [\"a\"",
            "user.id in [\"a\",",
            "risk.score == -",
            "risk.score == 1.",
            "risk.score == .5",
            "日本 == \"JP\"",
            "auth.mfa ==　true",
        ] {
            assert!(parse_rule(s).is_err(), "{s:?}");
        }
        // Full-width space is not whitespace: an error at its position (chars, not bytes).
        assert_eq!(at("auth.mfa ==　true"), (1, 12));
        assert!(found("é").contains('é'));
    }

    #[test]
    fn lower_case_is_idempotent_for_every_char() {
        // The parser lower-cases e-mail and app literals and the checker requires
        // them lower-case: both must agree on every character.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let once: String = c.to_lowercase().collect();
            assert_eq!(once.to_lowercase(), once, "{c:?}");
        }
    }
}
