//! The server side of the device agent: one-time enrolment codes, device keys and
//! the checks of signed reports and attestations (the wire format is
//! [`policy_core::device`]).
//!
//! - An enrolment code is 160 random bits written as 8 groups of 4 base32 letters
//!   (`ABCD-EFGH-...`); only the SHA-256 of its normalised form (upper case, no
//!   dashes or spaces) is stored, it expires and it is consumed by its first use.
//! - A device key is an ed25519 public key in standard base64.
//! - A report is accepted when its signature verifies with the device's key over
//!   the exact body bytes, its `device_id` is the device in the path, its `time` is
//!   within the clock window and its `seq` is greater than the last accepted one.
//!
//! ```
//! use pdp_server::devices::{new_enrollment_code, code_sha256};
//! let (code, hash) = new_enrollment_code().unwrap();
//! assert_eq!(code.len(), 39);
//! assert_eq!(code_sha256(&code.to_lowercase().replace('-', " ")), hash);
//! ```

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

/// The default lifetime of an enrolment code, in minutes.
pub const DEFAULT_CODE_TTL_MINUTES: u32 = 60;
/// The longest lifetime an enrolment code may be given (7 days), in minutes.
pub const MAX_CODE_TTL_MINUTES: u32 = 7 * 24 * 60;

/// The `[devices]` section of the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// Web origins (`https://login.example.co.jp`) whose login pages may ask an
    /// agent for an attestation; given to agents at enrolment. Empty (the default)
    /// means the server's own URL (`http://<listen address>`).
    pub attestation_origins: Vec<String>,
    /// How far a report's `time` may be from the server's clock, in seconds (300;
    /// 1 to 86,400).
    pub report_max_skew_secs: u64,
    /// How long an attestation challenge is valid, in seconds (120; 1 to 86,400).
    pub challenge_ttl_secs: u64,
}

/// The largest `report_max_skew_secs` and `challenge_ttl_secs` accepted (a day).
pub const MAX_DEVICE_SECS: u64 = 86_400;

impl DevicesConfig {
    /// `report_max_skew_secs` as a duration (validated to fit when loaded).
    pub fn report_max_skew(&self) -> TimeDelta {
        secs(self.report_max_skew_secs)
    }

    /// `challenge_ttl_secs` as a duration (validated to fit when loaded).
    pub fn challenge_ttl(&self) -> TimeDelta {
        secs(self.challenge_ttl_secs)
    }
}

/// Seconds as a duration, capped at [`MAX_DEVICE_SECS`] so no value can overflow
/// the date arithmetic it feeds.
fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(s.min(MAX_DEVICE_SECS) as i64)
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            attestation_origins: Vec::new(),
            report_max_skew_secs: 300,
            challenge_ttl_secs: 120,
        }
    }
}

/// Why a device's message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceAuthError {
    /// The stored or given key is not an ed25519 public key.
    #[error("not an ed25519 public key (32 bytes, base64)")]
    BadKey,
    /// The signature is not base64 of 64 bytes.
    #[error("malformed signature (expected base64 of 64 bytes)")]
    MalformedSignature,
    /// The signature does not verify with the device's key.
    #[error("the signature does not verify with the device's key")]
    BadSignature,
}

fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut raw = [0u8; N];
    getrandom::getrandom(&mut raw)?;
    Ok(raw)
}

/// A new enrolment code and the SHA-256 to store.
pub fn new_enrollment_code() -> Result<(String, String), getrandom::Error> {
    // 20 bytes = 160 bits = 32 base32 letters, in groups of 4.
    let letters = crate::totp::base32(&random::<20>()?);
    let code = letters
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    let hash = code_sha256(&code);
    Ok((code, hash))
}

/// A freshly issued enrolment code: the code (shown once) and what the store keeps.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code to hand to the device's user.
    pub code: String,
    /// What to store (`Store::create_enrollment`).
    pub record: crate::model::NewEnrollment,
}

/// The admin API's answer for an issued code.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedAnswer {
    /// The one-time code.
    pub code: String,
    /// The future device's owner.
    pub owner: String,
    /// The device id to register, when fixed by the administrator.
    pub device_id: Option<String>,
    /// After this the code is refused.
    pub expires_at: DateTime<Utc>,
}

impl IssuedCode {
    /// The admin API's answer.
    pub fn answer(&self) -> IssuedAnswer {
        IssuedAnswer {
            code: self.code.clone(),
            owner: self.record.owner.clone(),
            device_id: self.record.device_id.clone(),
            expires_at: self.record.expires_at,
        }
    }
}

/// Why no enrolment code was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The requested lifetime is out of range (the caller's mistake).
    #[error("the code lifetime must be 1 to {MAX_CODE_TTL_MINUTES} minutes")]
    Lifetime,
    /// The system's random source failed (the server's problem).
    #[error("no randomness for the code: {0}")]
    Randomness(getrandom::Error),
}

/// Issues an enrolment code for `owner` (optionally for a fixed device id) valid for
/// `ttl_minutes` (1 to [`MAX_CODE_TTL_MINUTES`]); the caller stores `record`.
pub fn issue_enrollment(
    owner: &str,
    device_id: Option<&str>,
    ttl_minutes: u32,
) -> Result<IssuedCode, IssueError> {
    if ttl_minutes == 0 || ttl_minutes > MAX_CODE_TTL_MINUTES {
        return Err(IssueError::Lifetime);
    }
    let (code, code_sha256) = new_enrollment_code().map_err(IssueError::Randomness)?;
    let created_at = Utc::now();
    Ok(IssuedCode {
        code,
        record: crate::model::NewEnrollment {
            code_sha256,
            owner: owner.to_string(),
            device_id: device_id.map(str::to_string),
            created_at,
            expires_at: created_at + TimeDelta::minutes(i64::from(ttl_minutes)),
        },
    })
}

/// The lower-case hex SHA-256 of a code after normalisation (dashes and white space
/// removed, upper-cased), so `abcd efgh` and `ABCD-EFGH` are the same code.
pub fn code_sha256(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    crate::sha256_hex(norm.as_bytes())
}

/// Parses a device public key (standard base64 of 32 bytes, a valid curve point).
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, DeviceAuthError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| DeviceAuthError::BadKey)?;
    let arr: [u8; 32] = raw.try_into().map_err(|_| DeviceAuthError::BadKey)?;
    VerifyingKey::from_bytes(&arr).map_err(|_| DeviceAuthError::BadKey)
}

/// Verifies a base64 signature over `message` with a base64 public key (strict
/// verification: no malleable or small-order signatures).
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> Result<(), DeviceAuthError> {
    let key = parse_public_key(public_key)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| DeviceAuthError::MalformedSignature)?;
    let sig = Signature::from_slice(&raw).map_err(|_| DeviceAuthError::MalformedSignature)?;
    key.verify_strict(message, &sig)
        .map_err(|_| DeviceAuthError::BadSignature)
}

/// A posture report as the directory keeps it: the directory, not the report,
/// says what the device is and whether it is registered, so those two are dropped.
pub fn directory_posture(
    mut posture: policy_core::context::Device,
) -> policy_core::context::Device {
    posture.id = None;
    posture.registered = None;
    posture
}

/// True when `time` is within `max_skew` of `now`, either way.
pub fn fresh(time: DateTime<Utc>, now: DateTime<Utc>, max_skew: TimeDelta) -> bool {
    (now - time).abs() <= max_skew
}

/// A new attestation challenge: 32 random bytes in unpadded base64url.
pub fn new_challenge() -> Result<String, getrandom::Error> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?))
}

/// A device id for an enrolment whose code names none: `DEV-` and 80 random bits
/// in base32.
pub fn new_device_id() -> Result<String, getrandom::Error> {
    Ok(format!("DEV-{}", crate::totp::base32(&random::<10>()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    use ed25519_dalek::{Signer as _, SigningKey};

    #[test]
    fn codes_are_random_grouped_and_normalised() {
        let (a, ha) = new_enrollment_code().unwrap();
        let (b, _) = new_enrollment_code().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.split('-').count(), 8);
        assert!(a.chars().all(|c| c == '-' || BASE32.contains(&(c as u8))));
        assert_eq!(code_sha256(&a.to_lowercase()), ha);
        assert_ne!(code_sha256(&b), ha);
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let pk = b64(sk.verifying_key().as_bytes());
        let sig = b64(&sk.sign(b"body").to_bytes());
        assert_eq!(verify(&pk, b"body", &sig), Ok(()));
        assert_eq!(
            verify(&pk, b"bodY", &sig),
            Err(DeviceAuthError::BadSignature)
        );
        let forged = b64(&other.sign(b"body").to_bytes());
        assert_eq!(
            verify(&pk, b"body", &forged),
            Err(DeviceAuthError::BadSignature)
        );
        assert_eq!(
            verify(&pk, b"body", "not base64!"),
            Err(DeviceAuthError::MalformedSignature)
        );
        assert_eq!(verify("AAAA", b"body", &sig), Err(DeviceAuthError::BadKey));
    }

    #[test]
    fn freshness_window() {
        let now = Utc::now();
        let skew = DevicesConfig::default().report_max_skew();
        assert_eq!(skew, TimeDelta::seconds(300));
        assert!(fresh(now - TimeDelta::seconds(299), now, skew));
        assert!(fresh(now + TimeDelta::seconds(299), now, skew));
        assert!(!fresh(now - TimeDelta::seconds(301), now, skew));
    }
}
