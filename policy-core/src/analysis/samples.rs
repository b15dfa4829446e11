//! Candidate values and the search over them.
//!
//! For a set of rules, [`candidates`] lists per attribute (in [`Attribute`] order) a
//! small set of concrete values that covers every boundary of every condition on that
//! attribute: each literal, the values just beside it, one value that matches no
//! condition, and `None` (the attribute unknown). Attributes that no rule mentions are
//! left unknown.
//!
//! | type | known candidates |
//! |---|---|
//! | bool | `true`, `false` |
//! | string | each literal, `"other-value"` |
//! | e-mail | each literal; for `email_domain d`: `user@d`, `user@sub.d`; `someone@other.invalid` |
//! | set of string | the empty set, each literal alone, all together (every subset up to 3 literals) |
//! | enum | every name of the schema |
//! | version | each literal, its last component +1, the version just below it |
//! | integer | each literal ±1 (floor/ceil for a fractional literal) |
//! | number | each literal ±0.01 (less when two literals are closer), clamped to 0..=1 |
//! | IP | per CIDR: first and last address and the addresses just outside; `==` literals; an address of the other family |
//! | country | each literal, `JP`, `US`, and a code that is none of the literals |
//! | domain | each zone, `sub.<zone>`, `other-<first label>.invalid` |
//! | location | each centre, points just inside and just outside each radius (checked with [`Point::distance_km`]), a point in the overlap of two circles |
//! | time | every day of the week of 2026-11-23 (a Monday) at 12:00, at each boundary minute of every `of_day` and the minute before it, in the policy time zone |
//!
//! [`candidates`] then keeps, per attribute, one value for each distinct combination
//! of its conditions' truth values (the first one generated): the evaluator sees an
//! attribute only through its conditions, so the others cannot behave differently.
//!
//! The product of those lists is the search space. [`depth_first`] walks it with
//! pruning; [`staged`] samples it when it is too large. Every visited point is a real
//! [`Request`] that the caller evaluates with the real evaluator, so any example found
//! is true by construction.
//!
//! ## Pruning is sound
//!
//! The evaluator is monotone in what the request knows: when a rule is TRUE or FALSE
//! on a request with some attributes unknown, it keeps that value whatever those
//! attributes turn out to be (an unknown attribute only ever yields UNKNOWN, and
//! Kleene's `and`/`or`/`not`/`->` never turn a definite value back). So once the
//! caller's rules are all definite on a partial request, every request below it in the
//! search tree gives the same values and the subtree can be skipped without losing
//! anything: a search that ends without reaching its cap has covered the whole
//! product.
//!
//! ## The cap
//!
//! Both walks stop after a fixed number of evaluations ([`MAX_EVALUATIONS`] by
//! default). A capped depth-first walk has seen only part of the space (the values of
//! the last attributes in every combination, the first attributes hardly at all), so
//! callers then spend what is left on [`staged`]: every attribute varied alone from the
//! all-unknown request, then every pair, then a deterministic pseudo-random sample of
//! whole requests (xorshift with a fixed seed, so runs are reproducible). The examples
//! found that way are still real, but "nothing found" is no longer a proof; callers
//! report that as `exhaustive: false`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use ipnet::IpNet;

use crate::ast::{Condition, Literal, Rule};
use crate::context::{Request, Value};
use crate::eval::{eval_condition, Truth};
use crate::schema::{AttrType, Attribute};
use crate::value::{CountryCode, Domain, Point, Version};

/// The default cap on evaluated candidate requests per search.
pub const MAX_EVALUATIONS: usize = 200_000;

/// The Monday whose week supplies the candidate instants (2026-11-23).
pub const SAMPLE_WEEK_MONDAY: (i32, u32, u32) = (2026, 11, 23);

/// The candidate values of one attribute. `values[0]` is always `None` (unknown);
/// the rest are known values, each valid for [`Request::set`].
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// The attribute.
    pub attribute: Attribute,
    /// `None` first, then the known candidate values.
    pub values: Vec<Option<Value>>,
}

impl Candidates {
    /// The known values (everything but the leading `None`).
    pub fn known(&self) -> impl Iterator<Item = &Value> {
        self.values.iter().flatten()
    }

    fn known_len(&self) -> usize {
        self.values.len() - 1
    }

    fn known_at(&self, i: usize) -> &Value {
        // values[0] is None; values[1..] are Some by construction.
        match &self.values[i + 1] {
            Some(v) => v,
            None => unreachable!("candidate lists hold None only in front"),
        }
    }
}

/// The candidate values of every attribute the rules mention, in [`Attribute`] order.
/// Clock conditions are sampled in the policy time zone `tz`.
pub fn candidates(rules: &[&Rule], tz: Tz) -> Vec<Candidates> {
    let mut by_attr: BTreeMap<Attribute, Vec<&Condition>> = BTreeMap::new();
    for r in rules {
        r.visit_conditions(&mut |c| by_attr.entry(c.attribute()).or_default().push(c));
    }
    by_attr
        .into_iter()
        .map(|(attribute, conds)| Candidates {
            attribute,
            values: candidates_for(attribute, &conds, tz),
        })
        .collect()
}

/// The candidate values of one attribute for the given conditions on it: `None`
/// first, then one known value per distinct behaviour.
///
/// Values are drawn from [`boundary_values`]; two values on which every one of the
/// conditions has the same truth value are interchangeable in any rule built from
/// those conditions (the evaluator sees an attribute only through its conditions), so
/// only the first of them is kept. That keeps the search space small (a time of day
/// sampled at dozens of instants collapses to the few combinations of its conditions)
/// without losing any behaviour the boundary values show.
pub fn candidates_for(attr: Attribute, conds: &[&Condition], tz: Tz) -> Vec<Option<Value>> {
    let mut out: Vec<Option<Value>> = vec![None];
    let mut seen: Vec<Vec<Truth>> = Vec::new();
    for v in boundary_values(attr, conds, tz) {
        let mut req = Request::default();
        if req.set(attr, Some(v.clone())).is_err() {
            continue;
        }
        let signature: Vec<Truth> = conds.iter().map(|c| eval_condition(c, &req, tz)).collect();
        if !seen.contains(&signature) {
            seen.push(signature);
            out.push(Some(v));
        }
    }
    out
}

/// Known values of one attribute that cover every boundary of the conditions: each
/// literal, the values just beside it, a value matching none of them (the module
/// documentation lists them per type). Each is valid for
/// [`Request::set`] and listed once; none is dropped for behaving like another.
pub fn boundary_values(attr: Attribute, conds: &[&Condition], tz: Tz) -> Vec<Value> {
    let raw = match attr.ty() {
        AttrType::Bool => vec![Value::Bool(true), Value::Bool(false)],
        AttrType::String => strings(conds),
        AttrType::Email => emails(conds),
        AttrType::StringSet => sets(attr, conds),
        AttrType::Enum(names) => names.iter().map(|n| Value::Enum(n.to_string())).collect(),
        AttrType::Version => versions(conds),
        AttrType::Integer => integers(conds),
        AttrType::Number => numbers(conds),
        AttrType::Ip => ips(conds),
        AttrType::Country => countries(conds),
        AttrType::Domain => domains(conds),
        AttrType::Point => points(conds),
        AttrType::Instant => instants(conds, tz),
    };
    let mut out: Vec<Value> = Vec::new();
    let mut scratch = Request::default();
    for v in raw {
        // Keep only values a request can carry (ports within u16, ...), once each.
        if scratch.set(attr, Some(v.clone())).is_ok() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Every literal of `Eq`/`In`/`Compare` conditions, in order.
fn literals<'a>(conds: &[&'a Condition]) -> Vec<&'a Literal> {
    let mut out = Vec::new();
    for c in conds {
        match c {
            Condition::Eq(_, l) => out.push(l),
            Condition::In(_, ls) => out.extend(ls.iter()),
            Condition::Compare(_, _, l) => out.push(l),
            _ => {}
        }
    }
    out
}

fn unused_name(base: &str, taken: &[String]) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn strings(conds: &[&Condition]) -> Vec<Value> {
    let lits: Vec<String> = literals(conds)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let other = unused_name("other-value", &lits);
    lits.into_iter()
        .chain(std::iter::once(other))
        .map(Value::Str)
        .collect()
}

fn emails(conds: &[&Condition]) -> Vec<Value> {
    let mut out: Vec<String> = literals(conds)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Str(s) => Some(s.to_lowercase()),
            _ => None,
        })
        .collect();
    for c in conds {
        if let Condition::EmailDomain(_, d) = c {
            out.push(format!("user@{d}"));
            out.push(format!("user@sub.{d}"));
        }
    }
    out.push(unused_name("someone@other.invalid", &out));
    out.into_iter().map(Value::Str).collect()
}

fn sets(attr: Attribute, conds: &[&Condition]) -> Vec<Value> {
    let mut lits: Vec<String> = Vec::new();
    for c in conds {
        if let Condition::Contains(_, s) = c {
            let s = if attr == Attribute::DeviceApps {
                s.to_lowercase()
            } else {
                s.clone()
            };
            if !lits.contains(&s) {
                lits.push(s);
            }
        }
    }
    let mut out = vec![Vec::new()];
    if lits.len() <= 3 {
        // Few enough for every subset, smallest first.
        let n = lits.len();
        let mut masks: Vec<u32> = (1..(1u32 << n)).collect();
        masks.sort_by_key(|m| (m.count_ones(), *m));
        for m in masks {
            out.push(
                (0..n)
                    .filter(|i| m & (1 << i) != 0)
                    .map(|i| lits[i].clone())
                    .collect(),
            );
        }
    } else {
        out.extend(lits.iter().map(|l| vec![l.clone()]));
        out.push(lits);
    }
    out.into_iter().map(Value::Set).collect()
}

fn version_pred(v: &Version) -> Option<Version> {
    // 10.0.5 -> 10.0.4; 10.0 -> 9.99999 (below 10.0, above any 9.x in practice).
    let parts = v.parts();
    let i = parts.iter().rposition(|x| *x > 0)?;
    let mut p = parts[..=i].to_vec();
    p[i] -= 1;
    if i + 1 < parts.len() {
        p.push(99_999);
    }
    Version::from_parts(p)
}

fn version_succ(v: &Version) -> Option<Version> {
    let mut p = v.parts().to_vec();
    let last = p.last_mut()?;
    *last = last.checked_add(1)?;
    Version::from_parts(p)
}

fn versions(conds: &[&Condition]) -> Vec<Value> {
    let mut out = Vec::new();
    for l in literals(conds) {
        if let Literal::Version(v) = l {
            out.push(v.clone());
            out.extend(version_succ(v));
            out.extend(version_pred(v));
        }
    }
    if out.is_empty() {
        out.push(Version::from_parts(vec![1]).unwrap_or_else(|| unreachable!()));
    }
    out.into_iter().map(Value::Version).collect()
}

fn integers(conds: &[&Condition]) -> Vec<Value> {
    let mut out: Vec<i64> = Vec::new();
    for l in literals(conds) {
        match l {
            Literal::Int(i) => {
                out.push(*i);
                out.push(i.saturating_sub(1));
                out.push(i.saturating_add(1));
            }
            Literal::Num(n) if n.is_finite() => {
                let (f, c) = (n.floor() as i64, n.ceil() as i64);
                out.extend([f, c, f.saturating_sub(1), c.saturating_add(1)]);
            }
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(0);
    }
    out.into_iter().map(Value::Int).collect()
}

/// Rounds away float noise (0.8 + 0.01 = 0.8100000000000001) when that keeps the
/// value strictly between `lo` and `hi`.
fn tidy(x: f64, lo: f64, hi: f64) -> f64 {
    let r = (x * 1e10).round() / 1e10;
    if r > lo && r < hi {
        r
    } else {
        x
    }
}

fn numbers(conds: &[&Condition]) -> Vec<Value> {
    let mut lits: Vec<f64> = literals(conds)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Num(n) => Some(*n),
            Literal::Int(i) => Some(*i as f64),
            _ => None,
        })
        .filter(|n| n.is_finite())
        .collect();
    lits.sort_by(f64::total_cmp);
    lits.dedup();
    let mut out = Vec::new();
    for (i, &l) in lits.iter().enumerate() {
        out.push(l.clamp(0.0, 1.0));
        // Step aside by 0.01, or by half the gap to the next literal when closer, so
        // every interval between two literals gets a value of its own.
        let below = if i > 0 {
            lits[i - 1]
        } else {
            f64::NEG_INFINITY
        };
        let above = lits.get(i + 1).copied().unwrap_or(f64::INFINITY);
        let d_lo = 0.01f64.min((l - below) / 2.0);
        let d_hi = 0.01f64.min((above - l) / 2.0);
        let lo = tidy(l - d_lo, below.max(l - 0.02), l);
        let hi = tidy(l + d_hi, l, above.min(l + 0.02));
        if lo >= 0.0 {
            out.push(lo);
        }
        if hi <= 1.0 {
            out.push(hi);
        }
    }
    if out.is_empty() {
        out.push(0.5);
    }
    out.into_iter().map(Value::Num).collect()
}

fn ips(conds: &[&Condition]) -> Vec<Value> {
    let mut out: Vec<IpAddr> = Vec::new();
    for c in conds {
        match c {
            Condition::InCidr(_, nets) => {
                for n in nets {
                    match n {
                        IpNet::V4(n) => {
                            let (a, b) = (u32::from(n.network()), u32::from(n.broadcast()));
                            out.push(Ipv4Addr::from(a).into());
                            out.push(Ipv4Addr::from(b).into());
                            out.extend(a.checked_sub(1).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
                            out.extend(b.checked_add(1).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
                        }
                        IpNet::V6(n) => {
                            let (a, b) = (u128::from(n.network()), u128::from(n.broadcast()));
                            out.push(Ipv6Addr::from(a).into());
                            out.push(Ipv6Addr::from(b).into());
                            out.extend(a.checked_sub(1).map(|x| IpAddr::V6(Ipv6Addr::from(x))));
                            out.extend(b.checked_add(1).map(|x| IpAddr::V6(Ipv6Addr::from(x))));
                        }
                    }
                }
            }
            Condition::Eq(_, Literal::Ip(ip)) => out.push(*ip),
            Condition::In(_, ls) => out.extend(ls.iter().filter_map(|l| match l {
                Literal::Ip(ip) => Some(*ip),
                _ => None,
            })),
            _ => {}
        }
    }
    // An address of the other family matches no condition of this one.
    let (v4, v6) = (
        out.iter().any(IpAddr::is_ipv4),
        out.iter().any(IpAddr::is_ipv6),
    );
    if v4 || !v6 {
        out.push(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
    }
    if v6 {
        out.push(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }
    out.into_iter().map(Value::Ip).collect()
}

fn countries(conds: &[&Condition]) -> Vec<Value> {
    let lits: Vec<CountryCode> = literals(conds)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Country(c) => Some(*c),
            _ => None,
        })
        .collect();
    let code = |s: &str| s.parse::<CountryCode>().ok();
    let mut out = lits.clone();
    out.extend(code("JP"));
    out.extend(code("US"));
    // Make sure one value is none of the literals (`in ["JP", "US"]`).
    if out.iter().all(|c| lits.contains(c)) {
        out.extend(
            ["CN", "KR", "GB", "DE", "FR", "AU"]
                .iter()
                .filter_map(|s| code(s))
                .find(|c| !lits.contains(c)),
        );
    }
    out.into_iter().map(Value::Country).collect()
}

fn domains(conds: &[&Condition]) -> Vec<Value> {
    let mut zones: Vec<Domain> = Vec::new();
    for c in conds {
        match c {
            Condition::Domain(_, _, d) => zones.push(d.clone()),
            Condition::Eq(_, Literal::Domain(d)) => zones.push(d.clone()),
            Condition::In(_, ls) => zones.extend(ls.iter().filter_map(|l| match l {
                Literal::Domain(d) => Some(d.clone()),
                _ => None,
            })),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for z in &zones {
        out.push(z.clone());
        out.extend(format!("sub.{z}").parse::<Domain>().ok());
    }
    let first = zones
        .first()
        .and_then(|z| z.as_str().split('.').next())
        .unwrap_or("example");
    let first: String = first.chars().take(50).collect();
    let first = first.trim_end_matches('-');
    let other = format!("other-{first}.invalid")
        .parse::<Domain>()
        .or_else(|_| "other.invalid".parse::<Domain>());
    out.extend(other.ok());
    out.into_iter().map(Value::Domain).collect()
}

const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A point `km` north of `p` (south when that would pass the pole).
fn moved(p: Point, km: f64) -> Option<Point> {
    let dlat = (km / EARTH_RADIUS_KM).to_degrees();
    let lat = if p.lat + dlat <= 90.0 {
        p.lat + dlat
    } else {
        p.lat - dlat
    };
    Point { lat, lon: p.lon }.validate().ok()
}

fn points(conds: &[&Condition]) -> Vec<Value> {
    let circles: Vec<(Point, f64)> = conds
        .iter()
        .filter_map(|c| match c {
            Condition::Within {
                center, radius_km, ..
            } => Some((*center, *radius_km)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for &(c, r) in &circles {
        out.push(c);
        // Just inside and just outside, each verified with the evaluator's distance.
        let mut margin = (r * 1e-3).max(1e-3);
        for _ in 0..8 {
            let inside = moved(c, (r - margin).max(0.0)).filter(|p| p.distance_km(c) <= r);
            let outside = moved(c, r + margin).filter(|p| p.distance_km(c) > r);
            if let (Some(i), Some(o)) = (inside, outside) {
                out.push(i);
                out.push(o);
                break;
            }
            margin *= 4.0;
        }
    }
    // A point in the overlap of every pair of overlapping circles.
    for (i, &(c1, r1)) in circles.iter().enumerate() {
        for &(c2, r2) in &circles[i + 1..] {
            let d = c1.distance_km(c2);
            if d <= 0.0 || d >= r1 + r2 || (c2.lon - c1.lon).abs() > 180.0 {
                continue;
            }
            let x = ((d - r2).max(0.0) + d.min(r1)) / 2.0;
            let t = x / d;
            let p = Point {
                lat: c1.lat + t * (c2.lat - c1.lat),
                lon: c1.lon + t * (c2.lon - c1.lon),
            };
            if p.distance_km(c1) <= r1 && p.distance_km(c2) <= r2 {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        out.push(Point { lat: 0.0, lon: 0.0 });
    }
    out.into_iter().map(Value::Point).collect()
}

fn instants(conds: &[&Condition], tz: Tz) -> Vec<Value> {
    let mut minutes: Vec<u16> = vec![12 * 60];
    for c in conds {
        if let Condition::TimeOfDay { start, end, .. } = c {
            for m in [start.minutes(), end.minutes()] {
                minutes.push(m % 1440);
                minutes.push((m + 1440 - 1) % 1440);
            }
        }
    }
    minutes.sort_unstable();
    minutes.dedup();
    let (y, mo, d) = SAMPLE_WEEK_MONDAY;
    let Some(monday) = NaiveDate::from_ymd_opt(y, mo, d) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for day in 0..7 {
        let date = monday + Duration::days(day);
        for &m in &minutes {
            let Some(naive) = date.and_hms_opt(u32::from(m / 60), u32::from(m % 60), 0) else {
                continue;
            };
            // A local minute skipped by a DST change does not exist: nothing to test.
            if let Some(t) = tz.from_local_datetime(&naive).earliest() {
                out.push(Value::Instant(t.fixed_offset()));
            }
        }
    }
    out
}

/// What the visitor wants after seeing one candidate request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Look at requests that know more than this one.
    Descend,
    /// Every request that knows more than this one gives the same results: skip them.
    Prune,
    /// Found what was sought: end the search.
    Stop,
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Candidate requests evaluated.
    pub evaluated: usize,
    /// The whole space was covered (visited or soundly pruned) without reaching the cap.
    pub complete: bool,
    /// The visitor asked to stop.
    pub stopped: bool,
}

// Known-attribute masks are `u64`s with one bit per attribute.
const _: () = assert!(Attribute::ALL.len() <= 64);

/// The bit of an attribute in a known-attributes mask.
pub fn attr_bit(a: Attribute) -> u64 {
    1u64 << (a as u32)
}

/// The attributes whose bits are set in `mask`, in schema order.
pub fn mask_attributes(mask: u64) -> impl Iterator<Item = Attribute> {
    Attribute::ALL
        .iter()
        .copied()
        .filter(move |a| mask & attr_bit(*a) != 0)
}

struct Dfs<'a, F> {
    cands: &'a [Candidates],
    with_unknown: bool,
    budget: usize,
    evaluated: usize,
    capped: bool,
    stopped: bool,
    req: Request,
    mask: u64,
    visit: F,
}

impl<F: FnMut(&Request, u64) -> Step> Dfs<'_, F> {
    /// Explores attribute `i` onwards below the current request (already visited).
    /// Returns false when the search must end.
    fn walk(&mut self, i: usize) -> bool {
        let Some(c) = self.cands.get(i) else {
            return true;
        };
        if self.with_unknown && !self.walk(i + 1) {
            return false;
        }
        let bit = attr_bit(c.attribute);
        for k in 0..c.known_len() {
            if self.evaluated >= self.budget {
                self.capped = true;
                return false;
            }
            // Candidate values were validated when they were collected.
            let _ = self.req.set(c.attribute, Some(c.known_at(k).clone()));
            self.mask |= bit;
            self.evaluated += 1;
            match (self.visit)(&self.req, self.mask) {
                Step::Stop => {
                    self.stopped = true;
                    return false;
                }
                Step::Prune => {}
                Step::Descend => {
                    if !self.walk(i + 1) {
                        return false;
                    }
                }
            }
        }
        let _ = self.req.set(c.attribute, None);
        self.mask &= !bit;
        true
    }
}

/// Depth-first search of the product of the candidate lists, pruned by the visitor.
///
/// The visitor sees each candidate request with the mask of its known attributes. The
/// all-unknown request comes first. With `with_unknown`, every attribute is tried
/// unknown first and then with each known value; without it, only requests whose
/// later attributes are still unassigned or assigned known values are seen (use it when
/// unknown values cannot matter, as for "is this ever TRUE?"). Stops after `budget`
/// evaluations.
pub fn depth_first(
    cands: &[Candidates],
    with_unknown: bool,
    budget: usize,
    visit: impl FnMut(&Request, u64) -> Step,
) -> Outcome {
    let mut dfs = Dfs {
        cands,
        with_unknown,
        budget,
        evaluated: 0,
        capped: false,
        stopped: false,
        req: Request::default(),
        mask: 0,
        visit,
    };
    if budget == 0 {
        return Outcome {
            evaluated: 0,
            complete: false,
            stopped: false,
        };
    }
    dfs.evaluated = 1;
    let root = Request::default();
    match (dfs.visit)(&root, 0) {
        Step::Stop => dfs.stopped = true,
        Step::Prune => {}
        Step::Descend => {
            dfs.walk(0);
        }
    }
    Outcome {
        evaluated: dfs.evaluated,
        complete: !dfs.capped && !dfs.stopped,
        stopped: dfs.stopped,
    }
}

/// A small deterministic pseudo-random generator (xorshift64*), so capped searches are
/// reproducible without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A deterministic subset of the product for when it is too large to cover: every
/// attribute varied alone from the all-unknown request, then every pair of attributes,
/// then pseudo-random whole requests (each attribute unknown or one of its values),
/// until `budget` evaluations. The visitor's [`Step::Prune`] is ignored here; only
/// [`Step::Stop`] matters. Never `complete`.
pub fn staged(
    cands: &[Candidates],
    budget: usize,
    mut visit: impl FnMut(&Request, u64) -> Step,
) -> Outcome {
    let mut evaluated = 0;
    let mut run = |req: &Request, mask: u64, evaluated: &mut usize| -> Option<bool> {
        if *evaluated >= budget {
            return None;
        }
        *evaluated += 1;
        Some(visit(req, mask) == Step::Stop)
    };
    let done = |stopped: bool, evaluated: usize| Outcome {
        evaluated,
        complete: false,
        stopped,
    };
    // Singles.
    for c in cands {
        for v in c.known() {
            let mut req = Request::default();
            let _ = req.set(c.attribute, Some(v.clone()));
            match run(&req, attr_bit(c.attribute), &mut evaluated) {
                None => return done(false, evaluated),
                Some(true) => return done(true, evaluated),
                Some(false) => {}
            }
        }
    }
    // Pairs.
    for (i, a) in cands.iter().enumerate() {
        for b in &cands[i + 1..] {
            for va in a.known() {
                for vb in b.known() {
                    let mut req = Request::default();
                    let _ = req.set(a.attribute, Some(va.clone()));
                    let _ = req.set(b.attribute, Some(vb.clone()));
                    let mask = attr_bit(a.attribute) | attr_bit(b.attribute);
                    match run(&req, mask, &mut evaluated) {
                        None => return done(false, evaluated),
                        Some(true) => return done(true, evaluated),
                        Some(false) => {}
                    }
                }
            }
        }
    }
    // Pseudo-random whole requests.
    if cands.is_empty() {
        return done(false, evaluated);
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    loop {
        let mut req = Request::default();
        let mut mask = 0;
        for c in cands {
            let k = rng.below(c.values.len());
            if let Some(v) = &c.values[k] {
                let _ = req.set(c.attribute, Some(v.clone()));
                mask |= attr_bit(c.attribute);
            }
        }
        match run(&req, mask, &mut evaluated) {
            None => return done(false, evaluated),
            Some(true) => return done(true, evaluated),
            Some(false) => {}
        }
    }
}

/// Clears, one by one, every known attribute of `req` whose removal keeps `keep` true
/// (greedy, in schema order), so an example shows only what matters. Returns the
/// smaller request, its mask and the number of evaluations spent.
pub fn minimise(
    req: &Request,
    mask: u64,
    mut keep: impl FnMut(&Request) -> bool,
) -> (Request, u64, usize) {
    let mut req = req.clone();
    let mut mask = mask;
    let mut spent = 0;
    for a in mask_attributes(mask).collect::<Vec<_>>() {
        let mut trial = req.clone();
        let _ = trial.set(a, None);
        spent += 1;
        if keep(&trial) {
            req = trial;
            mask &= !attr_bit(a);
        }
    }
    (req, mask, spent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{CmpOp, DomainMatch};
    use crate::value::TimeOfDay;
    use chrono::{Datelike, Timelike};

    const TZ: Tz = chrono_tz::Asia::Tokyo;

    fn known(attr: Attribute, conds: &[Condition]) -> Vec<Value> {
        let refs: Vec<&Condition> = conds.iter().collect();
        boundary_values(attr, &refs, TZ)
    }

    fn reduced(attr: Attribute, conds: &[Condition]) -> Vec<Value> {
        let refs: Vec<&Condition> = conds.iter().collect();
        candidates_for(attr, &refs, TZ)
            .into_iter()
            .flatten()
            .collect()
    }

    #[test]
    fn unknown_comes_first_and_only_mentioned_attributes_appear() {
        let r = Rule::And(vec![
            Rule::Atom(Condition::Eq(
                Attribute::RiskSuspicious,
                Literal::Bool(true),
            )),
            Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Bool(true))),
        ]);
        let c = candidates(&[&r], TZ);
        let attrs: Vec<Attribute> = c.iter().map(|c| c.attribute).collect();
        assert_eq!(attrs, vec![Attribute::AuthMfa, Attribute::RiskSuspicious]);
        for c in &c {
            assert_eq!(c.values[0], None);
            assert_eq!(c.values.len(), 3);
        }
    }

    #[test]
    fn numbers_cover_both_sides_of_close_literals() {
        let v = known(
            Attribute::RiskScore,
            &[
                Condition::Compare(Attribute::RiskScore, CmpOp::Ge, Literal::Num(0.5)),
                Condition::Compare(Attribute::RiskScore, CmpOp::Lt, Literal::Num(0.505)),
            ],
        );
        let nums: Vec<f64> = v
            .iter()
            .map(|v| match v {
                Value::Num(n) => *n,
                _ => panic!("{v:?}"),
            })
            .collect();
        assert!(nums.iter().any(|n| *n > 0.5 && *n < 0.505), "{nums:?}");
        assert!(nums.iter().any(|n| *n < 0.5));
        assert!(nums.iter().any(|n| *n > 0.505));
        assert!(nums.iter().all(|n| (0.0..=1.0).contains(n)));
        assert!(nums.contains(&0.5));
    }

    #[test]
    fn ips_and_versions_and_countries() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        let v = known(
            Attribute::SourceIp,
            &[Condition::InCidr(Attribute::SourceIp, vec![net])],
        );
        for s in ["10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"] {
            let ip: IpAddr = s.parse().unwrap();
            assert!(v.contains(&Value::Ip(ip)), "{s} in {v:?}");
        }
        assert!(v.iter().any(|v| matches!(v, Value::Ip(IpAddr::V6(_)))));

        let ver = |s: &str| Value::Version(s.parse().unwrap());
        let v = known(
            Attribute::DeviceOsVersion,
            &[Condition::Compare(
                Attribute::DeviceOsVersion,
                CmpOp::Ge,
                Literal::Version("10.0".parse().unwrap()),
            )],
        );
        assert!(v.contains(&ver("10.0")) && v.contains(&ver("10.1")));
        // Something below 10.0 although its last component is 0.
        assert!(v
            .iter()
            .any(|x| matches!(x, Value::Version(x) if *x < "10.0".parse::<Version>().unwrap())));

        let both = known(
            Attribute::SourceCountry,
            &[Condition::In(
                Attribute::SourceCountry,
                vec![
                    Literal::Country("JP".parse().unwrap()),
                    Literal::Country("US".parse().unwrap()),
                ],
            )],
        );
        assert_eq!(both.len(), 3, "JP, US and one outsider: {both:?}");
    }

    #[test]
    fn domains_and_times_and_points() {
        let zone: Domain = "deepseek.com".parse().unwrap();
        let v = known(
            Attribute::DestinationDomain,
            &[Condition::Domain(
                Attribute::DestinationDomain,
                DomainMatch::InZone,
                zone.clone(),
            )],
        );
        let names: Vec<String> = v
            .iter()
            .map(|v| match v {
                Value::Domain(d) => d.to_string(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            names,
            vec!["deepseek.com", "sub.deepseek.com", "other-deepseek.invalid"]
        );

        let v = known(
            Attribute::Time,
            &[Condition::TimeOfDay {
                attr: Attribute::Time,
                start: TimeOfDay::new(9, 0).unwrap(),
                end: TimeOfDay::new(24, 0).unwrap(),
            }],
        );
        // 7 days x {00:00, 08:59, 09:00, 12:00, 23:59}.
        assert_eq!(v.len(), 35);
        let Value::Instant(first) = &v[0] else {
            panic!()
        };
        assert_eq!(first.to_rfc3339(), "2026-11-23T00:00:00+09:00");
        let Value::Instant(t) = &v[1] else { panic!() };
        assert_eq!((t.hour(), t.minute()), (8, 59));

        let center = Point {
            lat: 35.681,
            lon: 139.767,
        };
        let v = known(
            Attribute::DeviceLocation,
            &[Condition::Within {
                attr: Attribute::DeviceLocation,
                center,
                radius_km: 5.0,
            }],
        );
        let ds: Vec<f64> = v
            .iter()
            .map(|v| match v {
                Value::Point(p) => p.distance_km(center),
                _ => panic!(),
            })
            .collect();
        assert!(ds.iter().any(|d| *d > 4.9 && *d <= 5.0), "{ds:?}");
        assert!(ds.iter().any(|d| *d > 5.0 && *d < 5.1), "{ds:?}");
    }

    #[test]
    fn candidates_keep_one_value_per_behaviour() {
        let day = |s, e| Condition::TimeOfDay {
            attr: Attribute::Time,
            start: TimeOfDay::new(s, 0).unwrap(),
            end: TimeOfDay::new(e, 0).unwrap(),
        };
        let conds = [
            day(9, 18),
            day(9, 17),
            Condition::Weekday(Attribute::Time, crate::value::WeekdaySet::WEEKDAYS),
        ];
        let all = known(Attribute::Time, &conds);
        assert_eq!(
            all.len(),
            7 * 7,
            "7 days x 08:59 09:00 12:00 16:59 17:00 17:59 18:00"
        );
        let few = reduced(Attribute::Time, &conds);
        // (in 9-18, in 9-17, weekday): TTT TFT FFT TTF TFF FFF.
        assert_eq!(few.len(), 6, "{few:?}");
        let hm: Vec<(u32, u32, u32)> = few
            .iter()
            .map(|v| match v {
                Value::Instant(t) => {
                    let t = t.with_timezone(&TZ);
                    (t.weekday().num_days_from_monday(), t.hour(), t.minute())
                }
                _ => panic!(),
            })
            .collect();
        // The first value of each behaviour, in generation order (Monday first).
        assert_eq!(
            hm,
            vec![
                (0, 8, 59),
                (0, 9, 0),
                (0, 17, 0),
                (5, 8, 59),
                (5, 9, 0),
                (5, 17, 0)
            ]
        );
        // Every behaviour of the full list is still represented.
        let refs: Vec<&Condition> = conds.iter().collect();
        let sig = |v: &Value| {
            let mut r = Request::default();
            r.set(Attribute::Time, Some(v.clone())).unwrap();
            refs.iter()
                .map(|c| eval_condition(c, &r, TZ))
                .collect::<Vec<_>>()
        };
        for v in &all {
            assert!(few.iter().any(|w| sig(w) == sig(v)));
        }
    }

    #[test]
    fn depth_first_is_complete_and_staged_respects_the_budget() {
        let r = Rule::And(vec![
            Rule::Atom(Condition::Eq(Attribute::AuthMfa, Literal::Bool(true))),
            Rule::Atom(Condition::Eq(
                Attribute::RiskSuspicious,
                Literal::Bool(false),
            )),
        ]);
        let c = candidates(&[&r], TZ);
        let mut seen = Vec::new();
        let out = depth_first(&c, true, 1000, |req, _| {
            seen.push(req.clone());
            Step::Descend
        });
        // 3 x 3 requests, each seen once.
        assert!(out.complete && !out.stopped);
        assert_eq!(out.evaluated, 9);
        assert_eq!(seen.len(), 9);
        for (i, a) in seen.iter().enumerate() {
            assert!(!seen[i + 1..].contains(a));
        }
        let out = depth_first(&c, true, 4, |_, _| Step::Descend);
        assert!(!out.complete);
        assert_eq!(out.evaluated, 4);
        let out = staged(&c, 50, |_, _| Step::Descend);
        assert_eq!(out.evaluated, 50);
        assert!(!out.complete);
    }
}
