//! GeoIP country lookup: against small MMDB files built here (both record layouts,
//! IPv4 and IPv6 trees), and against the real fetched database.
//!
//! The real database is `$RZTS_GEOIP_DB` when set (it must then exist), else
//! `~/.cache/rzts/geoip/geo-whois-asn-country.mmdb` (what
//! `scripts/fetch_geoip.sh ~/.cache/rzts/geoip` writes). When it is missing the
//! test fetches it with that script if `CI` is set (and fails loudly if that
//! fails), otherwise it prints a SKIPPED line.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use pdp_server::geoip::{GeoIp, DEFAULT_DB_FILE};
use serde::Serialize;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpAddrWithMask {
    s.parse().unwrap()
}

fn new_db(version: IpVersion, kind: &str) -> Database {
    let mut db = Database::default();
    db.metadata.ip_version = version;
    db.metadata.database_type = kind.to_string();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    db.metadata.build_epoch = 1_764_000_000;
    db
}

fn bytes(db: &Database) -> Vec<u8> {
    db.write_to(Vec::new()).unwrap()
}

/// `{"country_code": "XX"}`: the @ip-location-db layout.
fn ip_location_db_v4() -> Vec<u8> {
    let mut db = new_db(IpVersion::V4, "geo-whois-asn-country");
    for (cidr, cc) in [
        ("203.0.113.0/24", "US"),
        ("198.51.100.0/24", "jp"),
        ("192.0.2.0/24", "ZZ"),
        ("10.0.0.0/8", "JP"),
    ] {
        let mut rec = BTreeMap::new();
        rec.insert("country_code", cc);
        let data = db.insert_value(rec).unwrap();
        db.insert_node(net(cidr), data);
    }
    bytes(&db)
}

#[derive(Serialize)]
struct Iso {
    iso_code: &'static str,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct GeoLite2 {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<Iso>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_country: Option<Iso>,
}

fn iso(code: &'static str, name: &'static str) -> Iso {
    Iso {
        iso_code: code,
        names: [("en", name)].into_iter().collect(),
    }
}

/// MaxMind GeoLite2-Country layout, IPv6 tree with IPv4 under `::/96`.
fn geolite2_v6() -> Vec<u8> {
    let mut db = new_db(IpVersion::V6, "GeoLite2-Country");
    let de = db
        .insert_value(GeoLite2 {
            country: Some(iso("DE", "Germany")),
            registered_country: Some(iso("DE", "Germany")),
        })
        .unwrap();
    // An anycast-like record with only the registration country.
    let fr = db
        .insert_value(GeoLite2 {
            country: None,
            registered_country: Some(iso("FR", "France")),
        })
        .unwrap();
    let au = db
        .insert_value(GeoLite2 {
            country: Some(iso("AU", "Australia")),
            registered_country: None,
        })
        .unwrap();
    let empty = db
        .insert_value(GeoLite2 {
            country: None,
            registered_country: None,
        })
        .unwrap();
    db.insert_node(net("::203.0.113.0/120"), de);
    db.insert_node(net("::198.51.100.0/120"), fr);
    db.insert_node(net("2001:db8::/32"), au);
    db.insert_node(net("2001:db9::/32"), empty);
    bytes(&db)
}

#[test]
fn ip_location_db_layout() {
    let g = GeoIp::from_bytes(ip_location_db_v4()).unwrap();
    assert_eq!(g.database_type(), "geo-whois-asn-country");
    assert_eq!(g.build_epoch(), 1_764_000_000);
    assert_eq!(g.country(ip("203.0.113.7")).unwrap().as_str(), "US");
    // Lower-case codes are normalised.
    assert_eq!(g.country(ip("198.51.100.200")).unwrap().as_str(), "JP");
    assert_eq!(g.country(ip("198.51.100.200")).unwrap().name_ja(), "日本");
    // IPv4-mapped IPv6 is looked up as IPv4.
    assert_eq!(g.country(ip("::ffff:203.0.113.9")).unwrap().as_str(), "US");
    // Not an assigned ISO code: no guess.
    assert_eq!(g.country(ip("192.0.2.1")), None);
    // Not covered.
    assert_eq!(g.country(ip("8.8.8.8")), None);
    // Private addresses are never located, whatever the database says.
    assert_eq!(g.country(ip("10.1.2.3")), None);
    // IPv6 in an IPv4-only database: no answer, no panic.
    assert_eq!(g.country(ip("2001:db8::1")), None);
}

#[test]
fn geolite2_layout() {
    let g = GeoIp::from_bytes(geolite2_v6()).unwrap();
    assert_eq!(g.country(ip("203.0.113.7")).unwrap().as_str(), "DE");
    assert_eq!(g.country(ip("198.51.100.1")).unwrap().as_str(), "FR");
    assert_eq!(g.country(ip("2001:db8:1234::1")).unwrap().as_str(), "AU");
    assert_eq!(g.country(ip("2001:db9::1")), None);
    assert_eq!(g.country(ip("192.0.2.1")), None);
    assert_eq!(g.country(ip("::1")), None);
    assert_eq!(g.country(ip("fd00::1")), None);
}

#[test]
fn open_from_file_and_errors() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("geoip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.mmdb");
    std::fs::write(&path, ip_location_db_v4()).unwrap();
    let g = GeoIp::open(&path).unwrap();
    assert_eq!(g.path(), path.as_path());
    assert_eq!(g.country(ip("203.0.113.7")).unwrap().as_str(), "US");
    assert!(format!("{g:?}").contains("small.mmdb"));

    let bad = dir.join("bad.mmdb");
    std::fs::write(&bad, b"\x00\x01 not an mmdb").unwrap();
    let e = GeoIp::open(&bad).unwrap_err();
    assert!(e.to_string().contains("bad.mmdb"), "{e}");
    assert!(GeoIp::open(dir.join("missing.mmdb")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// The real database, fetched when needed under CI; `None` means skip.
fn real_db() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RZTS_GEOIP_DB") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "RZTS_GEOIP_DB={} does not exist", p.display());
        return Some(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let dir = home.join(".cache/rzts/geoip");
    let path = dir.join(DEFAULT_DB_FILE);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_none() {
        // Straight to stderr, past the test harness's output capture.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED real GeoIP database tests: {} is missing (run scripts/fetch_geoip.sh {})",
            path.display(),
            dir.display()
        );
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fetch_geoip.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("run scripts/fetch_geoip.sh");
    assert!(
        out.status.success() && path.is_file(),
        "CI is set and the GeoIP database could not be fetched with scripts/fetch_geoip.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(path)
}

#[test]
fn real_database() {
    let Some(path) = real_db() else { return };
    let g = GeoIp::open(&path).unwrap();
    for (addr, expect) in [
        ("8.8.8.8", Some("US")),
        ("1.1.1.1", None),
        ("2001:4860:4860::8888", Some("US")),
        ("133.242.0.1", Some("JP")),
    ] {
        let c = g.country(ip(addr));
        let c = c.unwrap_or_else(|| panic!("{addr} has no country in {}", path.display()));
        assert!(
            policy_core::country::by_code(c.as_str()).is_some(),
            "{addr} -> {c}"
        );
        if let Some(e) = expect {
            assert_eq!(c.as_str(), e, "{addr}");
        }
        eprintln!("{addr} -> {c} ({})", c.name_ja());
    }
    for private in ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fe80::1"] {
        assert_eq!(g.country(ip(private)), None, "{private}");
    }
}
