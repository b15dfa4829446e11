//! The wire format: the JSON a model answers with, its JSON schema (generated from
//! these Rust types with schemars, so the schema sent to the model and the parser
//! never drift), and its conversion to a [`Translation`].
//!
//! ```json
//! {"translatable": true, "reason": null,
//!  "rule": {"op": "and", "parts": [
//!    {"op": "eq", "attribute": "source.country", "value": "JP", "source": "アクセス元の国名が日本"},
//!    {"op": "eq", "attribute": "device.tpm.enabled", "value": true, "source": "TPM が有効"}]}}
//! {"translatable": false, "reason": "「部長の承認」に当たる属性がありません", "rule": null}
//! ```
//!
//! Every condition carries `source`, the exact part of the policy text it was
//! translated from; it must occur in the text. The conversion does not type literals
//! itself: it writes the rule's canonical text (every string JSON-escaped, so nothing
//! the model writes can change the rule's structure) and reads it back with
//! [`parse_rule`], so literal typing and its checks live in one place.
//!
//! ```
//! use policy_core::translate::llm::wire::{parse_answer, to_translation};
//! let text = "多要素認証を利用していること";
//! let a = parse_answer(r#"{"translatable":true,"reason":null,"rule":
//!   {"op":"eq","attribute":"auth.mfa","value":true,"source":"多要素認証を利用"}}"#).unwrap();
//! let t = to_translation(text, &a).unwrap().unwrap();
//! assert_eq!(t.rule.to_string(), "auth.mfa == true");
//! assert_eq!(t.cited(0), Some("多要素認証を利用"));
//! let e = parse_answer(r#"{"translatable":true,"rule":null,"note":"x"}"#).unwrap_err();
//! assert!(e.to_string().contains("unknown field `note`"), "{e}");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
use crate::schema::Attribute;
use crate::text::parse_rule;
use crate::translate::Translation;
use crate::value::WEEKDAY_NAMES;

/// The model's answer for one policy text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "RztsTranslation")]
pub struct Answer {
    /// true when every part of the text maps onto the attributes listed in the
    /// instructions; false for vague text, text that names something no attribute
    /// holds, or text that gives instructions instead of describing access.
    pub translatable: bool,
    /// When not translatable: why, in Japanese, quoting the phrase. null otherwise.
    pub reason: Option<String>,
    /// When translatable: the rule. null otherwise.
    pub rule: Option<Node>,
}

/// One node of the rule: a combination of parts or one condition on one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// All parts hold (「A であり B」「A かつ B」).
    And {
        /// At least two parts.
        parts: Vec<Node>,
    },
    /// At least one part holds (「A または B」「A か B のいずれか」).
    Or {
        /// At least two parts.
        parts: Vec<Node>,
    },
    /// The part does not hold (「A でない」「A 以外」).
    Not {
        /// The negated part.
        part: Box<Node>,
    },
    /// When `premise` holds, `then` must hold too (「A の場合は B」).
    Implies {
        /// The condition of the case.
        premise: Box<Node>,
        /// What must hold in that case.
        then: Box<Node>,
    },
    /// The attribute equals the value.
    Eq {
        /// The attribute.
        attribute: AttrName,
        /// The value, typed by the attribute.
        value: Scalar,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The attribute equals one of the values.
    In {
        /// The attribute.
        attribute: AttrName,
        /// At least one value.
        values: Vec<Scalar>,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The set attribute (user.groups, device.apps) contains the string.
    Contains {
        /// The attribute.
        attribute: AttrName,
        /// The member.
        value: String,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// Order comparison on a version, the port or the risk score.
    Compare {
        /// The attribute.
        attribute: AttrName,
        /// `>=` 以上, `<` 未満, `<=` 以下, `>` より大きい・超.
        cmp: Cmp,
        /// The value compared with.
        value: Scalar,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The IP attribute lies in one of the networks.
    InCidr {
        /// The attribute.
        attribute: AttrName,
        /// Networks ("203.0.113.0/24") or single addresses.
        networks: Vec<String>,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The domain is the zone itself or any subdomain of it (「example.com である」).
    InZone {
        /// The attribute.
        attribute: AttrName,
        /// The zone.
        domain: String,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The domain is a subdomain of the zone, never the zone itself (「*.example.com」).
    SubdomainOf {
        /// The attribute.
        attribute: AttrName,
        /// The zone, without `*.`.
        domain: String,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The e-mail address's domain part equals the domain.
    EmailDomain {
        /// The attribute.
        attribute: AttrName,
        /// The domain.
        domain: String,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The point lies within radius_km of (lat, lon).
    Within {
        /// The attribute.
        attribute: AttrName,
        /// Radius in kilometres.
        radius_km: f64,
        /// Latitude of the centre in degrees (north positive).
        lat: f64,
        /// Longitude of the centre in degrees (east positive).
        lon: f64,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The local time of day lies in [start, end) (half-open; start > end crosses
    /// midnight).
    OfDay {
        /// The attribute.
        attribute: AttrName,
        /// Inclusive start, "HH:MM".
        start: String,
        /// Exclusive end, "HH:MM" ("24:00" for the end of the day).
        end: String,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
    /// The local weekday is one of the days.
    Weekday {
        /// The attribute.
        attribute: AttrName,
        /// At least one day.
        days: Vec<Day>,
        /// The exact part of the policy text this condition was translated from.
        source: String,
    },
}

/// An attribute's dotted name; the schema lists every name of
/// [`Attribute::ALL`], and any other name is rejected when converting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttrName(pub String);

impl JsonSchema for AttrName {
    fn schema_name() -> Cow<'static, str> {
        "AttrName".into()
    }
    fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Attribute::ALL.iter().map(|a| a.name()).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "The attribute's dotted name.",
            "enum": names,
        })
    }
}

/// A literal: a string for text, names, codes, versions, addresses and domains; a
/// boolean for yes/no attributes; a number for the port and the risk score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A real number.
    Num(f64),
    /// Text.
    Str(String),
}

/// An order operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Cmp {
    /// 未満
    #[serde(rename = "<")]
    Lt,
    /// 以下
    #[serde(rename = "<=")]
    Le,
    /// より大きい・超
    #[serde(rename = ">")]
    Gt,
    /// 以上
    #[serde(rename = ">=")]
    Ge,
}

/// A weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn name(self) -> &'static str {
        WEEKDAY_NAMES[self as usize]
    }
    fn from_index(i: u32) -> Option<Day> {
        use Day::*;
        [Mon, Tue, Wed, Thu, Fri, Sat, Sun].get(i as usize).copied()
    }
}

/// The model's output does not fit the wire format, or cannot be a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON at all (or cut off).
    #[error("モデルの出力が JSON ではありません: {0}")]
    NotJson(String),
    /// JSON that violates the schema (unknown or missing field, wrong type).
    #[error("モデルの出力がスキーマに合いません: {0}")]
    Schema(String),
    /// Fits the schema but is not a valid rule for the text.
    #[error("モデルの規則が不正です: {0}")]
    Rule(String),
}

/// The JSON schema of [`Answer`], in the subset both APIs accept for structured
/// output: no `$schema`, `oneOf` as `anyOf`, `const` as one-value `enum`, no
/// `format`, every object closed (`additionalProperties: false`) with all its
/// properties required (optional ones are nullable), as OpenAI's strict mode demands.
pub fn response_schema() -> Value {
    let schema = SchemaGenerator::default().into_root_schema_for::<Answer>();
    let mut v = schema.to_value();
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
    }
    normalise(&mut v);
    v
}

fn normalise(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(one_of) = o.remove("oneOf") {
                o.insert("anyOf".into(), one_of);
            }
            if let Some(c) = o.remove("const") {
                o.insert("enum".into(), Value::Array(vec![c]));
            }
            o.remove("format");
            let props: Option<Vec<String>> = o
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect());
            if let Some(keys) = props {
                o.insert(
                    "required".into(),
                    Value::Array(keys.into_iter().map(Value::String).collect()),
                );
                o.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (_, child) in o.iter_mut() {
                normalise(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// Parses the model's JSON text into an [`Answer`], rejecting unknown fields and
/// naming the path of a schema violation.
pub fn parse_answer(content: &str) -> Result<Answer, WireError> {
    let value: Value =
        serde_json::from_str(content.trim()).map_err(|e| WireError::NotJson(e.to_string()))?;
    serde_path_to_error::deserialize::<_, Answer>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            WireError::Schema(inner)
        } else {
            WireError::Schema(format!("{path}: {inner}"))
        }
    })
}

/// The answer as a translation of `text`: `Ok(None)` when the model says the text is
/// not translatable (with the reason in [`Answer::reason`]).
pub fn to_translation(text: &str, answer: &Answer) -> Result<Option<Translation>, WireError> {
    if !answer.translatable {
        return Ok(None);
    }
    let Some(node) = &answer.rule else {
        return Err(WireError::Schema(
            "translatable is true but rule is null".into(),
        ));
    };
    let mut canonical = String::new();
    let mut sources = Vec::new();
    render(node, "rule", &mut canonical, &mut sources)?;
    let rule = parse_rule(&canonical)
        .map_err(|e| WireError::Rule(format!("`{canonical}`: {}", e.message)))?;
    let conditions = rule.conditions();
    if conditions.len() != sources.len() {
        // Cannot happen: every condition rendered is one condition parsed.
        return Err(WireError::Rule(format!(
            "{} conditions but {} sources",
            conditions.len(),
            sources.len()
        )));
    }
    let mut spans = Vec::with_capacity(sources.len());
    let mut from = 0;
    for (i, (src, cond)) in sources.iter().zip(&conditions).enumerate() {
        if src.trim().is_empty() {
            return Err(WireError::Rule(format!(
                "condition {} (`{cond}`) cites no source text",
                i + 1
            )));
        }
        // The first occurrence at or after the previous citation, else anywhere.
        let at = text
            .get(from..)
            .and_then(|rest| rest.find(src.as_str()))
            .map(|i| i + from)
            .or_else(|| text.find(src.as_str()));
        let Some(at) = at else {
            return Err(WireError::Rule(format!(
                "condition {} (`{cond}`) cites 「{src}」, which is not in the policy text",
                i + 1
            )));
        };
        spans.push(at..at + src.len());
        from = at;
    }
    Ok(Some(Translation {
        source: text.to_string(),
        rule,
        spans,
    }))
}

fn json_str(s: &str) -> String {
    crate::text::print::quoted(s)
}

/// True for `-?[0-9]+(\.[0-9]+)?`, the canonical text's numbers.
fn is_number_token(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// A number as the canonical text writes it.
fn number(n: f64) -> String {
    Literal::Num(n).to_string()
}

/// A literal for `attr` in canonical text. Bare words and numbers are written only
/// when they are exactly a boolean or a number; everything else is a JSON string, so
/// the parser types it (and refuses what does not fit the attribute).
fn scalar(attr: Attribute, s: &Scalar) -> String {
    use crate::schema::AttrType as T;
    let bare_ok = matches!(attr.ty(), T::Bool | T::Integer | T::Number);
    match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) if bare_ok => i.to_string(),
        Scalar::Num(n) if bare_ok => number(*n),
        Scalar::Int(i) => json_str(&i.to_string()),
        Scalar::Num(n) => json_str(&number(*n)),
        Scalar::Str(t) if bare_ok && (t == "true" || t == "false" || is_number_token(t)) => {
            t.clone()
        }
        Scalar::Str(t) => json_str(t),
    }
}

fn attribute(name: &AttrName, path: &str) -> Result<Attribute, WireError> {
    Attribute::from_name(&name.0).ok_or_else(|| {
        WireError::Rule(format!(
            "{path}: unknown attribute `{}`: the text names something RZTS does not know, \
             so it is not translatable",
            name.0
        ))
    })
}

fn hhmm(s: &str, path: &str) -> Result<String, WireError> {
    let b = s.as_bytes();
    let ok = b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(WireError::Rule(format!(
            "{path}: time {s:?} is not HH:MM (e.g. \"09:00\")"
        )))
    }
}

/// Writes `node` as canonical text, collecting each condition's source in order.
fn render(
    node: &Node,
    path: &str,
    out: &mut String,
    sources: &mut Vec<String>,
) -> Result<(), WireError> {
    let compound =
        |n: &Node| matches!(n, Node::And { .. } | Node::Or { .. } | Node::Implies { .. });
    let mut child = |n: &Node, p: String, out: &mut String| -> Result<(), WireError> {
        if compound(n) {
            out.push('(');
            render(n, &p, out, sources)?;
            out.push(')');
            Ok(())
        } else {
            render(n, &p, out, sources)
        }
    };
    match node {
        Node::And { parts } | Node::Or { parts } => {
            let (op, sep) = if matches!(node, Node::And { .. }) {
                ("and", " and ")
            } else {
                ("or", " or ")
            };
            if parts.is_empty() {
                return Err(WireError::Rule(format!("{path}: `{op}` has no parts")));
            }
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                child(p, format!("{path}.{op}[{i}]"), out)?;
            }
        }
        Node::Not { part } => {
            out.push_str("not ");
            // `not` binds tighter than and/or, so a compound part needs parentheses;
            // a nested `not` or a condition does not.
            child(part, format!("{path}.not"), out)?;
        }
        Node::Implies { premise, then } => {
            child(premise, format!("{path}.implies[0]"), out)?;
            out.push_str(" -> ");
            child(then, format!("{path}.implies[1]"), out)?;
        }
        leaf => {
            let (name, source) = leaf_parts(leaf);
            let a = attribute(name, path)?;
            let n = a.name();
            match leaf {
                Node::Eq { value, .. } => {
                    let _ = write!(out, "{n} == {}", scalar(a, value));
                }
                Node::In { values, .. } => {
                    let vals: Vec<String> = values.iter().map(|v| scalar(a, v)).collect();
                    let _ = write!(out, "{n} in [{}]", vals.join(", "));
                }
                Node::Contains { value, .. } => {
                    let _ = write!(out, "{n} contains {}", json_str(value));
                }
                Node::Compare { cmp, value, .. } => {
                    let sym = match cmp {
                        Cmp::Lt => "<",
                        Cmp::Le => "<=",
                        Cmp::Gt => ">",
                        Cmp::Ge => ">=",
                    };
                    let _ = write!(out, "{n} {sym} {}", scalar(a, value));
                }
                Node::InCidr { networks, .. } => {
                    let nets: Vec<String> = networks.iter().map(|s| json_str(s)).collect();
                    let _ = write!(out, "{n} in_cidr [{}]", nets.join(", "));
                }
                Node::InZone { domain, .. } => {
                    let _ = write!(out, "{n} in_zone {}", json_str(domain));
                }
                Node::SubdomainOf { domain, .. } => {
                    let d = domain.strip_prefix("*.").unwrap_or(domain);
                    let _ = write!(out, "{n} subdomain_of {}", json_str(d));
                }
                Node::EmailDomain { domain, .. } => {
                    let _ = write!(out, "{n} email_domain {}", json_str(domain));
                }
                Node::Within {
                    radius_km,
                    lat,
                    lon,
                    ..
                } => {
                    let _ = write!(
                        out,
                        "{n} within {} km of ({}, {})",
                        number(*radius_km),
                        number(*lat),
                        number(*lon)
                    );
                }
                Node::OfDay { start, end, .. } => {
                    let _ = write!(
                        out,
                        "{n} of_day [{}, {})",
                        hhmm(start, path)?,
                        hhmm(end, path)?
                    );
                }
                Node::Weekday { days, .. } => {
                    let names: Vec<&str> = days.iter().map(|d| d.name()).collect();
                    let _ = write!(out, "{n} weekday [{}]", names.join(", "));
                }
                Node::And { .. } | Node::Or { .. } | Node::Not { .. } | Node::Implies { .. } => {}
            }
            sources.push(source.to_string());
        }
    }
    Ok(())
}

fn leaf_parts(n: &Node) -> (&AttrName, &str) {
    match n {
        Node::Eq {
            attribute, source, ..
        }
        | Node::In {
            attribute, source, ..
        }
        | Node::Contains {
            attribute, source, ..
        }
        | Node::Compare {
            attribute, source, ..
        }
        | Node::InCidr {
            attribute, source, ..
        }
        | Node::InZone {
            attribute, source, ..
        }
        | Node::SubdomainOf {
            attribute, source, ..
        }
        | Node::EmailDomain {
            attribute, source, ..
        }
        | Node::Within {
            attribute, source, ..
        }
        | Node::OfDay {
            attribute, source, ..
        }
        | Node::Weekday {
            attribute, source, ..
        } => (attribute, source),
        Node::And { .. } | Node::Or { .. } | Node::Not { .. } | Node::Implies { .. } => {
            unreachable!("leaf_parts is called on conditions only")
        }
    }
}

/// A translation in the wire format (the worked examples of the prompt, and the
/// reference for tests): the inverse of [`to_translation`].
pub fn from_translation(t: &Translation) -> Answer {
    let mut i = 0;
    let rule = node_of(&t.rule, t, &mut i);
    Answer {
        translatable: true,
        reason: None,
        rule: Some(rule),
    }
}

/// A refusal in the wire format.
pub fn refusal(reason: &str) -> Answer {
    Answer {
        translatable: false,
        reason: Some(reason.to_string()),
        rule: None,
    }
}

fn lit(l: &Literal) -> Scalar {
    match l {
        Literal::Bool(b) => Scalar::Bool(*b),
        Literal::Int(i) => Scalar::Int(*i),
        Literal::Num(n) => Scalar::Num(*n),
        Literal::Str(s) => Scalar::Str(s.clone()),
        Literal::Enum(e) => Scalar::Str((*e).to_string()),
        Literal::Version(v) => Scalar::Str(v.to_string()),
        Literal::Ip(ip) => Scalar::Str(ip.to_string()),
        Literal::Country(c) => Scalar::Str(c.as_str().to_string()),
        Literal::Domain(d) => Scalar::Str(d.as_str().to_string()),
    }
}

fn node_of(r: &Rule, t: &Translation, i: &mut usize) -> Node {
    match r {
        Rule::And(v) => Node::And {
            parts: v.iter().map(|p| node_of(p, t, i)).collect(),
        },
        Rule::Or(v) => Node::Or {
            parts: v.iter().map(|p| node_of(p, t, i)).collect(),
        },
        Rule::Not(p) => Node::Not {
            part: Box::new(node_of(p, t, i)),
        },
        Rule::Implies(a, b) => Node::Implies {
            premise: Box::new(node_of(a, t, i)),
            then: Box::new(node_of(b, t, i)),
        },
        Rule::Atom(c) => {
            let source = t.cited(*i).unwrap_or_default().to_string();
            *i += 1;
            let attribute = AttrName(c.attribute().name().to_string());
            match c {
                Condition::Eq(_, l) => Node::Eq {
                    attribute,
                    value: lit(l),
                    source,
                },
                Condition::In(_, ls) => Node::In {
                    attribute,
                    values: ls.iter().map(lit).collect(),
                    source,
                },
                Condition::Contains(_, s) => Node::Contains {
                    attribute,
                    value: s.clone(),
                    source,
                },
                Condition::Compare(_, op, l) => Node::Compare {
                    attribute,
                    cmp: match op {
                        CmpOp::Lt => Cmp::Lt,
                        CmpOp::Le => Cmp::Le,
                        CmpOp::Gt => Cmp::Gt,
                        CmpOp::Ge => Cmp::Ge,
                    },
                    value: lit(l),
                    source,
                },
                Condition::InCidr(_, nets) => Node::InCidr {
                    attribute,
                    networks: nets.iter().map(|n| n.to_string()).collect(),
                    source,
                },
                Condition::Domain(_, DomainMatch::InZone, d) => Node::InZone {
                    attribute,
                    domain: d.as_str().to_string(),
                    source,
                },
                Condition::Domain(_, DomainMatch::SubdomainOf, d) => Node::SubdomainOf {
                    attribute,
                    domain: d.as_str().to_string(),
                    source,
                },
                Condition::EmailDomain(_, d) => Node::EmailDomain {
                    attribute,
                    domain: d.as_str().to_string(),
                    source,
                },
                Condition::Within {
                    center, radius_km, ..
                } => Node::Within {
                    attribute,
                    radius_km: *radius_km,
                    lat: center.lat,
                    lon: center.lon,
                    source,
                },
                Condition::TimeOfDay { start, end, .. } => Node::OfDay {
                    attribute,
                    start: start.to_string(),
                    end: end.to_string(),
                    source,
                },
                Condition::Weekday(_, days) => Node::Weekday {
                    attribute,
                    days: days.days().filter_map(Day::from_index).collect(),
                    source,
                },
            }
        }
    }
}

/// The answer as compact JSON (what a model would send).
pub fn to_json(a: &Answer) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Slot;
    use crate::translate::{OfflineTranslator, Translator};
    use serde_json::json;

    #[test]
    fn offline_translations_round_trip_through_the_wire_format() {
        let texts = [
            "アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること",
            "平日の9時から18時までのアクセスであること",
            "日本以外の国からのアクセスであること",
            "管理者グループに所属しているか、または多要素認証を利用していること",
            "macOSの場合はFileVaultで暗号化されていること",
            "本社（北緯35.681度、東経139.767度）から半径5km以内にいること",
            "リスクスコアが0.8以上であること",
            "アクセス先のポート番号が22であること",
            "アクセス元のIPアドレスが203.0.113.0/24の範囲内であること",
            "アクセス先のドメインが *.example.net であること",
            "メールアドレスのドメインが example.co.jp であること",
        ];
        for text in texts {
            let t = OfflineTranslator::new()
                .translate(text, Slot::Require)
                .unwrap();
            let a = from_translation(&t);
            let json = to_json(&a);
            let back = to_translation(text, &parse_answer(&json).unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(back.rule, t.rule, "{text}: {json}");
            assert_eq!(back.spans, t.spans, "{text}");
        }
    }

    #[test]
    fn strings_cannot_change_the_rule_structure() {
        let a = parse_answer(
            r#"{"translatable":true,"reason":null,"rule":{"op":"eq","attribute":"user.id",
            "value":"x\" or auth.mfa == true or user.id == \"y","source":"ユーザ"}}"#,
        )
        .unwrap();
        let t = to_translation("ユーザIDが x であること", &a)
            .unwrap()
            .unwrap();
        assert_eq!(t.rule.conditions().len(), 1);
        // A bool attribute with a non-boolean string is a type error, not a bare word.
        let a = parse_answer(
            r#"{"translatable":true,"reason":null,"rule":{"op":"eq","attribute":"auth.mfa",
            "value":"true or risk.suspicious == false","source":"多要素"}}"#,
        )
        .unwrap();
        let e = to_translation("多要素認証", &a).unwrap_err();
        assert!(matches!(e, WireError::Rule(_)), "{e}");
    }

    #[test]
    fn the_schema_is_closed_and_strict() {
        let s = response_schema();
        let text = s.to_string();
        assert!(
            !text.contains("oneOf") && !text.contains("\"const\""),
            "{text}"
        );
        assert_eq!(s["additionalProperties"], json!(false));
        // serde_json's map is ordered by key.
        assert_eq!(s["required"], json!(["reason", "rule", "translatable"]));
        assert!(text.contains("device.tpm.enabled"));
        assert!(text.contains("subdomain_of"));
    }
}
