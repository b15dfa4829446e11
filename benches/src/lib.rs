//! Shared fixtures for the RZTS benches.
//!
//! Two benches use this crate:
//!
//! * `benches/decision.rs` times one access decision with three engines side by side:
//!   RZTS (`policy_core::decision::AppRules::decide`), cedar-policy and regorus. The
//!   policies ([`decision::policies`]) are written once per engine with the same logic,
//!   and the request contexts are written once, in RZTS's JSON (spec §2), then
//!   *adapted* for Cedar and Rego by [`decision::neutral_context`],
//!   [`decision::cedar_context`] and [`decision::rego_input`]. Every adaptation (what
//!   the other engines cannot express directly and get precomputed for them) is listed
//!   on those functions and in `benches/README.md`.
//! * `benches/compile.rs` times the offline compilation of a 100-app policy file that
//!   [`policy_file::hundred_apps_toml`] generates deterministically.
//!
//! Nothing here is timed; the benches build everything they need from these fixtures
//! before their measurement loops.

/// The time zone every benchmark decides in (the policy file default, spec §3).
pub const TZ: chrono_tz::Tz = chrono_tz::Asia::Tokyo;

pub mod decision {
    //! The two benchmark policies in the three engines' languages, and the requests.
    //!
    //! | policy | 必須条件 (require) | 拒否条件 (deny) |
    //! |---|---|---|
    //! | `g01` | golden case G01: country JP, TPM enabled, disk encrypted with BitLocker | `risk.suspicious == true` |
    //! | `ten_conditions` | 10 conditions over 8 attribute types (country set, bool, set membership, version order, CIDR, domain zone, time of day, number order) | `destination.port == 22` |
    //!
    //! Each policy has two *timed* requests, `allow` and `deny` (the deny one trips the
    //! 拒否条件, so RZTS also builds its explanation), and a list of *check-only*
    //! requests that are never timed: the bench asserts at start-up that all three
    //! engines give the expected decision on every one of them, including requests with
    //! missing attributes (all three fail closed) and boundary values (18:00, a score of
    //! exactly 0.8, `10.0.9` versus `10.0.22631`, an IPv6 source, a look-alike domain).

    use std::net::IpAddr;

    use chrono::Timelike;
    use policy_core::ast::{CmpOp, Condition, DomainMatch, Literal, Rule};
    use policy_core::context::Request;
    use policy_core::decision::Effect;
    use policy_core::schema::Attribute;
    use policy_core::value::TimeOfDay;
    use serde_json::{json, Map, Value};

    /// One request context in RZTS's JSON form, with the decision it must get.
    #[derive(Debug, Clone)]
    pub struct RequestFixture {
        /// `allow`, `deny`, or for check-only requests a short description.
        pub name: String,
        /// The request context as a PEP sends it (spec §2).
        pub json: String,
        /// The decision every engine must reach.
        pub expected: Effect,
    }

    /// One policy written for the three engines.
    #[derive(Debug, Clone)]
    pub struct PolicyFixture {
        /// The benchmark group's name (`decision/<name>/...`).
        pub name: &'static str,
        /// RZTS 必須条件, built with the AST types.
        pub require: Rule,
        /// RZTS 拒否条件, built with the AST types.
        pub deny: Rule,
        /// The canonical text `require` prints as (checked at bench start; parsed back
        /// with `policy_core::text::parse_rule` when the parser is available).
        pub require_text: &'static str,
        /// The canonical text `deny` prints as.
        pub deny_text: &'static str,
        /// The equivalent Cedar policy set (one `permit ... when {..} unless {..}`).
        pub cedar: &'static str,
        /// The equivalent Rego module (package `rzts`, query `data.rzts.allow`).
        pub rego: &'static str,
        /// The timed requests: exactly one `allow` and one `deny`.
        pub timed: Vec<RequestFixture>,
        /// Requests only used for the start-up equivalence check.
        pub check_only: Vec<RequestFixture>,
    }

    /// The Rego query every bench evaluates.
    pub const REGO_QUERY: &str = "data.rzts.allow";

    /// A realistic, fully populated request context (the spec §2 example, pointed at an
    /// internal app in `example.co.jp`): both policies allow it.
    pub fn base_request() -> Value {
        json!({
            "user":   { "id": "tanaka", "email": "tanaka@example.co.jp", "groups": ["経理部", "all"] },
            "auth":   { "method": "password", "mfa": true },
            "device": {
                "id": "PC-0042", "registered": true,
                "os": { "family": "windows", "name": "Windows 11 Pro", "version": "10.0.22631" },
                "tpm": { "present": true, "enabled": true, "version": "2.0" },
                "disk": { "encrypted": true, "method": "bitlocker" },
                "windows_hello": true, "firewall": true, "antivirus": true, "screen_lock": true,
                "apps": ["Microsoft Teams", "Google Chrome"],
                "location": { "lat": 35.681, "lon": 139.767 },
                "network": { "ssid": "corp-wifi", "ip": "192.168.10.23" }
            },
            "source":      { "ip": "203.0.113.7", "country": "JP" },
            "destination": { "app": "keiri-portal", "domain": "portal.example.co.jp", "ip": "203.0.113.80", "port": 443 },
            "time": "2026-11-24T10:15:00+09:00",
            "risk": { "suspicious": false, "score": 0.12 }
        })
    }

    /// [`base_request`] with the dotted `path` set to `value` (`Value::Null` removes
    /// the field, making the attribute unknown).
    pub fn variant(path: &str, value: Value) -> Value {
        let mut v = base_request();
        let mut parts: Vec<&str> = path.split('.').collect();
        let Some(last) = parts.pop() else {
            return v;
        };
        let mut cur = &mut v;
        for p in parts {
            cur = cur
                .as_object_mut()
                .and_then(|o| o.get_mut(p))
                .unwrap_or_else(|| panic!("fixture path {path} does not exist"));
        }
        let obj = cur
            .as_object_mut()
            .unwrap_or_else(|| panic!("fixture path {path} is not inside an object"));
        if value.is_null() {
            obj.remove(last);
        } else {
            obj.insert(last.to_string(), value);
        }
        v
    }

    fn fixture(name: impl Into<String>, json: Value, expected: Effect) -> RequestFixture {
        RequestFixture {
            name: name.into(),
            json: json.to_string(),
            expected,
        }
    }

    fn atom(c: Condition) -> Rule {
        Rule::Atom(c)
    }
    fn is_true(a: Attribute) -> Rule {
        atom(Condition::Eq(a, Literal::Bool(true)))
    }
    fn country(code: &str) -> Literal {
        Literal::Country(code.parse().expect("fixture country code"))
    }

    /// Golden case G01 with the 拒否条件 of G11:
    /// 必須条件「アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが
    /// BitLocker により暗号化されていること」, 拒否条件「不審なアクセスと判定されていること」.
    pub fn g01() -> PolicyFixture {
        let require = Rule::And(vec![
            atom(Condition::Eq(Attribute::SourceCountry, country("JP"))),
            is_true(Attribute::DeviceTpmEnabled),
            is_true(Attribute::DeviceDiskEncrypted),
            atom(Condition::Eq(
                Attribute::DeviceDiskMethod,
                Literal::Enum("bitlocker"),
            )),
        ]);
        let deny = is_true(Attribute::RiskSuspicious);
        let allow = Effect::Allow;
        let deny_e = Effect::Deny;
        PolicyFixture {
            name: "g01",
            require,
            deny,
            require_text: r#"source.country == "JP" and device.tpm.enabled == true and device.disk.encrypted == true and device.disk.method == "bitlocker""#,
            deny_text: "risk.suspicious == true",
            cedar: G01_CEDAR,
            rego: G01_REGO,
            timed: vec![
                fixture("allow", base_request(), allow),
                fixture("deny", variant("risk.suspicious", json!(true)), deny_e),
            ],
            check_only: vec![
                fixture("empty request", json!({}), deny_e),
                fixture("country US", variant("source.country", json!("US")), deny_e),
                fixture(
                    "tpm disabled",
                    variant("device.tpm.enabled", json!(false)),
                    deny_e,
                ),
                fixture(
                    "filevault",
                    variant("device.disk.method", json!("filevault")),
                    deny_e,
                ),
                fixture(
                    "disk method unknown",
                    variant("device.disk.method", Value::Null),
                    deny_e,
                ),
                fixture(
                    "not encrypted",
                    variant("device.disk.encrypted", json!(false)),
                    deny_e,
                ),
                fixture(
                    "risk unknown",
                    variant("risk.suspicious", Value::Null),
                    deny_e,
                ),
                fixture(
                    "G01 golden allow (minimal)",
                    json!({ "source": { "country": "JP" }, "device": { "tpm": { "enabled": true }, "disk": { "encrypted": true, "method": "bitlocker" } }, "risk": { "suspicious": false } }),
                    allow,
                ),
            ],
        }
    }

    /// The Cedar form of [`g01`].
    pub const G01_CEDAR: &str = r#"
permit (principal, action, resource)
when {
    context.source.country == "JP" &&
    context.device.tpm.enabled &&
    context.device.disk.encrypted &&
    context.device.disk.method == "bitlocker"
}
unless { context.risk.suspicious };
"#;

    /// The Rego form of [`g01`]. The 拒否条件 only clears when it is known to be false,
    /// as in RZTS and Cedar: a missing `risk.suspicious` leaves `deny_cleared` undefined.
    pub const G01_REGO: &str = r#"
package rzts

import rego.v1

default allow := false

allow if {
    require
    deny_cleared
}

require if {
    input.source.country == "JP"
    input.device.tpm.enabled == true
    input.device.disk.encrypted == true
    input.device.disk.method == "bitlocker"
}

deny_cleared if input.risk.suspicious == false
"#;

    /// Ten conditions mixing eight attribute types, and a port 拒否条件.
    pub fn ten_conditions() -> PolicyFixture {
        let cidr = "203.0.113.0/24".parse().expect("fixture CIDR");
        let require = Rule::And(vec![
            atom(Condition::In(
                Attribute::SourceCountry,
                vec![country("JP"), country("US")],
            )),
            is_true(Attribute::AuthMfa),
            atom(Condition::Contains(Attribute::UserGroups, "経理部".into())),
            atom(Condition::Compare(
                Attribute::DeviceOsVersion,
                CmpOp::Ge,
                Literal::Version("10.0.22631".parse().expect("fixture version")),
            )),
            is_true(Attribute::DeviceTpmEnabled),
            is_true(Attribute::DeviceDiskEncrypted),
            atom(Condition::InCidr(Attribute::SourceIp, vec![cidr])),
            atom(Condition::Domain(
                Attribute::DestinationDomain,
                DomainMatch::InZone,
                "example.co.jp".parse().expect("fixture domain"),
            )),
            atom(Condition::TimeOfDay {
                attr: Attribute::Time,
                start: TimeOfDay::new(9, 0).expect("09:00"),
                end: TimeOfDay::new(18, 0).expect("18:00"),
            }),
            atom(Condition::Compare(
                Attribute::RiskScore,
                CmpOp::Lt,
                Literal::Num(0.8),
            )),
        ]);
        let deny = atom(Condition::Eq(Attribute::DestinationPort, Literal::Int(22)));
        let allow = Effect::Allow;
        let d = Effect::Deny;
        let v = variant;
        PolicyFixture {
            name: "ten_conditions",
            require,
            deny,
            require_text: concat!(
                r#"source.country in ["JP", "US"] and auth.mfa == true and user.groups contains "経理部""#,
                r#" and device.os.version >= "10.0.22631" and device.tpm.enabled == true"#,
                r#" and device.disk.encrypted == true and source.ip in_cidr ["203.0.113.0/24"]"#,
                r#" and destination.domain in_zone "example.co.jp" and time of_day [09:00, 18:00)"#,
                r#" and risk.score < 0.8"#
            ),
            deny_text: "destination.port == 22",
            cedar: TEN_CEDAR,
            rego: TEN_REGO,
            timed: vec![
                fixture("allow", base_request(), allow),
                fixture("deny", v("destination.port", json!(22)), d),
            ],
            check_only: vec![
                fixture("empty request", json!({}), d),
                fixture("country US", v("source.country", json!("US")), allow),
                fixture("country CN", v("source.country", json!("CN")), d),
                fixture("no mfa", v("auth.mfa", json!(false)), d),
                fixture("not 経理部", v("user.groups", json!(["営業部", "all"])), d),
                fixture("groups unknown", v("user.groups", Value::Null), d),
                fixture(
                    "version 10.0.26100",
                    v("device.os.version", json!("10.0.26100")),
                    allow,
                ),
                fixture("version 11.0", v("device.os.version", json!("11.0")), allow),
                fixture(
                    "version 10.0.19045",
                    v("device.os.version", json!("10.0.19045")),
                    d,
                ),
                fixture("version 10.0.9", v("device.os.version", json!("10.0.9")), d),
                fixture("tpm disabled", v("device.tpm.enabled", json!(false)), d),
                fixture("not encrypted", v("device.disk.encrypted", json!(false)), d),
                fixture("ip outside", v("source.ip", json!("198.51.100.1")), d),
                fixture("ip v6", v("source.ip", json!("2001:db8::1")), d),
                fixture("ip unknown", v("source.ip", Value::Null), d),
                fixture(
                    "zone apex",
                    v("destination.domain", json!("example.co.jp")),
                    allow,
                ),
                fixture(
                    "zone, odd case and trailing dot",
                    v("destination.domain", json!("Portal.Example.CO.JP.")),
                    allow,
                ),
                fixture(
                    "look-alike domain",
                    v("destination.domain", json!("notexample.co.jp")),
                    d,
                ),
                fixture(
                    "zone as a prefix",
                    v("destination.domain", json!("example.co.jp.evil.net")),
                    d,
                ),
                fixture(
                    "18:00 (end excluded)",
                    v("time", json!("2026-11-24T18:00:00+09:00")),
                    d,
                ),
                fixture("08:59:59", v("time", json!("2026-11-24T08:59:59+09:00")), d),
                fixture(
                    "09:00 (start included)",
                    v("time", json!("2026-11-24T09:00:00+09:00")),
                    allow,
                ),
                fixture(
                    "UTC 01:30 = 10:30 JST",
                    v("time", json!("2026-11-24T01:30:00Z")),
                    allow,
                ),
                fixture(
                    "UTC 10:00 = 19:00 JST",
                    v("time", json!("2026-11-24T10:00:00Z")),
                    d,
                ),
                fixture("time unknown", v("time", Value::Null), d),
                fixture("score 0.8 (excluded)", v("risk.score", json!(0.8)), d),
                fixture("score 0.79", v("risk.score", json!(0.79)), allow),
                fixture("port 8443", v("destination.port", json!(8443)), allow),
                fixture("port unknown", v("destination.port", Value::Null), d),
            ],
        }
    }

    /// The Cedar form of [`ten_conditions`]; see [`cedar_context`] for the adapted
    /// attributes (`os.version` as a record of numbers, `time_minutes`, `ip`,
    /// `decimal`).
    pub const TEN_CEDAR: &str = r#"
permit (principal, action, resource)
when {
    ["JP", "US"].contains(context.source.country) &&
    context.auth.mfa &&
    context.user.groups.contains("経理部") &&
    (context.device.os.version.major > 10 ||
     (context.device.os.version.major == 10 &&
      (context.device.os.version.minor > 0 ||
       (context.device.os.version.minor == 0 && context.device.os.version.build >= 22631)))) &&
    context.device.tpm.enabled &&
    context.device.disk.encrypted &&
    context.source.ip.isInRange(ip("203.0.113.0/24")) &&
    (context.destination.domain == "example.co.jp" ||
     context.destination.domain like "*.example.co.jp") &&
    context.time_minutes >= 540 && context.time_minutes < 1080 &&
    context.risk.score.lessThan(decimal("0.8"))
}
unless { context.destination.port == 22 };
"#;

    /// The Rego form of [`ten_conditions`], on the same adapted input as Cedar (except
    /// that `source.ip` and `risk.score` stay a plain string and number).
    pub const TEN_REGO: &str = r#"
package rzts

import rego.v1

default allow := false

allow if {
    require
    deny_cleared
}

require if {
    input.source.country in {"JP", "US"}
    input.auth.mfa == true
    "経理部" in input.user.groups
    os_version_ok(input.device.os.version)
    input.device.tpm.enabled == true
    input.device.disk.encrypted == true
    net.cidr_contains("203.0.113.0/24", input.source.ip)
    in_zone(input.destination.domain)
    input.time_minutes >= 540
    input.time_minutes < 1080
    input.risk.score < 0.8
}

# device.os.version >= 10.0.22631, component by component.
os_version_ok(v) if v.major > 10
os_version_ok(v) if {
    v.major == 10
    v.minor > 0
}
os_version_ok(v) if {
    v.major == 10
    v.minor == 0
    v.build >= 22631
}

# destination.domain in_zone "example.co.jp": the apex or any subdomain.
in_zone(d) if d == "example.co.jp"
in_zone(d) if endswith(d, ".example.co.jp")

deny_cleared if input.destination.port != 22
"#;

    /// Both benchmark policies, in benchmark order.
    pub fn policies() -> Vec<PolicyFixture> {
        vec![g01(), ten_conditions()]
    }

    /// Parses a fixture's JSON into an RZTS request (done once, outside timing).
    pub fn rzts_request(f: &RequestFixture) -> Request {
        Request::from_json(&f.json)
            .unwrap_or_else(|e| panic!("fixture {:?} is not a valid request: {e}", f.name))
    }

    fn put(root: &mut Map<String, Value>, path: &str, value: Value) {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap_or(path);
        let mut cur = root;
        for p in parts {
            cur = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("neutral context paths never collide");
        }
        cur.insert(last.to_string(), value);
    }

    /// The request as the other engines see it, derived from the *parsed* RZTS request
    /// so all three engines get exactly the same (already normalised) values. Only the
    /// attributes the two policies read are carried (plus `user.id` and `auth.method`),
    /// and only when the request has them, so a missing attribute stays missing.
    ///
    /// Adaptations, all computed here, outside the timed loop:
    ///
    /// * `device.os.version` becomes a record `{major, minor, build}` of integers
    ///   (missing components are 0; three components cover Windows/macOS versions).
    ///   Neither Cedar nor core Rego compares dotted versions; RZTS compares the
    ///   pre-split `Vec<u64>` it parsed from the JSON, so the split is outside the
    ///   timing for all three.
    /// * `time` becomes `time_minutes`: minutes since local midnight in [`crate::TZ`].
    ///   Cedar has no time zones; RZTS converts the instant to Asia/Tokyo *inside*
    ///   `decide` (it is part of its timed work), the others get it done for them.
    /// * `destination.domain` is the canonical form (lower-case, no trailing dot,
    ///   punycode) that RZTS computed while parsing the JSON.
    /// * `source.ip` stays a string here; [`cedar_context`] wraps it in `ip()`.
    /// * `risk.score` is a JSON number here; [`cedar_context`] wraps it in `decimal()`.
    pub fn neutral_context(req: &Request) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(id) = &req.user.id {
            put(&mut m, "user.id", json!(id));
        }
        if let Some(g) = &req.user.groups {
            put(&mut m, "user.groups", json!(g));
        }
        if let Some(method) = req.auth.method {
            put(&mut m, "auth.method", json!(method.as_str()));
        }
        if let Some(mfa) = req.auth.mfa {
            put(&mut m, "auth.mfa", json!(mfa));
        }
        if let Some(v) = &req.device.os.version {
            let p = v.parts();
            let at = |i: usize| p.get(i).copied().unwrap_or(0);
            assert!(p.len() <= 3, "the version record holds three components");
            put(
                &mut m,
                "device.os.version",
                json!({ "major": at(0), "minor": at(1), "build": at(2) }),
            );
        }
        if let Some(b) = req.device.tpm.enabled {
            put(&mut m, "device.tpm.enabled", json!(b));
        }
        if let Some(b) = req.device.disk.encrypted {
            put(&mut m, "device.disk.encrypted", json!(b));
        }
        if let Some(method) = req.device.disk.method {
            put(&mut m, "device.disk.method", json!(method.as_str()));
        }
        if let Some(ip) = req.source.ip {
            put(&mut m, "source.ip", json!(ip.to_string()));
        }
        if let Some(c) = req.source.country {
            put(&mut m, "source.country", json!(c.as_str()));
        }
        if let Some(d) = &req.destination.domain {
            put(&mut m, "destination.domain", json!(d.as_str()));
        }
        if let Some(port) = req.destination.port {
            put(&mut m, "destination.port", json!(port));
        }
        if let Some(t) = &req.time {
            let local = t.with_timezone(&crate::TZ);
            put(
                &mut m,
                "time_minutes",
                json!(local.hour() * 60 + local.minute()),
            );
        }
        if let Some(b) = req.risk.suspicious {
            put(&mut m, "risk.suspicious", json!(b));
        }
        if let Some(s) = req.risk.score {
            put(&mut m, "risk.score", json!(s));
        }
        m
    }

    /// The Cedar context: [`neutral_context`] with `source.ip` as an `ip` extension
    /// value and `risk.score` as a `decimal` (Cedar's fixed-point type, at most four
    /// fractional digits; scores are given to four places).
    pub fn cedar_context(req: &Request) -> Value {
        let mut m = neutral_context(req);
        if let Some(ip) = req.source.ip {
            put(&mut m, "source.ip", extn("ip", ip_text(ip)));
        }
        if let Some(s) = req.risk.score {
            put(&mut m, "risk.score", extn("decimal", format!("{s:.4}")));
        }
        Value::Object(m)
    }

    fn ip_text(ip: IpAddr) -> String {
        ip.to_string()
    }

    fn extn(f: &str, arg: String) -> Value {
        json!({ "__extn": { "fn": f, "arg": arg } })
    }

    /// The Rego input document: [`neutral_context`] as is.
    pub fn rego_input(req: &Request) -> Value {
        Value::Object(neutral_context(req))
    }
}

pub mod policy_file {
    //! A deterministic 100-app policy file in the spec §3 format, for the compile bench.
    //!
    //! Texts are variations of the golden set's phrasings with app-specific values
    //! (group names, domains, countries, hours, versions, CIDRs), so that almost every
    //! text differs and a translator cannot win by caching one answer.

    use std::fmt::Write;

    /// How many apps [`hundred_apps_toml`] writes.
    pub const APPS: usize = 100;

    const GROUPS: &[&str] = &[
        "経理部",
        "営業部",
        "人事部",
        "開発部",
        "総務部",
        "法務部",
        "情報システム部",
        "購買部",
        "広報部",
        "品質保証部",
    ];
    const BLOCKED_DOMAINS: &[&str] = &[
        "deepseek.com",
        "filesharing.example.net",
        "pastebin.com",
        "mega.nz",
        "transfer.example.org",
        "anonfiles.example",
        "tor-proxy.example.net",
        "chat.example.cn",
    ];
    const COUNTRY_SETS: &[&str] = &[
        "中国、北朝鮮、ロシアのいずれか",
        "中国、ロシアのいずれか",
        "北朝鮮、イラン、シリアのいずれか",
        "ロシア、ベラルーシのいずれか",
    ];
    const OS_VERSIONS: &[&str] = &["10.0.22631", "10.0.19045", "10.0.26100", "14.5", "13.6.7"];
    const MODES: &[&str] = &["saml", "tunnel", "socks"];

    /// One app's two texts (either may be empty).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AppTexts {
        /// The app's key in `[apps.<name>]`.
        pub name: String,
        /// `saml`, `tunnel` or `socks`.
        pub mode: &'static str,
        /// 必須条件.
        pub require: String,
        /// 拒否条件.
        pub deny: String,
    }

    /// The require text for app `i`: one or two clauses from the golden phrasings,
    /// joined as an administrator would write them.
    fn require_text(i: usize) -> String {
        let group = GROUPS[i % GROUPS.len()];
        let start = 7 + i % 3; // 7..9
        let end = 17 + i % 4; // 17..20
        let version = OS_VERSIONS[i % OS_VERSIONS.len()];
        let third = (i * 7) % 256;
        match i % 8 {
            0 => "アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること".to_string(),
            1 => "多要素認証を利用していること".to_string(),
            2 => format!("{group}グループに所属していること"),
            3 => format!("平日の{start}時から{end}時までのアクセスであること"),
            4 => format!("OSのバージョンが{version}以上であること"),
            5 => format!("アクセス元のIPアドレスが198.51.{third}.0/24の範囲内であること"),
            6 => "ファイアウォールとウイルス対策ソフトが有効であること".to_string(),
            _ => format!("{group}グループに所属し、多要素認証を利用していること"),
        }
    }

    /// The deny text for app `i` (empty for every fifth app: no 拒否条件).
    fn deny_text(i: usize) -> String {
        let domain = BLOCKED_DOMAINS[i % BLOCKED_DOMAINS.len()];
        let countries = COUNTRY_SETS[i % COUNTRY_SETS.len()];
        match i % 5 {
            0 => String::new(),
            1 => format!("アクセス先のドメイン名が {domain} であること"),
            2 => format!("アクセス元の国が{countries}であること"),
            3 => "不審なアクセスと判定されていること".to_string(),
            _ => "Winny がインストールされていること".to_string(),
        }
    }

    /// The 100 apps, in file order.
    pub fn hundred_apps() -> Vec<AppTexts> {
        (0..APPS)
            .map(|i| AppTexts {
                name: format!("app{i:03}"),
                mode: MODES[i % MODES.len()],
                require: require_text(i),
                deny: deny_text(i),
            })
            .collect()
    }

    /// The policy file (TOML, spec §3) for [`hundred_apps`].
    pub fn hundred_apps_toml() -> String {
        let mut s = String::from("timezone = \"Asia/Tokyo\"\n");
        for app in hundred_apps() {
            // writeln! to a String cannot fail.
            let _ = writeln!(s, "\n[apps.{}]\nmode = \"{}\"", app.name, app.mode);
            let _ = writeln!(s, "require = {}", toml_string(&app.require));
            if !app.deny.is_empty() {
                let _ = writeln!(s, "deny = {}", toml_string(&app.deny));
            }
        }
        s
    }

    /// A TOML basic string (the texts hold no quotes, backslashes or control
    /// characters; JSON's escaping is a valid TOML basic string for them).
    fn toml_string(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::decision::*;
    use super::policy_file::*;

    #[test]
    fn canonical_texts_match_the_ast() {
        for p in policies() {
            assert_eq!(p.require.to_string(), p.require_text, "{}", p.name);
            assert_eq!(p.deny.to_string(), p.deny_text, "{}", p.name);
        }
    }

    #[test]
    fn every_fixture_parses() {
        for p in policies() {
            for f in p.timed.iter().chain(&p.check_only) {
                let _ = rzts_request(f);
            }
        }
    }

    #[test]
    fn policy_file_is_deterministic_and_varied() {
        let a = hundred_apps_toml();
        assert_eq!(a, hundred_apps_toml());
        let apps = hundred_apps();
        assert_eq!(apps.len(), APPS);
        let distinct: std::collections::BTreeSet<_> =
            apps.iter().map(|a| (&a.require, &a.deny)).collect();
        assert!(distinct.len() >= 35, "{}", distinct.len());
    }
}
