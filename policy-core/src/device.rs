//! The wire protocol between the device agent (`rzts-agent`) and the decision server:
//! request and response bodies, the signature header and the exact messages that
//! device keys sign. Pure data, no crypto: both sides sign and verify with ed25519
//! over the bytes this module defines, so they cannot drift apart.
//!
//! | step | route | body |
//! |---|---|---|
//! | enrol | `POST /v1/devices/enroll` | [`EnrollRequest`] → [`EnrollResponse`] |
//! | report | `POST /v1/devices/{id}/report` + [`SIGNATURE_HEADER`] | [`Report`] → [`ReportAccepted`] |
//! | attest | `POST /v1/devices/attest/challenge`, then the agent's loopback endpoint, then `POST /v1/devices/attest/verify` | [`Challenge`], [`AttestRequest`] → [`Attestation`], [`AttestVerify`] → [`AttestVerified`] |
//!
//! ```
//! use policy_core::device::{attest_message, signature_header, parse_signature_header};
//! assert_eq!(attest_message("https://login.example.jp", "abc"), b"rzts-attest-v1\nhttps://login.example.jp\nabc");
//! let h = signature_header("c2ln");
//! assert_eq!(h, "ed25519=c2ln");
//! assert_eq!(parse_signature_header(&h), Some("c2ln"));
//! assert_eq!(parse_signature_header("rsa=c2ln"), None);
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::context::Device;

/// The HTTP header carrying a report's signature: `RZTS-Signature: ed25519=<base64>`,
/// the standard-alphabet base64 of the 64-byte ed25519 signature over the exact body
/// bytes.
pub const SIGNATURE_HEADER: &str = "rzts-signature";

/// The domain-separation prefix of attestation messages (never a valid report body,
/// which starts with `{`).
pub const ATTEST_DOMAIN: &str = "rzts-attest-v1";

/// The longest challenge the agent signs and the server issues (characters).
pub const MAX_CHALLENGE_LEN: usize = 256;

/// `POST /v1/devices/enroll`: a one-time code and the device's new public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code the administrator printed (`rzts device enroll`).
    pub code: String,
    /// The device's ed25519 public key, 32 bytes in standard base64.
    pub public_key: String,
}

/// The answer to an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device id the directory registered.
    pub device_id: String,
    /// The owner (from the code).
    pub owner: String,
    /// Web origins whose login pages may ask the agent for an attestation.
    pub attestation_origins: Vec<String>,
}

/// A posture report, signed by the device key over its exact JSON bytes.
///
/// Replay protection: `seq` must be greater than the last sequence number the server
/// accepted from this device, and `time` must be within the server's clock window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The reporting device; must equal the id in the path and own the key.
    pub device_id: String,
    /// Strictly increasing per device (the agent persists its counter).
    pub seq: u64,
    /// When the posture was collected (RFC 3339).
    pub time: DateTime<Utc>,
    /// The spec §2 `device` object; unknown attributes are absent.
    pub posture: Device,
}

/// The answer to an accepted report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAccepted {
    /// The device.
    pub device_id: String,
    /// The sequence number now on record.
    pub seq: u64,
}

/// A fresh attestation challenge (`POST /v1/devices/attest/challenge`), single use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random, URL-safe.
    pub challenge: String,
    /// After this the server refuses it.
    pub expires_at: DateTime<Utc>,
}

/// What a login page posts to the agent's loopback endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// The challenge the server issued.
    pub challenge: String,
}

/// The agent's answer: which device, and its signature over [`attest_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The enrolled device.
    pub device_id: String,
    /// Standard base64 of the ed25519 signature.
    pub signature: String,
}

/// `POST /v1/devices/attest/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestVerify {
    /// The device the agent named.
    pub device_id: String,
    /// The origin of the login page that asked the agent.
    pub origin: String,
    /// The challenge the server issued.
    pub challenge: String,
    /// The agent's signature.
    pub signature: String,
}

/// A verified attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestVerified {
    /// The device.
    pub device_id: String,
    /// Its owner in the directory.
    pub owner: String,
}

/// The bytes a device key signs to attest: `"rzts-attest-v1\n" + origin + "\n" + challenge`.
pub fn attest_message(origin: &str, challenge: &str) -> Vec<u8> {
    format!("{ATTEST_DOMAIN}\n{origin}\n{challenge}").into_bytes()
}

/// True for a challenge the agent may sign: 1 to [`MAX_CHALLENGE_LEN`] characters of
/// base64url (`A-Z a-z 0-9 - _`), so it cannot smuggle a line break into the message.
pub fn valid_challenge(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= MAX_CHALLENGE_LEN
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of [`SIGNATURE_HEADER`] for a base64 signature.
pub fn signature_header(signature_b64: &str) -> String {
    format!("ed25519={signature_b64}")
}

/// The base64 signature in a [`SIGNATURE_HEADER`] value, `None` for another scheme.
pub fn parse_signature_header(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("ed25519=")
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_base64url_only() {
        assert!(valid_challenge("aZ09-_"));
        assert!(!valid_challenge(""));
        assert!(!valid_challenge("a\nb"));
        assert!(!valid_challenge(&"a".repeat(MAX_CHALLENGE_LEN + 1)));
    }

    #[test]
    fn reports_round_trip() {
        let r: Report = serde_json::from_str(
            r#"{"device_id":"PC-1","seq":3,"time":"2026-11-24T01:00:00Z","posture":{"firewall":true}}"#,
        )
        .unwrap();
        assert_eq!(r.posture.firewall, Some(true));
        assert!(serde_json::from_str::<Report>(
            r#"{"device_id":"x","seq":1,"time":"2026-11-24T01:00:00Z","posture":{},"extra":1}"#
        )
        .is_err());
    }
}
