//! The access record: one decision as the access log keeps it, whoever made it
//! (the decision server itself or an enforcement point deciding locally).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use policy_core::decision::{standard_reason, Effect, Reason};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The id shown to the user so a helpdesk can find this record.
    pub decision_id: String,
    /// When the decision was made.
    pub time: DateTime<Utc>,
    /// Which enforcement point asked: `api`, `saml`, `tunnel`, `socks`.
    pub pep: String,
    /// The target: the app name, or `domain:port` / `ip:port` for the gateway.
    pub target: String,
    /// The user, when known.
    pub user: Option<String>,
    /// The device, when known.
    pub device: Option<String>,
    /// `allow` or `deny`.
    pub decision: Effect,
    /// Why, with the Japanese sentence the user was shown.
    #[serde(
        serialize_with = "reasons_compact",
        deserialize_with = "reasons_compat"
    )]
    pub reasons: Vec<Reason>,
    /// How the user authenticated.
    pub auth_method: Option<String>,
    /// Source IP address.
    pub source_ip: Option<String>,
    /// Source country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// The anomaly detector's findings for this access (codes), if any.
    pub anomalies: Vec<String>,
}

impl AccessRecord {
    /// The record of `decision` on `req`, made by enforcement point `pep` (`api`,
    /// `saml`, `tunnel`, `socks`) for `target`, with a new decision id: user,
    /// device, authentication method, source address and country come from the
    /// request. Every enforcement point and the decision server build records
    /// this one way; `anomalies` is the server's to fill.
    pub fn new(
        pep: &str,
        target: String,
        req: &policy_core::context::Request,
        decision: &policy_core::decision::Decision,
        now: DateTime<Utc>,
    ) -> AccessRecord {
        AccessRecord {
            decision_id: new_decision_id(now),
            time: now,
            pep: pep.to_string(),
            target,
            user: req.user.id.clone(),
            device: req.device.id.clone(),
            decision: decision.effect,
            reasons: decision.reasons.clone(),
            auth_method: req.auth.method.map(|m| m.as_str().to_string()),
            source_ip: req.source.ip.map(ip_text),
            country: req.source.country.map(|c| c.as_str().to_string()),
            anomalies: Vec::new(),
        }
    }

    /// The reason codes, in order.
    pub fn reason_codes(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(|r| r.code.as_ref())
    }
}

/// Reasons as stored: a standard reason (`allow`, `unauthenticated`, always the
/// same sentence) as its bare code, which keeps the access log's most frequent
/// rows small; every other reason whole.
fn reasons_compact<S: Serializer>(reasons: &[Reason], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(reasons.len()))?;
    for r in reasons {
        match standard_reason(&r.code) {
            Some(std) if std == r => seq.serialize_element(r.code.as_ref())?,
            _ => seq.serialize_element(r)?,
        }
    }
    seq.end()
}

/// Reasons as stored: full objects, or bare codes: a standard reason's code reads
/// back as that reason; any other bare code (records written before reasons
/// carried their sentence) as a reason with an empty message.
fn reasons_compat<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Reason>, D::Error> {
    let items = Vec::<StoredReason>::deserialize(d)?;
    Ok(items.into_iter().map(|s| s.0).collect())
}

/// One stored reason, a bare code or a whole object. A visitor rather than an
/// untagged enum: that one tries the object first and builds (and throws away) an
/// error message for every bare code, on every record read.
struct StoredReason(Reason);

impl<'de> Deserialize<'de> for StoredReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Reason;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a reason object or a reason code")
            }
            fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<Reason, E> {
                Ok(match standard_reason(code) {
                    Some(r) => r.clone(),
                    None => Reason::new(code.to_string(), ""),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Reason, A::Error> {
                Reason::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(Visitor).map(StoredReason)
    }
}

/// Reasons in their stored form, for stores that keep them as JSON text: the same
/// encoding as [`AccessRecord::reasons`] in a record's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReasons(pub Vec<Reason>);

impl StoredReasons {
    /// The JSON text of `reasons` in stored form.
    pub fn to_json(reasons: &[Reason]) -> serde_json::Result<String> {
        struct Ref<'a>(&'a [Reason]);
        impl Serialize for Ref<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                reasons_compact(self.0, s)
            }
        }
        serde_json::to_string(&Ref(reasons))
    }
}

impl<'de> Deserialize<'de> for StoredReasons {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        reasons_compat(d).map(StoredReasons)
    }
}

/// An address as text, as `IpAddr`'s `Display` writes it. IPv4 (nearly every
/// record) is written digit by digit: through the formatting machinery it cost
/// about 1,350 instructions per decision, a thirtieth of the server's work.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// A new decision id: a ULID (sortable by time, 80 random bits). Ids from one
/// process are distinct even within a millisecond: the random part is a per-process
/// random base plus a counter.
pub fn new_decision_id(now: DateTime<Utc>) -> String {
    static BASE: OnceLock<u128> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let mut r = [0u8; 16];
        if getrandom::getrandom(&mut r).is_err() {
            // No OS randomness: the start time still separates processes.
            let t = Utc::now().timestamp_nanos_opt().unwrap_or(0);
            r[..8].copy_from_slice(&t.to_le_bytes());
            r[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        u128::from_le_bytes(r)
    });
    let seq = u128::from(SEQ.fetch_add(1, Ordering::Relaxed));
    let random = base.wrapping_add(seq) & ((1u128 << 80) - 1);
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    ulid::Ulid::from_parts(ms, random).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_writes_what_display_writes() {
        let mut addrs: Vec<std::net::IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "203.0.113.7",
            "100.64.9.99",
            "1.20.199.250",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        // Every octet value in every position.
        addrs.extend(
            (0..=255u8).map(|o| std::net::IpAddr::from([o, 255 - o, o / 3, o.wrapping_mul(7)])),
        );
        for a in addrs {
            assert_eq!(ip_text(a), a.to_string());
        }
    }

    #[test]
    fn old_records_with_bare_codes_still_read() {
        let json = r#"{"decision_id":"x","time":"2026-11-24T01:00:00Z","pep":"api","target":"a",
            "user":null,"device":null,"decision":"deny","reasons":["deny.matched",
            {"code":"require.not_met","message":"必須条件を満たさないため拒否"}],
            "auth_method":null,"source_ip":null,"country":null,"anomalies":[]}"#;
        let r: AccessRecord = serde_json::from_str(json).unwrap();
        assert_eq!(
            r.reason_codes().collect::<Vec<_>>(),
            ["deny.matched", "require.not_met"]
        );
        assert_eq!(&*r.reasons[1].message, "必須条件を満たさないため拒否");
    }

    #[test]
    fn standard_reasons_are_stored_as_their_code_and_read_back_whole() {
        let allow = standard_reason("allow").unwrap().clone();
        let deny = Reason::new("deny.matched", "拒否条件に該当するため拒否");
        let r = AccessRecord {
            decision_id: "x".into(),
            time: Utc::now(),
            pep: "api".into(),
            target: "a".into(),
            user: None,
            device: None,
            decision: Effect::Allow,
            reasons: vec![allow.clone(), deny.clone()],
            auth_method: None,
            source_ip: None,
            country: None,
            anomalies: vec![],
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["reasons"][0], "allow");
        assert_eq!(json["reasons"][1]["code"], "deny.matched");
        let back: AccessRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.reasons, [allow, deny]);
    }

    #[test]
    fn a_stored_reason_that_is_neither_code_nor_object_is_an_error() {
        let err = serde_json::from_str::<StoredReasons>(r#"["allow", 7]"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a reason object or a reason code"),
            "{err}"
        );
        let err = serde_json::from_str::<StoredReasons>(r#"[{"code":"x"}]"#).unwrap_err();
        assert!(err.to_string().contains("message"), "{err}");
    }

    #[test]
    fn decision_ids_are_ulids_and_distinct() {
        let now = Utc::now();
        let a = new_decision_id(now);
        let b = new_decision_id(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(ulid::Ulid::from_string(&a).is_ok());
    }
}
