//! Back-translation: a compiled rule rendered as plain Japanese, so an administrator
//! can confirm the machine understood what they meant, and so reasons can quote the
//! condition an employee failed.
//!
//! ```
//! use policy_core::backtranslate::rule_ja;
//! use policy_core::text::parse_rule;
//! let rule = parse_rule(r#"source.country == "JP" and device.tpm.enabled == true"#).unwrap();
//! assert_eq!(rule_ja(&rule), "アクセス元の国が日本である、かつ、TPM が有効である");
//! ```

use crate::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
use crate::schema::Attribute;
use crate::value::WEEKDAY_NAMES_JA;

/// The whole rule in Japanese. Nested groups are put in 「（…）」.
pub fn rule_ja(rule: &Rule) -> String {
    match rule {
        Rule::Atom(c) => condition_ja(c),
        Rule::And(parts) => join(parts, "、かつ、"),
        Rule::Or(parts) => join(parts, "、または、"),
        Rule::Not(r) => format!("次の条件を満たさない（{}）", rule_ja(r)),
        Rule::Implies(a, b) => format!("{}場合は、{}", group(a), group(b)),
    }
}

fn group(r: &Rule) -> String {
    match r {
        Rule::Atom(_) | Rule::Not(_) => rule_ja(r),
        _ => format!("（{}）", rule_ja(r)),
    }
}

fn join(parts: &[Rule], sep: &str) -> String {
    parts.iter().map(group).collect::<Vec<_>>().join(sep)
}

/// A literal as an administrator would write it.
pub fn literal_ja(lit: &Literal) -> String {
    match lit {
        Literal::Str(s) => s.clone(),
        Literal::Bool(true) => "はい".into(),
        Literal::Bool(false) => "いいえ".into(),
        Literal::Enum(e) => Attribute::enum_label_ja(e).to_string(),
        Literal::Version(v) => v.to_string(),
        Literal::Ip(ip) => ip.to_string(),
        Literal::Country(c) => c.name_ja().to_string(),
        Literal::Domain(d) => d.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Num(n) => n.to_string(),
    }
}

/// One condition in Japanese, as a clause ending in 「である」/「いる」.
pub fn condition_ja(c: &Condition) -> String {
    let attr = c.attribute();
    let label = attr.label_ja();
    match c {
        Condition::Eq(a, Literal::Bool(b)) => match a.bool_phrases_ja() {
            Some((yes, no)) => (if *b { yes } else { no }).to_string(),
            None => format!("{label}が{}である", literal_ja(&Literal::Bool(*b))),
        },
        Condition::Eq(_, lit) => format!("{label}が{}である", literal_ja(lit)),
        Condition::In(_, lits) => {
            let names: Vec<String> = lits.iter().map(literal_ja).collect();
            format!("{label}が{}のいずれかである", names.join("、"))
        }
        Condition::Contains(Attribute::UserGroups, g) => format!("{g}グループに所属している"),
        Condition::Contains(Attribute::DeviceApps, app) => {
            format!("{app} がインストールされている")
        }
        Condition::Contains(_, s) => format!("{label}に{s}が含まれる"),
        Condition::Compare(_, op, lit) => {
            let word = match op {
                CmpOp::Lt => "未満",
                CmpOp::Le => "以下",
                CmpOp::Gt => "より大きい",
                CmpOp::Ge => "以上",
            };
            let tail = if *op == CmpOp::Gt { "" } else { "である" };
            format!("{label}が{}{word}{tail}", literal_ja(lit))
        }
        Condition::InCidr(_, nets) => {
            let n: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            format!("{label}が{}の範囲内である", n.join("、"))
        }
        Condition::Domain(_, DomainMatch::InZone, d) => {
            format!("{label}が {d} またはそのサブドメインである")
        }
        Condition::Domain(_, DomainMatch::SubdomainOf, d) => {
            format!("{label}が {d} のサブドメイン（{d} 自身を除く）である")
        }
        Condition::EmailDomain(_, d) => format!("メールアドレスのドメインが {d} である"),
        Condition::Within {
            center, radius_km, ..
        } => format!(
            "{label}が北緯{}度、東経{}度から半径{}km以内である",
            center.lat, center.lon, radius_km
        ),
        Condition::TimeOfDay { start, end, .. } => {
            let cross = if start > end { "翌" } else { "" };
            format!("時刻が{start}から{cross}{end}まで（{end}を含まない）である")
        }
        Condition::Weekday(_, days) => {
            let d = *days;
            if d == crate::value::WeekdaySet::WEEKDAYS {
                "平日（月曜日から金曜日）である".to_string()
            } else if d == crate::value::WeekdaySet::WEEKEND {
                "土日である".to_string()
            } else {
                let names: Vec<String> = d
                    .days()
                    .map(|i| format!("{}曜日", WEEKDAY_NAMES_JA[i as usize]))
                    .collect();
                format!("曜日が{}のいずれかである", names.join("、"))
            }
        }
    }
}
