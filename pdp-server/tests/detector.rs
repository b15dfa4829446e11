//! The anomaly detector against hand-built access-log histories: every finding,
//! and its absence.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pdp_server::detector::{
    Detector, DetectorConfig, Observation, WEIGHT_NEW_COUNTRY, WEIGHT_NEW_DEVICE,
};
use pdp_server::model::AccessRecord;
use policy_core::decision::Effect;

/// 2026-11-24 10:15 JST.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 1, 15, 0).unwrap()
}

fn rec(time: DateTime<Utc>, country: Option<&str>, device: Option<&str>) -> AccessRecord {
    AccessRecord {
        decision_id: format!("d-{}", time.timestamp()),
        time,
        pep: "saml".into(),
        target: "github".into(),
        user: Some("tanaka".into()),
        device: device.map(str::to_string),
        decision: Effect::Allow,
        reasons: vec![policy_core::decision::Reason::new("allow", "許可")],
        auth_method: Some("password".into()),
        source_ip: Some("203.0.113.7".into()),
        country: country.map(str::to_string),
        anomalies: vec![],
    }
}

/// Ten ordinary accesses from Japan on PC-0042 during office hours (9..=18 JST),
/// one per working day before `now`, newest first.
fn office_history() -> Vec<AccessRecord> {
    (1..=10)
        .map(|days| {
            let hour_jst = 9 + days % 10; // 10..18, 9
            let t = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap() - Duration::days(days)
                + Duration::hours(hour_jst - 9);
            rec(t, Some("JP"), Some("PC-0042"))
        })
        .collect()
}

fn obs() -> Observation<'static> {
    Observation::new("tanaka", now())
        .with_country("JP")
        .with_device("PC-0042")
}

fn codes(d: &Detector, o: &Observation, h: &[AccessRecord]) -> Vec<&'static str> {
    d.assess(o, h).findings.iter().map(|f| f.code).collect()
}

#[test]
fn first_access_is_not_suspicious() {
    let d = Detector::default();
    let o = Observation::new("tanaka", now())
        .with_country("KP")
        .with_device("X");
    let a = d.assess(&o, &Vec::<AccessRecord>::new());
    assert!(a.findings.is_empty());
    assert_eq!(a.score, 0.0);
    assert!(!a.suspicious);
}

#[test]
fn ordinary_access_has_no_findings() {
    let d = Detector::default();
    let a = d.assess(&obs(), &office_history());
    assert!(a.findings.is_empty(), "{a:?}");
    assert_eq!(a.score, 0.0);
    assert!(!a.suspicious);
    assert!(!d.should_block(&a));
}

#[test]
fn new_country_alone_is_reported_but_not_suspicious() {
    let d = Detector::default();
    // A day after the last access: no impossible travel, only a new country.
    let mut h = office_history();
    h.iter_mut().for_each(|r| r.time -= Duration::days(1));
    let o = obs().with_country("US");
    let a = d.assess(&o, &h);
    assert_eq!(codes(&d, &o, &h), ["new_country"]);
    assert_eq!(
        a.findings[0].message_ja,
        "これまでアクセスのなかった国（アメリカ合衆国）からのアクセスです"
    );
    assert!((a.score - WEIGHT_NEW_COUNTRY).abs() < 1e-12);
    assert!(!a.suspicious);
    // Country codes compare case-insensitively.
    assert!(codes(&d, &obs().with_country("jp"), &h).is_empty());
    // A history without any known country says nothing about new countries.
    let unknown: Vec<_> = h
        .iter()
        .cloned()
        .map(|mut r| {
            r.country = None;
            r
        })
        .collect();
    assert!(codes(&d, &o, &unknown).is_empty());
    // An unknown current country is not new.
    let mut o2 = obs();
    o2.country = None;
    assert!(codes(&d, &o2, &h).is_empty());
}

#[test]
fn impossible_travel_is_suspicious() {
    let d = Detector::default();
    let h = vec![rec(
        now() - Duration::minutes(30),
        Some("JP"),
        Some("PC-0042"),
    )];
    let o = obs().with_country("US");
    let a = d.assess(&o, &h);
    let c: Vec<_> = a.findings.iter().map(|f| f.code).collect();
    assert_eq!(c, ["new_country", "impossible_travel"]);
    assert!(a.suspicious);
    assert!(a.score >= 0.9);
    let m = &a.findings[1].message_ja;
    assert!(m.contains("日本") && m.contains("アメリカ合衆国"), "{m}");
    assert!(m.contains("30分後") && m.contains("時速"), "{m}");
    assert!(m.contains("11月24日 09:45 日本時間"), "{m}");

    // Same pair of countries 20 hours apart: an ordinary flight.
    let h = vec![rec(
        now() - Duration::hours(20),
        Some("JP"),
        Some("PC-0042"),
    )];
    assert_eq!(codes(&d, &o, &h), ["new_country"]);

    // Simultaneous accesses from two far-apart countries.
    let h = vec![rec(now(), Some("JP"), Some("PC-0042"))];
    let a = d.assess(&o, &h);
    assert!(a.has("impossible_travel"), "{a:?}");
    assert!(a.findings[1].message_ja.contains("直後"), "{a:?}");
}

#[test]
fn impossible_travel_needs_known_far_apart_places() {
    let d = Detector::default();
    // Tuvalu is not in the centroid table: no guess.
    let h = vec![rec(now() - Duration::minutes(5), Some("JP"), None)];
    assert_eq!(codes(&d, &obs().with_country("TV"), &h), ["new_country"]);
    // Belgium to the Netherlands in five minutes: centres too close to judge.
    let h = vec![rec(now() - Duration::minutes(5), Some("BE"), None)];
    assert_eq!(codes(&d, &obs().with_country("NL"), &h), ["new_country"]);
    // Same country: never impossible travel from country data alone.
    let h = vec![rec(now() - Duration::minutes(1), Some("US"), None)];
    assert!(codes(&d, &obs().with_country("US"), &h).is_empty());
    // The previous record has no country: the latest located one is used.
    let h = vec![
        rec(now() - Duration::minutes(5), None, None),
        rec(now() - Duration::minutes(40), Some("JP"), None),
    ];
    assert_eq!(
        codes(&d, &obs().with_country("GB"), &h),
        ["new_country", "impossible_travel"]
    );
}

#[test]
fn new_device() {
    let d = Detector::default();
    let o = obs().with_device("PC-9999");
    let a = d.assess(&o, &office_history());
    assert_eq!(codes(&d, &o, &office_history()), ["new_device"]);
    assert_eq!(
        a.findings[0].message_ja,
        "これまで使われたことのない端末（PC-9999）からのアクセスです"
    );
    assert!((a.score - WEIGHT_NEW_DEVICE).abs() < 1e-12);
    assert!(!a.suspicious);
    // A history without device ids: nothing to compare with.
    let h: Vec<_> = office_history()
        .into_iter()
        .map(|mut r| {
            r.device = None;
            r
        })
        .collect();
    assert!(codes(&d, &o, &h).is_empty());
    // No device id now: not new.
    let mut o2 = obs();
    o2.device = None;
    assert!(codes(&d, &o2, &office_history()).is_empty());
}

#[test]
fn unusual_hour() {
    let d = Detector::default();
    // 03:10 JST the next night; the user works 9..18 JST.
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 18, 10, 0).unwrap();
    let o = Observation::new("tanaka", t)
        .with_country("JP")
        .with_device("PC-0042");
    let a = d.assess(&o, &office_history());
    assert_eq!(codes(&d, &o, &office_history()), ["unusual_hour"]);
    let m = &a.findings[0].message_ja;
    assert!(m.contains("日本時間3時台"), "{m}");
    assert!(m.contains("9〜18時台"), "{m}");
    assert!(!a.suspicious);

    // 21:30 JST is 3 hours from 18時台: still usual.
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 12, 30, 0).unwrap();
    let o = Observation::new("tanaka", t).with_country("JP");
    assert!(codes(&d, &o, &office_history()).is_empty());

    // Too little history (4 < 5): no judgement.
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 18, 10, 0).unwrap();
    let o = Observation::new("tanaka", t).with_country("JP");
    assert!(codes(&d, &o, &office_history()[..4]).is_empty());
    assert_eq!(codes(&d, &o, &office_history()[..5]), ["unusual_hour"]);
}

#[test]
fn denial_burst() {
    let d = Detector::default();
    let denied = |mins: i64| {
        let mut r = rec(now() - Duration::minutes(mins), Some("JP"), Some("PC-0042"));
        r.decision = Effect::Deny;
        r
    };
    let mut h: Vec<_> = (1..=5).map(|i| denied(i * 2 - 1)).collect(); // 1,3,5,7,9 min ago
    h.extend(office_history());
    let a = d.assess(&obs(), &h);
    assert_eq!(codes(&d, &obs(), &h), ["denial_burst"]);
    assert_eq!(
        a.findings[0].message_ja,
        "直近10分間にこのアカウントのアクセスが5回拒否されています"
    );
    assert!(!a.suspicious);

    // Four denials are not a burst.
    let h4: Vec<_> = h.iter().skip(1).cloned().collect();
    assert!(codes(&d, &obs(), &h4).is_empty());
    // Five denials spread over 25 minutes are not a burst.
    let slow: Vec<_> = (1..=5).map(|i| denied(i * 5)).collect();
    assert!(codes(&d, &obs(), &slow).is_empty());
}

#[test]
fn findings_combine_into_suspicion() {
    let d = Detector::default();
    let mut h = office_history();
    h.iter_mut().for_each(|r| r.time -= Duration::days(1));
    let o = obs().with_country("US").with_device("PC-9999");
    let a = d.assess(&o, &h);
    assert_eq!(codes(&d, &o, &h), ["new_country", "new_device"]);
    let expect = 1.0 - (1.0 - WEIGHT_NEW_COUNTRY) * (1.0 - WEIGHT_NEW_DEVICE);
    assert!((a.score - expect).abs() < 1e-12);
    assert!(a.suspicious, "{a:?}");
    assert!(!d.should_block(&a));
    let blocking = Detector::new(DetectorConfig {
        block_when_suspicious: true,
        ..DetectorConfig::default()
    });
    assert!(blocking.should_block(&blocking.assess(&o, &h)));
    // The same input gives the same answer.
    assert_eq!(d.assess(&o, &h), a);
    let risk = a.risk();
    assert_eq!(risk.suspicious, Some(true));
    assert_eq!(risk.score, Some(a.score));
    assert_eq!(a.codes(), ["new_country", "new_device"]);
}

#[test]
fn only_the_latest_n_of_this_user_count() {
    let d = Detector::default();
    let mut h = office_history();
    h.iter_mut().for_each(|r| r.time -= Duration::days(1));
    // An 11th, older access from the US is beyond the last 10: US is still new.
    h.push(rec(now() - Duration::days(30), Some("US"), Some("PC-0042")));
    assert_eq!(codes(&d, &obs().with_country("US"), &h), ["new_country"]);
    let d20 = Detector::new(DetectorConfig {
        history: 20,
        ..DetectorConfig::default()
    });
    assert!(codes(&d20, &obs().with_country("US"), &h).is_empty());
    // Another user's records are ignored.
    let mut other = rec(now() - Duration::days(2), Some("US"), Some("PC-0042"));
    other.user = Some("suzuki".into());
    let mut h2 = vec![other];
    h2.extend(office_history());
    assert_eq!(
        codes(&d, &obs().with_country("US"), &h2[..10]),
        ["new_country"]
    );
}

#[test]
fn config_from_toml() {
    let c: DetectorConfig = toml::from_str("").unwrap();
    assert_eq!(c, DetectorConfig::default());
    assert_eq!(c.history, 10);
    assert_eq!(c.impossible_travel_kmh, 900.0);
    assert_eq!(c.unusual_hour_min_history, 5);
    assert_eq!(c.denial_burst, 5);
    assert_eq!(c.denial_window_minutes, 10);
    assert!(!c.block_when_suspicious);
    let c: DetectorConfig =
        toml::from_str("block_when_suspicious = true\nimpossible_travel_kmh = 1200.0").unwrap();
    assert!(c.block_when_suspicious);
    assert_eq!(c.impossible_travel_kmh, 1200.0);
    assert!(toml::from_str::<DetectorConfig>("histroy = 3").is_err());
}

#[test]
fn observation_from_request() {
    let req = policy_core::context::Request::from_json(
        r#"{"user":{"id":"tanaka"},"source":{"ip":"203.0.113.7","country":"US"},
            "device":{"id":"PC-0042","location":{"lat":35.681,"lon":139.767}}}"#,
    )
    .unwrap();
    let o = Observation::from_request(&req, now()).unwrap();
    assert_eq!(o.user, "tanaka");
    assert_eq!(o.country, Some("US"));
    assert_eq!(o.device, Some("PC-0042"));
    assert_eq!(o.source_ip, Some("203.0.113.7".parse().unwrap()));
    assert!(o.location.is_some());
    assert_eq!(o.time, now());
    let anon = policy_core::context::Request::from_json("{}").unwrap();
    assert!(Observation::from_request(&anon, now()).is_none());
}
