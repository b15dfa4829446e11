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

/// One recorded decision (shared with enforcement points, which ship their own).
pub use pep_client::record::AccessRecord;

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
