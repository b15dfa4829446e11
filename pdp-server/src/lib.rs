//! # pdp-server
//!
//! The RZTS decision server (policy decision point): one place that knows who users
//! are, what their devices look like and which rules apply, decides for every
//! enforcement point, and records every decision.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod model;
pub mod store;

// Anomaly detection, alert mail and GeoIP country lookup.
pub mod alert;
pub mod detector;
pub mod geoip;

// The server process: configuration, HTTP API, enrichment, access-log writer,
// signed policy bundles, policy reload and metrics.
pub mod api;
pub mod bundle;
pub mod config;
pub mod enrich;
pub(crate) mod journal;
pub mod logwriter;
pub mod metrics;
pub mod reload;
pub mod server;

// The TOTP second factor of directory users.
pub mod totp;

// The device agent's enrolment codes, device keys, signed reports and attestations.
pub mod devices;

/// The lower-case hex SHA-256 of `bytes`: how enrolment codes, proxy tokens and
/// the policy lock's fingerprint are kept.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
