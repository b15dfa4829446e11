//! Access-log anomaly detection: each new access is compared with the same user's
//! last N accesses (newest first) and every finding is explained in Japanese.
//!
//! Rules (all deterministic, no I/O):
//!
//! | code | finding when | weight |
//! |---|---|---|
//! | `new_country` | the history has a known country and none of its records is from this country | 0.40 |
//! | `impossible_travel` | the previous located access is so far away that getting here in time needs more than `impossible_travel_kmh` | 0.90 |
//! | `new_device` | the history has device ids and this device id is not among them | 0.30 |
//! | `unusual_hour` | at least `unusual_hour_min_history` records, and this access's hour (Japan time) is more than 3 hours from every hour seen before (circularly: 23時台 and 1時台 are 2 hours apart) | 0.20 |
//! | `denial_burst` | at least `denial_burst` denials in the history within `denial_window_minutes` before this access | 0.40 |
//!
//! The score combines the findings as independent evidence,
//! `score = 1 - Π(1 - weight)`, so one finding alone never exceeds its weight and
//! every further finding raises it. An access is **suspicious** when the score is
//! at least `suspicious_score` (0.5) or when it is impossible travel. With the
//! default weights that means: impossible travel alone; or any two of new country,
//! new device and denial burst; or unusual hour together with new country or a
//! denial burst. A single new country, new device, unusual hour or denial burst is
//! reported (and recorded) but not suspicious by itself.
//!
//! An empty history yields no findings: a user's first access is not suspicious.
//!
//! Impossible travel uses `device.location` when both accesses carry one, else the
//! representative points of the two countries from a small built-in table (about
//! 80 common countries: the geographic centre, or for very large countries the
//! centre of population). A country missing from the table gives no finding rather
//! than a guess, and so do distances under [`MIN_TRAVEL_KM`] (location noise,
//! neighbouring countries).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use pdp_server::detector::{Detector, Observation};
//! let d = Detector::default();
//! let now = Utc.with_ymd_and_hms(2026, 11, 24, 1, 15, 0).unwrap();
//! let obs = Observation::new("tanaka", now).with_country("US");
//! let history: Vec<pdp_server::model::AccessRecord> = Vec::new();
//! let a = d.assess(&obs, &history);
//! assert!(a.findings.is_empty() && !a.suspicious);
//! ```

use std::net::IpAddr;

use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use policy_core::decision::Effect;
use policy_core::value::{CountryCode, Point};
use serde::{Deserialize, Serialize};

use crate::model::AccessRecord;

/// Weight of `new_country`.
pub const WEIGHT_NEW_COUNTRY: f64 = 0.40;
/// Weight of `impossible_travel` (suspicious on its own whatever the weight).
pub const WEIGHT_IMPOSSIBLE_TRAVEL: f64 = 0.90;
/// Weight of `new_device`.
pub const WEIGHT_NEW_DEVICE: f64 = 0.30;
/// Weight of `unusual_hour`.
pub const WEIGHT_UNUSUAL_HOUR: f64 = 0.20;
/// Weight of `denial_burst`.
pub const WEIGHT_DENIAL_BURST: f64 = 0.40;

/// Distances below this (km) never count as impossible travel: GPS and IP
/// geolocation noise, and neighbouring countries whose centres are close.
pub const MIN_TRAVEL_KM: f64 = 500.0;

/// An hour of day more than this many hours (circularly) from every hour seen
/// before is unusual.
pub const UNUSUAL_HOUR_GAP: u32 = 3;

/// Japan Standard Time (no daylight saving), in which hours of day are read.
fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// The detector's settings (the `[detector]` table of the server's TOML config);
/// every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// How many of the user's latest accesses are compared (10).
    pub history: usize,
    /// Travel faster than this (km/h) between two accesses is impossible (900,
    /// about an airliner's cruising speed).
    pub impossible_travel_kmh: f64,
    /// The unusual-hour rule needs at least this many earlier accesses (5).
    pub unusual_hour_min_history: usize,
    /// This many denials within `denial_window_minutes` is a burst (5).
    pub denial_burst: usize,
    /// The window of the denial-burst rule, in minutes (10).
    pub denial_window_minutes: u32,
    /// Score at or above which an access is suspicious (0.5).
    pub suspicious_score: f64,
    /// Deny suspicious accesses outright (false: only set `risk` and alert).
    pub block_when_suspicious: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            history: 10,
            impossible_travel_kmh: 900.0,
            unusual_hour_min_history: 5,
            denial_burst: 5,
            denial_window_minutes: 10,
            suspicious_score: 0.5,
            block_when_suspicious: false,
        }
    }
}

/// The access being assessed. It borrows from the request context it was read
/// from (assessing one access copies nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    /// The user's id.
    pub user: &'a str,
    /// When the access happened.
    pub time: DateTime<Utc>,
    /// Source country (ISO 3166-1 alpha-2), if known.
    pub country: Option<&'a str>,
    /// Source IP address, if known.
    pub source_ip: Option<IpAddr>,
    /// Device id, if known.
    pub device: Option<&'a str>,
    /// The device's reported location, if any.
    pub location: Option<Point>,
}

impl<'a> Observation<'a> {
    /// An observation with only the user and the time known.
    pub fn new(user: &'a str, time: DateTime<Utc>) -> Observation<'a> {
        Observation {
            user,
            time,
            country: None,
            source_ip: None,
            device: None,
            location: None,
        }
    }

    /// Sets the source country.
    pub fn with_country(mut self, country: &'a str) -> Observation<'a> {
        self.country = Some(country);
        self
    }

    /// Sets the device id.
    pub fn with_device(mut self, device: &'a str) -> Observation<'a> {
        self.device = Some(device);
        self
    }

    /// Sets the device location.
    pub fn with_location(mut self, location: Point) -> Observation<'a> {
        self.location = Some(location);
        self
    }

    /// Sets the source IP address.
    pub fn with_source_ip(mut self, ip: IpAddr) -> Observation<'a> {
        self.source_ip = Some(ip);
        self
    }

    /// Reads an (enriched) request context; `None` when it names no user.
    /// `time` is the server's clock, not the PEP's claim.
    pub fn from_request(
        req: &'a policy_core::context::Request,
        time: DateTime<Utc>,
    ) -> Option<Observation<'a>> {
        Some(Observation {
            user: req.user.id.as_deref()?,
            time,
            country: req.source.country.as_ref().map(|c| c.as_str()),
            source_ip: req.source.ip,
            device: req.device.id.as_deref(),
            location: req.device.location,
        })
    }
}

/// What the detector needs from one earlier access. Implemented for the access
/// log's [`AccessRecord`]; a server that also keeps device locations can
/// implement it for its own type so impossible travel uses them.
pub trait PastAccess {
    /// When.
    fn time(&self) -> DateTime<Utc>;
    /// Whose access (records of another user are ignored).
    fn user(&self) -> Option<&str>;
    /// Source country code.
    fn country(&self) -> Option<&str>;
    /// Device id.
    fn device(&self) -> Option<&str>;
    /// True when the access was denied.
    fn denied(&self) -> bool;
    /// The device's reported location (the access log does not keep one).
    fn location(&self) -> Option<Point> {
        None
    }
}

impl PastAccess for AccessRecord {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
    fn denied(&self) -> bool {
        self.decision == policy_core::decision::Effect::Deny
    }
}

/// What the detector needs of one earlier access, kept in memory per user. Unlike
/// the access log it also keeps the device's reported location, so impossible
/// travel can use it.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    /// When.
    pub time: DateTime<Utc>,
    /// Source country.
    pub country: Option<CountryCode>,
    /// Device id.
    pub device: Option<String>,
    /// Whether it was denied.
    pub denied: bool,
    /// The device's reported location.
    pub location: Option<Point>,
}

impl Past {
    /// From an access record (which keeps no location).
    pub fn from_record(r: &AccessRecord, location: Option<Point>) -> Past {
        Past {
            time: r.time,
            country: r.country.as_deref().and_then(|c| c.parse().ok()),
            device: r.device.clone(),
            denied: r.decision == Effect::Deny,
            location,
        }
    }
}

impl PastAccess for Past {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn user(&self) -> Option<&str> {
        None
    }
    fn country(&self) -> Option<&str> {
        self.country.as_ref().map(CountryCode::as_str)
    }
    fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
    fn denied(&self) -> bool {
        self.denied
    }
    fn location(&self) -> Option<Point> {
        self.location
    }
}

/// One reason an access looks unusual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `new_country`, `impossible_travel`, `new_device`, `unusual_hour` or
    /// `denial_burst`.
    pub code: &'static str,
    /// An explanation an employee understands.
    pub message_ja: String,
}

/// The detector's conclusion about one access.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// What was found, in rule order.
    pub findings: Vec<Finding>,
    /// 0..=1; `1 - Π(1 - weight)` over the findings.
    pub score: f64,
    /// Whether the access counts as suspicious.
    pub suspicious: bool,
}

impl Assessment {
    /// The `risk` attributes of the access's own request context.
    pub fn risk(&self) -> policy_core::context::Risk {
        policy_core::context::Risk {
            suspicious: Some(self.suspicious),
            score: Some(self.score),
        }
    }

    /// The finding codes (for the access log's `anomalies`).
    pub fn codes(&self) -> Vec<String> {
        self.findings.iter().map(|f| f.code.to_string()).collect()
    }

    /// True when a finding with this code is present.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}

/// The anomaly detector.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    config: DetectorConfig,
}

impl Detector {
    /// A detector with these settings.
    pub fn new(config: DetectorConfig) -> Detector {
        Detector { config }
    }

    /// The settings.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// True when this assessment should deny the access (configured to block and
    /// the access is suspicious).
    pub fn should_block(&self, assessment: &Assessment) -> bool {
        self.config.block_when_suspicious && assessment.suspicious
    }

    /// Assesses `current` against the user's earlier accesses, newest first (the
    /// current access itself must not be among them). Only the first
    /// `config.history` records of the user are considered.
    pub fn assess<H: PastAccess>(&self, current: &Observation, history: &[H]) -> Assessment {
        let history: Vec<&H> = history
            .iter()
            .filter(|h| h.user().is_none_or(|u| u == current.user))
            .take(self.config.history)
            .collect();
        let mut findings = Vec::new();
        let mut weights = Vec::new();
        let mut push = |f: Option<Finding>, w: f64| {
            if let Some(f) = f {
                findings.push(f);
                weights.push(w);
            }
        };
        if !history.is_empty() {
            push(new_country(current, &history), WEIGHT_NEW_COUNTRY);
            push(
                self.impossible_travel(current, &history),
                WEIGHT_IMPOSSIBLE_TRAVEL,
            );
            push(new_device(current, &history), WEIGHT_NEW_DEVICE);
            push(self.unusual_hour(current, &history), WEIGHT_UNUSUAL_HOUR);
            push(self.denial_burst(current, &history), WEIGHT_DENIAL_BURST);
        }
        let score = combine(&weights);
        let suspicious = score >= self.config.suspicious_score
            || findings.iter().any(|f| f.code == "impossible_travel");
        Assessment {
            findings,
            score,
            suspicious,
        }
    }

    fn impossible_travel<H: PastAccess>(
        &self,
        current: &Observation,
        history: &[&H],
    ) -> Option<Finding> {
        // The most recent earlier access whose whereabouts are known.
        let prev = history
            .iter()
            .find(|h| h.location().is_some() || h.country().is_some())?;
        let distance = match (current.location, prev.location()) {
            (Some(a), Some(b)) => a.distance_km(b),
            _ => {
                let (cur, old) = (current.country?, prev.country()?);
                if cur.eq_ignore_ascii_case(old) {
                    return None;
                }
                centroid(cur)?.distance_km(centroid(old)?)
            }
        };
        if distance < MIN_TRAVEL_KM {
            return None;
        }
        let elapsed = current.time - prev.time();
        let hours = elapsed.num_milliseconds() as f64 / 3_600_000.0;
        let speed = if hours > 0.0 {
            distance / hours
        } else {
            f64::INFINITY
        };
        if speed <= self.config.impossible_travel_kmh {
            return None;
        }
        let place = |code: Option<&str>| code.map(country_name).unwrap_or_default();
        let prev_place = place(prev.country());
        let cur_place = place(current.country);
        let prev_desc = if prev_place.is_empty() {
            format!("前回のアクセス（{}）", jst_time(prev.time()))
        } else {
            format!(
                "前回の{prev_place}からのアクセス（{}）",
                jst_time(prev.time())
            )
        };
        let now_desc = if cur_place.is_empty() {
            format!("約{distance:.0}km離れた場所からアクセスがありました")
        } else {
            format!("{cur_place}からアクセスがありました（約{distance:.0}km）")
        };
        let message_ja = format!(
            "{prev_desc}の{}に{now_desc}。この間に移動するには時速{}が必要で、現実には移動できない速さです",
            elapsed_ja(elapsed),
            speed_ja(speed),
        );
        Some(Finding {
            code: "impossible_travel",
            message_ja,
        })
    }

    fn unusual_hour<H: PastAccess>(
        &self,
        current: &Observation,
        history: &[&H],
    ) -> Option<Finding> {
        if history.len() < self.config.unusual_hour_min_history.max(1) {
            return None;
        }
        let hour = current.time.with_timezone(&jst()).hour();
        let mut seen = [false; 24];
        for h in history {
            seen[h.time().with_timezone(&jst()).hour() as usize] = true;
        }
        let near = (0..24u32).any(|s| {
            let d = s.abs_diff(hour);
            seen[s as usize] && d.min(24 - d) <= UNUSUAL_HOUR_GAP
        });
        if near {
            return None;
        }
        Some(Finding {
            code: "unusual_hour",
            message_ja: format!(
                "普段アクセスのない時間帯（日本時間{hour}時台）のアクセスです（これまでのアクセスは{}）",
                hours_ja(&seen)
            ),
        })
    }

    fn denial_burst<H: PastAccess>(
        &self,
        current: &Observation,
        history: &[&H],
    ) -> Option<Finding> {
        if self.config.denial_burst == 0 {
            return None;
        }
        let since = current.time - Duration::minutes(i64::from(self.config.denial_window_minutes));
        let n = history
            .iter()
            .filter(|h| h.denied() && h.time() >= since && h.time() <= current.time)
            .count();
        if n < self.config.denial_burst {
            return None;
        }
        Some(Finding {
            code: "denial_burst",
            message_ja: format!(
                "直近{}分間にこのアカウントのアクセスが{n}回拒否されています",
                self.config.denial_window_minutes
            ),
        })
    }
}

fn new_country<H: PastAccess>(current: &Observation, history: &[&H]) -> Option<Finding> {
    let cur = current.country?;
    let mut known = history.iter().filter_map(|h| h.country()).peekable();
    known.peek()?;
    if known.any(|c| c.eq_ignore_ascii_case(cur)) {
        return None;
    }
    Some(Finding {
        code: "new_country",
        message_ja: format!(
            "これまでアクセスのなかった国（{}）からのアクセスです",
            country_name(cur)
        ),
    })
}

fn new_device<H: PastAccess>(current: &Observation, history: &[&H]) -> Option<Finding> {
    let cur = current.device?;
    let mut known = history.iter().filter_map(|h| h.device()).peekable();
    known.peek()?;
    if known.any(|d| d == cur) {
        return None;
    }
    Some(Finding {
        code: "new_device",
        message_ja: format!("これまで使われたことのない端末（{cur}）からのアクセスです"),
    })
}

/// `1 - Π(1 - w)`, clamped to 0..=1.
fn combine(weights: &[f64]) -> f64 {
    let keep: f64 = weights.iter().map(|w| 1.0 - w.clamp(0.0, 1.0)).product();
    (1.0 - keep).clamp(0.0, 1.0)
}

/// The country's Japanese name (「アメリカ合衆国」), or the code as given when it is
/// not an assigned code.
pub fn country_name(code: &str) -> String {
    policy_core::country::by_code(code)
        .map(|c| c.name_ja.to_string())
        .unwrap_or_else(|| code.to_string())
}

fn jst_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&jst())
        .format("%-m月%-d日 %H:%M 日本時間")
        .to_string()
}

fn elapsed_ja(d: Duration) -> String {
    let mins = d.num_minutes();
    if mins < 1 {
        "直後".to_string()
    } else if mins < 60 {
        format!("{mins}分後")
    } else if mins % 60 == 0 {
        format!("{}時間後", mins / 60)
    } else {
        format!("{}時間{}分後", mins / 60, mins % 60)
    }
}

fn speed_ja(kmh: f64) -> String {
    if kmh.is_finite() {
        format!("約{kmh:.0}km")
    } else {
        "無限大".to_string()
    }
}

/// The hours seen, as runs: 「9〜12時台、18時台」.
fn hours_ja(seen: &[bool; 24]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut h = 0;
    while h < 24 {
        if !seen[h] {
            h += 1;
            continue;
        }
        let start = h;
        while h + 1 < 24 && seen[h + 1] {
            h += 1;
        }
        runs.push(if start == h {
            format!("{start}時台")
        } else {
            format!("{start}〜{h}時台")
        });
        h += 1;
    }
    runs.join("、")
}

/// A representative point for a country: the approximate geographic centre, or
/// for very large countries (US, CA, RU, CN, AU, BR, IN, ...) the approximate
/// centre of population, which is where accesses come from. `None` for countries
/// not in the table (no guess).
pub fn centroid(code: &str) -> Option<Point> {
    let code = code.to_ascii_uppercase();
    CENTROIDS
        .binary_search_by(|(c, _, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|i| Point {
            lat: CENTROIDS[i].1,
            lon: CENTROIDS[i].2,
        })
}

/// (code, latitude, longitude), sorted by code.
const CENTROIDS: &[(&str, f64, f64)] = &[
    ("AE", 23.4, 53.8),
    ("AR", -34.0, -61.0),
    ("AT", 47.5, 14.6),
    ("AU", -33.5, 147.0),
    ("BD", 23.7, 90.4),
    ("BE", 50.5, 4.5),
    ("BG", 42.7, 25.5),
    ("BR", -19.0, -46.0),
    ("BY", 53.7, 28.0),
    ("CA", 46.0, -80.0),
    ("CH", 46.8, 8.2),
    ("CL", -33.5, -70.7),
    ("CN", 32.0, 113.0),
    ("CO", 4.6, -74.3),
    ("CZ", 49.8, 15.5),
    ("DE", 51.2, 10.4),
    ("DK", 56.3, 9.5),
    ("EE", 58.6, 25.0),
    ("EG", 26.8, 30.8),
    ("ES", 40.5, -3.7),
    ("FI", 61.9, 25.7),
    ("FR", 46.2, 2.2),
    ("GB", 53.0, -1.5),
    ("GR", 39.1, 21.8),
    ("HK", 22.3, 114.2),
    ("HR", 45.1, 15.2),
    ("HU", 47.2, 19.5),
    ("ID", -6.5, 110.0),
    ("IE", 53.4, -8.2),
    ("IL", 31.0, 34.9),
    ("IN", 23.0, 79.0),
    ("IR", 32.4, 53.7),
    ("IS", 64.9, -19.0),
    ("IT", 41.9, 12.6),
    ("JP", 36.2, 138.3),
    ("KE", -0.0, 37.9),
    ("KH", 12.6, 104.9),
    ("KP", 40.3, 127.5),
    ("KR", 36.5, 127.9),
    ("KZ", 48.0, 67.0),
    ("LA", 19.9, 102.5),
    ("LK", 7.9, 80.8),
    ("LT", 55.2, 23.9),
    ("LU", 49.8, 6.1),
    ("LV", 56.9, 24.6),
    ("MA", 31.8, -7.1),
    ("MM", 21.9, 95.9),
    ("MN", 47.9, 106.9),
    ("MO", 22.2, 113.5),
    ("MX", 21.0, -100.0),
    ("MY", 4.2, 102.0),
    ("NG", 9.1, 8.7),
    ("NL", 52.1, 5.3),
    ("NO", 60.5, 8.5),
    ("NP", 28.4, 84.1),
    ("NZ", -40.9, 174.9),
    ("PE", -9.2, -75.0),
    ("PH", 12.9, 121.8),
    ("PK", 30.4, 69.3),
    ("PL", 51.9, 19.1),
    ("PT", 39.4, -8.2),
    ("QA", 25.4, 51.2),
    ("RO", 45.9, 25.0),
    ("RS", 44.0, 21.0),
    ("RU", 56.0, 44.0),
    ("SA", 23.9, 45.1),
    ("SE", 60.1, 18.6),
    ("SG", 1.35, 103.8),
    ("SI", 46.2, 15.0),
    ("SK", 48.7, 19.7),
    ("TH", 15.9, 101.0),
    ("TR", 39.0, 35.2),
    ("TW", 23.7, 121.0),
    ("UA", 48.4, 31.2),
    ("US", 37.5, -92.5),
    ("VE", 6.4, -66.6),
    ("VN", 16.0, 107.0),
    ("ZA", -28.5, 26.0),
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap()
    }

    fn past(time: DateTime<Utc>) -> Past {
        Past {
            time,
            country: None,
            device: None,
            denied: false,
            location: None,
        }
    }

    #[test]
    fn table_is_sorted_valid_and_large_enough() {
        assert!(CENTROIDS.len() >= 60);
        for w in CENTROIDS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (c, lat, lon) in CENTROIDS {
            assert!(policy_core::country::by_code(c).is_some(), "{c}");
            assert!((-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon));
        }
        assert!(centroid("jp").is_some());
        assert!(centroid("TV").is_none());
    }

    #[test]
    fn combine_is_noisy_or() {
        assert_eq!(combine(&[]), 0.0);
        assert!((combine(&[0.4]) - 0.4).abs() < 1e-12);
        assert!((combine(&[0.4, 0.3]) - 0.58).abs() < 1e-12);
        assert!(combine(&[1.0, 0.2]) <= 1.0);
    }

    #[test]
    fn circular_hours() {
        // 23時台 seen often; 1時台 is 2 hours away circularly: not unusual.
        let d = Detector::default();
        let hist: Vec<Past> = (0..6).map(|i| past(t(14, i))).collect(); // 23:0x JST
        let cur = Observation::new("u", t(16, 30)); // 01:30 JST
        assert!(!d.assess(&cur, &hist).has("unusual_hour"));
        let cur = Observation::new("u", t(19, 30)); // 04:30 JST: 5 hours away
        let a = d.assess(&cur, &hist);
        assert!(a.has("unusual_hour"), "{a:?}");
        assert!(a.findings[0].message_ja.contains("4時台"), "{a:?}");
        assert!(a.findings[0].message_ja.contains("23時台"), "{a:?}");
    }

    #[test]
    fn hours_runs() {
        let mut seen = [false; 24];
        for h in [9, 10, 11, 12, 18] {
            seen[h] = true;
        }
        assert_eq!(hours_ja(&seen), "9〜12時台、18時台");
    }

    #[test]
    fn device_locations_take_precedence_over_countries() {
        let d = Detector::default();
        let tokyo = Point {
            lat: 35.68,
            lon: 139.77,
        };
        let sapporo = Point {
            lat: 43.06,
            lon: 141.35,
        };
        // Same country, 830 km apart in 20 minutes: impossible.
        let mut p = past(t(1, 0));
        p.country = Some("JP".parse().unwrap());
        p.location = Some(tokyo);
        let cur = Observation::new("u", t(1, 20))
            .with_country("JP")
            .with_location(sapporo);
        let a = d.assess(&cur, &[p]);
        assert!(a.has("impossible_travel") && a.suspicious, "{a:?}");
        // Same points four hours apart: a flight, fine.
        let mut p = past(t(1, 0));
        p.location = Some(tokyo);
        let cur = Observation::new("u", t(5, 0)).with_location(sapporo);
        assert!(!d.assess(&cur, &[p]).has("impossible_travel"));
    }

    #[test]
    fn elapsed_texts() {
        assert_eq!(elapsed_ja(Duration::seconds(20)), "直後");
        assert_eq!(elapsed_ja(Duration::minutes(15)), "15分後");
        assert_eq!(elapsed_ja(Duration::minutes(120)), "2時間後");
        assert_eq!(elapsed_ja(Duration::minutes(135)), "2時間15分後");
    }
}
