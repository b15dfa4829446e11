//! The directory's and the access log's records, shared by the storage backends,
//! the HTTP API and the CLI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user of the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Login id (`user.id` in request contexts).
    pub id: String,
    /// E-mail address (alerts go here).
    pub email: String,
    /// Name shown to people.
    pub display_name: String,
    /// argon2 PHC string; never serialised to API clients.
    #[serde(skip_serializing, default)]
    pub password_hash: Option<String>,
    /// Base32 TOTP secret when the user enrolled a second factor; never serialised.
    #[serde(skip_serializing, default)]
    pub totp_secret: Option<String>,
    /// A disabled user is denied everywhere.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// A new user (the password already hashed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    /// Login id.
    pub id: String,
    /// E-mail address.
    pub email: String,
    /// Name shown to people.
    pub display_name: String,
    /// argon2 PHC string.
    pub password_hash: Option<String>,
}

/// A group and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The name policies use (「経理部」).
    pub name: String,
    /// Member user ids, sorted.
    pub members: Vec<String>,
}

/// A device of the directory with its latest posture report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Device id (`device.id`).
    pub id: String,
    /// The owner's user id.
    pub owner: String,
    /// The latest posture report: the `device` object of a request context (spec §2).
    pub posture: Option<policy_core::context::Device>,
    /// When the latest report arrived.
    pub last_seen: Option<DateTime<Utc>>,
    /// When the device was registered.
    pub registered_at: DateTime<Utc>,
}

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
    pub decision: policy_core::decision::Effect,
    /// Reason codes of the decision.
    pub reasons: Vec<String>,
    /// How the user authenticated.
    pub auth_method: Option<String>,
    /// Source IP address.
    pub source_ip: Option<String>,
    /// Source country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// The anomaly detector's findings for this access (codes), if any.
    pub anomalies: Vec<String>,
}

/// Filters for reading the access log; all optional, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Only this user.
    pub user: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this decision.
    pub decision: Option<policy_core::decision::Effect>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 10 000).
    pub limit: Option<usize>,
}

/// A new one-time enrolment code (`rzts device enroll`); the code itself is never
/// stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollment {
    /// Lower-case hex SHA-256 of the normalised code.
    pub code_sha256: String,
    /// Who the enrolled device will belong to.
    pub owner: String,
    /// The device id to register, else one is generated at enrolment.
    pub device_id: Option<String>,
    /// When the code was made.
    pub created_at: DateTime<Utc>,
    /// After this the code is refused.
    pub expires_at: DateTime<Utc>,
}

/// What consuming an enrolment code did.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrollOutcome {
    /// The device is registered with its key.
    Enrolled(Box<Device>),
    /// No such code.
    Unknown,
    /// The code was used already.
    Used,
    /// The code expired.
    Expired,
}
