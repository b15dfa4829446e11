//! The rule AST: boolean structure over typed conditions on request attributes.
//!
//! A [`Rule`] is what one policy text (one 必須条件 or 拒否条件) compiles to. It holds
//! no source positions: translators return those beside the rule (see
//! [`crate::translate::Translation`]), so two rules are equal exactly when they mean
//! the same syntax tree, whoever produced them.
//!
//! ```
//! use policy_core::ast::{Condition, Literal, Rule};
//! use policy_core::schema::Attribute;
//! let rule = Rule::And(vec![
//!     Rule::Atom(Condition::Eq(Attribute::SourceCountry, Literal::Country("JP".parse().unwrap()))),
//!     Rule::Atom(Condition::Eq(Attribute::DeviceTpmEnabled, Literal::Bool(true))),
//! ]);
//! assert_eq!(rule.to_string(), r#"source.country == "JP" and device.tpm.enabled == true"#);
//! ```

use std::net::IpAddr;

use ipnet::IpNet;

use crate::schema::Attribute;
use crate::value::{CountryCode, Domain, Point, TimeOfDay, Version, WeekdaySet};

/// A compiled rule: conditions combined with Kleene three-valued logic.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// One condition on one attribute.
    Atom(Condition),
    /// All of the parts hold (at least two parts).
    And(Vec<Rule>),
    /// At least one of the parts holds (at least two parts).
    Or(Vec<Rule>),
    /// The part does not hold.
    Not(Box<Rule>),
    /// When the first holds, the second must hold too (`not a or b`).
    Implies(Box<Rule>, Box<Rule>),
}

/// A typed literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Text (user ids, group names, SSIDs, app names).
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// One of an enum attribute's names (`bitlocker`).
    Enum(&'static str),
    /// A dotted version.
    Version(Version),
    /// An IP address.
    Ip(IpAddr),
    /// A country code.
    Country(CountryCode),
    /// A domain name (canonical form).
    Domain(Domain),
    /// A whole number.
    Int(i64),
    /// A real number.
    Num(f64),
}

/// An order comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<` (未満)
    Lt,
    /// `<=` (以下)
    Le,
    /// `>` (より大きい・超)
    Gt,
    /// `>=` (以上)
    Ge,
}

impl CmpOp {
    /// The operator symbol in the canonical text.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    /// True when `ord` (value compared with the literal) satisfies the operator.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        matches!(
            (self, ord),
            (CmpOp::Lt, Less)
                | (CmpOp::Le, Less | Equal)
                | (CmpOp::Gt, Greater)
                | (CmpOp::Ge, Greater | Equal)
        )
    }
}

/// How a domain condition treats the zone's own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainMatch {
    /// The domain itself and every subdomain (「example.com である」).
    InZone,
    /// Subdomains only, never the domain itself (「*.example.com」).
    SubdomainOf,
}

/// One typed condition on one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The attribute equals the literal (string, email, enum, bool, version, IP,
    /// country, domain, integer or number).
    Eq(Attribute, Literal),
    /// The attribute equals one of the literals.
    In(Attribute, Vec<Literal>),
    /// The set attribute contains the string (`user.groups`, `device.apps`).
    Contains(Attribute, String),
    /// Numeric or version order.
    Compare(Attribute, CmpOp, Literal),
    /// The IP attribute lies in one of the networks.
    InCidr(Attribute, Vec<IpNet>),
    /// The domain attribute lies in the zone (with or without the apex).
    Domain(Attribute, DomainMatch, Domain),
    /// The e-mail attribute's domain part equals the domain (case-insensitive).
    EmailDomain(Attribute, Domain),
    /// The point attribute lies within `radius_km` of `center` (great-circle).
    Within {
        /// The point attribute (`device.location`).
        attr: Attribute,
        /// The centre of the circle.
        center: Point,
        /// Radius in kilometres.
        radius_km: f64,
    },
    /// The local time of day lies in `[start, end)`; `start > end` crosses midnight.
    TimeOfDay {
        /// The time attribute (`time`).
        attr: Attribute,
        /// Inclusive start.
        start: TimeOfDay,
        /// Exclusive end.
        end: TimeOfDay,
    },
    /// The local weekday is one of `days`.
    Weekday(Attribute, WeekdaySet),
}

impl Condition {
    /// The attribute the condition reads.
    pub fn attribute(&self) -> Attribute {
        match self {
            Condition::Eq(a, _)
            | Condition::In(a, _)
            | Condition::Contains(a, _)
            | Condition::Compare(a, _, _)
            | Condition::InCidr(a, _)
            | Condition::Domain(a, _, _)
            | Condition::EmailDomain(a, _)
            | Condition::Weekday(a, _) => *a,
            Condition::Within { attr, .. } | Condition::TimeOfDay { attr, .. } => *attr,
        }
    }
}

impl Rule {
    /// Shorthand for an atom.
    pub fn atom(c: Condition) -> Rule {
        Rule::Atom(c)
    }

    /// Every condition of the rule, left to right (the order the canonical text
    /// prints them and translators report their source spans in).
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        self.visit_conditions(&mut |c| out.push(c));
        out
    }

    /// Calls `f` on every condition, left to right.
    pub fn visit_conditions<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        match self {
            Rule::Atom(c) => f(c),
            Rule::And(v) | Rule::Or(v) => v.iter().for_each(|r| r.visit_conditions(f)),
            Rule::Not(r) => r.visit_conditions(f),
            Rule::Implies(a, b) => {
                a.visit_conditions(f);
                b.visit_conditions(f);
            }
        }
    }

    /// Conjunction that does not nest a single part and flattens nested `And`s.
    pub fn and(parts: Vec<Rule>) -> Rule {
        Self::flat(parts, true)
    }

    /// Disjunction that does not nest a single part and flattens nested `Or`s.
    pub fn or(parts: Vec<Rule>) -> Rule {
        Self::flat(parts, false)
    }

    fn flat(parts: Vec<Rule>, and: bool) -> Rule {
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Rule::And(v) if and => out.extend(v),
                Rule::Or(v) if !and => out.extend(v),
                p => out.push(p),
            }
        }
        if out.len() == 1 {
            return out.pop().unwrap_or(Rule::And(Vec::new()));
        }
        if and {
            Rule::And(out)
        } else {
            Rule::Or(out)
        }
    }
}
