//! The grammar: tokens to a rule.
//!
//! A text is split, loosest first, at 「…の場合は」 (implication), at 「または」
//! (or) and at 「であり」「かつ」「、」「で」 (and) — but only where both sides are
//! whole clauses, so value lists (「中国、北朝鮮、ロシアのいずれか」,
//! 「WindowsまたはmacOS」) stay inside their clause. Each clause names one attribute
//! (by a subject word or by its values) and is read by that attribute's reader.
//!
//! Every reader marks the tokens it used; a clause with any content token left
//! unused is refused, naming that token. This is what keeps the translator from
//! guessing: a word it does not account for (a stray 「ない」, an unknown name)
//! can never be silently dropped.

use std::ops::Range;

use ipnet::IpNet;

use super::lexer::{CmpWord, Pred, Subj, Tok, Token};
use crate::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
use crate::schema::Attribute as A;
use crate::value::{CountryCode, Domain, Point, TimeOfDay, Version, WeekdaySet};

/// A refusal: the folded-text span of the offending phrase and why.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub span: Range<usize>,
    pub reason: String,
}

type Res<T> = Result<T, Refusal>;

/// A rule plus the folded-text span of each of its conditions, in order.
pub(crate) struct Built {
    pub rule: Rule,
    pub spans: Vec<Range<usize>>,
}

fn refuse<T>(span: Range<usize>, reason: impl Into<String>) -> Res<T> {
    Err(Refusal {
        span,
        reason: reason.into(),
    })
}

fn span_of(toks: &[Token]) -> Range<usize> {
    match (toks.first(), toks.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    }
}

/// Parses a whole text.
pub(crate) fn parse_text(toks: &[Token]) -> Res<Built> {
    // Sentence-final punctuation says nothing.
    let mut toks: Vec<Token> = toks.to_vec();
    while toks.last().is_some_and(|t| t.tok == Tok::Period) {
        toks.pop();
    }
    if !toks.iter().any(|t| is_content(&t.tok)) {
        return refuse(span_of(&toks), "条件が書かれていません");
    }
    parse_implication(&toks)
}

/// Tokens that carry meaning (not particles, endings or fillers).
fn is_content(t: &Tok) -> bool {
    !matches!(
        t,
        Tok::Particle(_)
            | Tok::Aux
            | Tok::Filler
            | Tok::Period
            | Tok::Comma
            | Tok::LParen
            | Tok::RParen
    )
}

fn parse_implication(toks: &[Token]) -> Res<Built> {
    // 「macOSの場合は…、Windowsの場合は…」: several conditionals, each its own part.
    if toks.iter().filter(|t| t.tok == Tok::If).count() > 1 {
        let parts = split_clauses(toks, |t| matches!(t, Tok::And | Tok::Comma | Tok::Period));
        if parts.len() > 1
            && parts
                .iter()
                .all(|p| p.iter().filter(|t| t.tok == Tok::If).count() <= 1)
        {
            let mut rules = Vec::new();
            let mut spans = Vec::new();
            for p in parts {
                let b = parse_implication(p)?;
                rules.push(b.rule);
                spans.extend(b.spans);
            }
            return Ok(Built {
                rule: Rule::and(rules),
                spans,
            });
        }
    }
    if let Some(i) = toks.iter().position(|t| t.tok == Tok::If) {
        let cond = &toks[..i];
        let body = &toks[i + 1..];
        if !toks[i + 1..].iter().all(|t| t.tok != Tok::If) {
            return refuse(toks[i].span.clone(), "「場合」が二重に使われています");
        }
        if !cond.iter().any(|t| is_content(&t.tok)) || !body.iter().any(|t| is_content(&t.tok)) {
            return refuse(toks[i].span.clone(), "「場合」の前後に条件が必要です");
        }
        let a = parse_or(cond)?;
        let b = parse_or(body)?;
        let mut spans = a.spans;
        spans.extend(b.spans);
        return Ok(Built {
            rule: Rule::Implies(Box::new(a.rule), Box::new(b.rule)),
            spans,
        });
    }
    parse_or(toks)
}

/// Splits at connectors of one level where both sides are whole clauses.
fn split_clauses(toks: &[Token], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < toks.len() {
        if is_sep(&toks[i].tok) {
            // A run of connector tokens (「か、または」, 「、かつ」) is one separator.
            let mut j = i;
            while j < toks.len()
                && (is_sep(&toks[j].tok) || matches!(toks[j].tok, Tok::Comma | Tok::Or | Tok::And))
            {
                j += 1;
            }
            let left = &toks[start..i];
            let right = &toks[j..];
            if is_complete(left) && starts_clause(right) && is_complete(right) {
                parts.push(left);
                start = j;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    parts.push(&toks[start..]);
    parts
}

fn parse_or(toks: &[Token]) -> Res<Built> {
    let parts = split_clauses(toks, |t| *t == Tok::Or);
    combine(parts, false)
}

fn parse_and(toks: &[Token]) -> Res<Built> {
    let parts = split_clauses(toks, |t| {
        matches!(t, Tok::And | Tok::Comma | Tok::Period | Tok::Particle("で"))
    });
    if parts.len() == 1 {
        return parse_clause(parts[0]);
    }
    combine(parts, true)
}

fn combine(parts: Vec<&[Token]>, and: bool) -> Res<Built> {
    let mut rules = Vec::new();
    let mut spans = Vec::new();
    for p in parts {
        let b = if and { parse_clause(p)? } else { parse_and(p)? };
        rules.push(b.rule);
        spans.extend(b.spans);
    }
    let rule = if and {
        Rule::and(rules)
    } else {
        Rule::or(rules)
    };
    Ok(Built { rule, spans })
}

/// Does the segment say something about an attribute (not just list values)?
fn is_clause(toks: &[Token]) -> bool {
    let has_value = toks.iter().any(|t| {
        matches!(
            t.tok,
            Tok::Country(_) | Tok::Os(_) | Tok::Word(_) | Tok::Unknown(_) | Tok::DiskMethod(_)
        )
    });
    toks.iter().any(|t| {
        matches!(
            t.tok,
            Tok::Subj(_)
                | Tok::Pred(_)
                | Tok::Weekdays(_)
                | Tok::Hour
                | Tok::Night
                | Tok::Abroad
                | Tok::Domestic
                | Tok::Lat(_)
                | Tok::Radius
        )
    }) || (has_value && toks.iter().any(|t| t.tok == Tok::From))
}

/// A clause that says something of its subject: more than a bare subject word
/// (「ファイアウォール」 alone is the first item of a subject list, not a clause).
fn is_complete(toks: &[Token]) -> bool {
    // A yes/no subject with a value but no predicate (「ディスクがBitLocker」 in
    // 「ディスクがBitLockerまたはFileVaultで暗号化」) shares the predicate that follows.
    let needs_predicate = toks.iter().any(|t| {
        matches!(
            t.tok,
            Tok::Subj(
                Subj::Tpm
                    | Subj::Disk
                    | Subj::Firewall
                    | Subj::Antivirus
                    | Subj::ScreenLock
                    | Subj::WindowsHello
                    | Subj::Mfa
                    | Subj::Group
                    | Subj::App
            )
        )
    });
    if needs_predicate
        && !toks
            .iter()
            .any(|t| matches!(t.tok, Tok::Pred(_) | Tok::Neg))
    {
        return false;
    }
    // A free name alone (「経理部グループ」) still waits for its predicate.
    is_clause(toks)
        && toks.iter().any(|t| {
            is_content(&t.tok)
                && !matches!(
                    t.tok,
                    Tok::Subj(_) | Tok::Unknown(_) | Tok::Or | Tok::And | Tok::To | Tok::Ya
                )
        })
}

/// Can the segment begin a clause of its own (rather than continue a value list or
/// be the method of a predicate: 「BitLockerで暗号化」)?
fn starts_clause(toks: &[Token]) -> bool {
    let first = toks.iter().find(|t| {
        !matches!(
            t.tok,
            Tok::Particle(_) | Tok::Filler | Tok::Comma | Tok::Aux
        )
    });
    matches!(
        first.map(|t| &t.tok),
        Some(
            Tok::Subj(_)
                | Tok::Country(_)
                | Tok::Os(_)
                | Tok::DiskMethod(_)
                | Tok::AuthMethod(_)
                | Tok::Word(_)
                | Tok::Unknown(_)
                | Tok::Weekdays(_)
                | Tok::Night
                | Tok::Am
                | Tok::Pm
                | Tok::Abroad
                | Tok::Domestic
                | Tok::Lat(_)
                | Tok::Neg
                | Tok::Pred(Pred::Registered)
                | Tok::LParen
        )
    )
}

/// One clause's tokens with a used-mark per token.
struct Clause<'a> {
    toks: &'a [Token],
    used: Vec<bool>,
}

impl<'a> Clause<'a> {
    fn new(toks: &'a [Token]) -> Self {
        let mut used: Vec<bool> = toks.iter().map(|t| !is_content(&t.tok)).collect();
        // 「…からのアクセス」: "from" before "access" only says it is an access.
        for i in 0..toks.len() {
            if toks[i].tok == Tok::From
                && matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::Particle("の")))
                && matches!(toks.get(i + 2).map(|t| &t.tok), Some(Tok::Filler))
            {
                used[i] = true;
            }
        }
        Clause { toks, used }
    }
    fn use_where(&mut self, f: impl Fn(&Tok) -> bool) -> Vec<usize> {
        let mut v = Vec::new();
        for (i, t) in self.toks.iter().enumerate() {
            if f(&t.tok) {
                self.used[i] = true;
                v.push(i);
            }
        }
        v
    }
    fn has(&self, f: impl Fn(&Tok) -> bool) -> bool {
        self.toks.iter().any(|t| f(&t.tok))
    }
    fn span_of(&self, idx: &[usize]) -> Range<usize> {
        // Comparison and negation words are part of what a condition cites
        // (「0.8以上」, 「土日以外」).
        let extra = (0..self.toks.len()).filter(|&i| {
            self.used[i] && matches!(self.toks[i].tok, Tok::Cmp(_) | Tok::Except | Tok::Neg)
        });
        let all: Vec<usize> = idx.iter().copied().chain(extra).collect();
        let s = all.iter().map(|&i| self.toks[i].span.start).min();
        let e = all.iter().map(|&i| self.toks[i].span.end).max();
        match (s, e) {
            (Some(s), Some(e)) => s..e,
            _ => span_of(self.toks),
        }
    }
    /// Negations: 「ない」 and 「以外」 each flip; returns true when the clause is
    /// negated an odd number of times.
    fn negated(&mut self) -> (bool, Vec<usize>) {
        let idx = self.use_where(|t| matches!(t, Tok::Neg | Tok::Except));
        (idx.len() % 2 == 1, idx)
    }
    /// Refuses the first content token nobody used.
    fn finish(&self) -> Res<()> {
        for (i, t) in self.toks.iter().enumerate() {
            if !self.used[i] {
                let reason = match &t.tok {
                    Tok::Unknown(_) => "この語句を解釈できません",
                    _ => "この語句がこの条件の中でどう働くのか解釈できません",
                };
                return refuse(t.span.clone(), reason);
            }
        }
        Ok(())
    }
}

fn built1(rule: Rule, span: Range<usize>, n_atoms: usize) -> Built {
    Built {
        rule,
        spans: vec![span; n_atoms],
    }
}

fn negate_if(neg: bool, r: Rule) -> Rule {
    if neg {
        Rule::Not(Box::new(r))
    } else {
        r
    }
}

const LIST_SEP: fn(&Tok) -> bool = |t| {
    matches!(
        t,
        Tok::Comma | Tok::Or | Tok::To | Tok::Ya | Tok::And | Tok::AnyOf | Tok::Tilde
    )
};

fn parse_clause(toks: &[Token]) -> Res<Built> {
    let subjects: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.tok, Tok::Subj(_)))
        .map(|(i, _)| i)
        .collect();
    // 「ファイアウォールとウイルス対策ソフトが有効」: a list of subjects sharing one
    // predicate is one clause per subject.
    if subjects.len() >= 2 {
        let between = |a: usize, b: usize| &toks[a + 1..b];
        let joined = subjects.windows(2).all(|w| {
            let mid = between(w[0], w[1]);
            !mid.is_empty()
                && mid
                    .iter()
                    .all(|t| matches!(t.tok, Tok::To | Tok::Comma | Tok::And | Tok::Or | Tok::Ya))
        });
        if joined {
            let last = *subjects.last().unwrap_or(&0);
            let any_or = toks[subjects[0]..last].iter().any(|t| t.tok == Tok::Or);
            let prefix = &toks[..subjects[0]];
            let tail = &toks[last + 1..];
            let mut rules = Vec::new();
            let mut spans = Vec::new();
            for &s in &subjects {
                let mut part: Vec<Token> = prefix.to_vec();
                part.push(toks[s].clone());
                part.extend(tail.iter().cloned());
                let b = read_clause(&part)?;
                // Each subject's condition cites from its own word to the predicate.
                let end = tail
                    .iter()
                    .rev()
                    .find(|t| is_content(&t.tok))
                    .map_or(toks[s].span.end, |t| t.span.end);
                rules.push(b.rule);
                spans.extend(
                    b.spans
                        .into_iter()
                        .map(|r| r.start.min(toks[s].span.start)..r.end.max(end)),
                );
            }
            let rule = if any_or {
                Rule::or(rules)
            } else {
                Rule::and(rules)
            };
            return Ok(Built { rule, spans });
        }
    }
    read_clause(toks)
}

fn read_clause(toks: &[Token]) -> Res<Built> {
    let mut c = Clause::new(toks);
    let subj = toks.iter().find_map(|t| match t.tok {
        Tok::Subj(s) => Some(s),
        _ => None,
    });
    let is_time = c.has(|t| {
        matches!(
            t,
            Tok::Weekdays(_) | Tok::Hour | Tok::Night | Tok::Am | Tok::Pm
        )
    }) || toks
        .iter()
        .any(|t| matches!(&t.tok, Tok::Word(w) if parse_hhmm(w).is_some()));
    let built = if c.has(|t| matches!(t, Tok::Lat(_) | Tok::Lon(_) | Tok::Radius))
        || subj == Some(Subj::Location)
    {
        read_geofence(&mut c)?
    } else if is_time && subj.is_none() {
        read_time(&mut c)?
    } else {
        match subj {
            // 「メールアドレスが example.co.jp ドメインである」
            Some(Subj::Email) if c.has(|t| *t == Tok::Subj(Subj::DestDomain)) => {
                c.use_where(|t| matches!(t, Tok::Subj(Subj::Email | Subj::DestDomain)));
                read_email_domain(&mut c)?
            }
            Some(s) => read_subject(&mut c, s)?,
            None => read_implicit(&mut c)?,
        }
    };
    c.finish()?;
    Ok(built)
}

/// Clauses whose attribute is told by their values or predicate alone.
fn read_implicit(c: &mut Clause<'_>) -> Res<Built> {
    if c.has(|t| matches!(t, Tok::Country(_) | Tok::Abroad | Tok::Domestic)) {
        return read_country(c);
    }
    if c.has(|t| matches!(t, Tok::DiskMethod(_))) {
        return read_disk(c);
    }
    if c.has(|t| matches!(t, Tok::Os(_))) {
        return read_os(c);
    }
    if c.has(|t| matches!(t, Tok::AuthMethod(_))) {
        return read_auth_method(c);
    }
    if c.has(|t| *t == Tok::Pred(Pred::Registered)) {
        return read_bool(c, A::DeviceRegistered, &[Pred::Registered]);
    }
    if c.has(|t| *t == Tok::Pred(Pred::Install)) {
        return read_apps(c);
    }
    if c.has(|t| *t == Tok::Pred(Pred::Belong)) {
        return read_group(c);
    }
    // 「deepseek.com へのアクセス」: a domain name the access goes to.
    if c.has(|t| *t == Tok::Particle("へ"))
        && c.has(|t| matches!(t, Tok::Word(w) if looks_like_domain(w)))
    {
        c.use_where(|t| *t == Tok::Particle("へ"));
        return read_domain(c);
    }
    let first = c
        .toks
        .iter()
        .find(|t| is_content(&t.tok))
        .map_or(span_of(c.toks), |t| t.span.clone());
    refuse(
        first,
        "何についての条件か（国、デバイス、認証、グループ、時刻など）が分かりません",
    )
}

fn read_subject(c: &mut Clause<'_>, s: Subj) -> Res<Built> {
    c.use_where(|t| *t == Tok::Subj(s));
    match s {
        Subj::Country => read_country(c),
        Subj::Tpm => read_tpm(c),
        Subj::Disk => read_disk(c),
        Subj::Firewall => read_bool(
            c,
            A::DeviceFirewall,
            &[
                Pred::Enabled,
                Pred::Set,
                Pred::Use,
                Pred::Exists,
                Pred::Install,
            ],
        ),
        Subj::Antivirus => read_bool(
            c,
            A::DeviceAntivirus,
            &[
                Pred::Enabled,
                Pred::Install,
                Pred::Use,
                Pred::Set,
                Pred::Exists,
            ],
        ),
        Subj::ScreenLock => read_bool(
            c,
            A::DeviceScreenLock,
            &[Pred::Set, Pred::Enabled, Pred::Use],
        ),
        Subj::WindowsHello => read_bool(
            c,
            A::DeviceWindowsHello,
            &[Pred::Support, Pred::Enabled, Pred::Set, Pred::Use],
        ),
        Subj::Mfa => read_bool(
            c,
            A::AuthMfa,
            &[Pred::Use, Pred::Enabled, Pred::Set, Pred::Support],
        ),
        Subj::Suspicious => read_suspicious(c),
        Subj::AuthMethod => read_auth_method(c),
        Subj::Os => read_os(c),
        Subj::OsVersion => read_version(c, A::DeviceOsVersion),
        Subj::TpmVersion => read_version(c, A::DeviceTpmVersion),
        Subj::OsName => read_strings(c, A::DeviceOsName, &[]),
        Subj::Group => read_group(c),
        Subj::App => read_apps(c),
        Subj::UserId => read_strings(c, A::UserId, &[]),
        Subj::Ssid => read_strings(c, A::DeviceNetworkSsid, &[Pred::Connect, Pred::Use]),
        Subj::DestApp => read_strings(c, A::DestinationApp, &[Pred::Use]),
        Subj::SourceIp | Subj::Ip => read_ip(c, A::SourceIp),
        Subj::DestIp => read_ip(c, A::DestinationIp),
        Subj::DeviceIp => read_ip(c, A::DeviceNetworkIp),
        Subj::DestDomain => read_domain(c),
        Subj::DestPort => read_port(c),
        Subj::Email => read_email(c),
        Subj::EmailDomain => read_email_domain(c),
        Subj::RiskScore => read_score(c),
        Subj::Location => read_geofence(c),
    }
}

/// The values of a clause: list items joined by 、/または/と/や, optionally
/// closed by 「のいずれか」. Returns the chosen tokens' indices and whether the list
/// reads as "any of" (または, いずれか) rather than "all of" (と, および).
fn list_values(c: &mut Clause<'_>, is_value: impl Fn(&Tok) -> bool) -> (Vec<usize>, bool) {
    let idx = c.use_where(&is_value);
    let any = c.has(|t| matches!(t, Tok::Or | Tok::AnyOf));
    if idx.len() > 1 {
        c.use_where(LIST_SEP);
    } else {
        c.use_where(|t| *t == Tok::AnyOf);
    }
    (idx, any)
}

fn one_or_in(attr: crate::schema::Attribute, mut lits: Vec<Literal>) -> Rule {
    if lits.len() == 1 {
        if let Some(l) = lits.pop() {
            return Rule::Atom(Condition::Eq(attr, l));
        }
    }
    Rule::Atom(Condition::In(attr, lits))
}

fn read_country(c: &mut Clause<'_>) -> Res<Built> {
    let (idx, _) = list_values(c, |t| {
        matches!(t, Tok::Country(_) | Tok::Abroad | Tok::Domestic)
    });
    c.use_where(|t| matches!(t, Tok::From | Tok::InRange));
    let (neg, nidx) = c.negated();
    let jp: CountryCode = match "JP".parse() {
        Ok(c) => c,
        Err(_) => return refuse(span_of(c.toks), "internal: JP"),
    };
    let mut codes = Vec::new();
    let mut abroad = false;
    for &i in &idx {
        match c.toks[i].tok {
            Tok::Country(code) => codes.push(code),
            Tok::Domestic => codes.push(jp),
            Tok::Abroad => abroad = true,
            _ => {}
        }
    }
    if codes.is_empty() && !abroad {
        return refuse(span_of(c.toks), "国名が書かれていません");
    }
    if abroad && !codes.is_empty() {
        return refuse(
            c.span_of(&idx),
            "「海外」と国名を同じ条件に並べることはできません",
        );
    }
    codes.dedup();
    let rule = if abroad {
        // 海外 = outside Japan: country != JP, UNKNOWN when the country is unknown.
        negate_if(
            !neg,
            Rule::Atom(Condition::Eq(A::SourceCountry, Literal::Country(jp))),
        )
    } else {
        negate_if(
            neg,
            one_or_in(
                A::SourceCountry,
                codes.into_iter().map(Literal::Country).collect(),
            ),
        )
    };
    let mut all = idx;
    all.extend(nidx);
    all.extend(subject_idx(c));
    Ok(built1(rule, c.span_of(&all), 1))
}

fn subject_idx(c: &Clause<'_>) -> Vec<usize> {
    c.toks
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.tok, Tok::Subj(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Indices of the predicates in `allowed` (marked used), refusing other predicates.
fn predicates(c: &mut Clause<'_>, allowed: &[Pred]) -> Vec<(usize, Pred)> {
    let mut out = Vec::new();
    for (i, t) in c.toks.iter().enumerate() {
        if let Tok::Pred(p) = t.tok {
            if allowed.contains(&p) || (p == Pred::Disabled && allowed.contains(&Pred::Enabled)) {
                out.push((i, p));
            }
        }
    }
    for (i, _) in &out {
        c.used[*i] = true;
    }
    out
}

/// A yes/no attribute: 「〜が有効」「〜を利用している」「〜が無効」「〜されていない」.
fn read_bool(c: &mut Clause<'_>, attr: crate::schema::Attribute, allowed: &[Pred]) -> Res<Built> {
    let preds = predicates(c, allowed);
    if preds.is_empty() {
        return refuse(
            span_of(c.toks),
            format!(
                "{}について、どうあるべきか（有効・利用など）が書かれていません",
                attr.label_ja()
            ),
        );
    }
    let (neg, nidx) = c.negated();
    let disabled = preds.iter().filter(|(_, p)| *p == Pred::Disabled).count() % 2 == 1;
    let value = !(neg ^ disabled);
    let mut idx: Vec<usize> = preds.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(
        Rule::Atom(Condition::Eq(attr, Literal::Bool(value))),
        c.span_of(&idx),
        1,
    ))
}

fn read_suspicious(c: &mut Clause<'_>) -> Res<Built> {
    let preds = predicates(c, &[Pred::Judged]);
    let (neg, nidx) = c.negated();
    let mut idx: Vec<usize> = preds.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    // 「不審なアクセスである」 needs no verb; 「と」 links the judgement.
    c.use_where(|t| *t == Tok::To);
    Ok(built1(
        Rule::Atom(Condition::Eq(A::RiskSuspicious, Literal::Bool(!neg))),
        c.span_of(&idx),
        1,
    ))
}

fn read_tpm(c: &mut Clause<'_>) -> Res<Built> {
    let preds = predicates(c, &[Pred::Enabled, Pred::Equipped, Pred::Exists]);
    let version = version_literal(c)?;
    let cmp = c.use_where(|t| {
        matches!(
            t,
            Tok::Cmp(CmpWord::Ge | CmpWord::Le | CmpWord::Lt | CmpWord::Gt)
        )
    });
    if preds.is_empty() && version.is_none() {
        return refuse(
            span_of(c.toks),
            "TPM について、どうあるべきか（有効・搭載など）が書かれていません",
        );
    }
    let (neg, nidx) = c.negated();
    let mut parts = Vec::new();
    if let Some((vi, v)) = &version {
        let cond = match cmp.first().map(|&i| &c.toks[i].tok) {
            Some(Tok::Cmp(w)) => {
                Condition::Compare(A::DeviceTpmVersion, cmp_op(*w), Literal::Version(v.clone()))
            }
            _ => Condition::Eq(A::DeviceTpmVersion, Literal::Version(v.clone())),
        };
        let _ = vi;
        parts.push(Rule::Atom(cond));
    }
    let disabled = preds.iter().any(|(_, p)| *p == Pred::Disabled);
    if preds
        .iter()
        .any(|(_, p)| matches!(p, Pred::Equipped | Pred::Exists))
    {
        parts.push(Rule::Atom(Condition::Eq(
            A::DeviceTpmPresent,
            Literal::Bool(true),
        )));
    }
    if preds
        .iter()
        .any(|(_, p)| matches!(p, Pred::Enabled | Pred::Disabled))
    {
        parts.push(Rule::Atom(Condition::Eq(
            A::DeviceTpmEnabled,
            Literal::Bool(!disabled),
        )));
    }
    let n = parts.len();
    let rule = negate_if(neg, Rule::and(parts));
    let mut idx: Vec<usize> = preds.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(rule, c.span_of(&idx), n))
}

fn read_disk(c: &mut Clause<'_>) -> Res<Built> {
    let preds = predicates(c, &[Pred::Encrypted, Pred::Enabled, Pred::Use, Pred::Set]);
    let (methods, _) = list_values(c, |t| matches!(t, Tok::DiskMethod(_)));
    let has_encrypt = preds.iter().any(|(_, p)| *p == Pred::Encrypted);
    if preds.is_empty() || (!has_encrypt && methods.is_empty()) {
        return refuse(
            span_of(c.toks),
            "ディスクについて、暗号化されているべきかが書かれていません",
        );
    }
    let (neg, nidx) = c.negated();
    let disabled = preds.iter().filter(|(_, p)| *p == Pred::Disabled).count() % 2 == 1;
    let names: Vec<&'static str> = methods
        .iter()
        .filter_map(|&i| match c.toks[i].tok {
            Tok::DiskMethod(m) => Some(m),
            _ => None,
        })
        .collect();
    // 「BitLockerで暗号化」 means encrypted AND method = bitlocker (spec §2).
    let mut parts = vec![Rule::Atom(Condition::Eq(
        A::DeviceDiskEncrypted,
        Literal::Bool(true),
    ))];
    match names.len() {
        0 => {}
        1 => parts.push(Rule::Atom(Condition::Eq(
            A::DeviceDiskMethod,
            Literal::Enum(names[0]),
        ))),
        _ => parts.push(Rule::Atom(Condition::In(
            A::DeviceDiskMethod,
            names.iter().map(|n| Literal::Enum(n)).collect(),
        ))),
    }
    let n = parts.len();
    let rule = negate_if(neg ^ disabled, Rule::and(parts));
    let mut idx: Vec<usize> = preds.iter().map(|(i, _)| *i).collect();
    idx.extend(methods);
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(rule, c.span_of(&idx), n))
}

fn read_os(c: &mut Clause<'_>) -> Res<Built> {
    read_enum(
        c,
        A::DeviceOsFamily,
        |t| match t {
            Tok::Os(o) => Some(o),
            _ => None,
        },
        "OS の種類（Windows、macOS など）が書かれていません",
    )
}

fn read_auth_method(c: &mut Clause<'_>) -> Res<Built> {
    read_enum(
        c,
        A::AuthMethod,
        |t| match t {
            Tok::AuthMethod(m) => Some(m),
            _ => None,
        },
        "認証方式（パスワード、WebAuthn、SAML、OIDC）が書かれていません",
    )
}

/// An enum attribute by its values (「OSがWindowsまたはmacOS」「パスワード認証でない」):
/// one value is `==`, several are `in`; 「利用」 is allowed as the verb.
fn read_enum(
    c: &mut Clause<'_>,
    attr: crate::schema::Attribute,
    value: fn(&Tok) -> Option<&'static str>,
    missing: &str,
) -> Res<Built> {
    let (idx, _) = list_values(c, |t| value(t).is_some());
    if idx.is_empty() {
        return refuse(span_of(c.toks), missing);
    }
    c.use_where(|t| matches!(t, Tok::Pred(Pred::Use)));
    let (neg, nidx) = c.negated();
    let mut lits: Vec<Literal> = Vec::new();
    for name in idx.iter().filter_map(|&i| value(&c.toks[i].tok)) {
        let l = Literal::Enum(name);
        if !lits.contains(&l) {
            lits.push(l);
        }
    }
    let mut all = idx;
    all.extend(nidx);
    all.extend(subject_idx(c));
    Ok(built1(
        negate_if(neg, one_or_in(attr, lits)),
        c.span_of(&all),
        1,
    ))
}

fn version_literal(c: &mut Clause<'_>) -> Res<Option<(usize, Version)>> {
    for (i, t) in c.toks.iter().enumerate() {
        if let Tok::Word(w) = &t.tok {
            if w.starts_with(|ch: char| ch.is_ascii_digit() || ch == 'v' || ch == 'V') {
                match w.parse::<Version>() {
                    Ok(v) => {
                        c.used[i] = true;
                        return Ok(Some((i, v)));
                    }
                    Err(e) => return refuse(t.span.clone(), e.to_string()),
                }
            }
        }
    }
    Ok(None)
}

fn cmp_op(w: CmpWord) -> CmpOp {
    match w {
        CmpWord::Ge => CmpOp::Ge,
        CmpWord::Le | CmpWord::Within => CmpOp::Le,
        CmpWord::Lt => CmpOp::Lt,
        CmpWord::Gt => CmpOp::Gt,
    }
}

fn comparison(c: &mut Clause<'_>) -> Res<Option<CmpOp>> {
    let idx = c.use_where(|t| matches!(t, Tok::Cmp(_)));
    match idx.as_slice() {
        [] => Ok(None),
        [i] => match c.toks[*i].tok {
            Tok::Cmp(CmpWord::Within) => refuse(
                c.toks[*i].span.clone(),
                "「以内」はこの条件には使えません（以下・未満を使ってください）",
            ),
            Tok::Cmp(w) => Ok(Some(cmp_op(w))),
            _ => Ok(None),
        },
        [_, j, ..] => refuse(
            c.toks[*j].span.clone(),
            "比較が二つあります。範囲は二つの条件に分けて書いてください",
        ),
    }
}

fn read_version(c: &mut Clause<'_>, attr: crate::schema::Attribute) -> Res<Built> {
    // 「Windows のバージョンが…」 also says which OS.
    let os = c.use_where(|t| matches!(t, Tok::Os(_)));
    let Some((vi, v)) = version_literal(c)? else {
        return refuse(
            span_of(c.toks),
            "バージョン番号（例: 10.0.22631）が書かれていません",
        );
    };
    let op = comparison(c)?;
    let (neg, nidx) = c.negated();
    let cond = match op {
        Some(op) => Condition::Compare(attr, op, Literal::Version(v)),
        None => Condition::Eq(attr, Literal::Version(v)),
    };
    let mut parts = Vec::new();
    for &i in &os {
        if let Tok::Os(o) = c.toks[i].tok {
            parts.push(Rule::Atom(Condition::Eq(
                A::DeviceOsFamily,
                Literal::Enum(o),
            )));
        }
    }
    if os.len() > 1 {
        return refuse(c.span_of(&os), "OS を一つに絞ってください");
    }
    parts.push(negate_if(neg, Rule::Atom(cond)));
    let n = parts.len();
    let mut idx = vec![vi];
    idx.extend(nidx);
    idx.extend(os);
    idx.extend(subject_idx(c));
    Ok(built1(Rule::and(parts), c.span_of(&idx), n))
}

/// Free names: ASCII words, quoted text and (where allowed) unknown Japanese runs.
fn names(c: &mut Clause<'_>, allow_unknown: bool) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, t) in c.toks.iter().enumerate() {
        // A free name (group, app) must be followed by what makes it one: a particle,
        // 「グループ」/「アプリ」, or the next item of a list. Anything else (「含まれる」
        // at the end of a sentence) is a word the translator does not know.
        let named = !allow_unknown
            || matches!(
                c.toks.get(i + 1).map(|t| &t.tok),
                Some(
                    Tok::Particle(_)
                        | Tok::Subj(Subj::Group | Subj::App)
                        | Tok::Comma
                        | Tok::Or
                        | Tok::To
                        | Tok::Ya
                        | Tok::And
                        | Tok::RParen
                        | Tok::Pred(Pred::Belong | Pred::Install)
                )
            );
        match &t.tok {
            Tok::Word(w) if named => out.push((i, w.clone())),
            Tok::Unknown(u) if allow_unknown && named => out.push((i, u.clone())),
            _ => {}
        }
    }
    for (i, _) in &out {
        c.used[*i] = true;
    }
    if out.len() > 1 {
        c.use_where(LIST_SEP);
    } else {
        c.use_where(|t| *t == Tok::AnyOf);
    }
    out
}

fn read_strings(c: &mut Clause<'_>, attr: crate::schema::Attribute, preds: &[Pred]) -> Res<Built> {
    predicates(c, preds);
    let vals = names(c, false);
    if vals.is_empty() {
        return refuse(
            span_of(c.toks),
            format!("{}の値が書かれていません", attr.label_ja()),
        );
    }
    let (neg, nidx) = c.negated();
    let lits = vals.iter().map(|(_, v)| Literal::Str(v.clone())).collect();
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(
        negate_if(neg, one_or_in(attr, lits)),
        c.span_of(&idx),
        1,
    ))
}

/// A set attribute named by free names (group names, app names): 「経理部グループに所属」
/// 「Winny がインストールされている」. The list reads as "any of" with 「または」/「いずれか」,
/// else as "all of".
struct Membership {
    attr: crate::schema::Attribute,
    subject: Subj,
    predicate: Pred,
    also_allowed: &'static [Pred],
    no_predicate: &'static str,
    no_name: &'static str,
    /// Apps are compared case-insensitively, so their names are stored lower-cased.
    lower: bool,
}

const GROUPS: Membership = Membership {
    attr: A::UserGroups,
    subject: Subj::Group,
    predicate: Pred::Belong,
    also_allowed: &[],
    no_predicate: "グループについて、所属しているべきかが書かれていません",
    no_name: "グループ名が書かれていません",
    lower: false,
};

const APPS: Membership = Membership {
    attr: A::DeviceApps,
    subject: Subj::App,
    predicate: Pred::Install,
    also_allowed: &[Pred::Exists],
    no_predicate: "アプリについて、インストールされているべきかが書かれていません",
    no_name: "アプリケーション名が書かれていません",
    lower: true,
};

fn read_group(c: &mut Clause<'_>) -> Res<Built> {
    read_membership(c, &GROUPS)
}

fn read_apps(c: &mut Clause<'_>) -> Res<Built> {
    read_membership(c, &APPS)
}

fn read_membership(c: &mut Clause<'_>, m: &Membership) -> Res<Built> {
    let allowed: Vec<Pred> = std::iter::once(m.predicate)
        .chain(m.also_allowed.iter().copied())
        .collect();
    let preds = predicates(c, &allowed);
    if !preds.iter().any(|(_, p)| *p == m.predicate) {
        return refuse(span_of(c.toks), m.no_predicate);
    }
    c.use_where(|t| *t == Tok::Subj(m.subject));
    let any = c.has(|t| matches!(t, Tok::Or | Tok::AnyOf));
    let vals = names(c, true);
    if vals.is_empty() {
        return refuse(span_of(c.toks), m.no_name);
    }
    let (neg, nidx) = c.negated();
    let parts: Vec<Rule> = vals
        .iter()
        .map(|(_, name)| {
            let name = if m.lower {
                name.to_lowercase()
            } else {
                name.clone()
            };
            Rule::Atom(Condition::Contains(m.attr, name))
        })
        .collect();
    let n = parts.len();
    let rule = if any {
        Rule::or(parts)
    } else {
        Rule::and(parts)
    };
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(preds.iter().map(|(i, _)| *i));
    idx.extend(nidx);
    Ok(built1(negate_if(neg, rule), c.span_of(&idx), n))
}

fn read_ip(c: &mut Clause<'_>, attr: crate::schema::Attribute) -> Res<Built> {
    let vals = names(c, false);
    if vals.is_empty() {
        return refuse(
            span_of(c.toks),
            "IP アドレスまたは範囲（例: 203.0.113.0/24）が書かれていません",
        );
    }
    c.use_where(|t| matches!(t, Tok::InRange | Tok::From));
    let (neg, nidx) = c.negated();
    let mut nets = Vec::new();
    let mut single = None;
    for (i, v) in &vals {
        let span = c.toks[*i].span.clone();
        if v.contains('/') {
            let net: IpNet = match v.parse() {
                Ok(n) => n,
                Err(_) => return refuse(span, "CIDR 表記（例: 203.0.113.0/24）として読めません"),
            };
            if net.trunc() != net {
                return refuse(
                    span,
                    format!(
                        "ネットワークアドレスではありません（{} のことですか）",
                        net.trunc()
                    ),
                );
            }
            nets.push(net);
        } else {
            match v.parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    single = Some(ip);
                    nets.push(IpNet::from(ip));
                }
                Err(_) => return refuse(span, "IP アドレスとして読めません"),
            }
        }
    }
    let cond = match (single, nets.len()) {
        (Some(ip), 1) => Condition::Eq(attr, Literal::Ip(ip)),
        _ => Condition::InCidr(attr, nets),
    };
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(negate_if(neg, Rule::Atom(cond)), c.span_of(&idx), 1))
}

fn looks_like_domain(w: &str) -> bool {
    w.contains('.')
        && w.parse::<std::net::IpAddr>().is_err()
        && w.rsplit('.')
            .next()
            .is_some_and(|tld| tld.chars().any(|ch| ch.is_ascii_alphabetic()))
}

fn read_domain(c: &mut Clause<'_>) -> Res<Built> {
    let vals = names(c, false);
    let only_sub = !c.use_where(|t| *t == Tok::Subdomain).is_empty();
    let with_sub = !c.use_where(|t| *t == Tok::WithSubdomains).is_empty();
    if only_sub && with_sub {
        return refuse(
            span_of(c.toks),
            "サブドメインを含むのか含まないのかが曖昧です",
        );
    }
    if vals.is_empty() {
        return refuse(
            span_of(c.toks),
            "ドメイン名（例: example.com）が書かれていません",
        );
    }
    let (neg, nidx) = c.negated();
    let mut parts = Vec::new();
    for (i, v) in &vals {
        let span = c.toks[*i].span.clone();
        let (mode, name) = match v.strip_prefix("*.") {
            Some(_) if with_sub => {
                return refuse(span, "「*.」と「そのサブドメイン」を同時には使えません")
            }
            Some(rest) => (DomainMatch::SubdomainOf, rest),
            // 「example.com のサブドメイン」 excludes example.com itself.
            None if only_sub => (DomainMatch::SubdomainOf, v.as_str()),
            None => (DomainMatch::InZone, v.as_str()),
        };
        if name.contains('*') || !looks_like_domain(name) {
            return refuse(
                span,
                "ドメイン名（example.com または *.example.com の形）として読めません",
            );
        }
        let d: Domain = match name.parse() {
            Ok(d) => d,
            Err(e) => return refuse(span, e.to_string()),
        };
        parts.push(Rule::Atom(Condition::Domain(A::DestinationDomain, mode, d)));
    }
    let n = parts.len();
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(negate_if(neg, Rule::or(parts)), c.span_of(&idx), n))
}

fn read_port(c: &mut Clause<'_>) -> Res<Built> {
    let vals = names(c, false);
    c.use_where(|t| *t == Tok::Number);
    if vals.is_empty() {
        return refuse(span_of(c.toks), "ポート番号が書かれていません");
    }
    let op = comparison(c)?;
    let (neg, nidx) = c.negated();
    let mut lits = Vec::new();
    for (i, v) in &vals {
        match v.parse::<u16>() {
            Ok(p) => lits.push(Literal::Int(i64::from(p))),
            Err(_) => {
                return refuse(
                    c.toks[*i].span.clone(),
                    "ポート番号（0〜65535）として読めません",
                )
            }
        }
    }
    let rule = match op {
        Some(op) if lits.len() == 1 => {
            let l = lits.remove(0);
            Rule::Atom(Condition::Compare(A::DestinationPort, op, l))
        }
        Some(_) => return refuse(span_of(c.toks), "比較は一つのポート番号にしか使えません"),
        None => one_or_in(A::DestinationPort, lits),
    };
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(negate_if(neg, rule), c.span_of(&idx), 1))
}

/// A clause whose values each give one condition, any of which may hold
/// (「…が A または B である」): names, each turned into a rule by `each`, joined by `or`.
fn read_alternatives(
    c: &mut Clause<'_>,
    missing: &str,
    each: impl Fn(&str, Range<usize>) -> Res<Rule>,
) -> Res<Built> {
    let vals = names(c, false);
    if vals.is_empty() {
        return refuse(span_of(c.toks), missing);
    }
    let (neg, nidx) = c.negated();
    let parts = vals
        .iter()
        .map(|(i, v)| each(v, c.toks[*i].span.clone()))
        .collect::<Res<Vec<Rule>>>()?;
    let n = parts.len();
    let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(negate_if(neg, Rule::or(parts)), c.span_of(&idx), n))
}

fn email_domain(name: &str, span: Range<usize>) -> Res<Rule> {
    let d: Domain =
        name.trim_start_matches('@')
            .parse()
            .map_err(|e: crate::value::ValueError| Refusal {
                span,
                reason: e.to_string(),
            })?;
    Ok(Rule::Atom(Condition::EmailDomain(A::UserEmail, d)))
}

/// 「メールアドレスが tanaka@example.co.jp である」「…が @example.co.jp で終わる」.
fn read_email(c: &mut Clause<'_>) -> Res<Built> {
    let ends = !predicates(c, &[Pred::EndsWith]).is_empty();
    read_alternatives(
        c,
        "メールアドレスが書かれていません",
        |v, span| {
            if v.starts_with('@') {
                email_domain(v, span)
            } else if ends {
                refuse(span, "「@example.co.jp で終わる」の形で書いてください")
            } else if v.contains('@') {
                Ok(Rule::Atom(Condition::Eq(
                    A::UserEmail,
                    Literal::Str(crate::context::normalize_email(v)),
                )))
            } else {
                refuse(span, "メールアドレスとして読めません")
            }
        },
    )
}

/// 「メールアドレスのドメインが example.co.jp である」.
fn read_email_domain(c: &mut Clause<'_>) -> Res<Built> {
    read_alternatives(c, "ドメイン名が書かれていません", email_domain)
}

fn read_score(c: &mut Clause<'_>) -> Res<Built> {
    let vals = names(c, false);
    let cmps: Vec<usize> = (0..c.toks.len())
        .filter(|&i| matches!(c.toks[i].tok, Tok::Cmp(_)))
        .collect();
    // 「0.5以上0.8未満」: each number with the comparison word after it, joined by `and`.
    if vals.len() == 2 && cmps.len() == 2 && vals[0].0 < cmps[0] && cmps[0] < vals[1].0 {
        let mut parts = Vec::new();
        for ((i, v), &k) in vals.iter().zip(&cmps) {
            let n = score_value(c, *i, v)?;
            let op = match c.toks[k].tok {
                Tok::Cmp(CmpWord::Within) | Tok::Cmp(CmpWord::Le) => CmpOp::Le,
                Tok::Cmp(w) => cmp_op(w),
                _ => CmpOp::Le,
            };
            c.used[k] = true;
            parts.push(Rule::Atom(Condition::Compare(
                A::RiskScore,
                op,
                Literal::Num(n),
            )));
        }
        let (neg, nidx) = c.negated();
        let mut idx: Vec<usize> = vals.iter().map(|(i, _)| *i).collect();
        idx.extend(nidx);
        idx.extend(subject_idx(c));
        return Ok(built1(negate_if(neg, Rule::and(parts)), c.span_of(&idx), 2));
    }
    let [(i, v)] = vals.as_slice() else {
        return refuse(
            span_of(c.toks),
            "リスクスコアの値を一つ（0〜1）書いてください",
        );
    };
    let n = score_value(c, *i, v)?;
    let op = comparison(c)?;
    let (neg, nidx) = c.negated();
    let cond = match op {
        Some(op) => Condition::Compare(A::RiskScore, op, Literal::Num(n)),
        None => Condition::Eq(A::RiskScore, Literal::Num(n)),
    };
    let mut idx = vec![*i];
    idx.extend(nidx);
    idx.extend(subject_idx(c));
    Ok(built1(negate_if(neg, Rule::Atom(cond)), c.span_of(&idx), 1))
}

fn score_value(c: &Clause<'_>, i: usize, v: &str) -> Res<f64> {
    match v.parse::<f64>() {
        Ok(n) if (0.0..=1.0).contains(&n) => Ok(n),
        _ => refuse(c.toks[i].span.clone(), "リスクスコアは 0 から 1 の数値です"),
    }
}

fn number(c: &Clause<'_>, i: usize) -> Res<f64> {
    match &c.toks[i].tok {
        Tok::Word(w) => match w.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => refuse(c.toks[i].span.clone(), "数値として読めません"),
        },
        _ => refuse(c.toks[i].span.clone(), "ここには数値が必要です"),
    }
}

/// 「本社（北緯35.681度、東経139.767度）から半径5km以内にいること」.
fn read_geofence(c: &mut Clause<'_>) -> Res<Built> {
    let find = |c: &Clause<'_>, f: &dyn Fn(&Tok) -> bool| c.toks.iter().position(|t| f(&t.tok));
    let (Some(lat_i), Some(lon_i), Some(rad_i)) = (
        find(c, &|t| matches!(t, Tok::Lat(_))),
        find(c, &|t| matches!(t, Tok::Lon(_))),
        find(c, &|t| *t == Tok::Radius),
    ) else {
        return refuse(
            span_of(c.toks),
            "位置の条件は「北緯○度、東経○度から半径○km以内」の形で書いてください（地名は使えません）",
        );
    };
    let next_word = |c: &Clause<'_>, from: usize| {
        (from + 1..c.toks.len()).find(|&j| matches!(c.toks[j].tok, Tok::Word(_)))
    };
    let (Some(lat_v), Some(lon_v), Some(rad_v)) = (
        next_word(c, lat_i),
        next_word(c, lon_i),
        next_word(c, rad_i),
    ) else {
        return refuse(span_of(c.toks), "緯度・経度・半径の数値が必要です");
    };
    let north = matches!(c.toks[lat_i].tok, Tok::Lat(true));
    let east = matches!(c.toks[lon_i].tok, Tok::Lon(true));
    let lat = number(c, lat_v)? * if north { 1.0 } else { -1.0 };
    let lon = number(c, lon_v)? * if east { 1.0 } else { -1.0 };
    // 「半径500m」: metres are converted to kilometres.
    let metres = c.has(|t| *t == Tok::Meter) && !c.has(|t| *t == Tok::Km);
    let radius = number(c, rad_v)? / if metres { 1000.0 } else { 1.0 };
    let center = Point { lat, lon }.validate().map_err(|e| Refusal {
        span: c.span_of(&[lat_v, lon_v]),
        reason: e.to_string(),
    })?;
    if radius <= 0.0 {
        return refuse(c.toks[rad_v].span.clone(), "半径は正の数にしてください");
    }
    for i in [lat_i, lon_i, rad_i, lat_v, lon_v, rad_v] {
        c.used[i] = true;
    }
    // A place label (本社) before the coordinates names them; it adds nothing.
    let paren = c.use_where(|t| matches!(t, Tok::LParen | Tok::RParen));
    if paren.len() == 2 && paren[0] > 0 && matches!(c.toks[paren[0] - 1].tok, Tok::Unknown(_)) {
        c.used[paren[0] - 1] = true;
    }
    c.use_where(|t| {
        matches!(
            t,
            Tok::Degree
                | Tok::Km
                | Tok::Meter
                | Tok::From
                | Tok::Cmp(CmpWord::Within)
                | Tok::Subj(Subj::Location)
        )
    });
    if !c.has(|t| matches!(t, Tok::Km | Tok::Meter)) {
        return refuse(c.toks[rad_v].span.clone(), "半径の単位（km）が必要です");
    }
    if !c.has(|t| *t == Tok::Cmp(CmpWord::Within)) {
        return refuse(c.toks[rad_v].span.clone(), "「以内」が必要です");
    }
    let (neg, _) = c.negated();
    let rule = Rule::Atom(Condition::Within {
        attr: A::DeviceLocation,
        center,
        radius_km: radius,
    });
    Ok(built1(negate_if(neg, rule), span_of(c.toks), 1))
}

fn parse_hhmm(w: &str) -> Option<(u32, u32)> {
    let (h, m) = w.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    Some((h.parse().ok()?, m.parse().ok()?))
}

/// Reads one clock time starting at token `i`: 「午後6時30分」「18時半」「18:30」.
/// Returns the time and the index after it.
fn clock_time(c: &mut Clause<'_>, mut i: usize) -> Res<Option<(TimeOfDay, usize)>> {
    let mut pm = None;
    if let Some(t) = c.toks.get(i) {
        match t.tok {
            Tok::Am => pm = Some(false),
            Tok::Pm => pm = Some(true),
            _ => {}
        }
        if pm.is_some() {
            c.used[i] = true;
            i += 1;
        }
    }
    let Some(Token {
        tok: Tok::Word(w),
        span,
    }) = c.toks.get(i)
    else {
        return Ok(None);
    };
    let span = span.clone();
    let (mut h, mut m, next) = if let Some((h, m)) = parse_hhmm(w) {
        (h, m, i + 1)
    } else if let Ok(h) = w.parse::<u32>() {
        if c.toks.get(i + 1).map(|t| &t.tok) != Some(&Tok::Hour) {
            return Ok(None);
        }
        c.used[i + 1] = true;
        let mut next = i + 2;
        let mut m = 0;
        if let Some(Token {
            tok: Tok::Word(mw), ..
        }) = c.toks.get(next)
        {
            if c.toks.get(next + 1).map(|t| &t.tok) == Some(&Tok::Minute) {
                m = match mw.parse::<u32>() {
                    Ok(m) => m,
                    Err(_) => return refuse(c.toks[next].span.clone(), "分として読めません"),
                };
                c.used[next] = true;
                c.used[next + 1] = true;
                next += 2;
            }
        } else if c.toks.get(next).map(|t| &t.tok) == Some(&Tok::Half) {
            m = 30;
            c.used[next] = true;
            next += 1;
        }
        (h, m, next)
    } else {
        return Ok(None);
    };
    c.used[i] = true;
    match pm {
        Some(true) if h < 12 => h += 12,
        Some(true) if h > 12 => return refuse(span, "「午後」の後は 12 時までで書いてください"),
        Some(false) if h > 12 => return refuse(span, "「午前」の後は 12 時までで書いてください"),
        Some(false) if h == 12 => h = 0,
        _ => {}
    }
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return refuse(span, "時刻として読めません");
    }
    if h == 24 {
        m = 0;
    }
    match TimeOfDay::new(h, m) {
        Some(t) => Ok(Some((t, next))),
        None => refuse(span, "時刻として読めません"),
    }
}

/// 「平日の9時から18時まで」「土日以外」「22時から翌5時まで」「18時以降」.
fn read_time(c: &mut Clause<'_>) -> Res<Built> {
    // Weekdays: a union, or a range 「月曜日から金曜日」.
    let day_idx: Vec<usize> = (0..c.toks.len())
        .filter(|&i| matches!(c.toks[i].tok, Tok::Weekdays(_)))
        .collect();
    let mut days: Option<WeekdaySet> = None;
    if !day_idx.is_empty() {
        let mut bits = 0u8;
        for &i in &day_idx {
            if let Tok::Weekdays(w) = c.toks[i].tok {
                bits |= w.bits();
            }
            c.used[i] = true;
        }
        if let [a, b] = day_idx[..] {
            let between = &c.toks[a + 1..b];
            if between
                .iter()
                .any(|t| matches!(t.tok, Tok::From | Tok::Tilde))
            {
                let (Tok::Weekdays(x), Tok::Weekdays(y)) = (&c.toks[a].tok, &c.toks[b].tok) else {
                    return refuse(span_of(c.toks), "曜日の範囲として読めません");
                };
                let (Some(s), Some(e)) = (x.days().next(), y.days().next()) else {
                    return refuse(span_of(c.toks), "曜日の範囲として読めません");
                };
                bits = 0;
                let mut d = s;
                loop {
                    bits |= 1 << d;
                    if d == e {
                        break;
                    }
                    d = (d + 1) % 7;
                }
                for j in a + 1..b {
                    c.used[j] = true;
                }
                if c.toks.get(b + 1).map(|t| &t.tok) == Some(&Tok::Until) {
                    c.used[b + 1] = true;
                }
            }
        }
        for j in day_idx[0]..*day_idx.last().unwrap_or(&0) {
            if LIST_SEP(&c.toks[j].tok) {
                c.used[j] = true;
            }
        }
        days = Some(WeekdaySet::from_bits(bits));
    }
    // Clock range.
    let mut range: Option<(TimeOfDay, TimeOfDay, Range<usize>)> = None;
    let mut i = 0;
    while i < c.toks.len() {
        if c.used[i] {
            i += 1;
            continue;
        }
        if c.toks[i].tok == Tok::Night {
            // 「深夜0時から5時」: the explicit hours say it all.
            c.used[i] = true;
            i += 1;
            continue;
        }
        let Some((t1, next)) = clock_time(c, i)? else {
            i += 1;
            continue;
        };
        if range.is_some() {
            return refuse(c.toks[i].span.clone(), "時刻の範囲は一つにしてください");
        }
        let start_tok = i;
        let follow = c.toks.get(next).map(|t| t.tok.clone());
        match follow {
            Some(Tok::From) | Some(Tok::Tilde) => {
                c.used[next] = true;
                let mut j = next + 1;
                if c.toks.get(j).map(|t| &t.tok) == Some(&Tok::NextDay) {
                    c.used[j] = true;
                    j += 1;
                }
                if matches!(c.toks.get(j).map(|t| &t.tok), Some(Tok::Night)) {
                    c.used[j] = true;
                    j += 1;
                }
                let Some((t2, after)) = clock_time(c, j)? else {
                    return refuse(c.toks[next].span.clone(), "終わりの時刻が必要です");
                };
                let mut end_tok = after;
                if c.toks.get(after).map(|t| &t.tok) == Some(&Tok::Until) {
                    c.used[after] = true;
                    end_tok = after + 1;
                }
                range = Some((
                    t1,
                    t2,
                    c.toks[start_tok].span.start..c.toks[end_tok - 1].span.end,
                ));
                i = end_tok;
            }
            Some(Tok::After) => {
                c.used[next] = true;
                let end = TimeOfDay::new(24, 0).unwrap_or(t1);
                range = Some((t1, end, c.toks[start_tok].span.start..c.toks[next].span.end));
                i = next + 1;
            }
            Some(Tok::Before) | Some(Tok::Until) => {
                c.used[next] = true;
                let start = TimeOfDay::new(0, 0).unwrap_or(t1);
                range = Some((
                    start,
                    t1,
                    c.toks[start_tok].span.start..c.toks[next].span.end,
                ));
                i = next + 1;
            }
            _ => {
                return refuse(
                    c.toks[i].span.clone(),
                    "時刻は「9時から18時まで」「18時以降」のように範囲で書いてください",
                )
            }
        }
    }
    if days.is_none() && range.is_none() {
        return refuse(span_of(c.toks), "曜日または時刻の範囲が読み取れません");
    }
    let (neg, _) = c.negated();
    if neg && days.is_some() && range.is_some() {
        return refuse(
            span_of(c.toks),
            "曜日と時刻の両方を否定する書き方は曖昧です。分けて書いてください",
        );
    }
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    if let Some(d) = days {
        let d = if neg && range.is_none() {
            // 「土日以外」 = the other days.
            WeekdaySet::from_bits(!d.bits())
        } else {
            d
        };
        if d.is_empty() {
            return refuse(span_of(c.toks), "該当する曜日がありません");
        }
        parts.push(Rule::Atom(Condition::Weekday(A::Time, d)));
        let s = c.span_of(&day_idx);
        spans.push(s);
    }
    if let Some((s, e, span)) = range {
        if s == e {
            return refuse(span, "開始と終了が同じ時刻です");
        }
        let (s, e) = if neg && days.is_none() {
            (e, s)
        } else {
            (s, e)
        };
        parts.push(Rule::Atom(Condition::TimeOfDay {
            attr: A::Time,
            start: s,
            end: e,
        }));
        spans.push(span);
    }
    Ok(Built {
        rule: Rule::and(parts),
        spans,
    })
}
