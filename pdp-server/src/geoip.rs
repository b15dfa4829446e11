//! `source.country` from an MMDB country database.
//!
//! Two record layouts are read:
//!
//! - `{"country_code": "JP"}`: the `@ip-location-db/*-country-mmdb` packages
//!   (default: `geo-whois-asn-country.mmdb`, fetched by `scripts/fetch_geoip.sh`
//!   from the npm registry);
//! - MaxMind GeoLite2 / GeoIP2 Country or City: `country.iso_code`, falling back to
//!   `registered_country.iso_code` when the record has no `country`.
//!
//! Addresses that say nothing about a country (loopback, private, shared/CGNAT,
//! link-local, unique-local, multicast, unspecified) give `None` without a
//! lookup, and so does a code that is not an assigned ISO 3166-1 alpha-2 code
//! (such as `EU` or `ZZ` in some databases). IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`) are looked up as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use policy_core::value::CountryCode;
use serde::Deserialize;

/// The database file that `scripts/fetch_geoip.sh` extracts (IPv4 and IPv6).
pub const DEFAULT_DB_FILE: &str = "geo-whois-asn-country.mmdb";

/// The database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file could not be read.
    #[error("GeoIP データベース {path} を読めません: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid MMDB database.
    #[error("GeoIP データベース {path} は MMDB 形式ではありません: {source}")]
    Format {
        /// The file (empty for in-memory data).
        path: PathBuf,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
}

/// A country MMDB database, loaded into memory.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .finish()
    }
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
}

impl GeoIp {
    /// Reads a database file.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoIp, GeoIpError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| GeoIpError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(bytes, path.to_path_buf())
    }

    /// Reads a database from memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoIp, GeoIpError> {
        Self::load(bytes, PathBuf::new())
    }

    fn load(bytes: Vec<u8>, path: PathBuf) -> Result<GeoIp, GeoIpError> {
        let reader =
            maxminddb::Reader::from_source(bytes).map_err(|source| GeoIpError::Format {
                path: path.clone(),
                source,
            })?;
        Ok(GeoIp { reader, path })
    }

    /// Where the database was read from (empty for in-memory data).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's `database_type` metadata (e.g. `GeoLite2-Country`).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built (seconds since the Unix epoch).
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The country of an address; `None` for non-public addresses, addresses the
    /// database does not cover, and codes that are not assigned ISO codes.
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return None;
        }
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        let code = record
            .country_code
            .or_else(|| record.country.and_then(|c| c.iso_code))
            .or_else(|| record.registered_country.and_then(|c| c.iso_code))?;
        CountryCode::from_str(code).ok()
    }
}

/// False for addresses that cannot locate anyone: loopback, private, shared
/// (CGNAT), link-local, unique-local, multicast, broadcast, unspecified.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses() {
        for s in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.10.23",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(
                !is_public(s.parse::<IpAddr>().unwrap().to_canonical()),
                "{s}"
            );
        }
        for s in [
            "8.8.8.8",
            "203.0.113.7",
            "2001:4860:4860::8888",
            "100.128.0.1",
        ] {
            assert!(is_public(s.parse().unwrap()), "{s}");
        }
        let mapped: IpAddr = "::ffff:192.168.0.1".parse().unwrap();
        assert!(!is_public(mapped.to_canonical()));
    }

    #[test]
    fn not_an_mmdb() {
        let e = GeoIp::from_bytes(b"not a database".to_vec()).unwrap_err();
        assert!(matches!(e, GeoIpError::Format { .. }), "{e}");
        let e = GeoIp::open("/nonexistent/x.mmdb").unwrap_err();
        assert!(matches!(e, GeoIpError::Io { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/x.mmdb"));
    }
}
