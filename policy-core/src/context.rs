//! The request context (spec §2): what an enforcement point knows about one access.
//!
//! Every field is optional; a missing field is an *unknown* attribute, which the
//! evaluator treats as UNKNOWN (fail closed). Values are validated and normalised
//! once, while the JSON is read, so evaluation compares ready-made values:
//! e-mail addresses and app names lower-cased, domains in canonical punycode form.
//! Unknown fields and wrongly typed values are errors that name the field.
//!
//! ```
//! use policy_core::context::Request;
//! let r = Request::from_json(r#"{"source":{"country":"JP"},"destination":{"domain":"Chat.DeepSeek.com."}}"#).unwrap();
//! assert_eq!(r.destination.domain.as_ref().unwrap().as_str(), "chat.deepseek.com");
//! assert!(Request::from_json(r#"{"source":{"contry":"JP"}}"#).is_err());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::schema::Attribute;
use crate::value::{CountryCode, Domain, Point, Version};

/// A request context that could not be read: the JSON path and what was wrong there.
#[derive(Debug, Clone, thiserror::Error)]
#[error("リクエストが不正です ({path}): {message}")]
pub struct RequestError {
    /// Where the problem is, e.g. `device.os.version` or `line 3 column 5`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// One access, as seen by an enforcement point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Who asks.
    #[serde(default, skip_serializing_if = "User::is_empty")]
    pub user: User,
    /// How they logged in.
    #[serde(default, skip_serializing_if = "Auth::is_empty")]
    pub auth: Auth,
    /// The device they use.
    #[serde(default, skip_serializing_if = "Device::is_empty")]
    pub device: Device,
    /// Where the access comes from.
    #[serde(default, skip_serializing_if = "Source::is_empty")]
    pub source: Source,
    /// What is accessed.
    #[serde(default, skip_serializing_if = "Destination::is_empty")]
    pub destination: Destination,
    /// When (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<FixedOffset>>,
    /// What the anomaly detector concluded.
    #[serde(default, skip_serializing_if = "Risk::is_empty")]
    pub risk: Risk,
}

macro_rules! empty_check {
    ($t:ident { $($f:ident),* }) => {
        impl $t {
            /// True when no field is known.
            pub fn is_empty(&self) -> bool { *self == $t::default() }
        }
        const _: fn(&$t) = |s| { $( let _ = &s.$f; )* };
    };
}

/// `user.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// `user.id`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `user.email`, lower-cased.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "email_opt"
    )]
    pub email: Option<String>,
    /// `user.groups`, exactly as the directory spells them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}
empty_check!(User { id, email, groups });

/// `auth.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `auth.method`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<AuthMethod>,
    /// `auth.mfa`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
}
empty_check!(Auth { method, mfa });

/// `device.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `device.id`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `device.registered`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// `device.os.*`
    #[serde(default, skip_serializing_if = "Os::is_empty")]
    pub os: Os,
    /// `device.tpm.*`
    #[serde(default, skip_serializing_if = "Tpm::is_empty")]
    pub tpm: Tpm,
    /// `device.disk.*`
    #[serde(default, skip_serializing_if = "Disk::is_empty")]
    pub disk: Disk,
    /// `device.windows_hello`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_hello: Option<bool>,
    /// `device.firewall`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<bool>,
    /// `device.antivirus`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub antivirus: Option<bool>,
    /// `device.screen_lock`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_lock: Option<bool>,
    /// `device.apps`, lower-cased (compared case-insensitively).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lower_set_opt"
    )]
    pub apps: Option<Vec<String>>,
    /// `device.location`
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "point_opt"
    )]
    pub location: Option<Point>,
    /// `device.network.*`
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
}
empty_check!(Device {
    id,
    registered,
    os,
    tpm,
    disk,
    windows_hello,
    firewall,
    antivirus,
    screen_lock,
    apps,
    location,
    network
});

/// `device.os.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// `device.os.family`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<OsFamily>,
    /// `device.os.name`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `device.os.version`
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "from_str_opt",
        serialize_with = "display_opt"
    )]
    pub version: Option<Version>,
}
empty_check!(Os {
    family,
    name,
    version
});

/// `device.tpm.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tpm {
    /// `device.tpm.present`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// `device.tpm.enabled`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `device.tpm.version`
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "from_str_opt",
        serialize_with = "display_opt"
    )]
    pub version: Option<Version>,
}
empty_check!(Tpm {
    present,
    enabled,
    version
});

/// `device.disk.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// `device.disk.encrypted`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// `device.disk.method`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<DiskMethod>,
}
empty_check!(Disk { encrypted, method });

/// `device.network.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `device.network.ssid`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssid: Option<String>,
    /// `device.network.ip`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}
empty_check!(Network { ssid, ip });

/// `source.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `source.ip`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// `source.country`
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "from_str_opt",
        serialize_with = "display_opt"
    )]
    pub country: Option<CountryCode>,
}
empty_check!(Source { ip, country });

/// `destination.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// `destination.app`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `destination.domain`
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "from_str_opt",
        serialize_with = "display_opt"
    )]
    pub domain: Option<Domain>,
    /// `destination.ip`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// `destination.port`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}
empty_check!(Destination {
    app,
    domain,
    ip,
    port
});

/// `risk.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    /// `risk.suspicious`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicious: Option<bool>,
    /// `risk.score`, 0..=1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "score_opt"
    )]
    pub score: Option<f64>,
}
empty_check!(Risk { suspicious, score });

macro_rules! name_enum {
    ($(#[$doc:meta])* $t:ident { $($v:ident => $s:literal),* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $t { $( #[doc = $s] $v, )* }
        impl $t {
            /// The name as in request JSON and the canonical rule text.
            pub fn as_str(self) -> &'static str { match self { $( $t::$v => $s, )* } }
            /// Parses the name.
            pub fn from_name(s: &str) -> Option<Self> { match s { $( $s => Some($t::$v), )* _ => None } }
        }
    };
}

name_enum!(
    /// `auth.method`
    AuthMethod { Password => "password", Webauthn => "webauthn", Saml => "saml", Oidc => "oidc" }
);
name_enum!(
    /// `device.os.family`
    OsFamily { Windows => "windows", Macos => "macos", Linux => "linux", Ios => "ios", Android => "android" }
);
name_enum!(
    /// `device.disk.method`
    DiskMethod { Bitlocker => "bitlocker", Filevault => "filevault", Luks => "luks", Other => "other" }
);

/// A borrowed attribute value, as the evaluator reads it.
#[derive(Debug, Clone, Copy)]
pub enum AttrValue<'a> {
    /// string attributes
    Str(&'a str),
    /// set-of-string attributes
    Set(&'a [String]),
    /// bool attributes
    Bool(bool),
    /// enum attributes
    Enum(&'static str),
    /// version attributes
    Version(&'a Version),
    /// IP attributes
    Ip(IpAddr),
    /// `source.country`
    Country(CountryCode),
    /// `destination.domain`
    Domain(&'a Domain),
    /// `destination.port`
    Int(i64),
    /// `risk.score`
    Num(f64),
    /// `time`
    Instant(&'a DateTime<FixedOffset>),
    /// `device.location`
    Point(Point),
}

/// An owned attribute value, for building requests attribute by attribute (the
/// semantic diff's counter-examples, tests).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// string and email attributes
    Str(String),
    /// set-of-string attributes
    Set(Vec<String>),
    /// bool attributes
    Bool(bool),
    /// enum attributes, by name
    Enum(String),
    /// version attributes
    Version(Version),
    /// IP attributes
    Ip(IpAddr),
    /// `source.country`
    Country(CountryCode),
    /// `destination.domain`
    Domain(Domain),
    /// `destination.port`
    Int(i64),
    /// `risk.score`
    Num(f64),
    /// `time`
    Instant(DateTime<FixedOffset>),
    /// `device.location`
    Point(Point),
}

impl Request {
    /// Fills what every decision point knows and an enforcement point may have
    /// left out: `destination.app` (the app being decided) and `time` (`now` in
    /// the policy's zone `tz`). Values already set are kept. The decision server's
    /// enrichment and enforcement points deciding locally both call this, so a
    /// local decision sees the same context as the server's.
    pub fn fill_app_and_time(
        &mut self,
        app: &str,
        now: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) {
        if self.destination.app.is_none() {
            self.destination.app = Some(app.to_string());
        }
        if self.time.is_none() {
            self.time = Some(now.with_timezone(&tz).fixed_offset());
        }
    }

    /// Reads a request context from JSON, naming the offending field on error.
    pub fn from_json(json: &str) -> Result<Request, RequestError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." || path.is_empty() {
                format!("line {} column {}", inner.line(), inner.column())
            } else {
                path
            };
            RequestError {
                path,
                message: inner.to_string(),
            }
        })
    }

    /// The value of an attribute, or `None` when the request does not carry it.
    #[inline]
    pub fn get(&self, attr: Attribute) -> Option<AttrValue<'_>> {
        use AttrValue as V;
        use Attribute as A;
        let d = &self.device;
        match attr {
            A::UserId => self.user.id.as_deref().map(V::Str),
            A::UserEmail => self.user.email.as_deref().map(V::Str),
            A::UserGroups => self.user.groups.as_deref().map(V::Set),
            A::AuthMethod => self.auth.method.map(|m| V::Enum(m.as_str())),
            A::AuthMfa => self.auth.mfa.map(V::Bool),
            A::DeviceId => d.id.as_deref().map(V::Str),
            A::DeviceRegistered => d.registered.map(V::Bool),
            A::DeviceOsFamily => d.os.family.map(|m| V::Enum(m.as_str())),
            A::DeviceOsName => d.os.name.as_deref().map(V::Str),
            A::DeviceOsVersion => d.os.version.as_ref().map(V::Version),
            A::DeviceTpmPresent => d.tpm.present.map(V::Bool),
            A::DeviceTpmEnabled => d.tpm.enabled.map(V::Bool),
            A::DeviceTpmVersion => d.tpm.version.as_ref().map(V::Version),
            A::DeviceDiskEncrypted => d.disk.encrypted.map(V::Bool),
            A::DeviceDiskMethod => d.disk.method.map(|m| V::Enum(m.as_str())),
            A::DeviceWindowsHello => d.windows_hello.map(V::Bool),
            A::DeviceFirewall => d.firewall.map(V::Bool),
            A::DeviceAntivirus => d.antivirus.map(V::Bool),
            A::DeviceScreenLock => d.screen_lock.map(V::Bool),
            A::DeviceApps => d.apps.as_deref().map(V::Set),
            A::DeviceLocation => d.location.map(V::Point),
            A::DeviceNetworkSsid => d.network.ssid.as_deref().map(V::Str),
            A::DeviceNetworkIp => d.network.ip.map(V::Ip),
            A::SourceIp => self.source.ip.map(V::Ip),
            A::SourceCountry => self.source.country.map(V::Country),
            A::DestinationApp => self.destination.app.as_deref().map(V::Str),
            A::DestinationDomain => self.destination.domain.as_ref().map(V::Domain),
            A::DestinationIp => self.destination.ip.map(V::Ip),
            A::DestinationPort => self.destination.port.map(|p| V::Int(i64::from(p))),
            A::Time => self.time.as_ref().map(V::Instant),
            A::RiskSuspicious => self.risk.suspicious.map(V::Bool),
            A::RiskScore => self.risk.score.map(V::Num),
        }
    }

    /// Sets (or with `None`, clears) an attribute. A value of the wrong type for the
    /// attribute is refused with a message; strings are normalised as `from_json` does.
    pub fn set(&mut self, attr: Attribute, value: Option<Value>) -> Result<(), RequestError> {
        use Attribute as A;
        let wrong = || RequestError {
            path: attr.name().to_string(),
            message: format!("wrong value type for {attr}"),
        };
        macro_rules! put {
            ($field:expr, $pat:pat => $out:expr) => {{
                $field = match value {
                    None => None,
                    Some($pat) => Some($out),
                    Some(_) => return Err(wrong()),
                };
            }};
        }
        let d = &mut self.device;
        match attr {
            A::UserId => put!(self.user.id, Value::Str(s) => s),
            A::UserEmail => put!(self.user.email, Value::Str(s) => normalize_email(&s)),
            A::UserGroups => put!(self.user.groups, Value::Set(s) => s),
            A::AuthMethod => {
                put!(self.auth.method, Value::Enum(s) => AuthMethod::from_name(&s).ok_or_else(wrong)?)
            }
            A::AuthMfa => put!(self.auth.mfa, Value::Bool(b) => b),
            A::DeviceId => put!(d.id, Value::Str(s) => s),
            A::DeviceRegistered => put!(d.registered, Value::Bool(b) => b),
            A::DeviceOsFamily => {
                put!(d.os.family, Value::Enum(s) => OsFamily::from_name(&s).ok_or_else(wrong)?)
            }
            A::DeviceOsName => put!(d.os.name, Value::Str(s) => s),
            A::DeviceOsVersion => put!(d.os.version, Value::Version(v) => v),
            A::DeviceTpmPresent => put!(d.tpm.present, Value::Bool(b) => b),
            A::DeviceTpmEnabled => put!(d.tpm.enabled, Value::Bool(b) => b),
            A::DeviceTpmVersion => put!(d.tpm.version, Value::Version(v) => v),
            A::DeviceDiskEncrypted => put!(d.disk.encrypted, Value::Bool(b) => b),
            A::DeviceDiskMethod => {
                put!(d.disk.method, Value::Enum(s) => DiskMethod::from_name(&s).ok_or_else(wrong)?)
            }
            A::DeviceWindowsHello => put!(d.windows_hello, Value::Bool(b) => b),
            A::DeviceFirewall => put!(d.firewall, Value::Bool(b) => b),
            A::DeviceAntivirus => put!(d.antivirus, Value::Bool(b) => b),
            A::DeviceScreenLock => put!(d.screen_lock, Value::Bool(b) => b),
            A::DeviceApps => {
                put!(d.apps, Value::Set(s) => s.into_iter().map(|x| x.to_lowercase()).collect())
            }
            A::DeviceLocation => put!(d.location, Value::Point(p) => p),
            A::DeviceNetworkSsid => put!(d.network.ssid, Value::Str(s) => s),
            A::DeviceNetworkIp => put!(d.network.ip, Value::Ip(ip) => ip),
            A::SourceIp => put!(self.source.ip, Value::Ip(ip) => ip),
            A::SourceCountry => put!(self.source.country, Value::Country(c) => c),
            A::DestinationApp => put!(self.destination.app, Value::Str(s) => s),
            A::DestinationDomain => put!(self.destination.domain, Value::Domain(x) => x),
            A::DestinationIp => put!(self.destination.ip, Value::Ip(ip) => ip),
            A::DestinationPort => {
                put!(self.destination.port, Value::Int(i) => u16::try_from(i).map_err(|_| wrong())?)
            }
            A::Time => put!(self.time, Value::Instant(t) => t),
            A::RiskSuspicious => put!(self.risk.suspicious, Value::Bool(b) => b),
            A::RiskScore => put!(self.risk.score, Value::Num(n) => n),
        }
        Ok(())
    }
}

impl fmt::Display for Request {
    /// Compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

fn from_str_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    // Parsed from the deserializer's own text: no `String` for a value that is
    // turned into something else anyway.
    struct Parse<T>(std::marker::PhantomData<T>);
    impl<T> serde::de::Visitor<'_> for Parse<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Option<T>, E> {
            s.parse::<T>().map(Some).map_err(E::custom)
        }
    }
    d.deserialize_str(Parse(std::marker::PhantomData))
}

fn display_opt<S: Serializer, T: fmt::Display>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn email_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(normalize_email(&String::deserialize(d)?)))
}

/// Lower-cases an e-mail address and writes an internationalised domain part in its
/// ASCII (punycode) form, as domain literals are, so `a@日本.jp` matches
/// `email_domain "日本.jp"`.
pub fn normalize_email(s: &str) -> String {
    let lower = s.trim().to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, host)) => match idna::domain_to_ascii(host) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            _ => lower,
        },
        None => lower,
    }
}

fn lower_set_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    Ok(Some(v.into_iter().map(|s| s.to_lowercase()).collect()))
}

fn point_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Point>, D::Error> {
    let p = Point::deserialize(d)?;
    p.validate().map(Some).map_err(serde::de::Error::custom)
}

fn score_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(Some(v))
    } else {
        Err(serde::de::Error::custom(format!(
            "risk.score must be within 0..1, got {v}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = Request::from_json(r#"{"device":{"os":{"version":"ten"}}}"#).unwrap_err();
        assert_eq!(e.path, "device.os.version");
        let e = Request::from_json(r#"{"source":{"country":"XX"}}"#).unwrap_err();
        assert_eq!(e.path, "source.country");
        let e = Request::from_json(r#"{"auth":{"mfa":"yes"}}"#).unwrap_err();
        assert_eq!(e.path, "auth.mfa");
        let e = Request::from_json(r#"{"risk":{"score":2}}"#).unwrap_err();
        assert_eq!(e.path, "risk.score");
        assert!(Request::from_json("{").is_err());
        assert!(Request::from_json(r#"{"time":"yesterday"}"#).is_err());
    }

    #[test]
    fn idn_email_domains_are_punycode() {
        let r = Request::from_json(r#"{"user":{"email":"A@日本.JP"}}"#).unwrap();
        assert_eq!(r.user.email.as_deref(), Some("a@xn--wgv71a.jp"));
    }

    #[test]
    fn normalising_an_email_twice_changes_nothing() {
        // Rule literals are checked to be in this form, so it must be a fixed point.
        for s in [
            " A@日本.JP\u{3000}",
            "a@ß.de",
            "a@Ａ。jp",
            "a@\u{feff}",
            "a@b\u{3000}c",
            "a@xn--zz",
            "no-at-sign",
            "",
        ] {
            let once = normalize_email(s);
            assert_eq!(normalize_email(&once), once, "{s:?}");
        }
    }

    #[test]
    fn json_round_trips() {
        let j = r#"{"user":{"id":"tanaka","email":"t@example.co.jp","groups":["経理部"]},"device":{"os":{"family":"windows","version":"10.0.22631"},"apps":["winny"]},"source":{"ip":"203.0.113.7","country":"JP"},"time":"2026-11-24T10:15:00+09:00"}"#;
        let r = Request::from_json(j).unwrap();
        let again = Request::from_json(&r.to_string()).unwrap();
        assert_eq!(r, again);
    }
}
