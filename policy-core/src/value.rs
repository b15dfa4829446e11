//! Typed values: the literals a rule compares against and the attribute values a
//! request carries.
//!
//! Every type here validates and normalises on construction (domains lower-cased and
//! turned into punycode, country codes checked against ISO 3166-1, versions split into
//! numbers), so the evaluator only ever compares ready-made values.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::country;

/// A malformed literal: what was expected and what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} として解釈できません: {given:?} ({why})")]
pub struct ValueError {
    /// The kind of value expected (「バージョン」, 「ドメイン名」, ...).
    pub kind: &'static str,
    /// The text that was given.
    pub given: String,
    /// Why it was rejected.
    pub why: &'static str,
}

impl ValueError {
    fn new(kind: &'static str, given: &str, why: &'static str) -> Self {
        ValueError {
            kind,
            given: given.to_string(),
            why,
        }
    }
}

/// A version made of dotted non-negative numbers, ordered numerically component by
/// component; missing trailing components count as zero (`10.0` == `10.0.0`).
#[derive(Debug, Clone)]
pub struct Version(Vec<u64>);

impl Version {
    /// The numeric components.
    pub fn parts(&self) -> &[u64] {
        &self.0
    }

    /// Builds a version from its components; empty input is refused.
    pub fn from_parts(parts: Vec<u64>) -> Option<Version> {
        (!parts.is_empty()).then_some(Version(parts))
    }
}

impl FromStr for Version {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        if s.is_empty() {
            return Err(ValueError::new("バージョン", s, "empty"));
        }
        let parts = s
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ValueError::new(
                        "バージョン",
                        s,
                        "expected dotted numbers like 10.0.22631",
                    ));
                }
                p.parse::<u64>()
                    .map_err(|_| ValueError::new("バージョン", s, "component too large"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version(parts))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.0.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// An ISO 3166-1 alpha-2 country code that is officially assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code as text (`"JP"`).
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The country's usual Japanese name (「日本」).
    pub fn name_ja(&self) -> &'static str {
        country::by_code(self.as_str())
            .map(|c| c.name_ja)
            .unwrap_or("不明な国")
    }
}

impl FromStr for CountryCode {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let c = country::by_code(s.trim()).ok_or_else(|| {
            ValueError::new(
                "国コード",
                s,
                "not an assigned ISO 3166-1 alpha-2 code (e.g. JP, US)",
            )
        })?;
        let b = c.code.as_bytes();
        Ok(CountryCode([b[0], b[1]]))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DNS domain name in canonical form: ASCII (punycode for IDN), lower case, no
/// trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` equals `zone` or is a subdomain of it.
    pub fn is_in_zone(&self, zone: &Domain) -> bool {
        self.0 == zone.0 || self.is_strict_subdomain_of(zone)
    }

    /// True when `self` is a subdomain of `zone` (at least one more label).
    pub fn is_strict_subdomain_of(&self, zone: &Domain) -> bool {
        self.0.len() > zone.0.len()
            && self.0.ends_with(zone.0.as_str())
            && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.'
    }
}

impl FromStr for Domain {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_suffix('.').unwrap_or(t);
        if t.is_empty() {
            return Err(ValueError::new("ドメイン名", s, "empty"));
        }
        let ascii = idna::domain_to_ascii(t)
            .map_err(|_| ValueError::new("ドメイン名", s, "not a valid (IDN) domain name"))?;
        if ascii.is_empty() || ascii.len() > 253 {
            return Err(ValueError::new("ドメイン名", s, "length out of range"));
        }
        for label in ascii.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(ValueError::new(
                    "ドメイン名",
                    s,
                    "labels must be letters, digits and inner hyphens",
                ));
            }
        }
        Ok(Domain(ascii))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point on the earth in degrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

impl Point {
    /// Checks the ranges of latitude and longitude.
    pub fn validate(self) -> Result<Point, ValueError> {
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(ValueError::new(
                "位置",
                &format!("{}, {}", self.lat, self.lon),
                "latitude must be within ±90 and longitude within ±180",
            ));
        }
        Ok(self)
    }

    /// Great-circle distance in kilometres (haversine on a sphere of radius 6371.0088 km,
    /// the IUGG mean radius; well within a geofence's precision).
    pub fn distance_km(self, other: Point) -> f64 {
        const R: f64 = 6371.0088;
        let (la1, la2) = (self.lat.to_radians(), other.lat.to_radians());
        let dla = la2 - la1;
        let dlo = (other.lon - self.lon).to_radians();
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * R * h.sqrt().min(1.0).asin()
    }
}

/// A time of day in minutes since midnight (0..1440), local to the policy's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// Builds a time from hours and minutes; `24:00` is allowed as the end of a day.
    pub fn new(hour: u32, minute: u32) -> Option<TimeOfDay> {
        let m = hour.checked_mul(60)?.checked_add(minute)?;
        (minute < 60 && m <= 1440).then_some(TimeOfDay(m as u16))
    }
    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A set of weekdays, Monday = bit 0 … Sunday = bit 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekdaySet(u8);

/// Short English names used in the canonical text, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Japanese names, Monday first.
pub const WEEKDAY_NAMES_JA: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];

impl WeekdaySet {
    /// Monday to Friday (平日).
    pub const WEEKDAYS: WeekdaySet = WeekdaySet(0b001_1111);
    /// Saturday and Sunday (土日).
    pub const WEEKEND: WeekdaySet = WeekdaySet(0b110_0000);

    /// Builds a set from a bit mask (bits above 6 are dropped).
    pub const fn from_bits(bits: u8) -> WeekdaySet {
        WeekdaySet(bits & 0x7f)
    }
    /// The bit mask.
    pub fn bits(self) -> u8 {
        self.0
    }
    /// True when the day (0 = Monday) is in the set.
    pub fn contains(self, day_from_monday: u32) -> bool {
        day_from_monday < 7 && self.0 & (1 << day_from_monday) != 0
    }
    /// The days in the set, Monday first, as 0-based indices.
    pub fn days(self) -> impl Iterator<Item = u32> {
        (0..7).filter(move |d| self.contains(*d))
    }
    /// True when no day is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("10.0.9") < v("10.0.22631"));
        assert_eq!(v("10.0"), v("10.0.0"));
        assert!("10..1".parse::<Version>().is_err());
        assert!("abc".parse::<Version>().is_err());
    }

    #[test]
    fn domains_normalise() {
        let d = |s: &str| s.parse::<Domain>().unwrap();
        assert_eq!(d("DeepSeek.COM."), d("deepseek.com"));
        assert_eq!(d("日本.jp").as_str(), "xn--wgv71a.jp");
        assert!(d("chat.deepseek.com").is_in_zone(&d("deepseek.com")));
        assert!(!d("notdeepseek.com").is_in_zone(&d("deepseek.com")));
        assert!(!d("deepseek.com").is_strict_subdomain_of(&d("deepseek.com")));
        assert!("bad domain".parse::<Domain>().is_err());
        assert!("".parse::<Domain>().is_err());
    }

    #[test]
    fn distance_tokyo_osaka() {
        let tokyo = Point {
            lat: 35.681,
            lon: 139.767,
        };
        let osaka = Point {
            lat: 34.693,
            lon: 135.502,
        };
        let d = tokyo.distance_km(osaka);
        assert!((395.0..405.0).contains(&d), "{d}");
    }
}
