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
pub mod journal;
pub mod logwriter;
pub mod metrics;
pub mod reload;
pub mod server;

// The TOTP second factor of directory users.
pub mod totp;

// The device agent's enrolment codes, device keys, signed reports and attestations.
pub mod devices;
